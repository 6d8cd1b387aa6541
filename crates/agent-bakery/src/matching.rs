//! Rule conditions and the dictionary merge (spec bakery.md §4).

use std::collections::{BTreeMap, BTreeSet};

use py_literal::PyValue;
use regex::Regex;

/// One entry of a `host_name` condition.
#[derive(Debug, Clone)]
pub enum NameEntry {
    /// An exact host name.
    Exact(String),
    /// `{'$regex': pattern}`, matched at the start of the name.
    Regex(HostRegex),
}

/// A `$regex` pattern, matched at the start of a name as Python's `re.match` does: with the
/// `regex` crate (linear time) where it takes the pattern, otherwise with `fancy-regex`,
/// which has Python's look-around and back-references (backtracking, with its limit).
#[derive(Debug, Clone)]
pub enum HostRegex {
    /// A pattern the `regex` crate takes.
    Linear(Regex),
    /// A pattern with look-around or back-references.
    Backtracking(fancy_regex::Regex),
}

impl HostRegex {
    /// Whether the pattern matches at the start of `name`. A match that exceeds the
    /// backtracking limit counts as none.
    pub fn is_match(&self, name: &str) -> bool {
        match self {
            HostRegex::Linear(r) => r.is_match(name),
            HostRegex::Backtracking(r) => r.is_match(name).unwrap_or(false),
        }
    }
}

/// A tag condition of one tag group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagCondition {
    /// The host has this tag.
    Is(String),
    /// `{'$ne': tag}`
    Ne(String),
    /// `{'$or': [tags]}`
    Or(Vec<String>),
    /// `{'$nor': [tags]}`
    Nor(Vec<String>),
}

/// An operator of the label groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOp {
    /// `and`
    And,
    /// `or`
    Or,
    /// `not`
    Not,
}

/// A rule's condition; every present key must hold.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    /// `host_name`: entries and whether the list is negated (`$nor`).
    pub host_name: Option<(Vec<NameEntry>, bool)>,
    /// `host_tags` by group.
    pub host_tags: Vec<(String, TagCondition)>,
    /// `host_label_groups` (2.3+).
    pub label_groups: Vec<(LabelOp, Vec<(LabelOp, String)>)>,
    /// `host_labels` (≤ 2.2): `(key, value, negated)`.
    pub host_labels: Vec<(String, String, bool)>,
    /// `host_folder`: a folder path prefix like `/wato/linux/`.
    pub host_folder: Option<String>,
}

/// What a condition is matched against: a host, or a folder's generic target.
#[derive(Debug, Clone, Copy)]
pub struct MatchObject<'a> {
    /// The host name; empty for a generic (folder) target.
    pub name: &'a str,
    /// The folder path (`/wato/` or `/wato/a/b/`).
    pub folder: &'a str,
    /// The host's tag pairs (group, tag).
    pub tags: &'a BTreeMap<String, String>,
    /// The host's effective labels.
    pub labels: &'a BTreeMap<String, String>,
}

impl MatchObject<'_> {
    fn generic(&self) -> bool {
        self.name.is_empty()
    }
}

