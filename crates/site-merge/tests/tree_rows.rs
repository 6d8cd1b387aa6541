//! One test per decision-table row (spec section 2) and per permission rule
//! (section 5), each on a real temporary tree, asserting the status line and
//! the resulting site.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use site_merge::{Answer, Kind, Outcome, PermissionOutcome, Policy};

fn only_line(plan: &site_merge::Plan, path: &str) -> Option<String> {
    plan.entry(path).unwrap().status.clone()
}

#[test]
fn row_01_installed_file_dir_and_link_with_macros() {
    let fx = Fx::new();
    file(
        &fx.new_skel(),
        "etc/new.conf",
        "site=###SITE### root=###ROOT### ed=###EDITION###\n",
    );
    dir(&fx.new_skel(), "etc/newdir");
    link(&fx.new_skel(), "etc/newlink", "../x/###SITE###");
    dir(&fx.old_skel(), "etc");
    dir(&fx.site(), "etc");
    let plan = fx.run_policy(Policy::Abort);
    assert_eq!(
        only_line(&plan, "etc/new.conf").unwrap(),
        " * Installed file etc/new.conf"
    );
    assert_eq!(
        only_line(&plan, "etc/newdir").unwrap(),
        " * Installed dir  etc/newdir"
    );
    assert_eq!(
        only_line(&plan, "etc/newlink").unwrap(),
        " * Installed link etc/newlink"
    );
    assert!(plan.entries.iter().all(|e| e.row == 1 || e.path == "etc"));
    assert_eq!(fx.read("etc/new.conf"), "site=s root=/omd/sites/s ed=raw\n");
    assert!(fx.site().join("etc/newdir").is_dir());
    // Link targets are copied verbatim, not substituted.
    assert_eq!(
        std::fs::read_link(fx.site().join("etc/newlink"))
            .unwrap()
            .to_str(),
        Some("../x/###SITE###")
    );
    // Not in skel.permissions: 0640 (Checkmk's get_skel_permissions).
    assert_eq!(fx.mode("etc/new.conf"), 0o640);
    assert_eq!(fx.mode("etc/newdir"), 0o750);
}

#[test]
fn row_02_identical_new() {
    let fx = Fx::new();
    fx.file(&[&fx.new_skel(), &fx.site()], "etc/a", "same\n");
    let plan = fx.run_policy(Policy::Abort);
    let e = plan.entry("etc/a").unwrap();
    assert_eq!((e.row, e.outcome), (2, Outcome::IdenticalNew));
    assert_eq!(e.status.as_deref(), Some(" * Identical new  etc/a"));
    assert_eq!(fx.read("etc/a"), "same\n");
}

#[test]
fn row_03_new_path_conflicts_with_operators_own() {
    for (policy, line, content) in [
        (Policy::KeepOld, " ! Keeping your   etc/a", "mine\n"),
        // Checkmk's line, then (issue 12) that the operator's own file went.
        (
            Policy::Install,
            " * Installed file etc/a\n   your own file etc/a was replaced by the new version's file",
            "new\n",
        ),
    ] {
        let fx = Fx::new();
        file(&fx.new_skel(), "etc/a", "new\n");
        file(&fx.site(), "etc/a", "mine\n");
        let plan = fx.run_policy(policy);
        let e = plan.entry("etc/a").unwrap();
        assert_eq!(e.row, 3);
        let c = e.conflict.as_ref().unwrap();
        assert_eq!(c.title, "Conflict at etc/a");
        assert_eq!(
            c.text,
            "The new version ships the file etc/a, but you have created a file in that place yourself. Shall we keep your file or replace is with my file?"
        );
        assert_eq!(c.choices[0].description, "Keep your file");
        assert_eq!(
            c.choices[1].description,
            "Replace your file with the new default file"
        );
        assert_eq!(e.status.as_deref(), Some(line));
        assert_eq!(fx.read("etc/a"), content);
    }
}

#[test]
fn row_04_obsolete_and_gone() {
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/a", "old\n");
    dir(&fx.site(), "etc");
    let plan = fx.run_policy(Policy::Abort);
    let e = plan.entry("etc/a").unwrap();
    assert_eq!(
        (e.row, e.status.as_deref()),
        (4, Some(" * Obsolete       etc/a"))
    );
    assert!(!fx.exists("etc/a"));
}

