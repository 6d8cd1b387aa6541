//! The package store of a site: [`Site`] (its documentation describes the layout,
//! transactions and crash safety), its options, plans and errors.

mod error;
mod lock;
mod ops;
mod query;
mod txn;

use std::cell::Cell;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::{Limits, Manifest, PackageName, PackageVersion, PathConfig};

pub use error::StoreError;
pub use lock::{EXCLUSIVE_MARK, LockHolder, SITE_LOCK_FILE, SiteLock};
pub use query::{Listing, site_version_from_link};

use error::Result;

/// The extra manifest key holding the SHA-256 of every installed file:
/// `{part id: {relative path: hex digest}}`.
pub const HASHES_KEY: &str = "files.sha256";

/// Stored local packages, relative to the site root.
pub(crate) const LOCAL_DIR: &str = "var/check_mk/packages_local";
/// Shipped packages, relative to the site root.
pub(crate) const SHIPPED_DIR: &str = "share/check_mk/optional_packages";
/// Enabled marks, relative to the site root.
pub(crate) const ENABLED_DIR: &str = "local/share/check_mk/enabled_packages";
/// Installed manifests, relative to the site root.
pub(crate) const INSTALLED_DIR: &str = "var/check_mk/packages";

/// A test hook called before every step that changes the live tree or the staging area,
/// with the step's number (1-based, counted over the life of the [`Site`]). Returning an
/// error makes that step fail (the transaction is rolled back); the hook may also end the
/// process to simulate a crash.
pub type FaultHook = Box<dyn Fn(usize) -> std::io::Result<()>>;

/// A package identity: name and version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PackageId {
    /// The name.
    pub name: PackageName,
    /// The version.
    pub version: PackageVersion,
}

impl PackageId {
    /// The id of a manifest.
    pub fn of(manifest: &Manifest) -> PackageId {
        PackageId {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
        }
    }

    /// The canonical file name `<name>-<version>.mkp`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.mkp", self.name, self.version)
    }
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

/// Options of the changing operations of a [`Site`] (enable, disable, remove, package, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangeOptions {
    /// Skip the version checks (`enable --force-install`).
    pub force_install: bool,
    /// Delete or overwrite installed files even if they were changed since install.
    pub force: bool,
    /// Only compute and return what would change.
    pub dry_run: bool,
}

impl ChangeOptions {
    /// Sets [`ChangeOptions::force_install`].
    pub fn force_install(mut self, yes: bool) -> Self {
        self.force_install = yes;
        self
    }

    /// Sets [`ChangeOptions::force`].
    pub fn force(mut self, yes: bool) -> Self {
        self.force = yes;
        self
    }

    /// Sets [`ChangeOptions::dry_run`].
    pub fn dry_run(mut self, yes: bool) -> Self {
        self.dry_run = yes;
        self
    }
}

/// One change to the site's files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// A new file is installed.
    Install(PathBuf),
    /// A file of the old version (or, for `package`, the unpackaged source) is replaced.
    Replace(PathBuf),
    /// An installed file is deleted.
    Delete(PathBuf),
    /// The installed manifest is written.
    WriteManifest(PathBuf),
    /// The installed manifest is deleted.
    DeleteManifest(PathBuf),
    /// The enabled mark is written.
    Mark(PathBuf),
    /// The enabled mark is deleted.
    Unmark(PathBuf),
    /// The package is stored in the local package directory.
    Store(PathBuf),
    /// The package is deleted from the local package directory.
    Unstore(PathBuf),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, path) = match self {
            Action::Install(p) => ("install", p),
            Action::Replace(p) => ("replace", p),
            Action::Delete(p) => ("delete", p),
            Action::WriteManifest(p) => ("write manifest", p),
            Action::DeleteManifest(p) => ("delete manifest", p),
            Action::Mark(p) => ("mark enabled", p),
            Action::Unmark(p) => ("remove enabled mark", p),
            Action::Store(p) => ("store", p),
            Action::Unstore(p) => ("delete stored package", p),
        };
        write!(f, "{verb} {}", path.display())
    }
}

/// What a change does (or, with [`ChangeOptions::dry_run`], would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `enable hello 1.0.0`, `disable hello 1.0.0`, ...
    pub what: String,
    /// The changes, in order.
    pub actions: Vec<Action>,
}

impl fmt::Display for Plan {
    /// `<what>:` and one indented line per action, or `<what>: nothing to do`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() {
            return writeln!(f, "{}: nothing to do", self.what);
        }
        writeln!(f, "{}:", self.what)?;
        for a in &self.actions {
            writeln!(f, "  {a}")?;
        }
        Ok(())
    }
}

