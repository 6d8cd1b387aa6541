//! `omd [-f] [-V VERSION] update [--conflict=MODE] [--dry-run] [--json] SITE`.
//!
//! The checks and messages follow site-update.md §6, in its order:
//! conflict mode; the site must be stopped; recovery of an interrupted
//! update (our journal, see below); the site's version; the target version
//! (`-V` or the default version); version compatibility (`-f` overrides);
//! confirmation (on a terminal, unless `-f`/`--confirm-version`); editions
//! (`managed` to anything else is refused, any other change is a question
//! that `-f`/`--confirm-edition` answers); then the update log
//! `var/log/update.log` is opened, the whole update is planned (every
//! question answered by the policy or the menu before anything is written),
//! the status lines are printed, the plan is applied as one transaction,
//! the extension packages are fitted to the new version (module
//! `packages`: like `mkp disable-outdated` and `mkp update-active`, when
//! the site has an MKP store; problems there are ` ! ` warnings and exit
//! code 3, never a rollback) and `Finished update.` is printed.
//!
//! Deliberate differences: the target is the default version (this program
//! is not an installed version); no tmpfs, hooks, pre-flight
//! `cmk-update-config` or scripts, except its package part (disable
//! outdated MKPs, update the active ones), which runs after the switch and
//! only warns (exit code 3) instead of failing the update; an interrupted
//! update is recovered first (rolled back, or finished when it had already
//! switched the `version` link; the package step is not repeated then:
//! run `mkp update-active`); log times are UTC.

use std::io::{self, IsTerminal};

use anyhow::{Context as _, anyhow};
use omd_versions::{Edition, OmdRoot, OmdVersion, UpdateCheckError, VersionOrder, check_update};
use serde::Serialize;
use site_merge::{
    ApplyOptions, Error, JOURNAL_DIR, Plan, Policy, Recovery, Skeleton, Update, recover,
};

use crate::menu::{MenuResolver, TtyConsole, confirm};
use crate::output::{Negative, UpdateLog, print, refuse, stdout_color};
use crate::packages::{PackagesReport, update_packages};
use crate::skel::{
    edition_macro, edition_of, edition_title, installed_skeleton, root_macro, with_edition,
};
use crate::state;

/// The command-line options of `omd update`.
#[derive(Debug, Clone)]
pub(crate) struct UpdateOptions<'a> {
    pub(crate) site: &'a str,
    pub(crate) conflict: &'a str,
    pub(crate) merge: site_merge::MergeMethod,
    pub(crate) dry_run: bool,
    pub(crate) json: bool,
    pub(crate) force: bool,
    pub(crate) version: Option<&'a str>,
    pub(crate) confirm_version: bool,
    pub(crate) confirm_edition: bool,
}

/// The JSON document of `--json` (schema 1): the plan (`schema`, `site`,
/// `from_version`, `to_version`, `entries` with `path`, `row`, `old`, `new`,
/// `user`, `outcome`, `status`, `conflict`, `permission`) and what was done.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    /// The conflict mode.
    policy: Policy,
    /// True for `--dry-run`.
    dry_run: bool,
    /// What the recovery of an interrupted update did (`null` in a dry run).
    recovery: Option<&'a Recovery>,
    /// Number of paths the update writes.
    changes: usize,
    /// Number of questions (answered or open).
    questions: usize,
    /// Number of open questions (dry run with `ask` or `abort`).
    unresolved: usize,
    /// `planned` (dry run), `aborted` (dry run with `--conflict=abort` and
    /// questions) or `finished`.
    result: &'static str,
    /// The extension-package step (`null` when the site has no MKP store):
    /// `site_version`, `dry_run`, `disabled`, `installed`, `uninstalled`,
    /// `refused` (each a list of `{name, version[, reason]}`), `changes`,
    /// `error`, `result` (`done`, `planned`, `problems`, `failed`).
    packages: Option<&'a PackagesReport>,
}

/// The exit code of an update that finished (or, dry run, would finish)
/// but whose extension-package step reported problems.
pub(crate) const EXIT_PACKAGES: u8 = 3;

