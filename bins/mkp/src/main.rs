//! `mkp`: inspect, build and manage Checkmk MKP extension packages.
//!
//! A thin command line over the `mkp-format` crate. The commands and their output follow
//! Checkmk's own `mkp` tool, in its two modes: site mode (a site is given) and standalone
//! mode; see `mkp --help`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use mkp_format::{
    Container, ErrorKind, Limits, LocalFile, Manifest, Mkp, PackageName, PackageVersion,
    PathConfig, files_inventory_json, files_inventory_table,
};

mod site;
mod standalone;

const AFTER_HELP: &str = "\
Modes:
  site mode        when a site is given: --site-root DIR, else $OMD_ROOT (as `mkp` on a
                   Checkmk site). Every command is available; the part directories are the
                   site's, and template, find and package work on the site (its unpackaged
                   files, installed packages and package store).
  standalone mode  without a site (as Checkmk's `python -m cmk.mkp_tool`): only inspect,
                   template, find, package and path-config-template; the part directories
                   come from ./mkp-tool.toml (see `mkp path-config-template`, or pass
                   --config). An explicit --config selects standalone mode even when
                   $OMD_ROOT is set. The site commands exit with 2.
  inspect and path-config-template behave the same in both modes.

Site: the site's Checkmk version (for the version checks of enable, update-active and
disable-outdated, and for template) is read from the site's `version` link
(../../versions/2.3.0p12.cre -> 2.3.0p12); --site-version or $MKP_SITE_VERSION overrides it.
Changes are transactional: on any error the site is left as it was, and a change interrupted
by a crash is repaired (rolled back or completed) by the next mkp command. A site that an
interrupted `omd update` left half updated (its journal .site-update is there) is neither
version: the commands that change it are refused (exit 1) with the `omd` command that
recovers it, the reading ones warn on stderr; a leftover .site-update.done~ is reported and
left for omd to remove.
The site root must be an existing directory; nothing is created outside it.

Exit codes (Checkmk's, so that scripts written for Checkmk's mkp keep working):
  0  success (also when the output pipe is closed early)
  1  the command failed or was refused: unreadable or invalid package, manifest or
     configuration, a conflict, a version check, a file system error such as a missing
     permission (one message on stderr; nothing was changed, except that `enable` of a
     package that only fails the version check marks it enabled). Files that cannot be read
     are reported in Checkmk's words: `Cannot read file <path>: [Errno N] <reason>`.
  2  usage error: unknown command, invalid argument, a site command without a site, a site
     root that does not exist or is not a directory, an option of the other mode
