//! `omd update`: the checks in Checkmk's order, the lock, recovery, the
//! plan, the transaction, the phase scripts and the MKP step.
//!
//! The checks and messages follow site-update.md §6, in its order: the site
//! exists and is stopped; the site's lock (refused at once while another
//! process holds it); recovery of an interrupted update; the site's version
//! (`Site already has version X.`); the target version (`-V`, the default
//! version, or, when that is the site's version, the other installed
//! versions: one is taken, a downgrade after a confirmation where someone
//! can answer, several are offered to [`UpdateResolver::choose_version`]);
//! version compatibility (`force` overrides); the confirmation; editions
//! (`managed` to anything else is refused, any other change is a question).
//! Then the update log is opened, the whole update is planned (every
//! question answered by the resolver before anything is written), the plan
//! is applied as one transaction reporting each status line as its path is
//! applied, the `update-pre-hooks` scripts run right before the commit
//! point (a failure rolls back), the extension packages are fitted to the
//! new version (problems there never roll back), the `post-update` scripts
//! run and `Finished update.` ends it.
//!
//! **Interruption.** The [`Cancel`] token is checked between the
//! operations: before the commit point the update is rolled back and
//! `The update was rolled back successfully.` is reported
//! ([`Error::Interrupted`]); after it the update is completed and a line
//! says so ([`Error::InterruptedCompleted`]). The outcome never depends on
//! the receiver of the events: every line goes to `var/log/update.log`
//! first.

use std::path::{Path, PathBuf};

use omd_versions::{Edition, OmdRoot, OmdVersion, UpdateCheckError, VersionOrder, check_update};
use serde::Serialize;
use site_merge::{
    Answer, ApplyObserver, ApplyOptions, Conflict, JOURNAL_DIR, MergeMethod, Plan, Policy,
    Recovery, Skeleton, Update, recover,
};

use crate::error::{Error, Result, refuse};
use crate::events::{Cancel, Event, Events};
use crate::log::Output;
use crate::packages::{PackagesReport, update_packages};
use crate::scripts::{self, Failed};
use crate::skel::{
    edition_macro, edition_of, edition_title, installed_skeleton, root_macro, with_edition,
};
use crate::state;

/// A yes/no question of the update flow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Confirmation {
    /// `You are going to update the site SITE from version FROM to version
    /// TO. ...` (Checkmk's text), buttons `Update!`/`Abort`, default yes.
    Update {
        /// The question's text.
        text: String,
    },
    /// `You are updating from X Edition to Y Edition. Is this intended?`,
    /// default no.
    Edition {
        /// The question's text.
        text: String,
    },
    /// The only candidate target version is older than the site's version.
    Downgrade {
        /// The question's text.
        text: String,
    },
}

impl Confirmation {
    /// The question's text.
    pub fn text(&self) -> &str {
        match self {
            Confirmation::Update { text }
            | Confirmation::Edition { text }
            | Confirmation::Downgrade { text } => text,
        }
    }
}

/// Answers the questions of an update: the file conflicts (as
/// [`site_merge::Resolver`]) and, when it can ask someone, the
/// confirmations and the choice of the target version. Two
/// implementations: [`PolicyResolver`] (a fixed policy, asks nobody) and
/// the interactive menu of `omd` (a terminal).
pub trait UpdateResolver {
    /// Answers a conflict.
    fn conflict(&mut self, conflict: &Conflict) -> Answer;
    /// Whether someone can be asked ([`UpdateResolver::confirm`] and
    /// [`UpdateResolver::choose_version`] are only called then).
    fn can_ask(&self) -> bool;
    /// Whether [`UpdateResolver::conflict`] answers the conflicts itself
    /// (the `ask` policy needs it); by default, when it can ask someone.
    fn answers_conflicts(&self) -> bool {
        self.can_ask()
    }
    /// A yes/no question; `Ok(false)` (or an error) aborts the update.
    fn confirm(&mut self, question: &Confirmation) -> Result<bool, String> {
        let _ = question;
        Ok(false)
    }
    /// Chooses the target version among `candidates` (newest first);
    /// `Ok(None)` cancels the update (`Aborted.`).
    fn choose_version(
        &mut self,
        site: &str,
        from: &str,
        candidates: &[String],
    ) -> Result<Option<String>, String> {
        let _ = (site, from, candidates);
        Ok(None)
    }
    /// The update log was opened at `path` (an interactive resolver appends
    /// its menus and the answers to it).
    fn log_opened(&mut self, path: &Path) {
        let _ = path;
    }
    /// The error that ended the questions, if any (a failing terminal).
    fn take_error(&mut self) -> Option<String> {
        None
    }
}

