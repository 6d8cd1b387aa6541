//! Properties of the spec (section 6) over small alphabets, where repeated
//! lines make alignments ambiguous.

use proptest::prelude::*;
use site_merge::{ConflictStyle, Favor, MergeOptions, MergeOutput};

fn text(crlf: bool, nonl: bool) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "c", "X", "Y", "}"]),
        0..10,
    )
    .prop_map(move |lines| {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut s: String = lines.iter().map(|l| format!("{l}{eol}")).collect();
        if nonl && s.ends_with('\n') {
            s.truncate(s.len() - eol.len());
        }
        s.into_bytes()
    })
}

fn triple() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, Vec<u8>)> {
    (any::<bool>(), any::<[bool; 3]>()).prop_flat_map(|(crlf, nonl)| {
        (
            text(crlf, nonl[0] && !crlf),
            text(crlf, nonl[1] && !crlf),
            text(crlf, nonl[2] && !crlf),
        )
    })
}

fn style() -> impl Strategy<Value = ConflictStyle> {
    prop::sample::select(vec![
        ConflictStyle::Merge,
        ConflictStyle::Diff3,
        ConflictStyle::ZealousDiff3,
    ])
}

fn run(opts: &MergeOptions, b: &[u8], x: &[u8], y: &[u8]) -> MergeOutput {
    opts.merge(b, x, y).unwrap()
}

fn clean(bytes: &[u8]) -> MergeOutput {
    MergeOutput {
        bytes: bytes.to_vec(),
        conflicts: 0,
    }
}

fn lines(b: &[u8]) -> Vec<&[u8]> {
    b.split_inclusive(|&c| c == b'\n').collect()
}

fn is_marker(l: &[u8]) -> bool {
    [b'<', b'|', b'=', b'>']
        .iter()
        .any(|&c| l.starts_with(&[c; 7]))
}

