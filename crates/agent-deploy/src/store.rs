//! Server-side state: users with registration rights, host secrets, per-host agent packages and
//! per-host status, all below one directory.
//!
//! ```text
//! <dir>/users                              name:pbkdf2-sha256:<iterations>:<salt b64>:<hash b64>
//! <dir>/hosts/<host>.json                  {"secret_sha256", "registered_at", "registered_by"} (0600)
//! <dir>/agents/<host>/<os>/current         the current target hash
//! <dir>/agents/<host>/<os>/<hash>/agent            package bytes
//! <dir>/agents/<host>/<os>/<hash>/signatures.json  [{"certificate", "signature"}] (`agent-sign sign`)
//! <dir>/agents/<host>/<os>/<hash>/metadata.json    optional signed targets (`agent-sign metadata targets`)
//! <dir>/agents/<host>/<os>/<hash>/timestamp.json   optional signed timestamp (`agent-sign metadata timestamp`)
//! <dir>/status/<host>.json                 per-host status (see [`HostStatus`])
//! ```
//!
//! With a bakery site ([`DeployStore::with_bakery`]) the server also serves what
//! `agent-bakery` baked under the site's `var/check_mk/agents/<platform>/` and applies the
//! deployment decision of the site's `global.mk` (see [`BakerySite`]).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::rand::SecureRandom as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use agent_sign::{
    LogEntry, LogRecord, PackageDigest, PackageSignature, SignedDocument, SigningLog, Targets,
    Timestamp,
};

use crate::stamp::Stamps;
use agent_wire::fsutil::write_atomic;
use agent_wire::{
    AgentResult, DeployForm, DeployMode, Envelope, HOST_SECRET_LEN, Platform, RegisterForm,
    RegisterResult, StatusResult, TargetMetadata, truncate_last_error, valid_aghash,
    valid_host_name,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// PBKDF2 iterations for newly hashed user secrets.
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;
const SECRET_ALPHABET: &[u8; 62] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Errors of the deployment server's store and endpoints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A state file is malformed.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Registration credentials were rejected.
    #[error("Cannot authenticate user {user:?}: invalid user or secret, or no registration rights")]
    UserAuth {
        /// The user name given.
        user: String,
    },
    /// The host name is not acceptable.
    #[error("Invalid host name {0:?}")]
    InvalidHost(String),
    /// The host is not registered or the host secret does not match.
    #[error("Host {host:?} is not registered or the host secret is wrong")]
    HostAuth {
        /// The host name given.
        host: String,
    },
    /// Unknown `os`.
    #[error("Unknown operating system {0:?}")]
    UnknownPlatform(String),
    /// The requested package is not the current target of the host.
    #[error("No agent {hash:?} for host {host:?} and {platform}")]
    NoSuchAgent {
        /// Host.
        host: String,
        /// Platform.
        platform: Platform,
        /// The requested hash.
        hash: String,
    },
    /// Metadata offered for publishing does not describe the package it is published with.
    #[error("target metadata for {host}/{platform} does not fit the package: {reason}")]
    Metadata {
        /// Host.
        host: String,
        /// Platform.
        platform: Platform,
        /// What does not fit.
        reason: String,
    },
    /// A signature offered for publishing was not made over the package by its certificate's
    /// key (signature lists are checked before anything is logged or published).
    #[error(
        "signature #{index} does not verify against the package ({reason}); nothing was published"
    )]
    Signature {
        /// 1-based position in the signature list.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A TLS certificate or key could not be loaded.
    #[error("{path}: {reason}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The signing log could not be read, checked or appended to.
    #[error("signing log {path}: {reason}")]
    SigningLog {
        /// The log file.
        path: PathBuf,
        /// What is wrong (e.g. the first line where the chain breaks).
        reason: String,
    },
    /// The deployment decision refuses the host (bakery.md §6.2): the master switch is off or
    /// the host is not selected. The text goes to the updater as `{"result_code": 1,
    /// "result": <text>}`, which shows it as `Agent Bakery: <text>`.
    #[error("{0}")]
    Refused(String),
    /// The bakery site's configuration or package layout could not be read.
    #[error("agent bakery site: {0}")]
    Bakery(#[from] agent_bakery::Error),
    /// A root document offered for publishing is unacceptable.
    #[error("root metadata {path}: {reason}")]
    RootMetadata {
        /// Where it is or would be stored.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ServerError + '_ {
    move |source| ServerError::Io {
        path: path.to_owned(),
        source,
    }
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A user with registration rights.
#[derive(Debug, Clone)]
struct UserHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

/// Hashes a registration secret for the users file: `pbkdf2-sha256:<iterations>:<salt>:<hash>`.
pub fn hash_user_secret(secret: &str, iterations: u32) -> Result<String, ServerError> {
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| ServerError::Io {
            path: PathBuf::from("<random>"),
            source: io::Error::other("no randomness"),
        })?;
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        secret.as_bytes(),
        &mut out,
    );
    Ok(format!(
        "pbkdf2-sha256:{iterations}:{}:{}",
        B64.encode(salt),
        B64.encode(out)
    ))
}

fn parse_users(path: &Path, text: &str) -> Result<HashMap<String, UserHash>, ServerError> {
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let corrupt = |reason: &str| ServerError::Corrupt {
            path: path.to_owned(),
            reason: format!("line {}: {reason}", n + 1),
        };
        let mut parts = line.split(':');
        let (Some(name), Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(corrupt(
                "expected name:pbkdf2-sha256:<iterations>:<salt>:<hash>",
            ));
        };
        let iterations = iter
            .parse::<u32>()
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(|| corrupt("bad iteration count"))?;
        let salt = B64.decode(salt).map_err(|_| corrupt("bad salt"))?;
        let hash = B64.decode(hash).map_err(|_| corrupt("bad hash"))?;
        if name.is_empty() || hash.len() != 32 {
            return Err(corrupt("bad name or hash length"));
        }
        users.insert(
            name.to_owned(),
            UserHash {
                iterations,
                salt,
                hash,
            },
        );
    }
    Ok(users)
}

/// Persistent registration of one host.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HostRecord {
    /// SHA-256 (hex) of the host secret; the secret itself is not stored.
    secret_sha256: String,
    registered_at: u64,
    registered_by: String,
}

/// Per-host status as kept in `status/<host>.json` and shown by `agent-deploy status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStatus {
    /// Host name.
    pub host_name: String,
    /// Registration time (epoch seconds).
    pub registered_at: Option<u64>,
    /// User who registered the host.
    pub registered_by: Option<String>,
    /// Platform the host reported last.
    pub platform: Option<String>,
    /// The configured target (`agents/<host>/<os>/current`) for the platform the host
    /// reported, or for the only platform published for it ([`DeployStore::statuses`]); in
    /// `status/<host>.json`, the target offered at the last contact.
    pub target_hash: Option<String>,
    /// Hash of the last package the host downloaded.
    pub downloaded_aghash: Option<String>,
    /// Hash the host reports as installed.
    pub installed_aghash: Option<String>,
    /// Last contact (epoch seconds).
    pub last_contact: Option<u64>,
    /// Last download (epoch seconds).
    pub last_download: Option<u64>,
    /// The host's last reported error.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct StatusBook {
    hosts: HashMap<String, HostStatus>,
    dirty: BTreeSet<String>,
}

