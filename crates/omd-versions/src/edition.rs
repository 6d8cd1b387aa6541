//! Editions and OMD version names (`2.3.0p12.cre`, `1.6.0p3.cee.demo`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::version::{ParseVersionError, Version};

/// A Checkmk edition, named by its short code.
///
/// 2.5 renamed the editions; both spellings are understood as OMD name
/// suffixes: `cre` = `community` (formerly Raw), `cee` = `pro` (Enterprise),
/// `cce` = `ultimate` (Cloud), `cme` = `ultimatemt` (Managed), `cse` =
/// `cloud` (SaaS / Checkmk Cloud). `cfe` (Free) and `cpe` (Plus) are
/// historic. Note that the 2.5 suffix `cloud` means `cse`, not the pre-2.5
/// "Cloud Edition" `cce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Edition {
    /// Raw Edition, 2.5: Checkmk Community.
    Cre,
    /// Enterprise Edition, 2.5: Checkmk Pro.
    Cee,
    /// Cloud Edition, 2.5: Checkmk Ultimate.
    Cce,
    /// SaaS (Checkmk Cloud), 2.5: Checkmk Cloud.
    Cse,
    /// Managed Services Edition, 2.5: Checkmk Ultimate with multi-tenancy.
    Cme,
    /// Free Edition (historic).
    Cfe,
    /// Plus Edition (historic, 2.2).
    Cpe,
}

impl Edition {
    /// Every edition.
    pub const ALL: [Edition; 7] = [
        Edition::Cre,
        Edition::Cee,
        Edition::Cce,
        Edition::Cse,
        Edition::Cme,
        Edition::Cfe,
        Edition::Cpe,
    ];

    /// The short code (`cre`), the suffix used up to 2.4.
    pub const fn short(self) -> &'static str {
        match self {
            Edition::Cre => "cre",
            Edition::Cee => "cee",
            Edition::Cce => "cce",
            Edition::Cse => "cse",
            Edition::Cme => "cme",
            Edition::Cfe => "cfe",
            Edition::Cpe => "cpe",
        }
    }

    /// The 2.5 long name used as suffix since 2.5 (`community`); `None` for
    /// the historic editions, which 2.5 does not know.
    pub const fn long_name(self) -> Option<&'static str> {
        match self {
            Edition::Cre => Some("community"),
            Edition::Cee => Some("pro"),
            Edition::Cce => Some("ultimate"),
            Edition::Cme => Some("ultimatemt"),
            Edition::Cse => Some("cloud"),
            Edition::Cfe | Edition::Cpe => None,
        }
    }

    /// The name up to 2.4 as `omd update` uses it (`raw`, `enterprise`,
    /// `cloud`, `saas`, `managed`, `free`, `plus`); "Raw Edition" etc. in messages.
    pub const fn legacy_name(self) -> &'static str {
        match self {
            Edition::Cre => "raw",
            Edition::Cee => "enterprise",
            Edition::Cce => "cloud",
            Edition::Cse => "saas",
            Edition::Cme => "managed",
            Edition::Cfe => "free",
            Edition::Cpe => "plus",
        }
    }

    /// The edition of an OMD name suffix: a short code or a 2.5 long name.
    pub fn from_suffix(suffix: &str) -> Option<Edition> {
        Edition::ALL
            .into_iter()
            .find(|e| e.short() == suffix || e.long_name() == Some(suffix))
    }
}

impl fmt::Display for Edition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// The Checkmk version string `omd update` derives from an OMD version name:
/// drop a trailing `.demo` part, then the last dot-separated part (the
/// edition, whatever it is).
///
/// This is a faithful string operation, including its weakness: a name
/// without an edition loses its last part (`1.6.0p4` gives `1.6`).
/// [`OmdVersion`] is the careful alternative.
///
/// ```
/// use omd_versions::omd_update_version_string;
/// assert_eq!(omd_update_version_string("2.0.0p3.cee"), "2.0.0p3");
/// assert_eq!(omd_update_version_string("1.6.0p3.cee.demo"), "1.6.0p3");
/// assert_eq!(omd_update_version_string("2021.12.13.cee"), "2021.12.13");
/// ```
pub fn omd_update_version_string(name: &str) -> &str {
    let name = name.strip_suffix(".demo").unwrap_or(name);
    match name.rsplit_once('.') {
        Some((version, _edition)) => version,
        None => name,
    }
}

