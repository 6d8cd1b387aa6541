//! Keys and certificates: requirement 1-4, 6, 8, 11, 36.

use agent_sign::{
    Certificate, DEFAULT_KDF_ITERATIONS, Error, ExpiryState, ExpiryThresholds, FixedClock,
    KdfParams, KeyType, Passphrase, PrivateKey, Subject,
};
use pkcs8::der::Decode as _;
use x509_parser::prelude::*;

use crate::common::*;

#[test]
fn generated_certificate_is_shaped_like_checkmk_2_5() {
    let (_, store, entry) = generated();
    let cert = &entry.certificate;
    let (rest, x) = parse_x509_certificate(cert.der()).unwrap();
    assert!(rest.is_empty());
    assert_eq!(x.version(), X509Version::V3);
    let subject = x.subject().to_string();
    assert_eq!(
        subject,
        "CN=Agent signature, O=Checkmk Site mysite, OU=cmkadmin"
    );
    assert_eq!(x.issuer().to_string(), subject);
    // Random positive serial of 16 bytes.
    let serial = x.raw_serial();
    assert_eq!(serial.len(), 16);
    assert!(serial[0] & 0x80 == 0 && serial[0] != 0);
    // 10 years from creation.
    assert_eq!(x.validity().not_before.timestamp(), JAN_2026);
    assert_eq!(x.validity().not_after.timestamp(), 2_082_758_400); // 2036-01-01
    // Extensions: exactly BasicConstraints (critical, CA false), KeyUsage
    // (critical, digitalSignature only) and SKI (not critical).
    let bc = x.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && !bc.value.ca);
    let ku = x.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert!(ku.value.digital_signature());
    assert_eq!(ku.value.flags, 1, "digitalSignature only");
    let mut oids: Vec<String> = x
        .extensions()
        .iter()
        .map(|e| e.oid.to_id_string())
        .collect();
    oids.sort();
    assert_eq!(oids, ["2.5.29.14", "2.5.29.15", "2.5.29.19"]);
    let ski = x
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.14")
        .unwrap();
    assert!(!ski.critical);
    // sha512WithRSAEncryption, self-signature valid.
    assert_eq!(
        x.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.113549.1.1.13"
    );
    assert_eq!(cert.signature_algorithm(), "sha512WithRSAEncryption");
    x.verify_signature(None).unwrap();
    cert.verify_self_signature().unwrap();
    // RSA-4096, e = 65537.
    match x.public_key().parsed().unwrap() {
        public_key::PublicKey::RSA(rsa) => {
            assert_eq!(rsa.key_size(), 4096);
            assert_eq!(rsa.try_exponent().unwrap(), 65537);
        }
        other => panic!("not RSA: {other:?}"),
    }
    assert_eq!(cert.public_key().bits(), 4096);
    assert_eq!(cert.common_name(), Some("Agent signature"));
    assert_eq!(cert.organization(), Some("Checkmk Site mysite"));
    assert_eq!(cert.organizational_unit(), Some("cmkadmin"));
    // The stored key decrypts and matches.
    let (key, _) = store
        .unlock(entry.id, &Passphrase::new(STORE_PASS))
        .unwrap();
    assert_eq!(key.key_type(), KeyType::Rsa);
    assert!(key.matches(cert));
}

/// Decodes the PBES2 parameters of an encrypted PEM.
fn pbes2_params(pem: &str) -> (u32, usize, String, String) {
    let (label, der) = pem_rfc7468_decode(pem);
    assert_eq!(label, "ENCRYPTED PRIVATE KEY");
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der).unwrap();
    let pkcs5::EncryptionScheme::Pbes2(p) = info.encryption_algorithm else {
        panic!("not PBES2");
    };
    let kdf = p.kdf.pbkdf2().expect("PBKDF2");
    (
        kdf.iteration_count,
        kdf.salt.len(),
        format!("{:?}", kdf.prf),
        p.encryption.oid().to_string(),
    )
}

