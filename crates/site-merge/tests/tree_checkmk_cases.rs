//! Issue 17: site trees where Checkmk's own update code behaves in ways the
//! older planner did not reproduce — merges with Checkmk's patch method
//! (category 4), binary and non-UTF-8 files changed on both sides
//! (category 5), the permission of a path that was a symlink in the old
//! version and the 2.3/2.4 `etc/mk-livestatus/nagios.cfg` special case
//! (category 6).

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use common::*;
use site_merge::{ApplyOptions, MergeMethod, Outcome, Plan, Policy, Skeleton, TextMerger, Update};

fn run_with(fx: &Fx, merger: &dyn TextMerger, policy: Policy) -> Plan {
    let up = fx.update();
    let plan = up.plan(merger, &mut { policy }).unwrap();
    up.apply(&plan, &ApplyOptions::new().sync(false)).unwrap();
    plan
}

fn write_bytes(root: &std::path::Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// Category 4: the default merge method is Checkmk's; it merges where the
/// git-exact one reports a conflict, and gives GNU patch's bytes.
#[test]
fn merges_follow_checkmks_patch_method_by_default() {
    // (method, status, content afterwards) under --conflict=keepold
    let cases: [(MergeMethod, &str, &str); 2] = [
        (
            MergeMethod::default(),
            " * Merged         etc/a",
            "changed\nmine\n",
        ),
        (MergeMethod::Git, "Restored your version.", "only\nmine\n"),
    ];
    for (method, line, content) in cases {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/a", "only\n");
        file(&fx.new_skel(), "etc/a", "changed\n");
        file(&fx.site(), "etc/a", "only\nmine\n");
        let plan = run_with(&fx, &method, Policy::KeepOld);
        let e = plan.entry("etc/a").unwrap();
        assert_eq!(e.status.as_deref(), Some(line), "{method:?}");
        assert_eq!(fx.read("etc/a"), content, "{method:?}");
    }
}

/// Category 5: binary or non-UTF-8 files changed on both sides.
#[test]
fn binary_and_non_utf8_files_changed_on_both_sides() {
    // (old, new, site, policy, status, content afterwards)
    type Case = (
        &'static [u8],
        &'static [u8],
        &'static [u8],
        Policy,
        &'static str,
        &'static [u8],
    );
    let cases: [Case; 4] = [
        // diff says "Binary files … differ", patch fails: the policy decides.
        (
            b"a\0old",
            b"a\0new",
            b"a\0mine",
            Policy::KeepOld,
            "Restored your version.",
            b"a\0mine",
        ),
        (
            b"a\0old",
            b"a\0new",
            b"a\0mine",
            Policy::Install,
            "Installed default file of version 2.0.0.",
            b"a\0new",
        ),
        // Checkmk reads diff's output as UTF-8 and raises: Cannot merge, then the policy.
        (
            b"x\n\xffold\n",
            b"x\n\xffnew\n",
            b"mine\n",
            Policy::KeepOld,
            " ! Cannot merge: 'utf-8' codec can't decode byte 0xff in position 4: invalid start byte\nRestored your version.",
            b"mine\n",
        ),
        (
            b"x\n\xffold\n",
            b"x\n\xffnew\n",
            b"mine\n",
            Policy::Install,
            " ! Cannot merge: 'utf-8' codec can't decode byte 0xff in position 4: invalid start byte\nInstalled default file of version 2.0.0.",
            b"x\n\xffnew\n",
        ),
    ];
    for (i, (old, new, site, policy, line, after)) in cases.into_iter().enumerate() {
        let fx = Fx::new();
        write_bytes(&fx.old_skel(), "etc/b", old);
        write_bytes(&fx.new_skel(), "etc/b", new);
        write_bytes(&fx.site(), "etc/b", site);
        let plan = run_with(&fx, &MergeMethod::Patch, policy);
        let e = plan.entry("etc/b").unwrap();
        assert_eq!(e.row, 14, "case {i}");
        assert_eq!(e.status.as_deref(), Some(line), "case {i}");
        assert_eq!(
            fs::read(fx.site().join("etc/b")).unwrap(),
            after,
            "case {i}"
        );
    }
}

/// Category 6: a path that was a (dangling) symlink in the old version has
/// the unlisted default permission there (0640), not 0; an operator who
/// kept that mode gets the new default without a question.
#[test]
fn permission_of_a_path_that_was_a_symlink_in_the_old_version() {
    let fx = Fx::new();
    link(&fx.old_skel(), "etc/x", "nowhere");
    file(&fx.new_skel(), "etc/x", "new\n");
    permissions(&fx.new_skel(), "etc/x 600\n");
    file(&fx.site(), "etc/x", "new\n");
    chmod(&fx.site(), "etc/x", 0o640);
    let plan = run_with(&fx, &MergeMethod::Patch, Policy::KeepOld);
    let p = plan.entry("etc/x").unwrap().permission.clone().unwrap();
    assert!(p.conflict.is_none());
    assert_eq!(
        p.status.as_deref(),
        Some(" * Permissions    0640 -> 0600 etc/x")
    );
    assert_eq!(fx.mode("etc/x"), 0o600);
}

/// Category 6, 2.3/2.4 only (fix for #15721): with a non-raw old edition,
/// `etc/mk-livestatus/nagios.cfg` in the site is read for `edition=raw`;
/// Checkmk raises when the operator removed it, and compares with the raw
/// instantiation of the old skeleton when the file says `edition=raw`.
#[test]
fn livestatus_nagios_cfg_special_case_of_2_3_and_2_4() {
    const REL: &str = "etc/mk-livestatus/nagios.cfg";
    // (site file, status)
    let cases: [(Option<&str>, Option<&str>); 3] = [
        (
            None,
            Some(
                " ! Exception      etc/mk-livestatus/nagios.cfg\n   etc/mk-livestatus/nagios.cfg: cannot read it to check for edition=raw (No such file or directory (os error 2)).",
            ),
        ),
        // Unchanged since a raw-edition instantiation: an update, not a merge.
        (
            Some("edition=raw\n"),
            Some(" * Updated        etc/mk-livestatus/nagios.cfg"),
        ),
        // Otherwise the enterprise instantiation is the base: the operator's own file.
        (
            Some("edition=enterprise\n"),
            Some(" * Updated        etc/mk-livestatus/nagios.cfg"),
        ),
    ];
    for (site_content, line) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let versions = tmp.path().join("versions");
        let old = versions.join("2.4.0p1.cee/skel");
        let new = versions.join("2.4.0p2.cee/skel");
        file(&old, REL, "edition=###EDITION###\n");
        file(&new, REL, "edition=###EDITION###\nnew=1\n");
        let site = tmp.path().join("sites/s");
        fs::create_dir_all(site.join("etc/mk-livestatus")).unwrap();
        if let Some(c) = site_content {
            file(&site, REL, c);
            chmod(&site, REL, 0o640);
        }
        let from = Skeleton::of_version(&versions, "2.4.0p1.cee").edition("enterprise");
        let to = Skeleton::of_version(&versions, "2.4.0p2.cee").edition("enterprise");
        let up = Update::builder(&site, "s", from, to)
            .root("/omd/sites/s")
            .build()
            .unwrap();
        let plan = up.plan(&MergeMethod::Patch, &mut Policy::KeepOld).unwrap();
        let e = plan.entry(REL).unwrap();
        assert_eq!(e.status.as_deref(), line, "{site_content:?}");
        if site_content.is_none() {
            assert_eq!(e.outcome, Outcome::Exception);
        }
    }
}

