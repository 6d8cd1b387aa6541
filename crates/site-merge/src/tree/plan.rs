//! The planner: walks the skeletons and the site and classifies every path
//! by the decision table (spec sections 1, 2, 3 and 5), asking the resolver
//! where Checkmk would ask. Nothing is written here.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{Error, IoContext, Result};
use super::fsx::{self, Kind};
use super::macros::{Replacements, substituted_when_comparing};
use super::merge::{MergedText, TextMerger};
use super::perms::{PermDecision, PermInput, PermissionTable, permission_action};
use super::resolve::{
    Answer, Conflict, ConflictKind, ConflictReport, MergeTexts, Question, Resolver, merge_question,
};
use super::skeleton::Skeleton;

/// The paths Checkmk 2.5's skeleton walk skips. Each version's list extends the
/// one before it, so the older lists are its beginnings: see [`ignored_paths`].
pub const DEFAULT_IGNORED: [&str; 12] = [
    "etc/htpasswd",
    "etc/diskspace.conf",
    "local/lib/python3/cmk/base/plugins/agent_based",
    "local/lib/python3/cmk/base/plugins",
    "local/lib/python3/cmk/base",
    "local/lib/python3/cmk/special_agents",
    "local/share/check_mk/agents/special",
    "local/share/check_mk/checkman",
    "local/share/check_mk/checks",
    "local/share/nagios",
    "local/share/nagios/htdocs",
    "local/share/nagios/htdocs/theme",
];

/// The paths the skeleton walk of the update *to* `version` skips (an OMD version
/// name such as `2.4.0p2.cee`: the code that runs an update is the target
/// version's): 2.3 and older skip `etc/htpasswd`, 2.4 four more paths, 2.5 and
/// later (and a name that is no Checkmk version) [`DEFAULT_IGNORED`].
pub fn ignored_paths(version: &str) -> &'static [&'static str] {
    let base = version
        .parse::<omd_versions::OmdVersion>()
        .ok()
        .and_then(|v| v.version().base());
    match base.map(|b| (b.major(), b.minor())) {
        Some(v) if v <= (2, 3) => &DEFAULT_IGNORED[..1],
        Some((2, 4)) => &DEFAULT_IGNORED[..5],
        _ => &DEFAULT_IGNORED,
    }
}

/// What happens to one path (file step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Rows 1, 3 (replace): created from the new skeleton.
    Installed,
    /// Row 2: new in the skeleton, the site already has the same.
    IdenticalNew,
    /// Rows 3, 5-7, 15-18 (keep): the operator's version stays.
    KeptYours,
    /// Row 4: obsolete and already gone.
    Obsolete,
    /// Rows 5-7 (remove): obsolete path removed on request.
    Removed,
    /// Row 8: obsolete and unchanged, removed.
    Vanished,
    /// Row 9: the operator removed a path we did not change.
    Unwanted,
    /// Row 10: the operator removed a path we changed (warning only).
    Missing,
    /// Row 11: we did not change it (no line).
    Unchanged,
    /// Row 12: the operator did not change it, replaced by the new default.
    Updated,
    /// Row 13: the operator made the same change as we did.
    Identical,
    /// Row 14: merged cleanly.
    Merged,
    /// Row 14 menu `t`: merged cleanly after the operator edited the original.
    MergedOnRetry,
    /// Row 14 menu `k`: the file keeps the conflict markers.
    KeptConflictMarkers,
    /// Row 14 menu `e`: the operator's edited half-merged file.
    Edited,
    /// Row 14 menu `r` (policy keepold): the operator's version stays.
    Restored,
    /// Row 14 menu `i` (policy install): the new default replaces the file (mode kept).
    InstalledDefault,
    /// Row 14: the merge engine failed; the file is left as it is.
    CannotMerge,
    /// Row 15 (replace): the link points to the new target.
    LinkChanged,
    /// Rows 16-18 (replace): the new default replaces the operator's path.
    Replaced,
    /// The new file or link cannot be created because its parent directory is
    /// missing in the site (the operator removed or replaced it): Checkmk's
    /// code raises there and prints ` ! Exception      X`; the status says so
    /// and, on its next line, why. (A new directory is created with its
    /// missing parents instead, as `mkdir -p`.)
    ParentMissing,
    /// A conflict left open (dry run).
    Pending,
    /// Checkmk's code raises on this path (printed as ` ! Exception      X`
    /// plus a line saying why); nothing is changed there.
    Exception,
}

/// What the permission step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionOutcome {
    /// The mode is set to the new default.
    Set,
    /// The operator's mode is kept (answer to a question).
    Kept,
    /// A question left open (dry run).
    Pending,
}

/// The permission step of one path (only when it does something or asks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PermissionStep {
    /// The mode in the site (after the file step).
    pub user_mode: u32,
    /// The new default mode.
    pub new_mode: u32,
    /// What happens.
    pub outcome: PermissionOutcome,
    /// The status line (` * Permissions    0644 -> 0600 X` / ` ! Permissions    0644 X (unchanged)`).
    pub status: Option<String>,
    /// The question, when there was one.
    pub conflict: Option<ConflictReport>,
}

/// The plan for one path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The site-relative path.
    pub path: String,
    /// The decision-table row (1-18) that matched.
    pub row: u8,
    /// The type in the old skeleton.
    pub old: Option<Kind>,
    /// The type in the new skeleton.
    pub new: Option<Kind>,
    /// The type in the site.
    pub user: Option<Kind>,
    /// What happens.
    pub outcome: Outcome,
    /// The status line, exactly as Checkmk prints it (plain, no colour); `None` when silent.
    pub status: Option<String>,
    /// The question asked, when there was one.
    pub conflict: Option<ConflictReport>,
    /// The permission step, when it does something or asks.
    pub permission: Option<PermissionStep>,
    #[serde(skip)]
    pub(crate) action: Action,
    /// What planning learnt about the new skeleton's file, for the executor.
    #[serde(skip)]
    pub(crate) skel: SkelFile,
}

/// What planning read of a path of the new skeleton, kept so that the
/// executor neither reads nor compares it again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SkelFile {
    /// The file's bytes as stored (when read and needed later).
    pub(crate) raw: Option<Vec<u8>>,
    /// The bytes after substitution when that changes them; `None` with
    /// `raw` set: substitution was not computed (or changes nothing, with
    /// `substituted_known`).
    pub(crate) substituted: Option<Vec<u8>>,
    /// Whether `substituted` was computed from `raw`.
    pub(crate) substituted_known: bool,
    /// The file's mode (`& 0o7777`), when read.
    pub(crate) mode: Option<u32>,
    /// Whether the old and the new skeleton have the same object here: same
    /// kind, same bytes (or link target) and mode, as stored (no
    /// substitution); `None` when planning did not read enough to tell.
    pub(crate) same_as_old: Option<bool>,
}

impl Entry {
    /// Whether the update writes anything for this path.
    pub fn changes_site(&self) -> bool {
        self.action != Action::Nothing
            || self
                .permission
                .as_ref()
                .is_some_and(|p| p.outcome == PermissionOutcome::Set)
    }
}

/// What the executor does for a path (file step).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) enum Action {
    #[default]
    Nothing,
    /// Remove what is there and create the path from the new skeleton.
    Install,
    /// Remove the path (recursively).
    Remove,
    /// Replace the file's content, keeping its mode.
    Write(Vec<u8>),
    /// Create the new skeleton's file at this other site path: the end of
    /// the operator's dangling symlink at the entry's path, which is kept
    /// (Checkmk's `open(path, "wb")` writes through the link).
    InstallAt(String),
}

