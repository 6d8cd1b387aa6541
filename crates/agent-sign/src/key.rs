//! Private keys: generation, encrypted PKCS#8 PEM, import and signing.

use std::fmt;

use pkcs8::der::{Decode as _, Encode as _};
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};
use ring::rand::SecureRandom as _;
use zeroize::Zeroizing;

use crate::cert::{Certificate, KeyType, PublicKey};
use crate::error::{Error, Result};
use crate::passphrase::{KdfParams, Passphrase, within_kdf_limit};
use crate::pem;

/// Size of the RSA keys we generate (Checkmk 2.2+).
pub const RSA_KEY_BITS: usize = 4096;
/// Smallest RSA key we accept anywhere.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA key we can sign with (a limit of `ring`).
pub const MAX_RSA_SIGNING_BITS: usize = 4096;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_ED25519: &str = "1.3.101.112";
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A decrypted private key (RSA 2048-4096 bits, or Ed25519).
///
/// Held as an unencrypted PKCS#8 **v1** DER document that is wiped from memory on
/// drop. It never reaches the disk unencrypted: the only way out is
/// [`PrivateKey::to_encrypted_pem`].
pub struct PrivateKey {
    key_type: KeyType,
    pkcs8: Zeroizing<Vec<u8>>,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("key_type", &self.key_type)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generates an RSA-4096 key with e = 65537.
    ///
    /// The RustCrypto `rsa` crate is used **only** here, because `ring` cannot
    /// generate RSA keys; signing always goes through `ring` (the `rsa` crate's
    /// signing is affected by RUSTSEC-2023-0071).
    pub fn generate_rsa() -> Result<Self> {
        use rsa::pkcs8::EncodePrivateKey as _;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_KEY_BITS)
            .map_err(|e| Error::Crypto(format!("RSA key generation: {e}")))?;
        let doc = key
            .to_pkcs8_der()
            .map_err(|e| Error::Crypto(format!("encoding the RSA key: {e}")))?;
        Self::from_pkcs8_der(doc.as_bytes())
    }

    /// Generates an Ed25519 key (with `ring`), kept as PKCS#8 v1 so that
    /// OpenSSL 3.0 can read it.
    pub fn generate_ed25519() -> Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| Error::Crypto("Ed25519 key generation failed".into()))?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// Loads an unencrypted PKCS#8 DER document (v1 or v2).
    ///
    /// Rejects non-RSA/Ed25519 keys ([`Error::UnsupportedKey`]) and RSA keys
    /// below 2048 bits ([`Error::KeyTooSmall`]).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let info = PrivateKeyInfo::from_der(der)
            .map_err(|e| Error::MalformedPem(format!("not a PKCS#8 private key: {e}")))?;
        let oid = info.algorithm.oid.to_string();
        match oid.as_str() {
            OID_RSA => {
                let bits = rsa_modulus_bits(info.private_key)?;
                if bits < MIN_RSA_BITS {
                    return Err(Error::KeyTooSmall { bits });
                }
                if bits > MAX_RSA_SIGNING_BITS {
                    return Err(Error::UnsupportedKey(format!(
                        "RSA keys of {bits} bits cannot sign (at most {MAX_RSA_SIGNING_BITS})"
                    )));
                }
                // Normalise to v1 (RSA keys are v1 anyway).
                let v1 = Zeroizing::new(
                    PrivateKeyInfo::new(info.algorithm, info.private_key)
                        .to_der()
                        .map_err(|e| Error::Crypto(format!("re-encoding the key: {e}")))?,
                );
                let pair = ring::signature::RsaKeyPair::from_pkcs8(&v1)
                    .map_err(|e| Error::UnsupportedKey(format!("RSA key rejected: {e}")))?;
                let public = rsa_spki(ring::signature::KeyPair::public_key(&pair).as_ref())?;
                Ok(PrivateKey {
                    key_type: KeyType::Rsa,
                    pkcs8: v1,
                    public: PublicKey::from_spki_der(&public)?,
                })
            }
            OID_ED25519 => {
                // Drop the optional public key: v1 is what OpenSSL 3.0 reads.
                let v1 = Zeroizing::new(
                    PrivateKeyInfo::new(info.algorithm, info.private_key)
                        .to_der()
                        .map_err(|e| Error::Crypto(format!("re-encoding the key: {e}")))?,
                );
                let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&v1)
                    .map_err(|e| Error::UnsupportedKey(format!("Ed25519 key rejected: {e}")))?;
                let mut spki = ED25519_SPKI_PREFIX.to_vec();
                spki.extend_from_slice(ring::signature::KeyPair::public_key(&pair).as_ref());
                Ok(PrivateKey {
                    key_type: KeyType::Ed25519,
                    pkcs8: v1,
                    public: PublicKey::from_spki_der(&spki)?,
                })
            }
            other => Err(Error::UnsupportedKey(format!(
                "key algorithm {other}: only RSA (and Ed25519 for metadata) are supported"
            ))),
        }
    }

    /// Decrypts an `ENCRYPTED PRIVATE KEY` PEM block (PKCS#8, PBES2 with
    /// PBKDF2-HMAC-SHA1/SHA2 and AES-CBC or des-ede3-cbc), as written by us, by
    /// Checkmk (pyca, 2048 iterations) or by OpenSSL 3 (`openssl req -newkey
    /// ... -keyout` encrypts with des-ede3-cbc; such keys are read, never
    /// written: [`PrivateKey::to_encrypted_pem`] always uses AES-256-CBC). The first private-key block of `text`
    /// is used; other blocks (a certificate) are ignored.
    ///
    /// Errors: [`Error::WrongPassphrase`], [`Error::MalformedPem`],
    /// [`Error::NotEncrypted`], [`Error::UnsupportedEncryption`] (scrypt,
    /// PBES1, more than [`MAX_KDF_ITERATIONS`](crate::MAX_KDF_ITERATIONS)), [`Error::UnsupportedKey`],
    /// [`Error::KeyTooSmall`].
    pub fn from_encrypted_pem(text: &str, passphrase: &Passphrase) -> Result<Self> {
        let blocks = pem::blocks(text)?;
        let block = blocks
            .iter()
            .find(|b| b.label.ends_with("PRIVATE KEY"))
            .ok_or_else(|| Error::MalformedPem("no PRIVATE KEY block".into()))?;
        match block.label.as_str() {
            "ENCRYPTED PRIVATE KEY" => {}
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" if block.headers => {
                return Err(Error::UnsupportedEncryption(
                    "legacy OpenSSL PEM encryption (Proc-Type); convert with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
                        .into(),
                ));
            }
            _ => return Err(Error::NotEncrypted),
        }
        let info = EncryptedPrivateKeyInfo::from_der(&block.der).map_err(|e| {
            match unsupported_encryption(&block.der) {
                // Well-formed, but a scheme or cipher pkcs5 does not know (PKCS#12 PBE,
                // camellia, ...).
                Some(why) => Error::UnsupportedEncryption(why),
                None => Error::MalformedPem(format!("not an encrypted PKCS#8 structure: {e}")),
            }
        })?;
        match &info.encryption_algorithm {
            pkcs5::EncryptionScheme::Pbes2(params) => {
                let Some(pbkdf2) = params.kdf.pbkdf2() else {
                    return Err(Error::UnsupportedEncryption(
                        "only PBKDF2 is supported as key derivation (not scrypt)".into(),
                    ));
                };
                within_kdf_limit(pbkdf2.iteration_count)?;
            }
            _ => {
                return Err(Error::UnsupportedEncryption(
                    "PBES1 (DES/RC2 era) is not supported; use PBES2".into(),
                ));
            }
        }
        let doc = match info.decrypt(passphrase.as_bytes()) {
            Ok(doc) => doc,
            Err(pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::UnsupportedAlgorithm { oid })) => {
                return Err(Error::UnsupportedEncryption(format!(
                    "algorithm {} is not supported",
                    describe_algorithm(&oid.to_string())
                )));
            }
            Err(pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::AlgorithmParametersInvalid {
                oid,
            })) => {
                return Err(Error::UnsupportedEncryption(format!(
                    "invalid parameters for {oid}"
                )));
            }
            // A padding failure, or garbage that is not DER: the passphrase is wrong.
            Err(_) => return Err(Error::WrongPassphrase),
        };
        match PrivateKeyInfo::from_der(doc.as_bytes()) {
            Ok(_) => Self::from_pkcs8_der(doc.as_bytes()),
            // Valid padding by chance (about 1 in 256) but no key inside.
            Err(_) => Err(Error::WrongPassphrase),
        }
    }

    /// Encrypts the key as `ENCRYPTED PRIVATE KEY` PEM: PBES2, PBKDF2-HMAC-SHA256
    /// with `kdf` iterations, random 16-byte salt, AES-256-CBC with a random IV.
    /// Never scrypt (OpenSSL 3.0 refuses pkcs8's default scrypt parameters).
    pub fn to_encrypted_pem(&self, passphrase: &Passphrase, kdf: KdfParams) -> Result<String> {
        let rng = ring::rand::SystemRandom::new();
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        rng.fill(&mut salt)
            .and_then(|()| rng.fill(&mut iv))
            .map_err(|_| Error::Crypto("no randomness for salt and IV".into()))?;
        let params =
            pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(kdf.iterations(), &salt, &iv)
                .map_err(|e| Error::Crypto(format!("PBES2 parameters: {e}")))?;
        let info = PrivateKeyInfo::from_der(&self.pkcs8)
            .map_err(|e| Error::Crypto(format!("re-reading the key: {e}")))?;
        let doc = info
            .encrypt_with_params(params, passphrase.as_bytes())
            .map_err(|e| Error::Crypto(format!("encrypting the key: {e}")))?;
        Ok(pem::encode("ENCRYPTED PRIVATE KEY", doc.as_bytes()))
    }

    /// The unencrypted PEM, only for handing to rcgen in memory.
    pub(crate) fn to_unencrypted_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::encode("PRIVATE KEY", &self.pkcs8))
    }

    /// RSA or Ed25519.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Whether `cert` carries this key's public key.
    pub fn matches(&self, cert: &Certificate) -> bool {
        cert.public_key().key_type() == self.key_type
            && cert.public_key().raw() == self.public.raw()
    }

    /// Signs `message` with `ring`: RSASSA-PKCS1-v1_5 with SHA-256 for RSA (what
    /// Checkmk's updater verifies; deterministic), Ed25519 for Ed25519 keys.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        match self.key_type {
            KeyType::Rsa => {
                let pair = ring::signature::RsaKeyPair::from_pkcs8(&self.pkcs8)
                    .map_err(|e| Error::Crypto(format!("loading the RSA key: {e}")))?;
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(|_| Error::Crypto("RSA signing failed".into()))?;
                Ok(sig)
            }
            KeyType::Ed25519 => {
                let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.pkcs8)
                    .map_err(|e| Error::Crypto(format!("loading the Ed25519 key: {e}")))?;
                Ok(pair.sign(message).as_ref().to_vec())
            }
        }
    }
}

