//! The update journal: before-images of every path the executor touches.
//!
//! Layout of `<site>/.site-update/` (also described in the crate docs):
//!
//! * `header.json` – `{"format":1,"site":…,"from":…,"to":…}`, written (and
//!   fsynced) before the first change;
//! * `log` – one JSON record per line, appended (and fsynced, one fsync per
//!   batch) *before* the changes they describe: `{"op":"absent","path":P}`
//!   (nothing was at P), `{"op":"saved","path":P,"slot":N}` (what was at P is
//!   moved to `saved/N`), `{"op":"mode","path":P,"mode":M}` (P had mode M
//!   before a chmod), `{"op":"swapped","path":P,"slot":N,"ino":I}` (the new
//!   file, inode I, was written to `saved/N` and is exchanged with what is
//!   at P: one `renameat2(RENAME_EXCHANGE)` both puts it in place and moves
//!   the original into the slot);
//! * `saved/N` – the original objects, moved (renamed) out of the site,
//!   whole directory trees included.
//!
//! A record may exist for a change that was never made (crash within a
//! batch), so undoing a record is idempotent: `absent` removes what is at P;
//! `saved` moves `saved/N` back (a missing slot means "never moved" or
//! "already restored": P is left alone); `swapped` moves `saved/N` back only
//! when it is no longer inode I (then it holds the original: the exchange
//! happened; while it is I, P still holds the original, and a missing slot
//! means "already restored"); `mode` sets the mode again.
//! Rollback undoes the records last-to-first and truncates the log after
//! each, so it can itself be interrupted and rerun. A finished journal is
//! renamed to `.site-update.done~` before it is deleted.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{Error, IoContext, Result};
use super::fsx;

