//! The layout under `var/check_mk/agents/`, the bake job, the bake lock and signing
//! (spec bakery.md §5.6–5.7).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use agent_sign::{KeyStore, PackageSignature, Passphrase};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::package::{self, AgentFiles, PackageMeta, Platform};
use crate::plan::Plan;
use crate::site::{SiteConfig, Warning};

/// The packages' directory, relative to the site root.
pub const AGENTS_DIR: &str = "var/check_mk/agents";
/// The bakery's own state (job file, lock, revisions), relative to the site root \[ours\].
pub const STATE_DIR: &str = "var/check_mk/agent_bakery";
/// The bakery log, relative to the site root.
pub const LOG_FILE: &str = "var/log/agent_bakery.log";
/// The bakery's signing log (`agent-sign`'s hash-chained log, one entry per package signed),
/// relative to the site root \[ours\].
pub const SIGNING_LOG: &str = "var/check_mk/agent_bakery/signing.log";
/// Suffix of a package's signature list next to it \[ours\].
pub const SIGNATURES_SUFFIX: &str = ".signatures.json";

/// A fault hook for tests: called with a step number before each package file is written;
/// an error fails that write (e.g. `ENOSPC` for a full disk).
#[cfg(feature = "fault-injection")]
pub type FaultHook = Box<dyn Fn(usize) -> std::io::Result<()> + Send + Sync>;

