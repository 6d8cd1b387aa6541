//! Checkmk's merge method: `diff -u old new | patch --merge site-file`.
//!
//! The unified diff is computed the way GNU diff computes it by default
//! (identical ends trimmed to a horizon of 3 lines, lines without a match
//! discarded, Myers' O(ND) search with the cost cut-off, change boundaries
//! shifted, changes less than 7 lines apart joined into one hunk with 3 lines
//! of context). Its hunks are then applied to the operator's file the way
//! GNU patch 2.7 does with `--merge` (which implies no fuzz and no
//! reversed-patch detection, so `--forward` has no effect there): a hunk
//! whose old lines occur exactly (at the place the diff names, or at the
//! nearest offset) is applied; otherwise the best approximate place is
//! searched, the hunk's old lines are aligned with the file there, and every
//! change whose lines match is applied while the others are written as
//! conflicts (`<<<<<<<` file lines `=======` new lines `>>>>>>>`), or dropped
//! when the file already has the new lines ("already applied").
//!
//! Everything is computed on bytes; lines end at `\n`, a last line without
//! one stays without one (as diff's `\ No newline at end of file` and patch
//! treat it).

use super::{Input, MergeError, MergeOutput};

/// GNU diff's default number of context lines (`-u`).
const CONTEXT: usize = 3;

/// The bytes GNU diff reads to decide whether a file is binary (one block).
const BINARY_PROBE: usize = 4096;

/// Merges `base → theirs` into `ours` as `diff -u base theirs | patch --merge ours` does.
///
/// The result holds patch's output file and, as `conflicts`, the number of
/// regions written with conflict markers plus the hunks patch could not
/// apply at all (patch's exit status is 1 exactly when this is not 0).
/// Inputs GNU diff treats as binary (a NUL byte in the first 4096 bytes) are
/// refused with [`MergeError::DiffBinary`], as `diff` answers "Binary files
/// … differ" and patch then has nothing to apply.
pub fn patch_merge(base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<MergeOutput, MergeError> {
    for (input, text) in [(Input::Base, base), (Input::Theirs, theirs)] {
        if memchr::memchr(0, &text[..text.len().min(BINARY_PROBE)]).is_some() {
            return Err(MergeError::DiffBinary(input));
        }
    }
    let old = split_lines(base);
    let new = split_lines(theirs);
    let hunks = unified_hunks(&old, &new, base, theirs);
    if ours.is_empty() && theirs.is_empty() && !hunks.is_empty() {
        // patch: "The next patch would empty out the file …, which is already
        // empty!  Skipping patch." (its hunk is ignored, exit status 1).
        return Ok(MergeOutput {
            bytes: Vec::new(),
            conflicts: hunks.len(),
        });
    }
    Ok(apply_merge(&hunks, ours))
}

/// Where the body of `diff -u base theirs` first fails to decode as UTF-8:
/// the offending byte, its offset in the hunk lines as diff prints them
/// (headers not counted) and Python's reason, or `None` when it decodes.
///
/// Checkmk reads diff's output as text, so such a diff makes its merge raise.
pub fn diff_utf8_error(base: &[u8], theirs: &[u8]) -> Option<(u8, usize, &'static str)> {
    let old = split_lines(base);
    let new = split_lines(theirs);
    let mut body = Vec::new();
    for h in unified_hunks(&old, &new, base, theirs) {
        for (c, line) in h.lines {
            body.push(c);
            body.extend_from_slice(line);
        }
    }
    let err = std::str::from_utf8(&body).err()?;
    let at = err.valid_up_to();
    let reason = match err.error_len() {
        None => "unexpected end of data",
        Some(_) if (0x80..0xc2).contains(&body[at]) || body[at] > 0xf4 => "invalid start byte",
        Some(_) => "invalid continuation byte",
    };
    Some((body[at], at, reason))
}

/// The lines of `text`, each with its `\n` (the last one may lack it).
fn split_lines(text: &[u8]) -> Vec<&[u8]> {
    text.split_inclusive(|&b| b == b'\n').collect()
}

// ---------------------------------------------------------------------------
// GNU diff
// ---------------------------------------------------------------------------

/// One change of the edit script, in 0-based line numbers of the two files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    line0: usize,
    line1: usize,
    deleted: usize,
    inserted: usize,
}

/// One line of a hunk: `b' '`, `b'-'` or `b'+'` and the line's bytes.
type HunkLine<'a> = (u8, &'a [u8]);

/// A unified-diff hunk as patch reads it.
#[derive(Debug, Clone)]
struct Hunk<'a> {
    /// 1-based first old line (`@@ -first,…`; for an empty old range, the line after).
    first: usize,
    /// The lines in unified order.
    lines: Vec<HunkLine<'a>>,
}

/// Number of whole lines (counting a last line without newline) in `text[..end]`.
fn lines_before(text: &[u8], end: usize) -> usize {
    memchr::memchr_iter(b'\n', &text[..end]).count()
}

