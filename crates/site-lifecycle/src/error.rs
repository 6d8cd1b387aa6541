//! The lifecycle's error type.

use std::path::PathBuf;

/// Why a lifecycle operation did not (fully) happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A valid request with a negative answer, or a refusal of one of the
    /// checks (`Please completely stop 'SITE' before updating it.`, ...).
    /// Nothing was changed. The message is Checkmk's where it has one.
    #[error("{0}")]
    Refused(String),
    /// Another process holds the site's lock (an update, or a package change).
    #[error(transparent)]
    Locked(mkp_format::StoreError),
    /// The update was interrupted (a signal) and rolled back: the site is
    /// as before. `The update was rolled back successfully.` was reported.
    #[error("The update was interrupted and rolled back; the site is at version {from} as before.")]
    Interrupted {
        /// The version the site has (again).
        from: String,
    },
    /// The update was interrupted (a signal) after its commit point and
    /// was completed: the site is on the new version.
    #[error("The update was interrupted after the switch to version {to} and was completed.")]
    InterruptedCompleted {
        /// The version the site now has.
        to: String,
    },
    /// A phase script failed (`ERROR (exit code: N)`); a failing
    /// `update-pre-hooks` script rolls the update back.
    #[error("The {phase} script \"{script}\" failed{}", if *rolled_back { "; the update was rolled back" } else { "" })]
    Script {
        /// The phase (`update-pre-hooks`, `post-update`).
        phase: String,
        /// The script's file name.
        script: String,
        /// Whether the update was rolled back because of it.
        rolled_back: bool,
    },
    /// The site registry (versions, sites) could not be read or changed.
    #[error(transparent)]
    Registry(#[from] omd_versions::RegistryError),
    /// The site tree operation (plan, apply, recover, create, remove) failed.
    #[error(transparent)]
    Site(#[from] site_merge::Error),
    /// A file could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The resolver could not ask (its terminal failed).
    #[error("cannot ask on the terminal: {0}")]
    Ask(String),
}

impl Error {
    /// Whether this is a negative answer or refusal (exit code 1), rather
    /// than an operational failure (exit code 2).
    pub fn is_negative_answer(&self) -> bool {
        match self {
            Error::Refused(_) | Error::Locked(_) | Error::Script { .. } => true,
            Error::Registry(e) => e.is_negative_answer(),
            Error::Site(e) => matches!(
                e,
                site_merge::Error::Aborted { .. }
                    | site_merge::Error::SameVersion { .. }
                    | site_merge::Error::SiteExists { .. }
            ),
            _ => false,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the action and path to an I/O error.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, action: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Returns early with [`Error::Refused`].
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::Refused(format!($($arg)*)))
    };
}
pub(crate) use refuse;
