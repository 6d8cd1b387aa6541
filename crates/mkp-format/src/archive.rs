//! Reading MKP archives: the outer gzip tar, its members and the manifest.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::bufread::GzDecoder;

use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Manifest;
use crate::part::PackagePart;

/// Resource limits for reading and unpacking untrusted packages.
///
/// The defaults are far above any real MKP (the largest of 2134 public ones unpacks to a few
/// MiB) and low enough that a decompression bomb fails within a fraction of a second.
///
/// ```
/// let limits = mkp_format::Limits::default()
///     .max_unpacked_bytes(64 << 20)
///     .max_entries(10_000);
/// assert_eq!(limits.unpacked_bytes(), 64 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_unpacked_bytes: u64,
    max_entries: u64,
    max_ratio: u64,
    ratio_grace_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_unpacked_bytes: 1 << 30,
            max_entries: 200_000,
            max_ratio: 500,
            ratio_grace_bytes: 8 << 20,
        }
    }
}

impl Limits {
    /// Limits without any cap (only for trusted input).
    pub fn unlimited() -> Self {
        Limits {
            max_unpacked_bytes: u64::MAX,
            max_entries: u64::MAX,
            max_ratio: u64::MAX,
            ratio_grace_bytes: u64::MAX,
        }
    }

    /// Caps the bytes produced by decompression, and separately the bytes written when
    /// unpacking (default 1 GiB).
    #[must_use]
    pub fn max_unpacked_bytes(mut self, bytes: u64) -> Self {
        self.max_unpacked_bytes = bytes;
        self
    }

    /// Caps the number of tar entries read from one archive (default 200,000).
    #[must_use]
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries;
        self
    }

    /// Caps the compression ratio (unpacked / compressed bytes; default 500), checked once
    /// more than `grace_bytes` have been unpacked (default 8 MiB).
    #[must_use]
    pub fn max_ratio(mut self, ratio: u64, grace_bytes: u64) -> Self {
        self.max_ratio = ratio;
        self.ratio_grace_bytes = grace_bytes;
        self
    }

    /// The configured byte cap.
    pub fn unpacked_bytes(&self) -> u64 {
        self.max_unpacked_bytes
    }

    /// The configured entry cap.
    pub fn entries(&self) -> u64 {
        self.max_entries
    }

    pub(crate) fn check_entries(&self, count: u64) -> Result<()> {
        if count > self.max_entries {
            return Err(ErrorKind::LimitExceeded {
                what: format!("the archive has more than {} entries", self.max_entries),
            }
            .into());
        }
        Ok(())
    }
}

/// How the outer archive was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Container {
    /// A gzip-compressed tar (what Checkmk writes and reads).
    Gzip,
    /// An uncompressed tar. Checkmk rejects these ("not a gzip file"); we read them.
    PlainTar,
}

#[derive(Debug, Clone)]
struct Member {
    name: String,
    offset: usize,
    size: usize,
    regular: bool,
}

/// An MKP read into memory: its manifest and the members of the outer archive.
#[derive(Debug, Clone)]
pub struct Mkp {
    source: Option<PathBuf>,
    tar: Vec<u8>,
    members: Vec<Member>,
    manifest: Manifest,
    container: Container,
}

fn gzip_member_ends(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::UnexpectedEof
}

/// Decompresses all gzip members, enforcing the limits while data arrives.
fn gunzip(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len().saturating_mul(4).min(64 << 20));
    let mut rest = bytes;
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = true;
    while first || rest.starts_with(&[0x1f, 0x8b]) {
        first = false;
        let mut dec = GzDecoder::new(rest);
        loop {
            let n = match dec.read(&mut buf) {
                Ok(n) => n,
                Err(e) if gzip_member_ends(&e) => {
                    return Err(ErrorKind::Damaged {
                        detail: "the compressed data ends early (an incomplete download?)".into(),
                    }
                    .into());
                }
                Err(e) => {
                    return Err(ErrorKind::Damaged {
                        detail: format!("corrupt compressed data ({e})"),
                    }
                    .into());
                }
            };
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            let produced = out.len() as u64;
            if produced > limits.max_unpacked_bytes {
                return Err(ErrorKind::LimitExceeded {
                    what: format!(
                        "the package unpacks to more than {} bytes",
                        limits.max_unpacked_bytes
                    ),
                }
                .into());
            }
            if produced > limits.ratio_grace_bytes {
                let consumed = (bytes.len() - dec.get_ref().len()).max(1) as u64;
                if produced / consumed > limits.max_ratio {
                    return Err(ErrorKind::LimitExceeded {
                        what: format!(
                            "the compression ratio exceeds {}:1 ({produced} bytes from {consumed})",
                            limits.max_ratio
                        ),
                    }
                    .into());
                }
            }
        }
        rest = dec.into_inner();
    }
    // Trailing bytes after the last gzip member (zero padding, junk) are ignored, as Python
    // stops reading at the end of the tar archive.
    Ok(out)
}