#[test]
fn row_05_obsolete_but_type_changed_by_operator() {
    for (policy, line, kept) in [
        (Policy::KeepOld, " ! Keeping your   etc/a", true),
        (Policy::Install, " ! Removed        etc/a", false),
    ] {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/a", "old\n");
        file(&fx.site(), "etc/a/inner", "mine\n");
        let plan = fx.run_policy(policy);
        let e = plan.entry("etc/a").unwrap();
        assert_eq!(e.row, 5);
        let c = e.conflict.as_ref().unwrap();
        assert_eq!(c.title, "Obsolete file etc/a");
        assert_eq!(
            c.text,
            "The file etc/a has become obsolete in this version, but you have changed it into a dir. Do you want to keep your dir or may I remove it for you, please?"
        );
        assert_eq!(e.status.as_deref(), Some(line));
        assert_eq!(fx.exists("etc/a/inner"), kept);
    }
}

#[test]
fn row_06_obsolete_but_content_changed() {
    for (policy, line, kept) in [
        (Policy::KeepOld, " ! Keeping your   etc/a", true),
        (Policy::Install, " ! Removed        etc/a", false),
    ] {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/a", "old\n");
        file(&fx.site(), "etc/a", "mine\n");
        let plan = fx.run_policy(policy);
        let e = plan.entry("etc/a").unwrap();
        assert_eq!(e.row, 6);
        let c = e.conflict.as_ref().unwrap();
        assert_eq!(c.title, "Changes in obsolete file etc/a");
        assert_eq!(
            c.choices[0].description,
            "keep your file, though it is obsolete"
        );
        assert_eq!(c.choices[1].description, "remove your file");
        assert_eq!(e.status.as_deref(), Some(line));
        assert_eq!(fx.exists("etc/a"), kept);
    }
}

#[test]
fn row_07_obsolete_directory_with_operator_content() {
    for (policy, line, kept) in [
        (Policy::KeepOld, " ! Keeping your   etc/d", true),
        (Policy::Install, " ! Removed        etc/d", false),
    ] {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/d/default", "x\n");
        fx.file(&[&fx.site()], "etc/d/default", "x\n");
        file(&fx.site(), "etc/d/mine", "operator\n");
        let plan = fx.run_policy(policy);
        // The unchanged default inside vanishes first (bottom-up), then the directory is asked about.
        assert_eq!(
            only_line(&plan, "etc/d/default").unwrap(),
            " * Vanished       etc/d/default"
        );
        let e = plan.entry("etc/d").unwrap();
        assert_eq!(e.row, 7);
        let c = e.conflict.as_ref().unwrap();
        assert_eq!(c.title, "Non empty obsolete directory etc/d");
        assert_eq!(
            c.text,
            "The directory etc/d has become obsolete in the new version, but you have contents in it. Do you want to keep your directory or may I remove it for you, please?"
        );
        assert_eq!(e.status.as_deref(), Some(line));
        assert_eq!(fx.exists("etc/d/mine"), kept);
        assert!(!fx.exists("etc/d/default"));
    }
}

#[test]
fn row_08_vanished_file_and_emptied_directory() {
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/d/a", "x\n");
    file(&fx.site(), "etc/d/a", "x\n");
    let plan = fx.run_policy(Policy::Abort);
    assert_eq!(
        lines(&plan),
        vec![
            " * Vanished       etc/d/a".to_owned(),
            " * Vanished       etc/d".to_owned(),
            " * Vanished       etc".to_owned()
        ]
    );
    assert!(plan.entries.iter().all(|e| e.row == 8));
    assert!(!fx.exists("etc"));
}

#[test]
fn row_09_unwanted() {
    let fx = Fx::new();
    fx.file(&[&fx.old_skel(), &fx.new_skel()], "etc/a", "same\n");
    dir(&fx.site(), "etc");
    let plan = fx.run_policy(Policy::Abort);
    let e = plan.entry("etc/a").unwrap();
    assert_eq!(
        (e.row, e.status.as_deref()),
        (
            9,
            Some(" * Unwanted       etc/a (unchanged, removed by you)")
        )
    );
    assert!(!fx.exists("etc/a"));
}

#[test]
fn row_10_missing() {
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/a", "old\n");
    file(&fx.new_skel(), "etc/a", "new\n");
    dir(&fx.site(), "etc");
    let plan = fx.run_policy(Policy::Abort);
    let e = plan.entry("etc/a").unwrap();
    assert_eq!(
        (e.row, e.status.as_deref()),
        (10, Some(" ! Missing        etc/a"))
    );
    assert!(!fx.exists("etc/a"));
}

