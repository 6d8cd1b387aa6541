//! `omd create SITE` and `omd rm SITE`.

use std::fs;
use std::io::{self, BufRead, IsTerminal, Write};

use anyhow::Context as _;
use omd_versions::{OmdRoot, validate_site_name};
use site_merge::{SiteCreation, remove_site};

use crate::output::{print, refuse};
use crate::skel::{installed_skeleton, root_macro};
use crate::state;

/// `omd [-V VERSION] create SITE`: the site tree from the skeleton of
/// VERSION (default: the default version) with macros substituted, modes
/// from `skel.permissions`, the `version` link and `.version_meta/`; then
/// `<root>/apache/<site>.conf` (the site is enabled).
pub(crate) fn create(root: &OmdRoot, site: &str, version: Option<&str>) -> anyhow::Result<u8> {
    validate_site_name(site)?;
    let home = root.site_dir(site);
    if fs::symlink_metadata(&home).is_ok() {
        refuse!("Site '{site}' already existing.");
    }
    let version = match version {
        Some(v) => {
            if !root.version_exists(v)? {
                refuse!("Version '{v}' is not installed.");
            }
            v.to_owned()
        }
        None => match root.default_version()? {
            Some(v) => v,
            None => refuse!(
                "No default version is set ({} does not exist); choose the version with -V VERSION.",
                root.versions_dir().join("default").display()
            ),
        },
    };
    let skel = installed_skeleton(root, &version)?;
    SiteCreation::new(&home, site, skel)
        .root(root_macro(&home)?)
        .create()
        .with_context(|| format!("cannot create the site {site}"))?;
    let apache = root.path().join("apache");
    fs::create_dir_all(&apache).with_context(|| format!("cannot create {}", apache.display()))?;
    let conf = apache.join(format!("{site}.conf"));
    fs::write(
        &conf,
        format!(
            "# Site {site}: this file exists while the site is enabled (written by omd create).\n"
        ),
    )
    .with_context(|| format!("cannot write {}", conf.display()))?;
    print(&format!(
        "Created new site {site} with version {version}.\n\n  The site can be started with omd start {site}.\n\n"
    ))?;
    Ok(0)
}

/// `omd [-f] rm SITE`: asks for confirmation (type `yes`) unless `-f`; when
/// stdin is not a terminal it never asks and requires `-f`. A running site
/// is refused unless `-f`. Removes the site directory atomically (renamed
/// away first) and `<root>/apache/<site>.conf`.
pub(crate) fn rm(root: &OmdRoot, site: &str, force: bool) -> anyhow::Result<u8> {
    root.require_site(site)?;
    let home = root.site_dir(site);
    if !force && state::is_running(&home)? {
        refuse!(
            "The site '{site}' is running. Stop it first with 'omd stop {site}' (or remove it anyway with 'omd -f rm {site}')."
        );
    }
    if !force {
        if !io::stdin().is_terminal() {
            refuse!(
                "omd rm asks for a confirmation, but stdin is not a terminal. Use 'omd -f rm {site}' to remove the site without asking."
            );
        }
        let mut stdout = io::stdout().lock();
        write!(
            stdout,
            "PLEASE NOTE: This action removes all configuration files\n             and variable data of the site {site} ({}).\n\nDo you really want to remove it? (yes/NO): ",
            home.display()
        )
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
        let mut answer = String::new();
        io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if answer.trim() != "yes" {
            refuse!("Aborted.");
        }
    }
    remove_site(&home).with_context(|| format!("cannot remove the site {site}"))?;
    let conf = root.path().join("apache").join(format!("{site}.conf"));
    match fs::remove_file(&conf) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot remove {}", conf.display()));
        }
        _ => {}
    }
    print(&format!("Removed site {site}.\n"))?;
    Ok(0)
}
