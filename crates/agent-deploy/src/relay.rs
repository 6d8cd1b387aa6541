//! Relay mode of a remote site (bakery.md §7, requirements 20–21): `register_agent.py`,
//! `login.py` and `deploy_agent.py` are forwarded to the central site over verified TLS (with
//! the remote's credentials as `Authorization: Bearer <user> <secret>` and its site id in the
//! form and the [`RELAY_SITE_HEADER`]), packages are cached by `(platform, aghash)` and served
//! from the cache when the central's status answer names them. The central decides
//! `update_url` and `certificates` (the site that monitors the host, from its `sites.mk`);
//! the relay passes them on.
//!
//! ```text
//! <cache>/index.json                    the cache index (written atomically)
//! <cache>/packages/<platform>/<aghash>  package bytes
//! <cache>/hosts/<host>.json             the central's last status answer for the host
//! ```
//!
//! Trust: a cached package is used only when its SHA-256 equals the `PackageSha256` of the
//! central's status answer that named it (the bytes are hashed again on every use, so a file
//! changed on disk is detected and fetched again). While the central is unreachable, a host is
//! answered from its last central answer only (and only when it presents the same host secret),
//! so a relay never hands out a package the central did not name for that host.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use py_literal::{PyValue, StatementKind};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use agent_wire::fsutil::write_atomic;
use agent_wire::{
    AgentResult, DEPLOY_PAGE, DeployForm, DeployMode, Envelope, HOST_SECRET_LEN, LOGIN_PAGE,
    LoginForm, Platform, REGISTER_PAGE, RegisterForm, RegisterResult, StatusResult, valid_aghash,
    valid_host_name,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Key of the status answer (our extension, ignored by Checkmk's updater) that names the
/// SHA-256 (hex) of the package bytes behind `TargetHash`; relays check cached and fetched
/// packages against it.
pub const PACKAGE_SHA256_KEY: &str = "PackageSha256";

/// Form field a relay adds to every forwarded call: the id of the remote site (spec §7, "ours").
pub const RELAY_SITE_FIELD: &str = "site";

/// Header a relay adds to every forwarded call, naming its site id like
/// [`RELAY_SITE_FIELD`]: our central then adds [`PACKAGE_SHA256_KEY`] to status answers
/// (updaters get Checkmk's answers unchanged).
pub const RELAY_SITE_HEADER: &str = "x-checkmk-remote-site";

/// Largest register or status answer a relay reads from the central.
pub const MAX_STATUS_ANSWER_BYTES: usize = 1024 * 1024;

/// Largest package answer (base64 in JSON) a relay reads from the central.
pub const MAX_AGENT_ANSWER_BYTES: usize = 512 * 1024 * 1024;

/// `sites.mk` of a Checkmk site (the distributed monitoring connections).
pub const SITES_MK: &str = "etc/check_mk/multisite.d/sites.mk";

/// Why a relay call failed; the text reaches the updater as `Agent Bakery: <text>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The central site could not be reached (connection, TLS, timeout, HTTP error).
    #[error("the central site {url} is unreachable: {reason}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The central site is unreachable and its last answer for the host named no package in
    /// this relay's cache.
    #[error(
        "the central site is unreachable ({reason}) and its last answer for host {host} names no package cached here"
    )]
    NoCachedAnswer {
        /// The host.
        host: String,
        /// Why the central was not asked.
        reason: String,
    },
    /// The central's answer was refused; nothing was cached.
    #[error("the central site's answer was refused: {0}")]
    BadAnswer(#[from] AnswerError),
    /// A cache file could not be read or written.
    #[error("relay cache {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The relay configuration is unusable.
    #[error("relay configuration: {0}")]
    Config(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RelayError + '_ {
    move |source| RelayError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What is wrong with an answer of the central site ([`parse_central_answer`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The answer is larger than the limit for its kind.
    #[error("the answer is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The answer is not a JSON envelope.
    #[error("the answer is not JSON ({0})")]
    NotJson(String),
    /// The envelope's `result` does not have the expected shape.
    #[error("the answer is garbled: {0}")]
    Garbled(String),
    /// The package's bytes do not have the SHA-256 the central named for them.
    #[error("the package {aghash} does not match the checksum the central site named for it")]
    Mismatch {
        /// The package's name.
        aghash: String,
    },
}

/// Which call an answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// `register_agent.py`.
    Register,
    /// `deploy_agent.py` with `mode=status`.
    Status,
    /// `deploy_agent.py` with `mode=agent`.
    Agent,
}

impl AnswerKind {
    /// The largest answer of this kind.
    pub fn limit(self) -> usize {
        match self {
            AnswerKind::Register | AnswerKind::Status => MAX_STATUS_ANSWER_BYTES,
            AnswerKind::Agent => MAX_AGENT_ANSWER_BYTES,
        }
    }
}

/// A checked answer of the central site.
#[derive(Debug, Clone, PartialEq)]
pub enum CentralAnswer {
    /// `result_code` 1: the central's refusal text, passed on to the updater unchanged.
    Refused(String),
    /// A registration: the new host secret and what goes with it.
    Register {
        /// The typed result.
        result: RegisterResult,
        /// The `result` as the central sent it (passed on).
        raw: serde_json::Value,
    },
    /// A status answer.
    Status {
        /// The typed result.
        result: Box<StatusResult>,
        /// SHA-256 (64 lower-case hex) of the package named by `TargetHash`; always present
        /// when a package is available.
        sha256: Option<String>,
        /// The `result` as the central sent it (passed on).
        raw: serde_json::Value,
    },
    /// A package download: the decoded bytes.
    Agent(Vec<u8>),
}

fn valid_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Reads an answer of the central site to a forwarded call: a JSON envelope
/// (`{"result_code", "result"}`) no larger than [`AnswerKind::limit`], whose `result` has the
/// shape of `kind`. A status answer that offers a package must name a valid `TargetHash` and
/// its [`PACKAGE_SHA256_KEY`]; a registration must carry a 64-character host secret. Pure
/// (bytes in, typed answer or error out), so that it can be fuzzed.
pub fn parse_central_answer(body: &[u8], kind: AnswerKind) -> Result<CentralAnswer, AnswerError> {
    if body.len() > kind.limit() {
        return Err(AnswerError::TooLarge {
            limit: kind.limit(),
        });
    }
    let env: Envelope =
        serde_json::from_slice(body).map_err(|e| AnswerError::NotJson(e.to_string()))?;
    if env.result_code != 0 {
        let text = match env.result {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        return Ok(CentralAnswer::Refused(text));
    }
    let garbled = |e: serde_json::Error| AnswerError::Garbled(e.to_string());
    match kind {
        AnswerKind::Register => {
            let result: RegisterResult =
                serde_json::from_value(env.result.clone()).map_err(garbled)?;
            if result.host_secret.len() != HOST_SECRET_LEN {
                return Err(AnswerError::Garbled(
                    "the host secret is not 64 characters long".into(),
                ));
            }
            Ok(CentralAnswer::Register {
                result,
                raw: env.result,
            })
        }
        AnswerKind::Status => {
            let result: StatusResult =
                serde_json::from_value(env.result.clone()).map_err(garbled)?;
            let sha256 = match env.result.get(PACKAGE_SHA256_KEY) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) if valid_sha256(s) => Some(s.clone()),
                Some(_) => {
                    return Err(AnswerError::Garbled(format!(
                        "{PACKAGE_SHA256_KEY} is not a SHA-256"
                    )));
                }
            };
            if result.agent_available {
                match &result.target_hash {
                    Some(h) if valid_aghash(h) => {}
                    _ => return Err(AnswerError::Garbled("invalid or missing TargetHash".into())),
                }
                if sha256.is_none() {
                    return Err(AnswerError::Garbled(format!(
                        "the package is offered without {PACKAGE_SHA256_KEY}"
                    )));
                }
            }
            Ok(CentralAnswer::Status {
                result: Box::new(result),
                sha256,
                raw: env.result,
            })
        }
        AnswerKind::Agent => {
            let result: AgentResult = serde_json::from_value(env.result).map_err(garbled)?;
            let bytes = B64
                .decode(result.agent.as_bytes())
                .map_err(|e| AnswerError::Garbled(format!("agent: {e}")))?;
            Ok(CentralAnswer::Agent(bytes))
        }
    }
}

/// SHA-256 (hex) of a package's bytes, as [`PACKAGE_SHA256_KEY`] names it.
pub fn package_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ---------------------------------------------------------------------------------------------
// Site settings

/// The relay settings of a site's `global.mk` (`agent_deployment_central`,
/// `agent_deployment_remote`, bakery.md §6.1 and §7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteRelaySettings {
    /// `agent_deployment_central.central_url` (protocol and `/check_mk/` included). Its
    /// presence makes a site a remote that relays.
    pub central_url: Option<String>,
    /// `agent_deployment_central.automation_user`, when a name is set.
    pub automation_user: Option<String>,
    /// `agent_deployment_remote.remote_url`.
    pub remote_url: Option<String>,
    /// `agent_deployment_remote.certificates` (PEM).
    pub certificates: Vec<String>,
    /// The CAs the site trusts for its own HTTPS calls ([`SITE_TRUST_STORE`], read by
    /// [`SiteRelaySettings::with_trust_store`]); they verify the central site unless the
    /// operator names other CAs.
    pub trusted_cas: Vec<CertificateDer<'static>>,
}

