//! git's histogram diff: recursively split the files around the longest
//! common run of lines that are rare in the first file; fall back to Myers
//! when every common line is too frequent.
//!
//! Line numbers are 1-based inside this module, as in the algorithm's
//! description; line `l` of a file is `ids[l - 1]`.

use super::xdiff::{Algorithm, IdMap, Rchg, raw_diff};

const MAX_CHAIN_LENGTH: u32 = 64;

#[derive(Default, Clone, Copy)]
struct Region {
    begin1: u32,
    end1: u32,
    begin2: u32,
    end2: u32,
}

struct Rec {
    ptr: u32,
    cnt: u32,
}

struct Index {
    map: IdMap<u32>,
    recs: Vec<Rec>,
    line_map: Vec<u32>,
    next_ptrs: Vec<u32>,
    ptr_shift: u32,
    cnt: u32,
    has_common: bool,
}

impl Index {
    fn cnt_at(&self, ptr: u32) -> u32 {
        self.recs[self.line_map[(ptr - self.ptr_shift) as usize] as usize].cnt
    }
    fn next_ptr(&self, ptr: u32) -> u32 {
        self.next_ptrs[(ptr - self.ptr_shift) as usize]
    }
}

/// Histogram diff of `a` against `b`, filling the change flags.
pub(crate) fn diff(a: &[u32], b: &[u32], ra: &mut Rchg, rb: &mut Rchg) {
    let mut stack = vec![(1u32, a.len() as u32, 1u32, b.len() as u32)];
    while let Some((line1, count1, line2, count2)) = stack.pop() {
        if count1 == 0 && count2 == 0 {
            continue;
        }
        if count1 == 0 {
            for l in line2..line2 + count2 {
                rb.set(l as usize - 1, true);
            }
            continue;
        }
        if count2 == 0 {
            for l in line1..line1 + count1 {
                ra.set(l as usize - 1, true);
            }
            continue;
        }
        let (lcs, fallback) = find_lcs(a, b, line1, count1, line2, count2);
        if fallback {
            let sa = &a[line1 as usize - 1..(line1 + count1) as usize - 1];
            let sb = &b[line2 as usize - 1..(line2 + count2) as usize - 1];
            let mut la = Rchg::new(sa.len());
            let mut lb = Rchg::new(sb.len());
            raw_diff(sa, sb, None, Algorithm::Myers, &mut la, &mut lb);
            for k in 0..sa.len() {
                ra.set(line1 as usize - 1 + k, la.get(k as isize));
            }
            for k in 0..sb.len() {
                rb.set(line2 as usize - 1 + k, lb.get(k as isize));
            }
        } else if lcs.begin1 == 0 && lcs.begin2 == 0 {
            for l in line1..line1 + count1 {
                ra.set(l as usize - 1, true);
            }
            for l in line2..line2 + count2 {
                rb.set(l as usize - 1, true);
            }
        } else {
            let end1 = line1 + count1 - 1;
            let end2 = line2 + count2 - 1;
            stack.push((lcs.end1 + 1, end1 - lcs.end1, lcs.end2 + 1, end2 - lcs.end2));
            stack.push((line1, lcs.begin1 - line1, line2, lcs.begin2 - line2));
        }
    }
}

/// Finds the split region; the flag asks for the Myers fallback.
fn find_lcs(
    a: &[u32],
    b: &[u32],
    line1: u32,
    count1: u32,
    line2: u32,
    count2: u32,
) -> (Region, bool) {
    let mut index = Index {
        map: IdMap::default(),
        recs: Vec::new(),
        line_map: vec![0; count1 as usize],
        next_ptrs: vec![0; count1 as usize],
        ptr_shift: line1,
        cnt: 0,
        has_common: false,
    };
    index.map.reserve(count1 as usize);
    let end1 = line1 + count1 - 1;
    let mut ptr = end1;
    while ptr >= line1 {
        let id = a[ptr as usize - 1];
        let slot = (ptr - line1) as usize;
        if let Some(&ri) = index.map.get(&id) {
            let rec = &mut index.recs[ri as usize];
            index.next_ptrs[slot] = rec.ptr;
            rec.ptr = ptr;
            rec.cnt = rec.cnt.saturating_add(1);
            index.line_map[slot] = ri;
        } else {
            let ri = index.recs.len() as u32;
            index.recs.push(Rec { ptr, cnt: 1 });
            index.map.insert(id, ri);
            index.line_map[slot] = ri;
        }
        ptr -= 1;
    }
    index.cnt = MAX_CHAIN_LENGTH + 1;
    let mut lcs = Region::default();
    let end2 = line2 + count2 - 1;
    let mut b_ptr = line2;
    while b_ptr <= end2 {
        b_ptr = try_lcs(a, b, &mut index, &mut lcs, b_ptr, line1, end1, line2, end2);
    }
    let fallback = index.has_common && MAX_CHAIN_LENGTH < index.cnt;
    (lcs, fallback)
}

#[allow(clippy::too_many_arguments)]
fn try_lcs(
    a: &[u32],
    b: &[u32],
    index: &mut Index,
    lcs: &mut Region,
    b_ptr: u32,
    line1: u32,
    end1: u32,
    line2: u32,
    end2: u32,
) -> u32 {
    let mut b_next = b_ptr + 1;
    let id = b[b_ptr as usize - 1];
    let Some(&ri) = index.map.get(&id) else {
        return b_next;
    };
    let rec_cnt = index.recs[ri as usize].cnt;
    if rec_cnt > index.cnt {
        index.has_common = true;
        return b_next;
    }
    let eq = |x: u32, y: u32| a[x as usize - 1] == b[y as usize - 1];
    let mut as_ = index.recs[ri as usize].ptr;
    index.has_common = true;
    loop {
        let mut np = index.next_ptr(as_);
        let mut bs = b_ptr;
        let mut ae = as_;
        let mut be = bs;
        let mut rc = rec_cnt;
        while line1 < as_ && line2 < bs && eq(as_ - 1, bs - 1) {
            as_ -= 1;
            bs -= 1;
            if 1 < rc {
                rc = rc.min(index.cnt_at(as_));
            }
        }
        while ae < end1 && be < end2 && eq(ae + 1, be + 1) {
            ae += 1;
            be += 1;
            if 1 < rc {
                rc = rc.min(index.cnt_at(ae));
            }
        }
        if b_next <= be {
            b_next = be + 1;
        }
        if lcs.end1 - lcs.begin1 < ae - as_ || rc < index.cnt {
            *lcs = Region {
                begin1: as_,
                end1: ae,
                begin2: bs,
                end2: be,
            };
            index.cnt = rc;
        }
        if np == 0 {
            break;
        }
        while np <= ae {
            np = index.next_ptr(np);
            if np == 0 {
                return b_next;
            }
        }
        as_ = np;
    }
    b_next
}