/// Flushes (fsync, fdatasync, syncfs) made by updates in this process.
static FLUSHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts `n` flushes.
pub(crate) fn flushed(n: u64) {
    FLUSHES.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

/// The number of flushes (fsync, fdatasync, syncfs) that updates, their
/// journals and recoveries made in this process so far: a measure of their
/// cost on a disk (benches print it).
pub fn flushes() -> u64 {
    FLUSHES.load(std::sync::atomic::Ordering::Relaxed)
}

/// The journal directory's name inside the site.
pub const JOURNAL_DIR: &str = ".site-update";

/// A finished journal is renamed to this (atomically) before it is deleted,
/// so that a half-deleted journal is never mistaken for a live one.
pub const DONE_DIR: &str = ".site-update.done~";

/// Renames the journal out of the way, then deletes it.
fn discard(site: &Path, dir: &Path, sync: bool) -> Result<()> {
    let done = site.join(DONE_DIR);
    fsx::remove_any(&done).ctx("remove", &done)?;
    fs::rename(dir, &done).ctx("rename", dir)?;
    if sync {
        fsx::sync_dir(site).ctx("sync", site)?;
        flushed(1);
    }
    fs::remove_dir_all(&done).ctx("remove", &done)
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) format: u32,
    pub(crate) site: String,
    pub(crate) from: String,
    pub(crate) to: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum Record {
    Absent { path: String },
    Saved { path: String, slot: u64 },
    Mode { path: String, mode: u32 },
    Swapped { path: String, slot: u64, ino: u64 },
}

impl Record {
    fn path(&self) -> &str {
        match self {
            Record::Absent { path }
            | Record::Saved { path, .. }
            | Record::Mode { path, .. }
            | Record::Swapped { path, .. } => path,
        }
    }
}

/// An open journal of a running update.
pub(crate) struct Journal {
    site: PathBuf,
    dir: PathBuf,
    log: File,
    next_slot: u64,
    sync: bool,
    /// Whether `renameat2(RENAME_EXCHANGE)` still looks supported (cleared
    /// at the first refusal; the exchange is then made of three renames).
    exchange: Cell<bool>,
}

impl Journal {
    /// Creates the journal; fails with [`Error::JournalPresent`] when one exists.
    pub(crate) fn begin(site: &Path, header: &Header, sync: bool) -> Result<Self> {
        let dir = site.join(JOURNAL_DIR);
        if fsx::kind_of(&dir).ctx("inspect", &dir)?.is_some() {
            return Err(Error::JournalPresent { path: dir });
        }
        let done = site.join(DONE_DIR);
        fsx::remove_any(&done).ctx("remove", &done)?;
        fs::create_dir(&dir).ctx("create", &dir)?;
        let saved = dir.join("saved");
        fs::create_dir(&saved).ctx("create", &saved)?;
        let log_path = dir.join("log");
        let log = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&log_path)
            .ctx("create", &log_path)?;
        let text = serde_json::to_vec(header).map_err(|e| Error::Journal {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        let header_path = dir.join("header.json");
        fsx::write_atomic(&header_path, &text, 0o600, sync).ctx("write", &header_path)?;
        if sync {
            fsx::sync_dir(&dir).ctx("sync", &dir)?;
            fsx::sync_dir(site).ctx("sync", site)?;
            // With the header's fsync.
            flushed(3);
        }
        Ok(Self {
            site: site.to_path_buf(),
            dir,
            log,
            next_slot: 0,
            sync,
            exchange: Cell::new(true),
        })
    }

    /// Appends records with one write and (with sync) one fsync, before
    /// any of the changes they describe is made.
    pub(crate) fn append(&mut self, records: &[&Record]) -> Result<()> {
        let log_path = self.dir.join("log");
        let mut lines = Vec::new();
        for record in records {
            serde_json::to_writer(&mut lines, record).map_err(|e| Error::Journal {
                path: log_path.clone(),
                reason: e.to_string(),
            })?;
            lines.push(b'\n');
        }
        self.log.write_all(&lines).ctx("append to", &log_path)?;
        if self.sync {
            self.log.sync_data().ctx("sync", &log_path)?;
            flushed(1);
        }
        Ok(())
    }

    /// The record for `rel` as it is now: `saved` (with a new slot) when
    /// something is there, else `absent`.
    pub(crate) fn before_image(&mut self, rel: &str) -> Result<Record> {
        let present = self.present(rel)?;
        Ok(self.record(rel, present))
    }

    /// The record for `rel` when it is known whether something is there.
    pub(crate) fn record(&mut self, rel: &str, present: bool) -> Record {
        if present {
            let slot = self.next_slot;
            self.next_slot += 1;
            Record::Saved {
                path: rel.to_owned(),
                slot,
            }
        } else {
            Record::Absent {
                path: rel.to_owned(),
            }
        }
    }

    /// Whether something is at `rel` now.
    pub(crate) fn present(&self, rel: &str) -> Result<bool> {
        let path = self.site.join(rel);
        Ok(fsx::kind_of(&path).ctx("inspect", &path)?.is_some())
    }

    /// The record replacing what is at `rel` by a file of `content` and
    /// `mode`: the file is written now into a new slot, and [`Journal::stash`]
    /// exchanges it with what is at `rel`.
    pub(crate) fn swap_record(&mut self, rel: &str, content: &[u8], mode: u32) -> Result<Record> {
        let slot = self.next_slot;
        self.next_slot += 1;
        let staged = self.slot_path(slot);
        let ino = fsx::write_temp(&staged, content, mode, false)
            .and_then(|file| file.metadata())
            .ctx("write", &staged)?
            .ino();
        Ok(Record::Swapped {
            path: rel.to_owned(),
            slot,
            ino,
        })
    }

    fn slot_path(&self, slot: u64) -> PathBuf {
        self.dir.join("saved").join(slot.to_string())
    }

    /// Makes the change a record announces: a `saved` record moves the
    /// object out of the site into its slot, a `swapped` one exchanges the
    /// slot's new file with the object.
    pub(crate) fn stash(&self, record: &Record) -> Result<()> {
        match record {
            Record::Saved { path, slot } => {
                let from = self.site.join(path);
                fs::rename(&from, self.slot_path(*slot)).ctx("move into the journal", &from)
            }
            Record::Swapped { path, slot, .. } => {
                let at = self.site.join(path);
                self.exchange(&self.slot_path(*slot), &at)
                    .ctx("exchange the new file with", &at)
            }
            Record::Absent { .. } | Record::Mode { .. } => Ok(()),
        }
    }

    /// Exchanges the objects at `staged` and `at` (same file system).
    fn exchange(&self, staged: &Path, at: &Path) -> io::Result<()> {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        if self.exchange.get() {
            match renameat_with(CWD, staged, CWD, at, RenameFlags::EXCHANGE) {
                Ok(()) => return Ok(()),
                // A file system or kernel without the flag.
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => self.exchange.set(false),
                Err(e) => return Err(e.into()),
            }
        }
        exchange_by_renames(staged, at)
    }

    /// Makes everything written so far durable: one `syncfs` of the site's file system.
    pub(crate) fn sync_all(&self) -> Result<()> {
        if !self.sync {
            return Ok(());
        }
        let site = File::open(&self.site).ctx("open", &self.site)?;
        flushed(1);
        rustix::fs::syncfs(&site)
            .map_err(io::Error::from)
            .ctx("sync the file system of", &self.site)
    }

    /// Undoes everything and removes the journal.
    pub(crate) fn rollback(self) -> Result<()> {
        drop(self.log);
        rollback_dir(&self.site, &self.dir, self.sync)
    }

    /// Removes the journal after the commit.
    pub(crate) fn finish(self) -> Result<()> {
        drop(self.log);
        discard(&self.site, &self.dir, self.sync)
    }
}

/// Reads the header of a journal; `None` when it was never completed
/// (then no change was made either).
pub(crate) fn read_header(dir: &Path) -> Result<Option<Header>> {
    let path = dir.join("header.json");
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Journal {
                path,
                reason: e.to_string(),
            }),
        Err(e) if fsx::is_absent(&e) => Ok(None),
        Err(e) => Err(e).ctx("read", &path),
    }
}