/// The complete plan of an update: every path of both skeletons, in walk order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Report format version of the JSON form.
    pub schema: u32,
    /// The site name.
    pub site: String,
    /// The version updated from.
    pub from_version: String,
    /// The version updated to.
    pub to_version: String,
    /// One entry per path.
    pub entries: Vec<Entry>,
}

impl Plan {
    /// All status lines in order (a path's file line, then its permission line).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.entries {
            out.extend(e.status.clone());
            if let Some(p) = &e.permission {
                out.extend(p.status.clone());
            }
        }
        out
    }

    /// Every question of the plan with its path (answered or open).
    pub fn conflicts(&self) -> Vec<(&str, &ConflictReport)> {
        let mut out = Vec::new();
        for e in &self.entries {
            if let Some(c) = &e.conflict {
                out.push((e.path.as_str(), c));
            }
            if let Some(c) = e.permission.as_ref().and_then(|p| p.conflict.as_ref()) {
                out.push((e.path.as_str(), c));
            }
        }
        out
    }

    /// The number of open (deferred) questions; a plan can be applied only when this is 0.
    pub fn unresolved(&self) -> usize {
        self.conflicts()
            .iter()
            .filter(|(_, c)| c.answer.is_none())
            .count()
    }

    /// The entry of `path`.
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path)
    }

    /// The number of paths the update writes (file or permission change).
    pub fn changes(&self) -> usize {
        self.entries.iter().filter(|e| e.changes_site()).count()
    }
}

/// Builder of an [`Update`].
#[derive(Clone, Debug)]
pub struct UpdateBuilder {
    site_home: PathBuf,
    site: String,
    from: Skeleton,
    to: Skeleton,
    root: Option<String>,
    ignore: Option<Vec<String>>,
}

impl UpdateBuilder {
    /// The value of `###ROOT###` (default: the site home as given).
    pub fn root(mut self, root: impl Into<String>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// The site-relative paths the walk skips (default: the target version's
    /// list, [`ignored_paths`]).
    pub fn ignore<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ignore = Some(paths.into_iter().map(Into::into).collect());
        self
    }

    /// Loads the permission tables and checks the inputs.
    pub fn build(self) -> Result<Update> {
        if self.from.version() == self.to.version() {
            return Err(Error::SameVersion {
                version: self.to.version().to_owned(),
            });
        }
        let old_perms = PermissionTable::load(self.from.permissions_file())?;
        let new_perms = PermissionTable::load(self.to.permissions_file())?;
        let root = self
            .root
            .unwrap_or_else(|| self.site_home.to_string_lossy().into_owned());
        let old_repl = Replacements::new(&self.site, &root)
            .with_edition(self.from.edition_name().map(str::to_owned));
        let new_repl = Replacements::new(&self.site, &root)
            .with_edition(self.to.edition_name().map(str::to_owned));
        let ignore = self.ignore.unwrap_or_else(|| {
            ignored_paths(self.to.version())
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        });
        Ok(Update {
            site_home: self.site_home,
            site: self.site,
            from: self.from,
            to: self.to,
            old_perms,
            new_perms,
            old_repl,
            new_repl,
            ignore,
        })
    }
}

/// An update of one site from one skeleton to another: plan it, then apply the plan.
#[derive(Clone, Debug)]
pub struct Update {
    pub(crate) site_home: PathBuf,
    pub(crate) site: String,
    pub(crate) from: Skeleton,
    pub(crate) to: Skeleton,
    pub(crate) old_perms: PermissionTable,
    pub(crate) new_perms: PermissionTable,
    pub(crate) old_repl: Replacements,
    pub(crate) new_repl: Replacements,
    pub(crate) ignore: Vec<String>,
}

impl Update {
    /// Starts building an update of the site `site` at `site_home` from `from` to `to`.
    pub fn builder(
        site_home: impl Into<PathBuf>,
        site: impl Into<String>,
        from: Skeleton,
        to: Skeleton,
    ) -> UpdateBuilder {
        UpdateBuilder {
            site_home: site_home.into(),
            site: site.into(),
            from,
            to,
            root: None,
            ignore: None,
        }
    }

    /// The site home.
    pub fn site_home(&self) -> &Path {
        &self.site_home
    }

    /// Walks both skeletons and the site and decides every path. Conflicts are
    /// put to `resolver` in walk order (an [`Answer::Abort`] ends planning
    /// with [`Error::Aborted`]; [`Answer::Defer`] leaves them open). Row-14
    /// merges run through `merger`. Nothing is written.
    pub fn plan(&self, merger: &dyn TextMerger, resolver: &mut dyn Resolver) -> Result<Plan> {
        let new_paths = walk(self.to.skel_dir(), &self.ignore)?;
        let old_paths = walk(self.from.skel_dir(), &self.ignore)?;
        let mut planner = Planner {
            up: self,
            merger,
            resolver,
            overlay: HashMap::new(),
            made_parents: Vec::new(),
            old_kinds: old_paths.iter().map(|(r, k)| (r.as_str(), *k)).collect(),
            new_kinds: new_paths.iter().map(|(r, k)| (r.as_str(), *k)).collect(),
            home: OnceCell::new(),
            outside_parents: RefCell::new(HashMap::new()),
        };
        let mut entries: Vec<Entry> = Vec::with_capacity(new_paths.len());
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (rel, _) in &new_paths {
            let entry = planner.visit(rel)?;
            // A new directory below a missing one: the missing parents (each
            // visited before, as "Missing"/"Unwanted") are created first.
            for parent in planner.made_parents.drain(..) {
                if let Some(e) = index.get(parent.as_str()).map(|&i| &mut entries[i]) {
                    e.action = Action::Install;
                    e.permission = Some(PermissionStep {
                        user_mode: 0,
                        new_mode: MKDIR_PARENTS_MODE,
                        outcome: PermissionOutcome::Set,
                        status: None,
                        conflict: None,
                    });
                }
            }
            index.insert(rel, entries.len());
            entries.push(entry);
        }
        for (rel, _) in old_paths.iter().rev() {
            // `exists` follows links: only a link in the new walk needs a look.
            let in_new = match planner.new_kinds.get(rel.as_str()) {
                Some(Kind::File | Kind::Dir) => true,
                Some(Kind::Link) | None => self.to.skel_dir().join(rel).exists(),
            };
            if !in_new {
                entries.push(planner.visit(rel)?);
            }
        }
        Ok(Plan {
            schema: 1,
            site: self.site.clone(),
            from_version: self.from.version().to_owned(),
            to_version: self.to.version().to_owned(),
            entries,
        })
    }
}

/// Top-down walk of a skeleton: per directory its sub-directories, then its
/// files (each sorted by name), then recursion. Listings of directories whose
/// relative path starts with `tmp` are skipped, as are the `ignore` paths.
/// Every path comes with its kind (not following a final link).
pub(crate) fn walk(root: &Path, ignore: &[String]) -> Result<Vec<(String, Kind)>> {
    let mut out = Vec::new();
    walk_dir(
        root,
        "",
        ignore,
        &|reldir| reldir.starts_with("tmp"),
        &mut out,
    )?;
    Ok(out)
}

