//! The *Agent update status* view (bakery.md §8, requirement 22): per-host deployment state,
//! the counts of §8 and the prerequisites checklist of the user guide, built once from the
//! store and the bakery site ([`StatusView::build`]) and rendered as HTML ([`html`]), JSON
//! ([`StatusView::to_json`], the document `agent-deploy status --json` prints and
//! `agent_update_status.py?output_format=json` answers) or a text table
//! ([`StatusView::to_text`]).
//!
//! Categories (\[ours\] where §8 leaves room): a host is *registered* when it has a
//! registration; *selected* when the deployment decision (§6.2) lets it update; *up to date*
//! when it runs its target; *pending download* when it is selected, not up to date and has not
//! downloaded its target; *pending install* when it is selected, has downloaded its target and
//! does not run it yet; in *error* when its updater reported an error; *never contacted* when
//! it never called; *no package* when there is no target for its platform. The categories
//! overlap; the filter shows the hosts of one category, so its row count is the bar's count.
//! Each host also has one [`HostState`] (the most pressing of its categories) for the table.

pub mod html;
mod text;
pub(crate) mod web;

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use crate::store::{DeployStore, HostStatus, ServerError};
use agent_wire::Platform;

/// The `schema` of the JSON document. 1 was `{"schema", "hosts": [HostStatus]}`; 2 keeps every
/// host field of 1 and adds the counts, prerequisites, query and per-host verdict.
pub const VIEW_SCHEMA: u32 = 2;

/// The view's page below `/<site>/check_mk/` (`?output_format=json` for the JSON document).
pub const VIEW_PAGE: &str = "agent_update_status.py";

/// The logout endpoint below `/<site>/check_mk/` (POST with the session's CSRF token).
pub const LOGOUT_PAGE: &str = "logout.py";

/// Longest search string kept (longer input is cut).
const MAX_SEARCH_CHARS: usize = 200;

/// The counting categories of §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Has a registration.
    Registered,
    /// Passes the deployment decision.
    Selected,
    /// Runs its target.
    UpToDate,
    /// Selected, has not downloaded its target.
    PendingDownload,
    /// Selected, downloaded its target, does not run it yet.
    PendingInstall,
    /// Reported an error.
    Error,
    /// Never called.
    NeverContacted,
    /// No package for its platform.
    NoPackage,
}

impl Category {
    /// Every category, in the order of §8.
    pub const ALL: [Category; 8] = [
        Category::Registered,
        Category::Selected,
        Category::UpToDate,
        Category::PendingDownload,
        Category::PendingInstall,
        Category::Error,
        Category::NeverContacted,
        Category::NoPackage,
    ];

    /// The id used in URLs and JSON (`pending_download`).
    pub fn id(self) -> &'static str {
        match self {
            Category::Registered => "registered",
            Category::Selected => "selected",
            Category::UpToDate => "up_to_date",
            Category::PendingDownload => "pending_download",
            Category::PendingInstall => "pending_install",
            Category::Error => "error",
            Category::NeverContacted => "never_contacted",
            Category::NoPackage => "no_package",
        }
    }

    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Category::Registered => "Registered",
            Category::Selected => "Selected",
            Category::UpToDate => "Up to date",
            Category::PendingDownload => "Pending download",
            Category::PendingInstall => "Pending install",
            Category::Error => "Error",
            Category::NeverContacted => "Never contacted",
            Category::NoPackage => "No package",
        }
    }

    /// The category of an id; `None` for anything else.
    pub fn parse(id: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.id() == id)
    }
}

/// A host's most pressing state, in this order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// The updater reported an error.
    Error,
    /// The host never called.
    NeverContacted,
    /// The deployment decision refuses the host.
    NotSelected,
    /// No package for its platform.
    NoPackage,
    /// It has not downloaded its target.
    PendingDownload,
    /// It downloaded its target and does not run it yet.
    PendingInstall,
    /// It runs its target.
    UpToDate,
}

impl HostState {
    /// The id used in JSON (`not_selected`).
    pub fn id(self) -> &'static str {
        match self {
            HostState::Error => "error",
            HostState::NeverContacted => "never_contacted",
            HostState::NotSelected => "not_selected",
            HostState::NoPackage => "no_package",
            HostState::PendingDownload => "pending_download",
            HostState::PendingInstall => "pending_install",
            HostState::UpToDate => "up_to_date",
        }
    }

    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            HostState::Error => "Error",
            HostState::NeverContacted => "Never contacted",
            HostState::NotSelected => "Not selected",
            HostState::NoPackage => "No package",
            HostState::PendingDownload => "Pending download",
            HostState::PendingInstall => "Pending install",
            HostState::UpToDate => "Up to date",
        }
    }
}

