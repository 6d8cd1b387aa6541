//! Printing helpers shared by the commands: the "negative answer" error
//! (exit code 1), JSON documents, coloured status lines and the update log.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

/// A refusal or negative answer: printed on stderr, exit code 1.
#[derive(Debug)]
pub(crate) struct Negative(pub(crate) String);

impl Negative {
    /// A refusal with this message (a trailing newline is dropped; `main` adds one).
    pub(crate) fn new(message: impl Into<String>) -> Self {
        let mut message = message.into();
        while message.ends_with('\n') {
            message.pop();
        }
        Self(message)
    }
}

impl std::fmt::Display for Negative {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Negative {}

/// Returns early with a [`Negative`] error.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err($crate::output::Negative::new(format!($($arg)*)).into())
    };
}
pub(crate) use refuse;

/// Renders `value` as one pretty-printed JSON document ending in a newline.
pub(crate) fn json_document(value: &impl serde::Serialize) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("cannot render JSON")?;
    text.push('\n');
    Ok(text)
}

/// Writes `text` to stdout and flushes.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}

/// Whether stdout is a terminal that may get colours (`NO_COLOR` unset or empty).
pub(crate) fn stdout_color() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// A status line as shown: the marker (` *` good, ` !` warning) coloured
/// on a terminal, the line otherwise as the library wrote it.
pub(crate) fn paint_status(line: &str, color: bool) -> String {
    if !color {
        return line.to_owned();
    }
    if let Some(rest) = line.strip_prefix(" *") {
        format!("{GREEN}{BOLD} *{RESET}{rest}")
    } else if let Some(rest) = line.strip_prefix(" !") {
        format!("{YELLOW}{BOLD} !{RESET}{rest}")
    } else {
        line.to_owned()
    }
}

/// The output of `omd update`: every line goes to stdout (unless the
/// command prints JSON instead) and is appended to the site's
/// `var/log/update.log`, as Checkmk tees its output into that file.
pub(crate) struct UpdateLog {
    file: Option<File>,
    path: PathBuf,
    stdout: bool,
    color: bool,
}

impl UpdateLog {
    /// Output to stdout only (dry runs write nothing into the site).
    pub(crate) fn stdout_only(stdout: bool) -> Self {
        Self {
            file: None,
            path: PathBuf::new(),
            stdout,
            color: stdout_color(),
        }
    }

    /// Opens (appends to) `<site>/var/log/update.log`, creating `var/log`
    /// if needed, and writes the header line
    /// `YYYY-mm-dd HH:MM:SS - Updating site 'SITE' from version FROM to TO...`
    /// (time in UTC) and a blank line.
    pub(crate) fn open(
        site_home: &Path,
        site: &str,
        from: &str,
        to: &str,
        stdout: bool,
    ) -> anyhow::Result<Self> {
        let dir = site_home.join("var/log");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("update.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open the update log {}", path.display()))?;
        let mut log = Self {
            file: Some(file),
            path,
            stdout,
            color: stdout_color(),
        };
        let header = format!(
            "{} - Updating site '{site}' from version {from} to {to}...\n\n",
            utc_timestamp(SystemTime::now())
        );
        log.append(&header)?;
        Ok(log)
    }

    /// Another handle of the log file (for the interactive menu), if there is one.
    pub(crate) fn file_clone(&self) -> Option<File> {
        self.file.as_ref().and_then(|f| f.try_clone().ok())
    }

    /// Appends to the log file only.
    pub(crate) fn append(&mut self, text: &str) -> anyhow::Result<()> {
        if let Some(file) = &mut self.file {
            file.write_all(text.as_bytes())
                .with_context(|| format!("cannot write to {}", self.path.display()))?;
        }
        Ok(())
    }

    /// A line of output (stdout and log).
    pub(crate) fn line(&mut self, text: &str) -> anyhow::Result<()> {
        if self.stdout {
            print(&format!("{text}\n"))?;
        }
        self.append(&format!("{text}\n"))
    }

    /// A status line of the plan: coloured on a terminal, plain in the log.
    pub(crate) fn status(&mut self, text: &str) -> anyhow::Result<()> {
        if self.stdout {
            print(&format!("{}\n", paint_status(text, self.color)))?;
        }
        self.append(&format!("{text}\n"))
    }

    /// An error message: stderr and log (the caller's error is printed by `main`).
    pub(crate) fn error(&mut self, text: &str) {
        let _ = self.append(&format!("{text}\n"));
    }
}

/// `YYYY-mm-dd HH:MM:SS` of `time` in UTC.
pub(crate) fn utc_timestamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01 00:00:00");
        // 2024-02-29 12:34:56 UTC (a leap day).
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(utc_timestamp(t), "2024-02-29 12:34:56");
        let t = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(utc_timestamp(t), "2026-12-31 23:59:59");
    }

    #[test]
    fn status_markers_are_coloured_only_on_request() {
        assert_eq!(
            paint_status(" * Updated        x", false),
            " * Updated        x"
        );
        let painted = paint_status(" ! Missing        x", true);
        assert!(painted.starts_with("\x1b[33m"), "{painted:?}");
        assert!(painted.ends_with("Missing        x"));
    }

    #[test]
    fn negative_messages_lose_their_trailing_newlines() {
        assert_eq!(Negative::new("a\n\n").to_string(), "a");
    }
}
