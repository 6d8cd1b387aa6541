//! The content-merge interface used for decision-table row 14, and a small
//! unified-diff helper for the conflict menu.

/// The result of a three-way content merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedText {
    /// The merged bytes; when `conflicts > 0` they contain git-style conflict
    /// markers (`<<<<<<<` / `=======` / `>>>>>>>`).
    pub text: Vec<u8>,
    /// The number of conflicting regions (0 = clean merge).
    pub conflicts: usize,
}

/// Why a merger could not merge at all (not: "the merge has conflicts").
pub type MergeFailure = Box<dyn std::error::Error + Send + Sync>;

/// A three-way text merge engine.
///
/// `base` is the old default (instantiated with the old macros), `ours` the
/// operator's file in the site, `theirs` the new default (new macros).
/// The site-merge text engine implements this; the tree logic only needs the
/// merged bytes and the conflict count.
pub trait TextMerger {
    /// Merges the changes `base → theirs` into `ours`.
    fn merge(&self, base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<MergedText, MergeFailure>;
}

impl<T: TextMerger + ?Sized> TextMerger for &T {
    fn merge(&self, base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<MergedText, MergeFailure> {
        (**self).merge(base, ours, theirs)
    }
}

/// A line-based unified diff (`diff -u` style, 3 lines of context) of `a` and `b`.
///
/// Good enough to show in the conflict menu; identical inputs give an empty result.
pub fn unified_diff(a: &[u8], b: &[u8], label_a: &str, label_b: &str) -> Vec<u8> {
    let la = split_lines(a);
    let lb = split_lines(b);
    let ops = diff_ops(&la, &lb);
    if ops.iter().all(|op| matches!(op, Op::Same(..))) {
        return Vec::new();
    }
    let mut out = format!("--- {label_a}\n+++ {label_b}\n").into_bytes();
    const CTX: usize = 3;
    // Group ops into hunks.
    let mut i = 0;
    while i < ops.len() {
        // find next change
        let Some(first) = ops[i..].iter().position(|op| !matches!(op, Op::Same(..))) else {
            break;
        };
        let change = i + first;
        let start = change.saturating_sub(CTX).max(i);
        // extend until CTX*2 unchanged lines in a row or the end
        let mut end = change;
        let mut same_run = 0;
        let mut j = change;
        while j < ops.len() {
            if matches!(ops[j], Op::Same(..)) {
                same_run += 1;
                if same_run > 2 * CTX {
                    break;
                }
            } else {
                same_run = 0;
                end = j;
            }
            j += 1;
        }
        let stop = (end + 1 + CTX).min(ops.len());
        let (mut a0, mut b0) = (0usize, 0usize);
        for op in &ops[..start] {
            match op {
                Op::Same(..) => {
                    a0 += 1;
                    b0 += 1;
                }
                Op::Del(_) => a0 += 1,
                Op::Add(_) => b0 += 1,
            }
        }
        let (mut an, mut bn) = (0usize, 0usize);
        let mut body = Vec::new();
        for op in &ops[start..stop] {
            let (prefix, line) = match *op {
                Op::Same(x) => {
                    an += 1;
                    bn += 1;
                    (b' ', la[x])
                }
                Op::Del(x) => {
                    an += 1;
                    (b'-', la[x])
                }
                Op::Add(y) => {
                    bn += 1;
                    (b'+', lb[y])
                }
            };
            body.push(prefix);
            body.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                body.extend_from_slice(b"\n\\ No newline at end of file\n");
            }
        }
        let range = |start: usize, n: usize| {
            if n == 0 {
                format!("{start},0")
            } else if n == 1 {
                format!("{}", start + 1)
            } else {
                format!("{},{n}", start + 1)
            }
        };
        out.extend_from_slice(format!("@@ -{} +{} @@\n", range(a0, an), range(b0, bn)).as_bytes());
        out.extend_from_slice(&body);
        i = stop;
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Same(usize),
    Del(usize),
    Add(usize),
}

fn split_lines(text: &[u8]) -> Vec<&[u8]> {
    text.split_inclusive(|&b| b == b'\n').collect()
}

/// LCS by dynamic programming after trimming the common prefix and suffix;
/// falls back to "delete all, add all" for very large middles.
fn diff_ops(a: &[&[u8]], b: &[&[u8]]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<Op> = (0..prefix).map(Op::Same).collect();
    let (n, m) = (am.len(), bm.len());
    if n.saturating_mul(m) > 16_000_000 {
        ops.extend((0..n).map(|i| Op::Del(prefix + i)));
        ops.extend((0..m).map(|j| Op::Add(prefix + j)));
    } else {
        // lcs[i][j] = LCS length of am[i..], bm[j..]
        let w = m + 1;
        let mut lcs = vec![0u32; (n + 1) * w];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * w + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                ops.push(Op::Same(prefix + i));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
                ops.push(Op::Del(prefix + i));
                i += 1;
            } else {
                ops.push(Op::Add(prefix + j));
                j += 1;
            }
        }
    }
    let a_off = a.len() - suffix;
    ops.extend((0..suffix).map(|k| Op::Same(a_off + k)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_of_one_changed_line() {
        let d = unified_diff(b"a\nb\nc\n", b"a\nB\nc\n", "old", "new");
        assert_eq!(
            String::from_utf8(d).unwrap(),
            "--- old\n+++ new\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
    }

    #[test]
    fn identical_gives_nothing() {
        assert!(unified_diff(b"x\n", b"x\n", "a", "b").is_empty());
    }

    #[test]
    fn far_apart_changes_make_two_hunks() {
        let a: String = (0..20).map(|i| format!("{i}\n")).collect();
        let b: String = (0..20)
            .map(|i| match i {
                2 => "two\n".to_owned(),
                17 => "seventeen\n".to_owned(),
                _ => format!("{i}\n"),
            })
            .collect();
        let d = String::from_utf8(unified_diff(a.as_bytes(), b.as_bytes(), "a", "b")).unwrap();
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(d.contains("@@ -1,6 +1,6 @@"), "{d}");
    }
}