With --json, a failed command (exit code 1) also prints one JSON document on stdout:
  {\"schema\": 1, \"error\": \"<message>\", \"exit_code\": 1}";

/// Command line interface for the Checkmk Extension Packages.
#[derive(Debug, Parser)]
#[command(name = "mkp", version, about, long_about = None, after_help = AFTER_HELP)]
#[command(arg_required_else_help = true)]
struct Cli {
    /// Show the full error chain (Checkmk re-raises with a traceback)
    #[arg(short, long, global = true)]
    debug: bool,

    /// Be more verbose (-v: info, -vv: debug), on stderr
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// The site root; selects site mode (default: $OMD_ROOT)
    #[arg(long, global = true, value_name = "DIR", env = "OMD_ROOT")]
    site_root: Option<PathBuf>,

    /// The site's Checkmk version (default: from the site's `version` link)
    #[arg(long, global = true, value_name = "VERSION", env = "MKP_SITE_VERSION")]
    site_version: Option<String>,

    /// The path configuration of standalone mode [default: ./mkp-tool.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

/// The commands: the first five in both modes, the others in site mode only.
#[derive(Debug, Subcommand)]
enum Command {
    /// Show manifest of an MKP file
    Inspect(InspectArgs),
    /// Create a template of a package manifest
    ///
    /// A manifest in the `info` format. Site mode: the site's unpackaged files, with the
    /// site version as required version, written to tmp/check_mk/<name>.manifest.temp in
    /// the site (an existing one is not overwritten); edit it, then build the package with
    /// `mkp package <that file>`. Standalone: every part, no files, printed on stdout.
    /// Files whose names are not valid UTF-8 cannot be listed in a manifest: they are left
    /// out with a warning.
    Template {
        /// The packages name
        #[arg(value_parser = parse_name)]
        name: PackageName,
        /// Site mode: print the manifest on stdout instead of writing the file
        #[arg(long)]
        stdout: bool,
    },
    /// Show information about local files
    ///
    /// Standalone: the files below the part directories of the path configuration. Site
    /// mode: the site's local files and the installed packages they belong to.
    Find {
        /// Include packaged files in report
        #[arg(short, long)]
        all: bool,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Create an .mkp file from the provided manifest.
    ///
    /// You can use the `template` command to create a manifest template. The version must be
    /// a semantic version (1.2.3, 1.2.3-rc1+build). Standalone: reads the files from the
    /// part directories of the path configuration and writes TARGET_DIR/<name>-<version>.mkp.
    /// Site mode: builds the package from the listed files of the site, stores it, marks it
    /// enabled and installs it; conflicts with other packages are checked before anything
    /// is changed.
    Package(PackageArgs),
    /// Write a template for the path config to stdout
    PathConfigTemplate,
    /// Show a table of all known files, including the deployment state
    List(JsonArg),
    /// Show manifest of a stored package
    Show {
        #[command(flatten)]
        json: JsonArg,
        #[command(flatten)]
        id: IdArgs,
    },
    /// Show all manifests
    ShowAll(JsonArg),
    /// Show all files beloning to a package
    Files(IdArgs),
    /// Add an MKP to the collection of managed MKPs
    ///
    /// Prints `<name> <version>`: the arguments for `mkp enable`.
    Add {
        /// Path to an MKP file
        file: PathBuf,
    },
    /// Add an MKP and enable it (`add` then `enable`)
    ///
    /// Checkmk's current tool has no `install` any more (2.2 refused it as deprecated);
    /// here it is the two steps in one. A package already stored with the same bytes is
    /// enabled from there. Prints `<name> <version>`.
    Install {
        /// Skip all version checks
        #[arg(long)]
        force_install: bool,
        /// Path to an MKP file
        file: PathBuf,
    },
    /// Remove a package from the site
    ///
    /// Deletes the stored package. An enabled package must be disabled first; shipped
    /// packages cannot be removed.
    Remove {
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        id: IdArgs,
    },
    /// Remove the package and leave its contained files as unpackaged files behind.
    Release {
        /// The package name
        #[arg(value_parser = parse_name)]
        name: PackageName,
    },
    /// Enable a disabled package
    ///
    /// Installs the package (or updates the installed version of that name) and marks it
    /// enabled. Version checks and every file conflict are checked first; on any problem
    /// nothing is changed, except that a package failing only the version check is marked
    /// enabled (inactive) so that `update-active` can install it later.
    Enable {
        /// Skip all version checks
        #[arg(long)]
        force_install: bool,
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        id: IdArgs,
    },
    /// Disable an enabled package
    ///
    /// Uninstalls it if this version is installed and removes its enabled mark.
    Disable {
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        id: IdArgs,
    },
    /// Disable MKP packages that are declared to be outdated with the new version.
    ///
    /// Uninstalls every installed package whose "usable until" version is not above the site
    /// version and removes its enabled mark. Meant to run during `omd update`.
    DisableOutdated(ChangeArgs),
    /// Disable MKP packages that are not suitable for this version, and enable others.
    ///
    /// Uninstalls installed packages that no longer pass the version and conflict checks
    /// (their enabled marks are kept), then installs, per package name, the highest enabled
    /// version that works.
    UpdateActive {
        #[command(flatten)]
        json: JsonArg,
        #[command(flatten)]
        change: ChangeArgs,
    },
}

impl Command {
    /// Whether `--json` was given: errors are then a JSON document on stdout too.
    fn json(&self) -> bool {
        match self {
            Command::Inspect(InspectArgs { json, .. })
            | Command::Find { json, .. }
            | Command::List(json)
            | Command::Show { json, .. }
            | Command::ShowAll(json)
            | Command::UpdateActive { json, .. } => json.json,
            _ => false,
        }
    }

    /// Whether the command changes the site (in site mode): refused while an interrupted
    /// `omd update` left the site half updated. A dry run counts too: it previews a change
    /// that would be refused.
    fn changes_site(&self) -> bool {
        match self {
            Command::Inspect(_)
            | Command::PathConfigTemplate
            | Command::List(_)
            | Command::Show { .. }
            | Command::ShowAll(_)
            | Command::Files(_)
            | Command::Find { .. }
            // Writes only its manifest below tmp/, which updates never touch.
            | Command::Template { .. } => false,
            Command::Package(_)
            | Command::Add { .. }
            | Command::Install { .. }
            | Command::Remove { .. }
            | Command::Release { .. }
            | Command::Enable { .. }
            | Command::Disable { .. }
            | Command::DisableOutdated(_)
            | Command::UpdateActive { .. } => true,
        }
    }

    /// The command's name on the command line.
    fn name(&self) -> &'static str {
        match self {
            Command::Inspect(_) => "inspect",
            Command::Template { .. } => "template",
            Command::Find { .. } => "find",
            Command::Package(_) => "package",
            Command::PathConfigTemplate => "path-config-template",
            Command::List(_) => "list",
            Command::Show { .. } => "show",
            Command::ShowAll(_) => "show-all",
            Command::Files(_) => "files",
            Command::Add { .. } => "add",
            Command::Install { .. } => "install",
            Command::Remove { .. } => "remove",
            Command::Release { .. } => "release",
            Command::Enable { .. } => "enable",
            Command::Disable { .. } => "disable",
            Command::DisableOutdated(_) => "disable-outdated",
            Command::UpdateActive { .. } => "update-active",
        }
    }
}

#[derive(Debug, Args)]
struct InspectArgs {
    #[command(flatten)]
    json: JsonArg,
    /// Path to an MKP file
    file: PathBuf,
}

#[derive(Debug, Args)]
struct PackageArgs {
    /// The path to an package manifest file
    manifest_file: PathBuf,
    /// Standalone: where to write <name>-<version>.mkp (default: the current directory)
    target_dir: Option<PathBuf>,
    /// Standalone: use this timestamp (seconds since 1970) for every archive member, for
    /// reproducible packages [env: SOURCE_DATE_EPOCH]
    #[arg(long, value_name = "SECONDS")]
    mtime: Option<u64>,
    #[command(flatten)]
    change: ChangeArgs,
}

/// `--json`.
#[derive(Debug, Clone, Copy, Args)]
struct JsonArg {
    /// format output as json
    #[arg(long)]
    json: bool,
}

/// A package name and an optional version.
#[derive(Debug, Clone, Args)]
struct IdArgs {
    /// The package name
    #[arg(value_parser = parse_name)]
    name: PackageName,
    /// The package version (needed when several versions are stored)
    #[arg(value_parser = parse_version)]
    version: Option<PackageVersion>,
}

/// `--dry-run` and `--force` of the site changes.
#[derive(Debug, Clone, Copy, Args)]
struct ChangeArgs {
    /// Site mode: only print what would change
    #[arg(long)]
    dry_run: bool,
    /// Site mode: delete or overwrite installed files even if they were changed since
    /// installation
    #[arg(long)]
    force: bool,
}

fn parse_name(s: &str) -> Result<PackageName, String> {
    PackageName::new(s).map_err(|e| e.to_string())
}

fn parse_version(s: &str) -> Result<PackageVersion, String> {
    PackageVersion::new(s).map_err(|e| e.to_string())
}

/// Writes to stdout; a closed pipe is not an error.
fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Prints a usage error the way clap does and returns exit code 2.
fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    let _ = Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, message)
        .print();
    ExitCode::from(2)
}