/// Runs `omd update`; returns the exit code.
pub(crate) fn update(root: &OmdRoot, o: &UpdateOptions<'_>) -> anyhow::Result<u8> {
    let policy: Policy = o
        .conflict
        .parse()
        .map_err(|e: site_merge::PolicyParseError| Negative::new(e.to_string()))?;
    root.require_site(o.site)?;
    let site = o.site;
    let home = root.site_dir(site);
    if state::is_running(&home)? {
        refuse!("Please completely stop '{site}' before updating it.");
    }
    let interactive = io::stdin().is_terminal();
    if policy == Policy::Ask && !o.dry_run {
        if o.json {
            refuse!(
                "--json cannot be combined with the interactive --conflict=ask. Choose --conflict=install, --conflict=keepold or --conflict=abort (or add --dry-run)."
            );
        }
        if !interactive {
            refuse!(
                "--conflict=ask asks on the terminal, but stdin is not a terminal. Choose how conflicts are resolved with --conflict=install, --conflict=keepold or --conflict=abort (see them first with --dry-run)."
            );
        }
    }

    // Recover an interrupted update first (a dry run changes nothing, so it refuses instead).
    let mut logged_early = Vec::new();
    let mut recovery = None;
    if o.dry_run {
        if std::fs::symlink_metadata(home.join(JOURNAL_DIR)).is_ok() {
            refuse!(
                "{} holds the journal of an interrupted update. A dry run changes nothing and cannot recover it; run 'omd update' without --dry-run, which recovers first.",
                home.join(JOURNAL_DIR).display()
            );
        }
    } else {
        let r = recover(&home).context("cannot recover the interrupted update")?;
        if let Some(message) = recovery_message(&r) {
            if o.json {
                eprintln!("{message}");
            } else {
                print(&format!("{message}\n"))?;
            }
            logged_early.push(message);
        }
        recovery = Some(r);
    }

    let Some(from) = root.site_version(site)? else {
        refuse!("Failed to determine site version");
    };
    if o.version == Some(from.as_str()) {
        refuse!("Site already has version {from}.");
    }
    let to = target_version(root, &from, o.version)?;
    let mut notes = Vec::new();
    check_versions(&from, &to, o.force, &mut notes)?;

    if interactive && !o.force && !o.confirm_version && !o.dry_run && !o.json {
        let text = format!(
            "You are going to update the site {site} from version {from} to version {to}. This will include updating all of your configuration files and merging changes in the default files with changes made by you. In case of conflicts your help will be needed."
        );
        let answer = confirm(
            &mut TtyConsole::default(),
            "Update site",
            &text,
            "Update!",
            "Abort",
            true,
        )
        .context("cannot ask on the terminal")?;
        if answer != Some(true) {
            refuse!("Aborted.");
        }
    }
    check_editions(&from, &to, o, interactive, &mut notes)?;

    let versions = root.versions_dir();
    let from_skel = with_edition(Skeleton::for_site(&home, &versions, &from), &from);
    if !from_skel.skel_dir().is_dir() {
        refuse!(
            "Cannot find the skeleton of version {from}: {} is missing (the version is not installed and the site has no .version_meta copy of it).",
            from_skel.skel_dir().display()
        );
    }
    let to_skel = installed_skeleton(root, &to)?;
    let update = Update::builder(&home, site, from_skel, to_skel)
        .root(root_macro(&home)?)
        .build()?;

    let mut log = if o.dry_run {
        UpdateLog::stdout_only(!o.json)
    } else {
        UpdateLog::open(&home, site, &from, &to, !o.json)?
    };
    for line in &logged_early {
        log.append(&format!("{line}\n"))?;
    }
    for note in &notes {
        log.line(note)?;
    }

    let merger = o.merge;
    let planned = if o.dry_run {
        // A dry run lists every question: `ask` and `abort` leave them open.
        let mut resolver = match policy {
            Policy::Ask | Policy::Abort => Policy::Ask,
            other => other,
        };
        update.plan(&merger, &mut resolver)
    } else if policy == Policy::Ask {
        let console = TtyConsole::logging_to(log.file_clone());
        let mut menu = MenuResolver::new(console, &home, stdout_color());
        let planned = update.plan(&merger, &mut menu);
        if let Some(e) = menu.take_error() {
            log.error(&format!("cannot ask on the terminal: {e}"));
            return Err(anyhow!(e).context("cannot ask on the terminal"));
        }
        planned
    } else {
        let mut resolver = policy;
        update.plan(&merger, &mut resolver)
    };
    let plan = match planned {
        Ok(plan) => plan,
        Err(Error::Aborted { path }) => {
            if policy == Policy::Abort {
                log.line(&format!(
                    " ! Conflict at {path}: --conflict=abort stops the update here."
                ))?;
            }
            log.error("Update aborted.");
            refuse!("Update aborted.");
        }
        Err(e) => {
            log.error(&e.to_string());
            return Err(e.into());
        }
    };

    print_plan(&plan, &mut log)?;
    let questions = plan.conflicts();
    let unresolved = plan.unresolved();
    let aborts = o.dry_run && policy == Policy::Abort && !questions.is_empty();

    let packages;
    if o.dry_run {
        if !questions.is_empty() {
            log.line("")?;
            log.line("Questions:")?;
        }
        for (path, q) in &questions {
            let answer = q.answer.as_deref().unwrap_or("open");
            log.line(&format!(" {} [{answer}]", q.title.trim_end_matches('!')))?;
            if q.answer.is_none() {
                for line in q.text.lines() {
                    log.line(&format!("   {line}"))?;
                }
                let choices: Vec<String> = q
                    .choices
                    .iter()
                    .map(|c| format!("{} {}: {}", c.key, c.name, c.description))
                    .collect();
                log.line(&format!("   {path}: {}", choices.join(" | ")))?;
            }
        }
        packages = update_packages(&home, &to, true, &mut log)?;
        log.line("")?;
        log.line(&format!(
            "Dry run: {} of {} paths would change, {} questions ({unresolved} open). Nothing was changed.",
            plan.changes(),
            plan.entries.len(),
            questions.len()
        ))?;
        if aborts {
            log.line("With --conflict=abort the update would stop at the first question: Update aborted.")?;
        }
    } else {
        match update.apply(&plan, &ApplyOptions::new()) {
            Ok(_) => {}
            Err(e @ Error::RolledBack { .. }) => {
                log.error(&e.to_string());
                log.line("")?;
                log.line("The update was rolled back successfully.")?;
                return Err(e.into());
            }
            Err(e) => {
                log.error(&e.to_string());
                return Err(e.into());
            }
        }
        // The update is committed: the package step can only warn.
        packages = update_packages(&home, &to, false, &mut log)?;
        log.line("Finished update.")?;
        log.line("")?;
    }

    if o.json {
        let report = Report {
            plan: &plan,
            policy,
            dry_run: o.dry_run,
            recovery: recovery.as_ref(),
            changes: plan.changes(),
            questions: questions.len(),
            unresolved,
            result: match (o.dry_run, aborts) {
                (false, _) => "finished",
                (true, false) => "planned",
                (true, true) => "aborted",
            },
            packages: packages.as_ref(),
        };
        print(&crate::output::json_document(&report)?)?;
    }
    Ok(if aborts {
        1
    } else if packages.as_ref().is_some_and(PackagesReport::has_problems) {
        EXIT_PACKAGES
    } else {
        0
    })
}

