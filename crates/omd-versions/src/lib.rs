//! Checkmk version strings, their order and compatibility rules, and the
//! registries of installed versions and sites.
//!
//! * [`Version`]: the grammar of `cmk.ccc.version` (`2.3.0p12`, `2.4.0b1`,
//!   `2.2.0i1`, `2.3.0p34-rc42+security`, `2.3.0-2024.01.01`, `2024.01.01`),
//!   with `FromStr`/`Display` and Checkmk's *partial* order; sort lists with
//!   [`Version::cmp_lenient`].
//! * [`mkp_version_number`]: the integer encoding the MKP tool compares, with
//!   [`check_mkp_min_required`] and [`check_mkp_usable_until`].
//! * [`Edition`], [`OmdVersion`]: OMD version names such as `2.3.0p12.cre`
//!   or `1.6.0p3.cee.demo`; [`omd_update_version`] converts a name the way
//!   `omd update` does.
//! * [`check_update`]: may a site be updated from one version to another
//!   (major skipping, minimum patch releases from [`PatchRequirements`]);
//!   [`check_distributed`]: does a remote site accept a central site.
//! * [`OmdRoot`]: installed versions, the default version, sites, their
//!   versions and state under an OMD root (`/omd`, or [`ROOT_ENV`]);
//!   [`VersionsListing`] and [`SitesListing`] render what `omd versions`
//!   and `omd sites` print.
//!
//! ```
//! use omd_versions::{check_update, Version};
//!
//! let from: Version = "2.2.0p8".parse()?;
//! let to: Version = "2.3.0p1".parse()?;
//! assert!(from < to);
//! assert!(check_update(&from, &to).is_ok());
//!
//! let old: Version = "2.1.0".parse()?;
//! let err = check_update(&old, &to).unwrap_err();
//! assert_eq!(err.to_string(), "Target version too new (one major version jump at maximum).");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Crate features
//!
//! None; `serde` support (versions serialize as their string form) is always on.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]

mod compat;
mod edition;
mod mkp;
mod registry;
mod report;
mod version;

pub use compat::{
    DistributedError, Incompatibility, PatchRequirements, SiteVersionInfo, UpdateCheckError,
    check_distributed, check_update, check_update_with,
};
pub use edition::{
    Edition, OmdVersion, ParseOmdVersionError, omd_update_version, omd_update_version_string,
};
pub use mkp::{
    MkpIncompatible, MkpVersionError, check_mkp_min_required, check_mkp_usable_until,
    mkp_version_number,
};
pub use registry::{
    DEFAULT_ROOT, OmdRoot, ROOT_ENV, RegistryError, SiteInfo, VersionOrder, read_site_version,
    sort_version_names, validate_site_name, version_link_target,
};
pub use report::{
    JSON_SCHEMA, SITES_HEADER, SiteEntry, SitesListing, VersionEntry, VersionsListing, version_line,
};
pub use version::{Base, Date, ParseVersionError, Release, Version};

/// Compiles and runs the README's example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
