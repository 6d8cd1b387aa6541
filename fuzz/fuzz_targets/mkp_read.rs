//! An MKP from the internet: read it (gzip or plain tar) with tight limits, and
//! unpack every part into a fresh directory. Checks: no panic; nothing but
//! regular files appears under the staging directory, and only the paths the
//! manifest lists; the bytes written stay within the limit; the manifest that
//! was read survives its own `info` and `info.json` round trips.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mkp_format::{Limits, Manifest, Mkp};

/// Small limits so that a bomb is cut short quickly (the defaults are 1 GiB).
const MAX_UNPACKED: u64 = 8 << 20;

fn limits() -> Limits {
    Limits::default()
        .max_unpacked_bytes(MAX_UNPACKED)
        .max_entries(4_000)
        .max_ratio(500, 1 << 20)
}

fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a scratch directory"))
}

/// Every file under `dir` with its path relative to `dir`; panics on anything
/// that is not a directory or a regular file.
fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, u64)>) {
    for entry in std::fs::read_dir(dir).expect("readable staging dir") {
        let entry = entry.expect("dir entry");
        let meta = std::fs::symlink_metadata(entry.path()).expect("metadata");
        let ft = meta.file_type();
        if ft.is_dir() {
            walk(&entry.path(), root, out);
        } else if ft.is_file() {
            let rel = entry
                .path()
                .strip_prefix(root)
                .expect("inside root")
                .to_path_buf();
            out.push((rel.to_string_lossy().into_owned(), meta.len()));
        } else {
            panic!(
                "extraction created a non-regular file {}",
                entry.path().display()
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = limits();
    let Ok(mkp) = Mkp::from_bytes(data, &limits) else {
        return;
    };
    let manifest = mkp.manifest().clone();
    assert!(
        mkp.unpacked_size() as u64 <= MAX_UNPACKED,
        "decompression passed the limit"
    );

    // The manifest that was accepted writes out and reads back the same.
    let info = manifest.to_info();
    let again = Manifest::from_info(&info)
        .unwrap_or_else(|e| panic!("to_info output does not parse: {e}\n{info}"));
    assert_eq!(again, manifest, "info round trip\n{info}");
    let json = manifest.to_info_json();
    let again = Manifest::from_info_json(&json)
        .unwrap_or_else(|e| panic!("to_info_json output does not parse: {e}\n{json}"));
    assert_eq!(again, manifest, "info.json round trip\n{json}");
    let _ = manifest.to_inspect_text();

    // Unpack into a fresh directory inside the scratch dir.
    let dest = tempfile::tempdir_in(scratch().path()).expect("staging dir");
    let stage = dest.path().join("stage");
    if let Ok(parts) = mkp.extract_all(&stage, &limits) {
        let mut found = Vec::new();
        if stage.exists() {
            walk(&stage, &stage, &mut found);
        }
        let total: u64 = found.iter().map(|(_, len)| len).sum();
        assert!(
            total <= MAX_UNPACKED,
            "unpacked {total} bytes, over the limit"
        );
        for (path, _) in &found {
            let listed = parts.iter().any(|(part, files)| {
                files
                    .iter()
                    .any(|f| *path == format!("{}/{}", part.id(), f))
            });
            assert!(listed, "{path} was written but is not a listed file");
        }
    }
    // A failed extraction may leave files behind; they were checked above
    // only on success, but they must still be inside the staging dir, which
    // the walk of a fresh dir per input guarantees by construction.
    drop(dest);
});
