//! Package signatures: requirements 9-13 and 33, table-driven.

use agent_sign::{
    Certificate, DIGEST_BUFFER_BYTES, Error, FixedClock, KeyType, PackageDigest, PackageSignature,
    PrivateKey, Subject, TrustedCertificates, VerifyPolicy, sign_package, signatures_from_json,
    signatures_to_json, verify_package, verify_package_reader,
};

use crate::common::*;

fn sign(package: &[u8], key: &PrivateKey, cert: &Certificate) -> PackageSignature {
    let mut list = Vec::new();
    sign_package(package, key, cert, &mut list).unwrap();
    list.pop().unwrap()
}

/// A certificate for the OpenSSL key that expired in 2010.
fn expired_cert() -> Certificate {
    let subject = Subject {
        alias: "old".into(),
        owner: "cmkadmin".into(),
        site: "mysite".into(),
    };
    Certificate::self_signed(&openssl_rsa().0, &subject, 10, &FixedClock(946_684_800)).unwrap()
}

/// A certificate for the OpenSSL key whose validity starts in a week.
fn future_cert() -> Certificate {
    let subject = Subject {
        alias: "future".into(),
        owner: "cmkadmin".into(),
        site: "mysite".into(),
    };
    Certificate::self_signed(
        &openssl_rsa().0,
        &subject,
        10,
        &FixedClock(now().0 + 7 * DAY),
    )
    .unwrap()
}

