//! Scenarios with the packages Checkmk's own tool wrote (corpus/mkp-peer).

use std::fs;
use std::path::Path;

use mkp_format::{Manifest, PackagePart};

use crate::common::{Pkg, TestSite};

fn add(site: &TestSite, corpus: &Path, file: &str) -> String {
    site.add(&corpus.join(file))
}

#[test]
fn add_enable_update_matches_the_peer_installed_manifest() {
    let corpus = testkit::require_shared!("corpus/mkp-peer");
    let site = TestSite::new();
    assert_eq!(
        add(&site, &corpus, "hello_site-1.0.0.site-package.mkp"),
        "hello_site 1.0.0\n"
    );
    assert_eq!(
        add(&site, &corpus, "hello_site-1.1.0.mkp"),
        "hello_site 1.1.0\n"
    );
    // Stored under the canonical name, whatever the upload was called.
    assert!(
        site.path("var/check_mk/packages_local/hello_site-1.0.0.mkp")
            .is_file()
    );
    site.ok(&["enable", "hello_site", "1.0.0"]);
    let addons = site.part_dir(PackagePart::CmkAddonsPlugins);
    assert!(addons.join("hello/libexec/agent_hello").is_file());
    site.ok(&["enable", "hello_site", "1.1.0"]);
    assert!(
        !addons.join("hello/libexec").exists(),
        "dropped file and its dir are gone"
    );
    assert!(addons.join("hello/rulesets/hello.py").is_file());
    let mut m = site.installed("hello_site");
    m.remove_extra(mkp_format::HASHES_KEY);
    let peer = Manifest::from_info(
        &fs::read_to_string(corpus.join("installed-manifest.hello_site.txt")).unwrap(),
    )
    .unwrap();
    assert_eq!(m, peer);
    // Without our hash key the file is byte-identical to what Checkmk's tool writes.
    assert_eq!(
        m.to_info(),
        fs::read_to_string(corpus.join("installed-manifest.hello_site.txt")).unwrap()
    );
    assert_eq!(
        site.state_of("hello_site", "1.1.0").as_deref(),
        Some("Enabled (active on this site)")
    );
    assert_eq!(
        site.state_of("hello_site", "1.0.0").as_deref(),
        Some("Enabled (inactive on this site)")
    );
}

#[test]
fn conflicts_with_another_package_and_an_unpackaged_file() {
    let corpus = testkit::require_shared!("corpus/mkp-peer");
    let site = TestSite::new();
    for f in [
        "hello_site-1.0.0.site-package.mkp",
        "conflict_pkg-1.0.0.mkp",
        "unpackaged_clash-1.0.0.mkp",
    ] {
        add(&site, &corpus, f);
    }
    site.ok(&["enable", "hello_site"]);
    let err = site.fails(&["enable", "conflict_pkg"], 1);
    let agents = site.part_dir(PackagePart::Agents);
    assert_eq!(
        err,
        format!(
            "File conflict: {} (already part of hello_site 1.0.0)\n",
            agents.join("plugins/hello.sh").display()
        )
    );
    site.write("local/share/doc/check_mk/hello.txt", b"unpackaged");
    let err = site.fails(&["enable", "unpackaged_clash"], 1);
    assert_eq!(
        err,
        format!(
            "File conflict: {} (already existing)\n",
            site.part_dir(PackagePart::Doc).join("hello.txt").display()
        )
    );
    // Unlike Checkmk, a conflict leaves no enabled mark.
    assert_eq!(
        site.state_of("conflict_pkg", "1.0.0").as_deref(),
        Some("Disabled")
    );
    assert_eq!(
        site.state_of("unpackaged_clash", "1.0.0").as_deref(),
        Some("Disabled")
    );
    assert_eq!(
        fs::read(site.path("local/share/doc/check_mk/hello.txt")).unwrap(),
        b"unpackaged"
    );
}

