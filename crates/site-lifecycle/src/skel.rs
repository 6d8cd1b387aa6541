//! What `create` and `update` need to know about a version's skeleton: where
//! it is, the value of `###EDITION###`, the value of `###ROOT###`.
//!
//! A version is a directory `<root>/versions/<name>/` with `skel/` (the site
//! skeleton) and optionally `share/omd/skel.permissions`; see the
//! `site-merge` crate documentation for the full layout.

use std::path::Path;

use omd_versions::{Edition, OmdRoot, OmdVersion};
use site_merge::Skeleton;

use crate::error::{IoContext, Result, refuse};

/// The edition of an OMD version name (`2.3.0p1.cre` ⇒ `cre`), if it has a
/// known edition suffix.
pub fn edition_of(version: &str) -> Option<Edition> {
    version.parse::<OmdVersion>().ok().and_then(|v| v.edition())
}

/// The long edition name substituted for `###EDITION###`: up to 2.4 the
/// names `raw`, `enterprise`, `managed`, `cloud`, `saas`, `free`, `plus`;
/// from 2.5 on (or with a 2.5 suffix such as `.community`) `community`,
/// `pro`, `ultimate`, `ultimatemt`, `cloud`. `None` when the name has no
/// known edition (the macro then stays as it is).
pub fn edition_macro(version: &str) -> Option<String> {
    let parsed: OmdVersion = version.parse().ok()?;
    parsed.skeleton_edition_name().map(str::to_owned)
}

/// `Raw Edition`, `Enterprise Edition`, … as `omd update` words the edition
/// question (Python's `str.title()` of the long name).
pub fn edition_title(version: &str) -> String {
    let name = edition_macro(version).unwrap_or_else(|| "unknown".to_owned());
    let mut chars = name.chars();
    let title: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    format!("{title} Edition")
}

/// The installed skeleton of `version`, with its `###EDITION###` value;
/// refuses (exit 1) when the version has no `skel/` directory.
pub fn installed_skeleton(root: &OmdRoot, version: &str) -> Result<Skeleton> {
    let skel = with_edition(Skeleton::of_version(&root.versions_dir(), version), version);
    if !skel.skel_dir().is_dir() {
        refuse!(
            "Version {version} has no site skeleton: {} is missing.",
            skel.skel_dir().display()
        );
    }
    Ok(skel)
}

/// Sets the `###EDITION###` value of `version` on `skel`, if it has one.
pub fn with_edition(skel: Skeleton, version: &str) -> Skeleton {
    match edition_macro(version) {
        Some(edition) => skel.edition(edition),
        None => skel,
    }
}

/// The value of `###ROOT###`: the site home as an absolute path
/// (`/omd/sites/<site>` on a real system).
pub fn root_macro(site_home: &Path) -> Result<String> {
    let abs = std::path::absolute(site_home).ctx("resolve", site_home)?;
    Ok(abs.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edition_macro_follows_the_era() {
        assert_eq!(edition_macro("2.3.0p1.cre").as_deref(), Some("raw"));
        assert_eq!(edition_macro("2.4.0p2.cme").as_deref(), Some("managed"));
        assert_eq!(edition_macro("2.5.0p1.cre").as_deref(), Some("community"));
        assert_eq!(edition_macro("2.5.0p1.pro").as_deref(), Some("pro"));
        assert_eq!(
            edition_macro("2024.01.01.community").as_deref(),
            Some("community")
        );
        assert_eq!(
            edition_macro("1.6.0p3.cee.demo").as_deref(),
            Some("enterprise")
        );
        assert_eq!(edition_macro("1.6.0p4"), None);
        assert_eq!(edition_macro("old"), None);
    }

    #[test]
    fn edition_titles() {
        assert_eq!(edition_title("2.3.0p1.cre"), "Raw Edition");
        assert_eq!(edition_title("2.3.0p1.cee"), "Enterprise Edition");
        assert_eq!(edition_title("2.5.0.cce"), "Ultimate Edition");
    }
}