/// Checkmk's `Cannot read file <path>: [Errno N] <reason>` (Python's words for an
/// `OSError`, which Checkmk's tool prints; kept for compatibility, for every errno alike).
fn cannot_read(path: &Path, e: &std::io::Error) -> anyhow::Error {
    let reason = match e.raw_os_error() {
        Some(n) => {
            let text = e.to_string();
            let plain = text
                .strip_suffix(&format!(" (os error {n})"))
                .unwrap_or(&text);
            format!("[Errno {n}] {plain}")
        }
        None => e.to_string(),
    };
    anyhow!("Cannot read file {}: {reason}", path.display())
}

/// The error of reading a directory as a file, as Checkmk words it.
fn is_a_directory(path: &Path) -> anyhow::Error {
    anyhow!(
        "Cannot read file {}: [Errno 21] Is a directory",
        path.display()
    )
}

/// Reads a whole file; errors are Checkmk's `Cannot read file <path>: ...`.
fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.is_dir() {
        return Err(is_a_directory(path));
    }
    std::fs::read(path).map_err(|e| cannot_read(path, &e))
}

/// Reads a manifest in the `info` format (a template or an installed manifest).
fn read_manifest_file(path: &Path) -> anyhow::Result<Manifest> {
    let failed = |e: &dyn std::fmt::Display| {
        anyhow!("{}: Failed to read package manifest: {e}", path.display())
    };
    let bytes = std::fs::read(path).map_err(|e| failed(&e))?;
    let text = String::from_utf8(bytes).map_err(|_| failed(&"the file is not UTF-8 text"))?;
    Manifest::from_info(&text).map_err(|e| failed(&e))
}