#[test]
fn version_checks_with_peer_packages() {
    let corpus = testkit::require_shared!("corpus/mkp-peer");
    let site = TestSite::with_version("2.4.0p1");
    add(&site, &corpus, "too_new_req-1.0.0.mkp");
    let err = site.fails(&["enable", "too_new_req"], 1);
    assert!(
        err.starts_with("Package requires a Checkmk version 2.5.0 or higher (this is 2.4.0p1)."),
        "{err}"
    );
    assert_eq!(
        site.state_of("too_new_req", "1.0.0").as_deref(),
        Some("Enabled (inactive on this site)")
    );
    // A branch daily requirement: above every patch release, equal to every daily.
    add(&site, &corpus, "daily_req-1.0.0.mkp");
    site.fails(&["enable", "daily_req"], 1);
    let daily = TestSite::with_version("2.4.0-2024.06.01");
    add(&daily, &corpus, "daily_req-1.0.0.mkp");
    daily.ok(&["enable", "daily_req"]);
    assert_eq!(daily.installed("daily_req").file_count(), 0);
}

#[test]
fn unicode_title_package() {
    let corpus = testkit::require_shared!("corpus/mkp-peer");
    let site = TestSite::new();
    assert_eq!(
        add(&site, &corpus, "unicode_title-1.0.0-rc.1+build.5.mkp"),
        "unicode_title 1.0.0-rc.1+build.5\n"
    );
    site.ok(&["enable", "unicode_title"]);
    assert!(site.ok(&["list"]).contains("Ünïcödé – title ✓"));
    let json = site.ok(&["list", "--json"]);
    assert!(json.contains("\"title\":\"Ünïcödé – title ✓\""), "{json}");
}

#[test]
fn outdated_packages_and_disable_outdated() {
    let corpus = testkit::require_shared!("corpus/mkp-peer");
    let old = TestSite::with_version("2.3.0p5");
    add(&old, &corpus, "outdated_pkg-1.0.0.mkp");
    add(&old, &corpus, "hello_world-1.0.0.mkp");
    old.ok(&["enable", "outdated_pkg"]);
    old.ok(&["enable", "hello_world"]);
    let check = old.part_dir(PackagePart::Checks).join("other_check");
    assert!(check.is_file());
    // omd update to 2.4.0: outdated_pkg (until 2.4.0) goes, hello_world (until 2.5.0) stays.
    let new = TestSite {
        dir: old.dir,
        version: "2.4.0".into(),
    };
    let o = new.run(&["-v", "disable-outdated"]);
    assert!(o.status.success());
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("INFO: [outdated_pkg 1.0.0]: Disabling: "),
        "{log}"
    );
    assert!(
        log.contains("INFO: [hello_world 1.0.0]: Not disabling"),
        "{log}"
    );
    assert!(!check.exists());
    assert_eq!(
        new.state_of("outdated_pkg", "1.0.0").as_deref(),
        Some("Disabled")
    );
    assert_eq!(
        new.state_of("hello_world", "1.0.0").as_deref(),
        Some("Enabled (active on this site)")
    );
}

#[test]
fn update_active_chooses_the_highest_working_version() {
    let corpus = testkit::require_shared!("corpus/mkp-peer");
    let site = TestSite::with_version("2.4.0p1");
    add(&site, &corpus, "hello_site-1.0.0.site-package.mkp");
    add(&site, &corpus, "hello_site-1.1.0.mkp");
    let tmp = tempfile::tempdir().unwrap();
    let future = Pkg::new("hello_site", "1.2.0").min("2.5.0").file(
        PackagePart::Agents,
        "plugins/hello.sh",
        b"echo 1.2\n",
    );
    site.add(&future.write_to(tmp.path()));
    site.ok(&["enable", "hello_site", "1.0.0"]);
    site.ok(&["enable", "hello_site", "1.1.0"]);
    site.fails(&["enable", "hello_site", "1.2.0"], 1); // marked, not installed
    // outdated_pkg: installed on an older site, outdated on this one.
    add(&site, &corpus, "outdated_pkg-1.0.0.mkp");
    site.ok(&["enable", "--force-install", "outdated_pkg"]);

    let out = site.ok(&["update-active"]);
    assert_eq!(
        out,
        "[hello_site 1.1.0]: enabled\n[outdated_pkg 1.0.0]: disabled\n"
    );
    assert_eq!(site.installed("hello_site").version.as_str(), "1.1.0");
    assert!(!site.path("var/check_mk/packages/outdated_pkg").exists());
    assert_eq!(
        site.state_of("outdated_pkg", "1.0.0").as_deref(),
        Some("Enabled (inactive on this site)"),
        "the mark is kept"
    );

    // After `omd update` to 2.5.0 the highest version fits.
    let later = TestSite {
        dir: site.dir,
        version: "2.5.0".into(),
    };
    let out = later.ok(&["update-active", "--json"]);
    assert!(out.contains("\"version\": \"1.2.0\""), "{out}");
    assert_eq!(later.installed("hello_site").version.as_str(), "1.2.0");
    let agents = later.part_dir(PackagePart::Agents);
    assert_eq!(
        fs::read(agents.join("plugins/hello.sh")).unwrap(),
        b"echo 1.2\n"
    );
    let addons = later.part_dir(PackagePart::CmkAddonsPlugins);
    assert!(
        !addons.join("hello").exists(),
        "1.1.0's other files are gone"
    );
}