/// The walk of `omd create`: like [`walk`], but only the contents of `tmp`
/// itself are left out (Checkmk's `create_skeleton_files` skips paths
/// starting with `tmp/`), so skeleton directories such as `tmpfoo` are copied.
pub(crate) fn walk_for_create(root: &Path) -> Result<Vec<(String, Kind)>> {
    let mut out = Vec::new();
    walk_dir(
        root,
        "",
        &[],
        &|reldir| reldir == "tmp" || reldir.starts_with("tmp/"),
        &mut out,
    )?;
    Ok(out)
}

fn walk_dir(
    root: &Path,
    reldir: &str,
    ignore: &[String],
    skip: &dyn Fn(&str) -> bool,
    out: &mut Vec<(String, Kind)>,
) -> Result<()> {
    if skip(reldir) {
        return Ok(());
    }
    let dir = if reldir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(reldir)
    };
    let names = fsx::sorted_entries(&dir).ctx("list", &dir)?;
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for (name, kind) in names {
        let rel = if reldir.is_empty() {
            name
        } else {
            format!("{reldir}/{name}")
        };
        // os.walk puts symlinks to directories among the directories (but does not descend).
        let is_dir = match kind {
            Kind::Dir => true,
            Kind::Link => fs::metadata(root.join(&rel)).is_ok_and(|m| m.is_dir()),
            Kind::File => false,
        };
        if is_dir {
            dirs.push((rel, kind));
        } else {
            files.push((rel, kind));
        }
    }
    for (rel, kind) in &dirs {
        if !ignore.contains(rel) {
            out.push((rel.clone(), *kind));
        }
    }
    for (rel, kind) in files {
        if !ignore.contains(&rel) {
            out.push((rel, kind));
        }
    }
    for (rel, kind) in dirs {
        if kind == Kind::Dir {
            walk_dir(root, &rel, ignore, skip, out)?;
        }
    }
    Ok(())
}

/// One side of a comparison (old skel, new skel or site), loaded lazily.
struct Side<'a> {
    path: PathBuf,
    kind: Option<Kind>,
    /// The mode when known without another `stat` (a site path that is not a link).
    mode: Option<u32>,
    /// Macros for skeleton files (compared after substitution); `None` for the site.
    repl: Option<&'a Replacements>,
    rel: &'a str,
    /// The bytes as stored (a skeleton file that cannot be read: empty) and
    /// the file's mode, read with them.
    raw: OnceCell<(Vec<u8>, Option<u32>)>,
    /// The bytes after substitution, when that changed them.
    substituted: OnceCell<Option<Vec<u8>>>,
    target: OnceCell<PathBuf>,
}

impl<'a> Side<'a> {
    /// A skeleton side whose kind is `kind`.
    fn skel(root: &Path, rel: &'a str, repl: &'a Replacements, kind: Option<Kind>) -> Self {
        Self {
            path: root.join(rel),
            kind,
            mode: None,
            repl: Some(repl),
            rel,
            raw: OnceCell::new(),
            substituted: OnceCell::new(),
            target: OnceCell::new(),
        }
    }

    fn user(path: PathBuf, (kind, mode): (Option<Kind>, Option<u32>), rel: &'a str) -> Self {
        Self {
            path,
            kind,
            mode,
            repl: None,
            rel,
            raw: OnceCell::new(),
            substituted: OnceCell::new(),
            target: OnceCell::new(),
        }
    }

    /// The file's bytes as stored; a skeleton file that cannot be read is
    /// empty, as Checkmk reads it.
    fn raw(&self) -> Result<&[u8]> {
        if self.raw.get().is_none() {
            let read = match (fsx::read_with_mode(&self.path), self.repl) {
                (Ok((raw, mode)), _) => (raw, Some(mode)),
                (Err(_), Some(_)) => (Vec::new(), None),
                (Err(e), None) => return Err(e).ctx("read", &self.path),
            };
            let _ = self.raw.set(read);
        }
        Ok(self.raw.get().map(|r| r.0.as_slice()).unwrap_or_default())
    }

    /// Whether this side's content is compared after macro substitution.
    fn substitutes(&self) -> Option<&Replacements> {
        self.repl.filter(|_| substituted_when_comparing(self.rel))
    }

    /// File content as compared; skeleton files are substituted (except
    /// `.png`/`.pdf`) and read as empty when unreadable, as Checkmk does.
    fn content(&self) -> Result<&[u8]> {
        let raw = self.raw()?;
        let Some(repl) = self.substitutes() else {
            return Ok(raw);
        };
        let substituted = self.substituted.get_or_init(|| repl.apply_if_needed(raw));
        Ok(substituted.as_deref().unwrap_or(raw))
    }

    /// What was read of this side, as the executor needs it: a new
    /// skeleton file (`old` is the old skeleton's side of the same path).
    fn into_skel_file(self, old: &Side<'_>, keep: bool) -> SkelFile {
        let same_as_old = match (self.kind, old.kind) {
            (Some(Kind::File), Some(Kind::File)) => match (self.raw.get(), old.raw.get()) {
                (Some((new, Some(nm))), Some((old, Some(om)))) => Some(nm == om && new == old),
                _ => None,
            },
            (Some(Kind::Link), Some(Kind::Link)) => match (self.target.get(), old.target.get()) {
                (Some(n), Some(o)) => Some(n == o),
                _ => None,
            },
            (new, old) if new != old => Some(false),
            _ => None,
        };
        if same_as_old == Some(true) && !keep {
            return SkelFile {
                same_as_old,
                ..SkelFile::default()
            };
        }
        let substitutes = self.substitutes().is_some();
        let substituted = self.substituted.into_inner();
        let (raw, mode) = self.raw.into_inner().unzip();
        SkelFile {
            raw,
            substituted_known: substitutes && substituted.is_some(),
            substituted: substituted.flatten(),
            mode: mode.flatten(),
            same_as_old,
        }
    }

    fn target(&self) -> Result<&Path> {
        if self.target.get().is_none() {
            let t = fs::read_link(&self.path).ctx("read link", &self.path)?;
            let _ = self.target.set(t);
        }
        Ok(self
            .target
            .get()
            .map(PathBuf::as_path)
            .unwrap_or_else(|| Path::new("")))
    }
}

/// Whether two files have the same content as compared. Two skeleton files
/// substituted alike are equal when their stored bytes are, without
/// substituting either.
fn same_content(a: &Side<'_>, b: &Side<'_>) -> Result<bool> {
    if let (Some(ra), Some(rb)) = (a.substitutes(), b.substitutes())
        && ra == rb
        && a.raw()? == b.raw()?
    {
        return Ok(true);
    }
    Ok(a.content()? == b.content()?)
}

/// `file_status`: (changed_type, changed_content).
fn status(a: &Side<'_>, b: &Side<'_>) -> Result<(bool, bool)> {
    let changed_type = a.kind != b.kind;
    let changed_content = match (a.kind, b.kind) {
        (Some(Kind::File), Some(Kind::File)) => !same_content(a, b)?,
        (Some(Kind::Link), Some(Kind::Link)) => a.target()? != b.target()?,
        _ => false,
    };
    Ok((changed_type, changed_content))
}

fn changed(a: &Side<'_>, b: &Side<'_>) -> Result<bool> {
    let (t, c) = status(a, b)?;
    Ok(t || c)
}

fn name(kind: Option<Kind>) -> &'static str {
    kind.map(Kind::name).unwrap_or("none")
}

