//! Site creation (`omd create`) and removal (`omd rm`), and the `version` link.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{Error, IoContext, Result};
use super::exec::write_version_meta;
use super::fsx::{self, Kind};
use super::macros::Replacements;
use super::perms::PermissionTable;
use super::plan::walk_for_create;
use super::skeleton::{Skeleton, VERSION_META_DIR};

/// The name of the link in the site home that names the site's version.
pub const VERSION_LINK: &str = "version";

/// The links `omd create` makes in the site home into the version
/// (`bin -> version/bin`, …).
pub const VERSION_DIR_LINKS: [&str; 4] = ["bin", "include", "lib", "share"];

/// The mode `omd create` gives the site directory.
pub const SITE_DIR_MODE: u32 = 0o751;

pub use omd_versions::version_link_target;

/// The site's version: the last component of its `version` link (not
/// resolved, so it may name a version that is not installed); `None`
/// without a link.
pub fn site_version(site_home: &Path) -> Result<Option<String>> {
    omd_versions::read_site_version(site_home).ctx("read link", site_home.join(VERSION_LINK))
}

/// Copies a tree as-is (no macros): directories with their modes, files with
/// their content and mode, symlinks with their target.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let mode = fsx::own_mode(from).ctx("inspect", from)?;
    fs::create_dir(to).ctx("create", to)?;
    for name in fsx::sorted_names(from).ctx("list", from)? {
        let (src, dst) = (from.join(&name), to.join(&name));
        match fsx::kind_of(&src).ctx("inspect", &src)? {
            Some(Kind::Dir) => copy_tree(&src, &dst)?,
            Some(Kind::Link) => {
                let target = fs::read_link(&src).ctx("read link", &src)?;
                std::os::unix::fs::symlink(&target, &dst).ctx("create link", &dst)?;
            }
            Some(Kind::File) => {
                fs::copy(&src, &dst).ctx("copy", &src)?;
            }
            None => {}
        }
    }
    fsx::set_mode(to, mode).ctx("chmod", to)
}

/// Creates a site from a version's skeleton, as `omd create` does.
///
/// As Checkmk's `omd create`: the site directory gets mode 0751
/// ([`SITE_DIR_MODE`]) and the links `bin`, `include`, `lib`, `share` →
/// `version/<name>` ([`VERSION_DIR_LINKS`]); the skeleton is copied with
/// macros substituted (`###SITE###`, `###ROOT###`, `###EDITION###`), modes
/// from `skel.permissions` (else 0750 for directories, 0640 for files),
/// symlinks verbatim, everything except the contents of `tmp/` (so
/// directories such as `tmpfoo` are copied); `version` →
/// `../../versions/<version>`, and `.version_meta/` is written. The tree is built in a hidden sibling
/// directory and renamed into place, so a crash never leaves half a site.
#[derive(Clone, Debug)]
pub struct SiteCreation {
    site_home: PathBuf,
    site: String,
    skeleton: Skeleton,
    root: Option<String>,
    version_meta: bool,
}

/// What [`SiteCreation::create`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Created {
    /// The number of skeleton paths created.
    pub paths: usize,
}

impl SiteCreation {
    /// Prepares creating site `site` at `site_home` from `skeleton`.
    pub fn new(site_home: impl Into<PathBuf>, site: impl Into<String>, skeleton: Skeleton) -> Self {
        Self {
            site_home: site_home.into(),
            site: site.into(),
            skeleton,
            root: None,
            version_meta: true,
        }
    }