fn looks_like_tar(bytes: &[u8]) -> bool {
    if bytes.len() < 512 {
        return false;
    }
    if &bytes[257..262] == b"ustar" {
        return true;
    }
    // Old V7 tar: verify the header checksum.
    let field = &bytes[148..156];
    let text: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| char::from(*b))
        .collect();
    let Ok(stored) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = bytes[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == stored && bytes[0] != 0
}

/// A guess what a non-gzip, non-tar file is, for the error message.
fn guess_content(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(1024)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let trimmed = text.trim_start();
    if bytes.is_empty() {
        "an empty file"
    } else if trimmed.starts_with("<!doctype html")
        || trimmed.starts_with("<html")
        || text.contains("<html")
    {
        "an HTML page (a web page was saved instead of the package?)"
    } else if trimmed.starts_with('<') {
        "an XML or HTML document"
    } else if trimmed.starts_with("version https://git-lfs") {
        "a Git LFS pointer file (the package itself was not downloaded)"
    } else if trimmed.starts_with('{') && text.contains("'name'") {
        "a bare manifest ('info' text), not a packaged MKP"
    } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
        "a JSON or Python text file"
    } else if head.starts_with(b"PK\x03\x04") {
        "a zip archive"
    } else if head.starts_with(b"BZh") {
        "a bzip2-compressed file"
    } else if head.starts_with(b"\xfd7zXZ") {
        "an xz-compressed file"
    } else if head.starts_with(b"\x28\xb5\x2f\xfd") {
        "a zstd-compressed file"
    } else if std::str::from_utf8(head).is_ok() {
        "a text file"
    } else {
        "unknown binary data"
    }
}

/// Lists the members of a tar held in memory, checking every declared size against the data.
pub(crate) struct TarEntry {
    pub(crate) name: String,
    pub(crate) entry_type: tar::EntryType,
    pub(crate) link_name: Option<String>,
    pub(crate) offset: usize,
    pub(crate) size: usize,
}

pub(crate) fn list_tar(data: &[u8], limits: &Limits) -> Result<Vec<TarEntry>> {
    let mut archive = tar::Archive::new(data);
    let entries = archive.entries().map_err(|e| damaged_tar(&e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| damaged_tar(&e))?;
        limits.check_entries(out.len() as u64 + 1)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let size = entry.size();
        let offset = usize::try_from(entry.raw_file_position()).unwrap_or(usize::MAX);
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| offset.checked_add(s));
        let size = match end {
            Some(end) if end <= data.len() => end - offset,
            _ => {
                return Err(ErrorKind::Damaged {
                    detail: format!(
                        "member '{name}' declares {size} bytes, but the archive ends before that"
                    ),
                }
                .into());
            }
        };
        let link_name = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        out.push(TarEntry {
            name,
            entry_type: entry.header().entry_type(),
            link_name,
            offset,
            size,
        });
    }
    Ok(out)
}

fn damaged_tar(e: &std::io::Error) -> Error {
    ErrorKind::Damaged {
        detail: format!("invalid tar data ({e})"),
    }
    .into()
}

impl Mkp {
    /// Reads and parses the MKP at `path` with the default [`Limits`].
    pub fn open(path: impl AsRef<Path>) -> Result<Mkp> {
        Mkp::open_with(path, &Limits::default())
    }

