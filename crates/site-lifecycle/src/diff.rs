//! `omd diff [SITE] [PATH]`: the operator's changes against the site's
//! version skeleton (Checkmk has the command), useful before an update.
//!
//! Every path of the skeleton (the site's `.version_meta/skel` when it
//! belongs to the site's version, else the installed version's) below
//! `PATH` is compared with the site, contents after macro substitution
//! (`###SITE###`, `###ROOT###`, `###EDITION###`), modes against
//! `skel.permissions`:
//!
//! * `changed`: a file's content or a link's target differs;
//! * `type`: the site has another kind of object (file, dir, link);
//! * `removed`: the skeleton has it, the site does not;
//! * `permissions`: the mode differs (files and directories; a path without
//!   a line in `skel.permissions` should have 0750 if it is a directory,
//!   else 0640, as Checkmk creates it);
//! * `added`: an entry of a skeleton directory that the skeleton does not
//!   have (below `var/` and `tmp/` these are the site's data and are not
//!   listed).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use omd_versions::OmdRoot;
use serde::Serialize;
use site_merge::{PermissionTable, Replacements, Skeleton};

use crate::error::{IoContext, Result, refuse};
use crate::skel::{edition_macro, root_macro, with_edition};

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The path relative to the site.
    pub path: String,
    /// `changed`, `type`, `removed`, `permissions` or `added`.
    pub kind: &'static str,
    /// The skeleton's side (`file`, `dir`, `link`, or a mode `0644`).
    pub default: Option<String>,
    /// The site's side.
    pub site: Option<String>,
}

impl Difference {
    /// The line `omd diff` prints.
    pub fn line(&self) -> String {
        match self.kind {
            "changed" => format!(" * Changed        {}", self.path),
            "type" => format!(
                " ! Type changed   {} ({} -> {})",
                self.path,
                self.default.as_deref().unwrap_or("?"),
                self.site.as_deref().unwrap_or("?")
            ),
            "removed" => format!(" ! Removed        {}", self.path),
            "permissions" => format!(
                " * Permissions    {} -> {} {}",
                self.default.as_deref().unwrap_or("?"),
                self.site.as_deref().unwrap_or("?"),
                self.path
            ),
            _ => format!(" * Added          {}", self.path),
        }
    }
}

/// The `--json` document of `omd diff` (schema 1).
#[derive(Debug, Clone, Serialize)]
pub struct SiteDiff {
    /// Always 1.
    pub schema: u32,
    /// The site.
    pub site: String,
    /// The site's version.
    pub version: String,
    /// The path compared (relative to the site; `.` for all).
    pub path: String,
    /// The differences in path order.
    pub differences: Vec<Difference>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Link,
}

impl Kind {
    fn of(path: &Path) -> Option<Kind> {
        let meta = fs::symlink_metadata(path).ok()?;
        Some(if meta.file_type().is_symlink() {
            Kind::Link
        } else if meta.is_dir() {
            Kind::Dir
        } else {
            Kind::File
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Link => "link",
        }
    }
}

/// Compares the site `site` with its version's skeleton below `path`.
pub fn diff(root: &OmdRoot, site: &str, path: Option<&str>) -> Result<SiteDiff> {
    root.require_site(site)?;
    let home = root.site_dir(site);
    let Some(version) = root.site_version(site)? else {
        refuse!("Failed to determine site version");
    };
    let skel = with_edition(
        Skeleton::for_site(&home, &root.versions_dir(), &version),
        &version,
    );
    if !skel.skel_dir().is_dir() {
        refuse!(
            "Cannot find the skeleton of version {version}: {} is missing.",
            skel.skel_dir().display()
        );
    }
    let rel = path
        .map(|p| p.trim_start_matches("./").trim_end_matches('/'))
        .filter(|p| !p.is_empty() && *p != ".")
        .unwrap_or(".")
        .to_owned();
    if rel.split('/').any(|c| c == "..") || rel.starts_with('/') {
        refuse!("{rel}: give a path inside the site, relative to it.");
    }
    let perms = match fs::metadata(skel.permissions_file()) {
        Ok(_) => PermissionTable::load(skel.permissions_file())?,
        Err(_) => PermissionTable::default(),
    };
    let repl = Replacements::new(site, root_macro(&home)?).with_edition(edition_macro(&version));
    let mut out = Vec::new();
    let start = if rel == "." {
        skel.skel_dir().to_path_buf()
    } else {
        skel.skel_dir().join(&rel)
    };
    if Kind::of(&start).is_none() {
        refuse!("{rel} is not part of the skeleton of version {version}.");
    }
    let mut cx = Compare {
        skel: skel.skel_dir(),
        home: &home,
        perms: &perms,
        repl: &repl,
        out: &mut out,
    };
    cx.visit(&rel)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(SiteDiff {
        schema: 1,
        site: site.to_owned(),
        version,
        path: rel,
        differences: out,
    })
}

struct Compare<'a> {
    skel: &'a Path,
    home: &'a Path,
    perms: &'a PermissionTable,
    repl: &'a Replacements,
    out: &'a mut Vec<Difference>,
}

