//! Fixtures shared by the test modules.

use std::path::PathBuf;
use std::sync::OnceLock;

use agent_sign::{
    Certificate, FixedClock, KdfParams, KeyEntry, KeyStore, KeyType, NewKey, Passphrase, PrivateKey,
};

/// 2026-01-01T00:00:00Z, the fixtures' `not_before`.
pub(crate) const JAN_2026: i64 = 1_767_225_600;
pub(crate) const DAY: i64 = 86_400;

/// "Now" for the tests: 2027-02-05, when every fixture certificate is valid
/// (the OpenSSL fixtures were made on 2026-11-21).
pub(crate) fn now() -> FixedClock {
    FixedClock(JAN_2026 + 400 * DAY)
}

pub(crate) fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub(crate) fn read(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap()
}

pub(crate) fn fast_kdf() -> KdfParams {
    KdfParams::insecure_for_tests(1000)
}

/// The Checkmk-style fixture made with pyca (RSA-4096, 2048 PBKDF2 iterations).
pub(crate) fn pyca() -> &'static (PrivateKey, Certificate) {
    static K: OnceLock<(PrivateKey, Certificate)> = OnceLock::new();
    K.get_or_init(|| {
        let key = PrivateKey::from_encrypted_pem(
            &read("pyca.key.pem"),
            &Passphrase::new("checkmk-fixture-pass"),
        )
        .unwrap();
        let cert = Certificate::from_pem(&read("pyca.crt.pem")).unwrap();
        (key, cert)
    })
}

/// The OpenSSL-made fixture (RSA-2048).
pub(crate) fn openssl_rsa() -> &'static (PrivateKey, Certificate) {
    static K: OnceLock<(PrivateKey, Certificate)> = OnceLock::new();
    K.get_or_init(|| {
        let key = PrivateKey::from_encrypted_pem(
            &read("openssl-rsa.key.pem"),
            &Passphrase::new("openssl-fixture-pass"),
        )
        .unwrap();
        let cert = Certificate::from_pem(&read("openssl-rsa.crt.pem")).unwrap();
        (key, cert)
    })
}

pub(crate) const STORE_PASS: &str = "correct horse battery";

/// The one RSA-4096 key this test binary generates, created through the key store.
pub(crate) fn generated() -> &'static (tempfile::TempDir, KeyStore, KeyEntry) {
    static K: OnceLock<(tempfile::TempDir, KeyStore, KeyEntry)> = OnceLock::new();
    K.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path().join("keys")).unwrap();
        let entry = store
            .create(
                &NewKey {
                    alias: "Agent signature".into(),
                    owner: "cmkadmin".into(),
                    site: "mysite".into(),
                    key_type: KeyType::Rsa,
                },
                &Passphrase::new(STORE_PASS),
                fast_kdf(),
                &FixedClock(JAN_2026),
            )
            .unwrap();
        (dir, store, entry)
    })
}

pub(crate) fn package() -> Vec<u8> {
    std::fs::read(data("package.bin")).unwrap()
}
