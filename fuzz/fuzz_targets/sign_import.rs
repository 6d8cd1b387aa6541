//! Key and certificate import: PEM (tolerant reader), certificates (PEM and
//! DER), `SubjectPublicKeyInfo`, plain and encrypted PKCS#8. Checks: no panic;
//! a certificate re-encodes to the same DER; a private key that loads signs,
//! and its own public key verifies that signature.
#![no_main]

use agent_sign::{Certificate, Passphrase, PrivateKey, PublicKey};
use cmk_toolkit_fuzz::{MAX_FUZZ_ITERATIONS, pbkdf2_iterations};
use libfuzzer_sys::fuzz_target;

fn check_cert(cert: &Certificate) {
    let pem = cert.to_pem();
    let again = Certificate::from_pem(&pem).expect("to_pem output parses");
    assert_eq!(again.der(), cert.der(), "PEM round trip changes the DER");
    let again = Certificate::from_der(cert.der()).expect("der() parses");
    assert_eq!(again.sha256(), cert.sha256());
    let _ = cert.verify_self_signature();
    let _ = (
        cert.common_name(),
        cert.organization(),
        cert.organizational_unit(),
    );
    let _ = (
        cert.serial_hex(),
        cert.not_before(),
        cert.not_after(),
        cert.md5_digest(),
    );
    let _ = cert.signature_algorithm();
    check_public(cert.public_key());
}

fn check_public(key: &PublicKey) {
    let again = PublicKey::from_spki_der(key.spki_der()).expect("spki_der() parses");
    assert_eq!(again.key_id(), key.key_id());
    assert!(!key.verify(b"message", b"not a signature"));
}

fn check_key(key: &PrivateKey) {
    let message = b"fuzz message";
    if let Ok(sig) = key.sign(message) {
        assert!(
            key.public_key().verify(message, &sig),
            "own signature does not verify"
        );
        assert!(
            !key.public_key().verify(b"other message", &sig),
            "signature verifies another message"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = Certificate::from_der(data) {
        check_cert(&cert);
    }
    if let Ok(key) = PublicKey::from_spki_der(data) {
        check_public(&key);
    }
    if let Ok(key) = PrivateKey::from_pkcs8_der(data) {
        check_key(&key);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cert) = Certificate::from_pem(text) {
        check_cert(&cert);
    }
    if let Ok(certs) = Certificate::all_from_pem(text) {
        for cert in &certs {
            check_cert(cert);
        }
    }
    if pbkdf2_iterations(text).is_some_and(|n| n > MAX_FUZZ_ITERATIONS) {
        return;
    }
    for pass in ["checkmk-fixture-pass", "openssl-fixture-pass"] {
        if let Ok(key) = PrivateKey::from_encrypted_pem(text, &Passphrase::new(pass)) {
            check_key(&key);
        }
    }
});
