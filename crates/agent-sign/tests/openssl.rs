//! Interoperability with the real `openssl` command (requirements 2, 3, 9, 36).
//! CI installs OpenSSL; these tests fail (not skip) when it is missing.

use std::path::Path;
use std::process::{Command, Output};

use agent_sign::{
    Certificate, KdfParams, KeyStore, Passphrase, PrivateKey, TrustedCertificates, VerifyPolicy,
    sign_package, verify_package,
};

use crate::common::*;

fn openssl(args: &[&str], dir: &Path) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is required for the interop tests (install OpenSSL 3)")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl pkcs8` decrypting `k.pem` in `dir` with `passphrase` into `out`.
fn openssl_decrypt_k_pem(dir: &Path, passphrase: &str, out: &str) -> Output {
    let passin = format!("pass:{passphrase}");
    openssl(
        &["pkcs8", "-in", "k.pem", "-passin", &passin, "-out", out],
        dir,
    )
}

/// `openssl dgst -sha256 -verify` of the signature `sig` over `package.bin` with `pub.pem`
/// (all in `dir`).
/// `openssl dgst -sha256 -sign` of `dir/package.bin` with `dir/key.pem` (passphrase
/// `passphrase`): the raw PKCS#1 v1.5 signature.
fn openssl_sign_package(dir: &Path, passphrase: &str) -> Vec<u8> {
    let passin = format!("pass:{passphrase}");
    ok(&openssl(
        &[
            "dgst",
            "-sha256",
            "-sign",
            "key.pem",
            "-passin",
            &passin,
            "-out",
            "osig",
            "package.bin",
        ],
        dir,
    ));
    std::fs::read(dir.join("osig")).unwrap()
}

fn openssl_verify_package_signature(dir: &Path) -> Output {
    openssl(
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "package.bin",
        ],
        dir,
    )
}

#[test]
fn openssl_decrypts_our_600k_key_and_rejects_a_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = pyca();
    let pass = Passphrase::new("interop passphrase");
    let pem = key.to_encrypted_pem(&pass, KdfParams::default()).unwrap();
    std::fs::write(dir.path().join("k.pem"), &pem).unwrap();
    ok(&openssl_decrypt_k_pem(
        dir.path(),
        "interop passphrase",
        "plain.pem",
    ));
    // The decrypted key is the same key: compare public keys.
    let pub_pem = ok(&openssl(
        &["pkey", "-in", "plain.pem", "-pubout"],
        dir.path(),
    ));
    let ours = Certificate::from_pem(&read("pyca.crt.pem")).unwrap();
    let ours_pub = ok(&openssl(
        &[
            "x509",
            "-noout",
            "-pubkey",
            "-in",
            data("pyca.crt.pem").to_str().unwrap(),
        ],
        dir.path(),
    ));
    assert_eq!(pub_pem, ours_pub);
    assert_eq!(ours.public_key(), key.public_key());
    let out = openssl_decrypt_k_pem(dir.path(), "wrong", "x.pem");
    assert!(!out.status.success());
    // openssl reports the parameters we promised.
    let asn1 = ok(&openssl(&["asn1parse", "-in", "k.pem"], dir.path()));
    for needle in [
        "PBES2",
        "PBKDF2",
        "hmacWithSHA256",
        "aes-256-cbc",
        ":0927C0",
    ] {
        assert!(asn1.contains(needle), "{needle} missing in\n{asn1}");
    }
}

#[test]
fn openssl_verifies_our_package_signature_with_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = pyca();
    let package = package();
    let mut sigs = Vec::new();
    sign_package(&package, key, cert, &mut sigs).unwrap();
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&sigs[0].signature)
        .unwrap();
    std::fs::write(dir.path().join("package.bin"), &package).unwrap();
    std::fs::write(dir.path().join("sig"), &raw).unwrap();
    std::fs::write(dir.path().join("cert.pem"), &sigs[0].certificate).unwrap();
    ok(&openssl(
        &[
            "x509", "-in", "cert.pem", "-noout", "-pubkey", "-out", "pub.pem",
        ],
        dir.path(),
    ));
    let out = ok(&openssl_verify_package_signature(dir.path()));
    assert_eq!(out.trim(), "Verified OK");
    // A tampered byte fails.
    let mut tampered = package.clone();
    tampered[0] ^= 0xff;
    std::fs::write(dir.path().join("package.bin"), &tampered).unwrap();
    let out = openssl_verify_package_signature(dir.path());
    assert!(!out.status.success());
    // openssl's own signature with the same key is byte-identical (deterministic PKCS#1 v1.5).
    std::fs::write(dir.path().join("package.bin"), &package).unwrap();
    std::fs::write(dir.path().join("key.pem"), read("pyca.key.pem")).unwrap();
    assert_eq!(
        openssl_sign_package(dir.path(), "checkmk-fixture-pass"),
        raw
    );
}

