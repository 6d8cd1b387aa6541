//! `cmk-update-agent`: registers this host at the Checkmk deployment server and installs new,
//! signed agent packages. The logic lives in the `agent-updater` crate.

use std::io::{self, BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use agent_sign::VerifyPolicy;
use agent_updater::{
    AgentSignVerifier, ControllerPaths, InstallCommand, Mode, Origin, Paths, ReceiverConnection,
    RegisterOptions, RunOptions, UpdateError, UpdateOutcome, Updater,
};
use agent_wire::Platform;
use anyhow::{Context as _, anyhow};
use clap::{Parser, Subcommand};
use zeroize::Zeroizing;

/// Checkmk agent updater.
///
/// Without a command, runs an update check: asks the deployment server whether a new agent is
/// ready for this host, downloads it only if it carries a valid signature from a trusted key
/// (`signature_keys`), and installs it.
///
/// Plug-in mode (`-u`, or `MK_CONFDIR` set without `MK_AGENT_UPDATER_MANUAL`): runs at most
/// once per interval, otherwise prints the cached output; always prints the
/// `<<<cmk_update_agent_status:sep(0)>>>` section on stdout and exits 0.
///
/// Files: `$MK_CONFDIR/cmk-update-agent.cfg` (default `/etc/check_mk`; written by the Agent
/// Bakery, read only), `$MK_VARDIR/cmk-update-agent.state` (default `/var/lib/check_mk_agent`;
/// written by `register` and every run). Both hold Python literals (`key = value` lines or a
/// dict). Precedence: state < cfg < command line.
///
/// Keys of the cfg file:
///   server, site, protocol    the deployment server (`register` saves them in the state);
///   signature_keys            list of PEM certificates whose signatures are trusted; REQUIRED:
///                             without it every agent is refused ("No signature keys are
///                             configured."), as in Checkmk;
///   certificates              list of PEM CA certificates trusted for HTTPS (else the
///                             system's WebPKI roots, plus `local_certificates` of --trust-cert);
///   interval                  seconds between checks in plug-in mode (default 3600);
///   proxy, use_proxy_env      an explicit proxy dict, or the *_proxy environment variables;
///   ignore_update_url         True: ignore the `update_url` the server hands out.
///
/// Signatures are checked with Checkmk's rules (the log carries "Signature check OK." and
/// friends). With `--metadata-root` the updater also requires signed target metadata
/// (`agent-sign metadata ...`) bound to this host and platform, refuses rollbacks and expired
/// metadata, and keeps the accepted versions in the state file (`rollback_state`).
///
/// Exit codes: 0 success (also "no update needed"); 1 the server, a signature check or the
/// install refused or failed; 2 usage, configuration or local file errors.
#[derive(Debug, Parser)]
#[command(
    name = "cmk-update-agent",
    version,
    max_term_width = 100,
    verbatim_doc_comment
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// More output on stderr (-v info, -vv debug).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Also write the log to this file at level info or more (rotated at 1 MiB, 3 backups).
    #[arg(short = 'l', long = "logfile", global = true, value_name = "FILE")]
    logfile: Option<PathBuf>,
    /// Trust the server's certificate on first use if it doesn't verify (saved in the state
    /// file as `local_certificates`).
    #[arg(short = 't', long = "trust-cert", global = true)]
    trust_cert: bool,
    /// Don't verify the server's TLS certificate for this call (the connection stays
    /// encrypted).
    #[arg(short = 'x', long = "insecure", global = true)]
    insecure: bool,
    /// Run in plug-in mode (print the monitoring section, honour the interval).
    #[arg(short = 'u', long = "plugin")]
    plugin: bool,
    /// Reinstall the target agent and skip signature checks (by hand only).
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Reinstall the target agent even if it is already installed (by hand only).
    #[arg(long = "reinstall")]
    reinstall: bool,
    /// Don't check signatures (by hand only; a warning is logged). For recovery when every
    /// trusted key has expired.
    #[arg(short = 'G', long = "skip-signatures")]
    skip_signatures: bool,
    /// Package flavour to ask for: linux_deb, linux_rpm, solaris_pkg, linux_tgz or windows_msi
    /// (default: linux_deb if dpkg exists, else linux_rpm if rpm exists, else linux_tgz).
    #[arg(long = "os", global = true)]
    os: Option<Platform>,
    /// Trusted root of the hardened metadata (`agent-sign metadata root`): requires signed
    /// target metadata and enables rollback and freeze protection.
    #[arg(
        long = "metadata-root",
        env = "CMK_UPDATE_AGENT_METADATA_ROOT",
        global = true,
        value_name = "FILE"
    )]
    metadata_root: Option<PathBuf>,
    /// Directory with newer root documents (`*.json`) to rotate to, besides those the server
    /// hands out. Each version must be signed by the old and the new root keys; the accepted
    /// root replaces the --metadata-root file (old one kept as `.bak`).
    #[arg(
        long = "metadata-root-dir",
        env = "CMK_UPDATE_AGENT_METADATA_ROOT_DIR",
        global = true,
        value_name = "DIR",
        requires = "metadata_root"
    )]
    metadata_root_dir: Option<PathBuf>,
    /// Valid package signatures from distinct trusted keys required (k of n; Checkmk: 1).
    #[arg(long = "signature-threshold", default_value_t = 1, global = true)]
    signature_threshold: usize,
    /// Install command, parsed as POSIX shell words (quotes and backslashes as in `sh`,
    /// nothing expanded); the package path is appended as the last argument. Default: by
    /// platform, e.g. `dpkg -i`. Example: --install-command "sh -c 'dpkg -i \"$0\" && touch
    /// /run/agent-updated'" (the package path is `$0` of `sh -c`).
    #[arg(
        long = "install-command",
        env = "CMK_UPDATE_AGENT_INSTALL_COMMAND",
        value_name = "CMD"
    )]
    install_command: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register this host at the deployment server and save the host secret.
    ///
    /// Prompts for values that are neither given nor configured (only on a terminal). The
    /// password is never stored.
    Register {
        /// Deployment server (host name, optionally `:port`).
        #[arg(short = 's', long = "server")]
        server: Option<String>,
        /// Checkmk site name.
        #[arg(short = 'i', long = "site")]
        site: Option<String>,
        /// Protocol.
        #[arg(short = 'p', long = "protocol", value_parser = ["http", "https"])]
        protocol: Option<String>,
        /// Name of this host in Checkmk.
        #[arg(short = 'H', long = "hostname")]
        hostname: Option<String>,
        /// User with registration rights.
        #[arg(short = 'U', long = "user")]
        user: Option<String>,
        /// The user's password.
        #[arg(short = 'P', long = "password", conflicts_with = "secret")]
        password: Option<String>,
        /// The user's automation secret.
        #[arg(short = 'S', long = "secret")]
        secret: Option<String>,
    },
    /// Show the effective configuration, grouped by the file each value comes from.
    ShowConfig,
    /// 2.5 mode: update over the agent controller's mTLS connection (no registration, no host
    /// secret; the site identifies this host by the client certificate's CN).
    ///
    /// Reads `$MK_CONFDIR/cmk-update-agent.toml` (`activated`, `interval`, `signature_keys`)
    /// and keeps `$MK_VARDIR/cmk-update-agent/cmk-update-agent.state` (JSON) and
    /// `$MK_VARDIR/agent_info.json`. With `-u` (plug-in mode) it checks at most once per
    /// `interval`, always prints the monitoring section and exits 0.
    Controller {
        /// Agent receiver base URL, e.g. `https://monitor:8000/mysite/agent-receiver`.
        #[arg(long, env = "CMK_UPDATE_AGENT_RECEIVER", value_name = "URL")]
        receiver: String,
        /// The controller's client certificate (PEM).
        #[arg(long, value_name = "FILE")]
        client_cert: PathBuf,
        /// The client certificate's private key (PEM).
        #[arg(long, value_name = "FILE")]
        client_key: PathBuf,
        /// Site CA the receiver's certificate must chain to (PEM).
        #[arg(long, value_name = "FILE")]
        server_ca: PathBuf,
    },
    /// Install a deferred update (saved when `MK_RUN_SYNC_PARTS=false`) after checking its
    /// signatures again. Does nothing when no update is pending.
    Install,
}

