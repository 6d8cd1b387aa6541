//! The package manifest: fields, validation, `info` / `info.json` formats and `inspect` text.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::fmt::Write as _;

use crate::error::{Error, ErrorKind, Result};
use crate::json;
use crate::part::{LEGACY_RRACONF, PackagePart};
use py_literal::{self as literal, PyValue, repr_float};

/// What `mkp template` and `mkp package` write into `version.packaged`.
pub const PACKAGED_BY: &str = "cmk-mkp-tool 2.0.1";

// ---------------------------------------------------------------------------------------------
// names and versions

/// A validated package name: `^[^\d\W][-\w]*$` (Unicode letters, digits, `_`, `-`; no leading digit).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageName(String);

fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn is_decimal(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric() && !c.is_alphabetic())
}

impl PackageName {
    /// Validates `name`; the error text is Checkmk's.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let mut chars = name.chars();
        let ok = match chars.next() {
            Some(first) => {
                is_word(first) && !is_decimal(first) && chars.all(|c| c == '-' || is_word(c))
            }
            None => false,
        };
        if ok {
            Ok(PackageName(name))
        } else {
            Err(ErrorKind::InvalidName { name }.into())
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PackageName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PackageName::new(s)
    }
}

/// A package version: any string without `/`. Equality is exact string equality; ordering
/// is Checkmk's best-effort [`PackageVersion::sort_key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PackageVersion(String);

/// One identifier of a [`VersionSortKey`]: text sorts below numbers, the end marker above both.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortIdent {
    /// A non-numeric identifier (rank 0).
    Text(String),
    /// A numeric identifier (rank 1).
    Number(i128),
    /// The terminator (rank 2).
    End,
}

/// The sort key of a [`PackageVersion`] (Checkmk's `PackageVersion.sort_key`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionSortKey(Vec<SortIdent>);

/// Python's `int(s)` for the forms that occur in versions (whitespace, sign, `_` separators).
fn python_int(s: &str) -> Option<i128> {
    let t = s.trim_matches(literal::py_is_space);
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let mut value: i128 = 0;
    for c in digits.chars().filter(char::is_ascii_digit) {
        value = value
            .saturating_mul(10)
            .saturating_add(i128::from(c.to_digit(10).unwrap_or(0)));
    }
    Some(if neg { -value } else { value })
}

impl PackageVersion {
    /// Validates `version` (it must not contain `/`); the error text is Checkmk's.
    pub fn new(version: impl Into<String>) -> Result<Self> {
        let version = version.into();
        if version.contains('/') {
            Err(ErrorKind::InvalidVersion { version }.into())
        } else {
            Ok(PackageVersion(version))
        }
    }

    /// The version string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checkmk's sort key: drop `+build`, split release/prerelease at the first `-`, split
    /// both at `.`, numbers above text, a terminator last.
    pub fn sort_key(&self) -> VersionSortKey {
        let without_build = self.0.split('+').next().unwrap_or("");
        let (release, pre) = match without_build.split_once('-') {
            Some((r, p)) => (r, Some(p)),
            None => (without_build, None),
        };
        let mut key = Vec::new();
        for part in release
            .split('.')
            .chain(pre.into_iter().flat_map(|p| p.split('.')))
        {
            key.push(match python_int(part) {
                Some(n) => SortIdent::Number(n),
                None => SortIdent::Text(part.to_string()),
            });
        }
        key.push(SortIdent::End);
        VersionSortKey(key)
    }

    /// Whether the version is a semantic version (what `mkp package` requires).
    pub fn is_semver(&self) -> bool {
        is_semver(&self.0)
    }

    /// Fails with Checkmk's message unless the version is a semantic version.
    pub fn require_semver(&self) -> Result<()> {
        if self.is_semver() {
            Ok(())
        } else {
            Err(ErrorKind::NotSemver {
                version: self.0.clone(),
            }
            .into())
        }
    }
}

impl PartialOrd for PackageVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PackageVersion {
    /// By sort key; versions with equal keys (`1.0+a`, `1.0+b`) are ordered by their text so
    /// that `Ord` stays consistent with `Eq`.
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key()
            .cmp(&other.sort_key())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl fmt::Display for PackageVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PackageVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PackageVersion::new(s)
    }
}

