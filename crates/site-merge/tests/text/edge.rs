//! Named edge cases, with git's output written out (checked against
//! `git merge-file -p -L ours -L base -L theirs`, git 2.47).

use site_merge::{ConflictStyle, Favor, Input, MergeError, MergeOptions, merge};

fn m(base: &str, ours: &str, theirs: &str) -> (String, usize) {
    let out = merge(base.as_bytes(), ours.as_bytes(), theirs.as_bytes()).unwrap();
    (String::from_utf8(out.bytes).unwrap(), out.conflicts)
}

fn m3(style: ConflictStyle, base: &str, ours: &str, theirs: &str) -> (String, usize) {
    let out = MergeOptions::new()
        .style(style)
        .merge(base.as_bytes(), ours.as_bytes(), theirs.as_bytes())
        .unwrap();
    (String::from_utf8(out.bytes).unwrap(), out.conflicts)
}

#[test]
fn empty_files() {
    assert_eq!(m("", "", ""), (String::new(), 0));
    assert_eq!(m("", "x\n", ""), ("x\n".into(), 0));
    assert_eq!(m("", "x\n", "x\n"), ("x\n".into(), 0));
    assert_eq!(
        m("", "x\n", "y\n"),
        ("<<<<<<< ours\nx\n=======\ny\n>>>>>>> theirs\n".into(), 1)
    );
}

#[test]
fn whole_file_deletion() {
    assert_eq!(m("a\nb\n", "", "a\nb\n"), (String::new(), 0));
    assert_eq!(m("a\nb\n", "", ""), (String::new(), 0));
    assert_eq!(
        m("a\nb\n", "", "a\nB\n"),
        ("<<<<<<< ours\n=======\na\nB\n>>>>>>> theirs\n".into(), 1)
    );
}

#[test]
fn insertions_at_start_and_end() {
    assert_eq!(
        m("a\nb\n", "X\na\nb\n", "a\nb\nY\n"),
        ("X\na\nb\nY\n".into(), 0)
    );
    assert_eq!(
        m("a\nb\n", "X\na\nb\n", "Y\na\nb\n"),
        (
            "<<<<<<< ours\nX\n=======\nY\n>>>>>>> theirs\na\nb\n".into(),
            1
        )
    );
    assert_eq!(
        m("a\nb\n", "a\nb\nX\n", "a\nb\nY\n"),
        (
            "a\nb\n<<<<<<< ours\nX\n=======\nY\n>>>>>>> theirs\n".into(),
            1
        )
    );
}

#[test]
fn adjacent_edits_conflict() {
    assert_eq!(
        m("a\nb\nc\nd\n", "a\nB\nc\nd\n", "a\nb\nC\nd\n"),
        (
            "a\n<<<<<<< ours\nB\nc\n=======\nb\nC\n>>>>>>> theirs\nd\n".into(),
            1
        )
    );
}

#[test]
fn one_untouched_line_between_edits_is_enough() {
    assert_eq!(
        m("a\nb\nc\nd\ne\n", "a\nB\nc\nd\ne\n", "a\nb\nc\nD\ne\n"),
        ("a\nB\nc\nD\ne\n".into(), 0)
    );
}

#[test]
fn identical_edits_are_clean() {
    assert_eq!(
        m("a\nb\nc\n", "a\nB\nc\n", "a\nB\nc\n"),
        ("a\nB\nc\n".into(), 0)
    );
}

#[test]
fn zealous_refinement_keeps_common_lines_out() {
    assert_eq!(
        m("a\nb\nc\nd\ne\n", "a\nX\nY1\nZ\ne\n", "a\nX\nY2\nZ\ne\n"),
        (
            "a\nX\n<<<<<<< ours\nY1\n=======\nY2\n>>>>>>> theirs\nZ\ne\n".into(),
            1
        )
    );
    assert_eq!(
        m("a\nb\n", "a\nX\nb\n", "a\nX\nY\nb\n"),
        (
            "a\nX\n<<<<<<< ours\n=======\nY\n>>>>>>> theirs\nb\n".into(),
            1
        )
    );
}

#[test]
fn nearby_conflicts_fold_into_one() {
    assert_eq!(
        m(
            "k1\nk2\nk3\nk4\nk5\n",
            "X1\nk2\nk3\nX4\nk5\n",
            "Y1\nk2\nk3\nY4\nk5\n"
        ),
        (
            "<<<<<<< ours\nX1\nk2\nk3\nX4\n=======\nY1\nk2\nk3\nY4\n>>>>>>> theirs\nk5\n".into(),
            1
        )
    );
}

#[test]
fn delete_versus_modify() {
    assert_eq!(
        m("a\nb\nc\n", "a\nc\n", "a\nB\nc\n"),
        ("a\n<<<<<<< ours\n=======\nB\n>>>>>>> theirs\nc\n".into(), 1)
    );
}

#[test]
fn no_final_newline_inside_a_conflict_gets_one() {
    assert_eq!(
        m("a\nb\nc", "a\nb\nc1", "a\nb\nc2"),
        (
            "a\nb\n<<<<<<< ours\nc1\n=======\nc2\n>>>>>>> theirs\n".into(),
            1
        )
    );
}

