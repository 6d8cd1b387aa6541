//! The site's phase scripts (site-update.md §6 step 19).
//!
//! The executable files in `lib/omd/scripts/<phase>/` of the target
//! version (`<root>/versions/<to>/`, which the site's `lib` link reaches
//! once the version is switched, as Checkmk runs them) run one after
//! the other in sorted order (dotfiles skipped), in the site directory, with
//! `OMD_SITE`, `OMD_ROOT`, `OMD_FROM_VERSION` and `OMD_TO_VERSION` set.
//! Each prints `Executing <phase> script "<name>"...` and then `OK`, or
//! `ERROR (exit code: N)` and the phase stops; the script's output
//! (stdout and stderr together) is shown line by line prefixed `-| `.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{IoContext, Result};
use crate::log::Output;

/// The phase run inside the update, right before its commit point: a
/// failure rolls the update back.
pub const PRE_HOOKS: &str = "update-pre-hooks";
/// The phase run after the update (and its package step): a failure is
/// reported (exit code 1) but the update stays.
pub const POST_UPDATE: &str = "post-update";

/// The scripts directory of a phase, relative to a version's directory
/// (and to the site home, through its `lib` link).
pub fn phase_dir(phase: &str) -> String {
    format!("lib/omd/scripts/{phase}")
}

/// A failed script: its name and exit code (`None`: killed by a signal, or
/// it could not be started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed {
    pub(crate) script: String,
    pub(crate) code: Option<i32>,
}

/// Runs the scripts of `phase` found below `version_dir` (the target
/// version's directory) in the site at `home`; the first failure stops the
/// phase and is returned.
pub(crate) fn run_phase(
    version_dir: &Path,
    home: &Path,
    site: &str,
    phase: &str,
    from: &str,
    to: &str,
    out: &mut Output<'_>,
) -> Result<Option<Failed>> {
    let dir = version_dir.join(phase_dir(phase));
    let mut names = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx("read", &dir),
    };
    names.sort();
    let root = std::path::absolute(home).ctx("resolve", home)?;
    for name in names {
        let path = dir.join(&name);
        if path.is_dir() {
            continue;
        }
        let head = format!("Executing {phase} script \"{name}\"...");
        let (reader, writer) = std::io::pipe().ctx("create a pipe for", &path)?;
        let writer2 = writer.try_clone().ctx("create a pipe for", &path)?;
        let child = Command::new(&path)
            .current_dir(home)
            .env("OMD_SITE", site)
            .env("OMD_ROOT", &root)
            .env("OMD_FROM_VERSION", from)
            .env("OMD_TO_VERSION", to)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer2)
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) => {
                out.line(&format!("{head}ERROR (cannot run it: {e})"))?;
                return Ok(Some(Failed {
                    script: name,
                    code: None,
                }));
            }
        };
        let mut lines = Vec::new();
        for line in BufReader::new(reader).split(b'\n') {
            let line = line.ctx("read the output of", &path)?;
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        let status = child.wait().ctx("wait for", &path)?;
        let verdict = if status.success() {
            "OK".to_owned()
        } else {
            match status.code() {
                Some(code) => format!("ERROR (exit code: {code})"),
                None => format!("ERROR ({status})"),
            }
        };
        if lines.is_empty() {
            out.line(&format!("{head}{verdict}"))?;
        } else {
            out.line(&head)?;
            for line in &lines {
                out.line(&format!("-| {line}"))?;
            }
            out.line(&verdict)?;
        }
        if !status.success() {
            return Ok(Some(Failed {
                script: name,
                code: status.code(),
            }));
        }
    }
    Ok(None)
}
