//! Atomic, private file writes, shared by the server's store and the updater's state files.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `data` to `path` atomically: a temporary file in the same directory (mode 0600),
/// flushed and fsynced, then renamed into place. With `backup`, an existing file is first
/// copied to `<path>.bak`.
pub fn write_atomic(path: &Path, data: &[u8], backup: bool) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    if backup && path.exists() {
        let bak = with_suffix(path, ".bak");
        fs::copy(path, &bak)?;
        fs::set_permissions(&bak, fs::Permissions::from_mode(0o600))?;
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = fs::File::open(dir) {
        // Best effort: make the rename durable.
        let _ = d.sync_all();
    }
    Ok(())
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}
