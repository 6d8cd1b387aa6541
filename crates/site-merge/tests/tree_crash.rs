//! Crash safety: injected faults at every operation, simulated crashes and
//! real SIGKILLs of a child process, then recovery. The site must end exactly
//! as before or exactly as after a clean update.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use site_merge::{
    Applied, ApplyOptions, Error, Fault, JOURNAL_DIR, Plan, Policy, Recovery, Update, recover,
};

/// A site whose update touches every kind of path: updated files, an
/// installed file/dir/link, a vanished directory, a directory replaced by a
/// file, an updated link, a clean merge, a permission change to 0754, a
/// replaced operator file, a removed non-empty directory, `.version_meta`.
fn crash_fixture(extra: usize) -> Fx {
    let fx = Fx::new();
    let (o, n, s) = (fx.old_skel(), fx.new_skel(), fx.site());
    for i in 0..extra + 3 {
        let rel = format!("etc/u/{i:04}");
        file(&o, &rel, &format!("old {i}\n"));
        file(&n, &rel, &format!("new {i} ###SITE###\n"));
        file(&s, &rel, &format!("old {i}\n"));
    }
    file(&o, "etc/gone/f", "x\n");
    file(&s, "etc/gone/f", "x\n");
    file(&n, "etc/newdir/f", "###ROOT###\n");
    link(&n, "etc/newlink", "../u/0000");
    file(&o, "etc/d2f/inner", "i\n");
    file(&s, "etc/d2f/inner", "i\n");
    file(&n, "etc/d2f", "now a file\n");
    link(&o, "etc/l", "u/0000");
    link(&n, "etc/l", "u/0001");
    link(&s, "etc/l", "u/0000");
    file(&o, "etc/m", "1\n2\n");
    file(&n, "etc/m", "1\nTWO\n");
    file(&s, "etc/m", "ONE\n2\n");
    for root in [&o, &n, &s] {
        dir(root, "etc/pd");
        chmod(root, "etc/pd", 0o755);
    }
    chmod(&n, "etc/pd", 0o754);
    // Unlisted paths get 0640/0750; the changed default is listed.
    permissions(&o, "etc/pd 755\n");
    permissions(&n, "etc/pd 754\n");
    file(&n, "etc/r03", "new\n");
    file(&s, "etc/r03", "mine\n");
    file(&o, "etc/r07/default", "d\n");
    file(&s, "etc/r07/default", "d\n");
    file(&s, "etc/r07/mine", "m\n");
    file(&s, ".version_meta/version", "1.0.0\n");
    file(&s, ".version_meta/skel/etc/x", "old meta\n");
    file(&s, "etc/operator.conf", "untouched\n");
    chmod(&s, "", 0o751);
    fx
}

/// The update of a fixture, planned with `Policy::Install`.
struct PlannedInstall {
    up: Update,
    plan: Plan,
}

impl PlannedInstall {
    fn of(fx: &Fx) -> Self {
        let up = fx.update();
        let plan = up.plan(&LineMerger, &mut Policy::Install).unwrap();
        Self { up, plan }
    }

    /// Applies the plan without fsync.
    fn apply(&self) -> site_merge::Result<Applied> {
        self.up.apply(&self.plan, &ApplyOptions::new().sync(false))
    }

    /// Applies the plan without fsync and with `fault` injected; returns the error it ends with.
    fn apply_with_fault(&self, fault: Fault) -> Error {
        self.up
            .apply(&self.plan, &ApplyOptions::new().sync(false).fault(fault))
            .unwrap_err()
    }
}

/// Asserts that recovery rolls the interrupted update back (from OLD to NEW) and that the
/// whole fixture is then exactly `before`; `context` says what interrupted the update.
#[track_caller]
fn assert_recovery_rolls_back(fx: &Fx, before: &BTreeMap<String, Node>, context: &str) {
    assert_eq!(
        recover(&fx.site()).unwrap(),
        Recovery::RolledBack {
            from: OLD.into(),
            to: NEW.into()
        }
    );
    assert_eq!(snapshot(fx.root()), *before, "{context}");
}

/// The snapshot after a clean update of `crash_fixture(extra)`, and the number of operations.
fn clean_result(extra: usize) -> (BTreeMap<String, Node>, usize) {
    let fx = crash_fixture(extra);
    let applied = PlannedInstall::of(&fx).apply().unwrap();
    (snapshot(fx.root()), applied.operations)
}