/// The #15721 special case belongs to the target version's code (`omd update`
/// runs the new version's `omd`): an update from 2.2 to 2.3 gets it, an update
/// from 2.4 to 2.5 does not.
#[test]
fn the_livestatus_special_case_follows_the_target_version() {
    const REL: &str = "etc/mk-livestatus/nagios.cfg";
    // (from, to, the site file's status and content afterwards under keepold)
    let cases = [
        (
            "2.2.0p20.cee",
            "2.3.0p1.cee",
            Some(" * Updated        etc/mk-livestatus/nagios.cfg"),
            "edition=enterprise\nnew=1\n",
        ),
        // Without it the site's file is the operator's own: a conflict.
        (
            "2.4.0p9.cee",
            "2.5.0p1.cee",
            Some("Restored your version."),
            "edition=raw\n",
        ),
    ];
    for (from_version, to_version, line, after) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let versions = tmp.path().join("versions");
        file(
            &versions.join(from_version).join("skel"),
            REL,
            "edition=###EDITION###\n",
        );
        file(
            &versions.join(to_version).join("skel"),
            REL,
            "edition=###EDITION###\nnew=1\n",
        );
        // A 2.2 site that was raw once: its file still says so.
        let site = tmp.path().join("sites/s");
        file(&site, REL, "edition=raw\n");
        chmod(&site, REL, 0o640);
        let from = Skeleton::of_version(&versions, from_version).edition("enterprise");
        let to = Skeleton::of_version(&versions, to_version).edition("enterprise");
        let up = Update::builder(&site, "s", from, to)
            .root("/omd/sites/s")
            .build()
            .unwrap();
        let plan = up.plan(&MergeMethod::Patch, &mut Policy::KeepOld).unwrap();
        assert_eq!(
            plan.entry(REL).and_then(|e| e.status.as_deref()),
            line,
            "{from_version} -> {to_version}"
        );
        up.apply(&plan, &ApplyOptions::new().sync(false)).unwrap();
        assert_eq!(
            fs::read_to_string(site.join(REL)).unwrap(),
            after,
            "{from_version} -> {to_version}"
        );
    }
}

