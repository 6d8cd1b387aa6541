//! Reading a site: folders, hosts, rules and global settings (spec bakery.md §1–3).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use py_literal::{PyValue, Statement, StatementKind, Target};

use crate::error::{Error, Result};
use crate::matching::Condition;

/// The root Setup folder, relative to the site root.
pub const WATO_DIR: &str = "etc/check_mk/conf.d/wato";
/// The global settings file, relative to the site root.
pub const GLOBAL_MK: &str = "etc/check_mk/multisite.d/wato/global.mk";

/// A warning about a site file (a skipped statement, an unknown key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0 when not known).
    pub line: usize,
    /// What was skipped and why.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}, line {}: {}",
            self.path.display(),
            self.line,
            self.message
        )
    }
}

/// A Setup folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// `/wato/` for the root, `/wato/a/b/` below it.
    pub path: String,
    /// The folder title from `.wato`.
    pub title: Option<String>,
    /// "Bake agent packages": a generic package for this folder (not inherited).
    pub bake_agent_package: bool,
}

/// A host of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The host name.
    pub name: String,
    /// Its folder path (`/wato/…/`).
    pub folder: String,
    /// The complete effective tag set, by tag group.
    pub tags: BTreeMap<String, String>,
    /// Explicit labels plus `cmk/site:<site>`.
    pub labels: BTreeMap<String, String>,
    /// The monitoring site (tag group `site`).
    pub site: String,
}

/// A rule as stored in a `rules.mk`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's `id`.
    pub id: String,
    /// The value, as written.
    pub value: PyValue,
    /// The condition, parsed.
    pub condition: Condition,
    /// `options.disabled`.
    pub disabled: bool,
    /// The folder whose `rules.mk` holds the rule.
    pub folder: String,
    /// That file.
    pub path: PathBuf,
    /// The line of the statement that holds the rule list.
    pub line: usize,
}

/// Everything the bakery reads from a site.
#[derive(Debug, Clone, Default)]
pub struct SiteConfig {
    /// The site id.
    pub site_id: String,
    /// Folders, parents first.
    pub folders: Vec<Folder>,
    /// Hosts, in folder order then file order.
    pub hosts: Vec<Host>,
    /// Rule sets by name (`agent_config:cmk_update_agent`, `host_groups`, …), deepest folder
    /// first, file order within a file (§4.1).
    pub rulesets: BTreeMap<String, Vec<Rule>>,
    /// `global.mk` assignments.
    pub globals: Vec<(String, PyValue)>,
    /// Skipped statements and unknown keys.
    pub warnings: Vec<Warning>,
    /// The names in [`SiteConfig::hosts`], for duplicate checks.
    host_names: std::collections::HashSet<String>,
}

/// Why a host name cannot be used (as a file name of links and registrations).
pub fn host_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("it is . or ..")
    } else if name.contains('/') {
        Some("it contains /")
    } else if name.contains('\0') {
        Some("it contains a NUL byte")
    } else {
        None
    }
}

fn read_text(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn statements(path: &Path, text: &str) -> Result<Vec<Statement>> {
    py_literal::parse_statements(text).map_err(|e| Error::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })
}

fn dict_items(v: &PyValue) -> &[(PyValue, PyValue)] {
    match v {
        PyValue::Dict(items) => items,
        _ => &[],
    }
}

fn str_map(v: &PyValue) -> BTreeMap<String, String> {
    dict_items(v)
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
        .collect()
}

impl SiteConfig {
    /// Reads the site at `root`. `site_id` names this site (the `cmk/site` label of hosts
    /// without a `site` tag, the default `server_data.site`).
    pub fn read(root: &Path, site_id: &str) -> Result<SiteConfig> {
        let mut cfg = SiteConfig {
            site_id: site_id.to_string(),
            ..SiteConfig::default()
        };
        let wato = root.join(WATO_DIR);
        cfg.read_folder(&wato, "/wato/")?;
        let global = root.join(GLOBAL_MK);
        if let Some(text) = read_text(&global)? {
            for st in statements(&global, &text)? {
                match st.kind {
                    StatementKind::Assign {
                        target: Target { name, key: None },
                        value,
                        plus: None,
                    } => match cfg.globals.iter_mut().find(|(n, _)| *n == name) {
                        Some(slot) => slot.1 = value,
                        None => cfg.globals.push((name, value)),
                    },
                    other => cfg.warn(&global, st.line, &other),
                }
            }
        }
        Ok(cfg)
    }

