//! The "Check_MK Agent" service's rating of the `cmk_update_agent_status` section (signing spec
//! section 3.4, requirement 26), in the 2.2–2.4 or the 2.5 behaviour.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::section::{SECTION_HEADER, TrustedCertInfo};

/// Seconds per day.
const DAY: f64 = 86_400.0;

/// A monitoring state, ordered OK < WARN < CRIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// OK (exit code 0).
    Ok,
    /// WARN (exit code 1).
    Warn,
    /// CRIT (exit code 2).
    Crit,
}

impl State {
    /// Nagios-style exit code: 0, 1 or 2.
    pub fn exit_code(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warn => 1,
            State::Crit => 2,
        }
    }

    /// The marker Checkmk appends to a non-OK text: "", "(!)" or "(!!)".
    pub fn marker(self) -> &'static str {
        match self {
            State::Ok => "",
            State::Warn => "(!)",
            State::Crit => "(!!)",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Ok => "OK",
            State::Warn => "WARN",
            State::Crit => "CRIT",
        })
    }
}

impl std::str::FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<State, String> {
        match s.to_ascii_uppercase().as_str() {
            "OK" | "0" => Ok(State::Ok),
            "WARN" | "1" => Ok(State::Warn),
            "CRIT" | "2" => Ok(State::Crit),
            _ => Err(format!("unknown state {s:?} (OK, WARN or CRIT)")),
        }
    }
}

/// Which Checkmk version's rating to reproduce (the two columns of the table in section 3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RatingMode {
    /// Checkmk 2.2 – 2.4 (werk 15064): key problems are WARN or CRIT.
    Legacy,
    /// Checkmk 2.5 (werk 17102): key problems are notices, except an expired key (WARN); a host
    /// name mismatch is CRIT.
    V25,
}

impl std::str::FromStr for RatingMode {
    type Err = String;
    fn from_str(s: &str) -> Result<RatingMode, String> {
        match s {
            "2.2" | "2.3" | "2.4" | "legacy" => Ok(RatingMode::Legacy),
            "2.5" => Ok(RatingMode::V25),
            _ => Err(format!(
                "unknown Checkmk version {s:?} (2.2, 2.3, 2.4 or 2.5)"
            )),
        }
    }
}

/// The rule parameters of the rating.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingParams {
    /// The host's name in Checkmk; compared with the section's `host_name` in 2.5 mode.
    pub host_name: Option<String>,
    /// Last check older than this (seconds) is WARN. Default: 2 days.
    pub max_check_age_secs: u64,
    /// 2.2–2.4: WARN for each key, and for the time until all keys expired, below this many
    /// days. Default 90.
    pub key_warn_days: u64,
    /// 2.2–2.4: CRIT when all keys expire within this many days. Default 30.
    pub key_crit_days: u64,
    /// State for an error saying the updater is globally disabled. Default WARN.
    pub globally_disabled_state: State,
    /// State for an error saying the updater is disabled for this host. Default WARN.
    pub host_disabled_state: State,
}

impl Default for RatingParams {
    fn default() -> RatingParams {
        RatingParams {
            host_name: None,
            max_check_age_secs: 2 * 86_400,
            key_warn_days: 90,
            key_crit_days: 30,
            globally_disabled_state: State::Warn,
            host_disabled_state: State::Warn,
        }
    }
}

/// One entry of the section's `trusted_certs`, as the rating reads it.
pub type SectionCert = TrustedCertInfo;

/// The parsed `cmk_update_agent_status` section (unknown keys are ignored).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Section {
    /// Time of the last successful contact (Unix seconds).
    pub last_check: Option<f64>,
    /// Time of the last installation (Unix seconds).
    pub last_update: Option<f64>,
    /// Installed agent hash.
    pub aghash: Option<String>,
    /// Hash of a deferred install.
    pub pending_hash: Option<String>,
    /// Update URL handed out by the server.
    pub update_url: Option<String>,
    /// Trusted keys, keyed by their index in `signature_keys`.
    pub trusted_certs: BTreeMap<String, SectionCert>,
    /// Error of the last run.
    pub error: Option<String>,
    /// The updater's host name (newer updaters).
    pub host_name: Option<String>,
}