fn pem_rfc7468_decode(pem: &str) -> (String, Vec<u8>) {
    use base64::Engine as _;
    let begin = pem.find("-----BEGIN ").unwrap() + 11;
    let label_end = begin + pem[begin..].find("-----").unwrap();
    let label = pem[begin..label_end].to_string();
    let body_start = label_end + 5;
    let end = pem.find("-----END ").unwrap();
    let b64: String = pem[body_start..end].split_whitespace().collect();
    (
        label,
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
}

#[test]
fn new_keys_are_pbes2_pbkdf2_sha256_600k_aes256cbc() {
    let key = PrivateKey::generate_ed25519().unwrap();
    let pass = Passphrase::new("twelve chars!");
    let pem = key.to_encrypted_pem(&pass, KdfParams::default()).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    let (iterations, salt, prf, cipher) = pbes2_params(&pem);
    assert_eq!(iterations, DEFAULT_KDF_ITERATIONS);
    assert!(iterations >= 600_000);
    assert_eq!(salt, 16);
    assert_eq!(prf, "HmacWithSha256");
    assert_eq!(cipher, "2.16.840.1.101.3.4.1.42", "aes-256-cbc");
    let back = PrivateKey::from_encrypted_pem(&pem, &pass).unwrap();
    assert_eq!(back.public_key(), key.public_key());
}

#[test]
fn kdf_minimum_is_enforced_unless_explicitly_insecure() {
    assert!(matches!(
        KdfParams::new(2048),
        Err(Error::WeakKdf {
            iterations: 2048,
            min: 600_000
        })
    ));
    assert_eq!(KdfParams::new(700_000).unwrap().iterations(), 700_000);
    assert_eq!(KdfParams::insecure_for_tests(10).iterations(), 10);
    assert!(KdfParams::new(100_000_000).is_err());
}

#[test]
fn wrong_passphrase_and_malformed_pem_are_distinct_errors() {
    let pem = read("pyca.key.pem");
    let err =
        PrivateKey::from_encrypted_pem(&pem, &Passphrase::new("wrong passphrase")).unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase), "{err:?}");
    // Damaged base64 / structure.
    let broken = pem.replacen("MII", "M!I", 1);
    let err = PrivateKey::from_encrypted_pem(&broken, &Passphrase::new("x")).unwrap_err();
    assert!(matches!(err, Error::MalformedPem(_)), "{err:?}");
    let err = PrivateKey::from_encrypted_pem("no pem here", &Passphrase::new("x")).unwrap_err();
    assert!(matches!(err, Error::MalformedPem(_)), "{err:?}");
    // Truncated DER inside a valid PEM frame.
    let err = PrivateKey::from_encrypted_pem(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAMCAQA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
        &Passphrase::new("x"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::MalformedPem(_)), "{err:?}");
}

#[test]
fn imports_pyca_and_openssl_keys() {
    let (key, cert) = pyca();
    assert_eq!(key.public_key().bits(), 4096);
    assert!(key.matches(cert));
    let (key, cert) = openssl_rsa();
    assert_eq!(key.public_key().bits(), 2048);
    assert!(key.matches(cert));
    let ed = PrivateKey::from_encrypted_pem(
        &read("openssl-ed25519.key.pem"),
        &Passphrase::new("openssl-fixture-pass"),
    )
    .unwrap();
    assert_eq!(ed.key_type(), KeyType::Ed25519);
    assert!(!key.matches(&pyca().1));
}

#[test]
fn rejects_small_unencrypted_and_unsupported_keys_distinctly() {
    // The shape of Checkmk's public test vector: decrypts with "foo", then 1024 bits.
    let err = PrivateKey::from_encrypted_pem(&read("small1024.key.pem"), &Passphrase::new("foo"))
        .unwrap_err();
    assert!(matches!(err, Error::KeyTooSmall { bits: 1024 }), "{err:?}");
    // ... and with a wrong passphrase it is a wrong passphrase, not "too small".
    let err = PrivateKey::from_encrypted_pem(&read("small1024.key.pem"), &Passphrase::new("bar"))
        .unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase), "{err:?}");
    let err = PrivateKey::from_encrypted_pem(&read("plain-rsa.key.pem"), &Passphrase::new("x"))
        .unwrap_err();
    assert!(matches!(err, Error::NotEncrypted), "{err:?}");
    let err = PrivateKey::from_encrypted_pem(
        &read("openssl-ec.key.pem"),
        &Passphrase::new("openssl-fixture-pass"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnsupportedKey(_)), "{err:?}");
}

