//! The executor: applies a [`Plan`] as one transaction (journal, commit, rollback).

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{Error, IoContext, Result};
use super::fsx::{self, Kind};
use super::journal::{Header, Journal, Record};
use super::plan::{Action, PermissionOutcome, Plan, Update};
use super::site::{VERSION_LINK, copy_tree, version_link_target};
use super::skeleton::VERSION_META_DIR;

/// Deterministic fault injection, for crash and rollback tests.
///
/// Operations are numbered from 0 in the order the executor journals them
/// (one per journal record: each create, replace, removal, chmod, the
/// `.version_meta` refresh and the `version` switch).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Before operation `n`: fail with [`Error::Injected`] (the update then rolls back).
    FailAfter(usize),
    /// Before operation `n`: stop as if the process had died, leaving the
    /// journal for [`recover`](crate::tree::recover) ([`Error::SimulatedCrash`]).
    CrashAfter(usize),
    /// Right after the commit point (the `version` switch), before the journal is removed.
    CrashAfterCommit,
    /// Before operation `n`: create the file at the path (containing `n`) and
    /// sleep forever, so that a test can SIGKILL the process at that point.
    PauseAfter(usize, PathBuf),
}

/// Options of [`Update::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyOptions {
    sync: bool,
    version_meta: bool,
    fault: Option<Fault>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            sync: true,
            version_meta: true,
            fault: None,
        }
    }
}

impl ApplyOptions {
    /// Defaults: fsync on, refresh `.version_meta`, no fault.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to fsync journal records, written files and changed directories
    /// (default on; turn off only for throw-away trees in tests and benches).
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Whether to refresh `<site>/.version_meta` (copy of the new skeleton,
    /// its `skel.permissions` and a `version` file) inside the transaction (default on).
    pub fn version_meta(mut self, refresh: bool) -> Self {
        self.version_meta = refresh;
        self
    }

    /// Injects a fault (tests).
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }
}

/// Watches an update while [`Update::apply_observed`] applies it: progress,
/// cancellation and a last step before the commit point. Every method has a
/// default that does nothing.
pub trait ApplyObserver {
    /// Every entry of the plan up to index `entry` (of `total` entries) has
    /// been applied (its changes are made, not yet necessarily durable).
    fn applied(&mut self, entry: usize, total: usize) {
        let _ = (entry, total);
    }

    /// Asked before every operation up to the commit point: `true` stops
    /// the update, which is then rolled back (the error's source is an
    /// [`std::io::ErrorKind::Interrupted`] I/O error).
    fn cancelled(&self) -> bool {
        false
    }

    /// Called when every change is made and durable, right before the
    /// commit point (the `version` switch): an error rolls the update back.
    fn before_commit(&mut self) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// The observer of [`Update::apply`]: watches nothing.
struct Unobserved;

impl ApplyObserver for Unobserved {}

/// What [`Update::apply`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// The number of journaled operations (including the `version` switch).
    pub operations: usize,
}

impl Update {
    /// Applies `plan` (made by [`Update::plan`] of this update) as one
    /// transaction: every change is journaled before it is made, the
    /// `version` link is switched last (the commit point), and on any error
    /// the site is restored exactly ([`Error::RolledBack`]).
    pub fn apply(&self, plan: &Plan, options: &ApplyOptions) -> Result<Applied> {
        self.apply_observed(plan, options, &mut Unobserved)
    }

    /// [`Update::apply`], reporting progress to `observer`, which can also
    /// cancel the update before its commit point (it is rolled back then)
    /// and run a last step right before it.
    pub fn apply_observed(
        &self,
        plan: &Plan,
        options: &ApplyOptions,
        observer: &mut dyn ApplyObserver,
    ) -> Result<Applied> {
        if plan.site != self.site
            || plan.from_version != self.from.version()
            || plan.to_version != self.to.version()
        {
            return Err(Error::PlanMismatch {
                plan_site: plan.site.clone(),
                plan_from: plan.from_version.clone(),
                plan_to: plan.to_version.clone(),
            });
        }
        let open = plan.unresolved();
        if open > 0 {
            let path = plan
                .conflicts()
                .iter()
                .find(|(_, c)| c.answer.is_none())
                .map(|(p, _)| (*p).to_owned());
            return Err(Error::Unresolved {
                count: open,
                path: path.unwrap_or_default(),
            });
        }
        let header = Header {
            format: 1,
            site: self.site.clone(),
            from: self.from.version().to_owned(),
            to: self.to.version().to_owned(),
        };
        let journal = Journal::begin(&self.site_home, &header, options.sync)?;
        let mut ex = Exec {
            up: self,
            opts: options,
            journal,
            ops: 0,
            observer,
            total: plan.entries.len(),
        };
        match ex
            .run(plan)
            .and_then(|()| ex.before_commit())
            .and_then(|()| ex.commit())
        {
            Ok(()) => {}
            Err(e @ Error::SimulatedCrash { .. }) => return Err(e),
            Err(cause) => {
                return Err(match ex.journal.rollback() {
                    Ok(()) => Error::RolledBack {
                        source: Box::new(cause),
                    },
                    Err(e) => Error::RollbackFailed {
                        cause: Box::new(cause),
                        source: Box::new(e),
                    },
                });
            }
        }
        if options.fault == Some(Fault::CrashAfterCommit) {
            return Err(Error::SimulatedCrash { ops: ex.ops });
        }
        let ops = ex.ops;
        ex.journal.finish()?;
        Ok(Applied { operations: ops })
    }
}

