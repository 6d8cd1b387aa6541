//! The three-way merge over two diffs (base->ours, base->theirs), following
//! the observable behaviour of git's `xdl_merge`: hunk pairing, coalescing of
//! touching hunks, zealous refinement, folding of nearby conflicts, zdiff3
//! hoisting, favour modes and the conflict markup.

use super::intern::File;
use super::xdiff::{Algorithm, Hunk, diff};
use super::{ConflictStyle, Favor, Level, MergeOptions};

/// One merge region. `mode`: 0 conflict, 1 ours, 2 theirs, 3 union,
/// 4 both sides made the same change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    mode: u8,
    i0: isize,
    chg0: isize,
    i1: isize,
    chg1: isize,
    i2: isize,
    chg2: isize,
}

fn append(list: &mut Vec<Region>, r: Region) {
    if let Some(m) = list.last_mut()
        && (r.i1 <= m.i1 + m.chg1 || r.i2 <= m.i2 + m.chg2)
    {
        if r.mode != m.mode {
            m.mode = 0;
        }
        m.chg0 = r.i0 + r.chg0 - m.i0;
        m.chg1 = r.i1 + r.chg1 - m.i1;
        m.chg2 = r.i2 + r.chg2 - m.i2;
        return;
    }
    list.push(r);
}

fn ids_equal(a: &File<'_>, ia: isize, b: &File<'_>, ib: isize, n: isize) -> bool {
    let (ia, ib, n) = (ia as usize, ib as usize, n as usize);
    a.ids[ia..ia + n] == b.ids[ib..ib + n]
}

