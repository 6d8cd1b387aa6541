//! Rule evaluation and targets (spec bakery.md §4, §5.1).

use std::collections::HashMap;

use py_literal::PyValue;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::matching::MatchObject;
use crate::model::UpdaterConfig;
use crate::site::{Host, Rule, SiteConfig, Warning};

/// The rule set of the "Agent updater".
pub const UPDATER_RULESET: &str = "agent_config:cmk_update_agent";
/// The rule set that puts hosts into host groups.
pub const HOST_GROUPS_RULESET: &str = "host_groups";
/// The vanilla target: the stock agent, no rules.
pub const VANILLA: &str = "_VANILLA";

/// What a target stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "of", rename_all = "lowercase")]
pub enum TargetKind {
    /// `_VANILLA`.
    Vanilla,
    /// `_GENERIC[…]` of a folder with "Bake agent packages".
    Generic(String),
    /// A host.
    Host(String),
}

/// A target and its updater configuration (`None`: no updater in the package).
#[derive(Debug, Clone)]
pub struct TargetPlan {
    /// The reference name (`_VANILLA`, `_GENERIC[%2Fwato%2F]`, a host name).
    pub name: String,
    /// What it is.
    pub kind: TargetKind,
    /// The index into [`Plan::configs`].
    pub config: usize,
}

/// All targets of a site, with identical configurations shared.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Distinct updater configurations; `None` = no updater.
    pub configs: Vec<Option<UpdaterConfig>>,
    /// Every target, in order: vanilla, generic folders, hosts.
    pub targets: Vec<TargetPlan>,
    /// Warnings found while evaluating (unknown value keys).
    pub warnings: Vec<Warning>,
}

/// Python's `urllib.parse.quote_plus` (safe characters: letters, digits, `_.-~`).
pub fn quote_plus(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The generic target's name of a folder: `_GENERIC[<quote_plus(path)>]`.
pub fn generic_target_name(folder: &str) -> String {
    format!("_GENERIC[{}]", quote_plus(folder))
}

static EMPTY: std::sync::LazyLock<std::collections::BTreeMap<String, String>> =
    std::sync::LazyLock::new(Default::default);

impl Host {
    /// The view of this host that rule conditions are matched against.
    pub fn match_object(&self) -> MatchObject<'_> {
        MatchObject {
            name: &self.name,
            folder: &self.folder,
            tags: &self.tags,
            labels: &self.labels,
        }
    }
}

/// The view of a folder's generic target (empty host name, no tags or labels).
pub fn generic_object(folder: &str) -> MatchObject<'_> {
    MatchObject {
        name: "",
        folder,
        tags: &EMPTY,
        labels: &EMPTY,
    }
}

impl SiteConfig {
    /// The enabled rules of `ruleset` that match `obj`, in priority order.
    pub fn matching_rules<'a>(&'a self, ruleset: &str, obj: &MatchObject<'_>) -> Vec<&'a Rule> {
        self.rules(ruleset)
            .iter()
            .filter(|r| !r.disabled && r.condition.matches(obj))
            .collect()
    }

    /// The merged "Agent updater" value as Checkmk reads it (before normalisation): `None`
    /// when no rule matches.
    pub fn merged_updater_value(&self, obj: &MatchObject<'_>) -> Option<PyValue> {
        let rules = self.matching_rules(UPDATER_RULESET, obj);
        crate::matching::merge_dicts(rules.iter().enumerate().map(|(i, r)| (i, &r.value)))
            .map(|items| PyValue::Dict(items.into_iter().map(|(k, v, _)| (k, v)).collect()))
    }

