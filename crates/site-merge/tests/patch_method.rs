//! The patch merge method against GNU `diff -u | patch --merge`, the way
//! Checkmk's `omd update` merges: on the merge corpus (`NNN.patch` is what
//! the real tools gave) and on generated triples run through the real tools.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use proptest::prelude::*;

/// Runs Checkmk's pipeline on the three texts; `None` when the tools are missing.
fn real_patch(base: &[u8], ours: &[u8], theirs: &[u8]) -> Option<(Vec<u8>, bool)> {
    let dir = tempfile::tempdir().ok()?;
    let d = dir.path();
    std::fs::write(d.join("old"), base).ok()?;
    std::fs::write(d.join("new"), theirs).ok()?;
    std::fs::write(d.join("site-file"), ours).ok()?;
    let diff = Command::new("diff")
        .current_dir(d)
        .args(["-u", "old", "new"])
        .output()
        .ok()?;
    let mut child = Command::new("patch")
        .current_dir(d)
        .args([
            "--force",
            "--backup",
            "--forward",
            "--silent",
            "--merge",
            "site-file",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take()?;
        stdin.write_all(&diff.stdout).ok()?;
    }
    let status = child.wait().ok()?;
    let out = std::fs::read(d.join("site-file")).ok()?;
    Some((out, !status.success()))
}

fn tools_present() -> bool {
    let ok = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    testkit::require(
        ok("diff") && ok("patch"),
        "GNU diff and patch",
        "apt-get install patch diffutils",
    )
}

fn check(base: &[u8], ours: &[u8], theirs: &[u8], expected: &[u8], failed: bool, name: &str) {
    let got = site_merge::patch_merge(base, ours, theirs).expect("text inputs");
    assert_eq!(
        String::from_utf8_lossy(&got.bytes),
        String::from_utf8_lossy(expected),
        "{name}: bytes differ from GNU patch"
    );
    assert_eq!(
        got.conflicts > 0,
        failed,
        "{name}: conflict status differs from GNU patch"
    );
}

#[test]
fn corpus_matches_gnu_patch() {
    let Some(dir) = testkit::shared_path("corpus/merge-triples") else {
        return;
    };
    let summary = std::fs::read_to_string(dir.join("summary.tsv")).expect("summary.tsv");
    let mut header = summary.lines().next().expect("header").split('\t');
    let rc_col = header
        .position(|c| c == "patch_rc")
        .expect("patch_rc column");
    let mut n = 0;
    for row in summary.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let id = cols[0];
        let read = |ext: &str| std::fs::read(dir.join(format!("{id}.{ext}"))).expect("corpus file");
        let failed = cols[rc_col] != "0";
        check(
            &read("base"),
            &read("ours"),
            &read("theirs"),
            &read("patch"),
            failed,
            id,
        );
        n += 1;
    }
    assert!(n >= 84, "only {n} triples in the corpus");
}

/// Same check with the real tools on the corpus (so the test also proves the
/// corpus's `.patch` files are what this machine's tools give).
#[test]
fn corpus_matches_this_machines_patch() {
    let Some(dir) = testkit::shared_path("corpus/merge-triples") else {
        return;
    };
    if !tools_present() {
        return;
    }
    for base in testkit::files_with_extension(&dir, "base") {
        let stem = base.with_extension("");
        let read = |ext: &str| std::fs::read(stem.with_extension(ext)).expect("corpus file");
        let (b, o, t) = (read("base"), read("ours"), read("theirs"));
        let (expected, failed) = real_patch(&b, &o, &t).expect("tools ran");
        check(&b, &o, &t, &expected, failed, &name(&stem));
    }
}

fn name(p: &Path) -> String {
    p.display().to_string()
}

