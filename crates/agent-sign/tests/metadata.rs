//! Hardened metadata: requirements 29-31, 33, 34, table-driven.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use agent_sign::{
    Error, FixedClock, MAX_METADATA_BYTES, MetaKey, PrivateKey, RoleKeys, Roles, RollbackState,
    Root, SignedDocument, Targets, Timestamp, TrustedRoot,
};

use crate::common::*;

const HOST: &str = "web01";
const PLATFORM: &str = "linux_deb";

/// Ed25519 keys: root r0..r2, targets t0..t1, timestamp s0; plus the RSA fixture for targets.
struct Keys {
    r: Vec<PrivateKey>,
    t: Vec<PrivateKey>,
    s: PrivateKey,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys {
        r: (0..3)
            .map(|_| PrivateKey::generate_ed25519().unwrap())
            .collect(),
        t: (0..2)
            .map(|_| PrivateKey::generate_ed25519().unwrap())
            .collect(),
        s: PrivateKey::generate_ed25519().unwrap(),
    })
}

fn role(keys: &[&PrivateKey], threshold: u32) -> RoleKeys {
    RoleKeys {
        keyids: keys.iter().map(|k| k.public_key().key_id()).collect(),
        threshold,
    }
}

fn root_doc(
    version: u64,
    root_keys: &[&PrivateKey],
    root_threshold: u32,
    targets_keys: &[&PrivateKey],
    targets_threshold: u32,
    signers: &[&PrivateKey],
) -> SignedDocument {
    let k = keys();
    let mut map = BTreeMap::new();
    for key in root_keys.iter().chain(targets_keys).chain([&&k.s]) {
        let (id, entry) = MetaKey::from_public(key.public_key());
        map.insert(id, entry);
    }
    let root = Root::new(
        version,
        now().0 + 365 * DAY,
        map,
        Roles {
            root: role(root_keys, root_threshold),
            targets: role(targets_keys, targets_threshold),
            timestamp: role(&[&k.s], 1),
        },
    );
    let mut doc = SignedDocument::new(&root).unwrap();
    for s in signers {
        doc.sign(s).unwrap();
    }
    doc
}

/// Root v1: root keys r0, r1 (threshold 1); targets keys t0, t1 (threshold `k`) + RSA fixture.
fn trusted_root(k: u32) -> TrustedRoot {
    let keys = keys();
    let rsa = &pyca().0;
    let doc = root_doc(
        1,
        &[&keys.r[0], &keys.r[1]],
        1,
        &[&keys.t[0], &keys.t[1], rsa],
        k,
        &[&keys.r[0]],
    );
    TrustedRoot::bootstrap(&doc).unwrap()
}

fn targets(package: &[u8], host: &str, version: u64, expires_in: i64) -> Targets {
    Targets::for_package(
        package,
        host,
        PLATFORM,
        "94b60c8ef40c4900",
        version,
        now().0,
        now().0 + expires_in,
    )
}

fn signed(content: &Targets, signers: &[&PrivateKey]) -> SignedDocument {
    let mut doc = SignedDocument::new(content).unwrap();
    for s in signers {
        doc.sign(s).unwrap();
    }
    doc
}

#[derive(Debug)]
enum Want {
    Ok,
    WrongTarget,
    Rollback,
    Expired,
    Threshold,
    Metadata,
}

