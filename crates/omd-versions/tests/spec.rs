//! The shared version cases (`../shared/spec/version-cases.tsv`, every row)
//! and property tests of parsing and ordering.

// Test helpers may panic on unexpected input; that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;

use omd_versions::{
    SiteVersionInfo, UpdateCheckError, Version, check_distributed, check_mkp_min_required,
    check_mkp_usable_until, check_update,
};

mod cases {
    use super::*;

    fn v(s: &str, row: usize) -> Version {
        s.parse()
            .unwrap_or_else(|e| panic!("row {row}: {s:?} does not parse: {e}"))
    }

    /// Runs one row; `Err` describes a mismatch.
    fn run(row: usize, kind: &str, a: &str, b: &str, expected: &str) -> Result<(), String> {
        let got: String = match kind {
            "order" => match v(a, row).partial_cmp(&v(b, row)) {
                Some(Ordering::Less) => "<".into(),
                Some(Ordering::Equal) => "=".into(),
                Some(Ordering::Greater) => ">".into(),
                None => "error".into(),
            },
            "parse_error" => match a.parse::<Version>() {
                Ok(parsed) => {
                    // A parsed version renders to something that parses to itself.
                    let again: Version = parsed.to_string().parse().map_err(|e| {
                        format!("row {row}: rendering {parsed} does not parse: {e}")
                    })?;
                    if again != parsed {
                        return Err(format!("row {row}: {a} does not round-trip"));
                    }
                    "ok".into()
                }
                Err(e) => {
                    if e.input() != a {
                        return Err(format!("row {row}: error does not quote the input: {e}"));
                    }
                    "error".into()
                }
            },
            "compat_update" => match check_update(&v(a, row), &v(b, row)) {
                Ok(()) => "ok".into(),
                Err(UpdateCheckError::Incompatible(_)) => "blocked".into(),
                Err(_) => "error".into(),
            },
            "compat_mkp" => {
                let result = if let Some(min) = b.strip_prefix("min_required=") {
                    check_mkp_min_required(a, min)
                } else if let Some(until) = b.strip_prefix("usable_until=") {
                    check_mkp_usable_until(a, until)
                } else {
                    return Err(format!("row {row}: unknown MKP bound {b:?}"));
                };
                match result {
                    Ok(()) => "ok".into(),
                    Err(_) => "blocked".into(),
                }
            }
            "compat_distributed" => {
                let site = |s: &str| SiteVersionInfo {
                    version: v(s, row),
                    edition: None,
                };
                match check_distributed(Some(&site(a)), &site(b)) {
                    Ok(()) => "ok".into(),
                    Err(_) => "blocked".into(),
                }
            }
            other => return Err(format!("row {row}: unknown kind {other:?}")),
        };
        if got == expected {
            Ok(())
        } else {
            Err(format!(
                "row {row}: {kind} {a} {b}: expected {expected}, got {got}"
            ))
        }
    }

