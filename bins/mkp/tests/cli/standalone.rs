//! Standalone mode: the real binary on temporary directories and on the shared corpus.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::common::{mkp, run, run_with_closed_stdout, stderr, stdout};

fn corpus(dir: &Path) -> Vec<PathBuf> {
    testkit::files_with_extension(dir, "mkp")
}

/// `mkp inspect [--json]` prints exactly what the library renders (plus `\n`), or, where
/// the library refuses the file, exits 1 with the library's one-line message naming the
/// file. Together with mkp-format's `tests/corpus.rs`, which compares the library's
/// rendering with the reference tool's output (byte for byte, and the JSON parsed), this
/// makes our `inspect` output the reference's wherever the reference succeeded. The plain
/// tar (`seppovic__df_btrfs-1.0.1.mkp`) is read, with a note on stderr. Returns (read,
/// refused).
fn check_corpus(dir: &Path) -> (usize, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let (mut read, mut refused) = (0, 0);
    for file in corpus(dir) {
        let base = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = run(&["inspect", file.to_str().unwrap()], tmp.path());
        let json = run(&["inspect", "--json", file.to_str().unwrap()], tmp.path());
        match mkp_format::Mkp::open(&file) {
            Ok(mkp) => {
                let m = mkp.manifest();
                assert_eq!(text.status.code(), Some(0), "{base}: {}", stderr(&text));
                assert_eq!(
                    stdout(&text),
                    format!("{}\n", m.to_inspect_text()),
                    "{base}"
                );
                assert_eq!(json.status.code(), Some(0), "{base}: {}", stderr(&json));
                assert_eq!(stdout(&json), format!("{}\n", m.to_field_json()), "{base}");
                let note = mkp.container() == mkp_format::Container::PlainTar;
                assert_eq!(note, base == "seppovic__df_btrfs-1.0.1.mkp", "{base}");
                assert_eq!(stderr(&text).contains("uncompressed tar"), note, "{base}");
                read += 1;
            }
            Err(e) => {
                for o in [&text, &json] {
                    assert_eq!(o.status.code(), Some(1), "{base}");
                    assert_eq!(stderr(o), format!("{e}\n"), "{base}");
                    assert!(stderr(o).contains(&base), "{base}");
                }
                assert!(text.stdout.is_empty(), "{base}");
                // --json: the error as one JSON document on stdout.
                let doc: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
                assert_eq!(doc["schema"], 1, "{base}");
                assert_eq!(doc["exit_code"], 1, "{base}");
                assert_eq!(doc["error"], e.to_string(), "{base}");
                refused += 1;
            }
        }
    }
    (read, refused)
}

#[test]
fn inspect_real_corpus_like_the_reference() {
    let dir = testkit::require_shared!("corpus/mkp-real");
    // 60 the reference reads too, plus the plain tar.
    assert_eq!(check_corpus(&dir), (61, 10));
}

#[test]
fn inspect_peer_corpus_like_the_reference() {
    let dir = testkit::require_shared!("corpus/mkp-peer");
    assert_eq!(check_corpus(&dir), (9, 0));
}

