//! Two-way line diff that reproduces git's xdiff results exactly.
//!
//! Written from the published behaviour of git's xdiff (record cleanup,
//! linear-space Myers with its cost cut-offs, group compaction): the same
//! inputs give the same change sets, which is what makes the merge
//! byte-identical to `git merge-file`.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::histogram;

/// Which diff algorithm aligns the lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// git's default Myers diff with its speed heuristics (`git merge-file`'s default).
    #[default]
    Myers,
    /// Myers without the speed heuristics (`--diff-algorithm=minimal`).
    Minimal,
    /// git's histogram diff (`--diff-algorithm=histogram`, the default of `git merge`).
    Histogram,
}

/// Changed-line flags with a `false` sentinel before the first and after
/// the last line: line `i` lives at index `i + 1`.
pub(crate) struct Rchg(Vec<bool>);

impl Rchg {
    pub(crate) fn new(n: usize) -> Self {
        Rchg(vec![false; n + 2])
    }
    #[inline]
    pub(crate) fn get(&self, i: isize) -> bool {
        usize::try_from(i + 1)
            .ok()
            .and_then(|k| self.0.get(k))
            .copied()
            .unwrap_or(false)
    }
    #[inline]
    pub(crate) fn set(&mut self, i: usize, v: bool) {
        self.0[i + 1] = v;
    }
    #[cfg(test)]
    pub(crate) fn flags(&self) -> &[bool] {
        &self.0
    }
}

/// One hunk of a two-way diff: `chg1` lines at `i1` in the first file were
/// replaced by `chg2` lines at `i2` in the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hunk {
    pub(crate) i1: usize,
    pub(crate) chg1: usize,
    pub(crate) i2: usize,
    pub(crate) chg2: usize,
}

/// Hasher for `u32` ids (already well distributed after mixing).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (u64::from(i) ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// Diffs two id sequences like `xdl_do_diff` followed by compaction of both
/// sides and script building. `counts`, when given, holds the number of
/// occurrences of every id in `a` and in `b` (indexed by id); otherwise they
/// are computed from the slices.
pub(crate) fn diff(
    a: &[u32],
    b: &[u32],
    counts: Option<(&[u32], &[u32])>,
    algo: Algorithm,
) -> Vec<Hunk> {
    let mut ra = Rchg::new(a.len());
    let mut rb = Rchg::new(b.len());
    raw_diff(a, b, counts, algo, &mut ra, &mut rb);
    compact(&mut ra, a, &mut rb);
    compact(&mut rb, b, &mut ra);
    script(&ra, &rb, a.len(), b.len())
}

/// The diff without compaction: fills the change flags.
pub(crate) fn raw_diff(
    a: &[u32],
    b: &[u32],
    counts: Option<(&[u32], &[u32])>,
    algo: Algorithm,
    ra: &mut Rchg,
    rb: &mut Rchg,
) {
    match algo {
        Algorithm::Histogram => histogram::diff(a, b, ra, rb),
        Algorithm::Myers | Algorithm::Minimal => {
            let need_min = algo == Algorithm::Minimal;
            match counts {
                Some((ca, cb)) => myers(a, b, ca, cb, need_min, ra, rb),
                None => {
                    let (la, lb, ca, cb) = localize(a, b);
                    myers(&la, &lb, &ca, &cb, need_min, ra, rb);
                }
            }
        }
    }
}

/// Renumbers the ids of two slices densely and counts them per side.
fn localize(a: &[u32], b: &[u32]) -> (Vec<u32>, Vec<u32>, Vec<u32>, Vec<u32>) {
    let mut map: IdMap<u32> = IdMap::default();
    map.reserve(a.len() + b.len());
    let mut ca: Vec<u32> = Vec::new();
    let mut cb: Vec<u32> = Vec::new();
    let mut la = Vec::with_capacity(a.len());
    for &x in a {
        let next = ca.len() as u32;
        let id = *map.entry(x).or_insert(next);
        if id == next {
            ca.push(0);
            cb.push(0);
        }
        ca[id as usize] += 1;
        la.push(id);
    }
    let mut lb = Vec::with_capacity(b.len());
    for &x in b {
        let next = ca.len() as u32;
        let id = *map.entry(x).or_insert(next);
        if id == next {
            ca.push(0);
            cb.push(0);
        }
        cb[id as usize] += 1;
        lb.push(id);
    }
    (la, lb, ca, cb)
}

