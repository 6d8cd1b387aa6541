//! The Checkmk version type: grammar, rendering and order (versions.md §1, §2).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `major.minor.sub` part of a version, each number `0..=99`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Base {
    major: u8,
    minor: u8,
    sub: u8,
}

impl Base {
    /// A base version, or `None` when a part is above 99 (the grammar allows
    /// at most two digits per part).
    pub const fn new(major: u8, minor: u8, sub: u8) -> Option<Base> {
        if major > 99 || minor > 99 || sub > 99 {
            None
        } else {
            Some(Base { major, minor, sub })
        }
    }

    /// Unchecked constructor for the built-in tables (all parts are literals <= 99).
    pub(crate) const fn of(major: u8, minor: u8, sub: u8) -> Base {
        Base { major, minor, sub }
    }

    /// The major version (`2` in `2.3.0`).
    pub const fn major(self) -> u8 {
        self.major
    }

    /// The minor version (`3` in `2.3.0`).
    pub const fn minor(self) -> u8 {
        self.minor
    }

    /// The sub version (`0` in `2.3.0`).
    pub const fn sub(self) -> u8 {
        self.sub
    }
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.sub)
    }
}

/// The date of a daily build, `YYYY.MM.DD`.
///
/// Like Checkmk, the date is not checked against the calendar: `2023.19.39`
/// is accepted (the grammar only restricts the first digit of month and day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// A date within the grammar (`1000..=9999`, month `0..=19`, day `0..=39`),
    /// or `None` outside it.
    pub const fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        if year < 1000 || year > 9999 || month > 19 || day > 39 {
            None
        } else {
            Some(Date { year, month, day })
        }
    }

    /// The year.
    pub const fn year(self) -> u16 {
        self.year
    }

    /// The month (not checked against the calendar).
    pub const fn month(self) -> u8 {
        self.month
    }

    /// The day (not checked against the calendar).
    pub const fn day(self) -> u8 {
        self.day
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}.{:02}.{:02}", self.year, self.month, self.day)
    }
}

/// The release part of a version, in Checkmk's order: innovation < beta <
/// stable < patch < daily (the derived `Ord` follows the declaration order,
/// then the number or date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Release {
    /// `iN`: an innovation release, a pre-release of its base (below the betas).
    Innovation(u32),
    /// `bN`: a beta release.
    Beta(u32),
    /// No build suffix: the stable release (`2.3.0`).
    Stable,
    /// `pN`: a patch release.
    Patch(u32),
    /// A daily build (`2.3.0-2024.01.01` or the old master form `2024.01.01`).
    Daily(Date),
}

/// A Checkmk version as `cmk.ccc.version.Version` understands it.
///
/// Forms (versions.md §1): releases `2.3.0`, `2.3.0p12`, `2.4.0b1`,
/// `2.2.0i1`, optionally followed by `-rcN` and `+meta`; branch dailies
/// `2.3.0-2024.01.01`; old master dailies `2024.01.01`; both daily forms
/// optionally followed by `-sandbox…` (dropped) or, as in 2.5, by a long
/// edition name such as `.pro` (dropped as well).
///
/// # Order
///
/// [`PartialOrd`] implements Checkmk's order (§2) exactly: it is only
/// *partial*, because a release candidate and the plain release of the same
/// version (`2.3.0p8-rc1` vs `2.3.0p8`) cannot be ordered; `partial_cmp`
/// returns `None` there (Checkmk raises). That is why `Version` has no
/// [`Ord`]; use [`Version::cmp_lenient`] to sort lists. Equality and order
/// ignore the `+meta` part; equal versions may therefore render differently.
///
/// ```
/// use omd_versions::Version;
/// let a: Version = "2.3.0p8".parse().unwrap();
/// let b: Version = "2.3.0-2024.01.01".parse().unwrap();
/// assert!(a < b);
/// assert_eq!(a.to_string(), "2.3.0p8");
/// let rc: Version = "2.3.0p8-rc1".parse().unwrap();
/// assert_eq!(a.partial_cmp(&rc), None);
/// ```
#[derive(Debug, Clone)]
pub struct Version {
    /// `None` only for old master dailies (`YYYY.MM.DD`).
    base: Option<Base>,
    release: Release,
    rc: Option<u32>,
    meta: Option<String>,
}

/// A string that is not a Checkmk version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Checkmk version {input:?}: {reason}")]
pub struct ParseVersionError {
    input: String,
    reason: String,
}

