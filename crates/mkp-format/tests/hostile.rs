//! Hostile packages built in the test: nothing may be written outside the staging
//! directory, bombs must fail fast, broken input must give clean errors, never panics.

// Test helpers outside #[test] functions may unwrap too (clippy.toml only covers tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use mkp_format::{
    ErrorKind, Limits, Manifest, Mkp, PackOptions, PackageName, PackagePart, PartFile,
    build_part_tar, write_mkp,
};

/// A raw GNU tar header, written byte by byte so that names the tar crate would refuse
/// (`..`, absolute) can be produced.
fn raw_header(name: &str, kind: u8, size: u64, link: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    let size_field = format!("{size:011o}");
    h[124..135].copy_from_slice(size_field.as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..265].copy_from_slice(b"ustar  \0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let cks = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(cks.as_bytes());
    h
}

/// A tar from (name, type, data, link) tuples.
fn raw_tar(entries: &[(&str, u8, &[u8], &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data, link) in entries {
        out.extend_from_slice(&raw_header(name, *kind, data.len() as u64, link));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn manifest(part: PackagePart, files: &[&str]) -> Manifest {
    let mut m = Manifest::template(PackageName::new("evil").unwrap(), "2.3.0", Some(vec![]));
    m.files = vec![(part, files.iter().map(|s| s.to_string()).collect())];
    m
}

fn mkp(part: PackagePart, listed: &[&str], part_tar: Vec<u8>) -> Mkp {
    let bytes = write_mkp(
        &manifest(part, listed),
        &[(part, part_tar)],
        &PackOptions::default().mtime(0),
    )
    .unwrap();
    Mkp::from_bytes(&bytes, &Limits::default()).unwrap()
}

/// Extracts into `<tmp>/stage` and returns the error; asserts nothing appeared in `<tmp>`
/// besides `stage`.
fn extract_err(mkp: &Mkp, part: PackagePart) -> mkp_format::Error {
    let tmp = tempfile::tempdir().unwrap();
    let stage = tmp.path().join("stage");
    let err = mkp
        .extract_part(part, &stage, &Limits::default())
        .expect_err("must be refused");
    assert_only_stage(tmp.path());
    let msg = err.to_string();
    assert!(msg.contains(".tar"), "names the member: {msg}");
    assert!(!msg.contains('\n'));
    err
}

/// Builds a package whose `part` tar holds `entries` while its manifest lists `listed`,
/// extracts that part and returns why it was refused (see `extract_err`).
fn refusal(
    part: PackagePart,
    listed: &[&str],
    entries: &[(&str, u8, &[u8], &str)],
) -> mkp_format::Error {
    extract_err(&mkp(part, listed, raw_tar(entries)), part)
}

/// `refusal` of a package whose agents tar holds the single entry its manifest lists.
fn single_entry_refusal(name: &str, kind: u8, data: &[u8], link: &str) -> mkp_format::Error {
    refusal(PackagePart::Agents, &[name], &[(name, kind, data, link)])
}

/// Extracts `part` of `m` into a fresh temporary directory.
fn extract_into_tempdir(
    m: &Mkp,
    part: PackagePart,
    limits: &Limits,
) -> mkp_format::Result<Vec<String>> {
    m.extract_part(part, tempfile::tempdir().unwrap().path(), limits)
}

/// Asserts that a package with `name` as its single, listed entry is refused as unsafe.
#[track_caller]
fn assert_refused_as_unsafe_path(name: &str) {
    let err = single_entry_refusal(name, b'0', b"x", "");
    assert!(
        matches!(err.kind(), ErrorKind::UnsafePath { .. }),
        "{name:?}: {err}"
    );
}

fn assert_only_stage(dir: &Path) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n == "stage"),
        "something was written outside the staging dir: {names:?}"
    );
}

#[test]
fn traversal_is_refused() {
    assert_refused_as_unsafe_path("../evil");
    assert_refused_as_unsafe_path("a/../../evil");
}

#[test]
fn absolute_and_empty_paths_are_refused() {
    assert_refused_as_unsafe_path("/tmp/evil");
    assert_refused_as_unsafe_path("");
}

#[test]
fn symlinks_and_devices_are_refused() {
    for (name, kind, link, expected) in [
        ("link", b'2', "/etc/passwd", "symbolic link"),
        ("dev", b'3', "", "device file"),
        ("fifo", b'6', "", "FIFO"),
    ] {
        let err = single_entry_refusal(name, kind, b"", link);
        assert!(
            matches!(
                err.kind(),
                ErrorKind::UnsupportedEntry { entry_type, .. } if *entry_type == expected
            ),
            "{name}: {err}"
        );
    }
}

#[test]
fn unlisted_hostile_entries_are_never_written() {
    let tar = raw_tar(&[
        ("../evil", b'0', b"x", ""),
        ("/abs", b'0', b"x", ""),
        ("link", b'2', b"", "/etc"),
        ("ok", b'0', b"fine", ""),
    ]);
    let m = mkp(PackagePart::Agents, &["ok"], tar);
    let tmp = tempfile::tempdir().unwrap();
    let stage = tmp.path().join("stage");
    let written = m
        .extract_part(PackagePart::Agents, &stage, &Limits::default())
        .unwrap();
    assert_eq!(written, ["ok"]);
    assert_eq!(std::fs::read(stage.join("ok")).unwrap(), b"fine");
    assert_eq!(std::fs::read_dir(&stage).unwrap().count(), 1);
    assert_only_stage(tmp.path());
}

#[test]
fn hard_links_only_within_the_part() {
    // Link to an unlisted member.
    let err = refusal(
        PackagePart::Lib,
        &["a"],
        &[("secret", b'0', b"s", ""), ("a", b'1', b"", "secret")],
    );
    assert!(
        matches!(err.kind(), ErrorKind::HardLinkOutside { .. }),
        "{err}"
    );
    // Link to a host file.
    let err = refusal(PackagePart::Lib, &["a"], &[("a", b'1', b"", "/etc/passwd")]);
    assert!(
        matches!(err.kind(), ErrorKind::HardLinkOutside { .. }),
        "{err}"
    );
    // Link to a listed file of the same part: content copied (like ceph-11.0.0.mkp).
    let tar = raw_tar(&[
        ("x/real.py", b'0', b"code", ""),
        ("y/link.py", b'1', b"", "x/real.py"),
    ]);
    let m = mkp(PackagePart::Lib, &["x/real.py", "y/link.py"], tar);
    let tmp = tempfile::tempdir().unwrap();
    m.extract_part(PackagePart::Lib, tmp.path(), &Limits::default())
        .unwrap();
    assert_eq!(
        std::fs::read(tmp.path().join("y/link.py")).unwrap(),
        b"code"
    );
    let meta = std::fs::symlink_metadata(tmp.path().join("y/link.py")).unwrap();
    assert!(meta.file_type().is_file());
}

#[test]
fn duplicates_are_refused() {
    // The second "x" collides with the first; "./x" and "x" are the same target.
    for second in ["x", "./x"] {
        let err = refusal(
            PackagePart::Agents,
            &["x"],
            &[("x", b'0', b"1", ""), (second, b'0', b"2", "")],
        );
        assert!(
            matches!(err.kind(), ErrorKind::DuplicateEntry { .. }),
            "{second:?}: {err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn planted_symlinks_in_the_staging_dir_are_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let stage = tmp.path().join("stage");
    std::fs::create_dir(&stage).unwrap();
    std::os::unix::fs::symlink(&outside, stage.join("plugins")).unwrap();
    std::os::unix::fs::symlink(outside.join("f"), stage.join("top")).unwrap();
    let tar =
        build_part_tar(&[PartFile::new("plugins/x", "x"), PartFile::new("top", "t")]).unwrap();
    let m = mkp(PackagePart::Agents, &["plugins/x"], tar.clone());
    assert!(
        m.extract_part(PackagePart::Agents, &stage, &Limits::default())
            .is_err()
    );
    let m = mkp(PackagePart::Agents, &["top"], tar);
    assert!(
        m.extract_part(PackagePart::Agents, &stage, &Limits::default())
            .is_err()
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn missing_tar_and_missing_member_are_clean_errors() {
    let bytes = write_mkp(
        &manifest(PackagePart::Agents, &["a"]),
        &[(PackagePart::Agents, raw_tar(&[("b", b'0', b"b", "")]))],
        &PackOptions::default(),
    )
    .unwrap();
    let m = Mkp::from_bytes(&bytes, &Limits::default()).unwrap();
    let e = extract_into_tempdir(&m, PackagePart::Agents, &Limits::default()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::MissingMember { .. }), "{e}");
    let e = extract_into_tempdir(&m, PackagePart::Checks, &Limits::default()).unwrap();
    assert!(e.is_empty(), "nothing listed for checks");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_bomb_fails_fast() {
    // 64 MiB of zeros behind a tar header: about 64 KiB compressed (ratio ~1000:1).
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(&raw_header("info", b'0', 64 << 20, ""))
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let start = std::time::Instant::now();
    let e = Mkp::from_bytes(&bomb, &Limits::default()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::LimitExceeded { .. }), "{e}");
    assert!(e.to_string().contains("ratio"), "{e}");
    assert!(start.elapsed().as_secs() < 10);
    // A plain size cap also stops it.
    let e = Mkp::from_bytes(
        &bomb,
        &Limits::default()
            .max_unpacked_bytes(1 << 20)
            .max_ratio(u64::MAX, 0),
    )
    .unwrap_err();
    assert!(e.to_string().contains("more than 1048576 bytes"), "{e}");
}

#[test]
fn billion_byte_declared_size_fails_without_allocating() {
    let mut tar = raw_header("info", b'0', 1_000_000_000, "").to_vec();
    tar.extend_from_slice(b"{'name': 'x'}");
    let e = Mkp::from_bytes(&gzip(&tar), &Limits::default()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Damaged { .. }), "{e}");
    // The same inside a part tar.
    let mut part = raw_header("a", b'0', 1_000_000_000, "").to_vec();
    part.extend_from_slice(b"abc");
    let m = mkp(PackagePart::Agents, &["a"], part);
    let e = extract_into_tempdir(&m, PackagePart::Agents, &Limits::default()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Damaged { .. }), "{e}");
}

#[test]
fn entry_count_is_capped() {
    let names: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let entries: Vec<(&str, u8, &[u8], &str)> = names
        .iter()
        .map(|n| (n.as_str(), b'0', &b"x"[..], ""))
        .collect();
    let m = mkp(PackagePart::Doc, &["f0"], raw_tar(&entries));
    let e =
        extract_into_tempdir(&m, PackagePart::Doc, &Limits::default().max_entries(10)).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::LimitExceeded { .. }), "{e}");
}