/// Reads the records with the byte offset where each starts. A torn last
/// line (a crash while appending) is ignored: its change never started.
fn read_records(log_path: &Path) -> Result<Vec<(u64, Record)>> {
    let file = match File::open(log_path) {
        Ok(f) => f,
        Err(e) if fsx::is_absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx("read", log_path),
    };
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut offset = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).ctx("read", log_path)?;
        if n == 0 {
            break;
        }
        if !line.ends_with(b"\n") {
            break;
        }
        let record = serde_json::from_slice::<Record>(&line).map_err(|e| Error::Journal {
            path: log_path.to_path_buf(),
            reason: format!("bad record at byte {offset}: {e}"),
        })?;
        out.push((offset, record));
        offset += n as u64;
    }
    Ok(out)
}

/// Undoes the records of the journal `dir` of site `site`, last to first, then removes it.
pub(crate) fn rollback_dir(site: &Path, dir: &Path, sync: bool) -> Result<()> {
    let log_path = dir.join("log");
    let records = read_records(&log_path)?;
    let log = if records.is_empty() {
        None
    } else {
        Some(
            OpenOptions::new()
                .write(true)
                .open(&log_path)
                .ctx("open", &log_path)?,
        )
    };
    let mut touched = BTreeSet::new();
    for (offset, record) in records.iter().rev() {
        let path = site.join(record.path());
        restore(dir, &path, record)?;
        if let Some(parent) = path.parent() {
            touched.insert(parent.to_path_buf());
        }
        if let Some(log) = &log {
            log.set_len(*offset).ctx("truncate", &log_path)?;
            if sync {
                log.sync_data().ctx("sync", &log_path)?;
                flushed(1);
            }
        }
    }
    if sync {
        for d in &touched {
            if d.is_dir() {
                fsx::sync_dir(d).ctx("sync", d)?;
                flushed(1);
            }
        }
    }
    discard(site, dir, sync)
}