    #[test]
    fn every_row_of_the_shared_version_cases() {
        let path = testkit::require_shared!("spec/version-cases.tsv");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines().enumerate();
        let (_, header) = lines.next().expect("a header line");
        assert_eq!(header, "kind\ta\tb\texpected\tsource");
        let mut failures = Vec::new();
        let mut rows = 0;
        for (index, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let row = index + 1;
            let fields: Vec<&str> = line.split('\t').collect();
            assert!(fields.len() >= 4, "row {row} has {} fields", fields.len());
            rows += 1;
            if let Err(e) = run(row, fields[0], fields[1], fields[2], fields[3]) {
                failures.push(e);
            }
        }
        assert!(rows >= 100, "only {rows} rows read from {}", path.display());
        assert!(
            failures.is_empty(),
            "{} of {rows} rows failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn base() -> impl Strategy<Value = String> {
        (0u8..=99, 0u8..=99, 0u8..=99).prop_map(|(a, b, c)| format!("{a}.{b}.{c}"))
    }

    fn date() -> impl Strategy<Value = String> {
        (1000u16..=9999, 0u8..=19, 0u8..=39).prop_map(|(y, m, d)| format!("{y}.{m:02}.{d:02}"))
    }

    /// Strings in every form of the grammar (small numbers, so that equal
    /// and neighbouring versions are frequent).
    fn version_string() -> impl Strategy<Value = String> {
        let small_base = (1u8..=3, 0u8..=2, 0u8..=1).prop_map(|(a, b, c)| format!("{a}.{b}.{c}"));
        let build = prop_oneof![
            Just(String::new()),
            (0u32..4).prop_map(|n| format!("i{n}")),
            (0u32..4).prop_map(|n| format!("b{n}")),
            (0u32..4).prop_map(|n| format!("p{n}")),
        ];
        let rc = prop_oneof![
            Just(String::new()),
            (0u32..3).prop_map(|n| format!("-rc{n}"))
        ];
        let meta = prop_oneof![
            3 => Just(String::new()),
            1 => "[a-z.+-]{0,6}".prop_map(|m| format!("+{m}")),
        ];
        let small_date =
            (2020u16..=2021, 1u8..=2, 1u8..=2).prop_map(|(y, m, d)| format!("{y}.{m:02}.{d:02}"));
        let sandbox = prop_oneof![
            3 => Just(String::new()),
            1 => "[a-z0-9.-]{1,8}".prop_map(|s| format!("-sandbox{s}")),
        ];
        // Neighbouring releases of one base, often: p9 against p10 (numeric,
        // not text order), a patch against its own candidates, the stable
        // release and the betas just before it.
        let neighbour = prop_oneof![
            4 => (8u32..=11).prop_map(|n| format!("p{n}")),
            1 => Just(String::new()),
            1 => (1u32..=2).prop_map(|n| format!("b{n}")),
        ];
        let neighbours =
            (neighbour, rc.clone(), meta.clone()).prop_map(|(x, r, m)| format!("2.3.0{x}{r}{m}"));
        prop_oneof![
            4 => neighbours,
            1 => (small_base.clone(), build, rc, meta).prop_map(|(b, x, r, m)| format!("{b}{x}{r}{m}")),
            1 => (small_base, small_date.clone(), sandbox.clone())
                .prop_map(|(b, d, s)| format!("{b}-{d}{s}")),
            1 => (small_date, sandbox).prop_map(|(d, s)| format!("{d}{s}")),
            1 => (base(), "([ibp][0-9]{1,3})?").prop_map(|(b, x)| format!("{b}{x}")),
            1 => date(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn display_then_parse_is_identity(s in version_string()) {
            let v: Version = s.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            let shown = v.to_string();
            let back: Version = shown.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(&back, &v);
            prop_assert_eq!(back.meta(), v.meta());
            prop_assert_eq!(back.to_string(), shown);
        }

        #[test]
        fn strings_without_sandbox_or_leading_zero_round_trip_exactly(
            b in base(), x in "([ibp][1-9][0-9]{0,2})?", r in "(-rc[1-9][0-9]?)?", m in "(\\+[a-z]{0,4})?"
        ) {
            let s = format!("{b}{x}{r}{m}");
            let v: Version = s.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(v.to_string(), s);
        }

        #[test]
        fn order_is_antisymmetric_and_consistent_with_eq(a in version_string(), b in version_string()) {
            let (a, b): (Version, Version) = (a.parse().unwrap(), b.parse().unwrap());
            match a.partial_cmp(&b) {
                Some(o) => {
                    prop_assert_eq!(b.partial_cmp(&a), Some(o.reverse()));
                    prop_assert_eq!(o == Ordering::Equal, a == b);
                    prop_assert_eq!(a.cmp_lenient(&b), o);
                }
                None => {
                    prop_assert_eq!(b.partial_cmp(&a), None);
                    prop_assert!(a != b);
                    prop_assert_eq!(a.without_rc(), b.without_rc());
                    prop_assert_eq!(a.cmp_lenient(&b), b.cmp_lenient(&a).reverse());
                }
            }
        }

        #[test]
        fn order_is_transitive_where_defined(
            a in version_string(), b in version_string(), c in version_string()
        ) {
            let (a, b, c): (Version, Version, Version) =
                (a.parse().unwrap(), b.parse().unwrap(), c.parse().unwrap());
            if let (Some(ab), Some(bc)) = (a.partial_cmp(&b), b.partial_cmp(&c)) {
                if ab == bc || bc == Ordering::Equal {
                    prop_assert_eq!(a.partial_cmp(&c), Some(ab));
                } else if ab == Ordering::Equal {
                    prop_assert_eq!(a.partial_cmp(&c), Some(bc));
                }
            }
            // The lenient order is total and transitive everywhere.
            let (ab, bc) = (a.cmp_lenient(&b), b.cmp_lenient(&c));
            if ab == bc || bc == Ordering::Equal {
                prop_assert_eq!(a.cmp_lenient(&c), ab);
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,20}") {
            if let Err(e) = s.parse::<Version>() {
                prop_assert_eq!(e.input(), s.as_str());
            }
            let _ = omd_versions::mkp_version_number(&s);
            let _ = s.parse::<omd_versions::OmdVersion>();
        }
    }
}
