//! Compatibility rules of versions.md §4: `omd update` (a) and distributed
//! setups (c). The MKP rules (b) live in `mkp.rs`.

use std::cmp::Ordering;
use std::fmt;

use crate::edition::Edition;
use crate::version::{Base, Release, Version};

/// Why an update (or a central/remote pair) is not allowed: Checkmk's
/// `VersionsIncompatible` reasons, with their exact texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incompatibility {
    /// The target's base is older than the source's.
    #[error("Target version too old (older major version is not supported).")]
    TooOld,
    /// The target skips a major or minor version (or changes the sub version).
    #[error("Target version too new (one major version jump at maximum).")]
    TooNew,
    /// The source is below the minimum patch release the target requires.
    #[error("This target version requires at least {0}")]
    RequiresAtLeast(Version),
}

impl Incompatibility {
    /// The complete refusal `omd update` prints (2.2–2.4 wording, see
    /// site-update.md §6), for `from` and `to` as given (OMD names or versions).
    pub fn omd_update_message(&self, from: &str, to: &str) -> String {
        format!(
            "ERROR: You are trying to update from {from} to {to} which is not supported. \
             Reason: {self}\n\n\
             * Major downgrades are not supported\n\
             * Major version updates need to be done step by step.\n\n\
             If you are really sure about what you are doing, you can still do the update with '-f'.\n\
             You can execute the command in the following way:\n\
             'omd -f update' or 'omd --force update'But you will be on your own from there.\n"
        )
    }
}

/// The result of the update check when it is not a plain "compatible".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateCheckError {
    /// Checkmk refuses the update with this reason (it can be forced).
    #[error("{0}")]
    Incompatible(#[from] Incompatibility),
    /// Checkmk's own check crashes here: a jump to `X.0` from a major other
    /// than 1 looks up the last release of that major, and only `1 → 1.6.0`
    /// is known (`KeyError` in 2.2–2.5; 2.1 allowed it).
    #[error(
        "cannot decide whether {from} may be updated to {to}: the last release of major \
         version {major} is unknown (Checkmk's own check fails here)"
    )]
    UnknownLastRelease {
        /// Source version.
        from: Box<Version>,
        /// Target version.
        to: Box<Version>,
        /// The major version whose last release is unknown.
        major: u8,
    },
    /// Checkmk's own check crashes here: the source and the required minimum
    /// are a release candidate and the plain release of the same version,
    /// which cannot be ordered (`ValueError`).
    #[error(
        "cannot decide whether {from} may be updated to {to}: {from} cannot be compared \
         with the required minimum {minimum} (release candidate against release)"
    )]
    Unordered {
        /// Source version.
        from: Box<Version>,
        /// Target version.
        to: Box<Version>,
        /// The minimum the target requires.
        minimum: Box<Version>,
    },
}

/// A minimum-patch table (`_REQUIRED_PATCH_RELEASES_MAP`): for a target
/// base, the lowest source version an update to it accepts.
///
/// The table lives in the code of the *target* version (`omd update` runs
/// the target's code) and has changed between releases, so it is data:
/// [`PatchRequirements::VER24`] is the table of 2.4.0p21,
/// [`PatchRequirements::VER25`] that of master (2.5.0b1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchRequirements {
    name: &'static str,
    entries: &'static [(Base, Version)],
}

static VER24_ENTRIES: [(Base, Version); 2] = [
    (
        Base::of(2, 3, 0),
        Version::table_entry(Base::of(2, 2, 0), Release::Patch(8)),
    ),
    (
        Base::of(2, 4, 0),
        Version::table_entry(Base::of(2, 3, 0), Release::Patch(26)),
    ),
];

static VER25_ENTRIES: [(Base, Version); 3] = [
    (
        Base::of(2, 3, 0),
        Version::table_entry(Base::of(2, 2, 0), Release::Patch(8)),
    ),
    (
        Base::of(2, 4, 0),
        Version::table_entry(Base::of(2, 3, 0), Release::Patch(43)),
    ),
    (
        Base::of(2, 5, 0),
        Version::table_entry(Base::of(2, 4, 0), Release::Patch(23)),
    ),
];

/// The last release of each major version, for jumps to `X.0`.
const LAST_RELEASE_OF_MAJOR: [(u8, Base); 1] = [(1, Base::of(1, 6, 0))];

impl PatchRequirements {
    /// The table of Checkmk 2.4.0p21: 2.3.0 needs 2.2.0p8, 2.4.0 needs 2.3.0p26.
    pub const VER24: PatchRequirements = PatchRequirements {
        name: "2.4.0p21",
        entries: &VER24_ENTRIES,
    };

