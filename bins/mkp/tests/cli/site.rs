//! Site mode: section 11 "CLI" of the spec, against the real binary.

use mkp_format::{Manifest, PackagePart};

use crate::common::{Pkg, TestSite, mkp, run_with_closed_stdout};

fn cool_in(dir: &std::path::Path) -> std::path::PathBuf {
    Pkg::new("cool_package", "1.0.0").write_to(dir)
}

#[test]
fn add_of_a_directory_fails_naming_the_path() {
    let site = TestSite::new();
    let dir = tempfile::tempdir().unwrap();
    let err = site.fails(&["add", dir.path().to_str().unwrap()], 1);
    assert!(err.contains(dir.path().to_str().unwrap()), "{err}");
    assert!(err.contains("Is a directory"), "{err}");
}

#[test]
fn unknown_command_exits_2() {
    let site = TestSite::new();
    let err = site.fails(&["frobnicate", "x.mkp"], 2);
    assert!(err.contains("frobnicate"), "{err}");
}

#[test]
fn both_mode_commands_work_on_a_site_and_mode_options_are_checked() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    let file = cool_in(tmp.path());
    // inspect and path-config-template behave as standalone.
    let text = site.ok(&["inspect", file.to_str().unwrap()]);
    assert!(
        text.starts_with("Name:                          cool_package\n"),
        "{text}"
    );
    assert!(site.ok(&["path-config-template"]).starts_with("[paths]\n"));
    // Options of the other mode are usage errors.
    let manifest = tmp.path().join("m");
    std::fs::write(&manifest, Pkg::new("m", "1.0.0").manifest().to_info()).unwrap();
    let err = site.fails(&["package", manifest.to_str().unwrap(), "/tmp"], 2);
    assert!(err.contains("standalone"), "{err}");
    let err = site.fails(&["--config", "x.toml", "--site-root", ".", "find"], 2);
    assert!(err.contains("--config"), "{err}");
    let o = mkp()
        .args(["package", "--dry-run", manifest.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    // An explicit --config selects standalone mode although $OMD_ROOT is set.
    std::fs::write(tmp.path().join("paths.toml"), "[paths]\n").unwrap();
    let err = site.fails(
        &[
            "--config",
            tmp.path().join("paths.toml").to_str().unwrap(),
            "find",
        ],
        1,
    );
    assert!(err.contains("paths.toml"), "{err}");
    let err = site.fails(&["--config", "x.toml", "list"], 2);
    assert!(err.contains("needs a site"), "{err}");
}

#[test]
fn site_root_flag_works_without_omd_root() {
    let site = TestSite::new();
    let o = mkp()
        .args(["list", "--site-root", site.root().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success());
}

#[test]
fn invalid_name_is_a_usage_error() {
    let site = TestSite::new();
    let err = site.fails(&["show", "1bad"], 2);
    assert!(
        err.contains("must start with a letter or underscore"),
        "{err}"
    );
}

#[test]
fn template_parses_back_with_the_name() {
    let site = TestSite::new();
    let out = site.ok(&["template", "--stdout", "cool_package"]);
    let m = Manifest::from_info(&out).unwrap();
    assert_eq!(m.name.as_str(), "cool_package");
    assert_eq!(m.version_min_required, crate::common::SITE_VERSION);
    // Empty site: no unpackaged files, so no parts at all (site mode).
    assert!(m.files.is_empty(), "{:?}", m.files);
}

#[test]
fn template_lists_unpackaged_files_per_part_sorted() {
    let site = TestSite::new();
    let ab = PackagePart::AgentBased.site_path();
    let doc = PackagePart::Doc.site_path();
    site.write(&format!("{ab}/zz.py"), b"z");
    site.write(&format!("{ab}/aa.py"), b"a");
    site.write(&format!("{doc}/readme.txt"), b"r");
    let m = Manifest::from_info(&site.ok(&["template", "--stdout", "x"])).unwrap();
    assert_eq!(m.files_of(PackagePart::AgentBased), ["aa.py", "zz.py"]);
    assert_eq!(m.files_of(PackagePart::Doc), ["readme.txt"]);
    assert_eq!(m.files.len(), 2);
}

#[test]
fn find_lists_an_unpackaged_agent_file() {
    let site = TestSite::new();
    site.write("local/share/check_mk/agents/plugins/x.sh", b"x");
    let table = site.ok(&["find"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("File") && header.contains("Package"),
        "{table}"
    );
    assert!(table.contains("plugins/x.sh"), "{table}");
    let json = site.ok(&["find", "--json"]);
    assert!(json.contains("\"file\": \"plugins/x.sh\""), "{json}");
    assert_eq!(json.matches("\"file\"").count(), 1, "{json}");
}

#[test]
fn list_of_an_empty_site_prints_the_header() {
    let site = TestSite::new();
    let out = site.ok(&["list"]);
    assert!(out.starts_with("Name "), "{out}");
    assert_eq!(out.lines().count(), 2);
    assert_eq!(
        site.ok(&["list", "--json"]),
        "{\"stored\":{\"local\":[],\"shipped\":[]},\"installed\":[],\"inactive\":[]}\n"
    );
}

#[test]
fn show_all_prints_both_headings() {
    let site = TestSite::new();
    let out = site.ok(&["show-all"]);
    assert_eq!(
        out,
        "Local extension packages\n========================\n\n\
         Shipped extension packages\n==========================\n\n"
    );
    assert_eq!(
        site.ok(&["show-all", "--json"]),
        "{\"local\":[],\"shipped\":[]}\n"
    );
}

#[test]
fn add_list_show_and_unknown_show() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    let file = cool_in(tmp.path());
    assert_eq!(site.add(&file), "cool_package 1.0.0\n");
    assert!(
        site.path("var/check_mk/packages_local/cool_package-1.0.0.mkp")
            .is_file()
    );
    assert_eq!(
        site.state_of("cool_package", "1.0.0").as_deref(),
        Some("Disabled")
    );
    let shown = site.ok(&["show", "cool_package"]);
    assert!(
        shown.starts_with("Name:                          cool_package\n"),
        "{shown}"
    );
    let json = site.ok(&["show", "--json", "cool_package", "1.0.0"]);
    assert!(json.contains("\"name\":\"cool_package\""), "{json}");
    let err = site.fails(&["show", "no_such_package"], 1);
    assert_eq!(err, "No such package: no_such_package\n");
    // --debug shows the error's debug form (our "traceback").
    let o = site.run(&["--debug", "show", "no_such_package"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such package: no_such_package"));
    // Adding it again is refused.
    let err = site.fails(&["add", file.to_str().unwrap()], 1);
    assert!(
        err.contains("Package cool_package 1.0.0 exists on the site!"),
        "{err}"
    );
}

#[test]
fn enable_then_disable() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    site.add(&cool_in(tmp.path()));
    assert_eq!(site.ok(&["enable", "cool_package"]), "");
    assert_eq!(
        site.state_of("cool_package", "1.0.0").as_deref(),
        Some("Enabled (active on this site)")
    );
    assert_eq!(site.ok(&["disable", "cool_package"]), "");
    assert_eq!(
        site.state_of("cool_package", "1.0.0").as_deref(),
        Some("Disabled")
    );
}

#[test]
fn files_of_a_package_without_files_prints_nothing() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    site.add(&cool_in(tmp.path()));
    assert_eq!(site.ok(&["files", "cool_package"]), "");
}

#[test]
fn files_prints_absolute_paths_in_manifest_order() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    let p = Pkg::new("two", "1.0.0")
        .file(PackagePart::Agents, "plugins/b", b"b")
        .file(PackagePart::Doc, "a.txt", b"a")
        .write_to(tmp.path());
    site.add(&p);
    let out = site.ok(&["files", "two", "1.0.0"]);
    let root = site.root().display();
    assert_eq!(
        out,
        format!(
            "{root}/local/share/check_mk/agents/plugins/b\n{root}/local/share/doc/check_mk/a.txt\n"
        )
    );
}

#[test]
fn remove_disabled_and_unknown() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    site.add(&cool_in(tmp.path()));
    site.ok(&["remove", "cool_package"]);
    assert_eq!(site.state_of("cool_package", "1.0.0"), None);
    let err = site.fails(&["remove", "cool_package"], 1);
    assert!(err.contains("cool_package"), "{err}");
    let err = site.fails(&["remove", "nope", "1.0"], 1);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn remove_of_an_enabled_package_is_refused() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    site.add(&cool_in(tmp.path()));
    site.ok(&["enable", "cool_package"]);
    let err = site.fails(&["remove", "cool_package"], 1);
    assert_eq!(err, "This package is enabled! Please disable it first.\n");
}

