//! Journaled transactions: stage, journal, rename into place, roll back or recover.
//!
//! See the `# Transactions and crash safety` section of the documentation of [`Site`].

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Site;
use super::error::{Result, StoreError};

/// Where the transaction directory lives, relative to the site root. It must be on the same
/// file system as `local/` and `var/` (a site's `tmp/` is a tmpfs, so it is not used).
pub(crate) const TXN_DIR: &str = "var/check_mk/mkp-transaction";
const JOURNAL: &str = "journal";
const STAGED: &str = "staged";
const BACKUP: &str = "backup";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum State {
    /// The live tree is being changed; recovery rolls back.
    Applying,
    /// Every change is in place; recovery only finishes the clean-up.
    Committed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    state: State,
    what: String,
    /// Live files moved aside into `backup/<name>` before anything is placed.
    removes: Vec<(String, PathBuf)>,
    /// Directories created (shallowest first) before placing files.
    mkdirs: Vec<PathBuf>,
    /// Staged files `staged/<name>` renamed to their target.
    places: Vec<(String, PathBuf)>,
    /// After commit: remove empty directories (and `__pycache__`) from `.0` up to `.1`.
    cleanup: Vec<(PathBuf, PathBuf)>,
}

/// A change of the live tree, built up and then applied all or nothing.
pub(crate) struct Txn<'s> {
    site: &'s Site,
    dir: PathBuf,
    journal: Journal,
    counter: usize,
    /// Targets already in `journal.removes`.
    removed: HashSet<PathBuf>,
    /// Set once `commit` took over the directory (it cleans up or keeps the journal).
    finished: bool,
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Never applied: only the staging area exists; the live tree is untouched.
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn io_err(action: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::io(action, path, e)
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| io_err("cannot create", path, e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err("cannot write", path, e))
}

