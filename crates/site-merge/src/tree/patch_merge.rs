//! Checkmk's own content merge (`diff -u old new | patch --merge site-file`)
//! as a [`TextMerger`], and [`MergeMethod`], the choice between it and the
//! git-exact [`GitMerge`].

use super::{GitMerge, MergeFailure, MergedText, TextMerger};
use crate::MergeError;

/// A [`TextMerger`] that merges exactly as Checkmk's `omd update` does:
/// [`crate::patch_merge`] (GNU diff's hunks placed the way GNU patch places
/// them with `--merge`: offsets, approximate placement, already-applied
/// changes dropped, bare `<<<<<<<` / `=======` / `>>>>>>>` markers).
///
/// Like Checkmk, which reads diff's output as UTF-8 text, it refuses a merge
/// whose diff is not UTF-8 (the planner then prints ` ! Cannot merge: …` and
/// resolves the file by the conflict policy). Binary files (a NUL byte in the
/// first 4096 bytes of the old or new default) give diff's "Binary files …
/// differ", which patch cannot apply: the merge fails with the site file
/// unchanged, and the conflict policy decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PatchMerge;

impl TextMerger for PatchMerge {
    fn merge(&self, base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<MergedText, MergeFailure> {
        match crate::patch_merge(base, ours, theirs) {
            Ok(out) => {
                if let Some((byte, at, reason)) = crate::diff_utf8_error(base, theirs) {
                    return Err(format!(
                        "'utf-8' codec can't decode byte 0x{byte:02x} in position {at}: {reason}"
                    )
                    .into());
                }
                Ok(MergedText {
                    text: out.bytes,
                    conflicts: out.conflicts,
                })
            }
            Err(MergeError::DiffBinary(_)) => Ok(MergedText {
                text: ours.to_vec(),
                conflicts: 1,
            }),
            Err(e) => Err(Box::new(e)),
        }
    }
}

/// Which content merge `omd update` uses for decision-table row 14.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMethod {
    /// Checkmk's method ([`PatchMerge`]): the same result as Checkmk, more
    /// lenient where the operator's edits sit next to upstream changes.
    #[default]
    Patch,
    /// The git-exact three-way merge ([`GitMerge`]): stricter, reports a
    /// conflict wherever both sides touch neighbouring lines.
    Git,
}

/// A merge method name other than `patch` or `git`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown merge method {0:?} (expected patch or git)")]
pub struct MergeMethodParseError(pub String);

impl std::str::FromStr for MergeMethod {
    type Err = MergeMethodParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "patch" => Ok(Self::Patch),
            "git" => Ok(Self::Git),
            other => Err(MergeMethodParseError(other.to_owned())),
        }
    }
}

impl TextMerger for MergeMethod {
    fn merge(&self, base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<MergedText, MergeFailure> {
        match self {
            Self::Patch => PatchMerge.merge(base, ours, theirs),
            Self::Git => GitMerge::new().merge(base, ours, theirs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_is_more_lenient_than_git_next_to_an_upstream_change() {
        // A one-line file rewritten upstream; the operator added a line after it
        // (corpus: GNU patch merges this cleanly, git reports a conflict).
        let (base, ours, theirs) = (b"only\n", b"only\nmine\n", b"changed\n");
        let p = MergeMethod::Patch.merge(base, ours, theirs).unwrap();
        let g = MergeMethod::Git.merge(base, ours, theirs).unwrap();
        assert_eq!(
            (p.text.as_slice(), p.conflicts),
            (&b"changed\nmine\n"[..], 0)
        );
        assert!(g.conflicts > 0);
    }

    #[test]
    fn non_utf8_diff_cannot_merge_and_binary_fails() {
        let err = PatchMerge
            .merge(b"a\n\xff\n", b"x\n", b"a\nb\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "'utf-8' codec can't decode byte 0xff in position 4: invalid start byte"
        );
        let m = PatchMerge.merge(b"a\0", b"mine", b"b\0").unwrap();
        assert_eq!((m.text.as_slice(), m.conflicts), (&b"mine"[..], 1));
    }

    #[test]
    fn method_names_parse() {
        assert_eq!("patch".parse(), Ok(MergeMethod::Patch));
        assert_eq!("git".parse(), Ok(MergeMethod::Git));
        assert!("diff3".parse::<MergeMethod>().is_err());
        assert_eq!(MergeMethod::default(), MergeMethod::Patch);
    }
}