/// A host's current package (signatures and metadata cached; bytes read on download).
#[derive(Debug)]
struct Target {
    hash: String,
    signatures: Vec<PackageSignature>,
    metadata: Option<TargetMetadata>,
    /// The package file.
    path: PathBuf,
}

/// A site whose Agent Bakery output the server serves (`agent-deploy serve --site-root`).
///
/// For a host and platform the server answers with, in this order:
///
/// 1. the deployment decision of the site's `global.mk` (bakery.md §6.2): with the master
///    switch `agent_deployment_enabled` off, or the host outside
///    `agent_deployment_host_selection`, every status and download call of a registered host
///    is refused with the bakery's text ([`agent_bakery::Decision::refusal`]). The decision
///    covers published packages too: the master switch is global. Registration is never
///    refused (§6.2.7);
/// 2. the package the bakery baked for the host (`references/<host>`, the agent hash as
///    `TargetHash`, the signatures of `agent-bakery bake --sign`/`sign`);
/// 3. only when the bakery has no package for that host and platform (e.g. `windows_msi`,
///    `solaris_pkg`, or a host the site does not monitor): a package published with
///    [`DeployStore::publish`] ("packages made elsewhere").
///
/// The bakery wins over `publish` so that a bake (including one that deactivates the updater,
/// §6.3) always reaches its hosts; an old hand-published package cannot shadow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BakerySite {
    /// The site root (`$OMD_ROOT`).
    pub root: PathBuf,
    /// The site id (`cmk/site` label, `match_site`).
    pub site_id: String,
}

struct Bakery {
    site: BakerySite,
    /// The site's configuration and the stamps of the files it was read from
    /// ([`site_files`]): re-read when one of them changes.
    cache: Mutex<Option<(Stamps, Arc<agent_bakery::SiteConfig>)>>,
    /// `sites.mk` ([`crate::relay::read_site_urls`]) and its stamp.
    sites: Mutex<Option<(Stamps, SiteUrls)>>,
}

type SiteUrls = Arc<HashMap<String, crate::relay::SiteUrl>>;

/// A file's SHA-256 (hex) with the modification time and size it was taken at.
type FileSha256 = (Option<SystemTime>, u64, String);

/// The site files the deployment decision reads: `global.mk` and everything below the
/// Setup directory.
fn site_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut out = vec![root.join(agent_bakery::GLOBAL_MK)];
    walk(&root.join(agent_bakery::WATO_DIR), &mut out);
    out
}

/// Extra values the server hands to updaters.
#[derive(Debug, Clone, Default)]
pub struct Advertise {
    /// `update_url` to hand out (unset = none).
    pub update_url: Option<String>,
    /// CA certificates (PEM) to hand out as `certificates`.
    pub certificates: Vec<String>,
}

/// The deployment server's state directory.
pub struct DeployStore {
    dir: PathBuf,
    users: RwLock<HashMap<String, UserHash>>,
    hosts: RwLock<HashMap<String, HostRecord>>,
    status: Mutex<StatusBook>,
    targets: Mutex<HashMap<(String, Platform, String), Arc<Target>>>,
    /// Published root documents (sorted by version) and the stamp of `roots/` they were
    /// read at.
    roots: Mutex<Option<(Stamps, Arc<Vec<SignedDocument>>)>>,
    /// GUI sessions: SHA-256 of the token → (user, expiry in Unix seconds, opened by the
    /// status view's CSRF-checked login).
    sessions: Mutex<HashMap<String, (String, u64, bool)>>,
    /// Serializes signing-log appends within this process (the lock file does across).
    log_lock: Mutex<()>,
    advertise: Advertise,
    bakery: Option<Bakery>,
    relay: Option<Arc<crate::relay::Relay>>,
    /// SHA-256 of package files by path, with the modification time and size it was taken at.
    package_sha256: Mutex<HashMap<PathBuf, FileSha256>>,
}

impl std::fmt::Debug for DeployStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DeployStore {
    /// Opens (and creates) a state directory, loading users, host registrations and statuses.
    pub fn open(dir: impl Into<PathBuf>, advertise: Advertise) -> Result<DeployStore, ServerError> {
        let dir = dir.into();
        for sub in ["hosts", "agents", "status"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let users = load_users(&dir.join("users"))?;
        let mut hosts = HashMap::new();
        let mut book = StatusBook::default();
        for (dirname, is_status) in [("hosts", false), ("status", true)] {
            let sub = dir.join(dirname);
            for entry in fs::read_dir(&sub).map_err(io_err(&sub))? {
                let entry = entry.map_err(io_err(&sub))?;
                let path = entry.path();
                let Some(host) = host_of_json_file(&path) else {
                    continue;
                };
                let text = fs::read(&path).map_err(io_err(&path))?;
                let corrupt = |e: serde_json::Error| ServerError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                };
                if is_status {
                    book.hosts
                        .insert(host, serde_json::from_slice(&text).map_err(corrupt)?);
                } else {
                    hosts.insert(host, serde_json::from_slice(&text).map_err(corrupt)?);
                }
            }
        }
        Ok(DeployStore {
            dir,
            users: RwLock::new(users),
            hosts: RwLock::new(hosts),
            status: Mutex::new(book),
            targets: Mutex::new(HashMap::new()),
            roots: Mutex::new(None),
            log_lock: Mutex::new(()),
            sessions: Mutex::new(HashMap::new()),
            advertise,
            bakery: None,
            relay: None,
            package_sha256: Mutex::new(HashMap::new()),
        })
    }

    /// Serves the packages `agent-bakery` baked for `site` and applies the site's deployment
    /// decision (see [`BakerySite`] for the precedence over published packages).
    pub fn with_bakery(mut self, site: BakerySite) -> DeployStore {
        self.bakery = Some(Bakery {
            site,
            cache: Mutex::new(None),
            sites: Mutex::new(None),
        });
        self
    }

    /// Relay mode (a remote site): the server forwards `register_agent.py` and
    /// `deploy_agent.py` to the central site through `relay` instead of answering them itself.
    pub fn with_relay(mut self, relay: Arc<crate::relay::Relay>) -> DeployStore {
        self.relay = Some(relay);
        self
    }

    /// The relay, in relay mode.
    pub fn relay(&self) -> Option<&Arc<crate::relay::Relay>> {
        self.relay.as_ref()
    }

    /// `update_url` and `certificates` for `host` (bakery.md §7, requirement 21): the URL and
    /// certificates of the site that monitors the host. For a host the bakery site's
    /// inventory places on another site, that site's from `sites.mk`. For a host of this
    /// site, the configured [`Advertise`] values; without an `update_url` there, this site's
    /// own from `sites.mk` in a distributed setup (one that names other sites), and none in
    /// a single site.
    pub fn advertised(&self, host: &str) -> (Option<String>, Option<Vec<String>>) {
        let nonempty = |c: &[String]| (!c.is_empty()).then(|| c.to_vec());
        if let Some(bakery) = &self.bakery
            && let Ok(Some(site)) = self.site_config()
            && let Some(h) = site.host(host)
        {
            let own = h.site == bakery.site.site_id;
            if !own || self.advertise.update_url.is_none() {
                let urls = self.site_urls(bakery);
                let distributed = urls.keys().any(|s| *s != bakery.site.site_id);
                match urls.get(&h.site) {
                    Some(u) if !own || (distributed && u.url.is_some()) => {
                        return (u.url.clone(), nonempty(&u.certificates));
                    }
                    None if !own => {
                        tracing::warn!(%host, site = %h.site, "no URL for the host's site in sites.mk");
                        return (None, None);
                    }
                    _ => {}
                }
            }
        }
        (
            self.advertise.update_url.clone(),
            nonempty(&self.advertise.certificates),
        )
    }