/// The deployment decision for a host (§6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The host may update.
    Allowed,
    /// The master switch is off.
    GloballyDisabled,
    /// The host selection leaves the host out.
    HostDisabled,
    /// No bakery site: every registered host is served.
    NoSite,
}

impl Verdict {
    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Allowed => "Allowed",
            Verdict::GloballyDisabled => "Globally disabled",
            Verdict::HostDisabled => "Not selected",
            Verdict::NoSite => "Allowed (no site)",
        }
    }
}

/// How many hosts are in each category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// [`Category::Registered`].
    pub registered: usize,
    /// [`Category::Selected`].
    pub selected: usize,
    /// [`Category::UpToDate`].
    pub up_to_date: usize,
    /// [`Category::PendingDownload`].
    pub pending_download: usize,
    /// [`Category::PendingInstall`].
    pub pending_install: usize,
    /// [`Category::Error`].
    pub error: usize,
    /// [`Category::NeverContacted`].
    pub never_contacted: usize,
    /// [`Category::NoPackage`].
    pub no_package: usize,
}

impl Counts {
    /// The count of one category.
    pub fn get(&self, c: Category) -> usize {
        match c {
            Category::Registered => self.registered,
            Category::Selected => self.selected,
            Category::UpToDate => self.up_to_date,
            Category::PendingDownload => self.pending_download,
            Category::PendingInstall => self.pending_install,
            Category::Error => self.error,
            Category::NeverContacted => self.never_contacted,
            Category::NoPackage => self.no_package,
        }
    }

    fn add(&mut self, c: Category) {
        let n = match c {
            Category::Registered => &mut self.registered,
            Category::Selected => &mut self.selected,
            Category::UpToDate => &mut self.up_to_date,
            Category::PendingDownload => &mut self.pending_download,
            Category::PendingInstall => &mut self.pending_install,
            Category::Error => &mut self.error,
            Category::NeverContacted => &mut self.never_contacted,
            Category::NoPackage => &mut self.no_package,
        };
        *n += 1;
    }
}

/// The state of one prerequisite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Fulfilled.
    Ok,
    /// Partly fulfilled (e.g. some packages unsigned).
    Warning,
    /// Not fulfilled.
    Missing,
    /// Cannot be told (no bakery site).
    Unknown,
}

impl Check {
    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Check::Ok => "OK",
            Check::Warning => "Incomplete",
            Check::Missing => "Missing",
            Check::Unknown => "Unknown",
        }
    }
}

/// One item of the user guide's prerequisites checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prerequisite {
    /// `signature_key`, `updater_rule`, `packages`, `registered_hosts` or `master_switch`.
    pub id: &'static str,
    /// Its title.
    pub title: &'static str,
    /// Its state.
    pub state: Check,
    /// What was found.
    pub detail: String,
    /// What to do when it is not OK.
    pub action: Option<String>,
}

/// One host of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostRow {
    /// The stored status (the fields of schema 1).
    #[serde(flatten)]
    pub status: HostStatus,
    /// The most pressing state.
    pub state: HostState,
    /// Every category the host is in.
    pub categories: Vec<Category>,
    /// The deployment decision.
    pub verdict: Verdict,
    /// The refusal text when the decision refuses the host.
    pub reason: Option<String>,
}

impl HostRow {
    /// Whether the host is in `c`.
    pub fn is(&self, c: Category) -> bool {
        self.categories.contains(&c)
    }
}

/// A sortable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Host name.
    #[default]
    Host,
    /// [`HostState`].
    State,
    /// Registration time.
    Registered,
    /// Last contact.
    Contact,
    /// Platform.
    Platform,
    /// Target hash.
    Target,
    /// Downloaded hash.
    Downloaded,
    /// Installed hash.
    Installed,
    /// Verdict.
    Verdict,
    /// Last error.
    Error,
}

impl SortKey {
    /// Every column, in table order.
    pub const ALL: [SortKey; 10] = [
        SortKey::Host,
        SortKey::State,
        SortKey::Registered,
        SortKey::Contact,
        SortKey::Platform,
        SortKey::Target,
        SortKey::Downloaded,
        SortKey::Installed,
        SortKey::Verdict,
        SortKey::Error,
    ];

