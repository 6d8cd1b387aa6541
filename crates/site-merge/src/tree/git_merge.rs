//! The content merge of `omd update` (decision-table row 14): the tree
//! library's [`TextMerger`] implemented with the git-exact engine of
//! `site-merge`.
//!
//! Checkmk merges with `diff -u old new | patch --merge`, whose conflict
//! markers are `<<<<<<<` / `=======` / `>>>>>>>` **without labels and without
//! the base section** (site-update.md §3). [`GitMerge::new`] therefore uses
//! [`ConflictStyle::Merge`], no labels and the default marker size; the
//! hunks themselves are git's (`git merge-file`), which agrees with patch on
//! conflict/no conflict for 82 of the 84 real skeleton triples and gives
//! byte-identical output in the conflict-free cases.
//!
//! Binary inputs (a NUL byte in the first 8000 bytes) and inputs over git's
//! size limit are refused by the engine; the planner turns such a refusal
//! into ` ! Cannot merge: <reason>` and then resolves the file by the
//! conflict policy, as Checkmk does after its merge raised.
//!
//! [`super::PatchMerge`] is Checkmk's own method and the default of
//! `omd update` ([`super::MergeMethod`]); this one is the stricter choice.
//!
//! The `omd` binary and the tour use it; embedders may supply their own merger.

use super::{MergeFailure, MergedText, TextMerger};
use crate::{ConflictStyle, MergeOptions};

/// A [`TextMerger`] backed by `site_merge`'s git-exact three-way merge,
/// writing conflict markers the way `patch --merge` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitMerge {
    options: MergeOptions,
}

impl GitMerge {
    /// Merge style, no labels, 7-character markers: the markers of `patch --merge`.
    pub fn new() -> Self {
        Self {
            options: MergeOptions::new()
                .style(ConflictStyle::Merge)
                .labels(None, None, None),
        }
    }
}

impl Default for GitMerge {
    fn default() -> Self {
        Self::new()
    }
}

impl TextMerger for GitMerge {
    fn merge(&self, base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<MergedText, MergeFailure> {
        let out = self.options.merge(base, ours, theirs)?;
        Ok(MergedText {
            text: out.bytes,
            conflicts: out.conflicts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(base: &str, ours: &str, theirs: &str) -> (String, usize) {
        let m = GitMerge::new()
            .merge(base.as_bytes(), ours.as_bytes(), theirs.as_bytes())
            .unwrap();
        (String::from_utf8(m.text).unwrap(), m.conflicts)
    }

    #[test]
    fn changes_on_both_sides_in_different_places_merge_cleanly() {
        let base = "a\nb\nc\nd\ne\nf\ng\n";
        let ours = "a\nB\nc\nd\ne\nf\ng\n";
        let theirs = "a\nb\nc\nd\ne\nf\nG\n";
        assert_eq!(
            merge(base, ours, theirs),
            ("a\nB\nc\nd\ne\nf\nG\n".into(), 0)
        );
    }

    #[test]
    fn one_sided_changes_take_that_side() {
        assert_eq!(merge("x\n", "x\n", "y\n"), ("y\n".into(), 0));
        assert_eq!(merge("x\n", "y\n", "x\n"), ("y\n".into(), 0));
    }

    #[test]
    fn conflicts_have_bare_markers_without_base_section() {
        let (text, conflicts) = merge("a\nx\nb\n", "a\nours\nb\n", "a\ntheirs\nb\n");
        assert_eq!(conflicts, 1);
        assert_eq!(text, "a\n<<<<<<<\nours\n=======\ntheirs\n>>>>>>>\nb\n");
        assert!(!text.contains("|||||||"));
    }

    #[test]
    fn binary_inputs_are_refused() {
        let err = GitMerge::new()
            .merge(b"a\0", b"b\0", b"c\0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("binary"), "{err}");
    }
}