    fn site_urls(&self, bakery: &Bakery) -> SiteUrls {
        let stamps = Stamps::of([bakery.site.root.join(crate::relay::SITES_MK)]);
        let mut cache = lock(&bakery.sites);
        if let Some((read_at, urls)) = &*cache
            && read_at.still_valid(&stamps)
        {
            return Arc::clone(urls);
        }
        let urls = Arc::new(
            crate::relay::read_site_urls(&bakery.site.root).unwrap_or_else(|e| {
                tracing::error!("{e}");
                HashMap::new()
            }),
        );
        *cache = Some((stamps, Arc::clone(&urls)));
        urls
    }

    /// SHA-256 of a package file, cached while its modification time and size stay.
    fn file_sha256(&self, path: &Path) -> Result<String, ServerError> {
        let meta = fs::metadata(path).map_err(io_err(path))?;
        let (mtime, len) = (meta.modified().ok(), meta.len());
        if let Some((m, l, sha)) = lock(&self.package_sha256).get(path)
            && *m == mtime
            && *l == len
        {
            return Ok(sha.clone());
        }
        let bytes = fs::read(path).map_err(io_err(path))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        lock(&self.package_sha256).insert(path.to_owned(), (mtime, len, sha.clone()));
        Ok(sha)
    }

    /// The bakery site, if any.
    pub fn bakery_site(&self) -> Option<&BakerySite> {
        self.bakery.as_ref().map(|b| &b.site)
    }

    /// The bakery site's configuration (hosts, rules, `global.mk`), re-read when one of its
    /// files changed; `None` without a bakery site.
    pub fn site_config(&self) -> Result<Option<Arc<agent_bakery::SiteConfig>>, ServerError> {
        let Some(bakery) = &self.bakery else {
            return Ok(None);
        };
        let stamps = Stamps::of(site_files(&bakery.site.root));
        let mut cache = lock(&bakery.cache);
        if let Some((read_at, cfg)) = &*cache
            && read_at.still_valid(&stamps)
        {
            return Ok(Some(Arc::clone(cfg)));
        }
        let cfg = Arc::new(agent_bakery::SiteConfig::read(
            &bakery.site.root,
            &bakery.site.site_id,
        )?);
        *cache = Some((stamps, Arc::clone(&cfg)));
        Ok(Some(cfg))
    }

    /// The deployment decision for `host` (bakery.md §6.2, the same as `agent-bakery
    /// test-host`); `None` without a bakery site (everything is served).
    pub fn deployment_decision(
        &self,
        host: &str,
    ) -> Result<Option<agent_bakery::Decision>, ServerError> {
        Ok(self
            .site_config()?
            .map(|site| site.deployment_decision(host)))
    }