#[test]
fn clean_update_of_the_crash_fixture() {
    let fx = crash_fixture(0);
    let plan = fx.run_policy(Policy::Install);
    assert_eq!(fx.read("etc/u/0000"), "new 0 s\n");
    assert_eq!(fx.read("etc/newdir/f"), "/omd/sites/s\n");
    assert_eq!(fx.read("etc/d2f"), "now a file\n");
    assert_eq!(fx.read("etc/m"), "ONE\nTWO\n");
    assert_eq!(fx.mode("etc/pd"), 0o754);
    assert!(!fx.exists("etc/gone") && !fx.exists("etc/r07"));
    assert_eq!(fx.read(".version_meta/version"), "2.0.0\n");
    assert!(!fx.exists(".version_meta/skel/etc/x"));
    assert!(!fx.exists(JOURNAL_DIR), "the journal is gone after success");
    assert_eq!(fx.mode(""), 0o751);
    assert!(plan.changes() > 10);
}

#[test]
fn injected_failure_before_every_operation_rolls_back_exactly() {
    let (clean, ops) = clean_result(0);
    assert!(ops > 15, "{ops}");
    for k in 0..ops {
        let fx = crash_fixture(0);
        let before = snapshot(fx.root());
        let err = PlannedInstall::of(&fx).apply_with_fault(Fault::FailAfter(k));
        match &err {
            Error::RolledBack { source } => {
                assert!(matches!(**source, Error::Injected { ops, .. } if ops == k))
            }
            other => panic!("{other}"),
        }
        assert_eq!(
            snapshot(fx.root()),
            before,
            "after a failure before operation {k}"
        );
        // And the update still works afterwards.
        PlannedInstall::of(&fx).apply().unwrap();
        assert_eq!(snapshot(fx.root()), clean);
    }
}

#[test]
fn real_io_error_midway_rolls_back_exactly() {
    let fx = crash_fixture(5);
    let before = snapshot(&fx.site());
    let install = PlannedInstall::of(&fx);
    // The skeleton loses a new file after planning (which did not need to
    // read it; what it read is kept for the executor): installing it fails
    // mid-way.
    std::fs::remove_file(fx.new_skel().join("etc/newdir/f")).unwrap();
    let err = install
        .up
        .apply(&install.plan, &ApplyOptions::new())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("the update failed and was rolled back: cannot install "),
        "{text}"
    );
    assert!(text.contains("etc/newdir/f"), "{text}");
    assert_eq!(snapshot(&fx.site()), before);
}

#[test]
fn simulated_crash_at_every_operation_then_recovery_rolls_back() {
    let (clean, ops) = clean_result(0);
    for k in 0..ops {
        let fx = crash_fixture(0);
        let before = snapshot(fx.root());
        let install = PlannedInstall::of(&fx);
        let err = install.apply_with_fault(Fault::CrashAfter(k));
        assert!(matches!(err, Error::SimulatedCrash { ops } if ops == k));
        assert!(fx.exists(JOURNAL_DIR));
        // A new update refuses to start on top of the journal.
        let again = install.apply().unwrap_err();
        assert!(matches!(again, Error::JournalPresent { .. }), "{again}");
        assert_recovery_rolls_back(&fx, &before, &format!("after a crash before operation {k}"));
        assert_eq!(recover(&fx.site()).unwrap(), Recovery::Clean);
        PlannedInstall::of(&fx).apply().unwrap();
        assert_eq!(snapshot(fx.root()), clean);
    }
}

#[test]
fn crash_after_the_commit_point_is_finished_by_recovery() {
    let (clean, _) = clean_result(0);
    let fx = crash_fixture(0);
    let err = PlannedInstall::of(&fx).apply_with_fault(Fault::CrashAfterCommit);
    assert!(matches!(err, Error::SimulatedCrash { .. }));
    assert!(fx.exists(JOURNAL_DIR));
    assert_eq!(
        recover(&fx.site()).unwrap(),
        Recovery::Finished { to: NEW.into() }
    );
    assert_eq!(snapshot(fx.root()), clean);
}

