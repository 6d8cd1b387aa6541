//! Section 11 "Core operations", "Installed store" and "Reporter", plus the install rules of
//! section 7 (permissions, timestamps, clean-up, legacy paths) and our additions (guard,
//! dry-run, all conflicts at once, no mark after a failed enable).

use std::fs;
use std::time::{Duration, SystemTime};

use mkp_format::{Limits, Manifest, Mkp, PackagePart};

use crate::common::{Pkg, TestSite, mode, part_tar, raw_mkp};

fn enable_pkg(site: &TestSite, pkg: &Pkg<'_>) {
    let tmp = tempfile::tempdir().unwrap();
    site.add(&pkg.write_to(tmp.path()));
    site.ok(&["enable", pkg.name, pkg.version]);
}

#[test]
fn min_required_check() {
    for (site_v, ok) in [("1.3.0", false), ("1.4.0", true)] {
        let site = TestSite::with_version(site_v);
        let tmp = tempfile::tempdir().unwrap();
        site.add(&Pkg::new("minp", "1.0.0").min("1.4").write_to(tmp.path()));
        if ok {
            site.ok(&["enable", "minp"]);
        } else {
            let err = site.fails(&["enable", "minp"], 1);
            assert_eq!(
                err,
                "Package requires a Checkmk version 1.4 or higher (this is 1.3.0). To enable it \
                 anyway, use the `--force-install` flag to skip all version checks.\n"
            );
        }
    }
}

