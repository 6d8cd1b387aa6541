//! Hardened update metadata (root, targets, timestamp envelopes). A client
//! trusts root v1 (Ed25519 root and timestamp key, RSA targets key); the only
//! documents ever signed are root v1 and v2, one targets and one timestamp.
//! Input: one byte choosing the check, then an envelope's JSON. Checks: no
//! panic; the envelope survives its canonical JSON round trip; whatever is
//! accepted has exactly the canonical signed bytes of the one document of
//! that role that was signed ("never accepts what was not signed").
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use agent_sign::{
    FixedClock, MetaKey, Passphrase, PrivateKey, RoleKeys, Roles, RollbackState, Root,
    SignedDocument, Targets, Timestamp, TrustedRoot,
};
use cmk_toolkit_fuzz::{NOW, PACKAGE, write_seed};
use libfuzzer_sys::fuzz_target;

const HOST: &str = "myhost";
const PLATFORM: &str = "linux_deb";
const EXPIRES: i64 = NOW + 365 * 86_400;

struct World {
    trusted: TrustedRoot,
    root2: Vec<u8>,
    targets: SignedDocument,
    timestamp: SignedDocument,
    targets_signed: Vec<u8>,
    timestamp_signed: Vec<u8>,
}

fn key(pem: &str) -> PrivateKey {
    PrivateKey::from_encrypted_pem(pem, &Passphrase::new("openssl-fixture-pass"))
        .expect("fixture key")
}

fn role(id: &str) -> RoleKeys {
    RoleKeys {
        keyids: vec![id.to_string()],
        threshold: 1,
    }
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let ed = key(include_str!(
            "../../crates/agent-sign/tests/data/openssl-ed25519.key.pem"
        ));
        let rsa = key(include_str!(
            "../../crates/agent-sign/tests/data/openssl-rsa.key.pem"
        ));
        let (ed_id, ed_meta) = MetaKey::from_public(ed.public_key());
        let (rsa_id, rsa_meta) = MetaKey::from_public(rsa.public_key());
        let keys = BTreeMap::from([(ed_id.clone(), ed_meta), (rsa_id.clone(), rsa_meta)]);
        let roles = Roles {
            root: role(&ed_id),
            targets: role(&rsa_id),
            timestamp: role(&ed_id),
        };
        let sign = |doc: &mut SignedDocument, key: &PrivateKey| doc.sign(key).expect("signing");

        let mut root1 =
            SignedDocument::new(&Root::new(1, EXPIRES, keys.clone(), roles.clone())).expect("root");
        sign(&mut root1, &ed);
        let mut root2 = SignedDocument::new(&Root::new(2, EXPIRES, keys, roles)).expect("root");
        sign(&mut root2, &ed);
        let mut targets = SignedDocument::new(&Targets::for_package(
            PACKAGE,
            HOST,
            PLATFORM,
            "0123456789abcdef",
            3,
            NOW - 60,
            EXPIRES,
        ))
        .expect("targets");
        sign(&mut targets, &rsa);
        let mut timestamp = SignedDocument::new(
            &Timestamp::for_targets(&targets, 5, NOW - 60, NOW + 86_400).expect("timestamp"),
        )
        .expect("timestamp");
        sign(&mut timestamp, &ed);

        for (name, mode, doc) in [
            ("targets", 0u8, &targets),
            ("timestamp", 1, &timestamp),
            ("root2", 2, &root2),
            ("root1", 3, &root1),
            ("targets-of-timestamp", 4, &targets),
        ] {
            let mut seed = vec![mode];
            seed.extend_from_slice(doc.to_json().expect("json").as_bytes());
            write_seed(&format!("metadata_verify-{name}"), &seed);
        }
        World {
            trusted: TrustedRoot::bootstrap(&root1).expect("root v1 verifies"),
            root2: root2.canonical_signed().expect("canonical"),
            targets_signed: targets.canonical_signed().expect("canonical"),
            timestamp_signed: timestamp.canonical_signed().expect("canonical"),
            targets,
            timestamp,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(doc) = SignedDocument::from_json(text) else {
        return;
    };
    if let Ok(json) = doc.to_json() {
        let again = SignedDocument::from_json(&json).expect("to_json output parses");
        assert_eq!(
            again.to_json().ok(),
            Some(json),
            "to_json is not a fixed point"
        );
    }
    let _ = (doc.kind(), doc.signed_sha256());
    let clock = FixedClock(NOW);
    let state = RollbackState::default();
    let signed = doc.canonical_signed().ok();
    match mode % 5 {
        0 => {
            if let Ok(t) = w
                .trusted
                .verify_targets(&doc, HOST, PLATFORM, &state, &clock)
            {
                assert_eq!(
                    signed.as_ref(),
                    Some(&w.targets_signed),
                    "accepted unsigned targets"
                );
                t.check_package(PACKAGE)
                    .expect("the signed package matches");
                assert!(t.check_package(b"other").is_err());
                let mut state = state.clone();
                state.accept(&t);
                state.check_targets(&t).expect("the same targets again");
            }
        }
        1 => {
            if w.trusted
                .verify_timestamp(&doc, &w.targets, &state, &clock)
                .is_ok()
            {
                assert_eq!(
                    signed.as_ref(),
                    Some(&w.timestamp_signed),
                    "accepted an unsigned timestamp"
                );
            }
        }
        2 => {
            let mut trusted = w.trusted.clone();
            if trusted.update(&doc).is_ok() {
                assert_eq!(signed.as_ref(), Some(&w.root2), "accepted an unsigned root");
            } else {
                assert_eq!(
                    trusted.root(),
                    w.trusted.root(),
                    "a refused update changed the root"
                );
            }
        }
        3 => {
            if let Ok(root) = TrustedRoot::bootstrap(&doc) {
                let _ = root.verify_targets(&w.targets, HOST, PLATFORM, &state, &clock);
            }
        }
        _ => {
            // The fuzzed document as the targets the signed timestamp names.
            if w.trusted
                .verify_timestamp(&w.timestamp, &doc, &state, &clock)
                .is_ok()
            {
                assert_eq!(
                    signed.as_ref(),
                    Some(&w.targets_signed),
                    "timestamp matched unsigned targets"
                );
            }
        }
    }
});