/// The result of `update-active`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateReport {
    /// Packages installed (or kept active) by the run.
    pub installed: Vec<PackageId>,
    /// Packages uninstalled because they no longer fit.
    pub uninstalled: Vec<PackageId>,
    /// With dry-run: the changes that would be made.
    pub plans: Vec<Plan>,
}

impl UpdateReport {
    /// `[<name> <version>]: enabled` per installed, then `[...]: disabled` per uninstalled.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for id in &self.installed {
            out.push_str(&format!("[{id}]: enabled\n"));
        }
        for id in &self.uninstalled {
            out.push_str(&format!("[{id}]: disabled\n"));
        }
        out
    }

    /// `{"installed":[{"name":..,"version":..}],"uninstalled":[..]}` with 2-space indent
    /// (like Checkmk's `json.dumps(..., indent=2)`, but non-ASCII kept as UTF-8).
    pub fn to_json(&self) -> String {
        let list = |ids: &[PackageId]| -> Vec<serde_json::Value> {
            ids.iter()
                .map(|id| serde_json::json!({"name": id.name.as_str(), "version": id.version.as_str()}))
                .collect()
        };
        let value = serde_json::json!({
            "installed": list(&self.installed),
            "uninstalled": list(&self.uninstalled),
        });
        // Serialising a `Value` cannot fail.
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}

/// Where the site's Checkmk version comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SiteVersionSource {
    /// The `version` symlink of the site (`<root>/version` -> `../../versions/2.3.0p12.cre`).
    Link,
    /// A fixed version (tests, `--site-version`).
    Fixed(String),
}