fn is_numeric_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn is_alnum_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_semver(v: &str) -> bool {
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    if let Some(build) = build
        && !build.split('.').all(is_alnum_ident)
    {
        return false;
    }
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    if let Some(pre) = pre {
        let ok = pre.split('.').all(|id| {
            is_alnum_ident(id) && (id.bytes().any(|b| !b.is_ascii_digit()) || is_numeric_ident(id))
        });
        if !ok {
            return false;
        }
    }
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| is_numeric_ident(p))
}

// ---------------------------------------------------------------------------------------------
// paths

/// Normalises a manifest path the way Python's `pathlib` does (`a//b` -> `a/b`, `./x` -> `x`,
/// trailing `/` dropped, `""` -> `.`).
pub(crate) fn normalize_path(p: &str) -> String {
    let root = if p.starts_with("//") && !p.starts_with("///") {
        "//"
    } else if p.starts_with('/') {
        "/"
    } else {
        ""
    };
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let joined = parts.join("/");
    if root.is_empty() && joined.is_empty() {
        ".".into()
    } else {
        format!("{root}{joined}")
    }
}

/// Why a (normalised) manifest path is unsafe to create below a directory, if it is.
pub(crate) fn unsafe_path_reason(p: &str) -> Option<&'static str> {
    if p.is_empty() || p == "." {
        Some("the path is empty")
    } else if p.starts_with('/') {
        Some("absolute paths are not allowed")
    } else if p.split('/').any(|c| c == "..") {
        Some("'..' would leave the package directory")
    } else if p.contains('\0') {
        Some("the path contains a NUL character")
    } else if p.contains('\\') {
        Some("the path contains a backslash")
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// the manifest

/// A package manifest (the `info` file of an MKP).
///
/// Fields use Checkmk's field names; `info` uses the aliases (`version.packaged`, ...).
/// Unknown keys (like the legacy `num_files`) are kept in [`Manifest::extra`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Manifest {
    /// `title`
    pub title: String,
    /// `name`
    pub name: PackageName,
    /// `description` (may contain newlines)
    pub description: String,
    /// `version`
    pub version: PackageVersion,
    /// `version.packaged`: the tool or Checkmk version that built the package.
    pub version_packaged: String,
    /// `version.min_required`: the lowest Checkmk version (may be empty).
    pub version_min_required: String,
    /// `version.usable_until`: the first Checkmk version the package no longer works on.
    pub version_usable_until: Option<String>,
    /// `author`
    pub author: String,
    /// `download_url` (may be empty)
    pub download_url: String,
    /// `files`: part -> relative paths, in manifest order (paths normalised like `pathlib`).
    pub files: Vec<(PackagePart, Vec<String>)>,
    /// Keys Checkmk does not know, in source order (kept in installed manifests and `--json`).
    pub extra: Vec<(String, PyValue)>,
}

/// Equality as in Checkmk: `files` and extra keys compare as mappings (order ignored).
impl PartialEq for Manifest {
    fn eq(&self, other: &Self) -> bool {
        fn sorted<K: Ord + Clone, V: Clone>(v: &[(K, V)]) -> Vec<(K, V)> {
            let mut v = v.to_vec();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
        self.title == other.title
            && self.name == other.name
            && self.description == other.description
            && self.version == other.version
            && self.version_packaged == other.version_packaged
            && self.version_min_required == other.version_min_required
            && self.version_usable_until == other.version_usable_until
            && self.author == other.author
            && self.download_url == other.download_url
            && sorted(&self.files) == sorted(&other.files)
            && sorted(&self.extra) == sorted(&other.extra)
    }
}

const KNOWN_FIELDS: [(&str, &str); 10] = [
    ("title", "title"),
    ("name", "name"),
    ("description", "description"),
    ("version", "version"),
    ("version.packaged", "version_packaged"),
    ("version.min_required", "version_min_required"),
    ("version.usable_until", "version_usable_until"),
    ("author", "author"),
    ("download_url", "download_url"),
    ("files", "files"),
];

fn field_error(field: &str, problem: impl Into<String>) -> Error {
    ErrorKind::Field {
        field: field.to_string(),
        problem: problem.into(),
    }
    .into()
}

impl Manifest {
    /// The template of `mkp template` (section 2.5): every part present with an empty list
    /// unless `files` is given.
    pub fn template(
        name: PackageName,
        version_min_required: impl Into<String>,
        files: Option<Vec<(PackagePart, Vec<String>)>>,
    ) -> Manifest {
        Manifest {
            title: format!("Title of {name}"),
            description: "Please add a description here".into(),
            version: PackageVersion("1.0.0".into()),
            version_packaged: PACKAGED_BY.into(),
            version_min_required: version_min_required.into(),
            version_usable_until: None,
            author: "Add your name here".into(),
            download_url: format!("https://example.com/{name}/"),
            files: files
                .unwrap_or_else(|| PackagePart::ALL.iter().map(|p| (*p, Vec::new())).collect()),
            extra: Vec::new(),
            name,
        }
    }