/// Integer square root approximation by shifts (as xdiff computes it).
fn bogosqrt(mut n: usize) -> usize {
    let mut i = 1;
    while n > 0 {
        i <<= 1;
        n >>= 2;
    }
    i
}

const MAX_EQLIMIT: usize = 1024;
const SIMSCAN_WINDOW: usize = 100;
const KPDIS_RUN: usize = 4;
const MAX_COST_MIN: isize = 256;
const SNAKE_CNT: isize = 20;
const HEUR_MIN_COST: isize = 256;
const K_HEUR: isize = 4;

/// Decides whether a line that has many matches, sitting at `i` in `dis`,
/// lies inside a run of unmatched lines and should be discarded.
fn clean_mmatch(dis: &[u8], i: usize, mut s: usize, mut e: usize) -> bool {
    if i - s > SIMSCAN_WINDOW {
        s = i - SIMSCAN_WINDOW;
    }
    if e - i > SIMSCAN_WINDOW {
        e = i + SIMSCAN_WINDOW;
    }
    let (mut rdis0, mut rpdis0) = (0usize, 1usize);
    let mut r = 1;
    while i >= s + r {
        match dis[i - r] {
            0 => rdis0 += 1,
            2 => rpdis0 += 1,
            _ => break,
        }
        r += 1;
    }
    if rdis0 == 0 {
        return false;
    }
    let (mut rdis1, mut rpdis1) = (0usize, 1usize);
    r = 1;
    while i + r <= e {
        match dis[i + r] {
            0 => rdis1 += 1,
            2 => rpdis1 += 1,
            _ => break,
        }
        r += 1;
    }
    if rdis1 == 0 {
        return false;
    }
    rdis1 += rdis0;
    rpdis1 += rpdis0;
    rpdis1 * KPDIS_RUN < rpdis1 + rdis1
}

/// Classifies the lines of the middle part of one side: 0 no match in the
/// other file, 1 a few matches, 2 many matches.
fn classify(ids: &[u32], nrec: usize, other_counts: &[u32]) -> Vec<u8> {
    let mlim = bogosqrt(nrec).min(MAX_EQLIMIT);
    ids.iter()
        .map(|&id| {
            let nm = other_counts[id as usize] as usize;
            if nm == 0 {
                0
            } else if nm >= mlim {
                2
            } else {
                1
            }
        })
        .collect()
}

/// Keeps the lines worth diffing; marks the others as changed.
fn reduce(ids: &[u32], s: usize, dis: &[u8], rchg: &mut Rchg) -> (Vec<u32>, Vec<u32>) {
    let mut ha = Vec::with_capacity(ids.len());
    let mut rindex = Vec::with_capacity(ids.len());
    let last = dis.len().saturating_sub(1);
    // The latest positions (plus one, 0 = none) of a line without match and
    // of a line with a few: `clean_mmatch` can only discard a line when an
    // unmatched one lies within the window before it with no line of the
    // second kind in between, which most lines of a low-entropy file fail.
    let (mut last0, mut last1) = (0usize, 0usize);
    for (k, &id) in ids.iter().enumerate() {
        let d = dis[k];
        let keep = match d {
            1 => true,
            2 => {
                let maybe = last0 > last1 && k + 1 - last0 <= SIMSCAN_WINDOW;
                !(maybe && clean_mmatch(dis, k, 0, last))
            }
            _ => false,
        };
        if keep {
            ha.push(id);
            rindex.push((s + k) as u32);
        } else {
            rchg.set(s + k, true);
        }
        match d {
            0 => last0 = k + 1,
            1 => last1 = k + 1,
            _ => {}
        }
    }
    (ha, rindex)
}

/// xdiff's Myers: trim the common ends, discard hopeless lines, then divide
/// and conquer with the cost heuristics.
fn myers(
    a: &[u32],
    b: &[u32],
    ca: &[u32],
    cb: &[u32],
    need_min: bool,
    ra: &mut Rchg,
    rb: &mut Rchg,
) {
    let (n1, n2) = (a.len(), b.len());
    let lim = n1.min(n2);
    let mut s = 0;
    while s < lim && a[s] == b[s] {
        s += 1;
    }
    let mut e = 0;
    while e < lim - s && a[n1 - 1 - e] == b[n2 - 1 - e] {
        e += 1;
    }
    let (mid1, mid2) = (&a[s..n1 - e], &b[s..n2 - e]);
    let dis1 = classify(mid1, n1, cb);
    let dis2 = classify(mid2, n2, ca);
    let (ha1, ri1) = reduce(mid1, s, &dis1, ra);
    let (ha2, ri2) = reduce(mid2, s, &dis2, rb);
    let mut m = Myers::new(&ha1, &ha2);
    m.run(need_min, &ri1, &ri2, ra, rb);
}