impl ParseVersionError {
    /// The rejected input.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why it was rejected.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl Version {
    /// A release version `major.minor.sub` plus its release part, without rc
    /// or meta. `None` if a part is above 99.
    pub fn new(major: u8, minor: u8, sub: u8, release: Release) -> Option<Version> {
        Some(Version {
            base: Some(Base::new(major, minor, sub)?),
            release,
            rc: None,
            meta: None,
        })
    }

    /// An old-style master daily `YYYY.MM.DD` (no base).
    pub fn master_daily(date: Date) -> Version {
        Version {
            base: None,
            release: Release::Daily(date),
            rc: None,
            meta: None,
        }
    }

    /// Unchecked constructor for the built-in tables.
    pub(crate) const fn table_entry(base: Base, release: Release) -> Version {
        Version {
            base: Some(base),
            release,
            rc: None,
            meta: None,
        }
    }

    /// This version with release candidate number `rc` (releases only;
    /// dailies cannot carry one, so they are returned unchanged).
    pub fn with_rc(mut self, rc: Option<u32>) -> Version {
        if !matches!(self.release, Release::Daily(_)) {
            self.rc = rc;
        }
        self
    }

    /// The `major.minor.sub` part; `None` for old master dailies, whose
    /// `version_base` is `""` in Checkmk.
    pub fn base(&self) -> Option<Base> {
        self.base
    }

    /// The release part.
    pub fn release(&self) -> Release {
        self.release
    }

    /// The release candidate number (`Some(2)` for `2.3.0p8-rc2`).
    pub fn rc(&self) -> Option<u32> {
        self.rc
    }

    /// The `+meta` part without the `+` (`Some("security")`).
    pub fn meta(&self) -> Option<&str> {
        self.meta.as_deref()
    }

    /// True for both kinds of daily builds.
    pub fn is_daily(&self) -> bool {
        matches!(self.release, Release::Daily(_))
    }

    /// This version without `-rcN` and `+meta` (Checkmk's `version_without_rc`).
    pub fn without_rc(&self) -> Version {
        Version {
            base: self.base,
            release: self.release,
            rc: None,
            meta: None,
        }
    }