/// The package store of a Checkmk site (`$OMD_ROOT`), as Checkmk's `cmk-mkp-tool` lays it out:
///
/// | what | where (relative to the site root) |
/// | --- | --- |
/// | stored local packages | `var/check_mk/packages_local/<name>-<version>.mkp` |
/// | shipped packages (read-only) | `share/check_mk/optional_packages/<name>-<version>.mkp` |
/// | enabled marks (byte copies) | `local/share/check_mk/enabled_packages/<name>-<version>.mkp` |
/// | installed manifests (`info` format) | `var/check_mk/packages/<name>` |
///
/// A package is *Enabled (active on this site)* when an installed manifest exists, *Enabled
/// (inactive on this site)* when it has an enabled mark but is not the installed version, and
/// *Disabled* otherwise. Checkmk's own tool reads and writes the same files, so both tools
/// can manage one site.
///
/// # Transactions and crash safety
///
/// Every change (enable, disable, remove, package, update-active, disable-outdated, add,
/// release) is one transaction:
///
/// 1. **Check everything first.** Version checks, every file conflict (all of them are
///    reported at once, not only the first) and the modified-file guard run before anything
///    is touched. A refused change leaves the site as it was.
/// 2. **Stage.** The package's files are unpacked (with the safe extraction of [`Mkp::extract_part`](crate::Mkp::extract_part) and the
///    final permissions) into `var/check_mk/mkp-transaction/staged/`, inside the site, so on
///    the same file system as `local/` (the site's `tmp/` is a tmpfs and is not used). New
///    installed manifests and enabled marks are staged there too.
/// 3. **Journal.** `var/check_mk/mkp-transaction/journal` is written (temporary file, fsync,
///    rename) listing every file to move aside, every directory to create and every staged
///    file to rename into place.
/// 4. **Apply.** Files to delete or overwrite are *renamed* into `backup/` (never deleted
///    yet), missing directories are created, staged files are renamed to their targets
///    (a target that appeared meanwhile is never overwritten).
/// 5. **Commit.** The journal is rewritten with state `committed`; then emptied directories
///    (and `__pycache__`) are removed and the transaction directory is deleted.
///
/// If any step of 4 fails, the transaction is rolled back: placed files are renamed back into
/// the staging area (a staged file is missing exactly when it sits at its target, and the
/// rollback keeps that true at every step), then backups are renamed back (same inode, so
/// content, permissions and timestamps are exactly as before) and created directories are
/// removed. If the process dies (kill, crash, power loss after the journal
/// reached the disk), the **next `mkp` command** finds the journal and repairs the site
/// before doing anything else: state `applying` is rolled back, state `committed` is
/// finished, a directory without journal (killed while staging) is just deleted. Rollback is
/// idempotent, so a crash during recovery is repaired by the next command too. Changes are
/// serialised by an `flock` on the site directory, the site lock that a site update
/// ([`SiteLock`]) holds too: while it does, changes are refused at once.
///
/// Out of scope: durability of the renames themselves against power loss (only the journal is
/// fsynced), and other programs changing the same files concurrently.
///
/// # Guard against losing local edits
///
/// The installed manifest gets an extra key [`HASHES_KEY`] (`{part: {path: sha256}}`) for
/// every installed file. Before `disable`, `remove`, `update-active`, `disable-outdated` or an
/// update deletes or overwrites an installed file whose content no longer matches, the change
/// is refused naming each such file; `--force` proceeds. Checkmk's tool keeps extra keys, so
/// it reads such manifests fine; packages installed by it have no hashes and are not guarded.
///
/// # Where we differ from Checkmk's tool, and why
///
/// * A failed `enable` leaves no enabled mark and no files, *unless the version check is the
///   only problem*: then the package is marked enabled without being installed ("Enabled
///   (inactive on this site)"), because that is what the mark is for — `update-active` after
///   `omd update` activates it once the version fits. Checkmk marks it enabled on every
///   failure and may leave a half-extracted package.
/// * Every conflict is reported at once, one per line, with the version problems first.
/// * Site-mode `package` checks conflicts with other packages before it touches anything;
///   Checkmk deletes the listed files first and can destroy another package's files.
/// * `remove` of a shipped package is a clean error (Checkmk: traceback). `remove` also
///   refuses a package that is installed without an enabled mark.
/// * `update-active` leaves an active package that passes its checks untouched instead of
///   re-extracting it (same files, same permissions; timestamps are kept).
/// * Broken packages (missing part tars, files missing from them, unsafe paths) are clean
///   errors before anything is changed; Checkmk crashes half-way.
/// * Deleting an installed file fails the whole change (and rolls it back) instead of being
///   logged and ignored.
pub struct Site {
    root: PathBuf,
    paths: PathConfig,
    version: SiteVersionSource,
    limits: Limits,
    hook: Option<FaultHook>,
    steps: Cell<usize>,
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("root", &self.root)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Site {
    /// Whether the site at `root` has a package store: any of its installed
    /// manifests (`var/check_mk/packages`), stored local packages
    /// (`var/check_mk/packages_local`) or enabled marks
    /// (`local/share/check_mk/enabled_packages`) is a directory. Reads only.
    pub fn has_store(root: impl AsRef<Path>) -> bool {
        let root = root.as_ref();
        [INSTALLED_DIR, LOCAL_DIR, ENABLED_DIR]
            .iter()
            .any(|dir| root.join(dir).is_dir())
    }

    /// The transaction directory of a change interrupted by a crash, if the
    /// site at `root` has one. [`Site::open`] would repair it; this only looks,
    /// so that a dry run can refuse instead of changing the site.
    pub fn interrupted_change(root: impl AsRef<Path>) -> Option<PathBuf> {
        let dir = root.as_ref().join(txn::TXN_DIR);
        dir.exists().then_some(dir)
    }

    /// Opens the site rooted at `root`, repairing it first if a change was interrupted
    /// (see [`Site`]). The site version is read from its `version` link
    /// when needed.
    ///
    /// A root that does not exist or is not a directory is [`StoreError::NoSite`], and
    /// nothing is created.
    pub fn open(root: impl AsRef<Path>) -> Result<Site, StoreError> {
        let root = root.as_ref();
        Site::check_root(root)?;
        // Absolute, so that printed paths (`files`, conflicts) are too; symlinks are kept.
        let root = std::path::absolute(root)
            .map_err(|e| StoreError::io("cannot resolve the site root", root, e))?;
        let site = Site::new(root);
        site.recover()?;
        Ok(site)
    }

    /// Whether `root` can be a site root: an existing directory (symlinks followed),
    /// else [`StoreError::NoSite`]. Reads only.
    pub fn check_root(root: impl AsRef<Path>) -> Result<(), StoreError> {
        let root = root.as_ref();
        let reason = match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => "it is not a directory".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "no such directory".to_string(),
            Err(e) => e.to_string(),
        };
        Err(StoreError::NoSite {
            root: root.to_path_buf(),
            reason,
        })
    }

    fn new(root: PathBuf) -> Site {
        Site {
            paths: PathConfig::for_site(&root),
            root,
            version: SiteVersionSource::Link,
            limits: Limits::default(),
            hook: None,
            steps: Cell::new(0),
        }
    }

    /// Uses `version` as the site's Checkmk version instead of reading the `version` link.
    pub fn with_version(mut self, version: impl Into<String>) -> Site {
        self.version = SiteVersionSource::Fixed(version.into());
        self
    }