    /// Builds a manifest from the ten known fields (no extra keys).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: PackageName,
        version: PackageVersion,
        title: impl Into<String>,
        description: impl Into<String>,
        author: impl Into<String>,
        download_url: impl Into<String>,
        version_min_required: impl Into<String>,
        version_usable_until: Option<String>,
        files: Vec<(PackagePart, Vec<String>)>,
    ) -> Manifest {
        Manifest {
            title: title.into(),
            name,
            description: description.into(),
            version,
            version_packaged: PACKAGED_BY.into(),
            version_min_required: version_min_required.into(),
            version_usable_until,
            author: author.into(),
            download_url: download_url.into(),
            files,
            extra: Vec::new(),
        }
    }

    /// Parses the `info` text (a Python literal) and validates it like Checkmk.
    pub fn from_info(text: &str) -> Result<Manifest> {
        let value = literal::parse(text).map_err(|e| -> Error {
            if e.not_literal {
                ErrorKind::NotLiteral {
                    line: e.line,
                    column: e.column,
                    message: e.message,
                }
                .into()
            } else {
                ErrorKind::Syntax {
                    line: e.line,
                    column: e.column,
                    message: e.message,
                }
                .into()
            }
        })?;
        Manifest::from_value(&value)
    }

    /// Parses `info.json` and validates it like Checkmk.
    pub fn from_info_json(text: &str) -> Result<Manifest> {
        let value: JsonValue = serde_json::from_str(text).map_err(|e| ErrorKind::Json {
            message: e.to_string(),
        })?;
        Manifest::from_value(&value.0)
    }

    /// Validates a parsed literal (a dict) as a manifest.
    pub fn from_value(value: &PyValue) -> Result<Manifest> {
        let PyValue::Dict(items) = value else {
            return Err(field_error(
                "(manifest)",
                format!("Input should be a dict, not {}", value.type_name()),
            ));
        };
        let mut known: [Option<&PyValue>; 10] = [None; 10];
        let mut extra = Vec::new();
        for (k, v) in items {
            let PyValue::Str(key) = k else {
                return Err(field_error(&k.repr(), "manifest keys must be strings"));
            };
            match KNOWN_FIELDS
                .iter()
                .position(|(alias, field)| key == alias || key == field)
            {
                Some(i) => {
                    // The alias wins over the field name if both are present.
                    if known[i].is_none() || key == KNOWN_FIELDS[i].0 {
                        known[i] = Some(v);
                    }
                }
                None => {
                    if !v.floats_are_finite() {
                        // pprint would write `inf`/`nan`, which no reader takes back.
                        return Err(field_error(
                            key,
                            "Input should be a finite number (infinity and NaN cannot be written back)",
                        ));
                    }
                    extra.push((key.clone(), v.clone()));
                }
            }
        }
        let req_str = |i: usize| -> Result<String> {
            let alias = KNOWN_FIELDS[i].0;
            match known[i] {
                None => Err(field_error(alias, "Field required")),
                Some(PyValue::Str(s)) => Ok(s.clone()),
                // pydantic's lax mode decodes bytes for str fields.
                Some(PyValue::Bytes(b)) if std::str::from_utf8(b).is_ok() => {
                    Ok(String::from_utf8_lossy(b).into_owned())
                }
                Some(other) => Err(field_error(
                    alias,
                    format!("Input should be a valid string, not {}", other.type_name()),
                )),
            }
        };
        let title = req_str(0)?;
        let name = PackageName::new(req_str(1)?)?;
        let description = req_str(2)?;
        let version = PackageVersion::new(req_str(3)?)?;
        let version_packaged = req_str(4)?;
        let version_min_required = req_str(5)?;
        let version_usable_until = match known[6] {
            None | Some(PyValue::None) => None,
            Some(PyValue::Str(s)) => Some(s.clone()),
            Some(other) => {
                return Err(field_error(
                    "version.usable_until",
                    format!(
                        "Input should be a valid string or None, not {}",
                        other.type_name()
                    ),
                ));
            }
        };
        let author = req_str(7)?;
        let download_url = req_str(8)?;
        let files = match known[9] {
            None => return Err(field_error("files", "Field required")),
            Some(v) => parse_files(v)?,
        };
        Ok(Manifest {
            title,
            name,
            description,
            version,
            version_packaged,
            version_min_required,
            version_usable_until,
            author,
            download_url,
            files,
            extra,
        })
    }

