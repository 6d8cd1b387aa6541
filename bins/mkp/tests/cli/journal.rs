//! Site mode on a site an `omd update` left half updated: commands that change the site
//! are refused with the command that recovers it, reading commands warn, and a leftover
//! finished journal is reported but left to `omd`.

use std::fs;
use std::path::Path;

use mkp_format::PackagePart;

use crate::common::{Pkg, TestSite, stderr};

const FROM: &str = "1.0.0";
const TO: &str = "2.0.0";

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// Interrupts a real update of `site` from FROM to TO (skeletons in `versions`) after
/// its first operation, through site-merge's executor: the journal stays behind.
fn interrupt_update(site: &TestSite, versions: &Path) {
    for (version, text) in [(FROM, "old\n"), (TO, "new\n")] {
        write(&versions.join(version).join("skel/etc/updated.conf"), text);
    }
    write(&versions.join(TO).join("skel/etc/added.conf"), "added\n");
    write(&site.path("etc/updated.conf"), "old\n");
    let update = site_merge::Update::builder(
        site.root(),
        "site",
        site_merge::Skeleton::of_version(versions, FROM),
        site_merge::Skeleton::of_version(versions, TO),
    )
    .build()
    .unwrap();
    let plan = update
        .plan(
            &site_merge::MergeMethod::Patch,
            &mut site_merge::Policy::Install,
        )
        .unwrap();
    let err = update
        .apply(
            &plan,
            &site_merge::ApplyOptions::new()
                .sync(false)
                .fault(site_merge::Fault::CrashAfter(1)),
        )
        .unwrap_err();
    assert!(
        matches!(err, site_merge::Error::SimulatedCrash { .. }),
        "{err}"
    );
    assert!(site.path(site_merge::JOURNAL_DIR).is_dir());
}

/// The site's name as the messages give it: its home's name.
fn site_name(site: &TestSite) -> String {
    let home = fs::canonicalize(site.root()).unwrap();
    home.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn a_pending_update_journal_refuses_changes_and_warns_readers() {
    let site = TestSite::new();
    let versions = tempfile::tempdir().unwrap();
    let pkg = Pkg::new("cool", "1.0.0").file(PackagePart::Agents, "cool.sh", b"echo\n");
    let file = pkg.write_to(versions.path());
    site.add(&file);
    interrupt_update(&site, versions.path());
    let fix = format!("'omd -V {TO} update {}'", site_name(&site));
    let before = site.snapshot();

    for args in [
        vec!["enable", "cool"],
        vec!["enable", "--dry-run", "cool"],
        vec!["add", file.to_str().unwrap()],
        vec!["update-active"],
    ] {
        let err = site.fails(&args, 1);
        assert!(
            err.contains(&format!("Cannot run `mkp {}`", args[0]))
                && err.contains(&format!("interrupted update from {FROM} to {TO}"))
                && err.contains(&fix),
            "mkp {args:?}: {err}"
        );
        assert_eq!(site.snapshot(), before, "mkp {args:?} changed the site");
    }

    let out = site.run(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cool"),
        "the listing is printed"
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("interrupted update from {FROM} to {TO}")) && err.contains(&fix),
        "{err}"
    );
    assert_eq!(site.snapshot(), before);

    // Once the site is recovered, the same command works.
    site_merge::recover(site.root()).unwrap();
    site.ok(&["enable", "cool"]);
    let out = site.run(&["list"]);
    assert!(!stderr(&out).contains("interrupted"), "{}", stderr(&out));
}

#[test]
fn a_leftover_finished_journal_is_reported_and_left_to_omd() {
    let site = TestSite::new();
    let done = site.path(site_merge::DONE_DIR);
    write(&done.join("saved/0"), "old\n");
    let out = site.run(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{} is left from an earlier update",
            done.display()
        )),
        "{}",
        stderr(&out)
    );
    assert!(done.join("saved/0").is_file(), "mkp leaves it to omd");
    // It does not stop a change: the update it belonged to finished.
    let elsewhere = tempfile::tempdir().unwrap();
    let file = Pkg::new("cool", "1.0.0").write_to(elsewhere.path());
    site.add(&file);
}