/// GNU diff's trimming of identical ends: the line range `[start, end0)` /
/// `[start, end1)` that the comparison looks at.
fn diff_window(a: &[u8], b: &[u8]) -> (usize, usize, usize) {
    // diff appends a newline to a file that lacks one and remembers it.
    let miss0 = !a.is_empty() && !a.ends_with(b"\n");
    let miss1 = !b.is_empty() && !b.ends_with(b"\n");
    let n0 = a.len() + usize::from(miss0);
    let n1 = b.len() + usize::from(miss1);
    let at0 = |i: usize| if i < a.len() { a[i] } else { b'\n' };
    let at1 = |i: usize| if i < b.len() { b[i] } else { b'\n' };
    let mut p = a
        .iter()
        .zip(b)
        .take_while(|(x, y)| x == y)
        .count()
        .min(n0.min(n1));
    // Compare the appended newlines too (up to the shorter buffer).
    while p < n0.min(n1) && at0(p) == at1(p) {
        p += 1;
    }
    // Don't count a missing newline as part of the prefix.
    if ((n0 - usize::from(miss0)) < p) != ((n1 - usize::from(miss1)) < p) {
        p -= 1;
    }
    // Back to the line start, then up to CONTEXT more lines.
    let mut hor = CONTEXT;
    while p != 0 {
        if at0(p - 1) == b'\n' {
            if hor == 0 {
                break;
            }
            hor -= 1;
        }
        p -= 1;
    }
    let prefix_end = p;
    // Identical suffix.
    let (mut p0, mut p1) = (n0, n1);
    if miss0 == miss1 {
        let end0 = p0;
        let mut beg0 = prefix_end + n0.saturating_sub(n1);
        while p0 != beg0 {
            p0 -= 1;
            p1 -= 1;
            if at0(p0) != at1(p1) {
                p0 += 1;
                p1 += 1;
                beg0 = p0;
                break;
            }
        }
        let at_line_start = (p0 == 0 || at0(p0 - 1) == b'\n') && (p1 == 0 || at1(p1 - 1) == b'\n');
        let mut i = CONTEXT + usize::from(!at_line_start);
        let start0 = beg0;
        while i > 0 && p0 != end0 {
            i -= 1;
            loop {
                let c = at0(p0);
                p0 += 1;
                if c == b'\n' {
                    break;
                }
            }
        }
        p1 += p0 - start0;
    }
    let start = lines_before(a, prefix_end.min(a.len()));
    let end0 = lines_before(a, p0.min(a.len())) + usize::from(miss0 && p0 == n0);
    let end1 = lines_before(b, p1.min(b.len())) + usize::from(miss1 && p1 == n1);
    (start, end0, end1)
}

/// GNU diff's edit script from `old` to `new` (default options).
fn gnu_diff(old: &[&[u8]], new: &[&[u8]], a: &[u8], b: &[u8]) -> Vec<Change> {
    if a == b {
        return Vec::new();
    }
    let (start, end0, end1) = diff_window(a, b);
    let win0 = &old[start..end0];
    let win1 = &new[start..end1];
    // Equivalence classes over both windows (class ids from 1).
    let mut classes: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    let mut equivs: [Vec<usize>; 2] = [
        Vec::with_capacity(win0.len()),
        Vec::with_capacity(win1.len()),
    ];
    for (f, win) in [win0, win1].into_iter().enumerate() {
        for line in win {
            let next = classes.len() + 1;
            let id = *classes.entry(line).or_insert(next);
            equivs[f].push(id);
        }
    }
    let nclasses = classes.len() + 1;
    let lens = [win0.len(), win1.len()];
    // changed[f][i + 1] for i in -1..=len (sentinels at both ends).
    let mut changed: [Vec<bool>; 2] = [vec![false; lens[0] + 2], vec![false; lens[1] + 2]];

    // discard_confusing_lines
    let mut counts = [vec![0usize; nclasses], vec![0usize; nclasses]];
    for f in 0..2 {
        for &e in &equivs[f] {
            counts[f][e] += 1;
        }
    }
    let mut discards: [Vec<u8>; 2] = [vec![0; lens[0]], vec![0; lens[1]]];
    for f in 0..2 {
        let end = lens[f];
        let mut many = 5usize;
        let mut tem = end / 64;
        loop {
            tem >>= 2;
            if tem == 0 {
                break;
            }
            many *= 2;
        }
        for i in 0..end {
            let nmatch = counts[1 - f][equivs[f][i]];
            if nmatch == 0 {
                discards[f][i] = 1;
            } else if nmatch > many {
                discards[f][i] = 2;
            }
        }
    }
    for f in 0..2 {
        let d = &mut discards[f];
        let end = lens[f];
        let mut i = 0;
        while i < end {
            if d[i] == 2 {
                d[i] = 0;
            } else if d[i] != 0 {
                let mut provisional = 0usize;
                let mut j = i;
                while j < end {
                    if d[j] == 0 {
                        break;
                    }
                    if d[j] == 2 {
                        provisional += 1;
                    }
                    j += 1;
                }
                while j > i && d[j - 1] == 2 {
                    j -= 1;
                    d[j] = 0;
                    provisional -= 1;
                }
                let length = j - i;
                if provisional * 4 > length {
                    while j > i {
                        j -= 1;
                        if d[j] == 2 {
                            d[j] = 0;
                        }
                    }
                } else {
                    let mut minimum = 1usize;
                    let mut tem = length >> 2;
                    loop {
                        tem >>= 2;
                        if tem == 0 {
                            break;
                        }
                        minimum <<= 1;
                    }
                    minimum += 1;
                    let mut consec = 0usize;
                    let mut j = 0usize;
                    while j < length {
                        if d[i + j] != 2 {
                            consec = 0;
                        } else {
                            consec += 1;
                            if minimum == consec {
                                j -= consec;
                            } else if minimum < consec {
                                d[i + j] = 0;
                            }
                        }
                        j += 1;
                    }
                    let mut consec = 0usize;
                    for j in 0..length {
                        if j >= 8 && d[i + j] == 1 {
                            break;
                        }
                        if d[i + j] == 2 {
                            consec = 0;
                            d[i + j] = 0;
                        } else if d[i + j] == 0 {
                            consec = 0;
                        } else {
                            consec += 1;
                        }
                        if consec == 3 {
                            break;
                        }
                    }
                    i += length - 1;
                    let mut consec = 0usize;
                    for j in 0..length {
                        if j >= 8 && d[i - j] == 1 {
                            break;
                        }
                        if d[i - j] == 2 {
                            consec = 0;
                            d[i - j] = 0;
                        } else if d[i - j] == 0 {
                            consec = 0;
                        } else {
                            consec += 1;
                        }
                        if consec == 3 {
                            break;
                        }
                    }
                }
            }
            i += 1;
        }
    }
    let mut undiscarded: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    let mut realindex: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for f in 0..2 {
        for i in 0..lens[f] {
            if discards[f][i] == 0 {
                undiscarded[f].push(equivs[f][i]);
                realindex[f].push(i);
            } else {
                changed[f][i + 1] = true;
            }
        }
    }
    // compareseq on the undiscarded lines.
    let (xv, yv) = (&undiscarded[0], &undiscarded[1]);
    let diags = xv.len() + yv.len() + 3;
    let mut too_expensive = 1usize;
    let mut d = diags;
    while d != 0 {
        too_expensive <<= 1;
        d >>= 2;
    }
    let too_expensive = too_expensive.max(256) as isize;
    let mut seq = Seq::new(
        |x, y| xv[x as usize] == yv[y as usize],
        0,
        xv.len() as isize,
        0,
        yv.len() as isize,
        false,
        too_expensive,
    );
    seq.compareseq(0, xv.len() as isize, 0, yv.len() as isize, false);
    for (x, &del) in seq.deleted.iter().enumerate() {
        if del {
            changed[0][realindex[0][x] + 1] = true;
        }
    }
    for (y, &ins) in seq.inserted.iter().enumerate() {
        if ins {
            changed[1][realindex[1][y] + 1] = true;
        }
    }
    shift_boundaries(&mut changed, &equivs);
    // build_script (forward order), shifted by the trimmed prefix.
    let mut script = Vec::new();
    let (mut i0, mut i1) = (0usize, 0usize);
    while i0 < lens[0] || i1 < lens[1] {
        if changed[0][i0 + 1] || changed[1][i1 + 1] {
            let (s0, s1) = (i0, i1);
            while changed[0][i0 + 1] {
                i0 += 1;
            }
            while changed[1][i1 + 1] {
                i1 += 1;
            }
            script.push(Change {
                line0: s0 + start,
                line1: s1 + start,
                deleted: i0 - s0,
                inserted: i1 - s1,
            });
        }
        i0 += 1;
        i1 += 1;
    }
    script
}

