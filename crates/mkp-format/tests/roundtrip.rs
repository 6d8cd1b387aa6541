//! Property tests: manifest -> archive -> manifest is lossless; mutated real packages never
//! make the reader panic or exceed its limits.

// Test helpers outside #[test] functions may unwrap too (clippy.toml only covers tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mkp_format::{
    Limits, Manifest, Mkp, PackOptions, PackageName, PackagePart, PackageVersion, PartFile,
    PyValue, build_part_tar, write_mkp,
};
use proptest::prelude::*;

fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        // Anything, including control characters, quotes and backslashes.
        prop::collection::vec(any::<char>(), 0..max).prop_map(|c| c.into_iter().collect()),
        // Prose with every kind of whitespace and line break, long enough to be split.
        prop::collection::vec(
            prop_oneof![
                "[a-zA-Z0-9äöüß✓漢😀'\"\\\\]{1,30}",
                Just(" ".to_string()),
                Just("\n".to_string()),
                Just("\r\n".to_string()),
                Just("\t".to_string()),
                Just("\u{a0}".to_string()),
                Just("\u{2028}".to_string()),
            ],
            0..max,
        )
        .prop_map(|w| w.concat()),
    ]
}

fn rel_path() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-zA-Z0-9_ ()äö-][a-zA-Z0-9_ .()äö-]{0,11}", 1..4)
        .prop_map(|c| c.join("/"))
}

fn files() -> impl Strategy<Value = Vec<(PackagePart, Vec<String>)>> {
    prop::collection::vec(
        (0..18usize, prop::collection::btree_set(rel_path(), 0..5)),
        0..18,
    )
    .prop_map(|parts| {
        let mut out: Vec<(PackagePart, Vec<String>)> = Vec::new();
        for (i, paths) in parts {
            let part = PackagePart::ALL[i];
            if out.iter().all(|(p, _)| *p != part) {
                // A path cannot be a file and a parent directory at once: such a
                // package is unextractable by design, so keep only the leaves.
                let leaves: Vec<String> = paths
                    .iter()
                    .filter(|p| !paths.iter().any(|q| q.starts_with(&format!("{p}/"))))
                    .cloned()
                    .collect();
                out.push((part, leaves));
            }
        }
        out
    })
}

prop_compose! {
    fn manifest()(
        name in "[a-zA-Zä_][a-zA-Z0-9ä_-]{0,20}",
        version in "[0-9a-z.+-]{0,12}",
        title in text(40),
        description in text(400),
        author in text(30),
        url in text(20),
        min in "[0-9a-z.]{0,10}",
        until in prop::option::of("[0-9a-z.]{0,10}"),
        files in files(),
    ) -> Manifest {
        Manifest::new(
            PackageName::new(name).unwrap(),
            PackageVersion::new(version).unwrap(),
            title, description, author, url, min, until, files,
        )
    }
}

