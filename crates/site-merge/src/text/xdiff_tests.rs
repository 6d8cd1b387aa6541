//! The diff against the reference implementation of `xdiff_ref` on inputs
//! large enough to reach the cost cut-off, the good-snake heuristic and the
//! two-thread division: the change flags must be identical.

use super::xdiff::{self, Algorithm};
use super::xdiff_ref;

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

#[test]
fn change_flags_match_the_reference_on_large_inputs() {
    for (name, a, b) in pairs() {
        for algo in [Algorithm::Myers, Algorithm::Minimal] {
            if algo == Algorithm::Minimal && a.len() > 3_000 {
                continue;
            }
            let ra_algo = match algo {
                Algorithm::Minimal => xdiff_ref::Algorithm::Minimal,
                _ => xdiff_ref::Algorithm::Myers,
            };
            let mut ra = xdiff::Rchg::new(a.len());
            let mut rb = xdiff::Rchg::new(b.len());
            xdiff::raw_diff(&a, &b, None, algo, &mut ra, &mut rb);
            let mut qa = xdiff_ref::Rchg::new(a.len());
            let mut qb = xdiff_ref::Rchg::new(b.len());
            xdiff_ref::raw_diff(&a, &b, None, ra_algo, &mut qa, &mut qb);
            assert!(
                ra.flags() == qa.flags() && rb.flags() == qb.flags(),
                "{name} ({algo:?}): raw change flags differ from the reference"
            );
            let h: Vec<_> = xdiff::diff(&a, &b, None, algo)
                .iter()
                .map(|h| (h.i1, h.chg1, h.i2, h.chg2))
                .collect();
            let g: Vec<_> = xdiff_ref::diff(&a, &b, None, ra_algo)
                .iter()
                .map(|h| (h.i1, h.chg1, h.i2, h.chg2))
                .collect();
            assert_eq!(h, g, "{name} ({algo:?}): hunks differ from the reference");
        }
    }
}