    /// The bakery's current package hash for a host (`references/<host>`).
    fn bakery_reference(&self, host: &str, platform: Platform) -> Option<String> {
        let bakery = self.bakery.as_ref()?;
        let p = agent_bakery::Platform::parse(platform.as_str()).ok()?;
        agent_bakery::Layout::new(&bakery.site.root).reference(p, host)
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds or replaces a user with registration rights in `<dir>/users` (atomic write).
    pub fn set_user(
        dir: &Path,
        name: &str,
        secret: &str,
        iterations: u32,
    ) -> Result<(), ServerError> {
        if name.is_empty() || name.contains([':', '\n', '#']) || name.trim() != name {
            return Err(ServerError::Corrupt {
                path: dir.join("users"),
                reason: format!("invalid user name {name:?}"),
            });
        }
        let path = dir.join("users");
        let old = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut out: String = old
            .lines()
            .filter(|l| l.split(':').next() != Some(name))
            .map(|l| format!("{l}\n"))
            .collect();
        out.push_str(&format!(
            "{name}:{}\n",
            hash_user_secret(secret, iterations)?
        ));
        write_atomic(&path, out.as_bytes(), false).map_err(io_err(&path))
    }

    /// Re-reads the users file.
    pub fn reload_users(&self) -> Result<(), ServerError> {
        let users = load_users(&self.dir.join("users"))?;
        *self
            .users
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = users;
        Ok(())
    }

    fn check_user(&self, name: &str, secret: &str) -> bool {
        let users = self
            .users
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match users.get(name) {
            Some(u) => ring::pbkdf2::verify(
                ring::pbkdf2::PBKDF2_HMAC_SHA256,
                u.iterations,
                &u.salt,
                secret.as_bytes(),
                &u.hash,
            )
            .is_ok(),
            None => {
                // Same work as for a known user, so that timing doesn't reveal user names.
                let mut out = [0u8; 32];
                let iters = NonZeroU32::new(DEFAULT_PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
                ring::pbkdf2::derive(
                    ring::pbkdf2::PBKDF2_HMAC_SHA256,
                    iters,
                    b"unknown-user-salt",
                    secret.as_bytes(),
                    &mut out,
                );
                false
            }
        }
    }

    /// `login.py`: checks a user's password (the same hashed secrets as for `_secret`) and
    /// opens a GUI session. Returns the session token (64 characters from a CSPRNG; only its
    /// SHA-256 is kept, for [`SESSION_LIFETIME_SECS`]).
    pub fn login(
        &self,
        user: &str,
        password: &str,
        now: SystemTime,
    ) -> Result<Zeroizing<String>, ServerError> {
        self.open_session(user, password, now, false)
    }

    /// Like [`login`](Self::login), for the status view's login form (whose CSRF token the
    /// caller has checked): the session lasts [`VIEW_SESSION_LIFETIME_SECS`] and is the only
    /// kind [`view_session_user`](Self::view_session_user) accepts, so that a session forced
    /// on a browser by a cross-site `login.py` post (without the form's token) shows nothing.
    pub fn login_view(
        &self,
        user: &str,
        password: &str,
        now: SystemTime,
    ) -> Result<Zeroizing<String>, ServerError> {
        self.open_session(user, password, now, true)
    }

    fn open_session(
        &self,
        user: &str,
        password: &str,
        now: SystemTime,
        view: bool,
    ) -> Result<Zeroizing<String>, ServerError> {
        if !self.check_user(user, password) {
            tracing::warn!(%user, "login refused");
            return Err(ServerError::UserAuth {
                user: user.to_owned(),
            });
        }
        let token = generate_host_secret()?;
        let mut sessions = lock(&self.sessions);
        let t = epoch(now);
        sessions.retain(|_, (_, expires, _)| *expires > t);
        let lifetime = if view {
            VIEW_SESSION_LIFETIME_SECS
        } else {
            SESSION_LIFETIME_SECS
        };
        sessions.insert(
            hex::encode(Sha256::digest(token.as_bytes())),
            (user.to_owned(), t + lifetime, view),
        );
        tracing::info!(%user, view, "GUI session opened");
        Ok(token)
    }

    /// The user of a live session token.
    pub fn session_user(&self, token: &str, now: SystemTime) -> Option<String> {
        self.live_session(token, now).map(|(user, _)| user)
    }

    /// The user of a live session opened by [`login_view`](Self::login_view).
    pub fn view_session_user(&self, token: &str, now: SystemTime) -> Option<String> {
        self.live_session(token, now)
            .and_then(|(user, view)| view.then_some(user))
    }

    fn live_session(&self, token: &str, now: SystemTime) -> Option<(String, bool)> {
        let key = hex::encode(Sha256::digest(token.as_bytes()));
        let sessions = lock(&self.sessions);
        sessions
            .get(&key)
            .filter(|(_, expires, _)| *expires > epoch(now))
            .map(|(user, _, view)| (user.clone(), *view))
    }

    /// Ends a session (logout); false when it was not open.
    pub fn logout(&self, token: &str) -> bool {
        let key = hex::encode(Sha256::digest(token.as_bytes()));
        lock(&self.sessions).remove(&key).is_some()
    }

    /// `register_agent.py` with a GUI session (`login.py` first) instead of `_secret`:
    /// `form.username`/`form.secret` are ignored; the session's user registers the host.
    pub fn register_with_session(
        &self,
        form: &RegisterForm,
        token: &str,
        now: SystemTime,
    ) -> Result<RegisterResult, ServerError> {
        if !valid_host_name(&form.host) {
            return Err(ServerError::InvalidHost(form.host.clone()));
        }
        let Some(user) = self.session_user(token, now) else {
            return Err(ServerError::UserAuth {
                user: "<session>".into(),
            });
        };
        self.create_host_secret(&form.host, &user, now)
    }

    /// `register_agent.py`: checks the user, creates a new host secret (replacing any old one).
    pub fn register(
        &self,
        form: &RegisterForm,
        now: SystemTime,
    ) -> Result<RegisterResult, ServerError> {
        if !valid_host_name(&form.host) {
            return Err(ServerError::InvalidHost(form.host.clone()));
        }
        if !self.check_user(&form.username, &form.secret) {
            tracing::warn!(user = %form.username, host = %form.host, "registration refused");
            return Err(ServerError::UserAuth {
                user: form.username.clone(),
            });
        }
        self.create_host_secret(&form.host, &form.username, now)
    }

    fn create_host_secret(
        &self,
        host: &str,
        user: &str,
        now: SystemTime,
    ) -> Result<RegisterResult, ServerError> {
        let secret = generate_host_secret()?;
        let record = HostRecord {
            secret_sha256: hex::encode(Sha256::digest(secret.as_bytes())),
            registered_at: epoch(now),
            registered_by: user.to_owned(),
        };
        let path = self.dir.join("hosts").join(format!("{}.json", host));
        let data = serde_json::to_vec_pretty(&record).map_err(|e| ServerError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&path, &data, false).map_err(io_err(&path))?;
        self.hosts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(host.to_owned(), record);
        self.update_status(host, true, |s| {
            s.registered_at = Some(epoch(now));
            s.registered_by = Some(user.to_owned());
        })?;
        tracing::info!(user = %user, host = %host, "host registered");
        // §6.2.7: registration ignores the selection; an unknown host gets `monitored: false`.
        let in_site = match self.site_config() {
            Ok(site) => site.is_some_and(|s| s.host(host).is_some()),
            Err(e) => {
                tracing::error!(%host, "registration: {e}");
                false
            }
        };
        let monitored = in_site || self.has_published_agent(host);
        let (update_url, certificates) = self.advertised(host);
        Ok(RegisterResult {
            host_secret: secret.to_string(),
            monitored,
            update_url,
            certificates,
        })
    }

    /// Checks a host secret in constant time.
    fn check_host(&self, host: &str, secret: &str) -> Result<(), ServerError> {
        let hosts = self
            .hosts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let given = Sha256::digest(secret.as_bytes());
        let ok = match hosts.get(host) {
            Some(rec) => {
                let stored = hex::decode(&rec.secret_sha256).unwrap_or_default();
                secret.len() == HOST_SECRET_LEN && constant_time_eq(&stored, &given)
            }
            None => false,
        };
        if ok {
            Ok(())
        } else {
            Err(ServerError::HostAuth {
                host: host.to_owned(),
            })
        }
    }

    /// `deploy_agent.py`: answers `mode=status` and `mode=agent` for the authenticated host.
    pub fn deploy(&self, form: &DeployForm, now: SystemTime) -> Result<Envelope, ServerError> {
        self.deploy_answer(form, now, false)
    }

    /// [`deploy`](Self::deploy) for a remote site's relay: a status answer that offers a
    /// package also names the SHA-256 of its bytes ([`crate::relay::PACKAGE_SHA256_KEY`]),
    /// which the relay checks its cache and downloads against. Updaters get Checkmk's answer
    /// from [`deploy`](Self::deploy), without the key.
    pub fn deploy_for_relay(
        &self,
        form: &DeployForm,
        now: SystemTime,
    ) -> Result<Envelope, ServerError> {
        self.deploy_answer(form, now, true)
    }

    fn deploy_answer(
        &self,
        form: &DeployForm,
        now: SystemTime,
        for_relay: bool,
    ) -> Result<Envelope, ServerError> {
        if !valid_host_name(&form.host) {
            return Err(ServerError::HostAuth {
                host: form.host.clone(),
            });
        }
        self.check_host(&form.host, &form.host_secret)?;
        let (answer, sha256) = self.answer_with_sha256(&form.host, form, now, for_relay)?;
        Ok(match answer {
            DeployAnswer::Status(result) => {
                let mut env = Envelope::ok(&*result);
                if let (Some(sha), serde_json::Value::Object(map)) = (sha256, &mut env.result) {
                    map.insert(
                        crate::relay::PACKAGE_SHA256_KEY.to_owned(),
                        serde_json::Value::String(sha),
                    );
                }
                env
            }
            DeployAnswer::Agent(bytes) => Envelope::ok(&AgentResult {
                agent: B64.encode(&bytes),
            }),
        })
    }

    /// The 2.5 direction: answers for `host`, which the caller has already authenticated
    /// (by its TLS client certificate); `form.host` and `form.host_secret` are ignored.
    pub fn deploy_authenticated(
        &self,
        host: &str,
        form: &DeployForm,
        now: SystemTime,
    ) -> Result<DeployAnswer, ServerError> {
        if !valid_host_name(host) {
            return Err(ServerError::InvalidHost(host.to_owned()));
        }
        Ok(self.answer_with_sha256(host, form, now, false)?.0)
    }

    /// The answer, and with `with_sha256`, for a status answer that offers a package, the
    /// SHA-256 of its bytes (handed out as [`crate::relay::PACKAGE_SHA256_KEY`] for relays to
    /// check against).
    fn answer_with_sha256(
        &self,
        host: &str,
        form: &DeployForm,
        now: SystemTime,
        with_sha256: bool,
    ) -> Result<(DeployAnswer, Option<String>), ServerError> {
        let platform = Platform::parse(&form.os)
            .ok_or_else(|| ServerError::UnknownPlatform(form.os.clone()))?;
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let last_error = nonempty(truncate_last_error(&form.last_error));
        // Only plausible hashes are recorded; anything else would be attacker-chosen text.
        let installed = Some(form.installed_aghash.as_str())
            .filter(|h| valid_aghash(h))
            .map(str::to_owned);
        if let Some(text) = self
            .deployment_decision(host)?
            .and_then(|d| d.refusal(host))
        {
            // The contact is recorded; the target is not offered.
            if form.mode == DeployMode::Status {
                self.update_status(host, false, |s| {
                    s.platform = Some(platform.to_string());
                    s.installed_aghash = installed;
                    s.last_error = last_error;
                    s.last_contact = Some(epoch(now));
                })?;
            }
            tracing::info!(%host, "refused: {text}");
            return Err(ServerError::Refused(text));
        }
        let target = self.current_target(host, platform)?;
        let target_hash = target.as_ref().map(|t| t.hash.clone());
        match form.mode {
            DeployMode::Status => {
                self.update_status(host, false, |s| {
                    s.platform = Some(platform.to_string());
                    s.target_hash = target_hash.clone();
                    s.installed_aghash = installed;
                    s.last_error = last_error;
                    s.last_contact = Some(epoch(now));
                })?;
                let root_metadata = self.roots().to_vec();
                let sha256 = match &target {
                    Some(t) if with_sha256 => Some(self.file_sha256(&t.path)?),
                    _ => None,
                };
                let (update_url, certificates) = self.advertised(host);
                let result = StatusResult {
                    root_metadata,
                    agent_available: target.is_some(),
                    target_hash,
                    signatures: target
                        .as_ref()
                        .map(|t| t.signatures.clone())
                        .unwrap_or_default(),
                    target_metadata: target.as_ref().and_then(|t| t.metadata.clone()),
                    update_url,
                    certificates,
                };
                Ok((DeployAnswer::Status(Box::new(result)), sha256))
            }
            DeployMode::Agent => {
                let no_agent = || ServerError::NoSuchAgent {
                    host: host.to_owned(),
                    platform,
                    hash: form.aghash.clone(),
                };
                let target = target.ok_or_else(no_agent)?;
                if target.hash != form.aghash {
                    return Err(no_agent());
                }
                let bytes = match fs::read(&target.path) {
                    Ok(b) => b,
                    // Removed by a bake since the status call.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(no_agent()),
                    Err(e) => return Err(io_err(&target.path)(e)),
                };
                self.update_status(host, true, |s| {
                    s.platform = Some(platform.to_string());
                    s.downloaded_aghash = Some(target.hash.clone());
                    s.last_download = Some(epoch(now));
                    s.last_contact = Some(epoch(now));
                })?;
                tracing::info!(%host, %platform, aghash = %target.hash, bytes = bytes.len(), "package sent");
                Ok((DeployAnswer::Agent(bytes), None))
            }
        }
    }

    fn target_dir(&self, host: &str, platform: Platform) -> PathBuf {
        self.dir.join("agents").join(host).join(platform.as_str())
    }

    /// The hash of the host's current package and whether it carries signatures (for the
    /// status view's prerequisites).
    pub(crate) fn target_signed(
        &self,
        host: &str,
        platform: Platform,
    ) -> Result<Option<(String, bool)>, ServerError> {
        Ok(self
            .current_target(host, platform)?
            .map(|t| (t.hash.clone(), !t.signatures.is_empty())))
    }

    /// The host's current package: the bakery's, else a published one ([`BakerySite`]).
    fn current_target(
        &self,
        host: &str,
        platform: Platform,
    ) -> Result<Option<Arc<Target>>, ServerError> {
        if let Some(bakery) = &self.bakery
            && let Ok(p) = agent_bakery::Platform::parse(platform.as_str())
            && let Some(pkg) = agent_bakery::host_package(&bakery.site.root, host, p)?
        {
            return Ok(Some(Arc::new(Target {
                hash: pkg.aghash,
                signatures: pkg.signatures,
                metadata: None,
                path: pkg.path,
            })));
        }
        self.published_target(host, platform)
    }

    fn published_target(
        &self,
        host: &str,
        platform: Platform,
    ) -> Result<Option<Arc<Target>>, ServerError> {
        let dir = self.target_dir(host, platform);
        let current = dir.join("current");
        let hash = match fs::read_to_string(&current) {
            Ok(h) => h.trim().to_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&current)(e)),
        };
        if !valid_aghash(&hash) {
            return Err(ServerError::Corrupt {
                path: current,
                reason: format!("invalid target hash {hash:?}"),
            });
        }
        let key = (host.to_owned(), platform, hash.clone());
        if let Some(t) = lock(&self.targets).get(&key) {
            return Ok(Some(Arc::clone(t)));
        }
        let pdir = dir.join(&hash);
        let sig_path = pdir.join("signatures.json");
        let signatures: Vec<PackageSignature> = match fs::read_to_string(&sig_path) {
            Ok(text) => {
                agent_sign::signatures_from_json(&text).map_err(|e| ServerError::Corrupt {
                    path: sig_path.clone(),
                    reason: e.to_string(),
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&sig_path)(e)),
        };
        let metadata = match read_document(&pdir.join("metadata.json"))? {
            Some(targets) => Some(TargetMetadata {
                targets,
                timestamp: read_document(&pdir.join("timestamp.json"))?,
            }),
            None => None,
        };
        let agent = pdir.join("agent");
        if !agent.is_file() {
            return Err(ServerError::Corrupt {
                path: agent,
                reason: "package file missing".into(),
            });
        }
        let target = Arc::new(Target {
            hash,
            signatures,
            metadata,
            path: agent,
        });
        lock(&self.targets).insert(key, Arc::clone(&target));
        Ok(Some(target))
    }

    /// Publishes a root document (`agent-sign metadata root`, a rotation signed by the old and
    /// the new root keys) as `roots/root.<version>.json`; every status answer hands out all
    /// published roots as `RootMetadata`, and updaters apply the versions above theirs one at
    /// a time. The server checks only that the document is a root signed by a threshold of its
    /// own keys (the chain is for the updater to check) and refuses a different document for
    /// an already published version. Returns the version.
    pub fn publish_root(&self, document: &SignedDocument) -> Result<u64, ServerError> {
        let dir = self.dir.join("roots");
        let bad = |path: &Path, reason: String| ServerError::RootMetadata {
            path: path.to_owned(),
            reason,
        };
        let trusted =
            agent_sign::TrustedRoot::bootstrap(document).map_err(|e| bad(&dir, e.to_string()))?;
        let version = trusted.root().version;
        let path = dir.join(format!("root.{version}.json"));
        let json = document.to_json().map_err(|e| bad(&path, e.to_string()))?;
        if let Some(existing) = read_document(&path)? {
            if existing == *document {
                return Ok(version);
            }
            return Err(bad(
                &path,
                format!("a different root version {version} is already published"),
            ));
        }
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        write_atomic(&path, json.as_bytes(), false).map_err(io_err(&path))?;
        tracing::info!(version, "root metadata published");
        Ok(version)
    }

    /// The published root documents, sorted by version; re-read when `roots/` changes (so
    /// that `publish-root` from another process is seen). Unreadable files are skipped with
    /// an error in the log.
    pub fn roots(&self) -> Arc<Vec<SignedDocument>> {
        let dir = self.dir.join("roots");
        // Root documents are written atomically (a rename into the directory), so the
        // directory's stamp changes with each of them.
        let stamps = Stamps::of([dir.clone()]);
        let mut cache = lock(&self.roots);
        if let Some((read_at, roots)) = &*cache
            && read_at.still_valid(&stamps)
        {
            return Arc::clone(roots);
        }
        let mut roots: Vec<(u64, SignedDocument)> = Vec::new();
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !(name.starts_with("root.") && name.ends_with(".json")) {
                    continue;
                }
                match read_document(&path) {
                    Ok(Some(doc)) => match agent_sign::TrustedRoot::bootstrap(&doc) {
                        Ok(root) => roots.push((root.root().version, doc)),
                        Err(e) => tracing::error!("{}: {e}", path.display()),
                    },
                    Ok(None) => {}
                    Err(e) => tracing::error!("{e}"),
                }
            }
        }
        roots.sort_by_key(|(v, _)| *v);
        let roots = Arc::new(roots.into_iter().map(|(_, d)| d).collect::<Vec<_>>());
        *cache = Some((stamps, Arc::clone(&roots)));
        roots
    }

    /// Publishes a package for one host and platform and makes it the current target.
    /// Returns its hash (the first 16 hex characters of the package's SHA-256).
    ///
    /// `signatures` is the list `agent-sign sign` writes; `metadata` holds the documents
    /// `agent-sign metadata targets` (and optionally `... timestamp`) write. The metadata must
    /// describe this package (host, platform, `aghash` = the returned hash, SHA-256, length)
    /// and the timestamp must name the targets document; their signatures are for the updater
    /// to check. Publishing the same package again replaces its signatures and metadata (e.g.
    /// with a fresh timestamp).
    pub fn publish(
        &self,
        host: &str,
        platform: Platform,
        package: &[u8],
        signatures: &[PackageSignature],
        metadata: Option<&TargetMetadata>,
    ) -> Result<String, ServerError> {
        if !valid_host_name(host) {
            return Err(ServerError::InvalidHost(host.to_owned()));
        }
        let hash = package_hash(package);
        let digest = PackageDigest::of(package);
        for (i, sig) in signatures.iter().enumerate() {
            sig.check(&digest).map_err(|e| ServerError::Signature {
                index: i + 1,
                reason: match e {
                    agent_sign::Error::NoValidSignature => {
                        "made over other bytes or by another key".to_owned()
                    }
                    other => other.to_string(),
                },
            })?;
        }
        if let Some(md) = metadata {
            check_metadata(md, host, platform, package, &hash).map_err(|reason| {
                ServerError::Metadata {
                    host: host.to_owned(),
                    platform,
                    reason,
                }
            })?;
        }
        // Logged before the package goes live: a package the log doesn't know is never served.
        self.log_publish(host, package, signatures, metadata)?;
        let pdir = self.target_dir(host, platform).join(&hash);
        let agent = pdir.join("agent");
        write_atomic(&agent, package, false).map_err(io_err(&agent))?;
        let sig_path = pdir.join("signatures.json");
        let sigs = agent_sign::signatures_to_json(signatures);
        write_atomic(&sig_path, sigs.as_bytes(), false).map_err(io_err(&sig_path))?;
        write_document(&pdir.join("metadata.json"), metadata.map(|m| &m.targets))?;
        write_document(
            &pdir.join("timestamp.json"),
            metadata.and_then(|m| m.timestamp.as_ref()),
        )?;
        lock(&self.targets).remove(&(host.to_owned(), platform, hash.clone()));
        self.set_current(host, platform, &hash)?;
        Ok(hash)
    }

    /// The server's append-only, hash-chained signing log (`<dir>/signing.log`,
    /// requirement 37).
    pub fn signing_log(&self) -> SigningLog {
        SigningLog::new(self.dir.join(SIGNING_LOG))
    }

    /// Records a publication in the signing log: one entry per package signature (SHA-256
    /// fingerprint of the certificate) and one per signature of the targets metadata (its
    /// key id), each with the package's SHA-256, the targets version (0 without metadata) and
    /// the host; an unsigned package gets one entry with the fingerprint `unsigned`. Appends
    /// under an exclusive lock (`signing.log.lock`, also across processes) after checking the
    /// whole chain, so a damaged log refuses publishing.
    fn log_publish(
        &self,
        host: &str,
        package: &[u8],
        signatures: &[PackageSignature],
        metadata: Option<&TargetMetadata>,
    ) -> Result<usize, ServerError> {
        let log = self.signing_log();
        let log_err = |reason: String| ServerError::SigningLog {
            path: log.path().to_owned(),
            reason,
        };
        let package_sha256 = hex::encode(Sha256::digest(package));
        let version = metadata
            .and_then(|m| m.targets.signed.get("version"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let mut fingerprints: Vec<String> = signatures
            .iter()
            .map(
                |sig| match agent_sign::Certificate::from_pem(&sig.certificate) {
                    Ok(cert) => cert.fingerprint_sha256(),
                    Err(_) => format!(
                        "unparsable-certificate:{}",
                        hex::encode(Sha256::digest(sig.certificate.as_bytes()))
                    ),
                },
            )
            .collect();
        if let Some(md) = metadata {
            fingerprints.extend(md.targets.signatures.iter().map(|s| s.keyid.clone()));
        }
        if fingerprints.is_empty() {
            fingerprints.push("unsigned".into());
        }
        let lock_path = self.dir.join(format!("{SIGNING_LOG}.lock"));
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        rustix::fs::flock(&lock_file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err(&lock_path)(e.into()))?;
        let _guard = lock(&self.log_lock);
        for key_fingerprint in &fingerprints {
            let record = LogRecord {
                key_fingerprint: key_fingerprint.clone(),
                package_sha256: package_sha256.clone(),
                version,
                hosts: vec![host.to_owned()],
                agent_hash: None,
            };
            log.append(record, &agent_sign::SystemClock)
                .map_err(|e| log_err(e.to_string()))?;
        }
        Ok(fingerprints.len())
    }

    /// Checks the signing log's chain (and the bakery's, when the store serves a bakery
    /// site) and compares them with what hosts report as installed: returns the entries and
    /// the hosts whose `installed_aghash` no log entry's package has (requirement 37's audit).
    pub fn audit_signing_log(&self) -> Result<SigningAudit, ServerError> {
        let log = self.signing_log();
        let entries = log.verify().map_err(|e| ServerError::SigningLog {
            path: log.path().to_owned(),
            reason: e.to_string(),
        })?;
        // The bakery's packages are served under their agent hash, recorded by the bakery's
        // own log when it signed them.
        let bakery_entries = match self.bakery_site() {
            Some(site) => {
                let log = SigningLog::new(site.root.join(agent_bakery::SIGNING_LOG));
                log.verify().map_err(|e| ServerError::SigningLog {
                    path: log.path().to_owned(),
                    reason: e.to_string(),
                })?
            }
            None => Vec::new(),
        };
        let known: std::collections::HashSet<&str> = entries
            .iter()
            .chain(&bakery_entries)
            .flat_map(|e| [e.package_sha256.get(..16), e.agent_hash.as_deref()])
            .flatten()
            .collect();
        let unrecorded = self
            .statuses()
            .into_iter()
            .filter_map(|s| {
                let installed = s.installed_aghash?;
                (!known.contains(installed.as_str())).then_some((s.host_name, installed))
            })
            .collect();
        let head = match fs::read_to_string(log.path()) {
            Ok(text) => text
                .lines()
                .last()
                .map(|l| hex::encode(Sha256::digest(l.as_bytes()))),
            Err(_) => None,
        };
        Ok(SigningAudit {
            entries,
            head,
            unrecorded,
            bakery_entries,
        })
    }

    /// Points a host's current target at an already published package (e.g. to roll back).
    pub fn set_current(
        &self,
        host: &str,
        platform: Platform,
        hash: &str,
    ) -> Result<(), ServerError> {
        let dir = self.target_dir(host, platform);
        if !valid_host_name(host) || !valid_aghash(hash) || !dir.join(hash).join("agent").is_file()
        {
            return Err(ServerError::NoSuchAgent {
                host: host.to_owned(),
                platform,
                hash: hash.to_owned(),
            });
        }
        let current = dir.join("current");
        write_atomic(&current, format!("{hash}\n").as_bytes(), false).map_err(io_err(&current))
    }

    /// Applies `change` to a host's status. Changes other than `last_contact` are written at
    /// once (atomically); contact times are written by [`flush`](Self::flush).
    fn update_status(
        &self,
        host: &str,
        force: bool,
        change: impl FnOnce(&mut HostStatus),
    ) -> Result<(), ServerError> {
        let snapshot = {
            let mut guard = lock(&self.status);
            let StatusBook { hosts, dirty } = &mut *guard;
            let entry = hosts.entry(host.to_owned()).or_insert_with(|| HostStatus {
                host_name: host.to_owned(),
                ..HostStatus::default()
            });
            let mut before = entry.clone();
            change(entry);
            before.last_contact = entry.last_contact;
            if !force && before == *entry {
                dirty.insert(host.to_owned());
                return Ok(());
            }
            dirty.remove(host);
            entry.clone()
        };
        self.write_status(&snapshot)
    }

    fn write_status(&self, status: &HostStatus) -> Result<(), ServerError> {
        let path = self
            .dir
            .join("status")
            .join(format!("{}.json", status.host_name));
        let data = serde_json::to_vec_pretty(status).map_err(|e| ServerError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&path, &data, false).map_err(io_err(&path))
    }

    /// Writes all statuses whose only change was the contact time. Returns how many.
    pub fn flush(&self) -> Result<usize, ServerError> {
        let pending: Vec<HostStatus> = {
            let mut book = lock(&self.status);
            let dirty = std::mem::take(&mut book.dirty);
            dirty
                .iter()
                .filter_map(|h| book.hosts.get(h).cloned())
                .collect()
        };
        for s in &pending {
            self.write_status(s)?;
        }
        Ok(pending.len())
    }

    /// Statuses of all registered or seen hosts and of hosts with a published agent, sorted by
    /// host name, each with its configured target.
    pub fn statuses(&self) -> Vec<HostStatus> {
        let book = lock(&self.status);
        let hosts = self
            .hosts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<HostStatus> = book.hosts.values().cloned().collect();
        for h in hosts.keys() {
            if !book.hosts.contains_key(h) {
                out.push(HostStatus {
                    host_name: h.clone(),
                    ..HostStatus::default()
                });
            }
        }
        drop(book);
        drop(hosts);
        // Hosts with a published agent that never registered nor called.
        if let Ok(entries) = fs::read_dir(self.dir.join("agents")) {
            for name in entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
            {
                if valid_host_name(&name) && !out.iter().any(|s| s.host_name == name) {
                    out.push(HostStatus {
                        host_name: name,
                        ..HostStatus::default()
                    });
                }
            }
        }
        for status in &mut out {
            self.fill_configured_target(status);
        }
        out.sort_by(|a, b| a.host_name.cmp(&b.host_name));
        out
    }

    /// Sets `target_hash` (and, when the host never reported one, `platform`) to the configured
    /// target: the `current` file of the reported platform, or of the only platform published
    /// for the host. Left as it is when that is ambiguous or unreadable.
    fn fill_configured_target(&self, status: &mut HostStatus) {
        let reported = status.platform.as_deref().and_then(Platform::parse);
        if self.bakery.is_some() {
            let baked: Vec<(Platform, String)> = match reported {
                Some(p) => vec![p],
                None => Platform::ALL.to_vec(),
            }
            .into_iter()
            .filter_map(|p| Some((p, self.bakery_reference(&status.host_name, p)?)))
            .collect();
            if let [(platform, hash)] = &baked[..] {
                status.target_hash = Some(hash.clone());
                status.platform = Some(platform.to_string());
                return;
            }
        }
        let platforms: Vec<Platform> = match reported {
            Some(p) => vec![p],
            None => Platform::ALL
                .into_iter()
                .filter(|p| {
                    self.target_dir(&status.host_name, *p)
                        .join("current")
                        .is_file()
                })
                .collect(),
        };
        let [platform] = platforms[..] else {
            return;
        };
        let current = self.target_dir(&status.host_name, platform).join("current");
        match fs::read_to_string(&current) {
            Ok(text) if valid_aghash(text.trim()) => {
                status.target_hash = Some(text.trim().to_owned());
                status.platform = Some(platform.to_string());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => status.target_hash = None,
            _ => {}
        }
    }

    fn has_published_agent(&self, host: &str) -> bool {
        self.dir.join("agents").join(host).is_dir()
    }

    /// How long registrations of hosts in no site are kept after their last registration
    /// or contact: the bakery site's `cleanup_abandoned_host_files` (seconds), else
    /// [`DEFAULT_ABANDONED_RETENTION`].
    pub fn abandoned_retention(&self) -> Result<Duration, ServerError> {
        let configured = self.site_config()?.and_then(|site| {
            match site.global("cleanup_abandoned_host_files") {
                Some(py_literal::PyValue::Int(secs)) => u64::try_from(*secs).ok(),
                _ => None,
            }
        });
        Ok(configured.map_or(DEFAULT_ABANDONED_RETENTION, Duration::from_secs))
    }

    /// Removes the registration and status of every host that is neither in the bakery
    /// site's inventory nor has a published agent, and whose last registration or contact
    /// is older than [`abandoned_retention`](Self::abandoned_retention) (spec bakery.md §6.4,
    /// requirement 18). Returns those hosts, sorted; with `dry_run` nothing is removed. An
    /// unreadable site configuration removes nothing (the error is returned).
    pub fn expire_abandoned(
        &self,
        now: SystemTime,
        dry_run: bool,
    ) -> Result<Vec<String>, ServerError> {
        let retention = self.abandoned_retention()?;
        let site = self.site_config()?;
        let cutoff = epoch(now).saturating_sub(retention.as_secs());
        let last_activity: HashMap<String, u64> = {
            let book = lock(&self.status);
            let hosts = self
                .hosts
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            hosts
                .iter()
                .map(|(name, record)| {
                    let contact = book.hosts.get(name).and_then(|s| s.last_contact);
                    (name.clone(), record.registered_at.max(contact.unwrap_or(0)))
                })
                .collect()
        };
        let mut expired: Vec<String> = last_activity
            .into_iter()
            .filter(|(host, last)| {
                *last < cutoff
                    && site.as_ref().is_none_or(|s| s.host(host).is_none())
                    && !self.has_published_agent(host)
            })
            .map(|(host, _)| host)
            .collect();
        expired.sort();
        if dry_run {
            return Ok(expired);
        }
        for host in &expired {
            self.unregister(host)?;
            lock(&self.status).hosts.remove(host);
            let path = self.dir.join("status").join(format!("{host}.json"));
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
            tracing::info!(%host, "registration of a host in no site expired");
        }
        Ok(expired)
    }

    /// Removes a host's registration (its secret stops working at once).
    pub fn unregister(&self, host: &str) -> Result<bool, ServerError> {
        if !valid_host_name(host) {
            return Err(ServerError::InvalidHost(host.to_owned()));
        }
        let path = self.dir.join("hosts").join(format!("{host}.json"));
        let existed = self
            .hosts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(host)
            .is_some();
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(existed),
            Err(e) => Err(io_err(&path)(e)),
        }
    }
}

/// `cleanup_abandoned_host_files`' default: registrations of hosts in no site are kept 30
/// days after their last registration or contact (spec bakery.md §6.4).
pub const DEFAULT_ABANDONED_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long a GUI session (`login.py`) stays valid: 10 minutes, enough for a registration.
pub const SESSION_LIFETIME_SECS: u64 = 600;

/// How long a session of the status view's login form stays valid: 8 hours (a working day at
/// the console; the session ends earlier on logout or a server restart).
pub const VIEW_SESSION_LIFETIME_SECS: u64 = 8 * 3600;

/// File name of the signing log in the state directory.
pub const SIGNING_LOG: &str = "signing.log";

/// Result of [`DeployStore::audit_signing_log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningAudit {
    /// The log entries (the chain is intact).
    pub entries: Vec<LogEntry>,
    /// SHA-256 (hex) of the last line: the chain protects every entry but the newest, so an
    /// auditor records this value elsewhere and compares it later. `None` for an empty log.
    pub head: Option<String>,
    /// `(host, installed_aghash)` of hosts running a package neither log recorded.
    pub unrecorded: Vec<(String, String)>,
    /// The entries of the Agent Bakery's signing log (`agent_bakery::SIGNING_LOG`) when the
    /// store serves a bakery site (its chain is intact too).
    pub bakery_entries: Vec<LogEntry>,
}

