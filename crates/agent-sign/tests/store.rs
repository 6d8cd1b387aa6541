//! The key store: requirements 1.3, 5, 6, 7.

use agent_sign::{
    Error, FixedClock, KeyStore, KeyType, KnownTrust, MetaKey, NewKey, Passphrase, RoleKeys, Roles,
    Root, SignedDocument, TRUSTED_DIR,
};

use crate::common::*;

fn pass() -> Passphrase {
    Passphrase::new(STORE_PASS)
}

fn ed_key(store: &KeyStore, alias: &str) -> agent_sign::KeyEntry {
    store
        .create(
            &NewKey {
                alias: alias.into(),
                owner: "cmkadmin".into(),
                site: "mysite".into(),
                key_type: KeyType::Ed25519,
            },
            &Passphrase::new(STORE_PASS),
            fast_kdf(),
            &FixedClock(JAN_2026),
        )
        .unwrap()
}

#[test]
fn create_list_ids_and_file_modes() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("keys")).unwrap();
    assert!(store.list().unwrap().is_empty());
    let a = ed_key(&store, "one");
    let b = ed_key(&store, "two");
    assert_eq!((a.id, b.id), (1, 2));
    store.delete(1, &pass(), &[]).unwrap();
    let c = ed_key(&store, "three");
    assert_eq!(c.id, 3, "max + 1");
    let list = store.list().unwrap();
    assert_eq!(
        list.iter()
            .map(|k| (k.id, k.alias.as_str()))
            .collect::<Vec<_>>(),
        [(2, "two"), (3, "three")]
    );
    assert_eq!(list[0].date, JAN_2026);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(store.dir().join("2.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    // Only the encrypted key is on disk.
    let raw = std::fs::read_to_string(store.dir().join("2.json")).unwrap();
    assert!(raw.contains("ENCRYPTED PRIVATE KEY"));
    assert!(!raw.contains("BEGIN PRIVATE KEY"));
    assert!(matches!(store.get(1), Err(Error::KeyNotFound(1))));
}

#[test]
fn weak_passphrase_refused_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let err = store
        .create(
            &NewKey {
                alias: "a".into(),
                owner: "o".into(),
                site: "s".into(),
                key_type: KeyType::Ed25519,
            },
            &Passphrase::new("too short"),
            fast_kdf(),
            &now(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::WeakPassphrase { min: 12 }));
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn import_checkmk_export_then_refuse_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let pass = Passphrase::new("checkmk-fixture-pass");
    let combined = read("pyca.combined.pem");
    let entry = store
        .import(&combined, "From Checkmk", "cmkadmin", &pass, fast_kdf())
        .unwrap();
    assert_eq!(entry.id, 1);
    assert_eq!(entry.key_type, KeyType::Rsa);
    assert_eq!(entry.date, JAN_2026, "date = certificate not_before");
    // Re-encrypted with our KDF, not the 2048 iterations it came with.
    assert_ne!(entry.encrypted_key_pem(), read("pyca.key.pem"));
    let err = store
        .import(&combined, "again", "cmkadmin", &pass, fast_kdf())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "The key / certificate already exists (Key: 1, Description: From Checkmk)"
    );
    // Wrong passphrase, mismatched pair, missing certificate.
    let err = store
        .import(&combined, "x", "y", &Passphrase::new("nope"), fast_kdf())
        .unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase));
    let mismatched = read("pyca.key.pem") + &read("openssl-rsa.crt.pem");
    let err = store
        .import(&mismatched, "x", "y", &pass, fast_kdf())
        .unwrap_err();
    assert!(matches!(err, Error::KeyCertificateMismatch));
    let err = store
        .import(&read("pyca.key.pem"), "x", "y", &pass, fast_kdf())
        .unwrap_err();
    assert!(matches!(err, Error::MalformedPem(_)));
    let err = store
        .import(
            &read("small1024.combined.pem"),
            "x",
            "y",
            &Passphrase::new("foo"),
            fast_kdf(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::KeyTooSmall { bits: 1024 }));
}

#[test]
fn export_is_key_then_certificate_and_reimports() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("a")).unwrap();
    let entry = ed_key(&store, "exported");
    let err = store
        .export(entry.id, &Passphrase::new("wrong passphrase"))
        .unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase));
    let pem = store
        .export(entry.id, &Passphrase::new(STORE_PASS))
        .unwrap();
    // The shape Checkmk's upload expects: the key block first, the certificate last.
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    assert!(pem.trim_end().ends_with("-----END CERTIFICATE-----"));
    assert_eq!(pem.matches("-----BEGIN ").count(), 2);
    let other = KeyStore::open(dir.path().join("b")).unwrap();
    let back = other
        .import(
            &pem,
            "imported",
            "me",
            &Passphrase::new(STORE_PASS),
            fast_kdf(),
        )
        .unwrap();
    assert_eq!(back.certificate, entry.certificate);
}