/// A job hook for tests: called with each state right after the job file holds it, so that a
/// test can look at the job file and the log in every state.
#[cfg(feature = "fault-injection")]
pub type JobHook = Box<dyn Fn(JobState) + Send + Sync>;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The package layout of a site.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of the site at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// `var/check_mk/agents/<platform>/`.
    pub fn platform_dir(&self, platform: Platform) -> PathBuf {
        self.root.join(AGENTS_DIR).join(platform.id())
    }

    /// The package file of `aghash` (the stored name is the hash).
    pub fn package_path(&self, platform: Platform, aghash: &str) -> PathBuf {
        self.platform_dir(platform).join(aghash)
    }

    /// The signature list of a package.
    pub fn signatures_path(&self, platform: Platform, aghash: &str) -> PathBuf {
        self.platform_dir(platform)
            .join(format!("{aghash}{SIGNATURES_SUFFIX}"))
    }

    /// `references/<target>`.
    pub fn reference_path(&self, platform: Platform, target: &str) -> PathBuf {
        self.platform_dir(platform).join("references").join(target)
    }

    /// The hash a target's reference points to.
    pub fn reference(&self, platform: Platform, target: &str) -> Option<String> {
        let link = fs::read_link(self.reference_path(platform, target)).ok()?;
        let name = link.file_name()?.to_str()?.to_string();
        is_hash(&name).then_some(name)
    }

    /// Every reference of a platform: target → hash.
    pub fn references(&self, platform: Platform) -> BTreeMap<String, String> {
        let dir = self.platform_dir(platform).join("references");
        let mut out = BTreeMap::new();
        let Ok(entries) = fs::read_dir(&dir) else {
            return out;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Some(h) = self.reference(platform, &name) {
                out.insert(name, h);
            }
        }
        out
    }

    /// The signatures of a package (empty when unsigned).
    pub fn signatures(&self, platform: Platform, aghash: &str) -> Result<Vec<PackageSignature>> {
        let path = self.signatures_path(platform, aghash);
        match fs::read_to_string(&path) {
            Ok(text) => agent_sign::signatures_from_json(&text).map_err(|e| Error::Io {
                path,
                source: std::io::Error::other(e.to_string()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

fn is_hash(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    package::write_synced(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

// ---------------------------------------------------------------------------------------------
// lock

/// The per-site bake lock (`var/check_mk/agent_bakery/bake.lock`, an `flock`); released on
/// drop. The file names the holder.
#[derive(Debug)]
pub struct BakeLock {
    _file: fs::File,
}

impl BakeLock {
    /// Takes the lock, or fails with [`Error::BakeRunning`] naming the holder.
    pub fn acquire(root: &Path, what: &str) -> Result<BakeLock> {
        let dir = root.join(STATE_DIR);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join("bake.lock");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            return Err(Error::BakeRunning {
                path,
                holder: if holder.is_empty() {
                    "holder unknown".into()
                } else {
                    holder.to_string()
                },
            });
        }
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        let text = format!(
            "{what} by pid {} (user {user}) since {}\n",
            std::process::id(),
            now()
        );
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        file.write_all(text.as_bytes())
            .map_err(|e| Error::io(&path, e))?;
        Ok(BakeLock { _file: file })
    }
}

// ---------------------------------------------------------------------------------------------
// job state and log

/// A bake job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Created, not yet started.
    Initialized,
    /// Baking.
    Running,
    /// Done (successfully or not, see [`JobStatus::error`]).
    Finished,
}

/// The job file `var/check_mk/agent_bakery/job.json` \[ours\].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    /// State.
    pub state: JobState,
    /// `bake`, `bake_and_sign` or `sign`.
    pub kind: String,
    /// Start time, Unix seconds.
    pub started: u64,
    /// End time, Unix seconds.
    pub finished: Option<u64>,
    /// The error of a failed job.
    pub error: Option<String>,
    /// Packages built / total.
    pub progress: (usize, usize),
}

impl JobStatus {
    /// Reads the last job's status; `None` when no job ran yet.
    pub fn read(root: &Path) -> Result<Option<JobStatus>> {
        let path = root.join(STATE_DIR).join("job.json");
        match fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| Error::io(&path, std::io::Error::other(e))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn write(&self, root: &Path) -> Result<()> {
        let path = root.join(STATE_DIR).join("job.json");
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        write_atomic(&path, text.as_bytes())
    }
}

struct Job<'a> {
    root: &'a Path,
    status: JobStatus,
    #[cfg(feature = "fault-injection")]
    hook: Option<&'a JobHook>,
}

impl<'a> Job<'a> {
    fn start(
        root: &'a Path,
        kind: &str,
        #[cfg(feature = "fault-injection")] hook: Option<&'a JobHook>,
    ) -> Result<Job<'a>> {
        let mut job = Job {
            root,
            #[cfg(feature = "fault-injection")]
            hook,
            status: JobStatus {
                state: JobState::Initialized,
                kind: kind.to_string(),
                started: now(),
                finished: None,
                error: None,
                progress: (0, 0),
            },
        };
        job.status.write(root)?;
        job.log(&format!("{kind}: job initialized"));
        job.observed();
        job.status.state = JobState::Running;
        job.status.write(root)?;
        job.observed();
        Ok(job)
    }

    /// Test hook (feature `fault-injection`): the job file holds the current state.
    fn observed(&self) {
        #[cfg(feature = "fault-injection")]
        if let Some(hook) = self.hook {
            hook(self.status.state);
        }
    }

    fn log(&self, line: &str) {
        let path = self.root.join(LOG_FILE);
        if let Some(dir) = path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        // The log is best effort: a full disk must not hide the job's real error.
        if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(&path) {
            let _ = writeln!(f, "{} [{}] {line}", now(), std::process::id());
        }
    }

    fn finish<T>(mut self, result: Result<T>) -> Result<T> {
        self.status.state = JobState::Finished;
        self.status.finished = Some(now());
        match &result {
            Ok(_) => self.log(&format!("{}: finished", self.status.kind)),
            Err(e) => {
                self.status.error = Some(e.to_string());
                self.log(&format!("{}: failed: {e}", self.status.kind));
            }
        }
        // Keep the job's own error when the state file cannot be written.
        let written = self.status.write(self.root);
        if written.is_ok() {
            self.observed();
        }
        match (result, written) {
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(e)) | (Err(e), _) => Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// bake

/// A key to sign with: id in the key store and its passphrase.
#[derive(Debug)]
pub struct SignWith {
    /// The key store directory.
    pub key_store: PathBuf,
    /// The key id.
    pub key_id: u64,
    /// Its passphrase (asked once).
    pub passphrase: Passphrase,
}

/// What a bake does.
#[derive(Default)]
pub struct BakeOptions {
    /// Platforms to bake (empty: all).
    pub platforms: Vec<Platform>,
    /// The site id (default: the site root's directory name).
    pub site_id: Option<String>,
    /// The Checkmk version (default: from the site's `version` link).
    pub cmk_version: Option<String>,
    /// The updater binary to package (default: the site's
    /// `share/check_mk/agents/plugins/cmk-update-agent`).
    pub updater_binary: Option<PathBuf>,
    /// Sign every package produced ("bake and sign").
    pub sign: Option<SignWith>,
    /// Test hook (feature `fault-injection`).
    #[cfg(feature = "fault-injection")]
    pub fault: Option<FaultHook>,
    /// Test hook (feature `fault-injection`): sees each job state.
    #[cfg(feature = "fault-injection")]
    pub job_hook: Option<JobHook>,
}

impl std::fmt::Debug for BakeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BakeOptions")
            .field("platforms", &self.platforms)
            .field("site_id", &self.site_id)
            .field("cmk_version", &self.cmk_version)
            .finish_non_exhaustive()
    }
}

/// Progress of a bake, for a terminal display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BakeEvent {
    /// `done` of `total` packages are built (or reused unchanged).
    Progress {
        /// Done.
        done: usize,
        /// Total.
        total: usize,
    },
}

/// The outcome per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformReport {
    /// The platform.
    pub platform: Platform,
    /// Packages referenced after the bake.
    pub packages: usize,
    /// Packages whose bytes were (re)built.
    pub built: usize,
    /// Targets (reference links).
    pub targets: usize,
    /// Packages removed as unreferenced.
    pub removed: usize,
}

/// The one-line summary the bake job's log and `agent-bakery bake` show:
/// `linux_deb: 4 packages (4 built, 0 removed), 8 targets`.
impl std::fmt::Display for PlatformReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} packages ({} built, {} removed), {} targets",
            self.platform.id(),
            self.packages,
            self.built,
            self.removed,
            self.targets
        )
    }
}