/// Pairs the hunks of both diffs into merge regions.
fn pair(h1: &[Hunk], h2: &[Hunk], files: &[File<'_>; 3], level: Level) -> Vec<Region> {
    let [base, ours, theirs] = files;
    let mut list = Vec::with_capacity(h1.len() + h2.len());
    let (mut p1, mut p2) = (0, 0);
    let h = |x: &Hunk| {
        (
            x.i1 as isize,
            x.chg1 as isize,
            x.i2 as isize,
            x.chg2 as isize,
        )
    };
    while p1 < h1.len() && p2 < h2.len() {
        let (a_i1, a_c1, a_i2, a_c2) = h(&h1[p1]);
        let (b_i1, b_c1, b_i2, b_c2) = h(&h2[p2]);
        if a_i1 + a_c1 < b_i1 {
            append(
                &mut list,
                Region {
                    mode: 1,
                    i0: a_i1,
                    chg0: a_c1,
                    i1: a_i2,
                    chg1: a_c2,
                    i2: b_i2 - b_i1 + a_i1,
                    chg2: a_c1,
                },
            );
            p1 += 1;
            continue;
        }
        if b_i1 + b_c1 < a_i1 {
            append(
                &mut list,
                Region {
                    mode: 2,
                    i0: b_i1,
                    chg0: b_c1,
                    i1: a_i2 - a_i1 + b_i1,
                    chg1: b_c1,
                    i2: b_i2,
                    chg2: b_c2,
                },
            );
            p2 += 1;
            continue;
        }
        if level == Level::Minimal
            || a_i1 != b_i1
            || a_c1 != b_c1
            || a_c2 != b_c2
            || !ids_equal(ours, a_i2, theirs, b_i2, a_c2)
        {
            let off = a_i1 - b_i1;
            let ffo = off + a_c1 - b_c1;
            let (mut i0, mut i1, mut i2) = (a_i1, a_i2, b_i2);
            if off > 0 {
                i0 -= off;
                i1 -= off;
            } else {
                i2 += off;
            }
            let mut chg0 = a_i1 + a_c1 - i0;
            let mut chg1 = a_i2 + a_c2 - i1;
            let mut chg2 = b_i2 + b_c2 - i2;
            if ffo < 0 {
                chg0 -= ffo;
                chg1 -= ffo;
            } else {
                chg2 += ffo;
            }
            append(
                &mut list,
                Region {
                    mode: 0,
                    i0,
                    chg0,
                    i1,
                    chg1,
                    i2,
                    chg2,
                },
            );
        }
        let e1 = a_i1 + a_c1;
        let e2 = b_i1 + b_c1;
        if e1 >= e2 {
            p2 += 1;
        }
        if e2 >= e1 {
            p1 += 1;
        }
    }
    let (nb, no, nt) = (
        base.len() as isize,
        ours.len() as isize,
        theirs.len() as isize,
    );
    for x in &h1[p1..] {
        let (i1, c1, i2, c2) = h(x);
        append(
            &mut list,
            Region {
                mode: 1,
                i0: i1,
                chg0: c1,
                i1: i2,
                chg1: c2,
                i2: i1 + nt - nb,
                chg2: c1,
            },
        );
    }
    for x in &h2[p2..] {
        let (i1, c1, i2, c2) = h(x);
        append(
            &mut list,
            Region {
                mode: 2,
                i0: i1,
                chg0: c1,
                i1: i1 + no - nb,
                chg1: c1,
                i2,
                chg2: c2,
            },
        );
    }
    list
}

/// Re-diffs the two sides of every conflict: identical sides resolve, the
/// rest shrinks to the differing sub-hunks.
fn refine(list: Vec<Region>, ours: &File<'_>, theirs: &File<'_>, algo: Algorithm) -> Vec<Region> {
    let mut out = Vec::with_capacity(list.len());
    for mut m in list {
        if m.mode != 0 || m.chg1 == 0 || m.chg2 == 0 {
            out.push(m);
            continue;
        }
        let (i1, i2) = (m.i1, m.i2);
        let a = &ours.ids[i1 as usize..(i1 + m.chg1) as usize];
        let b = &theirs.ids[i2 as usize..(i2 + m.chg2) as usize];
        let hunks = diff(a, b, None, algo);
        if hunks.is_empty() {
            m.mode = 4;
            out.push(m);
            continue;
        }
        for x in hunks {
            m.i1 = x.i1 as isize + i1;
            m.chg1 = x.chg1 as isize;
            m.i2 = x.i2 as isize + i2;
            m.chg2 = x.chg2 as isize;
            out.push(m);
        }
    }
    out
}

fn lines_contain_alnum(ours: &File<'_>, i: isize, n: isize) -> bool {
    (i..i + n).any(|k| ours.line(k as usize).iter().any(u8::is_ascii_alphanumeric))
}

/// Folds conflicts separated by at most three lines (or, with `alnum`, by
/// lines without any letter or digit) into one.
fn simplify(list: Vec<Region>, ours: &File<'_>, alnum: bool) -> Vec<Region> {
    let mut out: Vec<Region> = Vec::with_capacity(list.len());
    for n in list {
        if let Some(m) = out.last_mut() {
            let begin = m.i1 + m.chg1;
            let end = n.i1;
            let keep_apart = m.mode != 0
                || n.mode != 0
                || (end - begin > 3 && (!alnum || lines_contain_alnum(ours, begin, end - begin)));
            if !keep_apart {
                m.chg1 = n.i1 + n.chg1 - m.i1;
                m.chg2 = n.i2 + n.chg2 - m.i2;
                continue;
            }
        }
        out.push(n);
    }
    out
}

/// zdiff3: moves lines that open or close both sides of a conflict out of it.
///
/// A last line without a newline is never moved in front of the conflict:
/// the `<<<<<<<` marker would follow it on the same line (seen only at
/// [`Level::Minimal`], where identical sides still conflict; found by the
/// `merge` fuzz target, regression `tests/data/fuzz/merge-zdiff3-glued-marker`).
fn hoist_zdiff3(list: &mut [Region], ours: &File<'_>, theirs: &File<'_>) {
    for m in list.iter_mut().filter(|m| m.mode == 0) {
        while m.chg1 > 0
            && m.chg2 > 0
            && ours.ids[m.i1 as usize] == theirs.ids[m.i2 as usize]
            && ours.line(m.i1 as usize).ends_with(b"\n")
        {
            m.chg1 -= 1;
            m.chg2 -= 1;
            m.i1 += 1;
            m.i2 += 1;
        }
        while m.chg1 > 0
            && m.chg2 > 0
            && ours.ids[(m.i1 + m.chg1 - 1) as usize] == theirs.ids[(m.i2 + m.chg2 - 1) as usize]
        {
            m.chg1 -= 1;
            m.chg2 -= 1;
        }
    }
}

/// Line-ending style of line `i`: `Some(true)` CRLF, `Some(false)` LF,
/// `None` undecidable.
fn eol_crlf(f: &File<'_>, i: isize) -> Option<bool> {
    let n = f.len() as isize;
    let crlf = |line: &[u8]| line.len() > 1 && line[line.len() - 2] == b'\r';
    if i < n - 1 {
        return Some(crlf(f.line(i as usize)));
    }
    if n == 0 {
        return None;
    }
    let line = f.line(i as usize);
    if line.last() == Some(&b'\n') {
        return Some(crlf(line));
    }
    if i == 0 {
        return None;
    }
    Some(crlf(f.line(i as usize - 1)))
}

fn cr_needed(files: &[File<'_>; 3], m: &Region) -> bool {
    let [base, ours, theirs] = files;
    // An undecided answer counts as "go on asking", as in git.
    let mut r = eol_crlf(ours, if m.i1 > 0 { m.i1 - 1 } else { 0 });
    if r != Some(false) {
        r = eol_crlf(theirs, if m.i2 > 0 { m.i2 - 1 } else { 0 });
    }
    if r != Some(false) {
        r = eol_crlf(base, 0);
    }
    r == Some(true)
}

/// Writes the output as a sequence of byte pieces, remembering the last
/// byte written (a side's last line gets a newline only if the output does
/// not already end with one).
struct Emitter<F: FnMut(&[u8])> {
    put: F,
    last: Option<u8>,
}

impl<F: FnMut(&[u8])> Emitter<F> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(&b) = bytes.last() {
            self.last = Some(b);
            (self.put)(bytes);
        }
    }

    fn copy(&mut self, f: &File<'_>, i: isize, count: isize, needs_cr: bool, add_nl: bool) {
        if count < 1 {
            return;
        }
        self.put(f.range(i as usize, count as usize));
        if add_nl && self.last != Some(b'\n') {
            self.put(if needs_cr { b"\r\n" } else { b"\n" });
        }
    }

    fn marker(&mut self, c: u8, size: usize, label: Option<&[u8]>, needs_cr: bool) {
        const RUN: usize = 64;
        let run = [c; RUN];
        let mut left = size;
        while left > 0 {
            let n = left.min(RUN);
            self.put(&run[..n]);
            left -= n;
        }
        if let Some(label) = label {
            self.put(b" ");
            self.put(label);
        }
        self.put(if needs_cr { b"\r\n" } else { b"\n" });
    }
}