const PROGRAM: &str = "cmk-update-agent";

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = agent_wire::cli::init_logging(cli.verbose, cli.logfile.as_deref()) {
        return agent_wire::cli::report(PROGRAM, &e, 2);
    }
    agent_wire::cli::finish(PROGRAM, run(cli), |e| {
        match e.downcast_ref::<UpdateError>() {
            Some(
                UpdateError::Settings(_)
                | UpdateError::Io { .. }
                | UpdateError::Locked(_)
                | UpdateError::Missing(_)
                | UpdateError::RollbackState { .. }
                | UpdateError::BadFile { .. },
            ) => 2,
            Some(_) => 1,
            None => 2,
        }
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let platform = cli.os.unwrap_or_else(agent_updater::detect_platform);
    let policy = VerifyPolicy {
        threshold: cli.signature_threshold,
        ..VerifyPolicy::default()
    };
    let mut updater = Updater::new(
        Paths::from_env(),
        Arc::new(AgentSignVerifier::checkmk().with_policy(policy)),
    )
    .with_platform(platform);
    if let Some(root) = &cli.metadata_root {
        updater =
            updater.with_metadata_root_file(root, cli.metadata_root_dir.as_deref(), policy)?;
    }
    if let Some(cmd) = &cli.install_command {
        let cmd = InstallCommand::parse(cmd).context("--install-command")?;
        updater = updater.with_install_command(cmd);
    }
    if !matches!(cli.command, Some(Command::Controller { .. })) {
        let cfg = &updater.paths().config_file;
        if !cfg.exists() {
            tracing::warn!(
                "Missing config file at {}. Configuration may be incomplete.",
                cfg.display()
            );
        }
    }
    // The agent's `MK_RUN_SYNC_PARTS=false`: save the verified package for `install`.
    if std::env::var_os("MK_RUN_SYNC_PARTS").is_some_and(|v| v == "false") {
        updater = updater.with_deferred_install(true);
    }
    let manual_env = std::env::var_os("MK_AGENT_UPDATER_MANUAL").is_some();
    let plugin = cli.plugin || (std::env::var_os("MK_CONFDIR").is_some() && !manual_env);
    let opts = RunOptions {
        mode: if plugin { Mode::Plugin } else { Mode::Manual },
        force: cli.force,
        reinstall: cli.reinstall,
        skip_signatures: cli.skip_signatures,
        insecure: cli.insecure,
    };
    match cli.command {
        Some(Command::ShowConfig) => show_config(&updater),
        Some(Command::Controller {
            receiver,
            client_cert,
            client_key,
            server_ca,
        }) => {
            let conf = std::env::var_os("MK_CONFDIR")
                .map_or_else(|| PathBuf::from("/etc/check_mk"), PathBuf::from);
            let var = std::env::var_os("MK_VARDIR")
                .map_or_else(|| PathBuf::from("/var/lib/check_mk_agent"), PathBuf::from);
            let files = ControllerPaths::in_dirs(&conf, &var);
            let conn = ReceiverConnection {
                base_url: receiver,
                client_cert,
                client_key,
                server_ca,
            };
            if plugin {
                print_stdout(&updater.controller_plugin_output(&files, &conn, &opts))?;
                return Ok(ExitCode::SUCCESS);
            }
            let (result, _) = updater.run_controller_and_record(&files, &conn, &opts);
            print_outcome(result?);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Install) => {
            match updater.install_pending()? {
                Some(UpdateOutcome::Installed { hash, .. }) => println!("Installed agent {hash}."),
                _ => println!("No pending update."),
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Register {
            server,
            site,
            protocol,
            hostname,
            user,
            password,
            secret,
        }) => {
            let settings = updater.settings()?;
            let have = |given: Option<String>, key: &str| {
                given.or_else(|| settings.get_str(key).map(str::to_owned))
            };
            let server = value_or_prompt(
                have(server, "server"),
                "Deployment server to connect to",
                None,
            )?;
            let protocol = value_or_prompt_valid(
                have(protocol, "protocol"),
                "Protocol to use (http/https)",
                Some("https"),
                |p| {
                    (p == "http" || p == "https")
                        .then_some(())
                        .ok_or("http or https")
                },
            )?;
            let site = value_or_prompt(
                have(site, "site"),
                "Checkmk site on the deployment server",
                None,
            )?;
            let default_host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
            let host_name = value_or_prompt(
                have(hostname, "host_name"),
                "Host name of this host in Checkmk",
                default_host.as_deref().map(str::trim),
            )?;
            let user = value_or_prompt(
                have(user, "user"),
                "User with registration permissions",
                None,
            )?;
            // -S is an automation secret (`_secret`); -P or a prompted password logs into the
            // GUI (`login.py`) and registers with the session, as Checkmk 2.2-2.4 does.
            let gui_login = secret.is_none();
            let secret = match secret.or(password) {
                Some(s) => Zeroizing::new(s),
                None if io::stdin().is_terminal() => Zeroizing::new(
                    rpassword::prompt_password(format!("Password for user '{user}': "))
                        .context("reading the password")?,
                ),
                None => return Err(UpdateError::Missing("password (-P) or secret (-S)").into()),
            };
            if cli.trust_cert
                && protocol == "https"
                && let Some(pem) = updater.trust_server_certificate(&server)?
            {
                eprintln!("Added the server's certificate to local_certificates:\n{pem}");
            }
            let opts = RegisterOptions {
                server,
                site,
                protocol,
                host_name,
                user,
                secret,
                insecure: cli.insecure,
                gui_login,
            };
            let reg = updater.register(&opts)?;
            println!(
                "Successfully registered host {} at the deployment server.",
                opts.host_name
            );
            if !reg.monitored {
                println!("Note: the host is not monitored yet; agent updates start once it is.");
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            if cli.trust_cert {
                let settings = updater.settings()?;
                if let Some(server) = settings.get_str("server") {
                    updater.trust_server_certificate(server)?;
                }
            }
            if plugin {
                print_stdout(&updater.plugin_output(&opts))?;
                return Ok(ExitCode::SUCCESS);
            }
            let result = updater.run(&opts);
            updater.record_result(&result);
            print_outcome(result?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn print_outcome(outcome: UpdateOutcome) {
    match outcome {
        UpdateOutcome::NoAgent => println!("The deployment server has no agent for this host."),
        UpdateOutcome::AlreadyInstalled { hash } => println!("Agent {hash} is already installed."),
        UpdateOutcome::Pending { hash } => {
            println!("Agent {hash} downloaded and verified; run 'cmk-update-agent install'.")
        }
        UpdateOutcome::Deactivated => {
            println!("Automatic agent updates are deactivated (activated = false).")
        }
        UpdateOutcome::Installed { hash, signature } => match signature {
            Some(n) => println!("Installed agent {hash} (signature #{n} verified)."),
            None => println!("Installed agent {hash} WITHOUT signature check."),
        },
    }
}

fn value_or_prompt(
    value: Option<String>,
    question: &str,
    default: Option<&str>,
) -> anyhow::Result<String> {
    value_or_prompt_valid(value, question, default, |_| Ok(()))
}

/// Attempts at one question before `register` gives up (a closed or scripted terminal).
const PROMPT_ATTEMPTS: usize = 5;

/// The given value, or the answer to `question` on a terminal (`default` on an empty answer).
/// A given value that `check` refuses is an error; an answer it refuses, or an empty one
/// without a default, is asked again.
fn value_or_prompt_valid(
    value: Option<String>,
    question: &str,
    default: Option<&str>,
    check: impl Fn(&str) -> Result<(), &'static str>,
) -> anyhow::Result<String> {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        check(&v).map_err(|want| anyhow!("{question}: {v:?} is not {want}"))?;
        return Ok(v);
    }
    if !io::stdin().is_terminal() {
        return Err(anyhow!("{question}: no value given and no terminal to ask"));
    }
    for _ in 0..PROMPT_ATTEMPTS {
        match default {
            Some(d) => eprint!("{question} [{d}]: "),
            None => eprint!("{question}: "),
        }
        io::stderr().flush()?;
        let mut line = String::new();
        if io::stdin().lock().read_line(&mut line)? == 0 {
            return Err(anyhow!("{question}: no value given"));
        }
        let answer = match (line.trim(), default) {
            ("", Some(d)) if !d.is_empty() => d.to_owned(),
            ("", _) => {
                eprintln!("Please enter a value.");
                continue;
            }
            (a, _) => a.to_owned(),
        };
        match check(&answer) {
            Ok(()) => return Ok(answer),
            Err(want) => eprintln!("Please enter {want}, not {answer:?}."),
        }
    }
    Err(anyhow!("{question}: no valid value given"))
}

fn show_config(updater: &Updater) -> anyhow::Result<ExitCode> {
    let settings = updater.settings()?;
    let mut out = io::stdout().lock();
    for (origin, values) in settings.show() {
        let title = match &origin {
            Origin::Default => "Default values:".to_owned(),
            Origin::State(p) => format!("Values from the state file {}:", p.display()),
            Origin::Config(p) => format!("Values from the config file {}:", p.display()),
            Origin::CommandLine => "Values from the command line:".to_owned(),
        };
        writeln!(out, "{title}")?;
        for (k, v) in values {
            writeln!(out, "  {k}: {v}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