/// GNU diff's `shift_boundaries`; `changed[f]` has sentinels at index 0 and len + 1.
fn shift_boundaries(changed: &mut [Vec<bool>; 2], equivs: &[Vec<usize>; 2]) {
    for (f, eq) in equivs.iter().enumerate() {
        let (mine, other) = if f == 0 {
            let (a, b) = changed.split_at_mut(1);
            (&mut a[0], &b[0])
        } else {
            let (a, b) = changed.split_at_mut(1);
            (&mut b[0], &a[0])
        };
        // Index helpers: c(i) = mine[i + 1], o(j) = other[j + 1], i, j >= -1.
        let i_end = eq.len() as isize;
        let c = |v: &Vec<bool>, i: isize| v[(i + 1) as usize];
        let (mut i, mut j): (isize, isize) = (0, 0);
        loop {
            while i < i_end && !c(mine, i) {
                loop {
                    let was = c(other, j);
                    j += 1;
                    if !was {
                        break;
                    }
                }
                i += 1;
            }
            if i == i_end {
                break;
            }
            let mut start = i;
            loop {
                i += 1;
                if !c(mine, i) {
                    break;
                }
            }
            while c(other, j) {
                j += 1;
            }
            let mut corresponding;
            loop {
                let runlength = i - start;
                while start != 0 && eq[(start - 1) as usize] == eq[(i - 1) as usize] {
                    start -= 1;
                    mine[(start + 1) as usize] = true;
                    i -= 1;
                    mine[(i + 1) as usize] = false;
                    while c(mine, start - 1) {
                        start -= 1;
                    }
                    loop {
                        j -= 1;
                        if !c(other, j) {
                            break;
                        }
                    }
                }
                corresponding = if c(other, j - 1) { i } else { i_end };
                while i != i_end && eq[start as usize] == eq[i as usize] {
                    mine[(start + 1) as usize] = false;
                    start += 1;
                    mine[(i + 1) as usize] = true;
                    i += 1;
                    while c(mine, i) {
                        i += 1;
                    }
                    loop {
                        j += 1;
                        if !c(other, j) {
                            break;
                        }
                        corresponding = i;
                    }
                }
                if runlength == i - start {
                    break;
                }
            }
            while corresponding < i {
                start -= 1;
                mine[(start + 1) as usize] = true;
                i -= 1;
                mine[(i + 1) as usize] = false;
                loop {
                    j -= 1;
                    if !c(other, j) {
                        break;
                    }
                }
            }
        }
    }
}

