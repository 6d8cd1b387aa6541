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
        unix_seconds(SystemTime::now())
    }
}

/// Whole seconds from the Unix epoch to `t` (negative before it), saturating.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_before_the_epoch_are_negative() {
        assert_eq!(unix_seconds(UNIX_EPOCH), 0);
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(90)), 90);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(90)), -90);
        let now = SystemClock.now();
        assert!(now > 1_767_225_600, "after 2026-01-01: {now}");
    }
}
