//! Inputs the fuzz targets (`fuzz/`) found, kept as regression tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use mkp_format::Manifest;

fn data(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `manifest_info` crash-a8db7aeb…: an `info` (a dict literal that is also JSON-shaped) whose unknown key holds a dict with
/// its keys out of order (`"checks"` before `"\u0000}bs"`). `info` is written as `pprint`
/// writes it, dicts sorted at every depth; reading it back gives the sorted dict, which is
/// the same manifest with its dicts in `pprint`'s order, and writing is a fixed point.
#[test]
fn a_nested_dict_out_of_order_round_trips_sorted() {
    let manifest = Manifest::from_info(&data("manifest_info-nested-dict-order.json")).unwrap();
    let info = manifest.to_info();
    let dict = &info[info.find("'version.pailes'").unwrap()..];
    let (checks, nul) = (
        dict.find("'checks'").unwrap(),
        dict.find("'\\x00}bs'").unwrap(),
    );
    assert!(nul < checks, "pprint's order: {info}");
    let again = Manifest::from_info(&info).unwrap();
    let sorted = |m: &Manifest| {
        let mut m = m.clone();
        for (_, value) in &mut m.extra {
            *value = value.with_sorted_dicts();
        }
        m
    };
    assert_ne!(again, manifest, "the source order is not kept");
    assert_eq!(again, sorted(&manifest));
    assert_eq!(again.to_info(), info);
}

/// `manifest_info` crash-57a04371…: `info.json` with an integer beyond 64 bits
/// (`"num_files": 922337203685577580722`), read as a float. JSON's reader rounded it (and
/// the text written for it) to a neighbouring float unless told to parse floats exactly
/// (serde_json's `float_roundtrip`), so writing `info.json` was not a fixed point. Now it
/// is the nearest float, `9.223372036855776e+20` as Python's `float()` gives it, and reading
/// the written text gives it back.
#[test]
fn json_floats_read_back_exactly() {
    let manifest = Manifest::from_info_json(&data("manifest_info-json-float-digits.json")).unwrap();
    let json = manifest.to_info_json();
    assert!(
        json.contains("\"num_files\":9.223372036855776e+20"),
        "{json}"
    );
    let again = Manifest::from_info_json(&json).unwrap();
    assert_eq!(again, manifest);
    assert_eq!(again.to_info_json(), json);
    // Floats written with all their digits, near the limits of rounding.
    for text in [
        "0.1",
        "1e23",
        "9.223372036855775e+20",
        "2.2250738585072014e-308",
        "1.7976931348623157e+308",
    ] {
        let value: f64 = text.parse().unwrap();
        let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(parsed.as_f64(), Some(value), "{text}");
    }
}

/// `manifest_info` crash-0c7a22b1…: `"num_files": 1e99922` reads as infinity, which
/// `pprint` writes as `inf`, a name no literal reader takes back (Python's `literal_eval`
/// refuses it too). Such a manifest is refused when read, naming the key, instead of
/// producing an `info` that cannot be read again.
#[test]
fn a_manifest_with_an_infinite_number_is_refused_naming_the_key() {
    let err = Manifest::from_info(&data("manifest_info-infinite-float.info")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("num_files") && text.contains("finite"),
        "{text}"
    );
    let finite = data("manifest_info-infinite-float.info").replace("1e99922", "1e300");
    let manifest = Manifest::from_info(&finite).unwrap();
    assert_eq!(Manifest::from_info(&manifest.to_info()).unwrap(), manifest);
}
