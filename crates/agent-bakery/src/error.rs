//! The bakery's errors.

use std::path::PathBuf;

/// Everything that can go wrong while reading a site or baking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// A site file is not valid Python literal syntax.
    #[error("{}, line {line}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A rule is malformed or has a value of an unknown shape.
    #[error("{}, line {line}: rule {rule_id}: {message}", path.display())]
    Rule {
        /// The rules.mk file.
        path: PathBuf,
        /// 1-based line of the rule list.
        line: usize,
        /// The rule's `id`.
        rule_id: String,
        /// What is wrong.
        message: String,
    },
    /// A host or folder has a name that cannot be used safely.
    #[error("{}, line {line}: invalid host name {name:?}: {reason}", path.display())]
    HostName {
        /// The hosts.mk file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The name as written.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A file the packages need is missing.
    #[error("missing agent file {}: {reason}", path.display())]
    MissingFile {
        /// The file.
        path: PathBuf,
        /// What it is for.
        reason: String,
    },
    /// Another bake holds the site's bake lock.
    #[error("another bake is running ({holder}); lock file {}", path.display())]
    BakeRunning {
        /// The lock file.
        path: PathBuf,
        /// Who holds it (pid, user, start time).
        holder: String,
    },
    /// Building a package failed.
    #[error("building the {platform} package: {message}")]
    Package {
        /// The platform id.
        platform: String,
        /// What failed.
        message: String,
    },
    /// Signing failed (wrong passphrase, unknown key, ...).
    #[error("signing with key #{key_id}: {source}")]
    Sign {
        /// The key id.
        key_id: u64,
        /// The reason.
        source: agent_sign::Error,
    },
    /// The signing log could not be checked or appended to (a damaged chain refuses signing).
    #[error("signing log {path}: {source}")]
    SigningLog {
        /// The log file.
        path: PathBuf,
        /// The reason.
        source: agent_sign::Error,
    },
    /// The site's version could not be determined.
    #[error("cannot determine the site's Checkmk version: {0}")]
    Version(String),
    /// An unknown platform id.
    #[error("unknown platform {0:?} (known: linux_deb, linux_rpm, linux_tgz)")]
    Platform(String),
    /// A host is not in the site's inventory.
    #[error("no host {0:?} in this site")]
    NoSuchHost(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
