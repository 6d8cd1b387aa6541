//! The diff on inputs large enough to reach the cost cut-off, the good-snake
//! heuristic and the two-thread division, against digests of the change
//! flags and hunks that the first implementation of the search gave. That
//! implementation was checked against `git merge-file` on the same shapes of
//! input; the searches optimised since must not change a single flag (the
//! oracle tests against git cover the text level).

use super::xdiff::{self, Algorithm};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u32 {
        (self.next() % n) as u32
    }
}

/// Lines of a config-like file: mostly unique, some very common ones.
fn config(r: &mut Rng, n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| match r.below(12) {
            0 => 0,
            1 => 1,
            2 => 2 + r.below(3),
            _ => 100 + i as u32,
        })
        .collect()
}

/// `a` with edits at roughly one line in `rate` (deletions, insertions of
/// fresh or common lines, replacements).
fn edit(r: &mut Rng, a: &[u32], rate: u64, fresh: &mut u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + a.len() / 4);
    for &x in a {
        match r.below(rate * 4) {
            0 => {}
            1 => {
                *fresh += 1;
                out.push(*fresh);
            }
            2 => {
                out.push(x);
                out.push(r.below(5));
            }
            3 => {
                *fresh += 1;
                out.push(*fresh);
                out.push(x);
            }
            _ => out.push(x),
        }
    }
    out
}

fn pairs() -> Vec<(String, Vec<u32>, Vec<u32>)> {
    let mut r = Rng(0x5EED);
    let mut fresh = 10_000_000u32;
    let mut v = Vec::new();
    for &n in &[300usize, 3_000, 9_000, 25_000] {
        let a = config(&mut r, n);
        let rev: Vec<u32> = a.iter().rev().copied().collect();
        v.push((format!("reversed {n}"), a.clone(), rev.clone()));
        v.push((
            format!("reversed-edited {n}"),
            a.clone(),
            edit(&mut r, &rev, 30, &mut fresh),
        ));
        let mut blocks = Vec::new();
        for c in a.chunks(n / 7 + 1).rev() {
            blocks.extend(c.iter().rev());
        }
        v.push((format!("blocks {n}"), a.clone(), blocks));
        for rate in [2u64, 6, 40] {
            v.push((
                format!("edited/{rate} {n}"),
                a.clone(),
                edit(&mut r, &a, rate, &mut fresh),
            ));
        }
        let low: Vec<u32> = (0..n).map(|_| r.below(4)).collect();
        v.push((
            format!("4 lines {n}"),
            low.clone(),
            edit(&mut r, &low, 5, &mut fresh),
        ));
        let low2: Vec<u32> = (0..n).map(|_| r.below(3)).collect();
        v.push((format!("3 lines {n}"), low, low2));
        // long equal runs between dense edits: good snakes after a high cost
        let mut b = Vec::new();
        for (i, c) in a.chunks(40).enumerate() {
            if i % 2 == 0 {
                b.extend(c);
            } else {
                b.extend(edit(&mut r, c, 1, &mut fresh));
            }
        }
        v.push((format!("runs {n}"), a.clone(), b));
        let shuffled: Vec<u32> = {
            let mut s = a.clone();
            for i in (1..s.len()).rev() {
                let j = r.below(i as u64 + 1) as usize;
                s.swap(i, j);
            }
            s
        };
        v.push((format!("shuffled {n}"), a.clone(), shuffled));
        // a few costly sites (a block replaced by lines copied from
        // elsewhere) between long equal runs: the good-snake heuristic
        for block in [140usize, 400] {
            if n < 20 * block {
                continue;
            }
            let mut b = Vec::new();
            let mut i = 0;
            while i < a.len() {
                let keep = (block * 3 + r.below(n as u64 / 4) as usize).min(a.len() - i);
                b.extend(&a[i..i + keep]);
                i += keep + block;
                let from = r.below((n - block) as u64) as usize;
                b.extend(&a[from..from + block]);
            }
            v.push((format!("sites/{block} {n}"), a.clone(), b));
        }
        // chunks of 21-80 lines moved around: long snakes at a high cost
        for spread in [3usize, 40] {
            let mut chunks: Vec<&[u32]> = Vec::new();
            let mut i = 0;
            while i < a.len() {
                let len = (21 + r.below(60) as usize).min(a.len() - i);
                chunks.push(&a[i..i + len]);
                i += len;
            }
            for i in 0..chunks.len() {
                let j = (i + r.below(spread as u64) as usize).min(chunks.len() - 1);
                chunks.swap(i, j);
            }
            let moved: Vec<u32> = chunks.concat();
            v.push((
                format!("moved/{spread} {n}"),
                a.clone(),
                edit(&mut r, &moved, 50, &mut fresh),
            ));
        }
    }
    v
}

