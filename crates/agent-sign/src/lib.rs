//! Signature keys, X.509 certificates, signed agent packages and hardened
//! update metadata, compatible with Checkmk's Agent Bakery.
//!
//! * **Keys** ([`PrivateKey`], [`KeyStore`]): RSA-4096 keys with self-signed
//!   certificates shaped exactly like Checkmk's ([`Certificate::self_signed`]),
//!   and Ed25519 as a second key type for our metadata. Private keys exist on
//!   disk only as encrypted PKCS#8 PEM (PBES2, PBKDF2-HMAC-SHA256 with at least
//!   600,000 iterations, AES-256-CBC). Keys exported by Checkmk (2048
//!   iterations) and by OpenSSL import fine and are re-encrypted.
//! * **Package signatures** ([`sign_package`], [`verify_package`]): an ordered
//!   list of `{certificate, signature}`, RSASSA-PKCS1-v1_5/SHA-256 over the exact
//!   package bytes, verified with Checkmk's rules and log lines.
//! * **Hardened metadata** ([`SignedDocument`], [`TrustedRoot`],
//!   [`RollbackState`]): signed targets binding host, platform, hash, length,
//!   version and expiry; rollback and freeze protection; k-of-n thresholds;
//!   root rotation. Everything signed is [canonical JSON](to_canonical_json).
//! * **Signing log** ([`SigningLog`]): an append-only, hash-chained record of
//!   every signature, for audits.
//!
//! Every time-dependent rule takes a [`Clock`].
//!
//! # Example
//!
//! ```
//! use agent_sign::{
//!     Certificate, FixedClock, PrivateKey, Subject, TrustedCertificates, VerifyPolicy,
//!     sign_package, verify_package,
//! };
//! # fn main() -> Result<(), agent_sign::Error> {
//! let clock = FixedClock(1_767_225_600); // 2026-01-01
//! # let key = PrivateKey::from_encrypted_pem(
//! #     include_str!("../tests/data/openssl-rsa.key.pem"),
//! #     &"openssl-fixture-pass".into())?;
//! // let key = PrivateKey::generate_rsa()?;   // RSA-4096, takes a second or two
//! let subject = Subject { alias: "signature".into(), owner: "cmkadmin".into(), site: "mysite".into() };
//! let cert = Certificate::self_signed(&key, &subject, 10, &clock)?;
//!
//! let package = b"the bytes of a .deb";
//! let mut signatures = Vec::new();
//! sign_package(package, &key, &cert, &mut signatures)?;
//!
//! let trusted: TrustedCertificates = [cert].into_iter().collect();
//! let report = verify_package(package, &signatures, &trusted, VerifyPolicy::default(), &clock);
//! assert_eq!(report.log, ["Signature check OK."]);
//! # Ok(()) }
//! ```
//!
//! # Which crate does what, and why
//!
//! | task | crate | why |
//! |---|---|---|
//! | signing, verifying (RSA PKCS#1 v1.5, Ed25519), randomness | `ring` | audited, constant-time, the rustls team maintains it |
//! | parsing certificates, checking self-signatures | `x509-parser` (feature `verify`, which uses `ring`) | zero-copy DER parser, reads every field we check |
//! | creating certificates | `rcgen` (ring backend) | writes the extensions, criticality and sha512WithRSA signature Checkmk uses |
//! | encrypted PKCS#8 | RustCrypto `pkcs8` 0.10 / `pkcs5` 0.7 | PBES2 with explicit PBKDF2-HMAC-SHA256 + AES-256-CBC parameters; never the crate's scrypt default, which OpenSSL 3.0 refuses |
//! | RSA key generation **only** | RustCrypto `rsa` 0.9 | `ring` cannot generate RSA keys; `rsa`'s signing is never used because of RUSTSEC-2023-0071 (Marvin timing side channel) |
//! | MD5 digest of certificates | `md-5` | Checkmk's key identifier in the GUI; display only, never a security decision |
//! | zeroizing secrets | `zeroize` | passphrases and decrypted keys are wiped on drop |
//!
//! # Security
//!
//! **Protected assets**: the hosts that install agent packages, and the signing
//! keys.
//!
//! **Attacker**: controls the channel between deployment server and host (plain
//! HTTP, `--insecure`, a trust-on-first-use certificate), or the deployment
//! server itself **without** the signing passphrases, or holds a stolen backup
//! of the key store.
//!
//! **What this crate guarantees**
//!
//! * A package verifies only with a valid signature from a trusted, unexpired
//!   certificate (and, with a threshold k, from k distinct trusted keys).
//!   Trusted certificates are matched by SHA-256 of their DER, not PEM text.
//!   SHA-1 is never produced or accepted; RSA keys below 2048 bits never.
//! * With the hardened metadata: a package signed for another host or
//!   platform, an older version (rollback), the same version with other bytes,
//!   expired metadata (a frozen server), a package that differs in length or
//!   SHA-256, fewer than k distinct keys, and a root rotation that skips a
//!   version or lacks signatures of the old or new keys are all rejected.
//! * A stolen key store yields keys encrypted with PBKDF2-HMAC-SHA256 at
//!   ≥ 600,000 iterations behind passphrases of ≥ 12 characters. Decrypted keys
//!   and passphrases live only in memory that is zeroed on drop, and never
//!   appear in `Debug` output or logs. Key files are written atomically with
//!   mode 0600. Reading a key refuses more than 10,000,000 PBKDF2 iterations,
//!   so a crafted file cannot stall us.
//!
//! **What it does not do**
//!
//! * Checkmk-compatible package signatures alone do not stop rollback,
//!   wrong-host packages or freezes: that is what the metadata is for, and it
//!   only helps when the updater insists on it.
//! * No certificate chains, revocation lists or key-usage checks: certificates
//!   are self-signed trust anchors, as in Checkmk.
//! * Whoever holds a key and its passphrase can sign anything; whoever holds
//!   k keys of a role can sign for that role. Keep root and targets keys
//!   offline; only the timestamp key belongs on the server.
//! * Memory can still leak through copies made by dependencies (e.g. inside
//!   `ring`'s key objects) or swap; zeroizing is best effort.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]

mod canonical;
mod cert;
mod clock;
mod error;
mod key;
mod log;
mod metadata;
mod package;
mod passphrase;
mod pem;
mod store;

pub use canonical::to_canonical_json;
pub use cert::{Certificate, ExpiryState, ExpiryThresholds, KeyType, PublicKey, Subject};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Error, Result};
pub use key::{MAX_RSA_SIGNING_BITS, MIN_RSA_BITS, PrivateKey, RSA_KEY_BITS};
pub use log::{GENESIS, LogEntry, LogRecord, SigningLog};
pub use metadata::{
    AcceptedTargets, MAX_METADATA_BYTES, MetaKey, MetaSignature, RoleKeys, Roles, RollbackState,
    Root, SignedDocument, Targets, Timestamp, TrustedRoot,
};
pub use package::{
    DIGEST_BUFFER_BYTES, NOT_BEFORE_SKEW_SECONDS, PackageDigest, PackageSignature,
    TrustedCertificates, VerifyPolicy, VerifyReport, sign_package, signatures_from_json,
    signatures_to_json, verify_package, verify_package_digest, verify_package_reader,
};
pub use passphrase::{
    DEFAULT_KDF_ITERATIONS, KdfParams, MAX_KDF_ITERATIONS, MIN_PASSPHRASE_CHARS, Passphrase,
};
pub use store::{CERT_VALIDITY_YEARS, KeyEntry, KeyStore, KnownTrust, NewKey, TRUSTED_DIR};
