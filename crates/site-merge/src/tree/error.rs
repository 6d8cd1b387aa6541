//! The error type of the tree-level update.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while planning, applying, creating or removing.
///
/// Every variant names the path involved and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What we tried to do (`read`, `rename`, …).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A line of a `skel.permissions` file is malformed.
    #[error("{}:{line}: {reason} (expected `relpath octal-mode`)", path.display())]
    Permissions {
        /// The permissions file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A conflict was answered with "abort" (or the `abort` policy met a conflict).
    /// Nothing has been written. The message is Checkmk's.
    #[error("Update aborted.")]
    Aborted {
        /// The path whose conflict stopped the update.
        path: String,
    },
    /// The resolver gave an answer that does not fit the question.
    #[error("invalid answer {answer} to the question about {path}")]
    InvalidAnswer {
        /// The path of the conflict.
        path: String,
        /// The answer given (debug form).
        answer: String,
    },
    /// The plan still has open conflicts (it was made for a dry run).
    #[error(
        "the plan has {count} unresolved conflict(s), the first at {path}; plan again with a policy or an interactive resolver"
    )]
    Unresolved {
        /// How many conflicts are open.
        count: usize,
        /// The first path with an open conflict.
        path: String,
    },
    /// The plan was made for another site or other versions.
    #[error(
        "the plan is for site {plan_site} from {plan_from} to {plan_to}, not for this update; plan again"
    )]
    PlanMismatch {
        /// The plan's site.
        plan_site: String,
        /// The plan's source version.
        plan_from: String,
        /// The plan's target version.
        plan_to: String,
    },
    /// A journal of an interrupted update exists; run [`recover`](crate::tree::recover) first.
    #[error(
        "{} holds the journal of an interrupted update; run the recovery (it rolls back or finishes that update) before updating again",
        path.display()
    )]
    JournalPresent {
        /// The journal directory.
        path: PathBuf,
    },
    /// The journal cannot be read.
    #[error("the update journal {} is damaged: {reason}; the site may be half-updated, restore it from a backup", path.display())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Source and target version are the same; there is nothing to update.
    #[error("Site already has version {version}.")]
    SameVersion {
        /// The version.
        version: String,
    },
    /// A fault injected by [`Fault`](crate::tree::Fault) (tests only).
    #[error("injected fault after {ops} journaled operations at {path}")]
    Injected {
        /// Operations done before the fault.
        ops: usize,
        /// The path about to be touched.
        path: String,
    },
    /// A simulated crash ([`Fault::CrashAfter`](crate::tree::Fault::CrashAfter)):
    /// the journal is left in place, as after a real crash.
    #[error("simulated crash after {ops} journaled operations; the journal is left for recovery")]
    SimulatedCrash {
        /// Operations done before the crash.
        ops: usize,
    },
    /// The update failed and the site was restored to its state before the update.
    #[error("the update failed and was rolled back: {source}")]
    RolledBack {
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
    /// The update failed and the rollback failed too; the journal is kept for recovery.
    #[error(
        "the update failed ({cause}) and rolling back failed as well: {source}; the journal is kept, run the recovery again"
    )]
    RollbackFailed {
        /// Why the update failed.
        cause: Box<Error>,
        /// Why the rollback failed.
        #[source]
        source: Box<Error>,
    },
    /// `create_site`: the site directory exists and is not empty.
    #[error("the site directory {} already exists", path.display())]
    SiteExists {
        /// The site directory.
        path: PathBuf,
    },
    /// `remove_site`: the directory does not look like a site (no `version` link).
    #[error("{} is not a site (it has no `version` link); refusing to remove it", path.display())]
    NotASite {
        /// The directory.
        path: PathBuf,
    },
}

/// Shorthand for results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds path context to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            action,
            path: path.into(),
            source,
        })
    }
}
