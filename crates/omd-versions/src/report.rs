//! What `omd versions`, `omd sites` and `omd version` print (site-update.md
//! §7), as text and as JSON documents. The `omd` binary and the tour share it.

use serde::Serialize;

use crate::edition::{Edition, OmdVersion};
use crate::registry::{OmdRoot, RegistryError, SiteInfo, VersionOrder};

/// Version of the JSON documents below; bumped on incompatible changes.
pub const JSON_SCHEMA: u32 = 1;

/// ANSI codes `omd` uses on a terminal.
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const NORMAL: &str = "\x1b[0m";

/// The header `omd sites` prints on a terminal.
pub const SITES_HEADER: &str = "SITE             VERSION          COMMENTS";

/// The line of `omd version`: `OMD - Open Monitoring Distribution Version <v>`,
/// or just `<v>` when `bare`; with a newline.
pub fn version_line(version: &str, bare: bool) -> String {
    if bare {
        format!("{version}\n")
    } else {
        format!("OMD - Open Monitoring Distribution Version {version}\n")
    }
}

/// One installed version in [`VersionsListing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionEntry {
    /// The OMD version name (directory name).
    pub name: String,
    /// True for the default version.
    pub default: bool,
    /// The Checkmk version of the name, if it is an OMD version name.
    pub checkmk_version: Option<String>,
    /// The edition, if the name has a known edition suffix.
    pub edition: Option<Edition>,
    /// True for `.demo` names.
    pub demo: bool,
}

/// The installed versions of an OMD root, as `omd versions` shows them.
///
/// JSON (`schema` 1): `{"schema": 1, "root": "/omd", "order": "checkmk"|"string",
/// "default": "<name>"|null, "versions": [{"name", "default", "checkmk_version",
/// "edition", "demo"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionsListing {
    /// Always [`JSON_SCHEMA`].
    pub schema: u32,
    /// The OMD root read.
    pub root: String,
    /// `checkmk` or `string`.
    pub order: &'static str,
    /// The default version, if any.
    pub default: Option<String>,
    /// The versions in `order`.
    pub versions: Vec<VersionEntry>,
}

impl VersionsListing {
    /// Reads the versions of `root` in `order`.
    pub fn read(root: &OmdRoot, order: VersionOrder) -> Result<VersionsListing, RegistryError> {
        let default = root.default_version()?;
        let versions = root
            .versions(order)?
            .into_iter()
            .map(|name| {
                let parsed: Option<OmdVersion> = name.parse().ok();
                VersionEntry {
                    default: default.as_deref() == Some(name.as_str()),
                    checkmk_version: parsed.as_ref().map(|p| p.version().to_string()),
                    edition: parsed.as_ref().and_then(OmdVersion::edition),
                    demo: parsed.as_ref().is_some_and(OmdVersion::is_demo),
                    name,
                }
            })
            .collect();
        Ok(VersionsListing {
            schema: JSON_SCHEMA,
            root: root.path().display().to_string(),
            order: match order {
                VersionOrder::Checkmk => "checkmk",
                VersionOrder::String => "string",
            },
            default,
            versions,
        })
    }

    /// The text of `omd versions`: one name per line, the default one
    /// suffixed ` (default)` unless `bare`.
    pub fn to_text(&self, bare: bool) -> String {
        let mut out = String::new();
        for v in &self.versions {
            out.push_str(&v.name);
            if v.default && !bare {
                out.push_str(" (default)");
            }
            out.push('\n');
        }
        out
    }
}

/// One site in [`SitesListing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteEntry {
    /// The site name.
    pub name: String,
    /// The version its `version` link names; `null` for an empty site dir.
    pub version: Option<String>,
    /// True if the site has no `version` link (`empty site dir`).
    pub empty: bool,
    /// True if the site uses the default version.
    pub default_version: bool,
    /// True if the site is disabled (no apache config).
    pub disabled: bool,
}

/// The sites of an OMD root, as `omd sites` shows them.
///
/// JSON (`schema` 1): `{"schema": 1, "root": "/omd", "default": "<name>"|null,
/// "sites": [{"name", "version", "empty", "default_version", "disabled"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SitesListing {
    /// Always [`JSON_SCHEMA`].
    pub schema: u32,
    /// The OMD root read.
    pub root: String,
    /// The default version, if any.
    pub default: Option<String>,
    /// The sites in name order.
    pub sites: Vec<SiteEntry>,
}

impl SitesListing {
    /// Reads the sites of `root`.
    pub fn read(root: &OmdRoot) -> Result<SitesListing, RegistryError> {
        let default = root.default_version()?;
        let infos = root.site_infos()?;
        Ok(SitesListing::from_infos(
            root.path().display().to_string(),
            default,
            infos,
        ))
    }

