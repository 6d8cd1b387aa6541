//! `agent-deploy`: the deployment server for `cmk-update-agent`, plus its administration
//! (users with registration rights, per-host packages, status). The logic lives in the
//! `agent-deploy` crate.

use std::io::{self, BufRead as _, IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use agent_deploy::view::{Category, SortKey, StatusView, ViewQuery};
use agent_deploy::{
    Advertise, BakerySite, DEFAULT_PBKDF2_ITERATIONS, DeployStore, Limits, ServerOptions,
};
use agent_sign::SignedDocument;
use agent_wire::{Platform, RatingMode, RatingParams, Section, State, TargetMetadata};
use anyhow::{Context as _, anyhow};
use clap::{Parser, Subcommand};

/// Agent deployment server for cmk-update-agent.
///
/// Serves `POST /<site>/check_mk/register_agent.py` and `…/deploy_agent.py` (the legacy
/// Checkmk agent-update protocol) over HTTPS (or HTTP without --cert), and manages the state
/// directory: `users` (hashed registration secrets), `hosts/` (hashes of host secrets),
/// `agents/<host>/<os>/` (packages with signature lists and metadata), `status/`, `roots/`
/// (published metadata roots) and `signing.log` (hash-chained record of every publication).
/// With `--client-ca` it also serves the 2.5 API (`/<site>/agent-receiver/…`, host identified
/// by its TLS client certificate). `check-section` rates an updater section like the
/// "Check_MK Agent" service and needs no state directory.
///
/// With `--site-root` the server serves what `agent-bakery` baked for the site (packages and
/// signatures under `var/check_mk/agents/`) and applies the site's "Automatic agent updates"
/// settings from `global.mk`: the master switch and the host selection refuse status and
/// download calls with the text the updater shows as "Agent Bakery: ..."; registration stays
/// open. Where the bakery has no package for a host and platform, a `publish`ed one is served.
///
/// The server also serves the *Agent update status* view for users of `user-add`:
/// `https://<host>/<site>/check_mk/agent_update_status.py` (log in at `login.py`; add
/// `?output_format=json` for the JSON document of `status --json`).
///
/// With --central-url (or `agent_deployment_central` in the --site-root's global.mk) the server
/// is a remote site's relay: it forwards `register_agent.py` and `deploy_agent.py` to the
/// central site over verified TLS, caches packages by platform and hash (checked against the
/// SHA-256 the central names), and while the central is unreachable answers a host only from
/// the central's last answer for it.
///
/// Exit codes: 0 success; 1 a negative result (e.g. `unregister` of an unknown host);
/// 2 usage or operational errors.
#[derive(Debug, Parser)]
#[command(name = "agent-deploy", version, max_term_width = 100)]
struct Cli {
    /// State directory.
    #[arg(
        short = 'd',
        long = "dir",
        env = "AGENT_DEPLOY_DIR",
        global = true,
        value_name = "DIR"
    )]
    dir: Option<PathBuf>,
    /// Serve the Agent Bakery's packages of this Checkmk site and apply its deployment
    /// decision (master switch, host selection). Not taken from $OMD_ROOT: it changes what
    /// hosts get.
    #[arg(long = "site-root", global = true, value_name = "DIR")]
    site_root: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server until SIGINT or SIGTERM (then finish open requests and write status).
    Serve {
        /// Site name in the URLs.
        #[arg(long)]
        site: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Certificate chain (PEM). Without it the server speaks plain HTTP (host secrets then
        /// travel in clear text).
        #[arg(long, requires = "key", value_name = "FILE")]
        cert: Option<PathBuf>,
        /// Private key (PEM, PKCS#8, PKCS#1 or SEC1). Prefer an ECDSA P-256 key: every updater
        /// run is a new TLS handshake, and with RSA-2048 the server spends about twice the CPU
        /// per status check (BENCHMARKS.md, fresh handshakes).
        #[arg(long, requires = "cert", value_name = "FILE")]
        key: Option<PathBuf>,
        /// CA (PEM) that issues the hosts' client certificates: enables mTLS and the 2.5 API
        /// (`/<site>/agent-receiver/update_status`, `…/download_agent`), which identifies the
        /// host by its certificate's CN instead of a host secret. Legacy clients without a
        /// certificate still connect.
        #[arg(long, requires = "cert", value_name = "FILE")]
        client_ca: Option<PathBuf>,
        /// `update_url` handed to updaters.
        #[arg(long, value_name = "URL")]
        update_url: Option<String>,
        /// CA certificate (PEM) handed to updaters as `certificates`; repeatable.
        #[arg(long = "advertise-cert", value_name = "FILE")]
        advertise_cert: Vec<PathBuf>,
        /// Maximum concurrent connections.
        #[arg(long, default_value_t = 4096)]
        max_connections: usize,
        /// Largest request body in bytes.
        #[arg(long, default_value_t = 16 * 1024)]
        max_body: usize,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Relay mode (a remote site).
        #[command(flatten)]
        relay: Box<RelayArgs>,
    },
    /// Show the agent update status: per host the state, target, downloaded and installed
    /// hashes, last contact, selection verdict and last error; then the counts and the
    /// prerequisites checklist (the data of the server's `agent_update_status.py`).
    Status {
        /// Print the JSON document the server's `agent_update_status.py?output_format=json`
        /// answers (`{"schema": 2, "counts", "prerequisites", "hosts": [...]}`; the host
        /// fields of schema 1 are kept).
        #[arg(long)]
        json: bool,
        /// Only hosts whose name contains this (case-insensitive).
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// Only hosts in this category: registered, selected, up_to_date, pending_download,
        /// pending_install, error, never_contacted, no_package.
        #[arg(long, value_name = "CATEGORY", value_parser = category_id)]
        state: Option<String>,
        /// Sort by: host, state, registered, contact, platform, target, downloaded,
        /// installed, verdict, error.
        #[arg(long, value_name = "COLUMN", default_value = "host", value_parser = sort_id)]
        sort: String,
        /// Sort in descending order.
        #[arg(long)]
        desc: bool,
    },
    /// Add or replace a user with registration rights (secret read from stdin or prompted).
    UserAdd {
        /// User name.
        name: String,
        /// PBKDF2-HMAC-SHA256 iterations.
        #[arg(long, default_value_t = DEFAULT_PBKDF2_ITERATIONS)]
        iterations: u32,
    },
    /// Publish a package for a host and make it the host's current target.
    ///
    /// Takes what `agent-sign` writes: the signature list of `agent-sign sign`, the targets
    /// document of `agent-sign metadata targets` (with `--aghash` set to the package's hash, the
    /// first 16 hex digits of its SHA-256, which this command prints) and optionally the
    /// timestamp of `agent-sign metadata timestamp`. Publishing the same package again replaces
    /// its signatures and metadata.
    Publish {
        /// Host name.
        #[arg(long)]
        host: String,
        /// Package flavour: linux_deb, linux_rpm, solaris_pkg, linux_tgz or windows_msi.
        #[arg(long)]
        os: Platform,
        /// The package file.
        #[arg(long, value_name = "FILE")]
        package: PathBuf,
        /// Signature list, JSON `[{"certificate": PEM, "signature": base64}]` (`agent-sign sign`).
        #[arg(long, value_name = "FILE")]
        signatures: Option<PathBuf>,
        /// Signed targets metadata (`agent-sign metadata targets`), handed out as
        /// `TargetMetadata`.
        #[arg(long, value_name = "FILE")]
        metadata: Option<PathBuf>,
        /// Signed timestamp naming the targets metadata (`agent-sign metadata timestamp`).
        #[arg(long, value_name = "FILE", requires = "metadata")]
        timestamp: Option<PathBuf>,
    },
    /// Check the signing log's hash chain and audit the hosts against it.
    ///
    /// `publish` records every published package in `<dir>/signing.log` (key fingerprint,
    /// package SHA-256, metadata version, host, time; hash-chained JSON lines). This checks the
    /// whole chain and lists hosts whose reported installed package the log never recorded.
    /// With `--site-root`, the Agent Bakery's log of the packages it signed
    /// (`var/check_mk/agent_bakery/signing.log`) is checked and counted too.
    /// Exit code 1 when a chain is broken or such a host exists.
    LogVerify {
        /// Also print every entry.
        #[arg(long)]
        list: bool,
    },
    /// Publish a metadata root (`agent-sign metadata root`) for updaters to rotate to.
    ///
    /// Stored as `roots/root.<version>.json` and handed out with every status answer; updaters
    /// with `--metadata-root` apply the versions above theirs one at a time, each signed by the
    /// old and the new root keys. Republishing the same document is a no-op; a different one
    /// for a published version is refused.
    PublishRoot {
        /// The signed root document.
        file: PathBuf,
    },
    /// Point a host's current target at an already published package.
    SetTarget {
        /// Host name.
        #[arg(long)]
        host: String,
        /// Package flavour: linux_deb, linux_rpm, solaris_pkg, linux_tgz or windows_msi.
        #[arg(long)]
        os: Platform,
        /// Hash of the published package.
        #[arg(long)]
        hash: String,
    },
    /// Rate a `cmk_update_agent_status` section like the "Check_MK Agent" service.
    ///
    /// Reads agent output (the section with its header, other sections are skipped, or the
    /// bare JSON line) from FILE or stdin. Prints `OK|WARN|CRIT - <summary>` and then one line
    /// per result (notices included). Exit code: 0 OK, 1 WARN, 2 CRIT, 3 the section is
    /// missing or garbled. Needs no state directory.
    CheckSection {
        /// Agent output; `-` or nothing for stdin.
        file: Option<PathBuf>,
        /// Which behaviour to reproduce: 2.2, 2.3, 2.4 (key problems WARN/CRIT) or 2.5 (key
        /// problems are notices, host name mismatch CRIT).
        #[arg(long = "checkmk", default_value = "2.4", value_name = "VERSION")]
        checkmk: RatingMode,
        /// The host's name in Checkmk (2.5 compares it with the section's `host_name`).
        #[arg(long = "host")]
        host: Option<String>,
        /// Last check older than this many hours is WARN.
        #[arg(long, default_value_t = 48)]
        max_check_age_hours: u64,
        /// 2.2–2.4: warn when a key, or all keys, expire within this many days.
        #[arg(long, default_value_t = 90)]
        key_warn_days: u64,
        /// 2.2–2.4: critical when all keys expire within this many days.
        #[arg(long, default_value_t = 30)]
        key_crit_days: u64,
        /// State for "globally disabled" errors (OK, WARN, CRIT).
        #[arg(long, default_value = "WARN")]
        globally_disabled_state: State,
        /// State for "disabled for this host" errors (OK, WARN, CRIT).
        #[arg(long, default_value = "WARN")]
        host_disabled_state: State,
        /// Rate as of this Unix time instead of now (for tests and replays).
        #[arg(long, value_name = "SECONDS")]
        now: Option<i64>,
    },
    /// Remove a host's registration; its secret stops working at once.
    Unregister {
        /// Host name.
        host: String,
    },
    /// Remove the registrations of hosts in no site (neither in `--site-root`'s hosts nor
    /// with a published agent) whose last registration or contact is older than the site's
    /// `cleanup_abandoned_host_files` (default 30 days). `serve` does this hourly too.
    /// Prints the hosts removed, one per line.
    Expire {
        /// Only list the hosts that would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Print `{"retention_seconds": N, "expired": [...], "dry_run": bool}`.
        #[arg(long)]
        json: bool,
    },
}

