//! The executor: applies a [`Plan`] as one transaction (journal, commit, rollback).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::error::{Error, IoContext, Result};
use super::fsx::{self, Kind};
use super::journal::{Header, Journal, Record};
use super::plan::{Action, PermissionOutcome, Plan, SkelFile, Update};
use super::site::{VERSION_LINK, copy_tree, version_link_target};
use super::skeleton::VERSION_META_DIR;

/// Deterministic fault injection, for crash and rollback tests.
///
/// Operations are numbered from 0 in the order the executor journals them
/// (one per journal record: each create, replace, removal, chmod — those of
/// `.version_meta` included — and the `version` switch).
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
    Install { rel: Cow<'p, str>, new: New<'p> },
    /// Stash what is there.
    Remove { rel: Cow<'p, str> },
    /// Replace the content, keeping the mode (queued as an [`Op::Exchange`]).
    Write {
        rel: Cow<'p, str>,
        bytes: Cow<'p, [u8]>,
        mode: u32,
    },
    /// chmod.
    Chmod { rel: Cow<'p, str>, mode: u32 },
    /// Replace `.version_meta` as a whole.
    Meta,
    /// Exchange the new file already written to the journal (a `swapped`
    /// record) with what is there.
    Exchange { rel: Cow<'p, str> },
}

/// What an installed path becomes.
enum New<'p> {
    File(Cow<'p, [u8]>, u32),
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

/// The operations waiting for their journal records to be written, and
/// their paths.
#[derive(Default)]
struct Batch<'p> {
    ops: Vec<Queued<'p>>,
    paths: HashSet<String>,
}

/// The new skeleton as planning read it: per path, what the executor can
/// take from there instead of reading (and comparing) again.
type Known<'p> = HashMap<&'p str, &'p SkelFile>;

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
        let mut batch = Batch::default();
        for (index, entry) in plan.entries.iter().enumerate() {
            let rel = entry.path.as_str();
            let op = match &entry.action {
                Action::Nothing => None,
                Action::Install => Some(Op::Install {
                    rel: Cow::Borrowed(rel),
                    new: self.new_object(rel, &entry.skel)?,
                }),
                Action::InstallAt(at) => Some(Op::Install {
                    rel: Cow::Borrowed(at.as_str()),
                    new: self.new_object(rel, &entry.skel)?,
                }),
                Action::Remove => Some(Op::Remove {
                    rel: Cow::Borrowed(rel),
                }),
                Action::Write(bytes) => {
                    let path = self.site(rel);
                    // The mode to keep; it also tells the before-image: something is there.
                    let mode = fsx::own_mode(&path).ctx("inspect", &path)?;
                    let op = Op::Write {
                        rel: Cow::Borrowed(rel),
                        bytes: Cow::Borrowed(bytes),
                        mode,
                    };
                    self.queue_as(&mut batch, op, index, Some(true))?;
                    None
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
                        rel: Cow::Borrowed(rel),
                        mode: p.new_mode,
                    },
                    index,
                )?;
            }
            if batch.ops.is_empty() {
                self.observer.applied(index, self.total);
            }
        }
        if self.opts.version_meta {
            let last = self.total.saturating_sub(1);
            if self.meta_in_place()? {
                let known: Known<'p> = plan
                    .entries
                    .iter()
                    .map(|e| (e.path.as_str(), &e.skel))
                    .collect();
                self.queue_meta_changes(&mut batch, &known, last)?;
            } else {
                self.queue(&mut batch, Op::Meta, last)?;
            }
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

    /// What the new skeleton has at `rel` (before anything is touched): as
    /// planning read it, else read now.
    fn new_object<'p>(&self, rel: &str, known: &'p SkelFile) -> Result<New<'p>> {
        let up = self.up;
        if let Some(raw) = &known.raw {
            let mode = up
                .new_perms
                .skel_perm_of(up.to.skel_dir(), rel, Some(Kind::File));
            let content = if known.substituted_known {
                Cow::Borrowed(known.substituted.as_deref().unwrap_or(raw))
            } else {
                up.new_repl
                    .apply_if_needed(raw)
                    .map_or(Cow::Borrowed(raw.as_slice()), Cow::Owned)
            };
            return Ok(New::File(content, mode));
        }
        let src = up.to.skel_dir().join(rel);
        let kind = fsx::kind_of(&src).ctx("inspect", &src)?;
        let mode = up.new_perms.skel_perm_of(up.to.skel_dir(), rel, kind);
        match kind {
            Some(Kind::File) => Ok(New::File(
                Cow::Owned(up.new_repl.apply_owned(fs::read(&src).ctx("read", &src)?)),
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

    /// Whether `.version_meta` is refreshed path by path: when it is the
    /// old skeleton of this update (then it holds the old version's
    /// skeleton, and only what differs in the new one is changed).
    fn meta_in_place(&self) -> Result<bool> {
        let meta = self.site(VERSION_META_DIR);
        Ok(self.up.from.skel_dir() == meta.join("skel")
            && self.up.from.permissions_file() == meta.join(META_PERMISSIONS)
            && fsx::kind_of(&meta.join(META_VERSION)).ctx("inspect", &meta)? == Some(Kind::File))
    }

    /// Queues the changes that turn `.version_meta` (the old skeleton, its
    /// permissions, its version) into the new one, each journaled like any
    /// other change of the update.
    fn queue_meta_changes<'p>(
        &mut self,
        batch: &mut Batch<'p>,
        known: &Known<'p>,
        index: usize,
    ) -> Result<()> {
        let up = self.up;
        // What a fresh copy would not have.
        let meta = self.site(VERSION_META_DIR);
        for (name, _) in fsx::sorted_entries(&meta).ctx("list", &meta)? {
            if !["skel", META_PERMISSIONS, META_VERSION].contains(&name.as_str()) {
                let rel = format!("{VERSION_META_DIR}/{name}");
                self.queue(batch, Op::Remove { rel: rel.into() }, index)?;
            }
        }
        self.queue_meta_dir(batch, known, "", true, index)?;
        let (old_skel, new_skel) = (up.from.skel_dir(), up.to.skel_dir());
        let mode = fsx::own_mode(new_skel).ctx("inspect", new_skel)?;
        if fsx::own_mode(old_skel).ctx("inspect", old_skel)? != mode {
            let rel = format!("{VERSION_META_DIR}/skel");
            self.queue(
                batch,
                Op::Chmod {
                    rel: rel.into(),
                    mode,
                },
                index,
            )?;
        }
        let rel = format!("{VERSION_META_DIR}/{META_PERMISSIONS}");
        let (old, new) = (self.site(&rel), up.to.permissions_file());
        match fsx::read_with_mode(new) {
            Ok((bytes, mode)) => {
                if fsx::read_with_mode(&old).ok() != Some((bytes.clone(), mode)) {
                    let new = New::File(Cow::Owned(bytes), mode);
                    self.queue(
                        batch,
                        Op::Install {
                            rel: rel.into(),
                            new,
                        },
                        index,
                    )?;
                }
            }
            Err(e) if fsx::is_absent(&e) => {
                if fsx::kind_of(&old).ctx("inspect", &old)?.is_some() {
                    self.queue(batch, Op::Remove { rel: rel.into() }, index)?;
                }
            }
            Err(e) => return Err(e).ctx("read", new),
        }
        let rel = format!("{VERSION_META_DIR}/{META_VERSION}");
        let path = self.site(&rel);
        let op = Op::Write {
            bytes: Cow::Owned(format!("{}\n", up.to.version()).into_bytes()),
            mode: fsx::own_mode(&path).ctx("inspect", &path)?,
            rel: rel.into(),
        };
        // `own_mode` found it there.
        self.queue_as(batch, op, index, Some(true))
    }

    /// The changes below `.version_meta/skel/<dir>` (`dir` empty: the top);
    /// `in_old`: whether the old skeleton has a directory there.
    fn queue_meta_dir<'p>(
        &mut self,
        batch: &mut Batch<'p>,
        known: &Known<'p>,
        dir: &str,
        in_old: bool,
        index: usize,
    ) -> Result<()> {
        let up = self.up;
        let join = |root: &Path| {
            if dir.is_empty() {
                root.to_path_buf()
            } else {
                root.join(dir)
            }
        };
        let (old_dir, new_dir) = (join(up.from.skel_dir()), join(up.to.skel_dir()));
        let old = if in_old {
            fsx::sorted_entries(&old_dir).ctx("list", &old_dir)?
        } else {
            Vec::new()
        };
        let new = fsx::sorted_entries(&new_dir).ctx("list", &new_dir)?;
        // Both listings by name: (kind in the old skeleton, in the new one).
        let mut names: BTreeMap<String, (Option<Kind>, Option<Kind>)> = BTreeMap::new();
        for (name, kind) in old {
            names.entry(name).or_default().0 = Some(kind);
        }
        for (name, kind) in new {
            names.entry(name).or_default().1 = Some(kind);
        }
        for (name, (o, n)) in names {
            let rel = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            let site_rel = format!("{VERSION_META_DIR}/skel/{rel}");
            let (old_path, new_path) = (up.from.skel_dir().join(&rel), up.to.skel_dir().join(&rel));
            match (o, n) {
                (_, None) => {
                    let op = Op::Remove {
                        rel: site_rel.into(),
                    };
                    self.queue_as(batch, op, index, Some(true))?;
                }
                (Some(Kind::Dir), Some(Kind::Dir)) => {
                    self.queue_meta_dir(batch, known, &rel, true, index)?;
                    let mode = fsx::own_mode(&new_path).ctx("inspect", &new_path)?;
                    if fsx::own_mode(&old_path).ctx("inspect", &old_path)? != mode {
                        self.queue(
                            batch,
                            Op::Chmod {
                                rel: site_rel.into(),
                                mode,
                            },
                            index,
                        )?;
                    }
                }
                (o, Some(Kind::Dir)) => {
                    // Created writable, so that its contents can be; its
                    // own mode is set after them.
                    let mode = fsx::own_mode(&new_path).ctx("inspect", &new_path)?;
                    let new = New::Dir(mode | 0o700);
                    let op = Op::Install {
                        rel: site_rel.clone().into(),
                        new,
                    };
                    self.queue_as(batch, op, index, Some(o.is_some()))?;
                    self.queue_meta_dir(batch, known, &rel, false, index)?;
                    if mode & 0o700 != 0o700 {
                        self.queue(
                            batch,
                            Op::Chmod {
                                rel: site_rel.into(),
                                mode,
                            },
                            index,
                        )?;
                    }
                }
                (o, Some(Kind::Link)) => {
                    let planned = known.get(rel.as_str()).and_then(|k| k.same_as_old);
                    if o == Some(Kind::Link) && planned == Some(true) {
                        continue;
                    }
                    let target = fs::read_link(&new_path).ctx("read link", &new_path)?;
                    let same = o == Some(Kind::Link)
                        && planned.is_none()
                        && fs::read_link(&old_path).ctx("read link", &old_path)? == target;
                    if !same {
                        let op = Op::Install {
                            rel: site_rel.into(),
                            new: New::Link(target),
                        };
                        self.queue_as(batch, op, index, Some(o.is_some()))?;
                    }
                }
                (o, Some(Kind::File)) => {
                    let cached = known.get(rel.as_str()).copied();
                    let planned = cached.and_then(|k| k.same_as_old);
                    if o == Some(Kind::File) && planned == Some(true) {
                        continue;
                    }
                    let (bytes, mode) = match cached.and_then(|k| k.raw.as_ref().zip(k.mode)) {
                        Some((raw, mode)) => (Cow::Borrowed(raw.as_slice()), mode),
                        None => {
                            let (raw, mode) =
                                fsx::read_with_mode(&new_path).ctx("read", &new_path)?;
                            (Cow::Owned(raw), mode)
                        }
                    };
                    if o == Some(Kind::File)
                        && planned.is_none()
                        && fsx::read_with_mode(&old_path)
                            .is_ok_and(|(old, old_mode)| old_mode == mode && old == *bytes)
                    {
                        continue;
                    }
                    let new = New::File(bytes, mode);
                    let op = Op::Install {
                        rel: site_rel.into(),
                        new,
                    };
                    self.queue_as(batch, op, index, Some(o.is_some()))?;
                }
            }
        }
        Ok(())
    }

    /// Adds an operation with its before-image to the batch. A path already
    /// in the batch, or a full batch, flushes first, so that every
    /// before-image is taken after the earlier changes of that path.
    fn queue<'p>(&mut self, batch: &mut Batch<'p>, op: Op<'p>, index: usize) -> Result<()> {
        self.queue_as(batch, op, index, None)
    }

    /// [`Exec::queue`]; `present` says whether something is at the path
    /// when that is known already (from a listing made just before), which
    /// spares the `lstat` of the before-image.
    fn queue_as<'p>(
        &mut self,
        batch: &mut Batch<'p>,
        op: Op<'p>,
        index: usize,
        present: Option<bool>,
    ) -> Result<()> {
        let rel = op_path(&op);
        if batch.ops.len() >= BATCH || batch.paths.contains(rel) {
            self.flush(batch)?;
        }
        let record = match &op {
            Op::Chmod { rel, .. } => {
                let path = self.site(rel);
                Record::Mode {
                    path: rel.to_string(),
                    mode: fsx::own_mode(&path).ctx("inspect", &path)?,
                }
            }
            _ => {
                let present = match present {
                    Some(present) => present,
                    None => self.journal.present(rel)?,
                };
                match file_content(&op).filter(|_| present) {
                    // Replacing something by a file: written into the
                    // journal now, exchanged with it when performed.
                    Some((content, mode)) => {
                        let record = self.journal.swap_record(rel, content, mode)?;
                        let rel = rel.to_owned();
                        batch.paths.insert(rel.clone());
                        batch
                            .ops
                            .push((Op::Exchange { rel: rel.into() }, record, index));
                        return Ok(());
                    }
                    None => self.journal.record(rel, present),
                }
            }
        };
        batch.paths.insert(rel.to_owned());
        batch.ops.push((op, record, index));
        Ok(())
    }

    /// Journals the batch (one write, one fsync), then makes its changes.
    fn flush(&mut self, batch: &mut Batch<'_>) -> Result<()> {
        let records: Vec<&Record> = batch.ops.iter().map(|(_, r, _)| r).collect();
        self.journal.append(&records)?;
        batch.paths.clear();
        let mut last = None;
        for (op, record, index) in batch.ops.drain(..) {
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
                let dst = self.site(&rel);
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
            // A write always replaces an existing file: `queue_as` made it an exchange.
            Op::Remove { .. } | Op::Exchange { .. } | Op::Write { .. } => {
                self.journal.stash(record)
            }
            Op::Chmod { rel, mode } => {
                let path = self.site(&rel);
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
        let record = self.journal.before_image(VERSION_LINK)?;
        self.journal.append(&[&record])?;
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

fn op_path<'o>(op: &'o Op<'_>) -> &'o str {
    match op {
        Op::Install { rel, .. }
        | Op::Remove { rel }
        | Op::Write { rel, .. }
        | Op::Chmod { rel, .. }
        | Op::Exchange { rel } => rel,
        Op::Meta => VERSION_META_DIR,
    }
}

/// The content and mode of a file the operation writes over its path.
fn file_content<'o>(op: &'o Op<'_>) -> Option<(&'o [u8], u32)> {
    match op {
        Op::Write { bytes, mode, .. } => Some((bytes, *mode)),
        Op::Install {
            new: New::File(content, mode),
            ..
        } => Some((content, *mode)),
        _ => None,
    }
}

/// The copy of the version's `skel.permissions` in `.version_meta`.
const META_PERMISSIONS: &str = "skel.permissions";
/// The file in `.version_meta` naming its version.
const META_VERSION: &str = "version";

/// Writes a fresh `.version_meta` directory at `meta`.
pub(crate) fn write_version_meta(
    meta: &Path,
    skel: &Path,
    permissions: &Path,
    version: &str,
) -> Result<()> {
    fs::create_dir(meta).ctx("create", meta)?;
    copy_tree(skel, &meta.join("skel"))?;
    let perms_dst = meta.join(META_PERMISSIONS);
    match fs::copy(permissions, &perms_dst) {
        Ok(_) => {}
        Err(e) if fsx::is_absent(&e) => {}
        Err(e) => return Err(e).ctx("copy", permissions),
    }
    let version_file = meta.join(META_VERSION);
    fs::write(&version_file, format!("{version}\n")).ctx("write", &version_file)
}
