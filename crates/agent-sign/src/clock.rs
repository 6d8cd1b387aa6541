//! An injectable clock: every time-dependent rule takes one.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time, in Unix seconds (UTC).
///
/// Every rule that depends on time (certificate expiry, metadata expiry, key
/// expiry warnings) asks a `Clock`, so tests can move time freely.
pub trait Clock: Send + Sync {
    /// The current time as seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }
}

/// A clock that always answers the same time (for tests and replays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0
    }
}