/// The status lines in walk order. A decided question whose status line
/// does not name the path (`Restored your version.`, `Installed default file
/// of version V.`, as Checkmk prints them below its menu) or that has no
/// status line at all (the menu's `k` keeps the conflict markers, `e` the
/// edited file) is preceded by a line naming the question and the answer,
/// e.g. `Conflicts in etc/x! -> restore`. The same for policies and the
/// menu, so every decision in the output and the log names its path.
fn print_plan(plan: &Plan, log: &mut UpdateLog) -> anyhow::Result<()> {
    for e in &plan.entries {
        if let Some(q) = &e.conflict
            && let Some(answer) = q.answer.as_deref()
            && e.status.as_ref().is_none_or(|s| !s.contains(&e.path))
        {
            log.line(&format!("{} -> {answer}", q.title))?;
        }
        let permission = e.permission.as_ref().and_then(|p| p.status.as_ref());
        for line in [e.status.as_ref(), permission].into_iter().flatten() {
            log.status(line)?;
        }
    }
    Ok(())
}

/// What to tell about a recovery; `None` when there was nothing to recover.
fn recovery_message(r: &Recovery) -> Option<String> {
    match r {
        Recovery::Clean => None,
        Recovery::Abandoned => Some(
            "Removed the journal of an update that was interrupted before it changed anything."
                .to_owned(),
        ),
        Recovery::Finished { to } => Some(format!(
            "An interrupted update to version {to} had already completed; removed its journal."
        )),
        Recovery::RolledBack { from, to } => Some(format!(
            "An interrupted update from {from} to {to} was rolled back; the site is at version {from} as before."
        )),
    }
}