#[test]
fn torn_last_journal_record_is_ignored() {
    let fx = crash_fixture(0);
    let before = snapshot(fx.root());
    PlannedInstall::of(&fx).apply_with_fault(Fault::CrashAfter(7));
    let log = fx.site().join(JOURNAL_DIR).join("log");
    let mut text = std::fs::read(&log).unwrap();
    text.extend_from_slice(b"{\"op\":\"sav");
    std::fs::write(&log, text).unwrap();
    assert!(matches!(
        recover(&fx.site()).unwrap(),
        Recovery::RolledBack { .. }
    ));
    assert_eq!(snapshot(fx.root()), before);
}

#[test]
fn damaged_journal_is_reported_not_guessed() {
    let fx = crash_fixture(0);
    PlannedInstall::of(&fx).apply_with_fault(Fault::CrashAfter(3));
    let log = fx.site().join(JOURNAL_DIR).join("log");
    std::fs::write(&log, b"garbage\n").unwrap();
    let err = recover(&fx.site()).unwrap_err();
    assert!(err.to_string().contains("is damaged"), "{err}");
    assert!(fx.exists(JOURNAL_DIR), "the journal is kept");
}

// ------------------------------------------------------ real child processes

const ROOT_ENV: &str = "SITE_UPDATE_TEST_ROOT";
const PAUSE_ENV: &str = "SITE_UPDATE_TEST_PAUSE";
const MARKER_ENV: &str = "SITE_UPDATE_TEST_MARKER";

/// Not a test of its own: the body of the child process the tests below
/// start (and kill). Without the environment variables it does nothing.
#[test]
fn child_update_process() {
    let Ok(root) = std::env::var(ROOT_ENV) else {
        return;
    };
    let up = update_at(Path::new(&root));
    let plan = up.plan(&LineMerger, &mut Policy::Install).unwrap();
    let mut opts = ApplyOptions::new();
    if let (Ok(k), Ok(marker)) = (std::env::var(PAUSE_ENV), std::env::var(MARKER_ENV)) {
        opts = opts.fault(Fault::PauseAfter(k.parse().unwrap(), PathBuf::from(marker)));
    }
    up.apply(&plan, &opts).unwrap();
}

fn spawn_child(root: &Path, pause: Option<(usize, &Path)>) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_update_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROOT_ENV, root);
    if let Some((k, marker)) = pause {
        cmd.env(PAUSE_ENV, k.to_string()).env(MARKER_ENV, marker);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd.spawn().unwrap()
}

#[test]
fn sigkill_of_a_child_at_chosen_operations_then_recovery() {
    let (_, ops) = clean_result(0);
    // First, middle, and the version switch (the last operation).
    for k in [0, ops / 2, ops - 1] {
        let fx = crash_fixture(0);
        let before = snapshot(fx.root());
        let marker = fx.root().join("paused");
        let mut child = spawn_child(fx.root(), Some((k, &marker)));
        let start = Instant::now();
        while !marker.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the child never paused"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the child exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            fx.exists(JOURNAL_DIR),
            "the journal exists while the update runs"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        std::fs::remove_file(&marker).unwrap();
        assert_recovery_rolls_back(&fx, &before, &format!("after SIGKILL at operation {k}"));
    }
}

#[test]
fn sigkill_of_a_child_at_pseudo_random_moments_then_recovery() {
    let extra = 60;
    let (clean, _) = clean_result(extra);
    // How long does a whole child run take here?
    let fx = crash_fixture(extra);
    let start = Instant::now();
    assert!(spawn_child(fx.root(), None).wait().unwrap().success());
    let full = start.elapsed().as_micros() as u64;
    assert_eq!(snapshot(fx.root()), clean);
    let mut seed: u64 = 0x5eed_1234_abcd;
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Somewhere between 40% and 110% of a full run.
        let delay = Duration::from_micros(full * 4 / 10 + (seed >> 33) % (full * 7 / 10 + 1));
        let fx = crash_fixture(extra);
        let before = snapshot(fx.root());
        let mut child = spawn_child(fx.root(), None);
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().unwrap();
        let recovery = recover(&fx.site()).unwrap();
        let after = snapshot(fx.root());
        if after == before {
            outcomes.push(format!("{delay:?}: before ({recovery:?})"));
        } else {
            assert_eq!(
                after, clean,
                "after SIGKILL at {delay:?} ({recovery:?}) the site is neither as before nor updated"
            );
            outcomes.push(format!("{delay:?}: updated ({recovery:?})"));
        }
    }
    eprintln!("full run {full}us: {outcomes:#?}");
}
