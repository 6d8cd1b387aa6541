//! Hardened update metadata (beyond Checkmk, spec requirements 29-34).
//!
//! A TUF-like scheme reduced to what an agent updater needs:
//!
//! * **root** (offline keys) names the keys and thresholds of the three roles
//!   and is rotated one version at a time, each new version signed by a
//!   threshold of the old **and** of the new root keys;
//! * **targets** (offline keys) binds one package to one host and platform:
//!   `{host_name, platform, aghash, sha256, length, version, issued_at, expires}`;
//! * **timestamp** (the only online key) is short-lived and names the current
//!   targets version and hash, so a server that stops updating is detected.
//!
//! Every document is an envelope `{"signed": {...}, "signatures": [{"keyid",
//! "sig"}]}`; the signature covers the [canonical JSON](crate::to_canonical_json)
//! of `signed`. Key ids are the hex SHA-256 of the key's DER
//! `SubjectPublicKeyInfo`, and a root whose key id does not match its key is
//! rejected, so one key can never be counted twice towards a threshold.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::canonical::to_canonical_json;
use crate::cert::{KeyType, PublicKey};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::key::PrivateKey;

/// One signature in a metadata envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSignature {
    /// Hex SHA-256 of the signer's `SubjectPublicKeyInfo`.
    pub keyid: String,
    /// The signature over the canonical `signed` part, base64.
    pub sig: String,
}

/// A signed metadata document: the `signed` JSON value exactly as received, and
/// its signatures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedDocument {
    /// The signed content.
    pub signed: Value,
    /// The signatures, in any order.
    pub signatures: Vec<MetaSignature>,
}

/// The maximum size of a metadata document we parse (64 KiB, requirement 32).
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

impl SignedDocument {
    /// Wraps `content` (a [`Root`], [`Targets`] or [`Timestamp`]) unsigned.
    pub fn new<T: Serialize>(content: &T) -> Result<Self> {
        let signed = serde_json::to_value(content)
            .map_err(|e| Error::Metadata(format!("serializing: {e}")))?;
        to_canonical_json(&signed)?; // refuse what cannot be signed
        Ok(SignedDocument {
            signed,
            signatures: Vec::new(),
        })
    }

    /// Parses an envelope (at most [`MAX_METADATA_BYTES`]).
    pub fn from_json(text: &str) -> Result<Self> {
        if text.len() > MAX_METADATA_BYTES {
            return Err(Error::Metadata(format!(
                "document of {} bytes exceeds the limit of {MAX_METADATA_BYTES}",
                text.len()
            )));
        }
        serde_json::from_str(text).map_err(|e| Error::Metadata(e.to_string()))
    }

    /// The envelope as canonical JSON (stable bytes on disk and on the wire).
    pub fn to_json(&self) -> Result<String> {
        let value =
            serde_json::to_value(self).map_err(|e| Error::Metadata(format!("serializing: {e}")))?;
        String::from_utf8(to_canonical_json(&value)?)
            .map_err(|e| Error::Metadata(format!("canonical JSON is not UTF-8: {e}")))
    }

    /// The bytes the signatures cover.
    pub fn canonical_signed(&self) -> Result<Vec<u8>> {
        to_canonical_json(&self.signed)
    }

    /// SHA-256 (hex) of the canonical `signed` part: what a timestamp names.
    pub fn signed_sha256(&self) -> Result<String> {
        Ok(hex::encode(Sha256::digest(self.canonical_signed()?)))
    }

    /// Adds a signature by `key`; an earlier signature by the same key is replaced.
    pub fn sign(&mut self, key: &PrivateKey) -> Result<()> {
        let sig = STANDARD.encode(key.sign(&self.canonical_signed()?)?);
        let keyid = key.public_key().key_id();
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(MetaSignature { keyid, sig });
        Ok(())
    }

    /// The `_type` of the signed content.
    pub fn kind(&self) -> Option<&str> {
        self.signed.get("_type").and_then(Value::as_str)
    }

    fn content<T: DeserializeOwned>(&self, role: &str) -> Result<T> {
        if self.kind() != Some(role) {
            return Err(Error::Metadata(format!(
                "expected {role} metadata, got {:?}",
                self.kind().unwrap_or("no _type")
            )));
        }
        T::deserialize(&self.signed).map_err(|e| Error::Metadata(format!("{role}: {e}")))
    }

