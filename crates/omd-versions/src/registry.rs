//! The registry of installed versions and sites under an OMD root
//! (site-update.md §7).

use std::cmp::Ordering;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::edition::OmdVersion;

/// The OMD root used when neither `--root` nor [`ROOT_ENV`] says otherwise.
pub const DEFAULT_ROOT: &str = "/omd";

/// Environment variable naming the OMD root (`/omd` by default).
///
/// Deliberately not `OMD_ROOT`: inside a Checkmk site that variable names the
/// *site's* home directory (`/omd/sites/<site>`).
pub const ROOT_ENV: &str = "OMD_ROOT_DIR";

/// An error reading or changing the registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The site directory does not exist.
    #[error("No such site: {0}")]
    NoSuchSite(String),
    /// The site has no `version` link (an empty site dir).
    #[error("Failed to determine site version")]
    NoSiteVersion(String),
    /// `setversion` was given a version that is not installed.
    #[error("The given version does not exist.")]
    VersionDoesNotExist(String),
    /// `setversion` was given the current default.
    #[error("The given version is already default.")]
    AlreadyDefault(String),
    /// The name is not a valid site name.
    #[error(
        "Invalid site name {0:?}. Must begin with a character, may contain characters, \
         digits and _ and have length 1 up to 16"
    )]
    InvalidSiteName(String),
    /// A file system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted ("read the directory", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl RegistryError {
    /// True for "not found"-like results (a site, a site's version or a
    /// version that does not exist, or a version that already is the
    /// default): a valid question with a negative answer, as opposed to an
    /// invalid request or an I/O failure.
    pub fn is_negative_answer(&self) -> bool {
        matches!(
            self,
            RegistryError::NoSuchSite(_)
                | RegistryError::NoSiteVersion(_)
                | RegistryError::VersionDoesNotExist(_)
                | RegistryError::AlreadyDefault(_)
        )
    }
}

/// The target of a site's `version` link: `../../versions/<version>`.
pub fn version_link_target(version: &str) -> PathBuf {
    Path::new("../../versions").join(version)
}

/// The version a site home names: the last component of its `version` link,
/// not resolved (it may name a version that is not installed). `None` when
/// there is no link (an empty site dir, or a `version` that is not a link).
pub fn read_site_version(site_home: &Path) -> io::Result<Option<String>> {
    match fs::read_link(site_home.join("version")) {
        Ok(target) => Ok(target.file_name().map(|n| n.to_string_lossy().into_owned())),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::InvalidInput
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RegistryError {
    let path = path.to_path_buf();
    move |source| RegistryError::Io {
        action,
        path,
        source,
    }
}

/// Checks a site name as `omd create/mv/cp` do: a letter or `_` first,
/// then letters, digits or `_`, 1 to 16 characters in all (ASCII only).
/// Unlike upstream's regular expression, whose `$` also matches before a
/// final newline, `"asd\n"` is rejected.
///
/// ```
/// use omd_versions::validate_site_name;
/// assert!(validate_site_name("asd0").is_ok());
/// assert!(validate_site_name("0asd").is_err());
/// ```
pub fn validate_site_name(name: &str) -> Result<(), RegistryError> {
    let b = name.as_bytes();
    let valid = (1..=16).contains(&b.len())
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if valid {
        Ok(())
    } else {
        Err(RegistryError::InvalidSiteName(name.to_owned()))
    }
}

/// How to order installed versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VersionOrder {
    /// Checkmk's version order ([`Version::cmp_lenient`](crate::Version::cmp_lenient))
    /// of the names' Checkmk versions; names that are not OMD version names
    /// come last, in string order; equal versions are ordered by name.
    #[default]
    Checkmk,
    /// Plain byte-wise string order, as upstream `omd versions` does
    /// (`1.6.0p14` before `1.6.0p4`).
    String,
}

/// Sorts OMD version names in place.
pub fn sort_version_names(names: &mut [String], order: VersionOrder) {
    match order {
        VersionOrder::String => names.sort(),
        VersionOrder::Checkmk => {
            let mut keyed: Vec<(Option<OmdVersion>, String)> =
                names.iter().map(|n| (n.parse().ok(), n.clone())).collect();
            keyed.sort_by(|(a, an), (b, bn)| {
                match (a, b) {
                    (Some(a), Some(b)) => a.version().cmp_lenient(b.version()),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                }
                .then_with(|| an.cmp(bn))
            });
            for (slot, (_, name)) in names.iter_mut().zip(keyed) {
                *slot = name;
            }
        }
    }
}

/// One site as `omd sites` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteInfo {
    /// The site name (directory name below `sites/`).
    pub name: String,
    /// The OMD version the site's `version` link names; `None` for an empty
    /// site dir.
    pub version: Option<String>,
    /// True if `apache/<site>.conf` is missing.
    pub disabled: bool,
}