fn sync_dir(dir: &Path) {
    // Best effort: makes the journal rename durable on file systems that need it.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

impl<'s> Txn<'s> {
    /// Starts a transaction. The caller holds the site lock and has run recovery, so a
    /// leftover directory without journal is garbage from an interrupted staging phase.
    pub(crate) fn new(site: &'s Site, what: impl Into<String>) -> Result<Txn<'s>> {
        let dir = site.root().join(TXN_DIR);
        if exists(&dir) {
            fs::remove_dir_all(&dir).map_err(|e| io_err("cannot remove", &dir, e))?;
        }
        for sub in [STAGED, BACKUP] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(|e| io_err("cannot create directory", &d, e))?;
        }
        Ok(Txn {
            site,
            dir,
            journal: Journal {
                state: State::Applying,
                what: what.into(),
                removes: Vec::new(),
                mkdirs: Vec::new(),
                places: Vec::new(),
                cleanup: Vec::new(),
            },
            counter: 0,
            removed: HashSet::new(),
            finished: false,
        })
    }

    /// The staging directory (same file system as the site).
    pub(crate) fn staging(&self) -> PathBuf {
        self.dir.join(STAGED)
    }

    /// Calls the fault hook (tests) for one step.
    pub(crate) fn step(&self, what: &str, path: &Path) -> Result<()> {
        self.site.fault_step().map_err(|e| io_err(what, path, e))
    }

    /// Renames the already staged `staging()/<rel>` to `target` on commit.
    pub(crate) fn place(&mut self, staged_rel: impl Into<String>, target: PathBuf) {
        self.journal.places.push((staged_rel.into(), target));
    }

    /// Stages `data` (with permission bits `mode`) and places it at `target` on commit.
    pub(crate) fn place_bytes(&mut self, data: &[u8], mode: u32, target: PathBuf) -> Result<()> {
        self.counter += 1;
        let name = format!("__bytes{}", self.counter);
        let path = self.staging().join(&name);
        self.step("cannot write", &path)?;
        write_synced(&path, data)?;
        set_mode(&path, mode)?;
        self.place(name, target);
        Ok(())
    }

    /// Moves `target` out of the way on commit (restored on rollback). Missing targets are
    /// fine. Each target is recorded once.
    pub(crate) fn remove(&mut self, target: PathBuf) {
        if !self.removed.insert(target.clone()) {
            return;
        }
        self.counter += 1;
        self.journal
            .removes
            .push((format!("r{}", self.counter), target));
    }

    /// After commit, removes empty directories from `dir` upwards, stopping below `stop`.
    pub(crate) fn cleanup(&mut self, dir: PathBuf, stop: PathBuf) {
        if !self.journal.cleanup.iter().any(|(d, _)| *d == dir) {
            self.journal.cleanup.push((dir, stop));
        }
    }

    /// Applies everything, or nothing.
    pub(crate) fn commit(mut self) -> Result<()> {
        self.finished = true;
        // Directories to create, shallowest first.
        let root = self.site.root().to_path_buf();
        let mut mkdirs: Vec<PathBuf> = Vec::new();
        let mut known: HashSet<PathBuf> = HashSet::new();
        for (_, target) in &self.journal.places {
            let mut missing = Vec::new();
            let mut dir = target.parent();
            while let Some(d) = dir {
                if d == root || known.contains(d) {
                    break;
                }
                known.insert(d.to_path_buf());
                if exists(d) {
                    break;
                }
                missing.push(d.to_path_buf());
                dir = d.parent();
            }
            missing.reverse();
            mkdirs.extend(missing);
        }
        self.journal.mkdirs = mkdirs;
        if let Err(e) = self.write_journal() {
            let _ = fs::remove_dir_all(&self.dir);
            return Err(e);
        }
        let applied = self.apply().and_then(|()| {
            self.journal.state = State::Committed;
            self.write_journal()
        });
        if let Err(e) = applied {
            self.journal.state = State::Applying;
            let what = self.journal.what.clone();
            return match rollback(self.site, &self.dir, &self.journal) {
                Ok(()) => Err(StoreError::RolledBack {
                    what,
                    source: Box::new(e),
                }),
                Err(r) => Err(StoreError::RollbackFailed {
                    what,
                    problem: format!("{e}; then: {r}"),
                }),
            };
        }
        finish(&self.dir, &self.journal);
        Ok(())
    }

    fn write_journal(&self) -> Result<()> {
        let text = serde_json::to_vec(&self.journal).map_err(|e| StoreError::Journal {
            path: self.dir.join(JOURNAL),
            problem: e.to_string(),
        })?;
        let tmp = self.dir.join("journal.tmp");
        write_synced(&tmp, &text)?;
        let path = self.dir.join(JOURNAL);
        fs::rename(&tmp, &path).map_err(|e| io_err("cannot rename", &tmp, e))?;
        sync_dir(&self.dir);
        Ok(())
    }

    fn apply(&self) -> Result<()> {
        let backup = self.dir.join(BACKUP);
        for (name, target) in &self.journal.removes {
            self.step("cannot move aside", target)?;
            if exists(target) {
                fs::rename(target, backup.join(name))
                    .map_err(|e| io_err("cannot move aside", target, e))?;
            }
        }
        for dir in &self.journal.mkdirs {
            self.step("cannot create directory", dir)?;
            fs::create_dir(dir).map_err(|e| io_err("cannot create directory", dir, e))?;
        }
        let staged = self.dir.join(STAGED);
        for (name, target) in &self.journal.places {
            self.step("cannot install", target)?;
            if exists(target) {
                return Err(io_err(
                    "cannot install",
                    target,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "a file appeared there meanwhile",
                    ),
                ));
            }
            fs::rename(staged.join(name), target)
                .map_err(|e| io_err("cannot install", target, e))?;
        }
        self.step("cannot commit", &self.dir)?;
        Ok(())
    }
}