/// The Checkmk version of an OMD version name, exactly as `omd update`
/// derives it (see [`omd_update_version_string`]), parsed.
pub fn omd_update_version(name: &str) -> Result<Version, ParseVersionError> {
    omd_update_version_string(name).parse()
}

/// An OMD version name: a Checkmk version, usually followed by an edition
/// and optionally `.demo` (`2.3.0p12.cre`, `1.6.0p3.cee.demo`,
/// `2021.12.13.cee`, `2.5.0p1.ultimatemt`).
///
/// Parsing is careful: the last part is taken as the edition only if it is a
/// known edition suffix; otherwise the whole name must be a Checkmk version
/// (directory names such as `1.6.0p4` in test setups). `Display` gives back
/// the name exactly as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OmdVersion {
    name: String,
    version: Version,
    edition: Option<Edition>,
    demo: bool,
}

/// A string that is not an OMD version name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OMD version name {name:?}: {source}")]
pub struct ParseOmdVersionError {
    name: String,
    #[source]
    source: ParseVersionError,
}

impl ParseOmdVersionError {
    /// The rejected name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl OmdVersion {
    /// The name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Checkmk version.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// The edition, if the name has a known edition suffix.
    pub fn edition(&self) -> Option<Edition> {
        self.edition
    }

    /// True for `….demo` names.
    pub fn is_demo(&self) -> bool {
        self.demo
    }

    /// The edition name a skeleton of this version substitutes for
    /// `###EDITION###`: up to 2.4 the legacy names (`raw`, `enterprise`, …),
    /// from 2.5 on, or with a 2.5 suffix such as `.community`, the long
    /// names (`community`, `pro`, …). `None` without a known edition.
    pub fn skeleton_edition_name(&self) -> Option<&'static str> {
        let edition = self.edition?;
        let suffix = self
            .name
            .strip_suffix(".demo")
            .unwrap_or(&self.name)
            .rsplit('.')
            .next();
        let new_era = edition.long_name().is_some() && edition.long_name() == suffix
            || self
                .version
                .base()
                .is_some_and(|b| (b.major(), b.minor()) >= (2, 5));
        match (new_era, edition.long_name()) {
            (true, Some(long)) => Some(long),
            _ => Some(edition.legacy_name()),
        }
    }
}

impl FromStr for OmdVersion {
    type Err = ParseOmdVersionError;

    fn from_str(name: &str) -> Result<OmdVersion, ParseOmdVersionError> {
        let fail = |source| ParseOmdVersionError {
            name: name.to_owned(),
            source,
        };
        let (rest, demo) = match name.strip_suffix(".demo") {
            Some(rest) => (rest, true),
            None => (name, false),
        };
        if let Some((version, suffix)) = rest.rsplit_once('.')
            && let Some(edition) = Edition::from_suffix(suffix)
        {
            // `2.5.0-2025.01.01.pro` also parses as a whole (daily25);
            // the edition split is the meaningful reading.
            return Ok(OmdVersion {
                name: name.to_owned(),
                version: version.parse().map_err(fail)?,
                edition: Some(edition),
                demo,
            });
        }
        Ok(OmdVersion {
            name: name.to_owned(),
            version: rest.parse().map_err(fail)?,
            edition: None,
            demo,
        })
    }
}