#[test]
fn targets_verification_table() {
    let k = keys();
    let (t0, t1, s0) = (&k.t[0], &k.t[1], &k.s);
    let rsa = &pyca().0;
    let pkg = b"package A".to_vec();
    let stored = {
        let mut st = RollbackState::default();
        st.accept(&targets(&pkg, HOST, 5, DAY));
        st
    };
    let mut tampered = signed(&targets(&pkg, HOST, 6, DAY), &[t0]);
    tampered.signed["length"] = serde_json::json!(1);
    let mut duplicated = signed(&targets(&pkg, HOST, 6, DAY), &[t0]);
    duplicated.signatures.push(duplicated.signatures[0].clone());
    let mut other_platform = targets(&pkg, HOST, 6, DAY);
    other_platform.platform = "linux_rpm".into();
    let mut wrong_type = signed(&targets(&pkg, HOST, 6, DAY), &[]);
    wrong_type.signed["_type"] = serde_json::json!("timestamp");
    wrong_type.sign(t0).unwrap();

    let cases: Vec<(&str, u32, SignedDocument, Want)> = vec![
        (
            "good, one key",
            1,
            signed(&targets(&pkg, HOST, 6, DAY), &[t0]),
            Want::Ok,
        ),
        (
            "good, RSA targets key",
            1,
            signed(&targets(&pkg, HOST, 6, DAY), &[rsa]),
            Want::Ok,
        ),
        (
            "equal version, same hash",
            1,
            signed(&targets(&pkg, HOST, 5, DAY), &[t0]),
            Want::Ok,
        ),
        (
            "signed for another host",
            1,
            signed(&targets(&pkg, "db01", 6, DAY), &[t0]),
            Want::WrongTarget,
        ),
        (
            "signed for another platform",
            1,
            signed(&other_platform, &[t0]),
            Want::WrongTarget,
        ),
        (
            "replayed older metadata",
            1,
            signed(&targets(&pkg, HOST, 4, DAY), &[t0]),
            Want::Rollback,
        ),
        (
            "same version, other package",
            1,
            signed(&targets(b"package B", HOST, 5, DAY), &[t0]),
            Want::Rollback,
        ),
        (
            "expired metadata",
            1,
            signed(&targets(&pkg, HOST, 6, -1), &[t0]),
            Want::Expired,
        ),
        (
            "expires exactly now",
            1,
            signed(&targets(&pkg, HOST, 6, 0), &[t0]),
            Want::Expired,
        ),
        (
            "threshold 2 with one key",
            2,
            signed(&targets(&pkg, HOST, 6, DAY), &[t0]),
            Want::Threshold,
        ),
        (
            "threshold 2, the same key twice",
            2,
            duplicated,
            Want::Threshold,
        ),
        (
            "threshold 2 with two keys",
            2,
            signed(&targets(&pkg, HOST, 6, DAY), &[t0, t1]),
            Want::Ok,
        ),
        (
            "signed by a key outside the role",
            1,
            signed(&targets(&pkg, HOST, 6, DAY), &[s0]),
            Want::Threshold,
        ),
        (
            "unsigned",
            1,
            signed(&targets(&pkg, HOST, 6, DAY), &[]),
            Want::Threshold,
        ),
        ("tampered after signing", 1, tampered, Want::Threshold),
        ("wrong _type", 1, wrong_type, Want::Metadata),
    ];
    for (name, threshold, doc, want) in cases {
        let root = trusted_root(threshold);
        let before = stored.clone();
        // Documents travel as JSON.
        let doc = SignedDocument::from_json(&doc.to_json().unwrap()).unwrap();
        let got = root.verify_targets(&doc, HOST, PLATFORM, &stored, &now());
        match (&want, &got) {
            (Want::Ok, Ok(_))
            | (Want::WrongTarget, Err(Error::WrongTarget { .. }))
            | (Want::Rollback, Err(Error::Rollback { .. }))
            | (Want::Expired, Err(Error::Expired { .. }))
            | (Want::Threshold, Err(Error::ThresholdNotMet { .. }))
            | (Want::Metadata, Err(Error::Metadata(_))) => {}
            _ => panic!("{name}: want {want:?}, got {got:?}"),
        }
        assert_eq!(
            stored, before,
            "{name}: verification never changes the state"
        );
    }
}

#[test]
fn rollback_message_and_state_update() {
    let k = keys();
    let root = trusted_root(1);
    let mut state = RollbackState::default();
    let v5 = signed(&targets(b"five", HOST, 5, DAY), &[&k.t[0]]);
    let t = root
        .verify_targets(&v5, HOST, PLATFORM, &state, &now())
        .unwrap();
    t.check_package(b"five").unwrap();
    state.accept(&t);
    let json = serde_json::to_string(&state).unwrap();
    let v4 = signed(&targets(b"four", HOST, 4, DAY), &[&k.t[0]]);
    let err = root
        .verify_targets(&v4, HOST, PLATFORM, &state, &now())
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("rollback: targets version 4 offered, version 5"),
        "{err}"
    );
    assert_eq!(
        serde_json::to_string(&state).unwrap(),
        json,
        "state unchanged"
    );
    // Another host has its own counter.
    let other = signed(&targets(b"four", "db01", 1, DAY), &[&k.t[0]]);
    root.verify_targets(&other, "db01", PLATFORM, &state, &now())
        .unwrap();
}

#[test]
fn package_a_metadata_with_package_b_bytes_is_a_hash_mismatch() {
    let t = targets(b"package A", HOST, 1, DAY);
    t.check_package(b"package A").unwrap();
    let err = t.check_package(b"package B").unwrap_err();
    assert!(matches!(err, Error::HashMismatch(_)));
    assert!(err.to_string().starts_with("hash mismatch"), "{err}");
    let err = t.check_package(b"package A plus").unwrap_err();
    assert!(matches!(err, Error::HashMismatch(_)), "length is checked");
}

