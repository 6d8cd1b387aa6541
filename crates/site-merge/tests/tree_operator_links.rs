//! Issue 17, category 2: symlinks the operator made, as Checkmk's own update
//! code treats them. Its `filetype()` calls a link a link (so the decision
//! table compares the link itself), but `create_skeleton_file` removes what
//! is there only when `os.path.exists` — which follows the link — says so,
//! and then writes with `open(path, "wb")`, which follows it too. So a new
//! file is written *through* a link that leads nowhere (creating the link's
//! end, inside the site), the link is kept, and a new directory or link fails
//! there with "File exists"; a link to an existing path is replaced as
//! before. Paths below an operator's link to a directory of the site are
//! created through it. Site trees are built in each test.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;

use common::*;
use site_merge::{ApplyOptions, Fault, Outcome, Policy};

fn target(fx: &Fx, rel: &str) -> String {
    fs::read_link(fx.site().join(rel))
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// A row whose action re-creates the path from the new skeleton, over an
/// operator's link that leads nowhere: the new file is written through it.
#[test]
fn a_new_file_is_written_through_a_dangling_link_and_the_link_is_kept() {
    struct Case {
        row: u8,
        /// Builds the old skeleton, the new skeleton and the site.
        build: fn(&Fx),
        policy: Policy,
        /// The first status line.
        line: &'static str,
        /// The link, its target and the end written through it.
        link: (&'static str, &'static str, &'static str),
    }
    let cases = [
        // The example: a skeleton link (kept as it was by the
        // operator, leading nowhere in the site) became a file.
        Case {
            row: 12,
            build: |fx| {
                link(&fx.old_skel(), "etc/views-link", "###SITE###-notify");
                file(&fx.new_skel(), "etc/views-link", "site ###SITE###\n");
                link(&fx.site(), "etc/views-link", "###SITE###-notify");
            },
            policy: Policy::KeepOld,
            line: " * Updated        etc/views-link",
            link: (
                "etc/views-link",
                "###SITE###-notify",
                "etc/###SITE###-notify",
            ),
        },
        // The operator replaced a skeleton file by a link to a file of the
        // site that does not exist (yet).
        Case {
            row: 17,
            build: |fx| {
                file(&fx.old_skel(), "etc/a", "old\n");
                file(&fx.new_skel(), "etc/a", "site ###SITE###\n");
                dir(&fx.site(), "etc");
                link(&fx.site(), "etc/a", "nowhere");
            },
            policy: Policy::Install,
            line: " ! Delete your link and created new default file etc/a.",
            link: ("etc/a", "nowhere", "etc/nowhere"),
        },
        // A new file where the operator already has a link (into a
        // directory of the site).
        Case {
            row: 3,
            build: |fx| {
                file(&fx.new_skel(), "etc/a", "site ###SITE###\n");
                dir(&fx.site(), "etc/sub");
                link(&fx.site(), "etc/a", "sub/a.conf");
            },
            policy: Policy::Install,
            line: " * Installed file etc/a",
            link: ("etc/a", "sub/a.conf", "etc/sub/a.conf"),
        },
        // A skeleton link became a file; the operator had pointed it
        // elsewhere (an absolute path inside the site).
        Case {
            row: 16,
            build: |fx| {
                link(&fx.old_skel(), "etc/a", "b");
                file(&fx.new_skel(), "etc/a", "site ###SITE###\n");
                dir(&fx.site(), "var");
                let end = fx.site().join("var/c");
                link(&fx.site(), "etc/a", end.to_str().unwrap());
            },
            policy: Policy::Install,
            line: " ! Replaced your link etc/a by new default file.",
            link: ("etc/a", "", "var/c"),
        },
    ];
    for case in cases {
        let fx = Fx::new();
        (case.build)(&fx);
        let (rel, link_target, end) = case.link;
        let link_target = if link_target.is_empty() {
            fx.site().join(end).display().to_string()
        } else {
            link_target.to_owned()
        };
        let plan = fx.run_policy(case.policy);
        let e = plan.entry(rel).unwrap();
        assert_eq!(e.row, case.row, "row {}", case.row);
        let status = e.status.clone().unwrap();
        let (first, second) = status.split_once('\n').unwrap();
        assert_eq!(first, case.line, "row {}", case.row);
        assert!(second.contains(end), "row {}: {second}", case.row);
        assert_eq!(
            target(&fx, rel),
            link_target,
            "row {}: the link is kept",
            case.row
        );
        assert_eq!(
            fx.read(end),
            "site s\n",
            "row {}: written through",
            case.row
        );
        // Unlisted in skel.permissions: 0640 (Checkmk chmods through the link).
        assert_eq!(fx.mode(end), 0o640, "row {}", case.row);
        assert_eq!(fx.read(".version_meta/version"), "2.0.0\n");
    }
}

/// Where the decision table does not re-create the path, the dangling link
/// is simply the operator's link (no exception): row 11 is silent, row 17
/// under keepold keeps it.
#[test]
fn a_dangling_link_that_is_not_replaced_is_kept_without_an_exception() {
    // (old, new, policy, status)
    let cases: [(&str, &str, Policy, Option<&str>); 2] = [
        ("same\n", "same\n", Policy::Install, None),
        (
            "old\n",
            "new\n",
            Policy::KeepOld,
            Some(" ! Keeping your link etc/a."),
        ),
    ];
    for (old, new, policy, line) in cases {
        let fx = Fx::new();
        file(&fx.old_skel(), "etc/a", old);
        file(&fx.new_skel(), "etc/a", new);
        dir(&fx.site(), "etc");
        link(&fx.site(), "etc/a", "nowhere");
        let plan = fx.run_policy(policy);
        let e = plan.entry("etc/a").unwrap();
        assert_eq!(e.status.as_deref(), line, "{policy:?}");
        assert_ne!(e.outcome, Outcome::Exception);
        assert_eq!(target(&fx, "etc/a"), "nowhere");
        assert!(!fx.exists("etc/nowhere"));
    }
}

/// A new directory or link cannot be created over a link that leads
/// nowhere (Checkmk's `makedirs`/`symlink` raise "File exists"), nor can a
/// file be written through a link whose end's directory is missing: kept
/// and reported as ` ! Exception      X`, the update completes.
#[test]
fn what_cannot_be_created_over_a_dangling_link_is_an_exception() {
    // (new skeleton builder, site link target, words)
    type Case = (fn(&Fx), &'static str, &'static str);
    let cases: [Case; 3] = [
        (|fx| dir(&fx.new_skel(), "etc/a"), "nowhere", "File exists"),
        (
            |fx| link(&fx.new_skel(), "etc/a", "elsewhere"),
            "nowhere",
            "File exists",
        ),
        (
            |fx| file(&fx.new_skel(), "etc/a", "new\n"),
            "missing/dir/x",
            "cannot be followed",
        ),
    ];
    for (build, link_target, words) in cases {
        let fx = Fx::new();
        link(&fx.old_skel(), "etc/a", link_target);
        build(&fx);
        link(&fx.site(), "etc/a", link_target);
        let plan = fx.run_policy(Policy::Install);
        let e = plan.entry("etc/a").unwrap();
        assert_eq!(e.row, 12, "{link_target}");
        assert_eq!(e.outcome, Outcome::Exception, "{link_target}");
        let status = e.status.clone().unwrap();
        let (first, second) = status.split_once('\n').unwrap();
        assert_eq!(first, " ! Exception      etc/a");
        assert!(second.contains(words), "{second}");
        assert_eq!(target(&fx, "etc/a"), link_target);
        assert_eq!(fx.read(".version_meta/version"), "2.0.0\n");
    }
}

/// A link out of the site is never written through, also where a skeleton
/// has a link there (Checkmk would write outside; our one difference).
#[test]
fn nothing_is_written_through_a_dangling_link_out_of_the_site() {
    let outside = tempfile::tempdir().unwrap();
    let end = outside.path().join("x.conf");
    let fx = Fx::new();
    link(&fx.old_skel(), "etc/a", end.to_str().unwrap());
    file(&fx.new_skel(), "etc/a", "new\n");
    link(&fx.site(), "etc/a", end.to_str().unwrap());
    let plan = fx.run_policy(Policy::Install);
    let e = plan.entry("etc/a").unwrap();
    assert_eq!(e.outcome, Outcome::Exception);
    assert!(
        e.status
            .as_deref()
            .unwrap()
            .contains("points outside the site")
    );
    assert!(!end.exists());
    assert_eq!(target(&fx, "etc/a"), end.to_str().unwrap());
}

/// The write through a link is journaled: a failed update removes the end
/// it created again and leaves the link.
#[test]
fn a_write_through_a_link_is_rolled_back() {
    let fx = Fx::new();
    link(&fx.old_skel(), "etc/views-link", "notify");
    file(&fx.new_skel(), "etc/views-link", "new\n");
    link(&fx.site(), "etc/views-link", "notify");
    let up = fx.update();
    let plan = up.plan(&LineMerger, &mut { Policy::Install }).unwrap();
    let opts = ApplyOptions::new().sync(false).fault(Fault::FailAfter(1));
    assert!(up.apply(&plan, &opts).is_err());
    assert!(!fx.exists("etc/notify"));
    assert_eq!(target(&fx, "etc/views-link"), "notify");
    // Without the fault the end is written.
    up.apply(&plan, &ApplyOptions::new().sync(false)).unwrap();
    assert_eq!(fx.read("etc/notify"), "new\n");
}

/// Below an operator's link to a directory of the site, a new file is
/// created through the link (Checkmk's `open()` follows it); the link stays.
#[test]
fn a_new_file_below_a_link_to_a_site_directory_is_created_through_it() {
    let fx = Fx::new();
    dir(&fx.old_skel(), "etc/d");
    file(&fx.new_skel(), "etc/d/new.conf", "new\n");
    dir(&fx.site(), "etc/real");
    link(&fx.site(), "etc/d", "real");
    let plan = fx.run_policy(Policy::Install);
    let e = plan.entry("etc/d/new.conf").unwrap();
    assert_eq!(
        e.status.as_deref(),
        Some(" * Installed file etc/d/new.conf")
    );
    assert_eq!(fx.read("etc/real/new.conf"), "new\n");
    assert_eq!(target(&fx, "etc/d"), "real");
}

/// Guard (already Checkmk's behaviour before this change): a link to an
/// existing file of the site is replaced (`os.path.exists` is true, so the
/// link itself is removed); the file it pointed to is left alone.
#[test]
fn a_link_to_an_existing_file_is_replaced_and_its_target_left_alone() {
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/a", "old\n");
    file(&fx.new_skel(), "etc/a", "new\n");
    file(&fx.site(), "etc/b", "mine\n");
    link(&fx.site(), "etc/a", "b");
    let plan = fx.run_policy(Policy::Install);
    let e = plan.entry("etc/a").unwrap();
    assert_eq!(
        e.status.as_deref(),
        Some(" ! Delete your link and created new default file etc/a.")
    );
    assert!(
        fs::symlink_metadata(fx.site().join("etc/a"))
            .unwrap()
            .is_file()
    );
    assert_eq!(fx.read("etc/a"), "new\n");
    assert_eq!(fx.read("etc/b"), "mine\n");
}

/// Below an operator's link to a directory out of the site nothing is
/// written (Checkmk would write through it): ` ! Exception      X`, the
/// outside file stays as it was, the update completes.
#[test]
fn nothing_is_written_below_a_directory_link_out_of_the_site() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("x"), "old\n").unwrap();
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/d/x", "old\n");
    file(&fx.new_skel(), "etc/d/x", "new\n");
    dir(&fx.site(), "etc");
    link(&fx.site(), "etc/d", outside.path().to_str().unwrap());
    let plan = fx.run_policy(Policy::Install);
    let e = plan.entry("etc/d/x").unwrap();
    assert_eq!(e.row, 12);
    assert_eq!(e.outcome, Outcome::Exception);
    let status = e.status.clone().unwrap();
    assert!(
        status.starts_with(" ! Exception      etc/d/x\n"),
        "{status}"
    );
    assert!(
        status.contains("etc/d is your symbolic link out of the site"),
        "{status}"
    );
    assert_eq!(
        fs::read_to_string(outside.path().join("x")).unwrap(),
        "old\n"
    );
    assert_eq!(fx.read(".version_meta/version"), "2.0.0\n");
}

/// A path below a directory link that loops is absent for Checkmk
/// (`os.path.islink`/`exists` are false there): the update completes
/// instead of failing on "Too many levels of symbolic links".
#[test]
fn a_path_below_a_looping_directory_link_is_missing() {
    let fx = Fx::new();
    file(&fx.old_skel(), "etc/d/x", "old\n");
    file(&fx.new_skel(), "etc/d/x", "new\n");
    dir(&fx.site(), "etc");
    link(&fx.site(), "etc/d", "d");
    let plan = fx.run_policy(Policy::Install);
    assert_eq!(plan.entry("etc/d").unwrap().status, None);
    let e = plan.entry("etc/d/x").unwrap();
    assert_eq!(e.status.as_deref(), Some(" ! Missing        etc/d/x"));
    assert_eq!(target(&fx, "etc/d"), "d");
    assert_eq!(fx.read(".version_meta/version"), "2.0.0\n");
}