/// An OMD root directory (`/omd`): `versions/<name>` per installed version,
/// `versions/default` (a symlink to the default version), `sites/<site>`
/// per site, and `apache/<site>.conf` per enabled site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmdRoot {
    path: PathBuf,
}

impl OmdRoot {
    /// A registry over `path`. Nothing is read yet.
    pub fn new(path: impl Into<PathBuf>) -> OmdRoot {
        OmdRoot { path: path.into() }
    }

    /// The registry named by [`ROOT_ENV`] if set and not empty, else [`DEFAULT_ROOT`].
    pub fn from_env() -> OmdRoot {
        match std::env::var_os(ROOT_ENV) {
            Some(dir) if !dir.is_empty() => OmdRoot::new(dir),
            _ => OmdRoot::new(DEFAULT_ROOT),
        }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<root>/versions`.
    pub fn versions_dir(&self) -> PathBuf {
        self.path.join("versions")
    }

    /// `<root>/sites`.
    pub fn sites_dir(&self) -> PathBuf {
        self.path.join("sites")
    }

    /// `<root>/sites/<site>`, the site's home.
    pub fn site_dir(&self, site: &str) -> PathBuf {
        self.sites_dir().join(site)
    }

    /// Names of the installed versions (entries of `versions/` except
    /// `default`), in `order`. A missing directory means none. Names that are
    /// not UTF-8 are converted lossily.
    pub fn versions(&self, order: VersionOrder) -> Result<Vec<String>, RegistryError> {
        let mut names: Vec<String> = list_dir(&self.versions_dir())?
            .into_iter()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .filter(|name| name != "default")
            .collect();
        sort_version_names(&mut names, order);
        Ok(names)
    }

    /// True if `version` is installed.
    pub fn version_exists(&self, version: &str) -> Result<bool, RegistryError> {
        Ok(self
            .versions(VersionOrder::String)?
            .iter()
            .any(|v| v == version))
    }

    /// The default version: the last component of the fully resolved
    /// `versions/default` link (through any chain of links, as
    /// `realpath`); if the target is missing, the last component of the
    /// link itself. `None` if there is no `versions/default`.
    pub fn default_version(&self) -> Result<Option<String>, RegistryError> {
        let link = self.versions_dir().join("default");
        match fs::symlink_metadata(&link) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("inspect", &link)(e)),
            Ok(_) => {}
        }
        let target = match fs::canonicalize(&link) {
            Ok(real) => real,
            Err(_) => fs::read_link(&link).map_err(io_err("read the link", &link))?,
        };
        Ok(target.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// Makes `version` the default: checks it is installed and not already
    /// the default, then replaces `versions/default` **atomically** (a new
    /// link under a temporary name, renamed over the old one), so readers
    /// never see it missing. The link target is absolute,
    /// `<root>/versions/<version>`, as upstream writes it.
    ///
    /// Debian's `update-alternatives` handling of upstream is not done.
    pub fn set_default_version(&self, version: &str) -> Result<(), RegistryError> {
        if !self.version_exists(version)? {
            return Err(RegistryError::VersionDoesNotExist(version.to_owned()));
        }
        if self.default_version()?.as_deref() == Some(version) {
            return Err(RegistryError::AlreadyDefault(version.to_owned()));
        }
        let dir = self.versions_dir();
        let absolute_dir = std::path::absolute(&dir).map_err(io_err("resolve", &dir))?;
        let target = absolute_dir.join(version);
        let link = dir.join("default");
        let tmp = dir.join(format!(".default.tmp.{}", std::process::id()));
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("remove the stale temporary link", &tmp)(e));
            }
            _ => {}
        }
        symlink(&target, &tmp).map_err(io_err("create the temporary link", &tmp))?;
        if let Err(e) = fs::rename(&tmp, &link) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("replace", &link)(e));
        }
        Ok(())
    }

    /// Names of the sites (directories, or links to directories, below
    /// `sites/`), sorted as strings. A missing directory means none.
    pub fn sites(&self) -> Result<Vec<String>, RegistryError> {
        let mut names: Vec<String> = list_dir(&self.sites_dir())?
            .into_iter()
            .filter(|(_, path)| path.is_dir())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Checks that `site` is a valid name of an existing site.
    pub fn require_site(&self, site: &str) -> Result<(), RegistryError> {
        validate_site_name(site)?;
        if self.site_dir(site).is_dir() {
            Ok(())
        } else {
            Err(RegistryError::NoSuchSite(site.to_owned()))
        }
    }

    /// The site's version: the last component of its `version` link, not
    /// resolved (it may name a version that is not installed). `None` for an
    /// empty site dir (no link).
    pub fn site_version(&self, site: &str) -> Result<Option<String>, RegistryError> {
        self.require_site(site)?;
        self.site_version_unchecked(site)
    }

    fn site_version_unchecked(&self, site: &str) -> Result<Option<String>, RegistryError> {
        let site_dir = self.site_dir(site);
        read_site_version(&site_dir).map_err(io_err("read the link", &site_dir.join("version")))
    }

    /// Points the site's `version` link at `version`, written as
    /// `../../versions/<version>` and replaced atomically.
    pub fn set_site_version(&self, site: &str, version: &str) -> Result<(), RegistryError> {
        self.require_site(site)?;
        let site_dir = self.site_dir(site);
        let link = site_dir.join("version");
        let tmp = site_dir.join(format!(".version.tmp.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        symlink(&version_link_target(version), &tmp)
            .map_err(io_err("create the temporary link", &tmp))?;
        if let Err(e) = fs::rename(&tmp, &link) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("replace", &link)(e));
        }
        Ok(())
    }

    /// True if the site is disabled (`apache/<site>.conf` is missing).
    pub fn is_disabled(&self, site: &str) -> bool {
        !self
            .path
            .join("apache")
            .join(format!("{site}.conf"))
            .exists()
    }

    /// Everything `omd sites` shows about one site.
    pub fn site_info(&self, site: &str) -> Result<SiteInfo, RegistryError> {
        self.require_site(site)?;
        self.site_info_unchecked(site)
    }

    fn site_info_unchecked(&self, site: &str) -> Result<SiteInfo, RegistryError> {
        Ok(SiteInfo {
            name: site.to_owned(),
            version: self.site_version_unchecked(site)?,
            disabled: self.is_disabled(site),
        })
    }

    /// [`site_info`](Self::site_info) for every site, in name order.
    /// Directories with names that are not valid site names are listed too,
    /// as upstream does.
    pub fn site_infos(&self) -> Result<Vec<SiteInfo>, RegistryError> {
        self.sites()?
            .iter()
            .map(|s| self.site_info_unchecked(s))
            .collect()
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "OMD roots need symbolic links (Unix only)",
    ))
}

/// Entries of a directory; a missing directory is empty.
fn list_dir(dir: &Path) -> Result<Vec<(OsString, PathBuf)>, RegistryError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read the directory", dir)(e)),
    };
    entries
        .map(|entry| {
            let entry = entry.map_err(io_err("read the directory", dir))?;
            Ok((entry.file_name(), entry.path()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The upstream test layout of site-update.md §7.
    fn fixture() -> (tempfile::TempDir, OmdRoot) {
        let tmp = tempfile::tempdir().unwrap();
        let root = OmdRoot::new(tmp.path());
        for v in ["1.2.3p4", "1.6.0p4", "1.6.0p14"] {
            fs::create_dir_all(root.versions_dir().join(v)).unwrap();
        }
        symlink(
            &root.versions_dir().join("1.6.0p4"),
            &root.versions_dir().join("default"),
        )
        .unwrap();
        for s in ["broken", "default", "disabled", "empty", "xyz"] {
            fs::create_dir_all(root.site_dir(s)).unwrap();
        }
        for (s, v) in [
            ("broken", "1.0.0"),
            ("default", "1.6.0p4"),
            ("disabled", "1.6.0p4"),
            ("xyz", "1.2.3p4"),
        ] {
            root.set_site_version(s, v).unwrap();
        }
        fs::create_dir_all(tmp.path().join("apache")).unwrap();
        for s in ["broken", "default", "empty", "xyz"] {
            fs::write(tmp.path().join("apache").join(format!("{s}.conf")), "").unwrap();
        }
        (tmp, root)
    }

    #[test]
    fn versions_in_both_orders() {
        let (_tmp, root) = fixture();
        assert_eq!(
            root.versions(VersionOrder::String).unwrap(),
            ["1.2.3p4", "1.6.0p14", "1.6.0p4"]
        );
        assert_eq!(
            root.versions(VersionOrder::Checkmk).unwrap(),
            ["1.2.3p4", "1.6.0p4", "1.6.0p14"]
        );
        assert!(root.version_exists("1.6.0p4").unwrap());
        assert!(!root.version_exists("default").unwrap());
    }

    #[test]
    fn checkmk_order_of_names() {
        let mut names: Vec<String> = [
            "2019.12.11.cee",
            "junk",
            "1.6.0p7.cre",
            "1.6.0p7.cee",
            "1.6.0i10.cre",
            "1.2.0p23.cre",
            "1.6.0i1.cre",
            "2.3.0-2024.01.01.cee",
            "2.3.0p3.cee",
        ]
        .map(String::from)
        .to_vec();
        sort_version_names(&mut names, VersionOrder::Checkmk);
        assert_eq!(
            names,
            [
                "1.2.0p23.cre",
                "1.6.0i1.cre",
                "1.6.0i10.cre",
                "1.6.0p7.cee",
                "1.6.0p7.cre",
                "2.3.0p3.cee",
                "2.3.0-2024.01.01.cee",
                "2019.12.11.cee",
                "junk"
            ]
        );
    }

    #[test]
    fn missing_directories_mean_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let root = OmdRoot::new(tmp.path().join("nothing"));
        assert!(root.versions(VersionOrder::Checkmk).unwrap().is_empty());
        assert!(root.sites().unwrap().is_empty());
        assert_eq!(root.default_version().unwrap(), None);
    }

    #[test]
    fn default_version_follows_links() {
        let (_tmp, root) = fixture();
        assert_eq!(root.default_version().unwrap().as_deref(), Some("1.6.0p4"));
        // A dangling link still names its target.
        let dir = root.versions_dir();
        fs::remove_file(dir.join("default")).unwrap();
        symlink(Path::new("/nonexistent/2.9.0.cee"), &dir.join("default")).unwrap();
        assert_eq!(
            root.default_version().unwrap().as_deref(),
            Some("2.9.0.cee")
        );
        // A chain (Debian alternatives) resolves to the last target.
        fs::remove_file(dir.join("default")).unwrap();
        symlink(Path::new("alt"), &dir.join("default")).unwrap();
        symlink(Path::new("1.2.3p4"), &dir.join("alt")).unwrap();
        assert_eq!(root.default_version().unwrap().as_deref(), Some("1.2.3p4"));
    }

    #[test]
    fn set_default_version_replaces_the_link() {
        let (_tmp, root) = fixture();
        root.set_default_version("1.6.0p14").unwrap();
        assert_eq!(root.default_version().unwrap().as_deref(), Some("1.6.0p14"));
        let target = fs::read_link(root.versions_dir().join("default")).unwrap();
        assert!(target.is_absolute());
        assert!(target.ends_with("versions/1.6.0p14"));
        // No temporary link left behind.
        let leftovers: Vec<_> = fs::read_dir(root.versions_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn set_default_version_errors() {
        let (_tmp, root) = fixture();
        let e = root.set_default_version("9.9.9").unwrap_err();
        assert_eq!(e.to_string(), "The given version does not exist.");
        assert!(e.is_negative_answer());
        let e = root.set_default_version("1.6.0p4").unwrap_err();
        assert_eq!(e.to_string(), "The given version is already default.");
        let e = root.set_default_version("default").unwrap_err();
        assert!(matches!(e, RegistryError::VersionDoesNotExist(_)));
    }

    #[test]
    fn set_default_version_works_on_a_relative_root() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("omd/versions/2.3.0p1.cre")).unwrap();
        let cwd = std::env::current_dir().unwrap();
        let rel = pathdiff(tmp.path(), &cwd);
        let root = OmdRoot::new(rel.join("omd"));
        root.set_default_version("2.3.0p1.cre").unwrap();
        assert_eq!(
            root.default_version().unwrap().as_deref(),
            Some("2.3.0p1.cre")
        );
    }

    /// A relative path from `base` to `path` (both absolute).
    fn pathdiff(path: &Path, base: &Path) -> PathBuf {
        let up = base.components().count() - 1;
        let mut rel = PathBuf::new();
        for _ in 0..up {
            rel.push("..");
        }
        rel.join(path.strip_prefix("/").unwrap())
    }

    #[test]
    fn sites_and_their_versions() {
        let (tmp, root) = fixture();
        fs::write(root.sites_dir().join("a_file"), "").unwrap();
        assert_eq!(
            root.sites().unwrap(),
            ["broken", "default", "disabled", "empty", "xyz"]
        );
        assert_eq!(
            root.site_version("broken").unwrap().as_deref(),
            Some("1.0.0")
        );
        assert_eq!(root.site_version("empty").unwrap(), None);
        let link = fs::read_link(root.site_dir("xyz").join("version")).unwrap();
        assert_eq!(link, Path::new("../../versions/1.2.3p4"));
        assert!(root.is_disabled("disabled"));
        assert!(!root.is_disabled("default"));
        let e = root.site_version("nosite").unwrap_err();
        assert_eq!(e.to_string(), "No such site: nosite");
        assert!(e.is_negative_answer());
        let e = root.site_version("../versions").unwrap_err();
        assert!(matches!(e, RegistryError::InvalidSiteName(_)), "{e}");
        assert!(!e.is_negative_answer());
        let infos = root.site_infos().unwrap();
        assert_eq!(infos.len(), 5);
        assert_eq!(
            infos[2],
            SiteInfo {
                name: "disabled".into(),
                version: Some("1.6.0p4".into()),
                disabled: true
            }
        );
        // The version file of a site given in a version of version_from_site_dir.
        fs::create_dir_all(tmp.path().join("sites/s2")).unwrap();
        symlink(
            Path::new("../../versions/2018.08.11.cee"),
            &tmp.path().join("sites/s2/version"),
        )
        .unwrap();
        assert_eq!(
            root.site_version("s2").unwrap().as_deref(),
            Some("2018.08.11.cee")
        );
        assert_eq!(
            root.site_info("s2").unwrap().version.as_deref(),
            Some("2018.08.11.cee")
        );
    }

    #[test]
    fn site_name_rules() {
        for ok in ["asd0", "a", "_x", "abcdefghijklmnop", "A_1"] {
            assert!(validate_site_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "0asd",
            "",
            "abcdefghijklmnopq",
            "a-b",
            "a.b",
            "ä",
            "a b",
            "asd\n",
        ] {
            let e = validate_site_name(bad).unwrap_err();
            assert!(e.to_string().starts_with("Invalid site name"), "{e}");
        }
    }

    #[test]
    fn io_errors_name_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("versions"), "not a dir").unwrap();
        let root = OmdRoot::new(tmp.path());
        let e = root.versions(VersionOrder::String).unwrap_err();
        assert!(
            e.to_string()
                .contains(&tmp.path().join("versions").display().to_string()),
            "{e}"
        );
        assert!(!e.is_negative_answer());
    }
}