#[test]
fn openssl_parses_our_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, entry) = generated();
    std::fs::write(dir.path().join("c.pem"), entry.certificate.to_pem()).unwrap();
    let text = ok(&openssl(
        &["x509", "-in", "c.pem", "-noout", "-text"],
        dir.path(),
    ));
    for needle in [
        "Signature Algorithm: sha512WithRSAEncryption",
        "Public-Key: (4096 bit)",
        "Exponent: 65537 (0x10001)",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "X509v3 Subject Key Identifier:",
        "Subject: CN = Agent signature, O = Checkmk Site mysite, OU = cmkadmin",
        "Issuer: CN = Agent signature, O = Checkmk Site mysite, OU = cmkadmin",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
    // openssl checks the self-signature too.
    let out = ok(&openssl(
        &[
            "verify",
            "-CAfile",
            "c.pem",
            "-partial_chain",
            "-check_ss_sig",
            "c.pem",
        ],
        dir.path(),
    ));
    assert!(out.contains("OK"), "{out}");
}

#[test]
fn openssl_reads_our_ed25519_key_and_verifies_its_signature() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate_ed25519().unwrap();
    let pass = Passphrase::new("interop passphrase");
    std::fs::write(
        dir.path().join("k.pem"),
        key.to_encrypted_pem(&pass, fast_kdf()).unwrap(),
    )
    .unwrap();
    ok(&openssl(
        &[
            "pkey",
            "-in",
            "k.pem",
            "-passin",
            "pass:interop passphrase",
            "-pubout",
            "-out",
            "pub.pem",
        ],
        dir.path(),
    ));
    let message = b"canonical metadata bytes";
    std::fs::write(dir.path().join("msg"), message).unwrap();
    std::fs::write(dir.path().join("sig"), key.sign(message).unwrap()).unwrap();
    let out = ok(&openssl(
        &[
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg",
            "-sigfile", "sig",
        ],
        dir.path(),
    ));
    assert!(out.contains("Signature Verified Successfully"), "{out}");
}

#[test]
fn we_import_and_use_keys_openssl_made_now() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-aes-256-cbc",
            "-pass",
            "pass:made by openssl",
            "-out",
            "k.pem",
        ],
        d,
    ));
    ok(&openssl(
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "k.pem",
            "-passin",
            "pass:made by openssl",
            "-sha256",
            "-days",
            "30",
            "-subj",
            "/CN=fresh/O=Checkmk Site x/OU=me",
            "-out",
            "c.pem",
        ],
        d,
    ));
    let combined = std::fs::read_to_string(d.join("k.pem")).unwrap()
        + &std::fs::read_to_string(d.join("c.pem")).unwrap();
    let store = KeyStore::open(d.join("store")).unwrap();
    let pass = Passphrase::new("made by openssl");
    let entry = store
        .import(&combined, "fresh", "me", &pass, fast_kdf())
        .unwrap();
    assert_eq!(entry.certificate.common_name(), Some("fresh"));
    let (key, entry) = store.unlock(entry.id, &pass).unwrap();
    let package = b"package made for the openssl key".to_vec();
    let mut sigs = Vec::new();
    sign_package(&package, &key, &entry.certificate, &mut sigs).unwrap();
    let trusted: TrustedCertificates =
        Certificate::all_from_pem(&std::fs::read_to_string(d.join("c.pem")).unwrap())
            .unwrap()
            .into_iter()
            .collect();
    let report = verify_package(
        &package,
        &sigs,
        &trusted,
        VerifyPolicy::default(),
        &agent_sign::SystemClock,
    );
    assert!(report.accepted, "{:?}", report.log);
}

