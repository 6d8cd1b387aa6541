//! Every policy on a tree with all conflict kinds, the interactive menu
//! driven by a scripted resolver, and an update between the two real
//! skeleton versions of the shared corpus with operator edits.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs;
use std::path::Path;

use common::*;
use site_merge::{
    Answer, ApplyOptions, Conflict, ConflictKind, Error, Outcome, Policy, Resolver, SiteCreation,
    Skeleton, Update,
};

/// A tree with one instance of every kind of conflict (rows 3, 5, 6, 7, 14,
/// 15, 16, 17 and permission rules 4 and 6) plus a clean merge and an update.
fn all_conflicts() -> Fx {
    let fx = Fx::new();
    let (o, n, s) = (fx.old_skel(), fx.new_skel(), fx.site());
    file(&n, "etc/r03", "new\n");
    file(&s, "etc/r03", "mine\n");
    file(&o, "etc/r05", "old\n");
    file(&s, "etc/r05/inner", "mine\n");
    file(&o, "etc/r06", "old\n");
    file(&s, "etc/r06", "mine\n");
    file(&o, "etc/r07/default", "d\n");
    file(&s, "etc/r07/default", "d\n");
    file(&s, "etc/r07/mine", "m\n");
    for (rel, ours) in [
        ("etc/r14", "mine\n"),
        ("etc/r14b", "mine b\n"),
        ("etc/r14c", "mine c\n"),
    ] {
        file(&o, rel, "old\n");
        file(&n, rel, "new\n");
        file(&s, rel, ours);
    }
    file(&o, "etc/r14clean", "1\n2\n");
    file(&n, "etc/r14clean", "1\nTWO\n");
    file(&s, "etc/r14clean", "ONE\n2\n");
    link(&o, "etc/r15", "old");
    link(&n, "etc/r15", "new");
    link(&s, "etc/r15", "mine");
    file(&o, "etc/r16", "old\n");
    dir(&n, "etc/r16");
    file(&s, "etc/r16", "mine\n");
    file(&o, "etc/r17", "old\n");
    file(&n, "etc/r17", "new\n");
    file(&s, "etc/r17/x", "mine\n");
    fx.file(&[&o, &n, &s], "etc/p4", "same\n");
    // Paths without a skel.permissions line get 0640/0750 (Checkmk's
    // get_skel_permissions), so the changed default is listed.
    permissions(&o, "etc/p4 644\n");
    permissions(&n, "etc/p4 600\n");
    chmod(&s, "etc/p4", 0o640);
    file(&o, "etc/p6", "old\n");
    dir(&n, "etc/p6");
    dir(&s, "etc/p6");
    chmod(&s, "etc/p6", 0o700);
    file(&o, "etc/upd", "old\n");
    file(&n, "etc/upd", "new\n");
    file(&s, "etc/upd", "old\n");
    chmod(&s, "etc/upd", 0o640);
    fx
}

/// Walk order: per directory the sub-directories of the new skeleton first
/// (p6 and r16 are directories there), then its files, then the old-only
/// paths bottom-up.
const CONFLICT_PATHS: [&str; 12] = [
    "etc/p6", "etc/r16", "etc/p4", "etc/r03", "etc/r14", "etc/r14b", "etc/r14c", "etc/r15",
    "etc/r17", "etc/r06", "etc/r05", "etc/r07",
];

/// With the operator's link kept, the dangling new link `etc/r15` is visited
/// a second time by the old-only walk (Checkmk tests existence following
/// links) and asked about again.
fn with_second_r15() -> Vec<&'static str> {
    let mut v = CONFLICT_PATHS.to_vec();
    v.insert(9, "etc/r15");
    v
}

#[test]
fn policy_install_takes_every_new_default() {
    let fx = all_conflicts();
    let plan = fx.run_policy(Policy::Install);
    let asked: Vec<&str> = plan.conflicts().iter().map(|(p, _)| *p).collect();
    assert_eq!(asked, CONFLICT_PATHS);
    assert!(
        plan.conflicts()
            .iter()
            .all(|(_, c)| matches!(c.answer.as_deref(), Some("replace" | "default" | "install")))
    );
    assert_eq!(fx.read("etc/r03"), "new\n");
    assert!(!fx.exists("etc/r05") && !fx.exists("etc/r06") && !fx.exists("etc/r07"));
    assert_eq!(fx.read("etc/r14"), "new\n");
    assert_eq!(fx.read("etc/r14clean"), "ONE\nTWO\n");
    assert_eq!(
        fs::read_link(fx.site().join("etc/r15")).unwrap().to_str(),
        Some("new")
    );
    assert!(fx.site().join("etc/r16").is_dir());
    assert_eq!(fx.read("etc/r17"), "new\n");
    assert_eq!(fx.mode("etc/p4"), 0o600);
    assert_eq!(fx.mode("etc/p6"), 0o750);
    assert_eq!(fx.read("etc/upd"), "new\n");
    assert_no_helpers(&fx);
}