#[test]
fn verification_table() {
    let package = package();
    let mut tampered = package.clone();
    tampered[5000] ^= 1;
    let (a_key, a_cert) = pyca();
    let (b_key, b_cert) = openssl_rsa();
    let good_a = sign(&package, a_key, a_cert);
    let good_b = sign(&package, b_key, b_cert);
    let bad_a = PackageSignature {
        signature: sign(b"another package", a_key, a_cert).signature,
        ..good_a.clone()
    };
    let expired = sign(&package, b_key, &expired_cert());
    let future = sign(&package, b_key, &future_cert());
    let garbage_cert = PackageSignature {
        certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
        signature: good_a.signature.clone(),
    };
    let crlf_a = PackageSignature {
        certificate: good_a.certificate.replace('\n', "\r\n"),
        ..good_a.clone()
    };
    let not_base64 = PackageSignature {
        signature: "!!!".into(),
        ..good_a.clone()
    };

    let only_a: TrustedCertificates = [a_cert.clone()].into_iter().collect();
    let a_and_b: TrustedCertificates = [a_cert.clone(), b_cert.clone()].into_iter().collect();
    let with_expired: TrustedCertificates = [a_cert.clone(), expired_cert(), future_cert()]
        .into_iter()
        .collect();
    let k1 = VerifyPolicy::default();
    let k2 = VerifyPolicy {
        threshold: 2,
        ..VerifyPolicy::default()
    };
    const OK: &str = "Signature check OK.";
    const NONE: &str = "No valid signature found.";

    #[allow(clippy::type_complexity)]
    let cases: Vec<(
        &str,
        &[u8],
        Vec<PackageSignature>,
        &TrustedCertificates,
        VerifyPolicy,
        bool,
        Vec<&str>,
    )> = vec![
        (
            "one good signature",
            &package,
            vec![good_a.clone()],
            &only_a,
            k1,
            true,
            vec![OK],
        ),
        (
            "unknown certificate",
            &package,
            vec![good_b.clone()],
            &only_a,
            k1,
            false,
            vec![
                "Ignoring signature #1 for certificate: certificate is unknown.",
                NONE,
            ],
        ),
        (
            "expired certificate",
            &package,
            vec![expired],
            &with_expired,
            k1,
            false,
            vec!["Certificate #1 has expired", NONE],
        ),
        (
            "certificate not yet valid",
            &package,
            vec![future],
            &with_expired,
            k1,
            false,
            vec!["Certificate #1 is not yet valid", NONE],
        ),
        (
            "bad signature",
            &package,
            vec![bad_a.clone()],
            &only_a,
            k1,
            false,
            vec!["Signature #1 is invalid.", NONE],
        ),
        (
            "good second signature",
            &package,
            vec![bad_a.clone(), good_a.clone()],
            &only_a,
            k1,
            true,
            vec!["Signature #1 is invalid.", OK],
        ),
        (
            "unknown, then good",
            &package,
            vec![good_b.clone(), good_a.clone()],
            &only_a,
            k1,
            true,
            vec![
                "Ignoring signature #1 for certificate: certificate is unknown.",
                OK,
            ],
        ),
        (
            "first success wins, later entries unread",
            &package,
            vec![good_a.clone(), garbage_cert.clone()],
            &only_a,
            k1,
            true,
            vec![OK],
        ),
        (
            "tampered package byte",
            &tampered,
            vec![good_a.clone(), good_b.clone()],
            &a_and_b,
            k1,
            false,
            vec!["Signature #1 is invalid.", "Signature #2 is invalid.", NONE],
        ),
        (
            "unparsable certificate",
            &package,
            vec![garbage_cert],
            &only_a,
            k1,
            false,
            vec!["Error loading certificate #1", NONE],
        ),
        (
            "signature not base64",
            &package,
            vec![not_base64],
            &only_a,
            k1,
            false,
            vec!["Signature #1 is invalid.", NONE],
        ),
        (
            "CRLF copy of a trusted certificate matches",
            &package,
            vec![crlf_a.clone()],
            &only_a,
            k1,
            true,
            vec![OK],
        ),
        (
            "empty list",
            &package,
            vec![],
            &only_a,
            k1,
            false,
            vec![NONE],
        ),
        (
            "threshold 2 with one key",
            &package,
            vec![good_a.clone()],
            &a_and_b,
            k2,
            false,
            vec![
                "1 valid signature(s) from distinct trusted keys, 2 required",
                NONE,
            ],
        ),
        (
            "threshold 2, the same key twice",
            &package,
            vec![good_a.clone(), crlf_a],
            &only_a,
            k2,
            false,
            vec![
                "Signature #2 is from a key that already signed; it counts once.",
                "1 valid signature(s) from distinct trusted keys, 2 required",
                NONE,
            ],
        ),
        (
            "threshold 2 with two keys",
            &package,
            vec![good_a, bad_a, good_b],
            &a_and_b,
            k2,
            true,
            vec!["Signature #2 is invalid.", OK],
        ),
    ];
    for (name, pkg, sigs, trusted, policy, accepted, log) in cases {
        let report = verify_package(pkg, &sigs, trusted, policy, &now());
        assert_eq!(report.accepted, accepted, "{name}: {:?}", report.log);
        assert_eq!(report.log, log, "{name}");
        match report.into_result() {
            Ok(_) => assert!(accepted, "{name}"),
            Err(e) => {
                assert!(!accepted, "{name}");
                assert!(matches!(e, Error::NoValidSignature));
                assert_eq!(e.to_string(), NONE);
            }
        }
    }
}

#[test]
fn expiry_is_judged_by_the_injected_clock() {
    let package = package();
    let (key, cert) = pyca();
    let sigs = vec![sign(&package, key, cert)];
    let trusted: TrustedCertificates = [cert.clone()].into_iter().collect();
    let after = FixedClock(cert.not_after() + 1);
    let report = verify_package(&package, &sigs, &trusted, VerifyPolicy::default(), &after);
    assert_eq!(
        report.log,
        ["Certificate #1 has expired", "No valid signature found."]
    );
    let last_second = FixedClock(cert.not_after());
    assert!(
        verify_package(
            &package,
            &sigs,
            &trusted,
            VerifyPolicy::default(),
            &last_second
        )
        .accepted
    );
}