    /// The table of Checkmk master (2.5.0b1): 2.3.0 needs 2.2.0p8, 2.4.0
    /// needs 2.3.0p43, 2.5.0 needs 2.4.0p23.
    pub const VER25: PatchRequirements = PatchRequirements {
        name: "2.5.0b1",
        entries: &VER25_ENTRIES,
    };

    /// The table in effect for an update to `to`: the one shipped with the
    /// target's branch. Targets from 2.5.0 on (and old master dailies) use
    /// [`VER25`](Self::VER25), older targets [`VER24`](Self::VER24) (whose
    /// entries for 2.3.0 equal what 2.3 itself shipped last).
    pub fn for_target(to: &Version) -> PatchRequirements {
        match to.base() {
            Some(base) if base < Base::of(2, 5, 0) => PatchRequirements::VER24,
            _ => PatchRequirements::VER25,
        }
    }

    /// The Checkmk version whose table this is.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The minimum source version for the target base, if any.
    pub fn minimum_for(&self, target: Base) -> Option<&'static Version> {
        self.entries
            .iter()
            .find(|(base, _)| *base == target)
            .map(|(_, v)| v)
    }

    /// All entries as (target base, minimum source version).
    pub fn entries(&self) -> impl Iterator<Item = (Base, &'static Version)> + use<> {
        self.entries.iter().map(|(b, v)| (*b, v))
    }
}

impl fmt::Display for PatchRequirements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "minimum patch releases of Checkmk {}", self.name)
    }
}

/// Checkmk's `versions_compatible(from, to)` for `omd update`, with the
/// minimum-patch table of the target ([`PatchRequirements::for_target`]).
///
/// Strip the edition first (see [`OmdVersion`](crate::OmdVersion)).
///
/// ```
/// use omd_versions::{check_update, Version};
/// let v = |s: &str| s.parse::<Version>().unwrap();
/// assert!(check_update(&v("2.2.0p8"), &v("2.3.0p1")).is_ok());
/// assert_eq!(
///     check_update(&v("2.1.0"), &v("2.3.0")).unwrap_err().to_string(),
///     "Target version too new (one major version jump at maximum)."
/// );
/// ```
pub fn check_update(from: &Version, to: &Version) -> Result<(), UpdateCheckError> {
    check_update_with(from, to, PatchRequirements::for_target(to))
}

/// [`check_update`] with an explicit minimum-patch table.
///
/// Rules, in order: no base on either side ⇒ ok; same base ⇒ ok (also
/// downgrades within a base); older target base ⇒ too old; more than one
/// major up ⇒ too new; one major up to `X.0.*` ⇒ ok only from the last
/// release of the previous major plus the patch minimum; same major: one
/// minor up ⇒ patch minimum, more ⇒ too new; anything else ⇒ too new.
pub fn check_update_with(
    from: &Version,
    to: &Version,
    table: PatchRequirements,
) -> Result<(), UpdateCheckError> {
    let (Some(fb), Some(tb)) = (from.base(), to.base()) else {
        return Ok(());
    };
    if fb == tb {
        return Ok(());
    }
    if fb > tb {
        return Err(Incompatibility::TooOld.into());
    }
    let major_diff = i16::from(tb.major()) - i16::from(fb.major());
    if major_diff > 1 {
        return Err(Incompatibility::TooNew.into());
    }
    if major_diff == 1 && tb.minor() == 0 {
        let Some((_, last)) = LAST_RELEASE_OF_MAJOR
            .iter()
            .find(|(major, _)| *major == fb.major())
        else {
            return Err(UpdateCheckError::UnknownLastRelease {
                from: Box::new(from.clone()),
                to: Box::new(to.clone()),
                major: fb.major(),
            });
        };
        if fb != *last {
            return Err(Incompatibility::TooNew.into());
        }
        return check_minimum(from, to, table);
    }
    if major_diff == 0 {
        return match i16::from(tb.minor()) - i16::from(fb.minor()) {
            1 => check_minimum(from, to, table),
            _ => Err(Incompatibility::TooNew.into()),
        };
    }
    Err(Incompatibility::TooNew.into())
}

fn check_minimum(
    from: &Version,
    to: &Version,
    table: PatchRequirements,
) -> Result<(), UpdateCheckError> {
    let Some(minimum) = to.base().and_then(|b| table.minimum_for(b)) else {
        return Ok(());
    };
    match from.partial_cmp(minimum) {
        Some(Ordering::Less) => Err(Incompatibility::RequiresAtLeast(minimum.clone()).into()),
        Some(_) => Ok(()),
        None => Err(UpdateCheckError::Unordered {
            from: Box::new(from.clone()),
            to: Box::new(to.clone()),
            minimum: Box::new(minimum.clone()),
        }),
    }
}

