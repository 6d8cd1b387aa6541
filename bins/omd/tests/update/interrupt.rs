//! Interruption safety with real processes: signals at pseudo-random
//! points, a closed stdout, a second update and a package change during an
//! update, `omd start` on a site with a pending journal, phase scripts.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Engine, Fixture, NEW, OLD, SITE, read, snapshot, write};

/// Paths that differ between runs and are not part of the site's content.
fn content(site: &Path) -> std::collections::BTreeMap<String, String> {
    let mut snap = snapshot(site);
    snap.remove("var/log/update.log");
    snap
}

fn spawn_update(fx: &Fixture, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_omd"))
        .arg("--root")
        .arg(fx.root())
        .args(args)
        .env_remove("OMD_ROOT_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(mut child: Child) -> (std::process::ExitStatus, String, String) {
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap(), out, err)
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Adds `n` files to both skeletons, half of them changed upstream.
fn bulk(fx: &Fixture, n: usize) {
    for i in 0..n {
        let rel = format!("etc/bulk/d{}/f{i}.txt", i % 20);
        write(&fx.skel(OLD).join(&rel), &format!("file {i}\nold\n"));
        let new = if i % 2 == 0 { "new" } else { "old" };
        write(&fx.skel(NEW).join(&rel), &format!("file {i}\n{new}\n"));
    }
}

/// Copies the site away (`cp -a`), to restore it before every run.
fn cp_a(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A pre-update hook that writes `marker` and sleeps `secs` seconds.
fn pausing_hook(fx: &Fixture, marker: &Path, secs: u32) {
    let hook = fx
        .root()
        .join("versions")
        .join(NEW)
        .join("lib/omd/scripts/update-pre-hooks/50-pause");
    write(
        &hook,
        &format!(
            "#!/bin/sh\necho pausing\ntouch '{}'\nsleep {secs}\n",
            marker.display()
        ),
    );
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn signals_at_pseudo_random_points_leave_the_before_or_the_after_tree() {
    let fx = Fixture::in_memory();
    bulk(&fx, 600);
    fx.site_with_edits();
    let backup = fx.root().join("backup");
    cp_a(&fx.site(), &backup);
    let before = content(&fx.site());
    // The after tree, and how long an update takes.
    let start = Instant::now();
    let (status, out, err) = finish(spawn_update(&fx, &["update", "--conflict=install", SITE]));
    let took = start.elapsed();
    assert!(status.success(), "{out}{err}");
    let after = content(&fx.site());
    assert_ne!(before, after);

    let signals = ["TERM", "HUP", "INT"];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let (mut rolled_back, mut completed) = (0, 0);
    for point in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Between 20 ms and the update's full duration.
        let span = took.as_millis().max(40) as u64;
        let delay = Duration::from_millis(20 + seed % span);
        let signal = signals[point % signals.len()];
        fs::remove_dir_all(fx.site()).unwrap();
        cp_a(&backup, &fx.site());
        let child = spawn_update(&fx, &["update", "--conflict=install", SITE]);
        std::thread::sleep(delay);
        kill(child.id(), signal);
        let (status, out, err) = finish(child);
        let now = content(&fx.site());
        let what = format!("{signal} after {delay:?}: {status:?}\n{out}\n{err}");
        assert!(status.signal().is_none(), "killed by the signal: {what}");
        if now == before {
            rolled_back += 1;
            assert!(
                out.contains("\nThe update was rolled back successfully.\n"),
                "{what}"
            );
            assert!(!out.contains("Finished update."), "{what}");
        } else {
            assert!(
                now == after,
                "neither the before nor the after tree: {what}"
            );
            completed += 1;
            assert!(
                out.contains("Finished update.")
                    || out.contains("The update was interrupted after the switch"),
                "{what}"
            );
            assert!(!out.contains("rolled back"), "{what}");
        }
        if !status.success() {
            let code = status.code().unwrap();
            assert!([129, 130, 143].contains(&code), "{what}");
        }
        assert!(!fx.site().join(".site-update").exists(), "{what}");
    }
    eprintln!("6 signals: {rolled_back} rolled back, {completed} completed (update took {took:?})");
}

#[test]
fn a_signal_at_the_pre_update_hook_rolls_back_with_one_line() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let marker = fx.root().join("paused");
    pausing_hook(&fx, &marker, 2);
    let before = content(&fx.site());
    let child = spawn_update(&fx, &["update", "--conflict=install", SITE]);
    wait_for(&marker);
    kill(child.id(), "TERM");
    let (status, out, err) = finish(child);
    assert_eq!(status.code(), Some(143), "{out}{err}");
    assert!(
        out.contains("Executing update-pre-hooks script \"50-pause\"...\n-| pausing\nOK\n"),
        "{out}"
    );
    assert!(
        out.ends_with("\nThe update was rolled back successfully.\n"),
        "{out}"
    );
    assert_eq!(err, "");
    assert_eq!(content(&fx.site()), before);
    let log = read(&fx.site().join("var/log/update.log"));
    assert!(
        log.ends_with("The update was rolled back successfully.\n"),
        "{log}"
    );
}

#[test]
fn a_closed_stdout_does_not_stop_the_update() {
    let fx = Fixture::new();
    bulk(&fx, 400);
    fx.site_with_edits();
    // `omd update | head -1`.
    let mut child = spawn_update(&fx, &["update", "--conflict=install", SITE]);
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{first}{err}");
    assert_eq!(err, "");
    assert_eq!(
        fs::read_link(fx.site().join("version")).unwrap(),
        Path::new("../../versions").join(NEW)
    );
    let log = read(&fx.site().join("var/log/update.log"));
    assert!(
        log.contains(" * Updated        etc/bulk/d0/f0.txt\n"),
        "{log}"
    );
    assert!(log.ends_with("Finished update.\n\n"), "{log}");
}

#[test]
fn a_second_update_and_a_package_change_are_refused_during_an_update() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let marker = fx.root().join("paused");
    pausing_hook(&fx, &marker, 3);
    let first = spawn_update(&fx, &["update", "--conflict=install", SITE]);
    wait_for(&marker);
    let second = fx.omd(&["update", "--conflict=install", SITE]);
    assert_eq!(second.code, 1, "{}", second.stdout);
    assert!(
        second.stderr.starts_with(&format!(
            "The site is locked by another process (PID {}, ",
            first.id()
        )),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(" update --conflict=install mysite"),
        "{}",
        second.stderr
    );
    // `omd start` and a package change (what `mkp enable` does first) are refused too.
    let start = fx.omd(&["start", SITE]);
    assert_eq!(start.code, 1, "{}", start.stdout);
    assert!(
        start.stderr.contains(&format!("PID {}", first.id())),
        "{}",
        start.stderr
    );
    let store = mkp_format::Site::open(fx.site()).unwrap();
    let refused = store
        .update_active(&mkp_format::ChangeOptions::default())
        .unwrap_err();
    assert!(
        matches!(refused, mkp_format::StoreError::Locked { pid: Some(p), .. } if p == first.id()),
        "{refused}"
    );
    let (status, out, err) = finish(first);
    assert!(status.success(), "{out}{err}");
    assert!(out.ends_with("Finished update.\n\n"), "{out}");
    assert!(!fx.site().join(".site-lock").exists());
}