#[test]
fn timestamps_detect_freezes_and_mix_and_match() {
    let k = keys();
    let root = trusted_root(1);
    let state = RollbackState::default();
    let t1 = signed(&targets(b"one", HOST, 1, 30 * DAY), &[&k.t[0]]);
    let t2 = signed(&targets(b"two", HOST, 2, 30 * DAY), &[&k.t[0]]);
    let stamp = |targets: &SignedDocument, version: u64, expires_in: i64, key: &PrivateKey| {
        let ts = Timestamp::for_targets(targets, version, now().0, now().0 + expires_in).unwrap();
        let mut doc = SignedDocument::new(&ts).unwrap();
        doc.sign(key).unwrap();
        doc
    };
    let good = stamp(&t2, 7, DAY, &k.s);
    let ts = root.verify_timestamp(&good, &t2, &state, &now()).unwrap();
    assert_eq!(ts.targets_version, 2);
    // A frozen server: the same timestamp a day and a second later.
    let later = FixedClock(now().0 + DAY + 1);
    assert!(matches!(
        root.verify_timestamp(&good, &t2, &state, &later),
        Err(Error::Expired { .. })
    ));
    // Mix and match: a timestamp for targets v2 served with targets v1.
    assert!(matches!(
        root.verify_timestamp(&good, &t1, &state, &now()),
        Err(Error::HashMismatch(_))
    ));
    // Only the timestamp role may sign timestamps.
    assert!(matches!(
        root.verify_timestamp(&stamp(&t2, 8, DAY, &k.t[0]), &t2, &state, &now()),
        Err(Error::ThresholdNotMet { .. })
    ));
    // Timestamp rollback.
    let mut st = RollbackState::default();
    st.accept_timestamp(&ts);
    assert!(matches!(
        root.verify_timestamp(&stamp(&t2, 6, DAY, &k.s), &t2, &st, &now()),
        Err(Error::Rollback { .. })
    ));
    // The stored timestamp itself is no rollback (a server that has nothing newer).
    root.verify_timestamp(&good, &t2, &st, &now()).unwrap();
    // Targets of the named version but other content (a re-signed v2): the hash decides.
    let other_v2 = signed(&targets(b"other", HOST, 2, 30 * DAY), &[&k.t[0]]);
    assert!(matches!(
        root.verify_timestamp(&good, &other_v2, &state, &now()),
        Err(Error::HashMismatch(_))
    ));
}

#[test]
fn root_rotation_one_version_at_a_time() {
    let k = keys();
    let (r0, r1, r2) = (&k.r[0], &k.r[1], &k.r[2]);
    let t0 = &k.t[0];
    let v1 = root_doc(1, &[r0], 1, &[t0], 1, &[r0]);
    // v2 moves root to r1, signed by old r0 and new r1.
    let v2 = root_doc(2, &[r1], 1, &[t0], 1, &[r0, r1]);
    // v3 moves root to r2 and revokes nothing else.
    let v3 = root_doc(3, &[r2], 1, &[t0], 1, &[r1, r2]);

    // Skipping v2 fails.
    let mut root = TrustedRoot::bootstrap(&v1).unwrap();
    let err = root.update(&v3).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RootVersion {
                current: 1,
                offered: 3
            }
        ),
        "{err}"
    );
    // Replaying v1 fails too.
    assert!(matches!(root.update(&v1), Err(Error::RootVersion { .. })));
    // v2 signed only by the new key, or only by the old key, fails.
    let only_new = root_doc(2, &[r1], 1, &[t0], 1, &[r1]);
    assert!(matches!(
        root.update(&only_new),
        Err(Error::ThresholdNotMet { .. })
    ));
    let only_old = root_doc(2, &[r1], 1, &[t0], 1, &[r0]);
    assert!(matches!(
        root.update(&only_old),
        Err(Error::ThresholdNotMet { .. })
    ));
    assert_eq!(root.root().version, 1, "failed updates change nothing");
    // v1 -> v2 -> v3 works.
    root.update(&v2).unwrap();
    root.update(&v3).unwrap();
    assert_eq!(root.root().version, 3);
    assert_eq!(root.document(), &v3);

    // Revoking a targets key without reinstalling: v4 drops t0 for t1.
    let t1 = &k.t[1];
    let v4 = root_doc(4, &[r2], 1, &[t1], 1, &[r2]);
    root.update(&v4).unwrap();
    let by_t0 = signed(&targets(b"x", HOST, 1, DAY), &[t0]);
    assert!(matches!(
        root.verify_targets(&by_t0, HOST, PLATFORM, &RollbackState::default(), &now()),
        Err(Error::ThresholdNotMet { .. })
    ));
    let by_t1 = signed(&targets(b"x", HOST, 1, DAY), &[t1]);
    root.verify_targets(&by_t1, HOST, PLATFORM, &RollbackState::default(), &now())
        .unwrap();
}

#[test]
fn expired_root_is_refused_when_used() {
    let k = keys();
    let root = trusted_root(1);
    let doc = signed(&targets(b"x", HOST, 1, 1000 * DAY), &[&k.t[0]]);
    let late = FixedClock(root.root().expires);
    assert!(matches!(
        root.verify_targets(&doc, HOST, PLATFORM, &RollbackState::default(), &late),
        Err(Error::Expired { role, .. }) if role == "root"
    ));
}