    /// A total order for sorting: equal to [`PartialOrd`] wherever that is
    /// defined; where it is not (a release candidate against the plain
    /// release of the same version), the release candidate sorts first,
    /// because a candidate is built before the release it is a candidate
    /// for. Meta is ignored, so the order is consistent with `==`.
    ///
    /// ```
    /// use omd_versions::Version;
    /// let mut v: Vec<Version> = ["2.3.0p8", "2.3.0p8-rc1", "2.3.0b1"]
    ///     .iter().map(|s| s.parse().unwrap()).collect();
    /// v.sort_by(Version::cmp_lenient);
    /// let s: Vec<String> = v.iter().map(|v| v.to_string()).collect();
    /// assert_eq!(s, ["2.3.0b1", "2.3.0p8-rc1", "2.3.0p8"]);
    /// ```
    pub fn cmp_lenient(&self, other: &Version) -> Ordering {
        self.cmp_without_rc(other)
            .then_with(|| match (self.rc, other.rc) {
                (None, None) => Ordering::Equal,
                (Some(a), Some(b)) => a.cmp(&b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
            })
    }

    /// Steps 1 and 2 of §2: base (no base is highest), then release.
    fn cmp_without_rc(&self, other: &Version) -> Ordering {
        let base = match (self.base, other.base) {
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => a.cmp(&b),
            (None, None) => Ordering::Equal,
        };
        base.then_with(|| self.release.cmp(&other.release))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.base == other.base && self.release == other.release && self.rc == other.rc
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Meta is ignored, as in `eq`.
        self.base.hash(state);
        self.release.hash(state);
        self.rc.hash(state);
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        match self.cmp_without_rc(other) {
            Ordering::Equal => match (self.rc, other.rc) {
                (None, None) => Some(Ordering::Equal),
                (Some(a), Some(b)) => Some(a.cmp(&b)),
                // "can only be evaluated by looking at the git history"
                _ => None,
            },
            ord => Some(ord),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.base, self.release) {
            (Some(base), Release::Daily(date)) => write!(f, "{base}-{date}")?,
            (None, Release::Daily(date)) => write!(f, "{date}")?,
            (Some(base), Release::Innovation(n)) => write!(f, "{base}i{n}")?,
            (Some(base), Release::Beta(n)) => write!(f, "{base}b{n}")?,
            (Some(base), Release::Stable) => write!(f, "{base}")?,
            (Some(base), Release::Patch(n)) => write!(f, "{base}p{n}")?,
            // Not constructible: only dailies lack a base.
            (None, _) => {}
        }
        if let Some(rc) = self.rc {
            write!(f, "-rc{rc}")?;
        }
        if let Some(meta) = &self.meta {
            write!(f, "+{meta}")?;
        }
        Ok(())
    }
}

impl FromStr for Version {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Version, ParseVersionError> {
        let release_error = match parse_release(s) {
            Ok(v) => return Ok(v),
            Err(reason) => reason,
        };
        let daily_error = match parse_daily(s) {
            Ok(v) => return Ok(v),
            Err(reason) => reason,
        };
        Err(ParseVersionError {
            input: s.to_owned(),
            reason: explain(s, release_error, daily_error),
        })
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Version, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(D::Error::custom)
    }
}

/// The 2.5 long edition names that may follow a daily (`daily25` in §1).
const DAILY_EDITIONS: [&str; 5] = ["community", "pro", "ultimate", "ultimatemt", "cloud"];

/// A tiny cursor over ASCII input.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn eat(&mut self, prefix: &str) -> bool {
        match self.rest.strip_prefix(prefix) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn digits(&mut self) -> &'a str {
        let end = self
            .rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(self.rest.len());
        let (digits, rest) = self.rest.split_at(end);
        self.rest = rest;
        digits
    }

    /// `NUM2 = [1-9]?[0-9]`.
    fn num2(&mut self, what: &'static str) -> Result<u8, &'static str> {
        let digits = self.digits();
        match digits.as_bytes() {
            [] => Err(match what {
                "major" => "expected a major version number",
                "minor" => "expected a minor version number after the first dot",
                _ => "expected a sub version number after the second dot",
            }),
            [d] => Ok(d - b'0'),
            [b'0', _] => Err("version numbers must not have a leading zero"),
            [a, b] => Ok((a - b'0') * 10 + (b - b'0')),
            _ => Err("version numbers have at most two digits (0 to 99)"),
        }
    }

    /// `BASE = NUM2 "." NUM2 "." NUM2`.
    fn base(&mut self) -> Result<Base, &'static str> {
        let major = self.num2("major")?;
        if !self.eat(".") {
            return Err("expected <major>.<minor>.<sub>");
        }
        let minor = self.num2("minor")?;
        if !self.eat(".") {
            return Err("expected three dot-separated numbers (<major>.<minor>.<sub>)");
        }
        let sub = self.num2("sub")?;
        Ok(Base::of(major, minor, sub))
    }

    /// `DIGITS = [0-9]+` as a number.
    fn number(&mut self, missing: &'static str) -> Result<u32, &'static str> {
        let digits = self.digits();
        if digits.is_empty() {
            return Err(missing);
        }
        digits
            .parse()
            .map_err(|_| "a build or rc number is too large (above 4294967295)")
    }

    /// `DATE = [1-9][0-9]{3} "." [0-1][0-9] "." [0-3][0-9]`.
    fn date(&mut self) -> Result<Date, &'static str> {
        const BAD: &str = "expected a date YYYY.MM.DD";
        let b = self.rest.as_bytes();
        if b.len() < 10 {
            return Err(BAD);
        }
        let d = |i: usize| b[i].is_ascii_digit();
        let ok = matches!(b[0], b'1'..=b'9')
            && d(1)
            && d(2)
            && d(3)
            && b[4] == b'.'
            && matches!(b[5], b'0' | b'1')
            && d(6)
            && b[7] == b'.'
            && matches!(b[8], b'0'..=b'3')
            && d(9);
        if !ok {
            return Err(BAD);
        }
        let n = |i: usize| u16::from(b[i] - b'0');
        let year = n(0) * 1000 + n(1) * 100 + n(2) * 10 + n(3);
        let month = (b[5] - b'0') * 10 + (b[6] - b'0');
        let day = (b[8] - b'0') * 10 + (b[9] - b'0');
        self.rest = &self.rest[10..];
        Ok(Date { year, month, day })
    }
}

/// `release = BASE [BUILD] [RC] [META]`.
fn parse_release(s: &str) -> Result<Version, &'static str> {
    let mut c = Cursor { rest: s };
    let base = c.base()?;
    let release = if c.eat("i") {
        Release::Innovation(c.number("expected a number after \"i\"")?)
    } else if c.eat("b") {
        Release::Beta(c.number("expected a number after \"b\"")?)
    } else if c.eat("p") {
        Release::Patch(c.number("expected a number after \"p\"")?)
    } else {
        Release::Stable
    };
    let rc = if c.eat("-rc") {
        Some(c.number("expected a number after \"-rc\"")?)
    } else {
        None
    };
    let meta = if c.eat("+") {
        let meta = c.rest.to_owned();
        c.rest = "";
        Some(meta)
    } else {
        None
    };
    if !c.rest.is_empty() {
        return Err(if c.rest.starts_with('-') {
            "unexpected text after the version (only -rcN, -YYYY.MM.DD or +meta may follow)"
        } else {
            "unexpected text after the version (expected i, b or p plus a number, -rcN or +meta)"
        });
    }
    Ok(Version {
        base: Some(base),
        release,
        rc,
        meta,
    })
}