#[test]
fn remove_of_a_shipped_package_is_a_clean_error() {
    let site = TestSite::new();
    let dir = site.path("share/check_mk/optional_packages");
    std::fs::create_dir_all(&dir).unwrap();
    Pkg::new("shipped", "1.0.0").write_to(&dir);
    assert_eq!(
        site.state_of("shipped", "1.0.0").as_deref(),
        Some("Disabled")
    );
    let err = site.fails(&["remove", "shipped"], 1);
    assert!(err.contains("shipped with Checkmk"), "{err}");
    // But it can be enabled.
    site.ok(&["enable", "shipped"]);
    assert_eq!(
        site.state_of("shipped", "1.0.0").as_deref(),
        Some("Enabled (active on this site)")
    );
}

#[test]
fn release_enabled_and_unknown() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    let p = Pkg::new("rel", "1.0.0")
        .file(PackagePart::Agents, "plugins/r.sh", b"r")
        .write_to(tmp.path());
    site.add(&p);
    site.ok(&["enable", "rel"]);
    site.ok(&["release", "rel"]);
    assert!(!site.path("var/check_mk/packages/rel").exists());
    assert!(
        site.path("local/share/check_mk/agents/plugins/r.sh")
            .is_file()
    );
    assert_eq!(
        site.state_of("rel", "1.0.0").as_deref(),
        Some("Enabled (inactive on this site)")
    );
    let err = site.fails(&["release", "rel"], 1);
    assert_eq!(err, "Package rel not installed or corrupt.\n");
    let err = site.fails(&["release", "unknown"], 1);
    assert!(err.contains("unknown"), "{err}");
}

