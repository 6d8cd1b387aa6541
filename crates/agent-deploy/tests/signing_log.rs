//! The server's append-only signing log (requirement 37): every publication is recorded,
//! the chain is checked, and hosts running unrecorded packages are found.

use std::time::SystemTime;

use agent_deploy::{SIGNING_LOG, ServerError, package_hash};
use agent_wire::Platform;
use sha2::Digest as _;

use crate::support::{
    DAY, MetadataKeys, SigningKey, TestServer, USER_SECRET, publish_signed, register_form,
    status_form,
};

fn sha256(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn publish_records_signatures_and_metadata_keys() {
    let srv = TestServer::start();
    let key = SigningKey::new("signature");
    let meta = MetadataKeys::new();
    let pkg = b"logged package".to_vec();
    let md = meta.metadata("web01", &pkg, 7, DAY);
    publish_signed(&srv.store, "web01", &pkg, &[&key], Some(&md)).unwrap();
    srv.store
        .publish("web02", Platform::LinuxRpm, b"unsigned", &[], None)
        .unwrap();
    let entries = srv.store.signing_log().verify().unwrap();
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(entries[0].key_fingerprint, key.cert.fingerprint_sha256());
    assert_eq!(entries[0].package_sha256, sha256(&pkg));
    assert_eq!(entries[0].version, 7);
    assert_eq!(entries[0].hosts, vec!["web01".to_owned()]);
    assert_eq!(entries[1].key_fingerprint, md.targets.signatures[0].keyid);
    assert_eq!(entries[2].key_fingerprint, "unsigned");
    assert_eq!(entries[2].package_sha256, sha256(b"unsigned"));
    assert_eq!(entries[2].version, 0);
    assert_eq!(entries[2].hosts, vec!["web02".to_owned()]);
    assert!(srv.dir.path().join(SIGNING_LOG).is_file());
}

#[test]
fn audit_finds_unrecorded_packages_and_a_broken_chain_refuses_publishing() {
    let srv = TestServer::start();
    let key = SigningKey::new("signature");
    let old = b"recorded first".to_vec();
    publish_signed(&srv.store, "web01", &old, &[&key], None).unwrap();
    let pkg = b"recorded".to_vec();
    publish_signed(&srv.store, "web01", &pkg, &[&key], None).unwrap();
    // Two hosts report what they run: web01 the recorded package, web02 something else.
    for (host, installed) in [
        ("web01", package_hash(&pkg)),
        ("web02", "0123456789abcdef".to_owned()),
    ] {
        let secret = srv
            .store
            .register(&register_form(host, USER_SECRET), SystemTime::now())
            .unwrap()
            .host_secret;
        let mut form = status_form(host, &secret);
        form.installed_aghash = installed;
        srv.store.deploy(&form, SystemTime::now()).unwrap();
    }
    let audit = srv.store.audit_signing_log().unwrap();
    assert_eq!(audit.entries.len(), 2);
    // The head (SHA-256 of the last line) is what an auditor anchors elsewhere: a chain alone
    // can't reveal a change to its newest entry.
    let text = std::fs::read_to_string(srv.dir.path().join(SIGNING_LOG)).unwrap();
    assert_eq!(
        audit.head.as_deref(),
        Some(sha256(text.lines().last().unwrap().as_bytes()).as_str())
    );
    assert_eq!(
        audit.unrecorded,
        vec![("web02".to_owned(), "0123456789abcdef".to_owned())]
    );

    // Change the old (first) entry: the chain check fails and publishing is refused
    // (nothing goes live without being logged).
    let path = srv.dir.path().join(SIGNING_LOG);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[0] = lines[0].replace("\"web01\"", "\"web09\"");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let err = srv.store.audit_signing_log().unwrap_err();
    assert!(matches!(err, ServerError::SigningLog { .. }), "{err:?}");
    assert!(err.to_string().contains("signing.log"), "{err}");
    let pkg2 = b"second".to_vec();
    let err = publish_signed(&srv.store, "web01", &pkg2, &[&key], None).unwrap_err();
    assert!(matches!(err, ServerError::SigningLog { .. }), "{err:?}");
    assert!(
        !srv.dir
            .path()
            .join(format!("agents/web01/linux_deb/{}", package_hash(&pkg2)))
            .exists()
    );
}
