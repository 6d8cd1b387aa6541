//! The `cmk-update-agent` updater: registration, the update run, the monitoring section.

use std::fs;
use std::io::{self, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use agent_sign::{Clock, PackageDigest, PackageSignature, RollbackState, SystemClock};

use crate::settings::{ProxySetting, Settings, SettingsError};
use crate::stream::StreamError;
use crate::verify::{PackageVerifier, TargetInfo, TargetPlan, VerifyError};
use agent_wire::{
    AU_API, AgentResult, DEPLOY_PAGE, DeployForm, DeployMode, Envelope, HOST_SECRET_LEN,
    LOGIN_PAGE, Platform, REGISTER_PAGE, RegisterResult, SectionLine, StatusResult, TargetMetadata,
    truncate_last_error, valid_aghash,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// State-file key of the hardened metadata's rollback state (`agent-sign`'s
/// [`RollbackState`]: highest accepted targets version and hash per host and platform, highest
/// timestamp version).
pub const ROLLBACK_STATE_KEY: &str = "rollback_state";

/// Errors of the updater. The texts are what ends up in `last_error` and the section.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// Not registered, plug-in mode.
    #[error("The agent updater is not registered at the deployment server")]
    NotRegisteredPlugin,
    /// Not registered, run by hand.
    #[error(
        "Not yet registered at deployment server. Please run 'cmk-update-agent register' first."
    )]
    NotRegistered,
    /// A required value is missing (e.g. for `register`).
    #[error("missing value for {0}")]
    Missing(&'static str),
    /// Reading or writing the updater's files failed.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The deployment server reported an error (`result_code` 1). Never retried.
    #[error("Agent Bakery: {0}")]
    Bakery(String),
    /// The server could not be reached or the transfer failed.
    #[error("Cannot connect to {url}: {reason}")]
    Connection {
        /// The URL.
        url: String,
        /// The reason.
        reason: String,
    },
    /// The answer was HTML (a login page) instead of JSON.
    #[error("Cannot authenticate, invalid user/passwort/secret.")]
    CannotAuthenticate,
    /// The answer was not JSON.
    #[error("Unexpected answer from Checkmk server, missing json data.")]
    MissingJson,
    /// The status answer doesn't have the expected shape.
    #[error("Garbled response from deployment server: {0}")]
    Garbled(String),
    /// `AgentAvailable` without `TargetHash`.
    #[error(
        "Garbled response from deployment server: contradictory answer (AgentAvailable without TargetHash)"
    )]
    Contradictory,
    /// The registration answer's host secret has the wrong length.
    #[error("Invalid host secret (length is not 64)")]
    InvalidHostSecret,
    /// A response exceeded its size limit; nothing was kept.
    #[error("{url}: response larger than {limit} bytes, download aborted")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// Signature or metadata check failed.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The install command failed; `installed_aghash` was not changed.
    #[error("installing the agent with {command} failed: {reason}")]
    Install {
        /// The command line.
        command: String,
        /// Exit status or OS error.
        reason: String,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The pending update's candidate file is missing, unreadable, or no keys are configured.
    #[error("inconsistent pending update")]
    InconsistentPending,
    /// The candidate file's package no longer has the SHA-256 recorded when it was verified.
    #[error("the pending update's candidate file was changed after it was verified")]
    CandidateTampered,
    /// The stored rollback state is damaged; updating without it would lose rollback protection.
    #[error("{path}: {ROLLBACK_STATE_KEY} is damaged ({reason}); refusing to update")]
    RollbackState {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A newer metadata root was offered (by the server or in the root directory) but does
    /// not verify against the trusted one; nothing was changed.
    #[error("{path}: refusing root metadata: {reason}")]
    RootRotation {
        /// The trusted root file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An updater file is unreadable or malformed: the 2.5 mode's TOML config, JSON state,
    /// `agent_info.json` or client certificate, or the metadata root file.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another updater holds the lock.
    #[error("Another cmk-update-agent is already running (lock {0}). Aborting.")]
    Locked(PathBuf),
}

/// Why a CA certificate was refused as the server's certificate (rustls says only
/// `CaUsedAsEndEntity`).
const CA_AS_SERVER_CERTIFICATE: &str = "the server's own certificate is a CA certificate \
(basicConstraints CA:TRUE); it is accepted only when exactly that certificate is trusted \
(cfg `certificates`, or `--trust-cert`)";

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UpdateError + '_ {
    move |source| UpdateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Plug-in mode (prints the section, caches per interval) or run by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run by the agent (`MK_CONFDIR` set, or `-u`).
    Plugin,
    /// Run by hand (`MK_AGENT_UPDATER_MANUAL` set, or no `MK_CONFDIR`).
    Manual,
}

/// Where the updater keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `cmk-update-agent.cfg` (read only).
    pub config_file: PathBuf,
    /// `cmk-update-agent.state`.
    pub state_file: PathBuf,
    /// Directory for temporary downloads and the lock file.
    pub var_dir: PathBuf,
    /// Plug-in cache with the last section output.
    pub cache_file: PathBuf,
    /// Single-instance lock.
    pub lock_file: PathBuf,
}

impl Paths {
    /// The 2.4 layout below a config and a var directory.
    pub fn in_dirs(conf_dir: &Path, var_dir: &Path) -> Paths {
        Paths {
            config_file: conf_dir.join("cmk-update-agent.cfg"),
            state_file: var_dir.join("cmk-update-agent.state"),
            var_dir: var_dir.to_owned(),
            cache_file: var_dir.join("cache").join("plugins_cmk-update-agent.cache"),
            lock_file: var_dir.join("cmk-update-agent.pid"),
        }
    }

    /// From `MK_CONFDIR` (default `/etc/check_mk`) and `MK_VARDIR` (default
    /// `/var/lib/check_mk_agent`).
    pub fn from_env() -> Paths {
        let conf = std::env::var_os("MK_CONFDIR")
            .map_or_else(|| PathBuf::from("/etc/check_mk"), PathBuf::from);
        let var = std::env::var_os("MK_VARDIR")
            .map_or_else(|| PathBuf::from("/var/lib/check_mk_agent"), PathBuf::from);
        Paths::in_dirs(&conf, &var)
    }
}

/// The command that installs a package; the package path is appended as the last argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallCommand {
    /// Program to run.
    pub program: String,
    /// Arguments before the package path.
    pub args: Vec<String>,
}