/// Why a section couldn't be read.
#[derive(Debug, thiserror::Error)]
pub enum SectionError {
    /// The text has a header but no JSON line, or no JSON at all.
    #[error("no cmk_update_agent_status data in the input")]
    Missing,
    /// The JSON line doesn't parse.
    #[error("garbled cmk_update_agent_status section: {0}")]
    Garbled(#[from] serde_json::Error),
}

impl Section {
    /// Parses agent output: the `<<<cmk_update_agent_status:sep(0)>>>` section (other sections
    /// are skipped), or a bare JSON line.
    pub fn parse(text: &str) -> Result<Section, SectionError> {
        let header = SECTION_HEADER.trim_end_matches(">>>");
        let header = header.split(':').next().unwrap_or(header);
        let mut in_section = !text.contains("<<<");
        let mut json = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with("<<<") {
                in_section = trimmed.starts_with(header);
                continue;
            }
            if in_section && !trimmed.is_empty() {
                json.push_str(trimmed);
            }
        }
        if json.is_empty() {
            return Err(SectionError::Missing);
        }
        Ok(serde_json::from_str(&json)?)
    }
}

/// One result line of the rating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingLine {
    /// State of this line.
    pub state: State,
    /// Text (without state marker).
    pub text: String,
    /// A notice: shown in the details only, unless its state is not OK.
    pub notice: bool,
}

/// The service result: the worst state and the lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    /// Worst state of all lines.
    pub state: State,
    /// Summary lines, then notices.
    pub lines: Vec<RatingLine>,
}

impl Rating {
    /// The summary: the non-notice lines (and non-OK notices), with state markers, joined by
    /// ", ".
    pub fn summary(&self) -> String {
        self.lines
            .iter()
            .filter(|l| !l.notice || l.state != State::Ok)
            .map(|l| format!("{}{}", l.text, l.state.marker()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// True when a line with exactly this text exists.
    pub fn has(&self, text: &str) -> bool {
        self.lines.iter().any(|l| l.text == text)
    }
}

/// Writes `not_after` (Unix seconds) as the section reports it, ISO 8601 in
/// UTC (`2036-11-21T00:32:55+00:00`); `None` outside the representable years.
/// [`parse_not_after`] reads it back.
pub fn format_not_after(unix: i64) -> Option<String> {
    let dt = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    ))
}

/// Parses `not_after`: ISO 8601 with an offset or `Z` (`2036-11-21T00:32:55+00:00`), or ASN.1
/// GeneralizedTime / UTCTime (`20430525111300Z`, `430525111300Z`). Returns Unix seconds.
pub fn parse_not_after(text: &str) -> Option<i64> {
    let t = text.trim();
    let num = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (date_part, offset_secs) = if let Some(rest) = t.strip_suffix('Z') {
        (rest, 0)
    } else if t.len() > 6 && t.contains('T') {
        let (body, off) = t.split_at(t.len() - 6);
        let sign = match off.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return None,
        };
        let (h, m) = off.get(1..)?.split_once(':')?;
        (body, sign * (num(h)? * 3600 + num(m)? * 60))
    } else {
        return None;
    };
    let (y, mo, d, h, mi, s) = if date_part.contains('T') {
        // 2036-11-21T00:32:55[.fraction]
        let (date, clock) = date_part.split_once('T')?;
        let clock = clock.split('.').next()?;
        let mut dp = date.split('-');
        let mut cp = clock.split(':');
        (
            num(dp.next()?)?,
            num(dp.next()?)?,
            num(dp.next()?)?,
            num(cp.next()?)?,
            num(cp.next()?)?,
            num(cp.next()?)?,
        )
    } else {
        let digits = date_part;
        let (year, rest) = match digits.len() {
            14 => (num(digits.get(..4)?)?, digits.get(4..)?),
            12 => {
                // UTCTime: 50..99 -> 19xx, 00..49 -> 20xx (RFC 5280).
                let yy = num(digits.get(..2)?)?;
                (
                    if yy >= 50 { 1900 + yy } else { 2000 + yy },
                    digits.get(2..)?,
                )
            }
            _ => return None,
        };
        (
            year,
            num(rest.get(..2)?)?,
            num(rest.get(2..4)?)?,
            num(rest.get(4..6)?)?,
            num(rest.get(6..8)?)?,
            num(rest.get(8..10)?)?,
        )
    };
    let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?)
        .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(mi).ok()?,
        u8::try_from(s).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp()
            - offset_secs,
    )
}

