//! Writing MKPs: part tars (GNU format, like GNU tar) and the outer gzip tar (like Python's
//! `tarfile`), in Checkmk's member order.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::{Compression, GzBuilder};

use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Manifest, PACKAGED_BY, unsafe_path_reason};
use crate::part::PackagePart;

/// Tar archives are padded to whole records of this size (GNU tar's and Python's default).
const RECORD: usize = 10240;

/// Options for writing packages.
///
/// ```
/// let opts = mkp_format::PackOptions::default().mtime(1_700_000_000);
/// assert_eq!(opts.fixed_mtime(), Some(1_700_000_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackOptions {
    mtime: Option<u64>,
    level: u32,
    version_packaged: String,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            mtime: None,
            level: 9,
            version_packaged: PACKAGED_BY.to_string(),
        }
    }
}

impl PackOptions {
    /// Uses this timestamp for every member, every part-tar entry and the gzip header, and
    /// owner `0:0` for part-tar entries: the output then depends only on the input
    /// (reproducible builds). Default: the current time and the files' real owners.
    #[must_use]
    pub fn mtime(mut self, seconds: u64) -> Self {
        self.mtime = Some(seconds);
        self
    }

    /// gzip level 0-9 (default 9, as Checkmk).
    #[must_use]
    pub fn compression_level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// The `version.packaged` stamp (default [`PACKAGED_BY`]).
    #[must_use]
    pub fn version_packaged(mut self, stamp: impl Into<String>) -> Self {
        self.version_packaged = stamp.into();
        self
    }

    /// The fixed timestamp, if set.
    pub fn fixed_mtime(&self) -> Option<u64> {
        self.mtime
    }

    fn now(&self) -> u64 {
        self.mtime.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
    }
}

fn pad_to_record(buf: &mut Vec<u8>) {
    let rem = buf.len() % RECORD;
    if rem != 0 {
        buf.resize(buf.len() + RECORD - rem, 0);
    }
}

fn tar_io(e: std::io::Error) -> Error {
    Error::io("cannot build the tar archive", e)
}

/// One file of a part tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartFile {
    /// Path inside the part directory (as listed in the manifest).
    pub path: String,
    /// Content.
    pub data: Vec<u8>,
    /// Permission bits stored in the tar (GNU tar keeps the source file's mode).
    pub mode: u32,
    /// Modification time stored in the tar.
    pub mtime: u64,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
}

impl PartFile {
    /// A file with mode 0644, owner 0:0 and mtime 0.
    pub fn new(path: impl Into<String>, data: impl Into<Vec<u8>>) -> PartFile {
        PartFile {
            path: path.into(),
            data: data.into(),
            mode: 0o644,
            mtime: 0,
            uid: 0,
            gid: 0,
        }
    }
}

/// Builds an uncompressed GNU-format part tar (like `tar cf - -C <dir> <files>`).
pub fn build_part_tar(files: &[PartFile]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for f in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(f.data.len() as u64);
        header.set_mode(f.mode & 0o7777);
        header.set_uid(f.uid);
        header.set_gid(f.gid);
        header.set_mtime(f.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, &f.path, f.data.as_slice())
            .map_err(tar_io)?;
    }
    let mut out = builder.into_inner().map_err(tar_io)?;
    pad_to_record(&mut out);
    Ok(out)
}

/// Writes an MKP from a manifest and the part tars: members `info`, `info.json`, then one
/// `<part>.tar` per part with files, in manifest order; every member mode 0644, owner 0:0,
/// gzip level 9 with OS byte 255 and no file name, like Checkmk's tool.
///
/// The manifest is written as given (see [`Manifest::for_packaging`] to drop extra keys and
/// stamp `version.packaged`). Parts whose file list is empty get no tar.
pub fn write_mkp(
    manifest: &Manifest,
    part_tars: &[(PackagePart, Vec<u8>)],
    options: &PackOptions,
) -> Result<Vec<u8>> {
    let mtime = options.now();
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| -> Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, data).map_err(tar_io)
    };
    add("info", manifest.to_info().as_bytes())?;
    add("info.json", manifest.to_info_json().as_bytes())?;
    for (part, files) in &manifest.files {
        if files.is_empty() {
            continue;
        }
        let Some((_, data)) = part_tars.iter().find(|(p, _)| p == part) else {
            return Err(ErrorKind::MissingPartTar {
                part: part.id().to_string(),
            }
            .into());
        };
        add(&part.tar_name(), data)?;
    }
    let mut tar = builder.into_inner().map_err(tar_io)?;
    pad_to_record(&mut tar);

    let mut gz = GzBuilder::new()
        .mtime(u32::try_from(mtime).unwrap_or(0))
        .operating_system(255)
        .write(Vec::new(), Compression::new(options.level));
    gz.write_all(&tar)
        .map_err(|e| Error::io("cannot compress the package", e))?;
    gz.finish()
        .map_err(|e| Error::io("cannot compress the package", e))
}