impl InstallCommand {
    /// The package manager of a platform (`dpkg -i`, `rpm -vU --oldpackage --replacepkgs`, …).
    pub fn for_platform(platform: Platform) -> InstallCommand {
        let (program, args): (&str, &[&str]) = match platform {
            Platform::LinuxDeb => ("dpkg", &["-i"]),
            Platform::LinuxRpm => ("rpm", &["-vU", "--oldpackage", "--replacepkgs"]),
            Platform::SolarisPkg => ("pkgadd", &["-n", "-d"]),
            Platform::LinuxTgz => ("tar", &["-C", "/", "-xzf"]),
            Platform::WindowsMsi => ("msiexec", &["/qn", "/i"]),
        };
        InstallCommand {
            program: program.into(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Parses a command line as POSIX shell words: white space separates words, single
    /// quotes keep everything literally, double quotes and backslashes work as in `sh`.
    /// Nothing is expanded (no variables, globs, pipes or redirections; use `sh -c '...'` for
    /// those, where the appended package path is `$0`).
    pub fn parse(line: &str) -> Result<InstallCommand, BadInstallCommand> {
        let words = shlex::split(line).ok_or(BadInstallCommand::Quoting)?;
        let mut words = words.into_iter();
        let program = words.next().ok_or(BadInstallCommand::Empty)?;
        Ok(InstallCommand {
            program,
            args: words.collect(),
        })
    }

    /// The command as shell words (quoted where needed), for messages.
    pub fn display(&self) -> String {
        let words =
            std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str));
        shlex::try_join(words).unwrap_or_else(|_| {
            std::iter::once(self.program.as_str())
                .chain(self.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        })
    }
}

/// An install command line that [`InstallCommand::parse`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadInstallCommand {
    /// No words at all.
    #[error("the install command is empty")]
    Empty,
    /// An unclosed quote or a trailing backslash.
    #[error("the install command has an unclosed quote or a trailing backslash")]
    Quoting,
}

/// Options of one update run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Plug-in or by hand.
    pub mode: Mode,
    /// `--force`: reinstall and skip signatures (by hand only).
    pub force: bool,
    /// `--reinstall` (by hand only).
    pub reinstall: bool,
    /// `--skip-signatures` (by hand only; logs a warning).
    pub skip_signatures: bool,
    /// `--insecure`: don't verify TLS for this call.
    pub insecure: bool,
}

impl RunOptions {
    /// A plain run in the given mode.
    pub fn new(mode: Mode) -> RunOptions {
        RunOptions {
            mode,
            force: false,
            reinstall: false,
            skip_signatures: false,
            insecure: false,
        }
    }
}

/// Values for `register` (the binary prompts for missing ones).
#[derive(Debug, Clone)]
pub struct RegisterOptions {
    /// Server host name (and optional `:port`).
    pub server: String,
    /// Site name.
    pub site: String,
    /// `http` or `https`.
    pub protocol: String,
    /// Our host name in Checkmk.
    pub host_name: String,
    /// User with registration rights.
    pub user: String,
    /// Password or automation secret; never stored.
    pub secret: Zeroizing<String>,
    /// `secret` is the user's GUI password (`-P`): log in with `login.py` and register with
    /// the session cookie, as Checkmk 2.2–2.4 does. Otherwise it is an automation secret sent
    /// as `_secret` (`-S`).
    pub gui_login: bool,
    /// `--insecure` for this call.
    pub insecure: bool,
}

/// What an update run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The server has no agent for us.
    NoAgent,
    /// The target is already installed.
    AlreadyInstalled {
        /// Its hash.
        hash: String,
    },
    /// A new agent was verified and saved for a deferred install (`MK_RUN_SYNC_PARTS=false`).
    Pending {
        /// Its hash.
        hash: String,
    },
    /// The 2.5 mode's config has `activated = false`: nothing was done.
    Deactivated,
    /// A new agent was verified and installed.
    Installed {
        /// Its hash.
        hash: String,
        /// 1-based index of the accepted signature (`None` with `--skip-signatures`).
        signature: Option<usize>,
    },
}

/// Result of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// `false`: the server doesn't monitor the host yet.
    pub monitored: bool,
    /// The server's `update_url`, if any.
    pub update_url: Option<String>,
}

/// The updater.
pub struct Updater {
    pub(crate) paths: Paths,
    pub(crate) verifier: std::sync::RwLock<Arc<dyn PackageVerifier>>,
    pub(crate) root: Option<crate::rotation::RootConfig>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) platform: Platform,
    pub(crate) install: InstallCommand,
    pub(crate) cli: Map<String, Value>,
    pub(crate) timeout: Duration,
    pub(crate) status_limit: u64,
    pub(crate) download_cap: u64,
    pub(crate) lock_attempts: u32,
    pub(crate) lock_delay: Duration,
    pub(crate) deferred: bool,
}

impl std::fmt::Debug for Updater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updater")
            .field("paths", &self.paths)
            .field("platform", &self.platform)
            .field("install", &self.install)
            .finish_non_exhaustive()
    }
}

pub(crate) struct LockGuard(PathBuf);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

impl Updater {
    /// An updater with the system clock, platform `linux_deb`, `dpkg -i`, a 120 s timeout, a
    /// 64 KiB status limit and a 512 MiB download cap.
    pub fn new(paths: Paths, verifier: Arc<dyn PackageVerifier>) -> Updater {
        Updater {
            paths,
            verifier: std::sync::RwLock::new(verifier),
            root: None,
            clock: Arc::new(SystemClock),
            platform: Platform::LinuxDeb,
            install: InstallCommand::for_platform(Platform::LinuxDeb),
            cli: Map::new(),
            timeout: Duration::from_secs(120),
            status_limit: 64 * 1024,
            download_cap: 512 * 1024 * 1024,
            lock_attempts: 10,
            lock_delay: Duration::from_secs(1),
            deferred: false,
        }
    }