/// What a bake did.
#[derive(Debug, Clone, Serialize)]
pub struct BakeReport {
    /// Per platform.
    pub platforms: Vec<PlatformReport>,
    /// Warnings about the site files.
    #[serde(skip)]
    pub warnings: Vec<Warning>,
    /// Whether the packages were signed.
    pub signed: bool,
}

/// The site id default: the site root's directory name.
pub fn default_site_id(root: &Path) -> String {
    root.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "site".into())
}

/// The site's Checkmk version from its `version` link (`2.3.0p9`).
pub fn site_cmk_version(root: &Path) -> Result<String> {
    let name = omd_versions::read_site_version(root)
        .map_err(|e| Error::Version(format!("{}: {e}", root.join("version").display())))?
        .ok_or_else(|| {
            Error::Version(format!(
                "{} is not a link to a version",
                root.join("version").display()
            ))
        })?;
    Ok(match name.parse::<omd_versions::OmdVersion>() {
        Ok(v) => v.version().to_string(),
        Err(_) => omd_versions::omd_update_version_string(&name).to_string(),
    })
}

/// Whether packages carry a bake revision (§5.5): the global `apply_bake_revision` when it is
/// set; otherwise on for sites before 2.3, where the revision was always applied, and off
/// from 2.3 on (and for versions we cannot read, such as dailies).
pub fn apply_bake_revision(setting: Option<&py_literal::PyValue>, cmk_version: &str) -> bool {
    match setting {
        Some(py_literal::PyValue::Bool(on)) => *on,
        _ => cmk_version
            .parse::<omd_versions::Version>()
            .ok()
            .and_then(|v| v.base())
            .is_some_and(|b| b < omd_versions::Base::new(2, 3, 0).unwrap_or(b)),
    }
}