#[test]
fn ed25519_keys_are_pkcs8_v1() {
    let key = PrivateKey::generate_ed25519().unwrap();
    let pass = Passphrase::new("twelve chars!");
    let pem = key.to_encrypted_pem(&pass, fast_kdf()).unwrap();
    let (_, der) = pem_rfc7468_decode(&pem);
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der).unwrap();
    let plain = info.decrypt(pass_bytes()).unwrap();
    let pki = pkcs8::PrivateKeyInfo::from_der(plain.as_bytes()).unwrap();
    assert_eq!(pki.version(), pkcs8::Version::V1);
    assert!(pki.public_key.is_none());
    fn pass_bytes() -> &'static [u8] {
        b"twelve chars!"
    }
}

#[test]
fn passphrase_rules_and_redaction() {
    assert!(matches!(
        Passphrase::new("short pass!").check_new(),
        Err(Error::WeakPassphrase { min: 12 })
    ));
    Passphrase::new("long enough!").check_new().unwrap();
    // Characters, not bytes.
    assert!(Passphrase::new("ääääääääääää").check_new().is_ok());
    assert!(Passphrase::new("äääääääääää").check_new().is_err());
    let p = Passphrase::new("super secret value");
    assert!(!format!("{p:?}").contains("secret"));
    let key = &pyca().0;
    assert!(!format!("{key:?}").contains("BEGIN"));
}

#[test]
fn digests_and_fingerprints() {
    let cert = &pyca().1;
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-md5", "-in"])
        .arg(data("pyca.crt.pem"))
        .output()
        .expect("the openssl command is required for interop tests");
    let line = String::from_utf8(out.stdout).unwrap();
    let expected = line.trim().split_once("Fingerprint=").unwrap().1;
    assert_eq!(cert.md5_digest(), expected);
    assert_eq!(cert.md5_digest().len(), 16 * 3 - 1);
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(data("pyca.crt.pem"))
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    let expected = line.trim().split_once("Fingerprint=").unwrap().1;
    assert_eq!(
        cert.fingerprint_sha256(),
        expected.replace(':', "").to_lowercase()
    );
}

#[test]
fn rewrapped_and_crlf_certificates_are_the_same_certificate() {
    let pem = read("pyca.crt.pem");
    let crlf = pem.replace('\n', "\r\n");
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    let rewrapped = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        body.as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let a = Certificate::from_pem(&pem).unwrap();
    assert_eq!(Certificate::from_pem(&crlf).unwrap().sha256(), a.sha256());
    assert_eq!(
        Certificate::from_pem(&rewrapped).unwrap().sha256(),
        a.sha256()
    );
    assert_eq!(a.to_pem(), pem, "we write what pyca writes");
}

#[test]
fn expiry_state_follows_the_injected_clock() {
    let cert = &pyca().1;
    let at = |days_left: i64| FixedClock(cert.not_after() - days_left * DAY);
    let t = ExpiryThresholds::default();
    let cases = [
        (100, ExpiryState::Ok),
        (91, ExpiryState::Ok),
        (90, ExpiryState::Warn),
        (60, ExpiryState::Warn),
        (30, ExpiryState::Warn),
        (21, ExpiryState::Warn),
        (20, ExpiryState::Crit),
        (-1, ExpiryState::Crit),
    ];
    for (days, want) in cases {
        assert_eq!(cert.expiry_state(&at(days), t), want, "{days} days left");
    }
    assert_eq!(cert.days_left(&at(60)), 60);
    assert!(cert.is_expired(&at(-1)));
    let custom = ExpiryThresholds {
        warn_days: 20,
        crit_days: 5,
    };
    assert_eq!(cert.expiry_state(&at(60), custom), ExpiryState::Ok);
    assert_eq!(cert.expiry_state(&at(20), custom), ExpiryState::Warn);
    assert_eq!(cert.expiry_state(&at(5), custom), ExpiryState::Crit);
}

