//! Fault injection and kill-safety: a failed or killed change leaves the site exactly as
//! before, or complete, or the next command repairs it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mkp_format::PackagePart;

use crate::common::{Pkg, TestSite};

/// A site with `up 1.0.0` enabled and `up 2.0.0` stored: enabling 2.0.0 replaces, deletes
/// and adds files, creates directories, rewrites the manifest and adds a mark.
fn update_site() -> TestSite {
    let site = TestSite::new();
    let tmp = tempfile::tempdir().unwrap();
    let v1 = Pkg::new("up", "1.0.0")
        .file(PackagePart::Agents, "plugins/keep", b"v1")
        .file(PackagePart::Agents, "plugins/old", b"v1")
        .file(PackagePart::CmkAddonsPlugins, "up/agent_based/a.py", b"v1");
    let v2 = Pkg::new("up", "2.0.0")
        .file(PackagePart::Agents, "plugins/keep", b"v2")
        .file(PackagePart::CmkAddonsPlugins, "up/agent_based/a.py", b"v2")
        .file(PackagePart::CmkAddonsPlugins, "up/rulesets/r.py", b"v2")
        .file(PackagePart::Doc, "up/readme", b"v2");
    site.add(&v1.write_to(tmp.path()));
    site.add(&v2.write_to(tmp.path()));
    site.ok(&["enable", "up", "1.0.0"]);
    site.write("local/share/check_mk/agents/plugins/unpackaged", b"mine");
    site.ok(&["update-active"]); // a no-op; makes sure the lock file exists
    site
}

/// The snapshot without timestamps (for comparing with a separately produced "after").
fn content(snapshot: &BTreeMap<PathBuf, String>) -> BTreeMap<PathBuf, String> {
    snapshot
        .iter()
        .map(|(k, v)| {
            let v = if v.starts_with("file") {
                let mut parts = v.splitn(5, ' ');
                let kind = parts.next().unwrap();
                let mode = parts.next().unwrap();
                let _ = (parts.next(), parts.next());
                format!("{kind} {mode} {}", parts.next().unwrap())
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

fn after_state() -> BTreeMap<PathBuf, String> {
    let site = update_site();
    site.ok(&["enable", "up", "2.0.0"]);
    content(&site.snapshot())
}

#[test]
fn an_injected_error_at_any_step_leaves_the_site_byte_identical() {
    let after = after_state();
    for n in 1..100 {
        let site = update_site();
        let before = site.snapshot();
        let o = site.run_with_fault(&format!("error:{n}"), &["enable", "up", "2.0.0"]);
        if o.status.success() {
            assert_eq!(content(&site.snapshot()), after);
            assert!(n > 10, "only {} steps", n - 1);
            return;
        }
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("injected fault at step {n}")),
            "{err}"
        );
        assert_eq!(site.snapshot(), before, "step {n}: {err}");
    }
    panic!("the change never succeeded");
}

#[test]
fn a_blocked_directory_mid_install_rolls_back() {
    let site = update_site();
    // A file where the package needs a directory: found only while moving files into place.
    site.write(
        "local/lib/python3/cmk_addons/plugins/up/rulesets",
        b"in the way",
    );
    let before = site.snapshot();
    let err = site.fails(&["enable", "up", "2.0.0"], 1);
    assert!(err.contains("failed, nothing was changed"), "{err}");
    assert!(err.contains("rulesets/r.py"), "{err}");
    assert_eq!(site.snapshot(), before);
}

#[test]
fn an_injected_error_in_disable_and_remove_rolls_back() {
    for args in [&["disable", "up", "1.0.0"][..], &["update-active"][..]] {
        for n in 1..6 {
            let site = update_site();
            let before = site.snapshot();
            let o = site.run_with_fault(&format!("error:{n}"), args);
            if !o.status.success() {
                assert_eq!(site.snapshot(), before, "{args:?} step {n}");
            }
        }
    }
}

#[test]
fn a_crash_at_any_step_is_before_after_or_repaired_by_the_next_command() {
    let after = after_state();
    for n in 1..100 {
        let site = update_site();
        let before = site.snapshot();
        let o = site.run_with_fault(&format!("abort:{n}"), &["enable", "up", "2.0.0"]);
        if o.status.success() {
            assert!(n > 10, "only {} steps", n - 1);
            return;
        }
        // The next command (even a read-only one) repairs the site first.
        let o = site.run(&["-v", "list"]);
        assert!(o.status.success());
        let now = site.snapshot();
        assert!(
            now == before || content(&now) == after,
            "step {n}: neither before nor after:\n{now:#?}"
        );
        assert!(!site.path("var/check_mk/mkp-transaction").exists());
    }
    panic!("the change never completed");
}

#[test]
fn random_kills_leave_before_or_after_after_recovery() {
    use std::process::Stdio;
    let after = after_state();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut state = seed | 1;
    let (mut saw_before, mut saw_after) = (0, 0);
    for _ in 0..12 {
        // xorshift
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(state % 250);
        let site = update_site();
        let before = site.snapshot();
        let mut child = site
            .cmd()
            .env("MKP_SITE_FAULT", "sleep:4")
            .args(["enable", "up", "2.0.0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        site.ok(&["list"]);
        let now = site.snapshot();
        if now == before {
            saw_before += 1;
        } else {
            assert_eq!(content(&now), after, "seed {seed}, delay {delay:?}");
            saw_after += 1;
        }
    }
    eprintln!("random kills (seed {seed}): {saw_before} before, {saw_after} after");
}

#[test]
fn a_crash_during_disable_is_repaired_too() {
    for n in 1..100 {
        let site = update_site();
        let before = site.snapshot();
        let o = site.run_with_fault(&format!("abort:{n}"), &["disable", "up", "1.0.0"]);
        if o.status.success() {
            assert!(n > 3, "only {} steps", n - 1);
            return;
        }
        site.ok(&["list"]);
        let now = site.snapshot();
        if now != before {
            // Complete: no files, no manifest, no mark of up 1.0.0.
            assert!(!site.path("var/check_mk/packages/up").exists(), "step {n}");
            assert!(
                !site
                    .path("local/share/check_mk/agents/plugins/keep")
                    .exists(),
                "step {n}"
            );
            assert!(
                !site
                    .path("local/share/check_mk/enabled_packages/up-1.0.0.mkp")
                    .exists()
            );
        }
    }
    panic!("disable never completed");
}

#[test]
fn concurrent_changes_are_serialised() {
    let site = update_site();
    let tmp = tempfile::tempdir().unwrap();
    site.add(
        &Pkg::new("other", "1.0.0")
            .file(PackagePart::Doc, "other/readme", b"o")
            .write_to(tmp.path()),
    );
    let spawn = |args: &[&str]| {
        site.cmd()
            .env("MKP_SITE_FAULT", "sleep:3")
            .args(args)
            .spawn()
            .unwrap()
    };
    let mut a = spawn(&["enable", "up", "2.0.0"]);
    let mut b = spawn(&["enable", "other", "1.0.0"]);
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let table = site.ok(&["list"]);
    let active = |name: &str, version: &str| {
        table.lines().any(|l| {
            l.starts_with(&format!("{name} ")) && l.contains(version) && l.contains("(active")
        })
    };
    assert!(active("up", "2.0.0"), "{table}");
    assert!(active("other", "1.0.0"), "{table}");
    assert!(!site.path("var/check_mk/mkp-transaction").exists());
}