fn stored_passwords(root: &Path) -> HashMap<String, String> {
    // `var/check_mk/stored_passwords`: `<id>:<password>` per line [inferred].
    fs::read_to_string(root.join("var/check_mk/stored_passwords"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct NewPackage {
    platform: Platform,
    hash: String,
    tmp: PathBuf,
    signatures: Option<Vec<PackageSignature>>,
    /// SHA-256 (hex) of the bytes, known when this job signed them.
    sha256: Option<String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The hosts that get each `(platform, agent hash)`.
type HostsByPackage = HashMap<(Platform, String), Vec<String>>;

/// One package signed by a job, for the signing log.
struct SignedPackage {
    platform: Platform,
    hash: String,
    sha256: String,
}

/// Records the packages a job signed in the site's signing log ([`SIGNING_LOG`]): one entry
/// each, with the certificate's fingerprint, the bytes' SHA-256, the agent hash they are
/// served under and the hosts whose targets name them. One check of the chain and one flush
/// for the whole job; a damaged log fails the job before anything is committed.
fn log_signed(
    root: &Path,
    certificate: &agent_sign::Certificate,
    signed: &[SignedPackage],
    hosts: &HostsByPackage,
) -> Result<()> {
    if signed.is_empty() {
        return Ok(());
    }
    let path = root.join(SIGNING_LOG);
    let fingerprint = certificate.fingerprint_sha256();
    let records = signed
        .iter()
        .map(|p| agent_sign::LogRecord {
            key_fingerprint: fingerprint.clone(),
            package_sha256: p.sha256.clone(),
            version: 0,
            hosts: hosts
                .get(&(p.platform, p.hash.clone()))
                .cloned()
                .unwrap_or_default(),
            agent_hash: Some(p.hash.clone()),
        })
        .collect();
    agent_sign::SigningLog::new(&path)
        .append_all(records, &agent_sign::SystemClock)
        .map(|_| ())
        .map_err(|source| Error::SigningLog { path, source })
}

/// Fails when the site's signing log exists and its chain is broken (checked before a
/// signing job builds or changes anything).
fn check_signing_log(root: &Path) -> Result<()> {
    let path = root.join(SIGNING_LOG);
    agent_sign::SigningLog::new(&path)
        .verify()
        .map(|_| ())
        .map_err(|source| Error::SigningLog { path, source })
}

/// The host targets (not `_VANILLA`/`_GENERIC[…]`) of each `(platform, hash)`, from
/// `(platform, target, hash)` triples, in one pass.
fn hosts_by_package<'a>(
    targets: impl Iterator<Item = (Platform, &'a str, &'a str)>,
) -> HostsByPackage {
    let mut map = HostsByPackage::new();
    for (platform, name, hash) in targets {
        if !name.starts_with('_') {
            map.entry((platform, hash.to_owned()))
                .or_default()
                .push(name.to_owned());
        }
    }
    map
}

/// Bakes the site at `root`: reads hosts and rules, builds every used package, then (and
/// only then) replaces the reference links and removes unreferenced packages. A failure
/// before that point leaves the previous packages, signatures and links untouched.
pub fn bake(
    root: &Path,
    opts: &BakeOptions,
    progress: &mut dyn FnMut(&BakeEvent),
) -> Result<BakeReport> {
    let _lock = BakeLock::acquire(
        root,
        if opts.sign.is_some() {
            "bake_and_sign"
        } else {
            "bake"
        },
    )?;
    let mut job = Job::start(
        root,
        if opts.sign.is_some() {
            "bake_and_sign"
        } else {
            "bake"
        },
        #[cfg(feature = "fault-injection")]
        opts.job_hook.as_ref(),
    )?;
    let result = bake_locked(root, opts, progress, &mut job);
    job.finish(result)
}

fn bake_locked(
    root: &Path,
    opts: &BakeOptions,
    progress: &mut dyn FnMut(&BakeEvent),
    job: &mut Job<'_>,
) -> Result<BakeReport> {
    // The key first: a wrong passphrase fails before anything is built or changed.
    let signer = match &opts.sign {
        Some(s) => {
            let store = KeyStore::open(&s.key_store).map_err(|e| Error::Sign {
                key_id: s.key_id,
                source: e,
            })?;
            let (key, entry) = store
                .unlock(s.key_id, &s.passphrase)
                .map_err(|e| Error::Sign {
                    key_id: s.key_id,
                    source: e,
                })?;
            check_signing_log(root)?;
            Some((key, entry.certificate, s.key_id))
        }
        None => None,
    };
    let site_id = opts
        .site_id
        .clone()
        .unwrap_or_else(|| default_site_id(root));
    let cmk_version = match &opts.cmk_version {
        Some(v) => v.clone(),
        None => site_cmk_version(root)?,
    };
    let site = SiteConfig::read(root, &site_id)?;
    let plan = site.plan()?;
    let files = AgentFiles::read(root, opts.updater_binary.as_deref())?;
    let platforms: Vec<Platform> = if opts.platforms.is_empty() {
        Platform::ALL.to_vec()
    } else {
        opts.platforms.clone()
    };
    let apply_revision = apply_bake_revision(site.global("apply_bake_revision"), &cmk_version);
    let revisions_path = root.join(STATE_DIR).join("revisions.json");
    let mut revisions: BTreeMap<String, u64> = fs::read_to_string(&revisions_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let revision = if apply_revision {
        revisions.get(&cmk_version).copied().unwrap_or(0) + 1
    } else {
        1
    };
    let layout = Layout::new(root);
    let passwords = stored_passwords(root);
    let used: BTreeSet<usize> = plan.targets.iter().map(|t| t.config).collect();
    let total = used.len() * platforms.len();
    job.status.progress = (0, total);
    job.log(&format!(
        "{} targets, {} distinct configurations, {} platforms, revision {revision}",
        plan.targets.len(),
        used.len(),
        platforms.len()
    ));

    let mut new_packages: Vec<NewPackage> = Vec::new();
    let mut hashes: HashMap<(Platform, usize), String> = HashMap::new();
    // Plan every package (cheap: hashes over shared payloads), reuse what exists, and sign
    // reused packages; the packages to build are built below, in parallel.
    let mut payloads = Vec::new();
    let mut to_build: Vec<(Platform, String, usize)> = Vec::new();
    let mut done = 0usize;
    for &config_index in &used {
        let config = plan.configs[config_index].as_ref();
        let cfg_text =
            match config {
                Some(c) => Some(c.cfg_text(&|id| passwords.get(id).cloned()).map_err(|m| {
                    Error::Package {
                        platform: "all".into(),
                        message: m,
                    }
                })?),
                None => None,
            };
        let payload = files.payload(config, cfg_text.as_deref())?;
        for &platform in &platforms {
            let hash = package::agent_hash(&payload, platform, &cmk_version);
            hashes.insert((platform, config_index), hash.clone());
            let dir = layout.platform_dir(platform);
            fs::create_dir_all(dir.join("references")).map_err(|e| Error::io(&dir, e))?;
            let final_path = layout.package_path(platform, &hash);
            // An unchanged hash keeps its package as it is (bytes, revision, signatures):
            // the revision counts newly baked packages (W11403), and rebuilding would only
            // strip the signatures of identical content.
            if final_path.is_file() {
                if let Some((key, cert, key_id)) = &signer {
                    let bytes = fs::read(&final_path).map_err(|e| Error::io(&final_path, e))?;
                    let mut sigs = layout.signatures(platform, &hash)?;
                    agent_sign::sign_package(&bytes, key, cert, &mut sigs).map_err(|e| {
                        Error::Sign {
                            key_id: *key_id,
                            source: e,
                        }
                    })?;
                    new_packages.push(NewPackage {
                        platform,
                        hash,
                        tmp: PathBuf::new(),
                        signatures: Some(sigs),
                        sha256: Some(sha256_hex(&bytes)),
                    });
                }
                done += 1;
                progress(&BakeEvent::Progress { done, total });
            } else if !to_build
                .iter()
                .any(|(p, h, _)| *p == platform && *h == hash)
            {
                to_build.push((platform, hash, payloads.len()));
            } else {
                done += 1;
            }
        }
        payloads.push(payload);
    }
    let built = build_all(
        &to_build,
        &payloads,
        &layout,
        &cmk_version,
        revision,
        signer.as_ref().map(|(k, c, id)| (k, c, *id)),
        opts,
        &mut |n| {
            progress(&BakeEvent::Progress {
                done: done + n,
                total,
            })
        },
    );
    let built = built?;
    let any_built = !built.is_empty();
    done += built.len();
    // One flush of the file system instead of one fsync per package: the new packages are
    // on disk before any of them is renamed into place.
    if let Some(first) = built.first() {
        let dir = first.tmp.parent().unwrap_or_else(|| Path::new("."));
        let flushed =
            fs::File::open(dir).and_then(|d| rustix::fs::syncfs(&d).map_err(std::io::Error::from));
        if let Err(e) = flushed {
            for p in &built {
                let _ = fs::remove_file(&p.tmp);
            }
            return Err(Error::io(dir, e));
        }
    }
    new_packages.extend(built);
    job.status.progress = (done, total);
    if let Some((_, cert, _)) = &signer {
        let signed: Vec<SignedPackage> = new_packages
            .iter()
            .filter_map(|p| {
                Some(SignedPackage {
                    platform: p.platform,
                    hash: p.hash.clone(),
                    sha256: p.sha256.clone()?,
                })
            })
            .collect();
        let hashes = &hashes;
        let hosts = hosts_by_package(platforms.iter().flat_map(|&platform| {
            plan.targets.iter().filter_map(move |t| {
                hashes
                    .get(&(platform, t.config))
                    .map(|h| (platform, t.name.as_str(), h.as_str()))
            })
        }));
        if let Err(e) = log_signed(root, cert, &signed, &hosts) {
            for p in &new_packages {
                if !p.tmp.as_os_str().is_empty() {
                    let _ = fs::remove_file(&p.tmp);
                }
            }
            return Err(e);
        }
    }

    // Commit: packages, signatures, then links; then remove what no link names.
    let mut built: HashMap<Platform, usize> = HashMap::new();
    for p in &new_packages {
        let final_path = layout.package_path(p.platform, &p.hash);
        let sig_path = layout.signatures_path(p.platform, &p.hash);
        if !p.tmp.as_os_str().is_empty() {
            // New bytes never keep old signatures.
            if p.signatures.is_none() {
                match fs::remove_file(&sig_path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&sig_path, e)),
                }
            }
            fs::rename(&p.tmp, &final_path).map_err(|e| Error::io(&final_path, e))?;
            *built.entry(p.platform).or_default() += 1;
        }
        if let Some(sigs) = &p.signatures {
            write_atomic(&sig_path, agent_sign::signatures_to_json(sigs).as_bytes())?;
        }
    }
    let mut reports = Vec::new();
    for &platform in &platforms {
        let dir = layout.platform_dir(platform);
        let refs = dir.join("references");
        let mut wanted: BTreeMap<&str, &str> = BTreeMap::new();
        for t in &plan.targets {
            if let Some(h) = hashes.get(&(platform, t.config)) {
                wanted.insert(&t.name, h);
            }
        }
        for (target, hash) in &wanted {
            let link = refs.join(target);
            if layout.reference(platform, target).as_deref() == Some(*hash) {
                continue;
            }
            let tmp = refs.join(format!(".{target}.new"));
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(format!("../{hash}"), &tmp)
                .map_err(|e| Error::io(&tmp, e))?;
            fs::rename(&tmp, &link).map_err(|e| Error::io(&link, e))?;
        }
        for old in layout.references(platform).keys() {
            if !wanted.contains_key(old.as_str()) {
                let link = refs.join(old);
                fs::remove_file(&link).map_err(|e| Error::io(&link, e))?;
            }
        }
        let referenced: BTreeSet<&str> = wanted.values().copied().collect();
        let mut removed = 0;
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let hash = name.strip_suffix(SIGNATURES_SUFFIX).unwrap_or(&name);
                if is_hash(hash) && !referenced.contains(hash) {
                    fs::remove_file(e.path()).map_err(|err| Error::io(e.path(), err))?;
                    if hash == name {
                        removed += 1;
                    }
                }
            }
        }
        reports.push(PlatformReport {
            platform,
            packages: referenced.len(),
            built: built.get(&platform).copied().unwrap_or(0),
            targets: wanted.len(),
            removed,
        });
    }
    if apply_revision && any_built {
        revisions.insert(cmk_version, revision);
        let text = serde_json::to_string_pretty(&revisions).unwrap_or_default();
        write_atomic(&revisions_path, text.as_bytes())?;
    }
    for r in &reports {
        job.log(&r.to_string());
    }
    let mut warnings = site.warnings;
    warnings.extend(plan.warnings.iter().cloned());
    Ok(BakeReport {
        platforms: reports,
        warnings,
        signed: signer.is_some(),
    })
}

