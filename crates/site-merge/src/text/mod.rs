//! The text engine: a three-way line merge that gives the same bytes and the
//! same number of conflicts as `git merge-file`.

mod histogram;
mod intern;
mod merge;
mod patch;
mod xdiff;
#[cfg(test)]
mod xdiff_tests;

pub use patch::{diff_utf8_error, patch_merge};
pub use xdiff::Algorithm;

/// How conflicts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictStyle {
    /// `<<<<<<<` ours `=======` theirs `>>>>>>>` (git's default).
    #[default]
    Merge,
    /// Adds the base section after `|||||||` (`--diff3`); conflicts are not refined.
    Diff3,
    /// Like [`ConflictStyle::Diff3`], but lines that open or close both sides
    /// of a conflict are moved out of it (`--zdiff3`).
    ZealousDiff3,
}

/// Resolve every conflict automatically instead of writing markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Favor {
    /// Take our side (`--ours`).
    Ours,
    /// Take their side (`--theirs`).
    Theirs,
    /// Take our side followed by theirs (`--union`).
    Union,
}

/// How hard the merge tries to shrink conflicts (git's `XDL_MERGE_*` levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    /// Every overlap conflicts, even identical changes.
    Minimal,
    /// Identical changes on both sides are clean.
    Eager,
    /// Conflicts are re-diffed and shrunk; conflicts at most three lines apart are folded (`git merge`).
    Zealous,
    /// Like [`Level::Zealous`], and also folds conflicts separated only by lines
    /// without letters or digits (`git merge-file`, the default).
    #[default]
    ZealousAlnum,
}

/// Which input a [`MergeError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The common ancestor.
    Base,
    /// Our side.
    Ours,
    /// Their side.
    Theirs,
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Input::Base => "base",
            Input::Ours => "ours",
            Input::Theirs => "theirs",
        })
    }
}

/// Why a merge was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// The input has a NUL byte in its first 8000 bytes, as git tests it.
    #[error(
        "cannot merge binary files: the {0} input has a NUL byte in its first 8000 bytes; resolve it by picking one side"
    )]
    Binary(Input),
    /// The input is larger than git's limit for text merges (1023 MiB).
    #[error(
        "cannot merge the {input} input: {size} bytes is over the 1023 MiB limit of text merges"
    )]
    TooLarge {
        /// The input that is too large.
        input: Input,
        /// Its size in bytes.
        size: usize,
    },
    /// GNU diff treats the input as binary (a NUL byte in its first 4096
    /// bytes): `diff` only says "Binary files … differ", so the patch method
    /// has nothing to apply.
    #[error(
        "Binary files differ: the {0} input has a NUL byte in its first 4096 bytes, so GNU diff gives no hunks to apply"
    )]
    DiffBinary(Input),
}

/// The result of a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutput {
    /// The merged text, with conflict markers where the sides collide.
    pub bytes: Vec<u8>,
    /// The number of conflicts written (0 when clean).
    pub conflicts: usize,
}

impl MergeOutput {
    /// `true` when the merge has no conflict.
    pub fn is_clean(&self) -> bool {
        self.conflicts == 0
    }
}

/// Options of a three-way merge, built like
/// `MergeOptions::new().style(ConflictStyle::Diff3).marker_size(9)`.
/// The defaults are those of `git merge-file -L ours -L base -L theirs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOptions {
    pub(crate) style: ConflictStyle,
    pub(crate) favor: Option<Favor>,
    pub(crate) algorithm: Algorithm,
    pub(crate) level: Level,
    marker_size: usize,
    pub(crate) labels: [Option<Vec<u8>>; 3],
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            style: ConflictStyle::Merge,
            favor: None,
            algorithm: Algorithm::Myers,
            level: Level::ZealousAlnum,
            marker_size: DEFAULT_MARKER_SIZE,
            labels: [
                Some(b"ours".to_vec()),
                Some(b"base".to_vec()),
                Some(b"theirs".to_vec()),
            ],
        }
    }
}

/// The default conflict marker length.
pub const DEFAULT_MARKER_SIZE: usize = 7;

/// Inputs larger than this are refused, like git does.
const MAX_SIZE: usize = 1024 * 1024 * 1023;

/// git tests this many leading bytes for NUL.
const BINARY_PROBE: usize = 8000;

impl MergeOptions {
    /// The defaults: merge style, Myers, `git merge-file`'s level, 7-character
    /// markers labelled `ours`, `base` and `theirs`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the conflict style.
    pub fn style(mut self, style: ConflictStyle) -> Self {
        self.style = style;
        self
    }

    /// Resolves conflicts in favour of one side (or both), or not (`None`).
    pub fn favor(mut self, favor: Option<Favor>) -> Self {
        self.favor = favor;
        self
    }

    /// Sets the diff algorithm.
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Sets the merge level.
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Sets the length of the conflict markers (0 means the default, 7).
    pub fn marker_size(mut self, size: usize) -> Self {
        self.marker_size = size;
        self
    }

