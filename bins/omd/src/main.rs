//! `omd`: manage OMD versions and sites (versions, version, setversion,
//! sites, create, rm, update, start, stop, status).
//!
//! A thin layer over `site-lifecycle` (create, rm, start, stop, status,
//! update) and `omd-versions` (versions, sites): parse the command line,
//! draw the menus, print. `update` holds the update's terminal side (menu,
//! progress line, signals); shared printing helpers are in `output`.

mod menu;
mod output;
mod update;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use std::io::BufRead as _;

use anyhow::Context as _;
use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use omd_versions::{OmdRoot, RegistryError, SitesListing, VersionOrder, VersionsListing};
use site_lifecycle::{create, state};

use output::{Negative, json_document, print};

const EXIT_CODES: &str = "\
Exit codes:
  0  success; `update`: finished (or, with --dry-run, planned); `status`: the
     site is running
  1  a valid request with a negative answer or a refusal: no such site, the
     site has no version, no default version is set, the given version does
     not exist or is already the default, or `setversion`'s menu was
     cancelled (or needed a terminal); `create`: the site exists;
     `rm`: not confirmed, or the site is running; `status`: the site is
     stopped; `update`: every refusal of its checks (site running, version
     not installed or already the site's, incompatible versions without -f,
     edition change not confirmed, invalid --conflict, --conflict=ask without
     a terminal) and `Update aborted.` (a conflict under --conflict=abort, or
     `a` in the menu; nothing was changed); `update --dry-run
     --conflict=abort` when the update would meet a question; `update`,
     `start`, `stop`, `rm`: another process holds the site's lock (its PID
     and command are named); `start`: the site has the journal of an
     interrupted update (the command that recovers it is named); `update`:
     a failing update-pre-hooks script (rolled back) or post-update script
  2  usage error, invalid site name, or an operational error (I/O); for
     `update` also an update that failed while being applied (it was rolled
     back: the site is as before)
  3  `update`: the site was updated (it is on the new version, nothing was
     rolled back), but the extension-package step reported a problem: a
     package that no longer fits was not disabled because its installed
     files were changed (it stays as it was), or the package store failed;
     see the ` ! ` lines. With --dry-run: that step would report one
  129, 130, 143  `update` stopped by SIGHUP, SIGINT or SIGTERM (128 + the
     signal's number): the step in progress was finished, then the update
     was rolled back (`The update was rolled back successfully.`) or, after
     the switch of the version link, completed (a line says so)";

/// Manage OMD versions and sites.
///
/// Reads and changes the registry of installed Checkmk versions and sites
/// below an OMD root directory (`/omd` by default): `versions/<name>` per
/// installed version, `versions/default` (a symlink to the default version),
/// `sites/<site>` per site with its `version` link, and `apache/<site>.conf`
/// per enabled site.
#[derive(Debug, Parser)]
#[command(name = "omd", version, after_help = EXIT_CODES, disable_version_flag = true)]
struct Cli {
    /// The OMD root directory.
    #[arg(
        long,
        global = true,
        env = "OMD_ROOT_DIR",
        default_value = omd_versions::DEFAULT_ROOT,
        value_name = "DIR"
    )]
    root: PathBuf,

    /// Print the version of this program.
    #[arg(long, action = ArgAction::Version)]
    version: Option<bool>,

    /// Force (as Checkmk places it, before the command; `update` and `rm`
    /// take it after the command too): `update` skips the confirmation and
    /// overrides the version compatibility and edition checks; `rm`
    /// removes without asking (also a running site). Refused with other
    /// commands.
    #[arg(short, long)]
    force: bool,

    /// Use VERSION (before the command, as Checkmk places it; `create` and
    /// `update` take it after the command too): the version a site is
    /// created with (`create`) or updated to (`update`), instead of the
    /// default version. Refused with other commands.
    #[arg(short = 'V', value_name = "VERSION")]
    use_version: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the installed versions in Checkmk order, marking the default one.
    ///
    /// One version per line, the default one suffixed ` (default)`.
    /// Versions are sorted in true Checkmk order (2.3.0p4 before 2.3.0p14,
    /// betas before the release, dailies after the patch releases); upstream
    /// `omd versions` sorts them as plain strings, which `--sort string`
    /// reproduces byte for byte.
    Versions {
        /// Print the names only, without ` (default)`.
        #[arg(short, long)]
        bare: bool,
        /// Print one JSON document (schema 1): {"schema", "root", "order",
        /// "default", "versions": [{"name", "default", "checkmk_version",
        /// "edition", "demo"}]}.
        #[arg(long, conflicts_with = "bare")]
        json: bool,
        /// How to sort: `checkmk` (Checkmk's version order) or `string`
        /// (upstream's plain string order).
        #[arg(long, value_enum, default_value_t = Sort::Checkmk)]
        sort: Sort,
    },
    /// Show the default version, or the version of SITE.
    ///
    /// Without SITE this prints the default version (the target of
    /// `versions/default`): unlike upstream, this program is not itself an
    /// installed OMD version, so the default is the meaningful answer.
    /// With SITE it prints the version the site's `version` link names.
    Version {
        /// Print the version only.
        #[arg(short, long)]
        bare: bool,
        /// The site whose version to show.
        site: Option<String>,
    },
    /// Make VERSION the default version.
    ///
    /// Replaces `versions/default` atomically (a new link renamed over the
    /// old one). Without VERSION, on a terminal, Checkmk's "Choose new
    /// default" menu lists the other installed versions; cancelling it
    /// prints `Aborted.` (exit 1), and without a terminal VERSION is
    /// required (exit 1). Unlike upstream, no root check is done and
    /// Debian's update-alternatives are not used.
    Setversion {
        /// An installed version, as `omd versions` lists it.
        version: Option<String>,
    },
    /// List the sites with their versions and state.
    ///
    /// One line per site: name, version (`(none)` for an empty site dir) and
    /// comments (`empty site dir`, `default version`, `disabled`), formatted
    /// exactly as upstream, including the trailing space. On a terminal a
    /// header line comes first and `disabled` is bold red (unless NO_COLOR
    /// is set).
    Sites {
        /// Print the site names only.
        #[arg(short, long)]
        bare: bool,
        /// Print one JSON document (schema 1): {"schema", "root", "default",
        /// "sites": [{"name", "version", "empty", "default_version",
        /// "disabled"}]}.
        #[arg(long, conflicts_with = "bare")]
        json: bool,
    },
    /// Create SITE from the skeleton of the default version (or -V VERSION).
    ///
    /// The site directory `sites/SITE` gets every file, directory and
    /// symlink of `versions/VERSION/skel` with `###SITE###`, `###ROOT###` and
    /// `###EDITION###` substituted, the modes of `share/omd/skel.permissions`
    /// (else those of the skeleton), the link `version ->
    /// ../../versions/VERSION` and `.version_meta/`; `apache/SITE.conf` marks
    /// it enabled. The tree is built aside and renamed into place.
    Create {
        /// Use VERSION instead of the default version.
        #[arg(short = 'V', value_name = "VERSION")]
        use_version: Option<String>,
        /// The new site's name (a letter or _, then letters, digits or _; at most 16).
        site: String,
    },
    /// Remove SITE with all its files (asks for `yes` unless -f).
    ///
    /// When stdin is not a terminal nothing is asked: -f is required.
    Rm {
        /// Remove without asking (also a running site).
        #[arg(short, long)]
        force: bool,
        /// The site to remove.
        site: String,
    },
    /// Update SITE to the default version (or -V VERSION).
    ///
    /// Checks, in Checkmk's order: the site is stopped, the site's lock
    /// (shared with mkp: refused at once while another process holds it),
    /// its version, the target version (when the default version is the
    /// site's own, the other installed versions: one is taken, after a
    /// confirmation on a terminal if it is older; several are offered in a
    /// selection list on a terminal), version compatibility (-f overrides),
    /// a confirmation on a terminal (-f or --confirm-version skip it), an
    /// edition change (-f or --confirm-edition answer it). Then every path
    /// of both skeletons is decided (Checkmk's decision table; conflicts
    /// answered by --conflict) before anything is written, and the plan is
    /// applied as one transaction, each status line printed as its path is
    /// applied (on a terminal with a progress line): on any error the site
    /// is restored exactly, and an update interrupted by a crash is rolled
    /// back (or finished) by the next `omd update`. SIGINT, SIGTERM and
    /// SIGHUP roll the update back (or, after the switch of the version
    /// link, complete it). Everything printed is appended to
    /// `var/log/update.log` in the site first, so a closed output pipe
    /// changes nothing.
    ///
    /// Phase scripts: the executables in `lib/omd/scripts/update-pre-hooks/`
    /// of the target version (the site's `lib` after the switch) run right
    /// before the version link is switched (a failure rolls the update
    /// back), those in `lib/omd/scripts/post-update/` at
    /// the end (a failure is exit code 1, the update stays); each is shown
    /// as `Executing PHASE script "NAME"...OK`, its output prefixed `-| `.
    ///
    /// Extension packages: after the switch, if the site has an MKP store
    /// (any of `var/check_mk/packages`, `var/check_mk/packages_local`,
    /// `local/share/check_mk/enabled_packages` exists), the packages are
    /// judged against the new version as `mkp disable-outdated` and then
    /// `mkp update-active` do: packages whose `version.usable_until`
    /// excludes it are disabled (files removed, enabled mark removed),
    /// other installed packages that do not fit are uninstalled (mark
    /// kept), and per name the highest enabled version that fits is
    /// installed. Lines: `[NAME VERSION]: disabled (REASON)`, `[NAME
    /// VERSION]: enabled|disabled`. A package whose installed files were
    /// edited is not removed (the store refuses without --force): the
    /// update stays done, the package stays as it was, a ` ! ` line names
    /// the files and the exit code is 3 (-f does not force the store: save
    /// your changes, then run `mkp disable-outdated --force` and `mkp
    /// update-active --force`); any failure of this step is a ` ! ` line
    /// and exit code 3 too, and never rolls the update back. With
    /// --dry-run the same is computed and the changes are listed, nothing
    /// is changed.
    ///
    /// Ends with `Finished update.`.
    Update {
        /// How to resolve conflicts: `ask` (interactive menu, needs a
        /// terminal), `install` (take the new default), `keepold` (keep
        /// yours), `abort` (stop at the first conflict; nothing is changed).
        #[arg(long, value_name = "MODE", default_value = "ask")]
        conflict: String,
        /// How files changed by you and by the new version are merged:
        /// `patch` (Checkmk's own `diff -u | patch --merge`, the default) or
        /// `git` (the stricter git-exact three-way merge: a conflict wherever
        /// both sides touch neighbouring lines).
        #[arg(long, value_name = "METHOD", default_value = "patch")]
        merge: site_merge::MergeMethod,
        /// Print the plan and every question, change nothing (not even the
        /// update log). With `ask` or `abort` the questions stay open.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan as one JSON document (schema 1) instead of the
        /// status lines: the plan (`schema`, `site`, `from_version`,
        /// `to_version`, `entries`) plus `policy`, `dry_run`, `recovery`,
        /// `changes`, `questions`, `unresolved`, `result` and `packages`
        /// (the extension-package step, `null` without an MKP store:
        /// `site_version`, `disabled`, `installed`, `uninstalled`,
        /// `refused`, `changes`, `error`, `result`).
        #[arg(long)]
        json: bool,
        /// Do not ask whether to update (as -f does, without its overrides).
        #[arg(long)]
        confirm_version: bool,
        /// Answer the edition-change question with yes (needed when stdin is
        /// not a terminal; -f implies it).
        #[arg(long)]
        confirm_edition: bool,
        /// Skip the confirmation, override the version compatibility and
        /// edition checks (as `omd -f update`).
        #[arg(short, long)]
        force: bool,
        /// Update to VERSION (as `omd -V VERSION update`).
        #[arg(short = 'V', value_name = "VERSION")]
        use_version: Option<String>,
        /// The site to update.
        site: String,
    },
    /// Show the operator's changes against the site's version skeleton.
    ///
    /// `omd diff [SITE] [PATH]`: every path of the skeleton (below PATH) is
    /// compared with the site after macro substitution: ` * Changed` (content
    /// or link target), ` ! Type changed`, ` ! Removed`, ` * Permissions
    /// DEFAULT -> SITE` and ` * Added` (an entry of a skeleton directory the
    /// skeleton does not have; not below var/ and tmp/). Useful before an
    /// update. SITE defaults to $OMD_SITE; a single argument that is not a
    /// site is taken as PATH. Exit code 0 (also with differences).
    Diff {
        /// Print one JSON document (schema 1): {"schema", "site", "version",
        /// "path", "differences": [{"path", "kind", "default", "site"}]}.
        #[arg(long)]
        json: bool,
        /// SITE and/or PATH.
        #[arg(num_args = 0..=2, value_name = "SITE PATH")]
        args: Vec<String>,
    },
    /// Mark SITE as running (this toolkit runs no daemons).
    ///
    /// The state is the file `tmp/run/omd-state` in the site (`started` or
    /// `stopped`; missing = stopped). `update` refuses a running site.
    Start {
        /// The site.
        site: String,
    },
    /// Mark SITE as stopped.
    Stop {
        /// The site.
        site: String,
    },
    /// Show whether SITE is running (`Overall state:  running|stopped`);
    /// exit code 0 when running, 1 when stopped.
    Status {
        /// The site.
        site: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Sort {
    /// Checkmk's version order.
    Checkmk,
    /// Plain string order, as upstream `omd versions`.
    String,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "{}", error_text(&e));
            if is_negative(&e) {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

/// The error and its causes, each named once: a cause whose text the
/// message already contains (`cannot read x: Permission denied (os error
/// 13)` and its source `Permission denied (os error 13)`) is left out.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

fn is_negative(e: &anyhow::Error) -> bool {
    e.downcast_ref::<RegistryError>()
        .is_some_and(RegistryError::is_negative_answer)
        || e.downcast_ref::<Negative>().is_some()
        || e.downcast_ref::<site_lifecycle::Error>()
            .is_some_and(site_lifecycle::Error::is_negative_answer)
}

/// Refuses a global `-f`/`-V` given to a command it does not apply to.
fn check_global_options(cli: &Cli) -> anyhow::Result<()> {
    let (force_ok, version_ok) = match &cli.command {
        Command::Update { .. } => (true, true),
        Command::Rm { .. } => (true, false),
        Command::Create { .. } => (false, true),
        _ => (false, false),
    };
    if cli.force && !force_ok {
        return Err(Usage("-f/--force applies to 'update' and 'rm' only".to_owned()).into());
    }
    if cli.use_version.is_some() && !version_ok {
        return Err(Usage("-V VERSION applies to 'create' and 'update' only".to_owned()).into());
    }
    Ok(())
}

/// A usage error found after parsing (exit code 2).
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Prints the warning about an interrupted update of `site` on stderr, if any.
fn warn_pending(root: &OmdRoot, site: &str) {
    if let Ok(condition) = state::site_condition(&root.site_dir(site))
        && let Some(warning) = condition.warning(site)
    {
        let _ = writeln!(io::stderr(), "WARNING: {warning}");
    }
}

/// The site and path of `omd diff [SITE] [PATH]`.
fn diff_args(root: &OmdRoot, args: &[String]) -> anyhow::Result<(String, Option<String>)> {
    let from_env = std::env::var("OMD_SITE").ok().filter(|s| !s.is_empty());
    match args {
        [site, path] => Ok((site.clone(), Some(path.clone()))),
        [one] if root.site_dir(one).is_dir() => Ok((one.clone(), None)),
        [path] => match from_env {
            Some(site) => Ok((site, Some(path.clone()))),
            None => output::refuse!("No such site: {path}"),
        },
        _ => match from_env {
            Some(site) => Ok((site, None)),
            None => Err(Usage("omd diff needs SITE (or $OMD_SITE)".to_owned()).into()),
        },
    }
}

/// `omd create`.
fn create_site(root: &OmdRoot, site: &str, version: Option<&str>) -> anyhow::Result<u8> {
    let version = create::create(root, site, version)?;
    print(&format!(
        "Created new site {site} with version {version}.\n\n  The site can be started with omd start {site}.\n\n"
    ))?;
    Ok(0)
}

/// `omd rm`: asks for confirmation (type `yes`) unless `-f`; when stdin is
/// not a terminal it never asks and requires `-f`.
fn rm_site(root: &OmdRoot, site: &str, force: bool) -> anyhow::Result<u8> {
    create::check_rm(root, site, force)?;
    if !force {
        if !io::stdin().is_terminal() {
            output::refuse!(
                "omd rm asks for a confirmation, but stdin is not a terminal. Use 'omd -f rm {site}' to remove the site without asking."
            );
        }
        let mut stdout = io::stdout().lock();
        write!(
            stdout,
            "PLEASE NOTE: This action removes all configuration files\n             and variable data of the site {site} ({}).\n\nDo you really want to remove it? (yes/NO): ",
            root.site_dir(site).display()
        )
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
        let mut answer = String::new();
        io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if answer.trim() != "yes" {
            output::refuse!("Aborted.");
        }
    }
    create::rm(root, site, force)?;
    print(&format!("Removed site {site}.\n"))?;
    Ok(0)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `omd setversion` without a version: Checkmk's menu of the installed
/// versions other than the default, on a terminal only.
fn choose_default_version(root: &OmdRoot) -> anyhow::Result<String> {
    if !io::stdin().is_terminal() {
        output::refuse!(
            "omd setversion asks which version to make the default, but stdin is not a terminal. Name the version: 'omd setversion VERSION'."
        );
    }
    let default = root.default_version()?;
    let choices: Vec<String> = root
        .versions(VersionOrder::Checkmk)?
        .into_iter()
        .filter(|v| Some(v) != default.as_ref())
        .collect();
    if choices.is_empty() {
        output::refuse!("There is no other version to make the default.");
    }
    if choices.len() > menu::MAX_CHOICES {
        output::refuse!(
            "{} versions to choose from are more than the menu can offer. Name the version: 'omd setversion VERSION'.",
            choices.len()
        );
    }
    let chosen = menu::choose(
        &mut menu::TtyConsole::default(),
        "Choose new default",
        "Please choose the version to make the new default",
        &choices,
        "Make default",
    )
    .context("cannot ask on the terminal")?;
    match chosen {
        Some(i) => Ok(choices[i].clone()),
        None => output::refuse!("Aborted."),
    }
}

fn run(cli: &Cli) -> anyhow::Result<u8> {
    check_global_options(cli)?;
    let root = OmdRoot::new(&cli.root);
    if !cli.root.is_dir() {
        return Err(Usage(format!(
            "The OMD root {} does not exist (or is not a directory); name it with --root DIR or OMD_ROOT_DIR.",
            cli.root.display()
        ))
        .into());
    }
    let out = match &cli.command {
        Command::Create { site, use_version } => {
            let version = use_version.as_deref().or(cli.use_version.as_deref());
            return create_site(&root, site, version);
        }
        Command::Rm { site, force } => return rm_site(&root, site, cli.force || *force),
        Command::Update {
            conflict,
            merge,
            dry_run,
            json,
            confirm_version,
            confirm_edition,
            force,
            use_version,
            site,
        } => {
            let options = update::UpdateOptions {
                site,
                conflict,
                merge: *merge,
                dry_run: *dry_run,
                json: *json,
                force: cli.force || *force,
                version: use_version.as_deref().or(cli.use_version.as_deref()),
                confirm_version: *confirm_version,
                confirm_edition: *confirm_edition,
            };
            return update::update(&root, &options);
        }
        Command::Diff { json, args } => {
            let (site, path) = diff_args(&root, args)?;
            let result = site_lifecycle::diff::diff(&root, &site, path.as_deref())?;
            if *json {
                json_document(&result)?
            } else {
                let mut text = String::new();
                for d in &result.differences {
                    text.push_str(&d.line());
                    text.push('\n');
                }
                text
            }
        }
        Command::Start { site } => {
            let change = state::start(&root, site)?;
            format!("{}\n", change.message(site))
        }
        Command::Stop { site } => {
            let change = state::stop(&root, site)?;
            warn_pending(&root, site);
            format!("{}\n", change.message(site))
        }
        Command::Status { site } => {
            let running = state::status(&root, site)?;
            warn_pending(&root, site);
            let word = if running { "running" } else { "stopped" };
            print(&format!("Overall state:  {word}\n"))?;
            return Ok(if running { 0 } else { 1 });
        }
        Command::Versions { bare, json, sort } => {
            let order = match sort {
                Sort::Checkmk => VersionOrder::Checkmk,
                Sort::String => VersionOrder::String,
            };
            let listing = VersionsListing::read(&root, order)?;
            if *json {
                json_document(&listing)?
            } else {
                listing.to_text(*bare)
            }
        }
        Command::Version { bare, site } => {
            let version = match site {
                Some(site) => {
                    let v = root
                        .site_version(site)?
                        .ok_or_else(|| RegistryError::NoSiteVersion(site.clone()))?;
                    warn_pending(&root, site);
                    v
                }
                None => root.default_version()?.ok_or_else(|| {
                    Negative::new(format!(
                        "No default version is set ({} does not exist)",
                        root.versions_dir().join("default").display()
                    ))
                })?,
            };
            omd_versions::version_line(&version, *bare)
        }
        Command::Setversion { version } => {
            let version = match version {
                Some(version) => version.clone(),
                None => choose_default_version(&root)?,
            };
            root.set_default_version(&version)?;
            String::new()
        }
        Command::Sites { bare, json } => {
            let listing = SitesListing::read(&root)?;
            for site in root.sites()? {
                warn_pending(&root, &site);
            }
            if *json {
                json_document(&listing)?
            } else {
                let tty = io::stdout().is_terminal();
                let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
                listing.to_text(*bare, tty, color)
            }
        }
    };
    print(&out)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn errors_name_their_cause_once() {
        let io = io::Error::from_raw_os_error(13);
        let text = io.to_string();
        let e = anyhow::Error::new(io).context(format!("cannot read /x: {text}"));
        assert_eq!(error_text(&e), format!("cannot read /x: {text}"));
        let e = anyhow::Error::new(io::Error::from_raw_os_error(2)).context("cannot read /y");
        assert_eq!(
            error_text(&e),
            format!("cannot read /y: {}", io::Error::from_raw_os_error(2))
        );
    }

    #[test]
    fn sort_defaults_to_checkmk_order() {
        let cli = Cli::try_parse_from(["omd", "versions"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Versions {
                sort: Sort::Checkmk,
                ..
            }
        ));
        assert_eq!(cli.root, PathBuf::from(omd_versions::DEFAULT_ROOT));
    }
}
