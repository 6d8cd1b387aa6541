//! `omd start|stop|status SITE`: a minimal started/stopped state, and what
//! every command reading a site checks first: the lock and the leftovers of
//! an interrupted update.
//!
//! This toolkit runs no daemons. A site counts as **running** while the file
//! `<site>/tmp/run/omd-state` ([`STATE_FILE`]) contains `started`; anything
//! else (no file, `stopped`) means **stopped**. The file lives below `tmp/`,
//! which updates never touch and which is a tmpfs on a real site, so a
//! reboot stops the site as it does with Checkmk. `omd update` refuses a
//! running site (`Please completely stop 'SITE' before updating it.`).
//!
//! **Pending journal.** A site with the journal of an interrupted update is
//! neither the old nor the new site until it is recovered: [`start`]
//! refuses it (naming the command that recovers it), the other commands
//! report it through [`site_condition`].
//!
//! **Leftovers.** A finished journal that was not deleted
//! (`.site-update.done~`, an update killed while deleting it) is removed by
//! the next command that can take the site's lock ([`tidy`]).

use std::fs;
use std::io;
use std::path::Path;

use mkp_format::SiteLock;
use omd_versions::OmdRoot;
use serde::Serialize;

use crate::error::{Error, IoContext, Result, refuse};

/// The state file, relative to the site home.
pub const STATE_FILE: &str = "tmp/run/omd-state";

/// Whether the site at `site_home` is marked as running.
pub fn is_running(site_home: &Path) -> Result<bool> {
    let path = site_home.join(STATE_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim() == "started"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).ctx("read", &path),
    }
}

/// Marks the site as running (`true`) or stopped.
pub fn set_running(site_home: &Path, running: bool) -> Result<()> {
    let path = site_home.join(STATE_FILE);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).ctx("create", dir)?;
    }
    let text = if running { "started\n" } else { "stopped\n" };
    fs::write(&path, text).ctx("write", &path)
}

/// Takes the site's lock (shared with `mkp` and `omd update`), refusing at
/// once when another process holds it.
pub fn lock_site(site_home: &Path) -> Result<SiteLock> {
    SiteLock::acquire(site_home).map_err(|e| match e {
        e @ mkp_format::StoreError::Locked { .. } => Error::Locked(e),
        other => Error::Io {
            action: "lock",
            path: site_home.to_path_buf(),
            source: io::Error::other(other.to_string()),
        },
    })
}

/// The condition of a site as the commands reading it report it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SiteCondition {
    /// What an interrupted update left (journal, `.site-update.done~`).
    pub leftovers: site_merge::Leftovers,
    /// The process holding the site's lock (`PID command`), if any.
    pub locked_by: Option<String>,
}

impl SiteCondition {
    /// A warning about an interrupted update (`None` when there was none),
    /// naming the command that recovers the site.
    pub fn warning(&self, site: &str) -> Option<String> {
        if !self.leftovers.journal {
            return None;
        }
        if self.locked_by.is_some() {
            // The journal of the update that is running now.
            return None;
        }
        Some(match &self.leftovers.versions {
            Some((from, to)) => {
                let state = if self.leftovers.committed {
                    format!("it had switched to version {to}; recovery only finishes it")
                } else {
                    format!("the site is part {from}, part {to}; recovery rolls it back")
                };
                format!(
                    "The site {site} has the journal of an interrupted update from {from} to {to} ({state}). Recover it with 'omd -V {to} update {site}' (recovers, then updates to {to})."
                )
            }
            None => format!(
                "The site {site} has the journal of an update interrupted while starting (nothing was changed). Remove it with 'omd update {site}'."
            ),
        })
    }
}

/// What a site looks like to a reading command; removes a leftover
/// `.site-update.done~` when the lock can be taken (see [`tidy`]).
pub fn site_condition(site_home: &Path) -> Result<SiteCondition> {
    tidy(site_home);
    inspect_site(site_home)
}

/// What a site looks like, changing nothing: as [`site_condition`] without
/// removing a leftover `.site-update.done~` (for `mkp`, which leaves the
/// site's update state to `omd`).
pub fn inspect_site(site_home: &Path) -> Result<SiteCondition> {
    let leftovers = site_merge::leftovers(site_home)?;
    let locked_by = SiteLock::holder(site_home).map(|h| {
        let pid = h.pid.map_or_else(|| "?".to_owned(), |p| p.to_string());
        format!("PID {pid}: {}", h.command)
    });
    Ok(SiteCondition {
        leftovers,
        locked_by,
    })
}

/// Removes a leftover `.site-update.done~` if no other process holds the
/// site's lock; whether one was removed. Failures are ignored (the next
/// command tries again, and an update removes it anyway).
pub fn tidy(site_home: &Path) -> bool {
    if fs::symlink_metadata(site_home.join(site_merge::DONE_DIR)).is_err() {
        return false;
    }
    let Ok(_lock) = SiteLock::acquire(site_home) else {
        return false;
    };
    site_merge::remove_done_journal(site_home).unwrap_or(false)
}

/// The result of [`start`] / [`stop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateChange {
    /// The site was stopped and is now running.
    Started,
    /// It was already running.
    AlreadyRunning,
    /// It was running and is now stopped.
    Stopped,
    /// It was already stopped.
    AlreadyStopped,
}

impl StateChange {
    /// Checkmk's line for it (without newline).
    pub fn message(self, site: &str) -> String {
        match self {
            StateChange::Started => format!("Starting site {site}...OK"),
            StateChange::AlreadyRunning => format!("Site {site} is already running."),
            StateChange::Stopped => format!("Stopping site {site}...OK"),
            StateChange::AlreadyStopped => format!("Site {site} is already stopped."),
        }
    }
}

/// `omd start SITE`: refused while another process holds the site's lock
/// or while the journal of an interrupted update is there.
pub fn start(root: &OmdRoot, site: &str) -> Result<StateChange> {
    root.require_site(site)?;
    let home = root.site_dir(site);
    let _lock = lock_site(&home)?;
    site_merge::remove_done_journal(&home)?;
    let condition = SiteCondition {
        leftovers: site_merge::leftovers(&home)?,
        locked_by: None,
    };
    if let Some(warning) = condition.warning(site) {
        refuse!("Cannot start the site: {warning}");
    }
    let was = is_running(&home)?;
    set_running(&home, true)?;
    Ok(if was {
        StateChange::AlreadyRunning
    } else {
        StateChange::Started
    })
}

/// `omd stop SITE` (under the site's lock).
pub fn stop(root: &OmdRoot, site: &str) -> Result<StateChange> {
    root.require_site(site)?;
    let home = root.site_dir(site);
    let _lock = lock_site(&home)?;
    site_merge::remove_done_journal(&home)?;
    let was = is_running(&home)?;
    set_running(&home, false)?;
    Ok(if was {
        StateChange::Stopped
    } else {
        StateChange::AlreadyStopped
    })
}

/// `omd status SITE`: whether the site is running.
pub fn status(root: &OmdRoot, site: &str) -> Result<bool> {
    root.require_site(site)?;
    is_running(&root.site_dir(site))
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

    #[test]
    fn a_held_lock_is_refused_with_its_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let _held = lock_site(tmp.path()).unwrap();
        // flock locks belong to the open file: a second acquisition conflicts even here.
        let err = lock_site(tmp.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("PID {}", std::process::id())),
            "{text}"
        );
        assert!(err.is_negative_answer());
    }
}