    fn push_warning(&mut self, path: &Path, line: usize, message: String) {
        tracing::warn!(path = %path.display(), line, "{message}");
        self.warnings.push(Warning {
            path: path.to_path_buf(),
            line,
            message,
        });
    }

    fn warn(&mut self, path: &Path, line: usize, kind: &StatementKind) {
        let text = match kind {
            StatementKind::Skipped {
                text,
                error: Some(e),
                ..
            } => format!("{text} ({})", e.message),
            StatementKind::Skipped { text, .. } => text.clone(),
            StatementKind::Assign { target, .. } | StatementKind::AugAssign { target, .. } => {
                format!("assignment to {}", target.name)
            }
            StatementKind::Call { target, method, .. } => format!("{}.{method}(…)", target.name),
            StatementKind::ChainedCall { target, calls } => {
                let methods: Vec<String> =
                    calls.iter().map(|c| format!(".{}(…)", c.method)).collect();
                format!("{}{}", target.name, methods.concat())
            }
        };
        self.push_warning(path, line, format!("statement skipped, not run: {text}"));
    }

    /// A global setting.
    pub fn global(&self, name: &str) -> Option<&PyValue> {
        self.globals.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// A folder by path.
    pub fn folder(&self, path: &str) -> Option<&Folder> {
        self.folders.iter().find(|f| f.path == path)
    }

    /// A host by name.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The rules of a rule set (empty when none).
    pub fn rules(&self, ruleset: &str) -> &[Rule] {
        self.rulesets.get(ruleset).map_or(&[], Vec::as_slice)
    }

    fn read_folder(&mut self, dir: &Path, path: &str) -> Result<()> {
        let wato_file = dir.join(".wato");
        let mut folder = Folder {
            path: path.to_string(),
            title: None,
            bake_agent_package: false,
        };
        if let Some(text) = read_text(&wato_file)? {
            let v = py_literal::parse(&text).map_err(|e| Error::Syntax {
                path: wato_file.clone(),
                line: e.line,
                message: e.message,
            })?;
            let items = dict_items(&v);
            let get = |k: &str| {
                items
                    .iter()
                    .find(|(x, _)| x.as_str() == Some(k))
                    .map(|(_, v)| v)
            };
            folder.title = get("title").and_then(|t| t.as_str()).map(str::to_string);
            folder.bake_agent_package = get("attributes")
                .map(dict_items)
                .and_then(|a| {
                    a.iter()
                        .find(|(k, _)| k.as_str() == Some("bake_agent_package"))
                })
                .is_some_and(|(_, v)| *v == PyValue::Bool(true));
        }
        let hosts_file = dir.join("hosts.mk");
        if let Some(text) = read_text(&hosts_file)? {
            let text = substitute_folder_path(&text, path);
            self.read_hosts(&hosts_file, &text, path, &mut folder)?;
        }
        self.folders.push(folder);
        let rules_file = dir.join("rules.mk");
        if let Some(text) = read_text(&rules_file)? {
            self.read_rules(&rules_file, &text, path)?;
        }
        let mut subdirs: Vec<(String, PathBuf)> = Vec::new();
        let entries = fs::read_dir(dir);
        if let Ok(entries) = entries {
            for e in entries {
                let e = e.map_err(|e| Error::io(dir, e))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                if e.file_type()
                    .map_err(|err| Error::io(e.path(), err))?
                    .is_dir()
                {
                    subdirs.push((name, e.path()));
                }
            }
        }
        subdirs.sort();
        for (name, sub) in subdirs {
            self.read_folder(&sub, &format!("{path}{name}/"))?;
        }
        Ok(())
    }

    fn read_hosts(&mut self, file: &Path, text: &str, folder: &str, f: &mut Folder) -> Result<()> {
        let mut names: Vec<(String, usize)> = Vec::new();
        let mut tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut labels: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut attr_site: BTreeMap<String, String> = BTreeMap::new();
        for st in statements(file, text)? {
            match &st.kind {
                StatementKind::AugAssign { target, value } if target.name == "all_hosts" => {
                    if let PyValue::List(items) = value {
                        for i in items {
                            if let Some(n) = i.as_str() {
                                // 1.x wrote `name|tag|tag`.
                                let n = n.split('|').next().unwrap_or(n);
                                names.push((n.to_string(), st.line));
                            }
                        }
                    }
                }
                StatementKind::Call {
                    target,
                    method,
                    args,
                } if method == "update" && args.len() == 1 => {
                    let items = dict_items(&args[0]);
                    match target.name.as_str() {
                        "host_tags" => {
                            for (k, v) in items {
                                if let Some(h) = k.as_str() {
                                    tags.insert(h.to_string(), str_map(v));
                                }
                            }
                        }
                        "host_labels" => {
                            for (k, v) in items {
                                if let Some(h) = k.as_str() {
                                    labels.entry(h.to_string()).or_default().extend(str_map(v));
                                }
                            }
                        }
                        "host_attributes" => {
                            for (k, v) in items {
                                let Some(h) = k.as_str() else { continue };
                                for (ak, av) in dict_items(v) {
                                    match (ak.as_str(), av) {
                                        (Some("site"), PyValue::Str(s)) => {
                                            attr_site.insert(h.to_string(), s.clone());
                                        }
                                        (Some("labels"), l) => {
                                            let e = labels.entry(h.to_string()).or_default();
                                            for (lk, lv) in str_map(l) {
                                                e.entry(lk).or_insert(lv);
                                            }
                                        }
                                        _ => {}
                                    }
                                }
                            }
                        }
                        "clusters" => {
                            for (k, _) in items {
                                if let Some(n) = k.as_str() {
                                    names.push((n.to_string(), st.line));
                                }
                            }
                        }
                        "folder_attributes" => {
                            for (k, v) in items {
                                if k.as_str() == Some(folder) {
                                    for (ak, av) in dict_items(v) {
                                        if ak.as_str() == Some("bake_agent_package") {
                                            f.bake_agent_package = *av == PyValue::Bool(true);
                                        }
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                // Other statements HostStorage writes (§2.1): contact groups, ipaddresses,
                // `explicit_host_conf.setdefault(...)`, folder contact-group inserts and
                // custom macros (`extra_host_conf.setdefault(...).extend(...)`). The bakery
                // needs none of their values.
                StatementKind::AugAssign { .. } | StatementKind::Assign { .. } => {}
                StatementKind::Call { method, .. }
                    if matches!(method.as_str(), "update" | "setdefault" | "insert") => {}
                StatementKind::ChainedCall { calls, .. }
                    if calls.len() == 2
                        && calls[0].method == "setdefault"
                        && matches!(calls[1].method.as_str(), "extend" | "update") => {}
                StatementKind::Call { .. }
                | StatementKind::ChainedCall { .. }
                | StatementKind::Skipped { .. } => self.warn(file, st.line, &st.kind),
            }
        }
        for (name, line) in names {
            if let Some(reason) = host_name_problem(&name) {
                return Err(Error::HostName {
                    path: file.to_path_buf(),
                    line,
                    name,
                    reason,
                });
            }
            if !self.host_names.insert(name.clone()) {
                continue;
            }
            let host_tags = tags.remove(&name).unwrap_or_default();
            let site = host_tags
                .get("site")
                .cloned()
                .or_else(|| attr_site.get(&name).cloned())
                .unwrap_or_else(|| self.site_id.clone());
            let mut host_labels = BTreeMap::new();
            host_labels.insert("cmk/site".to_string(), site.clone());
            host_labels.extend(labels.remove(&name).unwrap_or_default());
            self.hosts.push(Host {
                name,
                folder: folder.to_string(),
                tags: host_tags,
                labels: host_labels,
                site,
            });
        }
        Ok(())
    }

    fn read_rules(&mut self, file: &Path, text: &str, folder: &str) -> Result<()> {
        let text = substitute_folder_path(text, folder);
        for st in statements(file, &text)? {
            let (target, value, mode) = match st.kind {
                StatementKind::Assign {
                    target,
                    value,
                    plus,
                } => {
                    let prepend = plus.as_ref().is_some_and(|p| *p == target);
                    (target, value, if prepend { 1 } else { 0 })
                }
                StatementKind::AugAssign { target, value } => (target, value, 2),
                StatementKind::Call { ref method, .. } if method == "setdefault" => continue,
                StatementKind::Skipped {
                    target: Some(ref target),
                    error: Some(ref error),
                    ..
                } if ruleset_name(target).as_deref().is_some_and(ruleset_is_used) => {
                    // Skipping a rule set the bakery evaluates would silently bake without it.
                    return Err(Error::Syntax {
                        path: file.to_path_buf(),
                        line: error.line,
                        message: error.message.clone(),
                    });
                }
                other => {
                    self.warn(file, st.line, &other);
                    continue;
                }
            };
            let Some(name) = ruleset_name(&target) else {
                let text = target.name;
                self.warn(
                    file,
                    st.line,
                    &StatementKind::Skipped {
                        text,
                        target: None,
                        error: None,
                    },
                );
                continue;
            };
            // Rule sets the bakery does not evaluate are kept when they read cleanly; a
            // problem in one of them (a value shape, a regex we cannot compile) is a warning,
            // never a reason to refuse the whole site.
            let used = ruleset_is_used(&name);
            let PyValue::List(items) = value else {
                let message = format!("the rule set {name} is not a list");
                if used {
                    return Err(Error::Syntax {
                        path: file.to_path_buf(),
                        line: st.line,
                        message,
                    });
                }
                self.push_warning(file, st.line, format!("{message}; rule set skipped"));
                continue;
            };
            let mut rules = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match parse_rule(file, st.line, i, folder, item) {
                    Ok(rule) => rules.push(rule),
                    Err(e) if used => return Err(e),
                    Err(e) => {
                        let message = match e {
                            Error::Rule {
                                rule_id, message, ..
                            } => format!(
                                "rule {rule_id} of {name} skipped (the bakery does not use this \
                                 rule set): {message}"
                            ),
                            other => other.to_string(),
                        };
                        self.push_warning(file, st.line, message);
                    }
                }
            }
            let list = self.rulesets.entry(name).or_default();
            match mode {
                0 => *list = rules,
                1 => {
                    rules.append(list);
                    *list = rules;
                }
                _ => list.extend(rules),
            }
        }
        Ok(())
    }
}

/// The rule sets whose rules the bakery evaluates; a problem in any other rule set is only a
/// warning.
fn ruleset_is_used(name: &str) -> bool {
    matches!(
        name,
        crate::plan::UPDATER_RULESET | crate::plan::HOST_GROUPS_RULESET
    )
}

/// `agent_config['cmk_update_agent']` → `agent_config:cmk_update_agent`; `host_groups` as is.
fn ruleset_name(target: &Target) -> Option<String> {
    match &target.key {
        None => Some(target.name.clone()),
        Some(PyValue::Str(k)) => Some(format!("{}:{k}", target.name)),
        Some(_) => None,
    }
}

/// Replaces the two expressions with `FOLDER_PATH` that Checkmk writes into site files by
/// their values, so that the statements holding them read as literals. `FOLDER_PATH` is the
/// file's directory relative to `etc/check_mk/conf.d` (`wato/linux`; `wato` for the root):
///
/// * `'/%s/' % FOLDER_PATH` (rules and folder contact groups) becomes `'/wato/linux/'`;
/// * `"…/" + FOLDER_PATH + "/"` (1.x `all_hosts` entries) joins into one string literal.
fn substitute_folder_path(text: &str, folder: &str) -> String {
    let folder_repr = PyValue::Str(folder.to_string()).repr();
    let relative = folder.trim_matches('/');
    let mut text = text
        .replace("'/%s/' % FOLDER_PATH", &folder_repr)
        .replace("\"/%s/\" % FOLDER_PATH", &folder_repr);
    for quote in ['"', '\''] {
        let escaped = relative
            .replace('\\', "\\\\")
            .replace(quote, &format!("\\{quote}"));
        text = text.replace(&format!("{quote} + FOLDER_PATH + {quote}"), &escaped);
    }
    text
}

fn parse_rule(file: &Path, line: usize, index: usize, folder: &str, item: PyValue) -> Result<Rule> {
    let rule_err = |id: &str, message: String| Error::Rule {
        path: file.to_path_buf(),
        line,
        rule_id: id.to_string(),
        message,
    };
    let PyValue::Dict(items) = item else {
        return Err(rule_err(
            &format!("#{}", index + 1),
            "a rule is not a dict".into(),
        ));
    };
    let mut id = format!("#{}", index + 1);
    let mut value = None;
    let mut condition = PyValue::Dict(Vec::new());
    let mut disabled = false;
    for (k, v) in items {
        match (k.as_str(), v) {
            (Some("id"), PyValue::Str(s)) => id = s,
            (Some("value"), v) => value = Some(v),
            (Some("condition"), v) => condition = v,
            (Some("options"), PyValue::Dict(o)) => {
                disabled = o
                    .iter()
                    .any(|(k, v)| k.as_str() == Some("disabled") && *v == PyValue::Bool(true));
            }
            _ => {}
        }
    }
    let value = value.ok_or_else(|| rule_err(&id, "the rule has no value".into()))?;
    let condition = Condition::parse(&condition).map_err(|m| rule_err(&id, m))?;
    Ok(Rule {
        id,
        value,
        condition,
        disabled,
        folder: folder.to_string(),
        path: file.to_path_buf(),
        line,
    })
}