    /// Sets the clock (shared with `agent-sign`'s time-dependent rules).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Updater {
        self.clock = clock;
        self
    }

    /// Sets the platform and its default install command ([`detect_platform`] tells this
    /// host's).
    pub fn with_platform(mut self, platform: Platform) -> Updater {
        self.platform = platform;
        self.install = InstallCommand::for_platform(platform);
        self
    }

    /// Sets the install command.
    pub fn with_install_command(mut self, cmd: InstallCommand) -> Updater {
        self.install = cmd;
        self
    }

    /// Adds a command-line value (wins over cfg and state for this call).
    pub fn with_override(mut self, key: &str, value: Value) -> Updater {
        self.cli.insert(key.to_owned(), value);
        self
    }

    /// Defers the install (as with `MK_RUN_SYNC_PARTS=false`): the verified package is saved as
    /// `$MK_VARDIR/new_agent_<hash>` and [`install_pending`](Self::install_pending) installs it.
    pub fn with_deferred_install(mut self, deferred: bool) -> Updater {
        self.deferred = deferred;
        self
    }

    /// Sets the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Updater {
        self.timeout = timeout;
        self
    }

    /// Sets the absolute download cap in bytes.
    pub fn with_download_cap(mut self, bytes: u64) -> Updater {
        self.download_cap = bytes;
        self
    }

    /// Sets the lock attempts and the delay between them.
    pub fn with_lock_retry(mut self, attempts: u32, delay: Duration) -> Updater {
        self.lock_attempts = attempts.max(1);
        self.lock_delay = delay;
        self
    }

    /// The signature check of a downloaded package before it is installed: the index of the
    /// signature that verified it, or `None` when signatures are skipped by hand (with a
    /// warning in the log).
    pub(crate) fn check_signature(
        &self,
        package: &PackageDigest,
        info: &TargetInfo<'_>,
        skip: bool,
        aghash: &str,
    ) -> Result<Option<usize>, UpdateError> {
        if skip {
            tracing::warn!("WARNING: installing agent {aghash} WITHOUT checking its signature");
            return Ok(None);
        }
        Ok(Some(
            self.verifier()
                .verify_package(package, info)?
                .signature_index,
        ))
    }

    /// The current verifier (replaced when a new metadata root is accepted).
    pub fn verifier(&self) -> Arc<dyn PackageVerifier> {
        Arc::clone(
            &self
                .verifier
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The file paths.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Loads the merged settings.
    pub fn settings(&self) -> Result<Settings, UpdateError> {
        Ok(Settings::load(
            &self.paths.state_file,
            &self.paths.config_file,
            self.cli.clone(),
        )?)
    }

    pub(crate) fn lock(&self) -> Result<LockGuard, UpdateError> {
        let path = &self.paths.lock_file;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        for attempt in 0..self.lock_attempts {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(LockGuard(path.clone()));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(path)
                        .ok()
                        .and_then(|t| t.trim().parse::<u32>().ok());
                    let alive =
                        holder.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    if !alive && holder.is_some() {
                        tracing::warn!(
                            "removing stale lock {} of process {holder:?}",
                            path.display()
                        );
                        let _ = fs::remove_file(path);
                        continue;
                    }
                    if attempt + 1 < self.lock_attempts {
                        std::thread::sleep(self.lock_delay);
                    }
                }
                Err(e) => return Err(io_err(path)(e)),
            }
        }
        Err(UpdateError::Locked(path.clone()))
    }

    /// The clock's time as a `SystemTime` (for file modification times).
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(self.clock.now()).unwrap_or(0))
    }

    /// The clock's time as the float epoch seconds the state file holds.
    pub(crate) fn now_f64(&self) -> f64 {
        self.clock.now() as f64
    }

    /// The persisted rollback state (empty before the first hardened install).
    fn rollback_state(&self, s: &Settings) -> Result<RollbackState, UpdateError> {
        match s.state_value(ROLLBACK_STATE_KEY) {
            None | Some(Value::Null) => Ok(RollbackState::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| UpdateError::RollbackState {
                path: self.paths.state_file.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// Registers at `<protocol>://<server>/<site>/check_mk/register_agent.py` and saves
    /// `host_secret, server, site, host_name, protocol, user` (plus `update_url`,
    /// `certificates`) to the state file. The secret is never stored.
    pub fn register(&self, opts: &RegisterOptions) -> Result<Registered, UpdateError> {
        let _lock = self.lock()?;
        let mut settings = self.settings()?;
        let client = Client::new(&settings, opts.insecure, self.timeout)?;
        let mut server = opts.server.clone();
        let mut protocol = opts.protocol.clone();
        let mut base = format!("{protocol}://{server}/{}/check_mk", opts.site);
        if let Some((authority, https_base)) = client.https_redirect(&base) {
            server = authority;
            protocol = "https".into();
            base = https_base;
        }
        let url = format!("{base}/{REGISTER_PAGE}");
        let result = if opts.gui_login {
            let cookie = client.login(&base, &opts.user, &opts.secret)?;
            let pairs = [("host", opts.host_name.as_str()), ("au_api", AU_API)];
            client.post_json_cookie(&url, &pairs, Some(&cookie), self.status_limit)?
        } else {
            let pairs = [
                ("host", opts.host_name.as_str()),
                ("_username", opts.user.as_str()),
                ("_secret", opts.secret.as_str()),
                ("au_api", AU_API),
            ];
            client.post_json(&url, &pairs, self.status_limit)?
        };
        let reg: RegisterResult = serde_json::from_value(result)
            .map_err(|e| UpdateError::Garbled(format!("registration answer: {e}")))?;
        if reg.host_secret.chars().count() != HOST_SECRET_LEN {
            return Err(UpdateError::InvalidHostSecret);
        }
        if !reg.monitored {
            tracing::warn!(
                "The host {} is not (yet) monitored by the deployment server; the registration is kept.",
                opts.host_name
            );
        }
        for (key, value) in [
            ("host_secret", &reg.host_secret),
            ("server", &server),
            ("site", &opts.site),
            ("host_name", &opts.host_name),
            ("protocol", &protocol),
            ("user", &opts.user),
        ] {
            settings.set_state(key, Value::String(value.clone()));
        }
        settings.set_state(
            "update_url",
            reg.update_url.clone().map_or(Value::Null, Value::String),
        );
        if let Some(certs) = &reg.certificates {
            merge_local_certificates(&mut settings, certs);
        }
        settings.set_state(
            "installed_aghash",
            settings
                .state_value("installed_aghash")
                .cloned()
                .unwrap_or(Value::Null),
        );
        settings.save_state()?;
        self.expire_cache(settings.interval()?);
        Ok(Registered {
            monitored: reg.monitored,
            update_url: reg.update_url,
        })
    }

    /// Sets the plug-in cache's mtime back by one interval so the next agent run checks.
    fn expire_cache(&self, interval: u64) {
        let back = self
            .now()
            .checked_sub(Duration::from_secs(interval))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        // A missing cache needs no expiring.
        let _ = self.date_cache(back);
    }

    /// Sets the plug-in cache's mtime. Its freshness is judged against the updater's clock
    /// ([`plugin_output`](Self::plugin_output)), so the cache is dated by that clock too.
    fn date_cache(&self, at: SystemTime) -> io::Result<()> {
        fs::OpenOptions::new()
            .write(true)
            .open(&self.paths.cache_file)?
            .set_modified(at)
    }

    fn base_urls(&self, s: &Settings) -> Vec<String> {
        let mut urls = Vec::new();
        if !s.get_bool("ignore_update_url")
            && let Some(u) = s.get_str("update_url")
        {
            urls.push(u.trim_end_matches('/').to_owned());
        }
        if let (Some(server), Some(site)) = (s.get_str("server"), s.get_str("site")) {
            let protocol = s.get_str("protocol").unwrap_or("https");
            let u = format!("{protocol}://{server}/{site}/check_mk");
            if !urls.contains(&u) {
                urls.push(u);
            }
        }
        urls
    }

    /// One update run (section 3.3, "Update algorithm"), without the section or caching.
    /// Records `last_check`, and on success `installed_aghash`/`last_update`.
    pub fn run(&self, opts: &RunOptions) -> Result<UpdateOutcome, UpdateError> {
        self.run_inner(opts, &mut None)
    }

    /// [`run`](Self::run); `push` receives what a later "push status" needs once the server
    /// answered the status call, and is emptied again when the run pushed on its own.
    fn run_inner(
        &self,
        opts: &RunOptions,
        push: &mut Option<PushStatus>,
    ) -> Result<UpdateOutcome, UpdateError> {
        let _lock = self.lock()?;
        let mut s = self.settings()?;
        let manual = opts.mode == Mode::Manual;
        let wants_skip = opts.skip_signatures || opts.force;
        if wants_skip && !manual {
            tracing::warn!("--skip-signatures and --force are ignored in plug-in mode");
        }
        let skip = wants_skip && manual;
        if skip {
            tracing::warn!(
                "WARNING: signature checks are skipped for this run (--skip-signatures/--force)"
            );
        }
        let reinstall = manual && (opts.reinstall || opts.force);
        let (Some(host), Some(secret)) = (s.get_str("host_name"), s.get_str("host_secret")) else {
            return Err(if manual {
                UpdateError::NotRegistered
            } else {
                UpdateError::NotRegisteredPlugin
            });
        };
        let host = host.to_owned();
        let secret = Zeroizing::new(secret.to_owned());
        let installed = s.get_str("installed_aghash").unwrap_or("").to_owned();
        let last_error = s.get_str("last_error").unwrap_or("").to_owned();
        let client = Client::new(&s, opts.insecure, self.timeout)?;
        let mut form = DeployForm {
            mode: DeployMode::Status,
            host: host.clone(),
            host_secret: secret.to_string(),
            installed_aghash: installed.clone(),
            aghash: String::new(),
            os: self.platform.as_str().to_owned(),
            last_error: truncate_last_error(&last_error).to_owned(),
            au_api: AU_API.to_owned(),
        };
        let urls: Vec<String> = self
            .base_urls(&s)
            .into_iter()
            .map(|u| client.https_redirect(&u).map_or(u, |(_, https)| https))
            .collect();
        if urls.is_empty() {
            return Err(UpdateError::Missing("server and site"));
        }
        let (result, base) = client.post_candidates(&urls, &form, self.status_limit)?;
        s.set_state("last_check", json!(self.now_f64()));
        let status = serde_json::from_value::<StatusResult>(result)
            .map_err(|e| UpdateError::Garbled(e.to_string()));
        let status = match status {
            Ok(st) => st,
            Err(e) => {
                s.save_state()?;
                return Err(e);
            }
        };
        *push = Some(PushStatus {
            client: client.clone(),
            base: base.clone(),
            form: form.clone(),
        });
        self.rotate_root(&status.root_metadata)?;
        // Like Checkmk's updater: the answer's update_url replaces the stored one, also when
        // the server no longer sends one.
        s.set_state(
            "update_url",
            status.update_url.clone().map_or(Value::Null, Value::String),
        );
        if let Some(c) = &status.certificates {
            merge_local_certificates(&mut s, c);
        }
        s.save_state()?;
        if !status.agent_available {
            tracing::info!("No agent available for us.");
            return Ok(UpdateOutcome::NoAgent);
        }
        let target_hash = status
            .target_hash
            .clone()
            .ok_or(UpdateError::Contradictory)?;
        if !valid_aghash(&target_hash) {
            return Err(UpdateError::Garbled(format!(
                "invalid TargetHash {target_hash:?}"
            )));
        }
        let keys = s.get_str_list("signature_keys");
        let rollback = self.rollback_state(&s)?;
        let info = TargetInfo {
            host_name: &host,
            platform: self.platform,
            target_hash: &target_hash,
            signatures: &status.signatures,
            metadata: status.target_metadata.as_ref(),
            trusted_keys: &keys,
            rollback: &rollback,
            clock: self.clock.as_ref(),
        };
        // Hardened metadata is checked on every run (freeze detection), signatures only
        // when a download is due.
        let mut plan: Option<TargetPlan> = None;
        if self.verifier().requires_metadata() && !skip {
            plan = Some(self.gate(&info)?);
        }
        if target_hash == installed && !reinstall {
            tracing::info!("Agent {target_hash} already installed.");
            return Ok(UpdateOutcome::AlreadyInstalled { hash: target_hash });
        }
        if plan.is_none() && !skip {
            plan = Some(self.gate(&info)?);
        }
        let plan = plan.unwrap_or_default();
        form.mode = DeployMode::Agent;
        form.aghash = target_hash.clone();
        let limit = plan
            .length()
            .map_or(self.download_cap, |len| {
                len.saturating_add(2)
                    .saturating_div(3)
                    .saturating_mul(4)
                    .saturating_add(4096)
            })
            .min(self.download_cap);
        // The package goes into a private file as it arrives (bounded memory), is hashed on the
        // way (one SHA-256 pass serves the metadata and the signature checks) and is installed
        // from there, as in the 2.5 mode.
        let mut package = self.package_file(&target_hash)?;
        let digest = client.download(&base, &form, limit, &mut package)?;
        plan.check_package(&digest)?;
        let signature = self.check_signature(&digest, &info, skip, &target_hash)?;
        if self.deferred {
            let target_state = json!({
                "signatures": status.signatures,
                "target_hash": target_hash,
                "sha256": digest.sha256_hex(),
                "target_metadata": status.target_metadata,
            });
            self.write_candidate(&target_hash, package.path(), &target_state)?;
            let mut s = self.settings()?;
            s.set_state("pending_hash", Value::String(target_hash.clone()));
            s.set_state("last_error", Value::Null);
            s.save_state()?;
            tracing::info!("Agent {target_hash} downloaded and verified; installation deferred.");
            return Ok(UpdateOutcome::Pending { hash: target_hash });
        }
        let outcome = self.install_file(package.path(), &target_hash);
        drop(package);
        let s = self.finish_install(&target_hash, &plan, &outcome)?;
        *push = None;
        // Push the new status; errors are ignored.
        form.mode = DeployMode::Status;
        form.aghash.clear();
        form.installed_aghash = s.get_str("installed_aghash").unwrap_or("").to_owned();
        form.last_error = truncate_last_error(s.get_str("last_error").unwrap_or("")).to_owned();
        let _ = client.post_candidates(std::slice::from_ref(&base), &form, self.status_limit);
        outcome?;
        tracing::info!("Agent {target_hash} installed.");
        Ok(UpdateOutcome::Installed {
            hash: target_hash,
            signature,
        })
    }

    fn candidate_path(&self, hash: &str) -> PathBuf {
        self.paths.var_dir.join(format!("new_agent_{hash}"))
    }

    /// Writes the install candidate (`{"agent_data": b64, "target_state": …}`, spec 3.2) for the
    /// package in `package`, base64-encoding it as a stream into a private temporary file that is
    /// then renamed into place.
    fn write_candidate(
        &self,
        hash: &str,
        package: &Path,
        target_state: &Value,
    ) -> Result<(), UpdateError> {
        let candidate = self.candidate_path(hash);
        let mut tmp = self.package_file(hash)?;
        let state =
            serde_json::to_vec(target_state).map_err(|e| UpdateError::Garbled(e.to_string()))?;
        let written = (|| -> io::Result<()> {
            let mut out = io::BufWriter::new(tmp.as_file_mut());
            out.write_all(b"{\"agent_data\": \"")?;
            {
                let mut encoder = base64::write::EncoderWriter::new(&mut out, &B64);
                io::copy(&mut fs::File::open(package)?, &mut encoder)?;
                encoder.finish()?;
            }
            out.write_all(b"\", \"target_state\": ")?;
            out.write_all(&state)?;
            out.write_all(b"}")?;
            out.into_inner()
                .map_err(io::IntoInnerError::into_error)?
                .sync_all()
        })();
        written.map_err(io_err(&candidate))?;
        tmp.persist(&candidate)
            .map_err(|e| io_err(&candidate)(e.error))?;
        if let Ok(dir) = fs::File::open(&self.paths.var_dir) {
            // Best effort: make the rename durable, as `write_atomic` does.
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Records the result of an install: on success `installed_aghash`, `last_update`, the
    /// accepted metadata versions, and clears `pending_hash`/`last_error`; on failure
    /// `last_error`.
    fn finish_install(
        &self,
        target_hash: &str,
        plan: &TargetPlan,
        outcome: &Result<(), UpdateError>,
    ) -> Result<Settings, UpdateError> {
        let mut s = self.settings()?;
        match outcome {
            Ok(()) => {
                s.set_state("installed_aghash", Value::String(target_hash.to_owned()));
                s.set_state("last_update", json!(self.now_f64()));
                s.set_state("pending_hash", Value::Null);
                if plan.targets.is_some() || plan.timestamp.is_some() {
                    let mut rollback = self.rollback_state(&s)?;
                    plan.accept(&mut rollback);
                    let value = serde_json::to_value(&rollback)
                        .map_err(|e| UpdateError::Garbled(e.to_string()))?;
                    s.set_state(ROLLBACK_STATE_KEY, value);
                }
                s.set_state("last_error", Value::Null);
            }
            Err(e) => s.set_state("last_error", Value::String(e.to_string())),
        }
        s.save_state()?;
        Ok(s)
    }

    /// `cmk-update-agent install`: installs a deferred update from its candidate file after
    /// checking its signatures again. `Ok(None)` when nothing is pending. A missing or
    /// tampered candidate clears `pending_hash`.
    pub fn install_pending(&self) -> Result<Option<UpdateOutcome>, UpdateError> {
        let _lock = self.lock()?;
        let mut s = self.settings()?;
        let Some(hash) = s.get_str("pending_hash").map(str::to_owned) else {
            return Ok(None);
        };
        let host = s.get_str("host_name").unwrap_or("").to_owned();
        let path = self.candidate_path(&hash);
        let keys = s.get_str_list("signature_keys");
        let fail =
            |s: &mut Settings, e: UpdateError| -> Result<Option<UpdateOutcome>, UpdateError> {
                s.set_state("pending_hash", Value::Null);
                s.set_state("last_error", Value::String(e.to_string()));
                s.save_state()?;
                let _ = fs::remove_file(&path);
                Err(e)
            };
        // The package is decoded from the candidate into a private file as a stream and hashed
        // on the way; undecodable base64 counts as a changed candidate.
        let mut package = match self.package_file(&hash) {
            Ok(p) => p,
            Err(e) => return fail(&mut s, e),
        };
        let read = if valid_aghash(&hash) {
            fs::File::open(&path).ok().map(|f| {
                let mut input = BufReader::with_capacity(agent_sign::DIGEST_BUFFER_BYTES, f);
                crate::stream::extract(&mut input, &["agent_data"], package.as_file_mut())
            })
        } else {
            None
        };
        let (doc, digest) = match read {
            Some(Ok(extracted)) => (
                serde_json::from_slice::<Value>(&extracted.rest).ok(),
                extracted.digest,
            ),
            Some(Err(StreamError::Base64(_) | StreamError::Syntax(_))) => {
                return fail(&mut s, UpdateError::CandidateTampered);
            }
            Some(Err(_)) | None => (None, None),
        };
        let Some(doc) = doc.filter(|_| !keys.is_empty()) else {
            return fail(&mut s, UpdateError::InconsistentPending);
        };
        let state = &doc["target_state"];
        let signatures: Vec<PackageSignature> =
            serde_json::from_value(state["signatures"].clone()).unwrap_or_default();
        let metadata: Option<TargetMetadata> =
            serde_json::from_value(state["target_metadata"].clone()).unwrap_or_default();
        if state["target_hash"].as_str() != Some(hash.as_str()) {
            return fail(&mut s, UpdateError::InconsistentPending);
        }
        // A candidate without `agent_data` holds an empty package, as before.
        let digest = digest.unwrap_or_else(|| PackageDigest::of(&[]));
        if let Some(sha) = state["sha256"].as_str()
            && digest.sha256_hex() != sha
        {
            return fail(&mut s, UpdateError::CandidateTampered);
        }
        let rollback = match self.rollback_state(&s) {
            Ok(r) => r,
            Err(e) => return fail(&mut s, e),
        };
        let info = TargetInfo {
            host_name: &host,
            platform: self.platform,
            target_hash: &hash,
            signatures: &signatures,
            metadata: metadata.as_ref(),
            trusted_keys: &keys,
            rollback: &rollback,
            clock: self.clock.as_ref(),
        };
        // Everything is checked again: the candidate file may have been changed on disk.
        let checked = self.gate(&info).and_then(|plan| {
            plan.check_package(&digest)?;
            let verified = self.verifier().verify_package(&digest, &info)?;
            Ok((plan, verified))
        });
        let (plan, verified) = match checked {
            Ok(x) => x,
            Err(e) => return fail(&mut s, e),
        };
        let outcome = self.install_file(package.path(), &hash);
        drop(package);
        self.finish_install(&hash, &plan, &outcome)?;
        let _ = fs::remove_file(&path);
        outcome?;
        tracing::info!("Agent {hash} installed.");
        Ok(Some(UpdateOutcome::Installed {
            hash,
            signature: Some(verified.signature_index),
        }))
    }

    /// Pre-download gate (section 2 step 1: unsigned, no keys, no trusted certificate) plus
    /// the verifier's metadata checks (expiry, host binding, rollback against the state).
    pub(crate) fn gate(&self, info: &TargetInfo<'_>) -> Result<TargetPlan, UpdateError> {
        if info.signatures.is_empty() {
            return Err(VerifyError::NotSigned.into());
        }
        if info.trusted_keys.is_empty() {
            return Err(VerifyError::NoKeysConfigured.into());
        }
        Ok(self.verifier().check_target(info)?)
    }

    /// A private temporary file in the var directory for a package of `hash`.
    pub(crate) fn package_file(&self, hash: &str) -> Result<tempfile::NamedTempFile, UpdateError> {
        let dir = &self.paths.var_dir;
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        tempfile::Builder::new()
            .prefix(&format!("new_agent_{hash}."))
            .tempfile_in(dir)
            .map_err(io_err(dir))
    }

    /// Runs the install command on the package in `path`.
    pub(crate) fn install_file(&self, path: &Path, hash: &str) -> Result<(), UpdateError> {
        let command = self.install.display();
        tracing::info!("Installing agent {hash} with {command}");
        let output = std::process::Command::new(&self.install.program)
            .args(&self.install.args)
            .arg(path)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| UpdateError::Install {
                command: command.clone(),
                reason: e.to_string(),
            })?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(UpdateError::Install {
                command,
                reason: format!(
                    "{}: {}",
                    output.status,
                    stderr.lines().next().unwrap_or("").trim()
                ),
            })
        }
    }

    /// Plug-in mode: serves the cached section while it is younger than the interval;
    /// otherwise runs the update, stores the error text as `last_error` (cleared on success),
    /// writes the cache and returns the section.
    pub fn plugin_output(&self, opts: &RunOptions) -> String {
        let interval = self
            .settings()
            .and_then(|s| Ok(s.interval()?))
            .unwrap_or(crate::settings::DEFAULT_INTERVAL);
        if let Ok(meta) = fs::metadata(&self.paths.cache_file) {
            let fresh = meta
                .modified()
                .ok()
                .and_then(|m| m.checked_add(Duration::from_secs(interval)))
                .is_some_and(|until| until > self.now());
            if fresh && let Ok(text) = fs::read_to_string(&self.paths.cache_file) {
                return text;
            }
        }
        self.run_and_record(opts)
    }

    /// Runs an update, records `last_error`, refreshes the cache and returns the section.
    ///
    /// In plug-in mode a run that failed after the server answered the status call sends one
    /// more `mode=status` call carrying the new `last_error` ("push status", spec 3.3), so the
    /// site sees the error before the next interval; errors of that call are ignored.
    pub fn run_and_record(&self, opts: &RunOptions) -> String {
        let mut push = None;
        let result = self.run_inner(opts, &mut push);
        let section = self.record_result(&result);
        if opts.mode == Mode::Plugin
            && let (Err(e), Some(push)) = (&result, push)
        {
            push.send(&e.to_string(), self.status_limit);
        }
        section
    }

    /// Records the result of [`run`](Self::run): stores the error text as `last_error`
    /// (clears it on success), refreshes the plug-in cache and returns the section.
    pub fn record_result(&self, result: &Result<UpdateOutcome, UpdateError>) -> String {
        let error = result.as_ref().err().map(ToString::to_string);
        if let Some(e) = &error {
            tracing::error!(target: agent_wire::FILE_ONLY_TARGET, "{e}");
        }
        let section = match self.settings() {
            Ok(mut s) => {
                s.set_state("last_error", error.map_or(Value::Null, Value::String));
                if let Err(e) = s.save_state() {
                    tracing::error!("{e}");
                }
                self.section(&s)
            }
            Err(e) => self.error_section(&format!(
                "{}{e}",
                error.map(|x| format!("{x}; ")).unwrap_or_default()
            )),
        };
        let cache = &self.paths.cache_file;
        if let Err(e) = agent_wire::fsutil::write_atomic(cache, section.as_bytes(), false)
            .and_then(|()| self.date_cache(self.now()))
        {
            tracing::warn!("{}: {e}", cache.display());
        }
        section
    }

    fn error_section(&self, error: &str) -> String {
        SectionLine {
            error: Some(error.to_owned()),
            ..SectionLine::default()
        }
        .render()
    }

    /// The `<<<cmk_update_agent_status:sep(0)>>>` section for the given settings.
    pub fn section(&self, s: &Settings) -> String {
        let text = |k: &str| s.get_str(k).map(str::to_owned);
        let line = SectionLine {
            last_check: s.get_f64("last_check"),
            last_update: s.get_f64("last_update"),
            aghash: text("installed_aghash"),
            pending_hash: text("pending_hash"),
            update_url: self.base_urls(s).into_iter().next(),
            trusted_certs: s
                .get_str_list("signature_keys")
                .iter()
                .map(|pem| self.verifier().describe_key(pem))
                .collect(),
            error: text("last_error"),
            host_name: text("host_name"),
        };
        line.render()
    }

    /// `--trust-cert`: if the server's certificate doesn't verify with the current trust,
    /// fetches it without verification (trust on first use) and adds it to
    /// `local_certificates`. Returns the added PEM, if any.
    pub fn trust_server_certificate(&self, server: &str) -> Result<Option<String>, UpdateError> {
        let mut s = self.settings()?;
        let client = Client::new(&s, false, self.timeout)?;
        let url = format!("https://{server}/");
        if client.agent.head(&url).call().is_ok() {
            return Ok(None);
        }
        let der = fetch_peer_certificate(server, self.timeout)?;
        let pem = to_pem(&der);
        tracing::warn!("Trusting the certificate of {server} without verification (--trust-cert)");
        let mut local = match s.state_value("local_certificates") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        if !local.iter().any(|v| v.as_str() == Some(pem.as_str())) {
            local.push(Value::String(pem.clone()));
        }
        s.set_state("local_certificates", Value::Array(local));
        s.save_state()?;
        Ok(Some(pem))
    }
}

/// This host's package platform, as the updater guesses it without `--os`: DEB where
/// `/usr/bin/dpkg` exists, else RPM where `/usr/bin/rpm` exists, else the tarball.
pub fn detect_platform() -> Platform {
    if Path::new("/usr/bin/dpkg").exists() {
        Platform::LinuxDeb
    } else if Path::new("/usr/bin/rpm").exists() {
        Platform::LinuxRpm
    } else {
        Platform::LinuxTgz
    }
}

/// Adds certificates the server handed out to the state's `local_certificates` (spec 3.2):
/// the cfg's `certificates` would hide them under the key `certificates`, and R22 trusts both.
fn merge_local_certificates(s: &mut Settings, received: &[String]) {
    let squash = |pem: &str| pem.split_whitespace().collect::<String>();
    let mut local = match s.state_value("local_certificates") {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::String(one)) => vec![Value::String(one.clone())],
        _ => Vec::new(),
    };
    let mut known: Vec<String> = local.iter().filter_map(Value::as_str).map(squash).collect();
    for pem in received {
        let key = squash(pem);
        if !key.is_empty() && !known.contains(&key) {
            known.push(key);
            local.push(Value::String(pem.clone()));
        }
    }
    s.set_state("local_certificates", Value::Array(local));
}

/// What a "push status" call after a failed plug-in run needs.
struct PushStatus {
    client: Client,
    base: String,
    form: DeployForm,
}

impl PushStatus {
    /// Sends the status form again with `error` as `last_error`; errors are ignored.
    fn send(mut self, error: &str, limit: u64) {
        self.form.mode = DeployMode::Status;
        self.form.aghash.clear();
        self.form.last_error = truncate_last_error(error).to_owned();
        if let Err(e) =
            self.client
                .post_candidates(std::slice::from_ref(&self.base), &self.form, limit)
        {
            tracing::debug!("push status failed (ignored): {e}");
        }
    }
}

/// A blocking HTTPS client configured from the settings.
#[derive(Clone)]
struct Client {
    agent: ureq::Agent,
}

impl Client {
    fn new(s: &Settings, insecure: bool, timeout: Duration) -> Result<Client, UpdateError> {
        let mut pems = s.get_str_list("certificates");
        pems.extend(s.get_str_list("local_certificates"));
        let mut roots = Vec::new();
        let mut pinned = Vec::new();
        for pem in &pems {
            for item in ureq::tls::parse_pem(pem.as_bytes()) {
                if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                    pinned.push(rustls_pki_types::CertificateDer::from(c.der().to_vec()));
                    roots.push(c);
                }
            }
        }
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
        if roots.is_empty() {
            tls = tls.root_certs(ureq::tls::RootCerts::WebPki);
        } else {
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)));
        }
        if insecure {
            tracing::warn!(
                "--insecure: the server's certificate is not verified (the connection is still encrypted)"
            );
            tls = tls.disable_verification(true);
        }
        let proxy = match s.proxy()? {
            ProxySetting::Direct => None,
            ProxySetting::Environment => ureq::Proxy::try_from_env(),
            ProxySetting::Explicit {
                protocol,
                server,
                port,
                user,
                password,
            } => Some(explicit_proxy(
                &protocol,
                &server,
                port,
                user.as_deref(),
                password.as_deref(),
            )?),
        };
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .proxy(proxy)
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("cmk-update-agent-rs/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = if pinned.is_empty() || insecure {
            config.new_agent()
        } else {
            use ureq::unversioned::transport::{
                ConnectProxyConnector, Connector as _, SocksConnector, TcpConnector,
            };
            // ureq's default chain with our TLS step (crate::tls explains why).
            let tls = crate::tls::TlsConnector::trusting(pinned).map_err(|e| {
                UpdateError::Connection {
                    url: "the deployment server".into(),
                    reason: format!("cannot set up TLS: {e}"),
                }
            })?;
            let chain =
                ().chain(SocksConnector::default())
                    .chain(ConnectProxyConnector::default())
                    .chain(TcpConnector::default())
                    .chain(tls);
            ureq::Agent::with_parts(
                config,
                chain,
                ureq::unversioned::resolver::DefaultResolver::default(),
            )
        };
        Ok(Client { agent })
    }

    /// If `base` is plain HTTP and the server redirects it to HTTPS, returns the HTTPS
    /// authority and base URL (section 3.3: the updater switches with a warning).
    fn https_redirect(&self, base: &str) -> Option<(String, String)> {
        let path = base
            .strip_prefix("http://")?
            .split_once('/')
            .map_or("", |(_, p)| p);
        let resp = self.agent.head(format!("{base}/")).call().ok()?;
        if !resp.status().is_redirection() {
            return None;
        }
        let location = resp.headers().get("location")?.to_str().ok()?;
        let authority = location
            .strip_prefix("https://")?
            .split('/')
            .next()?
            .to_owned();
        if authority.is_empty() {
            return None;
        }
        tracing::warn!("{base} redirects to HTTPS; using https://{authority}/{path}");
        Some((authority.clone(), format!("https://{authority}/{path}")))
    }

    fn send(
        &self,
        url: &str,
        pairs: &[(&str, &str)],
    ) -> Result<ureq::http::Response<ureq::Body>, UpdateError> {
        self.send_cookie(url, pairs, None)
    }

    fn send_cookie(
        &self,
        url: &str,
        pairs: &[(&str, &str)],
        cookie: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, UpdateError> {
        let mut req = self.agent.post(url);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let resp = req
            .send_form(pairs.iter().copied())
            .map_err(|e| UpdateError::Connection {
                url: url.to_owned(),
                reason: connection_reason(&e),
            })?;
        Ok(resp)
    }

    /// GUI login (`login.py` with `_login=1`, `_username`, `_password`; spec section 3.1).
    /// Returns the `Cookie` header value made of every cookie the answer sets (the session
    /// cookie's name is the server's business). No cookie means the login page came back:
    /// "Cannot authenticate".
    fn login(&self, base: &str, user: &str, password: &str) -> Result<String, UpdateError> {
        let url = format!("{base}/{LOGIN_PAGE}");
        let pairs = [
            ("_login", "1"),
            ("_username", user),
            ("_password", password),
        ];
        let resp = self.send(&url, &pairs)?;
        let status = resp.status().as_u16();
        let cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::trim)
            .filter(|pair| {
                pair.split_once('=')
                    .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty())
            })
            .map(str::to_owned)
            .collect();
        if cookies.is_empty() {
            if (200..400).contains(&status) {
                return Err(UpdateError::CannotAuthenticate);
            }
            return Err(UpdateError::Connection {
                url,
                reason: format!("HTTP status {status}"),
            });
        }
        Ok(cookies.join("; "))
    }

    /// POSTs a form and returns the envelope's `result`, reading at most `limit` bytes.
    fn post_json(
        &self,
        url: &str,
        pairs: &[(&str, &str)],
        limit: u64,
    ) -> Result<Value, UpdateError> {
        self.post_json_cookie(url, pairs, None, limit)
    }

    /// [`post_json`](Self::post_json) with a `Cookie` header.
    fn post_json_cookie(
        &self,
        url: &str,
        pairs: &[(&str, &str)],
        cookie: Option<&str>,
        limit: u64,
    ) -> Result<Value, UpdateError> {
        let resp = self.send_cookie(url, pairs, cookie)?;
        let status = resp.status();
        let mut body = Vec::new();
        let read = resp
            .into_body()
            .into_with_config()
            .reader()
            .take(limit.saturating_add(1))
            .read_to_end(&mut body);
        read.map_err(|e| UpdateError::Connection {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if body.len() as u64 > limit {
            return Err(UpdateError::TooLarge {
                url: url.to_owned(),
                limit,
            });
        }
        parse_envelope(url, status.as_u16(), &body)
    }

    /// Tries each base URL in order. Like Checkmk's updater it falls back on every error but
    /// the bakery's (spec 3.1: Checkmk's looks for "agent bakery" in the text, which is what
    /// [`UpdateError::Bakery`] says); those end the search.
    fn post_candidates(
        &self,
        bases: &[String],
        form: &DeployForm,
        limit: u64,
    ) -> Result<(Value, String), UpdateError> {
        let mut last = UpdateError::Missing("server and site");
        for base in bases {
            let url = format!("{base}/{DEPLOY_PAGE}");
            match self.post_json(&url, &form.pairs(), limit) {
                Ok(v) => return Ok((v, base.clone())),
                Err(e @ UpdateError::Bakery(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!("{e}; trying the next URL");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Downloads the package into `out` (a private file) as it arrives: the answer (at most
    /// `limit` bytes) is read as a stream, the package's base64 decoded on the fly and hashed on
    /// the way, the rest of the answer (bounded) read as before. Memory does not grow with the
    /// package size.
    fn download(
        &self,
        base: &str,
        form: &DeployForm,
        limit: u64,
        out: &mut tempfile::NamedTempFile,
    ) -> Result<PackageDigest, UpdateError> {
        let url = format!("{base}/{DEPLOY_PAGE}");
        let resp = self.send(&url, &form.pairs())?;
        let status = resp.status().as_u16();
        let mut reader = BufReader::with_capacity(
            agent_sign::DIGEST_BUFFER_BYTES,
            resp.into_body()
                .into_with_config()
                .limit(u64::MAX)
                .reader()
                .take(limit.saturating_add(1)),
        );
        let extracted =
            crate::stream::extract(&mut reader, &["result", "agent"], out.as_file_mut());
        if reader.get_ref().limit() == 0 {
            return Err(UpdateError::TooLarge { url, limit });
        }
        let extracted = extracted.map_err(|e| match e {
            StreamError::Read(e) => UpdateError::Connection {
                url: url.clone(),
                reason: e.to_string(),
            },
            StreamError::Write(e) => io_err(out.path())(e),
            other => UpdateError::Garbled(other.to_string()),
        })?;
        let result = parse_envelope(&url, status, &extracted.rest)?;
        // The rest's `agent` is "" when the package was streamed; a missing or mistyped field
        // is reported as before.
        serde_json::from_value::<AgentResult>(result)
            .map_err(|e| UpdateError::Garbled(e.to_string()))?;
        extracted
            .digest
            .ok_or_else(|| UpdateError::Garbled("missing field `agent`".into()))
    }
}

/// The cfg's explicit proxy. ureq's builder percent-encodes user and password, so characters
/// such as `#`, `@` or `:` in them survive (they would break a hand-made URL).
fn explicit_proxy(
    protocol: &str,
    server: &str,
    port: u16,
    user: Option<&str>,
    password: Option<&str>,
) -> Result<ureq::Proxy, UpdateError> {
    let invalid = |reason: String| UpdateError::Connection {
        url: format!("{protocol}://{server}:{port}"),
        reason: format!("invalid proxy: {reason}"),
    };
    let kind = ureq::ProxyProtocol::try_from(protocol).map_err(|e| invalid(e.to_string()))?;
    let mut builder = ureq::Proxy::builder(kind).host(server).port(port);
    if let Some(u) = user {
        builder = builder.username(u);
        if let Some(p) = password {
            builder = builder.password(p);
        }
    }
    builder.build().map_err(|e| invalid(e.to_string()))
}

/// The reason of a failed request, with a plain sentence for a CA certificate used as the
/// server's certificate (rustls says only `CaUsedAsEndEntity`).
fn connection_reason(e: &ureq::Error) -> String {
    let text = e.to_string();
    if text.contains("CaUsedAsEndEntity") {
        format!("{text}: {CA_AS_SERVER_CERTIFICATE}")
    } else {
        text
    }
}

fn envelope_result(env: Envelope) -> Result<Value, UpdateError> {
    if env.result_code == 0 {
        Ok(env.result)
    } else {
        let msg = match env.result {
            Value::String(s) => s,
            other => other.to_string(),
        };
        Err(UpdateError::Bakery(msg))
    }
}

/// Texts of a non-JSON answer that mean the login failed: the ones Checkmk's updater looks for
/// (its GUI's login error box, its English and German messages), plus traces of the login page.
const LOGIN_FAILURE_MARKERS: &[&str] = &[
    "<div id=\"login_error\">",
    "Permission denied",
    "Nicht angemeldet",
    "Invalid automation secret for user",
    "Ungültiges Automatisierungspasswort für Benutzer",
    "login.py",
    "_login",
    "Invalid credentials",
];

fn parse_envelope(url: &str, status: u16, body: &[u8]) -> Result<Value, UpdateError> {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(env) => envelope_result(env),
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
            if LOGIN_FAILURE_MARKERS.iter().any(|m| text.contains(m)) {
                Err(UpdateError::CannotAuthenticate)
            } else if !(200..300).contains(&status) {
                Err(UpdateError::Connection {
                    url: url.to_owned(),
                    reason: format!("HTTP status {status}"),
                })
            } else {
                Err(UpdateError::MissingJson)
            }
        }
    }
}

fn to_pem(der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Fetches the server's certificate chain without verifying it and returns the last
/// certificate (the issuer closest to the root; a self-signed server's own certificate) as DER.
fn fetch_peer_certificate(server: &str, timeout: Duration) -> Result<Vec<u8>, UpdateError> {
    let conn_err = |reason: String| UpdateError::Connection {
        url: format!("https://{server}/"),
        reason,
    };
    let (host, port) = match server.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_owned(), p.parse::<u16>().unwrap_or(443)),
        _ => (server.to_owned(), 443),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| conn_err(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(host.clone())
        .map_err(|e| conn_err(e.to_string()))?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| conn_err(e.to_string()))?;
    let mut sock =
        TcpStream::connect((host.as_str(), port)).map_err(|e| conn_err(e.to_string()))?;
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| conn_err(e.to_string()))?;
    }
    let chain = conn
        .peer_certificates()
        .ok_or_else(|| conn_err("no certificate".into()))?;
    let last = chain
        .last()
        .ok_or_else(|| conn_err("no certificate".into()))?;
    Ok(last.as_ref().to_vec())
}

/// Accepts any server certificate; used only to fetch it for `--trust-cert`.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_credentials_are_percent_encoded() {
        for protocol in ["http", "socks5"] {
            let proxy = explicit_proxy(
                protocol,
                "proxy.example",
                3128,
                Some("u@x"),
                Some("a#b:c/d"),
            )
            .expect("valid proxy");
            assert_eq!(proxy.username(), Some("u@x"));
            assert_eq!(proxy.password(), Some("a#b:c/d"));
            assert_eq!(proxy.host(), "proxy.example");
            assert_eq!(proxy.port(), 3128);
        }
    }
}