#[test]
fn policy_keepold_keeps_every_operator_version() {
    let fx = all_conflicts();
    let plan = fx.run_policy(Policy::KeepOld);
    let asked: Vec<&str> = plan.conflicts().iter().map(|(p, _)| *p).collect();
    assert_eq!(asked, with_second_r15());
    assert!(
        plan.conflicts()
            .iter()
            .all(|(_, c)| matches!(c.answer.as_deref(), Some("keep" | "restore")))
    );
    assert_eq!(fx.read("etc/r03"), "mine\n");
    assert_eq!(fx.read("etc/r05/inner"), "mine\n");
    assert_eq!(fx.read("etc/r06"), "mine\n");
    assert_eq!(fx.read("etc/r07/mine"), "m\n");
    assert!(!fx.exists("etc/r07/default"));
    assert_eq!(fx.read("etc/r14"), "mine\n");
    assert_eq!(fx.read("etc/r14clean"), "ONE\nTWO\n");
    assert_eq!(
        fs::read_link(fx.site().join("etc/r15")).unwrap().to_str(),
        Some("mine")
    );
    assert_eq!(fx.read("etc/r16"), "mine\n");
    assert_eq!(fx.read("etc/r17/x"), "mine\n");
    assert_eq!(fx.mode("etc/p4"), 0o640);
    assert_eq!(fx.mode("etc/p6"), 0o700);
    assert_eq!(fx.read("etc/upd"), "new\n");
    assert_no_helpers(&fx);
}

#[test]
fn policy_abort_stops_before_writing_anything() {
    let fx = all_conflicts();
    let before = snapshot(fx.root());
    let err = fx
        .update()
        .plan(&LineMerger, &mut Policy::Abort)
        .unwrap_err();
    assert_eq!(err.to_string(), "Update aborted.");
    assert!(matches!(err, Error::Aborted { ref path } if path == "etc/p6"));
    assert_eq!(snapshot(fx.root()), before);
}

#[test]
fn policy_ask_alone_is_a_dry_run_listing_every_conflict() {
    let fx = all_conflicts();
    let before = snapshot(fx.root());
    let plan = fx.plan(&mut Policy::Ask);
    assert_eq!(plan.unresolved(), with_second_r15().len());
    let titles: Vec<String> = plan
        .conflicts()
        .iter()
        .map(|(_, c)| c.title.clone())
        .collect();
    assert_eq!(
        titles,
        [
            "Wrong permission of etc/p6",
            "File type change at etc/r16",
            "Permission conflict at etc/p4",
            "Conflict at etc/r03",
            "Conflicts in etc/r14!",
            "Conflicts in etc/r14b!",
            "Conflicts in etc/r14c!",
            "Symbolic link conflict at etc/r15",
            "Type change conflicts with content change at etc/r17",
            "Symbolic link conflict at etc/r15",
            "Changes in obsolete file etc/r06",
            "Obsolete file etc/r05",
            "Non empty obsolete directory etc/r07",
        ]
    );
    // Non-conflicting lines are planned as usual.
    assert!(
        plan.lines()
            .contains(&" * Updated        etc/upd".to_owned())
    );
    assert!(
        plan.lines()
            .contains(&" * Merged         etc/r14clean".to_owned())
    );
    assert_eq!(snapshot(fx.root()), before);
}

/// Answers per path from a script.
struct ByPath {
    answers: HashMap<&'static str, VecDeque<Answer>>,
    asked: Vec<Conflict>,
}

impl Resolver for ByPath {
    fn resolve(&mut self, conflict: &Conflict) -> Answer {
        self.asked.push(conflict.clone());
        self.answers
            .get_mut(conflict.path.as_str())
            .and_then(VecDeque::pop_front)
            .expect("unexpected question")
    }
}

