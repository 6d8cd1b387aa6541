//! Line splitting and interning: every distinct line (bytes including its
//! `\n`) of the three inputs gets one dense `u32` id, shared by all files.
//!
//! The base is split and hashed in one pass: each line is read in 8-byte
//! words from its start, and the word holding the newline ends both the
//! line and its hash. The sides mostly repeat the base, so they are compared
//! with it byte-wise in bulk: a run of equal bytes that covers whole base
//! lines reuses those lines' offsets and ids without splitting or hashing;
//! only the lines that differ are hashed and looked up.

/// One input split into lines. Line `i` is `data[starts[i]..starts[i + 1]]`.
pub(crate) struct File<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) starts: Vec<u32>,
    pub(crate) ids: Vec<u32>,
}

impl<'a> File<'a> {
    /// Number of lines.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The bytes of line `i` (including its newline, if any).
    pub(crate) fn line(&self, i: usize) -> &'a [u8] {
        let data: &'a [u8] = self.data;
        &data[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    /// The bytes of lines `i..i + count`.
    pub(crate) fn range(&self, i: usize, count: usize) -> &'a [u8] {
        let data: &'a [u8] = self.data;
        &data[self.starts[i] as usize..self.starts[i + count] as usize]
    }
}

/// A guess of the number of lines of `len` bytes, used to reserve vectors
/// once. Reserved but unused capacity of a large vector is never touched,
/// so the guess errs on the high side (and is capped: it is only a hint).
fn lines_hint(len: usize) -> usize {
    (len / 8).min(1 << 24) + 2
}

const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const NEWLINES: u64 = 0x0A0A_0A0A_0A0A_0A0A;

/// The high bit of every byte of `word` that is `\n`, and no other bit
/// (exact: no carry crosses a byte).
#[inline]
fn newline_mask(word: u64) -> u64 {
    let x = word ^ NEWLINES;
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The little-endian word of the 8 bytes at `at`.
#[inline]
fn word_at(data: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The little-endian word of `bytes` (at most 8), zero-padded.
#[inline]
fn padded_word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// Length of the common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 32 <= n {
        let diff = (0..4).fold(0u64, |acc, k| {
            acc | (word_at(a, i + 8 * k) ^ word_at(b, i + 8 * k))
        });
        if diff != 0 {
            break;
        }
        i += 32;
    }
    while i + 8 <= n {
        let x = word_at(a, i) ^ word_at(b, i);
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xD6E8_FEB8_6659_FD93;

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// A fast, deterministic hash of a line: its 8-byte words from the line's
/// start, the last one zero-padded, then its length. [`split_base`]
/// computes the same value while it looks for the newline.
#[inline]
fn hash_line(b: &[u8]) -> u64 {
    let mut h = K1;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        h = fold_mul(h ^ padded_word(c), K2);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        h = fold_mul(h ^ padded_word(rest), K1);
    }
    fold_mul(h ^ b.len() as u64, K2)
}

/// Marks a representative that is a side's line rather than a base line.
const SIDE_LINE: u32 = 1 << 31;
const TAG: u64 = 0xFFFF_FFFF_0000_0000;

/// Open-addressing table of distinct lines, keyed by their bytes.
struct Table<'a> {
    /// Each slot: `(hash high 32 bits) << 32 | (id + 1)`; 0 = empty.
    slots: Vec<u64>,
    mask: usize,
    /// The line each id was first seen as: a base line number, or
    /// `SIDE_LINE | i` for `side_lines[i]`.
    reps: Vec<u32>,
    side_lines: Vec<&'a [u8]>,
    base: &'a [u8],
}

impl<'a> Table<'a> {
    /// A table for about `lines` distinct lines.
    fn new(base: &'a [u8], lines: usize) -> Self {
        let cap = (lines.max(8) * 3 / 2).next_power_of_two();
        Table {
            slots: vec![0; cap],
            mask: cap - 1,
            reps: Vec::with_capacity(lines),
            side_lines: Vec::new(),
            base,
        }
    }

