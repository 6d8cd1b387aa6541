//! Python literals (`info`, the updater's state and config, the bakery's site
//! files) and `name = literal` assignments. Checks: no panic, and what parses
//! writes back (`repr`, `pformat`) to text that parses to a value that writes
//! the same text again (the writer sorts dict keys, so the parsed value itself
//! may differ in key order; its written form may not).
#![no_main]

use libfuzzer_sys::fuzz_target;
use py_literal::{PyValue, parse, parse_assignments};

/// `inf` and `nan` have a `repr` but no literal (as in Python).
fn finite(v: &PyValue) -> bool {
    match v {
        PyValue::Float(f) => f.is_finite(),
        PyValue::List(items) | PyValue::Tuple(items) => items.iter().all(finite),
        PyValue::Dict(items) => items.iter().all(|(k, v)| finite(k) && finite(v)),
        _ => true,
    }
}

fn round_trip(v: &PyValue) {
    let _ = py_literal::json::to_json(v);
    if !finite(v) {
        let _ = (v.repr(), v.pformat());
        return;
    }
    for (how, text) in [("repr", v.repr()), ("pformat", v.pformat())] {
        let again =
            parse(&text).unwrap_or_else(|e| panic!("{how} output does not parse: {e}\n{text}"));
        let text2 = if how == "repr" {
            again.repr()
        } else {
            again.pformat()
        };
        assert_eq!(text2, text, "{how} is not a fixed point");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = parse(text) {
        round_trip(&v);
    }
    if let Ok(assignments) = parse_assignments(text) {
        let mut written = String::new();
        for (name, v) in &assignments {
            round_trip(v);
            if finite(v) {
                written.push_str(&format!("{name} = {}\n", v.repr()));
            }
        }
        let again = parse_assignments(&written)
            .unwrap_or_else(|e| panic!("written assignments do not parse: {e}\n{written}"));
        let names = |a: &[(String, PyValue)]| -> Vec<(String, String)> {
            a.iter()
                .filter(|(_, v)| finite(v))
                .map(|(n, v)| (n.clone(), v.repr()))
                .collect()
        };
        assert_eq!(
            names(&again),
            names(&assignments),
            "assignments round trip\n{written}"
        );
    }
});