/// Runs `a` here and, when `parallel`, `b` on a second thread (or here as
/// well when no thread can be started). A panic of `b` is re-raised.
pub(crate) fn join<RA, RB>(
    parallel: bool,
    a: impl FnOnce() -> RA,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB)
where
    RB: Send,
{
    if !parallel {
        return (a(), b());
    }
    let cell = std::sync::Mutex::new(Some(b));
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new().spawn_scoped(s, || {
            let b = cell.lock().unwrap_or_else(|e| e.into_inner()).take();
            b.map(|b| b())
        });
        let ra = a();
        let rb = match spawned.map(|h| h.join()) {
            Ok(Ok(Some(rb))) => Some(rb),
            Ok(Ok(None)) | Err(_) => None,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
        };
        match rb {
            Some(rb) => (ra, rb),
            None => {
                let b = cell.lock().unwrap_or_else(|e| e.into_inner()).take();
                match b {
                    Some(b) => (ra, b()),
                    // The thread took `b` and returned it: unreachable in practice.
                    None => unreachable_b(),
                }
            }
        }
    })
}

#[cold]
fn unreachable_b<T>() -> T {
    // `b` ran on the thread, whose result was handled above.
    panic!("site-merge: helper thread lost its result")
}

/// A box of the edit graph: `(off1, lim1, off2, lim2, need_min)`.
type Task = (isize, isize, isize, isize, bool);

/// Reduced lines `from..to` of side `side` (1 or 2) are changed.
struct Mark {
    side: u8,
    from: usize,
    to: usize,
}

enum Step {
    Changed(Mark),
    Split(Task, Task),
}

/// Reduced inputs at least this long (both sides together) are divided
/// between two threads.
const PARALLEL_MYERS: usize = 40_000;

/// Boxes smaller than this are not handed to the other thread.
const SHARE_MIN: isize = 300;

/// Divide and conquer on two threads. The boxes are independent, so the
/// result does not depend on which thread solves which box.
fn run_parallel(ha1: &[u32], ha2: &[u32], root: Task) -> Vec<Mark> {
    use std::sync::{Condvar, Mutex};
    // Shared boxes and the number of workers busy on one.
    let shared: Mutex<(Vec<Task>, usize)> = Mutex::new((vec![root], 0));
    let cv = Condvar::new();
    let worker = || {
        let mut m = Myers::new(ha1, ha2);
        let mut marks = Vec::new();
        loop {
            let task = {
                let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(t) = g.0.pop() {
                        g.1 += 1;
                        break Some(t);
                    }
                    if g.1 == 0 {
                        break None;
                    }
                    g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some(task) = task else {
                cv.notify_all();
                break;
            };
            let mut stack = vec![task];
            while let Some(t) = stack.pop() {
                match m.step(t) {
                    Step::Changed(mk) => marks.push(mk),
                    Step::Split(lo, hi) => {
                        // Hand the smaller half to the other thread only when
                        // both halves are big: peeling small boxes off a big
                        // one (the reversed-file case) must not ping-pong the
                        // big box between threads.
                        let size = |t: &Task| (t.1 - t.0) + (t.3 - t.2);
                        let (keep, other) = if size(&lo) <= size(&hi) {
                            (hi, lo)
                        } else {
                            (lo, hi)
                        };
                        let give = size(&other) >= SHARE_MIN && {
                            let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
                            if g.0.is_empty() {
                                g.0.push(other);
                                true
                            } else {
                                false
                            }
                        };
                        if give {
                            cv.notify_one();
                            stack.push(keep);
                        } else {
                            stack.push(hi);
                            stack.push(lo);
                        }
                    }
                }
            }
            let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
            g.1 -= 1;
            if g.0.is_empty() && g.1 == 0 {
                cv.notify_all();
            }
        }
        marks
    };
    let (mut marks, more) = join(true, worker, worker);
    marks.extend(more);
    marks
}

struct Split {
    i1: isize,
    i2: isize,
    min_lo: bool,
    min_hi: bool,
}

struct Myers<'a> {
    ha1: &'a [u32],
    ha2: &'a [u32],
    /// Furthest reaches of the forward and backward searches, a window of
    /// diagonals around the middle diagonal of the box being split (the
    /// cost cut-off keeps it small; it grows only while a search runs on).
    kf: Vec<isize>,
    kb: Vec<isize>,
    mxcost: isize,
}