/// A resolver answering every conflict by a [`Policy`] and asking nobody.
#[derive(Debug, Clone, Copy)]
pub struct PolicyResolver(pub Policy);

impl UpdateResolver for PolicyResolver {
    fn conflict(&mut self, conflict: &Conflict) -> Answer {
        site_merge::Resolver::resolve(&mut self.0, conflict)
    }
    fn can_ask(&self) -> bool {
        false
    }
}

/// Adapts an [`UpdateResolver`] to the planner's [`site_merge::Resolver`].
struct Conflicts<'r>(&'r mut dyn UpdateResolver);

impl site_merge::Resolver for Conflicts<'_> {
    fn resolve(&mut self, conflict: &Conflict) -> Answer {
        self.0.conflict(conflict)
    }
}

/// What to update, and how.
#[derive(Debug, Clone)]
pub struct UpdateRequest {
    /// The site's name.
    pub site: String,
    /// The target version (`-V`); `None`: the default version.
    pub version: Option<String>,
    /// How conflicts are resolved (`Ask` needs a resolver that can ask).
    pub policy: Policy,
    /// How files changed on both sides are merged (default: Checkmk's
    /// `diff -u | patch --merge`).
    pub merge: MergeMethod,
    /// Plan and report only; change nothing (not even the update log).
    pub dry_run: bool,
    /// `-f`: skip the confirmation, override the version and edition checks.
    pub force: bool,
    /// Do not ask whether to update.
    pub confirm_version: bool,
    /// Answer the edition question with yes.
    pub confirm_edition: bool,
    /// Stops the update (rolled back before the commit point, completed after).
    pub cancel: Cancel,
}

impl UpdateRequest {
    /// An update of `site` to the default version with `policy`.
    pub fn new(site: impl Into<String>, policy: Policy) -> Self {
        Self {
            site: site.into(),
            version: None,
            policy,
            merge: MergeMethod::default(),
            dry_run: false,
            force: false,
            confirm_version: false,
            confirm_edition: false,
            cancel: Cancel::new(),
        }
    }
}

/// What an update did (or, dry run, would do): the `--json` document of
/// `omd update` (schema 1): the plan (`schema`, `site`, `from_version`,
/// `to_version`, `entries`) plus the fields below.
#[derive(Debug, Serialize)]
pub struct UpdateOutcome {
    /// The plan.
    #[serde(flatten)]
    pub plan: Plan,
    /// The conflict mode.
    pub policy: Policy,
    /// True for a dry run.
    pub dry_run: bool,
    /// What the recovery of an interrupted update did (`null` in a dry run).
    pub recovery: Option<Recovery>,
    /// Number of paths the update writes.
    pub changes: usize,
    /// Number of questions (answered or open).
    pub questions: usize,
    /// Number of open questions (dry run with `ask` or `abort`).
    pub unresolved: usize,
    /// `planned` (dry run), `aborted` (dry run with `abort` and questions)
    /// or `finished`.
    pub result: &'static str,
    /// The extension-package step (`null` when the site has no MKP store).
    pub packages: Option<PackagesReport>,
    /// A `post-update` script that failed (the update stays done).
    pub post_update_failed: Option<String>,
}

/// The exit code of an update that finished (or, dry run, would finish)
/// but whose extension-package step reported problems.
pub const EXIT_PACKAGES: u8 = 3;

impl UpdateOutcome {
    /// `omd update`'s exit code: 1 for a dry run that `abort` would stop
    /// or a failed `post-update` script, 3 for package problems, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.result == "aborted" || self.post_update_failed.is_some() {
            1
        } else if self
            .packages
            .as_ref()
            .is_some_and(PackagesReport::has_problems)
        {
            EXIT_PACKAGES
        } else {
            0
        }
    }
}