    /// The value of `###ROOT###` (default: the site home as given).
    pub fn root(mut self, root: impl Into<String>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Whether to write `.version_meta/` (default on).
    pub fn version_meta(mut self, write: bool) -> Self {
        self.version_meta = write;
        self
    }

    /// Creates the site. Fails with [`Error::SiteExists`] when `site_home`
    /// exists and is not an empty directory.
    pub fn create(&self) -> Result<Created> {
        let home = &self.site_home;
        match fsx::kind_of(home).ctx("inspect", home)? {
            None => {}
            Some(Kind::Dir) if fsx::sorted_names(home).ctx("list", home)?.is_empty() => {}
            Some(_) => return Err(Error::SiteExists { path: home.clone() }),
        }
        if let Some(parent) = home.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).ctx("create", parent)?;
        }
        let staging = hidden_sibling(home, "site-create")?;
        fsx::remove_any(&staging).ctx("remove", &staging)?;
        let result = self.build(&staging).and_then(|paths| {
            if fsx::kind_of(home).ctx("inspect", home)?.is_some() {
                fs::remove_dir(home).ctx("remove", home)?;
            }
            fs::rename(&staging, home).ctx("rename into place", &staging)?;
            if let Some(parent) = home.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsx::sync_dir(parent).ctx("sync", parent)?;
            }
            Ok(Created { paths })
        });
        if result.is_err() {
            let _ = fsx::remove_any(&staging);
        }
        result
    }

    fn build(&self, dir: &Path) -> Result<usize> {
        let skel = self.skeleton.skel_dir();
        let perms = PermissionTable::load(self.skeleton.permissions_file())?;
        let root = self
            .root
            .clone()
            .unwrap_or_else(|| self.site_home.to_string_lossy().into_owned());
        let repl = Replacements::new(&self.site, root)
            .with_edition(self.skeleton.edition_name().map(str::to_owned));
        fs::create_dir(dir).ctx("create", dir)?;
        // Links into the version, made before the skeleton as Checkmk does.
        for name in VERSION_DIR_LINKS {
            let link = dir.join(name);
            std::os::unix::fs::symlink(format!("{VERSION_LINK}/{name}"), &link)
                .ctx("create link", &link)?;
        }
        let paths = walk_for_create(skel)?;
        for (rel, kind) in &paths {
            let (src, dst) = (skel.join(rel), dir.join(rel));
            let mode = perms.skel_perm_of(skel, rel, Some(*kind));
            match kind {
                Kind::Dir => {
                    fs::create_dir(&dst).ctx("create", &dst)?;
                    fsx::set_mode(&dst, mode).ctx("chmod", &dst)?;
                }
                Kind::Link => {
                    let target = fs::read_link(&src).ctx("read link", &src)?;
                    std::os::unix::fs::symlink(&target, &dst).ctx("create link", &dst)?;
                }
                Kind::File => {
                    let content = repl.apply_owned(fs::read(&src).ctx("read", &src)?);
                    fsx::write_temp(&dst, &content, mode, false).ctx("write", &dst)?;
                }
            }
        }
        let link = dir.join(VERSION_LINK);
        std::os::unix::fs::symlink(version_link_target(self.skeleton.version()), &link)
            .ctx("create link", &link)?;
        fsx::set_mode(dir, SITE_DIR_MODE).ctx("chmod", dir)?;
        if self.version_meta {
            write_version_meta(
                &dir.join(VERSION_META_DIR),
                skel,
                self.skeleton.permissions_file(),
                self.skeleton.version(),
            )?;
        }
        Ok(paths.len())
    }
}

/// Removes a site (`omd rm`): the directory must have a `version` link (or
/// be empty). It is first renamed to a hidden sibling, so the site
/// disappears atomically, then deleted.
pub fn remove_site(site_home: &Path) -> Result<()> {
    let is_site =
        fsx::kind_of(&site_home.join(VERSION_LINK)).ctx("inspect", site_home)? == Some(Kind::Link);
    let empty = fsx::kind_of(site_home).ctx("inspect", site_home)? == Some(Kind::Dir)
        && fsx::sorted_names(site_home)
            .ctx("list", site_home)?
            .is_empty();
    if !is_site && !empty {
        return Err(Error::NotASite {
            path: site_home.to_path_buf(),
        });
    }
    let doomed = hidden_sibling(site_home, "site-rm")?;
    fsx::remove_any(&doomed).ctx("remove", &doomed)?;
    fs::rename(site_home, &doomed).ctx("rename", site_home)?;
    fs::remove_dir_all(&doomed).ctx("remove", &doomed)
}

fn hidden_sibling(path: &Path, what: &str) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| Error::Io {
        action: "use",
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the site path has no name",
        ),
    })?;
    Ok(path.with_file_name(format!(".{}.{what}~", name.to_string_lossy())))
}
