//! The extension-package (MKP) step of an update: after the `version`
//! link was switched, packages that no longer fit the new version are
//! handled like `mkp disable-outdated` and then `mkp update-active`, as
//! Checkmk's post-update steps do.
//!
//! * **When.** Only if the site has an MKP store ([`Site::has_store`]:
//!   installed manifests, stored local packages or enabled marks). Without one the step is skipped
//!   silently (and `packages` is `null` in the JSON document).
//! * **Which version.** The store is opened with the Checkmk version of the
//!   *target* OMD version (`2.3.0p2.cre` gives `2.3.0p2`), set explicitly,
//!   so a dry run (where the link is not switched) judges the same way.
//! * **disable-outdated.** Every installed package whose
//!   `version.usable_until` excludes the new version is disabled
//!   (uninstalled, enabled mark removed). This is done package by package,
//!   so one refused package does not keep the others installed.
//! * **update-active.** Then installed packages that do not fit are
//!   uninstalled (their marks kept) and, per name, the highest enabled
//!   version that fits is installed.
//! * **Guard.** A package whose installed files were edited since install is
//!   not removed: the store refuses without `--force`. The update is done
//!   anyway; the package stays as it was and a ` ! ` line names the files.
//! * **Failures** never undo the update (it is committed when this runs);
//!   they are reported as ` ! ` lines and make `omd update` exit with 3.
//!
//! The step runs under the update's site lock: the store's own locking
//! sees that this process holds it and does not lock again.

use std::path::Path;

use mkp_format::{ChangeOptions, Manifest, PackageId, Plan, Site, StoreError, UpdateReport};
use omd_versions::{
    OmdVersion, check_mkp_min_required, check_mkp_usable_until, omd_update_version_string,
};
use serde::Serialize;

use crate::error::Result;
use crate::log::Output;

/// The Checkmk version of an OMD version name (`2.3.0p2.cre` -> `2.3.0p2`),
/// as the package store judges it.
pub fn checkmk_version(omd_version: &str) -> String {
    match omd_version.parse::<OmdVersion>() {
        Ok(v) => v.version().to_string(),
        Err(_) => omd_update_version_string(omd_version).to_owned(),
    }
}

/// A package in the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Package {
    name: String,
    version: String,
    /// Why it was disabled or refused (`null` for enabled packages).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl Package {
    fn of(id: &PackageId, reason: Option<String>) -> Self {
        Self {
            name: id.name.to_string(),
            version: id.version.to_string(),
            reason,
        }
    }

    fn label(&self) -> String {
        format!("[{} {}]", self.name, self.version)
    }
}

/// The `packages` object of the `--json` document of `omd update`.
#[derive(Debug, Default, Serialize)]
pub struct PackagesReport {
    /// The Checkmk version the packages were judged against.
    site_version: String,
    /// True for `--dry-run`: nothing was changed.
    dry_run: bool,
    /// Disabled by disable-outdated (`reason`: the version check).
    disabled: Vec<Package>,
    /// Active after update-active (installed, or kept active).
    installed: Vec<Package>,
    /// Uninstalled by update-active (their enabled marks are kept).
    uninstalled: Vec<Package>,
    /// Packages that do not fit but stay as they were, because their
    /// installed files were changed (`reason`: the store's refusal).
    refused: Vec<Package>,
    /// The changes, one `Plan` each (`disable x 1.0.0:` and indented actions).
    changes: Vec<String>,
    /// Why the step failed part-way (`null` if it did not).
    error: Option<String>,
    /// `done`, `planned` (dry run), `problems` (refusals) or `failed`.
    result: &'static str,
}

impl PackagesReport {
    /// Whether the step needs the operator's attention (exit code 3).
    pub fn has_problems(&self) -> bool {
        !self.refused.is_empty() || self.error.is_some()
    }
}

/// Runs the step for the site at `home` updated to `to` (an OMD version
/// name), prints its lines to `log`; `None` when the site has no store.
pub(crate) fn update_packages(
    home: &Path,
    to: &str,
    dry_run: bool,
    log: &mut Output<'_>,
) -> Result<Option<PackagesReport>> {
    if !Site::has_store(home) {
        return Ok(None);
    }
    let mut report = PackagesReport {
        site_version: checkmk_version(to),
        dry_run,
        ..PackagesReport::default()
    };
    if let Err(e) = run(home, &mut report) {
        report.error = Some(e);
    }
    report.result = if report.error.is_some() {
        "failed"
    } else if !report.refused.is_empty() {
        "problems"
    } else if dry_run {
        "planned"
    } else {
        "done"
    };
    print_report(&report, log)?;
    Ok(Some(report))
}

