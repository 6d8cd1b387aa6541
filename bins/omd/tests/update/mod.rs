//! Runs the real `omd` binary against temporary OMD roots: `create`, `rm`,
//! `start`/`stop`/`status` and `update` with every policy, `--dry-run`,
//! `--json`, the checks of site-update.md §6 and the two real skeleton
//! versions of `../shared/corpus/skel`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::{Output, omd};

/// The extension-package step (`mkp disable-outdated`, `update-active`).
mod packages;

/// Signals, closed pipes, the lock, pending journals, phase scripts.
mod interrupt;

const OLD: &str = "2.3.0p1.cre";
const NEW: &str = "2.3.0p2.cre";
const SITE: &str = "mysite";

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// Every path below `dir` with its type, mode and content or link target.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("link {}", fs::read_link(&path).unwrap().display()),
                );
            } else if meta.is_dir() {
                out.insert(rel, format!("dir {mode:o}"));
                walk(base, &path, out);
            } else {
                let bytes = fs::read(&path).unwrap();
                out.insert(
                    rel,
                    format!("file {mode:o} {}", String::from_utf8_lossy(&bytes)),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// An OMD root with two versions of a small skeleton.
struct Fixture {
    tmp: tempfile::TempDir,
}

impl Fixture {
    /// Versions OLD and NEW (default NEW), no site yet.
    fn new() -> Self {
        Self::in_dir(tempfile::tempdir().unwrap())
    }

    /// As [`Fixture::new`], on a memory file system (`/dev/shm`) where
    /// there is one: for tests that run many updates (flushes are cheap there).
    fn in_memory() -> Self {
        let shm = Path::new("/dev/shm");
        Self::in_dir(if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        })
    }

    fn in_dir(tmp: tempfile::TempDir) -> Self {
        let fx = Self { tmp };
        fx.version(OLD, false);
        fx.version(NEW, true);
        symlink(
            fx.root().join("versions").join(NEW),
            fx.root().join("versions/default"),
        )
        .unwrap();
        fx
    }

    /// The library's update of the site from OLD to NEW (raw edition), for tests that
    /// drive its steps themselves.
    fn old_to_new_update(&self) -> site_merge::Update {
        let versions = self.root().join("versions");
        site_merge::Update::builder(
            self.site(),
            SITE,
            site_merge::Skeleton::for_site(&self.site(), &versions, OLD).edition("raw"),
            site_merge::Skeleton::of_version(&versions, NEW).edition("raw"),
        )
        .build()
        .unwrap()
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn site(&self) -> PathBuf {
        self.root().join("sites").join(SITE)
    }

    fn skel(&self, version: &str) -> PathBuf {
        self.root().join("versions").join(version).join("skel")
    }

    /// A skeleton; `new` selects the second version's contents.
    fn version(&self, version: &str, new: bool) {
        let skel = self.skel(version);
        let pick = |old: &'static str, new_text: &'static str| if new { new_text } else { old };
        write(
            &skel.join("etc/omd/site.conf"),
            "SITE=###SITE###\nROOT=###ROOT###\nEDITION=###EDITION###\n",
        );
        write(
            &skel.join("etc/merge.conf"),
            pick("a\nb\nc\nd\ne\nf\ng\nh\n", "a\nb\nc\nd\ne\nf\ng\nH\n"),
        );
        write(
            &skel.join("etc/conflict.conf"),
            pick("one\ntwo\nthree\n", "one\nTWO\nthree\n"),
        );
        write(&skel.join("etc/updated.conf"), pick("v1\n", "v2\n"));
        if new {
            write(&skel.join("etc/newfile.conf"), "new\n");
        } else {
            write(&skel.join("etc/obsolete.conf"), "obsolete\n");
        }
        write(&skel.join("etc/init.d/core"), "#!/bin/sh\n");
        chmod(&skel.join("etc/init.d/core"), 0o755);
        fs::create_dir_all(skel.join("etc/rc.d")).unwrap();
        symlink("../init.d/core", skel.join("etc/rc.d/80-core")).unwrap();
        fs::create_dir_all(skel.join("var/log")).unwrap();
        write(&skel.join("tmp/run/.keep"), "");
        write(
            &self
                .root()
                .join("versions")
                .join(version)
                .join("share/omd/skel.permissions"),
            "# relpath mode\netc/omd/site.conf 640\n",
        );
    }

    fn omd(&self, args: &[&str]) -> Output {
        omd(self.root(), args)
    }

    /// Creates the site on OLD and makes the operator's edits: a clean
    /// merge (etc/merge.conf), a conflict (etc/conflict.conf), an own file.
    fn site_with_edits(&self) {
        let out = self.omd(&["-V", OLD, "create", SITE]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let site = self.site();
        write(
            &site.join("etc/merge.conf"),
            "A (mine)\nb\nc\nd\ne\nf\ng\nh\n",
        );
        write(&site.join("etc/conflict.conf"), "one\nmine\nthree\n");
        write(&site.join("etc/mine.conf"), "operator only\n");
    }
}

const COMMON_LINES: [&str; 4] = [
    " * Merged         etc/merge.conf",
    " * Installed file etc/newfile.conf",
    " * Updated        etc/updated.conf",
    " * Vanished       etc/obsolete.conf",
];

fn assert_updated_common(fx: &Fixture, out: &Output) {
    for line in COMMON_LINES {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "missing {line:?} in\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.ends_with("Finished update.\n\n"),
        "{}",
        out.stdout
    );
    let site = fx.site();
    assert_eq!(
        fs::read_link(site.join("version")).unwrap(),
        Path::new("../../versions").join(NEW)
    );
    assert_eq!(
        read(&site.join("etc/merge.conf")),
        "A (mine)\nb\nc\nd\ne\nf\ng\nH\n"
    );
    assert_eq!(read(&site.join("etc/updated.conf")), "v2\n");
    assert_eq!(read(&site.join("etc/newfile.conf")), "new\n");
    assert!(!site.join("etc/obsolete.conf").exists());
    assert_eq!(read(&site.join("etc/mine.conf")), "operator only\n");
    let log = read(&site.join("var/log/update.log"));
    let first = log.lines().next().unwrap();
    assert!(
        first.ends_with(&format!(
            " - Updating site '{SITE}' from version {OLD} to {NEW}..."
        )),
        "{first}"
    );
    let stamp: Vec<char> = first.chars().take(19).collect();
    for (i, c) in stamp.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, '-', "{first}"),
            10 => assert_eq!(*c, ' ', "{first}"),
            13 | 16 => assert_eq!(*c, ':', "{first}"),
            _ => assert!(c.is_ascii_digit(), "{first}"),
        }
    }
    assert_eq!(&first[19..22], " - ", "{first}");
    assert!(log.contains(" * Merged         etc/merge.conf\n"), "{log}");
    assert!(log.ends_with("Finished update.\n\n"), "{log}");
    // No helper files of Checkmk's merge are left behind.
    let snap = snapshot(&site);
    assert!(
        !snap.keys().any(|k| k.ends_with(".orig")
            || k.ends_with(&format!("-{OLD}"))
            || k.ends_with(&format!("-{NEW}"))),
        "{snap:#?}"
    );
}