#[test]
fn a_pending_journal_stops_start_and_is_shown_by_status() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let update = fx.old_to_new_update();
    let plan = update
        .plan(&Engine, &mut site_merge::Policy::Install)
        .unwrap();
    update
        .apply(
            &plan,
            &site_merge::ApplyOptions::new().fault(site_merge::Fault::CrashAfter(3)),
        )
        .unwrap_err();
    let out = fx.omd(&["start", SITE]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr
            .contains(&format!("interrupted update from {OLD} to {NEW}"))
            && out
                .stderr
                .contains(&format!("'omd -V {NEW} update {SITE}'")),
        "{}",
        out.stderr
    );
    assert!(!fx.site().join("tmp/run/omd-state").exists());
    let out = fx.omd(&["status", SITE]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("WARNING: The site mysite has the journal"),
        "{}",
        out.stderr
    );
    let out = fx.omd(&["version", SITE]);
    assert!(out.stderr.contains("interrupted update"), "{}", out.stderr);

    // The fix named recovers and updates; then start works.
    let out = fx.omd(&["-V", NEW, "update", "--conflict=install", SITE]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = fx.omd(&["start", SITE]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Starting site mysite...OK\n")
    );
}

#[test]
fn a_leftover_finished_journal_is_reported_by_dry_run_and_removed() {
    let fx = Fixture::new();
    fx.site_with_edits();
    write(&fx.site().join(".site-update.done~/saved/0"), "old\n");
    let out = fx.omd(&["update", "--dry-run", "--conflict=install", SITE]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains(".site-update.done~ is left from an earlier update"),
        "{}",
        out.stdout
    );
    assert!(fx.site().join(".site-update.done~").exists());
    let out = fx.omd(&["status", SITE]);
    assert_eq!(out.code, 1);
    assert!(!fx.site().join(".site-update.done~").exists());
}

#[test]
fn a_failing_pre_update_hook_rolls_back_and_post_update_runs_after() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let hooks = fx
        .root()
        .join("versions")
        .join(NEW)
        .join("lib/omd/scripts/update-pre-hooks");
    write(
        &hooks.join("20-fail"),
        "#!/bin/sh\necho broken >&2\nexit 3\n",
    );
    write(&hooks.join("10-ok"), "#!/bin/sh\n");
    write(&hooks.join(".hidden"), "#!/bin/sh\nexit 1\n");
    for name in ["20-fail", "10-ok", ".hidden"] {
        fs::set_permissions(hooks.join(name), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let before = content(&fx.site());
    let out = fx.omd(&["update", "--conflict=install", SITE]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "Executing update-pre-hooks script \"10-ok\"...OK\nExecuting update-pre-hooks script \"20-fail\"...\n-| broken\nERROR (exit code: 3)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("\nThe update was rolled back successfully.\n"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("\"20-fail\" failed"), "{}", out.stderr);
    assert_eq!(content(&fx.site()), before);

    fs::remove_file(hooks.join("20-fail")).unwrap();
    let post = fx
        .root()
        .join("versions")
        .join(NEW)
        .join("lib/omd/scripts/post-update/10-say");
    write(
        &post,
        "#!/bin/sh\necho \"now $OMD_TO_VERSION in $OMD_SITE\"\n",
    );
    fs::set_permissions(&post, fs::Permissions::from_mode(0o755)).unwrap();
    let out = fx.omd(&["update", "--conflict=install", SITE]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "Executing post-update script \"10-say\"...\n-| now {NEW} in {SITE}\nOK\nFinished update.\n"
        )),
        "{}",
        out.stdout
    );
}