/// `daily = [BASE "-"] DATE ["-sandbox" ANY+]`, plus the 2.5 edition suffix.
fn parse_daily(s: &str) -> Result<Version, &'static str> {
    let mut c = Cursor { rest: s };
    let mut base = None;
    {
        let mut probe = Cursor { rest: s };
        if let Ok(b) = probe.base() {
            if probe.eat("-") {
                base = Some(b);
                c = probe;
            } else if probe.rest.starts_with(['i', 'b', 'p']) && probe.rest.contains('-') {
                return Err("a daily build (<base>-YYYY.MM.DD) cannot have an i, b or p build");
            }
        }
    }
    let date = c.date()?;
    let tail_ok = c.rest.is_empty()
        || c.rest
            .strip_prefix("-sandbox")
            .is_some_and(|r| !r.is_empty())
        || c.rest
            .strip_prefix('.')
            .is_some_and(|e| DAILY_EDITIONS.contains(&e));
    if !tail_ok {
        return Err("unexpected text after the date (only -sandbox… may follow a daily build)");
    }
    Ok(Version {
        base,
        release: Release::Daily(date),
        rc: None,
        meta: None,
    })
}

/// Picks the more useful of the two reasons and adds hints for common mistakes.
fn explain(s: &str, release: &'static str, daily: &'static str) -> String {
    if s.is_empty() {
        return "the string is empty".to_owned();
    }
    if s.trim() != s {
        return "surrounding whitespace is not allowed".to_owned();
    }
    if let Some((_, last)) = s.rsplit_once('.')
        && (crate::edition::Edition::from_suffix(last).is_some() || last == "demo")
    {
        return format!(
            "ends with the OMD edition suffix \".{last}\"; strip it first \
             (OmdVersion parses OMD version names)"
        );
    }
    // A first part of four digits means the input was meant as a date.
    let first = s.split(['.', '-']).next().unwrap_or("");
    let looks_daily = first.len() == 4 && first.bytes().all(|b| b.is_ascii_digit())
        || s.split_once('-')
            .is_some_and(|(_, r)| r.len() >= 4 && r.as_bytes()[..4].iter().all(u8::is_ascii_digit));
    if looks_daily { daily } else { release }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(v("2.1.0").release(), Release::Stable);
        assert_eq!(v("2.1.0p12").release(), Release::Patch(12));
        assert_eq!(v("2.3.0b1").release(), Release::Beta(1));
        assert_eq!(v("2.2.0i1").release(), Release::Innovation(1));
        assert_eq!(v("1.1.5i3").base(), Base::new(1, 1, 5));
        let x = v("2.3.0p34-rc42+security");
        assert_eq!((x.rc(), x.meta()), (Some(42), Some("security")));
        assert_eq!(v("1.2.3-rc7").rc(), Some(7));
        assert_eq!(v("1.2.3+security").meta(), Some("security"));
        assert_eq!(v("2020.06.10").base(), None);
        assert_eq!(
            v("2.3.0-2024.01.01").release(),
            Release::Daily(Date::new(2024, 1, 1).unwrap())
        );
        assert!(v("2022.06.02-sandbox-xyz").is_daily());
        assert_eq!(v("2023.19.39").to_string(), "2023.19.39");
        assert_eq!(
            v("2.5.0-2025.01.01.ultimatemt").to_string(),
            "2.5.0-2025.01.01"
        );
    }

    #[test]
    fn rejects_invalid_forms() {
        for bad in [
            "1.2.3g5",
            "1.2.3b5-2023.01.01",
            "2.2.0rc1",
            "2.2.0p5-rc",
            "1.2.3-2023.12.24-rc1",
            "2023.12.24-rc1",
            "2.3.0p12.cre",
            "2.3",
            "01.2.3",
            "100.0.0",
            "2.3.0p",
            "2.3.0-2024.1.01",
            "2022.06.02-sandbox",
            "2024.01.01.cee",
            " 2.3.0",
            "",
            "2.3.0p99999999999",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn errors_quote_the_input_and_give_a_reason() {
        let e = "2.3.0p12.cre".parse::<Version>().unwrap_err();
        assert_eq!(e.input(), "2.3.0p12.cre");
        assert!(
            e.to_string()
                .starts_with("invalid Checkmk version \"2.3.0p12.cre\": ")
        );
        assert!(e.reason().contains("edition suffix \".cre\""), "{e}");
        let e = "01.2.3".parse::<Version>().unwrap_err();
        assert!(e.reason().contains("leading zero"), "{e}");
        let e = "2.3".parse::<Version>().unwrap_err();
        assert!(e.reason().contains("three"), "{e}");
        let e = "2.3.0-2024.1.01".parse::<Version>().unwrap_err();
        assert!(e.reason().contains("date"), "{e}");
        let e = "1.2.3b5-2023.01.01".parse::<Version>().unwrap_err();
        assert!(e.reason().contains("cannot have an i, b or p build"), "{e}");
        let e = "2023.12.24-rc1".parse::<Version>().unwrap_err();
        assert!(e.reason().contains("after the date"), "{e}");
        let e = "2.2.0rc1".parse::<Version>().unwrap_err();
        assert!(e.reason().contains("unexpected text"), "{e}");
        let e = "".parse::<Version>().unwrap_err();
        assert!(e.reason().contains("empty"), "{e}");
    }

    #[test]
    fn renders_canonically() {
        assert_eq!(
            v("2.3.0p34-rc42+security").to_string(),
            "2.3.0p34-rc42+security"
        );
        assert_eq!(
            v("2022.06.23-sandbox-az-sles-15sp3").to_string(),
            "2022.06.23"
        );
        assert_eq!(v("2.3.0p01").to_string(), "2.3.0p1");
        assert_eq!(v("1.2.3+").to_string(), "1.2.3+");
        assert_eq!(v("2.3.0p5-rc4").without_rc().to_string(), "2.3.0p5");
        assert_eq!(v("2.3.0p5-rc4+x").without_rc().to_string(), "2.3.0p5");
    }

    #[test]
    fn order_chain_of_one_base() {
        let chain = [
            "2.3.0i1",
            "2.3.0i9",
            "2.3.0b1",
            "2.3.0b9",
            "2.3.0",
            "2.3.0p1",
            "2.3.0p12",
            "2.3.0-2024.01.01",
            "2.3.0-2024.02.01",
            "2.4.0i1",
            "2020.01.01",
        ];
        for (i, a) in chain.iter().enumerate() {
            for (j, b) in chain.iter().enumerate() {
                assert_eq!(v(a).partial_cmp(&v(b)), Some(i.cmp(&j)), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn rc_against_release_is_unordered_but_unequal() {
        let (a, b) = (v("2.3.0p8"), v("2.3.0p8-rc1"));
        assert_eq!(a.partial_cmp(&b), None);
        assert_ne!(a, b);
        assert!(!a.lt(&b) && !a.gt(&b) && !a.le(&b) && !a.ge(&b));
        assert_eq!(a.cmp_lenient(&b), Ordering::Greater);
        assert_eq!(b.cmp_lenient(&a), Ordering::Less);
    }

    #[test]
    fn meta_is_ignored() {
        assert_eq!(v("2.3.0p5-rc4+security"), v("2.3.0p5-rc4"));
        assert_eq!(
            v("2.3.0p5+a").partial_cmp(&v("2.3.0p5+b")),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn branch_dailies_do_not_compare_dates_across_bases() {
        assert!(v("1.2.3-2024.09.09") < v("1.2.4-1970.01.01"));
    }

    #[test]
    fn serde_uses_the_string_form() {
        let x = v("2.3.0p8-rc1+security");
        let json = serde_json::to_string(&x).unwrap();
        assert_eq!(json, "\"2.3.0p8-rc1+security\"");
        let back: Version = serde_json::from_str(&json).unwrap();
        assert_eq!(back.meta(), Some("security"));
        let err = serde_json::from_str::<Version>("\"2.3\"").unwrap_err();
        assert!(err.to_string().contains("\"2.3\""), "{err}");
    }

    #[test]
    fn constructors() {
        assert_eq!(
            Version::new(2, 3, 0, Release::Patch(1)).unwrap(),
            v("2.3.0p1")
        );
        assert!(Version::new(100, 0, 0, Release::Stable).is_none());
        assert_eq!(
            Version::new(2, 3, 0, Release::Patch(1))
                .unwrap()
                .with_rc(Some(2)),
            v("2.3.0p1-rc2")
        );
        assert_eq!(
            Version::master_daily(Date::new(2024, 1, 2).unwrap()),
            v("2024.01.02")
        );
        assert!(Date::new(999, 1, 1).is_none());
    }
}