/// FNV-1a, to fold the change flags and hunks of one diff into one number.
fn fnv(acc: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *acc ^= u64::from(b);
        *acc = acc.wrapping_mul(0x0000_0100_0000_01B3);
    }
}

/// The digest of a diff: its raw change flags on both sides, then its hunks.
fn digest(a: &[u32], b: &[u32], algo: Algorithm) -> u64 {
    let mut ra = xdiff::Rchg::new(a.len());
    let mut rb = xdiff::Rchg::new(b.len());
    xdiff::raw_diff(a, b, None, algo, &mut ra, &mut rb);
    let mut d = 0xCBF2_9CE4_8422_2325u64;
    for f in [ra.flags(), rb.flags()] {
        let bytes: Vec<u8> = f.iter().map(|&x| u8::from(x)).collect();
        fnv(&mut d, &bytes);
    }
    for h in xdiff::diff(a, b, None, algo) {
        for v in [h.i1, h.chg1, h.i2, h.chg2] {
            fnv(&mut d, &(v as u64).to_le_bytes());
        }
    }
    d
}

/// (case, minimal diff, digest) as the first implementation computed them.
const REFERENCE: &[(&str, bool, u64)] = &[
    ("reversed 300", false, 0x7ED88B99AEA87BB2),
    ("reversed 300", true, 0xCCFC021BB2189170),
    ("reversed-edited 300", false, 0x8EBFFFDB3479C4B2),
    ("reversed-edited 300", true, 0x8EBFFFDB3479C4B2),
    ("blocks 300", false, 0x7ED88B99AEA87BB2),
    ("blocks 300", true, 0xCCFC021BB2189170),
    ("edited/2 300", false, 0xA376FDE5AAFC397B),
    ("edited/2 300", true, 0xA376FDE5AAFC397B),
    ("edited/6 300", false, 0xE2F4BB480246DCBC),
    ("edited/6 300", true, 0xE2F4BB480246DCBC),
    ("edited/40 300", false, 0x207BE7A0D14D4A67),
    ("edited/40 300", true, 0x207BE7A0D14D4A67),
    ("4 lines 300", false, 0xAF9144647DBC6E67),
    ("4 lines 300", true, 0xAF9144647DBC6E67),
    ("3 lines 300", false, 0x945CA8A4163DC478),
    ("3 lines 300", true, 0x945CA8A4163DC478),
    ("runs 300", false, 0x45E15E5921C5432D),
    ("runs 300", true, 0x45E15E5921C5432D),
    ("shuffled 300", false, 0x11617E42EEA47C99),
    ("shuffled 300", true, 0x11617E42EEA47C99),
    ("moved/3 300", false, 0xF851A6E29CAADAAE),
    ("moved/3 300", true, 0xF851A6E29CAADAAE),
    ("moved/40 300", false, 0x025469B587FA53BA),
    ("moved/40 300", true, 0x025469B587FA53BA),
    ("reversed 3000", false, 0x98B6681FE8D2269C),
    ("reversed 3000", true, 0x50BA52A629658B75),
    ("reversed-edited 3000", false, 0x1721273C9238F527),
    ("reversed-edited 3000", true, 0xB0A1AA7BD60D0F89),
    ("blocks 3000", false, 0x98B6681FE8D2269C),
    ("blocks 3000", true, 0x50BA52A629658B75),
    ("edited/2 3000", false, 0xD8B43FCF84E36A52),
    ("edited/2 3000", true, 0xD3D34564C6585948),
    ("edited/6 3000", false, 0xA6A2F5AAA0D7DB56),
    ("edited/6 3000", true, 0xA6A2F5AAA0D7DB56),
    ("edited/40 3000", false, 0x530A529BB6AA8CDA),
    ("edited/40 3000", true, 0x530A529BB6AA8CDA),
    ("4 lines 3000", false, 0x16A0B617244E0442),
    ("4 lines 3000", true, 0x16A0B617244E0442),
    ("3 lines 3000", false, 0x2E75F52E904862B7),
    ("3 lines 3000", true, 0xEDAD3DD7EDF2B10B),
    ("runs 3000", false, 0x404FB8F973C397D3),
    ("runs 3000", true, 0xFC336B758479C276),
    ("shuffled 3000", false, 0xF988D5EE183CCE08),
    ("shuffled 3000", true, 0x37FC0A78FCC01ACE),
    ("sites/140 3000", false, 0x4379F3D677E56F07),
    ("sites/140 3000", true, 0x35CFFBA0C1A39516),
    ("moved/3 3000", false, 0x06A1FF5CE5BD5ACD),
    ("moved/3 3000", true, 0xAC54A0B3F5C01D64),
    ("moved/40 3000", false, 0xCCF17A5DD0477C8C),
    ("moved/40 3000", true, 0x7E8E718FFE00F957),
    ("reversed 9000", false, 0x0DFBE2F07949F5E5),
    ("reversed-edited 9000", false, 0xC1343FDE19CC668C),
    ("blocks 9000", false, 0x0DFBE2F07949F5E5),
    ("edited/2 9000", false, 0x15F202E01CA9703E),
    ("edited/6 9000", false, 0xBD2A701930295C53),
    ("edited/40 9000", false, 0xFAE81B46B9AA8901),
    ("4 lines 9000", false, 0x8AC5C03C84460C60),
    ("3 lines 9000", false, 0x625BDCABCEEE485A),
    ("runs 9000", false, 0xEE3B06804A5F0E0C),
    ("shuffled 9000", false, 0x9EF9B44A2EB827A7),
    ("sites/140 9000", false, 0x3B9DB9A6C7C25A6F),
    ("sites/400 9000", false, 0x75809DA042EDB8BD),
    ("moved/3 9000", false, 0xCD15793310A6349A),
    ("moved/40 9000", false, 0x6818B3101FD5FF59),
    ("reversed 25000", false, 0xDB8341F27EE58859),
    ("reversed-edited 25000", false, 0x57F74FBF51F99744),
    ("blocks 25000", false, 0xDB8341F27EE58859),
    ("edited/2 25000", false, 0x98F05D967BA19D05),
    ("edited/6 25000", false, 0x9A29FD32E0166353),
    ("edited/40 25000", false, 0x25586BF67F0DE4BD),
    ("4 lines 25000", false, 0xB6EE9590741FBF1E),
    ("3 lines 25000", false, 0x0B7E11BEC7A509F8),
    ("runs 25000", false, 0x5D11B82FF0EF6B12),
    ("shuffled 25000", false, 0x81D6091859962D50),
    ("sites/140 25000", false, 0xCB272974738341C2),
    ("sites/400 25000", false, 0x20EA4CB3702ADD66),
    ("moved/3 25000", false, 0x7D9A924A6A3057CD),
    ("moved/40 25000", false, 0x5512F1090592A38A),
];

#[test]
fn change_flags_match_the_reference_on_large_inputs() {
    let mut checked = 0;
    for (name, a, b) in pairs() {
        for algo in [Algorithm::Myers, Algorithm::Minimal] {
            let minimal = algo == Algorithm::Minimal;
            if minimal && a.len() > 3_000 {
                continue;
            }
            let expected = REFERENCE
                .iter()
                .find(|(n, m, _)| *n == name && *m == minimal)
                .map(|&(_, _, d)| d);
            assert_eq!(
                Some(digest(&a, &b, algo)),
                expected,
                "{name} ({algo:?}): change flags or hunks differ from the reference"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, REFERENCE.len());
}

#[test]
fn the_digest_sees_a_single_flag() {
    let a: Vec<u32> = (0..50).collect();
    let mut b = a.clone();
    let before = digest(&a, &b, Algorithm::Myers);
    b[25] = 1000;
    let at_25 = digest(&a, &b, Algorithm::Myers);
    assert_ne!(at_25, before);
    b[25] = 25;
    b[26] = 1000;
    assert_ne!(digest(&a, &b, Algorithm::Myers), at_25);
}