impl fmt::Display for OmdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Serialize for OmdVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for OmdVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<OmdVersion, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeleton_edition_names_follow_the_era() {
        let name = |v: &str| v.parse::<OmdVersion>().unwrap().skeleton_edition_name();
        assert_eq!(name("2.3.0p1.cre"), Some("raw"));
        assert_eq!(name("2.4.0p2.cme"), Some("managed"));
        assert_eq!(name("2.5.0p1.cre"), Some("community"));
        assert_eq!(name("2.5.0p1.pro"), Some("pro"));
        assert_eq!(name("2024.01.01.community"), Some("community"));
        assert_eq!(name("1.6.0p3.cee.demo"), Some("enterprise"));
        assert_eq!(name("2.3.0p1.cfe"), Some("free"));
        assert_eq!(name("1.6.0p4"), None);
    }

    #[test]
    fn edition_suffixes() {
        for (name, edition) in [
            ("1.4.0i1.cre", Edition::Cre),
            ("1.4.0i1.cee", Edition::Cee),
            ("2016.09.22.cee", Edition::Cee),
            ("2.1.0p3.cme", Edition::Cme),
            ("2.1.0p3.cce", Edition::Cce),
            ("2.1.0p3.cse", Edition::Cse),
            ("2.5.0p1.community", Edition::Cre),
            ("2.5.0p1.pro", Edition::Cee),
            ("2.5.0p1.ultimate", Edition::Cce),
            ("2.5.0p1.ultimatemt", Edition::Cme),
            ("2.5.0p1.cloud", Edition::Cse),
            ("1.6.0p3.cee.demo", Edition::Cee),
        ] {
            let v: OmdVersion = name.parse().unwrap();
            assert_eq!(v.edition(), Some(edition), "{name}");
            assert_eq!(v.to_string(), name);
        }
        for e in Edition::ALL {
            let v: OmdVersion = format!("1.2.3.{}", e.short()).parse().unwrap();
            assert_eq!(v.edition(), Some(e));
            assert_eq!(e.to_string(), e.short());
        }
    }

    #[test]
    fn edition_names() {
        assert_eq!(Edition::Cre.legacy_name(), "raw");
        assert_eq!(Edition::Cse.long_name(), Some("cloud"));
        assert_eq!(Edition::Cce.long_name(), Some("ultimate"));
        assert_eq!(Edition::Cpe.long_name(), None);
        assert_eq!(Edition::from_suffix("plus"), None);
        assert_eq!(Edition::from_suffix("cpe"), Some(Edition::Cpe));
        assert_eq!(serde_json::to_string(&Edition::Cme).unwrap(), "\"cme\"");
    }

    #[test]
    fn omd_names_carry_version_edition_and_demo() {
        let v: OmdVersion = "1.6.0p3.cee.demo".parse().unwrap();
        assert_eq!(v.version().to_string(), "1.6.0p3");
        assert!(v.is_demo());
        let v: OmdVersion = "2021.12.13.cee".parse().unwrap();
        assert_eq!(v.version().base(), None);
        let v: OmdVersion = "2.4.0-2025.01.01.cee".parse().unwrap();
        assert_eq!(v.version().to_string(), "2.4.0-2025.01.01");
        let v: OmdVersion = "1.6.0p14".parse().unwrap();
        assert_eq!(
            (v.edition(), v.version().to_string()),
            (None, "1.6.0p14".into())
        );
        let v: OmdVersion = "2.5.0-2025.01.01.pro".parse().unwrap();
        assert_eq!(v.edition(), Some(Edition::Cee));
    }

    #[test]
    fn serde_uses_the_name() {
        let v: OmdVersion = "2.3.0p12.cre".parse().unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"2.3.0p12.cre\"");
        let back: OmdVersion = serde_json::from_str("\"1.6.0p3.cee.demo\"").unwrap();
        assert!(back.is_demo());
        assert!(serde_json::from_str::<OmdVersion>("\"2.3.cre\"").is_err());
    }

    #[test]
    fn bad_omd_names_are_reported() {
        let e = "2.3.0p1.xyz".parse::<OmdVersion>().unwrap_err();
        assert_eq!(e.name(), "2.3.0p1.xyz");
        assert!(
            e.to_string()
                .starts_with("invalid OMD version name \"2.3.0p1.xyz\"")
        );
        assert!("default".parse::<OmdVersion>().is_err());
        assert!("2.3.cee".parse::<OmdVersion>().is_err());
    }

    #[test]
    fn omd_update_conversion() {
        assert_eq!(
            omd_update_version("2.0.0p3.cee").unwrap().to_string(),
            "2.0.0p3"
        );
        assert_eq!(
            omd_update_version("1.6.0p3.cee.demo").unwrap().to_string(),
            "1.6.0p3"
        );
        let daily = omd_update_version("2021.12.13.cee").unwrap();
        assert_eq!(
            (daily.to_string(), daily.base()),
            ("2021.12.13".into(), None)
        );
        // The faithful quirk: a name without edition loses its last part.
        assert_eq!(omd_update_version_string("1.6.0p4"), "1.6");
        assert!(omd_update_version("1.6.0p4").is_err());
        assert_eq!(omd_update_version_string("plain"), "plain");
    }
}
