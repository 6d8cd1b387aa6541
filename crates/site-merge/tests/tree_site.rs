//! Site creation (`omd create`) and removal (`omd rm`) from a version
//! directory, and updates that use the site's `.version_meta` copy.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use common::*;
use site_merge::{
    ApplyOptions, Error, Policy, SiteCreation, Skeleton, Update, remove_site, site_version,
    version_link_target,
};

fn version_tree(fx: &tempfile::TempDir, version: &str, edition_line: &str) -> std::path::PathBuf {
    let skel = fx.path().join("versions").join(version).join("skel");
    file(
        &skel,
        "etc/omd/site.conf",
        &format!("SITE=###SITE###\nROOT=###ROOT###\n{edition_line}\n"),
    );
    file(&skel, "etc/init.d/core", "#!/bin/sh\n");
    chmod(&skel, "etc/init.d/core", 0o755);
    dir(&skel, "etc/ssl/private");
    link(&skel, "etc/rc.d/80-core", "../init.d/core");
    file(&skel, "tmp/run/placeholder", "x\n");
    permissions(&skel, "etc/ssl/private 700\netc/omd/site.conf 640\n");
    skel
}

#[test]
fn create_site_from_a_version_directory() {
    let tmp = tempfile::tempdir().unwrap();
    version_tree(&tmp, "2.4.0p1.cre", "EDITION=###EDITION###");
    let versions = tmp.path().join("versions");
    let home = tmp.path().join("sites/mysite");
    let created = SiteCreation::new(
        &home,
        "mysite",
        Skeleton::of_version(&versions, "2.4.0p1.cre").edition("raw"),
    )
    .root("/omd/sites/mysite")
    .create()
    .unwrap();
    assert_eq!(
        fs::read_to_string(home.join("etc/omd/site.conf")).unwrap(),
        "SITE=mysite\nROOT=/omd/sites/mysite\nEDITION=raw\n"
    );
    assert_eq!(
        mode(&home.join("etc/omd/site.conf")),
        0o640,
        "from skel.permissions"
    );
    assert_eq!(
        mode(&home.join("etc/init.d/core")),
        0o640,
        "not in skel.permissions: 0640, whatever the skeleton file's mode"
    );
    assert_eq!(mode(&home.join("etc/ssl/private")), 0o700);
    assert_eq!(
        fs::read_link(home.join("etc/rc.d/80-core"))
            .unwrap()
            .to_str(),
        Some("../init.d/core")
    );
    assert!(home.join("tmp").is_dir());
    assert!(
        !home.join("tmp/run").exists(),
        "tmp contents are not managed"
    );
    assert_eq!(
        fs::read_link(home.join("version")).unwrap(),
        version_link_target("2.4.0p1.cre")
    );
    assert_eq!(site_version(&home).unwrap().as_deref(), Some("2.4.0p1.cre"));
    assert_eq!(
        fs::read_to_string(home.join(".version_meta/version")).unwrap(),
        "2.4.0p1.cre\n"
    );
    assert_eq!(
        fs::read_to_string(home.join(".version_meta/skel/etc/omd/site.conf")).unwrap(),
        "SITE=###SITE###\nROOT=###ROOT###\nEDITION=###EDITION###\n",
        "the meta copy keeps the macros"
    );
    assert!(home.join(".version_meta/skel.permissions").is_file());
    assert_eq!(
        created.paths, 10,
        "etc, tmp, 4 directories, 3 files/links and etc/ssl/private"
    );
    let siblings: Vec<_> = fs::read_dir(tmp.path().join("sites"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(siblings, ["mysite"], "no staging directory left");
}

#[test]
fn create_refuses_an_existing_site_but_takes_an_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    version_tree(&tmp, "1", "");
    let versions = tmp.path().join("versions");
    let home = tmp.path().join("site");
    fs::create_dir(&home).unwrap();
    SiteCreation::new(&home, "site", Skeleton::of_version(&versions, "1"))
        .create()
        .unwrap();
    let err = SiteCreation::new(&home, "site", Skeleton::of_version(&versions, "1"))
        .create()
        .unwrap_err();
    assert!(matches!(err, Error::SiteExists { .. }), "{err}");
    assert!(err.to_string().starts_with("the site directory "), "{err}");
}

#[test]
fn remove_site_removes_only_sites() {
    let tmp = tempfile::tempdir().unwrap();
    version_tree(&tmp, "1", "");
    let versions = tmp.path().join("versions");
    let home = tmp.path().join("sites/a");
    SiteCreation::new(&home, "a", Skeleton::of_version(&versions, "1"))
        .create()
        .unwrap();
    let other = tmp.path().join("sites/not-a-site");
    file(&other, "important", "data\n");
    let err = remove_site(&other).unwrap_err();
    assert!(matches!(err, Error::NotASite { .. }), "{err}");
    assert!(other.join("important").exists());
    remove_site(&home).unwrap();
    let left: Vec<_> = fs::read_dir(tmp.path().join("sites"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["not-a-site"]);
}

#[test]
fn update_uses_the_sites_version_meta_when_the_old_version_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    version_tree(&tmp, "1.cre", "EDITION=###EDITION###");
    let new_skel = version_tree(&tmp, "2.cee", "EDITION=###EDITION###\nNEW=1");
    let versions = tmp.path().join("versions");
    let home = tmp.path().join("sites/s");
    SiteCreation::new(
        &home,
        "s",
        Skeleton::of_version(&versions, "1.cre").edition("raw"),
    )
    .create()
    .unwrap();
    fs::remove_dir_all(versions.join("1.cre")).unwrap();

    let from = Skeleton::for_site(&home, &versions, "1.cre").edition("raw");
    assert_eq!(from.skel_dir(), home.join(".version_meta/skel"));
    let to = Skeleton::of_version(&versions, "2.cee").edition("enterprise");
    let up = Update::builder(&home, "s", from, to).build().unwrap();
    let plan = up.plan(&LineMerger, &mut Policy::Abort).unwrap();
    assert_eq!(plan.lines(), [" * Updated        etc/omd/site.conf"]);
    up.apply(&plan, &ApplyOptions::new()).unwrap();
    let root = home.to_string_lossy();
    assert_eq!(
        fs::read_to_string(home.join("etc/omd/site.conf")).unwrap(),
        format!("SITE=s\nROOT={root}\nEDITION=enterprise\nNEW=1\n")
    );
    assert_eq!(site_version(&home).unwrap().as_deref(), Some("2.cee"));
    assert_eq!(
        fs::read_to_string(home.join(".version_meta/version")).unwrap(),
        "2.cee\n"
    );
    assert_eq!(
        fs::read(home.join(".version_meta/skel/etc/omd/site.conf")).unwrap(),
        fs::read(new_skel.join("etc/omd/site.conf")).unwrap()
    );
}

#[test]
fn edition_change_alone_updates_files_using_the_edition_macro() {
    let tmp = tempfile::tempdir().unwrap();
    version_tree(&tmp, "2.4.0.cre", "EDITION=###EDITION###");
    version_tree(&tmp, "2.4.0.cee", "EDITION=###EDITION###");
    let versions = tmp.path().join("versions");
    let home = tmp.path().join("sites/s");
    SiteCreation::new(
        &home,
        "s",
        Skeleton::of_version(&versions, "2.4.0.cre").edition("raw"),
    )
    .create()
    .unwrap();
    let up = Update::builder(
        &home,
        "s",
        Skeleton::of_version(&versions, "2.4.0.cre").edition("raw"),
        Skeleton::of_version(&versions, "2.4.0.cee").edition("enterprise"),
    )
    .build()
    .unwrap();
    let plan = up.plan(&LineMerger, &mut Policy::Abort).unwrap();
    assert_eq!(plan.lines(), [" * Updated        etc/omd/site.conf"]);
}

#[test]
fn same_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let v = tmp.path().join("versions");
    let err = Update::builder(
        tmp.path(),
        "s",
        Skeleton::of_version(&v, "1"),
        Skeleton::of_version(&v, "1"),
    )
    .build()
    .unwrap_err();
    assert_eq!(err.to_string(), "Site already has version 1.");
}