fn content(part: PackagePart, path: &str) -> Vec<u8> {
    format!("{part}:{path}\n")
        .repeat(path.len() % 7 + 1)
        .into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn manifest_archive_manifest_is_lossless(m in manifest()) {
        let tars: Vec<(PackagePart, Vec<u8>)> = m
            .files
            .iter()
            .map(|(part, paths)| {
                let files: Vec<PartFile> =
                    paths.iter().map(|p| PartFile::new(p.clone(), content(*part, p))).collect();
                (*part, build_part_tar(&files).unwrap())
            })
            .collect();
        let bytes = write_mkp(&m, &tars, &PackOptions::default().mtime(1_700_000_000)).unwrap();
        let back = Mkp::from_bytes(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(back.manifest(), &m);
        // info.json says the same.
        let json = std::str::from_utf8(back.member("info.json").unwrap()).unwrap();
        prop_assert_eq!(&Manifest::from_info_json(json).unwrap(), &m);
        // Writing again is byte-identical (reproducible, and pprint is a fixed point).
        prop_assert_eq!(back.manifest().to_info(), m.to_info());
        // Member order: info, info.json, then the non-empty parts in manifest order.
        let names: Vec<&str> = back.member_names().collect();
        let mut expected = vec!["info".to_string(), "info.json".to_string()];
        expected.extend(m.files.iter().filter(|(_, f)| !f.is_empty()).map(|(p, _)| p.tar_name()));
        prop_assert_eq!(names, expected);
        // Every file comes back with its content.
        let tmp = tempfile::tempdir().unwrap();
        back.extract_all(tmp.path(), &Limits::default()).unwrap();
        for (part, paths) in &m.files {
            for p in paths {
                let got = std::fs::read(tmp.path().join(part.id()).join(p)).unwrap();
                prop_assert_eq!(got, content(*part, p));
            }
        }
        let again = write_mkp(&m, &tars, &PackOptions::default().mtime(1_700_000_000)).unwrap();
        prop_assert_eq!(again, bytes);
    }

    #[test]
    fn any_string_survives_repr_and_parse(s in any::<String>()) {
        let v = PyValue::Dict(vec![(PyValue::Str("k".into()), PyValue::Str(s))]);
        let m = v.pformat();
        let info = format!("{{'author': '', 'description': '', 'download_url': '', 'files': {{}}, 'name': 'n', 'title': {}, 'version': '', 'version.min_required': '', 'version.packaged': ''}}", m.trim_start_matches("{'k': ").trim_end_matches('}'));
        let parsed = Manifest::from_info(&info).unwrap();
        if let PyValue::Dict(items) = &v {
            prop_assert_eq!(Some(parsed.title.as_str()), items[0].1.as_str());
        }
    }
}

fn mutation_inputs() -> Vec<Vec<u8>> {
    let mut inputs = Vec::new();
    if let Some(dir) = testkit::shared_path("corpus/mkp-peer") {
        let paths = testkit::files_with_extension(&dir, "mkp");
        inputs.extend(paths.iter().map(|p| std::fs::read(p).unwrap()));
    }
    if let Some(dir) = testkit::shared_path("corpus/mkp-real") {
        for name in [
            "HeinleinSupport__ceph-11.0.0.mkp",
            "seppovic__df_btrfs-1.0.1.mkp",
            "kuhn-ruess__dir_size-2.0.2.mkp",
        ] {
            inputs.push(std::fs::read(dir.join(name)).unwrap());
        }
    }
    if inputs.is_empty() {
        let m = Manifest::template(
            PackageName::new("x").unwrap(),
            "",
            Some(vec![(PackagePart::Agents, vec!["a".into()])]),
        );
        let tar = build_part_tar(&[PartFile::new("a", "data")]).unwrap();
        inputs.push(write_mkp(&m, &[(PackagePart::Agents, tar)], &PackOptions::default()).unwrap());
    }
    inputs
}

/// The decompressed tar (a plain tar is returned as it is).
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out) {
        Ok(_) => out,
        Err(_) => bytes.to_vec(),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, bytes).unwrap();
    enc.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mutated_packages_never_panic(
        pick in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in prop::option::of(any::<prop::sample::Index>()),
        in_tar in any::<bool>(),
    ) {
        let inputs = mutation_inputs();
        let mut bytes = inputs[pick.index(inputs.len())].clone();
        // Mutating the compressed bytes mostly breaks the gzip CRC; half of
        // the cases mutate the decompressed tar and compress it again, so
        // that the mutation reaches the tar and manifest parsers.
        if in_tar {
            bytes = gunzip(&bytes);
        }
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        if in_tar {
            bytes = gzip(&bytes);
        }
        let limits = Limits::default().max_unpacked_bytes(16 << 20).max_entries(10_000);
        if let Ok(mkp) = Mkp::from_bytes(&bytes, &limits) {
            prop_assert!(mkp.unpacked_size() as u64 <= 16 << 20);
            let tmp = tempfile::tempdir().unwrap();
            let stage = tmp.path().join("stage");
            let _ = mkp.extract_all(&stage, &limits);
            // Nothing outside the staging directory.
            for entry in std::fs::read_dir(tmp.path()).unwrap() {
                prop_assert_eq!(entry.unwrap().file_name(), "stage");
            }
        }
    }
}