/// Builds an MKP from files on disk, as `mkp package` does: every listed file is read from
/// `dir_of(part)/<path>` (symlinks followed), the manifest is rebuilt from its ten known
/// fields with `version.packaged` from `options`.
///
/// Refuses paths that could leave the part directory (absolute, `..`), missing files and
/// anything that is not a regular file, naming the path.
pub fn package_from_dirs(
    manifest: &Manifest,
    dir_of: impl Fn(PackagePart) -> PathBuf,
    options: &PackOptions,
) -> Result<Vec<u8>> {
    let manifest = manifest.for_packaging(&options.version_packaged);
    manifest.check_paths()?;
    let mut part_tars = Vec::new();
    for (part, paths) in &manifest.files {
        if paths.is_empty() {
            continue;
        }
        let dir = dir_of(*part);
        let mut files = Vec::with_capacity(paths.len());
        for rel in paths {
            files.push(read_source(&dir, rel, options)?);
        }
        part_tars.push((*part, build_part_tar(&files)?));
    }
    write_mkp(&manifest, &part_tars, options)
}

fn read_source(dir: &Path, rel: &str, options: &PackOptions) -> Result<PartFile> {
    let full = dir.join(rel);
    let shown = full.display().to_string();
    if let Some(reason) = unsafe_path_reason(rel) {
        return Err(ErrorKind::UnsafePath {
            path: rel.to_string(),
            reason,
        }
        .into());
    }
    let meta = std::fs::metadata(&full).map_err(|e| ErrorKind::SourceFile {
        path: shown.clone(),
        problem: if e.kind() == std::io::ErrorKind::NotFound {
            "the file does not exist".to_string()
        } else {
            e.to_string()
        },
    })?;
    if !meta.is_file() {
        return Err(ErrorKind::SourceFile {
            path: shown,
            problem: "not a regular file (list the files of a directory one by one)".into(),
        }
        .into());
    }
    let data = std::fs::read(&full).map_err(|e| ErrorKind::SourceFile {
        path: shown.clone(),
        problem: e.to_string(),
    })?;
    let mut file = PartFile::new(rel, data);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        file.mode = meta.mode() & 0o7777;
        if options.fixed_mtime().is_none() {
            file.uid = u64::from(meta.uid());
            file.gid = u64::from(meta.gid());
            file.mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        }
    }
    if let Some(m) = options.fixed_mtime() {
        file.mtime = m;
    }
    #[cfg(not(unix))]
    if options.fixed_mtime().is_none() {
        file.mtime = options.now();
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{Limits, Mkp};
    use crate::manifest::PackageName;

    /// A package of one `bin` file written by `package_from_dirs` from a temp dir.
    fn package_one_file(options: &PackOptions) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tool"),
            b"#!/bin/sh\necho hello\n".repeat(50),
        )
        .unwrap();
        let m = Manifest::template(
            PackageName::new("one").unwrap(),
            "2.3.0",
            Some(vec![(PackagePart::Bin, vec!["tool".into()])]),
        );
        package_from_dirs(&m, |_| dir.path().to_owned(), options).unwrap()
    }

    /// The entries of a part tar: (path, mtime, uid, gid, mode).
    fn part_entries(tar_bytes: &[u8]) -> Vec<(String, u64, u64, u64, u32)> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn tars_are_padded_to_whole_records() {
        // One small file: header, one data block and the two end blocks (2 KiB) fill one
        // 10 KiB record, as with GNU tar; a record's worth of data takes two.
        let one = build_part_tar(&[PartFile::new("a", b"x".to_vec())]).unwrap();
        assert_eq!(one.len(), RECORD);
        let exact = build_part_tar(&[PartFile::new("a", vec![b'x'; RECORD - 3 * 512])]).unwrap();
        assert_eq!(exact.len(), RECORD);
        let two = build_part_tar(&[PartFile::new("a", vec![b'x'; RECORD])]).unwrap();
        assert_eq!(two.len(), 2 * RECORD);
        // The outer tar too (Python's tarfile pads the same way).
        let gz = package_one_file(&PackOptions::default().mtime(1));
        let mut outer = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut outer).unwrap();
        assert_eq!(outer.len() % RECORD, 0);
        assert!(outer.len() < 4 * RECORD, "{}", outer.len());
    }

    #[test]
    fn part_tars_keep_only_the_permission_bits() {
        let mut f = PartFile::new("a", b"x".to_vec());
        f.mode = 0o100_750;
        let entries = part_entries(&build_part_tar(&[f]).unwrap());
        assert_eq!(entries[0].4, 0o750);
    }

    #[test]
    fn missing_files_and_directories_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let pack = |rel: &str| {
            let m = Manifest::template(
                PackageName::new("one").unwrap(),
                "2.3.0",
                Some(vec![(PackagePart::Bin, vec![rel.into()])]),
            );
            package_from_dirs(&m, |_| dir.path().to_owned(), &PackOptions::default())
                .unwrap_err()
                .to_string()
        };
        let missing = pack("gone");
        assert!(
            missing.contains("gone") && missing.contains("does not exist"),
            "{missing}"
        );
        let sub = pack("sub");
        assert!(sub.contains("not a regular file"), "{sub}");
    }

    #[test]
    fn compression_level_reaches_the_gzip_stream() {
        // gzip's XFL byte: 2 for the best compression (9, also when a higher level is
        // clamped), 4 for the fastest (1).
        let best = package_one_file(&PackOptions::default().mtime(1).compression_level(42));
        let fast = package_one_file(&PackOptions::default().mtime(1).compression_level(1));
        let stored = package_one_file(&PackOptions::default().mtime(1).compression_level(0));
        assert_eq!(best[8], 2);
        assert_eq!(fast[8], 4);
        assert!(stored.len() > fast.len() && fast.len() >= best.len());
        assert_eq!(
            PackOptions::default().compression_level(42),
            PackOptions::default()
        );
    }

    #[test]
    fn version_packaged_is_stamped_into_the_manifest() {
        let bytes = package_one_file(&PackOptions::default().version_packaged("2.3.0p7"));
        let mkp = Mkp::from_bytes(&bytes, &Limits::default()).unwrap();
        assert_eq!(mkp.manifest().version_packaged, "2.3.0p7");
    }

    #[test]
    fn a_fixed_mtime_applies_to_part_tar_entries_and_owner_is_root() {
        let options = PackOptions::default().mtime(1_700_000_000);
        assert_eq!(options.fixed_mtime(), Some(1_700_000_000));
        assert_eq!(PackOptions::default().fixed_mtime(), None);
        let bytes = package_one_file(&options);
        let mkp = Mkp::from_bytes(&bytes, &Limits::default()).unwrap();
        let entries = part_entries(mkp.part_tar(PackagePart::Bin).unwrap());
        assert_eq!(entries.len(), 1);
        let (path, mtime, uid, gid, _) = &entries[0];
        assert_eq!(path, "tool");
        assert_eq!((*mtime, *uid, *gid), (1_700_000_000, 0, 0));
    }

    #[test]
    fn without_a_fixed_mtime_part_tar_entries_keep_the_files_time_and_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tool");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o750)).unwrap();
        let when = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567_890);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(when)
            .unwrap();
        let m = Manifest::template(
            PackageName::new("one").unwrap(),
            "2.3.0",
            Some(vec![(PackagePart::Bin, vec!["tool".into()])]),
        );
        let bytes =
            package_from_dirs(&m, |_| dir.path().to_owned(), &PackOptions::default()).unwrap();
        let mkp = Mkp::from_bytes(&bytes, &Limits::default()).unwrap();
        let entries = part_entries(mkp.part_tar(PackagePart::Bin).unwrap());
        let (_, mtime, _, _, mode) = &entries[0];
        assert_eq!((*mtime, *mode), (1_234_567_890, 0o750));
    }
}