fn mode_of(path: &Path) -> u32 {
    // The site's own mode (links are not compared).
    fs::symlink_metadata(path).map_or(0, |m| m.permissions().mode() & 0o7777)
}

impl Compare<'_> {
    fn push(
        &mut self,
        path: &str,
        kind: &'static str,
        default: Option<String>,
        site: Option<String>,
    ) {
        self.out.push(Difference {
            path: path.to_owned(),
            kind,
            default,
            site,
        });
    }

    fn visit(&mut self, rel: &str) -> Result<()> {
        let join = |base: &Path| {
            if rel == "." {
                base.to_path_buf()
            } else {
                base.join(rel)
            }
        };
        let (sk, st) = (join(self.skel), join(self.home));
        if rel == "tmp" || rel.starts_with("tmp/") {
            return Ok(());
        }
        let Some(kind) = Kind::of(&sk) else {
            return Ok(());
        };
        let Some(site_kind) = Kind::of(&st) else {
            self.push(rel, "removed", Some(kind.name().to_owned()), None);
            return Ok(());
        };
        if kind != site_kind {
            self.push(
                rel,
                "type",
                Some(kind.name().to_owned()),
                Some(site_kind.name().to_owned()),
            );
            return Ok(());
        }
        match kind {
            Kind::File => {
                let default = self.repl.apply(&fs::read(&sk).ctx("read", &sk)?);
                if fs::read(&st).ctx("read", &st)? != default {
                    self.push(rel, "changed", None, None);
                }
            }
            Kind::Link => {
                if fs::read_link(&sk).ctx("read", &sk)? != fs::read_link(&st).ctx("read", &st)? {
                    self.push(rel, "changed", None, None);
                }
            }
            Kind::Dir => {}
        }
        if kind != Kind::Link && rel != "." {
            // Checkmk's get_skel_permissions, as site-merge's planner applies it
            // (its helper is crate-private there): 0750 directories, 0640 others.
            let unlisted = if kind == Kind::Dir { 0o750 } else { 0o640 };
            let want = self.perms.get(rel).unwrap_or(unlisted);
            let have = mode_of(&st);
            if want != have {
                self.push(
                    rel,
                    "permissions",
                    Some(format!("{want:04o}")),
                    Some(format!("{have:04o}")),
                );
            }
        }
        if kind == Kind::Dir {
            let names = |dir: &Path| -> Result<Vec<String>> {
                let mut v: Vec<String> = fs::read_dir(dir)
                    .ctx("read", dir)?
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                Ok(v)
            };
            let in_skel = names(&sk)?;
            for name in &in_skel {
                let child = if rel == "." {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                self.visit(&child)?;
            }
            let data = rel == "var" || rel.starts_with("var/");
            if !data {
                for name in names(&st)? {
                    if in_skel.contains(&name) || name.starts_with('.') && rel == "." {
                        continue;
                    }
                    let child = if rel == "." {
                        name.clone()
                    } else {
                        format!("{rel}/{name}")
                    };
                    if child == "version"
                        || child == "tmp"
                        || site_merge::VERSION_DIR_LINKS.contains(&child.as_str())
                    {
                        continue;
                    }
                    self.push(&child, "added", None, None);
                }
            }
        }
        Ok(())
    }
}