#[test]
fn row_11_we_did_not_change_it() {
    let fx = Fx::new();
    fx.file(
        &[&fx.old_skel(), &fx.new_skel()],
        "etc/a",
        "same ###SITE###\n",
    );
    file(&fx.site(), "etc/a", "operator's\n");
    let plan = fx.run_policy(Policy::Abort);
    let e = plan.entry("etc/a").unwrap();
    assert_eq!(
        (e.row, e.status.as_deref(), e.outcome),
        (11, None, Outcome::Unchanged)
    );
    assert_eq!(fx.read("etc/a"), "operator's\n");
}

#[test]
fn row_12_updated_file() {
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/a", "old ###SITE###\n");
    file(&fx.new_skel(), "etc/a", "new ###SITE###\n");
    file(&fx.site(), "etc/a", "old s\n");
    chmod(&fx.site(), "etc/a", 0o640);
    let plan = fx.run_policy(Policy::Abort);
    let e = plan.entry("etc/a").unwrap();
    assert_eq!(
        (e.row, e.status.as_deref()),
        (12, Some(" * Updated        etc/a"))
    );
    assert_eq!(fx.read("etc/a"), "new s\n");
}

/// Issue 12: when re-creating the path also changes its permissions, the
/// `Updated` line is followed by a line naming the change.
#[test]
fn row_12_updated_names_a_permission_change() {
    // (site mode, skel.permissions line, expected status, mode afterwards)
    let cases = [
        (0o640, "", " * Updated        etc/a", 0o640),
        (
            0o644,
            "",
            " * Updated        etc/a\n   permissions 0644 -> 0640",
            0o640,
        ),
        (
            0o640,
            "etc/a 600\n",
            " * Updated        etc/a\n   permissions 0640 -> 0600",
            0o600,
        ),
    ];
    for (site_mode, table, line, after) in cases {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/a", "old\n");
        file(&fx.new_skel(), "etc/a", "new\n");
        file(&fx.site(), "etc/a", "old\n");
        chmod(&fx.site(), "etc/a", site_mode);
        permissions(&fx.old_skel(), &table.replace("600", "640"));
        permissions(&fx.new_skel(), table);
        let plan = fx.run_policy(Policy::Abort);
        let e = plan.entry("etc/a").unwrap();
        assert_eq!(e.status.as_deref(), Some(line), "{site_mode:o} {table:?}");
        assert_eq!(fx.mode("etc/a"), after);
    }
}

#[test]
fn row_12_updated_directory_into_file_removes_it_recursively() {
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/x/inner", "i\n");
    file(&fx.new_skel(), "etc/x", "now a file\n");
    file(&fx.site(), "etc/x/inner", "i\n");
    let plan = fx.run_policy(Policy::Abort);
    let e = plan.entry("etc/x").unwrap();
    assert_eq!(
        (e.row, e.status.as_deref()),
        (
            12,
            Some(" * Updated        etc/x\n   permissions 0755 -> 0640")
        )
    );
    // The old child is then obsolete and already gone.
    assert_eq!(
        only_line(&plan, "etc/x/inner").unwrap(),
        " * Obsolete       etc/x/inner"
    );
    assert_eq!(fx.read("etc/x"), "now a file\n");
}

#[test]
fn row_13_operator_made_the_same_change() {
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/a", "old\n");
    fx.file(&[&fx.new_skel(), &fx.site()], "etc/a", "new\n");
    let plan = fx.run_policy(Policy::Abort);
    let e = plan.entry("etc/a").unwrap();
    assert_eq!(
        (e.row, e.status.as_deref()),
        (13, Some(" * Identical      etc/a"))
    );
}

#[test]
fn row_13_edition_macro_change_counts_as_our_change() {
    // Old edition raw, new edition raw: not changed. Here the new skeleton uses the macro
    // and the operator already has the expanded text.
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/a", "edition=raw\n");
    file(&fx.new_skel(), "etc/a", "edition=###EDITION###\n");
    file(&fx.site(), "etc/a", "edition=raw\n");
    let plan = fx.run_policy(Policy::Abort);
    assert_eq!(
        plan.entry("etc/a").unwrap().row,
        11,
        "old raw text equals new text after substitution"
    );
}