/// Runs an update of `request.site` below `root`, asking `resolver`,
/// reporting to `events`.
pub fn update(
    root: &OmdRoot,
    request: &UpdateRequest,
    resolver: &mut dyn UpdateResolver,
    events: &mut dyn Events,
) -> Result<UpdateOutcome> {
    let site = request.site.as_str();
    root.require_site(site)?;
    let home = root.site_dir(site);
    if state::is_running(&home)? {
        refuse!("Please completely stop '{site}' before updating it.");
    }

    // The lock (a dry run changes nothing: it only checks for a holder).
    let _lock = if request.dry_run {
        if let Some(holder) = mkp_format::SiteLock::holder(&home) {
            let pid = holder.pid.map_or_else(|| "?".to_owned(), |p| p.to_string());
            refuse!(
                "The site is locked by another process (PID {pid}, {}). Try again when it has finished.",
                holder.command
            );
        }
        None
    } else {
        Some(state::lock_site(&home)?)
    };

    // Recover an interrupted update first (a dry run changes nothing, so it refuses instead).
    let mut early = Vec::new();
    let mut recovery = None;
    let leftovers = site_merge::leftovers(&home)?;
    if request.dry_run {
        if leftovers.journal {
            refuse!(
                "{} holds the journal of an interrupted update. A dry run changes nothing and cannot recover it; run 'omd update' without --dry-run, which recovers first.",
                home.join(JOURNAL_DIR).display()
            );
        }
        if leftovers.done {
            early.push(format!(
                "{} is left from an earlier update (its journal, not deleted); the update removes it.",
                home.join(site_merge::DONE_DIR).display()
            ));
        }
    } else {
        if leftovers.done && !leftovers.journal {
            early.push(format!(
                "Removed {}, left from an earlier update.",
                home.join(site_merge::DONE_DIR).display()
            ));
        }
        let r = recover(&home)?;
        if let Some(message) = recovery_message(&r) {
            early.push(message);
        }
        recovery = Some(r);
    }

    let Some(from) = root.site_version(site)? else {
        refuse!("Failed to determine site version");
    };
    if request.version.as_deref() == Some(from.as_str()) {
        refuse!("Site already has version {from}.");
    }
    let mut notes = Vec::new();
    let to = target_version(root, request, &from, resolver, &mut notes)?;
    if request.policy == Policy::Ask && !request.dry_run && !resolver.answers_conflicts() {
        refuse!(
            "--conflict=ask asks on the terminal, but stdin is not a terminal. Choose how conflicts are resolved with --conflict=install, --conflict=keepold or --conflict=abort (see them first with --dry-run)."
        );
    }
    check_versions(&from, &to, request.force, &mut notes)?;

    if resolver.can_ask() && !request.force && !request.confirm_version && !request.dry_run {
        let text = format!(
            "You are going to update the site {site} from version {from} to version {to}. This will include updating all of your configuration files and merging changes in the default files with changes made by you. In case of conflicts your help will be needed."
        );
        if !resolver
            .confirm(&Confirmation::Update { text })
            .map_err(Error::Ask)?
        {
            refuse!("Aborted.");
        }
    }
    check_editions(&from, &to, request, resolver, &mut notes)?;

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

    let mut out = if request.dry_run {
        Output::without_log(events)
    } else {
        Output::with_log(events, &home, site, &from, &to)?
    };
    if let Some(path) = out.log_path() {
        resolver.log_opened(path);
    }
    for line in &early {
        out.line(line)?;
    }
    for note in &notes {
        out.line(note)?;
    }

    let plan = match make_plan(&update, request, resolver) {
        Ok(plan) => plan,
        Err(Error::Site(site_merge::Error::Aborted { path })) => {
            if request.policy == Policy::Abort {
                out.line(&format!(
                    " ! Conflict at {path}: --conflict=abort stops the update here."
                ))?;
            }
            out.error("Update aborted.");
            refuse!("Update aborted.");
        }
        Err(e) => {
            out.error(&e.to_string());
            return Err(e);
        }
    };
    out.event(&Event::Planned {
        paths: plan.entries.len(),
        changes: plan.changes(),
    });

    let questions = plan.conflicts().len();
    let unresolved = plan.unresolved();
    let aborts = request.dry_run && request.policy == Policy::Abort && questions > 0;

    let mut post_update_failed = None;
    let packages;
    if request.dry_run {
        for (i, _) in plan.entries.iter().enumerate() {
            print_entry(&plan, i, &mut out)?;
        }
        print_questions(&plan, &mut out)?;
        packages = update_packages(&home, &to, true, &mut out)?;
        out.line("")?;
        out.line(&format!(
            "Dry run: {} of {} paths would change, {questions} questions ({unresolved} open). Nothing was changed.",
            plan.changes(),
            plan.entries.len(),
        ))?;
        if aborts {
            out.line(
                "With --conflict=abort the update would stop at the first question: Update aborted.",
            )?;
        }
    } else {
        let version_dir = root.versions_dir().join(&to);
        apply(
            &update,
            &plan,
            request,
            &version_dir,
            &home,
            (&from, &to),
            &mut out,
        )?;
        out.event(&Event::Committed);
        // The update is committed: the package step can only warn.
        out.event(&Event::Packages);
        packages = update_packages(&home, &to, false, &mut out)?;
        if let Some(failed) = scripts::run_phase(
            &version_dir,
            &home,
            site,
            scripts::POST_UPDATE,
            &from,
            &to,
            &mut out,
        )? {
            out.line(&format!(
                " ! The {} script \"{}\" failed; the update to {to} is done (not rolled back).",
                scripts::POST_UPDATE,
                failed.script
            ))?;
            post_update_failed = Some(failed.script);
        }
        if request.cancel.is_cancelled() {
            let e = Error::InterruptedCompleted { to: to.clone() };
            out.line(&e.to_string())?;
            return Err(e);
        }
        out.line("Finished update.")?;
        out.line("")?;
        out.event(&Event::Finished);
    }

    Ok(UpdateOutcome {
        policy: request.policy,
        dry_run: request.dry_run,
        recovery,
        changes: plan.changes(),
        questions,
        unresolved,
        result: match (request.dry_run, aborts) {
            (false, _) => "finished",
            (true, false) => "planned",
            (true, true) => "aborted",
        },
        packages,
        post_update_failed,
        plan,
    })
}