impl<'a> Myers<'a> {
    fn new(ha1: &'a [u32], ha2: &'a [u32]) -> Self {
        let ndiags = ha1.len() + ha2.len() + 3;
        let mxcost = (bogosqrt(ndiags) as isize).max(MAX_COST_MIN);
        Myers {
            ha1,
            ha2,
            kf: Vec::new(),
            kb: Vec::new(),
            mxcost,
        }
    }

    /// Shrinks one box by its common ends, then either reports the lines
    /// of the one non-empty side as changed or splits it in two.
    fn step(&mut self, t: Task) -> Step {
        let (ha1, ha2) = (self.ha1, self.ha2);
        let (mut off1, mut lim1, mut off2, mut lim2, nm) = t;
        while off1 < lim1 && off2 < lim2 && ha1[off1 as usize] == ha2[off2 as usize] {
            off1 += 1;
            off2 += 1;
        }
        while off1 < lim1 && off2 < lim2 && ha1[(lim1 - 1) as usize] == ha2[(lim2 - 1) as usize] {
            lim1 -= 1;
            lim2 -= 1;
        }
        if off1 == lim1 {
            Step::Changed(Mark {
                side: 2,
                from: off2 as usize,
                to: lim2 as usize,
            })
        } else if off2 == lim2 {
            Step::Changed(Mark {
                side: 1,
                from: off1 as usize,
                to: lim1 as usize,
            })
        } else {
            let sp = self.split(off1, lim1, off2, lim2, nm);
            Step::Split(
                (off1, sp.i1, off2, sp.i2, sp.min_lo),
                (sp.i1, lim1, sp.i2, lim2, sp.min_hi),
            )
        }
    }

    fn run(&mut self, need_min: bool, ri1: &[u32], ri2: &[u32], ra: &mut Rchg, rb: &mut Rchg) {
        let root: Task = (
            0,
            self.ha1.len() as isize,
            0,
            self.ha2.len() as isize,
            need_min,
        );
        let marks = if self.ha1.len() + self.ha2.len() >= PARALLEL_MYERS {
            run_parallel(self.ha1, self.ha2, root)
        } else {
            let mut marks = Vec::new();
            let mut stack = vec![root];
            while let Some(t) = stack.pop() {
                match self.step(t) {
                    Step::Changed(m) => marks.push(m),
                    Step::Split(lo, hi) => {
                        // Same order as the recursion: the low half first.
                        stack.push(hi);
                        stack.push(lo);
                    }
                }
            }
            marks
        };
        for m in marks {
            let (ri, r) = if m.side == 1 {
                (ri1, &mut *ra)
            } else {
                (ri2, &mut *rb)
            };
            for &k in &ri[m.from..m.to] {
                r.set(k as usize, true);
            }
        }
    }

