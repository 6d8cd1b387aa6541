//! The `info` manifest (a Python literal written by `pprint.pformat`) and
//! `info.json`: whatever parses writes back to text that parses to the same
//! manifest (`parse(write(x)) == x`), and writing is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mkp_format::Manifest;

fn round_trip(manifest: &Manifest) {
    let info = manifest.to_info();
    let again = Manifest::from_info(&info)
        .unwrap_or_else(|e| panic!("to_info output does not parse: {e}\n{info}"));
    assert_eq!(&again, manifest, "info round trip\n{info}");
    assert_eq!(again.to_info(), info, "to_info is not a fixed point");

    let json = manifest.to_info_json();
    let again = Manifest::from_info_json(&json)
        .unwrap_or_else(|e| panic!("to_info_json output does not parse: {e}\n{json}"));
    assert_eq!(&again, manifest, "info.json round trip\n{json}");

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
