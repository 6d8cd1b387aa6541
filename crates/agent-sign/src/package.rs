//! Package signatures as Checkmk makes and checks them.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::cert::{Certificate, KeyType};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::key::PrivateKey;

/// One signature of a package, exactly as Checkmk carries it on the wire
/// (`Signatures: [{"certificate": <PEM>, "signature": <base64>}]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageSignature {
    /// The signer's certificate, PEM.
    pub certificate: String,
    /// RSASSA-PKCS1-v1_5/SHA-256 over the exact package bytes, base64.
    pub signature: String,
}

/// Buffer of [`PackageDigest::read_from`]: memory stays this small whatever the package size.
pub const DIGEST_BUFFER_BYTES: usize = 64 * 1024;

/// What a package signature covers: the SHA-256 and length of the package, computed in one
/// pass so that a package of any size is checked with a bounded buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageDigest {
    sha256: [u8; 32],
    length: u64,
}

impl PackageDigest {
    /// The digest of bytes in memory.
    pub fn of(package: &[u8]) -> PackageDigest {
        PackageDigest {
            sha256: Sha256::digest(package).into(),
            length: package.len() as u64,
        }
    }

    /// Hashes everything `reader` yields, [`DIGEST_BUFFER_BYTES`] at a time.
    pub fn read_from(reader: &mut impl Read) -> io::Result<PackageDigest> {
        PackageDigest::copy(reader, &mut io::sink())
    }

    /// Copies everything `reader` yields into `writer` and hashes it on the way, in one pass
    /// through a buffer of [`DIGEST_BUFFER_BYTES`]: a package written to disk as it arrives is
    /// hashed without being read back or held in memory.
    pub fn copy(reader: &mut impl Read, writer: &mut impl Write) -> io::Result<PackageDigest> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; DIGEST_BUFFER_BYTES];
        let mut length = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            writer.write_all(&buf[..n])?;
            length += n as u64;
        }
        writer.flush()?;
        Ok(PackageDigest {
            sha256: hasher.finalize().into(),
            length,
        })
    }

    /// The SHA-256.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The SHA-256 as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// The package's length in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }
}

impl PackageSignature {
    /// Whether this signature was made over the package with `digest` by the key of its own
    /// certificate (RSA PKCS#1 v1.5 with SHA-256), regardless of trust and validity dates:
    /// what a server checks before it publishes a signature list. Returns the certificate.
    pub fn check(&self, digest: &PackageDigest) -> Result<Certificate> {
        let cert = Certificate::from_pem(&self.certificate)?;
        let raw = STANDARD
            .decode(self.signature.trim())
            .map_err(|e| Error::Metadata(format!("signature is not base64: {e}")))?;
        let key = cert.public_key();
        if key.key_type() != KeyType::Rsa || !key.verify_sha256_digest(digest.sha256(), &raw) {
            return Err(Error::NoValidSignature);
        }
        Ok(cert)
    }
}

/// Signs `package` with `key` and appends the signature for `certificate` to
/// `signatures` (Checkmk: one signature per signing key, in signing order).
///
/// If `signatures` already holds a signature for the same certificate, that
/// entry is replaced in place instead of adding a duplicate. Only RSA keys sign
/// packages (Checkmk's updater verifies PKCS#1 v1.5 only); the key must match
/// the certificate.
pub fn sign_package(
    package: &[u8],
    key: &PrivateKey,
    certificate: &Certificate,
    signatures: &mut Vec<PackageSignature>,
) -> Result<()> {
    if key.key_type() != KeyType::Rsa {
        return Err(Error::UnsupportedKey(
            "packages are signed with RSA keys only (Checkmk verifies PKCS#1 v1.5)".into(),
        ));
    }
    if !key.matches(certificate) {
        return Err(Error::KeyCertificateMismatch);
    }
    let entry = PackageSignature {
        certificate: certificate.to_pem(),
        signature: STANDARD.encode(key.sign(package)?),
    };
    let same_cert = signatures.iter().position(|s| {
        Certificate::from_pem(&s.certificate).is_ok_and(|c| c.sha256() == certificate.sha256())
    });
    match same_cert {
        Some(i) => signatures[i] = entry,
        None => signatures.push(entry),
    }
    Ok(())
}