    fn split(
        &mut self,
        off1: isize,
        lim1: isize,
        off2: isize,
        lim2: isize,
        need_min: bool,
    ) -> Split {
        let (ha1, ha2) = (self.ha1, self.ha2);
        let eq = |x: isize, y: isize| ha1[x as usize] == ha2[y as usize];
        let mxcost = self.mxcost;
        let kf = &mut self.kf;
        let kb = &mut self.kb;
        // The sides up to the box limits: a failed `get` is the end of a snake.
        let (h1, h2) = (&ha1[..lim1 as usize], &ha2[..lim2 as usize]);
        let (l1, l2) = (&h1[off1 as usize..], &h2[off2 as usize..]);
        let dmin = off1 - lim2;
        let dmax = lim1 - off2;
        let fmid = off1 - off2;
        let bmid = lim1 - lim2;
        let odd = (fmid - bmid) & 1 != 0;
        let (mut fmin, mut fmax) = (fmid, fmid);
        let (mut bmin, mut bmax) = (bmid, bmid);
        // Diagonal d of the forward search lives at kf[d + fo], of the
        // backward one at kb[d + bo]; the windows span `hw` on each side.
        let mut hw: isize = 64;
        if kf.len() < (2 * hw + 1) as usize {
            kf.resize((2 * hw + 1) as usize, 0);
            kb.resize((2 * hw + 1) as usize, 0);
        }
        let (mut fo, mut bo) = (hw - fmid, hw - bmid);
        kf[(fmid + fo) as usize] = off1;
        kb[(bmid + bo) as usize] = lim1;
        let mut ec: isize = 1;
        // Furthest forward and backward reach of the latest rows: the two
        // searches can only meet when `bbot <= ftop`.
        let (mut ftop, mut bbot) = (off1, lim1);
        loop {
            let mut got_snake = false;
            if ec + 1 > hw {
                let wide = (2 * hw).max(ec + 1);
                let live = 0..=(2 * hw) as usize;
                let to = (wide - hw) as usize;
                for k in [&mut *kf, &mut *kb] {
                    if k.len() < (2 * wide + 1) as usize {
                        k.resize((2 * wide + 1) as usize, 0);
                    }
                    k.copy_within(live.clone(), to);
                }
                hw = wide;
                (fo, bo) = (hw - fmid, hw - bmid);
            }
            if fmin > dmin {
                fmin -= 1;
                kf[(fmin - 1 + fo) as usize] = -1;
            } else {
                fmin += 1;
            }
            if fmax < dmax {
                fmax += 1;
                kf[(fmax + 1 + fo) as usize] = -1;
            } else {
                fmax -= 1;
            }
            if fmin <= fmax {
                // Diagonals fmax, fmax - 2, ..., fmin; each reads its two
                // neighbours and writes itself (cells avoid index checks).
                // The rows of one step are independent, so the meeting test
                // runs after the row, only when the reaches can touch.
                let lo = (fmin - 1 + fo) as usize;
                let hi = (fmax + 1 + fo) as usize;
                let cells = Cell::from_mut(&mut kf[lo..=hi]).as_slice_of_cells();
                let mut d = fmax;
                let mut top = isize::MIN;
                for w in cells.windows(3).rev().step_by(2) {
                    let (a, b) = (w[0].get(), w[2].get());
                    let mut i1 = if a >= b { a + 1 } else { b };
                    if let (Some(x), Some(y)) = (h1.get(i1 as usize), h2.get((i1 - d) as usize))
                        && x == y
                    {
                        let prev1 = i1;
                        i1 += 1;
                        while let (Some(x), Some(y)) =
                            (h1.get(i1 as usize), h2.get((i1 - d) as usize))
                        {
                            if x != y {
                                break;
                            }
                            i1 += 1;
                        }
                        if i1 - prev1 > SNAKE_CNT {
                            got_snake = true;
                        }
                    }
                    w[1].set(i1);
                    top = top.max(i1);
                    d -= 2;
                }
                ftop = top;
                if odd && top >= bbot {
                    let mut d = fmax;
                    while d >= fmin {
                        let i1 = kf[(d + fo) as usize];
                        if bmin <= d && d <= bmax && kb[(d + bo) as usize] <= i1 {
                            return Split {
                                i1,
                                i2: i1 - d,
                                min_lo: true,
                                min_hi: true,
                            };
                        }
                        d -= 2;
                    }
                }
            }

            if bmin > dmin {
                bmin -= 1;
                kb[(bmin - 1 + bo) as usize] = isize::MAX;
            } else {
                bmin += 1;
            }
            if bmax < dmax {
                bmax += 1;
                kb[(bmax + 1 + bo) as usize] = isize::MAX;
            } else {
                bmax -= 1;
            }
            if bmin <= bmax {
                let lo = (bmin - 1 + bo) as usize;
                let hi = (bmax + 1 + bo) as usize;
                let cells = Cell::from_mut(&mut kb[lo..=hi]).as_slice_of_cells();
                let mut d = bmax;
                let mut bot = isize::MAX;
                for w in cells.windows(3).rev().step_by(2) {
                    let (a, b) = (w[0].get(), w[2].get());
                    let mut i1 = if a < b { a } else { b - 1 };
                    // Walk back over equal lines; `get` of a wrapped index fails.
                    if let (Some(x), Some(y)) = (
                        l1.get((i1 - 1 - off1) as usize),
                        l2.get((i1 - d - 1 - off2) as usize),
                    ) && x == y
                    {
                        let prev1 = i1;
                        i1 -= 1;
                        while let (Some(x), Some(y)) = (
                            l1.get((i1 - 1 - off1) as usize),
                            l2.get((i1 - d - 1 - off2) as usize),
                        ) {
                            if x != y {
                                break;
                            }
                            i1 -= 1;
                        }
                        if prev1 - i1 > SNAKE_CNT {
                            got_snake = true;
                        }
                    }
                    w[1].set(i1);
                    bot = bot.min(i1);
                    d -= 2;
                }
                bbot = bot;
                if !odd && bot <= ftop {
                    let mut d = bmax;
                    while d >= bmin {
                        let i1 = kb[(d + bo) as usize];
                        if fmin <= d && d <= fmax && i1 <= kf[(d + fo) as usize] {
                            return Split {
                                i1,
                                i2: i1 - d,
                                min_lo: true,
                                min_hi: true,
                            };
                        }
                        d -= 2;
                    }
                }
            }

            if need_min {
                ec += 1;
                continue;
            }

            if got_snake && ec > HEUR_MIN_COST {
                let mut best = 0;
                let mut spl = (0, 0);
                let mut d = fmax;
                while d >= fmin {
                    let dd = if d > fmid { d - fmid } else { fmid - d };
                    let i1 = kf[(d + fo) as usize];
                    let i2 = i1 - d;
                    let v = (i1 - off1) + (i2 - off2) - dd;
                    if v > K_HEUR * ec
                        && v > best
                        && off1 + SNAKE_CNT <= i1
                        && i1 < lim1
                        && off2 + SNAKE_CNT <= i2
                        && i2 < lim2
                    {
                        let mut k = 1;
                        while eq(i1 - k, i2 - k) {
                            if k == SNAKE_CNT {
                                best = v;
                                spl = (i1, i2);
                                break;
                            }
                            k += 1;
                        }
                    }
                    d -= 2;
                }
                if best > 0 {
                    return Split {
                        i1: spl.0,
                        i2: spl.1,
                        min_lo: true,
                        min_hi: false,
                    };
                }
                let mut best = 0;
                let mut d = bmax;
                while d >= bmin {
                    let dd = if d > bmid { d - bmid } else { bmid - d };
                    let i1 = kb[(d + bo) as usize];
                    let i2 = i1 - d;
                    let v = (lim1 - i1) + (lim2 - i2) - dd;
                    if v > K_HEUR * ec
                        && v > best
                        && off1 < i1
                        && i1 <= lim1 - SNAKE_CNT
                        && off2 < i2
                        && i2 <= lim2 - SNAKE_CNT
                    {
                        let mut k = 0;
                        while eq(i1 + k, i2 + k) {
                            if k == SNAKE_CNT - 1 {
                                best = v;
                                spl = (i1, i2);
                                break;
                            }
                            k += 1;
                        }
                    }
                    d -= 2;
                }
                if best > 0 {
                    return Split {
                        i1: spl.0,
                        i2: spl.1,
                        min_lo: false,
                        min_hi: true,
                    };
                }
            }

            if ec >= mxcost {
                let (mut fbest, mut fbest1) = (-1isize, -1isize);
                let mut d = fmax;
                while d >= fmin {
                    let mut i1 = kf[(d + fo) as usize].min(lim1);
                    let mut i2 = i1 - d;
                    if lim2 < i2 {
                        i1 = lim2 + d;
                        i2 = lim2;
                    }
                    if fbest < i1 + i2 {
                        fbest = i1 + i2;
                        fbest1 = i1;
                    }
                    d -= 2;
                }
                let (mut bbest, mut bbest1) = (isize::MAX, isize::MAX);
                let mut d = bmax;
                while d >= bmin {
                    let mut i1 = off1.max(kb[(d + bo) as usize]);
                    let mut i2 = i1 - d;
                    if i2 < off2 {
                        i1 = off2 + d;
                        i2 = off2;
                    }
                    if i1 + i2 < bbest {
                        bbest = i1 + i2;
                        bbest1 = i1;
                    }
                    d -= 2;
                }
                return if (lim1 + lim2) - bbest < fbest - (off1 + off2) {
                    Split {
                        i1: fbest1,
                        i2: fbest - fbest1,
                        min_lo: true,
                        min_hi: false,
                    }
                } else {
                    Split {
                        i1: bbest1,
                        i2: bbest - bbest1,
                        min_lo: false,
                        min_hi: true,
                    }
                };
            }
            ec += 1;
        }
    }
}