#[test]
fn ask_menu_driven_by_a_scripted_resolver() {
    let fx = all_conflicts();
    let mut r = ByPath {
        answers: HashMap::from([
            ("etc/p4", VecDeque::from([Answer::Keep])),
            ("etc/p6", VecDeque::from([Answer::Replace])),
            ("etc/r03", VecDeque::from([Answer::Replace])),
            // t: edit the original (back to the old default) -> clean merge.
            (
                "etc/r14",
                VecDeque::from([Answer::RetryWith(b"old\n".to_vec())]),
            ),
            // t, still conflicting, then k: keep the markers.
            (
                "etc/r14b",
                VecDeque::from([
                    Answer::RetryWith(b"still mine\n".to_vec()),
                    Answer::KeepMerged,
                ]),
            ),
            // e: the operator edits the half-merged file.
            (
                "etc/r14c",
                VecDeque::from([Answer::UseContent(b"edited\n".to_vec())]),
            ),
            ("etc/r15", VecDeque::from([Answer::Keep, Answer::Keep])),
            ("etc/r16", VecDeque::from([Answer::Replace])),
            ("etc/r17", VecDeque::from([Answer::Keep])),
            ("etc/r07", VecDeque::from([Answer::Replace])),
            ("etc/r06", VecDeque::from([Answer::Keep])),
            ("etc/r05", VecDeque::from([Answer::Replace])),
        ]),
        asked: Vec::new(),
    };
    let plan = fx.run(&mut r);

    // The merge menu: keys, texts, and the diffs offered by d/y/n.
    let first = r.asked.iter().find(|c| c.path == "etc/r14").unwrap();
    assert_eq!(first.kind, ConflictKind::Merge);
    assert_eq!(first.question.prompt(), "d/y/n/e/t/k/r/i/s/a ==> ");
    let descriptions: Vec<&str> = first
        .question
        .choices
        .iter()
        .map(|c| c.description.as_str())
        .collect();
    assert_eq!(
        descriptions,
        [
            "Show differences between the new default and your version",
            "Show your changes compared with the old default version",
            "Show what has changed from 1.0.0 to 2.0.0",
            "Edit half-merged file (watch out for >>>>> and <<<<<)",
            "Edit your original file and try again",
            "Keep half-merged version of the file",
            "Restore your original version of the file",
            "Install the new default version",
            "Open a shell for looking around",
            "Stop here and abort update!",
        ]
    );
    let texts = first.merge.as_ref().unwrap();
    assert_eq!(
        texts.merged,
        b"<<<<<<< ours\nmine\n=======\nnew\n>>>>>>> theirs\n"
    );
    assert_eq!(
        String::from_utf8(texts.diff_yours_to_new("etc/r14")).unwrap(),
        "--- etc/r14.orig\n+++ etc/r14-2.0.0\n@@ -1 +1 @@\n-mine\n+new\n"
    );
    assert_eq!(
        String::from_utf8(texts.diff_your_changes("etc/r14")).unwrap(),
        "--- etc/r14-1.0.0\n+++ etc/r14.orig\n@@ -1 +1 @@\n-old\n+mine\n"
    );
    assert_eq!(
        String::from_utf8(texts.diff_update("etc/r14")).unwrap(),
        "--- etc/r14-1.0.0\n+++ etc/r14-2.0.0\n@@ -1 +1 @@\n-old\n+new\n"
    );
    let retries: Vec<u32> = r
        .asked
        .iter()
        .filter(|c| c.path == "etc/r14b")
        .map(|c| c.merge.as_ref().unwrap().attempt)
        .collect();
    assert_eq!(retries, [0, 1]);
    let two_way = r.asked.iter().find(|c| c.path == "etc/r03").unwrap();
    assert_eq!(two_way.question.prompt(), "k/r/s/a ==> ");

    // Outcomes, lines and the tree.
    let outcome = |p: &str| plan.entry(p).unwrap().outcome;
    assert_eq!(outcome("etc/r14"), Outcome::MergedOnRetry);
    assert_eq!(
        plan.entry("etc/r14").unwrap().status.as_deref(),
        Some("Successfully merged changes from 1.0.0 -> 2.0.0 into etc/r14")
    );
    assert_eq!(outcome("etc/r14b"), Outcome::KeptConflictMarkers);
    assert_eq!(outcome("etc/r14c"), Outcome::Edited);
    assert_eq!(fx.read("etc/r14"), "new\n");
    assert_eq!(
        fx.read("etc/r14b"),
        "<<<<<<< ours\nstill mine\n=======\nnew\n>>>>>>> theirs\n"
    );
    assert_eq!(fx.read("etc/r14c"), "edited\n");
    assert_eq!(fx.mode("etc/p4"), 0o640);
    assert_eq!(fx.mode("etc/p6"), 0o750);
    assert_eq!(fx.read("etc/r03"), "new\n");
    assert_eq!(
        fs::read_link(fx.site().join("etc/r15")).unwrap().to_str(),
        Some("mine")
    );
    assert!(fx.site().join("etc/r16").is_dir());
    assert_eq!(fx.read("etc/r17/x"), "mine\n");
    assert!(!fx.exists("etc/r07"));
    assert_eq!(fx.read("etc/r06"), "mine\n");
    assert!(!fx.exists("etc/r05"));
    assert_no_helpers(&fx);
}

