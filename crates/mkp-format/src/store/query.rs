//! Reading the store: stored packages, enabled marks, installed manifests, `list`, `find`.

use std::fs;
use std::path::{Path, PathBuf};

use omd_versions::{OmdVersion, omd_update_version_string, read_site_version};

use crate::find::{inventory, unpackaged_of};
use crate::{
    Limits, LocalFile, Manifest, PackageName, PackagePart, PackageVersion, PyValue, read_manifest,
    render_table,
};

use super::error::{Result, StoreError};
use super::{ENABLED_DIR, HASHES_KEY, INSTALLED_DIR, LOCAL_DIR, PackageId, SHIPPED_DIR, Site};

/// Everything `mkp list` shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// Stored local packages (sorted by name and version).
    pub local: Vec<Manifest>,
    /// Shipped packages (sorted by name and version).
    pub shipped: Vec<Manifest>,
    /// Installed manifests, sorted by name ("Enabled (active on this site)").
    pub installed: Vec<Manifest>,
    /// Enabled but not installed ("Enabled (inactive on this site)").
    pub inactive: Vec<Manifest>,
}

/// The manifest without our private hash key (for output).
pub(crate) fn public(manifest: &Manifest) -> Manifest {
    let mut m = manifest.clone();
    m.remove_extra(HASHES_KEY);
    m
}

fn json_list(manifests: &[Manifest]) -> String {
    let items: Vec<String> = manifests
        .iter()
        .map(|m| public(m).to_field_json())
        .collect();
    format!("[{}]", items.join(","))
}

impl Listing {
    /// The `mkp list` table: `Name Version Title Author Req. Version Until Version Files
    /// State`, installed first, then inactive, then the remaining stored packages.
    pub fn to_table(&self) -> String {
        let row = |m: &Manifest, state: &str| {
            vec![
                m.name.to_string(),
                m.version.to_string(),
                m.title.clone(),
                m.author.clone(),
                m.version_min_required.clone(),
                m.version_usable_until
                    .clone()
                    .unwrap_or_else(|| "None".into()),
                m.file_count().to_string(),
                state.to_string(),
            ]
        };
        let mut rows = Vec::new();
        let mut shown: Vec<PackageId> = Vec::new();
        for m in &self.installed {
            rows.push(row(m, "Enabled (active on this site)"));
            shown.push(PackageId::of(m));
        }
        for m in &self.inactive {
            rows.push(row(m, "Enabled (inactive on this site)"));
            shown.push(PackageId::of(m));
        }
        for m in self.local.iter().chain(&self.shipped) {
            let id = PackageId::of(m);
            if !shown.contains(&id) {
                rows.push(row(m, "Disabled"));
                shown.push(id);
            }
        }
        render_table(
            &[
                "Name",
                "Version",
                "Title",
                "Author",
                "Req. Version",
                "Until Version",
                "Files",
                "State",
            ],
            &rows,
        )
    }

    /// `mkp list --json`: `{"stored":{"local":[..],"shipped":[..]},"installed":[..],
    /// "inactive":[..]}` with manifests by field name, compact.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"stored\":{{\"local\":{},\"shipped\":{}}},\"installed\":{},\"inactive\":{}}}",
            json_list(&self.local),
            json_list(&self.shipped),
            json_list(&self.installed),
            json_list(&self.inactive)
        )
    }
}

/// The Checkmk version of the site rooted at `root`, from its `version` symlink: the link
/// target's last component is an OMD version name (`2.3.0p12.cre`), converted to the
/// Checkmk version (`2.3.0p12`).
pub fn site_version_from_link(root: &Path) -> Result<String> {
    let link = root.join("version");
    let name = read_site_version(root)
        .map_err(|e| StoreError::SiteVersion {
            problem: format!("cannot read the link {}: {e}", link.display()),
        })?
        .ok_or_else(|| StoreError::SiteVersion {
            problem: format!("{} is not a link to a version", link.display()),
        })?;
    match name.parse::<OmdVersion>() {
        Ok(v) => Ok(v.version().to_string()),
        Err(_) => Ok(omd_update_version_string(&name).to_string()),
    }
}

/// Parses `<name>-<version>.mkp`; the name cannot contain `-`... but it can, so the id is
/// taken from the manifest instead; this only filters file names.
fn is_mkp(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "mkp") && path.is_file()
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
}