#[test]
fn disable_outdated_keeps_a_package_without_limit() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    site.add(&cool_in(tmp.path()));
    site.ok(&["enable", "cool_package"]);
    assert_eq!(site.ok(&["disable-outdated"]), "");
    assert_eq!(
        site.state_of("cool_package", "1.0.0").as_deref(),
        Some("Enabled (active on this site)")
    );
}

#[test]
fn update_active_on_an_enabled_package() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    site.add(&cool_in(tmp.path()));
    site.ok(&["enable", "cool_package"]);
    assert_eq!(
        site.ok(&["update-active"]),
        "[cool_package 1.0.0]: enabled\n"
    );
    assert_eq!(
        site.ok(&["update-active", "--json"]),
        "{\n  \"installed\": [\n    {\n      \"name\": \"cool_package\",\n      \"version\": \"1.0.0\"\n    }\n  ],\n  \"uninstalled\": []\n}\n"
    );
}

#[test]
fn please_specify_version() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    site.add(&Pkg::new("multi", "1.0.0").write_to(tmp.path()));
    site.add(&Pkg::new("multi", "1.1.0").write_to(tmp.path()));
    let err = site.fails(&["enable", "multi"], 1);
    assert_eq!(err, "Please specify version (1.0.0, 1.1.0)\n");
    let err = site.fails(&["enable", "nothing"], 1);
    assert_eq!(err, "No such package: nothing\n");
    let err = site.fails(&["enable", "nothing", "1.0"], 1);
    assert_eq!(err, "No such package: nothing 1.0\n");
}

#[test]
fn disable_of_something_not_enabled_succeeds() {
    let site = TestSite::new();
    assert_eq!(site.ok(&["disable", "ghost", "1.0.0"]), "");
    let err = site.fails(&["disable", "ghost"], 1);
    assert_eq!(err, "No such package: ghost\n");
}