/// `-V VERSION` (must be installed) or the default version; when the
/// default is the site's version, the only other installed version.
fn target_version(root: &OmdRoot, from: &str, requested: Option<&str>) -> anyhow::Result<String> {
    if let Some(v) = requested {
        if !root.version_exists(v)? {
            refuse!("Version '{v}' is not installed.");
        }
        return Ok(v.to_owned());
    }
    if let Some(default) = root.default_version()?.filter(|d| d != from) {
        return Ok(default);
    }
    let mut others: Vec<String> = root
        .versions(VersionOrder::String)?
        .into_iter()
        .filter(|v| v != from)
        .collect();
    others.reverse();
    match others.len() {
        0 => refuse!("There is no other OMD version to update to."),
        1 => Ok(others.remove(0)),
        _ => refuse!(
            "The default version is the site's version {from}. Choose the version to update to with -V VERSION: {}",
            others.join(", ")
        ),
    }
}

/// Version compatibility (§6 step 6): refused with Checkmk's text unless `-f`.
fn check_versions(
    from: &str,
    to: &str,
    force: bool,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let (Ok(f), Ok(t)) = (from.parse::<OmdVersion>(), to.parse::<OmdVersion>()) else {
        // Names that are not OMD version names (test setups): nothing to check.
        return Ok(());
    };
    let reason = match check_update(f.version(), t.version()) {
        Ok(()) => return Ok(()),
        Err(UpdateCheckError::Incompatible(i)) => {
            if !force {
                return Err(Negative::new(i.omd_update_message(from, to)).into());
            }
            i.to_string()
        }
        Err(other) => {
            if !force {
                refuse!(
                    "ERROR: {other}\n\nIf you are really sure about what you are doing, you can still do the update with '-f'."
                );
            }
            other.to_string()
        }
    };
    notes.push(format!(
        " ! Updating from {from} to {to} although it is not supported (-f): {reason}"
    ));
    Ok(())
}

/// Editions (§6 step 9): `managed` to another edition is refused; any other
/// change is a question (default no) unless `-f` or `--confirm-edition`.
fn check_editions(
    from: &str,
    to: &str,
    o: &UpdateOptions<'_>,
    interactive: bool,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let (Some(fe), Some(te)) = (edition_of(from), edition_of(to)) else {
        return Ok(());
    };
    if fe == te || o.force {
        return Ok(());
    }
    if fe == Edition::Cme {
        refuse!(
            "ERROR: Updating from {} to {} is not possible. Aborted.",
            edition_macro(from).unwrap_or_default(),
            edition_macro(to).unwrap_or_default()
        );
    }
    if o.confirm_edition {
        return Ok(());
    }
    let question = format!(
        "You are updating from {} to {}. Is this intended?",
        edition_title(from),
        edition_title(to)
    );
    if o.dry_run {
        notes.push(format!(
            " ! {question} (the update asks this; answer it beforehand with --confirm-edition)"
        ));
        return Ok(());
    }
    if interactive && !o.json {
        let answer = confirm(
            &mut TtyConsole::default(),
            "Edition change",
            &question,
            "Yes",
            "No",
            false,
        )
        .context("cannot ask on the terminal")?;
        if answer == Some(true) {
            return Ok(());
        }
        refuse!("Aborted.");
    }
    refuse!(
        "{question}\nNobody can answer this question, as stdin is not a terminal: confirm the edition change with --confirm-edition (or -f)."
    )
}
