//! X.509 certificates: parsing (x509-parser), creation (rcgen), digests and expiry.

use std::fmt;

use md5::Md5;
use sha2::{Digest as _, Sha256};
use x509_parser::oid_registry::{
    OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA1WITHRSA, OID_PKCS1_SHA256WITHRSA,
    OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA, OID_SIG_ED25519,
};
use x509_parser::prelude::{FromDer as _, SubjectPublicKeyInfo, X509Certificate};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::pem;

/// The kind of a public or private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// RSA (package signatures, Checkmk-compatible).
    Rsa,
    /// Ed25519 (optional, for our hardened metadata only).
    Ed25519,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
        })
    }
}

/// A public key, as found in a certificate or derived from a private key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key_type: KeyType,
    bits: usize,
    /// The DER `SubjectPublicKeyInfo`.
    spki: Vec<u8>,
    /// The content of the SPKI's BIT STRING: PKCS#1 `RSAPublicKey` DER for RSA,
    /// the 32 raw bytes for Ed25519. This is what `ring` verifies with.
    raw: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("key_type", &self.key_type)
            .field("bits", &self.bits)
            .field("key_id", &self.key_id())
            .finish()
    }
}

impl PublicKey {
    /// Parses a DER `SubjectPublicKeyInfo` (RSA or Ed25519).
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| Error::UnsupportedKey(format!("bad SubjectPublicKeyInfo: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::UnsupportedKey(
                "trailing data after SubjectPublicKeyInfo".into(),
            ));
        }
        Self::from_parsed(&spki)
    }

    fn from_parsed(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self> {
        let oid = &spki.algorithm.algorithm;
        let raw = spki.subject_public_key.data.to_vec();
        let (key_type, bits) = if *oid == OID_PKCS1_RSAENCRYPTION {
            let bits = match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa.key_size(),
                _ => return Err(Error::UnsupportedKey("unparsable RSA public key".into())),
            };
            (KeyType::Rsa, bits)
        } else if *oid == OID_SIG_ED25519 {
            if raw.len() != 32 {
                return Err(Error::UnsupportedKey("Ed25519 key is not 32 bytes".into()));
            }
            (KeyType::Ed25519, 256)
        } else {
            return Err(Error::UnsupportedKey(format!(
                "key algorithm {oid} (only RSA and Ed25519 are supported)"
            )));
        };
        Ok(PublicKey {
            key_type,
            bits,
            spki: spki.raw.to_vec(),
            raw,
        })
    }

    /// RSA or Ed25519.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Size in bits (RSA modulus size; 256 for Ed25519).
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    pub(crate) fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The key id used by the hardened metadata: lower-case hex SHA-256 of the
    /// DER `SubjectPublicKeyInfo`.
    pub fn key_id(&self) -> String {
        hex::encode(Sha256::digest(&self.spki))
    }

    /// Verifies `signature` over `message`: RSASSA-PKCS1-v1_5 with SHA-256
    /// (2048 to 8192 bits) for RSA, pure Ed25519 for Ed25519. Uses `ring`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let alg: &dyn ring::signature::VerificationAlgorithm = match self.key_type {
            KeyType::Rsa => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            KeyType::Ed25519 => &ring::signature::ED25519,
        };
        ring::signature::UnparsedPublicKey::new(alg, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

impl PublicKey {
    /// Verifies an RSASSA-PKCS1-v1_5 `signature` whose message has the SHA-256 `digest`
    /// (2048 to 8192 bits, as [`verify`](Self::verify) accepts), so that a package can be
    /// hashed while it is read. Ed25519 signs messages, not digests: always `false`.
    pub fn verify_sha256_digest(&self, digest: &[u8; 32], signature: &[u8]) -> bool {
        use rsa::pkcs1::DecodeRsaPublicKey as _;
        /// DER `DigestInfo` prefix of a SHA-256 digest (RFC 8017, section 9.2, note 1).
        const SHA256_DIGEST_INFO: [u8; 19] = [
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ];
        if self.key_type != KeyType::Rsa || !(2048..=8192).contains(&self.bits) {
            return false;
        }
        let Ok(key) = rsa::RsaPublicKey::from_pkcs1_der(&self.raw) else {
            return false;
        };
        let scheme = rsa::Pkcs1v15Sign {
            hash_len: Some(32),
            prefix: Box::new(SHA256_DIGEST_INFO),
        };
        key.verify(scheme, digest, signature).is_ok()
    }
}

/// Where a certificate stands relative to its `not_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExpiryState {
    /// More than the warning threshold left.
    Ok,
    /// Within the warning threshold (90 days by default).
    Warn,
    /// Within the critical threshold (30 days by default) or already expired.
    Crit,
}

