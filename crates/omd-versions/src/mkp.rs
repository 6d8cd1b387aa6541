//! The MKP integer encoding of versions (versions.md §3) and the MKP
//! `min_required` / `usable_until` checks (§4b).

/// A string the MKP version encoding cannot handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {input:?} as an MKP version number: {reason}")]
pub struct MkpVersionError {
    input: String,
    reason: &'static str,
}

impl MkpVersionError {
    /// The rejected input.
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// Encodes a version string as the integer Checkmk's MKP tool compares
/// (`parse_check_mk_version`): the decimal digits of
/// `major:02, minor:02, sub:02, val:05`.
///
/// `val` is 50000 for a stable release, `50000 + N` for `pN`, `20000 + 100·N`
/// for `bN`, `10000 + 100·N` for `iN`, 90000 for every branch daily
/// (`X.Y.Z-<date>`: "all dailies are built equal") and for old master
/// dailies (four-digit first part; the date becomes the prefix). This
/// encoding is deliberately *not* [`Version`](crate::Version)'s order, and
/// it is lenient where that is strict, with the original's quirks:
///
/// * two-part strings are padded (`1.2` → 1020050000);
/// * suffixes chain: the first letter picks the offset, every further suffix
///   adds `100·N` (`i`, `b`) or `N` (`p`): `1.2.3i1p1` → 1020310101;
/// * a `+…` tail adds nothing, `-sandbox…` after the sub is ignored;
/// * an edition suffix (`.cee`, `.cre.demo`: letters after a dot) is ignored
///   (mkp.md §6: "trailing junk like `.cee` is ignored"), so
///   `2.3.0p13.cee` is `2.3.0p13`;
/// * `-rcN` is an error (the original raises);
/// * `b300` equals the stable release and `b1000` overflows into six digits.
///
/// ```
/// use omd_versions::mkp_version_number;
/// assert_eq!(mkp_version_number("1.2.4p1").unwrap(), 1020450001);
/// assert_eq!(mkp_version_number("1.5.0-2019.10.10").unwrap(), 1050090000);
/// assert_eq!(mkp_version_number("2020.05.26").unwrap(), 2020052690000);
/// assert!(mkp_version_number("2.3.0p8-rc1").is_err());
/// assert_eq!(mkp_version_number("2.3.0p13.cee").unwrap(), 2030050013);
/// assert_eq!(mkp_version_number("2.3.0.cre.demo").unwrap(), 2030050000);
/// ```
pub fn mkp_version_number(version: &str) -> Result<u64, MkpVersionError> {
    let fail = |reason| MkpVersionError {
        input: version.to_owned(),
        reason,
    };
    let mut parts = version.splitn(3, '.');
    let major_str = parts.next().unwrap_or("");
    let minor_str = parts.next().unwrap_or("0");
    let third = parts.next().unwrap_or("0");

    let major = integer(major_str).ok_or_else(|| fail("the major part is not a number"))?;
    let minor = integer(minor_str).ok_or_else(|| fail("the minor part is not a number"))?;
    let sub_len = third
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(third.len());
    let (sub_str, rest) = third.split_at(sub_len);
    let sub =
        integer(sub_str).ok_or_else(|| fail("the third part does not start with a number"))?;

    let rest = without_edition_suffix(rest);
    let val = if major_str.len() == 4 {
        // Old master daily YYYY.MM.DD[...]: the date is the prefix.
        90000
    } else {
        suffix_value(rest).map_err(fail)?
    };
    format!("{major:02}{minor:02}{sub:02}{val:05}")
        .parse()
        .map_err(|_| fail("the number is too large"))
}

/// `rest` without a trailing edition suffix: a dot followed by letters and
/// dots only (`p13.cee` → `p13`, `.cre.demo` → ``).
fn without_edition_suffix(rest: &str) -> &str {
    match rest.find('.') {
        Some(dot)
            if rest[dot..]
                .bytes()
                .all(|b| b == b'.' || b.is_ascii_alphabetic())
                && rest[dot..].bytes().any(|b| b.is_ascii_alphabetic()) =>
        {
            &rest[..dot]
        }
        _ => rest,
    }
}

/// A non-negative decimal integer (ASCII digits only, at least one).
fn integer(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The 5-digit value of what follows `major.minor.sub`.
fn suffix_value(rest: &str) -> Result<u64, &'static str> {
    if rest.starts_with("-sandbox") {
        return Ok(50000);
    }
    if rest.starts_with("-rc") {
        return Err("release candidates (-rcN) are not supported");
    }
    if let Some(date) = rest.strip_prefix('-') {
        return if date.starts_with(|c: char| c.is_ascii_digit()) {
            Ok(90000)
        } else {
            Err("expected a date after \"-\"")
        };
    }
    let mut val: Option<u64> = None;
    let mut rest = rest;
    while let Some(letter) = rest.chars().next() {
        if letter == '+' {
            break; // unknown trailing text adds nothing
        }
        let (first, each) = match letter {
            'i' => (10000, 100),
            'b' => (20000, 100),
            'p' => (50000, 1),
            '-' if rest.starts_with("-rc") => {
                return Err("release candidates (-rcN) are not supported");
            }
            _ => return Err("expected i, b or p followed by a number"),
        };
        rest = &rest[1..];
        let len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n = integer(&rest[..len]).ok_or("expected a number after i, b or p")?;
        rest = &rest[len..];
        let add = n.checked_mul(each).ok_or("the number is too large")?;
        val = Some(
            val.unwrap_or(first)
                .checked_add(add)
                .ok_or("the number is too large")?,
        );
    }
    Ok(val.unwrap_or(50000))
}

/// A package whose version bounds exclude the site's version (§4b).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MkpIncompatible {
    /// The site is older than `version.min_required`.
    #[error("Package requires Checkmk version {min_required} (this is {site})")]
    TooOld {
        /// The site's version.
        site: String,
        /// The package's `version.min_required`.
        min_required: String,
    },
    /// The site is at or above `version.usable_until`.
    #[error("Package requires Checkmk version below {usable_until} (this is {site})")]
    TooNew {
        /// The site's version.
        site: String,
        /// The package's `version.usable_until`.
        usable_until: String,
    },
}