#[test]
fn usable_until_check() {
    for (site_v, ok) in [("1.4", false), ("1.3", true)] {
        let site = TestSite::with_version(site_v);
        let tmp = tempfile::tempdir().unwrap();
        site.add(
            &Pkg::new("untilp", "1.0.0")
                .min("1.0")
                .until("1.4")
                .write_to(tmp.path()),
        );
        let o = site.run(&["enable", "untilp"]);
        assert_eq!(
            o.status.success(),
            ok,
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        if !ok {
            assert!(
                String::from_utf8_lossy(&o.stderr)
                    .starts_with("Package requires a Checkmk version below 1.4 (this is 1.4).")
            );
        }
    }
}

#[test]
fn version_only_failure_marks_enabled_inactive_and_force_install_installs() {
    let site = TestSite::with_version("2.3.0p1");
    let tmp = tempfile::tempdir().unwrap();
    let pkg =
        Pkg::new("newer", "1.0.0")
            .min("2.5.0")
            .file(PackagePart::Agents, "plugins/n.sh", b"n");
    site.add(&pkg.write_to(tmp.path()));
    site.fails(&["enable", "newer"], 1);
    assert_eq!(
        site.state_of("newer", "1.0.0").as_deref(),
        Some("Enabled (inactive on this site)")
    );
    assert!(
        !site
            .path("local/share/check_mk/agents/plugins/n.sh")
            .exists()
    );
    site.ok(&["enable", "--force-install", "newer"]);
    assert_eq!(
        site.state_of("newer", "1.0.0").as_deref(),
        Some("Enabled (active on this site)")
    );
}

#[test]
fn conflict_failure_leaves_no_mark_and_reports_every_conflict() {
    let site = TestSite::new();
    enable_pkg(
        &site,
        &Pkg::new("owner", "1.0.0").file(PackagePart::Agents, "plugins/a", b"a"),
    );
    site.write("local/share/doc/check_mk/b.txt", b"mine");
    let tmp = tempfile::tempdir().unwrap();
    let clash = Pkg::new("clash", "1.0.0")
        .min("9.9.0")
        .file(PackagePart::Agents, "plugins/a", b"x")
        .file(PackagePart::Doc, "b.txt", b"x")
        .file(PackagePart::Doc, "c.txt", b"x");
    site.add(&clash.write_to(tmp.path()));
    let before = site.snapshot();
    let err = site.fails(&["enable", "clash"], 1);
    let root = site.root().display();
    assert_eq!(
        err,
        format!(
            "Package requires a Checkmk version 9.9.0 or higher (this is 2.4.0p1). To enable it \
             anyway, use the `--force-install` flag to skip all version checks.\n\
             File conflict: {root}/local/share/check_mk/agents/plugins/a (already part of owner 1.0.0)\n\
             File conflict: {root}/local/share/doc/check_mk/b.txt (already existing)\n"
        )
    );
    assert_eq!(site.snapshot(), before);
    assert_eq!(site.state_of("clash", "1.0.0").as_deref(), Some("Disabled"));
}

#[test]
fn permissions_after_install() {
    let site = TestSite::new();
    let pkg = Pkg::new("perms", "1.0.0")
        .file(PackagePart::CmkAddonsPlugins, "x/agent_based/foo.py", b"1")
        .file(PackagePart::CmkAddonsPlugins, "x/libexec/foo", b"2")
        .file(PackagePart::CmkPlugins, "top.py", b"3")
        .file(PackagePart::AgentBased, "ab.py", b"4")
        .file(PackagePart::Bin, "tool", b"5")
        .file(PackagePart::Lib, "nagios/plugins/check_foobar", b"6")
        .file(PackagePart::Lib, "other/lib.so", b"7")
        .file(PackagePart::Agents, "plugins/p", b"8")
        .file(PackagePart::Notifications, "notify", b"9")
        .file(PackagePart::AlertHandlers, "handler", b"10")
        .file(PackagePart::Doc, "doc.txt", b"11")
        .file(PackagePart::EcRulePacks, "pack.mk", b"12");
    enable_pkg(&site, &pkg);
    let expect = [
        (PackagePart::CmkAddonsPlugins, "x/agent_based/foo.py", 0o600),
        (PackagePart::CmkAddonsPlugins, "x/libexec/foo", 0o700),
        (PackagePart::CmkPlugins, "top.py", 0o600),
        (PackagePart::AgentBased, "ab.py", 0o600),
        (PackagePart::Bin, "tool", 0o700),
        (PackagePart::Lib, "nagios/plugins/check_foobar", 0o700),
        (PackagePart::Lib, "other/lib.so", 0o600),
        (PackagePart::Agents, "plugins/p", 0o700),
        (PackagePart::Notifications, "notify", 0o700),
        (PackagePart::AlertHandlers, "handler", 0o700),
        (PackagePart::Doc, "doc.txt", 0o600),
        (PackagePart::EcRulePacks, "pack.mk", 0o600),
    ];
    for (part, rel, m) in expect {
        assert_eq!(mode(&site.part_dir(part).join(rel)), m, "{part:?} {rel}");
    }
}

#[test]
fn timestamps_are_fresh() {
    let site = TestSite::new();
    // The package's tar stores mtime 0.
    enable_pkg(
        &site,
        &Pkg::new("fresh", "1.0.0").file(PackagePart::Agents, "plugins/f", b"f"),
    );
    let mtime = fs::metadata(site.path("local/share/check_mk/agents/plugins/f"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(SystemTime::now().duration_since(mtime).unwrap() < Duration::from_secs(600));
}

#[test]
fn uninstall_then_install_restores_manifest_and_file() {
    let site = TestSite::new();
    let pkg = Pkg::new("cycle", "1.0.0").file(PackagePart::AgentBased, "c.py", b"content");
    enable_pkg(&site, &pkg);
    let file = site.part_dir(PackagePart::AgentBased).join("c.py");
    site.ok(&["disable", "cycle"]);
    assert!(!file.exists());
    assert!(!site.path("var/check_mk/packages/cycle").exists());
    // Empty directories are cleaned up, up to (not including) the part dir.
    site.ok(&["enable", "cycle", "1.0.0"]);
    assert_eq!(fs::read(&file).unwrap(), b"content");
    let m = site.installed("cycle");
    assert_eq!(m.version.as_str(), "1.0.0");
    assert_eq!(m.files_of(PackagePart::AgentBased), ["c.py"]);
}

#[test]
fn installed_manifest_reads_back_equal_with_hashes() {
    let site = TestSite::new();
    let pkg = Pkg::new("readback", "1.0.0").file(PackagePart::Doc, "r.txt", b"r");
    enable_pkg(&site, &pkg);
    let mut m = site.installed("readback");
    assert_eq!(mkp_format::HASHES_KEY, "files.sha256");
    assert!(m.extra_value(mkp_format::HASHES_KEY).is_some());
    let text = fs::read_to_string(site.path("var/check_mk/packages/readback")).unwrap();
    assert!(
        text.contains(&format!(
            "'files.sha256': {{'doc': {{'r.txt': '{}'}}}}",
            "454349e422f05297191ead13e21d3db520e5abef52055e4964b82fb213f593a1"
        )),
        "{text}"
    );
    m.extra.clear();
    assert_eq!(m, pkg.manifest());
}

#[test]
fn installed_manifests_are_listed_sorted_by_name() {
    let site = TestSite::new();
    for name in ["zeta", "alpha", "mid"] {
        enable_pkg(&site, &Pkg::new(name, "1.0.0"));
    }
    let table = site.ok(&["list"]);
    let names: Vec<&str> = table
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "mid", "zeta"]);
}

#[test]
fn list_json_classifies() {
    let site = TestSite::new();
    enable_pkg(&site, &Pkg::new("active", "1.0.0"));
    let tmp = tempfile::tempdir().unwrap();
    site.add(&Pkg::new("idle", "1.0.0").write_to(tmp.path()));
    let json = site.ok(&["list", "--json"]);
    let idx = |s: &str| json.find(s).unwrap();
    assert!(json.starts_with("{\"stored\":{\"local\":[{"), "{json}");
    assert!(idx("\"installed\":[{\"title\":\"Title of active\"") > idx("\"shipped\":[]"));
    assert!(json.contains("\"inactive\":[]}"), "{json}");
    assert!(!json.contains("sha256"), "hashes are internal: {json}");
}

#[test]
fn legacy_lib_paths_are_rewritten() {
    let site = TestSite::new();
    let pkg = Pkg::new("legacy", "1.0.0")
        .file(PackagePart::Lib, "check_mk/nested/thing.py", b"t")
        .file(PackagePart::Lib, "check_mk_extra/keep.py", b"k")
        .file(PackagePart::Doc, "d.txt", b"d");
    enable_pkg(&site, &pkg);
    let lib = site.part_dir(PackagePart::Lib);
    assert!(lib.join("python3/cmk/nested/thing.py").is_file());
    assert!(!lib.join("check_mk").exists());
    assert!(lib.join("check_mk_extra/keep.py").is_file());
    let m = site.installed("legacy");
    assert_eq!(
        m.files_of(PackagePart::Lib),
        ["python3/cmk/nested/thing.py", "check_mk_extra/keep.py"]
    );
    assert_eq!(m.files_of(PackagePart::Doc), ["d.txt"]);
    site.ok(&["disable", "legacy"]);
    assert!(!lib.join("python3").exists());
}

#[test]
fn update_replaces_and_deletes_old_files_and_cleans_directories() {
    let site = TestSite::new();
    enable_pkg(
        &site,
        &Pkg::new("up", "1.0.0")
            .file(PackagePart::Agents, "plugins/keep", b"v1")
            .file(PackagePart::Agents, "old/deep/gone", b"v1"),
    );
    let agents = site.part_dir(PackagePart::Agents);
    fs::create_dir_all(agents.join("old/deep/__pycache__")).unwrap();
    fs::write(agents.join("old/deep/__pycache__/gone.pyc"), b"c").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    site.add(
        &Pkg::new("up", "2.0.0")
            .file(PackagePart::Agents, "plugins/keep", b"v2")
            .file(PackagePart::Doc, "new.txt", b"n")
            .write_to(tmp.path()),
    );
    let o = site.run(&["-v", "enable", "up", "2.0.0"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "INFO: [up 2.0.0]: Updating from 1.0.0\n"
    );
    assert_eq!(fs::read(agents.join("plugins/keep")).unwrap(), b"v2");
    assert!(
        !agents.join("old").exists(),
        "emptied dirs and __pycache__ removed"
    );
    assert!(agents.is_dir(), "the part dir stays");
    assert_eq!(site.installed("up").version.as_str(), "2.0.0");
    // Like Checkmk master, the old version's mark stays: inactive.
    assert_eq!(
        site.state_of("up", "1.0.0").as_deref(),
        Some("Enabled (inactive on this site)")
    );
}

#[test]
fn guard_refuses_to_delete_changed_files_unless_forced() {
    let site = TestSite::new();
    enable_pkg(
        &site,
        &Pkg::new("guarded", "1.0.0")
            .file(PackagePart::Agents, "plugins/g", b"orig")
            .file(PackagePart::Agents, "plugins/h", b"orig"),
    );
    let g = site.part_dir(PackagePart::Agents).join("plugins/g");
    fs::write(&g, b"edited by the operator").unwrap();
    let before = site.snapshot();
    let err = site.fails(&["disable", "guarded"], 1);
    assert_eq!(
        err,
        format!(
            "{} was changed since guarded 1.0.0 was installed; refusing to delete or overwrite it \
             (use --force to proceed and lose the change)\n",
            g.display()
        )
    );
    assert_eq!(site.snapshot(), before);
    // An update would overwrite it: refused too.
    let tmp = tempfile::tempdir().unwrap();
    site.add(
        &Pkg::new("guarded", "1.1.0")
            .file(PackagePart::Agents, "plugins/g", b"new")
            .write_to(tmp.path()),
    );
    let err = site.fails(&["enable", "guarded", "1.1.0"], 1);
    assert!(err.contains("was changed since guarded 1.0.0"), "{err}");
    site.ok(&["disable", "--force", "guarded", "1.0.0"]);
    assert!(!g.exists());
}

#[test]
fn dry_run_changes_nothing() {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = Pkg::new("dry", "1.0.0").file(PackagePart::Agents, "plugins/d", b"d");
    site.add(&pkg.write_to(tmp.path()));
    let before = site.snapshot();
    let out = site.ok(&["enable", "--dry-run", "dry"]);
    let root = site.root().display();
    assert_eq!(
        out,
        format!(
            "Dry run, nothing was changed. Would enable dry 1.0.0:\n  install {root}/local/share/check_mk/agents/plugins/d\n  write manifest {root}/var/check_mk/packages/dry\n  mark enabled {root}/local/share/check_mk/enabled_packages/dry-1.0.0.mkp\n"
        )
    );
    assert_eq!(site.snapshot(), before);
    site.ok(&["enable", "dry"]);
    let before = site.snapshot();
    let out = site.ok(&["disable", "--dry-run", "dry"]);
    assert!(
        out.contains(&format!(
            "  delete {root}/local/share/check_mk/agents/plugins/d\n"
        )),
        "{out}"
    );
    assert_eq!(site.snapshot(), before);
    let out = site.ok(&["update-active", "--dry-run"]);
    assert!(out.ends_with("[dry 1.0.0]: enabled\n"), "{out}");
    assert_eq!(site.snapshot(), before);
    site.ok(&["disable", "dry"]);
    let before = site.snapshot();
    let out = site.ok(&["remove", "--dry-run", "dry"]);
    assert!(out.contains("delete stored package"), "{out}");
    assert_eq!(site.snapshot(), before);
}

#[test]
fn package_builds_stores_and_installs() {
    let site = TestSite::new();
    site.write(
        "local/lib/python3/cmk/base/plugins/agent_based/mine.py",
        b"print(1)\n",
    );
    let manifest_text = site.ok(&["template", "--stdout", "mine"]);
    let mut m = Manifest::from_info(&manifest_text).unwrap();
    assert_eq!(m.files_of(PackagePart::AgentBased), ["mine.py"]);
    m.version = mkp_format::PackageVersion::new("1.0.0").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mf = tmp.path().join("manifest");
    fs::write(&mf, m.to_info()).unwrap();
    site.ok(&["package", mf.to_str().unwrap()]);
    let stored = site.path("var/check_mk/packages_local/mine-1.0.0.mkp");
    let mkp = Mkp::open_with(&stored, &Limits::default()).unwrap();
    let members: Vec<&str> = mkp.member_names().collect();
    assert_eq!(members, ["info", "info.json", "agent_based.tar"]);
    assert_eq!(
        site.state_of("mine", "1.0.0").as_deref(),
        Some("Enabled (active on this site)")
    );
    let file = site.part_dir(PackagePart::AgentBased).join("mine.py");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(fs::read(&file).unwrap(), b"print(1)\n");
    // Same version again: refused, bump the version.
    let err = site.fails(&["package", mf.to_str().unwrap()], 1);
    assert!(
        err.contains("Package mine 1.0.0 exists on the site!"),
        "{err}"
    );
    // Not semver.
    m.version = mkp_format::PackageVersion::new("1.0").unwrap();
    fs::write(&mf, m.to_info()).unwrap();
    let err = site.fails(&["package", mf.to_str().unwrap()], 1);
    assert!(
        err.contains("Not a valid semantic versioning string: '1.0'"),
        "{err}"
    );
}

#[test]
fn package_checks_conflicts_before_deleting_anything() {
    let site = TestSite::new();
    enable_pkg(
        &site,
        &Pkg::new("other", "1.0.0").file(PackagePart::Agents, "plugins/theirs", b"theirs"),
    );
    site.write("local/share/check_mk/agents/plugins/mine", b"mine");
    let m = Pkg::new("thief", "1.0.0")
        .file(PackagePart::Agents, "plugins/mine", b"")
        .file(PackagePart::Agents, "plugins/theirs", b"")
        .manifest();
    let tmp = tempfile::tempdir().unwrap();
    let mf = tmp.path().join("manifest");
    fs::write(&mf, m.to_info()).unwrap();
    let before = site.snapshot();
    let err = site.fails(&["package", mf.to_str().unwrap()], 1);
    assert!(
        err.contains("plugins/theirs (already part of other 1.0.0)"),
        "{err}"
    );
    assert_eq!(site.snapshot(), before, "nothing deleted, nothing stored");
}

#[test]
fn package_accepts_an_installed_manifest_and_updates() {
    let site = TestSite::new();
    enable_pkg(
        &site,
        &Pkg::new("grow", "1.0.0").file(PackagePart::Agents, "plugins/one", b"1"),
    );
    site.write("local/share/check_mk/agents/plugins/two", b"2");
    let mut m = site.installed("grow");
    m.version = mkp_format::PackageVersion::new("1.1.0").unwrap();
    m.files = vec![(
        PackagePart::Agents,
        vec!["plugins/one".into(), "plugins/two".into()],
    )];
    let tmp = tempfile::tempdir().unwrap();
    let mf = tmp.path().join("manifest");
    fs::write(&mf, m.to_info()).unwrap();
    site.ok(&["package", mf.to_str().unwrap()]);
    let now = site.installed("grow");
    assert_eq!(now.version.as_str(), "1.1.0");
    assert_eq!(
        now.files_of(PackagePart::Agents),
        ["plugins/one", "plugins/two"]
    );
    assert_eq!(
        mode(&site.part_dir(PackagePart::Agents).join("plugins/two")),
        0o700
    );
}

#[test]
fn find_scan_rules() {
    let site = TestSite::new();
    let ab = PackagePart::AgentBased.site_path();
    let ec = PackagePart::EcRulePacks.site_path();
    site.write(&format!("{ab}/regular_file_of_agent_based.py"), b"x");
    site.write(&format!("{ab}/subdir/regular_file_of_agent_based.py"), b"x");
    site.write(&format!("{ab}/.hidden"), b"x");
    site.write(&format!("{ab}/backup~"), b"x");
    site.write(&format!("{ab}/compiled.pyc"), b"x");
    site.write("local/rogue_file", b"x");
    site.write(&format!("{ec}/.hidden_pack"), b"x");
    fs::create_dir_all(site.path(&format!("{ec}/subdir"))).unwrap();
    site.write("local/lib/python3/cmk/plugins/foo/agent_based/p.py", b"x");
    let json = site.ok(&["find", "--json"]);
    assert!(
        json.contains("\"file\": \"regular_file_of_agent_based.py\""),
        "{json}"
    );
    assert!(
        json.contains("\"file\": \"subdir/regular_file_of_agent_based.py\""),
        "{json}"
    );
    assert!(
        !json.contains("backup~") && !json.contains("compiled.pyc"),
        "{json}"
    );
    assert!(!json.contains("\"file\": \".hidden\""), "{json}");
    let rogue = site.path("local/rogue_file");
    assert!(
        json.contains(&format!("\"file\": \"{}\"", rogue.display())),
        "{json}"
    );
    assert!(json.contains("\"file\": \".hidden_pack\""), "{json}");
    assert!(json.contains("\"file\": \"subdir\""), "{json}");
    // The most specific part directory wins.
    assert!(
        json.contains("\"file\": \"foo/agent_based/p.py\""),
        "{json}"
    );
    assert!(json.contains("\"part_id\": \"cmk_plugins\""), "{json}");
}

#[test]
fn find_attributes_packaged_files() {
    let site = TestSite::new();
    enable_pkg(
        &site,
        &Pkg::new("owned", "1.0.0").file(PackagePart::Agents, "plugins/o", b"o"),
    );
    site.write("local/share/check_mk/agents/plugins/free", b"f");
    let unpackaged = site.ok(&["find"]);
    assert!(
        unpackaged.contains("plugins/free") && !unpackaged.contains("plugins/o "),
        "{unpackaged}"
    );
    let all = site.ok(&["find", "--all"]);
    let line = all.lines().find(|l| l.starts_with("plugins/o ")).unwrap();
    assert!(
        line.contains("owned") && line.contains("-rwx------"),
        "{all}"
    );
}

#[test]
fn site_version_from_the_version_link() {
    let site = TestSite::new();
    std::os::unix::fs::symlink("../../versions/2.3.0p12.cre", site.path("version")).unwrap();
    let o = site
        .cmd()
        .env_remove("MKP_SITE_VERSION")
        .args(["template", "--stdout", "v"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let m = Manifest::from_info(&String::from_utf8(o.stdout).unwrap()).unwrap();
    assert_eq!(m.version_min_required, "2.3.0p12");
    // No link, no override: a clear error.
    let other = TestSite::new();
    let o = other
        .cmd()
        .env_remove("MKP_SITE_VERSION")
        .args(["template", "v"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--site-version"));
}

#[test]
fn broken_stored_package_is_skipped_in_list() {
    let site = TestSite::new();
    site.write(
        "var/check_mk/packages_local/broken-1.0.mkp",
        b"not a package",
    );
    let o = site.run(&["list"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("Failed to read package manifest"));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
}

#[test]
fn unsafe_paths_are_refused_before_anything_changes() {
    let site = TestSite::new();
    let info = "{'author': 'x', 'description': 'x', 'download_url': '', \
                'files': {'agents': ['../../../../../etc/evil']}, 'name': 'evil', \
                'title': 'x', 'version': '1.0.0', 'version.min_required': '2.3.0', \
                'version.packaged': 'x', 'version.usable_until': None}\n";
    let bytes = raw_mkp(&[
        ("info", info.as_bytes().to_vec()),
        ("agents.tar", part_tar("plugins/x", b"x")),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("evil.mkp");
    fs::write(&p, bytes).unwrap();
    assert_eq!(site.add(&p), "evil 1.0.0\n");
    let before = site.snapshot();
    let err = site.fails(&["enable", "evil"], 1);
    assert!(err.contains("unsafe path"), "{err}");
    assert_eq!(site.snapshot(), before);
}

#[test]
fn a_package_missing_its_part_tar_is_a_clean_error() {
    let site = TestSite::new();
    let manifest = Pkg::new("hollow", "1.0.0")
        .file(PackagePart::Agents, "plugins/h", b"h")
        .manifest();
    let bytes = raw_mkp(&[("info", manifest.to_info().into_bytes())]);
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("hollow-1.0.0.mkp");
    fs::write(&p, bytes).unwrap();
    site.add(&p);
    let before = site.snapshot();
    let err = site.fails(&["enable", "hollow"], 1);
    assert!(err.contains("hollow-1.0.0.mkp"), "{err}");
    assert!(err.contains("agents.tar"), "{err}");
    assert_eq!(site.snapshot(), before);
}

#[test]
fn package_and_disable_outdated_dry_runs_change_nothing() {
    let site = TestSite::with_version("2.5.0");
    site.write("local/share/check_mk/agents/plugins/p.sh", b"p");
    let m = Pkg::new("dryp", "1.0.0")
        .file(PackagePart::Agents, "plugins/p.sh", b"")
        .manifest();
    let tmp = tempfile::tempdir().unwrap();
    let mf = tmp.path().join("manifest");
    fs::write(&mf, m.to_info()).unwrap();
    let before = site.snapshot();
    let out = site.ok(&["package", "--dry-run", mf.to_str().unwrap()]);
    assert!(
        out.starts_with("Dry run, nothing was changed. Would package dryp 1.0.0:\n"),
        "{out}"
    );
    assert!(out.contains("  replace "), "{out}");
    assert!(out.contains("  store "), "{out}");
    assert_eq!(site.snapshot(), before);

    site.ok(&["package", mf.to_str().unwrap()]);
    site.add(
        &Pkg::new("old", "1.0.0")
            .until("2.5.0")
            .min("2.0.0")
            .write_to(tmp.path()),
    );
    site.ok(&["enable", "--force-install", "old"]);
    let before = site.snapshot();
    let out = site.ok(&["disable-outdated", "--dry-run"]);
    assert!(out.contains("Would disable old 1.0.0:"), "{out}");
    assert!(!out.contains("dryp"), "{out}");
    assert_eq!(site.snapshot(), before);
    site.ok(&["disable-outdated"]);
    assert_eq!(site.state_of("old", "1.0.0").as_deref(), Some("Disabled"));
    assert_eq!(
        site.state_of("dryp", "1.0.0").as_deref(),
        Some("Enabled (active on this site)")
    );
}
