//! The deployment decision: master switch and host selection (spec bakery.md §6).

use py_literal::PyValue;
use regex::Regex;
use serde::Serialize;

use crate::site::{Host, SiteConfig};

/// The substring Checkmk's check plug-in looks for (case-insensitively) in a global refusal.
pub const GLOBALLY_DISABLED: &str = "Agent deployment is currently globally disabled.";

/// `agent_deployment_host_selection`: every configured key must hold (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostSelection {
    /// `match_site`.
    pub sites: Option<Vec<String>>,
    /// `match_folders` (`/wato/linux/` or `linux`).
    pub folders: Option<Vec<String>>,
    /// `match_hosttags`: (group, tag) pairs, or tag ids when the old list form gave no group.
    pub tags: Option<Vec<(Option<String>, String)>>,
    /// `match_hostlabels`.
    pub labels: Option<Vec<(String, String)>>,
    /// `match_hostgroups`.
    pub host_groups: Option<Vec<String>>,
    /// `match_hosts` (`~` starts a regex).
    pub hosts: Option<Vec<String>>,
    /// `match_exclude_hosts`.
    pub exclude_hosts: Option<Vec<String>>,
}

/// The global settings of automatic agent updates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeploymentSettings {
    /// `agent_deployment_enabled`, the master switch (default off).
    pub enabled: bool,
    /// `agent_deployment_host_selection`.
    pub selection: HostSelection,
}

/// The verdict for one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Decision {
    /// The host may update.
    Allowed,
    /// The master switch is off.
    GloballyDisabled,
    /// The host is not selected.
    HostDisabled {
        /// Why ("it is on the exclusion list").
        reason: String,
    },
}

impl Decision {
    /// The refusal text the server sends (`{"result_code": 1, "result": <text>}`), which the
    /// updater shows as `Agent Bakery: <text>`; `None` when allowed.
    pub fn refusal(&self, host: &str) -> Option<String> {
        match self {
            Decision::Allowed => None,
            Decision::GloballyDisabled => Some(GLOBALLY_DISABLED.to_string()),
            // Checkmk's text, lower case and without a full stop (its check plug-in test).
            Decision::HostDisabled { reason } => Some(format!(
                "agent updates are disabled for host name {host} because {reason}"
            )),
        }
    }
}

fn strings(v: &PyValue) -> Vec<String> {
    match v {
        PyValue::List(l) | PyValue::Tuple(l) => l
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        PyValue::Str(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl DeploymentSettings {
    /// Reads the settings from `global.mk` (both `match_hosttags` forms).
    pub fn from_site(site: &SiteConfig) -> DeploymentSettings {
        let enabled = site.global("agent_deployment_enabled") == Some(&PyValue::Bool(true));
        let mut selection = HostSelection::default();
        if let Some(PyValue::Dict(items)) = site.global("agent_deployment_host_selection") {
            for (k, v) in items {
                match k.as_str() {
                    Some("match_site") => selection.sites = Some(strings(v)),
                    Some("match_folders") => selection.folders = Some(strings(v)),
                    Some("match_hosttags") => {
                        selection.tags = Some(match v {
                            PyValue::Dict(d) => d
                                .iter()
                                .filter_map(|(g, t)| {
                                    Some((Some(g.as_str()?.to_string()), t.as_str()?.to_string()))
                                })
                                .collect(),
                            // Before 2.4: a list of `|`-joined entries in the old host
                            // tag format, whose first element is a host name
                            // (`my-host|cmk-agent|prod`); W16713's migration drops it.
                            other => strings(other)
                                .iter()
                                .flat_map(|s| s.split('|').skip(1).map(|t| (None, t.to_string())))
                                .filter(|(_, t)| !t.is_empty())
                                .collect(),
                        });
                    }
                    Some("match_hostlabels") => {
                        selection.labels = Some(match v {
                            PyValue::Dict(d) => d
                                .iter()
                                .filter_map(|(k, v)| {
                                    Some((k.as_str()?.to_string(), v.as_str()?.to_string()))
                                })
                                .collect(),
                            other => strings(other)
                                .iter()
                                .map(|l| {
                                    let (k, v) = l.split_once(':').unwrap_or((l, ""));
                                    (k.to_string(), v.to_string())
                                })
                                .collect(),
                        });
                    }
                    Some("match_hostgroups") => selection.host_groups = Some(strings(v)),
                    Some("match_hosts") => selection.hosts = Some(strings(v)),
                    Some("match_exclude_hosts") => selection.exclude_hosts = Some(strings(v)),
                    _ => {}
                }
            }
        }
        DeploymentSettings { enabled, selection }
    }

    /// The decision of §6.2 for the host `name` (`host`: its inventory record, `None` for a
    /// registered host that is not monitored; `groups`: its host groups).
    pub fn decide(&self, name: &str, host: Option<&Host>, groups: &[String]) -> Decision {
        if !self.enabled {
            return Decision::GloballyDisabled;
        }
        let sel = &self.selection;
        let no = |reason: &str| Decision::HostDisabled {
            reason: reason.to_string(),
        };
        if let Some(sites) = &sel.sites
            && !host.is_some_and(|h| sites.contains(&h.site))
        {
            return no("it is not monitored by one of the selected sites");
        }
        if let Some(folders) = &sel.folders {
            let inside = host.is_some_and(|h| {
                folders.iter().any(|f| {
                    let f = if f.starts_with("/wato/") {
                        f.trim_end_matches('/').to_string() + "/"
                    } else {
                        format!("/wato/{}/", f.trim_matches('/'))
                    };
                    let f = if f == "/wato//" {
                        "/wato/".to_string()
                    } else {
                        f
                    };
                    h.folder.starts_with(&f)
                })
            });
            if !inside {
                return no("it is not in one of the selected folders");
            }
        }
        if let Some(tags) = &sel.tags {
            let ok = host.is_some_and(|h| {
                tags.iter().all(|(g, t)| match g {
                    Some(g) => h.tags.get(g) == Some(t),
                    None => h.tags.values().any(|v| v == t),
                })
            });
            if !ok {
                return no("it does not have the selected host tags");
            }
        }
        if let Some(labels) = &sel.labels {
            let ok = host.is_some_and(|h| labels.iter().all(|(k, v)| h.labels.get(k) == Some(v)));
            if !ok {
                return no("it does not have the selected host labels");
            }
        }
        if let Some(sel_groups) = &sel.host_groups
            && !(host.is_some() && sel_groups.iter().any(|g| groups.contains(g)))
        {
            return no("it is not in one of the selected host groups");
        }
        if let Some(hosts) = &sel.hosts {
            let hit = hosts.iter().any(|e| match e.strip_prefix('~') {
                Some(pattern) => {
                    Regex::new(&format!("^(?:{pattern})")).is_ok_and(|r| r.is_match(name))
                }
                None => e == name,
            });
            if !hit {
                return no("it is not in the list of selected hosts");
            }
        }
        if let Some(ex) = &sel.exclude_hosts
            && ex.iter().any(|e| e == name)
        {
            return no("it is on the exclusion list");
        }
        Decision::Allowed
    }
}

impl SiteConfig {
    /// The deployment decision for `name` as the status endpoint and "Test host name" make it.
    pub fn deployment_decision(&self, name: &str) -> Decision {
        let settings = DeploymentSettings::from_site(self);
        let host = self.host(name);
        let groups = host.map(|h| self.host_groups(h)).unwrap_or_default();
        settings.decide(name, host, &groups)
    }
}
