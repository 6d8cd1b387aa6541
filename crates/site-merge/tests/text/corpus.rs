//! Every case of `corpus/merge-triples`: `NNN.git` is git's diff3-style output.

use site_merge::{ConflictStyle, MergeOptions};

use crate::common::show;

#[test]
fn every_corpus_triple_matches_git_diff3_output() {
    let dir = testkit::require_shared!("corpus/merge-triples");
    let summary = std::fs::read_to_string(dir.join("summary.tsv")).unwrap();
    let header: Vec<&str> = summary.lines().next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let (c_conflicts, c_rc) = (col("conflicts_git"), col("git_rc"));
    let opts = MergeOptions::new().style(ConflictStyle::Diff3);
    let mut checked = 0;
    let mut failures = Vec::new();
    for row in summary.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let id = cols[0];
        let read = |ext: &str| std::fs::read(dir.join(format!("{id}.{ext}"))).unwrap();
        let out = opts
            .merge(&read("base"), &read("ours"), &read("theirs"))
            .unwrap();
        let expected = read("git");
        let conflicts: usize = cols[c_conflicts].parse().unwrap();
        let rc: usize = cols[c_rc].parse().unwrap();
        if out.bytes != expected || out.conflicts != conflicts || out.conflicts.min(127) != rc {
            failures.push(format!(
                "{id}: conflicts {} (git {conflicts}, rc {rc})\n--- got\n{}",
                out.conflicts,
                show(&out.bytes)
            ));
        }
        checked += 1;
    }
    eprintln!(
        "corpus: {checked} cases checked, {} mismatches",
        failures.len()
    );
    assert_eq!(checked, 84, "the corpus has 84 cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