    /// The id used in URLs (`?sort=contact`).
    pub fn id(self) -> &'static str {
        match self {
            SortKey::Host => "host",
            SortKey::State => "state",
            SortKey::Registered => "registered",
            SortKey::Contact => "contact",
            SortKey::Platform => "platform",
            SortKey::Target => "target",
            SortKey::Downloaded => "downloaded",
            SortKey::Installed => "installed",
            SortKey::Verdict => "verdict",
            SortKey::Error => "error",
        }
    }

    /// The column header.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Host => "Host",
            SortKey::State => "State",
            SortKey::Registered => "Registered",
            SortKey::Contact => "Last contact",
            SortKey::Platform => "Platform",
            SortKey::Target => "Target",
            SortKey::Downloaded => "Downloaded",
            SortKey::Installed => "Installed",
            SortKey::Verdict => "Selection",
            SortKey::Error => "Last error",
        }
    }

    /// The column of an id; `None` for anything else.
    pub fn parse(id: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.id() == id)
    }
}

/// Search, filter and sort of the table (`?q=&state=&sort=&dir=`). Unknown values fall back
/// to the defaults: a GET page never fails on its parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewQuery {
    /// Case-insensitive substring of the host name (empty: all).
    pub search: String,
    /// Only hosts in this category.
    pub state: Option<Category>,
    /// Sort column.
    pub sort: SortKey,
    /// Descending order.
    pub descending: bool,
}

impl ViewQuery {
    /// From the URL parameters (each optional).
    pub fn parse(
        search: Option<&str>,
        state: Option<&str>,
        sort: Option<&str>,
        dir: Option<&str>,
    ) -> ViewQuery {
        ViewQuery {
            search: search
                .unwrap_or("")
                .trim()
                .chars()
                .take(MAX_SEARCH_CHARS)
                .collect(),
            state: state.and_then(Category::parse),
            sort: sort.and_then(SortKey::parse).unwrap_or_default(),
            descending: dir == Some("desc"),
        }
    }

    /// The query string (`q=…&state=…&sort=…&dir=…`, defaults left out).
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        if !self.search.is_empty() {
            parts.push(format!("q={}", agent_bakery::quote_plus(&self.search)));
        }
        if let Some(c) = self.state {
            parts.push(format!("state={}", c.id()));
        }
        if self.sort != SortKey::Host || self.descending {
            parts.push(format!("sort={}", self.sort.id()));
            parts.push(format!(
                "dir={}",
                if self.descending { "desc" } else { "asc" }
            ));
        }
        parts.join("&")
    }

    /// The same query sorted by `key`: ascending, or reversed when it is already sorted by it.
    pub fn sorted_by(&self, key: SortKey) -> ViewQuery {
        ViewQuery {
            sort: key,
            descending: self.sort == key && !self.descending,
            ..self.clone()
        }
    }

    /// The same query showing one category (`None`: all).
    pub fn filtered(&self, state: Option<Category>) -> ViewQuery {
        ViewQuery {
            state,
            ..self.clone()
        }
    }

    fn matches(&self, row: &HostRow) -> bool {
        self.state.is_none_or(|c| row.is(c))
            && (self.search.is_empty()
                || row
                    .status
                    .host_name
                    .to_lowercase()
                    .contains(&self.search.to_lowercase()))
    }
}

impl Serialize for ViewQuery {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Q<'a> {
            q: &'a str,
            state: Option<Category>,
            sort: SortKey,
            dir: &'static str,
        }
        Q {
            q: &self.search,
            state: self.state,
            sort: self.sort,
            dir: if self.descending { "desc" } else { "asc" },
        }
        .serialize(s)
    }
}

