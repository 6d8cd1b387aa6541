//! The per-site lock, shared by the package store and the site lifecycle (`omd update`).
//!
//! The site directory itself is locked with `flock(LOCK_EX)` (no lock file is created, so a
//! lock never adds anything to the site tree). The holder writes its PID and command line
//! into `.site-lock` in the site ([`SITE_LOCK_FILE`]) right after taking the lock and removes
//! it before releasing it, so that a process that finds the lock taken can say who holds it
//! (a holder killed by SIGKILL leaves the file; the next holder overwrites it).
//!
//! * [`SiteLock::acquire`] (the site lifecycle) never waits: a held lock is refused at once
//!   with [`StoreError::Locked`], naming the holder.
//! * The store's own changes (`mkp enable`, ...) wait for another package change (two `mkp`
//!   commands are serialised, as before), but are refused at once while a [`SiteLock`] holder
//!   (an update of the site) has it: the holder's command line is prefixed with
//!   [`EXCLUSIVE_MARK`].
//! * Within the process that holds a [`SiteLock`], the store's changes of that site proceed
//!   without locking again (the update's package step runs under the update's lock).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::error::{Result, StoreError};

/// The file naming the lock's holder, relative to the site root (only while it is held).
pub const SITE_LOCK_FILE: &str = ".site-lock";

/// Written before the command line of a holder that refuses waiters ([`SiteLock`]).
pub const EXCLUSIVE_MARK: &str = "exclusive ";

/// Sites (canonical roots) locked by a [`SiteLock`] of this process.
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Who holds a site's lock, as written into the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The holder's process id (`None` when the file did not say yet).
    pub pid: Option<u32>,
    /// The holder's command line (empty when unknown).
    pub command: String,
    /// Whether the holder refuses waiters (a site update).
    pub exclusive: bool,
}

impl LockHolder {
    fn read(root: &Path) -> Self {
        let text = fs::read_to_string(root.join(SITE_LOCK_FILE)).unwrap_or_default();
        let mut lines = text.lines();
        let pid = lines.next().and_then(|l| l.trim().parse().ok());
        let rest = lines.next().unwrap_or("");
        let (exclusive, command) = match rest.strip_prefix(EXCLUSIVE_MARK) {
            Some(c) => (true, c.to_owned()),
            None => (false, rest.to_owned()),
        };
        Self {
            pid,
            command,
            exclusive,
        }
    }
}

/// The locked site directory (the holder file is removed and the lock released on drop).
pub(crate) struct LockFile {
    dir: fs::File,
    info: PathBuf,
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.info);
        let _ = rustix::fs::flock(&self.dir, rustix::fs::FlockOperation::Unlock);
    }
}

fn canonical(root: &Path) -> PathBuf {
    fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())
}

fn open(root: &Path) -> Result<(PathBuf, fs::File)> {
    let dir = fs::File::open(root).map_err(|e| StoreError::io("cannot open", root, e))?;
    Ok((root.to_path_buf(), dir))
}

/// Writes the holder file; returns its path.
fn write_holder(root: &Path, exclusive: bool) -> PathBuf {
    let command: Vec<String> = std::env::args().collect();
    let mark = if exclusive { EXCLUSIVE_MARK } else { "" };
    let text = format!("{}\n{mark}{}\n", std::process::id(), command.join(" "));
    let path = root.join(SITE_LOCK_FILE);
    let _ = fs::write(&path, text);
    path
}

fn try_lock(file: &fs::File, path: &Path) -> Result<bool> {
    match rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(StoreError::io("cannot lock", path, e.into())),
    }
}

fn locked_error(path: &Path, holder: LockHolder) -> StoreError {
    StoreError::Locked {
        path: path.to_path_buf(),
        pid: holder.pid,
        command: holder.command,
    }
}

/// The lock of the store's own changes: `None` when this process holds the site's
/// [`SiteLock`]; waits for another package change; refused while a site update holds it.
pub(crate) fn store_lock(root: &Path) -> Result<Option<LockFile>> {
    if held_here(root) {
        return Ok(None);
    }
    let (path, dir) = open(root)?;
    if !try_lock(&dir, &path)? {
        let holder = LockHolder::read(root);
        if holder.exclusive {
            return Err(locked_error(&path, holder));
        }
        rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| StoreError::io("cannot lock", &path, e.into()))?;
    }
    let info = write_holder(root, false);
    Ok(Some(LockFile { dir, info }))
}

fn held_here(root: &Path) -> bool {
    let root = canonical(root);
    HELD.lock().map(|h| h.contains(&root)).unwrap_or(false)
}

/// The per-site lock of a site-wide change (an update): exclusive against every other
/// process, package changes included. Released on drop.
pub struct SiteLock {
    root: PathBuf,
    _file: LockFile,
}

impl std::fmt::Debug for SiteLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteLock")
            .field("root", &self.root)
            .finish()
    }
}

impl SiteLock {
    /// Takes the lock of the site at `root` (its home directory), or fails at once with
    /// [`StoreError::Locked`] naming the holder.
    pub fn acquire(root: &Path) -> Result<Self> {
        let (path, dir) = open(root)?;
        if !try_lock(&dir, &path)? {
            return Err(locked_error(&path, LockHolder::read(root)));
        }
        let info = write_holder(root, true);
        let canonical = canonical(root);
        if let Ok(mut held) = HELD.lock() {
            held.push(canonical.clone());
        }
        Ok(Self {
            root: canonical,
            _file: LockFile { dir, info },
        })
    }

    /// Who holds the lock of the site at `root` now, if anyone (another process).
    pub fn holder(root: &Path) -> Option<LockHolder> {
        let dir = fs::File::open(root).ok()?;
        match rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockShared) {
            Ok(()) => {
                let _ = rustix::fs::flock(&dir, rustix::fs::FlockOperation::Unlock);
                None
            }
            Err(_) => Some(LockHolder::read(root)),
        }
    }
}

impl Drop for SiteLock {
    fn drop(&mut self) {
        if let Ok(mut held) = HELD.lock()
            && let Some(i) = held.iter().position(|r| *r == self.root)
        {
            held.remove(i);
        }
    }
}