/// The exchange of [`Journal::stash`] where `renameat2(RENAME_EXCHANGE)` is
/// refused: three renames, each leaving a state that undoing the `swapped`
/// record handles (the slot gone: P holds the original; the slot holding
/// the original: it is moved back).
fn exchange_by_renames(staged: &Path, at: &Path) -> io::Result<()> {
    let mut aside = staged.as_os_str().to_owned();
    aside.push(".new");
    let aside = PathBuf::from(aside);
    fs::rename(staged, &aside)?;
    fs::rename(at, staged)?;
    fs::rename(&aside, at)
}

fn restore(dir: &Path, path: &Path, record: &Record) -> Result<()> {
    let tmp = fsx::temp_sibling(path);
    match record {
        Record::Absent { .. } => {
            fsx::remove_any(path).ctx("remove", path)?;
            fsx::remove_any(&tmp).ctx("remove", &tmp)?;
        }
        Record::Saved { slot, .. } => {
            let saved = dir.join("saved").join(slot.to_string());
            if fsx::kind_of(&saved).ctx("inspect", &saved)?.is_some() {
                fsx::remove_any(path).ctx("remove", path)?;
                fs::rename(&saved, path).ctx("restore", path)?;
            }
            fsx::remove_any(&tmp).ctx("remove", &tmp)?;
        }
        Record::Swapped { slot, ino, .. } => {
            let saved = dir.join("saved").join(slot.to_string());
            match fs::symlink_metadata(&saved) {
                // The exchange happened: the slot holds the original.
                Ok(meta) if meta.ino() != *ino => {
                    fsx::remove_any(path).ctx("remove", path)?;
                    fs::rename(&saved, path).ctx("restore", path)?;
                }
                // Not exchanged (P holds the original), or already restored.
                Ok(_) => {}
                Err(e) if fsx::is_absent(&e) => {}
                Err(e) => return Err(e).ctx("inspect", &saved),
            }
        }
        Record::Mode { mode, .. } => {
            // A chmod that failed changed nothing, and setting back the mode a path
            // still has would fail the same way (a path the site user does not own)
            // and keep the whole update from rolling back.
            let (_, now) = fsx::kind_and_mode(path).ctx("inspect", path)?;
            if now.is_some_and(|now| now != *mode) {
                fsx::set_mode(path, *mode).ctx("chmod", path)?;
            }
        }
    }
    Ok(())
}

/// What [`recover`] found and did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Recovery {
    /// No journal: nothing to do.
    Clean,
    /// A journal whose header was never completed (the update died while
    /// starting, before changing anything): it is removed.
    Abandoned,
    /// The interrupted update had already switched the `version` link (its
    /// commit point): only the journal was left; it is removed.
    Finished {
        /// The version the site now has.
        to: String,
    },
    /// The interrupted update had not committed: every change was undone.
    RolledBack {
        /// The version the site has (again).
        from: String,
        /// The version the update was going to.
        to: String,
    },
}

/// Recovers a site after an interrupted update: if `<site>/.site-update`
/// exists, the update is finished when the `version` link already points to
/// its target version (the commit point), else it is rolled back exactly.
/// Safe to run again after being interrupted itself.
pub fn recover(site_home: &Path) -> Result<Recovery> {
    let done = site_home.join(DONE_DIR);
    fsx::remove_any(&done).ctx("remove", &done)?;
    let dir = site_home.join(JOURNAL_DIR);
    if fsx::kind_of(&dir).ctx("inspect", &dir)?.is_none() {
        return Ok(Recovery::Clean);
    }
    let Some(header) = read_header(&dir)? else {
        // Crashed while creating the journal (the header is written before
        // the first change): nothing was changed.
        discard(site_home, &dir, true)?;
        return Ok(Recovery::Abandoned);
    };
    if super::site::site_version(site_home)?.as_deref() == Some(header.to.as_str()) {
        discard(site_home, &dir, true)?;
        return Ok(Recovery::Finished { to: header.to });
    }
    rollback_dir(site_home, &dir, true)?;
    Ok(Recovery::RolledBack {
        from: header.from,
        to: header.to,
    })
}