/// Which of the two "disabled" errors (with their own configurable states) a text is.
fn disabled_kind(error: &str) -> Option<bool> {
    let e = error.to_ascii_lowercase();
    if !(e.contains("disabled") || e.contains("deactivated")) {
        return None;
    }
    if e.contains("global") {
        Some(true)
    } else if e.contains("host") {
        Some(false)
    } else {
        None
    }
}

fn days(secs: f64) -> String {
    let d = secs / DAY;
    if d.abs() >= 1.0 {
        format!("{} days", d.floor())
    } else if secs.abs() >= 3600.0 {
        format!("{} hours", (secs / 3600.0).floor())
    } else {
        format!("{} minutes", (secs / 60.0).floor())
    }
}

/// Rates a section like the "Check_MK Agent" service (section 3.4). `now` is Unix seconds.
///
/// | condition | [`RatingMode::Legacy`] | [`RatingMode::V25`] |
/// |---|---|---|
/// | `error` set | WARN "Update error: &lt;first line&gt;" (the disabled texts: their own states) | same |
/// | `last_check` null | WARN "No successful connect to server yet" | same |
/// | last check older than `max_check_age_secs` | WARN | same |
/// | `host_name` ≠ [`RatingParams::host_name`] | – | CRIT |
/// | key corrupt | WARN each | notice |
/// | key expired | WARN each | WARN each |
/// | key expires within `key_warn_days` | WARN each | notice |
/// | no trusted key left | CRIT "Updater has no trusted certificates" | notice |
/// | time until all keys expired | WARN < `key_warn_days`, CRIT < `key_crit_days` | notice |
pub fn rate_section(
    section: &Section,
    params: &RatingParams,
    mode: RatingMode,
    now: i64,
) -> Rating {
    let mut lines = Vec::new();
    let mut push = |state: State, text: String, notice: bool| {
        lines.push(RatingLine {
            state,
            text,
            notice,
        });
    };
    let legacy = mode == RatingMode::Legacy;
    let now_f = now as f64;

    if let Some(error) = section.error.as_deref().filter(|e| !e.trim().is_empty()) {
        let first = error.lines().next().unwrap_or("").trim();
        let state = match disabled_kind(first) {
            Some(true) => params.globally_disabled_state,
            Some(false) => params.host_disabled_state,
            None => State::Warn,
        };
        push(state, format!("Update error: {first}"), false);
    }

    match section.last_check {
        None => push(
            State::Warn,
            "No successful connect to server yet".into(),
            false,
        ),
        Some(t) => {
            let age = now_f - t;
            let state = if age > params.max_check_age_secs as f64 {
                State::Warn
            } else {
                State::Ok
            };
            let mut text = format!("Last update check: {} ago", days(age.max(0.0)));
            if state != State::Ok {
                text.push_str(&format!(
                    " (warn at {})",
                    days(params.max_check_age_secs as f64)
                ));
            }
            push(state, text, false);
        }
    }
    if let Some(t) = section.last_update {
        push(
            State::Ok,
            format!("Last agent update: {} ago", days((now_f - t).max(0.0))),
            true,
        );
    }

    if mode == RatingMode::V25
        && let (Some(in_section), Some(expected)) =
            (section.host_name.as_deref(), params.host_name.as_deref())
        && in_section != expected
    {
        push(
            State::Crit,
            format!(
                "Hostname defined in the agent updater ({in_section}) differs from the host name in Checkmk ({expected})"
            ),
            false,
        );
    }

    let warn_secs = params.key_warn_days as f64 * DAY;
    let crit_secs = params.key_crit_days as f64 * DAY;
    let mut latest_valid: Option<i64> = None;
    let mut by_index: Vec<(&String, &SectionCert)> = section.trusted_certs.iter().collect();
    by_index.sort_by_key(|(k, _)| k.parse::<u64>().unwrap_or(u64::MAX));
    for (idx, cert) in by_index {
        let name = cert
            .common_name
            .as_deref()
            .map(|cn| format!("Key #{idx} ({cn})"))
            .unwrap_or_else(|| format!("Key #{idx}"));
        let expiry = cert.not_after.as_deref().and_then(parse_not_after);
        let (Some(not_after), false) = (expiry, cert.corrupt) else {
            push(
                if legacy { State::Warn } else { State::Ok },
                format!("{name} is corrupt"),
                !legacy,
            );
            continue;
        };
        let left = (not_after - now) as f64;
        if left <= 0.0 {
            push(State::Warn, format!("{name} has expired"), false);
            continue;
        }
        latest_valid = Some(latest_valid.map_or(not_after, |l| l.max(not_after)));
        if left < warn_secs {
            push(
                if legacy { State::Warn } else { State::Ok },
                format!("{name} expires in {}", days(left)),
                !legacy,
            );
        }
    }
    match latest_valid {
        None => push(
            if legacy { State::Crit } else { State::Ok },
            "Updater has no trusted certificates".into(),
            !legacy,
        ),
        Some(latest) => {
            let left = (latest - now) as f64;
            let state = if !legacy {
                State::Ok
            } else if left < crit_secs {
                State::Crit
            } else if left < warn_secs {
                State::Warn
            } else {
                State::Ok
            };
            let mut text = format!("Time until all keys expired: {}", days(left));
            if legacy && state != State::Ok {
                text.push_str(&format!(
                    " (warn/crit below {}/{} days)",
                    params.key_warn_days, params.key_crit_days
                ));
            }
            let notice = !legacy || state == State::Ok;
            push(state, text, notice);
        }
    }

    lines.sort_by_key(|l| l.notice);
    let state = lines.iter().map(|l| l.state).max().unwrap_or(State::Ok);
    Rating { state, lines }
}

#[cfg(test)]
mod tests {
    use super::parse_not_after;

    #[test]
    fn not_after_formats() {
        assert_eq!(parse_not_after("1970-01-02T00:00:00+00:00"), Some(86_400));
        assert_eq!(
            super::format_not_after(86_400).as_deref(),
            Some("1970-01-02T00:00:00+00:00")
        );
        let t = 2_110_000_123;
        assert_eq!(
            super::format_not_after(t).and_then(|s| parse_not_after(&s)),
            Some(t)
        );
        assert_eq!(parse_not_after("1970-01-02T01:00:00+01:00"), Some(86_400));
        assert_eq!(parse_not_after("1970-01-01T23:00:00-01:00"), Some(86_400));
        assert_eq!(parse_not_after("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(parse_not_after("19700102000000Z"), Some(86_400));
        assert_eq!(parse_not_after("700102000000Z"), Some(86_400));
        assert_eq!(
            parse_not_after("20430525111300Z"),
            parse_not_after("2043-05-25T11:13:00+00:00")
        );
        assert_eq!(parse_not_after("garbage"), None);
        assert_eq!(parse_not_after("2043-13-25T11:13:00+00:00"), None);
        assert_eq!(parse_not_after(""), None);
    }
}