fn sort_manifests(list: &mut [Manifest]) {
    list.sort_by(|a, b| {
        a.name
            .as_str()
            .cmp(b.name.as_str())
            .then_with(|| a.version.sort_key().cmp(&b.version.sort_key()))
    });
}

impl Site {
    pub(crate) fn read_limits(&self) -> &Limits {
        &self.limits
    }

    /// Reads the manifest of a package file; errors name the file.
    pub(crate) fn read_package_manifest(&self, path: &Path) -> Result<Manifest> {
        let bytes = fs::read(path).map_err(|e| StoreError::io("Cannot read file", path, e))?;
        read_manifest(&bytes, &self.limits).map_err(|source| StoreError::Format {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Manifests of every readable package in `dir`; broken files are logged and skipped,
    /// like Checkmk does.
    fn manifests_in(&self, dir: &Path) -> Vec<(PathBuf, Manifest)> {
        let mut out = Vec::new();
        for path in sorted_entries(dir) {
            if !is_mkp(&path) {
                continue;
            }
            match self.read_package_manifest(&path) {
                Ok(m) => out.push((path, m)),
                Err(e) => {
                    tracing::warn!("[{}]: Failed to read package manifest: {e}", path.display())
                }
            }
        }
        out
    }

    fn manifest_list(&self, rel: &str) -> Vec<Manifest> {
        let mut list: Vec<Manifest> = self
            .manifests_in(&self.dir(rel))
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        sort_manifests(&mut list);
        list
    }

    /// Stored local packages.
    pub fn local_packages(&self) -> Vec<Manifest> {
        self.manifest_list(LOCAL_DIR)
    }

    /// Shipped packages.
    pub fn shipped_packages(&self) -> Vec<Manifest> {
        self.manifest_list(SHIPPED_DIR)
    }

    /// Packages with an enabled mark.
    pub fn enabled_packages(&self) -> Vec<Manifest> {
        self.manifest_list(ENABLED_DIR)
    }

    /// The installed manifest of `name`, if any (unreadable ones are logged and ignored).
    pub fn installed_manifest(&self, name: &PackageName) -> Option<Manifest> {
        let path = self.dir(INSTALLED_DIR).join(name.as_str());
        let text = fs::read(&path).ok()?;
        let parsed = String::from_utf8(text)
            .map_err(|_| "not UTF-8 text".to_string())
            .and_then(|t| Manifest::from_info(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!("[{}]: Failed to read package manifest: {e}", path.display());
                None
            }
        }
    }

    /// Every installed manifest, sorted by name.
    pub fn installed(&self) -> Vec<Manifest> {
        let mut out = Vec::new();
        for path in sorted_entries(&self.dir(INSTALLED_DIR)) {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !path.is_file() {
                continue;
            }
            let Ok(name) = PackageName::new(name) else {
                continue;
            };
            if let Some(m) = self.installed_manifest(&name) {
                out.push(m);
            }
        }
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        out
    }

    /// Everything `mkp list` shows.
    pub fn listing(&self) -> Result<Listing> {
        let installed = self.installed();
        let installed_ids: Vec<PackageId> = installed.iter().map(PackageId::of).collect();
        let inactive = self
            .enabled_packages()
            .into_iter()
            .filter(|m| !installed_ids.contains(&PackageId::of(m)))
            .collect();
        Ok(Listing {
            local: self.local_packages(),
            shipped: self.shipped_packages(),
            installed,
            inactive,
        })
    }

    /// The file of a package id: local, then enabled mark, then shipped.
    pub(crate) fn package_path(&self, id: &PackageId) -> Result<PathBuf> {
        let file = id.file_name();
        for rel in [LOCAL_DIR, ENABLED_DIR, SHIPPED_DIR] {
            let path = self.dir(rel).join(&file);
            if path.is_file() {
                return Ok(path);
            }
        }
        Err(StoreError::NoSuchPackage {
            name: id.name.to_string(),
            version: Some(id.version.to_string()),
        })
    }

    /// The bytes of a stored package.
    pub(crate) fn package_bytes(&self, id: &PackageId) -> Result<(PathBuf, Vec<u8>)> {
        let path = self.package_path(id)?;
        let bytes = fs::read(&path).map_err(|e| StoreError::io("Cannot read file", &path, e))?;
        Ok((path, bytes))
    }

    /// The enabled mark of `id`.
    pub(crate) fn mark_path(&self, id: &PackageId) -> PathBuf {
        self.dir(ENABLED_DIR).join(id.file_name())
    }

    /// The installed-manifest file of `name`.
    pub(crate) fn installed_path(&self, name: &PackageName) -> PathBuf {
        self.dir(INSTALLED_DIR).join(name.as_str())
    }

    /// The local store file of `id`.
    pub(crate) fn local_path(&self, id: &PackageId) -> PathBuf {
        self.dir(LOCAL_DIR).join(id.file_name())
    }

    /// The shipped file of `id`.
    pub(crate) fn shipped_path(&self, id: &PackageId) -> PathBuf {
        self.dir(SHIPPED_DIR).join(id.file_name())
    }

    /// Completes a package id: with `version`, as given; without, the only stored (local or
    /// shipped) version of `name`, else `No such package` / `Please specify version`.
    pub fn resolve(
        &self,
        name: &PackageName,
        version: Option<&PackageVersion>,
    ) -> Result<PackageId> {
        if let Some(v) = version {
            return Ok(PackageId {
                name: name.clone(),
                version: v.clone(),
            });
        }
        let mut versions: Vec<PackageVersion> = self
            .local_packages()
            .into_iter()
            .chain(self.shipped_packages())
            .filter(|m| m.name == *name)
            .map(|m| m.version)
            .collect();
        versions.sort_by_key(PackageVersion::sort_key);
        versions.dedup();
        match versions.len() {
            0 => Err(StoreError::NoSuchPackage {
                name: name.to_string(),
                version: None,
            }),
            1 => Ok(PackageId {
                name: name.clone(),
                version: versions.remove(0),
            }),
            _ => Err(StoreError::AmbiguousVersion {
                name: name.to_string(),
                versions: versions
                    .iter()
                    .map(PackageVersion::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The manifest of a stored package (`mkp show`).
    pub fn stored_manifest(&self, id: &PackageId) -> Result<Manifest> {
        let path = self.package_path(id)?;
        self.read_package_manifest(&path)
    }

    /// The absolute paths of a stored package's files, in manifest order (`mkp files`).
    pub fn package_files(&self, id: &PackageId) -> Result<Vec<PathBuf>> {
        let m = self.stored_manifest(id)?;
        Ok(m.files
            .iter()
            .flat_map(|(part, files)| {
                let dir = self.paths.part_dir(*part).to_path_buf();
                files.iter().map(move |f| dir.join(f))
            })
            .collect())
    }

    /// The `mkp find` inventory of the site's local files.
    ///
    /// The store's own enabled marks (`local/share/check_mk/enabled_packages/*.mkp`) are
    /// not local files of an extension and are left out.
    pub fn find(&self) -> Vec<LocalFile> {
        inventory(&self.paths, &self.installed(), &[self.dir(ENABLED_DIR)])
    }

    /// Files in part directories that no installed package lists ([`crate::unpackaged_files`]),
    /// from [`Site::find`].
    pub fn unpackaged_files(&self) -> Vec<(PackagePart, Vec<String>)> {
        unpackaged_of(&self.find())
    }

    /// The manifest template of site-mode `mkp template`: the site version as
    /// `version.min_required` and the parts with unpackaged files.
    pub fn template(&self, name: &PackageName) -> Result<Manifest> {
        let version = self.version()?;
        Ok(Manifest::template(
            name.clone(),
            version,
            Some(self.unpackaged_files()),
        ))
    }

    /// The SHA-256 recorded for `(part, path)` in an installed manifest.
    pub(crate) fn recorded_hash(
        manifest: &Manifest,
        part: PackagePart,
        path: &str,
    ) -> Option<String> {
        let PyValue::Dict(parts) = manifest.extra_value(HASHES_KEY)? else {
            return None;
        };
        let (_, files) = parts
            .iter()
            .find(|(k, _)| matches!(k, PyValue::Str(s) if s == part.id()))?;
        let PyValue::Dict(files) = files else {
            return None;
        };
        files.iter().find_map(|(k, v)| match (k, v) {
            (PyValue::Str(p), PyValue::Str(h)) if p == path => Some(h.clone()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_version_link() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("../../versions/2.4.0p3.cee", dir.path().join("version"))
            .unwrap();
        assert_eq!(site_version_from_link(dir.path()).unwrap(), "2.4.0p3");
        let e = site_version_from_link(Path::new("/nonexistent")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/version"), "{e}");
    }
}