#[test]
fn ask_abort_in_the_menu_changes_nothing() {
    let fx = all_conflicts();
    let before = snapshot(fx.root());
    let mut r = Scripted::new([Answer::Keep, Answer::Keep, Answer::Keep, Answer::Abort]);
    let err = fx.update().plan(&LineMerger, &mut r).unwrap_err();
    assert!(matches!(err, Error::Aborted { ref path } if path == "etc/r03"));
    assert_eq!(snapshot(fx.root()), before);
}

#[test]
fn wrong_answer_kind_is_an_error() {
    let fx = all_conflicts();
    let err = fx
        .update()
        .plan(&LineMerger, &mut Scripted::new([Answer::KeepMerged]))
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidAnswer { ref path, .. } if path == "etc/p6"),
        "{err}"
    );
}

fn assert_no_helpers(fx: &Fx) {
    for path in snapshot(fx.root()).keys() {
        assert!(
            !(path.contains("site-update")
                || path.ends_with(".orig")
                || path.ends_with("-1.0.0")
                || path.ends_with("-2.0.0")),
            "helper left behind: {path}"
        );
    }
}

// ------------------------------------------------------------ real skeletons

/// Copies `idx-*/omd/packages/<pkg>/skel/<rel>` to `<skel>/<rel>` (mode 0644).
fn assemble(corpus: &Path, index: &str, skel: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let packages = corpus.join(index).join("omd/packages");
    for pkg in fs::read_dir(&packages).unwrap() {
        let root = pkg.unwrap().path().join("skel");
        collect(&root, &root, &mut files);
    }
    for (rel, content) in &files {
        file(skel, rel, "");
        fs::write(skel.join(rel), content).unwrap();
    }
    files
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for e in fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            out.insert(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                fs::read(&path).unwrap(),
            );
        }
    }
}

fn instantiate(text: &[u8]) -> Vec<u8> {
    site_merge::Replacements::new(SITE, format!("/omd/sites/{SITE}"))
        .with_edition(Some("raw".into()))
        .apply(text)
}