#[test]
fn real_world_packages_install_and_uninstall_cleanly() {
    let corpus = testkit::require_shared!("corpus/mkp-real");
    let site = TestSite::new();
    let before = site.snapshot();
    let mut enabled = 0;
    for name in [
        "kuhn-ruess__docker-1.0.mkp",
        "HeinleinSupport__ceph-11.0.0.mkp",
        "Yogibaer75__redfish-2.0.3.mkp",
    ] {
        let file = corpus.join(name);
        if !file.exists() {
            continue;
        }
        let id = site.add(&file);
        let mut words = id.split_whitespace();
        let (n, v) = (words.next().unwrap(), words.next().unwrap());
        let o = site.run(&["enable", "--force-install", n, v]);
        if o.status.success() {
            enabled += 1;
            site.ok(&["disable", n, v]);
        }
        site.ok(&["remove", n, v]);
    }
    assert!(enabled > 0);
    let mut after = site.snapshot();
    // Part directories that did not exist before may stay (Checkmk keeps them too).
    after.retain(|k, v| before.contains_key(k) || !v.starts_with("dir"));
    let mut before = before;
    before.retain(|k, v| !v.starts_with("dir") || after.contains_key(k));
    assert_eq!(
        after
            .keys()
            .filter(|k| !k.starts_with("var") && !k.starts_with("local"))
            .count(),
        0
    );
    let files: Vec<_> = after
        .iter()
        .filter(|(_, v)| v.starts_with("file"))
        .collect();
    assert!(files.is_empty(), "{files:?}");
}

#[test]
fn ceph_with_a_hard_link_in_its_lib_tar_enables_and_writes_both_files() {
    // Its lib.tar holds check_mk/base/cee/plugins/bakery/ceph.py and a hard link
    // python3/cmk/base/cee/plugins/bakery/ceph.py to it; the manifest lists both.
    let corpus = testkit::require_shared!("corpus/mkp-real");
    let site = TestSite::new();
    let id = site.add(&corpus.join("HeinleinSupport__ceph-11.0.0.mkp"));
    assert_eq!(id, "ceph 11.0.0\n");
    site.ok(&["enable", "--force-install", "ceph", "11.0.0"]);
    let lib = site.part_dir(PackagePart::Lib);
    let legacy = lib.join("check_mk/base/cee/plugins/bakery/ceph.py");
    let new = lib.join("python3/cmk/base/cee/plugins/bakery/ceph.py");
    let a = fs::read(&legacy).unwrap();
    assert_eq!(a, fs::read(&new).unwrap());
    assert!(String::from_utf8_lossy(&a).contains("ceph"));
    assert_eq!(
        site.state_of("ceph", "11.0.0").as_deref(),
        Some("Enabled (active on this site)")
    );
    // Both stay owned by the package: find has nothing unpackaged, disable removes both.
    let find = site.ok(&["find", "--json"]);
    let unpackaged: serde_json::Value = serde_json::from_str(&find).unwrap();
    assert_eq!(unpackaged, serde_json::json!([]), "{find}");
    assert_eq!(
        site.installed("ceph").files_of(PackagePart::Lib),
        [
            "check_mk/base/cee/plugins/bakery/ceph.py",
            "python3/cmk/base/cee/plugins/bakery/ceph.py"
        ]
    );
    site.ok(&["disable", "ceph", "11.0.0"]);
    assert!(!legacy.exists() && !new.exists());
}