/// The whole view: what the page, the JSON document and `agent-deploy status` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusView {
    /// [`VIEW_SCHEMA`].
    pub schema: u32,
    /// When it was built (Unix seconds); ages are relative to it.
    pub generated_at: u64,
    /// The bakery site's id, if the server serves one.
    pub site: Option<String>,
    /// The search, filter and sort applied to `hosts`.
    pub query: ViewQuery,
    /// Counts over all hosts (not only the shown ones).
    pub counts: Counts,
    /// The prerequisites checklist.
    pub prerequisites: Vec<Prerequisite>,
    /// The number of hosts before search and filter.
    pub total: usize,
    /// The hosts that match the query, in its order.
    pub hosts: Vec<HostRow>,
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What the view needs from the bakery site.
struct SiteFacts {
    site_id: String,
    enabled: bool,
    /// Distinct certificates the activated updater configurations trust, or the plan's error.
    trusted_keys: Result<usize, String>,
    /// Monitored hosts whose package carries the updater, and all monitored hosts.
    updater_hosts: Result<(usize, usize), String>,
    /// Keys in the site's default key store.
    stored_keys: usize,
}

/// The site's default signature key store, relative to the site root (as `agent-bakery`).
const SITE_KEY_STORE: &str = "etc/check_mk/agent_signature_keys";