/// pyca/cryptography (what Checkmk itself uses) loads our key and verifies our
/// signature the way the updater does. Skipped, with a message, when python3
/// with `cryptography` is not installed; CI installs it and forbids the skip
/// (`CMK_REQUIRE_SHARED=1`).
#[test]
fn pyca_loads_our_key_and_verifies_our_signature_like_the_updater() {
    let has_pyca = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !testkit::require(
        has_pyca,
        "python3 with pyca/cryptography",
        "apt-get install python3-cryptography",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, store, entry) = generated();
    let pem = store
        .export(entry.id, &Passphrase::new(STORE_PASS))
        .unwrap();
    std::fs::write(d.join("combined.pem"), &pem).unwrap();
    let package = package();
    std::fs::write(d.join("package.bin"), &package).unwrap();
    let (key, entry) = store
        .unlock(entry.id, &Passphrase::new(STORE_PASS))
        .unwrap();
    let mut sigs = Vec::new();
    sign_package(&package, &key, &entry.certificate, &mut sigs).unwrap();
    std::fs::write(d.join("sigs.json"), agent_sign::signatures_to_json(&sigs)).unwrap();
    let script = r#"
import json, base64, re, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
text = open("combined.pem").read()
key_pem = re.search(r"-----BEGIN ENCRYPTED PRIVATE KEY-----[^-]+-----END ENCRYPTED PRIVATE KEY-----", text).group(0)
cert_pem = re.search(r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----", text).group(0)
assert text.startswith(key_pem) and text.rstrip().endswith(cert_pem)
key = serialization.load_pem_private_key(key_pem.encode(), password=sys.argv[1].encode())
cert = x509.load_pem_x509_certificate(cert_pem.encode())
assert key.public_key().public_numbers() == cert.public_key().public_numbers()
try:
    serialization.load_pem_private_key(key_pem.encode(), password=b"wrong")
    raise SystemExit("wrong passphrase accepted")
except ValueError:
    pass
data = open("package.bin", "rb").read()
for s in json.load(open("sigs.json")):
    c = x509.load_pem_x509_certificate(s["certificate"].encode())
    c.public_key().verify(base64.b64decode(s["signature"]), data, padding.PKCS1v15(), hashes.SHA256())
print("pyca OK", cert.signature_hash_algorithm.name)
"#;
    let out = Command::new("python3")
        .args(["-c", script, STORE_PASS])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "pyca OK sha512"
    );
}

/// `openssl req -x509 -newkey rsa:<bits> -keyout k.pem -out c.pem -passout pass:...`, OpenSSL
/// 3's plain way to make a key and certificate; the key + certificate PEM.
fn openssl_req_key(dir: &Path, bits: u32, passphrase: &str) -> String {
    ok(&openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            &format!("rsa:{bits}"),
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-passout",
            &format!("pass:{passphrase}"),
            "-subj",
            "/CN=openssl req key",
            "-days",
            "30",
        ],
        dir,
    ));
    let key = std::fs::read_to_string(dir.join("k.pem")).unwrap();
    let cert = std::fs::read_to_string(dir.join("c.pem")).unwrap();
    format!("{key}{cert}")
}