type Signer<'a> = (&'a agent_sign::PrivateKey, &'a agent_sign::Certificate, u64);

/// Builds, writes (not yet synced) and signs the packages of `jobs` on all cores. On an
/// error, the temporary files written so far are removed.
#[allow(clippy::too_many_arguments)]
fn build_all(
    jobs: &[(Platform, String, usize)],
    payloads: &[package::Payload],
    layout: &Layout,
    cmk_version: &str,
    revision: u64,
    signer: Option<Signer<'_>>,
    opts: &BakeOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<NewPackage>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    let _ = opts;
    // Shared content (the agent files) is compressed once for all packages of the bake.
    let cache = package::DeflateCache::new();
    let (tx, rx) = std::sync::mpsc::channel::<Result<NewPackage>>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, failed, cache) = (&next, &failed, &cache);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= jobs.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let (platform, hash, payload) = &jobs[i];
                    let r = build_one(
                        *platform,
                        hash,
                        &payloads[*payload],
                        layout,
                        cmk_version,
                        revision,
                        signer,
                        cache,
                        #[cfg(feature = "fault-injection")]
                        opts.fault.as_ref().map(|f| (f, i + 1)),
                    );
                    if r.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    if tx.send(r).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut out: Vec<NewPackage> = Vec::new();
        let mut first_err = None;
        for r in rx {
            match r {
                Ok(p) => {
                    out.push(p);
                    progress(out.len());
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => {
                for p in &out {
                    let _ = fs::remove_file(&p.tmp);
                }
                Err(e)
            }
            None => Ok(out),
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn build_one(
    platform: Platform,
    hash: &str,
    payload: &package::Payload,
    layout: &Layout,
    cmk_version: &str,
    revision: u64,
    signer: Option<Signer<'_>>,
    cache: &package::DeflateCache,
    #[cfg(feature = "fault-injection")] fault: Option<(&FaultHook, usize)>,
) -> Result<NewPackage> {
    let meta = PackageMeta {
        cmk_version,
        revision,
        aghash: hash,
        tgz_level: 6,
    };
    let bytes = package::build_with_cache(platform, payload, &meta, cache)?;
    let tmp = layout.platform_dir(platform).join(format!(".new-{hash}"));
    #[cfg(feature = "fault-injection")]
    if let Some((hook, step)) = fault {
        hook(step).map_err(|e| Error::io(&tmp, e))?;
    }
    if let Err(e) = fs::write(&tmp, &bytes) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    let signatures = match signer {
        Some((key, cert, key_id)) => {
            let mut sigs = Vec::new();
            if let Err(e) = agent_sign::sign_package(&bytes, key, cert, &mut sigs) {
                let _ = fs::remove_file(&tmp);
                return Err(Error::Sign { key_id, source: e });
            }
            Some(sigs)
        }
        None => None,
    };
    let sha256 = signatures.as_ref().map(|_| sha256_hex(&bytes));
    Ok(NewPackage {
        platform,
        hash: hash.to_string(),
        tmp,
        signatures,
        sha256,
    })
}

/// Signs every referenced package of every platform with one key ("Sign agents"). Existing
/// signatures by other keys are kept; the key's own is replaced.
pub fn sign(root: &Path, with: &SignWith) -> Result<usize> {
    let _lock = BakeLock::acquire(root, "sign")?;
    let job = Job::start(
        root,
        "sign",
        #[cfg(feature = "fault-injection")]
        None,
    )?;
    let result = (|| {
        let err = |e| Error::Sign {
            key_id: with.key_id,
            source: e,
        };
        let store = KeyStore::open(&with.key_store).map_err(err)?;
        let (key, entry) = store.unlock(with.key_id, &with.passphrase).map_err(err)?;
        check_signing_log(root)?;
        let layout = Layout::new(root);
        // Sign everything first, log it, then write the lists: a failure on the way leaves
        // every signature list as it was.
        let mut lists = Vec::new();
        let mut signed = Vec::new();
        let mut references = HashMap::new();
        for platform in Platform::ALL {
            let refs = layout.references(platform);
            let hashes: BTreeSet<String> = refs.values().cloned().collect();
            for hash in hashes {
                let path = layout.package_path(platform, &hash);
                let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
                let mut sigs = layout.signatures(platform, &hash)?;
                agent_sign::sign_package(&bytes, &key, &entry.certificate, &mut sigs)
                    .map_err(err)?;
                lists.push((layout.signatures_path(platform, &hash), sigs));
                signed.push(SignedPackage {
                    platform,
                    hash,
                    sha256: sha256_hex(&bytes),
                });
            }
            references.insert(platform, refs);
        }
        let hosts = hosts_by_package(references.iter().flat_map(|(&platform, refs)| {
            refs.iter()
                .map(move |(t, h)| (platform, t.as_str(), h.as_str()))
        }));
        log_signed(root, &entry.certificate, &signed, &hosts)?;
        for (path, sigs) in &lists {
            write_atomic(path, agent_sign::signatures_to_json(sigs).as_bytes())?;
        }
        Ok(lists.len())
    })();
    job.finish(result)
}

/// Reads the plan of a site without baking (for `targets`, `test-host`, `config`).
pub fn read_plan(root: &Path, site_id: &str) -> Result<(SiteConfig, Plan)> {
    let site = SiteConfig::read(root, site_id)?;
    let plan = site.plan()?;
    Ok((site, plan))
}
