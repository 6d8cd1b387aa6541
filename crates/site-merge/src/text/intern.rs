//! Line splitting and interning: every distinct line (bytes including its
//! `\n`) of the three inputs gets one dense `u32` id, shared by all files.

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

/// Offsets of line starts plus the end offset.
fn line_starts(data: &[u8]) -> Vec<u32> {
    let mut starts = Vec::with_capacity(data.len() / 32 + 2);
    starts.push(0u32);
    for nl in memchr::memchr_iter(b'\n', data) {
        starts.push(nl as u32 + 1);
    }
    if starts.last().copied() != Some(data.len() as u32) {
        starts.push(data.len() as u32);
    }
    starts
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xD6E8_FEB8_6659_FD93;

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// A fast, deterministic hash of a line.
#[inline]
fn hash_line(b: &[u8]) -> u64 {
    let mut h = K1 ^ b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = fold_mul(h ^ u64::from_le_bytes(w), K2);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = fold_mul(h ^ u64::from_le_bytes(w), K1);
    }
    fold_mul(h, K2)
}

/// Open-addressing interner keyed by line bytes.
struct Interner<'a> {
    /// Each slot: `(hash high 32 bits) << 32 | (id + 1)`; 0 = empty.
    slots: Vec<u64>,
    mask: usize,
    reps: Vec<&'a [u8]>,
}

impl<'a> Interner<'a> {
    fn with_lines(lines: usize) -> Self {
        let cap = (lines.max(8) * 2).next_power_of_two();
        Interner {
            slots: vec![0; cap],
            mask: cap - 1,
            reps: Vec::new(),
        }
    }

    fn grow(&mut self) {
        let cap = self.slots.len() * 2;
        let mut slots = vec![0u64; cap];
        let mask = cap - 1;
        for &s in &self.slots {
            if s != 0 {
                let id = (s & 0xFFFF_FFFF) as usize - 1;
                let h = hash_line(self.reps[id]);
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

    #[inline]
    fn intern(&mut self, line: &'a [u8]) -> u32 {
        let h = hash_line(line);
        let tag = (h >> 32) << 32;
        let mut p = (h as usize) & self.mask;
        loop {
            let s = self.slots[p];
            if s == 0 {
                break;
            }
            if s & 0xFFFF_FFFF_0000_0000 == tag {
                let id = (s & 0xFFFF_FFFF) as usize - 1;
                if self.reps[id] == line {
                    return id as u32;
                }
            }
            p = (p + 1) & self.mask;
        }
        let id = self.reps.len();
        self.reps.push(line);
        self.slots[p] = tag | (id as u64 + 1);
        if self.reps.len() * 2 > self.slots.len() {
            self.grow();
        }
        id as u32
    }
}

/// Interns the base, remembering one position of every id in it.
fn make_base<'a>(
    data: &'a [u8],
    starts: Vec<u32>,
    interner: &mut Interner<'a>,
) -> (File<'a>, Vec<u32>) {
    let mut ids = Vec::with_capacity(starts.len() - 1);
    let mut pos: Vec<u32> = Vec::new();
    for (i, w) in starts.windows(2).enumerate() {
        let id = interner.intern(&data[w[0] as usize..w[1] as usize]);
        if id as usize == pos.len() {
            pos.push(i as u32);
        } else {
            pos[id as usize] = i as u32;
        }
        ids.push(id);
    }
    (File { data, starts, ids }, pos)
}

/// Interns a side. Sides mostly repeat the base in order, so each line is
/// first compared with the base line after the previous match (a cheap,
/// sequential comparison); only lines that differ go through the table.
fn make_side<'a>(
    data: &'a [u8],
    starts: Vec<u32>,
    interner: &mut Interner<'a>,
    base: &File<'a>,
    base_pos: &[u32],
) -> File<'a> {
    let mut ids = Vec::with_capacity(starts.len() - 1);
    let nb = base.len();
    let mut cursor = 0usize;
    for w in starts.windows(2) {
        let line = &data[w[0] as usize..w[1] as usize];
        if cursor < nb && base.line(cursor) == line {
            ids.push(base.ids[cursor]);
            cursor += 1;
            continue;
        }
        let id = interner.intern(line);
        if let Some(&p) = base_pos.get(id as usize) {
            cursor = p as usize + 1;
        }
        ids.push(id);
    }
    File { data, starts, ids }
}

/// Splits the three inputs and interns their lines into one id space.
/// Returns the files (base, ours, theirs) and the number of distinct lines.
pub(crate) fn intern3<'a>(
    base: &'a [u8],
    ours: &'a [u8],
    theirs: &'a [u8],
) -> ([File<'a>; 3], usize) {
    let (sb, so, st) = (line_starts(base), line_starts(ours), line_starts(theirs));
    let mut interner = Interner::with_lines(sb.len() + (so.len() + st.len()) / 16);
    let (b, pos) = make_base(base, sb, &mut interner);
    let o = make_side(ours, so, &mut interner, &b, &pos);
    let t = make_side(theirs, st, &mut interner, &b, &pos);
    let n = interner.reps.len();
    ([b, o, t], n)
}