    /// The bytes of line `id`; `starts` are the base's line starts (those of
    /// every base line seen so far).
    #[inline]
    fn bytes(&self, id: usize, starts: &[u32]) -> &'a [u8] {
        let rep = self.reps[id];
        if rep & SIDE_LINE != 0 {
            self.side_lines[(rep & !SIDE_LINE) as usize]
        } else {
            let base: &'a [u8] = self.base;
            let i = rep as usize;
            &base[starts[i] as usize..starts[i + 1] as usize]
        }
    }

    /// The id of `line` (hash `h`), or the empty slot where it would go.
    #[inline]
    fn find(&self, line: &[u8], h: u64, starts: &[u32]) -> Result<u32, usize> {
        let tag = h & TAG;
        let mut p = (h as usize) & self.mask;
        loop {
            let s = self.slots[p];
            if s == 0 {
                return Err(p);
            }
            if s & TAG == tag {
                let id = (s as u32).wrapping_sub(1);
                if self.bytes(id as usize, starts) == line {
                    return Ok(id);
                }
            }
            p = (p + 1) & self.mask;
        }
    }

    /// Adds a line with hash `h` and representative `rep`, found missing at
    /// `slot`, and returns its id.
    #[inline]
    fn insert(&mut self, slot: usize, h: u64, rep: u32, starts: &[u32]) -> u32 {
        let id = self.reps.len();
        self.reps.push(rep);
        self.slots[slot] = (h & TAG) | (id as u64 + 1);
        if self.reps.len() * 4 > self.slots.len() * 3 {
            self.grow(starts);
        }
        id as u32
    }

    /// Doubles the table. `starts` must cover every line in it.
    fn grow(&mut self, starts: &[u32]) {
        let cap = self.slots.len() * 2;
        let mut slots = vec![0u64; cap];
        let mask = cap - 1;
        for &s in &self.slots {
            if s != 0 {
                let id = (s & 0xFFFF_FFFF) as usize - 1;
                let h = hash_line(self.bytes(id, starts));
                let mut p = (h as usize) & mask;
                while slots[p] != 0 {
                    p = (p + 1) & mask;
                }
                slots[p] = s;
            }
        }
        self.slots = slots;
        self.mask = mask;
    }

    /// The id of a side's line, added if new.
    fn intern_side(&mut self, line: &'a [u8], base_starts: &[u32]) -> u32 {
        let h = hash_line(line);
        match self.find(line, h, base_starts) {
            Ok(id) => id,
            Err(slot) => {
                let rep = SIDE_LINE | self.side_lines.len() as u32;
                self.side_lines.push(line);
                self.insert(slot, h, rep, base_starts)
            }
        }
    }
}

/// Splits the base into lines and interns each, in one pass.
fn split_base<'a>(t: &mut Table<'a>) -> File<'a> {
    let data: &'a [u8] = t.base;
    let n = data.len();
    let mut starts: Vec<u32> = Vec::with_capacity(lines_hint(n));
    let mut ids: Vec<u32> = Vec::with_capacity(lines_hint(n));
    starts.push(0);
    let mut s = 0;
    while s < n {
        // Hash the line word by word until the word with its newline.
        let mut h = K1;
        let mut p = s;
        let end = loop {
            if p + 8 <= n {
                let w = word_at(data, p);
                let m = newline_mask(w);
                if m == 0 {
                    h = fold_mul(h ^ w, K2);
                    p += 8;
                    continue;
                }
                let k = (m.trailing_zeros() / 8) as usize;
                if k == 7 {
                    h = fold_mul(h ^ w, K2);
                } else {
                    h = fold_mul(h ^ (w & ((1u64 << (8 * (k + 1))) - 1)), K1);
                }
                break p + k + 1;
            }
            let rest = &data[p..];
            let k = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            if k > 0 {
                h = fold_mul(h ^ padded_word(&rest[..k]), K1);
            }
            break p + k;
        };
        let line = &data[s..end];
        let h = fold_mul(h ^ line.len() as u64, K2);
        // The line's end goes in first: an insert may grow the table, and
        // rehashing reads every line in it, this one included.
        starts.push(end as u32);
        let id = match t.find(line, h, &starts) {
            Ok(id) => id,
            Err(slot) => t.insert(slot, h, ids.len() as u32, &starts),
        };
        ids.push(id);
        s = end;
    }
    File { data, starts, ids }
}