#[test]
fn no_final_newline_on_each_side_when_clean() {
    assert_eq!(m("a\nb\nc", "A\nb\nc", "a\nb\nc"), ("A\nb\nc".into(), 0));
    assert_eq!(
        m("a\nb\nc\n", "A\nb\nc\n", "a\nb\nc"),
        ("A\nb\nc".into(), 0)
    );
    assert_eq!(
        m("a\nb\nc", "a\nb\nc\n", "A\nb\nc"),
        ("A\nb\nc\n".into(), 0)
    );
}

#[test]
fn crlf_files_get_crlf_markers() {
    let (out, n) = m("a\r\nb\r\nc\r\n", "a\r\nB1\r\nc\r\n", "a\r\nB2\r\nc\r\n");
    assert_eq!(n, 1);
    assert_eq!(
        out,
        "a\r\n<<<<<<< ours\r\nB1\r\n=======\r\nB2\r\n>>>>>>> theirs\r\nc\r\n"
    );
    let (out, _) = m3(
        ConflictStyle::Diff3,
        "a\r\nb\r\nc",
        "a\r\nb\r\nc1",
        "a\r\nb\r\nc2",
    );
    assert_eq!(
        out,
        "a\r\nb\r\n<<<<<<< ours\r\nc1\r\n||||||| base\r\nc\r\n=======\r\nc2\r\n>>>>>>> theirs\r\n"
    );
}

#[test]
fn mixed_line_endings_use_lf_markers() {
    let (out, n) = m("a\nb\r\nc\r\n", "a\nB1\r\nc\r\n", "a\nB2\r\nc\r\n");
    assert_eq!(n, 1);
    assert_eq!(
        out,
        "a\n<<<<<<< ours\nB1\r\n=======\nB2\r\n>>>>>>> theirs\nc\r\n"
    );
}

#[test]
fn very_long_lines() {
    let long = "x".repeat(1 << 20);
    let base = format!("{long}\nb\nc\n{long}\n");
    let ours = format!("{long}\nB\nc\n{long}\n");
    let theirs = format!("{long}\nb\nc\n{long}y\n");
    let (out, n) = m(&base, &ours, &theirs);
    assert_eq!(n, 0);
    assert!(
        out == format!("{long}\nB\nc\n{long}y\n"),
        "long lines merged wrongly"
    );
    let (out, n) = m(
        &base,
        &format!("{long}z\nb\nc\n{long}\n"),
        &format!("{long}y\nb\nc\n{long}\n"),
    );
    assert_eq!(n, 1);
    assert!(out.starts_with("<<<<<<< ours\n") && out.ends_with(&format!("b\nc\n{long}\n")));
}

#[test]
fn diff3_and_zdiff3_styles() {
    let (b, o, t) = ("a\nb\nc\nd\ne\n", "a\nX\nY1\nZ\ne\n", "a\nX\nY2\nZ\ne\n");
    assert_eq!(
        m3(ConflictStyle::Diff3, b, o, t),
        ("a\n<<<<<<< ours\nX\nY1\nZ\n||||||| base\nb\nc\nd\n=======\nX\nY2\nZ\n>>>>>>> theirs\ne\n".into(), 1)
    );
    assert_eq!(
        m3(ConflictStyle::ZealousDiff3, b, o, t),
        (
            "a\nX\n<<<<<<< ours\nY1\n||||||| base\nb\nc\nd\n=======\nY2\n>>>>>>> theirs\nZ\ne\n"
                .into(),
            1
        )
    );
}

#[test]
fn favor_modes_labels_and_marker_size() {
    let (b, o, t) = ("a\nb\nc\n", "a\nB1\nc\n", "a\nB2\nc\n");
    let run = |opts: MergeOptions| {
        let out = opts
            .merge(b.as_bytes(), o.as_bytes(), t.as_bytes())
            .unwrap();
        (String::from_utf8(out.bytes).unwrap(), out.conflicts)
    };
    assert_eq!(
        run(MergeOptions::new().favor(Some(Favor::Ours))),
        ("a\nB1\nc\n".into(), 0)
    );
    assert_eq!(
        run(MergeOptions::new().favor(Some(Favor::Theirs))),
        ("a\nB2\nc\n".into(), 0)
    );
    assert_eq!(
        run(MergeOptions::new().favor(Some(Favor::Union))),
        ("a\nB1\nB2\nc\n".into(), 0)
    );
    assert_eq!(
        run(MergeOptions::new()
            .marker_size(3)
            .labels(Some(b"mine"), None, Some(b"yours"))),
        ("a\n<<< mine\nB1\n===\nB2\n>>> yours\nc\n".into(), 1)
    );
}

#[test]
fn binary_input_is_refused() {
    let err = merge(b"a\n", b"a\0\n", b"b\n").unwrap_err();
    assert_eq!(err, MergeError::Binary(Input::Ours));
    let err = merge(b"a\0", b"a\n", b"b\n").unwrap_err();
    assert_eq!(err, MergeError::Binary(Input::Base));
    let mut late = vec![b'a'; 8000];
    late.push(0);
    assert!(
        merge(b"a\n", &late, b"b\n").is_ok(),
        "a NUL after 8000 bytes is text, as in git"
    );
}
