//! The merge as a view of its inputs: written out piece by piece, it gives
//! the bytes of the in-memory merge, and write errors reach the caller.

use proptest::prelude::*;
use site_merge::{ConflictStyle, Favor, MergeOptions};

fn lines() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec!["a\n", "b\n", "c\n", "Y\n", "}\n", "z"]),
        0..12,
    )
    .prop_map(|l| l.concat().into_bytes())
}

fn options() -> impl Strategy<Value = MergeOptions> {
    (
        prop::sample::select(vec![
            ConflictStyle::Merge,
            ConflictStyle::Diff3,
            ConflictStyle::ZealousDiff3,
        ]),
        prop::sample::select(vec![
            None,
            Some(Favor::Ours),
            Some(Favor::Theirs),
            Some(Favor::Union),
        ]),
        0usize..100,
    )
        .prop_map(|(style, favor, size)| {
            MergeOptions::new()
                .style(style)
                .favor(favor)
                .marker_size(size)
        })
}

proptest! {
    #[test]
    fn written_view_equals_the_merge(b in lines(), x in lines(), y in lines(), opts in options()) {
        let whole = opts.merge(&b, &x, &y).unwrap();
        let view = opts.merge_view(&b, &x, &y).unwrap();
        let mut written = Vec::new();
        view.write_to(&mut written).unwrap();
        prop_assert_eq!(&written, &whole.bytes);
        prop_assert_eq!(&view.to_vec(), &whole.bytes);
        prop_assert_eq!(view.len(), whole.bytes.len());
        prop_assert_eq!(view.is_empty(), whole.bytes.is_empty());
        prop_assert_eq!(view.conflicts(), whole.conflicts);
        prop_assert_eq!(view.is_clean(), whole.is_clean());
    }
}

/// Accepts `room` bytes, then fails.
struct Full {
    room: usize,
}

impl std::io::Write for Full {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "disk full",
            ));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_fails_the_write() {
    let base: Vec<u8> = (0..50_000)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let mut ours = base.clone();
    ours.splice(0..0, b"new first line\n".iter().copied());
    let mut theirs = base.clone();
    theirs.extend_from_slice(b"new last line\n");
    let opts = MergeOptions::new();
    let view = opts.merge_view(&base, &ours, &theirs).unwrap();
    assert!(view.len() > 100_000);
    for room in [0, 10, 70_000, view.len() - 1] {
        let err = view.write_to(Full { room }).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "room {room}");
    }
    let mut all = Vec::new();
    view.write_to(&mut all).unwrap();
    assert_eq!(all, opts.merge(&base, &ours, &theirs).unwrap().bytes);
    assert!(view.write_to(Full { room: view.len() }).is_ok());
}

#[test]
fn a_view_of_an_unchanged_side_is_the_other_side() {
    let opts = MergeOptions::new();
    let view = opts.merge_view(b"a\n", b"a\n", b"b\n").unwrap();
    assert_eq!(view.to_vec(), b"b\n");
    assert!(view.is_clean());
    assert_eq!(format!("{view:?}"), "MergeView { len: 2, conflicts: 0 }");
}