#[test]
fn help_documents_every_command_the_modes_and_exit_codes() {
    let o = mkp().arg("--help").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "Exit codes",
        "  2  usage error",
        "site mode",
        "standalone mode",
        "--site-root",
        "OMD_ROOT",
        "MKP_SITE_VERSION",
        "--config",
    ] {
        assert!(text.contains(needle), "{needle} missing in {text}");
    }
    for cmd in [
        "inspect",
        "path-config-template",
        "list",
        "show",
        "show-all",
        "files",
        "add",
        "remove",
        "release",
        "enable",
        "disable",
        "disable-outdated",
        "update-active",
        "find",
        "template",
        "package",
    ] {
        assert!(
            text.contains(&format!("  {cmd} ")),
            "{cmd} missing in {text}"
        );
    }
}

#[test]
fn verbose_logs_installing() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    site.add(&cool_in(tmp.path()));
    let o = site.run(&["-v", "enable", "cool_package"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "INFO: [cool_package 1.0.0]: Installing\n"
    );
}

#[test]
fn broken_pipe_does_not_panic() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..40 {
        let name = format!("p{i}");
        site.add(&Pkg::new(&name, "1.0.0").write_to(tmp.path()));
    }
    let mut cmd = site.cmd();
    cmd.arg("show-all");
    let (status, err) = run_with_closed_stdout(cmd);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
}

#[test]
fn a_relative_site_root_prints_absolute_paths() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    let p = Pkg::new("rel", "1.0.0")
        .file(PackagePart::Doc, "r.txt", b"r")
        .write_to(tmp.path());
    site.add(&p);
    let o = mkp()
        .current_dir(site.root())
        .args(["files", "--site-root", ".", "rel"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.starts_with('/'), "{out}");
    assert!(
        out.trim_end().ends_with("/local/share/doc/check_mk/r.txt"),
        "{out}"
    );
}

#[test]
fn a_site_root_that_is_missing_or_a_file_is_refused_and_nothing_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let file = cool_in(tmp.path());
    let typo = tmp.path().join("typo");
    let regular = tmp.path().join("regular");
    std::fs::write(&regular, "not a site").unwrap();
    for root in [&typo, &regular] {
        for args in [
            &["add", file.to_str().unwrap()][..],
            &["list"],
            &["template", "x"],
        ] {
            let o = mkp()
                .arg("--site-root")
                .arg(root)
                .args(args)
                .env("MKP_SITE_VERSION", "2.4.0p1")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(o.stdout.is_empty(), "{args:?}");
            assert!(err.contains(root.to_str().unwrap()), "{err}");
            assert!(err.contains("--site-root"), "{err}");
        }
    }
    assert!(!typo.exists());
    assert_eq!(std::fs::read_to_string(&regular).unwrap(), "not a site");
    // The same through $OMD_ROOT.
    let o = mkp().env("OMD_ROOT", &typo).arg("list").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("$OMD_ROOT"));
    assert!(!typo.exists());
}