    /// Counts distinct keys of `role` with a valid signature.
    fn count_valid(&self, role: &RoleKeys, keys: &BTreeMap<String, PublicKey>) -> Result<usize> {
        let message = self.canonical_signed()?;
        let mut valid = BTreeSet::new();
        for s in &self.signatures {
            if valid.contains(&s.keyid) || !role.keyids.contains(&s.keyid) {
                continue;
            }
            let Some(key) = keys.get(&s.keyid) else {
                continue;
            };
            let Ok(raw) = STANDARD.decode(&s.sig) else {
                continue;
            };
            if key.verify(&message, &raw) {
                valid.insert(s.keyid.clone());
            }
        }
        Ok(valid.len())
    }

    fn require_threshold(
        &self,
        role_name: &str,
        role: &RoleKeys,
        keys: &BTreeMap<String, PublicKey>,
    ) -> Result<()> {
        let valid = self.count_valid(role, keys)?;
        let threshold = role.threshold as usize;
        if valid < threshold {
            return Err(Error::ThresholdNotMet {
                role: role_name.to_string(),
                valid,
                threshold,
            });
        }
        Ok(())
    }
}

/// A public key as listed in a root document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaKey {
    /// `rsa` or `ed25519`.
    pub keytype: KeyType,
    /// The DER `SubjectPublicKeyInfo`, base64.
    pub public_key: String,
}

impl MetaKey {
    /// Lists `key`; returns its key id and the entry.
    pub fn from_public(key: &PublicKey) -> (String, MetaKey) {
        (
            key.key_id(),
            MetaKey {
                keytype: key.key_type(),
                public_key: STANDARD.encode(key.spki_der()),
            },
        )
    }

    /// The parsed public key.
    pub fn public(&self) -> Result<PublicKey> {
        let der = STANDARD
            .decode(&self.public_key)
            .map_err(|e| Error::Metadata(format!("public key is not base64: {e}")))?;
        let key = PublicKey::from_spki_der(&der)?;
        if key.key_type() != self.keytype {
            return Err(Error::Metadata("keytype does not match the key".into()));
        }
        Ok(key)
    }
}

/// The keys of one role and how many of them must sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleKeys {
    /// Key ids (see [`PublicKey::key_id`]).
    pub keyids: Vec<String>,
    /// Signatures of distinct keys needed (k of n, at least 1).
    pub threshold: u32,
}

/// The roles a root document delegates to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// Who may sign the next root.
    pub root: RoleKeys,
    /// Who may sign targets (package) metadata; offline keys.
    pub targets: RoleKeys,
    /// Who may sign timestamps; the one online key.
    pub timestamp: RoleKeys,
}

/// The root of trust: keys and thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    /// Always `root`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// Increases by exactly one per rotation.
    pub version: u64,
    /// Unix seconds after which this root is no longer trusted.
    pub expires: i64,
    /// All keys by key id.
    pub keys: BTreeMap<String, MetaKey>,
    /// The roles.
    pub roles: Roles,
}

impl Root {
    /// A root document (`_type` = `root`).
    pub fn new(version: u64, expires: i64, keys: BTreeMap<String, MetaKey>, roles: Roles) -> Self {
        Root {
            kind: "root".into(),
            version,
            expires,
            keys,
            roles,
        }
    }

    /// Checks the document and returns its parsed keys.
    fn validate(&self) -> Result<BTreeMap<String, PublicKey>> {
        let mut parsed = BTreeMap::new();
        for (id, key) in &self.keys {
            let public = key.public()?;
            if public.key_id() != *id {
                return Err(Error::Metadata(format!(
                    "root lists key {id} under an id that is not its SHA-256"
                )));
            }
            parsed.insert(id.clone(), public);
        }
        for (name, role) in [
            ("root", &self.roles.root),
            ("targets", &self.roles.targets),
            ("timestamp", &self.roles.timestamp),
        ] {
            let distinct: BTreeSet<&String> = role.keyids.iter().collect();
            if role.threshold == 0 || role.threshold as usize > distinct.len() {
                return Err(Error::Metadata(format!(
                    "{name} role: threshold {} with {} distinct key(s)",
                    role.threshold,
                    distinct.len()
                )));
            }
            if let Some(missing) = role.keyids.iter().find(|k| !self.keys.contains_key(*k)) {
                return Err(Error::Metadata(format!(
                    "{name} role names unknown key {missing}"
                )));
            }
        }
        Ok(parsed)
    }
}