/// Runs the merge proper on interned files and their two diffs: the
/// regions of the result, conflicts already refined, folded or hoisted.
pub(crate) fn regions(
    files: &[File<'_>; 3],
    h1: &[Hunk],
    h2: &[Hunk],
    opts: &MergeOptions,
) -> Vec<Region> {
    let [_, ours, theirs] = files;
    let mut level = opts.level;
    if opts.style != ConflictStyle::Merge && level > Level::Eager {
        level = Level::Eager;
    }
    let mut list = pair(h1, h2, files, level);
    if level >= Level::Zealous {
        list = refine(list, ours, theirs, opts.algorithm);
        list = simplify(list, ours, level > Level::Zealous);
    } else if opts.style == ConflictStyle::ZealousDiff3 {
        hoist_zdiff3(&mut list, ours, theirs);
    }
    list
}

/// The number of conflicts the regions are written with.
pub(crate) fn conflicts(list: &[Region], opts: &MergeOptions) -> usize {
    if opts.favor.is_some() {
        return 0;
    }
    list.iter().filter(|m| m.mode == 0).count()
}

/// Writes the merged text as pieces handed to `put`, in order.
pub(crate) fn emit(
    files: &[File<'_>; 3],
    list: &[Region],
    opts: &MergeOptions,
    put: impl FnMut(&[u8]),
) {
    let [base, ours, theirs] = files;
    let favor = match opts.favor {
        None => 0,
        Some(Favor::Ours) => 1,
        Some(Favor::Theirs) => 2,
        Some(Favor::Union) => 3,
    };
    let size = opts.effective_marker_size();
    let [l_ours, l_base, l_theirs] = &opts.labels;
    let mut out = Emitter { put, last: None };
    let mut i: isize = 0;
    for m in list {
        let mode = if favor != 0 && m.mode == 0 {
            favor
        } else {
            m.mode
        };
        if mode == 0 {
            let cr = cr_needed(files, m);
            out.copy(ours, i, m.i1 - i, false, false);
            out.marker(b'<', size, l_ours.as_deref(), cr);
            out.copy(ours, m.i1, m.chg1, cr, true);
            if opts.style != ConflictStyle::Merge {
                out.marker(b'|', size, l_base.as_deref(), cr);
                out.copy(base, m.i0, m.chg0, cr, true);
            }
            out.marker(b'=', size, None, cr);
            out.copy(theirs, m.i2, m.chg2, cr, true);
            out.marker(b'>', size, l_theirs.as_deref(), cr);
        } else if mode & 3 != 0 {
            out.copy(ours, i, m.i1 - i, false, false);
            if mode & 1 != 0 {
                let cr = cr_needed(files, m);
                out.copy(ours, m.i1, m.chg1, cr, mode & 2 != 0);
            }
            if mode & 2 != 0 {
                out.copy(theirs, m.i2, m.chg2, false, false);
            }
        } else {
            continue;
        }
        i = m.i1 + m.chg1;
    }
    out.copy(ours, i, ours.len() as isize - i, false, false);
}