/// Journal records are appended (and fsynced) in batches of at most this many.
const BATCH: usize = 256;

/// One change, prepared (inputs read, before-image decided) but not yet made.
enum Op<'p> {
    /// Create from the new skeleton (after stashing what is there).
    Install { rel: &'p str, new: New },
    /// Stash what is there.
    Remove { rel: &'p str },
    /// Replace the content, keeping the mode.
    Write {
        rel: &'p str,
        bytes: &'p [u8],
        mode: u32,
    },
    /// chmod.
    Chmod { rel: &'p str, mode: u32 },
    /// Replace `.version_meta`.
    Meta,
}

/// What an installed path becomes.
enum New {
    File(Vec<u8>, u32),
    Dir(u32),
    Link(PathBuf),
}

struct Exec<'a> {
    up: &'a Update,
    opts: &'a ApplyOptions,
    journal: Journal,
    ops: usize,
    observer: &'a mut dyn ApplyObserver,
    /// The number of entries of the plan.
    total: usize,
}

/// An operation with its journal record and the index of its plan entry.
type Queued<'p> = (Op<'p>, Record, usize);

impl<'a> Exec<'a> {
    /// Counts an operation and fires an injected fault.
    fn hook(&mut self, rel: &str) -> Result<()> {
        let done = self.ops;
        self.ops += 1;
        if self.observer.cancelled() {
            return Err(Error::Io {
                action: "apply the update to",
                path: self.up.site_home.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    format!("interrupted before {rel}"),
                ),
            });
        }
        match &self.opts.fault {
            Some(Fault::FailAfter(n)) if done >= *n => Err(Error::Injected {
                ops: done,
                path: rel.to_owned(),
            }),
            Some(Fault::CrashAfter(n)) if done >= *n => Err(Error::SimulatedCrash { ops: done }),
            Some(Fault::PauseAfter(n, marker)) if done >= *n => {
                fs::write(marker, done.to_string()).ctx("write", marker)?;
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
            _ => Ok(()),
        }
    }

    fn site(&self, rel: &str) -> PathBuf {
        self.up.site_home.join(rel)
    }