/// Sets exact permission bits (the umask does not apply).
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| io_err("cannot set permissions of", path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Undoes an applying transaction. Idempotent, so a crash during rollback is repaired by
/// running it again: a placed file is moved *back* into the staging area (not deleted), which
/// keeps the invariant "the staged file is missing exactly when the target is ours" true at
/// every step; backups are renamed back only after every placed file is out of the way.
fn rollback(site: &Site, dir: &Path, journal: &Journal) -> Result<()> {
    let staged = dir.join(STAGED);
    let backup = dir.join(BACKUP);
    for (name, target) in journal.places.iter().rev() {
        let source = staged.join(name);
        if !exists(&source) && exists(target) {
            site.fault_step()
                .map_err(|e| io_err("cannot take back", target, e))?;
            fs::rename(target, &source).map_err(|e| io_err("cannot take back", target, e))?;
        }
    }
    for (name, target) in journal.removes.iter().rev() {
        let saved = backup.join(name);
        if exists(&saved) {
            site.fault_step()
                .map_err(|e| io_err("cannot restore", target, e))?;
            fs::rename(&saved, target).map_err(|e| io_err("cannot restore", target, e))?;
        }
    }
    for d in journal.mkdirs.iter().rev() {
        let _ = fs::remove_dir(d);
    }
    fs::remove_dir_all(dir).map_err(|e| io_err("cannot remove", dir, e))
}

/// Finishes a committed transaction: clean-up of emptied directories, then the journal.
fn finish(dir: &Path, journal: &Journal) {
    for (from, stop) in &journal.cleanup {
        remove_empty_dirs(from, stop);
    }
    let _ = fs::remove_dir_all(dir);
}

/// Removes `from` and its parents while they are empty (after deleting `__pycache__`
/// directories in them), stopping at `stop` (not removed) or outside it.
pub(crate) fn remove_empty_dirs(from: &Path, stop: &Path) {
    let mut dir = Some(from);
    while let Some(d) = dir {
        if d == stop || !d.starts_with(stop) {
            break;
        }
        let pycache = d.join("__pycache__");
        if fs::symlink_metadata(&pycache).is_ok_and(|m| m.is_dir()) {
            let _ = fs::remove_dir_all(&pycache);
        }
        if fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Repairs the site after an interrupted change. Returns a description of what was done,
/// or `None` when there was nothing to do. The caller holds the lock.
pub(crate) fn recover(site: &Site) -> Result<Option<String>> {
    let dir = site.root().join(TXN_DIR);
    if !exists(&dir) {
        return Ok(None);
    }
    let journal_path = dir.join(JOURNAL);
    let text = match fs::read(&journal_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Interrupted while staging: the live tree was never touched.
            fs::remove_dir_all(&dir).map_err(|e| io_err("cannot remove", &dir, e))?;
            return Ok(Some(
                "removed the staging area of an interrupted change".into(),
            ));
        }
        Err(e) => return Err(io_err("cannot read", &journal_path, e)),
    };
    let journal: Journal = serde_json::from_slice(&text).map_err(|e| StoreError::Journal {
        path: journal_path.clone(),
        problem: e.to_string(),
    })?;
    match journal.state {
        State::Applying => {
            rollback(site, &dir, &journal)?;
            Ok(Some(format!(
                "rolled back an interrupted change ({}); the site is as before it",
                journal.what
            )))
        }
        State::Committed => {
            finish(&dir, &journal);
            Ok(Some(format!(
                "finished an interrupted change ({}); it was complete",
                journal.what
            )))
        }
    }
}

/// An exclusive lock on the site's package store (released on drop): the shared site lock
/// (see [`super::lock`]), or nothing when this process holds the site's update lock.
pub(crate) struct Lock {
    _file: Option<super::lock::LockFile>,
}

pub(crate) fn lock(root: &Path) -> Result<Lock> {
    Ok(Lock {
        _file: super::lock::store_lock(root)?,
    })
}