/// The walk's ignore list is the target version's (spec §1): 2.3 skips only
/// `etc/htpasswd`, 2.4 also `etc/diskspace.conf` and three plug-in
/// directories, 2.5 seven paths more.
#[test]
fn the_ignore_list_is_the_target_versions() {
    assert_eq!(site_merge::ignored_paths("2.2.0p20.cee"), ["etc/htpasswd"]);
    assert_eq!(site_merge::ignored_paths("2.3.0p1.cre"), ["etc/htpasswd"]);
    assert_eq!(site_merge::ignored_paths("1.6.0p4"), ["etc/htpasswd"]);
    let v24 = site_merge::ignored_paths("2.4.0p2.cee");
    assert_eq!(v24.len(), 5);
    assert!(v24.contains(&"etc/diskspace.conf"));
    assert!(!v24.contains(&"local/share/nagios"));
    for v in ["2.5.0p1.community", "2.6.0", "not a version"] {
        assert_eq!(
            site_merge::ignored_paths(v),
            site_merge::DEFAULT_IGNORED,
            "{v}"
        );
    }

    // An upstream change of etc/diskspace.conf reaches a site updated to 2.3,
    // not one updated to 2.4.
    const REL: &str = "etc/diskspace.conf";
    for (from_version, to_version, line, after) in [
        (
            "2.2.0p1.cre",
            "2.3.0p1.cre",
            Some(" * Updated        etc/diskspace.conf"),
            "new\n",
        ),
        ("2.3.0p1.cre", "2.4.0p1.cre", None, "old\n"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let versions = tmp.path().join("versions");
        file(&versions.join(from_version).join("skel"), REL, "old\n");
        file(&versions.join(to_version).join("skel"), REL, "new\n");
        let site = tmp.path().join("sites/s");
        file(&site, REL, "old\n");
        chmod(&site, REL, 0o640);
        let from = Skeleton::of_version(&versions, from_version).edition("raw");
        let to = Skeleton::of_version(&versions, to_version).edition("raw");
        let up = Update::builder(&site, "s", from, to).build().unwrap();
        let plan = up.plan(&MergeMethod::Patch, &mut Policy::KeepOld).unwrap();
        assert_eq!(
            plan.entry(REL).and_then(|e| e.status.as_deref()),
            line,
            "{to_version}"
        );
        up.apply(&plan, &ApplyOptions::new().sync(false)).unwrap();
        assert_eq!(fs::read_to_string(site.join(REL)).unwrap(), after);
    }
}

/// Category 2 (the part done): an operator's link that cannot be followed —
/// dangling, a loop, or out of the site (our one deliberate difference:
/// treated like a dangling link) — is kept and reported as
/// ` ! Exception      X`; the update completes.
#[test]
fn operator_links_that_cannot_be_followed_are_kept_and_reported() {
    let outside = tempfile::tempdir().unwrap();
    let outside_file = outside.path().join("elsewhere.conf");
    fs::write(&outside_file, "old\n").unwrap();
    // (link target, words on the next line). A link leading nowhere inside
    // the site is written through instead (tree_operator_links.rs).
    let cases: [(String, &str); 2] = [
        ("a".into(), "cannot be followed"),
        (
            outside_file.display().to_string(),
            "points outside the site",
        ),
    ];
    for (target, words) in cases {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/a", "old\n");
        file(&fx.new_skel(), "etc/a", "new\n");
        dir(&fx.site(), "etc");
        link(&fx.site(), "etc/a", &target);
        let plan = run_with(&fx, &MergeMethod::Patch, Policy::Install);
        let e = plan.entry("etc/a").unwrap();
        assert_eq!(e.outcome, Outcome::Exception, "{target}");
        let status = e.status.clone().unwrap();
        let (first, second) = status.split_once('\n').unwrap();
        assert_eq!(first, " ! Exception      etc/a");
        assert!(!second.starts_with(" * ") && !second.starts_with(" ! "));
        assert!(second.contains(words), "{second}");
        assert_eq!(
            fs::read_link(fx.site().join("etc/a")).unwrap().to_str(),
            Some(target.as_str())
        );
        assert_eq!(fx.read(".version_meta/version"), "2.0.0\n");
    }
    assert_eq!(fs::read_to_string(&outside_file).unwrap(), "old\n");
}