/// A group of consecutive changed lines `[start, end)`.
struct Group {
    start: isize,
    end: isize,
}

fn group_init(r: &Rchg) -> Group {
    let mut g = Group { start: 0, end: 0 };
    while r.get(g.end) {
        g.end += 1;
    }
    g
}

fn group_next(r: &Rchg, n: isize, g: &mut Group) -> bool {
    if g.end == n {
        return false;
    }
    g.start = g.end + 1;
    g.end = g.start;
    while r.get(g.end) {
        g.end += 1;
    }
    true
}

fn group_previous(r: &Rchg, g: &mut Group) -> bool {
    if g.start == 0 {
        return false;
    }
    g.end = g.start - 1;
    g.start = g.end;
    while r.get(g.start - 1) {
        g.start -= 1;
    }
    true
}

fn slide_down(r: &mut Rchg, ids: &[u32], g: &mut Group) -> bool {
    let n = ids.len() as isize;
    if g.end < n && ids[g.start as usize] == ids[g.end as usize] {
        r.set(g.start as usize, false);
        g.start += 1;
        r.set(g.end as usize, true);
        g.end += 1;
        while r.get(g.end) {
            g.end += 1;
        }
        true
    } else {
        false
    }
}

fn slide_up(r: &mut Rchg, ids: &[u32], g: &mut Group) -> bool {
    if g.start > 0 && ids[(g.start - 1) as usize] == ids[(g.end - 1) as usize] {
        g.start -= 1;
        r.set(g.start as usize, true);
        g.end -= 1;
        r.set(g.end as usize, false);
        while r.get(g.start - 1) {
            g.start -= 1;
        }
        true
    } else {
        false
    }
}

