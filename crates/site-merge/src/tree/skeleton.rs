//! Where a version's skeleton and permissions live.

use std::fs;
use std::path::{Path, PathBuf};

/// The name of the per-site copy of the skeleton of the site's version.
pub const VERSION_META_DIR: &str = ".version_meta";

/// One version's skeleton: its name, its `skel/` directory, its
/// `skel.permissions` file and (optionally) its long edition name for `###EDITION###`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skeleton {
    version: String,
    skel: PathBuf,
    permissions: PathBuf,
    edition: Option<String>,
}

impl Skeleton {
    /// The skeleton of version `version` installed below `versions_dir`
    /// (`<versions_dir>/<version>/skel` and
    /// `<versions_dir>/<version>/share/omd/skel.permissions`).
    pub fn of_version(versions_dir: &Path, version: impl Into<String>) -> Self {
        let version = version.into();
        let base = versions_dir.join(&version);
        Self {
            skel: base.join("skel"),
            permissions: base.join("share/omd/skel.permissions"),
            version,
            edition: None,
        }
    }

    /// A skeleton at an explicit place; without [`Skeleton::permissions`] the
    /// permissions file is `<skel>/../share/omd/skel.permissions`.
    pub fn new(version: impl Into<String>, skel_dir: impl Into<PathBuf>) -> Self {
        let skel: PathBuf = skel_dir.into();
        let permissions = skel
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join("share/omd/skel.permissions");
        Self {
            version: version.into(),
            skel,
            permissions,
            edition: None,
        }
    }

    /// The skeleton of version `version` for site `site_home`: the site's own
    /// copy `.version_meta/skel` when `.version_meta/version` names this
    /// version, else the installed one below `versions_dir` (as Checkmk does
    /// for the old skeleton).
    pub fn for_site(site_home: &Path, versions_dir: &Path, version: impl Into<String>) -> Self {
        let version = version.into();
        let meta = site_home.join(VERSION_META_DIR);
        let meta_version = fs::read_to_string(meta.join("version")).unwrap_or_default();
        if meta_version.lines().next().map(str::trim) == Some(version.as_str())
            && meta.join("skel").is_dir()
        {
            Self {
                skel: meta.join("skel"),
                permissions: meta.join("skel.permissions"),
                version,
                edition: None,
            }
        } else {
            Self::of_version(versions_dir, version)
        }
    }

    /// Uses another `skel.permissions` file.
    pub fn permissions(mut self, file: impl Into<PathBuf>) -> Self {
        self.permissions = file.into();
        self
    }

    /// Sets the long edition name substituted for `###EDITION###`
    /// (`raw`, `enterprise`, `community`, `pro`, …). Unset: the macro stays.
    pub fn edition(mut self, edition: impl Into<String>) -> Self {
        self.edition = Some(edition.into());
        self
    }

    /// The version name.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The `skel/` directory.
    pub fn skel_dir(&self) -> &Path {
        &self.skel
    }

    /// The `skel.permissions` file (may be absent: then no table entries).
    pub fn permissions_file(&self) -> &Path {
        &self.permissions
    }

    /// The long edition name, if set.
    pub fn edition_name(&self) -> Option<&str> {
        self.edition.as_deref()
    }
}