/// What a site reports about itself in a distributed setup: its version
/// and, if known, its edition. Displays as Checkmk's `Version: <v>, Edition: <e>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteVersionInfo {
    /// The site's Checkmk version.
    pub version: Version,
    /// The site's edition, if known.
    pub edition: Option<Edition>,
}

impl fmt::Display for SiteVersionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version: {}", self.version)?;
        if let Some(edition) = self.edition {
            write!(f, ", Edition: {edition}")?;
        }
        Ok(())
    }
}

/// Why a remote site refuses automation calls from a central site
/// (version part of §4c).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistributedError {
    /// The central site sent no version header (it is older than 2.0.0p1).
    #[error("Central or remote site are below 2.0.0p1.")]
    MissingVersion,
    /// The versions are not compatible.
    #[error(
        "The central ({central}) and remote site ({remote}) are not compatible. Reason: {reason}"
    )]
    Incompatible {
        /// The central site.
        central: Box<SiteVersionInfo>,
        /// The remote site.
        remote: Box<SiteVersionInfo>,
        /// Why.
        reason: Incompatibility,
    },
    /// Checkmk's own check fails for this pair (see [`UpdateCheckError`]).
    #[error("{0}")]
    Undecidable(UpdateCheckError),
}

/// Whether a remote site accepts a central site, version-wise:
/// `versions_compatible(central, remote)` with the table of the remote's
/// version (the remote runs the check). `central` is `None` when the
/// central did not send its version. Editions and licensing are not checked.
///
/// ```
/// use omd_versions::{check_distributed, SiteVersionInfo, Version};
/// let site = |s: &str| SiteVersionInfo { version: s.parse::<Version>().unwrap(), edition: None };
/// assert!(check_distributed(Some(&site("2.1.0p31")), &site("2.2.0")).is_ok());
/// assert!(check_distributed(Some(&site("10.0.0")), &site("2.2.0")).is_err());
/// ```
pub fn check_distributed(
    central: Option<&SiteVersionInfo>,
    remote: &SiteVersionInfo,
) -> Result<(), DistributedError> {
    let central = central.ok_or(DistributedError::MissingVersion)?;
    match check_update(&central.version, &remote.version) {
        Ok(()) => Ok(()),
        Err(UpdateCheckError::Incompatible(reason)) => Err(DistributedError::Incompatible {
            central: Box::new(central.clone()),
            remote: Box::new(remote.clone()),
            reason,
        }),
        Err(other) => Err(DistributedError::Undecidable(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn reason(from: &str, to: &str) -> String {
        check_update(&v(from), &v(to)).unwrap_err().to_string()
    }

    const TOO_OLD: &str = "Target version too old (older major version is not supported).";
    const TOO_NEW: &str = "Target version too new (one major version jump at maximum).";

    #[test]
    fn rule_1_no_base_is_compatible() {
        assert!(check_update(&v("2022.01.01"), &v("2.0.0")).is_ok());
        assert!(check_update(&v("1.2.0"), &v("2021.12.13")).is_ok());
    }

    #[test]
    fn rule_2_same_base_is_compatible_even_downwards() {
        assert!(check_update(&v("2.3.0p10"), &v("2.3.0p5")).is_ok());
        assert!(check_update(&v("2.3.0-2024.01.01"), &v("2.3.0b1-rc2")).is_ok());
    }

    #[test]
    fn rule_3_older_base_is_too_old() {
        assert_eq!(reason("2.1.0", "2.0.0b1"), TOO_OLD);
        assert_eq!(reason("3.1.0", "2.1.0"), TOO_OLD);
        assert_eq!(reason("2.3.1", "2.3.0"), TOO_OLD);
    }

    #[test]
    fn rule_4_two_majors_is_too_new() {
        assert_eq!(reason("2.1.0", "4.0.0"), TOO_NEW);
        assert_eq!(reason("1.6.0", "3.0.0"), TOO_NEW);
    }

    #[test]
    fn rule_5_major_jump_needs_the_last_release() {
        assert!(check_update(&v("1.6.0p1"), &v("2.0.0")).is_ok());
        assert_eq!(reason("1.5.0i1", "2.0.0"), TOO_NEW);
        let e = check_update(&v("2.1.0"), &v("3.0.0")).unwrap_err();
        assert!(matches!(
            e,
            UpdateCheckError::UnknownLastRelease { major: 2, .. }
        ));
        assert!(
            e.to_string().contains("last release of major version 2"),
            "{e}"
        );
        // A jump to X.1 is not a jump to X.0: rule 7.
        assert_eq!(reason("1.6.0", "2.1.0"), TOO_NEW);
    }

    #[test]
    fn rule_6_one_minor_with_patch_minimum() {
        assert!(check_update(&v("2.2.0p8"), &v("2.3.0")).is_ok());
        assert!(check_update(&v("2.2.0-2024.01.01"), &v("2.3.0")).is_ok());
        assert_eq!(
            reason("2.2.0", "2.3.0p1"),
            "This target version requires at least 2.2.0p8"
        );
        assert_eq!(reason("2.0.0", "2.2.0"), TOO_NEW);
        assert!(check_update(&v("2.0.0p12"), &v("2.1.0i1")).is_ok());
        let e = check_update(&v("2.2.0p8-rc1"), &v("2.3.0")).unwrap_err();
        assert!(matches!(e, UpdateCheckError::Unordered { .. }), "{e}");
    }

    #[test]
    fn rule_7_other_sub_is_too_new() {
        assert_eq!(reason("2.3.0", "2.3.1"), TOO_NEW);
    }

    #[test]
    fn tables_are_chosen_by_target() {
        assert_eq!(
            PatchRequirements::for_target(&v("2.4.0p1")),
            PatchRequirements::VER24
        );
        assert_eq!(
            PatchRequirements::for_target(&v("2.5.0b1")),
            PatchRequirements::VER25
        );
        assert_eq!(
            PatchRequirements::for_target(&v("2024.01.01")),
            PatchRequirements::VER25
        );
        // 2.3.0p30 -> 2.4.0: enough for 2.4.0p21's table, not for master's.
        assert!(check_update(&v("2.3.0p30"), &v("2.4.0")).is_ok());
        assert_eq!(
            check_update_with(&v("2.3.0p30"), &v("2.4.0"), PatchRequirements::VER25)
                .unwrap_err()
                .to_string(),
            "This target version requires at least 2.3.0p43"
        );
        assert_eq!(
            reason("2.4.0p22", "2.5.0"),
            "This target version requires at least 2.4.0p23"
        );
        assert!(check_update_with(&v("2.4.0p22"), &v("2.5.0"), PatchRequirements::VER24).is_ok());
        let entries: Vec<String> = PatchRequirements::VER25
            .entries()
            .map(|(b, v)| format!("{b}>={v}"))
            .collect();
        assert_eq!(
            entries,
            ["2.3.0>=2.2.0p8", "2.4.0>=2.3.0p43", "2.5.0>=2.4.0p23"]
        );
        assert_eq!(PatchRequirements::VER24.name(), "2.4.0p21");
        assert!(PatchRequirements::VER24.to_string().contains("2.4.0p21"));
    }

    #[test]
    fn omd_update_message_is_verbatim() {
        let msg = Incompatibility::TooNew.omd_update_message("2.1.0p1.cre", "2.3.0p1.cre");
        assert!(msg.starts_with(
            "ERROR: You are trying to update from 2.1.0p1.cre to 2.3.0p1.cre which is not \
             supported. Reason: Target version too new (one major version jump at maximum).\n\n"
        ));
        assert!(msg.ends_with(
            "'omd -f update' or 'omd --force update'But you will be on your own from there.\n"
        ));
    }

    #[test]
    fn distributed_messages() {
        let site = |s: &str, e| SiteVersionInfo {
            version: v(s),
            edition: e,
        };
        assert_eq!(
            check_distributed(None, &site("2.2.0", None))
                .unwrap_err()
                .to_string(),
            "Central or remote site are below 2.0.0p1."
        );
        let e = check_distributed(
            Some(&site("1.6.0p23", Some(Edition::Cee))),
            &site("2.2.0", Some(Edition::Cee)),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "The central (Version: 1.6.0p23, Edition: cee) and remote site (Version: 2.2.0, \
             Edition: cee) are not compatible. Reason: Target version too new (one major \
             version jump at maximum)."
        );
        assert!(check_distributed(Some(&site("2.1.0p31", None)), &site("2.2.0", None)).is_ok());
        let e = check_distributed(Some(&site("2.1.0", None)), &site("3.0.0", None)).unwrap_err();
        assert!(matches!(e, DistributedError::Undecidable(_)), "{e}");
    }
}