/// Slides every group of changes of `r` (over `ids`) as far down as it goes,
/// merging groups it bumps into, then back up to align with a change group
/// of the other file when possible (xdiff's compaction, no indent heuristic).
pub(crate) fn compact(r: &mut Rchg, ids: &[u32], ro: &mut Rchg) {
    let n = ids.len() as isize;
    let no = ro.0.len() as isize - 2;
    let mut g = group_init(r);
    let mut go = group_init(ro);
    loop {
        if g.end != g.start {
            let mut earliest_end;
            let mut end_matching_other;
            loop {
                let groupsize = g.end - g.start;
                end_matching_other = -1;
                while slide_up(r, ids, &mut g) {
                    group_previous(ro, &mut go);
                }
                earliest_end = g.end;
                if go.end > go.start {
                    end_matching_other = g.end;
                }
                while slide_down(r, ids, &mut g) {
                    group_next(ro, no, &mut go);
                    if go.end > go.start {
                        end_matching_other = g.end;
                    }
                }
                if groupsize == g.end - g.start {
                    break;
                }
            }
            if g.end != earliest_end && end_matching_other != -1 {
                while go.end == go.start {
                    if !slide_up(r, ids, &mut g) {
                        break;
                    }
                    group_previous(ro, &mut go);
                }
            }
        }
        if !group_next(r, n, &mut g) {
            break;
        }
        group_next(ro, no, &mut go);
    }
}

/// Turns the change flags into hunks.
pub(crate) fn script(ra: &Rchg, rb: &Rchg, n1: usize, n2: usize) -> Vec<Hunk> {
    let mut out = Vec::new();
    let (mut i1, mut i2) = (0isize, 0isize);
    let (n1, n2) = (n1 as isize, n2 as isize);
    while i1 < n1 || i2 < n2 {
        if ra.get(i1) || rb.get(i2) {
            let (s1, s2) = (i1, i2);
            while ra.get(i1) {
                i1 += 1;
            }
            while rb.get(i2) {
                i2 += 1;
            }
            out.push(Hunk {
                i1: s1 as usize,
                chg1: (i1 - s1) as usize,
                i2: s2 as usize,
                chg2: (i2 - s2) as usize,
            });
        } else {
            i1 += 1;
            i2 += 1;
        }
    }
    out
}
