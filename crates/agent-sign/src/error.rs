//! The error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// The variants are distinct on purpose: callers (and operators reading the
/// message) must be able to tell a wrong passphrase from a damaged file, and an
/// unsupported key from one that is merely too small.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The passphrase does not decrypt the private key.
    #[error("wrong passphrase: the private key could not be decrypted")]
    WrongPassphrase,
    /// The input is not the PEM (or DER) structure that was expected.
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    /// The private key is not encrypted; keys are only accepted encrypted.
    #[error(
        "the private key is not encrypted; export it as encrypted PKCS#8 (`openssl pkcs8 -topk8 -v2 aes-256-cbc`)"
    )]
    NotEncrypted,
    /// The encrypted key uses a scheme we do not read (scrypt, PBES1, SHA-1 PRF, ...).
    #[error("unsupported key encryption: {0}")]
    UnsupportedEncryption(String),
    /// The key type is not supported for this use.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// An RSA key below 2048 bits.
    #[error("the RSA key has {bits} bits; at least 2048 are required")]
    KeyTooSmall {
        /// Size of the rejected modulus.
        bits: usize,
    },
    /// A new passphrase that is too short.
    #[error("the passphrase must have at least {min} characters")]
    WeakPassphrase {
        /// The required minimum.
        min: usize,
    },
    /// A KDF iteration count below the enforced minimum for new keys.
    #[error("{iterations} PBKDF2 iterations are too few; at least {min} are required")]
    WeakKdf {
        /// The requested count.
        iterations: u32,
        /// The enforced minimum.
        min: u32,
    },
    /// Private key and certificate do not belong together.
    #[error("the private key does not match the certificate")]
    KeyCertificateMismatch,
    /// A certificate that cannot be parsed or is not acceptable.
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// Import of a certificate the store already holds (Checkmk's message).
    #[error("The key / certificate already exists (Key: {id}, Description: {alias})")]
    DuplicateKey {
        /// Id of the existing key.
        id: u64,
        /// Its alias.
        alias: String,
    },
    /// Deleting a key that a known trust configuration still references (Checkmk's message).
    #[error("This key is still used.")]
    KeyInUse {
        /// The trust configuration that references it.
        used_by: String,
    },
    /// The key store directory to read does not exist or is not a directory.
    #[error("no key store at {}: {reason}", path.display())]
    NoStore {
        /// The path given.
        path: PathBuf,
        /// Why it is not a store.
        reason: &'static str,
    },
    /// No key with this id in the store.
    #[error("no key with id {0} in the key store")]
    KeyNotFound(u64),
    /// Package verification failed (Checkmk's message).
    #[error("No valid signature found.")]
    NoValidSignature,
    /// Signing or key generation failed in the crypto backend.
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
    /// Metadata that is not well-formed (bad JSON, wrong type, unknown key, ...).
    #[error("malformed metadata: {0}")]
    Metadata(String),
    /// Fewer distinct trusted keys signed than the role's threshold requires.
    #[error(
        "{role} metadata: {valid} valid signature(s) from distinct trusted keys, {threshold} required"
    )]
    ThresholdNotMet {
        /// The role (`root`, `targets`, `timestamp`).
        role: String,
        /// Distinct trusted keys with a valid signature.
        valid: usize,
        /// The role's threshold.
        threshold: usize,
    },
    /// Metadata past its `expires` time (freeze protection).
    #[error("{role} metadata expired at {expires} (now {now})")]
    Expired {
        /// The role.
        role: String,
        /// Its expiry (Unix seconds).
        expires: i64,
        /// The clock's time (Unix seconds).
        now: i64,
    },
    /// Metadata older than (or conflicting with) what was accepted before.
    #[error(
        "rollback: {role} version {offered} offered, version {stored} already accepted{detail}"
    )]
    Rollback {
        /// The role.
        role: String,
        /// The version offered now.
        offered: u64,
        /// The highest version accepted before.
        stored: u64,
        /// Extra explanation (e.g. same version, other hash).
        detail: String,
    },
    /// A root update that is not exactly the next version.
    #[error(
        "root version {offered} cannot follow version {current}: root versions are applied one at a time"
    )]
    RootVersion {
        /// Current trusted root version.
        current: u64,
        /// Offered root version.
        offered: u64,
    },
    /// Metadata written for another host or platform.
    #[error(
        "metadata is for host {got_host:?} / platform {got_platform:?}, expected {host:?} / {platform:?}"
    )]
    WrongTarget {
        /// The expected host.
        host: String,
        /// The expected platform.
        platform: String,
        /// The host named by the metadata.
        got_host: String,
        /// The platform named by the metadata.
        got_platform: String,
    },
    /// The package bytes do not match the signed length or SHA-256.
    #[error("hash mismatch: {0}")]
    HashMismatch(String),
    /// The signing log's hash chain is broken.
    #[error("signing log line {line}: {reason}")]
    LogChainBroken {
        /// 1-based line number of the first bad entry.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
