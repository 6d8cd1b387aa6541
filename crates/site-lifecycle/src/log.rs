//! The update log `var/log/update.log` and the output of an update: every
//! line is appended to the log first, then reported as an [`Event`].

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result};
use crate::events::{Event, Events};

/// The update log, relative to the site home.
pub const UPDATE_LOG: &str = "var/log/update.log";

/// The output of an update: the log (none in a dry run) and the receiver.
pub(crate) struct Output<'e> {
    file: Option<File>,
    path: PathBuf,
    events: &'e mut dyn Events,
}

impl<'e> Output<'e> {
    /// Output without a log file (dry runs write nothing into the site).
    pub(crate) fn without_log(events: &'e mut dyn Events) -> Self {
        Self {
            file: None,
            path: PathBuf::new(),
            events,
        }
    }

    /// Opens (appends to) the update log, creating `var/log` if needed, and
    /// writes the header `YYYY-mm-dd HH:MM:SS - Updating site 'SITE' from
    /// version FROM to TO...` (UTC) and a blank line (log only).
    pub(crate) fn with_log(
        events: &'e mut dyn Events,
        site_home: &Path,
        site: &str,
        from: &str,
        to: &str,
    ) -> Result<Self> {
        let path = site_home.join(UPDATE_LOG);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).ctx("create", dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ctx("open the update log", &path)?;
        let mut out = Self {
            file: Some(file),
            path,
            events,
        };
        out.append(&format!(
            "{} - Updating site '{site}' from version {from} to {to}...\n\n",
            utc_timestamp(SystemTime::now())
        ))?;
        Ok(out)
    }

    /// The log file's path (`None` in a dry run).
    pub(crate) fn log_path(&self) -> Option<&Path> {
        self.file.as_ref().map(|_| self.path.as_path())
    }

    /// Appends to the log only.
    pub(crate) fn append(&mut self, text: &str) -> Result<()> {
        if let Some(file) = &mut self.file {
            file.write_all(text.as_bytes())
                .ctx("write to", &self.path)?;
        }
        Ok(())
    }

    /// A line: log, then [`Event::Line`].
    pub(crate) fn line(&mut self, text: &str) -> Result<()> {
        self.append(&format!("{text}\n"))?;
        self.events.event(&Event::Line(text));
        Ok(())
    }

    /// A status line: log, then [`Event::Status`].
    pub(crate) fn status(&mut self, text: &str) -> Result<()> {
        self.append(&format!("{text}\n"))?;
        self.events.event(&Event::Status(text));
        Ok(())
    }

    /// An error message: log only (the caller shows the returned error).
    pub(crate) fn error(&mut self, text: &str) {
        let _ = self.append(&format!("{text}\n"));
    }

    /// Any other event (not logged).
    pub(crate) fn event(&mut self, event: &Event<'_>) {
        self.events.event(event);
    }
}

/// `YYYY-mm-dd HH:MM:SS` of `time` in UTC.
pub fn utc_timestamp(time: SystemTime) -> String {
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
}
