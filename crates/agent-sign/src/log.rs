//! An append-only, hash-chained signing log (requirement 37).
//!
//! One JSON line per signing event, each in canonical JSON and carrying the
//! SHA-256 of the previous line, so that changing, removing or reordering an
//! old entry breaks the chain. An auditor compares the package hashes hosts
//! report as installed with the ones the log recorded.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::canonical::to_canonical_json;
use crate::clock::Clock;
use crate::error::{Error, Result};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One signing event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    /// 1-based position in the log.
    pub seq: u64,
    /// Unix seconds.
    pub time: i64,
    /// SHA-256 fingerprint of the signing certificate (or key id for metadata keys).
    pub key_fingerprint: String,
    /// SHA-256 of the signed package.
    pub package_sha256: String,
    /// The metadata version, 0 when not applicable.
    pub version: u64,
    /// The hosts the package is for (may be empty).
    pub hosts: Vec<String>,
    /// SHA-256 (hex) of the previous line, [`GENESIS`] for the first entry.
    pub prev: String,
}

impl LogEntry {
    fn line(&self) -> Result<Vec<u8>> {
        let value = serde_json::to_value(self)
            .map_err(|e| Error::Metadata(format!("signing log entry: {e}")))?;
        to_canonical_json(&value)
    }
}

/// What to record; [`SigningLog::append`] fills in `seq`, `time` and `prev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// SHA-256 fingerprint of the signing certificate or key.
    pub key_fingerprint: String,
    /// SHA-256 of the package.
    pub package_sha256: String,
    /// Metadata version (0 if none).
    pub version: u64,
    /// Hosts the package is for.
    pub hosts: Vec<String>,
}

/// A signing log file (JSON lines). One writer at a time.
#[derive(Debug, Clone)]
pub struct SigningLog {
    path: PathBuf,
}

impl SigningLog {
    /// A log at `path` (created on the first append).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SigningLog { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and checks the whole chain; returns the entries.
    ///
    /// Fails with [`Error::LogChainBroken`] naming the first bad line.
    pub fn verify(&self) -> Result<Vec<LogEntry>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let mut prev = GENESIS.to_string();
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i as u64 + 1;
            let broken = |why: &str| Error::LogChainBroken {
                line: n,
                reason: why.to_string(),
            };
            let entry: LogEntry =
                serde_json::from_str(line).map_err(|e| broken(&format!("not an entry: {e}")))?;
            if entry.line()? != line.as_bytes() {
                return Err(broken("not in canonical form"));
            }
            if entry.seq != n {
                return Err(broken(&format!(
                    "sequence number {} instead of {n}",
                    entry.seq
                )));
            }
            if entry.prev != prev {
                return Err(broken("does not chain to the previous entry"));
            }
            prev = hex::encode(Sha256::digest(line.as_bytes()));
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Appends a record after checking the existing chain.
    pub fn append(&self, record: LogRecord, clock: &dyn Clock) -> Result<LogEntry> {
        let existing = self.verify()?;
        let prev = match existing.last() {
            Some(last) => hex::encode(Sha256::digest(last.line()?)),
            None => GENESIS.to_string(),
        };
        let entry = LogEntry {
            seq: existing.len() as u64 + 1,
            time: clock.now(),
            key_fingerprint: record.key_fingerprint,
            package_sha256: record.package_sha256,
            version: record.version,
            hosts: record.hosts,
            prev,
        };
        let mut line = entry.line()?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        file.write_all(&line)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn record(n: u8) -> LogRecord {
        LogRecord {
            key_fingerprint: "ab".repeat(32),
            package_sha256: format!("{n:02x}").repeat(32),
            version: u64::from(n),
            hosts: vec![format!("host{n}")],
        }
    }

    #[test]
    fn chain_verifies_and_detects_changes() {
        let dir = tempfile::tempdir().unwrap();
        let log = SigningLog::new(dir.path().join("signing.log"));
        assert!(log.verify().unwrap().is_empty());
        for n in 1..=3 {
            let e = log
                .append(record(n), &FixedClock(1000 + i64::from(n)))
                .unwrap();
            assert_eq!(e.seq, u64::from(n));
        }
        let entries = log.verify().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].prev, GENESIS);
        let text = fs::read_to_string(log.path()).unwrap();

        // Changing an old entry (host1 -> host9) breaks the chain at the next line.
        fs::write(log.path(), text.replacen("host1", "host9", 1)).unwrap();
        assert!(matches!(
            log.verify(),
            Err(Error::LogChainBroken { line: 2, .. })
        ));
        // Removing an entry breaks it too.
        let without_first: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
        fs::write(log.path(), without_first).unwrap();
        assert!(matches!(
            log.verify(),
            Err(Error::LogChainBroken { line: 1, .. })
        ));
        // A broken log refuses appends.
        assert!(log.append(record(4), &FixedClock(2000)).is_err());
        fs::write(log.path(), &text).unwrap();
        log.append(record(4), &FixedClock(2000)).unwrap();
        assert_eq!(log.verify().unwrap().len(), 4);
    }
}