#[test]
fn signing_appends_and_replaces_per_certificate() {
    let package = package();
    let (a_key, a_cert) = pyca();
    let (b_key, b_cert) = openssl_rsa();
    let mut list = Vec::new();
    sign_package(&package, a_key, a_cert, &mut list).unwrap();
    sign_package(&package, b_key, b_cert, &mut list).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].certificate, a_cert.to_pem());
    assert_eq!(list[1].certificate, b_cert.to_pem());
    sign_package(&package, a_key, a_cert, &mut list).unwrap();
    assert_eq!(
        list.len(),
        2,
        "re-signing with the same key replaces its entry"
    );
    // Wire format round trip.
    let json = signatures_to_json(&list);
    assert!(json.contains("\"certificate\"") && json.contains("\"signature\""));
    assert_eq!(signatures_from_json(&json).unwrap(), list);
    // Key and certificate must match; packages are RSA only.
    let err = sign_package(&package, a_key, b_cert, &mut list).unwrap_err();
    assert!(matches!(err, Error::KeyCertificateMismatch));
    let ed = PrivateKey::generate_ed25519().unwrap();
    let subject = Subject {
        alias: "ed".into(),
        owner: "o".into(),
        site: "s".into(),
    };
    let ed_cert = Certificate::self_signed(&ed, &subject, 1, &now()).unwrap();
    assert_eq!(ed.key_type(), KeyType::Ed25519);
    let err = sign_package(&package, &ed, &ed_cert, &mut list).unwrap_err();
    assert!(matches!(err, Error::UnsupportedKey(_)));
}

#[test]
fn ed25519_package_signatures_are_invalid_even_if_trusted() {
    // Checkmk verifies RSA only; an Ed25519 certificate cannot sign a package.
    let package = package();
    let ed = PrivateKey::generate_ed25519().unwrap();
    let subject = Subject {
        alias: "ed".into(),
        owner: "o".into(),
        site: "s".into(),
    };
    let cert = Certificate::self_signed(&ed, &subject, 1, &now()).unwrap();
    use base64::Engine as _;
    let sig = PackageSignature {
        certificate: cert.to_pem(),
        signature: base64::engine::general_purpose::STANDARD.encode(ed.sign(&package).unwrap()),
    };
    let trusted: TrustedCertificates = [cert].into_iter().collect();
    let report = verify_package(&package, &[sig], &trusted, VerifyPolicy::default(), &now());
    assert_eq!(
        report.log,
        ["Signature #1 is invalid.", "No valid signature found."]
    );
}

#[test]
fn golden_signature_equals_pyca() {
    // PKCS#1 v1.5 is deterministic: our signature with the pyca fixture key is
    // byte-identical to the one pyca/cryptography made (tests/data/make_fixtures.sh).
    let (key, _) = pyca();
    let ours = key.sign(&package()).unwrap();
    let theirs = std::fs::read(data("package.pyca.sig")).unwrap();
    assert_eq!(ours.len(), 512);
    assert_eq!(ours, theirs);
    // And pyca's signature verifies with our verifier.
    assert!(pyca().1.public_key().verify(&package(), &theirs));
}

/// A reader that hands out at most 7 bytes per call and counts the largest request, so the
/// test sees that the package is read in pieces through a bounded buffer.
struct Trickle<'a> {
    data: &'a [u8],
    largest_request: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.largest_request = self.largest_request.max(buf.len());
        let n = buf.len().min(7).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn streaming_verification_equals_in_memory_verification() {
    let package: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut tampered = package.clone();
    tampered[299_999] ^= 1;
    let (a_key, a_cert) = pyca();
    let (b_key, b_cert) = openssl_rsa();
    let sigs = vec![sign(b"other", b_key, b_cert), sign(&package, a_key, a_cert)];
    let trusted: TrustedCertificates = [a_cert.clone(), b_cert.clone()].into_iter().collect();
    let clock = agent_sign::SystemClock;
    for bytes in [&package, &tampered] {
        let in_memory = verify_package(bytes, &sigs, &trusted, VerifyPolicy::default(), &clock);
        let mut reader = Trickle {
            data: bytes,
            largest_request: 0,
        };
        let streamed = verify_package_reader(
            &mut reader,
            &sigs,
            &trusted,
            VerifyPolicy::default(),
            &clock,
        )
        .unwrap();
        assert_eq!(streamed, in_memory);
        assert!(reader.largest_request <= DIGEST_BUFFER_BYTES);
    }
    assert!(verify_package(&package, &sigs, &trusted, VerifyPolicy::default(), &clock).accepted);
    assert!(!verify_package(&tampered, &sigs, &trusted, VerifyPolicy::default(), &clock).accepted);
    let digest = PackageDigest::read_from(&mut &package[..]).unwrap();
    assert_eq!(digest, PackageDigest::of(&package));
    assert_eq!(digest.length(), 300_000);
}