#[test]
fn create_builds_the_site_from_the_version_skeleton() {
    let fx = Fixture::new();
    let out = fx.omd(&["-V", OLD, "create", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert!(
        out.stdout
            .starts_with(&format!("Created new site {SITE} with version {OLD}.\n")),
        "{}",
        out.stdout
    );
    let site = fx.site();
    let home = std::path::absolute(&site).unwrap();
    assert_eq!(
        read(&site.join("etc/omd/site.conf")),
        format!("SITE={SITE}\nROOT={}\nEDITION=raw\n", home.display())
    );
    assert_eq!(
        mode(&site.join("etc/omd/site.conf")),
        0o640,
        "skel.permissions"
    );
    assert_eq!(
        mode(&site.join("etc/init.d/core")),
        0o640,
        "not in skel.permissions: 0640 (Checkmk's get_skel_permissions)"
    );
    assert_eq!(
        fs::read_link(site.join("etc/rc.d/80-core")).unwrap(),
        Path::new("../init.d/core")
    );
    assert_eq!(
        fs::read_link(site.join("version")).unwrap(),
        Path::new("../../versions").join(OLD)
    );
    let out = fx.omd(&["sites"]);
    assert_eq!(out.stdout, format!("{SITE:<16} {OLD:<16}  \n"));
    let out = fx.omd(&["version", SITE]);
    assert_eq!(
        out.stdout,
        format!("OMD - Open Monitoring Distribution Version {OLD}\n")
    );

    // Without -V the default version is used.
    let out = fx.omd(&["create", "second"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        fs::read_link(fx.root().join("sites/second/version")).unwrap(),
        Path::new("../../versions").join(NEW)
    );
}

#[test]
fn create_refuses_existing_sites_invalid_names_and_unknown_versions() {
    let fx = Fixture::new();
    assert_eq!(fx.omd(&["create", SITE]).code, 0);
    let before = snapshot(fx.root());
    let out = fx.omd(&["create", SITE]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Site 'mysite' already existing.\n")
    );
    let out = fx.omd(&["create", "0abc"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("Invalid site name \"0abc\""),
        "{}",
        out.stderr
    );
    let out = fx.omd(&["-V", "9.9.9.cre", "create", "other"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Version '9.9.9.cre' is not installed.\n")
    );
    assert_eq!(snapshot(fx.root()), before);
}

#[test]
fn rm_needs_force_without_a_terminal() {
    let fx = Fixture::new();
    assert_eq!(fx.omd(&["create", SITE]).code, 0);
    let out = fx.omd(&["rm", SITE]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("stdin is not a terminal"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("omd -f rm mysite"), "{}", out.stderr);
    assert!(fx.site().join("version").exists());

    let out = fx.omd(&["-f", "rm", SITE]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Removed site mysite.\n")
    );
    assert!(!fx.site().exists());
    assert!(!fx.root().join("apache/mysite.conf").exists());
    let out = fx.omd(&["-f", "rm", SITE]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "No such site: mysite\n")
    );
}

#[test]
fn start_stop_status_flip_the_state_file() {
    let fx = Fixture::new();
    assert_eq!(fx.omd(&["create", SITE]).code, 0);
    let out = fx.omd(&["status", SITE]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (1, "Overall state:  stopped\n")
    );
    assert_eq!(fx.omd(&["start", SITE]).code, 0);
    assert_eq!(read(&fx.site().join("tmp/run/omd-state")), "started\n");
    let out = fx.omd(&["status", SITE]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Overall state:  running\n")
    );
    // A running site is neither updated nor removed without -f.
    let out = fx.omd(&["update", "--conflict=install", SITE]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Please completely stop 'mysite' before updating it.\n")
    );
    assert_eq!(fx.omd(&["rm", SITE]).code, 1);
    assert_eq!(fx.omd(&["stop", SITE]).code, 0);
    assert_eq!(fx.omd(&["status", SITE]).code, 1);
    assert_eq!(fx.omd(&["update", "--conflict=install", SITE]).code, 0);
}

/// `--merge`: Checkmk's patch method by default, `--merge=git` the stricter
/// git-exact merge (a one-line file rewritten upstream, a line added after it
/// by the operator: GNU patch merges it, git reports a conflict).
#[test]
fn update_merges_like_checkmk_by_default_and_strictly_with_merge_git() {
    let cases: [(&[&str], &str, &str); 3] = [
        (&[], " * Merged         etc/updated.conf", "v2\nmine\n"),
        (
            &["--merge=patch"],
            " * Merged         etc/updated.conf",
            "v2\nmine\n",
        ),
        (
            &["--merge=git"],
            "Conflicts in etc/updated.conf! -> restore",
            "v1\nmine\n",
        ),
    ];
    for (extra, line, content) in cases {
        let fx = Fixture::new();
        fx.site_with_edits();
        write(&fx.site().join("etc/updated.conf"), "v1\nmine\n");
        let mut args = vec!["update", "--conflict=keepold"];
        args.extend_from_slice(extra);
        args.push(SITE);
        let out = fx.omd(&args);
        assert_eq!(out.code, 0, "{extra:?}: {}", out.stderr);
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{extra:?}: {}",
            out.stdout
        );
        assert_eq!(
            read(&fx.site().join("etc/updated.conf")),
            content,
            "{extra:?}"
        );
    }
    let fx = Fixture::new();
    fx.site_with_edits();
    let out = fx.omd(&["update", "--merge=diff3", SITE]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown merge method"),
        "{}",
        out.stderr
    );
}

#[test]
fn update_with_keepold_keeps_the_operators_conflicting_file() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let out = fx.omd(&["update", "--conflict=keepold", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    assert_updated_common(&fx, &out);
    // The status line does not name the path: the line before it does, in
    // the output and in the log (as after the interactive menu).
    let named = "Conflicts in etc/conflict.conf! -> restore\nRestored your version.\n";
    assert!(out.stdout.contains(named), "{}", out.stdout);
    assert!(read(&fx.site().join("var/log/update.log")).contains(named));
    assert_eq!(
        read(&fx.site().join("etc/conflict.conf")),
        "one\nmine\nthree\n"
    );
}

#[test]
fn update_with_install_takes_the_new_default() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let out = fx.omd(&["update", "--conflict", "install", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    assert_updated_common(&fx, &out);
    let named = format!(
        "Conflicts in etc/conflict.conf! -> install\nInstalled default file of version {NEW}.\n"
    );
    assert!(out.stdout.contains(&named), "{}", out.stdout);
    assert!(read(&fx.site().join("var/log/update.log")).contains(&named));
    assert_eq!(
        read(&fx.site().join("etc/conflict.conf")),
        "one\nTWO\nthree\n"
    );
}

#[test]
fn update_with_abort_leaves_the_site_unchanged() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let mut before = snapshot(&fx.site());
    let out = fx.omd(&["update", "--conflict=abort", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (1, "Update aborted.\n"));
    assert!(
        out.stdout
            .contains(" ! Conflict at etc/conflict.conf: --conflict=abort stops the update here."),
        "{}",
        out.stdout
    );
    let mut after = snapshot(&fx.site());
    let log = after.remove("var/log/update.log").unwrap();
    assert!(log.ends_with("Update aborted.\n"), "{log}");
    before.remove("var/log/update.log");
    assert_eq!(after, before);
}

#[test]
fn update_with_ask_needs_a_terminal() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let before = snapshot(fx.root());
    for args in [&["update", SITE][..], &["update", "--conflict=ask", SITE]] {
        let out = fx.omd(args);
        assert_eq!(out.code, 1);
        assert!(
            out.stderr
                .starts_with("--conflict=ask asks on the terminal, but stdin is not a terminal."),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("--conflict=keepold"));
    }
    let out = fx.omd(&["update", "--conflict=ignore", SITE]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Argument to --conflict must be one of ask, install, keepold and abort.\n"
        )
    );
    assert_eq!(snapshot(fx.root()), before);
}

#[test]
fn dry_run_prints_plan_and_questions_and_changes_nothing() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let before = snapshot(fx.root());
    for policy in ["ask", "keepold", "install", "abort"] {
        let out = fx.omd(&["update", "--dry-run", &format!("--conflict={policy}"), SITE]);
        assert_eq!(snapshot(fx.root()), before, "policy {policy}");
        assert_eq!(out.stderr, "", "policy {policy}");
        for line in COMMON_LINES {
            assert!(
                out.stdout.lines().any(|l| l == line),
                "{line:?} {policy}\n{}",
                out.stdout
            );
        }
        assert!(
            out.stdout
                .contains("\nQuestions:\n Conflicts in etc/conflict.conf ["),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("Nothing was changed.\n"),
            "{}",
            out.stdout
        );
        assert!(!out.stdout.contains("Finished update."));
        match policy {
            "ask" | "abort" => {
                assert!(
                    out.stdout
                        .contains(" Conflicts in etc/conflict.conf [open]\n")
                );
                assert!(out.stdout.contains("   I've tried to merge the changes from version 2.3.0p1.cre to 2.3.0p2.cre into etc/conflict.conf.\n"), "{}", out.stdout);
                assert!(out.stdout.contains(
                    "d diff: Show differences between the new default and your version | "
                ));
                assert!(out.stdout.contains("(1 open)"));
            }
            "keepold" => assert!(
                out.stdout
                    .contains(" Conflicts in etc/conflict.conf [restore]\n")
            ),
            _ => assert!(
                out.stdout
                    .contains(" Conflicts in etc/conflict.conf [install]\n")
            ),
        }
        let expected_code = if policy == "abort" { 1 } else { 0 };
        assert_eq!(out.code, expected_code, "{policy}");
    }
}

#[test]
fn json_report_lists_every_outcome() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let before = snapshot(fx.root());
    let out = fx.omd(&["update", "--dry-run", "--json", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(snapshot(fx.root()), before);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["site"], SITE);
    assert_eq!(doc["from_version"], OLD);
    assert_eq!(doc["to_version"], NEW);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["policy"], "ask");
    assert_eq!(doc["result"], "planned");
    assert_eq!(doc["unresolved"], 1);
    let outcome = |path: &str| -> String {
        doc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == path)
            .unwrap_or_else(|| panic!("{path} in {doc}"))["outcome"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(outcome("etc/merge.conf"), "merged");
    assert_eq!(outcome("etc/conflict.conf"), "pending");
    assert_eq!(outcome("etc/updated.conf"), "updated");
    assert_eq!(outcome("etc/newfile.conf"), "installed");
    assert_eq!(outcome("etc/obsolete.conf"), "vanished");
    assert_eq!(outcome("etc/init.d/core"), "unchanged");

    // A real update with --json: only the document on stdout.
    let out = fx.omd(&["update", "--json", "--conflict=install", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["result"], "finished");
    assert_eq!(doc["recovery"]["result"], "clean");
    let entry = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "etc/conflict.conf")
        .unwrap()
        .clone();
    assert_eq!(entry["outcome"], "installed_default");
    assert_eq!(entry["conflict"]["answer"], "install");
    assert!(read(&fx.site().join("var/log/update.log")).contains("Finished update."));
    // --json with the interactive mode is refused.
    let out = fx.omd(&["update", "--json", SITE]);
    assert_eq!(out.code, 1);
}

#[test]
fn incompatible_versions_are_refused_with_checkmks_text_and_f_overrides() {
    let fx = Fixture::new();
    fx.version("2.1.0p1.cre", false);
    let out = fx.omd(&["-V", "2.1.0p1.cre", "create", SITE]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let before = snapshot(fx.root());
    let out = fx.omd(&["update", "--conflict=install", SITE]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "ERROR: You are trying to update from 2.1.0p1.cre to 2.3.0p2.cre which is not supported. \
         Reason: Target version too new (one major version jump at maximum).\n\n\
         * Major downgrades are not supported\n\
         * Major version updates need to be done step by step.\n\n\
         If you are really sure about what you are doing, you can still do the update with '-f'.\n\
         You can execute the command in the following way:\n\
         'omd -f update' or 'omd --force update'But you will be on your own from there.\n"
    );
    assert_eq!(snapshot(fx.root()), before);

    let out = fx.omd(&["-f", "update", "--conflict=install", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    assert!(out.stdout.contains(" ! Updating from 2.1.0p1.cre to 2.3.0p2.cre although it is not supported (-f): Target version too new"), "{}", out.stdout);
    assert!(out.stdout.ends_with("Finished update.\n\n"));
    assert_eq!(
        fs::read_link(fx.site().join("version")).unwrap(),
        Path::new("../../versions").join(NEW)
    );
}

#[test]
fn target_version_checks() {
    let fx = Fixture::new();
    assert_eq!(fx.omd(&["-V", OLD, "create", SITE]).code, 0);
    let out = fx.omd(&["-V", OLD, "update", "--conflict=install", SITE]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Site already has version 2.3.0p1.cre.\n")
    );
    let out = fx.omd(&["-V", "2.3.0p9.cre", "update", "--conflict=install", SITE]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Version '2.3.0p9.cre' is not installed.\n")
    );
    let out = fx.omd(&["update", "--conflict=install", "nosite"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "No such site: nosite\n")
    );
    // Updated to the default; then the only other version is the target (a downgrade within 2.3.0).
    assert_eq!(fx.omd(&["update", "--conflict=install", SITE]).code, 0);
    let out = fx.omd(&["update", "--conflict=install", SITE]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        read(&fx.site().join("var/log/update.log"))
            .contains(&format!("from version {NEW} to {OLD}..."))
    );
}

#[test]
fn edition_change_needs_confirmation_without_a_terminal() {
    let fx = Fixture::new();
    fx.version("2.3.0p2.cee", true);
    assert_eq!(fx.omd(&["-V", OLD, "create", SITE]).code, 0);
    let out = fx.omd(&["-V", "2.3.0p2.cee", "update", "--conflict=install", SITE]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(
            "You are updating from Raw Edition to Enterprise Edition. Is this intended?\n"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--confirm-edition"));
    let out = fx.omd(&[
        "-V",
        "2.3.0p2.cee",
        "update",
        "--conflict=install",
        "--confirm-edition",
        SITE,
    ]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert!(read(&fx.site().join("etc/omd/site.conf")).ends_with("EDITION=enterprise\n"));

    // Managed to anything else is refused unless -f.
    fx.version("2.3.0p3.cme", true);
    fx.version("2.3.0p4.cee", true);
    assert_eq!(fx.omd(&["-V", "2.3.0p3.cme", "create", "msp"]).code, 0);
    let out = fx.omd(&[
        "-V",
        "2.3.0p4.cee",
        "update",
        "--conflict=install",
        "--confirm-edition",
        "msp",
    ]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "ERROR: Updating from managed to enterprise is not possible. Aborted.\n"
        )
    );
}

/// Copies `corpus/skel/<idx>/omd/packages/*/skel/**` into one skeleton;
/// returns the relative paths of the files.
fn assemble(corpus: &Path, idx: &str, skel: &Path) -> Vec<String> {
    fn copy(from: &Path, to: &Path, rel: &Path, files: &mut Vec<String>) {
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let (src, rel) = (entry.path(), rel.join(entry.file_name()));
            if src.is_dir() {
                copy(&src, to, &rel, files);
            } else {
                write(&to.join(&rel), "");
                fs::copy(&src, to.join(&rel)).unwrap();
                files.push(rel.display().to_string());
            }
        }
    }
    let mut files = Vec::new();
    for package in fs::read_dir(corpus.join(idx).join("omd/packages")).unwrap() {
        let dir = package.unwrap().path().join("skel");
        if dir.is_dir() {
            copy(&dir, skel, Path::new(""), &mut files);
        }
    }
    files.sort();
    files
}

#[test]
fn update_between_the_two_real_skeleton_versions_with_operator_edits() {
    let corpus = testkit::require_shared!("corpus/skel");
    for policy in ["keepold", "install"] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let (old_skel, new_skel) = (
            root.join("versions").join(OLD).join("skel"),
            root.join("versions").join(NEW).join("skel"),
        );
        let files = assemble(&corpus, "idx-a", &old_skel);
        assert_eq!(files, assemble(&corpus, "idx-b", &new_skel));
        assert_eq!(files.len(), 29);
        symlink(
            root.join("versions").join(NEW),
            root.join("versions/default"),
        )
        .unwrap();

        let out = omd(root, &["-V", OLD, "create", SITE]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let site = root.join("sites").join(SITE);
        // Operator edits: a line added to .bashrc, a file removed, a file
        // already changed to the new default, an own file.
        let mut bashrc = read(&site.join(".bashrc"));
        bashrc.push_str("alias ll='ls -l'\n");
        fs::write(site.join(".bashrc"), &bashrc).unwrap();
        fs::remove_file(site.join("etc/logrotate.d/audit")).unwrap();
        let home = std::path::absolute(&site).unwrap().display().to_string();
        let instantiate = |text: &str| {
            text.replace("###SITE###", SITE)
                .replace("###ROOT###", &home)
                .replace("###EDITION###", "raw")
        };
        let jaeger = instantiate(&read(&new_skel.join("etc/jaeger/jaeger.env")));
        fs::write(site.join("etc/jaeger/jaeger.env"), &jaeger).unwrap();
        write(&site.join("etc/mine.conf"), "operator only\n");

        let out = omd(root, &["update", &format!("--conflict={policy}"), SITE]);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
        let lines: Vec<&str> = out.stdout.lines().collect();
        for rel in &files {
            let expected = match rel.as_str() {
                ".bashrc" => continue,
                "etc/logrotate.d/audit" => format!(" ! Missing        {rel}"),
                "etc/jaeger/jaeger.env" => format!(" * Identical      {rel}"),
                _ => format!(" * Updated        {rel}"),
            };
            assert!(
                lines.contains(&expected.as_str()),
                "{expected:?} ({policy})\n{}",
                out.stdout
            );
            if rel != "etc/logrotate.d/audit" {
                assert_eq!(
                    read(&site.join(rel)),
                    instantiate(&read(&new_skel.join(rel))),
                    "{rel}"
                );
            }
        }
        // .bashrc: merged cleanly (the operator's line is kept with the new
        // default), or a conflict resolved by the policy.
        let bashrc_now = read(&site.join(".bashrc"));
        if lines.contains(&" * Merged         .bashrc") {
            assert!(bashrc_now.ends_with("alias ll='ls -l'\n"));
            assert!(bashrc_now.len() > bashrc.len());
        } else if policy == "keepold" {
            assert!(
                out.stdout
                    .contains("Conflicts in .bashrc! -> restore\nRestored your version.\n"),
                "{}",
                out.stdout
            );
            assert_eq!(bashrc_now, bashrc);
        } else {
            assert!(out.stdout.contains(&format!(
                "Conflicts in .bashrc! -> install\nInstalled default file of version {NEW}.\n"
            )));
        }
        assert!(!site.join("etc/logrotate.d/audit").exists());
        assert_eq!(read(&site.join("etc/mine.conf")), "operator only\n");
        assert_eq!(out.stdout.lines().last(), Some(""));
        assert!(out.stdout.ends_with("Finished update.\n\n"));
        assert_eq!(
            fs::read_link(site.join("version")).unwrap(),
            Path::new("../../versions").join(NEW)
        );
    }
}

/// In the keys of [`omd_typing`]: wait a moment before typing on.
const PAUSE: char = '\u{1}';

/// Runs `omd ARGS` on a pseudo-terminal (util-linux `script`) and types
/// `keys`; returns (exit code, output with `\r\n` as `\n`), or `None` (and a
/// skip message) when `script` is not available.
fn omd_typing(root: &Path, args: &str, keys: &str) -> Option<(i32, String)> {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let command = format!(
        "'{}' --root '{}' {args}",
        env!("CARGO_BIN_EXE_omd"),
        root.display()
    );
    let Ok(mut child) = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("PAGER", "cat")
        .env("NO_COLOR", "1")
        .env_remove("OMD_ROOT_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        testkit::require(
            false,
            "util-linux `script` (to provide a terminal)",
            "apt-get install util-linux",
        );
        return None;
    };
    let mut stdin = child.stdin.take().unwrap();
    // `PAUSE` in `keys` waits for the program (a shell started by the menu
    // must be reading before it gets its input).
    for (i, chunk) in keys.split(PAUSE).enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(800));
        }
        stdin.write_all(chunk.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        out
    });
    // Keep stdin open until the program ends (or give up after 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("omd {args} did not finish with keys {keys:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    let out = as_shown(&reader.join().unwrap());
    if status.code() == Some(127) || out.contains("script: ") {
        testkit::skip(&format!("`script` cannot run here: {out}"));
        return None;
    }
    Some((status.code().unwrap(), out))
}

/// Terminal output as it stays on the screen: `\r\n` as `\n`, and a line
/// redrawn with `\r` (the progress line) shows only its last part, with
/// the erase-line code `ESC[K` removed.
fn as_shown(raw: &str) -> String {
    raw.replace("\r\n", "\n")
        .split('\n')
        .map(|line| line.rsplit('\r').next().unwrap_or("").replace("\x1b[K", ""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn interactive_menu_on_a_terminal() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let before = snapshot(&fx.site());
    // `y` confirms the update, `x` is ignored, `a` aborts at the conflict.
    let Some((code, out)) = omd_typing(fx.root(), &format!("update {SITE}"), "yxa") else {
        return;
    };
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Y/n ==> y\n"), "{out}");
    assert!(out.contains("d/y/n/e/t/k/r/i/s/a ==> a\n"), "{out}");
    assert!(out.contains("Update aborted."), "{out}");
    let mut after = snapshot(&fx.site());
    after.remove("var/log/update.log");
    let mut before = before;
    before.remove("var/log/update.log");
    assert_eq!(after, before);

    // `d` shows the diff through $PAGER, `r` restores the operator's file.
    let Some((code, out)) = omd_typing(fx.root(), &format!("update {SITE}"), "ydr") else {
        return;
    };
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\n Conflicts in etc/conflict.conf!\n"),
        "{out}"
    );
    assert!(
        out.contains(" diff       Show differences between the new default and your version\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "--- etc/conflict.conf.orig\n+++ etc/conflict.conf-{NEW}\n@@ -1,3 +1,3 @@\n one\n-mine\n+TWO\n three\n"
        )),
        "{out}"
    );
    assert!(
        out.contains("Conflicts in etc/conflict.conf! -> restore\nRestored your version.\n"),
        "{out}"
    );
    assert!(out.ends_with("Finished update.\n\n"), "{out}");
    assert_eq!(
        read(&fx.site().join("etc/conflict.conf")),
        "one\nmine\nthree\n"
    );
    // The menu and the answers are in the update log too, without colours.
    let log = read(&fx.site().join("var/log/update.log"));
    assert!(
        log.contains(" restore    Restore your original version of the file\n"),
        "{log}"
    );
    assert!(log.contains("d/y/n/e/t/k/r/i/s/a ==> r\n"), "{log}");
    assert!(!log.contains('\x1b'), "{log}");

    // `k` keeps the conflict markers: Checkmk prints no status line for it,
    // so the line naming the question and the answer is the only one.
    let fx = Fixture::new();
    fx.site_with_edits();
    let Some((code, out)) = omd_typing(fx.root(), &format!("update {SITE}"), "yk") else {
        return;
    };
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\nConflicts in etc/conflict.conf! -> keep\n"),
        "{out}"
    );
    assert!(read(&fx.site().join("etc/conflict.conf")).contains("<<<<<<<"));
    assert!(
        read(&fx.site().join("var/log/update.log"))
            .contains("\nConflicts in etc/conflict.conf! -> keep\n")
    );
}

/// The merge engine for driving the library directly in a test.
struct Engine;

impl site_merge::TextMerger for Engine {
    fn merge(
        &self,
        base: &[u8],
        ours: &[u8],
        theirs: &[u8],
    ) -> Result<site_merge::MergedText, site_merge::MergeFailure> {
        let out = site_merge::merge(base, ours, theirs)?;
        Ok(site_merge::MergedText {
            text: out.bytes,
            conflicts: out.conflicts,
        })
    }
}

#[test]
fn an_interrupted_update_is_recovered_first() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let before = snapshot(&fx.site());
    // An update that "crashes" after three operations, leaving its journal.
    let update = fx.old_to_new_update();
    let plan = update
        .plan(&Engine, &mut site_merge::Policy::Install)
        .unwrap();
    let err = update
        .apply(
            &plan,
            &site_merge::ApplyOptions::new().fault(site_merge::Fault::CrashAfter(3)),
        )
        .unwrap_err();
    assert!(
        matches!(err, site_merge::Error::SimulatedCrash { .. }),
        "{err}"
    );
    assert_ne!(snapshot(&fx.site()), before, "half-updated");

    // A dry run does not touch the journal.
    let out = fx.omd(&["update", "--dry-run", "--conflict=keepold", SITE]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("holds the journal of an interrupted update"),
        "{}",
        out.stderr
    );

    let out = fx.omd(&["update", "--conflict=keepold", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    let message = format!(
        "An interrupted update from {OLD} to {NEW} was rolled back; the site is at version {OLD} as before.\n"
    );
    assert!(out.stdout.starts_with(&message), "{}", out.stdout);
    assert!(out.stdout.ends_with("Finished update.\n\n"));
    assert_eq!(
        read(&fx.site().join("etc/conflict.conf")),
        "one\nmine\nthree\n"
    );
    let log = read(&fx.site().join("var/log/update.log"));
    assert!(log.contains(&message), "{log}");
}

#[test]
fn help_documents_the_update_exit_codes() {
    let fx = Fixture::new();
    let out = fx.omd(&["--help"]);
    let text = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("`Update aborted.`"), "{text}");
    assert!(text.contains("rolled back"), "{text}");
    assert!(text.contains("3 `update`: the site was updated"), "{text}");
    let out = fx.omd(&["update", "--help"]);
    let text = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for word in [
        "--conflict <MODE>",
        "--dry-run",
        "--json",
        "--confirm-edition",
        "var/log/update.log",
        "mkp disable-outdated",
        "mkp update-active",
        "var/check_mk/packages_local",
        "local/share/check_mk/enabled_packages",
        "the exit code is 3",
        "`packages`",
    ] {
        assert!(text.contains(word), "{word} in {text}");
    }
}

#[test]
fn the_shell_opens_in_the_site_and_keeps_an_edit() {
    let fx = Fixture::new();
    fx.site_with_edits();
    // `y` confirms; `s` opens the shell in the site's etc/, where the
    // operator fixes the file first with markers left (asked again), then
    // for good.
    let keys = "\u{1}y\u{1}s\u{1}\
        printf '<<<<<<< x\\n' > conflict.conf; exit\n\u{1}\
        s\u{1}\
        printf 'one\\nfixed\\nthree\\n' > conflict.conf; exit\n";
    let Some((code, out)) = omd_typing(fx.root(), &format!("update {SITE}"), keys) else {
        return;
    };
    assert_eq!(code, 0, "{out}");
    let etc = fx.site().join("etc");
    assert!(
        out.contains(
            " Your version of etc/conflict.conf is conflict.conf here: edit it to the result you want.\n The other versions:\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!("conflict.conf-{OLD} (the default of {OLD})\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!(" Starting BASH in {}.", etc.display())),
        "{out}"
    );
    assert!(
        out.contains(" etc/conflict.conf still has conflict markers; choose again.\n"),
        "{out}"
    );
    assert!(
        out.contains(" Using your edited etc/conflict.conf.\n"),
        "{out}"
    );
    assert_eq!(read(&etc.join("conflict.conf")), "one\nfixed\nthree\n");
    assert!(out.ends_with("Finished update.\n\n"), "{out}");
}

#[test]
fn target_version_selection_list_and_downgrade_confirmation_on_a_terminal() {
    let fx = Fixture::new();
    assert_eq!(fx.omd(&["create", SITE]).code, 0);
    // The site has the default version NEW; the only other one is older.
    let Some((code, out)) =
        omd_typing(fx.root(), &format!("update --conflict=install {SITE}"), "n")
    else {
        return;
    };
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            " Downgrade\n\n The site {SITE} has version {NEW}; the only other installed version,\n {OLD}, is older."
        )),
        "{out}"
    );
    assert!(out.contains("y/N ==> n\n"), "{out}");
    assert!(out.contains("Aborted."), "{out}");

    // Several others: Checkmk's selection list, newest first.
    fx.version("2.3.0p3.cre", true);
    let Some((code, out)) = omd_typing(
        fx.root(),
        &format!("update --conflict=install {SITE}"),
        "1\u{1}y",
    ) else {
        return;
    };
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(" Choose target version\n\n Please choose the version this site should be updated to\n\n 1  Version 2.3.0p3.cre\n 2  Version 2.3.0p1.cre\n c  Cancel\nUpdate now: 1/2/c ==> 1\n"),
        "{out}"
    );
    assert_eq!(
        fs::read_link(fx.site().join("version")).unwrap(),
        Path::new("../../versions/2.3.0p3.cre")
    );
}

