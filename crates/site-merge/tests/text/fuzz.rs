//! Inputs found by the `merge` fuzz target (`fuzz/fuzz_targets/merge.rs`),
//! minimised and kept in `tests/data/fuzz/`, replayed with the target's checks.
//! The file format is the target's: one byte of options, then
//! `base NUL ours NUL theirs`.

use site_merge::{Algorithm, ConflictStyle, Favor, Level, MergeOptions};

/// The fuzz target's option byte.
fn options(b: u8) -> (MergeOptions, usize, bool) {
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
    ]
    .get(usize::from((b >> 4) & 7))
    .copied()
    .flatten();
    let algorithm = if b & 0x80 == 0 {
        Algorithm::Myers
    } else {
        Algorithm::Histogram
    };
    let size = if b.is_multiple_of(5) { 3 } else { 7 };
    let opts = MergeOptions::new()
        .style(style)
        .level(level)
        .favor(favor)
        .algorithm(algorithm)
        .marker_size(size);
    (opts, size, favor.is_some())
}

/// Lines starting with `size` times `<` followed by a space or the line end.
fn marker_lines(text: &[u8], size: usize) -> usize {
    text.split(|&b| b == b'\n')
        .filter(|line| {
            line.len() >= size
                && line[..size].iter().all(|&b| b == b'<')
                && matches!(line.get(size), None | Some(b' ' | b'\r'))
        })
        .count()
}

#[test]
fn fuzz_regressions_keep_one_marker_line_per_conflict() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("merge-")
        })
        .collect();
    assert!(
        !files.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let (opts, size, favoured) = options(data[0]);
        let mut parts = data[1..].splitn(3, |&b| b == 0);
        let (base, ours, theirs) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let out = opts.merge(base, ours, theirs).unwrap();
        if !favoured {
            assert_eq!(
                marker_lines(&out.bytes, size),
                out.conflicts,
                "{}: {:?}",
                path.display(),
                String::from_utf8_lossy(&out.bytes)
            );
        }
    }
}

/// `merge-zdiff3-glued-marker`: at the minimal level identical sides
/// conflict; zdiff3 moved their common last line (no newline) in front of
/// the conflict, and `<<<<<<<` followed it on the same line.
#[test]
fn zdiff3_never_moves_a_last_line_without_newline_before_the_marker() {
    let out = MergeOptions::new()
        .style(ConflictStyle::ZealousDiff3)
        .level(Level::Minimal)
        .merge(b"base\n", b"same", b"same")
        .unwrap();
    assert_eq!(out.conflicts, 1);
    assert_eq!(
        String::from_utf8(out.bytes).unwrap(),
        "<<<<<<< ours\n||||||| base\nbase\n=======\n>>>>>>> theirs\nsame"
    );
}