fn site_facts(store: &DeployStore) -> Result<Option<SiteFacts>, ServerError> {
    let (Some(site), Some(bakery)) = (store.site_config()?, store.bakery_site()) else {
        return Ok(None);
    };
    let settings = agent_bakery::DeploymentSettings::from_site(&site);
    let plan = site.plan().map_err(|e| e.to_string());
    let activated = |plan: &agent_bakery::Plan| -> Vec<agent_bakery::UpdaterConfig> {
        plan.targets
            .iter()
            .filter(|t| matches!(t.kind, agent_bakery::TargetKind::Host(_)))
            .filter_map(|t| plan.configs.get(t.config).cloned().flatten())
            .filter(|c| c.activated)
            .collect()
    };
    let trusted_keys = plan.as_ref().map_err(Clone::clone).map(|p| {
        activated(p)
            .iter()
            .flat_map(|c| c.signature_keys.iter().map(|k| k.trim().to_owned()))
            .collect::<BTreeSet<_>>()
            .len()
    });
    let updater_hosts = plan
        .as_ref()
        .map_err(Clone::clone)
        .map(|p| (activated(p).len(), site.hosts.len()));
    let stored_keys = agent_sign::KeyStore::open_existing(bakery.root.join(SITE_KEY_STORE))
        .and_then(|s| s.list())
        .map_or(0, |l| l.len());
    Ok(Some(SiteFacts {
        site_id: site.site_id.clone(),
        enabled: settings.enabled,
        trusted_keys,
        updater_hosts,
        stored_keys,
    }))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn prerequisites(
    site: Option<&SiteFacts>,
    counts: &Counts,
    packages: (usize, usize),
) -> Vec<Prerequisite> {
    let no_site = |id, title| Prerequisite {
        id,
        title,
        state: Check::Unknown,
        detail: "The server does not read a Checkmk site.".into(),
        action: Some("Serve the site's bakery: agent-deploy serve --site-root $OMD_ROOT.".into()),
    };
    let mut out = Vec::new();
    out.push(match site {
        None => no_site("signature_key", "Signature key"),
        Some(s) => {
            let stored = format!(
                "{} in the site's key store",
                plural(s.stored_keys, "key", "keys")
            );
            match &s.trusted_keys {
                Ok(n) if *n > 0 => Prerequisite {
                    id: "signature_key",
                    title: "Signature key",
                    state: Check::Ok,
                    detail: format!(
                        "The updater rule trusts {}; {stored}.",
                        plural(*n, "certificate", "certificates")
                    ),
                    action: None,
                },
                Ok(_) => Prerequisite {
                    id: "signature_key",
                    title: "Signature key",
                    state: Check::Missing,
                    detail: format!("The updater rule trusts no signature key; {stored}."),
                    action: Some(
                        "Create a key (agent-sign key create --store \
                         $OMD_ROOT/etc/check_mk/agent_signature_keys) and add its certificate to \
                         the rule's signature keys."
                            .into(),
                    ),
                },
                Err(e) => Prerequisite {
                    id: "signature_key",
                    title: "Signature key",
                    state: Check::Warning,
                    detail: format!("The updater rules cannot be evaluated: {e}"),
                    action: Some("Fix the rule (agent-bakery config shows the problem).".into()),
                },
            }
        }
    });
    out.push(match site {
        None => no_site("updater_rule", "Agent updater rule"),
        Some(s) => match &s.updater_hosts {
            Ok((n, total)) if *n > 0 => Prerequisite {
                id: "updater_rule",
                title: "Agent updater rule",
                state: Check::Ok,
                detail: format!(
                    "The updater is activated for {n} of {}.",
                    plural(*total, "monitored host", "monitored hosts")
                ),
                action: None,
            },
            Ok((_, total)) => Prerequisite {
                id: "updater_rule",
                title: "Agent updater rule",
                state: Check::Missing,
                detail: format!(
                    "No rule activates the updater for the {}.",
                    plural(*total, "monitored host", "monitored hosts")
                ),
                action: Some(
                    "Create an \"Agent updater (Linux, Windows, Solaris)\" rule with \
                     activation on (Setup > Agents > Agent rules)."
                        .into(),
                ),
            },
            Err(e) => Prerequisite {
                id: "updater_rule",
                title: "Agent updater rule",
                state: Check::Warning,
                detail: format!("The updater rules cannot be evaluated: {e}"),
                action: Some("Fix the rule (agent-bakery config shows the problem).".into()),
            },
        },
    });
    let (total, signed) = packages;
    let bake = if site.is_some() {
        "Bake and sign the agents: agent-bakery bake --sign KEY."
    } else {
        "Publish signed packages: agent-deploy publish --signatures FILE."
    };
    out.push(Prerequisite {
        id: "packages",
        title: "Baked and signed packages",
        state: if total == 0 {
            Check::Missing
        } else if signed < total {
            Check::Warning
        } else {
            Check::Ok
        },
        detail: if total == 0 {
            "No package for any listed host.".into()
        } else {
            format!(
                "{} for the listed hosts, {signed} signed.",
                plural(total, "package", "packages")
            )
        },
        action: if total == 0 {
            Some(bake.into())
        } else if signed < total {
            Some(if site.is_some() {
                "Sign them: agent-bakery sign KEY (updaters refuse unsigned packages).".into()
            } else {
                "Publish them again with their signatures (updaters refuse unsigned packages)."
                    .into()
            })
        } else {
            None
        },
    });
    out.push(Prerequisite {
        id: "registered_hosts",
        title: "Registered hosts",
        state: if counts.registered > 0 {
            Check::Ok
        } else {
            Check::Missing
        },
        detail: format!(
            "{} registered.",
            plural(counts.registered, "host is", "hosts are")
        ),
        action: (counts.registered == 0).then(|| {
            "Register each host: cmk-update-agent register, as a user with registration rights."
                .into()
        }),
    });
    out.push(match site {
        None => no_site("master_switch", "Master switch"),
        Some(s) if s.enabled => Prerequisite {
            id: "master_switch",
            title: "Master switch",
            state: Check::Ok,
            detail: "Automatic agent updates are enabled.".into(),
            action: None,
        },
        Some(_) => Prerequisite {
            id: "master_switch",
            title: "Master switch",
            state: Check::Missing,
            detail: "Automatic agent updates are globally disabled.".into(),
            action: Some(
                "Switch them on: agent_deployment_enabled = True in global.mk (Setup > Agents > \
                 Automatic updates)."
                    .into(),
            ),
        },
    });
    out
}

/// The categories and state of a host with `verdict`.
fn classify(s: &HostStatus, verdict: Verdict) -> (Vec<Category>, HostState) {
    let selected = matches!(verdict, Verdict::Allowed | Verdict::NoSite);
    let target = s.target_hash.as_deref();
    let up_to_date = target.is_some() && s.installed_aghash.as_deref() == target;
    let downloaded = target.is_some() && s.downloaded_aghash.as_deref() == target;
    let pending_download = selected && target.is_some() && !up_to_date && !downloaded;
    let pending_install = selected && !up_to_date && downloaded;
    let flags = [
        (Category::Registered, s.registered_at.is_some()),
        (Category::Selected, selected),
        (Category::UpToDate, up_to_date),
        (Category::PendingDownload, pending_download),
        (Category::PendingInstall, pending_install),
        (Category::Error, s.last_error.is_some()),
        (Category::NeverContacted, s.last_contact.is_none()),
        (Category::NoPackage, target.is_none()),
    ];
    let categories: Vec<Category> = flags.iter().filter(|(_, f)| *f).map(|(c, _)| *c).collect();
    let state = if s.last_error.is_some() {
        HostState::Error
    } else if s.last_contact.is_none() {
        HostState::NeverContacted
    } else if !selected {
        HostState::NotSelected
    } else if target.is_none() {
        HostState::NoPackage
    } else if pending_download {
        HostState::PendingDownload
    } else if pending_install {
        HostState::PendingInstall
    } else {
        HostState::UpToDate
    };
    (categories, state)
}

fn sort_rows(rows: &mut [HostRow], query: &ViewQuery) {
    rows.sort_by(|a, b| {
        let (x, y) = (&a.status, &b.status);
        let primary = match query.sort {
            SortKey::Host => std::cmp::Ordering::Equal,
            SortKey::State => a.state.cmp(&b.state),
            SortKey::Registered => x.registered_at.cmp(&y.registered_at),
            SortKey::Contact => x.last_contact.cmp(&y.last_contact),
            SortKey::Platform => x.platform.cmp(&y.platform),
            SortKey::Target => x.target_hash.cmp(&y.target_hash),
            SortKey::Downloaded => x.downloaded_aghash.cmp(&y.downloaded_aghash),
            SortKey::Installed => x.installed_aghash.cmp(&y.installed_aghash),
            SortKey::Verdict => a.verdict.cmp(&b.verdict),
            SortKey::Error => x.last_error.cmp(&y.last_error),
        };
        let order = primary.then_with(|| x.host_name.cmp(&y.host_name));
        if query.descending {
            order.reverse()
        } else {
            order
        }
    });
}

impl StatusView {
    /// Builds the view from the store (hosts, packages, sessions aside) and its bakery site
    /// (deployment decision, rules, key store) as of `now`.
    pub fn build(
        store: &DeployStore,
        query: ViewQuery,
        now: SystemTime,
    ) -> Result<StatusView, ServerError> {
        let site_config = store.site_config()?;
        let site = site_facts(store)?;
        let mut rows = Vec::new();
        let mut counts = Counts::default();
        let mut packages: BTreeSet<(String, String)> = BTreeSet::new();
        let mut signed: BTreeSet<(String, String)> = BTreeSet::new();
        for status in store.statuses() {
            let (verdict, reason) = match &site_config {
                None => (Verdict::NoSite, None),
                Some(cfg) => {
                    let decision = cfg.deployment_decision(&status.host_name);
                    let reason = decision.refusal(&status.host_name);
                    let verdict = match decision {
                        agent_bakery::Decision::Allowed => Verdict::Allowed,
                        agent_bakery::Decision::GloballyDisabled => Verdict::GloballyDisabled,
                        agent_bakery::Decision::HostDisabled { .. } => Verdict::HostDisabled,
                    };
                    (verdict, reason)
                }
            };
            if let Some(p) = status.platform.as_deref().and_then(Platform::parse)
                && let Ok(Some((hash, is_signed))) = store.target_signed(&status.host_name, p)
            {
                let key = (p.as_str().to_owned(), hash);
                if is_signed {
                    signed.insert(key.clone());
                }
                packages.insert(key);
            }
            let (categories, state) = classify(&status, verdict);
            for c in &categories {
                counts.add(*c);
            }
            rows.push(HostRow {
                status,
                state,
                categories,
                verdict,
                reason,
            });
        }
        let total = rows.len();
        let mut hosts: Vec<HostRow> = rows.into_iter().filter(|r| query.matches(r)).collect();
        sort_rows(&mut hosts, &query);
        Ok(StatusView {
            schema: VIEW_SCHEMA,
            generated_at: epoch(now),
            site: site.as_ref().map(|s| s.site_id.clone()),
            prerequisites: prerequisites(site.as_ref(), &counts, (packages.len(), signed.len())),
            query,
            counts,
            total,
            hosts,
        })
    }

    /// The JSON document (one line).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The text rendering of `agent-deploy status`: the host table, then the counts and the
    /// prerequisites.
    pub fn to_text(&self) -> String {
        text::render(self)
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of Unix seconds.
pub(crate) fn utc(t: u64) -> String {
    match i64::try_from(t)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
    {
        Some(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        None => t.to_string(),
    }
}

/// How long before `now` `t` was: `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
pub(crate) fn age(t: u64, now: u64) -> String {
    let d = now.saturating_sub(t);
    match d {
        0..120 => format!("{d} s ago"),
        120..7200 => format!("{} min ago", d / 60),
        7200..172_800 => format!("{} h ago", d / 3600),
        _ => format!("{} d ago", d / 86_400),
    }
}

/// The first 8 characters of a hash.
pub(crate) fn short_hash(h: &str) -> &str {
    h.get(..8).unwrap_or(h)
}