/// Relay flags of `serve`; each overrides the site's global.mk setting.
#[derive(Debug, clap::Args)]
struct RelayArgs {
    /// Relay mode (a remote site): forward registration and deployment calls to this
    /// central site URL (protocol and `/check_mk/` included) and cache its packages.
    /// Default: `agent_deployment_central.central_url` of the --site-root's global.mk.
    #[arg(long, value_name = "URL")]
    central_url: Option<String>,
    /// CA certificates (PEM) that verify the central site's TLS certificate; repeatable.
    /// Default: the CAs the --site-root trusts (its var/ssl/ca-certificates.crt, which
    /// Checkmk writes from "Trusted certificate authorities for SSL"), else the Mozilla roots.
    #[arg(long, value_name = "FILE")]
    central_ca: Vec<PathBuf>,
    /// The remote site's user toward the central site. Default:
    /// `agent_deployment_central.automation_user`.
    #[arg(long, value_name = "NAME")]
    central_user: Option<String>,
    /// File holding the remote site's secret toward the central site.
    #[arg(long, value_name = "FILE")]
    central_secret_file: Option<PathBuf>,
    /// Relay package cache. Default: `relay-cache/` in the state directory.
    #[arg(long, value_name = "DIR")]
    relay_cache: Option<PathBuf>,
    /// Bytes of packages the relay cache keeps (least recently used ones are evicted).
    #[arg(long, default_value_t = agent_deploy::DEFAULT_CACHE_MAX_BYTES)]
    relay_cache_max_bytes: u64,
    /// This site's URL for its updaters (`agent_deployment_remote.remote_url`), handed out
    /// as `update_url` when --update-url is not given.
    #[arg(long, value_name = "URL")]
    remote_url: Option<String>,
}