/// The mode of parent directories created for a new directory: Python's
/// `mkdir(parents=True)` under the usual umask 022.
const MKDIR_PARENTS_MODE: u32 = 0o755;

/// The file of Checkmk's 2.3/2.4 special case (fix for #15721).
const LIVESTATUS_NAGIOS_CFG: &str = "etc/mk-livestatus/nagios.cfg";

/// Whether the #15721 special case applies: an update *to* 2.3 or 2.4 (the
/// code that runs an update is the target version's, and 2.3 brought the fix
/// for sites coming from 2.2; 2.5 removed it) with an old edition other than
/// `raw`.
fn livestatus_fix_applies(up: &Update) -> bool {
    let v = up.to.version();
    (v.starts_with("2.3.") || v.starts_with("2.4."))
        && up.from.edition_name().is_some_and(|e| e != "raw")
}

/// ` ! Exception      X` and, on the next line, what went wrong in words.
fn exception_step(rel: &str, outcome: Outcome, words: &str) -> Step {
    Step::new(
        outcome,
        Some(format!(" ! Exception      {rel}\n   {rel}: {words}.")),
        Action::Nothing,
    )
}

fn installed_line(kind: Option<Kind>, rel: &str) -> String {
    format!(" * Installed {:<4} {rel}", name(kind))
}

/// How many links Linux follows before `ELOOP`.
const MAX_LINK_HOPS: usize = 40;

/// Where an operator's symlink leads.
enum LinkEnd {
    /// To an existing path inside the site.
    Exists,
    /// Nowhere yet: its end is this site path, whose directory exists.
    Creatable(String),
    /// Out of the site (existing or not).
    Outside,
    /// It cannot be followed (a loop, the end's directory is missing): why.
    Broken(String),
}

/// A site path as an earlier decision left it.
#[derive(Clone, Debug)]
enum Sim {
    /// Removed (or replaced by something without this child).
    Gone,
    /// Created from the new skeleton.
    Installed(Option<Kind>),
    /// Rewritten with this content.
    Written(Vec<u8>),
}

impl Sim {
    fn kind(&self) -> Option<Kind> {
        match self {
            Sim::Gone => None,
            Sim::Installed(kind) => *kind,
            Sim::Written(_) => Some(Kind::File),
        }
    }
}

struct Planner<'u, 'r, 'w> {
    up: &'u Update,
    merger: &'r dyn TextMerger,
    resolver: &'r mut dyn Resolver,
    /// Paths changed by earlier decisions.
    overlay: HashMap<String, Sim>,
    /// Missing parent directories a new directory needs (`mkdir -p`), top-down,
    /// not yet marked in the plan.
    made_parents: Vec<String>,
    /// The kinds of the paths of the old and the new skeleton's walks.
    old_kinds: HashMap<&'w str, Kind>,
    new_kinds: HashMap<&'w str, Kind>,
    /// The site home, resolved.
    home: OnceCell<PathBuf>,
    /// [`Planner::outside_parent_link`] per parent directory.
    outside_parents: RefCell<HashMap<String, Option<String>>>,
}

/// The result of the file step of one path.
struct Step {
    outcome: Outcome,
    status: Option<String>,
    action: Action,
    conflict: Option<ConflictReport>,
}

impl Step {
    fn new(outcome: Outcome, status: Option<String>, action: Action) -> Self {
        Self {
            outcome,
            status,
            action,
            conflict: None,
        }
    }
}

/// The two branches of a two-way question.
struct Branches {
    keep: (Outcome, String),
    replace: (Outcome, String, Action),
}