/// Handwritten cases for patch's placement rules.
#[test]
fn placement_cases_match_gnu_patch() {
    if !tools_present() {
        return;
    }
    let cases: &[(&str, &str, &str)] = &[
        // offset: the operator added lines at the top
        (
            "a\nb\nc\nd\ne\nf\ng\nh\n",
            "x\ny\na\nb\nc\nd\ne\nf\ng\nh\n",
            "a\nb\nc\nd\nE\nf\ng\nh\n",
        ),
        // operator line just before the upstream change (context mismatch)
        (
            "a\nb\nc\nd\ne\nf\ng\n",
            "a\nb\nc\nmine\nd\ne\nf\ng\n",
            "a\nb\nc\nD\ne\nf\ng\n",
        ),
        // one-line file rewritten upstream, operator appended a line
        ("only\n", "only\nmine\n", "changed\n"),
        // already applied
        ("a\nb\nc\n", "a\nB\nc\n", "a\nB\nc\n"),
        // missing final newlines
        ("a\nb\nc", "a\nb\nc\nd", "a\nB\nc"),
        ("a\nb\nc\n", "a\nb\nc", "a\nb\nc\nd\n"),
        // operator deleted the changed line
        ("a\nb\nc\nd\ne\n", "a\nb\nd\ne\n", "a\nb\nC\nd\ne\n"),
        // empty site file
        ("a\nb\n", "", "a\nc\n"),
        ("", "x\n", "a\n"),
        // "would empty out the file, which is already empty": skipped, status 1
        ("line 0\n", "", ""),
        ("a\nb\n", "x\n", ""),
        // a hunk never lands on lines an earlier (approximately merged) hunk consumed
        (
            "0\n0\n0\n2\n3\n2\n3\n0\n0\n0\n",
            "0\n0\n0\n4\n3\n2\n3\n0\n0\n0\n",
            "0\n1\n0\n2\n3\n2\n3\n0\n0\n0",
        ),
    ];
    for (i, (b, o, t)) in cases.iter().enumerate() {
        let (expected, failed) =
            real_patch(b.as_bytes(), o.as_bytes(), t.as_bytes()).expect("tools ran");
        check(
            b.as_bytes(),
            o.as_bytes(),
            t.as_bytes(),
            &expected,
            failed,
            &format!("case {i}"),
        );
    }
}

/// A file of lines from a small alphabet, so that lines repeat and hunks
/// have several candidate places.
fn text_from(lines: &[u8], final_newline: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for &l in lines {
        out.extend_from_slice(format!("line {l}\n").as_bytes());
    }
    if !final_newline && out.last() == Some(&b'\n') {
        out.pop();
    }
    out
}

/// Applies edits (position, kind, value) to a line list.
fn edit(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(pos, kind, val) in edits {
        let at = if v.is_empty() { 0 } else { pos % (v.len() + 1) };
        match kind % 3 {
            0 => v.insert(at, val),
            1 if at < v.len() => {
                v.remove(at);
            }
            _ if at < v.len() => v[at] = val,
            _ => v.push(val),
        }
    }
    v
}

fn triple() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, Vec<u8>)> {
    let lines = prop::collection::vec(0u8..8, 0..30);
    let edits = || prop::collection::vec((0usize..40, 0u8..3, 0u8..12), 0..5);
    (lines, edits(), edits(), any::<[bool; 3]>()).prop_map(|(base, eo, et, nl)| {
        let ours = edit(&base, &eo);
        let theirs = edit(&base, &et);
        (
            text_from(&base, nl[0] || !base.len().is_multiple_of(3)),
            text_from(&ours, nl[1] || !ours.len().is_multiple_of(4)),
            text_from(&theirs, nl[2] || !theirs.len().is_multiple_of(5)),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn generated_triples_match_gnu_patch((base, ours, theirs) in triple()) {
        prop_assume!(base != theirs);
        if let Some((expected, failed)) = real_patch(&base, &ours, &theirs) {
            let got = site_merge::patch_merge(&base, &ours, &theirs).expect("text inputs");
            prop_assert_eq!(
                String::from_utf8_lossy(&got.bytes),
                String::from_utf8_lossy(&expected),
                "base {:?} ours {:?} theirs {:?}",
                String::from_utf8_lossy(&base),
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
            prop_assert_eq!(got.conflicts > 0, failed);
        } else {
            testkit::skip("GNU diff and patch are needed (apt-get install patch diffutils)");
        }
    }
}