#[test]
fn inspect_unreadable_path() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&["inspect", tmp.path().to_str().unwrap()], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Cannot read file"), "{}", stderr(&o));
    assert!(stderr(&o).contains(tmp.path().to_str().unwrap()));
    let o = run(&["inspect", "missing.mkp"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing.mkp"));
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&[], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Usage"), "{}", stderr(&o));
    for args in [
        &["frobnicate"][..],
        &["list"],
        &["install", "x.mkp"],
        &["enable", "x"],
        &["template", "1bad"],
    ] {
        let o = run(args, tmp.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
    let o = run(&["template", "1bad"], tmp.path());
    assert!(stderr(&o).contains("must start with a letter or underscore"));
    // Site commands need a site, and say how to give one.
    let o = run(&["list"], tmp.path());
    assert!(stderr(&o).contains("needs a site"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--site-root"), "{}", stderr(&o));
}

#[test]
fn path_config_template_and_template() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&["path-config-template"], tmp.path());
    assert_eq!(o.status.code(), Some(0));
    let t = stdout(&o);
    assert!(
        t.starts_with("[paths]\ncmk_plugins_dir = \"cmk/plugins\"\n"),
        "{t}"
    );
    assert!(t.ends_with("local_root = \".\"\n"));
    assert_eq!(t.lines().count(), 20);

    let o = run(&["template", "cool_package"], tmp.path());
    assert_eq!(o.status.code(), Some(0));
    let t = stdout(&o);
    assert!(t.ends_with("}\n\n"));
    let m = mkp_format::Manifest::from_info(&t).unwrap();
    assert_eq!(m.name.as_str(), "cool_package");
    assert_eq!(m.files.len(), 18);
    assert!(t.contains(" 'version.packaged': 'cmk-mkp-tool 2.0.1',\n"));
    assert!(t.contains(" 'version.min_required': '',\n"));
}

/// A standalone project: mkp-tool.toml plus part directories, as `path-config-template`
/// suggests.
fn project() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let toml = stdout(&run(&["path-config-template"], tmp.path()))
        .replace("agents_dir = \"agents\"", "agents_dir = \"src/agents\"")
        .replace("doc_dir = \"doc\"", "doc_dir = \"src/doc\"")
        .replace("local_root = \".\"", "local_root = \"src\"");
    std::fs::write(tmp.path().join("mkp-tool.toml"), toml).unwrap();
    std::fs::create_dir_all(tmp.path().join("src/agents/plugins")).unwrap();
    std::fs::create_dir_all(tmp.path().join("src/doc")).unwrap();
    std::fs::write(
        tmp.path().join("src/agents/plugins/hello.sh"),
        "#!/bin/sh\necho hi\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("src/doc/README"), "read me\n").unwrap();
    tmp
}

fn write_manifest(dir: &Path, version: &str) -> PathBuf {
    let text = format!(
        "{{'author': 'Me', 'description': 'Demo', 'download_url': '',\n 'files': {{'agents': ['plugins/hello.sh'], 'doc': ['README']}},\n 'name': 'hello', 'title': 'Hello', 'version': '{version}',\n 'version.min_required': '2.3.0', 'version.packaged': 'whatever', 'num_files': 2}}\n"
    );
    let path = dir.join("hello.manifest");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn package_builds_an_mkp_that_reads_back() {
    let p = project();
    let manifest = write_manifest(p.path(), "1.0.0");
    let out = p.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let package = || {
        let args = ["package", manifest.to_str().unwrap(), out.to_str().unwrap()];
        run(&[&args[..], &["--mtime", "1700000000"]].concat(), p.path())
    };
    let o = package();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let file = out.join("hello-1.0.0.mkp");
    // What was created, and where.
    assert_eq!(
        stdout(&o),
        format!("Created hello 1.0.0: {}\n", file.display())
    );
    let mkp = mkp_format::Mkp::open(&file).unwrap();
    let m = mkp.manifest();
    assert_eq!(m.version_packaged, "cmk-mkp-tool 2.0.1");
    assert!(
        m.extra.is_empty(),
        "packaging drops extra keys like Checkmk"
    );
    let names: Vec<&str> = mkp.member_names().collect();
    assert_eq!(names, ["info", "info.json", "agents.tar", "doc.tar"]);
    let stage = tempfile::tempdir().unwrap();
    mkp.extract_all(stage.path(), &mkp_format::Limits::default())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(stage.path().join("agents/plugins/hello.sh")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );

    // Reproducible with a fixed mtime.
    let first = std::fs::read(&file).unwrap();
    assert_eq!(package().status.code(), Some(0));
    assert_eq!(std::fs::read(&file).unwrap(), first);

    let o = run(&["inspect", file.to_str().unwrap()], p.path());
    assert!(stdout(&o).contains("Name:                          hello\n"));
}

#[test]
fn package_errors_are_one_clean_line() {
    let p = project();
    let manifest = write_manifest(p.path(), "1.0");
    let o = run(&["package", manifest.to_str().unwrap()], p.path());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Not a valid semantic versioning string: '1.0'\n"
    );

    let manifest = write_manifest(p.path(), "1.0.1");
    std::fs::remove_file(p.path().join("src/doc/README")).unwrap();
    let o = run(&["package", manifest.to_str().unwrap()], p.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("README") && stderr(&o).contains("does not exist"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1);

    let empty = tempfile::tempdir().unwrap();
    let o = run(&["package", manifest.to_str().unwrap()], empty.path());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Missing configuration file: mkp-tool.toml\n");

    std::fs::write(p.path().join("broken.manifest"), "{'name': 'x',").unwrap();
    let o = run(&["package", "broken.manifest"], p.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("broken.manifest"), "{}", stderr(&o));
}

#[test]
fn find_lists_unpackaged_files() {
    let p = project();
    let o = run(&["find"], p.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = stdout(&o);
    let mut lines = t.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("File ") && header.contains("Package") && header.contains("Mode"));
    assert!(t.contains("plugins/hello.sh"), "{t}");
    assert!(t.contains("Agents"), "{t}");

    let o = run(&["find", "--json"], p.path());
    let files: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let hello: Vec<&serde_json::Value> = files
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["file"] == "plugins/hello.sh")
        .collect();
    assert_eq!(hello.len(), 1);
    assert_eq!(hello[0]["part_id"], "agents");
    assert_eq!(hello[0]["package"], "");
    assert!(hello[0]["mode"].as_str().unwrap().starts_with("-rw"));
}

#[test]
fn packages_like_the_reference_tool() {
    // Rebuild the peer's hello_world from its own files and compare member by member.
    let peer = testkit::require_shared!("corpus/mkp-peer");
    let original = mkp_format::Mkp::open(peer.join("hello_world-1.0.0.mkp")).unwrap();
    let p = tempfile::tempdir().unwrap();
    let toml = stdout(&run(&["path-config-template"], p.path()));
    std::fs::write(p.path().join("mkp-tool.toml"), toml).unwrap();
    let config = mkp_format::PathConfig::template();
    for (part, _) in &original.manifest().files {
        // The template gives hello_world's two parts distinct directories.
        let dir = p.path().join(config.part_dir(*part));
        original
            .extract_part(*part, &dir, &mkp_format::Limits::default())
            .unwrap();
    }
    std::fs::write(p.path().join("manifest"), original.member("info").unwrap()).unwrap();
    let o = run(&["package", "manifest", "."], p.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ours = mkp_format::Mkp::open(p.path().join("hello_world-1.0.0.mkp")).unwrap();
    assert_eq!(ours.member("info"), original.member("info"));
    assert_eq!(ours.member("info.json"), original.member("info.json"));
    assert_eq!(
        ours.member_names().collect::<Vec<_>>(),
        original.member_names().collect::<Vec<_>>()
    );
    // Outer tar headers are byte-identical to Python's except mtime and checksum.
    let headers = |path: &Path| -> Vec<Vec<u8>> {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_end(&mut tar)
            .unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let positions: Vec<usize> = archive
            .entries()
            .unwrap()
            .map(|e| usize::try_from(e.unwrap().raw_header_position()).unwrap())
            .collect();
        positions
            .into_iter()
            .map(|pos| {
                let mut h = tar[pos..pos + 512].to_vec();
                h[136..156].fill(0);
                h
            })
            .collect()
    };
    assert_eq!(
        headers(&p.path().join("hello_world-1.0.0.mkp")),
        headers(&peer.join("hello_world-1.0.0.mkp"))
    );
    for (part, _) in &original.manifest().files {
        let names = |m: &mkp_format::Mkp| -> Vec<(String, Vec<u8>)> {
            let mut a = tar::Archive::new(m.part_tar(*part).unwrap());
            a.entries()
                .unwrap()
                .map(|e| {
                    let mut e = e.unwrap();
                    let mut data = Vec::new();
                    e.read_to_end(&mut data).unwrap();
                    (e.path().unwrap().display().to_string(), data)
                })
                .collect()
        };
        assert_eq!(names(&ours), names(&original), "{part}");
    }
}

#[test]
fn closed_stdout_is_not_an_error() {
    let peer = testkit::require_shared!("corpus/mkp-peer");
    let mut cmd = mkp();
    cmd.args([
        "inspect",
        peer.join("hello_world-1.0.0.mkp").to_str().unwrap(),
    ]);
    let (status, err) = run_with_closed_stdout(cmd);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_path_config_template_gives_each_part_its_own_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let toml = stdout(&run(&["path-config-template"], tmp.path()));
    std::fs::write(tmp.path().join("mkp-tool.toml"), &toml).unwrap();
    std::fs::create_dir_all(tmp.path().join("checks")).unwrap();
    std::fs::write(tmp.path().join("checks/mycheck"), "x").unwrap();
    let o = run(&["find", "--json"], tmp.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let found: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let found = found.as_array().unwrap();
    let check = found.iter().find(|f| f["file"] == "mycheck").unwrap();
    assert_eq!(check["part_id"], "checks");
    // The configuration is no file of any part (Checkmk's template maps most parts to
    // ".", which made it an "Event Console rule pack").
    let config = found
        .iter()
        .find(|f| f["file"].as_str().unwrap().ends_with("mkp-tool.toml"))
        .unwrap();
    assert_eq!(config["part_id"], "", "{config}");
}