#[test]
fn openssl_req_keys_with_pbes2_des_ede3_cbc_import_and_are_re_encrypted_with_aes() {
    const PASS: &str = "openssl req passphrase";
    // 2048 for speed, and one 4096 key as Checkmk's own keys have.
    for bits in [2048, 4096] {
        let dir = tempfile::tempdir().unwrap();
        let combined = openssl_req_key(dir.path(), bits, PASS);
        // What OpenSSL 3 wrote: PBES2 with des-ede3-cbc inside.
        let parsed = ok(&openssl(&["asn1parse", "-in", "k.pem"], dir.path()));
        assert!(
            parsed.contains(":PBES2") && parsed.contains(":des-ede3-cbc"),
            "{parsed}"
        );
        let store = KeyStore::open(dir.path().join("store")).unwrap();
        let entry = store
            .import(
                &combined,
                "from openssl req",
                "ops",
                &Passphrase::new(PASS),
                fast_kdf(),
            )
            .unwrap();
        assert_eq!(entry.certificate.public_key().bits(), bits as usize);
        // Stored re-encrypted: AES-256-CBC, which OpenSSL decrypts with the same passphrase.
        std::fs::write(dir.path().join("stored.pem"), entry.encrypted_key_pem()).unwrap();
        let parsed = ok(&openssl(&["asn1parse", "-in", "stored.pem"], dir.path()));
        assert!(
            parsed.contains(":aes-256-cbc") && !parsed.contains("des-ede3"),
            "{parsed}"
        );
        let (key, _) = store.unlock(entry.id, &Passphrase::new(PASS)).unwrap();
        assert!(key.matches(&entry.certificate));
        // A wrong passphrase is still a wrong passphrase.
        let dir2 = tempfile::tempdir().unwrap();
        let other = KeyStore::open(dir2.path()).unwrap();
        let err = other
            .import(
                &combined,
                "x",
                "ops",
                &Passphrase::new("not it at all"),
                fast_kdf(),
            )
            .unwrap_err();
        assert!(matches!(err, agent_sign::Error::WrongPassphrase), "{err}");
    }
}

#[test]
fn an_unsupported_cipher_inside_pbes2_is_named() {
    let dir = tempfile::tempdir().unwrap();
    ok(&openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "plain.pem",
        ],
        dir.path(),
    ));
    let out = openssl(
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "plain.pem",
            "-v2",
            "camellia-256-cbc",
            "-passout",
            "pass:camellia passphrase",
            "-out",
            "k.pem",
        ],
        dir.path(),
    );
    if !out.status.success() {
        testkit::skip(&format!(
            "this openssl cannot write camellia-256-cbc: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
        return;
    }
    let text = std::fs::read_to_string(dir.path().join("k.pem")).unwrap();
    let err =
        PrivateKey::from_encrypted_pem(&text, &Passphrase::new("camellia passphrase")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("camellia-256-cbc (1.2.392.200011.61.1.1.1.4)"),
        "{msg}"
    );
    assert!(
        !msg.contains("1.2.840.113549.1.5.13"),
        "not PBES2 itself: {msg}"
    );
}

#[test]
fn digest_verification_refuses_keys_below_2048_bits() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let message = b"a package signed by a small key";
    std::fs::write(dir.path().join("package.bin"), message).unwrap();
    let digest: [u8; 32] = sha2::Sha256::digest(message).into();
    let sign = |key: &str, pass: &str| {
        std::fs::write(dir.path().join("key.pem"), read(key)).unwrap();
        openssl_sign_package(dir.path(), pass)
    };
    // The control: openssl's signature with a 2048-bit key verifies.
    let sig = sign("openssl-rsa.key.pem", "openssl-fixture-pass");
    let cert = &openssl_rsa().1;
    assert!(cert.public_key().verify_sha256_digest(&digest, &sig));
    let small = Certificate::from_pem(&read("small1024.crt.pem")).unwrap();
    assert_eq!(small.public_key().bits(), 1024);
    let sig = sign("small1024.key.pem", "foo");
    assert!(!small.public_key().verify_sha256_digest(&digest, &sig));
    assert!(!small.public_key().verify(message, &sig));
}

#[test]
fn a_key_of_an_odd_bit_length_is_measured_to_the_bit() {
    // 1,025 bits: the modulus' first byte is 0x01, so its bit length is not a multiple of 8.
    let dir = tempfile::tempdir().unwrap();
    ok(&openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1025",
            "-aes-256-cbc",
            "-pass",
            "pass:odd-key-pass",
            "-out",
            "odd.pem",
        ],
        dir.path(),
    ));
    let pem = std::fs::read_to_string(dir.path().join("odd.pem")).unwrap();
    let err = PrivateKey::from_encrypted_pem(&pem, &Passphrase::new("odd-key-pass")).unwrap_err();
    assert!(
        matches!(err, agent_sign::Error::KeyTooSmall { bits: 1025 }),
        "{err:?}"
    );
}