/// The site's trust store, relative to the site's root: Checkmk writes its "Trusted certificate
/// authorities for SSL" there at activation (the system's CAs included when "Trust system wide
/// configured CAs" is on), and points the site user's `SSL_CERT_FILE` at it.
pub const SITE_TRUST_STORE: &str = "var/ssl/ca-certificates.crt";

fn dict_get<'a>(v: &'a PyValue, key: &str) -> Option<&'a PyValue> {
    match v {
        PyValue::Dict(items) => items
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn str_list(v: Option<&PyValue>) -> Vec<String> {
    match v {
        Some(PyValue::List(items) | PyValue::Tuple(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn nonempty_str(v: Option<&PyValue>) -> Option<String> {
    v.and_then(PyValue::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl SiteRelaySettings {
    /// Reads the settings from a site's configuration (`global.mk`).
    pub fn read(site: &agent_bakery::SiteConfig) -> SiteRelaySettings {
        let central = site.global("agent_deployment_central");
        let remote = site.global("agent_deployment_remote");
        SiteRelaySettings {
            central_url: nonempty_str(central.and_then(|c| dict_get(c, "central_url"))),
            automation_user: nonempty_str(central.and_then(|c| dict_get(c, "automation_user"))),
            remote_url: nonempty_str(remote.and_then(|r| dict_get(r, "remote_url"))),
            certificates: str_list(remote.and_then(|r| dict_get(r, "certificates"))),
            trusted_cas: Vec::new(),
        }
    }

    /// These settings with the CAs of the trust store of the site at `site_root`
    /// ([`SITE_TRUST_STORE`]). A missing or empty store adds none, so the central site is
    /// then verified with the Mozilla roots; an unreadable or malformed one is an error
    /// naming the file.
    pub fn with_trust_store(mut self, site_root: &Path) -> Result<SiteRelaySettings, RelayError> {
        let path = site_root.join(SITE_TRUST_STORE);
        let pem = match fs::read(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(self),
            Err(e) => return Err(RelayError::Config(format!("{}: {e}", path.display()))),
        };
        self.trusted_cas = parse_pem_certificates(&pem)
            .map_err(|e| RelayError::Config(format!("{}: {e}", path.display())))?;
        Ok(self)
    }

    /// What the site's deployment server hands out to its updaters: `update_url` when given,
    /// else the site's `remote_url`; the site's certificates followed by
    /// `extra_certificates` (PEM).
    pub fn advertise(
        &self,
        update_url: Option<String>,
        extra_certificates: impl IntoIterator<Item = String>,
    ) -> crate::Advertise {
        crate::Advertise {
            update_url: update_url.or_else(|| self.remote_url.clone()),
            certificates: self
                .certificates
                .iter()
                .cloned()
                .chain(extra_certificates)
                .collect(),
        }
    }
}

/// What the central site knows of one site of its distributed setup (`sites.mk`): the URL
/// its updaters get as `update_url`, and the certificates that go with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteUrl {
    /// The site's `agent_deployment_remote.remote_url` (site-specific global setting), else
    /// its `multisiteurl`.
    pub url: Option<String>,
    /// The site's `agent_deployment_remote.certificates`.
    pub certificates: Vec<String>,
}

/// Reads `sites.mk` of the site at `root` (`sites.update({...})` or `sites = {...}`, never
/// run): site id → [`SiteUrl`]. A missing file is an empty map; statements of other shapes are
/// skipped.
pub fn read_site_urls(root: &Path) -> Result<HashMap<String, SiteUrl>, RelayError> {
    let path = root.join(SITES_MK);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let statements = py_literal::parse_statements(&text)
        .map_err(|e| RelayError::Config(format!("{}: {e}", path.display())))?;
    let mut out = HashMap::new();
    for st in statements {
        let dict = match st.kind {
            StatementKind::Assign { target, value, .. } if target.name == "sites" => value,
            StatementKind::Call {
                target,
                method,
                mut args,
            } if target.name == "sites" && method == "update" && args.len() == 1 => args.remove(0),
            _ => continue,
        };
        let PyValue::Dict(items) = dict else { continue };
        for (id, cfg) in items {
            let Some(id) = id.as_str() else { continue };
            let remote =
                dict_get(&cfg, "globals").and_then(|g| dict_get(g, "agent_deployment_remote"));
            let url = nonempty_str(remote.and_then(|r| dict_get(r, "remote_url")))
                .or_else(|| nonempty_str(dict_get(&cfg, "multisiteurl")));
            out.insert(
                id.to_owned(),
                SiteUrl {
                    url,
                    certificates: str_list(remote.and_then(|r| dict_get(r, "certificates"))),
                },
            );
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Package cache

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheEntry {
    platform: String,
    aghash: String,
    sha256: String,
    size: u64,
    /// Larger is more recent.
    last_used: u64,
    /// The signatures and metadata the central named with the package (`Signatures`,
    /// `TargetMetadata` of its status answer).
    #[serde(default)]
    signatures: serde_json::Value,
    #[serde(default)]
    metadata: serde_json::Value,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheIndex {
    entries: Vec<CacheEntry>,
}

type Key = (String, String);

#[derive(Debug)]
struct CacheState {
    entries: HashMap<Key, CacheEntry>,
    total: u64,
    tick: u64,
    dirty: bool,
    written: Instant,
}

/// A bounded, persistent cache of packages by `(platform, aghash)`: least recently used
/// packages are evicted beyond the size limit; the index is written atomically and validated
/// (or rebuilt from the files) on open.
#[derive(Debug)]
pub struct PackageCache {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<CacheState>,
}

/// The index is written at most this often for recency changes alone (inserts and evictions
/// write it at once).
const INDEX_WRITE_INTERVAL: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn cache_key(platform: Platform, aghash: &str) -> Option<Key> {
    valid_aghash(aghash).then(|| (platform.as_str().to_owned(), aghash.to_owned()))
}

impl PackageCache {
    /// Opens (and creates) the cache in `dir`, keeping at most `max_bytes` of packages. The
    /// index is checked against the files (a missing or resized file drops its entry, files
    /// without an entry are removed); a missing or unreadable index is rebuilt from the files.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<PackageCache, RelayError> {
        let dir = dir.into();
        let packages = dir.join("packages");
        fs::create_dir_all(&packages).map_err(io_err(&packages))?;
        let index_path = dir.join("index.json");
        let index: Option<CacheIndex> = match fs::read(&index_path) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(i) => Some(i),
                Err(e) => {
                    tracing::warn!("{}: {e}; rebuilding the index", index_path.display());
                    None
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&index_path)(e)),
        };
        let rebuild = index.is_none();
        let mut entries: HashMap<Key, CacheEntry> = HashMap::new();
        if let Some(index) = index {
            for e in index.entries {
                let Some(key) = Platform::parse(&e.platform).and_then(|p| cache_key(p, &e.aghash))
                else {
                    continue;
                };
                let path = packages.join(&key.0).join(&key.1);
                if fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == e.size) {
                    entries.insert(key, e);
                }
            }
        }
        // Files the index does not know: rebuilt into it, or removed.
        for p in Platform::ALL {
            let pdir = packages.join(p.as_str());
            let Ok(list) = fs::read_dir(&pdir) else {
                continue;
            };
            for f in list.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let path = f.path();
                let key = cache_key(p, &name);
                let known = key.as_ref().is_some_and(|k| entries.contains_key(k));
                if known {
                    continue;
                }
                match key {
                    Some(key) if rebuild => {
                        let bytes = fs::read(&path).map_err(io_err(&path))?;
                        entries.insert(
                            key.clone(),
                            CacheEntry {
                                platform: key.0,
                                aghash: key.1,
                                sha256: package_sha256(&bytes),
                                size: bytes.len() as u64,
                                last_used: 0,
                                signatures: serde_json::Value::Null,
                                metadata: serde_json::Value::Null,
                            },
                        );
                    }
                    _ => {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
        let total = entries.values().map(|e| e.size).sum();
        let tick = entries.values().map(|e| e.last_used).max().unwrap_or(0);
        let cache = PackageCache {
            dir,
            max_bytes,
            state: Mutex::new(CacheState {
                entries,
                total,
                tick,
                dirty: true,
                written: Instant::now(),
            }),
        };
        {
            let mut st = lock(&cache.state);
            cache.evict(&mut st, 0, None);
            cache.write_index(&mut st)?;
        }
        Ok(cache)
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join("packages").join(&key.0).join(&key.1)
    }

    fn write_index(&self, st: &mut CacheState) -> Result<(), RelayError> {
        let mut entries: Vec<CacheEntry> = st.entries.values().cloned().collect();
        entries.sort_by(|a, b| (&a.platform, &a.aghash).cmp(&(&b.platform, &b.aghash)));
        let path = self.dir.join("index.json");
        let data = serde_json::to_vec(&CacheIndex { entries }).map_err(|e| RelayError::Io {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomic(&path, &data, false).map_err(io_err(&path))?;
        st.dirty = false;
        st.written = Instant::now();
        Ok(())
    }

    /// Evicts least recently used entries (never `keep`) until `incoming` more bytes fit.
    fn evict(&self, st: &mut CacheState, incoming: u64, keep: Option<&Key>) {
        while st.total.saturating_add(incoming) > self.max_bytes {
            let Some(victim) = st
                .entries
                .iter()
                .filter(|(k, _)| Some(*k) != keep)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = st.entries.remove(&victim) {
                st.total = st.total.saturating_sub(e.size);
                tracing::info!(platform = %victim.0, aghash = %victim.1, "relay cache: evicted");
            }
            let _ = fs::remove_file(self.path(&victim));
            st.dirty = true;
        }
    }

    /// The cached package `(platform, aghash)` if its bytes have the SHA-256 `sha256`. A
    /// cached file whose bytes do not match (changed on disk, or cached for another checksum)
    /// is removed, so that the caller fetches it again.
    pub fn get(
        &self,
        platform: Platform,
        aghash: &str,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, RelayError> {
        let Some(key) = cache_key(platform, aghash) else {
            return Ok(None);
        };
        if !lock(&self.state).entries.contains_key(&key) {
            return Ok(None);
        }
        let path = self.path(&key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.remove(&key);
                return Ok(None);
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        if package_sha256(&bytes) != sha256 {
            tracing::warn!(
                platform = %key.0, aghash = %key.1,
                "relay cache: the cached package does not match the central's checksum; fetching it again"
            );
            self.remove(&key);
            return Ok(None);
        }
        let mut st = lock(&self.state);
        st.tick += 1;
        let tick = st.tick;
        if let Some(e) = st.entries.get_mut(&key) {
            e.last_used = tick;
            st.dirty = true;
        }
        if st.dirty && st.written.elapsed() >= INDEX_WRITE_INTERVAL {
            self.write_index(&mut st)?;
        }
        Ok(Some(bytes))
    }

    /// Whether `(platform, aghash)` is cached (the bytes are not checked).
    pub fn contains(&self, platform: Platform, aghash: &str) -> bool {
        cache_key(platform, aghash).is_some_and(|k| lock(&self.state).entries.contains_key(&k))
    }

    fn remove(&self, key: &Key) {
        let mut st = lock(&self.state);
        if let Some(e) = st.entries.remove(key) {
            st.total = st.total.saturating_sub(e.size);
            st.dirty = true;
        }
        let _ = fs::remove_file(self.path(key));
        if let Err(e) = self.write_index(&mut st) {
            tracing::error!("{e}");
        }
    }

    /// Stores a package whose bytes the caller has checked against `sha256`, evicting least
    /// recently used packages to stay within the limit. A package larger than the whole limit
    /// is not cached (false).
    pub fn put(
        &self,
        platform: Platform,
        aghash: &str,
        bytes: &[u8],
        signatures: serde_json::Value,
        metadata: serde_json::Value,
    ) -> Result<bool, RelayError> {
        let Some(key) = cache_key(platform, aghash) else {
            return Ok(false);
        };
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Ok(false);
        }
        let mut st = lock(&self.state);
        if let Some(old) = st.entries.remove(&key) {
            st.total = st.total.saturating_sub(old.size);
        }
        self.evict(&mut st, size, Some(&key));
        let path = self.path(&key);
        write_atomic(&path, bytes, false).map_err(io_err(&path))?;
        st.tick += 1;
        let tick = st.tick;
        st.entries.insert(
            key.clone(),
            CacheEntry {
                platform: key.0,
                aghash: key.1,
                sha256: package_sha256(bytes),
                size,
                last_used: tick,
                signatures,
                metadata,
            },
        );
        st.total += size;
        self.write_index(&mut st)?;
        Ok(true)
    }

    /// Bytes of the cached packages.
    pub fn total_bytes(&self) -> u64 {
        lock(&self.state).total
    }

    /// Number of cached packages.
    pub fn len(&self) -> usize {
        lock(&self.state).entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the index if recency changes are pending.
    pub fn flush(&self) -> Result<(), RelayError> {
        let mut st = lock(&self.state);
        if st.dirty {
            self.write_index(&mut st)?;
        }
        Ok(())
    }
}

impl Drop for PackageCache {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!("{e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Last answers per host

/// The central's last status answer for a host, kept so that the host can be answered while
/// the central is unreachable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LastAnswer {
    /// SHA-256 (hex) of the host secret that was accepted by the central with this answer.
    secret_sha256: String,
    platform: String,
    aghash: Option<String>,
    sha256: Option<String>,
    result: serde_json::Value,
}

#[derive(Debug)]
struct LastAnswers {
    dir: PathBuf,
    hosts: Mutex<HashMap<String, LastAnswer>>,
}

impl LastAnswers {
    fn open(dir: PathBuf) -> Result<LastAnswers, RelayError> {
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut hosts = HashMap::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            let path = e.path();
            let Some(host) = crate::store::host_of_json_file(&path) else {
                continue;
            };
            match fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<LastAnswer>(&b).ok())
            {
                Some(a) => {
                    hosts.insert(host, a);
                }
                None => {
                    tracing::warn!("{}: unreadable; removed", path.display());
                    let _ = fs::remove_file(&path);
                }
            }
        }
        Ok(LastAnswers {
            dir,
            hosts: Mutex::new(hosts),
        })
    }

    fn get(&self, host: &str) -> Option<LastAnswer> {
        lock(&self.hosts).get(host).cloned()
    }

    /// Records (or, with `None`, forgets) a host's last answer; the file is written only when
    /// the answer changed.
    fn set(&self, host: &str, answer: Option<LastAnswer>) -> Result<(), RelayError> {
        let path = self.dir.join(format!("{host}.json"));
        let mut hosts = lock(&self.hosts);
        match answer {
            Some(a) => {
                if hosts.get(host) == Some(&a) {
                    return Ok(());
                }
                let data = serde_json::to_vec(&a).map_err(|e| RelayError::Io {
                    path: path.clone(),
                    source: io::Error::other(e),
                })?;
                write_atomic(&path, &data, false).map_err(io_err(&path))?;
                hosts.insert(host.to_owned(), a);
            }
            None => {
                if hosts.remove(host).is_some() {
                    match fs::remove_file(&path) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => {
                            return Err(io_err(&path)(e));
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The relay

/// Configuration of a [`Relay`].
#[derive(Clone)]
pub struct RelayConfig {
    /// The central site's URL, protocol and `/check_mk/` included
    /// (`agent_deployment_central.central_url`).
    pub central_url: String,
    /// CA certificates (DER) that verify the central's TLS certificate, and no others; none =
    /// the Mozilla roots (webpki-roots). Verification is never switched off.
    pub central_ca: Vec<CertificateDer<'static>>,
    /// The remote site's user toward the central (sent as `Authorization: Bearer <user>
    /// <secret>`); empty = none.
    pub username: String,
    /// The remote site's secret toward the central.
    pub secret: Zeroizing<String>,
    /// The remote site's id, added to each forwarded form as [`RELAY_SITE_FIELD`].
    pub site_id: String,
    /// Cache directory.
    pub cache_dir: PathBuf,
    /// Bytes of packages the cache keeps.
    pub cache_max_bytes: u64,
    /// Time allowed for one call to the central (connect, send, answer).
    pub timeout: Duration,
    /// Calls to the central in flight at once.
    pub max_concurrent: usize,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("central_url", &self.central_url)
            .field("central_ca", &self.central_ca.len())
            .field("username", &self.username)
            .field("site_id", &self.site_id)
            .field("cache_dir", &self.cache_dir)
            .field("cache_max_bytes", &self.cache_max_bytes)
            .finish_non_exhaustive()
    }
}

/// The certificates of PEM text (for [`RelayConfig::central_ca`]); none is an error.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, RelayError> {
    let certs =
        parse_pem_certificates(pem).map_err(|e| RelayError::Config(format!("central CA: {e}")))?;
    if certs.is_empty() {
        return Err(RelayError::Config(
            "central CA: no certificate found".into(),
        ));
    }
    Ok(certs)
}

/// Every certificate of PEM text (other PEM sections are skipped); none is no error.
fn parse_pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject as _;
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// Default cache size of a relay.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// Settings that take the place of a site's relay settings ([`RelayConfig::for_site`]), as an
/// operator gives them on a command line.
#[derive(Debug, Clone, Default)]
pub struct RelayOverrides {
    /// The central site's URL instead of `agent_deployment_central.central_url`.
    pub central_url: Option<String>,
    /// Files of CA certificates (PEM) that verify the central site instead of the site's
    /// trusted CAs ([`SiteRelaySettings::trusted_cas`]; when there are none either, the Mozilla
    /// roots).
    pub central_ca_files: Vec<PathBuf>,
    /// The user toward the central site instead of `agent_deployment_central.automation_user`.
    pub central_user: Option<String>,
    /// A file holding the secret toward the central site (one line; its line end is dropped).
    pub central_secret_file: Option<PathBuf>,
    /// The package cache instead of `relay-cache/` in the state directory.
    pub cache_dir: Option<PathBuf>,
    /// Bytes the package cache keeps instead of [`DEFAULT_CACHE_MAX_BYTES`].
    pub cache_max_bytes: Option<u64>,
}

/// The certificates of the PEM file at `path` (for [`RelayConfig::central_ca`]).
fn read_central_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, RelayError> {
    let pem = fs::read(path).map_err(|e| RelayError::Config(format!("{}: {e}", path.display())))?;
    pem_certificates(&pem).map_err(|e| match e {
        RelayError::Config(reason) => RelayError::Config(format!("{}: {reason}", path.display())),
        other => other,
    })
}

impl RelayConfig {
    /// The relay configuration of the site `site_id`, whose deployment state is in
    /// `state_dir`: the site's `global.mk` settings, with `overrides` taking their place.
    /// `None` when neither names a central site: then the site is no relay.
    pub fn for_site(
        site_id: &str,
        state_dir: &Path,
        settings: &SiteRelaySettings,
        overrides: RelayOverrides,
    ) -> Result<Option<RelayConfig>, RelayError> {
        let Some(url) = overrides
            .central_url
            .or_else(|| settings.central_url.clone())
        else {
            return Ok(None);
        };
        let cache_dir = overrides
            .cache_dir
            .unwrap_or_else(|| state_dir.join("relay-cache"));
        let mut cfg = RelayConfig::new(&url, site_id, cache_dir);
        if let Some(bytes) = overrides.cache_max_bytes {
            cfg.cache_max_bytes = bytes;
        }
        if overrides.central_ca_files.is_empty() {
            cfg.central_ca.clone_from(&settings.trusted_cas);
        }
        for path in &overrides.central_ca_files {
            cfg.central_ca.extend(read_central_ca(path)?);
        }
        if let Some(user) = overrides
            .central_user
            .or_else(|| settings.automation_user.clone())
        {
            cfg.username = user;
        }
        if let Some(path) = &overrides.central_secret_file {
            let text = Zeroizing::new(
                fs::read_to_string(path)
                    .map_err(|e| RelayError::Config(format!("{}: {e}", path.display())))?,
            );
            *cfg.secret = text.trim_end_matches(['\r', '\n']).to_owned();
        }
        Ok(Some(cfg))
    }

    /// A configuration with the default limits (1 GiB cache, 30 s per call, 8 calls at once).
    pub fn new(central_url: &str, site_id: &str, cache_dir: impl Into<PathBuf>) -> RelayConfig {
        RelayConfig {
            central_url: central_url.to_owned(),
            central_ca: Vec::new(),
            username: String::new(),
            secret: Zeroizing::new(String::new()),
            site_id: site_id.to_owned(),
            cache_dir: cache_dir.into(),
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            timeout: Duration::from_secs(30),
            max_concurrent: 8,
        }
    }
}

/// Counters of a [`Relay`] (since it started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RelayStats {
    /// Calls sent to the central.
    pub central_requests: u64,
    /// Package downloads sent to the central.
    pub central_downloads: u64,
    /// Answer bytes read from the central.
    pub central_bytes: u64,
    /// Downloads answered from the cache.
    pub cache_hits: u64,
    /// Downloads that had to be fetched from the central.
    pub cache_misses: u64,
    /// Status calls answered from a host's last answer while the central was unreachable.
    pub offline_answers: u64,
}

#[derive(Debug, Default)]
struct Counters {
    central_requests: AtomicU64,
    central_downloads: AtomicU64,
    central_bytes: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    offline_answers: AtomicU64,
}

/// A remote site's relay toward the central site. Its calls block (run them off the async
/// runtime, as the server does); at most [`RelayConfig::max_concurrent`] of them talk to the
/// central at once.
pub struct Relay {
    central_url: String,
    site_id: String,
    authorization: Option<Zeroizing<String>>,
    agent: ureq::Agent,
    cache: PackageCache,
    answers: LastAnswers,
    slots: (Mutex<usize>, std::sync::Condvar),
    max_concurrent: usize,
    /// One fetch per package at a time: concurrent misses wait for the first one.
    fetching: Mutex<HashMap<Key, Arc<Mutex<()>>>>,
    counters: Counters,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("central_url", &self.central_url)
            .field("site_id", &self.site_id)
            .finish_non_exhaustive()
    }
}

/// What a relayed `deploy_agent.py` call answers.
#[derive(Debug)]
pub enum RelayAnswer {
    /// An envelope (status answers, refusals, errors).
    Envelope(Envelope),
    /// A package answer, already serialized (`{"result_code": 0, "result": {"agent": …}}`).
    Package(Vec<u8>),
    /// The central's HTML page (its login page), passed on.
    Page(Vec<u8>),
}

/// An answer of the central passed on as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    /// HTTP status.
    pub status: u16,
    /// `Location` header.
    pub location: Option<String>,
    /// `Set-Cookie` headers.
    pub set_cookie: Vec<String>,
    /// The body (bounded).
    pub body: Vec<u8>,
}

enum Sent {
    Answer(CentralAnswer),
    Unreachable(RelayError),
}

impl Relay {
    /// Opens the cache and builds the TLS client.
    pub fn new(cfg: RelayConfig) -> Result<Relay, RelayError> {
        let mut url = cfg.central_url.trim().to_owned();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(RelayError::Config(format!(
                "central URL {url:?} must start with https:// (or http://)"
            )));
        }
        if !url.ends_with('/') {
            url.push('/');
        }
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
        tls = if cfg.central_ca.is_empty() {
            tls.root_certs(ureq::tls::RootCerts::WebPki)
        } else {
            let certs = cfg
                .central_ca
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
        };
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(cfg.timeout))
            .max_idle_connections_per_host(cfg.max_concurrent.max(1))
            .user_agent(concat!("agent-deploy-relay/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let authorization = (!cfg.username.is_empty())
            .then(|| Zeroizing::new(format!("Bearer {} {}", cfg.username, cfg.secret.as_str())));
        Ok(Relay {
            central_url: url,
            site_id: cfg.site_id.clone(),
            authorization,
            agent,
            cache: PackageCache::open(&cfg.cache_dir, cfg.cache_max_bytes)?,
            answers: LastAnswers::open(cfg.cache_dir.join("hosts"))?,
            slots: (Mutex::new(0), std::sync::Condvar::new()),
            max_concurrent: cfg.max_concurrent.max(1),
            fetching: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    /// The package cache.
    pub fn cache(&self) -> &PackageCache {
        &self.cache
    }

    /// The counters.
    pub fn stats(&self) -> RelayStats {
        let c = &self.counters;
        RelayStats {
            central_requests: c.central_requests.load(Ordering::Relaxed),
            central_downloads: c.central_downloads.load(Ordering::Relaxed),
            central_bytes: c.central_bytes.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            cache_misses: c.cache_misses.load(Ordering::Relaxed),
            offline_answers: c.offline_answers.load(Ordering::Relaxed),
        }
    }

    /// POSTs a form (plus the relay's site id) to the central and reads the answer (at most
    /// `limit` bytes, one more to detect oversized answers), within the concurrency limit.
    fn post(
        &self,
        page: &str,
        pairs: &[(&str, &str)],
        cookie: Option<&str>,
        limit: usize,
    ) -> Result<RawAnswer, RelayError> {
        let url = format!("{}{page}", self.central_url);
        let unreachable = |reason: String| RelayError::Unreachable {
            url: url.clone(),
            reason,
        };
        let _slot = self.slot();
        self.counters
            .central_requests
            .fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .agent
            .post(&url)
            .header(RELAY_SITE_HEADER, &self.site_id);
        if let Some(auth) = &self.authorization {
            req = req.header("authorization", auth.as_str());
        }
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let mut pairs = pairs.to_vec();
        pairs.push((RELAY_SITE_FIELD, &self.site_id));
        let resp = req
            .send_form(pairs.iter().copied())
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let header = |name: &str| -> Vec<String> {
            resp.headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect()
        };
        let location = header("location").into_iter().next();
        let set_cookie = header("set-cookie");
        let mut body = Vec::new();
        let read = resp
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader()
            .take(limit as u64 + 1)
            .read_to_end(&mut body);
        self.counters
            .central_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        read.map_err(|e| unreachable(e.to_string()))?;
        Ok(RawAnswer {
            status,
            location,
            set_cookie,
            body,
        })
    }

    /// [`post`](Self::post), the answer checked by [`parse_central_answer`].
    fn send(&self, page: &str, pairs: &[(&str, &str)], kind: AnswerKind) -> Sent {
        let raw = match self.post(page, pairs, None, kind.limit()) {
            Ok(r) => r,
            Err(e) => return Sent::Unreachable(e),
        };
        match parse_central_answer(&raw.body, kind) {
            Ok(a) => Sent::Answer(a),
            // A proxy's or a failing server's error page: the central is not answering.
            Err(AnswerError::NotJson(_)) if !(200..300).contains(&raw.status) => {
                Sent::Unreachable(RelayError::Unreachable {
                    url: format!("{}{page}", self.central_url),
                    reason: format!("HTTP status {}", raw.status),
                })
            }
            Err(e) => {
                tracing::warn!(page, "refused the central's answer: {e}");
                Sent::Unreachable(RelayError::BadAnswer(e))
            }
        }
    }

    /// Forwards a GUI login (`login.py`) to the central; its answer (the session cookie and
    /// redirect, or the login page) is passed back as it came.
    pub fn login(&self, form: &LoginForm) -> Result<RawAnswer, RelayError> {
        let pairs = [
            ("_login", form.login.as_str()),
            ("_username", form.username.as_str()),
            ("_password", form.password.as_str()),
        ];
        self.post(LOGIN_PAGE, &pairs, None, MAX_STATUS_ANSWER_BYTES)
    }

    fn slot(&self) -> SlotGuard<'_> {
        let (m, cv) = &self.slots;
        let mut n = lock(m);
        while *n >= self.max_concurrent {
            n = cv
                .wait(n)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *n += 1;
        SlotGuard(self)
    }

    /// Forwards `register_agent.py` to the central: with automation credentials in the form,
    /// or with `cookie` (the `Cookie` header of a GUI session opened through
    /// [`login`](Self::login)). A login page the central answers with (an expired session) is
    /// passed back as [`RelayAnswer::Page`], so that the updater reports "Cannot authenticate".
    pub fn register(&self, form: &RegisterForm, cookie: Option<&str>) -> RelayAnswer {
        let pairs = [
            ("host", form.host.as_str()),
            ("_username", form.username.as_str()),
            ("_secret", form.secret.as_str()),
            ("au_api", agent_wire::AU_API),
        ];
        let kind = AnswerKind::Register;
        let raw = match self.post(REGISTER_PAGE, &pairs, cookie, kind.limit()) {
            Ok(r) => r,
            Err(e) => return RelayAnswer::Envelope(Envelope::error(e.to_string())),
        };
        let env = match parse_central_answer(&raw.body, kind) {
            Ok(CentralAnswer::Register { raw, .. }) => Envelope {
                result_code: 0,
                result: raw,
            },
            Ok(CentralAnswer::Refused(text)) => Envelope::error(text),
            Ok(_) => Envelope::error("internal error on the relay"),
            Err(AnswerError::NotJson(_)) if (200..300).contains(&raw.status) => {
                return RelayAnswer::Page(raw.body);
            }
            Err(e) => Envelope::error(RelayError::BadAnswer(e).to_string()),
        };
        RelayAnswer::Envelope(env)
    }

    /// Answers `deploy_agent.py`: status calls are forwarded (and answered from the host's last
    /// central answer while the central is unreachable), downloads come from the cache when the
    /// host's last central answer named that package, else from the central.
    pub fn deploy(&self, form: &DeployForm) -> RelayAnswer {
        let Some(platform) = Platform::parse(&form.os) else {
            return RelayAnswer::Envelope(Envelope::error(format!(
                "Unknown operating system {:?}",
                form.os
            )));
        };
        if !valid_host_name(&form.host) {
            return RelayAnswer::Envelope(Envelope::error(format!(
                "Host {:?} is not registered or the host secret is wrong",
                form.host
            )));
        }
        tracing::info!(host = %form.host, mode = ?form.mode, "relayed call");
        let result = match form.mode {
            DeployMode::Status => self.status(form, platform).map(RelayAnswer::Envelope),
            DeployMode::Agent => self.agent(form, platform),
        };
        result.unwrap_or_else(|e| {
            tracing::warn!(host = %form.host, "relay: {e}");
            RelayAnswer::Envelope(Envelope::error(e.to_string()))
        })
    }

    fn secret_sha256(form: &DeployForm) -> String {
        hex::encode(Sha256::digest(form.host_secret.as_bytes()))
    }

    /// Forwards a status call; records the host's answer. `Ok(Err(text))` is the central's
    /// refusal.
    fn forward_status(
        &self,
        form: &DeployForm,
        platform: Platform,
    ) -> Result<Result<LastAnswer, String>, RelayError> {
        let mut status_form = form.clone();
        status_form.mode = DeployMode::Status;
        status_form.aghash.clear();
        match self.send(DEPLOY_PAGE, &status_form.pairs(), AnswerKind::Status) {
            Sent::Answer(CentralAnswer::Status {
                result,
                sha256,
                raw,
            }) => {
                let answer = LastAnswer {
                    secret_sha256: Self::secret_sha256(form),
                    platform: platform.as_str().to_owned(),
                    aghash: result
                        .agent_available
                        .then(|| result.target_hash.clone())
                        .flatten(),
                    sha256,
                    result: raw,
                };
                self.answers.set(&form.host, Some(answer.clone()))?;
                Ok(Ok(answer))
            }
            Sent::Answer(CentralAnswer::Refused(text)) => {
                // A refusal ends what the last answer allowed.
                self.answers.set(&form.host, None)?;
                Ok(Err(text))
            }
            Sent::Answer(_) => Err(RelayError::BadAnswer(AnswerError::Garbled(
                "not a status answer".into(),
            ))),
            Sent::Unreachable(e) => Err(e),
        }
    }

    /// The host's last answer, if it was given for this secret and platform.
    fn last_answer(&self, form: &DeployForm, platform: Platform) -> Option<LastAnswer> {
        self.answers.get(&form.host).filter(|a| {
            a.secret_sha256 == Self::secret_sha256(form) && a.platform == platform.as_str()
        })
    }

    fn status(&self, form: &DeployForm, platform: Platform) -> Result<Envelope, RelayError> {
        match self.forward_status(form, platform) {
            Ok(Ok(answer)) => Ok(Envelope {
                result_code: 0,
                result: answer.result,
            }),
            Ok(Err(text)) => Ok(Envelope::error(text)),
            Err(e @ RelayError::Unreachable { .. }) => {
                let reason = e.to_string();
                let no_answer = || RelayError::NoCachedAnswer {
                    host: form.host.clone(),
                    reason: reason.clone(),
                };
                let last = self.last_answer(form, platform).ok_or_else(no_answer)?;
                if let Some(h) = &last.aghash
                    && !self.cache.contains(platform, h)
                {
                    return Err(no_answer());
                }
                tracing::warn!(host = %form.host, "central unreachable; answered from its last answer");
                self.counters
                    .offline_answers
                    .fetch_add(1, Ordering::Relaxed);
                Ok(Envelope {
                    result_code: 0,
                    result: last.result,
                })
            }
            Err(e) => Err(e),
        }
    }

    fn package_answer(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() / 3 * 4 + 64);
        out.extend_from_slice(br#"{"result_code": 0, "result": {"agent": ""#);
        out.extend_from_slice(B64.encode(bytes).as_bytes());
        out.extend_from_slice(br#""}}"#);
        out
    }

    fn agent(&self, form: &DeployForm, platform: Platform) -> Result<RelayAnswer, RelayError> {
        let wanted = |a: &LastAnswer| a.aghash.as_deref() == Some(form.aghash.as_str());
        let cached = |a: &LastAnswer| -> Result<Option<Vec<u8>>, RelayError> {
            match &a.sha256 {
                Some(sha) if wanted(a) => self.cache.get(platform, &form.aghash, sha),
                _ => Ok(None),
            }
        };
        if let Some(last) = self.last_answer(form, platform)
            && let Some(bytes) = cached(&last)?
        {
            self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(RelayAnswer::Package(Self::package_answer(&bytes)));
        }
        let Some(key) = cache_key(platform, &form.aghash) else {
            return Ok(RelayAnswer::Envelope(Envelope::error(format!(
                "No agent {:?} for host {:?} and {platform}",
                form.aghash, form.host
            ))));
        };
        let gate = Arc::clone(lock(&self.fetching).entry(key.clone()).or_default());
        let _fetch = lock(&gate);
        // The central names the package's checksum in its status answer: ask it now unless
        // the host's last answer names this package.
        let last = match self.last_answer(form, platform).filter(wanted) {
            Some(a) => a,
            None => match self.forward_status(form, platform)? {
                Ok(a) if wanted(&a) => a,
                Ok(_) => {
                    return Ok(RelayAnswer::Envelope(Envelope::error(format!(
                        "No agent {:?} for host {:?} and {platform}",
                        form.aghash, form.host
                    ))));
                }
                Err(text) => return Ok(RelayAnswer::Envelope(Envelope::error(text))),
            },
        };
        // Another request may have fetched it meanwhile.
        if let Some(bytes) = cached(&last)? {
            self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(RelayAnswer::Package(Self::package_answer(&bytes)));
        }
        let sha = last.sha256.clone().unwrap_or_default();
        self.counters.cache_misses.fetch_add(1, Ordering::Relaxed);
        self.counters
            .central_downloads
            .fetch_add(1, Ordering::Relaxed);
        let bytes = match self.send(DEPLOY_PAGE, &form.pairs(), AnswerKind::Agent) {
            Sent::Answer(CentralAnswer::Agent(bytes)) => bytes,
            Sent::Answer(CentralAnswer::Refused(text)) => {
                return Ok(RelayAnswer::Envelope(Envelope::error(text)));
            }
            Sent::Answer(_) => {
                return Err(RelayError::BadAnswer(AnswerError::Garbled(
                    "not a package answer".into(),
                )));
            }
            Sent::Unreachable(e) => return Err(e),
        };
        if package_sha256(&bytes) != sha {
            tracing::warn!(host = %form.host, aghash = %form.aghash, "the central's package does not match its checksum");
            return Err(RelayError::BadAnswer(AnswerError::Mismatch {
                aghash: form.aghash.clone(),
            }));
        }
        let field = |k: &str| last.result.get(k).cloned().unwrap_or_default();
        self.cache.put(
            platform,
            &form.aghash,
            &bytes,
            field("Signatures"),
            field("TargetMetadata"),
        )?;
        lock(&self.fetching).remove(&key);
        Ok(RelayAnswer::Package(Self::package_answer(&bytes)))
    }
}

struct SlotGuard<'a>(&'a Relay);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let (m, cv) = &self.0.slots;
        *lock(m) -= 1;
        cv.notify_one();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const H1: &str = "0000000000000001";
    const H2: &str = "0000000000000002";
    const H3: &str = "0000000000000003";
    const H4: &str = "0000000000000004";

    fn put(c: &PackageCache, h: &str, bytes: &[u8]) -> bool {
        c.put(
            Platform::LinuxDeb,
            h,
            bytes,
            serde_json::Value::Null,
            serde_json::Value::Null,
        )
        .unwrap()
    }

    #[test]
    fn lru_eviction_keeps_the_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let c = PackageCache::open(dir.path(), 3000).unwrap();
        let (a, b, d, e) = (
            vec![1u8; 1000],
            vec![2u8; 1000],
            vec![3u8; 1000],
            vec![4u8; 1000],
        );
        assert!(put(&c, H1, &a));
        assert!(put(&c, H2, &b));
        assert!(put(&c, H3, &d));
        // H1 used again: H2 is now the least recently used.
        assert!(
            c.get(Platform::LinuxDeb, H1, &package_sha256(&a))
                .unwrap()
                .is_some()
        );
        assert!(put(&c, H4, &e));
        assert!(c.contains(Platform::LinuxDeb, H1));
        assert!(!c.contains(Platform::LinuxDeb, H2));
        assert!(c.contains(Platform::LinuxDeb, H3));
        assert!(c.contains(Platform::LinuxDeb, H4));
        assert_eq!(c.total_bytes(), 3000);
        assert!(!dir.path().join("packages/linux_deb").join(H2).exists());
        // Larger than the whole cache: not cached, nothing evicted.
        assert!(!put(&c, H2, &vec![9u8; 3001]));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn survives_a_restart_and_rebuilds_a_lost_index() {
        let dir = tempfile::tempdir().unwrap();
        let a = b"package one".to_vec();
        {
            let c = PackageCache::open(dir.path(), 1 << 20).unwrap();
            assert!(put(&c, H1, &a));
            assert!(put(&c, H2, b"package two"));
        }
        // A stray file (a crash between file and index) is removed on open.
        fs::write(dir.path().join("packages/linux_deb").join(H3), b"stray").unwrap();
        let c = PackageCache::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(c.len(), 2);
        assert!(!c.contains(Platform::LinuxDeb, H3));
        assert_eq!(
            c.get(Platform::LinuxDeb, H1, &package_sha256(&a)).unwrap(),
            Some(a.clone())
        );
        drop(c);
        // The index lost or garbled: rebuilt from the files.
        fs::write(dir.path().join("index.json"), b"{garbage").unwrap();
        let c = PackageCache::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.get(Platform::LinuxDeb, H1, &package_sha256(&a)).unwrap(),
            Some(a)
        );
        // A smaller limit after the restart evicts at once.
        drop(c);
        let c = PackageCache::open(dir.path(), 12).unwrap();
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_tampered_file_is_detected_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let c = PackageCache::open(dir.path(), 1 << 20).unwrap();
        let a = b"the real package".to_vec();
        assert!(put(&c, H1, &a));
        let path = dir.path().join("packages/linux_deb").join(H1);
        fs::write(&path, b"the evil package").unwrap();
        assert_eq!(
            c.get(Platform::LinuxDeb, H1, &package_sha256(&a)).unwrap(),
            None
        );
        assert!(!c.contains(Platform::LinuxDeb, H1));
        assert!(!path.exists());
        // Checked against the checksum the caller names, not the one stored at caching time.
        assert!(put(&c, H1, &a));
        assert_eq!(
            c.get(Platform::LinuxDeb, H1, &package_sha256(b"other"))
                .unwrap(),
            None
        );
    }

    #[test]
    fn central_answers_are_checked() {
        let sha = package_sha256(b"x");
        let ok = format!(
            r#"{{"result_code": 0, "result": {{"AgentAvailable": true, "TargetHash": "{H1}", "Signatures": [], "PackageSha256": "{sha}"}}}}"#
        );
        match parse_central_answer(ok.as_bytes(), AnswerKind::Status).unwrap() {
            CentralAnswer::Status { sha256, result, .. } => {
                assert_eq!(sha256.as_deref(), Some(sha.as_str()));
                assert_eq!(result.target_hash.as_deref(), Some(H1));
            }
            other => panic!("{other:?}"),
        }
        let no_sha = format!(
            r#"{{"result_code": 0, "result": {{"AgentAvailable": true, "TargetHash": "{H1}"}}}}"#
        );
        assert!(matches!(
            parse_central_answer(no_sha.as_bytes(), AnswerKind::Status),
            Err(AnswerError::Garbled(_))
        ));
        assert!(matches!(
            parse_central_answer(b"<html>", AnswerKind::Status),
            Err(AnswerError::NotJson(_))
        ));
        let big = vec![b' '; MAX_STATUS_ANSWER_BYTES + 1];
        assert!(matches!(
            parse_central_answer(&big, AnswerKind::Status),
            Err(AnswerError::TooLarge { .. })
        ));
        assert_eq!(
            parse_central_answer(br#"{"result_code": 1, "result": "no"}"#, AnswerKind::Agent)
                .unwrap(),
            CentralAnswer::Refused("no".into())
        );
        assert_eq!(
            parse_central_answer(
                br#"{"result_code": 0, "result": {"agent": "eA=="}}"#,
                AnswerKind::Agent
            )
            .unwrap(),
            CentralAnswer::Agent(b"x".to_vec())
        );
        assert!(matches!(
            parse_central_answer(
                br#"{"result_code": 0, "result": {"host_secret": "short"}}"#,
                AnswerKind::Register
            ),
            Err(AnswerError::Garbled(_))
        ));
    }

    #[test]
    fn global_mk_makes_a_site_a_relay() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(agent_bakery::WATO_DIR)).unwrap();
        let global = dir.path().join(agent_bakery::GLOBAL_MK);
        fs::create_dir_all(global.parent().unwrap()).unwrap();
        fs::write(
            &global,
            "agent_deployment_central = {'central_url': 'https://central.example.com/prod/check_mk/',              'automation_user': None}
             agent_deployment_remote = {'remote_url': 'https://remote1.example.com/remote1/check_mk/',              'certificates': ['PEM']}
",
        )
        .unwrap();
        let site = agent_bakery::SiteConfig::read(dir.path(), "remote1").unwrap();
        assert_eq!(
            SiteRelaySettings::read(&site),
            SiteRelaySettings {
                central_url: Some("https://central.example.com/prod/check_mk/".into()),
                automation_user: None,
                remote_url: Some("https://remote1.example.com/remote1/check_mk/".into()),
                certificates: vec!["PEM".into()],
                trusted_cas: Vec::new(),
            }
        );
        // A single site: no central, no relay.
        fs::write(&global, "agent_deployment_enabled = True\n").unwrap();
        let site = agent_bakery::SiteConfig::read(dir.path(), "mysite").unwrap();
        assert_eq!(SiteRelaySettings::read(&site), SiteRelaySettings::default());
    }

    #[test]
    fn a_site_is_a_relay_by_its_settings_or_the_overrides() {
        let state = tempfile::tempdir().unwrap();
        let site = SiteRelaySettings {
            central_url: Some("https://central/prod/check_mk/".into()),
            automation_user: Some("automation".into()),
            ..SiteRelaySettings::default()
        };
        let cfg = RelayConfig::for_site("remote1", state.path(), &site, RelayOverrides::default())
            .unwrap()
            .unwrap();
        assert_eq!(cfg.central_url, "https://central/prod/check_mk/");
        assert_eq!(cfg.site_id, "remote1");
        assert_eq!(cfg.username, "automation");
        assert_eq!(cfg.secret.as_str(), "");
        assert_eq!(cfg.cache_dir, state.path().join("relay-cache"));
        assert_eq!(cfg.cache_max_bytes, DEFAULT_CACHE_MAX_BYTES);
        assert!(cfg.central_ca.is_empty());

        let ca = rcgen::generate_simple_self_signed(vec!["central".into()]).unwrap();
        let ca_file = state.path().join("ca.pem");
        fs::write(&ca_file, format!("{}{}", ca.cert.pem(), ca.cert.pem())).unwrap();
        let secret_file = state.path().join("secret");
        fs::write(&secret_file, "s3cret\r\n").unwrap();
        let overrides = RelayOverrides {
            central_url: Some("https://other/x/check_mk/".into()),
            central_ca_files: vec![ca_file],
            central_user: Some("relay".into()),
            central_secret_file: Some(secret_file),
            cache_dir: Some(state.path().join("cache")),
            cache_max_bytes: Some(5),
        };
        let cfg = RelayConfig::for_site("remote1", state.path(), &site, overrides.clone())
            .unwrap()
            .unwrap();
        assert_eq!(cfg.central_url, "https://other/x/check_mk/");
        assert_eq!(cfg.central_ca.len(), 2);
        assert_eq!(cfg.central_ca[0].as_ref(), ca.cert.der().as_ref());
        assert_eq!(cfg.username, "relay");
        assert_eq!(cfg.secret.as_str(), "s3cret");
        assert_eq!(cfg.cache_dir, state.path().join("cache"));
        assert_eq!(cfg.cache_max_bytes, 5);

        // The overrides alone make a relay; nothing at all makes none.
        let alone = SiteRelaySettings::default();
        let cfg = RelayConfig::for_site("r", state.path(), &alone, overrides).unwrap();
        assert_eq!(cfg.unwrap().central_url, "https://other/x/check_mk/");
        let none = RelayConfig::for_site("r", state.path(), &alone, RelayOverrides::default());
        assert!(none.unwrap().is_none());
    }

    #[test]
    fn the_site_trust_store_verifies_the_central_unless_the_operator_names_cas() {
        let root = tempfile::tempdir().unwrap();
        let central = || SiteRelaySettings {
            central_url: Some("https://central/prod/check_mk/".into()),
            ..SiteRelaySettings::default()
        };
        // No store: the Mozilla roots.
        let site = central().with_trust_store(root.path()).unwrap();
        assert!(site.trusted_cas.is_empty());
        let store = root.path().join(SITE_TRUST_STORE);
        fs::create_dir_all(store.parent().unwrap()).unwrap();
        fs::write(&store, "").unwrap();
        assert!(
            central()
                .with_trust_store(root.path())
                .unwrap()
                .trusted_cas
                .is_empty()
        );

        let site_ca = rcgen::generate_simple_self_signed(vec!["site-ca".into()]).unwrap();
        let other_ca = rcgen::generate_simple_self_signed(vec!["other-ca".into()]).unwrap();
        fs::write(
            &store,
            format!("# trusted\n{}{}", site_ca.cert.pem(), other_ca.cert.pem()),
        )
        .unwrap();
        let site = central().with_trust_store(root.path()).unwrap();
        assert_eq!(site.trusted_cas.len(), 2);
        let cfg = RelayConfig::for_site("r", root.path(), &site, RelayOverrides::default())
            .unwrap()
            .unwrap();
        assert_eq!(cfg.central_ca, site.trusted_cas);
        assert_eq!(cfg.central_ca[0].as_ref(), site_ca.cert.der().as_ref());

        // --central-ca takes the store's place.
        let named = root.path().join("central-ca.pem");
        fs::write(&named, other_ca.cert.pem()).unwrap();
        let overrides = RelayOverrides {
            central_ca_files: vec![named],
            ..RelayOverrides::default()
        };
        let cfg = RelayConfig::for_site("r", root.path(), &site, overrides)
            .unwrap()
            .unwrap();
        assert_eq!(cfg.central_ca.len(), 1);
        assert_eq!(cfg.central_ca[0].as_ref(), other_ca.cert.der().as_ref());

        // A store that is there but cannot be read is an error naming it.
        let pem = site_ca.cert.pem();
        let broken = pem.replacen('M', "*", 1);
        fs::write(&store, broken).unwrap();
        let e = central().with_trust_store(root.path()).unwrap_err();
        assert!(e.to_string().contains(&store.display().to_string()), "{e}");
        fs::remove_file(&store).unwrap();
        fs::create_dir(&store).unwrap();
        let e = central().with_trust_store(root.path()).unwrap_err();
        assert!(e.to_string().contains(&store.display().to_string()), "{e}");
    }

    #[test]
    fn unreadable_relay_files_are_named() {
        let state = tempfile::tempdir().unwrap();
        let site = SiteRelaySettings {
            central_url: Some("https://central/prod/check_mk/".into()),
            ..SiteRelaySettings::default()
        };
        let not_pem = state.path().join("ca.txt");
        fs::write(&not_pem, "no certificate here").unwrap();
        let missing = state.path().join("missing");
        for (overrides, what) in [
            (
                RelayOverrides {
                    central_ca_files: vec![not_pem.clone()],
                    ..RelayOverrides::default()
                },
                format!("{}: central CA: no certificate found", not_pem.display()),
            ),
            (
                RelayOverrides {
                    central_ca_files: vec![missing.clone()],
                    ..RelayOverrides::default()
                },
                format!("{}: No such file", missing.display()),
            ),
            (
                RelayOverrides {
                    central_secret_file: Some(missing.clone()),
                    ..RelayOverrides::default()
                },
                format!("{}: No such file", missing.display()),
            ),
        ] {
            let e = RelayConfig::for_site("r", state.path(), &site, overrides).unwrap_err();
            assert!(e.to_string().contains(&what), "{e}");
        }
    }

    #[test]
    fn advertised_url_and_certificates() {
        let site = SiteRelaySettings {
            remote_url: Some("https://remote1/remote1/check_mk/".into()),
            certificates: vec!["SITE".into()],
            ..SiteRelaySettings::default()
        };
        let a = site.advertise(None, ["EXTRA".to_owned()]);
        assert_eq!(
            a.update_url.as_deref(),
            Some("https://remote1/remote1/check_mk/")
        );
        assert_eq!(a.certificates, ["SITE", "EXTRA"]);
        let a = site.advertise(Some("https://flag/".into()), []);
        assert_eq!(a.update_url.as_deref(), Some("https://flag/"));
        assert_eq!(a.certificates, ["SITE"]);
        let a = SiteRelaySettings::default().advertise(None, []);
        assert_eq!(a.update_url, None);
        assert!(a.certificates.is_empty());
    }

    #[test]
    fn sites_mk_names_each_sites_url() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(SITES_MK);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(
            &p,
            "# Written by Checkmk\nsites.update({'central': {'multisiteurl': 'https://c/central/check_mk/'},\n \
             'remote1': {'multisiteurl': 'https://r1/remote1/check_mk/', 'globals': {'agent_deployment_remote': \
             {'remote_url': 'https://relay1/remote1/check_mk/', 'certificates': ['PEM']}}},\n 'remote2': {}})\n",
        )
        .unwrap();
        let urls = read_site_urls(dir.path()).unwrap();
        assert_eq!(
            urls["remote1"],
            SiteUrl {
                url: Some("https://relay1/remote1/check_mk/".into()),
                certificates: vec!["PEM".into()]
            }
        );
        assert_eq!(
            urls["central"].url.as_deref(),
            Some("https://c/central/check_mk/")
        );
        assert_eq!(urls["remote2"], SiteUrl::default());
    }
}