    /// The files of `part` (empty if the part is not in the manifest).
    pub fn files_of(&self, part: PackagePart) -> &[String] {
        self.files
            .iter()
            .find(|(p, _)| *p == part)
            .map_or(&[][..], |(_, f)| f.as_slice())
    }

    /// The total number of listed files.
    pub fn file_count(&self) -> usize {
        self.files.iter().map(|(_, f)| f.len()).sum()
    }

    /// The canonical file name `<name>-<version>.mkp`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.mkp", self.name, self.version)
    }

    /// Checks that every listed path can be created safely below a part directory
    /// (no absolute paths, no `..`, no empty paths).
    pub fn check_paths(&self) -> Result<()> {
        for (part, files) in &self.files {
            for f in files {
                if let Some(reason) = unsafe_path_reason(f) {
                    return Err(Error::from(ErrorKind::UnsafePath {
                        path: f.clone(),
                        reason,
                    })
                    .with_member(format!("files['{}']", part.id())));
                }
            }
        }
        Ok(())
    }

    /// Where the file listed as `rel_path` in `part` is installed, relative to the part
    /// directory: [`PackagePart::install_path`] (legacy `lib/check_mk/...` moves to
    /// `python3/cmk/...`), except when the new path is listed in the same part too. Then
    /// both files are written where they are listed, as Checkmk's tool leaves them (seen in
    /// the wild: `ceph-11.0.0.mkp`, whose `lib.tar` holds the new path as a hard link to the
    /// legacy one), and each stays owned by the package.
    pub fn install_path<'a>(&self, part: PackagePart, rel_path: &'a str) -> Cow<'a, str> {
        match part.install_path(rel_path) {
            Cow::Owned(new) if !self.files_of(part).contains(&new) => Cow::Owned(new),
            _ => Cow::Borrowed(rel_path),
        }
    }

    /// Rewrites `lib` entries below the legacy `check_mk/` directory to `python3/cmk/`, as
    /// Checkmk does on install (section 3 of the spec); returns whether anything changed.
    /// [`Manifest::install_path`] is the rule for one path.
    pub fn rewrite_legacy_lib_paths(&mut self) -> bool {
        let rewritten: Vec<Vec<String>> = self
            .files
            .iter()
            .map(|(part, paths)| {
                paths
                    .iter()
                    .map(|p| self.install_path(*part, p).into_owned())
                    .collect()
            })
            .collect();
        let mut changed = false;
        for ((_, paths), new) in self.files.iter_mut().zip(rewritten) {
            if *paths != new {
                *paths = new;
                changed = true;
            }
        }
        changed
    }

    /// The value of the extra (unknown) key `key`, if present.
    pub fn extra_value(&self, key: &str) -> Option<&PyValue> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes the extra key `key` (every occurrence) and returns the first value, if any.
    pub fn remove_extra(&mut self, key: &str) -> Option<PyValue> {
        let pos = self.extra.iter().position(|(k, _)| k == key)?;
        let (_, value) = self.extra.remove(pos);
        self.extra.retain(|(k, _)| k != key);
        Some(value)
    }

    /// A copy without extra keys and with `version.packaged` set (what packaging writes).
    pub fn for_packaging(&self, version_packaged: &str) -> Manifest {
        Manifest {
            version_packaged: version_packaged.to_string(),
            extra: Vec::new(),
            ..self.clone()
        }
    }

    fn to_value(&self) -> PyValue {
        let s = |x: &str| PyValue::Str(x.to_string());
        let mut items = vec![
            (s("title"), s(&self.title)),
            (s("name"), s(self.name.as_str())),
            (s("description"), s(&self.description)),
            (s("version"), s(self.version.as_str())),
            (s("version.packaged"), s(&self.version_packaged)),
            (s("version.min_required"), s(&self.version_min_required)),
            (
                s("version.usable_until"),
                self.version_usable_until
                    .as_deref()
                    .map_or(PyValue::None, s),
            ),
            (s("author"), s(&self.author)),
            (s("download_url"), s(&self.download_url)),
            (
                s("files"),
                PyValue::Dict(
                    self.files
                        .iter()
                        .map(|(p, f)| (s(p.id()), PyValue::List(f.iter().map(|x| s(x)).collect())))
                        .collect(),
                ),
            ),
        ];
        for (k, v) in &self.extra {
            items.push((s(k), v.clone()));
        }
        PyValue::Dict(items)
    }

    /// The `info` file content: `pprint.pformat` of the manifest (by alias) plus `\n`.
    pub fn to_info(&self) -> String {
        let mut out = self.to_value().pformat();
        out.push('\n');
        out
    }

    fn write_json(&self, out: &mut String, aliases: bool) {
        let until = self
            .version_usable_until
            .as_ref()
            .map_or(PyValue::None, |u| PyValue::Str(u.clone()));
        let fields: [(&str, &str, PyValue); 9] = [
            ("title", "title", PyValue::Str(self.title.clone())),
            ("name", "name", PyValue::Str(self.name.0.clone())),
            (
                "description",
                "description",
                PyValue::Str(self.description.clone()),
            ),
            ("version", "version", PyValue::Str(self.version.0.clone())),
            (
                "version.packaged",
                "version_packaged",
                PyValue::Str(self.version_packaged.clone()),
            ),
            (
                "version.min_required",
                "version_min_required",
                PyValue::Str(self.version_min_required.clone()),
            ),
            ("version.usable_until", "version_usable_until", until),
            ("author", "author", PyValue::Str(self.author.clone())),
            (
                "download_url",
                "download_url",
                PyValue::Str(self.download_url.clone()),
            ),
        ];
        out.push('{');
        for (alias, field, value) in &fields {
            json_str(if aliases { alias } else { field }, out);
            out.push(':');
            json_value(value, out);
            out.push(',');
        }
        out.push_str("\"files\":{");
        for (i, (part, files)) in self.files.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_str(part.id(), out);
            out.push_str(":[");
            for (j, f) in files.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                json_str(f, out);
            }
            out.push(']');
        }
        out.push('}');
        for (k, v) in &self.extra {
            out.push(',');
            json_str(k, out);
            out.push(':');
            json_value(v, out);
        }
        out.push('}');
    }

    /// The `info.json` content: compact JSON by alias in declaration order (no newline).
    pub fn to_info_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out, true);
        out
    }

    /// The JSON of `mkp inspect --json`: compact, field names (`version_packaged`), extras last.
    pub fn to_field_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out, false);
        out
    }

    /// The text block of `mkp inspect` / `mkp show` (ends with one `\n`).
    pub fn to_inspect_text(&self) -> String {
        let until = match self.version_usable_until.as_deref() {
            None | Some("") => "No version limitation",
            Some(u) => u,
        };
        let mut files = String::new();
        for (part, paths) in &self.files {
            files.push_str("\n  ");
            files.push_str(part.title());
            for p in paths {
                files.push_str("\n    ");
                files.push_str(p);
            }
        }
        let mut out = String::new();
        let _ = write!(
            out,
            "Name:                          {}\n\
             Version:                       {}\n\
             Packaged on:                   {}\n\
             Required Checkmk Version:      {}\n\
             Valid until Checkmk version:   {}\n\
             Title:                         {}\n\
             Author:                        {}\n\
             Download-URL:                  {}\n\
             Files:                         {}\n\
             Description:\n  {}\n",
            self.name,
            self.version,
            self.version_packaged,
            self.version_min_required,
            until,
            self.title,
            self.author,
            self.download_url,
            files,
            self.description
        );
        out
    }
}