fn run(home: &Path, report: &mut PackagesReport) -> Result<(), String> {
    let dry_run = report.dry_run;
    if let Some(txn) = Site::interrupted_change(home).filter(|_| dry_run) {
        return Err(format!(
            "{} holds an interrupted package change; a dry run does not repair it (the real update, or any mkp command, does)",
            txn.display()
        ));
    }
    let site = Site::open(home)
        .map_err(|e| format!("cannot open the package store: {e}"))?
        .with_version(report.site_version.clone());
    let opts = ChangeOptions::default().dry_run(dry_run);
    let version = report.site_version.clone();

    // disable-outdated, package by package (the library stops at the first refusal).
    let before = site.installed();
    let mut handled: Vec<PackageId> = Vec::new();
    for m in &before {
        let Some(reason) = outdated(&version, m) else {
            continue;
        };
        let id = PackageId::of(m);
        match site.disable(&id, &opts) {
            Ok(plan) => {
                report.changes.push(plan_text(&plan));
                report.disabled.push(Package::of(&id, Some(reason)));
            }
            Err(StoreError::Refused { problems }) => {
                report
                    .refused
                    .push(Package::of(&id, Some(problems.join("; "))));
            }
            Err(e) => return Err(format!("disabling {id} failed: {e}")),
        }
        handled.push(id);
    }

    // update-active.
    let UpdateReport {
        installed,
        uninstalled,
        plans,
    } = site
        .update_active(&opts)
        .map_err(|e| format!("update-active failed: {e}"))?;
    // In a dry run the outdated packages are still installed, so update-active
    // plans to uninstall them again; the real run does not see them any more.
    for plan in &plans {
        let repeated = handled
            .iter()
            .any(|id| plan.what == format!("disable {id}"));
        if !repeated {
            report.changes.push(plan_text(plan));
        }
    }
    report.uninstalled = uninstalled
        .iter()
        .filter(|id| !handled.contains(id))
        .map(|id| Package::of(id, None))
        .collect();

    // update-active only logs the packages it should uninstall but may not
    // (files changed since install): find them and ask the store why.
    let still: Vec<Manifest> = if dry_run { before } else { site.installed() };
    for m in &still {
        let id = PackageId::of(m);
        if handled.contains(&id) || uninstalled.contains(&id) || !unfit(&version, m) {
            continue;
        }
        let reason = match site.disable(&id, &ChangeOptions::default().dry_run(true)) {
            Err(StoreError::Refused { problems }) => problems.join("; "),
            Err(e) => e.to_string(),
            Ok(_) => "update-active left it installed".to_owned(),
        };
        report.refused.push(Package::of(&id, Some(reason)));
    }
    report.installed = installed
        .iter()
        .map(|id| Package::of(id, None))
        .filter(|p| {
            !report
                .refused
                .iter()
                .any(|r| r.name == p.name && r.version == p.version)
        })
        .collect();
    Ok(())
}

/// The reason why `m` is outdated on `site` (its `usable_until`), if it is.
fn outdated(site: &str, m: &Manifest) -> Option<String> {
    let until = m.version_usable_until.as_deref()?;
    check_mkp_usable_until(site, until)
        .err()
        .map(|e| format!("outdated: {e}"))
}

/// Whether `m` fails a version check on `site`.
fn unfit(site: &str, m: &Manifest) -> bool {
    outdated(site, m).is_some() || check_mkp_min_required(site, &m.version_min_required).is_err()
}

fn plan_text(plan: &Plan) -> String {
    plan.to_string().trim_end().to_owned()
}

/// The lines of the step: a header, `[name version]: disabled (reason)` per
/// outdated package, update-active's `[name version]: enabled|disabled`
/// lines, ` ! ` lines for refusals and failures, and in a dry run the
/// changes that would be made.
fn print_report(r: &PackagesReport, log: &mut Output<'_>) -> Result<()> {
    log.line("")?;
    if r.dry_run {
        log.line(&format!(
            "Extension packages (MKPs) for version {} (dry run, nothing is changed):",
            r.site_version
        ))?;
    } else {
        log.line(&format!(
            "Updating extension packages (MKPs) for version {}...",
            r.site_version
        ))?;
    }
    for p in &r.disabled {
        log.line(&format!(
            "{}: disabled ({})",
            p.label(),
            p.reason.as_deref().unwrap_or("outdated")
        ))?;
    }
    for p in &r.installed {
        log.line(&format!("{}: enabled", p.label()))?;
    }
    for p in &r.uninstalled {
        log.line(&format!("{}: disabled", p.label()))?;
    }
    for p in &r.refused {
        log.status(&format!(
            " ! {}: does not fit version {} but was not disabled: {}. The update is done; the package stays as it was. Save your changes, then run 'mkp disable-outdated --force' and 'mkp update-active --force'.",
            p.label(),
            r.site_version,
            p.reason.as_deref().unwrap_or("refused")
        ))?;
    }
    if let Some(e) = &r.error {
        let done = if r.dry_run {
            "Nothing was changed"
        } else {
            "The update is done (not rolled back)"
        };
        log.status(&format!(
            " ! Updating the extension packages failed: {e}. {done}; run 'mkp disable-outdated' and 'mkp update-active' once the cause is fixed."
        ))?;
    }
    if r.disabled.is_empty()
        && r.installed.is_empty()
        && r.uninstalled.is_empty()
        && r.refused.is_empty()
        && r.error.is_none()
    {
        log.line("No packages are enabled.")?;
    }
    if r.dry_run && !r.changes.is_empty() {
        log.line("Changes that would be made:")?;
        for change in &r.changes {
            for line in change.lines() {
                log.line(&format!("  {line}"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_judged_by_the_checkmk_version_of_the_target() {
        assert_eq!(checkmk_version("2.3.0p2.cre"), "2.3.0p2");
        assert_eq!(checkmk_version("2.4.0b1.cee.demo"), "2.4.0b1");
        assert_eq!(checkmk_version("2.3.0-2024.01.01.cee"), "2.3.0-2024.01.01");
        // Not an OMD version name: Checkmk's string rule (drop the last part).
        assert_eq!(checkmk_version("odd.cre"), "odd");
    }
}