/// Interns a side. It is walked with a cursor into the base: the lines from
/// the cursor on that the side repeats byte for byte take the base's ids;
/// a line that differs is looked up, and when the base has it, the cursor
/// moves after it. The cursor only decides how fast lines are found, never
/// which id a line gets.
fn split_side<'a>(data: &'a [u8], t: &mut Table<'a>, base: &File<'a>) -> File<'a> {
    let mut starts: Vec<u32> = Vec::with_capacity(lines_hint(data.len()));
    let mut ids: Vec<u32> = Vec::with_capacity(lines_hint(data.len()));
    let (bdata, bstarts, bids) = (base.data, &base.starts, &base.ids);
    let nb = base.len();
    let mut cursor = 0usize;
    let mut at = 0usize;
    while at < data.len() {
        if cursor < nb {
            let from = bstarts[cursor] as usize;
            let same = common_prefix(&data[at..], &bdata[from..]);
            // Base lines cursor..end lie wholly inside the equal run. The
            // base's last line may lack its newline: then it is the same
            // line only if the side ends there too.
            let covered = |s: &u32| *s as usize - from <= same;
            let mut end = cursor;
            if covered(&bstarts[cursor + 1]) {
                // Gallop, then search the last step.
                let mut step = 1;
                while end + 2 * step <= nb && covered(&bstarts[end + 2 * step]) {
                    end += step;
                    step *= 2;
                }
                let hi = (end + 2 * step).min(nb);
                end = end + 1 + bstarts[end + 2..=hi].partition_point(covered);
            }
            if end == nb
                && end > cursor
                && !bdata.ends_with(b"\n")
                && at + (bdata.len() - from) != data.len()
            {
                end -= 1;
            }
            if end > cursor {
                let shift = at as i64 - from as i64;
                starts.extend(
                    bstarts[cursor..end]
                        .iter()
                        .map(|&s| (i64::from(s) + shift) as u32),
                );
                ids.extend_from_slice(&bids[cursor..end]);
                at = (i64::from(bstarts[end]) + shift) as usize;
                cursor = end;
                if at >= data.len() {
                    break;
                }
            }
        }
        let len = memchr::memchr(b'\n', &data[at..]).map_or(data.len() - at, |i| i + 1);
        let id = t.intern_side(&data[at..at + len], bstarts);
        starts.push(at as u32);
        ids.push(id);
        at += len;
        let rep = t.reps[id as usize];
        if rep & SIDE_LINE != 0 {
            // A new line, most often one that replaces the base line at the
            // cursor: guess that the side goes on with the next one.
            cursor += 1;
        } else if cursor + 1 < nb && bids[cursor + 1] == id {
            // The base line at the cursor was deleted.
            cursor += 2;
        } else {
            cursor = rep as usize + 1;
        }
    }
    starts.push(data.len() as u32);
    File { data, starts, ids }
}

/// Bytes of the base sampled by [`estimate_lines`].
const SAMPLE: usize = 64 * 1024;

/// The number of lines of `data`, extrapolated from its first [`SAMPLE`]
/// bytes: the table is sized once from it (too small a guess makes it grow,
/// too large a one makes every insert fault in a page of its own).
fn estimate_lines(data: &[u8]) -> usize {
    let sample = &data[..data.len().min(SAMPLE)];
    let lines = memchr::memchr_iter(b'\n', sample).count() as u64 + 1;
    let scaled = lines * data.len() as u64 / sample.len().max(1) as u64;
    usize::try_from(scaled).unwrap_or(usize::MAX)
}