/// Thresholds for [`Certificate::expiry_state`], in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryThresholds {
    /// WARN when at most this many days are left.
    pub warn_days: i64,
    /// CRIT when at most this many days are left (or the certificate expired).
    pub crit_days: i64,
}

impl Default for ExpiryThresholds {
    /// WARN within 90 days, CRIT within 20 days: Checkmk's two key-expiry notices
    /// (administrators 90 days ahead, every user 20 days ahead, werk 17102).
    fn default() -> Self {
        ExpiryThresholds {
            warn_days: 90,
            crit_days: 20,
        }
    }
}

/// The subject of a signature-key certificate, as Checkmk writes it:
/// `CN=<alias>, O=Checkmk Site <site>, OU=<owner>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Common name: the key's alias.
    pub alias: String,
    /// Organizational unit: the user who owns the key.
    pub owner: String,
    /// The site id (the organization becomes `Checkmk Site <site>`).
    pub site: String,
}

/// An X.509 certificate, kept as DER, with the fields we use parsed once.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    common_name: Option<String>,
    organization: Option<String>,
    organizational_unit: Option<String>,
    serial_hex: String,
    not_before: i64,
    not_after: i64,
    signature_algorithm: String,
    public_key: PublicKey,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("common_name", &self.common_name)
            .field("sha256", &self.fingerprint_sha256())
            .finish()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Certificate {}

const SECONDS_PER_DAY: i64 = 86_400;