fn valid_package() -> Vec<u8> {
    let files = vec![PartFile::new("plugins/hello", vec![b'h'; 3000])];
    write_mkp(
        &manifest(PackagePart::Agents, &["plugins/hello"]),
        &[(PackagePart::Agents, build_part_tar(&files).unwrap())],
        &PackOptions::default().mtime(1),
    )
    .unwrap()
}

#[test]
fn truncated_packages_give_clean_errors() {
    let bytes = valid_package();
    for cut in (0..bytes.len()).step_by(7) {
        match Mkp::from_bytes(&bytes[..cut], &Limits::default()) {
            Ok(_) => panic!("a truncated package at {cut} must not read"),
            Err(e) => assert!(!e.to_string().contains('\n')),
        }
    }
}

/// Reads `bytes` and, if that works, unpacks them; `true` when the input got
/// past the gzip layer (read, or refused for something else than damage).
fn read_and_extract(bytes: &[u8]) -> bool {
    match Mkp::from_bytes(bytes, &Limits::default()) {
        Ok(m) => {
            let tmp = tempfile::tempdir().unwrap();
            let stage = tmp.path().join("stage");
            let _ = m.extract_all(&stage, &Limits::default());
            for entry in std::fs::read_dir(tmp.path()).unwrap() {
                assert_eq!(entry.unwrap().file_name(), "stage");
            }
            true
        }
        Err(e) => !matches!(
            e.kind(),
            ErrorKind::Damaged { .. } | ErrorKind::NotGzip { .. }
        ),
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let bytes = valid_package();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        read_and_extract(&b);
    }
}