/// Signed targets metadata: one package for one host and platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Always `targets`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// Monotonically increasing per host and platform.
    pub version: u64,
    /// Unix seconds of signing.
    pub issued_at: i64,
    /// Unix seconds after which the document is refused (freeze protection).
    pub expires: i64,
    /// The host this package is for.
    pub host_name: String,
    /// The package platform (`linux_deb`, `linux_rpm`, `windows_msi`, ...).
    pub platform: String,
    /// The server's name for the package (Checkmk's 16-hex `aghash`); the
    /// updater records this verified value as `installed_aghash`.
    pub aghash: String,
    /// SHA-256 of the package, lower-case hex.
    pub sha256: String,
    /// Length of the package in bytes (download cut-off).
    pub length: u64,
}

impl Targets {
    /// Describes `package` for `host_name`/`platform`.
    pub fn for_package(
        package: &[u8],
        host_name: &str,
        platform: &str,
        aghash: &str,
        version: u64,
        issued_at: i64,
        expires: i64,
    ) -> Self {
        Targets {
            kind: "targets".into(),
            version,
            issued_at,
            expires,
            host_name: host_name.into(),
            platform: platform.into(),
            aghash: aghash.into(),
            sha256: hex::encode(Sha256::digest(package)),
            length: package.len() as u64,
        }
    }

    /// Checks downloaded bytes against the signed length and SHA-256.
    pub fn check_package(&self, package: &[u8]) -> Result<()> {
        self.check_digest(&crate::PackageDigest::of(package))
    }

    /// [`check_package`](Self::check_package) on a package's digest (hashed while it was read).
    pub fn check_digest(&self, digest: &crate::PackageDigest) -> Result<()> {
        if digest.length() != self.length {
            return Err(Error::HashMismatch(format!(
                "package has {} bytes, metadata says {}",
                digest.length(),
                self.length
            )));
        }
        let got = digest.sha256_hex();
        if !got.eq_ignore_ascii_case(&self.sha256) {
            return Err(Error::HashMismatch(format!(
                "package SHA-256 is {got}, metadata says {}",
                self.sha256
            )));
        }
        Ok(())
    }
}

/// Signed timestamp: names the current targets document; short-lived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timestamp {
    /// Always `timestamp`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// Monotonically increasing.
    pub version: u64,
    /// Unix seconds of signing.
    pub issued_at: i64,
    /// Unix seconds after which the document is refused (e.g. 24 h after signing).
    pub expires: i64,
    /// The targets version it vouches for.
    pub targets_version: u64,
    /// [`SignedDocument::signed_sha256`] of that targets document.
    pub targets_sha256: String,
}

impl Timestamp {
    /// A timestamp for `targets`.
    pub fn for_targets(
        targets: &SignedDocument,
        version: u64,
        issued_at: i64,
        expires: i64,
    ) -> Result<Self> {
        let t: Targets = targets.content("targets")?;
        Ok(Timestamp {
            kind: "timestamp".into(),
            version,
            issued_at,
            expires,
            targets_version: t.version,
            targets_sha256: targets.signed_sha256()?,
        })
    }
}

fn check_expiry(role: &str, expires: i64, clock: &dyn Clock) -> Result<()> {
    let now = clock.now();
    if now >= expires {
        return Err(Error::Expired {
            role: role.into(),
            expires,
            now,
        });
    }
    Ok(())
}

/// The root a client trusts, updated only through [`TrustedRoot::update`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedRoot {
    root: Root,
    keys: BTreeMap<String, PublicKey>,
    document: SignedDocument,
}

impl TrustedRoot {
    /// Trusts an initial root (shipped with the agent). It must be well-formed and
    /// signed by a threshold of its own root keys; its expiry is checked when it is
    /// used.
    pub fn bootstrap(document: &SignedDocument) -> Result<Self> {
        let root: Root = document.content("root")?;
        let keys = root.validate()?;
        document.require_threshold("root", &root.roles.root, &keys)?;
        Ok(TrustedRoot {
            root,
            keys,
            document: document.clone(),
        })
    }

    /// Applies the next root version: it must be exactly `current + 1` and be
    /// signed by a threshold of the current root keys **and** a threshold of its
    /// own root keys. Expiry is not checked for intermediate roots (as in TUF);
    /// it is checked when the root is used.
    pub fn update(&mut self, next: &SignedDocument) -> Result<()> {
        let new: Root = next.content("root")?;
        if new.version != self.root.version.saturating_add(1) {
            return Err(Error::RootVersion {
                current: self.root.version,
                offered: new.version,
            });
        }
        let new_keys = new.validate()?;
        next.require_threshold("root (current keys)", &self.root.roles.root, &self.keys)?;
        next.require_threshold("root (new keys)", &new.roles.root, &new_keys)?;
        self.root = new;
        self.keys = new_keys;
        self.document = next.clone();
        Ok(())
    }

