//! Reading merge inputs into memory (the one place where the text engine's
//! callers touch files; the engine itself does no I/O).

use std::fs::File;
use std::io::{self, Read};
use std::ops::Deref;
use std::path::Path;

/// A file read whole into memory, to hand to [`crate::MergeOptions::merge`].
///
/// Large files are read into an anonymous mapping that asks the kernel for
/// transparent huge pages: the memory is then mapped in 2 MiB steps rather
/// than 4 KiB ones, and for a merge of a few MiB the page faults of the
/// input buffers otherwise cost more than the merge itself. Where the kernel
/// has no huge pages the buffer is an ordinary one. Small files, pipes and
/// other special files are read into a plain vector.
pub struct InputBuffer(Buffer);

enum Buffer {
    Heap(Vec<u8>),
    Mapped { map: memmap2::MmapMut, len: usize },
}

/// Files at least this large go into a huge-page mapping.
const MAPPED_MIN: u64 = 512 * 1024;

/// Mappings are whole multiples of this (the huge page size on x86-64 and
/// arm64), so that the kernel can align them and back them with huge pages.
const HUGE_PAGE: usize = 2 * 1024 * 1024;

impl InputBuffer {
    /// Reads the file at `path` whole.
    pub fn read(path: &Path) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let size = file.metadata()?.len();
        if size < MAPPED_MIN || usize::try_from(size).is_err() {
            return Self::read_to_vec(&mut file, size);
        }
        let expected = size as usize;
        // One byte of room beyond the size tells whether the file grew.
        let Some(room) = expected
            .checked_add(1)
            .and_then(|n| n.checked_next_multiple_of(HUGE_PAGE))
        else {
            return Self::read_to_vec(&mut file, size);
        };
        let Ok(mut map) = memmap2::MmapOptions::new().len(room).map_anon() else {
            return Self::read_to_vec(&mut file, size);
        };
        // Advice only: without transparent huge pages the mapping works as is.
        let _ = map.advise(memmap2::Advice::HugePage);
        let mut len = 0;
        while len < room {
            match file.read(&mut map[len..]) {
                Ok(0) => return Ok(InputBuffer(Buffer::Mapped { map, len })),
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // The file grew by a whole page or more while it was read: finish
        // on the heap.
        let mut bytes = map[..len].to_vec();
        file.read_to_end(&mut bytes)?;
        Ok(InputBuffer(Buffer::Heap(bytes)))
    }

    fn read_to_vec(file: &mut File, size: u64) -> io::Result<Self> {
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
        file.read_to_end(&mut bytes)?;
        Ok(InputBuffer(Buffer::Heap(bytes)))
    }
}

impl Deref for InputBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Buffer::Heap(bytes) => bytes,
            Buffer::Mapped { map, len } => &map[..*len],
        }
    }
}

impl AsRef<[u8]> for InputBuffer {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for InputBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputBuffer")
            .field("len", &self.len())
            .field("mapped", &matches!(self.0, Buffer::Mapped { .. }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(len: usize) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let buf = InputBuffer::read(&path).expect("read");
        assert_eq!(buf.len(), data.len());
        assert!(*buf == *data, "contents differ at length {len}");
        assert_eq!(
            matches!(buf.0, Buffer::Mapped { .. }),
            len as u64 >= MAPPED_MIN
        );
    }

    #[test]
    fn small_and_empty_files_read_whole() {
        roundtrip(0);
        roundtrip(1);
        roundtrip(4095);
    }

    #[test]
    fn large_files_read_whole_at_page_boundaries() {
        roundtrip(MAPPED_MIN as usize);
        roundtrip(HUGE_PAGE - 1);
        roundtrip(HUGE_PAGE);
        roundtrip(HUGE_PAGE + 1);
        roundtrip(3 * HUGE_PAGE + 17);
    }

    #[test]
    fn missing_file_is_an_error_with_its_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = InputBuffer::read(&dir.path().join("none")).expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn directories_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(InputBuffer::read(dir.path()).is_err());
    }

    #[test]
    fn special_files_without_a_size_read_to_the_end() {
        // /proc files report size 0 but have contents.
        let path = Path::new("/proc/self/status");
        if path.exists() {
            let buf = InputBuffer::read(path).expect("read");
            assert!(buf.starts_with(b"Name:"));
        }
    }
}