/// Flipping bytes of the compressed file mostly breaks the gzip CRC, so the tar
/// and manifest parsers never see it: flip the decompressed tar instead and
/// compress it again, so that every flip reaches them.
#[test]
fn flipped_bytes_of_the_tar_reach_the_parser_and_never_panic() {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&valid_package()[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut reached = 0;
    let mut flips = 0;
    // Every byte of the headers and the manifest; a sample of the zero padding.
    for i in (0..tar.len()).filter(|i| tar[*i] != 0 || i % 61 == 0) {
        let mut t = tar.clone();
        t[i] ^= 0x5a;
        flips += 1;
        if read_and_extract(&gzip(&t)) {
            reached += 1;
        }
    }
    // Flips in member data that nobody checks are still read fine, so most
    // flips get past the gzip layer (against about 1% of flips of the .mkp).
    eprintln!("{reached} of {flips} tar flips reached the parser");
    assert!(
        reached * 2 > flips,
        "only {reached} of {flips} tar flips reached the parser"
    );
}

#[test]
fn non_packages_are_named() {
    let cases: [(&[u8], &str); 5] = [
        (
            b"<!DOCTYPE html><html><body>Download</body></html>",
            "HTML page",
        ),
        (b"", "empty file"),
        (b"{'name': 'x', 'version': '1'}", "bare manifest"),
        (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n",
            "Git LFS",
        ),
        (b"PK\x03\x04rest", "zip archive"),
    ];
    for (bytes, expected) in cases {
        let e = Mkp::from_bytes(bytes, &Limits::default()).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::NotGzip { .. }));
        assert!(e.to_string().contains(expected), "{e}");
        assert!(
            e.to_string()
                .starts_with("not a gzip file: this looks like"),
            "{e}"
        );
    }
}

#[test]
fn gzip_of_something_else() {
    let e = Mkp::from_bytes(&gzip(b"{'name': 'x'}"), &Limits::default()).unwrap_err();
    assert!(
        e.to_string().contains("does not contain a tar archive"),
        "{e}"
    );
    let e = Mkp::from_bytes(&gzip(&[0u8; 10240]), &Limits::default()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InfoMissing), "{e}");
}

#[test]
fn info_that_is_not_a_regular_file_or_missing() {
    let tar = raw_tar(&[("info", b'2', b"", "/etc/passwd")]);
    let e = Mkp::from_bytes(&gzip(&tar), &Limits::default()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InfoNotRegular), "{e}");
    let tar = raw_tar(&[("agents.tar", b'0', b"", "")]);
    let e = Mkp::from_bytes(&gzip(&tar), &Limits::default()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InfoMissing), "{e}");
    let tar = raw_tar(&[("info", b'0', b"\xff\xfe", "")]);
    let e = Mkp::from_bytes(&gzip(&tar), &Limits::default()).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NotUtf8 { .. }), "{e}");
}
