//! Unpacking a part's files into a staging directory, safely (see the crate's `# Security`).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::archive::{Limits, Mkp, list_tar};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{normalize_path, unsafe_path_reason};
use crate::part::PackagePart;

/// Creates `rel`'s parent directories below `root`, refusing to pass through anything that
/// is not a real directory (a symlink planted in the staging area, a file).
fn create_parents(root: &Path, rel: &str) -> Result<PathBuf> {
    let mut dir = root.to_path_buf();
    let components: Vec<&str> = rel.split('/').collect();
    for component in &components[..components.len().saturating_sub(1)] {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(ErrorKind::UnsafePath {
                    path: rel.to_string(),
                    reason: "a parent directory in the target is a file or a symlink",
                }
                .into());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(|e| {
                    Error::io(format!("cannot create directory {}", dir.display()), e)
                })?;
            }
            Err(e) => {
                return Err(Error::io(format!("cannot inspect {}", dir.display()), e));
            }
        }
    }
    Ok(root.join(rel))
}

fn write_new_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_CREAT|O_EXCL (create_new) also refuses a symlink at the final component.
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    file.write_all(data)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    #[cfg(unix)]
    {
        // The umask may have removed bits; set exactly what Checkmk installs.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(format!("cannot set permissions of {}", path.display()), e))?;
    }
    Ok(())
}

fn entry_kind_name(t: tar::EntryType) -> &'static str {
    match t {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Char | tar::EntryType::Block => "device file",
        tar::EntryType::Fifo => "FIFO",
        tar::EntryType::Directory => "directory",
        _ => "special tar entry",
    }
}

impl Mkp {
    /// Unpacks the files the manifest lists for `part` into `dest` (created if missing; it
    /// should be a fresh staging directory) and returns their relative paths in manifest order.
    ///
    /// Files get the permissions Checkmk gives them on install ([`PackagePart::install_mode`]).
    /// Entries of the part tar that the manifest does not list are never written.
    /// See the crate's `# Security` section for everything that is refused.
    pub fn extract_part(
        &self,
        part: PackagePart,
        dest: &Path,
        limits: &Limits,
    ) -> Result<Vec<String>> {
        let tar_name = part.tar_name();
        self.extract_part_inner(part, dest, limits).map_err(|e| {
            let e = e.with_member(tar_name);
            match self.source() {
                Some(file) => e.with_file(file),
                None => e,
            }
        })
    }

    fn extract_part_inner(
        &self,
        part: PackagePart,
        dest: &Path,
        limits: &Limits,
    ) -> Result<Vec<String>> {
        let listed = self.manifest().files_of(part);
        if listed.is_empty() {
            return Ok(Vec::new());
        }
        for path in listed {
            if let Some(reason) = unsafe_path_reason(path) {
                return Err(ErrorKind::UnsafePath {
                    path: path.clone(),
                    reason,
                }
                .into());
            }
        }
        let wanted: HashSet<&str> = listed.iter().map(String::as_str).collect();
        let data = self
            .part_tar(part)
            .ok_or_else(|| ErrorKind::MissingPartTar {
                part: part.id().to_string(),
            })?;
        let entries = list_tar(data, limits)?;
        fs::create_dir_all(dest)
            .map_err(|e| Error::io(format!("cannot create directory {}", dest.display()), e))?;

        // name -> (offset, size) of the files written so far, for hard links.
        let mut written: HashMap<String, (usize, usize)> = HashMap::new();
        let mut total: u64 = 0;
        for entry in &entries {
            let name = normalize_path(&entry.name);
            if !wanted.contains(name.as_str()) {
                continue;
            }
            if written.contains_key(&name) {
                return Err(ErrorKind::DuplicateEntry { path: name }.into());
            }
            let (offset, size) = match entry.entry_type {
                t if t.is_file() || t == tar::EntryType::Continuous => (entry.offset, entry.size),
                tar::EntryType::Link => {
                    let target = normalize_path(entry.link_name.as_deref().unwrap_or(""));
                    match written.get(&target) {
                        Some(&(o, s)) if wanted.contains(target.as_str()) => (o, s),
                        _ => {
                            return Err(ErrorKind::HardLinkOutside { path: name, target }.into());
                        }
                    }
                }
                t => {
                    return Err(ErrorKind::UnsupportedEntry {
                        path: name,
                        entry_type: entry_kind_name(t),
                    }
                    .into());
                }
            };
            total = total.saturating_add(size as u64);
            if total > limits.unpacked_bytes() {
                return Err(ErrorKind::LimitExceeded {
                    what: format!(
                        "the files of part '{}' are larger than {} bytes",
                        part.id(),
                        limits.unpacked_bytes()
                    ),
                }
                .into());
            }
            let target = create_parents(dest, &name)?;
            write_new_file(
                &target,
                &data[offset..offset + size],
                part.install_mode(&name),
            )?;
            written.insert(name, (offset, size));
        }
        let mut result = Vec::with_capacity(listed.len());
        let mut seen = HashSet::new();
        for path in listed {
            if !written.contains_key(path) {
                return Err(ErrorKind::MissingMember { path: path.clone() }.into());
            }
            if seen.insert(path.as_str()) {
                result.push(path.clone());
            }
        }
        Ok(result)
    }

    /// Unpacks every part with listed files into `dest/<part id>/` (see [`Mkp::extract_part`]).
    pub fn extract_all(
        &self,
        dest: &Path,
        limits: &Limits,
    ) -> Result<Vec<(PackagePart, Vec<String>)>> {
        let mut out = Vec::new();
        let mut budget = *limits;
        let mut used: u64 = 0;
        for (part, files) in &self.manifest().files {
            if files.is_empty() {
                continue;
            }
            budget = budget.max_unpacked_bytes(limits.unpacked_bytes().saturating_sub(used));
            let part_dir = dest.join(part.id());
            let written = self.extract_part(*part, &part_dir, &budget)?;
            for f in &written {
                used = used
                    .saturating_add(fs::metadata(part_dir.join(f)).map(|m| m.len()).unwrap_or(0));
            }
            out.push((*part, written));
        }
        Ok(out)
    }
}