/// PBES2 (`id-PBES2`, RFC 8018): its parameters name the real cipher.
const OID_PBES2: &str = "1.2.840.113549.1.5.13";

/// Human names of the key-encryption algorithms found in PEM files.
const ENCRYPTION_NAMES: &[(&str, &str)] = &[
    ("1.2.840.113549.1.5.13", "PBES2"),
    ("1.2.840.113549.1.5.12", "PBKDF2"),
    ("1.3.6.1.4.1.11591.4.11", "scrypt"),
    ("1.3.14.3.2.7", "des-cbc"),
    ("1.2.840.113549.3.7", "des-ede3-cbc"),
    ("1.2.840.113549.3.2", "rc2-cbc"),
    ("1.2.840.113549.3.9", "rc5-cbc"),
    ("2.16.840.1.101.3.4.1.2", "aes-128-cbc"),
    ("2.16.840.1.101.3.4.1.22", "aes-192-cbc"),
    ("2.16.840.1.101.3.4.1.42", "aes-256-cbc"),
    ("2.16.840.1.101.3.4.1.6", "aes-128-gcm"),
    ("2.16.840.1.101.3.4.1.26", "aes-192-gcm"),
    ("2.16.840.1.101.3.4.1.46", "aes-256-gcm"),
    ("1.2.392.200011.61.1.1.1.2", "camellia-128-cbc"),
    ("1.2.392.200011.61.1.1.1.3", "camellia-192-cbc"),
    ("1.2.392.200011.61.1.1.1.4", "camellia-256-cbc"),
    ("1.2.410.200046.1.1.2", "aria-128-cbc"),
    ("1.2.410.200046.1.1.7", "aria-192-cbc"),
    ("1.2.410.200046.1.1.12", "aria-256-cbc"),
    ("1.2.156.10197.1.104.2", "sm4-cbc"),
    ("1.2.840.113549.1.5.3", "PBES1 pbeWithMD5AndDES-CBC"),
    ("1.2.840.113549.1.5.10", "PBES1 pbeWithSHA1AndDES-CBC"),
    ("1.2.840.113549.1.12.1.1", "PKCS#12 pbeWithSHAAnd128BitRC4"),
    (
        "1.2.840.113549.1.12.1.3",
        "PKCS#12 pbeWithSHAAnd3-KeyTripleDES-CBC",
    ),
    (
        "1.2.840.113549.1.12.1.6",
        "PKCS#12 pbeWithSHAAnd40BitRC2-CBC",
    ),
];

