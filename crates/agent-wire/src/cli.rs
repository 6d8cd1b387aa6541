//! Support for the two thin binaries (`agent-deploy`, `cmk-update-agent`): logging setup and
//! the final error report. Behind the `cli` feature so library users don't pull in
//! `tracing-subscriber`.
//!
//! ```no_run
//! use std::process::ExitCode;
//! fn run() -> Result<ExitCode, std::io::Error> { Ok(ExitCode::SUCCESS) }
//! fn main() -> ExitCode {
//!     if let Err(e) = agent_wire::cli::init_logging(0, None) {
//!         return agent_wire::cli::report("my-tool", &e, 2);
//!     }
//!     agent_wire::cli::finish("my-tool", run(), |_| 2)
//! }
//! ```

use std::fmt::Display;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

use crate::FILE_ONLY_TARGET;

/// Rotate the log file when it exceeds this size.
pub const LOG_ROTATE_BYTES: u64 = 1024 * 1024;
/// Rotated copies kept (`FILE.1` … `FILE.3`), as Checkmk's updater.
pub const LOG_BACKUPS: u32 = 3;

/// Setting up logging failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file could not be opened.
    #[error("cannot open log file {path}: {source}")]
    Open {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A global subscriber was already installed.
    #[error("cannot install the logger: {0}")]
    Init(String),
}

/// Whether stderr gets colour: only on a terminal, and not when `NO_COLOR` is set to a
/// non-empty value (<https://no-color.org>).
pub fn stderr_colour() -> bool {
    use std::io::IsTerminal as _;
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Logs to stderr at `warn`, `info` (`-v`) or `debug` (`-vv`) unless `RUST_LOG` says
/// otherwise, in colour only on a terminal ([`stderr_colour`]), and, with a `logfile`, also
/// appends to that file (rotated at [`LOG_ROTATE_BYTES`], [`LOG_BACKUPS`] backups, never
/// coloured) at `info` or more, so the file always carries the signature-check lines
/// (`Signature check OK.`, `Signature #N is invalid.`, ...). Events with the target
/// [`FILE_ONLY_TARGET`] go to the file only.
pub fn init_logging(verbose: u8, logfile: Option<&Path>) -> Result<(), LogError> {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let stderr_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level))
        .add_directive(
            format!("{FILE_ONLY_TARGET}=off")
                .parse()
                .map_err(|e| LogError::Init(format!("{e}")))?,
        );
    let stderr = fmt::layer()
        .with_writer(io::stderr)
        .with_ansi(stderr_colour())
        .with_target(false)
        .with_filter(stderr_filter);
    let file_layer = match logfile {
        Some(path) => {
            rotate(path);
            let file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| LogError::Open {
                    path: path.to_owned(),
                    source,
                })?;
            let file_level = if verbose >= 2 {
                LevelFilter::DEBUG
            } else {
                LevelFilter::INFO
            };
            Some(
                fmt::layer()
                    .with_ansi(false)
                    .with_target(false)
                    .with_writer(Mutex::new(file))
                    .with_filter(file_level),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init()
        .map_err(|e| LogError::Init(e.to_string()))
}

/// Keeps `FILE`, `FILE.1` … `FILE.3`; rotates when `FILE` exceeds [`LOG_ROTATE_BYTES`].
pub fn rotate(path: &Path) {
    let big = fs::metadata(path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES);
    if !big {
        return;
    }
    let name = |n: u32| {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    };
    let _ = fs::remove_file(name(LOG_BACKUPS));
    for n in (1..LOG_BACKUPS).rev() {
        let _ = fs::rename(name(n), name(n + 1));
    }
    let _ = fs::rename(path, name(1));
}

/// Prints `<program>: <error>` (with its causes, using the alternate format) to stderr and
/// returns `code` as the exit code.
pub fn report(program: &str, error: &(impl Display + ?Sized), code: u8) -> ExitCode {
    eprintln!("{program}: {error:#}");
    ExitCode::from(code)
}

/// The end of `main`: the exit code of `result`, or the error reported by [`report`] with the
/// exit code `code_of` picks for it.
pub fn finish<E: Display>(
    program: &str,
    result: Result<ExitCode, E>,
    code_of: impl FnOnce(&E) -> u8,
) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => report(program, &e, code_of(&e)),
    }
}
