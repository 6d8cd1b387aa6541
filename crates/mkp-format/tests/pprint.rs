//! Our `info` writer against Python's `pprint.pformat` on generated manifests with tricky
//! text (quotes, backslashes, control and non-printable characters, long words, line
//! breaks of every kind). `fixtures/pprint_cases.jsonl` was produced by
//! `fixtures/gen_pprint_cases.py` with python3, so this test needs no Python.

// Test helpers outside #[test] functions may unwrap too (clippy.toml only covers tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mkp_format::{Manifest, PyValue};

fn to_py(v: &serde_json::Value) -> PyValue {
    match v {
        serde_json::Value::Null => PyValue::None,
        serde_json::Value::Bool(b) => PyValue::Bool(*b),
        serde_json::Value::Number(n) => PyValue::Int(n.as_i64().unwrap()),
        serde_json::Value::String(s) => PyValue::Str(s.clone()),
        serde_json::Value::Array(a) => PyValue::List(a.iter().map(to_py).collect()),
        serde_json::Value::Object(o) => PyValue::Dict(
            o.iter()
                .map(|(k, v)| (PyValue::Str(k.clone()), to_py(v)))
                .collect(),
        ),
    }
}

#[test]
fn pformat_matches_python_on_generated_cases() {
    let text = include_str!("fixtures/pprint_cases.jsonl");
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let value = to_py(&case["value"]);
        let expected = case["pformat"].as_str().unwrap();
        assert_eq!(value.pformat(), expected, "case {i}");
        // And the manifest path: parse Python's text, write it again.
        if let Ok(manifest) = Manifest::from_info(expected) {
            assert_eq!(manifest.to_info(), format!("{expected}\n"), "case {i}");
        }
        n += 1;
    }
    assert_eq!(n, 60);
}
