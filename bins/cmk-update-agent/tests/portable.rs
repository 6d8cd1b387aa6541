//! The portable updater (`scripts/build-portable-updater`): runs on glibc >= 2.17 (x86_64).
//!
//! Checks the binary named by `CMK_UPDATE_AGENT_PORTABLE`, or builds it with the script when
//! `cargo-zigbuild` is on `PATH`; skips with the install command otherwise. The script checks
//! with `objdump -T` that no symbol version is above `GLIBC_2.17` and with `readelf -d` that it
//! needs no library but glibc's own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-portable-updater")
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn portable_updater_needs_at_most_glibc_2_17() {
    if !on_path("objdump") || !on_path("readelf") {
        testkit::skip("objdump/readelf are missing (apt-get install binutils)");
        return;
    }
    let binary = match std::env::var_os("CMK_UPDATE_AGENT_PORTABLE") {
        Some(path) => PathBuf::from(path),
        None if on_path("cargo-zigbuild") => {
            // A target directory of its own, so the outer cargo's lock is not in the way.
            let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("portable");
            let out = Command::new(script())
                .env("CARGO_TARGET_DIR", &target)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            target.join("portable/cmk-update-agent")
        }
        None => {
            testkit::skip(
                "cargo-zigbuild is missing: python3 -m venv .venv-zig && \
                 .venv-zig/bin/pip install ziglang cargo-zigbuild, put .venv-zig/bin on PATH \
                 (or set CMK_UPDATE_AGENT_PORTABLE to a binary built by \
                 scripts/build-portable-updater)",
            );
            return;
        }
    };
    let out = Command::new(script())
        .arg("--check")
        .arg(&binary)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("OK: "), "{stdout}");
    // It runs here, too.
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("cmk-update-agent "));
}

/// The check refuses this package's own (glibc-current) build, so it can fail.
#[test]
fn the_check_refuses_a_binary_built_against_the_host_glibc() {
    if !on_path("objdump") || !on_path("readelf") {
        testkit::skip("objdump/readelf are missing (apt-get install binutils)");
        return;
    }
    let native = env!("CARGO_BIN_EXE_cmk-update-agent");
    let highest = Command::new("sh")
        .args([
            "-c",
            &format!("objdump -T '{native}' | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1"),
        ])
        .output()
        .unwrap();
    let highest = String::from_utf8_lossy(&highest.stdout).trim().to_owned();
    let above = highest
        .strip_prefix("GLIBC_2.")
        .and_then(|minor| minor.split('.').next()?.parse::<u32>().ok())
        .is_some_and(|minor| minor > 17);
    if !above {
        eprintln!("SKIPPED: this machine's build needs only {highest}");
        return;
    }
    let out = Command::new(script())
        .arg("--check")
        .arg(native)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FAIL: "));
}