    /// Sets the resource limits for reading packages (default: [`Limits::default`]).
    pub fn with_limits(mut self, limits: Limits) -> Site {
        self.limits = limits;
        self
    }

    /// Installs a [`FaultHook`] (for tests of rollback and recovery).
    pub fn set_fault_hook(&mut self, hook: FaultHook) {
        self.hook = Some(hook);
    }

    /// Installs the fault hook described by the environment variable `MKP_SITE_FAULT`
    /// (`error:N` makes the N-th step fail, `abort:N` aborts the process at that step,
    /// `sleep:MS` sleeps before every step), for the tests of the `mkp` binary.
    ///
    /// Only with the cargo feature `fault-injection` (which only tests enable); without it
    /// this does nothing and the variable is ignored.
    pub fn install_env_fault_hook(&mut self) -> Result<(), StoreError> {
        #[cfg(feature = "fault-injection")]
        if let Some(hook) = fault_hook_from_env()? {
            self.set_fault_hook(hook);
        }
        Ok(())
    }

    /// The site root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where each part's files live on this site.
    pub fn paths(&self) -> &PathConfig {
        &self.paths
    }

    /// The site's Checkmk version (`2.3.0p12`).
    pub fn version(&self) -> Result<String, StoreError> {
        match &self.version {
            SiteVersionSource::Fixed(v) => Ok(v.clone()),
            SiteVersionSource::Link => site_version_from_link(&self.root),
        }
    }

    /// Repairs the site if a change was interrupted; returns what was done. [`Site::open`]
    /// calls this; every change calls it again under the lock.
    pub fn recover(&self) -> Result<Option<String>, StoreError> {
        if !self.root.join(txn::TXN_DIR).exists() {
            return Ok(None);
        }
        let _lock = txn::lock(&self.root)?;
        let done = txn::recover(self)?;
        if let Some(msg) = &done {
            tracing::warn!("{msg}");
        }
        Ok(done)
    }

    fn fault_step(&self) -> std::io::Result<()> {
        let n = self.steps.get() + 1;
        self.steps.set(n);
        match &self.hook {
            Some(hook) => hook(n),
            None => Ok(()),
        }
    }

    fn dir(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// The hook `MKP_SITE_FAULT` describes, if set.
#[cfg(feature = "fault-injection")]
fn fault_hook_from_env() -> Result<Option<FaultHook>, StoreError> {
    let Ok(spec) = std::env::var("MKP_SITE_FAULT") else {
        return Ok(None);
    };
    let bad = |problem: String| StoreError::FaultSpec { problem };
    let (kind, n) = spec
        .split_once(':')
        .ok_or_else(|| bad("MKP_SITE_FAULT must be error:N, abort:N or sleep:MS".into()))?;
    let n: usize = n
        .parse()
        .map_err(|_| bad(format!("MKP_SITE_FAULT: '{n}' is not a number")))?;
    let hook: FaultHook = match kind {
        "error" => Box::new(move |step| {
            if step == n {
                Err(std::io::Error::other(format!(
                    "injected fault at step {step}"
                )))
            } else {
                Ok(())
            }
        }),
        "abort" => Box::new(move |step| {
            if step == n {
                std::process::abort();
            }
            Ok(())
        }),
        "sleep" => Box::new(move |_| {
            std::thread::sleep(std::time::Duration::from_millis(n as u64));
            Ok(())
        }),
        other => return Err(bad(format!("MKP_SITE_FAULT: unknown kind '{other}'"))),
    };
    Ok(Some(hook))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_found_by_any_of_its_directories() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(!Site::has_store(tmp.path()));
        for dir in [INSTALLED_DIR, LOCAL_DIR, ENABLED_DIR] {
            let site = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(site.path().join(dir)).unwrap();
            assert!(Site::has_store(site.path()), "{dir}");
        }
        // A file of that name is no store.
        std::fs::create_dir_all(tmp.path().join("var/check_mk")).unwrap();
        std::fs::write(tmp.path().join(INSTALLED_DIR), "").unwrap();
        assert!(!Site::has_store(tmp.path()));
    }

    #[test]
    fn an_interrupted_change_is_seen_without_repairing_it() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(Site::interrupted_change(tmp.path()), None);
        std::fs::create_dir_all(tmp.path().join(txn::TXN_DIR)).unwrap();
        assert_eq!(
            Site::interrupted_change(tmp.path()),
            Some(tmp.path().join(txn::TXN_DIR))
        );
        assert!(tmp.path().join(txn::TXN_DIR).exists());
    }
}