/// Reads a signature list (a JSON array of `{certificate, signature}`).
pub fn signatures_from_json(text: &str) -> Result<Vec<PackageSignature>> {
    serde_json::from_str(text).map_err(|e| Error::Metadata(format!("signature list: {e}")))
}

/// Writes a signature list as pretty JSON.
pub fn signatures_to_json(signatures: &[PackageSignature]) -> String {
    serde_json::to_string_pretty(signatures).unwrap_or_else(|_| "[]".to_string())
}

/// The certificates an updater trusts, matched by SHA-256 of their DER
/// (requirement 13) rather than by PEM text, so a CRLF or re-wrapped copy of a
/// trusted certificate still matches.
#[derive(Debug, Clone, Default)]
pub struct TrustedCertificates {
    by_sha256: HashMap<[u8; 32], Certificate>,
}

impl TrustedCertificates {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a certificate.
    pub fn add(&mut self, certificate: Certificate) {
        self.by_sha256.insert(certificate.sha256(), certificate);
    }

    /// Whether the set trusts `certificate`.
    pub fn contains(&self, certificate: &Certificate) -> bool {
        self.by_sha256.contains_key(&certificate.sha256())
    }

    /// Number of trusted certificates.
    pub fn len(&self) -> usize {
        self.by_sha256.len()
    }

    /// Whether no certificate is trusted.
    pub fn is_empty(&self) -> bool {
        self.by_sha256.is_empty()
    }

    /// The trusted certificates (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = &Certificate> {
        self.by_sha256.values()
    }
}

impl FromIterator<Certificate> for TrustedCertificates {
    fn from_iter<I: IntoIterator<Item = Certificate>>(iter: I) -> Self {
        let mut t = TrustedCertificates::new();
        for c in iter {
            t.add(c);
        }
        t
    }
}

/// Tolerance for a certificate's `not_before` in the future (as Checkmk's
/// `verify_expiry`): two hours.
pub const NOT_BEFORE_SKEW_SECONDS: i64 = 2 * 3600;

/// How [`verify_package`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// How many valid signatures from **distinct** trusted keys are needed
    /// (k of n). 1 is Checkmk's rule; 0 is treated as 1.
    pub threshold: usize,
    /// Also reject certificates whose `not_before` is more than
    /// [`NOT_BEFORE_SKEW_SECONDS`] in the future (Checkmk does not check it).
    pub check_not_before: bool,
}

impl Default for VerifyPolicy {
    /// Threshold 1, `not_before` checked.
    fn default() -> Self {
        VerifyPolicy {
            threshold: 1,
            check_not_before: true,
        }
    }
}

/// The outcome of [`verify_package`], with the log lines in Checkmk's wording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether enough valid signatures were found.
    pub accepted: bool,
    /// The log, one line per event, e.g. `Signature #2 is invalid.`.
    pub log: Vec<String>,
    /// 1-based numbers of the signatures that counted towards the threshold.
    pub valid_signatures: Vec<usize>,
    /// SHA-256 fingerprints of the certificates of those signatures.
    pub valid_certificates: Vec<String>,
}

impl VerifyReport {
    /// `Ok(self)` when accepted, else [`Error::NoValidSignature`].
    pub fn into_result(self) -> Result<Self> {
        if self.accepted {
            Ok(self)
        } else {
            Err(Error::NoValidSignature)
        }
    }
}

