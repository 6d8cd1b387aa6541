//! The store's error type.

use std::io;
use std::path::PathBuf;

use crate::Error as FormatError;

/// An error of a site operation. The `Display` form is what `mkp` prints on stderr; the
/// Checkmk-compatible variants use Checkmk's exact wording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `MKP_SITE_FAULT` is malformed (only with the `fault-injection` feature).
    #[error("{problem}")]
    FaultSpec {
        /// What is wrong.
        problem: String,
    },
    /// The site root does not exist or is not a directory.
    #[error("{}: not a site: {reason}", root.display())]
    NoSite {
        /// The root given.
        root: PathBuf,
        /// `no such directory`, `not a directory`, ...
        reason: String,
    },
    /// No stored package with that name (and version).
    #[error("No such package: {name}{}", version.as_ref().map(|v| format!(" {v}")).unwrap_or_default())]
    NoSuchPackage {
        /// The package name.
        name: String,
        /// The version, if one was given.
        version: Option<String>,
    },
    /// Several stored versions of a name and none was given.
    #[error("Please specify version ({versions})")]
    AmbiguousVersion {
        /// The package name.
        name: String,
        /// The stored versions, joined by `, `.
        versions: String,
    },
    /// `add` / `package` of an id that is already stored (local or shipped).
    #[error("Package {name} {version} exists on the site!")]
    Exists {
        /// The package name.
        name: String,
        /// The version.
        version: String,
    },
    /// The package does not fit this site's Checkmk version (and nothing else is wrong).
    /// `enable` marks the package enabled anyway, as Checkmk does.
    #[error("{message}")]
    Incompatible {
        /// Checkmk's message, including the `--force-install` hint where it applies.
        message: String,
    },
    /// The change was refused before anything was touched: every problem found (version
    /// checks, file conflicts, locally modified files), one per line.
    #[error("{}", problems.join("\n"))]
    Refused {
        /// One line per problem (`File conflict: <path> (already part of <pkg> <ver>)`, ...).
        problems: Vec<String>,
    },
    /// `remove` of a package that is enabled.
    #[error("This package is enabled! Please disable it first.")]
    Enabled {
        /// The package name.
        name: String,
        /// The version.
        version: String,
    },
    /// `remove` of a package that only exists as a shipped package.
    #[error(
        "Package {name} {version} is shipped with Checkmk and cannot be removed (it is read-only; disable it instead)"
    )]
    Shipped {
        /// The package name.
        name: String,
        /// The version.
        version: String,
    },
    /// `release` of a package that is not installed.
    #[error("Package {name} not installed or corrupt.")]
    NotInstalled {
        /// The package name.
        name: String,
    },
    /// A package or manifest file could not be read or is invalid.
    #[error("{}: {source}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: FormatError,
    },
    /// A package given as bytes (or built) is invalid.
    #[error("{0}")]
    Package(#[from] FormatError),
    /// A file system operation failed. If it happened during a change, the change was rolled
    /// back and the site is as before.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`cannot read`, `cannot rename`, ...).
        action: String,
        /// The path concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Another process holds the site lock ([`crate::SiteLock`]): refused at once.
    #[error(
        "The site is locked by another process ({}{}): {}. Try again when it has finished.",
        pid.map(|p| format!("PID {p}")).unwrap_or_else(|| "PID unknown".to_owned()),
        if command.is_empty() { String::new() } else { format!(", {command}") },
        path.display()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The holder's process id, if it wrote it yet.
        pid: Option<u32>,
        /// The holder's command line (empty when unknown).
        command: String,
    },
    /// A change failed part-way and was rolled back.
    #[error("{what} failed, nothing was changed: {source}")]
    RolledBack {
        /// What was being done (`enabling hello 1.0.0`).
        what: String,
        /// Why it failed.
        #[source]
        source: Box<StoreError>,
    },
    /// A change failed part-way and rolling it back failed too; the journal is kept, so the
    /// next command retries the repair.
    #[error(
        "{what} failed and could not be rolled back completely ({problem}); the next mkp command retries the repair"
    )]
    RollbackFailed {
        /// What was being done.
        what: String,
        /// The errors.
        problem: String,
    },
    /// The site's Checkmk version is needed and cannot be determined.
    #[error(
        "cannot determine the Checkmk version of the site: {problem} (pass --site-version or set MKP_SITE_VERSION)"
    )]
    SiteVersion {
        /// What went wrong.
        problem: String,
    },
    /// The transaction journal of an interrupted change cannot be read, so the site cannot be
    /// repaired automatically.
    #[error(
        "the journal {} of an interrupted change is unreadable ({problem}); repair the site by hand, then delete that directory",
        path.display()
    )]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl StoreError {
    pub(crate) fn io(
        action: impl Into<String>,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> Self {
        StoreError::Io {
            action: action.into(),
            path: path.into(),
            source,
        }
    }
}

/// The store's result type.
pub(crate) type Result<T, E = StoreError> = std::result::Result<T, E>;