#[test]
fn delete_refuses_keys_still_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let a = ed_key(&store, "trusted by a bundle");
    let b = ed_key(&store, "trusted by a caller");
    let c = ed_key(&store, "unused");
    std::fs::create_dir_all(store.dir().join(TRUSTED_DIR)).unwrap();
    std::fs::write(
        store.dir().join(TRUSTED_DIR).join("updater-rule.pem"),
        a.certificate.to_pem().replace('\n', "\r\n"),
    )
    .unwrap();
    let err = store.delete(a.id, &pass(), &[]).unwrap_err();
    assert_eq!(err.to_string(), "This key is still used.");
    assert!(matches!(err, Error::KeyInUse { used_by } if used_by.ends_with("updater-rule.pem")));
    let caller = KnownTrust::from_pem_bundle("host rule", &b.certificate.to_pem()).unwrap();
    assert!(matches!(
        store.delete(b.id, &pass(), std::slice::from_ref(&caller)),
        Err(Error::KeyInUse { .. })
    ));
    store.delete(b.id, &pass(), &[]).unwrap();
    // A metadata root in the trusted directory that lists key c.
    let (id, meta) = MetaKey::from_public(c.certificate.public_key());
    let role = RoleKeys {
        keyids: vec![id.clone()],
        threshold: 1,
    };
    let root = Root::new(
        1,
        JAN_2026 + 365 * DAY,
        [(id, meta)].into_iter().collect(),
        Roles {
            root: role.clone(),
            targets: role.clone(),
            timestamp: role,
        },
    );
    let root_json = SignedDocument::new(&root).unwrap().to_json().unwrap();
    std::fs::write(store.dir().join(TRUSTED_DIR).join("root.json"), root_json).unwrap();
    let err = store.delete(c.id, &pass(), &[caller]).unwrap_err();
    assert!(matches!(err, Error::KeyInUse { used_by } if used_by.ends_with("root.json")));
    std::fs::remove_file(store.dir().join(TRUSTED_DIR).join("root.json")).unwrap();
    store.delete(c.id, &pass(), &[]).unwrap();
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn delete_needs_the_passphrase_and_open_existing_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let err = KeyStore::open_existing(&missing).unwrap_err();
    assert!(matches!(err, Error::NoStore { .. }), "{err}");
    assert!(!missing.exists());
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = KeyStore::open_existing(&file).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");

    let store = KeyStore::open(dir.path().join("keys")).unwrap();
    let a = ed_key(&store, "one");
    let store = KeyStore::open_existing(store.dir()).unwrap();
    let err = store
        .delete(a.id, &Passphrase::new("not the passphrase"), &[])
        .unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase), "{err}");
    assert_eq!(store.list().unwrap().len(), 1);
    assert_eq!(store.check_deletable(a.id, &[]).unwrap().id, a.id);
    store.delete(a.id, &pass(), &[]).unwrap();
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn the_combined_pem_has_one_line_break_between_key_and_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("keys")).unwrap();
    let entry = ed_key(&store, "combined");
    let combined = entry.combined_pem();
    assert!(combined.starts_with(entry.encrypted_key_pem()));
    let joint = "-----END ENCRYPTED PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----";
    assert!(combined.contains(joint), "{combined}");
}

#[test]
fn only_a_missing_store_or_key_is_reported_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let err = KeyStore::open_existing(dir.path().join("nowhere")).unwrap_err();
    assert!(matches!(err, Error::NoStore { .. }), "{err:?}");
    // A path through a file: an I/O error, not "it does not exist".
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let err = KeyStore::open_existing(dir.path().join("file/keys")).unwrap_err();
    assert!(!matches!(err, Error::NoStore { .. }), "{err:?}");

    let store = KeyStore::open(dir.path().join("keys")).unwrap();
    assert!(matches!(store.get(7), Err(Error::KeyNotFound(7))));
    // A key file that cannot be read (a directory in its place) is an I/O error.
    std::fs::create_dir(dir.path().join("keys/7.json")).unwrap();
    let err = store.get(7).unwrap_err();
    assert!(!matches!(err, Error::KeyNotFound(_)), "{err:?}");

    // No trust directory: nothing trusted; one that cannot be listed: an error.
    assert!(store.known_trust().unwrap().is_empty());
    std::fs::write(dir.path().join("keys").join(TRUSTED_DIR), b"").unwrap();
    assert!(store.known_trust().is_err());
}

#[test]
fn concurrent_creations_get_distinct_ids() {
    // Each creation picks max + 1 and retries with the next id when another process
    // (here: thread) wrote that file first.
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("keys")).unwrap();
    let mut ids: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let store = &store;
                scope.spawn(move || {
                    (0..8)
                        .map(|i| ed_key(store, &format!("w{w}-{i}")).id)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    ids.sort_unstable();
    assert_eq!(ids, (1..=32).collect::<Vec<u64>>());
    assert_eq!(store.list().unwrap().len(), 32);
}

/// A write error other than "that id is taken" ends the creation with the error: only a
/// concurrent writer's file makes the store try the next id. The store here lies so deep
/// that it can be listed but no file can be created in it (`ENAMETOOLONG`, which also holds
/// for root, unlike permissions).
#[test]
fn a_write_error_is_reported_not_retried_with_the_next_id() {
    const PATH_MAX: usize = 4096;
    let dir = tempfile::tempdir().unwrap();
    let mut deep = dir.path().to_path_buf();
    while deep.as_os_str().len() < PATH_MAX - 10 {
        let room = PATH_MAX - 7 - deep.as_os_str().len();
        deep.push("d".repeat(room.min(200)));
    }
    let store = KeyStore::open(&deep).unwrap();
    assert!(store.list().unwrap().is_empty());
    let err = store
        .create(
            &NewKey {
                alias: "deep".into(),
                owner: "cmkadmin".into(),
                site: "mysite".into(),
                key_type: KeyType::Ed25519,
            },
            &pass(),
            fast_kdf(),
            &FixedClock(JAN_2026),
        )
        .unwrap_err();
    let Error::Io { source, .. } = &err else {
        panic!("not an I/O error: {err:?}");
    };
    assert_eq!(source.kind(), std::io::ErrorKind::InvalidFilename);
    assert!(store.list().unwrap().is_empty());
}