/// Verifies the signatures of `package` the way Checkmk's updater does after a
/// download (spec section 2, step 2, requirement 12), in list order:
///
/// 1. a certificate that does not parse: `Error loading certificate #N`;
/// 2. `not_after` in the past: `Certificate #N has expired`;
/// 3. (hardening) `not_before` more than 2 h ahead: `Certificate #N is not yet valid`;
/// 4. not trusted: `Ignoring signature #N for certificate: certificate is unknown.`;
/// 5. not RSA, or the signature does not verify: `Signature #N is invalid.`;
/// 6. valid: counted once per distinct key; when the threshold is reached,
///    `Signature check OK.` and verification stops (first success wins for k = 1).
///
/// When the list ends first, the report is not accepted and
/// [`VerifyReport::into_result`] gives `No valid signature found.`.
/// Every line is also emitted as a `tracing` event.
pub fn verify_package(
    package: &[u8],
    signatures: &[PackageSignature],
    trusted: &TrustedCertificates,
    policy: VerifyPolicy,
    clock: &dyn Clock,
) -> VerifyReport {
    verify_package_digest(
        &PackageDigest::of(package),
        signatures,
        trusted,
        policy,
        clock,
    )
}

/// [`verify_package`] on a package read from `reader` in one pass with a bounded buffer
/// ([`PackageDigest::read_from`]); fails only when reading fails.
pub fn verify_package_reader(
    reader: &mut impl Read,
    signatures: &[PackageSignature],
    trusted: &TrustedCertificates,
    policy: VerifyPolicy,
    clock: &dyn Clock,
) -> io::Result<VerifyReport> {
    let digest = PackageDigest::read_from(reader)?;
    Ok(verify_package_digest(
        &digest, signatures, trusted, policy, clock,
    ))
}

/// [`verify_package`] on a package's [`PackageDigest`].
pub fn verify_package_digest(
    digest: &PackageDigest,
    signatures: &[PackageSignature],
    trusted: &TrustedCertificates,
    policy: VerifyPolicy,
    clock: &dyn Clock,
) -> VerifyReport {
    let threshold = policy.threshold.max(1);
    let now = clock.now();
    let mut log = Vec::new();
    let mut note = |line: String, ok: bool| {
        if ok {
            tracing::info!("{line}");
        } else {
            tracing::warn!("{line}");
        }
        log.push(line);
    };
    let mut seen_keys = HashSet::new();
    let mut valid_signatures = Vec::new();
    let mut valid_certificates = Vec::new();
    for (i, sig) in signatures.iter().enumerate() {
        let n = i + 1;
        let Ok(cert) = Certificate::from_pem(&sig.certificate) else {
            note(format!("Error loading certificate #{n}"), false);
            continue;
        };
        if cert.not_after() < now {
            note(format!("Certificate #{n} has expired"), false);
            continue;
        }
        if policy.check_not_before && cert.not_before() > now + NOT_BEFORE_SKEW_SECONDS {
            note(format!("Certificate #{n} is not yet valid"), false);
            continue;
        }
        if !trusted.contains(&cert) {
            note(
                format!("Ignoring signature #{n} for certificate: certificate is unknown."),
                false,
            );
            continue;
        }
        let key = cert.public_key();
        let valid = key.key_type() == KeyType::Rsa
            && STANDARD
                .decode(sig.signature.trim())
                .is_ok_and(|raw| key.verify_sha256_digest(digest.sha256(), &raw));
        if !valid {
            note(format!("Signature #{n} is invalid."), false);
            continue;
        }
        if !seen_keys.insert(key.key_id()) {
            note(
                format!("Signature #{n} is from a key that already signed; it counts once."),
                false,
            );
            continue;
        }
        valid_signatures.push(n);
        valid_certificates.push(cert.fingerprint_sha256());
        if valid_signatures.len() >= threshold {
            note("Signature check OK.".to_string(), true);
            return VerifyReport {
                accepted: true,
                log,
                valid_signatures,
                valid_certificates,
            };
        }
    }
    if valid_signatures.len() < threshold && !valid_signatures.is_empty() {
        note(
            format!(
                "{} valid signature(s) from distinct trusted keys, {threshold} required",
                valid_signatures.len()
            ),
            false,
        );
    }
    note("No valid signature found.".to_string(), false);
    VerifyReport {
        accepted: false,
        log,
        valid_signatures,
        valid_certificates,
    }
}