#[test]
fn malformed_roots_are_refused() {
    let k = keys();
    let (r0, t0) = (&k.r[0], &k.t[0]);
    // Threshold 0 would accept anything.
    let zero = root_doc(1, &[r0], 0, &[t0], 1, &[r0]);
    assert!(matches!(
        TrustedRoot::bootstrap(&zero),
        Err(Error::Metadata(_))
    ));
    // Threshold above the number of distinct keys.
    let high = root_doc(1, &[r0, r0], 2, &[t0], 1, &[r0]);
    assert!(matches!(
        TrustedRoot::bootstrap(&high),
        Err(Error::Metadata(_))
    ));
    // A key listed under an id that is not its hash (would let one key count twice).
    let mut forged = root_doc(1, &[r0], 1, &[t0], 1, &[]);
    let keys_obj = forged.signed["keys"].as_object_mut().unwrap();
    let (id, v) = keys_obj
        .iter()
        .next()
        .map(|(a, b)| (a.clone(), b.clone()))
        .unwrap();
    let last = if id.ends_with('0') { '1' } else { '0' };
    keys_obj.insert(format!("{}{last}", &id[..id.len() - 1]), v);
    assert_eq!(keys_obj.len(), 4, "the forged id is a new entry");
    forged.sign(r0).unwrap();
    assert!(matches!(
        TrustedRoot::bootstrap(&forged),
        Err(Error::Metadata(_))
    ));
    // Unknown fields are refused rather than ignored.
    let mut extra = root_doc(1, &[r0], 1, &[t0], 1, &[]);
    extra.signed["comment"] = serde_json::json!("hi");
    extra.sign(r0).unwrap();
    assert!(matches!(
        TrustedRoot::bootstrap(&extra),
        Err(Error::Metadata(_))
    ));
    // Oversized documents are not parsed.
    let big = format!(
        "{{\"signed\":\"{}\",\"signatures\":[]}}",
        "x".repeat(70_000)
    );
    assert!(matches!(
        SignedDocument::from_json(&big),
        Err(Error::Metadata(_))
    ));
}

#[test]
fn envelope_json_is_canonical_and_stable() {
    let k = keys();
    let doc = signed(&targets(b"x", HOST, 1, DAY), &[&k.t[0]]);
    let json = doc.to_json().unwrap();
    assert!(json.starts_with("{\"signatures\":[{\"keyid\":\""), "{json}");
    assert!(json.contains(
        "\"signed\":{\"_type\":\"targets\",\"aghash\":\"94b60c8ef40c4900\",\"expires\":"
    ));
    let back = SignedDocument::from_json(&json).unwrap();
    assert_eq!(back.to_json().unwrap(), json);
    // Whitespace and member order in transit do not matter: the signature is over the canonical form.
    let pretty = serde_json::to_string_pretty(&doc).unwrap();
    let root = trusted_root(1);
    root.verify_targets(
        &SignedDocument::from_json(&pretty).unwrap(),
        HOST,
        PLATFORM,
        &RollbackState::default(),
        &now(),
    )
    .unwrap();
}

#[test]
fn documents_up_to_the_size_limit_are_read_and_larger_ones_refused() {
    // A valid envelope padded with spaces (insignificant in JSON) to an exact length.
    let envelope = r#"{"signed":{"a":1},"signatures":[]}"#;
    assert_eq!(MAX_METADATA_BYTES, 65_536, "64 KiB (requirement 32)");
    let padded = |len: usize| format!("{envelope}{}", " ".repeat(len - envelope.len()));
    let at_limit = SignedDocument::from_json(&padded(MAX_METADATA_BYTES)).unwrap();
    assert_eq!(at_limit.signed["a"], 1);
    let err = SignedDocument::from_json(&padded(MAX_METADATA_BYTES + 1)).unwrap_err();
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
}

#[test]
fn the_signed_hash_is_the_sha256_of_the_canonical_signed_part() {
    use sha2::Digest as _;
    let a = SignedDocument::from_json(r#"{"signed":{"b":1,"a":"x"},"signatures":[]}"#).unwrap();
    let canonical = a.canonical_signed().unwrap();
    assert_eq!(canonical, br#"{"a":"x","b":1}"#);
    assert_eq!(
        a.signed_sha256().unwrap(),
        hex::encode(sha2::Sha256::digest(&canonical))
    );
    let b = SignedDocument::from_json(r#"{"signed":{"a":"y","b":1},"signatures":[]}"#).unwrap();
    assert_ne!(a.signed_sha256().unwrap(), b.signed_sha256().unwrap());
}
