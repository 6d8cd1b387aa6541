//! `omd start|stop|status SITE`: a minimal started/stopped state.
//!
//! This toolkit runs no daemons. A site counts as **running** while the file
//! `<site>/tmp/run/omd-state` ([`STATE_FILE`]) contains `started`; anything
//! else (no file, `stopped`) means **stopped**. The file lives below `tmp/`,
//! which updates never touch and which is a tmpfs on a real site, so a
//! reboot stops the site as it does with Checkmk. `omd update` refuses a
//! running site (`Please completely stop 'SITE' before updating it.`).

use std::fs;
use std::io;
use std::path::Path;

use anyhow::Context as _;
use omd_versions::OmdRoot;

use crate::output::print;

/// The state file, relative to the site home.
pub(crate) const STATE_FILE: &str = "tmp/run/omd-state";

/// Whether the site at `site_home` is marked as running.
pub(crate) fn is_running(site_home: &Path) -> anyhow::Result<bool> {
    let path = site_home.join(STATE_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim() == "started"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Marks the site as running (`true`) or stopped.
pub(crate) fn set_running(site_home: &Path, running: bool) -> anyhow::Result<()> {
    let path = site_home.join(STATE_FILE);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = if running { "started\n" } else { "stopped\n" };
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// `omd start SITE` / `omd stop SITE`.
pub(crate) fn start_stop(root: &OmdRoot, site: &str, start: bool) -> anyhow::Result<u8> {
    root.require_site(site)?;
    let home = root.site_dir(site);
    let was = is_running(&home)?;
    set_running(&home, start)?;
    let text = match (start, was) {
        (true, true) => format!("Site {site} is already running.\n"),
        (true, false) => format!("Starting site {site}...OK\n"),
        (false, false) => format!("Site {site} is already stopped.\n"),
        (false, true) => format!("Stopping site {site}...OK\n"),
    };
    print(&text)?;
    Ok(0)
}

/// `omd status SITE`: prints `Overall state:  running|stopped`; exit code 0
/// when running, 1 when stopped (as Checkmk's `omd status`).
pub(crate) fn status(root: &OmdRoot, site: &str) -> anyhow::Result<u8> {
    root.require_site(site)?;
    let running = is_running(&root.site_dir(site))?;
    let word = if running { "running" } else { "stopped" };
    print(&format!("Overall state:  {word}\n"))?;
    Ok(if running { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_round_trips_and_defaults_to_stopped() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(!is_running(tmp.path()).unwrap());
        set_running(tmp.path(), true).unwrap();
        assert!(is_running(tmp.path()).unwrap());
        set_running(tmp.path(), false).unwrap();
        assert!(!is_running(tmp.path()).unwrap());
        assert_eq!(
            fs::read_to_string(tmp.path().join(STATE_FILE)).unwrap(),
            "stopped\n"
        );
    }
}