/// Checks `version.min_required`: too old iff the site's number (§3) is below
/// the bound's. If either string cannot be encoded the check passes, as in
/// Checkmk.
///
/// ```
/// use omd_versions::check_mkp_min_required;
/// // 2.2.0 means "the release after the last beta", not "any 2.2".
/// assert!(check_mkp_min_required("2.2.0b1", "2.2.0").is_err());
/// assert!(check_mkp_min_required("2.2.0", "2.2.0").is_ok());
/// ```
pub fn check_mkp_min_required(site: &str, min_required: &str) -> Result<(), MkpIncompatible> {
    match (mkp_version_number(site), mkp_version_number(min_required)) {
        (Ok(s), Ok(m)) if s < m => Err(MkpIncompatible::TooOld {
            site: site.to_owned(),
            min_required: min_required.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Checks `version.usable_until`: too new iff the site's number is at or
/// above the bound's (so a bound equal to the site version already
/// excludes it). Unencodable strings pass. Checkmk applies this check only
/// where outdated packages are not allowed (activation, `disable-outdated`,
/// `update-active`, 2.5 GUI installs).
pub fn check_mkp_usable_until(site: &str, usable_until: &str) -> Result<(), MkpIncompatible> {
    match (mkp_version_number(site), mkp_version_number(usable_until)) {
        (Ok(s), Ok(u)) if s >= u => Err(MkpIncompatible::TooNew {
            site: site.to_owned(),
            usable_until: usable_until.to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> u64 {
        mkp_version_number(s).unwrap()
    }

    #[test]
    fn doctest_values() {
        assert_eq!(n("1.2.4p1"), 1020450001);
        assert_eq!(n("1.2.4"), 1020450000);
        assert_eq!(n("1.2.4b1"), 1020420100);
        assert_eq!(n("1.2.3i1"), 1020310100);
        assert_eq!(n("1.2.4p10"), 1020450010);
        assert_eq!(n("1.5.0p22"), 1050050022);
        assert_eq!(n("1.5.0-2019.10.10"), 1050090000);
        assert_eq!(n("2022.06.23-sandbox-az-sles-15sp3"), 2022062390000);
        assert_eq!(n("2020.05.26"), 2020052690000);
    }

    #[test]
    fn quirks() {
        assert_eq!(n("1.2"), 1020050000);
        assert_eq!(n("1.2.3i1p1"), 1020310101);
        assert_eq!(n("1.2.3i12p4b43"), 1020315504);
        assert_eq!(n("2.3.0p21+security"), 2030050021);
        assert_eq!(n("1.2.3+security"), 1020350000);
        assert_eq!(n("2.3.0-sandbox-x"), 2030050000);
        assert_eq!(n("2.2.0b300"), n("2.2.0"));
        assert_eq!(n("2.2.0b1000"), 20200120000);
        assert!(n("2.2.0b1000") > n("2.2.0p999"));
    }

    /// mkp.md §6: trailing junk like `.cee` is ignored, so such a bound is
    /// checked, not skipped as unreadable.
    #[test]
    fn an_edition_suffix_is_ignored() {
        assert_eq!(n("2.3.0p13.cee"), n("2.3.0p13"));
        assert_eq!(n("2.3.0.cee"), n("2.3.0"));
        assert_eq!(n("2.4.0b1.cre.demo"), n("2.4.0b1"));
        assert!(check_mkp_min_required("2.3.0p12", "2.3.0p13.cee").is_err());
        assert!(check_mkp_usable_until("2.3.0p1", "2.3.0.cee").is_err());
        assert!(check_mkp_usable_until("2.3.0b1", "2.3.0.cee").is_ok());
        // Only letters after the dot: anything else still fails.
        assert!(mkp_version_number("2.3.0p1.x1").is_err());
    }

    #[test]
    fn errors_name_the_input() {
        for bad in [
            "2.3.0p8-rc1",
            "2.3.0-rc1",
            "foo",
            "2.x.0",
            "2.3.0p",
            "2.3.0g1",
            "2.3.",
            "",
            "2.3.0-x",
        ] {
            let e = mkp_version_number(bad).unwrap_err();
            assert_eq!(e.input(), bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        assert!(
            mkp_version_number("2.3.0p8-rc1")
                .unwrap_err()
                .to_string()
                .contains("-rcN")
        );
        assert!(mkp_version_number("99999999999999.99.99p1").is_err());
    }

    #[test]
    fn min_required_and_usable_until() {
        assert_eq!(
            check_mkp_min_required("2.2.0b1", "2.2.0")
                .unwrap_err()
                .to_string(),
            "Package requires Checkmk version 2.2.0 (this is 2.2.0b1)"
        );
        assert!(check_mkp_min_required("2.2.0", "2.2.0").is_ok());
        assert!(check_mkp_min_required("2.3.0p1", "foo").is_ok());
        assert!(check_mkp_min_required("foo", "2.3.0").is_ok());
        assert_eq!(
            check_mkp_usable_until("2.3.0p1", "2.3.0")
                .unwrap_err()
                .to_string(),
            "Package requires Checkmk version below 2.3.0 (this is 2.3.0p1)"
        );
        assert!(check_mkp_usable_until("2.3.0b1", "2.3.0").is_ok());
        assert!(check_mkp_usable_until("1.4", "1.4").is_err());
    }
}