impl Planner<'_, '_, '_> {
    /// The kind of a site path, as it will be after the decisions made so far.
    fn user_kind(&self, rel: &str) -> Result<Option<Kind>> {
        Ok(self.user_state(rel)?.0)
    }

    /// [`Planner::user_kind`] and, for a file or directory the site has
    /// now, its mode.
    fn user_state(&self, rel: &str) -> Result<(Option<Kind>, Option<u32>)> {
        if let Some(sim) = self.overlay.get(rel) {
            return Ok((sim.kind(), None));
        }
        let mut p = rel;
        while let Some(idx) = p.rfind('/') {
            p = &p[..idx];
            if self.overlay.contains_key(p) {
                return Ok((None, None));
            }
        }
        let path = self.up.site_home.join(rel);
        fsx::kind_and_mode(&path).ctx("inspect", &path)
    }

    /// The kind of a skeleton path: from the walk, else (a path the walk
    /// does not list) from the file system.
    fn skel_kind(&self, old: bool, rel: &str) -> Result<Option<Kind>> {
        let (kinds, skel) = if old {
            (&self.old_kinds, self.up.from.skel_dir())
        } else {
            (&self.new_kinds, self.up.to.skel_dir())
        };
        match kinds.get(rel) {
            Some(kind) => Ok(Some(*kind)),
            None => {
                let path = skel.join(rel);
                fsx::kind_of(&path).ctx("inspect", &path)
            }
        }
    }

    /// The site home, resolved (once).
    fn resolved_home(&self) -> Result<&Path> {
        if self.home.get().is_none() {
            let home = fs::canonicalize(&self.up.site_home).ctx("resolve", &self.up.site_home)?;
            let _ = self.home.set(home);
        }
        Ok(self
            .home
            .get()
            .map(PathBuf::as_path)
            .unwrap_or(&self.up.site_home))
    }

    /// An operator's symlink where neither skeleton has one that leads out
    /// of the site. Checkmk would follow it; we never write outside the
    /// site root, so it is treated like a dangling link that cannot be
    /// written through: kept and reported (` ! Exception      X`) — the one
    /// deliberate difference. Returns why, in words.
    fn unfollowable_operator_link(
        &self,
        rel: &str,
        (ok, nk, uk): (Option<Kind>, Option<Kind>, Option<Kind>),
    ) -> Result<Option<String>> {
        if ok == Some(Kind::Link) || nk == Some(Kind::Link) || self.overlay.contains_key(rel) {
            return Ok(None);
        }
        if uk != Some(Kind::Link) {
            return Ok(None);
        }
        Ok(match self.follow_site_link(rel)? {
            LinkEnd::Outside => Some(format!(
                "your symbolic link to {} points outside the site; it is kept and nothing is written through it",
                self.link_target(rel)
            )),
            _ => None,
        })
    }

    /// The target of the site's link at `rel`, for messages.
    fn link_target(&self, rel: &str) -> String {
        fs::read_link(self.up.site_home.join(rel))
            .map(|t| t.display().to_string())
            .unwrap_or_default()
    }

    /// Where the site's symlink at `rel` leads when followed the way
    /// Python's `open()` and `os.path.exists` follow it.
    fn follow_site_link(&self, rel: &str) -> Result<LinkEnd> {
        let home = self.resolved_home()?;
        let inside = |p: &Path| p.starts_with(home) && p != home;
        let mut path = self.up.site_home.join(rel);
        for _ in 0..MAX_LINK_HOPS {
            match fs::canonicalize(&path) {
                Ok(end) => {
                    return Ok(if inside(&end) {
                        LinkEnd::Exists
                    } else {
                        LinkEnd::Outside
                    });
                }
                Err(e) if !fsx::is_absent(&e) => return Ok(LinkEnd::Broken(e.to_string())),
                Err(_) => {}
            }
            let target = match fs::read_link(&path) {
                Ok(t) => t,
                Err(e) => return Ok(LinkEnd::Broken(e.to_string())),
            };
            let end = path.parent().unwrap_or_else(|| Path::new("/")).join(target);
            let (Some(dir), Some(file_name)) = (end.parent(), end.file_name()) else {
                return Ok(LinkEnd::Broken(format!("{} names no file", end.display())));
            };
            let dir = match fs::canonicalize(dir) {
                Ok(d) => d,
                Err(e) => return Ok(LinkEnd::Broken(format!("{}: {e}", dir.display()))),
            };
            let end = dir.join(file_name);
            if fsx::kind_of(&end).ctx("inspect", &end)? == Some(Kind::Link) {
                path = end;
                continue;
            }
            if !inside(&end) {
                return Ok(LinkEnd::Outside);
            }
            let Some(end_rel) = end.strip_prefix(home).ok().and_then(Path::to_str) else {
                return Ok(LinkEnd::Broken(format!(
                    "{} is not a UTF-8 path",
                    end.display()
                )));
            };
            // An earlier decision may already have created the end.
            if self.user_kind(end_rel)?.is_some() {
                return Ok(LinkEnd::Exists);
            }
            return Ok(LinkEnd::Creatable(end_rel.to_owned()));
        }
        Ok(LinkEnd::Broken(
            "too many levels of symbolic links".to_owned(),
        ))
    }

    /// The directory above `rel` in the site that is a symlink leading out
    /// of the site, if any: nothing is written below it (the operator's
    /// link is kept; Checkmk would write through it).
    fn outside_parent_link(&self, rel: &str) -> Result<Option<String>> {
        let Some((parent, _)) = rel.rsplit_once('/') else {
            return Ok(None);
        };
        // Nothing changes on disk while planning: one answer per directory.
        if let Some(known) = self.outside_parents.borrow().get(parent) {
            return Ok(known.clone());
        }
        let answer = self.outside_link_above(parent)?;
        self.outside_parents
            .borrow_mut()
            .insert(parent.to_owned(), answer.clone());
        Ok(answer)
    }

    /// [`Planner::outside_parent_link`] of the directory `parent`.
    fn outside_link_above(&self, parent: &str) -> Result<Option<String>> {
        let home = self.resolved_home()?;
        let Ok(resolved) = fs::canonicalize(self.up.site_home.join(parent)) else {
            return Ok(None);
        };
        if resolved.starts_with(home) {
            return Ok(None);
        }
        // The first directory on the way that is a link out of the site.
        let ends = parent.match_indices('/').map(|(i, _)| i);
        for end in ends.chain([parent.len()]) {
            let p = &parent[..end];
            let path = self.up.site_home.join(p);
            if fsx::kind_of(&path).ctx("inspect", &path)? == Some(Kind::Link)
                && !fs::canonicalize(&path).is_ok_and(|r| r.starts_with(home))
            {
                return Ok(Some(p.to_owned()));
            }
        }
        Ok(Some(parent.to_owned()))
    }

    /// Whether the site path `rel` (a symlink) leads to a directory inside
    /// the site: Checkmk creates paths below it through the link.
    fn link_to_site_dir(&self, rel: &str) -> Result<bool> {
        Ok(matches!(self.follow_site_link(rel)?, LinkEnd::Exists)
            && fs::metadata(self.up.site_home.join(rel)).is_ok_and(|m| m.is_dir()))
    }

    /// Checkmk's `create_skeleton_file` over an operator's symlink: it
    /// removes what is there only when `os.path.exists` (following the link)
    /// says so. A link that leads nowhere stays: a new file is written
    /// through it (`open(path, "wb")` creates the link's end, which is then
    /// chmod-ed), a new directory or link fails with "File exists", a loop
    /// or a missing directory of the end fails too (` ! Exception      X`).
    /// A link out of the site is never written through. (Row 15 sets a new
    /// link target with `os.remove` and `os.symlink` instead.)
    fn create_over_link(
        &mut self,
        rel: &str,
        row: u8,
        n: &Side<'_>,
        u: &Side<'_>,
        step: Step,
    ) -> Result<Step> {
        if row == 15
            || step.action != Action::Install
            || u.kind != Some(Kind::Link)
            || self.overlay.contains_key(rel)
        {
            return Ok(step);
        }
        let target = self.link_target(rel);
        let words = match self.follow_site_link(rel)? {
            LinkEnd::Exists => return Ok(step),
            LinkEnd::Creatable(end) if n.kind == Some(Kind::File) => {
                let bytes = self
                    .up
                    .new_repl
                    .apply(&fs::read(&n.path).ctx("read", &n.path)?);
                self.overlay.insert(end.clone(), Sim::Written(bytes));
                let status = step.status.map(|line| {
                    format!(
                        "{line}\n   {rel}: written through your symbolic link into {end}; the link is kept"
                    )
                });
                return Ok(Step {
                    status,
                    action: Action::InstallAt(end),
                    ..step
                });
            }
            LinkEnd::Creatable(_) => format!(
                "cannot create the new {} there: your symbolic link to {target} is in the way (File exists); it is kept",
                name(n.kind).trim_end()
            ),
            LinkEnd::Outside => format!(
                "your symbolic link to {target} points outside the site; it is kept and nothing is written through it"
            ),
            LinkEnd::Broken(why) => {
                format!("your symbolic link to {target} cannot be followed ({why}); it is kept")
            }
        };
        let mut exception = exception_step(rel, Outcome::Exception, &words);
        exception.conflict = step.conflict;
        Ok(exception)
    }

    /// `non_empty_directory`, taking removals decided so far into account.
    fn non_empty_dir(&self, rel: &str) -> Result<bool> {
        let path = self.up.site_home.join(rel);
        let names = fsx::sorted_names(&path).ctx("list", &path)?;
        Ok(names
            .iter()
            .any(|n| !matches!(self.overlay.get(&format!("{rel}/{n}")), Some(Sim::Gone))))
    }

    fn ask(&mut self, conflict: &Conflict) -> Result<Answer> {
        let answer = self.resolver.resolve(conflict);
        if answer == Answer::Abort {
            return Err(Error::Aborted {
                path: conflict.path.clone(),
            });
        }
        Ok(answer)
    }

    fn visit(&mut self, rel: &str) -> Result<Entry> {
        let up = self.up;
        let forced_raw;
        let mut old_repl = &up.old_repl;
        if rel == LIVESTATUS_NAGIOS_CFG && livestatus_fix_applies(up) {
            // 2.3/2.4 (fix for #15721): the site file is read to see whether it
            // still says `edition=raw`; Checkmk raises when it cannot be read.
            let path = up.site_home.join(rel);
            match fs::read(&path) {
                Ok(content) => {
                    if memchr::memmem::find(&content, b"edition=raw").is_some() {
                        forced_raw = up.old_repl.clone().with_edition(Some("raw".to_owned()));
                        old_repl = &forced_raw;
                    }
                }
                Err(e) => {
                    let o = fsx::kind_of(&up.from.skel_dir().join(rel)).ctx("inspect", rel)?;
                    let n = fsx::kind_of(&up.to.skel_dir().join(rel)).ctx("inspect", rel)?;
                    let step = exception_step(
                        rel,
                        Outcome::Exception,
                        &format!("cannot read it to check for edition=raw ({e})"),
                    );
                    return Ok(Entry {
                        path: rel.to_owned(),
                        row: 0,
                        old: o,
                        new: n,
                        user: self.user_kind(rel)?,
                        outcome: step.outcome,
                        status: step.status,
                        conflict: None,
                        permission: None,
                        action: Action::Nothing,
                        skel: SkelFile::default(),
                    });
                }
            }
        }
        let o = Side::skel(
            up.from.skel_dir(),
            rel,
            old_repl,
            self.skel_kind(true, rel)?,
        );
        let n = Side::skel(
            up.to.skel_dir(),
            rel,
            &up.new_repl,
            self.skel_kind(false, rel)?,
        );
        let user_now = self.user_state(rel)?;
        if let Some(words) = self.unfollowable_operator_link(rel, (o.kind, n.kind, user_now.0))? {
            let step = exception_step(rel, Outcome::Exception, &words);
            return Ok(Entry {
                path: rel.to_owned(),
                row: 0,
                old: o.kind,
                new: n.kind,
                user: Some(Kind::Link),
                outcome: step.outcome,
                status: step.status,
                conflict: None,
                permission: None,
                action: Action::Nothing,
                skel: SkelFile::default(),
            });
        }
        // A path is visited twice only when the new skeleton has a dangling
        // link there (the old-only walk tests existence following links).
        let installed_before = matches!(self.overlay.get(rel), Some(Sim::Installed(_)));
        let u = match self.overlay.get(rel) {
            Some(Sim::Installed(kind)) => Side::skel(up.to.skel_dir(), rel, &up.new_repl, *kind),
            Some(Sim::Written(bytes)) => {
                let side = Side::user(up.site_home.join(rel), (Some(Kind::File), None), rel);
                let _ = side.raw.set((bytes.clone(), None));
                side
            }
            _ => Side::user(up.site_home.join(rel), user_now, rel),
        };
        let (row, step) = self.file_step(rel, &o, &n, &u)?;
        let step = self.create_over_link(rel, row, &n, &u, step)?;
        let after = match step.action {
            Action::Install => n.kind,
            Action::Remove => None,
            _ => u.kind,
        };
        match &step.action {
            // The link's end is in the overlay already.
            Action::Nothing | Action::InstallAt(_) => {}
            Action::Install => {
                self.overlay.insert(rel.to_owned(), Sim::Installed(after));
            }
            Action::Remove => {
                self.overlay.insert(rel.to_owned(), Sim::Gone);
            }
            Action::Write(bytes) => {
                self.overlay
                    .insert(rel.to_owned(), Sim::Written(bytes.clone()));
            }
        }
        let permission =
            self.permission_step(rel, (&o, &n, &u), &step.action, after, installed_before)?;
        let writes = step.action != Action::Nothing
            || permission
                .as_ref()
                .is_some_and(|p| p.outcome == PermissionOutcome::Set);
        if writes && let Some(link) = self.outside_parent_link(rel)? {
            let words = format!(
                "{link} is your symbolic link out of the site; nothing is written through it"
            );
            let mut exception = exception_step(rel, Outcome::Exception, &words);
            exception.conflict = step.conflict;
            if let Some(end) = match &step.action {
                Action::InstallAt(end) => Some(end.clone()),
                _ => None,
            } {
                self.overlay.remove(&end);
            }
            self.overlay.remove(rel);
            return Ok(Entry {
                path: rel.to_owned(),
                row,
                old: o.kind,
                new: n.kind,
                user: u.kind,
                outcome: exception.outcome,
                status: exception.status,
                conflict: exception.conflict,
                permission: None,
                action: Action::Nothing,
                skel: SkelFile::default(),
            });
        }
        Ok(Entry {
            path: rel.to_owned(),
            row,
            old: o.kind,
            new: n.kind,
            user: u.kind,
            outcome: step.outcome,
            status: step.status,
            conflict: step.conflict,
            permission,
            skel: n.into_skel_file(&o, step.action == Action::Install),
            action: step.action,
        })
    }

    /// The decision table, rows 1-18 (first match wins).
    fn file_step(
        &mut self,
        rel: &str,
        o: &Side<'_>,
        n: &Side<'_>,
        u: &Side<'_>,
    ) -> Result<(u8, Step)> {
        let (ok, nk, uk) = (o.kind, n.kind, u.kind);
        let keep_line = format!(" ! Keeping your   {rel}");
        if ok.is_none() {
            if uk.is_none() {
                return Ok((1, self.install_new(rel, nk, Outcome::Installed)?));
            }
            if !changed(u, n)? {
                return Ok((
                    2,
                    Step::new(
                        Outcome::IdenticalNew,
                        Some(format!(" * Identical new  {rel}")),
                        Action::Nothing,
                    ),
                ));
            }
            let (un, nn) = (name(uk), name(nk));
            let q = Question::two_way(
                format!("Conflict at {rel}"),
                format!(
                    "The new version ships the {nn} {rel}, but you have created a {un} in that place yourself. Shall we keep your {un} or replace is with my {nn}?"
                ),
                ("keep", format!("Keep your {un}")),
                (
                    "replace",
                    format!("Replace your {un} with the new default {nn}"),
                ),
            );
            let branches = Branches {
                keep: (Outcome::KeptYours, keep_line),
                // Checkmk's line alone does not say that the operator's own
                // file went; the next line does.
                replace: (
                    Outcome::Installed,
                    format!(
                        "{}\n   your own {} {rel} was replaced by the new version's {}",
                        installed_line(nk, rel),
                        un.trim_end(),
                        nn.trim_end()
                    ),
                    Action::Install,
                ),
            };
            return Ok((3, self.two_way(rel, 3, q, branches)?));
        }
        if nk.is_none() {
            if uk.is_none() {
                return Ok((
                    4,
                    Step::new(
                        Outcome::Obsolete,
                        Some(format!(" * Obsolete       {rel}")),
                        Action::Nothing,
                    ),
                ));
            }
            let (changed_type, changed_content) = status(o, u)?;
            let (on, un) = (name(ok), name(uk));
            let removed = (
                Outcome::Removed,
                format!(" ! Removed        {rel}"),
                Action::Remove,
            );
            let (row, q) = if changed_type {
                (
                    5,
                    Question::two_way(
                        format!("Obsolete file {rel}"),
                        format!(
                            "The {on} {rel} has become obsolete in this version, but you have changed it into a {un}. Do you want to keep your {un} or may I remove it for you, please?"
                        ),
                        ("keep", format!("Keep your {un}")),
                        ("remove", "Remove it".to_owned()),
                    ),
                )
            } else if changed_content {
                (
                    6,
                    Question::two_way(
                        format!("Changes in obsolete {on} {rel}"),
                        format!(
                            "The {on} {rel} has become obsolete in the new version, but you have changed its contents. Do you want to keep your {un} or may I remove it for you, please?"
                        ),
                        ("keep", format!("keep your {un}, though it is obsolete")),
                        ("remove", format!("remove your {un}")),
                    ),
                )
            } else if uk == Some(Kind::Dir) && self.non_empty_dir(rel)? {
                (
                    7,
                    Question::two_way(
                        format!("Non empty obsolete directory {rel}"),
                        format!(
                            "The directory {rel} has become obsolete in the new version, but you have contents in it. Do you want to keep your directory or may I remove it for you, please?"
                        ),
                        (
                            "keep",
                            "keep your directory, though it is obsolete".to_owned(),
                        ),
                        ("remove", "remove your directory".to_owned()),
                    ),
                )
            } else {
                return Ok((
                    8,
                    Step::new(
                        Outcome::Vanished,
                        Some(format!(" * Vanished       {rel}")),
                        Action::Remove,
                    ),
                ));
            };
            let branches = Branches {
                keep: (Outcome::KeptYours, keep_line),
                replace: removed,
            };
            return Ok((row, self.two_way(rel, row, q, branches)?));
        }
        if uk.is_none() {
            return Ok(if !changed(o, n)? {
                (
                    9,
                    Step::new(
                        Outcome::Unwanted,
                        Some(format!(
                            " * Unwanted       {rel} (unchanged, removed by you)"
                        )),
                        Action::Nothing,
                    ),
                )
            } else {
                (
                    10,
                    Step::new(
                        Outcome::Missing,
                        Some(format!(" ! Missing        {rel}")),
                        Action::Nothing,
                    ),
                )
            });
        }
        if !changed(o, n)? {
            return Ok((11, Step::new(Outcome::Unchanged, None, Action::Nothing)));
        }
        let (user_changed_type, user_changed_content) = status(o, u)?;
        if !(user_changed_type || user_changed_content) {
            // Re-creating the path also sets the new default permission;
            // Checkmk's line does not say so, the next line does.
            let mut line = format!(" * Updated        {rel}");
            if !matches!(nk, Some(Kind::Link) | None) && !matches!(uk, Some(Kind::Link) | None) {
                let user_mode = u
                    .mode
                    .unwrap_or_else(|| fsx::mode_following(&self.up.site_home.join(rel)));
                let new_mode = self
                    .up
                    .new_perms
                    .skel_perm_of(self.up.to.skel_dir(), rel, nk);
                if user_mode != 0 && user_mode != new_mode {
                    line.push_str(&format!(
                        "\n   permissions {user_mode:04o} -> {new_mode:04o}"
                    ));
                }
            }
            return Ok((12, Step::new(Outcome::Updated, Some(line), Action::Install)));
        }
        if !changed(u, n)? {
            return Ok((
                13,
                Step::new(
                    Outcome::Identical,
                    Some(format!(" * Identical      {rel}")),
                    Action::Nothing,
                ),
            ));
        }
        let (on, nn, un) = (name(ok), name(nk), name(uk));
        if ok == Some(Kind::File) && nk == ok && uk == ok {
            return Ok((14, self.merge(rel, o, n, u)?));
        }
        if ok == Some(Kind::Link) && nk == ok && uk == ok {
            let (ot, nt, ut) = (
                o.target()?.display(),
                n.target()?.display(),
                u.target()?.display(),
            );
            let q = Question::two_way(
                format!("Symbolic link conflict at {rel}"),
                format!(
                    "'{rel}' is a symlink that pointed to {ot} in the old version and to {nt} in the new version. But meanwhile you changed to link target to {ut}. Shall I keep your link or replace it with the new default target?"
                ),
                ("keep", format!("Keep your symbolic link pointing to {ut}")),
                ("replace", format!("Change link target to {nt}")),
            );
            let branches = Branches {
                keep: (Outcome::KeptYours, keep_line),
                replace: (
                    Outcome::LinkChanged,
                    format!(" ! Set link       {rel} to new target {nt}"),
                    Action::Install,
                ),
            };
            return Ok((15, self.two_way(rel, 15, q, branches)?));
        }
        if ok != nk {
            let what = if user_changed_type { "type" } else { "content" };
            let q = Question::two_way(
                format!("File type change at {rel}"),
                format!(
                    "The {on} {rel} has been changed into a {nn} in the new version. Meanwhile you have changed the {what} of your copy of that {on}. Do you want to keep your version or replace it with the new default? "
                ),
                ("keep", format!("Keep your {un}")),
                ("replace", format!("Replace it with the new {nn}")),
            );
            let branches = Branches {
                keep: (
                    Outcome::KeptYours,
                    format!(" ! Keeping your version of {rel}"),
                ),
                replace: (
                    Outcome::Replaced,
                    format!(" ! Replaced your {un} {rel} by new default {nn}."),
                    Action::Install,
                ),
            };
            return Ok((16, self.two_way(rel, 16, q, branches)?));
        }
        let (row, title, text) = if ok != uk {
            (
                17,
                format!("Type change conflicts with content change at {rel}"),
                format!(
                    "Usually {rel} is a {on} in both the old and new version. But you have changed it into a {un}. Do you want to keep that or may I replace your {un} with the new default {nn}, please?"
                ),
            )
        } else {
            (
                18,
                format!("Something nasty happened at {rel}"),
                format!(
                    "You somehow fiddled along with {rel}, and I do not have the slightest idea what's going on here. May I please install the new default {nn} here, or do you want to keep your {un}?"
                ),
            )
        };
        let q = Question::two_way(
            title,
            text,
            ("keep", format!("Keep your {un}")),
            (
                "replace",
                format!("Replace your {un} with the new default {nn}"),
            ),
        );
        let branches = Branches {
            keep: (Outcome::KeptYours, format!(" ! Keeping your {un} {rel}.")),
            replace: (
                Outcome::Replaced,
                format!(" ! Delete your {un} and created new default {nn} {rel}."),
                Action::Install,
            ),
        };
        Ok((row, self.two_way(rel, row, q, branches)?))
    }

    /// Creates a path from the new skeleton. Below a directory missing in the
    /// site, a new directory gets its missing parents (Checkmk's
    /// `mkdir(parents=True)`); a file or link cannot be created there
    /// (Checkmk's code raises: ` ! Exception      X` and, on the next line, why).
    fn install_new(&mut self, rel: &str, nk: Option<Kind>, outcome: Outcome) -> Result<Step> {
        let mut missing = Vec::new();
        let mut p = rel;
        let mut blocker = None;
        while let Some(idx) = p.rfind('/') {
            p = &p[..idx];
            match self.user_kind(p)? {
                Some(Kind::Dir) => break,
                // Checkmk creates below an operator's link to a directory
                // of the site, through the link.
                Some(Kind::Link)
                    if !self.overlay.contains_key(p) && self.link_to_site_dir(p)? =>
                {
                    break;
                }
                None => missing.push(p.to_owned()),
                Some(kind) => {
                    blocker = Some((p.to_owned(), kind));
                    break;
                }
            }
        }
        if let Some((parent, kind)) = blocker {
            return Ok(exception_step(
                rel,
                Outcome::ParentMissing,
                &format!(
                    "cannot create it: {parent} is a {} in the site, not a directory",
                    name(Some(kind)).trim_end()
                ),
            ));
        }
        if let Some(parent) = missing.first() {
            if nk != Some(Kind::Dir) {
                return Ok(exception_step(
                    rel,
                    Outcome::ParentMissing,
                    &format!("cannot create it: the directory {parent} is missing in the site"),
                ));
            }
            for parent in missing.iter().rev() {
                self.overlay
                    .insert(parent.clone(), Sim::Installed(Some(Kind::Dir)));
                self.made_parents.push(parent.clone());
            }
        }
        Ok(Step::new(
            outcome,
            Some(installed_line(nk, rel)),
            Action::Install,
        ))
    }

    fn two_way(&mut self, rel: &str, row: u8, question: Question, b: Branches) -> Result<Step> {
        let conflict = Conflict {
            path: rel.to_owned(),
            row: Some(row),
            kind: ConflictKind::TwoWay,
            question,
            merge: None,
        };
        let answer = self.ask(&conflict)?;
        let mut step = match answer {
            Answer::Keep => Step::new(b.keep.0, Some(b.keep.1), Action::Nothing),
            Answer::Replace => Step::new(b.replace.0, Some(b.replace.1), b.replace.2),
            Answer::Defer => Step::new(Outcome::Pending, None, Action::Nothing),
            other => {
                return Err(Error::InvalidAnswer {
                    path: rel.to_owned(),
                    answer: format!("{other:?}"),
                });
            }
        };
        step.conflict = Some(ConflictReport::new(&conflict, &answer));
        Ok(step)
    }

    /// Row 14: three-way merge, and the conflict menu when it fails.
    fn merge(&mut self, rel: &str, o: &Side<'_>, n: &Side<'_>, u: &Side<'_>) -> Result<Step> {
        let (base, theirs, original) = (o.content()?, n.content()?, u.content()?);
        let (old_v, new_v) = (self.up.from.version(), self.up.to.version());
        let mut yours = original.to_vec();
        let mut attempt = 0;
        // Checkmk prints ` ! Cannot merge: <exception>` when the merge raises
        // and then goes on to the conflict menu (resolved by the policy).
        let mut cannot_merge: Option<String> = None;
        loop {
            let merged = match self.merger.merge(base, &yours, theirs) {
                Ok(m) => m,
                Err(e) => {
                    cannot_merge = Some(format!(" ! Cannot merge: {e}"));
                    MergedText {
                        text: yours.clone(),
                        conflicts: 1,
                    }
                }
            };
            if merged.conflicts == 0 {
                let action = if merged.text == original {
                    Action::Nothing
                } else {
                    Action::Write(merged.text)
                };
                return Ok(if attempt == 0 {
                    Step::new(
                        Outcome::Merged,
                        Some(format!(" * Merged         {rel}")),
                        action,
                    )
                } else {
                    Step::new(
                        Outcome::MergedOnRetry,
                        Some(format!(
                            "Successfully merged changes from {old_v} -> {new_v} into {rel}"
                        )),
                        action,
                    )
                });
            }
            let conflict = Conflict {
                path: rel.to_owned(),
                row: Some(14),
                kind: ConflictKind::Merge,
                question: merge_question(rel, old_v, new_v),
                merge: Some(MergeTexts {
                    old_version: old_v.to_owned(),
                    new_version: new_v.to_owned(),
                    old_default: base.to_vec(),
                    new_default: theirs.to_vec(),
                    yours: yours.clone(),
                    merged: merged.text.clone(),
                    conflicts: merged.conflicts,
                    attempt,
                }),
            };
            let answer = self.ask(&conflict)?;
            let write = |bytes: Vec<u8>| {
                if bytes == original {
                    Action::Nothing
                } else {
                    Action::Write(bytes)
                }
            };
            let mut step = match &answer {
                Answer::RetryWith(edited) => {
                    yours = edited.clone();
                    attempt += 1;
                    continue;
                }
                Answer::KeepMerged => Step::new(
                    Outcome::KeptConflictMarkers,
                    None,
                    Action::Write(merged.text),
                ),
                Answer::UseContent(bytes) => Step::new(Outcome::Edited, None, write(bytes.clone())),
                Answer::Restore => Step::new(
                    Outcome::Restored,
                    Some("Restored your version.".to_owned()),
                    write(yours),
                ),
                Answer::Install => Step::new(
                    Outcome::InstalledDefault,
                    Some(format!("Installed default file of version {new_v}.")),
                    write(theirs.to_vec()),
                ),
                Answer::Defer => Step::new(Outcome::Pending, None, Action::Nothing),
                other => {
                    return Err(Error::InvalidAnswer {
                        path: rel.to_owned(),
                        answer: format!("{other:?}"),
                    });
                }
            };
            step.conflict = Some(ConflictReport::new(&conflict, &answer));
            if let Some(line) = cannot_merge {
                step.status = Some(match step.status {
                    Some(rest) => format!("{line}\n{rest}"),
                    None => line,
                });
                if matches!(
                    step.outcome,
                    Outcome::Restored | Outcome::KeptConflictMarkers
                ) {
                    step.outcome = Outcome::CannotMerge;
                }
            }
            return Ok(step);
        }
    }

    /// Section 5, after the file step; `after` is the site's kind after it.
    fn permission_step(
        &mut self,
        rel: &str,
        (o, n, u): (&Side<'_>, &Side<'_>, &Side<'_>),
        action: &Action,
        after: Option<Kind>,
        installed_before: bool,
    ) -> Result<Option<PermissionStep>> {
        let up = self.up;
        let old_perm = up.old_perms.skel_perm_of(up.from.skel_dir(), rel, o.kind);
        let new_perm = up.new_perms.skel_perm_of(up.to.skel_dir(), rel, n.kind);
        let user_perm = match action {
            // Created from the skeleton: chmod-ed to the new permission.
            Action::Install => new_perm,
            _ if installed_before => new_perm,
            Action::Remove => 0,
            _ => {
                if after.is_none() {
                    0
                } else if let Some(mode) = u.mode {
                    mode
                } else {
                    fsx::mode_following(&up.site_home.join(rel))
                }
            }
        };
        let decision = permission_action(PermInput {
            relpath: rel,
            old: o.kind,
            new: n.kind,
            user: after,
            old_perm,
            new_perm,
            user_perm,
        });
        let set = |outcome| PermissionStep {
            user_mode: user_perm,
            new_mode: new_perm,
            outcome,
            status: Some(format!(
                " * Permissions    {user_perm:04o} -> {new_perm:04o} {rel}"
            )),
            conflict: None,
        };
        let question = match decision {
            PermDecision::Nothing => return Ok(None),
            PermDecision::Default => return Ok(Some(set(PermissionOutcome::Set))),
            PermDecision::ConflictChanged => (
                format!("Permission conflict at {rel}"),
                format!(
                    "The proposed permissions of {rel} have changed from {old_perm:04o} to {new_perm:04o} in the new version, but you have set {user_perm:04o}. May I use the new default permissions or do you want to keep yours?"
                ),
            ),
            PermDecision::ConflictWrong => (
                format!("Wrong permission of {rel}"),
                format!(
                    "The proposed permissions of {rel} are {new_perm:04o}, but currently are {user_perm:04o}. May I use the new default permissions or keep yours?"
                ),
            ),
        };
        let question = Question::two_way(
            question.0,
            question.1,
            ("keep", format!("Keep permissions at {user_perm:04o}")),
            ("default", format!("Set permission to {new_perm:04o}")),
        );
        let conflict = Conflict {
            path: rel.to_owned(),
            row: None,
            kind: ConflictKind::Permission,
            question,
            merge: None,
        };
        let answer = self.ask(&conflict)?;
        let mut step = match answer {
            Answer::Keep => PermissionStep {
                user_mode: user_perm,
                new_mode: new_perm,
                outcome: PermissionOutcome::Kept,
                status: Some(format!(
                    " ! Permissions    {user_perm:04o} {rel} (unchanged)"
                )),
                conflict: None,
            },
            Answer::Replace => set(PermissionOutcome::Set),
            Answer::Defer => PermissionStep {
                user_mode: user_perm,
                new_mode: new_perm,
                outcome: PermissionOutcome::Pending,
                status: None,
                conflict: None,
            },
            other => {
                return Err(Error::InvalidAnswer {
                    path: rel.to_owned(),
                    answer: format!("{other:?}"),
                });
            }
        };
        step.conflict = Some(ConflictReport::new(&conflict, &answer));
        Ok(Some(step))
    }
}
