//! Three-way text merge. The first byte picks the options (style, level,
//! favour, algorithm, marker size); the rest is `base NUL ours NUL theirs`.
//! Checks: no panic; the conflict count equals the number of `<<<<<<<` marker
//! lines written (when no input has such a line of its own); `ours == theirs`
//! merges clean to `ours` (from the eager level up); `ours == base` gives
//! `theirs` and `theirs == base` gives `ours`; the view, `to_vec` and
//! `write_to` agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use site_merge::{Algorithm, ConflictStyle, Favor, Level, MergeOptions};

fn options(b: u8) -> MergeOptions {
    let style = [
        ConflictStyle::Merge,
        ConflictStyle::Diff3,
        ConflictStyle::ZealousDiff3,
        ConflictStyle::Merge,
    ][usize::from(b & 3)];
    let level = [
        Level::Minimal,
        Level::Eager,
        Level::Zealous,
        Level::ZealousAlnum,
    ][usize::from((b >> 2) & 3)];
    let favor = [
        None,
        Some(Favor::Ours),
        Some(Favor::Theirs),
        Some(Favor::Union),
        None,
        None,
        None,
        None,
    ][usize::from((b >> 4) & 7)];
    let algorithm = if b & 0x80 == 0 {
        Algorithm::Myers
    } else {
        Algorithm::Histogram
    };
    let marker_size = if b % 5 == 0 { 3 } else { 7 };
    MergeOptions::new()
        .style(style)
        .level(level)
        .favor(favor)
        .algorithm(algorithm)
        .marker_size(marker_size)
}

/// Lines starting with `size` times `<` followed by a space or the line end.
fn marker_lines(text: &[u8], size: usize) -> usize {
    text.split(|&b| b == b'\n')
        .filter(|line| {
            line.len() >= size
                && line[..size].iter().all(|&b| b == b'<')
                && matches!(line.get(size), None | Some(b' ') | Some(b'\r'))
        })
        .count()
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |&b| b == 0);
    let base = parts.next().unwrap_or_default();
    let ours = parts.next().unwrap_or_default();
    let theirs = parts.next().unwrap_or_default();
    // A third NUL would make the input binary: merge refuses it, which is fine.
    let opts = options(first);
    let size = if first % 5 == 0 { 3 } else { 7 };
    let result = opts.merge(base, ours, theirs);
    let Ok(out) = result else {
        return;
    };

    let view = opts
        .merge_view(base, ours, theirs)
        .expect("same inputs merge twice");
    assert_eq!(view.conflicts(), out.conflicts);
    assert_eq!(view.len(), out.bytes.len());
    let mut written = Vec::new();
    view.write_to(&mut written).expect("writing to a Vec");
    assert_eq!(written, out.bytes, "write_to and to_vec differ");

    let favoured = first >> 4 & 7;
    let favoured = (1..=3).contains(&favoured);
    if favoured {
        assert_eq!(out.conflicts, 0, "a favoured merge reports conflicts");
    }
    let markers_in_input = [base, ours, theirs]
        .iter()
        .any(|t| t.windows(size).any(|w| w.iter().all(|&b| b == b'<')));
    if !favoured && !markers_in_input {
        assert_eq!(
            marker_lines(&out.bytes, size),
            out.conflicts,
            "conflict count differs from the markers written: {:?}",
            String::from_utf8_lossy(&out.bytes)
        );
    }
    if ours == base {
        assert_eq!(out.bytes, theirs, "ours == base must give theirs");
        assert!(out.is_clean());
    }
    if theirs == base {
        assert_eq!(out.bytes, ours, "theirs == base must give ours");
        assert!(out.is_clean());
    }
    // ours == theirs: identical changes are clean from the eager level up.
    let level = (first >> 2) & 3;
    if ours == theirs && level >= 1 {
        assert_eq!(out.bytes, ours, "ours == theirs must give ours");
        assert!(out.is_clean());
    }
    // And independently of the input: merging a side with itself.
    let same = MergeOptions::new()
        .merge(base, ours, ours)
        .expect("valid inputs");
    assert!(same.is_clean(), "ours == theirs did not merge clean");
    assert_eq!(same.bytes, ours);
});