    /// Builds the listing from already collected site data.
    pub fn from_infos(root: String, default: Option<String>, infos: Vec<SiteInfo>) -> SitesListing {
        let sites = infos
            .into_iter()
            .map(|info| SiteEntry {
                empty: info.version.is_none(),
                default_version: info.version.is_some() && info.version == default,
                disabled: info.disabled,
                version: info.version,
                name: info.name,
            })
            .collect();
        SitesListing {
            schema: JSON_SCHEMA,
            root,
            default,
            sites,
        }
    }

    /// The text of `omd sites`. `bare`: names only. Otherwise one line per
    /// site, `%-16s %-16s %s ` (name, version or `(none)`, comma-joined
    /// comments, then a trailing space), preceded by [`SITES_HEADER`] if
    /// `header`, and with `disabled` in bold red if `color`. Upstream turns
    /// both on exactly when stdout is a terminal.
    pub fn to_text(&self, bare: bool, header: bool, color: bool) -> String {
        let mut out = String::new();
        if bare {
            for site in &self.sites {
                out.push_str(&site.name);
                out.push('\n');
            }
            return out;
        }
        if header {
            out.push_str(SITES_HEADER);
            out.push('\n');
        }
        for site in &self.sites {
            let mut tags: Vec<String> = Vec::new();
            if site.empty {
                tags.push("empty site dir".to_owned());
            } else if site.default_version {
                tags.push("default version".to_owned());
            }
            if site.disabled {
                tags.push(if color {
                    format!("{BOLD}{RED}disabled{NORMAL}")
                } else {
                    "disabled".to_owned()
                });
            }
            let version = site.version.as_deref().unwrap_or("(none)");
            out.push_str(&format!(
                "{:<16} {:<16} {} \n",
                site.name,
                version,
                tags.join(", ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(name: &str, version: Option<&str>, disabled: bool) -> SiteInfo {
        SiteInfo {
            name: name.into(),
            version: version.map(String::from),
            disabled,
        }
    }

    fn spec_sites() -> SitesListing {
        SitesListing::from_infos(
            "/omd".into(),
            Some("1.6.0p4".into()),
            vec![
                site("broken", Some("1.0.0"), false),
                site("default", Some("1.6.0p4"), false),
                site("disabled", Some("1.6.0p4"), true),
                site("empty", None, false),
                site("xyz", Some("1.2.3p4"), false),
            ],
        )
    }

    #[test]
    fn sites_text_matches_upstream() {
        assert_eq!(
            spec_sites().to_text(false, false, false),
            "broken           1.0.0             \n\
             default          1.6.0p4          default version \n\
             disabled         1.6.0p4          default version, disabled \n\
             empty            (none)           empty site dir \n\
             xyz              1.2.3p4           \n"
        );
    }

    #[test]
    fn sites_text_on_a_terminal() {
        let text = spec_sites().to_text(false, true, true);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(SITES_HEADER));
        assert!(text.contains("default version, \x1b[1m\x1b[31mdisabled\x1b[0m \n"));
        assert_eq!(
            spec_sites().to_text(true, true, true),
            "broken\ndefault\ndisabled\nempty\nxyz\n"
        );
    }

    #[test]
    fn long_names_are_not_truncated() {
        let listing = SitesListing::from_infos(
            "/omd".into(),
            None,
            vec![site(
                "abcdefghijklmnop",
                Some("2.3.0-2024.01.01.cee"),
                false,
            )],
        );
        assert_eq!(
            listing.to_text(false, false, false),
            "abcdefghijklmnop 2.3.0-2024.01.01.cee  \n"
        );
    }

    #[test]
    fn version_lines() {
        assert_eq!(
            version_line("2.3.0p1.cre", false),
            "OMD - Open Monitoring Distribution Version 2.3.0p1.cre\n"
        );
        assert_eq!(version_line("2.3.0p1.cre", true), "2.3.0p1.cre\n");
    }

    #[test]
    fn versions_text_and_json() {
        let listing = VersionsListing {
            schema: JSON_SCHEMA,
            root: "/omd".into(),
            order: "string",
            default: Some("1.6.0p4".into()),
            versions: ["1.2.3p4", "1.6.0p14", "1.6.0p4"]
                .iter()
                .map(|n| VersionEntry {
                    name: (*n).into(),
                    default: *n == "1.6.0p4",
                    checkmk_version: Some((*n).into()),
                    edition: None,
                    demo: false,
                })
                .collect(),
        };
        assert_eq!(
            listing.to_text(false),
            "1.2.3p4\n1.6.0p14\n1.6.0p4 (default)\n"
        );
        assert_eq!(listing.to_text(true), "1.2.3p4\n1.6.0p14\n1.6.0p4\n");
        let json = serde_json::to_value(&listing).unwrap();
        assert_eq!(json["schema"], 1);
        assert_eq!(json["versions"][2]["default"], true);
    }
}
