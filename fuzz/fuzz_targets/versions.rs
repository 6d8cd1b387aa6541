//! Checkmk version strings. The input is up to three lines, each a version or
//! an `omd` version name. Checks: no panic; `Display` round trip
//! (`parse(v.to_string()) == v`, same text); and the order's laws on every
//! pair and triple: `partial_cmp` antisymmetric and consistent with `==` and
//! `Hash`, `cmp_lenient` a total order that agrees with `partial_cmp` wherever
//! that is defined, and transitive.
#![no_main]

use std::cmp::Ordering;
use std::hash::{BuildHasher, RandomState};

use libfuzzer_sys::fuzz_target;
use omd_versions::{OmdVersion, Version};

fn check_one(v: &Version) {
    let text = v.to_string();
    let again: Version = text
        .parse()
        .unwrap_or_else(|e| panic!("Display output {text:?} does not parse: {e}"));
    assert_eq!(&again, v, "round trip of {text:?}");
    assert_eq!(again.to_string(), text, "Display is not a fixed point");
    assert_eq!(again.meta(), v.meta());
    let plain = v.without_rc();
    assert_eq!(plain.rc(), None);
    assert_eq!(plain.meta(), None);
    let _ = plain
        .to_string()
        .parse::<Version>()
        .expect("without_rc parses");
}

fn check_pair(a: &Version, b: &Version) {
    let ab = a.partial_cmp(b);
    let ba = b.partial_cmp(a);
    assert_eq!(
        ab,
        ba.map(Ordering::reverse),
        "partial_cmp not antisymmetric: {a} {b}"
    );
    assert_eq!(
        ab == Some(Ordering::Equal),
        a == b,
        "partial_cmp vs == : {a} {b}"
    );
    if a == b {
        let s = RandomState::new();
        assert_eq!(
            s.hash_one(a),
            s.hash_one(b),
            "equal versions hash differently: {a} {b}"
        );
    }
    let l = a.cmp_lenient(b);
    assert_eq!(
        l,
        b.cmp_lenient(a).reverse(),
        "cmp_lenient not antisymmetric: {a} {b}"
    );
    assert_eq!(l == Ordering::Equal, a == b, "cmp_lenient vs == : {a} {b}");
    if let Some(o) = ab {
        assert_eq!(o, l, "cmp_lenient disagrees with partial_cmp: {a} {b}");
    }
}

fn check_triple(a: &Version, b: &Version, c: &Version) {
    if a.cmp_lenient(b) != Ordering::Greater && b.cmp_lenient(c) != Ordering::Greater {
        assert_ne!(
            a.cmp_lenient(c),
            Ordering::Greater,
            "cmp_lenient not transitive: {a} {b} {c}"
        );
    }
    if let (Some(x), Some(y)) = (a.partial_cmp(b), b.partial_cmp(c))
        && x != Ordering::Greater
        && y != Ordering::Greater
    {
        assert_ne!(
            a.partial_cmp(c),
            Some(Ordering::Greater),
            "partial_cmp not transitive: {a} {b} {c}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut versions = Vec::new();
    for line in text.split('\n').take(3) {
        if let Ok(v) = line.parse::<Version>() {
            check_one(&v);
            versions.push(v);
        }
        if let Ok(omd) = line.parse::<OmdVersion>() {
            check_one(omd.version());
            let _ = omd.to_string();
        }
        let _ = omd_versions::mkp_version_number(line);
    }
    for a in &versions {
        for b in &versions {
            check_pair(a, b);
            for c in &versions {
                check_triple(a, b, c);
            }
        }
    }
});