    /// The trusted root content.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The signed document it came from (to persist).
    pub fn document(&self) -> &SignedDocument {
        &self.document
    }

    /// Verifies targets metadata for `host_name`/`platform` (requirements 29, 30,
    /// 33): root not expired, threshold of the targets role, `_type`, not
    /// expired, host and platform match, and no rollback against `state`.
    /// `state` is **not** changed; call [`RollbackState::accept`] once the
    /// package has been checked.
    pub fn verify_targets(
        &self,
        document: &SignedDocument,
        host_name: &str,
        platform: &str,
        state: &RollbackState,
        clock: &dyn Clock,
    ) -> Result<Targets> {
        check_expiry("root", self.root.expires, clock)?;
        let targets: Targets = document.content("targets")?;
        document.require_threshold("targets", &self.root.roles.targets, &self.keys)?;
        check_expiry("targets", targets.expires, clock)?;
        if targets.host_name != host_name || targets.platform != platform {
            return Err(Error::WrongTarget {
                host: host_name.into(),
                platform: platform.into(),
                got_host: targets.host_name,
                got_platform: targets.platform,
            });
        }
        state.check_targets(&targets)?;
        Ok(targets)
    }

    /// Verifies a timestamp against the targets document it must name
    /// (requirement 31): threshold of the timestamp role, not expired, no
    /// timestamp rollback, and the targets version and hash match.
    pub fn verify_timestamp(
        &self,
        timestamp: &SignedDocument,
        targets: &SignedDocument,
        state: &RollbackState,
        clock: &dyn Clock,
    ) -> Result<Timestamp> {
        check_expiry("root", self.root.expires, clock)?;
        let ts: Timestamp = timestamp.content("timestamp")?;
        timestamp.require_threshold("timestamp", &self.root.roles.timestamp, &self.keys)?;
        check_expiry("timestamp", ts.expires, clock)?;
        if ts.version < state.timestamp_version {
            return Err(Error::Rollback {
                role: "timestamp".into(),
                offered: ts.version,
                stored: state.timestamp_version,
                detail: String::new(),
            });
        }
        let t: Targets = targets.content("targets")?;
        if ts.targets_version != t.version || ts.targets_sha256 != targets.signed_sha256()? {
            return Err(Error::HashMismatch(format!(
                "timestamp names targets version {} ({}), not the offered version {}",
                ts.targets_version, ts.targets_sha256, t.version
            )));
        }
        Ok(ts)
    }
}

/// The client's persistent memory against rollback: the highest accepted
/// targets version (and its package hash) per host and platform, and the
/// highest timestamp version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackState {
    /// `"<host>/<platform>"` → last accepted targets.
    #[serde(default)]
    pub targets: BTreeMap<String, AcceptedTargets>,
    /// Highest accepted timestamp version.
    #[serde(default)]
    pub timestamp_version: u64,
}

/// What was accepted for one host and platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedTargets {
    /// The targets version.
    pub version: u64,
    /// The package SHA-256 it named.
    pub sha256: String,
}

impl RollbackState {
    fn slot(host_name: &str, platform: &str) -> String {
        format!("{host_name}/{platform}")
    }

    /// Rejects a lower version, or the same version naming another package.
    pub fn check_targets(&self, targets: &Targets) -> Result<()> {
        let Some(seen) = self
            .targets
            .get(&Self::slot(&targets.host_name, &targets.platform))
        else {
            return Ok(());
        };
        if targets.version < seen.version {
            return Err(Error::Rollback {
                role: "targets".into(),
                offered: targets.version,
                stored: seen.version,
                detail: String::new(),
            });
        }
        if targets.version == seen.version && !targets.sha256.eq_ignore_ascii_case(&seen.sha256) {
            return Err(Error::Rollback {
                role: "targets".into(),
                offered: targets.version,
                stored: seen.version,
                detail: " with a different package hash".into(),
            });
        }
        Ok(())
    }

    /// Records verified targets (after the package matched them).
    pub fn accept(&mut self, targets: &Targets) {
        self.targets.insert(
            Self::slot(&targets.host_name, &targets.platform),
            AcceptedTargets {
                version: targets.version,
                sha256: targets.sha256.to_ascii_lowercase(),
            },
        );
    }

    /// Records a verified timestamp.
    pub fn accept_timestamp(&mut self, timestamp: &Timestamp) {
        self.timestamp_version = self.timestamp_version.max(timestamp.version);
    }
}