fn parse_files(v: &PyValue) -> Result<Vec<(PackagePart, Vec<String>)>> {
    let PyValue::Dict(items) = v else {
        return Err(field_error(
            "files",
            format!("Input should be a valid dictionary, not {}", v.type_name()),
        ));
    };
    let mut files = Vec::with_capacity(items.len());
    for (k, list) in items {
        let PyValue::Str(id) = k else {
            return Err(field_error(
                "files",
                format!("part {} is not a string", k.repr()),
            ));
        };
        let part = match PackagePart::from_id(id) {
            Some(p) => p,
            None if id == LEGACY_RRACONF => return Err(ErrorKind::LegacyPart.into()),
            None => return Err(ErrorKind::UnknownPart { part: id.clone() }.into()),
        };
        let entries = match list {
            PyValue::List(e) | PyValue::Tuple(e) => e,
            other => {
                return Err(field_error(
                    &format!("files.{id}"),
                    format!("Input should be a valid list, not {}", other.type_name()),
                ));
            }
        };
        let mut paths = Vec::with_capacity(entries.len());
        for e in entries {
            match e {
                PyValue::Str(p) => paths.push(normalize_path(p)),
                other => {
                    return Err(field_error(
                        &format!("files.{id}"),
                        format!("Input is not a valid path: {}", other.repr()),
                    ));
                }
            }
        }
        files.push((part, paths));
    }
    Ok(files)
}