/// The hunks of `diff -u` (3 lines of context) for the edit script.
fn unified_hunks<'a>(old: &[&'a [u8]], new: &[&'a [u8]], a: &[u8], b: &[u8]) -> Vec<Hunk<'a>> {
    let script = gnu_diff(old, new, a, b);
    let mut hunks = Vec::new();
    let mut k = 0;
    while k < script.len() {
        // find_hunk: join changes less than 2 * CONTEXT + 1 lines apart.
        let mut end = k;
        while end + 1 < script.len() {
            let top0 = script[end].line0 + script[end].deleted;
            if script[end + 1].line0 - top0 < 2 * CONTEXT + 1 {
                end += 1;
            } else {
                break;
            }
        }
        let first = script[k];
        let last = script[end];
        let first0 = first.line0.saturating_sub(CONTEXT);
        let last0 = (last.line0 + last.deleted + CONTEXT).min(old.len());
        let mut lines = Vec::new();
        let mut i = first0;
        for ch in &script[k..=end] {
            while i < ch.line0 {
                lines.push((b' ', old[i]));
                i += 1;
            }
            for line in &old[ch.line0..ch.line0 + ch.deleted] {
                lines.push((b'-', *line));
            }
            for line in &new[ch.line1..ch.line1 + ch.inserted] {
                lines.push((b'+', *line));
            }
            i = ch.line0 + ch.deleted;
        }
        // After the last change the rest of both files is the same.
        while i < last0 {
            lines.push((b' ', old[i]));
            i += 1;
        }
        hunks.push(Hunk {
            first: first0 + 1,
            lines,
        });
        k = end + 1;
    }
    hunks
}

// ---------------------------------------------------------------------------
// Myers' O(ND) search as in gnulib's diffseq.h
// ---------------------------------------------------------------------------

const SNAKE_LIMIT: isize = 20;

struct Seq<F: Fn(isize, isize) -> bool> {
    eq: F,
    fd: Vec<isize>,
    bd: Vec<isize>,
    /// Index of diagonal 0 in `fd`/`bd`.
    zero: isize,
    heuristic: bool,
    too_expensive: isize,
    xmin: isize,
    ymin: isize,
    deleted: Vec<bool>,
    inserted: Vec<bool>,
}

struct Part {
    xmid: isize,
    ymid: isize,
    lo_minimal: bool,
    hi_minimal: bool,
}

impl<F: Fn(isize, isize) -> bool> Seq<F> {
    fn new(
        eq: F,
        xmin: isize,
        xmax: isize,
        ymin: isize,
        ymax: isize,
        heuristic: bool,
        too_expensive: isize,
    ) -> Self {
        let lo = xmin - ymax - 2;
        let hi = xmax - ymin + 2;
        let size = (hi - lo + 1) as usize;
        Seq {
            eq,
            fd: vec![-1; size],
            bd: vec![isize::MAX; size],
            zero: -lo,
            heuristic,
            too_expensive,
            xmin,
            ymin,
            deleted: vec![false; (xmax - xmin).max(0) as usize],
            inserted: vec![false; (ymax - ymin).max(0) as usize],
        }
    }

    fn f(&self, d: isize) -> isize {
        self.fd[(d + self.zero) as usize]
    }
    fn set_f(&mut self, d: isize, v: isize) {
        self.fd[(d + self.zero) as usize] = v;
    }
    fn b(&self, d: isize) -> isize {
        self.bd[(d + self.zero) as usize]
    }
    fn set_b(&mut self, d: isize, v: isize) {
        self.bd[(d + self.zero) as usize] = v;
    }

    fn diag(
        &mut self,
        xoff: isize,
        xlim: isize,
        yoff: isize,
        ylim: isize,
        find_minimal: bool,
    ) -> Part {
        let dmin = xoff - ylim;
        let dmax = xlim - yoff;
        let fmid = xoff - yoff;
        let bmid = xlim - ylim;
        let (mut fmin, mut fmax) = (fmid, fmid);
        let (mut bmin, mut bmax) = (bmid, bmid);
        let odd = (fmid - bmid) & 1 != 0;
        self.set_f(fmid, xoff);
        self.set_b(bmid, xlim);
        let mut c: isize = 1;
        loop {
            let mut big_snake = false;
            if fmin > dmin {
                fmin -= 1;
                self.set_f(fmin - 1, -1);
            } else {
                fmin += 1;
            }
            if fmax < dmax {
                fmax += 1;
                self.set_f(fmax + 1, -1);
            } else {
                fmax -= 1;
            }
            let mut d = fmax;
            while d >= fmin {
                let tlo = self.f(d - 1);
                let thi = self.f(d + 1);
                let x0 = if tlo < thi { thi } else { tlo + 1 };
                let (mut x, mut y) = (x0, x0 - d);
                while x < xlim && y < ylim && (self.eq)(x, y) {
                    x += 1;
                    y += 1;
                }
                if x - x0 > SNAKE_LIMIT {
                    big_snake = true;
                }
                self.set_f(d, x);
                if odd && bmin <= d && d <= bmax && self.b(d) <= x {
                    return Part {
                        xmid: x,
                        ymid: y,
                        lo_minimal: true,
                        hi_minimal: true,
                    };
                }
                d -= 2;
            }
            if bmin > dmin {
                bmin -= 1;
                self.set_b(bmin - 1, isize::MAX);
            } else {
                bmin += 1;
            }
            if bmax < dmax {
                bmax += 1;
                self.set_b(bmax + 1, isize::MAX);
            } else {
                bmax -= 1;
            }
            let mut d = bmax;
            while d >= bmin {
                let tlo = self.b(d - 1);
                let thi = self.b(d + 1);
                let x0 = if tlo < thi { tlo } else { thi - 1 };
                let (mut x, mut y) = (x0, x0 - d);
                while xoff < x && yoff < y && (self.eq)(x - 1, y - 1) {
                    x -= 1;
                    y -= 1;
                }
                if x0 - x > SNAKE_LIMIT {
                    big_snake = true;
                }
                self.set_b(d, x);
                if !odd && fmin <= d && d <= fmax && x <= self.f(d) {
                    return Part {
                        xmid: x,
                        ymid: y,
                        lo_minimal: true,
                        hi_minimal: true,
                    };
                }
                d -= 2;
            }
            if !find_minimal {
                if 200 < c && big_snake && self.heuristic {
                    if let Some(p) =
                        self.heuristic_forward(xoff, xlim, yoff, ylim, fmin, fmax, fmid, c)
                    {
                        return p;
                    }
                    if let Some(p) =
                        self.heuristic_backward(xoff, xlim, yoff, ylim, bmin, bmax, bmid, c)
                    {
                        return p;
                    }
                }
                if c >= self.too_expensive {
                    let mut fxybest = -1;
                    let mut fxbest = 0;
                    let mut d = fmax;
                    while d >= fmin {
                        let mut x = self.f(d).min(xlim);
                        let mut y = x - d;
                        if ylim < y {
                            x = ylim + d;
                            y = ylim;
                        }
                        if fxybest < x + y {
                            fxybest = x + y;
                            fxbest = x;
                        }
                        d -= 2;
                    }
                    let mut bxybest = isize::MAX;
                    let mut bxbest = 0;
                    let mut d = bmax;
                    while d >= bmin {
                        let mut x = xoff.max(self.b(d));
                        let mut y = x - d;
                        if y < yoff {
                            x = yoff + d;
                            y = yoff;
                        }
                        if x + y < bxybest {
                            bxybest = x + y;
                            bxbest = x;
                        }
                        d -= 2;
                    }
                    return if (xlim + ylim) - bxybest < fxybest - (xoff + yoff) {
                        Part {
                            xmid: fxbest,
                            ymid: fxybest - fxbest,
                            lo_minimal: true,
                            hi_minimal: false,
                        }
                    } else {
                        Part {
                            xmid: bxbest,
                            ymid: bxybest - bxbest,
                            lo_minimal: false,
                            hi_minimal: true,
                        }
                    };
                }
            }
            c += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn heuristic_forward(
        &self,
        xoff: isize,
        xlim: isize,
        yoff: isize,
        ylim: isize,
        fmin: isize,
        fmax: isize,
        fmid: isize,
        c: isize,
    ) -> Option<Part> {
        let mut best = 0;
        let mut found = None;
        let mut d = fmax;
        while d >= fmin {
            let dd = d - fmid;
            let x = self.f(d);
            let y = x - d;
            let v = (x - xoff) * 2 - dd;
            if v > 12 * (c + dd.abs())
                && v > best
                && xoff + SNAKE_LIMIT <= x
                && x < xlim
                && yoff + SNAKE_LIMIT <= y
                && y < ylim
            {
                let mut k = 1;
                while (self.eq)(x - k, y - k) {
                    if k == SNAKE_LIMIT {
                        best = v;
                        found = Some((x, y));
                        break;
                    }
                    k += 1;
                }
            }
            d -= 2;
        }
        found.map(|(x, y)| Part {
            xmid: x,
            ymid: y,
            lo_minimal: true,
            hi_minimal: false,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn heuristic_backward(
        &self,
        xoff: isize,
        xlim: isize,
        yoff: isize,
        ylim: isize,
        bmin: isize,
        bmax: isize,
        bmid: isize,
        c: isize,
    ) -> Option<Part> {
        let mut best = 0;
        let mut found = None;
        let mut d = bmax;
        while d >= bmin {
            let dd = d - bmid;
            let x = self.b(d);
            let y = x - d;
            let v = (xlim - x) * 2 + dd;
            if v > 12 * (c + dd.abs())
                && v > best
                && xoff < x
                && x <= xlim - SNAKE_LIMIT
                && yoff < y
                && y <= ylim - SNAKE_LIMIT
            {
                let mut k = 0;
                while (self.eq)(x + k, y + k) {
                    if k == SNAKE_LIMIT - 1 {
                        best = v;
                        found = Some((x, y));
                        break;
                    }
                    k += 1;
                }
            }
            d -= 2;
        }
        found.map(|(x, y)| Part {
            xmid: x,
            ymid: y,
            lo_minimal: false,
            hi_minimal: true,
        })
    }

    fn compareseq(
        &mut self,
        mut xoff: isize,
        mut xlim: isize,
        mut yoff: isize,
        mut ylim: isize,
        find_minimal: bool,
    ) {
        while xoff < xlim && yoff < ylim && (self.eq)(xoff, yoff) {
            xoff += 1;
            yoff += 1;
        }
        while xoff < xlim && yoff < ylim && (self.eq)(xlim - 1, ylim - 1) {
            xlim -= 1;
            ylim -= 1;
        }
        if xoff == xlim {
            for y in yoff..ylim {
                self.inserted[(y - self.ymin) as usize] = true;
            }
        } else if yoff == ylim {
            for x in xoff..xlim {
                self.deleted[(x - self.xmin) as usize] = true;
            }
        } else {
            let part = self.diag(xoff, xlim, yoff, ylim, find_minimal);
            self.compareseq(xoff, part.xmid, yoff, part.ymid, part.lo_minimal);
            self.compareseq(part.xmid, xlim, part.ymid, ylim, part.hi_minimal);
        }
    }
}

// ---------------------------------------------------------------------------
// GNU patch --merge
// ---------------------------------------------------------------------------

/// The state of one `patch` run over one file.
struct Patcher<'a> {
    input: Vec<&'a [u8]>,
    out: Vec<u8>,
    after_newline: bool,
    last_frozen_line: isize,
    in_offset: isize,
    conflicts: usize,
}

/// A hunk in patch's layout: index 0 `*`, old lines `1..=ptrn`, `=`, new lines, `^`.
struct Pch<'a> {
    chars: Vec<u8>,
    lines: Vec<&'a [u8]>,
    first: isize,
    ptrn_lines: isize,
    prefix_context: isize,
    suffix_context: isize,
}

impl<'a> Pch<'a> {
    fn new(h: &Hunk<'a>) -> Self {
        let mut chars = vec![b'*'];
        let mut lines: Vec<&[u8]> = vec![b""];
        for &(c, l) in &h.lines {
            if c != b'+' {
                chars.push(c);
                lines.push(l);
            }
        }
        let ptrn_lines = (chars.len() - 1) as isize;
        chars.push(b'=');
        lines.push(b"");
        for &(c, l) in &h.lines {
            if c != b'-' {
                chars.push(c);
                lines.push(l);
            }
        }
        chars.push(b'^');
        lines.push(b"");
        let prefix_context = h.lines.iter().take_while(|(c, _)| *c == b' ').count() as isize;
        let suffix_context = h.lines.iter().rev().take_while(|(c, _)| *c == b' ').count() as isize;
        Pch {
            chars,
            lines,
            first: h.first as isize,
            ptrn_lines,
            prefix_context,
            suffix_context,
        }
    }
    fn ch(&self, i: isize) -> u8 {
        self.chars.get(i as usize).copied().unwrap_or(b'^')
    }
    fn line(&self, i: isize) -> &'a [u8] {
        self.lines.get(i as usize).copied().unwrap_or(b"")
    }
}

/// Applies `hunks` to `ours` the way `patch --merge` does.
fn apply_merge(hunks: &[Hunk<'_>], ours: &[u8]) -> MergeOutput {
    let mut p = Patcher {
        input: split_lines(ours),
        out: Vec::with_capacity(ours.len() + 64),
        after_newline: true,
        last_frozen_line: 0,
        in_offset: 0,
        conflicts: 0,
    };
    let mut failed = 0usize;
    for h in hunks {
        let pch = Pch::new(h);
        let where_ = p.locate_hunk(&pch);
        if !p.merge_hunk(&pch, where_) {
            failed += 1;
        }
    }
    if failed == hunks.len() && !hunks.is_empty() {
        // patch leaves the file alone when no hunk applied.
        return MergeOutput {
            bytes: ours.to_vec(),
            conflicts: failed,
        };
    }
    let n = p.input_lines();
    p.copy_till(n);
    MergeOutput {
        bytes: p.out,
        conflicts: p.conflicts + failed,
    }
}

impl<'a> Patcher<'a> {
    fn input_lines(&self) -> isize {
        self.input.len() as isize
    }

    /// `ifetch`: line `n` (1-based) of the input, empty beyond its ends.
    fn ifetch(&self, n: isize) -> &'a [u8] {
        if n >= 1 && n <= self.input_lines() {
            self.input[(n - 1) as usize]
        } else {
            b""
        }
    }

    fn matches(&self, pch: &Pch<'_>, old: isize, where_: isize) -> bool {
        let line = self.ifetch(where_);
        !line.is_empty() && line == pch.line(old)
    }

    /// Copies input lines up to `lastline`; false when hunks are misordered.
    fn copy_till(&mut self, lastline: isize) -> bool {
        if self.last_frozen_line > lastline {
            return false;
        }
        while self.last_frozen_line < lastline {
            self.last_frozen_line += 1;
            let s = self.ifetch(self.last_frozen_line);
            if !s.is_empty() {
                if !self.after_newline {
                    self.out.push(b'\n');
                }
                self.out.extend_from_slice(s);
                self.after_newline = s.ends_with(b"\n");
            }
        }
        true
    }

    fn write_line(&mut self, line: &[u8]) {
        self.out.extend_from_slice(line);
        self.after_newline = line.ends_with(b"\n");
    }

    fn marker(&mut self, marker: &[u8]) {
        if !self.after_newline {
            self.out.push(b'\n');
        }
        self.out.extend_from_slice(marker);
        self.after_newline = true;
    }

    fn patch_match(
        &self,
        pch: &Pch<'_>,
        base: isize,
        offset: isize,
        prefix_fuzz: isize,
        suffix_fuzz: isize,
    ) -> bool {
        let pat_lines = pch.ptrn_lines - suffix_fuzz;
        let mut iline = base + offset + prefix_fuzz;
        let mut pline = 1 + prefix_fuzz;
        while pline <= pat_lines {
            if self.ifetch(iline) != pch.line(pline) {
                return false;
            }
            pline += 1;
            iline += 1;
        }
        true
    }

    /// patch's `locate_hunk` with fuzz 0 (the only fuzz `--merge` uses).
    fn locate_hunk(&mut self, pch: &Pch<'_>) -> isize {
        let first_guess = pch.first + self.in_offset;
        let pat_lines = pch.ptrn_lines;
        let prefix_context = pch.prefix_context;
        let suffix_context = pch.suffix_context;
        let context = prefix_context.max(suffix_context);
        let mut prefix_fuzz = prefix_context - context;
        let suffix_fuzz = suffix_context - context;
        let max_where = self.input_lines() - (pat_lines - suffix_fuzz) + 1;
        // Patch 2.7.6 never places a hunk over lines an earlier hunk consumed.
        let min_where = self.last_frozen_line + 1;
        let max_pos_offset = max_where - first_guess;
        let mut max_neg_offset = first_guess - min_where;
        let max_offset = max_pos_offset.max(max_neg_offset);
        if pat_lines == 0 {
            return first_guess;
        }
        if first_guess <= max_neg_offset {
            max_neg_offset = first_guess - 1;
        }
        if prefix_fuzz < 0 && pch.first <= 1 {
            if suffix_fuzz < 0
                && (pat_lines != self.input_lines() || prefix_context < self.last_frozen_line)
            {
                return 0;
            }
            let offset = 1 - first_guess;
            if self.last_frozen_line <= prefix_context
                && offset <= max_pos_offset
                && self.patch_match(pch, first_guess, offset, 0, suffix_fuzz)
            {
                self.in_offset += offset;
                return first_guess + offset;
            }
            return 0;
        } else if prefix_fuzz < 0 {
            prefix_fuzz = 0;
        }
        if suffix_fuzz < 0 {
            let offset = first_guess - (self.input_lines() - pat_lines + 1);
            if offset <= max_neg_offset
                && self.patch_match(pch, first_guess, -offset, prefix_fuzz, 0)
            {
                self.in_offset -= offset;
                return first_guess - offset;
            }
            return 0;
        }
        let min_offset = if max_pos_offset < 0 {
            first_guess - max_where
        } else if max_neg_offset < 0 {
            first_guess - min_where
        } else {
            0
        };
        let mut offset = min_offset;
        while offset <= max_offset {
            if offset <= max_pos_offset
                && self.patch_match(pch, first_guess, offset, prefix_fuzz, suffix_fuzz)
            {
                self.in_offset += offset;
                return first_guess + offset;
            }
            if offset <= max_neg_offset
                && self.patch_match(pch, first_guess, -offset, prefix_fuzz, suffix_fuzz)
            {
                self.in_offset -= offset;
                return first_guess - offset;
            }
            offset += 1;
        }
        0
    }

    /// patch's `bestmatch`: changes needed to match the hunk's old lines
    /// `[xoff, xlim)` against a prefix of the input lines `[yoff, ylim)`.
    #[allow(clippy::too_many_arguments)]
    fn bestmatch(
        &self,
        pch: &Pch<'_>,
        mut xoff: isize,
        xlim: isize,
        mut yoff: isize,
        ylim: isize,
        mut min: isize,
        max: isize,
        py: &mut isize,
    ) -> isize {
        let eq = |x: isize, y: isize| self.matches(pch, x, y);
        let dmin = xoff - ylim;
        let dmax = xlim - yoff;
        let fmid = xoff - yoff;
        let (mut fmin, mut fmax) = (fmid, fmid);
        let mut ymax: isize = -1;
        // fd[d] lives at d - fmid + max + 1.
        let mut v = vec![-1isize; (2 * max + 3).max(3) as usize];
        let idx = |d: isize| (d - fmid + max + 1) as usize;
        let fmid_plus_2_min;
        if min != 0 {
            fmid_plus_2_min = fmid + 2 * min;
            min += yoff;
            if min > ylim {
                return max + 1;
            }
        } else {
            fmid_plus_2_min = 0;
        }
        while xoff < xlim && yoff < ylim && eq(xoff, yoff) {
            xoff += 1;
            yoff += 1;
        }
        let c;
        if xoff == xlim && yoff >= min && xoff + yoff >= fmid_plus_2_min {
            ymax = yoff;
            c = 0;
        } else {
            v[idx(fmid)] = xoff;
            let mut cc = 1;
            'outer: while cc <= max {
                if fmin > dmin {
                    fmin -= 1;
                    if let Some(slot) = v.get_mut(idx(fmin - 1)) {
                        *slot = -1;
                    }
                } else {
                    fmin += 1;
                }
                if fmax < dmax {
                    fmax += 1;
                    if let Some(slot) = v.get_mut(idx(fmax + 1)) {
                        *slot = -1;
                    }
                } else {
                    fmax -= 1;
                }
                let mut d = fmax;
                while d >= fmin {
                    let lo = v.get(idx(d - 1)).copied().unwrap_or(-1);
                    let hi = v.get(idx(d + 1)).copied().unwrap_or(-1);
                    let mut x = if lo < hi { hi } else { lo + 1 };
                    let mut y = x - d;
                    while x < xlim && y < ylim && eq(x, y) {
                        x += 1;
                        y += 1;
                    }
                    v[idx(d)] = x;
                    if x == xlim && y >= min && x + y - cc >= fmid_plus_2_min {
                        if ymax < y {
                            ymax = y;
                        }
                        if y == ylim {
                            break 'outer;
                        }
                    }
                    d -= 2;
                }
                if ymax != -1 {
                    break;
                }
                cc += 1;
            }
            c = cc;
        }
        *py = ymax;
        c
    }

    /// patch's `locate_merge`: the best approximate place for a hunk that does not apply.
    fn locate_merge(&self, pch: &Pch<'_>) -> (isize, isize) {
        let first_guess = pch.first + self.in_offset;
        let pat_lines = pch.ptrn_lines;
        let context_lines = (1..=pat_lines).filter(|&i| pch.ch(i) == b' ').count() as isize;
        let max_where = self.input_lines() - pat_lines + context_lines + 1;
        let min_where = self.last_frozen_line + 1;
        let mut max_pos_offset = max_where - first_guess;
        let mut max_neg_offset = first_guess - min_where;
        let max_offset = max_pos_offset.max(max_neg_offset);
        let mut where_ = first_guess;
        let mut max_matched = 0;
        if context_lines != 0 {
            let mut max = 2 * context_lines;
            let mut min = pat_lines - context_lines;
            let offset = pch.suffix_context - pch.prefix_context;
            if offset > 0 && pch.first <= 1 {
                max_pos_offset = 0;
            }
            let match_until_eof = offset < 0;
            if first_guess <= max_neg_offset {
                max_neg_offset = first_guess - 1;
            }
            let mut offset = 0;
            'search: while offset <= max_offset {
                for (ok, guess) in [
                    (offset <= max_pos_offset, first_guess + offset),
                    (0 < offset && offset <= max_neg_offset, first_guess - offset),
                ] {
                    if !ok {
                        continue;
                    }
                    let mut last = 0;
                    let want = if match_until_eof {
                        self.input_lines() - guess + 1
                    } else {
                        min
                    };
                    let changes = self.bestmatch(
                        pch,
                        1,
                        pat_lines + 1,
                        guess,
                        self.input_lines() + 1,
                        want,
                        max,
                        &mut last,
                    );
                    if changes <= max && max_matched < last - guess {
                        max_matched = last - guess;
                        where_ = guess;
                        if changes == 0 {
                            break 'search;
                        }
                        min = last - guess;
                        max = changes - 1;
                    }
                }
                offset += 1;
            }
        }
        if where_ < min_where {
            where_ = min_where;
        }
        (where_, max_matched)
    }

    /// patch's `merge_hunk`; false when the hunk had to be rejected.
    fn merge_hunk(&mut self, pch: &Pch<'_>, found: isize) -> bool {
        let mut old: isize = 1;
        let mut firstold = pch.ptrn_lines;
        let mut new = firstold + 1;
        while pch.ch(new) == b'=' || pch.ch(new) == b'\n' {
            new += 1;
        }
        let (mut where_, matched) = if found != 0 {
            (found, pch.ptrn_lines)
        } else {
            self.locate_merge(pch)
        };
        let mut in_ = firstold + 2;
        let mut oldin = vec![b' '; (in_ + matched + 1) as usize];
        oldin[0] = b'*';
        oldin[(in_ - 1) as usize] = b'=';
        oldin[(in_ + matched) as usize] = b'^';
        {
            let in0 = in_;
            let wh = where_;
            let mut seq = Seq::new(
                |x, y| self.matches(pch, x, y),
                1,
                in0 - 1,
                wh,
                wh + matched,
                true,
                isize::MAX,
            );
            seq.compareseq(1, in0 - 1, wh, wh + matched, false);
            for (k, &d) in seq.deleted.iter().enumerate() {
                if d {
                    oldin[1 + k] = b'-';
                }
            }
            for (k, &ins) in seq.inserted.iter().enumerate() {
                if ins {
                    oldin[(in0 + k as isize) as usize] = b'+';
                }
            }
        }
        let oi = |v: &Vec<u8>, i: isize| v.get(i as usize).copied().unwrap_or(b'^');
        if self.last_frozen_line < where_ - 1 && !self.copy_till(where_ - 1) {
            return false;
        }
        loop {
            firstold = old;
            let mut firstnew = new;
            let mut firstin = in_;
            let conflict;
            if pch.ch(old) == b'-' || pch.ch(new) == b'+' {
                let mut clash = false;
                while pch.ch(old) == b'-' {
                    if oi(&oldin, old) == b'-' || oi(&oldin, in_) == b'+' {
                        clash = true;
                        break;
                    } else if oi(&oldin, old) == b' ' {
                        in_ += 1;
                    }
                    old += 1;
                }
                if !clash && (oi(&oldin, old) == b'-' || oi(&oldin, in_) == b'+') {
                    clash = true;
                }
                if clash {
                    conflict = true;
                } else {
                    while pch.ch(new) == b'+' {
                        new += 1;
                    }
                    self.last_frozen_line += old - firstold;
                    where_ += old - firstold;
                    while firstnew < new {
                        let l = pch.line(firstnew);
                        self.write_line(l);
                        firstnew += 1;
                    }
                    conflict = false;
                }
            } else if pch.ch(old) == b' ' {
                conflict = if oi(&oldin, old) == b'-' {
                    let mut clash = false;
                    while pch.ch(old) == b' ' {
                        if oi(&oldin, old) != b'-' {
                            break;
                        }
                        if pch.ch(new) == b'+' {
                            clash = true;
                            break;
                        }
                        old += 1;
                        new += 1;
                    }
                    clash || pch.ch(old) == b'-' || pch.ch(new) == b'+'
                } else if oi(&oldin, in_) == b'+' {
                    while oi(&oldin, in_) == b'+' {
                        in_ += 1;
                    }
                    where_ += in_ - firstin;
                    if !self.copy_till(where_ - 1) {
                        return false;
                    }
                    false
                } else {
                    // oldin[old] == ' '
                    while pch.ch(old) == b' '
                        && oi(&oldin, old) == b' '
                        && pch.ch(new) == b' '
                        && oi(&oldin, in_) == b' '
                    {
                        old += 1;
                        new += 1;
                        in_ += 1;
                    }
                    where_ += in_ - firstin;
                    if !self.copy_till(where_ - 1) {
                        return false;
                    }
                    false
                };
            } else {
                break;
            }
            if !conflict {
                continue;
            }
            // Find the end of the conflict.
            loop {
                if pch.ch(old) == b'-' {
                    while oi(&oldin, in_) == b'+' {
                        in_ += 1;
                    }
                    if oi(&oldin, old) == b' ' {
                        in_ += 1;
                    }
                    old += 1;
                } else if oi(&oldin, old) == b'-' {
                    while pch.ch(new) == b'+' {
                        new += 1;
                    }
                    if pch.ch(old) == b' ' {
                        new += 1;
                    }
                    old += 1;
                } else if pch.ch(new) == b'+' {
                    while pch.ch(new) == b'+' {
                        new += 1;
                    }
                } else if oi(&oldin, in_) == b'+' {
                    while oi(&oldin, in_) == b'+' {
                        in_ += 1;
                    }
                } else {
                    break;
                }
            }
            // Common prefix lines.
            let mut lastwhere = where_;
            while firstin < in_ && firstnew < new && self.matches(pch, firstnew, lastwhere) {
                firstin += 1;
                firstnew += 1;
                lastwhere += 1;
            }
            let already_applied = firstin == in_ && firstnew == new;
            if where_ != lastwhere {
                where_ = lastwhere;
                if !self.copy_till(where_ - 1) {
                    return false;
                }
            }
            if !already_applied {
                let mut common_suffix = 0;
                let mut lastwhere = where_ + (in_ - firstin);
                while firstin < in_ && firstnew < new && self.matches(pch, new - 1, lastwhere - 1) {
                    in_ -= 1;
                    new -= 1;
                    lastwhere -= 1;
                    common_suffix += 1;
                }
                self.marker(b"<<<<<<<\n");
                if firstin < in_ {
                    where_ += in_ - firstin;
                    if !self.copy_till(where_ - 1) {
                        return false;
                    }
                }
                self.marker(b"=======\n");
                while firstnew < new {
                    let l = pch.line(firstnew);
                    self.write_line(l);
                    firstnew += 1;
                }
                self.marker(b">>>>>>>\n");
                if common_suffix != 0 {
                    where_ += common_suffix;
                    if !self.copy_till(where_ - 1) {
                        return false;
                    }
                    in_ += common_suffix;
                    new += common_suffix;
                }
                self.conflicts += 1;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(base: &str, ours: &str, theirs: &str) -> (String, usize) {
        let out = patch_merge(base.as_bytes(), ours.as_bytes(), theirs.as_bytes()).unwrap();
        (String::from_utf8(out.bytes).unwrap(), out.conflicts)
    }

    #[test]
    fn a_clean_change_applies() {
        let base = "a\nb\nc\nd\ne\nf\ng\n";
        let ours = "a\nB\nc\nd\ne\nf\ng\n";
        let theirs = "a\nb\nc\nd\ne\nf\nG\n";
        assert_eq!(
            merge(base, ours, theirs),
            ("a\nB\nc\nd\ne\nf\nG\n".into(), 0)
        );
    }

    #[test]
    fn a_clash_writes_bare_markers() {
        let (text, conflicts) = merge("a\nx\nb\n", "a\nours\nb\n", "a\ntheirs\nb\n");
        assert_eq!(conflicts, 1);
        assert_eq!(text, "a\n<<<<<<<\nours\n=======\ntheirs\n>>>>>>>\nb\n");
    }

    #[test]
    fn binary_inputs_are_refused() {
        assert_eq!(
            patch_merge(b"a\0", b"b", b"c"),
            Err(MergeError::DiffBinary(Input::Base))
        );
    }
}
