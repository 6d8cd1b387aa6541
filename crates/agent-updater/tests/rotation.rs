//! Root rotation in the updater (requirement 34): newer roots from the server or a directory,
//! applied one version at a time, persisted after acceptance.

use std::path::{Path, PathBuf};

use agent_sign::{PrivateKey, SignedDocument, VerifyPolicy};
use agent_updater::{Mode, RunOptions, UpdateError, UpdateOutcome, Updater};

use crate::support::{
    DAY, HardenedVerifier as _, MetadataKeys, SigningKey, TestHost, TestServer, publish_signed,
    register,
};

/// Site metadata keys, root v1 (key A), and rotations v2 (key B, signed by A and B), v3
/// (key C, signed by B and C) and a forged v2 signed only by the new key B.
struct Roots {
    meta: MetadataKeys,
    v2: SignedDocument,
    v3: SignedDocument,
    v2_new_keys_only: SignedDocument,
}

impl Roots {
    fn new() -> Roots {
        let meta = MetadataKeys::new();
        let b = PrivateKey::generate_ed25519().unwrap();
        let c = PrivateKey::generate_ed25519().unwrap();
        let v2 = meta.rotated(2, &b, &[&meta.root_key, &b]);
        let v3 = meta.rotated(3, &c, &[&b, &c]);
        let v2_new_keys_only = meta.rotated(2, &b, &[&b]);
        Roots {
            meta,
            v2,
            v3,
            v2_new_keys_only,
        }
    }
}

/// A hardened updater of `host` whose root file holds root v1; `dir` holds offered roots.
fn updater(host: &TestHost, roots: &Roots, dir: Option<&Path>) -> (Updater, PathBuf) {
    let file = host.conf.path().join("root.json");
    if !file.exists() {
        std::fs::write(&file, roots.meta.root.to_json().unwrap()).unwrap();
    }
    let up = host
        .updater(roots.meta.verifier())
        .with_metadata_root_file(&file, dir, VerifyPolicy::default())
        .unwrap();
    (up, file)
}

fn put(dir: &Path, name: &str, doc: &SignedDocument) {
    std::fs::write(dir.join(name), doc.to_json().unwrap()).unwrap();
}

#[test]
fn rotation_from_a_directory_one_version_at_a_time() {
    let roots = Roots::new();
    let host = TestHost::new("web01", "", &[]);
    let dir = tempfile::tempdir().unwrap();
    let (up, file) = updater(&host, &roots, Some(dir.path()));
    let original = std::fs::read(&file).unwrap();
    assert_eq!(up.trusted_root_version(), Some(1));
    // Nothing offered: nothing changes. Files that aren't roots are skipped.
    std::fs::write(dir.path().join("garbage.json"), "{not json").unwrap();
    std::fs::write(
        dir.path().join("targets.json"),
        r#"{"signed": {"_type": "targets"}, "signatures": []}"#,
    )
    .unwrap();
    assert_eq!(up.rotate_root(&[]).unwrap(), None);

    // Skipping from v1 to v3 is refused; the root file is unchanged.
    put(dir.path(), "root.3.json", &roots.v3);
    let err = up.rotate_root(&[]).unwrap_err();
    assert!(matches!(err, UpdateError::RootRotation { .. }), "{err:?}");
    assert!(
        err.to_string().contains("root version 3 (trusted: 1)"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), original);
    assert_eq!(up.trusted_root_version(), Some(1));

    // A v2 signed only by the new keys is refused, even with a valid v3 after it.
    put(dir.path(), "root.2.json", &roots.v2_new_keys_only);
    let err = up.rotate_root(&[]).unwrap_err();
    assert!(err.to_string().contains("root version 2"), "{err}");
    assert!(err.to_string().contains("current keys"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), original);

    // The proper v2 (old and new keys), then v3: accepted and persisted.
    put(dir.path(), "root.2.json", &roots.v2);
    assert_eq!(up.rotate_root(&[]).unwrap(), Some(3));
    assert_eq!(up.trusted_root_version(), Some(3));
    let persisted = SignedDocument::from_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(persisted, roots.v3);
    let bak = std::fs::read(agent_deploy_bak(&file)).unwrap();
    assert_eq!(bak, original);
    // A fresh updater starts from the persisted v3; re-offering old versions is a no-op.
    let (again, _) = updater(&host, &roots, Some(dir.path()));
    assert_eq!(again.trusted_root_version(), Some(3));
    assert_eq!(
        again.rotate_root(std::slice::from_ref(&roots.v2)).unwrap(),
        None
    );
}

fn agent_deploy_bak(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".bak");
    s.into()
}

#[test]
fn two_different_documents_for_one_version_are_refused() {
    let roots = Roots::new();
    let host = TestHost::new("web01", "", &[]);
    let (up, _) = updater(&host, &roots, None);
    let err = up
        .rotate_root(&[roots.v2.clone(), roots.v2_new_keys_only])
        .unwrap_err();
    assert!(err.to_string().contains("two different documents"), "{err}");
    assert_eq!(up.trusted_root_version(), Some(1));
}

/// The server hands out published roots with every status answer; the updater rotates
/// before checking the target metadata, and refuses to go on with a forged root.
#[test]
fn server_served_rotation_end_to_end() {
    let roots = Roots::new();
    let srv = TestServer::start();
    let key = SigningKey::new("signature");
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[&key.cert_pem]);
    let (up, file) = updater(&host, &roots, None);
    register(&host, &srv, &up);
    let pkg = b"agent under rotated root".to_vec();
    let md = roots.meta.metadata("web01", &pkg, 1, DAY);

    // A forged v2 on the server: the run fails before anything is downloaded.
    assert_eq!(srv.store.publish_root(&roots.v2_new_keys_only).unwrap(), 2);
    publish_signed(&srv.store, "web01", &pkg, &[&key], Some(&md)).unwrap();
    let err = up.run(&RunOptions::new(Mode::Manual)).unwrap_err();
    assert!(matches!(err, UpdateError::RootRotation { .. }), "{err:?}");
    assert!(!host.installed_file().exists());
    assert_eq!(up.trusted_root_version(), Some(1));

    // The operator replaces it: a different document for a published version is refused by
    // the store, so the forged file is removed first.
    assert!(srv.store.publish_root(&roots.v2).is_err());
    std::fs::remove_file(srv.dir.path().join("roots/root.2.json")).unwrap();
    srv.store.publish_root(&roots.v2).unwrap();
    srv.store.publish_root(&roots.v3).unwrap();
    assert_eq!(srv.store.roots().len(), 2);
    let outcome = up.run(&RunOptions::new(Mode::Manual)).unwrap();
    assert!(
        matches!(outcome, UpdateOutcome::Installed { .. }),
        "{outcome:?}"
    );
    assert_eq!(up.trusted_root_version(), Some(3));
    let persisted = SignedDocument::from_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(persisted, roots.v3);
}