#[test]
fn corpus_update_between_two_real_skeleton_versions_with_operator_edits() {
    let corpus = testkit::require_shared!("corpus/skel");
    for policy in [Policy::KeepOld, Policy::Install] {
        let tmp = tempfile::tempdir().unwrap();
        let versions = tmp.path().join("versions");
        let old_skel = versions.join(OLD).join("skel");
        let new_skel = versions.join(NEW).join("skel");
        let a = assemble(&corpus, "idx-a", &old_skel);
        let b = assemble(&corpus, "idx-b", &new_skel);
        assert_eq!(a.len(), 29);
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for skel in [&old_skel, &new_skel] {
            for rel in [
                "etc/init.d/apache",
                "etc/init.d/crontab",
                "etc/init.d/stunnel",
            ] {
                chmod(skel, rel, 0o755);
            }
        }
        // Checkmk's skel.permissions lists the init scripts; unlisted paths
        // would get 0640/0750.
        let listed = "etc/init.d/apache 755\netc/init.d/crontab 755\netc/init.d/stunnel 755\n";
        permissions(&old_skel, &format!("{listed}etc/jaeger/jaeger.env 644\n"));
        permissions(&new_skel, &format!("{listed}etc/jaeger/jaeger.env 640\n"));

        // omd create from the old version.
        let site = tmp.path().join("sites").join(SITE);
        let from = Skeleton::of_version(&versions, OLD).edition("raw");
        SiteCreation::new(&site, SITE, from.clone())
            .root(format!("/omd/sites/{SITE}"))
            .create()
            .unwrap();
        assert_eq!(
            fs::read(site.join(".profile")).unwrap(),
            instantiate(&a[".profile"])
        );

        // Operator edits.
        let mut bashrc = fs::read(site.join(".bashrc")).unwrap();
        bashrc.extend_from_slice(b"alias ll='ls -l'\n");
        fs::write(site.join(".bashrc"), &bashrc).unwrap();
        fs::remove_file(site.join("etc/logrotate.d/audit")).unwrap();
        fs::write(
            site.join("etc/jaeger/jaeger.env"),
            instantiate(&b["etc/jaeger/jaeger.env"]),
        )
        .unwrap();
        chmod(&site, "etc/init.d/crontab", 0o700);
        file(&site, "etc/mine.conf", "operator only\n");

        let to = Skeleton::of_version(&versions, NEW).edition("raw");
        let up = Update::builder(&site, SITE, from, to)
            .root(format!("/omd/sites/{SITE}"))
            .build()
            .unwrap();
        let plan = up.plan(&LineMerger, &mut { policy }).unwrap();
        up.apply(&plan, &ApplyOptions::new()).unwrap();

        for e in &plan.entries {
            let line = match e.path.as_str() {
                ".bashrc" => Some(match policy {
                    Policy::KeepOld => "Restored your version.".to_owned(),
                    _ => "Installed default file of version 2.0.0.".to_owned(),
                }),
                "etc/logrotate.d/audit" => {
                    Some(" ! Missing        etc/logrotate.d/audit".to_owned())
                }
                "etc/jaeger/jaeger.env" => {
                    Some(" * Identical      etc/jaeger/jaeger.env".to_owned())
                }
                // The operator's 0700 gives way to the default (issue 12: named).
                "etc/init.d/crontab" => Some(
                    " * Updated        etc/init.d/crontab\n   permissions 0700 -> 0755".to_owned(),
                ),
                p if a.contains_key(p) => Some(format!(" * Updated        {p}")),
                _ => None, // directories: unchanged
            };
            assert_eq!(e.status, line, "{}", e.path);
        }
        let perm_lines: Vec<_> = plan
            .entries
            .iter()
            .filter_map(|e| e.permission.as_ref()?.status.clone())
            .collect();
        assert_eq!(
            perm_lines,
            [" * Permissions    0644 -> 0640 etc/jaeger/jaeger.env"]
        );

        // The resulting tree.
        for (rel, content) in &b {
            let got = fs::read(site.join(rel));
            match rel.as_str() {
                "etc/logrotate.d/audit" => assert!(got.is_err()),
                ".bashrc" if policy == Policy::KeepOld => assert_eq!(got.unwrap(), bashrc),
                _ => assert_eq!(got.unwrap(), instantiate(content), "{rel}"),
            }
        }
        assert_eq!(
            mode(&site.join("etc/init.d/crontab")),
            0o755,
            "an update re-creates the file with the default mode"
        );
        assert_eq!(mode(&site.join("etc/jaeger/jaeger.env")), 0o640);
        assert_eq!(
            fs::read_to_string(site.join("etc/mine.conf")).unwrap(),
            "operator only\n"
        );
        assert_eq!(
            fs::read_link(site.join("version")).unwrap().to_str(),
            Some("../../versions/2.0.0")
        );
        assert_eq!(
            fs::read_to_string(site.join(".version_meta/version")).unwrap(),
            "2.0.0\n"
        );
        assert_eq!(
            fs::read(site.join(".version_meta/skel/.bashrc")).unwrap(),
            b[".bashrc"]
        );
        let top: BTreeSet<String> = fs::read_dir(&site)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            top,
            BTreeSet::from(
                // bin, include, lib, share: omd create's links into the version
                [
                    ".bashrc",
                    ".profile",
                    ".version_meta",
                    "bin",
                    "etc",
                    "include",
                    "lib",
                    "share",
                    "version",
                ]
                .map(String::from)
            )
        );
        let files: BTreeSet<String> = snapshot(&site)
            .into_iter()
            .filter(|(p, n)| !p.starts_with(".version_meta") && matches!(n, Node::File { .. }))
            .map(|(p, _)| p)
            .collect();
        let mut want: BTreeSet<String> = b
            .keys()
            .filter(|k| *k != "etc/logrotate.d/audit")
            .cloned()
            .collect();
        want.insert("etc/mine.conf".into());
        assert_eq!(files, want, "no helper files, nothing lost");
    }
}