impl Certificate {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let (rest, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| Error::Certificate(format!("cannot parse: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::Certificate(
                "trailing data after the certificate".into(),
            ));
        }
        Self::from_parsed(der, &cert)
    }

    fn from_parsed(der: &[u8], cert: &X509Certificate<'_>) -> Result<Self> {
        fn first<'a>(
            mut it: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
        ) -> Option<String> {
            it.next()
                .and_then(|a| a.as_str().ok())
                .map(ToString::to_string)
        }
        let subject = cert.subject();
        let public_key = PublicKey::from_parsed(cert.public_key())?;
        Ok(Certificate {
            der: der.to_vec(),
            common_name: first(subject.iter_common_name()),
            organization: first(subject.iter_organization()),
            organizational_unit: first(subject.iter_organizational_unit()),
            serial_hex: hex::encode(cert.raw_serial()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            signature_algorithm: signature_algorithm_name(&cert.signature_algorithm.algorithm),
            public_key,
        })
    }

    /// Parses the first `CERTIFICATE` block of a PEM text. CRLF line ends and
    /// any line width are accepted.
    pub fn from_pem(text: &str) -> Result<Self> {
        let blocks = pem::blocks(text)?;
        let block = blocks
            .iter()
            .find(|b| b.label == "CERTIFICATE")
            .ok_or_else(|| Error::MalformedPem("no CERTIFICATE block".into()))?;
        Self::from_der(&block.der)
    }

    /// Parses every `CERTIFICATE` block of a PEM text (a bundle).
    pub fn all_from_pem(text: &str) -> Result<Vec<Self>> {
        pem::blocks(text)?
            .iter()
            .filter(|b| b.label == "CERTIFICATE")
            .map(|b| Self::from_der(&b.der))
            .collect()
    }

    /// Creates a self-signed certificate for `key` exactly as Checkmk 2.5 does
    /// (requirement 1): subject = issuer = `CN=<alias>, O=Checkmk Site <site>,
    /// OU=<owner>`, a random positive serial, `not_before` = now, `not_after` =
    /// now + `validity_years` (10 for Checkmk), BasicConstraints CA:FALSE
    /// (critical), KeyUsage digitalSignature (critical), a SubjectKeyIdentifier,
    /// signed sha512WithRSAEncryption (Ed25519 keys sign with Ed25519).
    pub fn self_signed(
        key: &crate::key::PrivateKey,
        subject: &Subject,
        validity_years: u8,
        clock: &dyn Clock,
    ) -> Result<Self> {
        use rcgen::{
            CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
            SerialNumber,
        };
        let now = clock.now();
        let not_before = time::OffsetDateTime::from_unix_timestamp(now)
            .map_err(|e| Error::Crypto(format!("clock out of range: {e}")))?;
        let not_after = add_years(not_before, validity_years)?;

        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, subject.alias.as_str());
        dn.push(
            DnType::OrganizationName,
            format!("Checkmk Site {}", subject.site),
        );
        dn.push(DnType::OrganizationalUnitName, subject.owner.as_str());

        let mut serial = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
            .map_err(|_| Error::Crypto("no randomness for the serial".into()))?;
        serial[0] = (serial[0] & 0x7f) | 0x40; // positive, full length

        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_before = not_before;
        params.not_after = not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];

        let alg = match key.key_type() {
            KeyType::Rsa => &rcgen::PKCS_RSA_SHA512,
            KeyType::Ed25519 => &rcgen::PKCS_ED25519,
        };
        let key_pem = key.to_unencrypted_pem();
        let signer = KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, alg)
            .map_err(|e| Error::Crypto(format!("loading the key into rcgen: {e}")))?;
        let cert = params
            .self_signed(&signer)
            .map_err(|e| Error::Crypto(format!("creating the certificate: {e}")))?;
        Self::from_der(cert.der())
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding (64 columns, LF).
    pub fn to_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.der)
    }

    /// SHA-256 over the DER: how trusted certificates are matched (requirement 13).
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }

    /// The SHA-256 fingerprint as lower-case hex.
    pub fn fingerprint_sha256(&self) -> String {
        hex::encode(self.sha256())
    }

    /// Checkmk's "Digest (MD5)": MD5 of the DER, upper-case hex with colons
    /// (`AB:CD:...`), as `openssl x509 -fingerprint -md5` prints it.
    /// Only an identifier for humans and Checkmk compatibility, never a security check.
    pub fn md5_digest(&self) -> String {
        colon_hex(&Md5::digest(&self.der))
    }

    /// The subject's common name (the key alias).
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The subject's organization (`Checkmk Site <site>`).
    pub fn organization(&self) -> Option<&str> {
        self.organization.as_deref()
    }

    /// The subject's organizational unit (the owner).
    pub fn organizational_unit(&self) -> Option<&str> {
        self.organizational_unit.as_deref()
    }

    /// The serial number as lower-case hex.
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }

    /// Start of validity, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of validity, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// The certificate's signature algorithm (`sha512WithRSAEncryption`, ...).
    pub fn signature_algorithm(&self) -> &str {
        &self.signature_algorithm
    }

    /// The subject public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Verifies the certificate's self-signature (with `ring`, through x509-parser).
    pub fn verify_self_signature(&self) -> Result<()> {
        let (_, cert) = x509_parser::parse_x509_certificate(&self.der)
            .map_err(|e| Error::Certificate(format!("cannot parse: {e}")))?;
        cert.verify_signature(None)
            .map_err(|e| Error::Certificate(format!("self-signature does not verify: {e}")))
    }

    /// Whether `now` is past `not_after`.
    pub fn is_expired(&self, clock: &dyn Clock) -> bool {
        self.not_after < clock.now()
    }

    /// Whole days left until `not_after` (negative once expired).
    pub fn days_left(&self, clock: &dyn Clock) -> i64 {
        (self.not_after - clock.now()).div_euclid(SECONDS_PER_DAY)
    }

    /// OK, WARN or CRIT by the days left until `not_after`.
    pub fn expiry_state(&self, clock: &dyn Clock, thresholds: ExpiryThresholds) -> ExpiryState {
        let left = self.not_after - clock.now();
        if left < 0 || left <= thresholds.crit_days * SECONDS_PER_DAY {
            ExpiryState::Crit
        } else if left <= thresholds.warn_days * SECONDS_PER_DAY {
            ExpiryState::Warn
        } else {
            ExpiryState::Ok
        }
    }
}

fn add_years(t: time::OffsetDateTime, years: u8) -> Result<time::OffsetDateTime> {
    let year = t.year() + i32::from(years);
    let date = t.date();
    let target = time::Date::from_calendar_date(year, date.month(), date.day())
        .or_else(|_| time::Date::from_calendar_date(year, date.month(), date.day() - 1))
        .map_err(|e| Error::Crypto(format!("validity end out of range: {e}")))?;
    Ok(t.replace_date(target))
}

fn signature_algorithm_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    let known = [
        (&OID_PKCS1_SHA1WITHRSA, "sha1WithRSAEncryption"),
        (&OID_PKCS1_SHA256WITHRSA, "sha256WithRSAEncryption"),
        (&OID_PKCS1_SHA384WITHRSA, "sha384WithRSAEncryption"),
        (&OID_PKCS1_SHA512WITHRSA, "sha512WithRSAEncryption"),
        (&OID_SIG_ED25519, "ED25519"),
    ];
    known
        .iter()
        .find(|(o, _)| *o == oid)
        .map_or_else(|| oid.to_id_string(), |(_, n)| (*n).to_string())
}

pub(crate) fn colon_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}
