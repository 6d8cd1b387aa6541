//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::part::expected_parts_message;

/// An error of this crate: what went wrong ([`ErrorKind`]) and where (file, archive member).
///
/// The `Display` form is one line meant for operators, e.g.
/// `pkg.mkp: not a gzip file: this looks like an HTML page (a download page saved instead of the package?)`.
#[derive(Debug)]
pub struct Error {
    file: Option<PathBuf>,
    member: Option<String>,
    kind: Box<ErrorKind>,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading or writing a file failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done ("cannot read file", ...).
        action: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file is not gzip-compressed (and not a plain tar either).
    #[error("not a gzip file: this looks like {looks_like}")]
    NotGzip {
        /// A guess what the file is instead.
        looks_like: &'static str,
    },
    /// The archive ends early or its data is damaged.
    #[error("the archive is truncated or damaged: {detail}")]
    Damaged {
        /// What exactly was found.
        detail: String,
    },
    /// No `info` member.
    #[error(
        "'info' not contained in MKP (the archive has no manifest, so it is not an extension package)"
    )]
    InfoMissing,
    /// `info` is not a regular file.
    #[error("'info' is not a regular file")]
    InfoNotRegular,
    /// Text that must be UTF-8 is not.
    #[error("{what} is not valid UTF-8 text")]
    NotUtf8 {
        /// Which text.
        what: String,
    },
    /// The manifest is not valid Python syntax.
    #[error("the manifest is not a valid Python literal: {message} (line {line}, column {column})")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The manifest contains code (names, calls, operators) instead of plain values.
    #[error(
        "the manifest is not a plain Python literal: {message} (line {line}, column {column}); manifests must not contain code"
    )]
    NotLiteral {
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// What was found.
        message: String,
    },
    /// `info.json` is not valid JSON.
    #[error("the JSON manifest is invalid: {message}")]
    Json {
        /// serde_json's message.
        message: String,
    },
    /// A manifest field is missing or has the wrong type.
    #[error("invalid manifest: field '{field}': {problem}")]
    Field {
        /// The key in `info` (alias form).
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The package name does not match `^[^\d\W][-\w]*$`.
    #[error(
        "Invalid name '{name}'. A package name must only consist of letters, digits, dash and underscore and it must start with a letter or underscore."
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The package version contains a `/`.
    #[error("Invalid version '{version}'. A package version must not contain slashes")]
    InvalidVersion {
        /// The rejected version.
        version: String,
    },
    /// `mkp package` requires a semantic version.
    #[error("Not a valid semantic versioning string: '{version}'")]
    NotSemver {
        /// The rejected version.
        version: String,
    },
    /// A part id that Checkmk does not know.
    #[error("unknown package part '{part}': {}", expected_parts_message())]
    UnknownPart {
        /// The unknown id.
        part: String,
    },
    /// The obsolete `pnp-rraconf` part of Check_MK 1.1/1.2.
    #[error(
        "package part 'pnp-rraconf' (PNP4Nagios RRA configs of Check_MK 1.1/1.2) is obsolete and rejected by current Checkmk; the package must be rebuilt without it"
    )]
    LegacyPart,
    /// A size, count or compression-ratio limit was hit.
    #[error(
        "{what}; refusing to unpack it (a decompression bomb?). Raise the limit if you trust this package"
    )]
    LimitExceeded {
        /// Which limit, with the numbers.
        what: String,
    },
    /// A path that could escape the target directory.
    #[error("unsafe path '{path}': {reason}")]
    UnsafePath {
        /// The path as found.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A symlink, device, FIFO ... where a file is expected.
    #[error("'{path}' is a {entry_type}; only regular files can be installed")]
    UnsupportedEntry {
        /// The member name.
        path: String,
        /// The kind of entry found.
        entry_type: &'static str,
    },
    /// The same path twice in one part archive.
    #[error("'{path}' appears more than once in the archive")]
    DuplicateEntry {
        /// The member name.
        path: String,
    },
    /// A hard link whose target is not a listed file of the same part.
    #[error("'{path}' is a hard link to '{target}', which is not a file of the same package part")]
    HardLinkOutside {
        /// The link.
        path: String,
        /// Its target.
        target: String,
    },
    /// The manifest lists files of a part but there is no `<part>.tar`.
    #[error("the manifest lists files of part '{part}' but the package contains no '{part}.tar'")]
    MissingPartTar {
        /// The part id.
        part: String,
    },
    /// A listed file is missing from its part archive.
    #[error("the manifest lists '{path}' but the part archive does not contain it")]
    MissingMember {
        /// The listed path.
        path: String,
    },
    /// A file to package is missing or not a regular file.
    #[error("cannot package '{path}': {problem}")]
    SourceFile {
        /// The path on disk.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// `mkp-tool.toml` is missing.
    #[error("Missing configuration file: {file}")]
    MissingConfig {
        /// The path looked for.
        file: String,
    },
    /// `mkp-tool.toml` is invalid.
    #[error("invalid path configuration: {problem}")]
    PathConfig {
        /// What is wrong.
        problem: String,
    },
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The file the error is about, if known.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The archive member the error is about (`info`, `lib.tar`, ...), if any.
    pub fn member(&self) -> Option<&str> {
        self.member.as_deref()
    }

    /// Attaches the file name (kept if one is already set).
    pub fn with_file(mut self, file: impl AsRef<Path>) -> Self {
        if self.file.is_none() {
            self.file = Some(file.as_ref().to_path_buf());
        }
        self
    }

    /// Attaches the archive member name (kept if one is already set).
    pub(crate) fn with_member(mut self, member: impl Into<String>) -> Self {
        if self.member.is_none() {
            self.member = Some(member.into());
        }
        self
    }

    pub(crate) fn io(action: impl Into<String>, source: io::Error) -> Self {
        ErrorKind::Io {
            action: action.into(),
            source,
        }
        .into()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error {
            file: None,
            member: None,
            kind: Box::new(kind),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if let Some(member) = &self.member {
            write!(f, "{member}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

/// The `Display` text is complete (it includes the operating system's message), so
/// `source()` returns `None` and error-chain printers do not repeat it.
impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
