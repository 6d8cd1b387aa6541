//! The agent-sign verifier in Checkmk mode against fixtures made with OpenSSL 3.0 (RSA-2048 key,
//! self-signed sha512WithRSAEncryption certificate shaped like Checkmk's, `openssl dgst
//! -sha256 -sign` / `-sha1 -sign` signatures over the package bytes).

use agent_sign::SystemClock;
use agent_sign::{PackageSignature, RollbackState};
use agent_updater::{
    AgentSignVerifier, PackageVerifier, TargetInfo, TargetPlan, Verified, VerifyError,
};
use agent_wire::{Platform, TrustedCertInfo};

use crate::support::{HardenedVerifier as _, MetadataKeys, SigningKey};

const CERT: &str = include_str!("fixtures/rsa-signature-cert.pem");
const PACKAGE: &[u8] = include_bytes!("fixtures/rsa-package.bin");
const SIG_SHA256: &str = include_str!("fixtures/rsa-package.sig.sha256");
const SIG_SHA1: &str = include_str!("fixtures/rsa-package.sig.sha1");

fn entry(cert: &str, sig: &str) -> PackageSignature {
    PackageSignature {
        certificate: cert.into(),
        signature: sig.trim().into(),
    }
}

/// Gate and signature check as the updater runs them; the accepted index and the log.
fn verify(
    package: &[u8],
    sigs: &[PackageSignature],
    trusted: &[String],
) -> Result<(usize, Vec<String>), VerifyError> {
    let rollback = RollbackState::default();
    let info = TargetInfo {
        host_name: "web01",
        platform: Platform::LinuxDeb,
        target_hash: "0123456789abcdef",
        signatures: sigs,
        metadata: None,
        trusted_keys: trusted,
        rollback: &rollback,
        clock: &SystemClock,
    };
    let verifier = AgentSignVerifier::checkmk();
    verifier.check_target(&info)?;
    verifier
        .verify_package(&agent_sign::PackageDigest::of(package), &info)
        .map(|v| (v.signature_index, v.log))
}

fn accepted(result: Result<(usize, Vec<String>), VerifyError>) -> usize {
    result.unwrap().0
}

#[test]
fn rsa_pkcs1_sha256_from_openssl_is_accepted() {
    let trusted = vec![CERT.to_owned()];
    assert_eq!(
        verify(PACKAGE, &[entry(CERT, SIG_SHA256)], &trusted).unwrap(),
        (1, vec!["Signature check OK.".to_owned()])
    );
}

#[test]
fn sha1_signatures_and_tampering_are_rejected() {
    let trusted = vec![CERT.to_owned()];
    assert!(matches!(
        verify(PACKAGE, &[entry(CERT, SIG_SHA1)], &trusted),
        Err(VerifyError::NoValidSignature)
    ));
    let mut tampered = PACKAGE.to_vec();
    tampered[100] ^= 0x20;
    assert!(matches!(
        verify(&tampered, &[entry(CERT, SIG_SHA256)], &trusted),
        Err(VerifyError::NoValidSignature)
    ));
    assert!(matches!(
        verify(PACKAGE, &[entry(CERT, "not base64!")], &trusted),
        Err(VerifyError::NoValidSignature)
    ));
}

#[test]
fn first_trusted_valid_signature_wins() {
    let other = SigningKey::other("other");
    let trusted = vec![CERT.to_owned()];
    // Unknown certificate first, then the good one: Checkmk's log lines.
    let sigs = [other.sign(PACKAGE), entry(CERT, SIG_SHA256)];
    assert_eq!(
        verify(PACKAGE, &sigs, &trusted).unwrap(),
        (
            2,
            vec![
                "Ignoring signature #1 for certificate: certificate is unknown.".to_owned(),
                "Signature check OK.".to_owned()
            ]
        )
    );
    // A bad signature by the trusted key first, then a good one.
    let sigs = [entry(CERT, SIG_SHA1), entry(CERT, SIG_SHA256)];
    assert_eq!(
        verify(PACKAGE, &sigs, &trusted).unwrap(),
        (
            2,
            vec![
                "Signature #1 is invalid.".to_owned(),
                "Signature check OK.".to_owned()
            ]
        )
    );
    // Only unknown certificates: refused before download.
    let sigs = [other.sign(PACKAGE)];
    assert!(matches!(
        verify(PACKAGE, &sigs, &trusted),
        Err(VerifyError::NoValidSignature)
    ));
}