/// What an interrupted update left in a site, found without changing anything
/// (see [`leftovers`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Leftovers {
    /// A live journal (`.site-update`) is there: an update was interrupted.
    pub journal: bool,
    /// Its versions (from, to), when its header was completed.
    pub versions: Option<(String, String)>,
    /// Whether the interrupted update had already switched the `version`
    /// link (recovery finishes it) rather than not (recovery rolls it back).
    pub committed: bool,
    /// A finished journal that was not deleted (`.site-update.done~`).
    pub done: bool,
}

impl Leftovers {
    /// Whether anything was left.
    pub fn any(&self) -> bool {
        self.journal || self.done
    }
}

/// What an interrupted update left in the site at `site_home` (nothing is changed).
pub fn leftovers(site_home: &Path) -> Result<Leftovers> {
    let dir = site_home.join(JOURNAL_DIR);
    let done_path = site_home.join(DONE_DIR);
    let done = fsx::kind_of(&done_path)
        .ctx("inspect", &done_path)?
        .is_some();
    if fsx::kind_of(&dir).ctx("inspect", &dir)?.is_none() {
        return Ok(Leftovers {
            done,
            ..Leftovers::default()
        });
    }
    let header = read_header(&dir)?;
    let committed = match &header {
        Some(h) => super::site::site_version(site_home)?.as_deref() == Some(h.to.as_str()),
        None => false,
    };
    Ok(Leftovers {
        journal: true,
        versions: header.map(|h| (h.from, h.to)),
        committed,
        done,
    })
}

