//! Package signature lists as the updater receives them. Input: one byte
//! choosing the threshold (1 to 3) and the `not_before` check, the package
//! bytes up to the first newline, then the signature list JSON. Two keys are
//! trusted and each has signed only [`PACKAGE`]. Checks: no panic; the list
//! survives its JSON round trip; an accepted verdict means the package is
//! exactly [`PACKAGE`] with at least `threshold` distinct valid signatures
//! (so never a threshold above the two trusted keys).
#![no_main]

use std::sync::OnceLock;

use agent_sign::{
    Certificate, FixedClock, Passphrase, PrivateKey, TrustedCertificates, VerifyPolicy,
    sign_package, signatures_from_json, signatures_to_json, verify_package,
};
use cmk_toolkit_fuzz::{NOW, PACKAGE, write_seed};
use libfuzzer_sys::fuzz_target;

fn load(key: &str, cert: &str, pass: &str) -> (PrivateKey, Certificate) {
    let key = PrivateKey::from_encrypted_pem(key, &Passphrase::new(pass)).expect("fixture key");
    let cert = Certificate::from_pem(cert).expect("fixture certificate");
    (key, cert)
}

fn trusted() -> &'static TrustedCertificates {
    static T: OnceLock<TrustedCertificates> = OnceLock::new();
    T.get_or_init(|| {
        let pyca = load(
            include_str!("../../crates/agent-sign/tests/data/pyca.key.pem"),
            include_str!("../../crates/agent-sign/tests/data/pyca.crt.pem"),
            "checkmk-fixture-pass",
        );
        let openssl = load(
            include_str!("../../crates/agent-sign/tests/data/openssl-rsa.key.pem"),
            include_str!("../../crates/agent-sign/tests/data/openssl-rsa.crt.pem"),
            "openssl-fixture-pass",
        );
        let mut signatures = Vec::new();
        sign_package(PACKAGE, &pyca.0, &pyca.1, &mut signatures).expect("signing");
        let one = signatures_to_json(&signatures);
        sign_package(PACKAGE, &openssl.0, &openssl.1, &mut signatures).expect("signing");
        let two = signatures_to_json(&signatures);
        for (name, threshold, json) in [
            ("one", 0u8, &one),
            ("two", 1, &two),
            ("two-of-two", 1, &two),
        ] {
            let mut seed = vec![threshold];
            seed.extend_from_slice(PACKAGE);
            seed.push(b'\n');
            seed.extend_from_slice(json.as_bytes());
            write_seed(&format!("sign_verify-{name}"), &seed);
        }
        [pyca.1, openssl.1].into_iter().collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let trusted = trusted();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (package, json) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(json) = std::str::from_utf8(json) else {
        return;
    };
    let Ok(signatures) = signatures_from_json(json) else {
        return;
    };
    let written = signatures_to_json(&signatures);
    let again = signatures_from_json(&written).expect("written list parses");
    assert_eq!(again, signatures, "signature list JSON round trip");

    let policy = VerifyPolicy {
        threshold: usize::from(mode % 3) + 1,
        check_not_before: mode & 0x80 == 0,
    };
    let report = verify_package(package, &signatures, trusted, policy, &FixedClock(NOW));
    if report.accepted {
        assert_eq!(package, PACKAGE, "accepted a package nobody signed");
        assert!(
            report.valid_signatures.len() >= policy.threshold,
            "accepted below the threshold"
        );
        assert!(
            policy.threshold <= trusted.len(),
            "threshold above the trusted keys met"
        );
        let mut distinct = report.valid_certificates.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            report.valid_certificates.len(),
            "a key counted twice"
        );
        assert_eq!(
            report.log.last().map(String::as_str),
            Some("Signature check OK.")
        );
    } else {
        assert!(report.clone().into_result().is_err());
    }
});
