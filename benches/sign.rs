//! Verifying signed agent packages and hardened metadata (`agent-sign`).
//!
//! `cargo bench -p toolkit-benches --bench sign`.
//!
//! * `verify_package/50MiB`: Checkmk's check of a 50 MiB package with one
//!   RSA-4096 PKCS#1 v1.5/SHA-256 signature (certificate parse + SHA-256 over
//!   the bytes + one RSA verification). The key is the Checkmk-style test
//!   fixture of the crate, so no RSA key is generated here.
//! * `verify_package/50MiB-file`: the same package read from a file in one pass
//!   with a 64 KiB buffer (`verify_package_reader`, what `agent-sign verify`
//!   does); compare with `openssl dgst -sha256 -verify pub.pem -signature
//!   sig.bin big.deb` on the same file (see BENCHMARKS.md).
//! * `verify_metadata/10000/ed25519`: 10,000 small signed targets documents
//!   parsed from JSON and verified against a trusted root (canonical JSON +
//!   signature + expiry, host, platform and rollback checks) with an Ed25519
//!   targets key; `verify_metadata/1000/rsa4096` does the same for 1,000
//!   documents with an RSA-4096 targets key (only 1,000 because signing them
//!   with RSA-4096 in the setup takes seconds per thousand).
// A benchmark may panic on broken fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use agent_sign::{
    Certificate, FixedClock, MetaKey, Passphrase, PrivateKey, RoleKeys, Roles, RollbackState, Root,
    SignedDocument, Targets, TrustedCertificates, TrustedRoot, VerifyPolicy, sign_package,
    verify_package, verify_package_reader,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const NOW: i64 = 1_800_000_000;
const PACKAGE_BYTES: usize = 50 * 1024 * 1024;
const DOCS: usize = 10_000;

fn fixture_key() -> (PrivateKey, Certificate) {
    let key = PrivateKey::from_encrypted_pem(
        include_str!("../crates/agent-sign/tests/data/pyca.key.pem"),
        &Passphrase::new("checkmk-fixture-pass"),
    )
    .unwrap();
    let cert = Certificate::from_pem(include_str!("../crates/agent-sign/tests/data/pyca.crt.pem"))
        .unwrap();
    (key, cert)
}

fn package_verification(c: &mut Criterion) {
    let (key, cert) = fixture_key();
    let package: Vec<u8> = (0..PACKAGE_BYTES).map(|i| (i * 31 % 251) as u8).collect();
    let mut signatures = Vec::new();
    sign_package(&package, &key, &cert, &mut signatures).unwrap();
    let trusted: TrustedCertificates = [cert].into_iter().collect();
    let clock = FixedClock(NOW);
    let mut group = c.benchmark_group("verify_package");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(PACKAGE_BYTES as u64));
    group.bench_function("50MiB", |b| {
        b.iter(|| {
            let report = verify_package(
                black_box(&package),
                &signatures,
                &trusted,
                VerifyPolicy::default(),
                &clock,
            );
            assert!(report.accepted);
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.deb");
    std::fs::write(&path, &package).unwrap();
    drop(package);
    group.bench_function("50MiB-file", |b| {
        b.iter(|| {
            let mut file = std::fs::File::open(black_box(&path)).unwrap();
            let report = verify_package_reader(
                &mut file,
                &signatures,
                &trusted,
                VerifyPolicy::default(),
                &clock,
            )
            .unwrap();
            assert!(report.accepted);
        })
    });
    group.finish();
}

fn metadata_verification(c: &mut Criterion) {
    let (rsa, _) = fixture_key();
    let ed = PrivateKey::generate_ed25519().unwrap();
    let mut group = c.benchmark_group("verify_metadata");
    group.sample_size(10);
    for (name, targets_key, count) in [("ed25519", &ed, DOCS), ("rsa4096", &rsa, DOCS / 10)] {
        group.throughput(Throughput::Elements(count as u64));
        let mut keys = BTreeMap::new();
        let (id, entry) = MetaKey::from_public(ed.public_key());
        keys.insert(id.clone(), entry);
        let (tid, tentry) = MetaKey::from_public(targets_key.public_key());
        keys.insert(tid.clone(), tentry);
        let role = |k: &str| RoleKeys {
            keyids: vec![k.to_string()],
            threshold: 1,
        };
        let root = Root::new(
            1,
            NOW + 86_400 * 365,
            keys,
            Roles {
                root: role(&id),
                targets: role(&tid),
                timestamp: role(&id),
            },
        );
        let mut root_doc = SignedDocument::new(&root).unwrap();
        root_doc.sign(&ed).unwrap();
        let trusted = TrustedRoot::bootstrap(&root_doc).unwrap();
        // The documents as they arrive: JSON text.
        let docs: Vec<(String, String)> = (0..count)
            .map(|i| {
                let host = format!("host{i:05}");
                let t = Targets::for_package(
                    format!("package {i}").as_bytes(),
                    &host,
                    "linux_deb",
                    "0123456789abcdef",
                    i as u64 + 1,
                    NOW,
                    NOW + 86_400,
                );
                let mut doc = SignedDocument::new(&t).unwrap();
                doc.sign(targets_key).unwrap();
                (host, doc.to_json().unwrap())
            })
            .collect();
        let state = RollbackState::default();
        let clock = FixedClock(NOW);
        group.bench_function(format!("{count}/{name}"), |b| {
            b.iter(|| {
                for (host, json) in &docs {
                    let doc = SignedDocument::from_json(black_box(json)).unwrap();
                    trusted
                        .verify_targets(&doc, host, "linux_deb", &state, &clock)
                        .unwrap();
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, package_verification, metadata_verification);
criterion_main!(benches);
