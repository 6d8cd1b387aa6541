//! Test support shared by every crate of the workspace.
//!
//! The real-world corpus and the design notes live outside the repository, in
//! `../shared` beside the checkout. CI always has it; a user's fresh clone does
//! not. Tests that read it call [`shared_dir`] (or the [`require_shared!`]
//! macro) and skip with a clear message when it is absent, instead of failing.
//!
//! The location can be overridden with the `CMK_SHARED_DIR` environment
//! variable.
//!
//! Tests that need a tool the machine may lack (`git`, `rpm`, pyca, ...) call
//! [`require_tool`] or [`require`] and skip with a message naming the install
//! command. A skip counts as a pass, so CI sets `CMK_REQUIRE_SHARED=1`
//! ([`REQUIRE_SHARED_ENV`]): then every such skip panics instead, naming what
//! is missing.
#![warn(missing_docs)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable that overrides where the shared folder is looked for.
pub const SHARED_DIR_ENV: &str = "CMK_SHARED_DIR";

/// Environment variable that turns every skip of this crate into a panic
/// (value `1`): CI sets it, so a missing `../shared` or tool fails the run.
pub const REQUIRE_SHARED_ENV: &str = "CMK_REQUIRE_SHARED";

/// Whether skips are forbidden here (`CMK_REQUIRE_SHARED=1`).
pub fn skips_forbidden() -> bool {
    std::env::var_os(REQUIRE_SHARED_ENV).is_some_and(|v| v == "1")
}

/// Skips the calling test: prints `SKIPPED: {reason}` on stderr, or panics
/// with `reason` when [`skips_forbidden`]. The caller returns afterwards.
///
/// # Panics
///
/// Under `CMK_REQUIRE_SHARED=1`, always.
pub fn skip(reason: &str) {
    if skips_forbidden() {
        panic!("{reason} ({REQUIRE_SHARED_ENV}=1 forbids skipping this test)");
    }
    eprintln!("SKIPPED: {reason}");
}

/// `available`, or (with a skip, see [`skip`]) `false` naming `what` is
/// missing and the command that installs it, e.g.
/// `require(has_pyca, "python3 with pyca/cryptography", "apt-get install python3-cryptography")`.
pub fn require(available: bool, what: &str, install: &str) -> bool {
    if !available {
        skip(&format!(
            "{what} is not installed (install it with `{install}`)"
        ));
    }
    available
}

/// Whether `program` can be started here (it is run once with `--version`;
/// only starting it counts, not its exit status); skips as [`require`] does
/// when it cannot, e.g. `require_tool("rpm", "apt-get install rpm")`.
pub fn require_tool(program: &str, install: &str) -> bool {
    let runs = Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok();
    require(runs, &format!("`{program}`"), install)
}

/// The workspace root (the folder holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // crates/testkit -> crates -> root
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The shared folder (`../shared` from the workspace root, or `$CMK_SHARED_DIR`),
/// or `None` when it does not exist.
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(SHARED_DIR_ENV) {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    let dir = workspace_root().parent()?.join("shared");
    dir.is_dir().then_some(dir)
}

/// A path inside the shared folder, or `None` (with a skip message on stderr
/// naming it, see [`skip`]) when the shared folder or that path is absent.
pub fn shared_path(relative: &str) -> Option<PathBuf> {
    match shared_dir() {
        Some(dir) => {
            let path = dir.join(relative);
            if path.exists() {
                Some(path)
            } else {
                skip(&format!(
                    "{} is missing from the shared folder {}",
                    relative,
                    dir.display()
                ));
                None
            }
        }
        None => {
            skip(&format!(
                "the shared corpus (../shared beside the checkout, or ${SHARED_DIR_ENV}) \
                 is absent, so {relative} cannot be read"
            ));
            None
        }
    }
}

