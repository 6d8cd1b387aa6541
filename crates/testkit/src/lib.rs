//! Test support shared by every crate of the workspace.
//!
//! The real-world corpus and the design notes live outside the repository, in
//! `../shared` beside the checkout. CI always has it; a user's fresh clone does
//! not. Tests that read it call [`shared_dir`] (or the [`require_shared!`]
//! macro) and skip with a clear message when it is absent, instead of failing.
//!
//! The location can be overridden with the `CMK_SHARED_DIR` environment
//! variable.
#![warn(missing_docs)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable that overrides where the shared folder is looked for.
pub const SHARED_DIR_ENV: &str = "CMK_SHARED_DIR";

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
/// naming `what`) when the shared folder or that path is absent.
pub fn shared_path(relative: &str) -> Option<PathBuf> {
    match shared_dir() {
        Some(dir) => {
            let path = dir.join(relative);
            if path.exists() {
                Some(path)
            } else {
                eprintln!(
                    "SKIPPED: {} is missing from the shared folder {}",
                    relative,
                    dir.display()
                );
                None
            }
        }
        None => {
            eprintln!(
                "SKIPPED: the shared corpus (../shared beside the checkout, or ${SHARED_DIR_ENV}) \
                 is absent, so {relative} cannot be read"
            );
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

/// Whether `git` runs here, for tests that use it as an oracle; prints a
/// skip message naming `what` when it does not (CI installs git, so there
/// such tests always run).
pub fn git_available(what: &str) -> bool {
    let runs = Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        eprintln!("SKIPPED: git is not installed, {what} needs it");
    }
    runs
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
    fn workspace_root_holds_the_root_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
