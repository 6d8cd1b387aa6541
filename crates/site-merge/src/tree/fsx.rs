//! Small file-system helpers: path kinds, modes, atomic writes.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The type of a path, as the decision table sees it.
///
/// Anything that is neither a directory nor a symbolic link (regular files,
/// fifos, sockets, devices) counts as a [`Kind::File`], as in Checkmk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file (or any other non-directory, non-link object).
    File,
    /// A real directory (not a symbolic link to one).
    Dir,
    /// A symbolic link, dangling or not.
    Link,
}

impl Kind {
    /// The type name used in the status lines and questions: `file`, `dir`, `link`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Link => "link",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of `path` without following a final symlink; `None` when absent.
pub(crate) fn kind_of(path: &Path) -> io::Result<Option<Kind>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            let ft = meta.file_type();
            Ok(Some(if ft.is_symlink() {
                Kind::Link
            } else if ft.is_dir() {
                Kind::Dir
            } else {
                Kind::File
            }))
        }
        Err(e) if is_absent(&e) || through_loop(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `lstat` failed because a directory on the way is a symlink loop:
/// Python's `os.path.islink`/`exists` say "no" there, so Checkmk sees nothing.
fn through_loop(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

/// Whether an error means "the path does not exist" (also for a file used as a directory).
pub(crate) fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// `stat` (following symlinks) `& 0o7777`, or 0 when the path does not exist.
pub(crate) fn mode_following(path: &Path) -> u32 {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0)
}

/// The mode of `path` itself (not following a final symlink) `& 0o7777`.
pub(crate) fn own_mode(path: &Path) -> io::Result<u32> {
    Ok(fs::symlink_metadata(path)?.permissions().mode() & 0o7777)
}

/// The deterministic helper name used while writing `path` atomically:
/// `.<name>.site-update~` in the same directory.
pub(crate) fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.site-update~"))
}

/// Removes whatever is at `path` (recursively for real directories). Absent is fine.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match kind_of(path)? {
        None => Ok(()),
        Some(Kind::Dir) => fs::remove_dir_all(path),
        Some(_) => fs::remove_file(path),
    }
}

/// Writes `content` with `mode` to the temp sibling of `path` and renames it
/// over `path`. With `sync`, the data is flushed to disk before the rename.
pub(crate) fn write_atomic(path: &Path, content: &[u8], mode: u32, sync: bool) -> io::Result<()> {
    let tmp = temp_sibling(path);
    drop(write_temp(&tmp, content, mode, sync)?);
    fs::rename(&tmp, path)
}

/// Writes the temp file (replacing a stale one); the file stays open.
pub(crate) fn write_temp(
    tmp: &Path,
    content: &[u8],
    mode: u32,
    sync: bool,
) -> io::Result<fs::File> {
    let create = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
    };
    let mut file = match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            remove_any(tmp)?;
            create()?
        }
        other => other?,
    };
    file.write_all(content)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    if sync {
        file.sync_all()?;
    }
    Ok(file)
}

/// Creates a symlink at the temp sibling of `path` and renames it over `path`.
pub(crate) fn symlink_atomic(target: &Path, path: &Path) -> io::Result<()> {
    let tmp = temp_sibling(path);
    remove_any(&tmp)?;
    std::os::unix::fs::symlink(target, &tmp)?;
    fs::rename(&tmp, path)
}

/// `chmod` without following a final symlink's target semantics issues: symlinks are skipped.
pub(crate) fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// fsyncs a directory (so that renames and creations inside it are durable).
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    fs::File::open(path)?.sync_all()
}

/// The names in a directory, sorted (byte order) for a deterministic walk.
pub(crate) fn sorted_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// The names in a directory with their kinds (from the directory listing,
/// so without a `stat` per entry on the usual file systems), sorted by name.
pub(crate) fn sorted_entries(dir: &Path) -> io::Result<Vec<(String, Kind)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let kind = if ft.is_symlink() {
            Kind::Link
        } else if ft.is_dir() {
            Kind::Dir
        } else {
            Kind::File
        };
        entries.push((entry.file_name().to_string_lossy().into_owned(), kind));
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// [`kind_of`] and, for a file or directory, its mode `& 0o7777` (the same
/// as [`mode_following`] gives for it).
pub(crate) fn kind_and_mode(path: &Path) -> io::Result<(Option<Kind>, Option<u32>)> {
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            let ft = meta.file_type();
            let mode = meta.permissions().mode() & 0o7777;
            Ok(if ft.is_symlink() {
                (Some(Kind::Link), None)
            } else if ft.is_dir() {
                (Some(Kind::Dir), Some(mode))
            } else {
                (Some(Kind::File), Some(mode))
            })
        }
        Err(e) if is_absent(&e) || through_loop(&e) => Ok((None, None)),
        Err(e) => Err(e),
    }
}

/// A file's bytes and its mode `& 0o7777`, both from one `open`: the
/// `fstat` that gives the mode sizes the buffer, and the file is read up to
/// that size (the site is not written to while it is updated, so that is
/// its end; a file that shrank meanwhile is read to its new end).
pub(crate) fn read_with_mode(path: &Path) -> io::Result<(Vec<u8>, u32)> {
    use std::io::Read;
    let mut file = fs::File::open(path)?;
    let meta = file.metadata()?;
    let mut bytes = vec![0; usize::try_from(meta.len()).unwrap_or(0)];
    let mut filled = 0;
    while filled < bytes.len() {
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(filled);
    Ok((bytes, meta.permissions().mode() & 0o7777))
}