/// `path-config-template` (both modes).
fn path_config_template() -> anyhow::Result<()> {
    out(&format!("{}\n", PathConfig::template().to_toml()))
}

/// `inspect` (both modes).
fn inspect(file: &Path, json: bool) -> anyhow::Result<()> {
    if file.is_dir() {
        return Err(is_a_directory(file));
    }
    // Mkp::open_with also refuses oversized files before reading them into memory.
    let mkp = Mkp::open_with(file, &Limits::default()).map_err(|e| match e.kind() {
        ErrorKind::Io { source, .. } => cannot_read(file, source),
        _ => e.into(),
    })?;
    if mkp.container() == Container::PlainTar {
        tracing::warn!(
            "note: {} is an uncompressed tar; Checkmk's own tool refuses it (\"not a gzip \
             file\"), so compress it with gzip before uploading it to a site",
            file.display()
        );
    }
    print_manifest(mkp.manifest(), json)
}

/// The `inspect` / `show` output of a manifest.
fn print_manifest(manifest: &Manifest, json: bool) -> anyhow::Result<()> {
    let text = if json {
        manifest.to_field_json()
    } else {
        manifest.to_inspect_text()
    };
    out(&format!("{text}\n"))
}

/// `template` output.
fn print_template(manifest: &Manifest) -> anyhow::Result<()> {
    out(&format!("{}\n", manifest.to_info()))
}

/// Warns about each file whose name is not valid UTF-8: no manifest can list it.
fn warn_unpackable_names(files: &[LocalFile]) {
    for f in files.iter().filter(|f| !f.name_is_utf8) {
        tracing::warn!(
            "{}: the file name is not valid UTF-8 (invalid bytes shown as \\xNN), so no \
             package manifest can list it; rename the file to package it",
            f.file
        );
    }
}

/// `find` output (both modes): only unpackaged files unless `all`.
fn print_inventory(mut files: Vec<LocalFile>, all: bool, json: bool) -> anyhow::Result<()> {
    if !all {
        files.retain(|f| f.package.is_none());
    }
    warn_unpackable_names(&files);
    if json {
        out(&format!("{}\n", files_inventory_json(&files)))
    } else {
        out(&files_inventory_table(&files))
    }
}

/// Log lines like Checkmk's: `message` for warnings by default, `LEVEL: message` with -v.
struct LogFormat {
    verbose: bool,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for LogFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        if self.verbose {
            let level = *event.metadata().level();
            // Python's level names.
            let name = if level == tracing::Level::WARN {
                "WARNING"
            } else {
                level.as_str()
            };
            write!(writer, "{name}: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(LogFormat {
            verbose: verbose > 0,
        })
        .try_init();
}

/// Whether the site root comes from `--site-root` rather than from `$OMD_ROOT`.
fn explicit(matches: &clap::ArgMatches, id: &str) -> bool {
    matches.value_source(id) == Some(ValueSource::CommandLine)
}

fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let site_root = match (&cli.site_root, &cli.config) {
        (Some(_), Some(_)) if explicit(matches, "site_root") => {
            return Ok(usage_error(
                "--config is for standalone mode; it cannot be combined with --site-root",
            ));
        }
        // An explicit path configuration wins over a site found in the environment.
        (Some(_), Some(_)) => None,
        (root, _) => root.clone(),
    };
    match site_root {
        Some(root) => {
            if let Err(e) = mkp_format::Site::check_root(&root) {
                let option = if explicit(matches, "site_root") {
                    "--site-root"
                } else {
                    "$OMD_ROOT"
                };
                return Ok(usage_error(format!("{option}: {e}")));
            }
            site::run(cli.command, &root, cli.site_version.as_deref())
        }
        None => {
            let config = cli
                .config
                .unwrap_or_else(|| PathBuf::from(mkp_format::PATH_CONFIG_FILE));
            standalone::run(cli.command, &config)
        }
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(cli.verbose);
    let debug = cli.debug;
    let json = cli.command.json();
    match run(cli, &matches) {
        Ok(code) => code,
        Err(e) => {
            if json {
                let doc = serde_json::json!({"schema": 1, "error": e.to_string(), "exit_code": 1});
                // A closed stdout must not hide the message on stderr.
                let _ = out(&format!("{doc:#}\n"));
            }
            if debug {
                eprintln!("{e:?}");
            } else {
                eprintln!("{e}");
            }
            ExitCode::from(1)
        }
    }
}
