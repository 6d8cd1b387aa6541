//! The verification seam of the updater: signature lists and hardened target metadata are
//! checked through [`PackageVerifier`]; [`AgentSignVerifier`] implements it with `agent-sign`.
//!
//! All cryptography, certificate parsing and metadata rules live in `agent-sign`; this module
//! only decides *when* each check runs and turns the results into the updater's errors.

use agent_sign::{
    Certificate, Clock, PackageDigest, PackageSignature, RollbackState, Targets, Timestamp,
    TrustedCertificates, TrustedRoot, VerifyPolicy,
};
use agent_wire::{Platform, TargetMetadata, TrustedCertInfo};

/// What the updater knows about the offered package when it asks the verifier.
#[derive(Clone, Copy)]
pub struct TargetInfo<'a> {
    /// Our host name (as registered).
    pub host_name: &'a str,
    /// Our platform.
    pub platform: Platform,
    /// The server's `TargetHash`.
    pub target_hash: &'a str,
    /// The server's `Signatures`.
    pub signatures: &'a [PackageSignature],
    /// The server's `TargetMetadata`, if it sent any.
    pub metadata: Option<&'a TargetMetadata>,
    /// The trusted certificates (`signature_keys`, PEM).
    pub trusted_keys: &'a [String],
    /// The updater's persistent rollback state (highest accepted versions).
    pub rollback: &'a RollbackState,
    /// The current time (injectable).
    pub clock: &'a dyn Clock,
}

impl std::fmt::Debug for TargetInfo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetInfo")
            .field("host_name", &self.host_name)
            .field("platform", &self.platform)
            .field("target_hash", &self.target_hash)
            .field("signatures", &self.signatures.len())
            .field("metadata", &self.metadata.is_some())
            .field("trusted_keys", &self.trusted_keys.len())
            .field("now", &self.clock.now())
            .finish()
    }
}

/// What the verified metadata says about the package; enforced by the updater after download.
/// Empty in Checkmk-compatible mode (no metadata root configured).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPlan {
    /// The verified targets metadata (host, platform, aghash, SHA-256, length, version).
    pub targets: Option<Targets>,
    /// The verified timestamp, if the server sent one.
    pub timestamp: Option<Timestamp>,
}

impl TargetPlan {
    /// The exact package length the download is cut off at, if known.
    pub fn length(&self) -> Option<u64> {
        self.targets.as_ref().map(|t| t.length)
    }

    /// Checks a downloaded package's digest against the signed length and SHA-256 (no-op
    /// without metadata).
    pub fn check_package(&self, package: &PackageDigest) -> Result<(), VerifyError> {
        match &self.targets {
            Some(t) => Ok(t.check_digest(package)?),
            None => Ok(()),
        }
    }

    /// Records the verified versions once the package is installed.
    pub fn accept(&self, state: &mut RollbackState) {
        if let Some(t) = &self.targets {
            state.accept(t);
        }
        if let Some(ts) = &self.timestamp {
            state.accept_timestamp(ts);
        }
    }
}

/// Result of a successful package verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// 1-based index of the (first) signature that was accepted.
    pub signature_index: usize,
    /// The verification log in Checkmk's wording (`Signature check OK.`, ...).
    pub log: Vec<String>,
}

/// Why a package or its metadata was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The server offers an unsigned agent.
    #[error("The deployment server provides an agent but that is not signed.")]
    NotSigned,
    /// No `signature_keys` configured.
    #[error("No signature keys are configured.")]
    NoKeysConfigured,
    /// No signature from a trusted, valid certificate verifies.
    #[error("No valid signature found.")]
    NoValidSignature,
    /// A metadata root is configured but the server sent no `TargetMetadata`.
    #[error(
        "the deployment server sent no signed target metadata, but a metadata root is configured"
    )]
    MissingMetadata,
    /// The signed metadata was refused by `agent-sign` (bad signatures, threshold not met,
    /// expired, another host or platform, rollback, hash or length mismatch, ...).
    #[error("target metadata: {0}")]
    Metadata(#[from] agent_sign::Error),
    /// The server's `TargetHash` differs from the `aghash` of the verified metadata.
    #[error("the server offers agent {server}, but the signed target metadata names {metadata}")]
    AghashMismatch {
        /// The server's claim.
        server: String,
        /// The verified value.
        metadata: String,
    },
}