#[test]
fn a_signature_is_checked_against_the_package_regardless_of_trust() {
    let package = b"the package".to_vec();
    let (key, cert) = openssl_rsa();
    let sig = sign(&package, key, cert);
    assert_eq!(&sig.check(&PackageDigest::of(&package)).unwrap(), cert);
    assert!(matches!(
        sig.check(&PackageDigest::of(b"the packagE")),
        Err(Error::NoValidSignature)
    ));
}

/// A certificate may start up to two hours in the future (clock skew), and
/// not a second more (found missing by `cargo mutants`: the skew constant
/// and the comparison at its boundary were not pinned).
#[test]
fn not_before_tolerates_two_hours_of_clock_skew_and_no_more() {
    let (key, cert) = pyca();
    assert_eq!(cert.not_before(), JAN_2026);
    let package = b"skew";
    let signatures = vec![sign(package, key, cert)];
    let trusted: TrustedCertificates = [cert.clone()].into_iter().collect();
    let accepted_at = |now: i64| {
        verify_package(
            package,
            &signatures,
            &trusted,
            VerifyPolicy::default(),
            &FixedClock(now),
        )
        .accepted
    };
    let two_hours = 2 * 3600;
    assert!(accepted_at(JAN_2026 - two_hours + 60), "1 h 59 min early");
    assert!(accepted_at(JAN_2026 - two_hours), "exactly 2 h early");
    assert!(!accepted_at(JAN_2026 - two_hours - 1), "2 h and 1 s early");
    // Without the check (Checkmk's rule), any start date is accepted.
    let lenient = VerifyPolicy {
        check_not_before: false,
        ..VerifyPolicy::default()
    };
    let report = verify_package(
        package,
        &signatures,
        &trusted,
        lenient,
        &FixedClock(JAN_2026 - 365 * DAY),
    );
    assert!(report.accepted, "{:?}", report.log);
}

/// The trusted set holds each certificate once (by DER), and says so
/// through `len`, `is_empty` and `iter`.
#[test]
fn trusted_certificates_hold_each_certificate_once() {
    let a = pyca().1.clone();
    let b = openssl_rsa().1.clone();
    let mut trusted = TrustedCertificates::new();
    assert!(trusted.is_empty());
    assert_eq!(trusted.len(), 0);
    assert_eq!(trusted.iter().count(), 0);
    trusted.add(a.clone());
    trusted.add(a.clone());
    assert!(!trusted.is_empty());
    assert_eq!(trusted.len(), 1);
    trusted.add(b.clone());
    assert_eq!(trusted.len(), 2);
    let mut listed: Vec<String> = trusted
        .iter()
        .map(Certificate::fingerprint_sha256)
        .collect();
    listed.sort();
    let mut expected = vec![a.fingerprint_sha256(), b.fingerprint_sha256()];
    expected.sort();
    assert_eq!(listed, expected);
}

/// A reader that answers each `read` with the next scripted item (bytes or an error), then EOF.
struct Scripted(Vec<Result<&'static [u8], std::io::ErrorKind>>);

impl std::io::Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Ok(0);
        }
        match self.0.remove(0) {
            Ok(bytes) => {
                buf[..bytes.len()].copy_from_slice(bytes);
                Ok(bytes.len())
            }
            Err(kind) => Err(kind.into()),
        }
    }
}

#[test]
fn the_digest_retries_interrupted_reads_and_stops_at_other_errors() {
    use std::io::ErrorKind::{ConnectionReset, Interrupted};
    let mut interrupted = Scripted(vec![Ok(b"fuzz "), Err(Interrupted), Ok(b"package")]);
    assert_eq!(
        PackageDigest::read_from(&mut interrupted).unwrap(),
        PackageDigest::of(b"fuzz package")
    );
    let mut reset = Scripted(vec![Ok(b"fuzz "), Err(ConnectionReset), Ok(b"package")]);
    assert_eq!(
        PackageDigest::read_from(&mut reset).unwrap_err().kind(),
        ConnectionReset
    );
}
