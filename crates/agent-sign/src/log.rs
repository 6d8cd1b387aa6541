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
    /// The agent hash the package is served under when it is not the package's own hash
    /// (the Agent Bakery's configuration hash); absent in entries written without one, so
    /// older logs keep verifying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_hash: Option<String>,
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
    /// The agent hash the package is served under, when it is not the first 16 hex
    /// characters of `package_sha256` (Agent Bakery packages).
    pub agent_hash: Option<String>,
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
        let mut entries = self.append_all(vec![record], clock)?;
        entries
            .pop()
            .ok_or_else(|| Error::Metadata("signing log: nothing appended".into()))
    }

    /// Appends several records with one check of the chain, one write and one flush (a bake
    /// signs many packages at once). Nothing is written when the chain is broken.
    pub fn append_all(&self, records: Vec<LogRecord>, clock: &dyn Clock) -> Result<Vec<LogEntry>> {
        let existing = self.verify()?;
        let mut prev = match existing.last() {
            Some(last) => hex::encode(Sha256::digest(last.line()?)),
            None => GENESIS.to_string(),
        };
        let time = clock.now();
        let mut text = Vec::new();
        let mut appended = Vec::with_capacity(records.len());
        for (seq, record) in (existing.len() as u64 + 1..).zip(records) {
            let entry = LogEntry {
                seq,
                time,
                key_fingerprint: record.key_fingerprint,
                package_sha256: record.package_sha256,
                version: record.version,
                hosts: record.hosts,
                agent_hash: record.agent_hash,
                prev,
            };
            let line = entry.line()?;
            prev = hex::encode(Sha256::digest(&line));
            text.extend_from_slice(&line);
            text.push(b'\n');
            appended.push(entry);
        }
        if appended.is_empty() {
            return Ok(appended);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(appended)
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
            agent_hash: None,
        }
    }

    #[test]
    fn append_all_chains_every_record_and_keeps_the_agent_hash() {
        let dir = tempfile::tempdir().unwrap();
        let log = SigningLog::new(dir.path().join("signing.log"));
        log.append(record(1), &FixedClock(1000)).unwrap();
        let mut baked = record(2);
        baked.agent_hash = Some("0123456789abcdef".into());
        let appended = log
            .append_all(vec![baked, record(3)], &FixedClock(2000))
            .unwrap();
        assert_eq!(
            appended.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![2, 3]
        );
        let entries = log.verify().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].agent_hash.as_deref(), Some("0123456789abcdef"));
        assert_eq!(entries[2].agent_hash, None);
        // The second record chains to the first one of the same call.
        let text = fs::read_to_string(log.path()).unwrap();
        let second = text.lines().nth(1).unwrap();
        assert_eq!(
            entries[2].prev,
            hex::encode(Sha256::digest(second.as_bytes()))
        );
        assert!(
            log.append_all(Vec::new(), &FixedClock(3000))
                .unwrap()
                .is_empty()
        );
        assert_eq!(fs::read_to_string(log.path()).unwrap(), text);
    }

    #[test]
    fn an_unreadable_log_is_an_error_not_an_empty_log() {
        // Only a missing file is an empty log; a log that cannot be read (here a directory)
        // must not verify as "no entries", nor take appends.
        let dir = tempfile::tempdir().unwrap();
        let log = SigningLog::new(dir.path());
        assert!(matches!(log.verify(), Err(Error::Io { .. })));
        assert!(log.append(record(1), &FixedClock(1)).is_err());
    }

    #[test]
    fn lines_without_an_agent_hash_keep_their_bytes() {
        // An entry as written before `agent_hash` existed: it must still verify, and a new
        // entry must chain to it.
        let old = r#"{"hosts":["web"],"key_fingerprint":"ab","package_sha256":"cd","prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":1,"time":5,"version":0}"#;
        let dir = tempfile::tempdir().unwrap();
        let log = SigningLog::new(dir.path().join("signing.log"));
        fs::write(log.path(), format!("{old}\n")).unwrap();
        assert_eq!(log.verify().unwrap().len(), 1);
        let e = log.append(record(2), &FixedClock(6)).unwrap();
        assert_eq!(e.prev, hex::encode(Sha256::digest(old.as_bytes())));
        assert!(
            !fs::read_to_string(log.path())
                .unwrap()
                .contains("agent_hash")
        );
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