/// Splits the three inputs and interns their lines into one id space.
/// Returns the files (base, ours, theirs) and the number of distinct lines.
pub(crate) fn intern3<'a>(
    base: &'a [u8],
    ours: &'a [u8],
    theirs: &'a [u8],
) -> ([File<'a>; 3], usize) {
    let mut t = Table::new(base, estimate_lines(base) + 64);
    let b = split_base(&mut t);
    let o = split_side(ours, &mut t, &b);
    let th = split_side(theirs, &mut t, &b);
    let n = t.reps.len();
    ([b, o, th], n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of every file maps to the same id exactly when the bytes
    /// are equal, and the starts split each file into its lines.
    fn check(base: &[u8], ours: &[u8], theirs: &[u8]) {
        let (files, n) = intern3(base, ours, theirs);
        let mut seen: std::collections::HashMap<&[u8], u32> = Default::default();
        for (f, data) in files.iter().zip([base, ours, theirs]) {
            let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
            assert_eq!(f.len(), lines.len());
            assert_eq!(f.starts.len(), lines.len() + 1);
            for (i, line) in lines.iter().enumerate() {
                assert_eq!(f.line(i), *line);
                let id = *seen.entry(line).or_insert(f.ids[i]);
                assert_eq!(id, f.ids[i], "line {:?}", String::from_utf8_lossy(line));
            }
        }
        assert_eq!(seen.len(), n);
        let mut ids: Vec<u32> = seen.values().copied().collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..n as u32).collect::<Vec<_>>());
    }

    #[test]
    fn hashing_while_splitting_equals_hashing_a_line() {
        let text: Vec<u8> = (0..300u32)
            .flat_map(|i| {
                let mut l = vec![b'a' + (i % 26) as u8; (i % 23) as usize];
                l.push(b'\n');
                l
            })
            .collect();
        for cut in [0, 1, 7, 8, 9, 100, text.len() - 1, text.len()] {
            let data = &text[..cut];
            let mut t = Table::new(data, 4);
            let f = split_base(&mut t);
            for i in 0..f.len() {
                let id = f.ids[i];
                assert_eq!(t.find(f.line(i), hash_line(f.line(i)), &f.starts), Ok(id));
            }
        }
    }

    #[test]
    fn ids_are_canonical() {
        check(b"", b"", b"");
        check(b"a\nb\n", b"", b"a\nb");
        check(b"a\nb", b"a\nb\n", b"a\nbc");
        check(b"a\nb\nc\n", b"c\nb\na\n", b"a\nx\nb\nc\n");
        check(b"}\n}\nx\n}\n", b"}\ny\n}\nx\n}\n}\n", b"x\n");
        let base: Vec<u8> = (0..2000)
            .flat_map(|i| format!("line {}\n", i % 97).into_bytes())
            .collect();
        let mut ours = base.clone();
        ours.splice(100..100, b"new\nline 3\n".iter().copied());
        let theirs: Vec<u8> = base.iter().rev().copied().collect();
        check(&base, &ours, &theirs);
    }

    /// Text over a few short and long lines (some longer than a word, some
    /// CRLF, some empty), so that lines repeat and sides resemble the base.
    fn text() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let line = prop::sample::select(vec![
            "",
            "a",
            "b",
            "}",
            "abcdefgh",
            "abcdefghi",
            "0123456789abcdef",
            "x\r",
            "key = 1",
        ]);
        (prop::collection::vec(line, 0..40), any::<bool>()).prop_map(|(lines, unterminated)| {
            let mut t = lines.join("\n");
            if !unterminated && !lines.is_empty() {
                t.push('\n');
            }
            t.into_bytes()
        })
    }

    proptest::proptest! {
        #[test]
        fn ids_are_canonical_for_any_text(base in text(), ours in text(), theirs in text()) {
            check(&base, &ours, &theirs);
        }

        #[test]
        fn ids_are_canonical_when_sides_edit_the_base(
            base in text(),
            cuts in proptest::collection::vec((0usize..200, 0usize..8, text()), 0..6),
        ) {
            // Sides made of slices of the base with other text spliced in,
            // which is what the bulk comparison with the base sees most.
            let mut ours = base.clone();
            for (at, len, insert) in &cuts {
                let at = (*at).min(ours.len());
                let end = (at + len).min(ours.len());
                ours.splice(at..end, insert.iter().copied());
            }
            let theirs: Vec<u8> = base.iter().rev().copied().collect();
            check(&base, &ours, &theirs);
        }
    }

    #[test]
    fn the_line_estimate_extrapolates_the_sample() {
        assert_eq!(estimate_lines(b""), 0);
        assert_eq!(estimate_lines(b"a\nb\n"), 3);
        let short: Vec<u8> = b"ab\n".repeat(100_000);
        let long: Vec<u8> = [b"x".repeat(299), b"\n".to_vec()].concat().repeat(1_000);
        let (s, l) = (estimate_lines(&short), estimate_lines(&long));
        assert!((90_000..=110_000).contains(&s), "{s}");
        assert!((900..=1_300).contains(&l), "{l}");
    }

    #[test]
    fn the_table_grows_past_its_first_guess() {
        let base: Vec<u8> = (0..5000)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let ours: Vec<u8> = (0..5000)
            .flat_map(|i| format!("{}\n", i * 7).into_bytes())
            .collect();
        check(&base, &ours, b"1\n2\n");
    }
}