/// What [`DeployStore::deploy_authenticated`] answers.
#[derive(Debug, Clone, PartialEq)]
pub enum DeployAnswer {
    /// `mode=status`: the status result.
    Status(Box<StatusResult>),
    /// `mode=agent`: the package bytes.
    Agent(Vec<u8>),
}

/// The server's name for a package: the first 16 hex characters of its SHA-256. This is the
/// `aghash` (`--aghash`) that signed targets metadata must name.
pub fn package_hash(package: &[u8]) -> String {
    let mut hash = hex::encode(Sha256::digest(package));
    hash.truncate(16);
    hash
}

/// Checks that hardened metadata describes the package being published (no trust decision:
/// signatures are the updater's business).
fn check_metadata(
    md: &TargetMetadata,
    host: &str,
    platform: Platform,
    package: &[u8],
    hash: &str,
) -> Result<(), String> {
    if md.targets.kind() != Some("targets") {
        return Err(format!(
            "expected a targets document, got {:?}",
            md.targets.kind().unwrap_or("no _type")
        ));
    }
    let t: Targets = serde_json::from_value(md.targets.signed.clone())
        .map_err(|e| format!("targets document: {e}"))?;
    if t.host_name != host || t.platform != platform.as_str() {
        return Err(format!("it is for {}/{}", t.host_name, t.platform));
    }
    if t.aghash != hash {
        return Err(format!(
            "it names aghash {}, but the package's aghash is {hash} (the first 16 hex digits of its SHA-256)",
            t.aghash
        ));
    }
    t.check_package(package).map_err(|e| e.to_string())?;
    if let Some(ts) = &md.timestamp {
        if ts.kind() != Some("timestamp") {
            return Err(format!(
                "expected a timestamp document, got {:?}",
                ts.kind().unwrap_or("no _type")
            ));
        }
        let ts: Timestamp = serde_json::from_value(ts.signed.clone())
            .map_err(|e| format!("timestamp document: {e}"))?;
        let targets_sha = md.targets.signed_sha256().map_err(|e| e.to_string())?;
        if ts.targets_version != t.version || ts.targets_sha256 != targets_sha {
            return Err(format!(
                "the timestamp names targets version {}, not this targets document (version {})",
                ts.targets_version, t.version
            ));
        }
    }
    Ok(())
}