const PROGRAM: &str = "agent-deploy";

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = agent_wire::cli::init_logging(cli.verbose, None) {
        return agent_wire::cli::report(PROGRAM, &e, 2);
    }
    agent_wire::cli::finish(PROGRAM, run(cli), |_| 2)
}

fn read_document(path: &std::path::Path) -> anyhow::Result<SignedDocument> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    SignedDocument::from_json(&text).with_context(|| format!("reading {}", path.display()))
}

fn check_section(
    file: Option<&std::path::Path>,
    mode: RatingMode,
    params: &RatingParams,
    now: Option<i64>,
) -> anyhow::Result<ExitCode> {
    let text = match file {
        Some(p) if p != std::path::Path::new("-") => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        _ => io::read_to_string(io::stdin().lock()).context("reading stdin")?,
    };
    let section = match Section::parse(&text) {
        Ok(s) => s,
        Err(e) => {
            println!("UNKNOWN - {e}");
            return Ok(ExitCode::from(3));
        }
    };
    let now = now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    });
    let rating = agent_wire::rate_section(&section, params, mode, now);
    let mut out = io::stdout().lock();
    let res = (|| {
        writeln!(out, "{} - {}", rating.state, rating.summary())?;
        for line in &rating.lines {
            writeln!(out, "{}{}", line.text, line.state.marker())?;
        }
        io::Result::Ok(())
    })();
    match res {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::from(rating.state.exit_code())),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::CheckSection {
        file,
        checkmk,
        host,
        max_check_age_hours,
        key_warn_days,
        key_crit_days,
        globally_disabled_state,
        host_disabled_state,
        now,
    } = cli.command
    {
        let params = RatingParams {
            host_name: host,
            max_check_age_secs: max_check_age_hours.saturating_mul(3600),
            key_warn_days,
            key_crit_days,
            globally_disabled_state,
            host_disabled_state,
        };
        return check_section(file.as_deref(), checkmk, &params, now);
    }
    let dir = cli
        .dir
        .ok_or_else(|| anyhow!("no state directory: use --dir or AGENT_DEPLOY_DIR"))?;
    if let Some(root) = &cli.site_root
        && !root.join(agent_bakery::WATO_DIR).is_dir()
    {
        return Err(anyhow!(
            "{}: not a Checkmk site (no {})",
            root.display(),
            agent_bakery::WATO_DIR
        ));
    }
    // The site id: the URL's site for `serve`, else the site directory's name.
    let bakery = |site_id: Option<&str>| {
        cli.site_root.clone().map(|root| BakerySite {
            site_id: site_id
                .map(str::to_owned)
                .unwrap_or_else(|| agent_bakery::default_site_id(&root)),
            root,
        })
    };
    let with_bakery = |store: DeployStore, site: Option<BakerySite>| match site {
        Some(site) => store.with_bakery(site),
        None => store,
    };
    let creates = matches!(cli.command, Command::Serve { .. } | Command::UserAdd { .. });
    if !creates && !dir.is_dir() {
        return Err(anyhow!(
            "{}: no such state directory (create it with `serve` or `user-add`)",
            dir.display()
        ));
    }
    match cli.command {
        Command::Serve {
            site,
            listen,
            cert,
            key,
            client_ca,
            update_url,
            advertise_cert,
            max_connections,
            max_body,
            workers,
            relay,
        } => {
            let site_settings = match &cli.site_root {
                Some(root) => agent_deploy::SiteRelaySettings::read(
                    &agent_bakery::SiteConfig::read(root, &site)?,
                )
                .with_trust_store(root)?,
                None => agent_deploy::SiteRelaySettings::default(),
            };
            let mut extra_certificates = Vec::new();
            for path in &advertise_cert {
                extra_certificates.push(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?,
                );
            }
            let RelayArgs {
                central_url,
                central_ca,
                central_user,
                central_secret_file,
                relay_cache,
                relay_cache_max_bytes,
                remote_url,
            } = *relay;
            let advertise = site_settings.advertise(update_url.or(remote_url), extra_certificates);
            let mut store = with_bakery(DeployStore::open(&dir, advertise)?, bakery(Some(&site)));
            let overrides = agent_deploy::RelayOverrides {
                central_url,
                central_ca_files: central_ca,
                central_user,
                central_secret_file,
                cache_dir: relay_cache,
                cache_max_bytes: Some(relay_cache_max_bytes),
            };
            if let Some(cfg) =
                agent_deploy::RelayConfig::for_site(&site, &dir, &site_settings, overrides)?
            {
                eprintln!(
                    "agent-deploy: relaying to the central site {}",
                    cfg.central_url
                );
                store = store.with_relay(Arc::new(agent_deploy::Relay::new(cfg)?));
            }
            let store = Arc::new(store);
            if let Some(site) = store.site_config()? {
                for w in &site.warnings {
                    eprintln!("agent-deploy: warning: {w}");
                }
            }
            let tls = match (cert, key) {
                (Some(c), Some(k)) => Some(match &client_ca {
                    Some(ca) => agent_deploy::load_mtls(&c, &k, ca)?,
                    None => agent_deploy::load_tls(&c, &k)?,
                }),
                _ => {
                    tracing::warn!("serving plain HTTP: host secrets travel in clear text");
                    None
                }
            };
            let limits = Limits {
                max_connections,
                max_body_bytes: max_body,
                ..Limits::default()
            };
            let options = ServerOptions { site, limits, tls };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers.max(1))
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("binding {listen}"))?;
                eprintln!("agent-deploy: listening on {}", listener.local_addr()?);
                agent_deploy::serve(listener, store, options, shutdown_signal()).await?;
                eprintln!("agent-deploy: stopped");
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status {
            json,
            search,
            state,
            sort,
            desc,
        } => {
            let store = with_bakery(DeployStore::open(&dir, Advertise::default())?, bakery(None));
            let query = ViewQuery::parse(
                search.as_deref(),
                state.as_deref(),
                Some(&sort),
                Some(if desc { "desc" } else { "asc" }),
            );
            let view = StatusView::build(&store, query, SystemTime::now())?;
            let mut out = io::stdout().lock();
            let res = if json {
                writeln!(out, "{}", view.to_json())
            } else {
                write!(out, "{}", view.to_text())
            };
            match res {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        Command::UserAdd { name, iterations } => {
            let secret = if io::stdin().is_terminal() {
                rpassword::prompt_password(format!("Secret for {name}: "))?
            } else {
                let mut line = String::new();
                io::stdin().lock().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            };
            if secret.is_empty() {
                return Err(anyhow!("empty secret"));
            }
            DeployStore::set_user(&dir, &name, &secret, iterations)?;
            eprintln!("agent-deploy: user {name} may now register hosts");
            Ok(ExitCode::SUCCESS)
        }
        Command::Publish {
            host,
            os,
            package,
            signatures,
            metadata,
            timestamp,
        } => {
            let store = DeployStore::open(&dir, Advertise::default())?;
            let bytes = std::fs::read(&package)
                .with_context(|| format!("reading {}", package.display()))?;
            let sigs = match &signatures {
                Some(p) => agent_sign::signatures_from_json(
                    &std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                )
                .with_context(|| format!("{}: not a signature list", p.display()))?,
                None => Vec::new(),
            };
            let meta = match &metadata {
                Some(p) => Some(TargetMetadata {
                    targets: read_document(p)?,
                    timestamp: timestamp.as_deref().map(read_document).transpose()?,
                }),
                None => None,
            };
            if sigs.is_empty() {
                eprintln!(
                    "agent-deploy: warning: the package is unsigned; updaters will refuse it"
                );
            }
            let hash = store.publish(&host, os, &bytes, &sigs, meta.as_ref())?;
            println!("{hash}");
            Ok(ExitCode::SUCCESS)
        }
        Command::LogVerify { list } => {
            let store = with_bakery(DeployStore::open(&dir, Advertise::default())?, bakery(None));
            let audit = match store.audit_signing_log() {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("agent-deploy: {e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let mut out = io::stdout().lock();
            writeln!(
                out,
                "{}: {} entries, chain intact, head {}",
                store.signing_log().path().display(),
                audit.entries.len(),
                audit.head.as_deref().unwrap_or("-")
            )?;
            if let Some(site) = store.bakery_site() {
                writeln!(
                    out,
                    "{}: {} entries, chain intact",
                    site.root.join(agent_bakery::SIGNING_LOG).display(),
                    audit.bakery_entries.len()
                )?;
            }
            if list {
                for e in audit.entries.iter().chain(&audit.bakery_entries) {
                    writeln!(
                        out,
                        "#{} time={} key={} package={} version={} hosts={}{}",
                        e.seq,
                        e.time,
                        e.key_fingerprint,
                        e.package_sha256,
                        e.version,
                        e.hosts.join(","),
                        e.agent_hash
                            .as_deref()
                            .map(|h| format!(" agent_hash={h}"))
                            .unwrap_or_default()
                    )?;
                }
            }
            for (host, hash) in &audit.unrecorded {
                writeln!(
                    out,
                    "host {host} runs agent {hash}, which the signing log never recorded"
                )?;
            }
            Ok(ExitCode::from(u8::from(!audit.unrecorded.is_empty())))
        }
        Command::PublishRoot { file } => {
            let store = DeployStore::open(&dir, Advertise::default())?;
            let version = store.publish_root(&read_document(&file)?)?;
            println!("{version}");
            Ok(ExitCode::SUCCESS)
        }
        Command::SetTarget { host, os, hash } => {
            let store = DeployStore::open(&dir, Advertise::default())?;
            store.set_current(&host, os, &hash)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckSection { .. } => Err(anyhow!("unreachable: check-section")),
        Command::Expire { dry_run, json } => {
            let store = with_bakery(DeployStore::open(&dir, Advertise::default())?, bakery(None));
            let retention = store.abandoned_retention()?;
            let expired = store.expire_abandoned(SystemTime::now(), dry_run)?;
            let mut out = io::stdout().lock();
            if json {
                let doc = serde_json::json!({
                    "retention_seconds": retention.as_secs(),
                    "expired": expired,
                    "dry_run": dry_run,
                });
                writeln!(out, "{doc}")?;
            } else {
                for host in &expired {
                    writeln!(out, "{host}")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Unregister { host } => {
            let store = DeployStore::open(&dir, Advertise::default())?;
            if store.unregister(&host)? {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("agent-deploy: host {host} is not registered");
                Ok(ExitCode::from(1))
            }
        }
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn category_id(s: &str) -> Result<String, String> {
    Category::parse(s)
        .map(|c| c.id().to_owned())
        .ok_or_else(|| format!("unknown category {s:?}"))
}

fn sort_id(s: &str) -> Result<String, String> {
    SortKey::parse(s)
        .map(|k| k.id().to_owned())
        .ok_or_else(|| format!("unknown column {s:?}"))
}