/// `name (oid)` for a known algorithm, else `oid`.
fn describe_algorithm(oid: &str) -> String {
    match ENCRYPTION_NAMES.iter().find(|(o, _)| *o == oid) {
        Some((_, name)) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}

/// Why an `EncryptedPrivateKeyInfo` whose parameters pkcs5 cannot parse is not
/// supported, if the outer structure is well-formed: the cipher inside PBES2
/// (or the key derivation, if that is the unknown part), else the outer scheme.
fn unsupported_encryption(der: &[u8]) -> Option<String> {
    use pkcs8::der::asn1::OctetStringRef;
    use pkcs8::der::{Decode as _, Reader as _, SliceReader};
    use pkcs8::spki::AlgorithmIdentifierRef;
    let mut reader = SliceReader::new(der).ok()?;
    let (oid, params) = reader
        .sequence(|r| {
            let alg = AlgorithmIdentifierRef::decode(r)?;
            OctetStringRef::decode(r)?;
            Ok((alg.oid.to_string(), alg.parameters.map(|p| p.value())))
        })
        .ok()?;
    if oid != OID_PBES2 {
        return Some(format!(
            "encryption scheme {}; use PBES2 with PBKDF2 and AES-CBC",
            describe_algorithm(&oid)
        ));
    }
    // PBES2-params ::= SEQUENCE { keyDerivationFunc, encryptionScheme }: the
    // contents of the parameters' SEQUENCE are the two algorithm identifiers.
    let inner = params.and_then(|value| {
        let mut r = SliceReader::new(value).ok()?;
        let kdf = AlgorithmIdentifierRef::decode(&mut r).ok()?;
        let cipher = AlgorithmIdentifierRef::decode(&mut r).ok()?;
        Some((kdf.oid.to_string(), cipher.oid.to_string()))
    });
    Some(match inner {
        Some((kdf, _)) if kdf != "1.2.840.113549.1.5.12" => format!(
            "key derivation {} inside PBES2; use PBKDF2",
            describe_algorithm(&kdf)
        ),
        Some((_, cipher)) => format!(
            "cipher {} inside PBES2; supported are aes-128/192/256-cbc and des-ede3-cbc",
            describe_algorithm(&cipher)
        ),
        None => "malformed PBES2 parameters".to_string(),
    })
}

/// Bit length of the modulus in a PKCS#1 `RSAPrivateKey`.
fn rsa_modulus_bits(pkcs1: &[u8]) -> Result<usize> {
    let key = rsa::pkcs1::RsaPrivateKey::from_der(pkcs1)
        .map_err(|e| Error::MalformedPem(format!("bad RSA private key: {e}")))?;
    let n = key.modulus.as_bytes();
    let Some(pos) = n.iter().position(|&b| b != 0) else {
        return Err(Error::UnsupportedKey("RSA modulus is zero".into()));
    };
    let lead = n[pos];
    Ok((n.len() - pos - 1) * 8 + (8 - lead.leading_zeros() as usize))
}

/// Wraps a PKCS#1 `RSAPublicKey` in a `SubjectPublicKeyInfo`.
fn rsa_spki(pkcs1_public: &[u8]) -> Result<Vec<u8>> {
    use pkcs8::der::asn1::{BitStringRef, ObjectIdentifier};
    use pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
    let null = pkcs8::der::asn1::AnyRef::NULL;
    let spki = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: ObjectIdentifier::new_unwrap(OID_RSA),
            parameters: Some(null),
        },
        subject_public_key: BitStringRef::from_bytes(pkcs1_public)
            .map_err(|e| Error::Crypto(format!("encoding the public key: {e}")))?,
    };
    spki.to_der()
        .map_err(|e| Error::Crypto(format!("encoding the public key: {e}")))
}