    /// Reads and parses the MKP at `path`. Errors name the file.
    pub fn open_with(path: impl AsRef<Path>, limits: &Limits) -> Result<Mkp> {
        let path = path.as_ref();
        // Refuse absurdly large files before reading them into memory.
        if let Ok(meta) = std::fs::metadata(path)
            && meta.len() > limits.max_unpacked_bytes.saturating_add(1 << 20)
        {
            return Err(Error::from(ErrorKind::LimitExceeded {
                what: format!(
                    "the file is {} bytes, more than the limit of {} bytes",
                    meta.len(),
                    limits.max_unpacked_bytes
                ),
            })
            .with_file(path));
        }
        let bytes =
            std::fs::read(path).map_err(|e| Error::io("cannot read file", e).with_file(path))?;
        let mut mkp = Mkp::from_bytes(&bytes, limits).map_err(|e| e.with_file(path))?;
        mkp.source = Some(path.to_path_buf());
        Ok(mkp)
    }

    /// The file the package was read from (set by [`Mkp::open`]); extraction errors name it.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Parses an MKP held in memory: decompresses it, lists the members and reads `info`
    /// (`info.json` is not consulted, as in Checkmk).
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Mkp> {
        let (tar, container) = if bytes.starts_with(&[0x1f, 0x8b]) {
            (gunzip(bytes, limits)?, Container::Gzip)
        } else if looks_like_tar(bytes) {
            if bytes.len() as u64 > limits.max_unpacked_bytes {
                return Err(ErrorKind::LimitExceeded {
                    what: format!(
                        "the package is larger than {} bytes",
                        limits.max_unpacked_bytes
                    ),
                }
                .into());
            }
            (bytes.to_vec(), Container::PlainTar)
        } else {
            return Err(ErrorKind::NotGzip {
                looks_like: guess_content(bytes),
            }
            .into());
        };
        if container == Container::Gzip && !looks_like_tar(&tar) && tar.iter().any(|b| *b != 0) {
            return Err(ErrorKind::Damaged {
                detail: "the gzip data does not contain a tar archive".into(),
            }
            .into());
        }
        let entries = list_tar(&tar, limits)?;
        let members: Vec<Member> = entries
            .into_iter()
            .map(|e| Member {
                name: e.name.trim_end_matches('/').to_string(),
                offset: e.offset,
                size: e.size,
                regular: e.entry_type.is_file() || e.entry_type == tar::EntryType::Continuous,
            })
            .collect();
        // Like Python's tarfile, the last member of a name wins.
        let info = members
            .iter()
            .rev()
            .find(|m| m.name == "info")
            .ok_or(ErrorKind::InfoMissing)?;
        if !info.regular {
            return Err(ErrorKind::InfoNotRegular.into());
        }
        let raw = &tar[info.offset..info.offset + info.size];
        let text = std::str::from_utf8(raw).map_err(|_| {
            Error::from(ErrorKind::NotUtf8 {
                what: "the manifest".into(),
            })
            .with_member("info")
        })?;
        let manifest = Manifest::from_info(text).map_err(|e| e.with_member("info"))?;
        Ok(Mkp {
            source: None,
            tar,
            members,
            manifest,
            container,
        })
    }

    /// The manifest (from `info`).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest, consuming the package.
    pub fn into_manifest(self) -> Manifest {
        self.manifest
    }

    /// How the outer archive was stored.
    pub fn container(&self) -> Container {
        self.container
    }

    /// The names of the outer archive's members, in archive order.
    pub fn member_names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.name.as_str())
    }

    /// The content of a regular member (the last one of that name), e.g. `info.json`.
    pub fn member(&self, name: &str) -> Option<&[u8]> {
        self.members
            .iter()
            .rev()
            .find(|m| m.name == name && m.regular)
            .map(|m| &self.tar[m.offset..m.offset + m.size])
    }

    /// The uncompressed tar of `part` (`<part>.tar`), if present.
    pub fn part_tar(&self, part: PackagePart) -> Option<&[u8]> {
        self.member(&part.tar_name())
    }

    /// The size of the decompressed outer tar in bytes.
    pub fn unpacked_size(&self) -> usize {
        self.tar.len()
    }
}

/// Reads only the manifest of an MKP held in memory (what `mkp inspect` shows).
pub fn read_manifest(bytes: &[u8], limits: &Limits) -> Result<Manifest> {
    Mkp::from_bytes(bytes, limits).map(Mkp::into_manifest)
}