#[test]
fn row_14_merged_cleanly() {
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/a", "1\n2\n3\n");
    file(&fx.new_skel(), "etc/a", "1\n2\nTHREE\n");
    file(&fx.site(), "etc/a", "ONE\n2\n3\n");
    std::fs::set_permissions(
        fx.site().join("etc/a"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let plan = fx.run_policy(Policy::Abort);
    let e = plan.entry("etc/a").unwrap();
    assert_eq!(
        (e.row, e.status.as_deref()),
        (14, Some(" * Merged         etc/a"))
    );
    assert_eq!(fx.read("etc/a"), "ONE\n2\nTHREE\n");
    assert_eq!(fx.mode("etc/a"), 0o600, "a merge keeps the operator's mode");
    let names: Vec<_> = std::fs::read_dir(fx.site().join("etc"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no helper files: {names:?}");
}

#[test]
fn row_14_conflict_keepold_restores_and_install_installs() {
    for (policy, line, content) in [
        (Policy::KeepOld, "Restored your version.", "mine\n"),
        (
            Policy::Install,
            "Installed default file of version 2.0.0.",
            "new\n",
        ),
    ] {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/a", "old\n");
        file(&fx.new_skel(), "etc/a", "new\n");
        file(&fx.site(), "etc/a", "mine\n");
        let plan = fx.run_policy(policy);
        let e = plan.entry("etc/a").unwrap();
        assert_eq!(e.row, 14);
        let c = e.conflict.as_ref().unwrap();
        assert_eq!(c.title, "Conflicts in etc/a!");
        assert_eq!(
            c.text,
            "I've tried to merge the changes from version 1.0.0 to 2.0.0 into etc/a.\nUnfortunately there are conflicts with your changes. \nYou have the following options: "
        );
        assert_eq!(e.status.as_deref(), Some(line));
        assert_eq!(fx.read("etc/a"), content);
    }
}

#[test]
fn row_14_merge_engine_failure() {
    // Checkmk prints ` ! Cannot merge: <exception>` and then resolves the file
    // through the conflict menu, i.e. by the policy.
    for (policy, rest, content) in [
        (Policy::KeepOld, "Restored your version.", "FAIL-MERGE\n"),
        (
            Policy::Install,
            "Installed default file of version 2.0.0.",
            "new\n",
        ),
    ] {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/a", "old\n");
        file(&fx.new_skel(), "etc/a", "new\n");
        file(&fx.site(), "etc/a", "FAIL-MERGE\n");
        let plan = fx.run_policy(policy);
        let e = plan.entry("etc/a").unwrap();
        assert_eq!(e.row, 14);
        assert_eq!(
            e.status.as_deref(),
            Some(format!(" ! Cannot merge: merge engine refused\n{rest}").as_str())
        );
        assert_eq!(fx.read("etc/a"), content);
    }
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/a", "old\n");
    file(&fx.new_skel(), "etc/a", "new\n");
    file(&fx.site(), "etc/a", "FAIL-MERGE\n");
    let err = fx
        .update()
        .plan(&LineMerger, &mut Policy::Abort)
        .unwrap_err();
    assert_eq!(err.to_string(), "Update aborted.");
    assert_eq!(fx.read("etc/a"), "FAIL-MERGE\n");
}

#[test]
fn row_15_symlink_conflict() {
    for (policy, line, target) in [
        (Policy::KeepOld, " ! Keeping your   etc/l", "mine"),
        (
            Policy::Install,
            " ! Set link       etc/l to new target new",
            "new",
        ),
    ] {
        let fx = Fx::new();
        link(&fx.old_skel(), "etc/l", "old");
        link(&fx.new_skel(), "etc/l", "new");
        link(&fx.site(), "etc/l", "mine");
        let plan = fx.run_policy(policy);
        let e = plan.entry("etc/l").unwrap();
        assert_eq!(e.row, 15);
        let c = e.conflict.as_ref().unwrap();
        assert_eq!(c.title, "Symbolic link conflict at etc/l");
        assert_eq!(
            c.text,
            "'etc/l' is a symlink that pointed to old in the old version and to new in the new version. But meanwhile you changed to link target to mine. Shall I keep your link or replace it with the new default target?"
        );
        assert_eq!(c.choices[1].description, "Change link target to new");
        assert_eq!(e.status.as_deref(), Some(line));
        assert_eq!(
            std::fs::read_link(fx.site().join("etc/l"))
                .unwrap()
                .to_str(),
            Some(target)
        );
    }
}

#[test]
fn row_16_we_changed_the_type_and_operator_the_content() {
    for (policy, line, is_dir) in [
        (Policy::KeepOld, " ! Keeping your version of etc/x", false),
        (
            Policy::Install,
            " ! Replaced your file etc/x by new default dir.",
            true,
        ),
    ] {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/x", "old\n");
        dir(&fx.new_skel(), "etc/x");
        file(&fx.site(), "etc/x", "mine\n");
        let plan = fx.run_policy(policy);
        let e = plan.entry("etc/x").unwrap();
        assert_eq!(e.row, 16);
        let c = e.conflict.as_ref().unwrap();
        assert_eq!(c.title, "File type change at etc/x");
        assert_eq!(
            c.text,
            "The file etc/x has been changed into a dir in the new version. Meanwhile you have changed the content of your copy of that file. Do you want to keep your version or replace it with the new default? "
        );
        assert_eq!(e.status.as_deref(), Some(line));
        assert_eq!(fx.site().join("etc/x").is_dir(), is_dir);
    }
}

#[test]
fn row_17_operator_changed_the_type_we_the_content() {
    for (policy, line, is_dir) in [
        (Policy::KeepOld, " ! Keeping your dir etc/x.", true),
        (
            Policy::Install,
            " ! Delete your dir and created new default file etc/x.",
            false,
        ),
    ] {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/x", "old\n");
        file(&fx.new_skel(), "etc/x", "new\n");
        file(&fx.site(), "etc/x/mine", "m\n");
        let plan = fx.run_policy(policy);
        let e = plan.entry("etc/x").unwrap();
        assert_eq!(e.row, 17);
        let c = e.conflict.as_ref().unwrap();
        assert_eq!(
            c.title,
            "Type change conflicts with content change at etc/x"
        );
        assert_eq!(
            c.text,
            "Usually etc/x is a file in both the old and new version. But you have changed it into a dir. Do you want to keep that or may I replace your dir with the new default file, please?"
        );
        assert_eq!(e.status.as_deref(), Some(line));
        assert_eq!(fx.site().join("etc/x").is_dir(), is_dir);
    }
}

/// Row 18 ("should never happen") needs O=N=U of one type with all three
/// different, which only files (row 14) and links (row 15) can be. Every
/// combination of types and contents on a real tree lands on rows 1-17.
#[test]
fn row_18_is_unreachable_for_every_type_combination() {
    let fx = Fx::new();
    let kinds = [None, Some(Kind::File), Some(Kind::Dir), Some(Kind::Link)];
    let make = |root: &std::path::Path, rel: &str, kind: Option<Kind>, tag: &str| match kind {
        None => {}
        Some(Kind::File) => file(root, rel, tag),
        Some(Kind::Dir) => dir(root, rel),
        Some(Kind::Link) => link(root, rel, tag),
    };
    let mut count = 0;
    for (i, o) in kinds.iter().enumerate() {
        for (j, n) in kinds.iter().enumerate() {
            for (k, u) in kinds.iter().enumerate() {
                if o.is_none() && n.is_none() {
                    continue;
                }
                for variant in ["same", "differ"] {
                    let rel = format!("p{i}{j}{k}{variant}");
                    let (to, tn, tu) = if variant == "same" {
                        ("a", "a", "a")
                    } else {
                        ("a", "b", "c")
                    };
                    make(&fx.old_skel(), &rel, *o, to);
                    make(&fx.new_skel(), &rel, *n, tn);
                    make(&fx.site(), &rel, *u, tu);
                    count += 1;
                }
            }
        }
    }
    let plan = fx.plan(&mut Policy::Ask);
    // Paths with a dangling link in the new skeleton are visited twice (the
    // old-only walk tests existence following links), as in Checkmk.
    let distinct: std::collections::BTreeSet<&str> = plan
        .entries
        .iter()
        .filter(|e| e.path.starts_with('p'))
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(distinct.len(), count);
    let rows: std::collections::BTreeSet<u8> = plan.entries.iter().map(|e| e.row).collect();
    assert!(!rows.contains(&18), "{rows:?}");
    // Row 7 needs operator content inside the directory; it has its own test.
    for row in (1..=17).filter(|r| *r != 7) {
        assert!(rows.contains(&row), "row {row} not reached: {rows:?}");
    }
}

// ---------------------------------------------------------------- permissions

fn perm_fixture(old_mode: u32, new_mode: u32, user_mode: u32) -> Fx {
    let fx = Fx::new();
    fx.file(
        &[&fx.old_skel(), &fx.new_skel(), &fx.site()],
        "etc/a",
        "same\n",
    );
    // The defaults come from skel.permissions (an unlisted file would get 0640).
    permissions(&fx.old_skel(), &format!("etc/a {old_mode:o}\n"));
    permissions(&fx.new_skel(), &format!("etc/a {new_mode:o}\n"));
    chmod(&fx.site(), "etc/a", user_mode);
    fx
}

#[test]
fn perm_rule_1_nothing_for_links_absent_type_change_or_equal_mode() {
    // user == new
    let fx = perm_fixture(0o644, 0o600, 0o600);
    let plan = fx.run_policy(Policy::Abort);
    assert!(plan.entry("etc/a").unwrap().permission.is_none());
    // new is a link
    let fx = Fx::new();
    fx.file(&[&fx.old_skel(), &fx.site()], "etc/l", "x\n");
    link(&fx.new_skel(), "etc/l", "target");
    permissions(&fx.new_skel(), "etc/l 600\n");
    let plan = fx.plan(&mut Policy::KeepOld);
    assert!(plan.entry("etc/l").unwrap().permission.is_none());
    // user type differs from new type (kept dir vs new file)
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/x", "old\n");
    file(&fx.new_skel(), "etc/x", "new\n");
    dir(&fx.site(), "etc/x");
    chmod(&fx.site(), "etc/x", 0o700);
    let plan = fx.run_policy(Policy::KeepOld);
    assert!(plan.entry("etc/x").unwrap().permission.is_none());
    assert_eq!(fx.mode("etc/x"), 0o700);
}

#[test]
fn perm_rule_2_new_path_gets_the_default() {
    let fx = Fx::new();
    fx.file(&[&fx.new_skel(), &fx.site()], "etc/a", "same\n");
    permissions(&fx.new_skel(), "# defaults\netc/a 600\n");
    let plan = fx.run_policy(Policy::Abort);
    let p = plan.entry("etc/a").unwrap().permission.clone().unwrap();
    assert_eq!(
        p.status.as_deref(),
        Some(" * Permissions    0644 -> 0600 etc/a")
    );
    assert_eq!(fx.mode("etc/a"), 0o600);
}

#[test]
fn perm_rule_3_special_directories_always_get_the_default() {
    let fx = Fx::new();
    for root in [fx.old_skel(), fx.new_skel(), fx.site()] {
        dir(&root, "etc/ssl/private");
    }
    permissions(&fx.old_skel(), "etc/ssl/private 775\n");
    permissions(&fx.new_skel(), "etc/ssl/private 770\n");
    chmod(&fx.site(), "etc/ssl/private", 0o750);
    let plan = fx.run_policy(Policy::Abort);
    let p = plan
        .entry("etc/ssl/private")
        .unwrap()
        .permission
        .clone()
        .unwrap();
    assert_eq!(
        p.status.as_deref(),
        Some(" * Permissions    0750 -> 0770 etc/ssl/private")
    );
    assert!(p.conflict.is_none());
    assert_eq!(fx.mode("etc/ssl/private"), 0o770);
}

#[test]
fn perm_rule_4_conflict_when_all_three_modes_differ() {
    for (policy, line, mode) in [
        (
            Policy::KeepOld,
            " ! Permissions    0640 etc/a (unchanged)",
            0o640,
        ),
        (
            Policy::Install,
            " * Permissions    0640 -> 0600 etc/a",
            0o600,
        ),
    ] {
        let fx = perm_fixture(0o644, 0o600, 0o640);
        let plan = fx.run_policy(policy);
        let p = plan.entry("etc/a").unwrap().permission.clone().unwrap();
        let c = p.conflict.unwrap();
        assert_eq!(c.title, "Permission conflict at etc/a");
        assert_eq!(
            c.text,
            "The proposed permissions of etc/a have changed from 0644 to 0600 in the new version, but you have set 0640. May I use the new default permissions or do you want to keep yours?"
        );
        let keys: String = c.choices.iter().map(|c| c.key).collect();
        assert_eq!(keys, "kdsa");
        assert_eq!(c.choices[0].description, "Keep permissions at 0640");
        assert_eq!(c.choices[1].description, "Set permission to 0600");
        assert_eq!(p.status.as_deref(), Some(line));
        assert_eq!(fx.mode("etc/a"), mode);
    }
}

#[test]
fn perm_rule_5_operator_kept_the_old_default() {
    let fx = perm_fixture(0o644, 0o600, 0o644);
    let plan = fx.run_policy(Policy::Abort);
    let p = plan.entry("etc/a").unwrap().permission.clone().unwrap();
    assert_eq!(p.outcome, PermissionOutcome::Set);
    assert_eq!(
        p.status.as_deref(),
        Some(" * Permissions    0644 -> 0600 etc/a")
    );
    assert_eq!(fx.mode("etc/a"), 0o600);
}

#[test]
fn perm_rule_6_type_changed_by_us() {
    // O=file, N=U=dir: the file step says "Identical", the permission step asks.
    // The old file is unlisted in skel.permissions: its default is 0640.
    for (user_mode, expect_conflict) in [(0o700, true), (0o640, false)] {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/x", "old\n");
        dir(&fx.new_skel(), "etc/x");
        dir(&fx.site(), "etc/x");
        permissions(&fx.new_skel(), "etc/x 755\n");
        chmod(&fx.site(), "etc/x", user_mode);
        let plan = fx.run_policy(Policy::Install);
        let e = plan.entry("etc/x").unwrap();
        assert_eq!(e.row, 13);
        let p = e.permission.clone().unwrap();
        assert_eq!(p.conflict.is_some(), expect_conflict);
        if let Some(c) = p.conflict {
            assert_eq!(c.title, "Wrong permission of etc/x");
            assert_eq!(
                c.text,
                "The proposed permissions of etc/x are 0755, but currently are 0700. May I use the new default permissions or keep yours?"
            );
        }
        assert_eq!(
            p.status.unwrap(),
            format!(" * Permissions    {user_mode:04o} -> 0755 etc/x")
        );
        assert_eq!(fx.mode("etc/x"), 0o755);
    }
}

#[test]
fn perm_rule_7_operator_mode_stays_when_defaults_are_unchanged() {
    let fx = perm_fixture(0o644, 0o644, 0o600);
    let plan = fx.run_policy(Policy::Install);
    assert!(plan.entry("etc/a").unwrap().permission.is_none());
    assert_eq!(fx.mode("etc/a"), 0o600);
}

#[test]
fn perm_from_table_beats_the_skeleton_mode() {
    let fx = perm_fixture(0o644, 0o644, 0o644);
    chmod(&fx.new_skel(), "etc/a", 0o644);
    permissions(&fx.new_skel(), "etc/a 0600\n");
    let plan = fx.run_policy(Policy::Abort);
    let p = plan.entry("etc/a").unwrap().permission.clone().unwrap();
    assert_eq!(
        p.status.as_deref(),
        Some(" * Permissions    0644 -> 0600 etc/a")
    );
    assert_eq!(fx.mode("etc/a"), 0o600);
}

/// Category 3 of issue 17: paths without a line in skel.permissions get
/// 0640 (files) and 0750 (directories), whatever the skeleton's own mode,
/// as Checkmk's `get_skel_permissions` gives them; status lines follow.
#[test]
fn perm_unlisted_paths_get_0640_and_0750() {
    // (path, is_dir, skeleton mode, site mode (0: absent), expected line, expected mode)
    type Case = (&'static str, bool, u32, u32, Option<&'static str>, u32);
    let cases: [Case; 4] = [
        // Installed: created with the unlisted default.
        ("etc/new.sh", false, 0o755, 0, None, 0o640),
        ("etc/newd", true, 0o755, 0, None, 0o750),
        // Unchanged in both versions, operator mode kept (rule 7).
        ("etc/same", false, 0o755, 0o755, None, 0o755),
        ("etc/samed", true, 0o755, 0o755, None, 0o755),
    ];
    let fx = Fx::new();
    dir(&fx.old_skel(), "etc");
    dir(&fx.site(), "etc");
    for (rel, is_dir, skel_mode, site_mode, _, _) in cases {
        let roots: Vec<_> = if site_mode == 0 {
            vec![fx.new_skel()]
        } else {
            vec![fx.old_skel(), fx.new_skel(), fx.site()]
        };
        for root in &roots {
            if is_dir {
                dir(root, rel);
            } else {
                file(root, rel, "x\n");
            }
            chmod(
                root,
                rel,
                if *root == fx.site() {
                    site_mode
                } else {
                    skel_mode
                },
            );
        }
    }
    let plan = fx.run_policy(Policy::Install);
    for (rel, _, _, _, line, mode) in cases {
        let p = plan.entry(rel).unwrap().permission.clone();
        assert_eq!(p.and_then(|p| p.status).as_deref(), line, "{rel}");
        assert_eq!(fx.mode(rel), mode, "{rel}");
    }
    // An unlisted old default (0640) against a listed new one (0600) with the
    // operator's 0755: rule 4 conflict, install sets the new default.
    let fx = perm_fixture(0o640, 0o600, 0o755);
    permissions(&fx.old_skel(), "");
    let plan = fx.run_policy(Policy::Install);
    let p = plan.entry("etc/a").unwrap().permission.clone().unwrap();
    assert_eq!(
        p.status.as_deref(),
        Some(" * Permissions    0755 -> 0600 etc/a")
    );
}

#[test]
fn dry_run_with_ask_defers_and_cannot_be_applied() {
    let fx = perm_fixture(0o644, 0o600, 0o640);
    file(&fx.new_skel(), "etc/b", "new\n");
    file(&fx.site(), "etc/b", "mine\n");
    let before = snapshot(fx.root());
    let up = fx.update();
    let plan = up.plan(&LineMerger, &mut Policy::Ask).unwrap();
    assert_eq!(plan.unresolved(), 2);
    assert_eq!(plan.entry("etc/b").unwrap().outcome, Outcome::Pending);
    let err = up.apply(&plan, &Default::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("2 unresolved conflict(s), the first at etc/a"),
        "{err}"
    );
    assert_eq!(snapshot(fx.root()), before);
    // The JSON report names every path and question.
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["entries"][1]["path"], "etc/a");
    assert_eq!(
        json["entries"][1]["permission"]["conflict"]["title"],
        "Permission conflict at etc/a"
    );
    assert!(json["entries"][1]["permission"]["conflict"]["answer"].is_null());
}

#[test]
fn tmp_and_ignored_paths_are_not_walked() {
    let fx = Fx::new();
    file(&fx.new_skel(), "tmp/inside", "x\n");
    file(&fx.new_skel(), "etc/htpasswd", "x\n");
    file(&fx.new_skel(), "etc/ok", "x\n");
    let plan = fx.run(&mut Scripted::new([Answer::Abort]));
    let paths: Vec<_> = plan.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["etc", "tmp", "etc/ok"]);
}

/// Issue 17 category 1: a new path below a directory the operator removed or
/// replaced. Checkmk creates a new directory with its missing parents
/// (`mkdir -p`) and raises for a new file or link (` ! Exception      X`,
/// here followed by a line saying why).
#[test]
fn new_paths_below_a_directory_the_operator_removed_or_replaced() {
    // (what the operator did to etc/sub, what the new version adds, lines, etc/sub afterwards)
    type Case = (
        &'static str,
        &'static str,
        &'static [&'static str],
        Option<Kind>,
    );
    let cases: [Case; 4] = [
        (
            "removed",
            "file",
            &[
                " * Unwanted       etc/sub (unchanged, removed by you)",
                " * Unwanted       etc/sub/a (unchanged, removed by you)",
                " ! Exception      etc/sub/new\n   etc/sub/new: cannot create it: the directory etc/sub is missing in the site.",
            ],
            None,
        ),
        (
            "removed",
            "dir",
            &[
                " * Unwanted       etc/sub (unchanged, removed by you)",
                " * Installed dir  etc/sub/new",
                " * Unwanted       etc/sub/a (unchanged, removed by you)",
            ],
            Some(Kind::Dir),
        ),
        (
            "file",
            "file",
            // etc/sub: the operator changed the type, we did not (row 11, no line)
            &[
                " * Unwanted       etc/sub/a (unchanged, removed by you)",
                " ! Exception      etc/sub/new\n   etc/sub/new: cannot create it: etc/sub is a file in the site, not a directory.",
            ],
            Some(Kind::File),
        ),
        (
            "file",
            "dir",
            &[
                " ! Exception      etc/sub/new\n   etc/sub/new: cannot create it: etc/sub is a file in the site, not a directory.",
                " * Unwanted       etc/sub/a (unchanged, removed by you)",
            ],
            Some(Kind::File),
        ),
    ];
    for (operator, added, expected, after) in cases {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/sub/a", "a\n");
        file(&fx.new_skel(), "etc/sub/a", "a\n");
        if added == "dir" {
            dir(&fx.new_skel(), "etc/sub/new");
        } else {
            file(&fx.new_skel(), "etc/sub/new", "new\n");
        }
        dir(&fx.site(), "etc");
        if operator == "file" {
            file(&fx.site(), "etc/sub", "mine\n");
        }
        let plan = fx.run_policy(Policy::KeepOld);
        let got: Vec<String> = lines(&plan)
            .into_iter()
            .filter(|l| l.contains("etc/sub"))
            .collect();
        assert_eq!(got, expected, "{operator} / {added}");
        let kind = fx
            .site()
            .join("etc/sub")
            .symlink_metadata()
            .ok()
            .map(|m| if m.is_dir() { Kind::Dir } else { Kind::File });
        assert_eq!(kind, after, "{operator} / {added}");
        if after == Some(Kind::Dir) {
            assert_eq!(fx.mode("etc/sub"), 0o755, "created like mkdir -p");
            assert!(fx.site().join("etc/sub/new").is_dir());
            assert!(!fx.exists("etc/sub/a"));
        }
    }
}