#[test]
fn ed25519_certificates_and_mismatches() {
    let key = PrivateKey::generate_ed25519().unwrap();
    let subject = Subject {
        alias: "metadata".into(),
        owner: "cmkadmin".into(),
        site: "mysite".into(),
    };
    let cert = Certificate::self_signed(&key, &subject, 10, &now()).unwrap();
    assert_eq!(cert.public_key().key_type(), KeyType::Ed25519);
    assert_eq!(cert.signature_algorithm(), "ED25519");
    cert.verify_self_signature().unwrap();
    assert!(key.matches(&cert));
    assert!(!pyca().0.matches(&cert));
}

#[test]
fn refuses_scrypt_sha1_prf_and_pbes1() {
    for (file, pass) in [
        ("scrypt-rsa.key.pem", "scrypt-pass"),
        ("sha1prf-rsa.key.pem", "sha1-pass"),
        ("pbes1-rsa.key.pem", "pbes1-pass"),
    ] {
        let err = PrivateKey::from_encrypted_pem(&read(file), &Passphrase::new(pass)).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedEncryption(_)),
            "{file}: {err:?}"
        );
    }
}

#[test]
fn serials_are_positive_and_of_full_length() {
    // The first byte is 0x40..=0x7f: positive, never shortened by a leading zero.
    let key = PrivateKey::generate_ed25519().unwrap();
    let subject = Subject {
        alias: "serials".into(),
        owner: "cmkadmin".into(),
        site: "mysite".into(),
    };
    for _ in 0..16 {
        let cert = Certificate::self_signed(&key, &subject, 1, &now()).unwrap();
        let serial = cert.serial_hex();
        assert_eq!(serial.len(), 32, "{serial}");
        let first = u8::from_str_radix(&serial[..2], 16).unwrap();
        assert!((0x40..=0x7f).contains(&first), "{serial}");
    }
}

#[test]
fn certificates_are_equal_exactly_when_their_der_is() {
    let key = PrivateKey::generate_ed25519().unwrap();
    let subject = Subject {
        alias: "equal".into(),
        owner: "cmkadmin".into(),
        site: "mysite".into(),
    };
    let a = Certificate::self_signed(&key, &subject, 1, &now()).unwrap();
    let b = Certificate::self_signed(&key, &subject, 1, &now()).unwrap();
    assert_ne!(a, b, "two serials, two certificates");
    assert_eq!(a, Certificate::from_pem(&a.to_pem()).unwrap());
}

#[test]
fn display_and_debug_forms_name_the_key_and_never_its_bytes() {
    assert_eq!(KeyType::Rsa.to_string(), "rsa");
    assert_eq!(KeyType::Ed25519.to_string(), "ed25519");
    let cert = &pyca().1;
    let key = format!("{:?}", cert.public_key());
    assert!(key.starts_with("PublicKey {"), "{key}");
    assert!(key.contains("bits: 4096"), "{key}");
    assert!(key.contains(&cert.public_key().key_id()), "{key}");
    let shown = format!("{cert:?}");
    assert!(shown.starts_with("Certificate {"), "{shown}");
    assert!(shown.contains(&cert.fingerprint_sha256()), "{shown}");
    assert!(shown.contains(cert.common_name().unwrap()), "{shown}");
    assert!(!shown.contains("MII"), "no PEM or DER: {shown}");
}

#[test]
fn a_certificate_whose_signature_was_altered_fails_its_self_check() {
    let cert = &pyca().1;
    cert.verify_self_signature().unwrap();
    // The signature BIT STRING ends the DER: flip its last byte.
    let mut der = cert.der().to_vec();
    *der.last_mut().unwrap() ^= 0x01;
    let altered = Certificate::from_der(&der).unwrap();
    let err = altered.verify_self_signature().unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
}

