//! A directory of signature keys, like Checkmk's key management page.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cert::{Certificate, KeyType, Subject};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::key::PrivateKey;
use crate::metadata::{Root, SignedDocument};
use crate::passphrase::{KdfParams, Passphrase};

/// Validity of the certificates we create (Checkmk 2.5, werk 17102).
pub const CERT_VALIDITY_YEARS: u8 = 10;

/// Name of the subdirectory whose files are trust configurations the store
/// knows of (PEM bundles of trusted certificates, root metadata JSON). A key
/// they reference cannot be deleted.
pub const TRUSTED_DIR: &str = "trusted";

/// The on-disk record of one key (`<id>.json`), mirroring Checkmk's fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    id: u64,
    alias: String,
    owner: String,
    /// Creation time, Unix seconds (the certificate's `not_before`).
    date: i64,
    key_type: KeyType,
    certificate: String,
    private_key: String,
}

/// One key of the store: its metadata and certificate. The private key stays
/// encrypted until [`KeyStore::unlock`].
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// Numeric id (max + 1 at creation, as Checkmk does).
    pub id: u64,
    /// Description.
    pub alias: String,
    /// The user who created or imported it.
    pub owner: String,
    /// Creation time, Unix seconds.
    pub date: i64,
    /// RSA or Ed25519.
    pub key_type: KeyType,
    /// The self-signed certificate.
    pub certificate: Certificate,
    encrypted_key: String,
}

impl KeyEntry {
    /// The combined PEM of an export: encrypted key block, then certificate block.
    pub fn combined_pem(&self) -> String {
        let mut out = self.encrypted_key.clone();
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&self.certificate.to_pem());
        out
    }

    /// The encrypted private key PEM as stored.
    pub fn encrypted_key_pem(&self) -> &str {
        &self.encrypted_key
    }
}

/// What a new key looks like.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Description, also the certificate's CN.
    pub alias: String,
    /// Creating user, the certificate's OU.
    pub owner: String,
    /// Site id, the certificate's O (`Checkmk Site <site>`).
    pub site: String,
    /// RSA-4096 (packages, Checkmk) or Ed25519 (our metadata only).
    pub key_type: KeyType,
}

/// A trust configuration that references keys (an updater's trusted
/// certificates, or a metadata root).
#[derive(Debug, Clone, Default)]
pub struct KnownTrust {
    /// Where it comes from (a file name), for the error message.
    pub name: String,
    /// SHA-256 of trusted certificate DERs.
    pub certificates: Vec<[u8; 32]>,
    /// Trusted metadata key ids.
    pub key_ids: Vec<String>,
}

impl KnownTrust {
    /// From a PEM bundle of trusted certificates.
    pub fn from_pem_bundle(name: &str, text: &str) -> Result<Self> {
        Ok(KnownTrust {
            name: name.into(),
            certificates: Certificate::all_from_pem(text)?
                .iter()
                .map(Certificate::sha256)
                .collect(),
            key_ids: Vec::new(),
        })
    }

    /// From a root metadata document (every key it lists).
    pub fn from_root(name: &str, root: &Root) -> Self {
        KnownTrust {
            name: name.into(),
            certificates: Vec::new(),
            key_ids: root.keys.keys().cloned().collect(),
        }
    }

    fn references(&self, cert: &Certificate) -> bool {
        self.certificates.contains(&cert.sha256())
            || self.key_ids.contains(&cert.public_key().key_id())
    }
}

