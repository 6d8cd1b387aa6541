//! The `info` manifest (a Python literal written by `pprint.pformat`) and
//! `info.json`: whatever parses writes back to text that parses to the same
//! manifest (`parse(write(x)) == x`), and writing is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mkp_format::Manifest;

/// The manifest as `pprint` writes it: unknown keys (`extra`) sorted, and
/// every dict inside their values too (a parsed dict keeps its source order).
fn sorted_extra(manifest: &Manifest) -> Manifest {
    let mut sorted = manifest.clone();
    sorted.extra.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, value) in &mut sorted.extra {
        *value = value.with_sorted_dicts();
    }
    sorted
}

fn round_trip(manifest: &Manifest) {
    // `info` is written like `pprint.pformat`, which sorts a dict's keys: unknown keys
    // (`extra`) and the dicts in their values come back sorted, so compare them in that
    // order (crash-a8db7aeb…: a nested dict whose keys were out of order).
    let info = manifest.to_info();
    let again = Manifest::from_info(&info)
        .unwrap_or_else(|e| panic!("to_info output does not parse: {e}\n{info}"));
    assert_eq!(
        sorted_extra(&again),
        sorted_extra(manifest),
        "info round trip\n{info}"
    );
    assert_eq!(again.to_info(), info, "to_info is not a fixed point");

    // JSON has no bytes, tuples or non-finite floats, so unknown keys (`extra`) come back as
    // JSON sees them (`b'x'` as "x", tuples as lists): the known fields and the unknown keys'
    // names survive exactly, and writing JSON is then a fixed point.
    let json = manifest.to_info_json();
    let again = Manifest::from_info_json(&json)
        .unwrap_or_else(|e| panic!("to_info_json output does not parse: {e}\n{json}"));
    let (mut known_again, mut known) = (again.clone(), manifest.clone());
    known_again.extra.clear();
    known.extra.clear();
    assert_eq!(known_again, known, "info.json round trip\n{json}");
    let keys = |m: &Manifest| {
        let mut keys: Vec<_> = m.extra.iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&again), keys(manifest), "info.json round trip\n{json}");
    assert_eq!(
        again.to_info_json(),
        json,
        "to_info_json is not a fixed point"
    );

    let _ = manifest.to_field_json();
    let _ = manifest.to_inspect_text();
    let _ = manifest.file_name();
    let _ = manifest.check_paths();
    let _ = manifest.version.sort_key();
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(manifest) = Manifest::from_info(text) {
        round_trip(&manifest);
    }
    if let Ok(manifest) = Manifest::from_info_json(text) {
        round_trip(&manifest);
    }
});