/// Swaps the two sides (and their labels) of every diff3 conflict block.
fn swap_sides(out: &[u8]) -> Vec<u8> {
    let mut res = Vec::new();
    let (mut ours, mut base, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    let mut state = 0;
    for l in lines(out) {
        match state {
            0 if l.starts_with(b"<<<<<<<") => state = 1,
            0 => res.extend_from_slice(l),
            1 if l.starts_with(b"|||||||") => state = 2,
            1 => ours.extend_from_slice(l),
            2 if l.starts_with(b"=======") => state = 3,
            2 => base.extend_from_slice(l),
            3 if l.starts_with(b">>>>>>>") => {
                let eol: &[u8] = if l.ends_with(b"\r\n") { b"\r\n" } else { b"\n" };
                res.extend_from_slice(b"<<<<<<< theirs");
                res.extend_from_slice(eol);
                res.append(&mut theirs);
                res.extend_from_slice(b"||||||| base");
                res.extend_from_slice(eol);
                res.append(&mut base);
                res.extend_from_slice(b"=======");
                res.extend_from_slice(eol);
                res.append(&mut ours);
                res.extend_from_slice(b">>>>>>> ours");
                res.extend_from_slice(eol);
                state = 0;
            }
            _ => theirs.extend_from_slice(l),
        }
    }
    res
}

/// Replaces each merge-style conflict block by one side or both.
fn project(out: &[u8], keep_ours: bool, keep_theirs: bool) -> Vec<u8> {
    let mut res = Vec::new();
    let mut state = 0;
    for l in lines(out) {
        match state {
            0 if l.starts_with(b"<<<<<<<") => state = 1,
            0 => res.extend_from_slice(l),
            1 if l.starts_with(b"=======") => state = 2,
            1 if keep_ours => res.extend_from_slice(l),
            2 if l.starts_with(b">>>>>>>") => state = 0,
            2 if keep_theirs => res.extend_from_slice(l),
            _ => {}
        }
    }
    res
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn p1_one_side_unchanged((b, x, _y) in triple(), s in style()) {
        let o = MergeOptions::new().style(s);
        prop_assert_eq!(run(&o, &b, &x, &b), clean(&x));
        prop_assert_eq!(run(&o, &b, &b, &x), clean(&x));
    }

    #[test]
    fn p2_p3_identical_changes_are_clean((b, x, _y) in triple(), s in style()) {
        let o = MergeOptions::new().style(s);
        prop_assert_eq!(run(&o, &b, &x, &x), clean(&x));
        prop_assert_eq!(run(&o, &x, &x, &x), clean(&x));
        prop_assert_eq!(run(&o, b"", b"", b""), clean(b""));
    }

    #[test]
    fn p4_symmetry((b, x, y) in triple()) {
        for s in [ConflictStyle::Merge, ConflictStyle::Diff3, ConflictStyle::ZealousDiff3] {
            let o = MergeOptions::new().style(s);
            let xy = run(&o, &b, &x, &y);
            let yx = run(&o, &b, &y, &x);
            prop_assert_eq!(xy.conflicts, yx.conflicts, "style {:?}", s);
            if xy.conflicts == 0 {
                prop_assert_eq!(&xy.bytes, &yx.bytes);
            }
        }
        let o = MergeOptions::new().style(ConflictStyle::Diff3);
        let xy = run(&o, &b, &x, &y);
        let yx = o.labels(Some(b"theirs"), Some(b"base"), Some(b"ours")).merge(&b, &y, &x).unwrap();
        prop_assert_eq!(swap_sides(&xy.bytes), yx.bytes);
    }

    #[test]
    fn p6_favor_is_a_projection((b, x, y) in (text(false, false), text(false, false), text(false, false))) {
        let plain = run(&MergeOptions::new(), &b, &x, &y);
        for (favor, o, t) in [(Favor::Ours, true, false), (Favor::Theirs, false, true), (Favor::Union, true, true)] {
            let f = run(&MergeOptions::new().favor(Some(favor)), &b, &x, &y);
            prop_assert_eq!(f.conflicts, 0);
            prop_assert_eq!(f.bytes, project(&plain.bytes, o, t), "{:?}", favor);
        }
    }

    #[test]
    fn p7_markers_are_well_formed((b, x, y) in triple(), s in style()) {
        let out = run(&MergeOptions::new().style(s), &b, &x, &y);
        let mut state = 0;
        let mut blocks = 0;
        for l in lines(&out.bytes) {
            let bare: &[u8] = l.strip_suffix(b"\n").unwrap_or(l);
            let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
            state = match (state, bare) {
                (0, b"<<<<<<< ours") => 1,
                (1, b"||||||| base") if s != ConflictStyle::Merge => 2,
                (1 | 2, b"=======") => 3,
                (3, b">>>>>>> theirs") => { blocks += 1; 0 }
                (st, _) => {
                    prop_assert!(!is_marker(l), "stray marker {:?}", String::from_utf8_lossy(l));
                    st
                }
            };
        }
        prop_assert_eq!(state, 0, "unterminated conflict");
        prop_assert_eq!(blocks, out.conflicts);
    }

    #[test]
    fn p8_crlf_inputs_give_crlf_output((b, x, y) in (text(true, false), text(true, false), text(true, false)), s in style()) {
        // git decides from the first base line: an empty base gives LF markers.
        prop_assume!(!b.is_empty());
        let out = run(&MergeOptions::new().style(s), &b, &x, &y);
        for l in lines(&out.bytes) {
            prop_assert!(l.ends_with(b"\r\n"), "LF-only line {:?}", String::from_utf8_lossy(l));
        }
    }

    #[test]
    fn p9_every_line_comes_from_an_input((b, x, y) in triple(), s in style()) {
        let out = run(&MergeOptions::new().style(s), &b, &x, &y);
        let mut known: Vec<Vec<u8>> = Vec::new();
        for f in [&b, &x, &y] {
            for l in lines(f) {
                known.push(l.to_vec());
                if !l.ends_with(b"\n") {
                    // a last line without newline gains one inside a conflict
                    known.push([l, b"\n"].concat());
                    known.push([l, b"\r\n"].concat());
                }
            }
        }
        for l in lines(&out.bytes) {
            prop_assert!(is_marker(l) || known.iter().any(|k| k == l), "line {:?} from nowhere", String::from_utf8_lossy(l));
        }
    }

    #[test]
    fn p10_nul_in_first_8000_bytes_is_refused((b, x, y) in triple(), pos in 0usize..3) {
        let mut inputs = [b, x, y];
        inputs[pos].insert(0, 0);
        prop_assert!(site_merge::merge(&inputs[0], &inputs[1], &inputs[2]).is_err());
    }

    #[test]
    fn p11_deterministic((b, x, y) in triple(), s in style()) {
        let o = MergeOptions::new().style(s);
        prop_assert_eq!(run(&o, &b, &x, &y), run(&o, &b, &x, &y));
    }
}

#[test]
fn p11_deterministic_on_the_parallel_path() {
    // Large enough to run the two diffs on two threads.
    let mut base = String::new();
    for i in 0..40_000 {
        base.push_str(&format!("line {} {}\n", i % 97, i % 13));
    }
    let ours = base.replace("line 5 1\n", "LINE five\n");
    let theirs = base
        .replace("line 5 2\n", "line five two\n")
        .replace("line 5 1\n", "other\n");
    let first = site_merge::merge(base.as_bytes(), ours.as_bytes(), theirs.as_bytes()).unwrap();
    assert!(first.conflicts > 0);
    for _ in 0..3 {
        let again = site_merge::merge(base.as_bytes(), ours.as_bytes(), theirs.as_bytes()).unwrap();
        assert!(again == first);
    }
}
