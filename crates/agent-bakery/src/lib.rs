//! Checkmk's Agent Bakery for the toolkit: from a site's hosts and "Agent updater" rules to
//! per-host agent packages (deb, rpm, tgz), signed through `agent-sign`, and the deployment
//! decision (master switch, host selection) that the deployment server applies.
//!
//! Reference: `shared/spec/bakery.md` (requirements 1–19) and `signing.md` §2–3.
//!
//! # Reading a site
//!
//! [`SiteConfig::read`] reads `etc/check_mk/conf.d/wato/**/{.wato,hosts.mk,rules.mk}` and
//! `etc/check_mk/multisite.d/wato/global.mk` with `py-literal` (nothing is ever run; other
//! statements become [`Warning`]s with file and line). Rules are ordered deepest folder first
//! (§4.1); [`SiteConfig::plan`] evaluates every target (`_VANILLA`, `_GENERIC[…]`, hosts),
//! normalises the merged "Agent updater" value of every era into [`UpdaterConfig`] and shares
//! identical configurations.
//!
//! # Baking
//!
//! [`bake`] builds every used package once per platform, reproducibly, names it by its agent
//! hash under `var/check_mk/agents/<platform>/<hash>`, and only then replaces the
//! `references/<target>` links atomically and removes unreferenced packages. It runs under a
//! per-site lock ([`BakeLock`]), as a job with a state file ([`JobStatus`]) and a log
//! (`var/log/agent_bakery.log`). With [`BakeOptions::sign`] the key is unlocked before
//! anything is built, so a wrong passphrase changes nothing. New package bytes never carry
//! old signatures.
//!
//! # For the deployment server
//!
//! The server asks, per registered host and platform:
//!
//! * [`host_package`]: the host's target, agent hash, package path and signatures (`None` when
//!   nothing was baked for the host on that platform → `AgentAvailable: false`);
//! * [`SiteConfig::deployment_decision`]: [`Decision::Allowed`], or a refusal whose text
//!   ([`Decision::refusal`]) goes into `{"result_code": 1, "result": <text>}` and which the
//!   updater shows as `Agent Bakery: <text>`.
//!
//! ```no_run
//! use agent_bakery::{Platform, SiteConfig, host_package};
//! # fn main() -> Result<(), agent_bakery::Error> {
//! let root = std::path::Path::new("/omd/sites/mysite");
//! let site = SiteConfig::read(root, "mysite")?;
//! match site.deployment_decision("web01").refusal("web01") {
//!     Some(text) => println!("refuse: {text}"),
//!     None => {
//!         if let Some(p) = host_package(root, "web01", Platform::LinuxDeb)? {
//!             println!("{} {} {} signatures", p.aghash, p.path.display(), p.signatures.len());
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

//!
//! # Our decisions where Checkmk's behaviour is not public (\[ours\] in the spec)
//!
//! * Agent hash: `sha256` over a manifest of toolkit version, Checkmk version, platform, each
//!   file's path, mode and content digest, the maintainer script and the source files' modes;
//!   mtimes are not part of it ([`agent_hash`]).
//! * Package contents: `/usr/bin/check_mk_agent` (required: `share/check_mk/agents/
//!   check_mk_agent.linux`, a `local/` copy wins), optional `mk-job` and the caching agent;
//!   with the updater the files of §5.3 plus `cmk-update-agent.{service,timer}` under
//!   `/usr/lib/systemd/system/` (not enabled by the package). Every member has the mtime
//!   [`PACKAGE_MTIME`] and owner root.
//! * The postinst honours `$DPKG_ROOT`, so `dpkg --root --force-script-chrootless` installs
//!   into a directory.
//! * Signatures are stored beside the package as `<hash>.signatures.json`; the job file,
//!   lock and bake revisions under `var/check_mk/agent_bakery/` ([`STATE_DIR`]).
//! * Refusal for an unselected host: `agent updates are disabled for host name <h> because
//!   <reason>`, Checkmk's own text ([`Decision::refusal`]).
//! * Stored proxy passwords are read from `var/check_mk/stored_passwords` (`id:password`
//!   lines).
//! * Not built yet: Windows MSI, Solaris and AIX packages, `agent_info.json`, the
//!   `agent_config:bakery_packages` rule (tgz is always gzip level 6).

#![warn(missing_docs)]

mod bake;
mod decision;
mod error;
mod gzip;
mod matching;
mod model;
mod package;
mod plan;
mod site;

use std::path::{Path, PathBuf};

pub use agent_sign::PackageSignature;
pub use bake::{
    AGENTS_DIR, BakeEvent, BakeLock, BakeOptions, BakeReport, JobState, JobStatus, LOG_FILE,
    Layout, PlatformReport, SIGNATURES_SUFFIX, SIGNING_LOG, STATE_DIR, SignWith,
    apply_bake_revision, bake, default_site_id, read_plan, sign, site_cmk_version,
};
#[cfg(feature = "fault-injection")]
pub use bake::{FaultHook, JobHook};
pub use decision::{Decision, DeploymentSettings, GLOBALLY_DISABLED, HostSelection};
pub use error::{Error, Result};
pub use matching::{
    Condition, HostRegex, LabelOp, MatchObject, NameEntry, TagCondition, label_groups_match,
    merge_dicts,
};
pub use model::{
    CFG_HEADER, Format, MAX_INTERVAL, Password, Proxy, Registration, ServerData, UpdaterConfig,
    Usage,
};
pub use package::{
    AgentFiles, CONFDIR, DeflateCache, PACKAGE_MTIME, PACKAGE_NAME, POSTINST, PackageMeta, Payload,
    PayloadFile, Platform, agent_hash, build as build_package, build_with_cache,
};
pub use plan::{
    HOST_GROUPS_RULESET, Plan, TargetKind, TargetPlan, UPDATER_RULESET, VANILLA, generic_object,
    generic_target_name, quote_plus,
};
pub use site::{Folder, GLOBAL_MK, Host, Rule, SiteConfig, WATO_DIR, Warning, host_name_problem};

/// A host's current package on one platform, as the deployment server serves it.
#[derive(Debug, Clone)]
pub struct HostPackage {
    /// The reference name (the host name).
    pub target: String,
    /// The agent hash (`TargetHash`).
    pub aghash: String,
    /// The package file.
    pub path: PathBuf,
    /// Its signatures (`Signatures`); empty when unsigned.
    pub signatures: Vec<PackageSignature>,
}

/// The package baked for `host` on `platform`, from `references/<host>`. The host name is
/// validated first (no `/`, `.`, `..`, NUL).
pub fn host_package(root: &Path, host: &str, platform: Platform) -> Result<Option<HostPackage>> {
    if let Some(reason) = host_name_problem(host) {
        return Err(Error::HostName {
            path: PathBuf::from(host),
            line: 0,
            name: host.to_string(),
            reason,
        });
    }
    let layout = Layout::new(root);
    let Some(aghash) = layout.reference(platform, host) else {
        return Ok(None);
    };
    let path = layout.package_path(platform, &aghash);
    if !path.is_file() {
        return Ok(None);
    }
    let signatures = layout.signatures(platform, &aghash)?;
    Ok(Some(HostPackage {
        target: host.to_string(),
        aghash,
        path,
        signatures,
    }))
}