#[test]
fn plan_of_another_update_is_refused() {
    let fx = Fx::new();
    file(&fx.new_skel(), "etc/a", "a\n");
    let plan = fx.plan(&mut Policy::Abort);
    let other = Update::builder(
        fx.site(),
        "other",
        Skeleton::of_version(&fx.versions(), OLD),
        Skeleton::of_version(&fx.versions(), NEW),
    )
    .build()
    .unwrap();
    let err = other.apply(&plan, &ApplyOptions::new()).unwrap_err();
    assert!(matches!(err, Error::PlanMismatch { .. }), "{err}");
    assert!(!fx.exists("etc/a"));
}

/// Issue 17 category 7: `omd create` gives, path for path, what Checkmk's
/// create steps give: site directory 0751; links `bin`, `include`, `lib`,
/// `share` → `version/<name>`; `version` → `../../versions/<v>`; every
/// skeleton path except the contents of `tmp/` (so `tmpfoo/` is copied),
/// macros substituted, modes from skel.permissions, else 0750 (directories)
/// and 0640 (files), links verbatim.
#[test]
fn create_gives_checkmks_tree_path_for_path() {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    let tmp = tempfile::tempdir().unwrap();
    let skel = tmp.path().join("versions/2.4.0p1.cre/skel");
    file(&skel, "etc/a.conf", "site=###SITE###\n");
    chmod(&skel, "etc/a.conf", 0o755);
    file(&skel, "etc/listed", "l\n");
    dir(&skel, "etc/d");
    chmod(&skel, "etc/d", 0o777);
    link(&skel, "etc/l", "../x/###SITE###");
    file(&skel, "tmp/run/x", "t\n");
    file(&skel, "tmpfoo/x", "y\n");
    permissions(&skel, "etc/listed 600\n");
    let home = tmp.path().join("sites/s");
    SiteCreation::new(
        &home,
        "s",
        Skeleton::of_version(&tmp.path().join("versions"), "2.4.0p1.cre"),
    )
    .root("/omd/sites/s")
    .create()
    .unwrap();

    let file_node = |mode: u32, content: &str| Node::File {
        mode,
        content: content.as_bytes().to_vec(),
    };
    let link_node = |target: &str| Node::Link {
        target: PathBuf::from(target),
    };
    let mut expected = std::collections::BTreeMap::new();
    for name in ["bin", "include", "lib", "share"] {
        expected.insert(name.to_owned(), link_node(&format!("version/{name}")));
    }
    expected.insert("version".into(), link_node("../../versions/2.4.0p1.cre"));
    expected.insert("etc".into(), Node::Dir { mode: 0o750 });
    expected.insert("etc/a.conf".into(), file_node(0o640, "site=s\n"));
    expected.insert("etc/d".into(), Node::Dir { mode: 0o750 });
    expected.insert("etc/l".into(), link_node("../x/###SITE###"));
    expected.insert("etc/listed".into(), file_node(0o600, "l\n"));
    expected.insert("tmp".into(), Node::Dir { mode: 0o750 });
    expected.insert("tmpfoo".into(), Node::Dir { mode: 0o750 });
    expected.insert("tmpfoo/x".into(), file_node(0o640, "y\n"));

    let mut got = snapshot(&home);
    got.retain(|path, _| !path.starts_with(".version_meta"));
    assert_eq!(got, expected);
    assert_eq!(
        fs::metadata(&home).unwrap().permissions().mode() & 0o7777,
        0o751
    );
}