/// A key store directory: one `<id>.json` per key (mode 0600), and a
/// [`TRUSTED_DIR`] subdirectory of trust configurations.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// Opens an existing store directory, for the commands that only read it or
    /// change existing keys: a missing path or one that is not a directory is
    /// [`Error::NoStore`], and nothing is created (a typo in a path must not
    /// leave an empty store behind). [`KeyStore::open`] creates it.
    pub fn open_existing(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        match fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(KeyStore { dir }),
            Ok(_) => Err(Error::NoStore {
                path: dir,
                reason: "it is not a directory",
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NoStore {
                path: dir,
                reason: "it does not exist (`key create` or `key import` creates it)",
            }),
            Err(e) => Err(Error::io(&dir, e)),
        }
    }

    /// Opens the store directory, creating it (mode 0700) if it does not exist:
    /// for the commands that add a key.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(&dir, e))?;
        }
        Ok(KeyStore { dir })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// All keys, by id.
    pub fn list(&self) -> Result<Vec<KeyEntry>> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Ok(id) = stem.parse::<u64>() {
                out.push(self.get(id)?);
            }
        }
        out.sort_by_key(|k| k.id);
        Ok(out)
    }

    /// One key.
    pub fn get(&self, id: u64) -> Result<KeyEntry> {
        let path = self.path(id);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::KeyNotFound(id));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let r: Record = serde_json::from_str(&text)
            .map_err(|e| Error::Metadata(format!("{}: {e}", path.display())))?;
        Ok(KeyEntry {
            id: r.id,
            alias: r.alias,
            owner: r.owner,
            date: r.date,
            key_type: r.key_type,
            certificate: Certificate::from_pem(&r.certificate)?,
            encrypted_key: r.private_key,
        })
    }

    /// Creates a key: checks the passphrase rules, generates the key,
    /// self-signs a certificate valid for [`CERT_VALIDITY_YEARS`], and stores
    /// the key encrypted with `kdf`.
    pub fn create(
        &self,
        new: &NewKey,
        passphrase: &Passphrase,
        kdf: KdfParams,
        clock: &dyn Clock,
    ) -> Result<KeyEntry> {
        passphrase.check_new()?;
        let key = match new.key_type {
            KeyType::Rsa => PrivateKey::generate_rsa()?,
            KeyType::Ed25519 => PrivateKey::generate_ed25519()?,
        };
        let subject = Subject {
            alias: new.alias.clone(),
            owner: new.owner.clone(),
            site: new.site.clone(),
        };
        let cert = Certificate::self_signed(&key, &subject, CERT_VALIDITY_YEARS, clock)?;
        let encrypted = key.to_encrypted_pem(passphrase, kdf)?;
        drop(key);
        tracing::info!(alias = %new.alias, "certificate created");
        self.insert(&new.alias, &new.owner, cert.not_before(), cert, encrypted)
    }

    /// Imports a combined PEM (encrypted key + certificate) as exported by
    /// Checkmk, by [`KeyStore::export`], or assembled from OpenSSL output.
    ///
    /// Decrypting proves the passphrase; the key must match the certificate;
    /// a certificate already in the store is refused with Checkmk's message.
    /// The key is stored re-encrypted with `kdf` (imports from Checkmk carry only
    /// 2048 iterations).
    pub fn import(
        &self,
        combined_pem: &str,
        alias: &str,
        owner: &str,
        passphrase: &Passphrase,
        kdf: KdfParams,
    ) -> Result<KeyEntry> {
        let key = PrivateKey::from_encrypted_pem(combined_pem, passphrase)?;
        let cert = Certificate::from_pem(combined_pem)?;
        if !key.matches(&cert) {
            return Err(Error::KeyCertificateMismatch);
        }
        let digest = cert.md5_digest();
        if let Some(existing) = self
            .list()?
            .into_iter()
            .find(|k| k.certificate.md5_digest() == digest)
        {
            return Err(Error::DuplicateKey {
                id: existing.id,
                alias: existing.alias,
            });
        }
        let encrypted = key.to_encrypted_pem(passphrase, kdf)?;
        drop(key);
        tracing::info!(alias, "certificate uploaded");
        self.insert(alias, owner, cert.not_before(), cert, encrypted)
    }

    /// The combined PEM of key `id` (encrypted key, then certificate). The
    /// passphrase is required and checked, as in Checkmk, though the key stays
    /// encrypted.
    pub fn export(&self, id: u64, passphrase: &Passphrase) -> Result<String> {
        let entry = self.get(id)?;
        PrivateKey::from_encrypted_pem(&entry.encrypted_key, passphrase)?;
        Ok(entry.combined_pem())
    }

    /// Decrypts key `id` for signing.
    pub fn unlock(&self, id: u64, passphrase: &Passphrase) -> Result<(PrivateKey, KeyEntry)> {
        let entry = self.get(id)?;
        let key = PrivateKey::from_encrypted_pem(&entry.encrypted_key, passphrase)?;
        if !key.matches(&entry.certificate) {
            return Err(Error::KeyCertificateMismatch);
        }
        Ok((key, entry))
    }

    /// The trust configurations the store knows of: every file in its
    /// [`TRUSTED_DIR`] (`*.pem` bundles and `*.json` root metadata).
    pub fn known_trust(&self) -> Result<Vec<KnownTrust>> {
        let dir = self.dir.join(TRUSTED_DIR);
        let mut out = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            let name = path.display().to_string();
            match path.extension().and_then(|e| e.to_str()) {
                Some("pem" | "crt") => {
                    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                    out.push(KnownTrust::from_pem_bundle(&name, &text)?);
                }
                Some("json") => {
                    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                    let doc = SignedDocument::from_json(&text)?;
                    let root: Root = serde_json::from_value(doc.signed)
                        .map_err(|e| Error::Metadata(format!("{name}: {e}")))?;
                    out.push(KnownTrust::from_root(&name, &root));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Key `id`, if it may be deleted: no known trust configuration (the
    /// store's [`TRUSTED_DIR`] or `also_check`) references it, else "This key is
    /// still used." ([`Error::KeyInUse`]). Changes nothing.
    pub fn check_deletable(&self, id: u64, also_check: &[KnownTrust]) -> Result<KeyEntry> {
        let entry = self.get(id)?;
        let known = self.known_trust()?;
        if let Some(t) = known
            .iter()
            .chain(also_check)
            .find(|t| t.references(&entry.certificate))
        {
            return Err(Error::KeyInUse {
                used_by: t.name.clone(),
            });
        }
        Ok(entry)
    }

    /// Deletes key `id`: only with its passphrase ([`Error::WrongPassphrase`]
    /// otherwise), and only if [`KeyStore::check_deletable`] allows it.
    pub fn delete(
        &self,
        id: u64,
        passphrase: &Passphrase,
        also_check: &[KnownTrust],
    ) -> Result<()> {
        let entry = self.check_deletable(id, also_check)?;
        PrivateKey::from_encrypted_pem(&entry.encrypted_key, passphrase)?;
        let path = self.path(id);
        fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        tracing::info!(id, alias = %entry.alias, "certificate removed");
        Ok(())
    }

    fn insert(
        &self,
        alias: &str,
        owner: &str,
        date: i64,
        certificate: Certificate,
        encrypted_key: String,
    ) -> Result<KeyEntry> {
        let mut id = self.list()?.last().map_or(1, |k| k.id + 1);
        loop {
            let record = Record {
                id,
                alias: alias.into(),
                owner: owner.into(),
                date,
                key_type: certificate.public_key().key_type(),
                certificate: certificate.to_pem(),
                private_key: encrypted_key.clone(),
            };
            let json = serde_json::to_string_pretty(&record)
                .map_err(|e| Error::Metadata(format!("serializing key record: {e}")))?;
            match write_new_private(&self.dir, &self.path(id), json.as_bytes()) {
                Ok(()) => break,
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    id += 1; // a concurrent writer took this id
                }
                Err(e) => return Err(e),
            }
        }
        Ok(KeyEntry {
            id,
            alias: alias.into(),
            owner: owner.into(),
            date,
            key_type: certificate.public_key().key_type(),
            certificate,
            encrypted_key,
        })
    }
}

/// Writes `bytes` to a new file `path` atomically, mode 0600; fails with
/// `AlreadyExists` if `path` exists.
fn write_new_private(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist_noclobber(path)
        .map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    #[test]
    fn a_key_block_without_its_last_line_break_gets_one() {
        let key = PrivateKey::generate_ed25519().unwrap();
        let subject = Subject {
            alias: "a".into(),
            owner: "o".into(),
            site: "s".into(),
        };
        let certificate = Certificate::self_signed(&key, &subject, 1, &FixedClock(0)).unwrap();
        let entry = |encrypted_key: &str| KeyEntry {
            id: 1,
            alias: "a".into(),
            owner: "o".into(),
            date: 0,
            key_type: KeyType::Ed25519,
            certificate: certificate.clone(),
            encrypted_key: encrypted_key.into(),
        };
        let with = entry("KEY\n").combined_pem();
        assert_eq!(with, format!("KEY\n{}", certificate.to_pem()));
        assert_eq!(entry("KEY").combined_pem(), with);
    }
}