/// Plans the update: a dry run lists every question (`ask` and `abort`
/// leave them open), otherwise the resolver answers.
fn make_plan(
    update: &Update,
    request: &UpdateRequest,
    resolver: &mut dyn UpdateResolver,
) -> Result<Plan> {
    let merger = request.merge;
    let planned = if request.dry_run {
        let mut policy = match request.policy {
            Policy::Ask | Policy::Abort => Policy::Ask,
            other => other,
        };
        update.plan(&merger, &mut policy)
    } else {
        update.plan(&merger, &mut Conflicts(resolver))
    };
    if let Some(e) = resolver.take_error() {
        return Err(Error::Ask(e));
    }
    Ok(planned?)
}

/// Applies the plan, reporting status lines as their paths are applied,
/// running the `update-pre-hooks` scripts right before the commit point.
fn apply(
    update: &Update,
    plan: &Plan,
    request: &UpdateRequest,
    version_dir: &Path,
    home: &Path,
    (from, to): (&str, &str),
    out: &mut Output<'_>,
) -> Result<()> {
    let rolled_back = |out: &mut Output<'_>| -> Result<()> {
        out.line("")?;
        out.line("The update was rolled back successfully.")
    };
    if request.cancel.is_cancelled() {
        // Nothing was changed yet.
        rolled_back(out)?;
        return Err(Error::Interrupted {
            from: from.to_owned(),
        });
    }
    let mut observer = Applier {
        plan,
        out: &mut *out,
        printed: 0,
        cancel: &request.cancel,
        failure: None,
        hook: None,
        version_dir: version_dir.to_path_buf(),
        home: home.to_path_buf(),
        site: &request.site,
        from,
        to,
    };
    let result = update.apply_observed(plan, &ApplyOptions::new(), &mut observer);
    let Applier { failure, hook, .. } = observer;
    match result {
        Ok(_) => {
            if let Some(e) = failure {
                // The log could not be written while applying: the update is done.
                return Err(e);
            }
            Ok(())
        }
        Err(e @ site_merge::Error::RolledBack { .. }) => {
            out.error(&e.to_string());
            rolled_back(out)?;
            if let Some(failed) = hook {
                return Err(Error::Script {
                    phase: scripts::PRE_HOOKS.to_owned(),
                    script: failed.script,
                    rolled_back: true,
                });
            }
            if is_interrupted(&e) {
                return Err(Error::Interrupted {
                    from: from.to_owned(),
                });
            }
            Err(e.into())
        }
        Err(e) => {
            out.error(&e.to_string());
            Err(e.into())
        }
    }
}

