//! `mkp`: inspect, build and manage Checkmk MKP extension packages.
//!
//! A thin command line over the `mkp-format` crate. The commands and their output follow
//! Checkmk's own `mkp` tool (standalone mode); see `mkp --help`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mkp_format::PackageName;

mod standalone;

const AFTER_HELP: &str = "\
Exit codes:
  0  success (also when the output pipe is closed early)
  1  the command failed: unreadable or invalid package, manifest or configuration
     (one line on stderr naming the file and the problem)
  2  usage error (unknown command, invalid argument)

Standalone mode: part directories come from ./mkp-tool.toml (see `mkp path-config-template`,
or pass --config).";

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

    /// The standalone path configuration
    #[arg(long, global = true, value_name = "FILE", default_value = mkp_format::PATH_CONFIG_FILE)]
    config: PathBuf,

    #[command(subcommand)]
    command: Command,
}

/// The commands. The site commands (list, add, enable, ...) will join these.
#[derive(Debug, Subcommand)]
enum Command {
    /// Show information about local files
    Find(FindArgs),
    /// Show manifest of an MKP file
    Inspect(InspectArgs),
    /// Create a template of a package manifest
    ///
    /// Prints a manifest (in the `info` format) listing every part with no files. Save it,
    /// edit it, then build the package with `mkp package`.
    Template(TemplateArgs),
    /// Create an .mkp file from the provided manifest.
    ///
    /// You can use the `template` command to create a manifest template. The version must be
    /// a semantic version (1.2.3, 1.2.3-rc1+build). Files are read from the part
    /// directories of the path configuration.
    Package(PackageArgs),
    /// Write a template for the path config to stdout
    PathConfigTemplate,
}

#[derive(Debug, Args)]
struct FindArgs {
    /// Include packaged files in report
    #[arg(short, long)]
    all: bool,
    /// format output as json
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// format output as json
    #[arg(long)]
    json: bool,
    /// Path to an MKP file
    file: PathBuf,
}

#[derive(Debug, Args)]
struct TemplateArgs {
    /// The packages name
    #[arg(value_parser = parse_name)]
    name: PackageName,
}

#[derive(Debug, Args)]
struct PackageArgs {
    /// The path to an package manifest file
    manifest_file: PathBuf,
    /// Where to write <name>-<version>.mkp (default: the current directory)
    target_dir: Option<PathBuf>,
    /// Use this timestamp (seconds since 1970) for every archive member, for reproducible
    /// packages [env: SOURCE_DATE_EPOCH]
    #[arg(long, value_name = "SECONDS")]
    mtime: Option<u64>,
}

fn parse_name(s: &str) -> Result<PackageName, String> {
    PackageName::new(s).map_err(|e| e.to_string())
}

/// Output sink that treats a closed pipe as success.
pub(crate) struct Out;

impl Out {
    pub(crate) fn write(text: &str) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        match stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => Ok(other?),
        }
    }
}

/// Logging on stderr like Checkmk's: warnings always, `-v` info, `-vv` debug.
pub(crate) struct Log {
    verbose: u8,
}

impl Log {
    pub(crate) fn info(&self, msg: &str) {
        if self.verbose >= 1 {
            eprintln!("INFO: {msg}");
        }
    }

    pub(crate) fn warn(&self, msg: &str) {
        if self.verbose >= 1 {
            eprintln!("WARNING: {msg}");
        } else {
            eprintln!("{msg}");
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let log = Log {
        verbose: cli.verbose,
    };
    match cli.command {
        Command::Inspect(a) => standalone::inspect(&a.file, a.json, &log),
        Command::Template(a) => standalone::template(&a.name),
        Command::Package(a) => standalone::package(
            &cli.config,
            &a.manifest_file,
            a.target_dir.as_deref(),
            a.mtime,
            &log,
        ),
        Command::PathConfigTemplate => standalone::path_config_template(),
        Command::Find(a) => standalone::find(&cli.config, a.all, a.json),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let debug = cli.debug;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if debug {
                eprintln!("{e:?}");
            } else {
                eprintln!("{e:#}");
            }
            ExitCode::from(1)
        }
    }
}