    /// The normalised configuration for `obj`; `None` when no rule matches or the merged
    /// `activated` is false (no updater in the package).
    pub fn updater_config(&self, obj: &MatchObject<'_>) -> Result<Option<UpdaterConfig>> {
        let rules = self.matching_rules(UPDATER_RULESET, obj);
        let Some(items) =
            crate::matching::merge_dicts(rules.iter().enumerate().map(|(i, r)| (i, &r.value)))
        else {
            return Ok(None);
        };
        let mut cfg = UpdaterConfig::defaults();
        for (k, v, from) in items {
            let single = PyValue::Dict(vec![(k, v)]);
            let (one, _) = UpdaterConfig::from_value(&single, &self.site_id)
                .map_err(|m| rule_error(rules[from], m))?;
            merge_key(&mut cfg, &one, &single);
        }
        Ok(cfg.activated.then_some(cfg))
    }

    /// Checks every "Agent updater" rule's value shape (an unknown shape is an error naming
    /// the rule); unknown keys become warnings.
    pub fn check_updater_rules(&self) -> Result<Vec<Warning>> {
        let mut warnings = Vec::new();
        for rule in self.rules(UPDATER_RULESET) {
            let (_, unknown) = UpdaterConfig::from_value(&rule.value, &self.site_id)
                .map_err(|m| rule_error(rule, m))?;
            for key in unknown {
                warnings.push(Warning {
                    path: rule.path.clone(),
                    line: rule.line,
                    message: format!("rule {}: unknown key {key:?} ignored", rule.id),
                });
            }
        }
        Ok(warnings)
    }

    /// The host groups of a host (every matching `host_groups` rule adds its group).
    pub fn host_groups(&self, host: &Host) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.matching_rules(HOST_GROUPS_RULESET, &host.match_object()) {
            if let Some(g) = r.value.as_str()
                && !out.iter().any(|x| x == g)
            {
                out.push(g.to_string());
            }
        }
        out
    }

    /// Every target with its configuration; identical configurations share one entry.
    pub fn plan(&self) -> Result<Plan> {
        let mut plan = Plan {
            warnings: self.check_updater_rules()?,
            ..Plan::default()
        };
        let mut index: HashMap<Option<UpdaterConfig>, usize> = HashMap::new();
        let mut add =
            |plan: &mut Plan, name: String, kind: TargetKind, cfg: Option<UpdaterConfig>| {
                let next = plan.configs.len();
                let config = *index.entry(cfg.clone()).or_insert(next);
                if config == next {
                    plan.configs.push(cfg);
                }
                plan.targets.push(TargetPlan { name, kind, config });
            };
        add(&mut plan, VANILLA.to_string(), TargetKind::Vanilla, None);
        for folder in self.folders.iter().filter(|f| f.bake_agent_package) {
            let cfg = self.updater_config(&generic_object(&folder.path))?;
            add(
                &mut plan,
                generic_target_name(&folder.path),
                TargetKind::Generic(folder.path.clone()),
                cfg,
            );
        }
        for host in &self.hosts {
            let cfg = self.updater_config(&host.match_object())?;
            add(
                &mut plan,
                host.name.clone(),
                TargetKind::Host(host.name.clone()),
                cfg,
            );
        }
        Ok(plan)
    }
}

fn rule_error(rule: &Rule, message: String) -> Error {
    Error::Rule {
        path: rule.path.clone(),
        line: rule.line,
        rule_id: rule.id.clone(),
        message,
    }
}

/// Copies the one key `single` sets from `one` into `cfg`.
fn merge_key(cfg: &mut UpdaterConfig, one: &UpdaterConfig, single: &PyValue) {
    let PyValue::Dict(items) = single else { return };
    let Some(key) = items.first().and_then(|(k, _)| k.as_str()) else {
        return;
    };
    match key {
        "activated" => cfg.activated = one.activated,
        "server_data" => cfg.server = one.server.clone(),
        "certificates" => cfg.certificates = one.certificates.clone(),
        "interval" => cfg.interval = one.interval,
        "proxy" => cfg.proxy = one.proxy.clone(),
        "edition" => cfg.format = one.format,
        "signature_keys" => cfg.signature_keys = one.signature_keys.clone(),
        "updater_registration" => cfg.registration = one.registration,
        _ => {}
    }
}