#[test]
fn diff_lists_the_operators_changes_against_the_skeleton() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let site = fx.site();
    chmod(&site.join("etc/updated.conf"), 0o600);
    fs::remove_file(site.join("etc/obsolete.conf")).unwrap();
    write(&site.join("var/log/other.log"), "data\n");
    let out = fx.omd(&["diff", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(
        out.stdout,
        " * Changed        etc/conflict.conf\n\
         * Changed        etc/merge.conf\n\
         * Added          etc/mine.conf\n\
         ! Removed        etc/obsolete.conf\n\
         * Permissions    0640 -> 0600 etc/updated.conf\n"
            .replace("\n*", "\n *")
            .replace("\n!", "\n !")
    );
    // A path limits it; --json has the same as a document.
    let out = fx.omd(&["diff", SITE, "etc/merge.conf"]);
    assert_eq!(out.stdout, " * Changed        etc/merge.conf\n");
    let out = fx.omd(&["diff", "--json", SITE, "etc"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["version"], OLD);
    assert_eq!(doc["differences"].as_array().unwrap().len(), 5, "{doc}");
    assert_eq!(doc["differences"][4]["kind"], "permissions");
    assert_eq!(doc["differences"][4]["site"], "0600");
    let out = fx.omd(&["diff", SITE, "etc/nothing"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("is not part of the skeleton"),
        "{}",
        out.stderr
    );
}