#[test]
fn non_utf8_file_names_are_reported_and_never_written_into_a_manifest() {
    use std::os::unix::ffi::OsStrExt as _;
    let site = TestSite::new();
    let dir = site.part_dir(PackagePart::Agents).join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join(std::ffi::OsStr::from_bytes(b"bad\xffname.txt"));
    std::fs::write(&bad, "x").unwrap();
    std::fs::write(dir.join("good.sh"), "y").unwrap();

    let o = site.run(&["find"]);
    assert_eq!(o.status.code(), Some(0));
    let table = String::from_utf8(o.stdout).unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with("plugins/bad"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.starts_with("plugins/bad\\xFFname.txt "), "{row}");
    assert!(row.contains("Agents"), "{row}");
    assert!(!row.contains("cannot stat"), "{row}");
    assert!(row.trim_end().ends_with("-rw-r--r--"), "{row}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("plugins/bad\\xFFname.txt") && err.contains("not valid UTF-8"),
        "{err}"
    );

    let o = site.run(&["template", "--stdout", "x"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    let m = Manifest::from_info(&text).unwrap();
    assert_eq!(m.files_of(PackagePart::Agents), ["plugins/good.sh"]);
    assert!(!text.contains("bad"), "{text}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not valid UTF-8"),
        "a skipped file is named"
    );
}

#[test]
fn template_writes_the_manifest_file_and_names_the_next_command() {
    let site = TestSite::new();
    site.write("local/share/check_mk/agents/plugins/hello.sh", b"echo hi\n");
    let out = site.ok(&["template", "hello"]);
    let path = site.path("tmp/check_mk/hello.manifest.temp");
    assert_eq!(
        out,
        format!(
            "Created '{0}'.\nYou may now edit it.\nCreate the package using `mkp package {0}`.\n",
            path.display()
        )
    );
    let m = Manifest::from_info(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(m.files_of(PackagePart::Agents), ["plugins/hello.sh"]);
    // An existing (maybe edited) template is not overwritten.
    std::fs::write(&path, "edited").unwrap();
    let err = site.fails(&["template", "hello"], 1);
    assert!(err.contains("exists already"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "edited");
}

#[test]
fn package_prints_what_it_created_and_installed_and_where() {
    let site = TestSite::new();
    site.write("local/share/check_mk/agents/plugins/hello.sh", b"echo hi\n");
    site.ok(&["template", "hello"]);
    let manifest = site.path("tmp/check_mk/hello.manifest.temp");
    let out = site.ok(&["package", manifest.to_str().unwrap()]);
    let stored = site.path("var/check_mk/packages_local/hello-1.0.0.mkp");
    let file = site.part_dir(PackagePart::Agents).join("plugins/hello.sh");
    assert_eq!(
        out,
        format!(
            "Created hello 1.0.0: {}\nInstalled hello 1.0.0 (1 file), enabled (active on this site):\n  {}\n",
            stored.display(),
            file.display()
        )
    );
    assert!(stored.is_file());
}

#[test]
fn install_is_add_then_enable() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    let file = Pkg::new("hello", "1.0.0")
        .file(PackagePart::Agents, "plugins/hello.sh", b"echo hi\n")
        .write_to(tmp.path());
    assert_eq!(
        site.ok(&["install", file.to_str().unwrap()]),
        "hello 1.0.0\n"
    );
    assert_eq!(
        site.state_of("hello", "1.0.0").as_deref(),
        Some("Enabled (active on this site)")
    );
    assert!(
        site.part_dir(PackagePart::Agents)
            .join("plugins/hello.sh")
            .is_file()
    );
    // Again with the same bytes: fine. Other bytes under the same id: refused as by add.
    site.ok(&["install", file.to_str().unwrap()]);
    let tmp2 = tempfile::tempdir().unwrap();
    let other = Pkg::new("hello", "1.0.0")
        .file(PackagePart::Agents, "plugins/other.sh", b"echo other\n")
        .write_to(tmp2.path());
    let err = site.fails(&["install", other.to_str().unwrap()], 1);
    assert!(err.contains("exists on the site"), "{err}");
}

#[test]
fn find_does_not_list_the_enabled_marks_of_the_store() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    site.add(&cool_in(tmp.path()));
    site.ok(&["enable", "cool_package"]);
    assert!(
        site.path("local/share/check_mk/enabled_packages/cool_package-1.0.0.mkp")
            .is_file()
    );
    let json = site.ok(&["find", "--all", "--json"]);
    assert_eq!(json, "[]\n");
}

#[test]
fn json_errors_are_one_json_document_on_stdout() {
    let site = TestSite::new();
    let o = site.run(&["show", "--json", "nothing_here"]);
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["error"], "No such package: nothing_here");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "No such package: nothing_here\n"
    );
}

#[test]
fn unreadable_files_are_reported_in_checkmks_words_once() {
    let site = TestSite::new();
    let err = site.fails(&["add", "/nonexistent/x.mkp"], 1);
    assert_eq!(
        err,
        "Cannot read file /nonexistent/x.mkp: [Errno 2] No such file or directory\n"
    );
    let err = site.fails(&["inspect", "/nonexistent/x.mkp"], 1);
    assert_eq!(
        err,
        "Cannot read file /nonexistent/x.mkp: [Errno 2] No such file or directory\n"
    );
}

#[test]
fn help_does_not_document_the_test_hook() {
    let o = mkp().arg("--help").output().unwrap();
    let help = String::from_utf8(o.stdout).unwrap();
    assert!(help.contains("Exit codes"), "{help}");
    assert!(!help.contains("MKP_SITE_FAULT"), "{help}");
}