#[test]
fn trust_matches_the_certificate_not_the_pem_text() {
    let crlf = CERT.replace('\n', "\r\n");
    let trusted = vec![crlf];
    assert_eq!(
        accepted(verify(PACKAGE, &[entry(CERT, SIG_SHA256)], &trusted)),
        1
    );
}

#[test]
fn trusted_cert_info_for_the_section() {
    let info = TrustedCertInfo::from_pem(CERT);
    assert!(!info.corrupt);
    assert_eq!(info.common_name.as_deref(), Some("signature"));
    assert_eq!(info.signature_algorithm.as_deref(), Some("sha512"));
    assert_eq!(info.not_after.as_deref(), Some("2036-11-18T02:02:12+00:00"));
    assert!(TrustedCertInfo::from_pem("garbage").corrupt);
}

#[test]
fn target_plan_cuts_checks_and_records_the_signed_package() {
    let now = agent_sign::Clock::now(&SystemClock);
    let targets = agent_sign::Targets::for_package(
        PACKAGE,
        "web01",
        "linux_deb",
        "0123456789abcdef",
        7,
        now,
        now + 3600,
    );
    let plan = TargetPlan {
        targets: Some(targets),
        timestamp: None,
    };
    assert_eq!(plan.length(), Some(PACKAGE.len() as u64));
    assert_eq!(TargetPlan::default().length(), None);
    plan.check_package(&agent_sign::PackageDigest::of(PACKAGE))
        .unwrap();
    let mut shorter = PACKAGE.to_vec();
    shorter.pop();
    assert!(matches!(
        plan.check_package(&agent_sign::PackageDigest::of(&shorter)),
        Err(VerifyError::Metadata(_))
    ));
    let mut state = RollbackState::default();
    plan.accept(&mut state);
    let accepted = state.targets.get("web01/linux_deb").unwrap();
    assert_eq!(accepted.version, 7);
}

/// A verifier that implements only what it must.
struct Minimal;

impl PackageVerifier for Minimal {
    fn check_target(&self, _: &TargetInfo<'_>) -> Result<TargetPlan, VerifyError> {
        Ok(TargetPlan::default())
    }
    fn verify_package(
        &self,
        _: &agent_sign::PackageDigest,
        _: &TargetInfo<'_>,
    ) -> Result<Verified, VerifyError> {
        Err(VerifyError::NoValidSignature)
    }
}

#[test]
fn verifier_defaults_and_accessors() {
    // A verifier requires metadata only when it says so; keys are described for the section.
    assert!(!Minimal.requires_metadata());
    let described = Minimal.describe_key(CERT);
    assert_eq!(described.common_name.as_deref(), Some("signature"));
    assert!(!described.corrupt);
    let checkmk = AgentSignVerifier::checkmk();
    assert!(checkmk.root().is_none() && !checkmk.requires_metadata());
    let hardened = MetadataKeys::new().verifier();
    assert!(hardened.root().is_some() && hardened.requires_metadata());
    assert_eq!(hardened.root().unwrap().root().version, 1);
    // The Debug form names what the updater asks about, without dumping keys.
    let rollback = RollbackState::default();
    let sigs = [entry(CERT, SIG_SHA256)];
    let trusted = [CERT.to_owned()];
    let info = TargetInfo {
        host_name: "web01",
        platform: Platform::LinuxDeb,
        target_hash: "0123456789abcdef",
        signatures: &sigs,
        metadata: None,
        trusted_keys: &trusted,
        rollback: &rollback,
        clock: &SystemClock,
    };
    let debug = format!("{info:?}");
    assert!(
        debug.contains("web01") && debug.contains("0123456789abcdef"),
        "{debug}"
    );
    assert!(
        debug.contains("signatures: 1") && !debug.contains("BEGIN"),
        "{debug}"
    );
}
