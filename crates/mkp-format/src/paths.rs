//! Where each part's files live: `mkp-tool.toml` (standalone) or a site's layout.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::part::PackagePart;

/// The file name the standalone tool looks for in the current directory.
pub const PATH_CONFIG_FILE: &str = "mkp-tool.toml";

/// The directory of every part plus the `local` root that `find` walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathConfig {
    dirs: [PathBuf; 18],
    local_root: PathBuf,
}

/// The keys of `[paths]` in the order `path-config-template` prints them.
const KEY_ORDER: [&str; 19] = [
    "cmk_plugins_dir",
    "cmk_addons_plugins_dir",
    "agent_based_plugins_dir",
    "agents_dir",
    "alert_handlers_dir",
    "bin_dir",
    "check_manpages_dir",
    "checks_dir",
    "doc_dir",
    "gui_plugins_dir",
    "inventory_dir",
    "lib_dir",
    "locale_dir",
    "mib_dir",
    "mkp_rule_pack_dir",
    "notifications_dir",
    "pnp_templates_dir",
    "web_dir",
    "local_root",
];

impl PathConfig {
    /// The template of `mkp path-config-template`: `cmk/plugins`, `cmk_addons/plugins`,
    /// `agents` and `bin` as Checkmk's template has them, and every other part in a
    /// directory of its own named after the part id (`checks`, `ec_rule_packs`, ...).
    ///
    /// Checkmk's template maps those other parts to `.`, the project directory itself, so
    /// that every file there (the configuration, manifests, built packages) counts as a
    /// file of each of them: `find` would call `mkp-tool.toml` an Event Console rule pack.
    /// Directories of their own keep the parts apart.
    pub fn template() -> PathConfig {
        let dirs = PackagePart::ALL.map(|p| {
            PathBuf::from(match p {
                PackagePart::CmkPlugins => "cmk/plugins",
                PackagePart::CmkAddonsPlugins => "cmk_addons/plugins",
                other => other.id(),
            })
        });
        PathConfig {
            dirs,
            local_root: PathBuf::from("."),
        }
    }

    /// The layout of a Checkmk site rooted at `site_root` (`$OMD_ROOT`).
    pub fn for_site(site_root: &Path) -> PathConfig {
        PathConfig {
            dirs: PackagePart::ALL.map(|p| site_root.join(p.site_path())),
            local_root: site_root.join("local"),
        }
    }

    /// Parses `mkp-tool.toml` content: table `[paths]` with all 19 keys (others ignored).
    pub fn from_toml(text: &str) -> Result<PathConfig> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ErrorKind::PathConfig {
                    problem: e.message().to_string(),
                })?;
        let paths = table
            .get("paths")
            .and_then(toml::Value::as_table)
            .ok_or_else(|| ErrorKind::PathConfig {
                problem: "the table [paths] is missing".into(),
            })?;
        let get = |key: &str| -> Result<PathBuf> {
            match paths.get(key) {
                Some(toml::Value::String(s)) => Ok(PathBuf::from(s)),
                Some(_) => Err(ErrorKind::PathConfig {
                    problem: format!("[paths] {key} must be a string"),
                }
                .into()),
                None => Err(ErrorKind::PathConfig {
                    problem: format!("[paths] {key} is missing"),
                }
                .into()),
            }
        };
        let mut dirs = PackagePart::ALL.map(|_| PathBuf::new());
        for (i, part) in PackagePart::ALL.iter().enumerate() {
            dirs[i] = get(part.path_config_key())?;
        }
        Ok(PathConfig {
            dirs,
            local_root: get("local_root")?,
        })
    }

    /// Reads a `mkp-tool.toml` file; a missing file gives Checkmk's
    /// `Missing configuration file: <path>`.
    pub fn read(path: &Path) -> Result<PathConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| -> Error {
            if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::MissingConfig {
                    file: path.display().to_string(),
                }
                .into()
            } else {
                Error::io("cannot read the path configuration", e).with_file(path)
            }
        })?;
        PathConfig::from_toml(&text).map_err(|e| e.with_file(path))
    }

    /// The TOML text (`[paths]` and one `key = "value"` line per key, no final newline).
    pub fn to_toml(&self) -> String {
        let mut lines = vec!["[paths]".to_string()];
        for key in KEY_ORDER {
            let value = if key == "local_root" {
                &self.local_root
            } else {
                PackagePart::ALL
                    .iter()
                    .position(|p| p.path_config_key() == key)
                    .map_or(&self.local_root, |i| &self.dirs[i])
            };
            lines.push(format!("{key} = \"{}\"", value.display()));
        }
        lines.join("\n")
    }

    /// The directory of `part`.
    pub fn part_dir(&self, part: PackagePart) -> &Path {
        &self.dirs[part as usize]
    }

    /// The `local` root that `find` walks.
    pub fn local_root(&self) -> &Path {
        &self.local_root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_round_trips() {
        let t = PathConfig::template();
        let text = t.to_toml();
        assert!(text.starts_with("[paths]\ncmk_plugins_dir = \"cmk/plugins\"\n"));
        assert!(text.ends_with("local_root = \".\""));
        assert_eq!(PathConfig::from_toml(&text).unwrap(), t);
        // No two parts share a directory, and none is the project directory itself.
        let mut dirs: Vec<&Path> = PackagePart::ALL.iter().map(|p| t.part_dir(*p)).collect();
        assert!(!dirs.contains(&Path::new(".")), "{text}");
        dirs.sort();
        dirs.dedup();
        assert_eq!(dirs.len(), 18, "{text}");
    }

    #[test]
    fn unknown_keys_ignored_missing_keys_reported() {
        let mut text = PathConfig::template().to_toml();
        text = format!("top = 1\n{text}\nextra = \"x\"\n");
        PathConfig::from_toml(&text).unwrap();
        let e = PathConfig::from_toml("[paths]\nagents_dir = \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("is missing"), "{e}");
        let e = PathConfig::read(Path::new("/nonexistent/mkp-tool.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Missing configuration file: /nonexistent/mkp-tool.toml"
        );
    }

    #[test]
    fn site_layout() {
        let c = PathConfig::for_site(Path::new("/omd/sites/x"));
        assert_eq!(
            c.part_dir(PackagePart::EcRulePacks),
            Path::new("/omd/sites/x/etc/check_mk/mkeventd.d/mkp/rule_packs")
        );
        assert_eq!(c.local_root(), Path::new("/omd/sites/x/local"));
    }
}