/// The files directly in `dir` whose name ends in `.extension`, sorted by
/// path, so that corpus tests visit them in a stable order.
///
/// # Panics
///
/// When `dir` cannot be read: a test that asks for a corpus folder it was
/// told exists should fail loudly.
pub fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// Every file below `dir`, by its path relative to `dir`, with its bytes: two snapshots
/// compare equal when a run changed no file (a link is read through).
///
/// # Panics
///
/// When a directory or file below `dir` cannot be read.
pub fn file_snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let relative = path.strip_prefix(root).unwrap_or(&path).to_owned();
                out.insert(relative, bytes);
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Whether `git` runs here, for tests that use it as an oracle; skips (see
/// [`skip`]) naming `what` when it does not (CI installs git, so there such
/// tests always run).
pub fn git_available(what: &str) -> bool {
    let runs = Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    require(
        runs,
        &format!("git ({what} needs it)"),
        "apt-get install git",
    )
}

/// The environment under which `git` is a reproducible oracle in `dir`: no
/// system or user configuration (so `merge.conflictStyle` and the like
/// cannot change its output), English messages, and no repository looked
/// for above `dir`.
pub fn git_oracle_env(dir: &Path) -> Vec<(&'static str, OsString)> {
    vec![
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
        ("HOME", dir.into()),
        ("LC_ALL", "C".into()),
        ("LANGUAGE", "C".into()),
        (
            "GIT_CEILING_DIRECTORIES",
            dir.parent().unwrap_or(dir).into(),
        ),
    ]
}

/// A `git` command run in `dir` under [`git_oracle_env`].
pub fn git_in(dir: &Path) -> Command {
    let mut git = Command::new("git");
    git.current_dir(dir).envs(git_oracle_env(dir));
    git
}

/// Returns the path of `relative` inside the shared folder, or returns from the
/// calling test with a skip message when it is absent.
#[macro_export]
macro_rules! require_shared {
    ($relative:expr) => {
        match $crate::shared_path($relative) {
            Some(path) => path,
            None => return,
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_with_extension_lists_only_matching_files_sorted() {
        let dir = std::env::temp_dir().join(format!("testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["b.mkp", "a.mkp", "c.txt", "d.mkp.bak"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let names: Vec<String> = files_with_extension(&dir, "mkp")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["a.mkp", "b.mkp"]);
    }

    #[test]
    fn file_snapshot_has_every_file_by_relative_path() {
        let dir = std::env::temp_dir().join(format!("testkit-snapshot-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        std::fs::write(dir.join("top"), b"1").unwrap();
        std::fs::write(dir.join("a/b/deep"), b"22").unwrap();
        let before = file_snapshot(&dir);
        std::fs::write(dir.join("a/b/deep"), b"23").unwrap();
        let after = file_snapshot(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            before.into_iter().collect::<Vec<_>>(),
            [
                (PathBuf::from("a/b/deep"), b"22".to_vec()),
                (PathBuf::from("top"), b"1".to_vec())
            ]
        );
        assert_eq!(after[Path::new("a/b/deep")], b"23");
    }

    /// Runs this test binary again with only `test` selected and
    /// `CMK_REQUIRE_SHARED` set to `value`; returns whether it passed and its output.
    fn rerun(test: &str, value: &str) -> (bool, String) {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--include-ignored"])
            .env(REQUIRE_SHARED_ENV, value)
            .env(SHARED_DIR_ENV, "/nonexistent/cmk-shared")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// Not run on its own: the child process of the tests below.
    #[test]
    #[ignore = "run by skips_panic_only_when_required"]
    fn child_needs_shared_and_a_tool() {
        let missing_tool = require_tool("cmk-no-such-tool", "apt-get install cmk-no-such-tool");
        assert!(!missing_tool);
        let missing = shared_path("corpus");
        assert!(missing.is_none());
    }

    #[test]
    fn skips_panic_only_when_required() {
        let test = "tests::child_needs_shared_and_a_tool";
        let (passed, out) = rerun(test, "0");
        assert!(passed, "{out}");
        assert!(
            out.contains("SKIPPED: `cmk-no-such-tool` is not installed (install it with `apt-get install cmk-no-such-tool`)"),
            "{out}"
        );
        assert!(out.contains("SKIPPED: the shared corpus"), "{out}");

        let (passed, out) = rerun(test, "1");
        assert!(!passed, "a skip passed under {REQUIRE_SHARED_ENV}=1: {out}");
        assert!(out.contains("`cmk-no-such-tool` is not installed"), "{out}");
        assert!(
            out.contains("CMK_REQUIRE_SHARED=1 forbids skipping"),
            "{out}"
        );
    }

    #[test]
    fn require_tool_finds_a_tool_that_exists() {
        // Only starting counts: `sh --version` fails in dash, and still counts.
        assert!(require_tool("sh", "(part of every system)"));
    }

    #[test]
    fn workspace_root_holds_the_root_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