    /// Sets the labels written after `<<<<<<<`, `|||||||` and `>>>>>>>`;
    /// `None` writes the bare marker.
    pub fn labels(
        mut self,
        ours: Option<&[u8]>,
        base: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Self {
        self.labels = [
            ours.map(<[u8]>::to_vec),
            base.map(<[u8]>::to_vec),
            theirs.map(<[u8]>::to_vec),
        ];
        self
    }

    pub(crate) fn effective_marker_size(&self) -> usize {
        if self.marker_size == 0 {
            DEFAULT_MARKER_SIZE
        } else {
            self.marker_size
        }
    }

    /// Merges `ours` and `theirs`, both derived from `base`.
    pub fn merge(
        &self,
        base: &[u8],
        ours: &[u8],
        theirs: &[u8],
    ) -> Result<MergeOutput, MergeError> {
        let view = self.merge_view(base, ours, theirs)?;
        Ok(MergeOutput {
            bytes: view.to_vec(),
            conflicts: view.conflicts(),
        })
    }

    /// Merges like [`MergeOptions::merge`], but returns the result as a view
    /// of the inputs: [`MergeView::write_to`] writes it out piece by piece
    /// without building the merged text in memory first, which saves a copy
    /// and an output-sized allocation on large files.
    ///
    /// ```
    /// let options = site_merge::MergeOptions::new();
    /// let view = options
    ///     .merge_view(b"a\nb\nc\n", b"a\nb\nC\n", b"A\nb\nc\n")
    ///     .unwrap();
    /// let mut out = Vec::new();
    /// view.write_to(&mut out).unwrap();
    /// assert_eq!(out, b"A\nb\nC\n");
    /// assert!(view.is_clean());
    /// ```
    pub fn merge_view<'a>(
        &'a self,
        base: &'a [u8],
        ours: &'a [u8],
        theirs: &'a [u8],
    ) -> Result<MergeView<'a>, MergeError> {
        for (input, data) in [
            (Input::Ours, ours),
            (Input::Base, base),
            (Input::Theirs, theirs),
        ] {
            if data.len() > MAX_SIZE {
                return Err(MergeError::TooLarge {
                    input,
                    size: data.len(),
                });
            }
            if memchr::memchr(0, &data[..data.len().min(BINARY_PROBE)]).is_some() {
                return Err(MergeError::Binary(input));
            }
        }
        let whole = |bytes: &'a [u8]| MergeView(View::Whole(bytes));
        if ours == base {
            return Ok(whole(theirs));
        }
        if theirs == base || (ours == theirs && self.level >= Level::Eager) {
            return Ok(whole(ours));
        }
        let (files, nids) = intern::intern3(base, ours, theirs);
        let [fb, fo, ft] = &files;
        let count = |f: &intern::File<'_>| {
            let mut c = vec![0u32; nids];
            for &id in &f.ids {
                c[id as usize] += 1;
            }
            c
        };
        let algo = self.algorithm;
        let big = base.len() + ours.len() + theirs.len() > PARALLEL_THRESHOLD;
        let (h1, h2) = if algo == Algorithm::Histogram {
            xdiff::join(
                big,
                || xdiff::diff(&fb.ids, &fo.ids, None, algo),
                || xdiff::diff(&fb.ids, &ft.ids, None, algo),
            )
        } else {
            let cb = count(fb);
            xdiff::join(
                big,
                || xdiff::diff(&fb.ids, &fo.ids, Some((&cb, &count(fo))), algo),
                || xdiff::diff(&fb.ids, &ft.ids, Some((&cb, &count(ft))), algo),
            )
        };
        if h1.is_empty() {
            return Ok(whole(theirs));
        }
        if h2.is_empty() {
            return Ok(whole(ours));
        }
        let regions = merge::regions(&files, &h1, &h2, self);
        Ok(MergeView(View::Regions {
            conflicts: merge::conflicts(&regions, self),
            files: Box::new(files),
            regions,
            options: self,
        }))
    }
}

/// A merge result that refers to its inputs instead of holding the merged
/// text; made by [`MergeOptions::merge_view`].
pub struct MergeView<'a>(View<'a>);

enum View<'a> {
    /// The result is one input as it is.
    Whole(&'a [u8]),
    /// The result is pieced together from the inputs and conflict markers.
    Regions {
        files: Box<[intern::File<'a>; 3]>,
        regions: Vec<merge::Region>,
        conflicts: usize,
        options: &'a MergeOptions,
    },
}

impl std::fmt::Debug for MergeView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeView")
            .field("len", &self.len())
            .field("conflicts", &self.conflicts())
            .finish()
    }
}

impl MergeView<'_> {
    /// The number of conflicts written (0 when clean).
    pub fn conflicts(&self) -> usize {
        match &self.0 {
            View::Whole(_) => 0,
            View::Regions { conflicts, .. } => *conflicts,
        }
    }

    /// `true` when the merge has no conflict.
    pub fn is_clean(&self) -> bool {
        self.conflicts() == 0
    }

    /// Hands the merged text to `put` in pieces, in order.
    fn pieces(&self, mut put: impl FnMut(&[u8])) {
        match &self.0 {
            View::Whole(bytes) => put(bytes),
            View::Regions {
                files,
                regions,
                options,
                ..
            } => merge::emit(files, regions, options, put),
        }
    }

    /// The length of the merged text in bytes.
    pub fn len(&self) -> usize {
        let mut n = 0;
        self.pieces(|p| n += p.len());
        n
    }

    /// `true` when the merged text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The merged text.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.pieces(|p| out.extend_from_slice(p));
        out
    }

    /// Writes the merged text to `out` and flushes it. Small pieces are
    /// gathered in a buffer, large ones written straight through.
    pub fn write_to<W: std::io::Write>(&self, out: W) -> std::io::Result<()> {
        use std::io::Write;
        let mut w = std::io::BufWriter::with_capacity(WRITE_BUFFER, out);
        let mut result = Ok(());
        self.pieces(|p| {
            if result.is_ok() {
                result = w.write_all(p);
            }
        });
        result?;
        w.flush()
    }
}

/// Buffer size of [`MergeView::write_to`].
const WRITE_BUFFER: usize = 64 * 1024;

/// Inputs larger than this (all three together) diff on two threads.
const PARALLEL_THRESHOLD: usize = 256 * 1024;

/// Merges with the default options (those of `git merge-file`).
pub fn merge(base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<MergeOutput, MergeError> {
    MergeOptions::default().merge(base, ours, theirs)
}
