//! `omd`: manage OMD versions and sites (versions, version, setversion, sites).
//!
//! A thin layer over the `omd-versions` crate: parse the command line, call
//! the library, print.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use omd_versions::{OmdRoot, RegistryError, SitesListing, VersionOrder, VersionsListing};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a valid request with a negative answer: no such site, the site has no
     version, no default version is set, the given version does not exist or
     is already the default
  2  usage error, invalid site name, or an operational error (I/O)";

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
    /// old one). Unlike upstream, VERSION is required (no interactive menu),
    /// no root check is done and Debian's update-alternatives are not used.
    Setversion {
        /// An installed version, as `omd versions` lists it.
        version: String,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Sort {
    /// Checkmk's version order.
    Checkmk,
    /// Plain string order, as upstream `omd versions`.
    String,
}

/// A negative answer that is not a registry error.
#[derive(Debug)]
struct Negative(String);

impl std::fmt::Display for Negative {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Negative {}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "{e:#}");
            if is_negative(&e) {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

fn is_negative(e: &anyhow::Error) -> bool {
    e.downcast_ref::<RegistryError>()
        .is_some_and(RegistryError::is_negative_answer)
        || e.downcast_ref::<Negative>().is_some()
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let root = OmdRoot::new(&cli.root);
    let out = match &cli.command {
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
                Some(site) => root
                    .site_version(site)?
                    .ok_or_else(|| RegistryError::NoSiteVersion(site.clone()))?,
                None => root.default_version()?.ok_or_else(|| {
                    Negative(format!(
                        "No default version is set ({} does not exist)",
                        root.versions_dir().join("default").display()
                    ))
                })?,
            };
            omd_versions::version_line(&version, *bare)
        }
        Command::Setversion { version } => {
            root.set_default_version(version)?;
            String::new()
        }
        Command::Sites { bare, json } => {
            let listing = SitesListing::read(&root)?;
            if *json {
                json_document(&listing)?
            } else {
                let tty = io::stdout().is_terminal();
                let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
                listing.to_text(*bare, tty, color)
            }
        }
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    Ok(())
}

fn json_document(value: &impl serde::Serialize) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("cannot render JSON")?;
    text.push('\n');
    Ok(text)
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
