//! Differential tests against the real `git merge-file` (P12 of the spec).

use site_merge::{Algorithm, ConflictStyle, Favor, MergeOptions};

use crate::common::{Rng, Triple, git_merge_batch, show, triple};

fn cases(seed: u64, n: usize) -> Vec<Triple> {
    let mut r = Rng(seed);
    (0..n).map(|_| triple(&mut r)).collect()
}

fn count(default: usize) -> usize {
    std::env::var("SITE_MERGE_ORACLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Compares every case and variant; panics with the first mismatches.
fn check(seed: u64, n: usize, variants: &[(&str, MergeOptions)]) {
    if !testkit::git_available("the oracle tests") {
        return;
    }
    let cases = cases(seed, n);
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = variants.iter().map(|v| v.0).collect();
    let git = git_merge_batch(dir.path(), &cases, &args);
    let mut mismatches = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        for (v, (name, opts)) in variants.iter().enumerate() {
            let ours = opts.merge(&c.base, &c.ours, &c.theirs).unwrap();
            let (gout, grc) = &git[i][v];
            let rc = ours.conflicts.min(127) as i32;
            if ours.bytes != *gout || rc != *grc {
                mismatches.push(format!(
                    "case {i} [{name}] rc ours={rc} git={grc}\n--- base\n{}--- ours\n{}--- theirs\n{}--- got\n{}--- git\n{}",
                    show(&c.base),
                    show(&c.ours),
                    show(&c.theirs),
                    show(&ours.bytes),
                    show(gout)
                ));
            }
        }
    }
    let total = n * variants.len();
    eprintln!(
        "oracle: {total} merges compared with git, {} mismatches",
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {total} merges differ from git; first ones:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n=====\n")
    );
}

#[test]
fn random_triples_match_git_in_all_three_styles() {
    let o = MergeOptions::new();
    check(
        0x0005_1DE5,
        count(1000),
        &[
            ("", o.clone()),
            ("--diff3", o.clone().style(ConflictStyle::Diff3)),
            ("--zdiff3", o.style(ConflictStyle::ZealousDiff3)),
        ],
    );
}

#[test]
fn random_triples_match_git_with_other_algorithms_and_favors() {
    let o = MergeOptions::new();
    check(
        0xA160,
        count(1000) / 5,
        &[
            (
                "--diff-algorithm=histogram",
                o.clone().algorithm(Algorithm::Histogram),
            ),
            (
                "--diff-algorithm=histogram --zdiff3",
                o.clone()
                    .algorithm(Algorithm::Histogram)
                    .style(ConflictStyle::ZealousDiff3),
            ),
            (
                "--diff-algorithm=minimal",
                o.clone().algorithm(Algorithm::Minimal),
            ),
            ("--ours", o.clone().favor(Some(Favor::Ours))),
            ("--theirs", o.clone().favor(Some(Favor::Theirs))),
            ("--union", o.clone().favor(Some(Favor::Union))),
            (
                "--diff3 --marker-size=3",
                o.style(ConflictStyle::Diff3).marker_size(3),
            ),
        ],
    );
}

/// Inputs large enough for the two-thread paths (both diffs at once, and a
/// diff divided between threads) must still give git's bytes.
#[test]
fn large_inputs_on_the_parallel_paths_match_git() {
    let mut r = Rng(0xB16);
    let base: Vec<String> = (0..30_000)
        .map(|i| match r.below(10) {
            0 => "}\n".to_string(),
            1 => "\n".to_string(),
            _ => format!("key_{} = {}\n", i % 5000, r.below(50)),
        })
        .collect();
    // ours: blocks of the base in reverse order (long Myers searches)
    let mut ours: Vec<String> = Vec::new();
    for chunk in base.chunks(3000).rev() {
        ours.extend(chunk.iter().rev().cloned());
    }
    // theirs: scattered edits
    let theirs: Vec<String> = base
        .iter()
        .map(|l| {
            if r.below(50) == 0 {
                format!("edited {}", l)
            } else {
                l.clone()
            }
        })
        .collect();
    let case = Triple {
        base: base.concat().into_bytes(),
        ours: ours.concat().into_bytes(),
        theirs: theirs.concat().into_bytes(),
    };
    if !testkit::git_available("the oracle tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let variants = ["", "--diff3", "--diff-algorithm=histogram"];
    let git = git_merge_batch(dir.path(), std::slice::from_ref(&case), &variants);
    let opts = [
        MergeOptions::new(),
        MergeOptions::new().style(ConflictStyle::Diff3),
        MergeOptions::new().algorithm(Algorithm::Histogram),
    ];
    for (v, o) in opts.iter().enumerate() {
        let out = o.merge(&case.base, &case.ours, &case.theirs).unwrap();
        let (gout, grc) = &git[0][v];
        assert!(
            out.bytes == *gout,
            "variant {:?} differs from git",
            variants[v]
        );
        assert_eq!(
            out.conflicts.min(127) as i32,
            *grc,
            "variant {:?}",
            variants[v]
        );
    }
}