fn strings(v: &PyValue) -> Option<Vec<String>> {
    match v {
        PyValue::List(items) | PyValue::Tuple(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

fn dict_get<'a>(items: &'a [(PyValue, PyValue)], key: &str) -> Option<&'a PyValue> {
    items
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// A `$regex` pattern anchored at the start; an error names what neither engine takes.
fn check_regex(pattern: &str) -> Result<HostRegex, String> {
    let anchored = format!("^(?:{pattern})");
    if let Ok(r) = Regex::new(&anchored) {
        return Ok(HostRegex::Linear(r));
    }
    fancy_regex::Regex::new(&anchored)
        .map(HostRegex::Backtracking)
        .map_err(|e| {
            format!("the regular expression {pattern:?} uses a construct we cannot honour: {e}")
        })
}

impl Condition {
    /// Reads a rule's `condition` dict. Errors are plain texts; the caller names the rule.
    pub fn parse(value: &PyValue) -> Result<Condition, String> {
        let PyValue::Dict(items) = value else {
            return Err(format!(
                "the condition is a {}, not a dict",
                value.type_name()
            ));
        };
        let mut c = Condition::default();
        for (k, v) in items {
            match k.as_str() {
                Some("host_name") => c.host_name = Some(parse_host_name(v)?),
                Some("host_tags") => c.host_tags = parse_tags(v)?,
                Some("host_label_groups") => c.label_groups = parse_label_groups(v)?,
                Some("host_labels") => c.host_labels = parse_labels(v)?,
                Some("host_folder") => match v {
                    PyValue::Str(s) => c.host_folder = Some(s.clone()),
                    other => {
                        return Err(format!("host_folder is a {}", other.type_name()));
                    }
                },
                Some("service_description" | "service_labels" | "service_label_groups") => {}
                _ => return Err(format!("unknown condition key {}", k.repr())),
            }
        }
        Ok(c)
    }

    /// Whether the condition holds for `obj` (§4.2).
    pub fn matches(&self, obj: &MatchObject<'_>) -> bool {
        if let Some(folder) = &self.host_folder {
            // The host's `/wato/<folder>/hosts.mk` starts with the condition's path.
            let inside = match folder.strip_prefix(obj.folder) {
                Some(rest) => "hosts.mk".starts_with(rest),
                None => obj.folder.starts_with(folder.as_str()),
            };
            if !inside {
                return false;
            }
        }
        if let Some((entries, negate)) = &self.host_name {
            if obj.generic() {
                // Generic targets: the condition yields its negation flag.
                if !*negate {
                    return false;
                }
            } else {
                let hit = entries.iter().any(|e| match e {
                    NameEntry::Exact(n) => n == obj.name,
                    NameEntry::Regex(r) => r.is_match(obj.name),
                });
                if hit == *negate {
                    return false;
                }
            }
        }
        if !self.host_tags.is_empty() {
            if obj.generic() {
                return false;
            }
            for (group, cond) in &self.host_tags {
                let has = |t: &str| obj.tags.get(group).is_some_and(|v| v == t);
                let ok = match cond {
                    TagCondition::Is(t) => has(t),
                    TagCondition::Ne(t) => !has(t),
                    TagCondition::Or(ts) => ts.iter().any(|t| has(t)),
                    TagCondition::Nor(ts) => !ts.iter().any(|t| has(t)),
                };
                if !ok {
                    return false;
                }
            }
        }
        if !self.host_labels.is_empty() {
            if obj.generic() {
                return false;
            }
            for (key, value, negated) in &self.host_labels {
                let has = obj.labels.get(key).is_some_and(|v| v == value);
                if has == *negated {
                    return false;
                }
            }
        }
        if !self.label_groups.is_empty() {
            let relevant = self
                .label_groups
                .iter()
                .any(|(_, ls)| ls.iter().any(|(_, l)| !l.is_empty()));
            if relevant && obj.generic() {
                return false;
            }
            if !label_groups_match(&self.label_groups, obj.labels) {
                return false;
            }
        }
        true
    }
}

fn fold(op: LabelOp, acc: bool, m: bool) -> bool {
    match op {
        LabelOp::And => acc && m,
        LabelOp::Or => acc || m,
        LabelOp::Not => acc && !m,
    }
}

/// The label-group evaluation of §4.2.
pub fn label_groups_match(
    groups: &[(LabelOp, Vec<(LabelOp, String)>)],
    labels: &BTreeMap<String, String>,
) -> bool {
    let mut overall = true;
    for (group_op, items) in groups {
        let mut acc = true;
        for (op, label) in items {
            if label.is_empty() {
                continue;
            }
            if labels.is_empty() {
                if *op == LabelOp::And {
                    acc = false;
                }
                continue;
            }
            let (k, v) = label.split_once(':').unwrap_or((label.as_str(), ""));
            let m = labels.get(k).is_some_and(|x| x == v);
            acc = fold(*op, acc, m);
        }
        overall = fold(*group_op, overall, acc);
    }
    overall
}

fn parse_host_name(v: &PyValue) -> Result<(Vec<NameEntry>, bool), String> {
    let (list, negate) = match v {
        PyValue::Dict(items) => match dict_get(items, "$nor") {
            Some(l) if items.len() == 1 => (l, true),
            _ => {
                return Err(format!(
                    "host_name {} is not a list or {{'$nor': [...]}}",
                    v.repr()
                ));
            }
        },
        other => (other, false),
    };
    let PyValue::List(items) = list else {
        return Err(format!("host_name is a {}, not a list", list.type_name()));
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            PyValue::Str(s) => out.push(NameEntry::Exact(s.clone())),
            PyValue::Dict(d) => match dict_get(d, "$regex") {
                Some(PyValue::Str(p)) if d.len() == 1 => {
                    out.push(NameEntry::Regex(check_regex(p)?))
                }
                _ => return Err(format!("host_name entry {} is not understood", item.repr())),
            },
            other => {
                return Err(format!(
                    "host_name entry {} is not understood",
                    other.repr()
                ));
            }
        }
    }
    Ok((out, negate))
}

fn parse_tags(v: &PyValue) -> Result<Vec<(String, TagCondition)>, String> {
    let PyValue::Dict(items) = v else {
        return Err(format!("host_tags is a {}, not a dict", v.type_name()));
    };
    let mut out = Vec::new();
    for (k, cond) in items {
        let Some(group) = k.as_str() else {
            return Err(format!("tag group {} is not a string", k.repr()));
        };
        let c = match cond {
            PyValue::Str(t) => TagCondition::Is(t.clone()),
            PyValue::None => TagCondition::Is(String::new()),
            PyValue::Dict(d) if d.len() == 1 => {
                let (op, arg) = &d[0];
                match (op.as_str(), arg) {
                    (Some("$ne"), PyValue::Str(t)) => TagCondition::Ne(t.clone()),
                    (Some("$or"), l) if strings(l).is_some() => {
                        TagCondition::Or(strings(l).unwrap_or_default())
                    }
                    (Some("$nor"), l) if strings(l).is_some() => {
                        TagCondition::Nor(strings(l).unwrap_or_default())
                    }
                    _ => return Err(format!("tag condition {} is not understood", cond.repr())),
                }
            }
            other => return Err(format!("tag condition {} is not understood", other.repr())),
        };
        out.push((group.to_string(), c));
    }
    Ok(out)
}

fn label_op(v: &PyValue) -> Result<LabelOp, String> {
    match v.as_str() {
        Some("and") => Ok(LabelOp::And),
        Some("or") => Ok(LabelOp::Or),
        Some("not") => Ok(LabelOp::Not),
        _ => Err(format!("label operator {} is not and/or/not", v.repr())),
    }
}

fn pair(v: &PyValue) -> Option<(&PyValue, &PyValue)> {
    match v {
        PyValue::Tuple(t) | PyValue::List(t) if t.len() == 2 => Some((&t[0], &t[1])),
        _ => None,
    }
}

type LabelGroups = Vec<(LabelOp, Vec<(LabelOp, String)>)>;

fn parse_label_groups(v: &PyValue) -> Result<LabelGroups, String> {
    let PyValue::List(groups) = v else {
        return Err(format!(
            "host_label_groups is a {}, not a list",
            v.type_name()
        ));
    };
    let mut out = Vec::new();
    for g in groups {
        let (op, items) =
            pair(g).ok_or_else(|| format!("label group {} is not understood", g.repr()))?;
        let op = label_op(op)?;
        let mut labels = Vec::new();
        match items {
            PyValue::List(ls) | PyValue::Tuple(ls) => {
                for l in ls {
                    let (lop, text) =
                        pair(l).ok_or_else(|| format!("label {} is not understood", l.repr()))?;
                    let text = text
                        .as_str()
                        .ok_or_else(|| format!("label {} is not a string", text.repr()))?;
                    labels.push((label_op(lop)?, text.to_string()));
                }
            }
            PyValue::Str(s) if s.is_empty() => {}
            other => {
                return Err(format!(
                    "label group items {} are not understood",
                    other.repr()
                ));
            }
        }
        out.push((op, labels));
    }
    Ok(out)
}

fn parse_labels(v: &PyValue) -> Result<Vec<(String, String, bool)>, String> {
    let PyValue::Dict(items) = v else {
        return Err(format!("host_labels is a {}, not a dict", v.type_name()));
    };
    let mut out = Vec::new();
    for (k, val) in items {
        let key = k
            .as_str()
            .ok_or_else(|| format!("label key {} is not a string", k.repr()))?;
        match val {
            PyValue::Str(s) => out.push((key.to_string(), s.clone(), false)),
            PyValue::Dict(d) => match dict_get(d, "$ne") {
                Some(PyValue::Str(s)) if d.len() == 1 => {
                    out.push((key.to_string(), s.clone(), true))
                }
                _ => return Err(format!("label condition {} is not understood", val.repr())),
            },
            other => {
                return Err(format!(
                    "label condition {} is not understood",
                    other.repr()
                ));
            }
        }
    }
    Ok(out)
}

/// The dictionary merge of §4.3: for each top-level key, the value of the first rule that has
/// it; nested dicts are taken whole. Returns the merged items with the index of the rule each
/// key came from, or `None` when no rule is given.
pub fn merge_dicts<'a>(
    values: impl IntoIterator<Item = (usize, &'a PyValue)>,
) -> Option<Vec<(PyValue, PyValue, usize)>> {
    let mut out: Vec<(PyValue, PyValue, usize)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut any = false;
    for (index, value) in values {
        any = true;
        if let PyValue::Dict(items) = value {
            for (k, v) in items {
                let key = k.repr();
                if seen.insert(key) {
                    out.push((k.clone(), v.clone(), index));
                }
            }
        }
    }
    any.then_some(out)
}