    fn run<'p>(&mut self, plan: &'p Plan) -> Result<()> {
        let mut batch: Vec<Queued<'p>> = Vec::new();
        for (index, entry) in plan.entries.iter().enumerate() {
            let rel = entry.path.as_str();
            let op = match &entry.action {
                Action::Nothing => None,
                Action::Install => Some(Op::Install {
                    rel,
                    new: self.new_object(rel)?,
                }),
                Action::InstallAt(at) => Some(Op::Install {
                    rel: at.as_str(),
                    new: self.new_object(rel)?,
                }),
                Action::Remove => Some(Op::Remove { rel }),
                Action::Write(bytes) => {
                    let path = self.site(rel);
                    Some(Op::Write {
                        rel,
                        bytes,
                        mode: fsx::own_mode(&path).ctx("inspect", &path)?,
                    })
                }
            };
            if let Some(op) = op {
                self.queue(&mut batch, op, index)?;
            }
            if let Some(p) = entry
                .permission
                .as_ref()
                .filter(|p| p.outcome == PermissionOutcome::Set)
            {
                self.queue(
                    &mut batch,
                    Op::Chmod {
                        rel,
                        mode: p.new_mode,
                    },
                    index,
                )?;
            }
            if batch.is_empty() {
                self.observer.applied(index, self.total);
            }
        }
        if self.opts.version_meta {
            self.queue(&mut batch, Op::Meta, self.total.saturating_sub(1))?;
        }
        self.flush(&mut batch)?;
        if self.total > 0 {
            self.observer.applied(self.total - 1, self.total);
        }
        self.journal.sync_all()
    }

    /// The observer's last step before the commit point.
    fn before_commit(&mut self) -> Result<()> {
        if self.observer.cancelled() {
            return Err(Error::Io {
                action: "apply the update to",
                path: self.up.site_home.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "interrupted before the version switch",
                ),
            });
        }
        self.observer.before_commit().map_err(|reason| Error::Io {
            action: "finish the update of",
            path: self.up.site_home.clone(),
            source: std::io::Error::other(reason),
        })
    }

    /// Reads what the new skeleton has at `rel` (before anything is touched).
    fn new_object(&self, rel: &str) -> Result<New> {
        let up = self.up;
        let src = up.to.skel_dir().join(rel);
        let mode = up.new_perms.skel_perm(up.to.skel_dir(), rel);
        match fsx::kind_of(&src).ctx("inspect", &src)? {
            Some(Kind::File) => Ok(New::File(
                up.new_repl.apply(&fs::read(&src).ctx("read", &src)?),
                mode,
            )),
            Some(Kind::Dir) => Ok(New::Dir(mode)),
            Some(Kind::Link) => Ok(New::Link(fs::read_link(&src).ctx("read link", &src)?)),
            None => Err(Error::Io {
                action: "install",
                path: src,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "vanished from the skeleton since planning",
                ),
            }),
        }
    }

    /// Adds an operation with its before-image to the batch. A path already
    /// in the batch, or a full batch, flushes first, so that every
    /// before-image is taken after the earlier changes of that path.
    fn queue<'p>(&mut self, batch: &mut Vec<Queued<'p>>, op: Op<'p>, index: usize) -> Result<()> {
        let rel = op_path(&op);
        if batch.len() >= BATCH || batch.iter().any(|(o, _, _)| op_path(o) == rel) {
            self.flush(batch)?;
        }
        let record = match &op {
            Op::Chmod { rel, .. } => {
                let path = self.site(rel);
                Record::Mode {
                    path: (*rel).to_owned(),
                    mode: fsx::own_mode(&path).ctx("inspect", &path)?,
                }
            }
            _ => self.journal.before_image(rel)?,
        };
        batch.push((op, record, index));
        Ok(())
    }

    /// Journals the batch (one write, one fsync), then makes its changes.
    fn flush(&mut self, batch: &mut Vec<Queued<'_>>) -> Result<()> {
        let records: Vec<Record> = batch.iter().map(|(_, r, _)| r.clone()).collect();
        self.journal.append(&records)?;
        let mut last = None;
        for (op, record, index) in batch.drain(..) {
            self.hook(op_path(&op))?;
            self.perform(op, &record)?;
            if last.is_some_and(|l| l != index) {
                // Every entry before this one is done.
                self.observer.applied(index.saturating_sub(1), self.total);
            }
            last = Some(index);
        }
        if let Some(index) = last {
            self.observer.applied(index, self.total);
        }
        Ok(())
    }

    fn perform(&mut self, op: Op<'_>, record: &Record) -> Result<()> {
        match op {
            Op::Install { rel, new } => {
                self.journal.stash(record)?;
                let dst = self.site(rel);
                match new {
                    New::File(content, mode) => {
                        fsx::write_atomic(&dst, &content, mode, false).ctx("write", &dst)
                    }
                    New::Dir(mode) => {
                        fs::create_dir(&dst).ctx("create", &dst)?;
                        fsx::set_mode(&dst, mode).ctx("chmod", &dst)
                    }
                    New::Link(target) => {
                        fsx::symlink_atomic(&target, &dst).ctx("create link", &dst)
                    }
                }
            }
            Op::Remove { .. } => self.journal.stash(record),
            Op::Write { rel, bytes, mode } => {
                let dst = self.site(rel);
                let tmp = fsx::temp_sibling(&dst);
                fsx::write_temp(&tmp, bytes, mode, false).ctx("write", &tmp)?;
                self.journal.stash(record)?;
                fs::rename(&tmp, &dst).ctx("rename into place", &dst)
            }
            Op::Chmod { rel, mode } => {
                let path = self.site(rel);
                fsx::set_mode(&path, mode).ctx("chmod", &path)
            }
            Op::Meta => {
                self.journal.stash(record)?;
                let to = &self.up.to;
                write_version_meta(
                    &self.site(VERSION_META_DIR),
                    to.skel_dir(),
                    to.permissions_file(),
                    to.version(),
                )
            }
        }
    }

    /// Switches the `version` link: the commit point.
    fn commit(&mut self) -> Result<()> {
        let mut batch = Vec::new();
        let record = self.journal.before_image(VERSION_LINK)?;
        batch.push(record.clone());
        self.journal.append(&batch)?;
        self.hook(VERSION_LINK)?;
        self.journal.stash(&record)?;
        let link = self.site(VERSION_LINK);
        fsx::symlink_atomic(&version_link_target(self.up.to.version()), &link)
            .ctx("create link", &link)?;
        if self.opts.sync {
            fsx::sync_dir(&self.up.site_home).ctx("sync", &self.up.site_home)?;
            super::journal::flushed(1);
        }
        Ok(())
    }
}

fn op_path<'p>(op: &Op<'p>) -> &'p str {
    match op {
        Op::Install { rel, .. }
        | Op::Remove { rel }
        | Op::Write { rel, .. }
        | Op::Chmod { rel, .. } => rel,
        Op::Meta => VERSION_META_DIR,
    }
}

/// Writes a fresh `.version_meta` directory at `meta`.
pub(crate) fn write_version_meta(
    meta: &Path,
    skel: &Path,
    permissions: &Path,
    version: &str,
) -> Result<()> {
    fs::create_dir(meta).ctx("create", meta)?;
    copy_tree(skel, &meta.join("skel"))?;
    let perms_dst = meta.join("skel.permissions");
    match fs::copy(permissions, &perms_dst) {
        Ok(_) => {}
        Err(e) if fsx::is_absent(&e) => {}
        Err(e) => return Err(e).ctx("copy", permissions),
    }
    let version_file = meta.join("version");
    fs::write(&version_file, format!("{version}\n")).ctx("write", &version_file)
}