/// Checks packages and target metadata for the updater.
///
/// The updater calls [`check_target`](Self::check_target) before it downloads anything (the
/// pre-download gate of section 2 plus the hardened metadata), and
/// [`verify_package`](Self::verify_package) on the downloaded bytes before anything is written
/// where the installer could see it. The updater itself rejects unsigned agents and a missing
/// key configuration, enforces the [`TargetPlan`] after the download and persists the rollback
/// state after a successful install.
pub trait PackageVerifier: Send + Sync {
    /// Pre-download gate: is any signature from a trusted certificate, and is the metadata
    /// (if this verifier requires any) valid for this host, platform, time and rollback state?
    fn check_target(&self, target: &TargetInfo<'_>) -> Result<TargetPlan, VerifyError>;

    /// Post-download check of the package against the signature list, on its
    /// [`PackageDigest`] (the SHA-256 computed once while the package was read, so that the
    /// updater's memory does not grow with the package).
    fn verify_package(
        &self,
        package: &PackageDigest,
        target: &TargetInfo<'_>,
    ) -> Result<Verified, VerifyError>;

    /// Whether this verifier insists on signed metadata; the updater then checks it on every
    /// run, also when the target is already installed (freeze detection).
    fn requires_metadata(&self) -> bool {
        false
    }

    /// Describes one trusted certificate for the `trusted_certs` field of the section.
    fn describe_key(&self, pem: &str) -> TrustedCertInfo {
        TrustedCertInfo::from_pem(pem)
    }
}

/// The updater's verifier, built on `agent-sign`:
///
/// * signatures: [`agent_sign::verify_package`] with Checkmk's rules and log lines
///   (requirement 12; trusted certificates matched by SHA-256 of the DER, RSA PKCS#1 v1.5 with
///   SHA-256 only, `not_before` checked with 2 h skew, a k-of-n threshold);
/// * with a metadata root ([`hardened`](Self::hardened)): the server's `TargetMetadata` is
///   required and verified with [`TrustedRoot::verify_targets`] (threshold, expiry, host and
///   platform binding, rollback against the updater's state) and
///   [`TrustedRoot::verify_timestamp`]; the verified `aghash` must be the server's `TargetHash`.
///
/// Without a root ([`checkmk`](Self::checkmk)) it behaves like Checkmk's updater and ignores
/// any metadata, so it can talk to a real Checkmk site.
#[derive(Debug, Clone)]
pub struct AgentSignVerifier {
    root: Option<TrustedRoot>,
    policy: VerifyPolicy,
}

impl AgentSignVerifier {
    /// Checkmk-compatible: signatures only, threshold 1.
    pub fn checkmk() -> AgentSignVerifier {
        AgentSignVerifier {
            root: None,
            policy: VerifyPolicy::default(),
        }
    }

    /// Hardened: signatures plus required target metadata signed under `root`.
    pub fn hardened(root: TrustedRoot) -> AgentSignVerifier {
        AgentSignVerifier {
            root: Some(root),
            policy: VerifyPolicy::default(),
        }
    }

    /// Sets the signature policy (e.g. a threshold of k distinct trusted keys).
    pub fn with_policy(mut self, policy: VerifyPolicy) -> AgentSignVerifier {
        self.policy = policy;
        self
    }

    /// The metadata root, if hardened.
    pub fn root(&self) -> Option<&TrustedRoot> {
        self.root.as_ref()
    }
}

impl Default for AgentSignVerifier {
    fn default() -> Self {
        AgentSignVerifier::checkmk()
    }
}

/// The configured `signature_keys` as `agent-sign` trust anchors; keys that don't parse are
/// skipped (the section reports them as corrupt).
fn trusted_certificates(pems: &[String]) -> TrustedCertificates {
    pems.iter()
        .filter_map(|pem| Certificate::from_pem(pem).ok())
        .collect()
}

impl PackageVerifier for AgentSignVerifier {
    fn requires_metadata(&self) -> bool {
        self.root.is_some()
    }

    fn check_target(&self, t: &TargetInfo<'_>) -> Result<TargetPlan, VerifyError> {
        // Section 2 step 1: only certificates are compared before the download.
        let trusted = trusted_certificates(t.trusted_keys);
        let mut any = false;
        for (i, sig) in t.signatures.iter().enumerate() {
            if Certificate::from_pem(&sig.certificate).is_ok_and(|c| trusted.contains(&c)) {
                any = true;
            } else {
                tracing::warn!(
                    "Ignoring signature #{} for certificate: certificate is unknown.",
                    i + 1
                );
            }
        }
        if !any {
            tracing::warn!("No valid signature found.");
            return Err(VerifyError::NoValidSignature);
        }
        let Some(root) = &self.root else {
            if t.metadata.is_some() {
                tracing::debug!("ignoring TargetMetadata: no metadata root is configured");
            }
            return Ok(TargetPlan::default());
        };
        let md = t.metadata.ok_or(VerifyError::MissingMetadata)?;
        let targets = root.verify_targets(
            &md.targets,
            t.host_name,
            t.platform.as_str(),
            t.rollback,
            t.clock,
        )?;
        if targets.aghash != t.target_hash {
            return Err(VerifyError::AghashMismatch {
                server: t.target_hash.to_owned(),
                metadata: targets.aghash,
            });
        }
        let timestamp = match &md.timestamp {
            Some(ts) => Some(root.verify_timestamp(ts, &md.targets, t.rollback, t.clock)?),
            None => None,
        };
        Ok(TargetPlan {
            targets: Some(targets),
            timestamp,
        })
    }

    fn verify_package(
        &self,
        package: &PackageDigest,
        t: &TargetInfo<'_>,
    ) -> Result<Verified, VerifyError> {
        let trusted = trusted_certificates(t.trusted_keys);
        let report = agent_sign::verify_package_digest(
            package,
            t.signatures,
            &trusted,
            self.policy,
            t.clock,
        );
        match report.valid_signatures.first() {
            Some(&n) if report.accepted => Ok(Verified {
                signature_index: n,
                log: report.log,
            }),
            _ => Err(VerifyError::NoValidSignature),
        }
    }
}