/// Removes a finished journal that was not deleted (`.site-update.done~`,
/// left by an update killed while deleting it); whether there was one.
pub fn remove_done_journal(site_home: &Path) -> Result<bool> {
    let done = site_home.join(DONE_DIR);
    if fsx::kind_of(&done).ctx("inspect", &done)?.is_none() {
        return Ok(false);
    }
    fsx::remove_any(&done).ctx("remove", &done)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site_with(content: &str) -> (tempfile::TempDir, Journal) {
        let site = tempfile::tempdir().expect("temp dir");
        fs::create_dir(site.path().join("etc")).expect("mkdir");
        fs::write(site.path().join("etc/f.conf"), content).expect("write");
        let header = Header {
            format: 1,
            site: "s".into(),
            from: "1".into(),
            to: "2".into(),
        };
        let journal = Journal::begin(site.path(), &header, false).expect("journal");
        (site, journal)
    }

    fn read(site: &tempfile::TempDir) -> String {
        fs::read_to_string(site.path().join("etc/f.conf")).expect("read")
    }

    fn swapped(journal: &mut Journal) -> Record {
        let record = journal
            .swap_record("etc/f.conf", b"new", 0o640)
            .expect("swap record");
        journal.append(&[&record]).expect("append");
        record
    }

    #[test]
    fn a_swap_puts_the_new_file_in_place_and_rollback_brings_the_old_one_back() {
        let (site, mut journal) = site_with("old");
        let record = swapped(&mut journal);
        journal.stash(&record).expect("exchange");
        assert_eq!(read(&site), "new");
        assert_eq!(
            fsx::own_mode(&site.path().join("etc/f.conf")).expect("mode"),
            0o640
        );
        journal.rollback().expect("rollback");
        assert_eq!(read(&site), "old");
        assert!(!site.path().join(JOURNAL_DIR).exists());
    }

    #[test]
    fn a_swap_journaled_but_not_made_leaves_the_path_alone_on_rollback() {
        let (site, mut journal) = site_with("old");
        swapped(&mut journal);
        journal.rollback().expect("rollback");
        assert_eq!(read(&site), "old");
    }

    #[test]
    fn undoing_a_swap_twice_is_harmless() {
        let (site, mut journal) = site_with("old");
        let record = swapped(&mut journal);
        journal.stash(&record).expect("exchange");
        let dir = site.path().join(JOURNAL_DIR);
        let path = site.path().join("etc/f.conf");
        restore(&dir, &path, &record).expect("first undo");
        assert_eq!(read(&site), "old");
        // A rollback interrupted after this record and run again.
        restore(&dir, &path, &record).expect("second undo");
        assert_eq!(read(&site), "old");
    }

    /// A chmod that failed (a path the site user does not own) left the mode
    /// as it was: rolling back must not try it again, or the rollback fails the
    /// same way and the site keeps its journal. Root may chmod anything, so the
    /// test sees whether a chmod happened by the change time it sets.
    #[test]
    fn undoing_a_mode_the_path_still_has_does_not_touch_it() {
        use std::os::unix::fs::MetadataExt as _;
        let (site, _journal) = site_with("old");
        let path = site.path().join("etc/f.conf");
        fsx::set_mode(&path, 0o644).expect("chmod");
        let dir = site.path().join(JOURNAL_DIR);
        let ctime = |p: &Path| {
            let m = fs::symlink_metadata(p).expect("stat");
            (m.ctime(), m.ctime_nsec())
        };
        let before = ctime(&path);
        // More than a clock tick, so that a chmod would show.
        std::thread::sleep(std::time::Duration::from_millis(30));
        let unchanged = Record::Mode {
            path: "etc/f.conf".into(),
            mode: 0o644,
        };
        restore(&dir, &path, &unchanged).expect("undo an unchanged mode");
        assert_eq!(ctime(&path), before);
        // A mode that was changed is set back.
        let changed = Record::Mode {
            path: "etc/f.conf".into(),
            mode: 0o600,
        };
        restore(&dir, &path, &changed).expect("undo a changed mode");
        assert_eq!(fsx::own_mode(&path).expect("mode"), 0o600);
    }

    #[test]
    fn a_directory_replaced_by_a_file_comes_back_whole() {
        let (site, mut journal) = site_with("old");
        let record = journal
            .swap_record("etc", b"a file now", 0o644)
            .expect("swap record");
        journal.append(&[&record]).expect("append");
        journal.stash(&record).expect("exchange");
        assert_eq!(
            fs::read_to_string(site.path().join("etc")).expect("read"),
            "a file now"
        );
        journal.rollback().expect("rollback");
        assert_eq!(read(&site), "old");
    }

    #[test]
    fn the_exchange_made_of_renames_is_undoable_after_each_of_them() {
        // Stopped after 0, 1, 2 and all 3 of its renames (a crash), then rolled back.
        for done in 0..=3 {
            let (site, mut journal) = site_with("old");
            let record = swapped(&mut journal);
            let Record::Swapped { slot, .. } = record else {
                panic!("not a swap: {record:?}");
            };
            let staged = journal.slot_path(slot);
            let at = site.path().join("etc/f.conf");
            if done == 3 {
                exchange_by_renames(&staged, &at).expect("exchange");
                assert_eq!(read(&site), "new");
            } else {
                let aside = PathBuf::from(format!("{}.new", staged.display()));
                let steps = [(&staged, &aside), (&at, &staged), (&aside, &at)];
                for (from, to) in &steps[..done] {
                    fs::rename(from, to).expect("rename");
                }
            }
            let dir = site.path().join(JOURNAL_DIR);
            drop(journal);
            rollback_dir(site.path(), &dir, false).expect("rollback");
            assert_eq!(read(&site), "old", "after {done} renames");
        }
    }
}