// ---------------------------------------------------------------------------------------------
// JSON

fn json_str(s: &str, out: &mut String) {
    json::push_str(s, false, out);
}

fn json_value(v: &PyValue, out: &mut String) {
    match v {
        PyValue::None => out.push_str("null"),
        PyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        PyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        PyValue::Float(f) => {
            if f.is_finite() {
                out.push_str(&repr_float(*f));
            } else {
                out.push_str("null");
            }
        }
        PyValue::Str(s) => json_str(s, out),
        PyValue::Bytes(b) => json_str(&String::from_utf8_lossy(b), out),
        PyValue::List(items) | PyValue::Tuple(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(item, out);
            }
            out.push(']');
        }
        PyValue::Dict(items) => {
            out.push('{');
            for (i, (k, v)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    PyValue::Str(s) => json_str(s, out),
                    other => json_str(&other.repr(), out),
                }
                out.push(':');
                json_value(v, out);
            }
            out.push('}');
        }
    }
}

/// JSON read into a [`PyValue`], keeping object key order.
struct JsonValue(PyValue);

impl<'de> serde::Deserialize<'de> for JsonValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor).map(JsonValue)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = PyValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> std::result::Result<PyValue, E> {
        Ok(PyValue::None)
    }
    fn visit_none<E>(self) -> std::result::Result<PyValue, E> {
        Ok(PyValue::None)
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<PyValue, E> {
        Ok(PyValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<PyValue, E> {
        Ok(PyValue::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<PyValue, E> {
        #[allow(clippy::cast_precision_loss)]
        Ok(i64::try_from(v).map_or(PyValue::Float(v as f64), PyValue::Int))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<PyValue, E> {
        Ok(PyValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<PyValue, E> {
        Ok(PyValue::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<PyValue, E> {
        Ok(PyValue::Str(v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<PyValue, A::Error> {
        let mut items = Vec::new();
        while let Some(JsonValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(PyValue::List(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<PyValue, A::Error> {
        let mut items: Vec<(PyValue, PyValue)> = Vec::new();
        while let Some((k, JsonValue(v))) = map.next_entry::<String, JsonValue>()? {
            let key = PyValue::Str(k);
            if let Some(slot) = items.iter_mut().find(|(x, _)| *x == key) {
                slot.1 = v;
            } else {
                items.push((key, v));
            }
        }
        Ok(PyValue::Dict(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> PackageVersion {
        PackageVersion::new(s).unwrap()
    }

    #[test]
    fn sort_key_quirks() {
        let lt = |a: &str, b: &str| assert!(v(a).sort_key() < v(b).sort_key(), "{a} < {b}");
        lt("1.2.3", "1.2.4");
        lt("1.9", "1.10");
        lt("1.2.3-rc1", "1.2.3");
        lt("1.2.3-alpha", "1.2.3");
        lt("1.2.3-3", "1.2.3-12");
        lt("1.2.3-alpha", "1.2.3-beta");
        lt("1.2.3-alpha", "1.2.3-1");
        lt("1.2.3-alpha.beta.wurstbrot", "1.2.3-alpha.beta");
        lt("1.2.3.4", "1.2.3");
        lt("1.0.0", "1.0");
        lt("wt🐟?", "0");
        lt("v1.2", "v1.3");
        lt("v10", "v2");
        assert_eq!(
            v("1.2.3-kaese+x64").sort_key(),
            v("1.2.3-kaese+sparc").sort_key()
        );
        assert_eq!(v("1.0.0+a").sort_key(), v("1.0.0+b").sort_key());
    }

    #[test]
    fn names_and_versions() {
        for bad in ["111", "", "1/2/3", "foo;bar", "MSSQL Extra Counters", "a.b"] {
            let e = PackageName::new(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
        let e = PackageName::new("111").unwrap_err().to_string();
        assert!(e.contains("must start with a letter or underscore"));
        for good in ["hello_world", "_x", "open-iscsi", "Cisco_STP", "Ünïcode"] {
            PackageName::new(good).unwrap();
        }
        assert!(PackageVersion::new("1/2").is_err());
        PackageVersion::new("").unwrap();
        for good in ["1.0.0", "1.2.3-prerelease.23+42", "0.0.1-rc.1+build.5"] {
            assert!(v(good).is_semver(), "{good}");
        }
        for bad in ["1.0", "01.0.0", "1.0.0-", "1.0.0-01", "3.0-2.1", "1.0.0+"] {
            assert!(!v(bad).is_semver(), "{bad}");
        }
        assert_eq!(
            v("1.0").require_semver().unwrap_err().to_string(),
            "Not a valid semantic versioning string: '1.0'"
        );
    }

    #[test]
    fn paths_are_normalised_like_pathlib() {
        assert_eq!(normalize_path("a//b"), "a/b");
        assert_eq!(normalize_path("./x"), "x");
        assert_eq!(normalize_path("x/"), "x");
        assert_eq!(normalize_path(""), ".");
        assert_eq!(normalize_path("/etc/x"), "/etc/x");
        assert_eq!(normalize_path("//x"), "//x");
        assert_eq!(normalize_path("///x"), "/x");
        assert_eq!(normalize_path("a/../b"), "a/../b");
        assert!(unsafe_path_reason("a/../b").is_some());
        assert!(unsafe_path_reason("/etc/x").is_some());
        assert!(unsafe_path_reason(".").is_some());
        assert!(unsafe_path_reason("a/b c(1).py").is_none());
    }

    const FULL: &str = "{'author': 'Peer Demo <demo@example.com>',
 'description': 'Demo package built by the reconstructed cmk-mkp-tool peer.\\n'
                'Second line.',
 'download_url': 'https://example.com/hello_world/',
 'files': {'agents': ['plugins/hello.sh'],
           'cmk_addons_plugins': ['hello/agent_based/hello.py',
                                  'hello/libexec/agent_hello']},
 'name': 'hello_world',
 'title': 'Hello World',
 'version': '1.0.0',
 'version.min_required': '2.3.0p1',
 'version.packaged': 'cmk-mkp-tool 2.0.1',
 'version.usable_until': '2.5.0'}
";

    #[test]
    fn info_round_trip_and_json_forms() {
        let m = Manifest::from_info(FULL).unwrap();
        assert_eq!(m.to_info(), FULL);
        assert_eq!(m.files_of(PackagePart::Agents), ["plugins/hello.sh"]);
        let json = m.to_info_json();
        assert!(json.starts_with("{\"title\":\"Hello World\",\"name\":\"hello_world\""));
        assert!(json.contains("\"version.packaged\":\"cmk-mkp-tool 2.0.1\""));
        assert_eq!(Manifest::from_info_json(&json).unwrap(), m);
        assert!(m.to_field_json().contains("\"version_packaged\":"));
    }

    #[test]
    fn old_forms_and_extras() {
        let m = Manifest::from_info(
            "{'author': u'x', 'description': u'', 'download_url': '', 'files': {'checks': ['a'], 'doc': []},
              'name': 'n', 'num_files': 1, 'title': u'T', 'version': '1.0',
              'version.min_required': '1.2.6', 'version.packaged': '1.2.6'}",
        )
        .unwrap();
        assert_eq!(m.version_usable_until, None);
        assert_eq!(m.extra, vec![("num_files".to_string(), PyValue::Int(1))]);
        assert!(m.to_field_json().ends_with(",\"num_files\":1}"));
        assert!(m.to_info().contains(" 'num_files': 1,\n"));
        assert!(m.for_packaging("x").extra.is_empty());
    }

    #[test]
    fn validation_errors() {
        let base = |files: &str, version: &str| {
            format!(
                "{{'author': 'a', 'description': 'd', 'download_url': '', 'files': {files}, 'name': 'n', 'title': 't', 'version': {version}, 'version.min_required': '', 'version.packaged': 'p'}}"
            )
        };
        let e = Manifest::from_info(&base("{'not-a-package-part': []}", "'1'")).unwrap_err();
        assert!(e.to_string().contains("Input should be"), "{e}");
        let e = Manifest::from_info(&base("{'pnp-rraconf': []}", "'1'")).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::LegacyPart));
        let e = Manifest::from_info(&base("{}", "1.0")).unwrap_err();
        assert!(e.to_string().contains("'version'"), "{e}");
        let e = Manifest::from_info("{'name': 'x'}").unwrap_err();
        assert!(e.to_string().contains("Field required"), "{e}");
        let e = Manifest::from_info("{'name': os.path}").unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::NotLiteral { .. }), "{e}");
    }

    #[test]
    fn legacy_lib_paths() {
        let mut m = Manifest::template(PackageName::new("x").unwrap(), "", Some(vec![]));
        m.files = vec![
            (
                PackagePart::Lib,
                vec![
                    "check_mk/base/x.py".into(),
                    "check_mk_extra/y".into(),
                    "nagios/plugins/z".into(),
                ],
            ),
            (PackagePart::Agents, vec!["check_mk/a".into()]),
        ];
        let before = m.clone();
        assert!(m.rewrite_legacy_lib_paths());
        assert_eq!(
            m.files_of(PackagePart::Lib),
            [
                "python3/cmk/base/x.py",
                "check_mk_extra/y",
                "nagios/plugins/z"
            ]
        );
        assert_eq!(
            m.files_of(PackagePart::Agents),
            before.files_of(PackagePart::Agents)
        );
        assert!(!m.rewrite_legacy_lib_paths());
    }

    #[test]
    fn a_legacy_lib_path_listed_beside_its_new_path_stays_where_it_is() {
        // ceph-11.0.0.mkp lists both; rewriting would make them one path.
        let mut m = Manifest::template(PackageName::new("x").unwrap(), "", Some(vec![]));
        let both = vec![
            "check_mk/base/cee/plugins/bakery/ceph.py".to_string(),
            "python3/cmk/base/cee/plugins/bakery/ceph.py".to_string(),
            "check_mk/other.py".to_string(),
        ];
        m.files = vec![(PackagePart::Lib, both.clone())];
        assert_eq!(m.install_path(PackagePart::Lib, &both[0]), both[0]);
        assert_eq!(
            m.install_path(PackagePart::Lib, "check_mk/other.py"),
            "python3/cmk/other.py"
        );
        assert!(m.rewrite_legacy_lib_paths());
        assert_eq!(
            m.files_of(PackagePart::Lib),
            [both[0].as_str(), both[1].as_str(), "python3/cmk/other.py"]
        );
    }

    #[test]
    fn template_has_every_part() {
        let m = Manifest::template(PackageName::new("cool_package").unwrap(), "", None);
        assert_eq!(m.files.len(), 18);
        let back = Manifest::from_info(&m.to_info()).unwrap();
        assert_eq!(back.name.as_str(), "cool_package");
        assert_eq!(back.files.len(), 18);
    }
}
