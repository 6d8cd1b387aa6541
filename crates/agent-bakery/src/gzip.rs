//! gzip streams assembled from separately compressed chunks, with the chunks shared by the
//! packages of one bake compressed once.
//!
//! A bake builds dozens of packages that carry the same agent files and differ in a few
//! small ones (the updater's configuration, the plug-in's interval directory). Compressing
//! each package from scratch spends nearly all of the bake's time on the same bytes. Here a
//! tar stream is cut into chunks (see `package::tar_gz`), each chunk is deflated on its own
//! and ended with a sync flush (byte-aligned, not final, no reference to earlier data), and
//! the chunks are joined into one ordinary single-member gzip stream closed by an empty final
//! block, with the CRC-32 combined from the chunks' — the technique of `pigz`. Any inflater
//! reads it (gzip, GNU tar, dpkg, zlib). Chunks of at least [`CACHED_CHUNK_MIN`] bytes are
//! kept in a [`DeflateCache`] for the bake, keyed by their SHA-256, so the next package with
//! the same bytes reuses the compressed data. Output is deterministic: the same chunks give
//! the same bytes, cached or not.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use flate2::{Compress, Compression, Crc, FlushCompress};
use sha2::{Digest as _, Sha256};

/// Chunks smaller than this are compressed every time: they cost little, and keeping them
/// would make the cache grow with the number of configurations.
pub(crate) const CACHED_CHUNK_MIN: usize = 16 * 1024;

/// A chunk's deflate data (sync-flushed, not final) and the CRC-32 of its input.
#[derive(Debug)]
struct Deflated {
    data: Vec<u8>,
    crc: Crc,
}

type Slot = Arc<OnceLock<Option<Arc<Deflated>>>>;

/// Compressed chunks shared by the packages of one bake (see the module docs). Safe to use
/// from several threads; a chunk being compressed by one thread is waited for by the others.
#[derive(Debug, Default)]
pub struct DeflateCache {
    chunks: Mutex<HashMap<([u8; 32], u32), Slot>>,
}

impl DeflateCache {
    /// An empty cache.
    pub fn new() -> DeflateCache {
        DeflateCache::default()
    }

    /// How many distinct chunks are kept.
    pub fn len(&self) -> usize {
        self.chunks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no chunk is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn deflated(&self, chunk: &[u8], level: u32) -> io::Result<Arc<Deflated>> {
        if chunk.len() < CACHED_CHUNK_MIN {
            return deflate(chunk, level).map(Arc::new);
        }
        let key: [u8; 32] = Sha256::digest(chunk).into();
        let slot = Arc::clone(
            self.chunks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry((key, level))
                .or_default(),
        );
        match slot.get_or_init(|| deflate(chunk, level).ok().map(Arc::new)) {
            Some(d) => Ok(Arc::clone(d)),
            // Compressing into memory does not fail; should it, say why without caching.
            None => deflate(chunk, level).map(Arc::new),
        }
    }
}

/// Raw deflate of `input` at `level`, ended by a sync flush: byte-aligned and not final, so
/// that another chunk's data may follow.
fn deflate(input: &[u8], level: u32) -> io::Result<Deflated> {
    let mut compress = Compress::new(Compression::new(level), false);
    let mut data = Vec::with_capacity(input.len() / 2 + 64);
    loop {
        let consumed = usize::try_from(compress.total_in()).map_err(io::Error::other)?;
        let rest = input.get(consumed..).unwrap_or_default();
        compress
            .compress_vec(rest, &mut data, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        let done = usize::try_from(compress.total_in()).map_err(io::Error::other)? == input.len();
        // The flush is complete once a call returns with output space left.
        if done && data.len() < data.capacity() {
            break;
        }
        data.reserve(data.capacity().max(64));
    }
    let mut crc = Crc::new();
    crc.update(input);
    Ok(Deflated { data, crc })
}

/// The gzip stream of `bytes` cut at `cuts` (ascending offsets into `bytes`), compressed at
/// `level` (0–9), with no file name and modification time 0. The header is the one flate2's
/// `GzBuilder` writes (extra flags from the level, OS 255).
pub(crate) fn gzip_chunks(
    bytes: &[u8],
    cuts: &[usize],
    level: u32,
    cache: &DeflateCache,
) -> io::Result<Vec<u8>> {
    let extra_flags = match level {
        9.. => 2,
        0 | 1 => 4,
        _ => 0,
    };
    let mut out = Vec::with_capacity(bytes.len() / 2 + 64);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extra_flags, 255]);
    let mut crc = Crc::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([bytes.len()]) {
        let Some(chunk) = bytes.get(start..end) else {
            continue;
        };
        start = end;
        if chunk.is_empty() {
            continue;
        }
        let d = cache.deflated(chunk, level)?;
        out.extend_from_slice(&d.data);
        crc.combine(&d.crc);
    }
    // The final block: empty, fixed Huffman codes (RFC 1951 3.2.6): BFINAL=1, BTYPE=01 and
    // the 7-bit end-of-block code, padded to a byte.
    out.extend_from_slice(&[0x03, 0x00]);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .expect("a valid gzip stream");
        out
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn chunks_make_one_valid_stream_at_every_level() {
        let mut bytes = noise(100_000, 7);
        bytes.extend(std::iter::repeat_n(b'a', 70_000));
        bytes.extend(b"tail");
        for level in 0..=9 {
            for cuts in [vec![], vec![10, 50_000, 100_000], vec![0, 0, 170_004]] {
                let gz = gzip_chunks(&bytes, &cuts, level, &DeflateCache::new()).unwrap();
                assert_eq!(gunzip(&gz), bytes, "level {level}, cuts {cuts:?}");
                // Exactly one member: the trailer's length is the whole input's.
                let n = gz.len();
                assert_eq!(
                    u32::from_le_bytes(gz[n - 4..].try_into().unwrap()),
                    bytes.len() as u32
                );
            }
        }
    }

    #[test]
    fn compressible_data_shrinks_and_the_header_matches_flate2s() {
        let bytes = b"the same line again\n".repeat(10_000);
        let gz = gzip_chunks(&bytes, &[100_000], 6, &DeflateCache::new()).unwrap();
        assert!(gz.len() < bytes.len() / 50, "{} bytes", gz.len());
        let mut reference = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), Compression::new(6));
        reference.write_all(b"x").unwrap();
        let reference = reference.finish().unwrap();
        assert_eq!(gz[..10], reference[..10]);
    }

    #[test]
    fn cached_chunks_are_compressed_once_and_give_the_same_bytes() {
        let shared = noise(3 * CACHED_CHUNK_MIN, 1);
        let small = b"config one".to_vec();
        let cache = DeflateCache::new();
        let mut first = small.clone();
        first.extend(&shared);
        let a = gzip_chunks(&first, &[small.len()], 6, &cache).unwrap();
        assert_eq!(cache.len(), 1, "only the large chunk is kept");
        let mut second = b"config two!".to_vec();
        second.extend(&shared);
        let b = gzip_chunks(&second, &[11], 6, &cache).unwrap();
        assert_eq!(cache.len(), 1, "the shared chunk was reused");
        assert_eq!(gunzip(&a), first);
        assert_eq!(gunzip(&b), second);
        // Cached or not, the same input gives the same bytes.
        assert_eq!(
            gzip_chunks(&second, &[11], 6, &DeflateCache::new()).unwrap(),
            b
        );
        // Another level is another chunk.
        gzip_chunks(&first, &[small.len()], 1, &cache).unwrap();
        assert_eq!(cache.len(), 2);
    }
}