#[test]
fn a_certificate_expires_after_its_last_second() {
    let cert = &pyca().1;
    let end = cert.not_after();
    assert!(!cert.is_expired(&FixedClock(end - DAY)));
    assert!(
        !cert.is_expired(&FixedClock(end)),
        "valid through not_after"
    );
    assert!(cert.is_expired(&FixedClock(end + 1)));
}

#[test]
fn an_expired_certificate_is_crit_whatever_the_thresholds() {
    let cert = &pyca().1;
    let odd = ExpiryThresholds {
        warn_days: -10,
        crit_days: -20,
    };
    let after = |days: i64| FixedClock(cert.not_after() + days * DAY);
    assert_eq!(cert.expiry_state(&after(1), odd), ExpiryState::Crit);
    assert_eq!(cert.expiry_state(&after(0), odd), ExpiryState::Ok);
}

#[test]
fn validity_from_a_leap_day_ends_on_the_last_day_of_february() {
    let key = PrivateKey::generate_ed25519().unwrap();
    let subject = Subject {
        alias: "leap".into(),
        owner: "cmkadmin".into(),
        site: "mysite".into(),
    };
    // 2028-02-29T12:00:00Z; one year later there is no 29 February.
    let leap_day = 1_835_438_400;
    let cert = Certificate::self_signed(&key, &subject, 1, &FixedClock(leap_day)).unwrap();
    assert_eq!(cert.not_before(), leap_day);
    // 2029-02-28T12:00:00Z: 365 days later.
    assert_eq!(cert.not_after(), leap_day + 365 * DAY);
}

#[test]
fn a_private_key_shows_its_type_and_public_half_only() {
    let key = PrivateKey::generate_ed25519().unwrap();
    let shown = format!("{key:?}");
    assert!(shown.starts_with("PrivateKey {"), "{shown}");
    assert!(shown.contains("Ed25519"), "{shown}");
    assert!(shown.contains(&key.public_key().key_id()), "{shown}");
    assert!(
        shown.ends_with(".. }"),
        "the secret part is left out: {shown}"
    );
    assert!(!shown.contains("pkcs8"), "{shown}");
}

#[test]
fn traditional_pem_keys_are_told_apart_by_their_headers() {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode([0x30u8, 0x03, 0x02, 0x01, 0x00]);
    let plain = format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n");
    let err = PrivateKey::from_encrypted_pem(&plain, &Passphrase::new("x")).unwrap_err();
    assert!(matches!(err, Error::NotEncrypted), "{err:?}");
    let legacy = format!(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
         DEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\n{body}\n\
         -----END RSA PRIVATE KEY-----\n"
    );
    let err = PrivateKey::from_encrypted_pem(&legacy, &Passphrase::new("x")).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedEncryption(why) if why.contains("Proc-Type")),
        "{err:?}"
    );
}

#[test]
fn an_unknown_key_derivation_inside_pbes2_is_named() {
    use base64::Engine as _;
    // EncryptedPrivateKeyInfo: PBES2 with key derivation 1.2.3.4 (unknown) and aes-256-cbc.
    let mut der = vec![0x30, 0x3f, 0x30, 0x33];
    der.extend([
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d,
    ]);
    der.extend([0x30, 0x26, 0x30, 0x05, 0x06, 0x03, 0x2a, 0x03, 0x04]);
    der.extend([
        0x30, 0x1d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a,
    ]);
    der.extend([0x04, 0x10]);
    der.extend([0u8; 16]);
    der.extend([0x04, 0x08]);
    der.extend([0u8; 8]);
    assert_eq!(der.len(), 0x3f + 2);
    let body = base64::engine::general_purpose::STANDARD.encode(&der);
    let pem = format!(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n-----END ENCRYPTED PRIVATE KEY-----\n"
    );
    let err = PrivateKey::from_encrypted_pem(&pem, &Passphrase::new("x")).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedEncryption(why) if why.contains("key derivation") && why.contains("1.2.3.4")),
        "{err:?}"
    );
}