/// Whether a rolled-back update was stopped by the cancellation token.
fn is_interrupted(e: &site_merge::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::Interrupted
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Watches the executor: status lines and progress as entries are applied,
/// cancellation, the pre-update hooks.
struct Applier<'a, 'o> {
    plan: &'a Plan,
    out: &'a mut Output<'o>,
    /// Entries whose lines were reported.
    printed: usize,
    cancel: &'a Cancel,
    /// The first error of reporting (the log could not be written).
    failure: Option<Error>,
    /// The pre-update hook that failed.
    hook: Option<Failed>,
    /// The target version's directory (its `lib/omd/scripts`).
    version_dir: PathBuf,
    home: PathBuf,
    site: &'a str,
    from: &'a str,
    to: &'a str,
}

impl ApplyObserver for Applier<'_, '_> {
    fn applied(&mut self, entry: usize, total: usize) {
        while self.printed <= entry && self.printed < self.plan.entries.len() {
            if let Err(e) = print_entry(self.plan, self.printed, self.out)
                && self.failure.is_none()
            {
                self.failure = Some(e);
            }
            self.printed += 1;
        }
        if let Some(e) = self.plan.entries.get(entry) {
            self.out.event(&Event::Applying {
                done: entry + 1,
                total,
                path: &e.path,
            });
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    fn before_commit(&mut self) -> std::result::Result<(), String> {
        match scripts::run_phase(
            &self.version_dir,
            &self.home,
            self.site,
            scripts::PRE_HOOKS,
            self.from,
            self.to,
            self.out,
        ) {
            Ok(None) => Ok(()),
            Ok(Some(failed)) => {
                let reason = format!(
                    "the {} script \"{}\" failed",
                    scripts::PRE_HOOKS,
                    failed.script
                );
                self.hook = Some(failed);
                Err(reason)
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The lines of entry `i`: a decided question whose status line does not
/// name the path (`Restored your version.`, as Checkmk prints them below
/// its menu) or that has no status line at all (the menu's `k`, `e`) is
/// preceded by a line naming the question and the answer, e.g. `Conflicts
/// in etc/x! -> restore`; then the status line and the permission line.
fn print_entry(plan: &Plan, i: usize, out: &mut Output<'_>) -> Result<()> {
    let Some(e) = plan.entries.get(i) else {
        return Ok(());
    };
    if let Some(q) = &e.conflict
        && let Some(answer) = q.answer.as_deref()
        && e.status.as_ref().is_none_or(|s| !s.contains(&e.path))
    {
        out.line(&format!("{} -> {answer}", q.title))?;
    }
    let permission = e.permission.as_ref().and_then(|p| p.status.as_ref());
    for line in [e.status.as_ref(), permission].into_iter().flatten() {
        out.status(line)?;
    }
    Ok(())
}

/// The questions of a dry run, answered or open.
fn print_questions(plan: &Plan, out: &mut Output<'_>) -> Result<()> {
    let questions = plan.conflicts();
    if !questions.is_empty() {
        out.line("")?;
        out.line("Questions:")?;
    }
    for (path, q) in &questions {
        let answer = q.answer.as_deref().unwrap_or("open");
        out.line(&format!(" {} [{answer}]", q.title.trim_end_matches('!')))?;
        if q.answer.is_none() {
            for line in q.text.lines() {
                out.line(&format!("   {line}"))?;
            }
            let choices: Vec<String> = q
                .choices
                .iter()
                .map(|c| format!("{} {}: {}", c.key, c.name, c.description))
                .collect();
            out.line(&format!("   {path}: {}", choices.join(" | ")))?;
        }
    }
    Ok(())
}

/// What to tell about a recovery; `None` when there was nothing to recover.
fn recovery_message(r: &Recovery) -> Option<String> {
    match r {
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
        _ => None,
    }
}

/// Whether `to` is an older version than `from` (both OMD version names).
fn is_downgrade(from: &str, to: &str) -> bool {
    match (from.parse::<OmdVersion>(), to.parse::<OmdVersion>()) {
        (Ok(f), Ok(t)) => t.version() < f.version(),
        _ => false,
    }
}

/// `-V VERSION` (must be installed) or the default version; when the
/// default is the site's version, the other installed versions (newest
/// first, as Checkmk sorts them): one is taken (a downgrade after a
/// confirmation where someone can answer), several are offered to the
/// resolver.
fn target_version(
    root: &OmdRoot,
    request: &UpdateRequest,
    from: &str,
    resolver: &mut dyn UpdateResolver,
    notes: &mut Vec<String>,
) -> Result<String> {
    if let Some(v) = &request.version {
        if !root.version_exists(v)? {
            refuse!("Version '{v}' is not installed.");
        }
        return Ok(v.clone());
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
    let site = request.site.as_str();
    match others.len() {
        0 => refuse!("There is no other OMD version to update to."),
        1 => {
            let to = others.remove(0);
            if is_downgrade(from, &to) {
                let text = format!(
                    "The site {site} has version {from}; the only other installed version, {to}, is older. Do you really want to downgrade the site to {to}?"
                );
                if resolver.can_ask() && !request.force && !request.confirm_version {
                    if !resolver
                        .confirm(&Confirmation::Downgrade { text })
                        .map_err(Error::Ask)?
                    {
                        refuse!("Aborted.");
                    }
                } else {
                    notes.push(format!(
                        " ! Downgrading from {from} to {to}: the only other installed version."
                    ));
                }
            }
            Ok(to)
        }
        _ if resolver.can_ask() => match resolver
            .choose_version(site, from, &others)
            .map_err(Error::Ask)?
        {
            Some(v) if others.contains(&v) => Ok(v),
            Some(v) => refuse!("Version '{v}' is not installed."),
            None => refuse!("Aborted."),
        },
        _ => refuse!(
            "The default version is the site's version {from}. Choose the version to update to with -V VERSION: {}",
            others.join(", ")
        ),
    }
}

/// Version compatibility (§6 step 6): refused with Checkmk's text unless `force`.
fn check_versions(from: &str, to: &str, force: bool, notes: &mut Vec<String>) -> Result<()> {
    let (Ok(f), Ok(t)) = (from.parse::<OmdVersion>(), to.parse::<OmdVersion>()) else {
        // Names that are not OMD version names (test setups): nothing to check.
        return Ok(());
    };
    let reason = match check_update(f.version(), t.version()) {
        Ok(()) => return Ok(()),
        Err(UpdateCheckError::Incompatible(i)) => {
            if !force {
                let mut text = i.omd_update_message(from, to);
                while text.ends_with('\n') {
                    text.pop();
                }
                return Err(Error::Refused(text));
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
/// change is a question (default no) unless `force` or `confirm_edition`.
fn check_editions(
    from: &str,
    to: &str,
    request: &UpdateRequest,
    resolver: &mut dyn UpdateResolver,
    notes: &mut Vec<String>,
) -> Result<()> {
    let (Some(fe), Some(te)) = (edition_of(from), edition_of(to)) else {
        return Ok(());
    };
    if fe == te || request.force {
        return Ok(());
    }
    if fe == Edition::Cme {
        refuse!(
            "ERROR: Updating from {} to {} is not possible. Aborted.",
            edition_macro(from).unwrap_or_default(),
            edition_macro(to).unwrap_or_default()
        );
    }
    if request.confirm_edition {
        return Ok(());
    }
    let question = format!(
        "You are updating from {} to {}. Is this intended?",
        edition_title(from),
        edition_title(to)
    );
    if request.dry_run {
        notes.push(format!(
            " ! {question} (the update asks this; answer it beforehand with --confirm-edition)"
        ));
        return Ok(());
    }
    if resolver.can_ask() {
        if resolver
            .confirm(&Confirmation::Edition { text: question })
            .map_err(Error::Ask)?
        {
            return Ok(());
        }
        refuse!("Aborted.");
    }
    refuse!(
        "{question}\nNobody can answer this question, as stdin is not a terminal: confirm the edition change with --confirm-edition (or -f)."
    )
}
