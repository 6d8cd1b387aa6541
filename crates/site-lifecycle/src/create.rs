//! `omd create SITE` and `omd rm SITE`.

use std::fs;
use std::io;

use omd_versions::{OmdRoot, validate_site_name};
use site_merge::{SiteCreation, remove_site};

use crate::error::{IoContext, Result, refuse};
use crate::skel::{installed_skeleton, root_macro};
use crate::state;

/// `omd [-V VERSION] create SITE`: the site tree from the skeleton of
/// VERSION (default: the default version) with macros substituted, modes
/// from `skel.permissions`, the `version` link and `.version_meta/`; then
/// `<root>/apache/<site>.conf` (the site is enabled). Returns the version.
pub fn create(root: &OmdRoot, site: &str, version: Option<&str>) -> Result<String> {
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
        .create()?;
    let apache = root.path().join("apache");
    fs::create_dir_all(&apache).ctx("create", &apache)?;
    let conf = apache.join(format!("{site}.conf"));
    fs::write(
        &conf,
        format!(
            "# Site {site}: this file exists while the site is enabled (written by omd create).\n"
        ),
    )
    .ctx("write", &conf)?;
    Ok(version)
}

/// The checks of `omd rm SITE` before it asks: the site exists and, unless
/// `force`, is not running.
pub fn check_rm(root: &OmdRoot, site: &str, force: bool) -> Result<()> {
    root.require_site(site)?;
    if !force && state::is_running(&root.site_dir(site))? {
        refuse!(
            "The site '{site}' is running. Stop it first with 'omd stop {site}' (or remove it anyway with 'omd -f rm {site}')."
        );
    }
    Ok(())
}

/// `omd [-f] rm SITE` once confirmed: [`check_rm`] again, then the site
/// directory is removed atomically (renamed away first) under the site's
/// lock, and `<root>/apache/<site>.conf`.
pub fn rm(root: &OmdRoot, site: &str, force: bool) -> Result<()> {
    check_rm(root, site, force)?;
    let home = root.site_dir(site);
    {
        let _lock = state::lock_site(&home)?;
        remove_site(&home)?;
    }
    let conf = root.path().join("apache").join(format!("{site}.conf"));
    match fs::remove_file(&conf) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).ctx("remove", &conf),
        _ => Ok(()),
    }
}