/// Reads an optional `agent-sign` metadata document.
fn read_document(path: &Path) -> Result<Option<SignedDocument>, ServerError> {
    match fs::read_to_string(path) {
        Ok(text) => SignedDocument::from_json(&text)
            .map(Some)
            .map_err(|e| ServerError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Writes an `agent-sign` metadata document as canonical JSON, or removes the file for `None`.
fn write_document(path: &Path, doc: Option<&SignedDocument>) -> Result<(), ServerError> {
    match doc {
        Some(d) => {
            let json = d.to_json().map_err(|e| ServerError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            write_atomic(path, json.as_bytes(), false).map_err(io_err(path))
        }
        None => match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(path)(e)),
        },
    }
}

fn load_users(path: &Path) -> Result<HashMap<String, UserHash>, ServerError> {
    match fs::read_to_string(path) {
        Ok(t) => parse_users(path, &t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Compares two byte strings without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// 64 characters of `[A-Za-z0-9]` from the system CSPRNG (rejection sampling, no modulo bias).
pub fn generate_host_secret() -> Result<Zeroizing<String>, ServerError> {
    let rng = ring::rand::SystemRandom::new();
    let mut out = Zeroizing::new(String::with_capacity(HOST_SECRET_LEN));
    let mut buf = Zeroizing::new([0u8; 96]);
    while out.len() < HOST_SECRET_LEN {
        rng.fill(&mut buf[..]).map_err(|_| ServerError::Io {
            path: PathBuf::from("<random>"),
            source: io::Error::other("no randomness"),
        })?;
        for &b in buf.iter() {
            // 248 = 4 * 62: values above are rejected to keep the distribution uniform.
            if b < 248 && out.len() < HOST_SECRET_LEN {
                out.push(char::from(SECRET_ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// The host a per-host state file `<host>.json` belongs to; `None` for any
/// other name (stray files in a state directory are left alone).
pub(crate) fn host_of_json_file(path: &Path) -> Option<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".json"))
        .filter(|h| valid_host_name(h))
        .map(str::to_owned)
}
