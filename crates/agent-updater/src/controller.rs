//! The 2.5 mode (requirement 28): the updater reuses the agent controller's mTLS connection.
//!
//! The site authenticates the host by its TLS client certificate (subject CN = host name), so
//! there is neither a registration nor a host secret. Files: a TOML config
//! `{activated, interval, signature_keys}` (unknown keys ignored), a JSON state
//! `{last_check, last_update, pending_hash, last_error}` written atomically with mode 0600, and
//! `agent_info.json` (`{hash, platform}`) for the installed agent. The API is
//! `update_status` and `download_agent` below `/<site>/agent-receiver/`.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_sign::RollbackState;
use serde::{Deserialize, Serialize};

use crate::updater::{Mode, RunOptions, UpdateError, UpdateOutcome, Updater};
use crate::verify::{TargetInfo, TargetPlan};
use agent_wire::{
    DOWNLOAD_AGENT_PAGE, DownloadAgentRequest, SectionLine, UPDATE_STATUS_PAGE,
    UpdateStatusRequest, UpdateStatusResponse, truncate_last_error, valid_aghash,
};

/// The 2.5 mode's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerPaths {
    /// TOML config (read only; written by the bakery).
    pub config_file: PathBuf,
    /// JSON state.
    pub state_file: PathBuf,
    /// `agent_info.json`: hash and platform of the installed agent.
    pub agent_info_file: PathBuf,
}

impl ControllerPaths {
    /// The 2.5 layout: `<conf_dir>/cmk-update-agent.toml`,
    /// `<var_dir>/cmk-update-agent/cmk-update-agent.state`, `<var_dir>/agent_info.json`.
    pub fn in_dirs(conf_dir: &Path, var_dir: &Path) -> ControllerPaths {
        ControllerPaths {
            config_file: conf_dir.join("cmk-update-agent.toml"),
            state_file: var_dir
                .join("cmk-update-agent")
                .join("cmk-update-agent.state"),
            agent_info_file: var_dir.join("agent_info.json"),
        }
    }
}

fn file_err(path: &Path, reason: impl ToString) -> UpdateError {
    UpdateError::BadFile {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The 2.5 TOML config. Unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ControllerConfig {
    /// Whether automatic updates run at all (default true).
    pub activated: bool,
    /// Seconds between checks (default 3600, at most 30 days).
    pub interval: u64,
    /// Trusted signature certificates (PEM).
    pub signature_keys: Vec<String>,
}

impl Default for ControllerConfig {
    fn default() -> ControllerConfig {
        ControllerConfig {
            activated: true,
            interval: crate::settings::DEFAULT_INTERVAL,
            signature_keys: Vec::new(),
        }
    }
}

impl ControllerConfig {
    /// Parses the TOML text; `path` is for error messages.
    pub fn parse(path: &Path, text: &str) -> Result<ControllerConfig, UpdateError> {
        let cfg: ControllerConfig = toml::from_str(text).map_err(|e| file_err(path, e))?;
        if cfg.interval > crate::settings::MAX_INTERVAL {
            return Err(file_err(
                path,
                format!(
                    "interval {} is above the maximum of {} seconds (30 days)",
                    cfg.interval,
                    crate::settings::MAX_INTERVAL
                ),
            ));
        }
        Ok(cfg)
    }

    /// Reads the config; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<ControllerConfig, UpdateError> {
        match fs::read_to_string(path) {
            Ok(text) => ControllerConfig::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ControllerConfig::default()),
            Err(e) => Err(file_err(path, e)),
        }
    }
}

/// The 2.5 JSON state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControllerState {
    /// Last successful status call (Unix seconds).
    pub last_check: Option<u64>,
    /// Last successful install (Unix seconds).
    pub last_update: Option<u64>,
    /// Hash of a downloaded but not yet installed agent (deferred installs are not
    /// implemented in this mode; always `None` after a run).
    pub pending_hash: Option<String>,
    /// Error of the last run (`None` after a successful run).
    pub last_error: Option<String>,
    /// Accepted hardened-metadata versions (our extension; only with a metadata root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_state: Option<RollbackState>,
}

impl ControllerState {
    /// Reads the state; a missing file gives the empty state, a malformed one is an error.
    pub fn load(path: &Path) -> Result<ControllerState, UpdateError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| file_err(path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ControllerState::default()),
            Err(e) => Err(file_err(path, e)),
        }
    }

    /// Writes the state atomically (temporary file, fsync, rename) with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), UpdateError> {
        let data = serde_json::to_vec_pretty(self).map_err(|e| file_err(path, e))?;
        agent_wire::fsutil::write_atomic(path, &data, false).map_err(|e| file_err(path, e))
    }
}

/// `agent_info.json`: the installed agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Its hash.
    pub hash: String,
    /// Its platform (`linux_deb`, …).
    pub platform: String,
}

/// The agent controller's connection to the agent receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConnection {
    /// Base URL, e.g. `https://monitor:8000/mysite/agent-receiver`.
    pub base_url: String,
    /// The controller's client certificate (PEM); its subject CN is this host's name.
    pub client_cert: PathBuf,
    /// The client certificate's private key (PEM).
    pub client_key: PathBuf,
    /// The site CA the receiver's certificate must chain to (PEM).
    pub server_ca: PathBuf,
}

impl ReceiverConnection {
    /// The host name: the subject CN of the client certificate.
    pub fn host_name(&self) -> Result<String, UpdateError> {
        let pem = fs::read(&self.client_cert).map_err(|e| file_err(&self.client_cert, e))?;
        let der = ureq::tls::parse_pem(&pem)
            .find_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .ok_or_else(|| file_err(&self.client_cert, "no certificate found"))?;
        agent_wire::certificate_host_name(der.der())
            .ok_or_else(|| file_err(&self.client_cert, "the certificate has no subject CN"))
    }

    fn agent(&self, timeout: std::time::Duration) -> Result<ureq::Agent, UpdateError> {
        let read = |p: &Path| fs::read(p).map_err(|e| file_err(p, e));
        let cert_pem = read(&self.client_cert)?;
        let key_pem = read(&self.client_key)?;
        let ca_pem = read(&self.server_ca)?;
        let certs = |pem: &[u8]| -> Vec<ureq::tls::Certificate<'static>> {
            ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect()
        };
        let chain = certs(&cert_pem);
        if chain.is_empty() {
            return Err(file_err(&self.client_cert, "no certificate found"));
        }
        let roots = certs(&ca_pem);
        if roots.is_empty() {
            return Err(file_err(&self.server_ca, "no certificate found"));
        }
        let key =
            ureq::tls::PrivateKey::from_pem(&key_pem).map_err(|e| file_err(&self.client_key, e))?;
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
            .client_cert(Some(ureq::tls::ClientCert::new_with_certs(&chain, key)))
            .build();
        Ok(ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(concat!("cmk-update-agent-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent())
    }
}

/// POSTs JSON and reads at most `limit` bytes of a 200 answer.
fn post(
    agent: &ureq::Agent,
    url: &str,
    body: &impl Serialize,
    limit: u64,
) -> Result<Vec<u8>, UpdateError> {
    let mut data = Vec::new();
    post_into(agent, url, body, limit, &mut data)?;
    Ok(data)
}

/// POSTs JSON and copies at most `limit` bytes of a 200 answer into `out`, through a
/// bounded buffer.
fn post_into(
    agent: &ureq::Agent,
    url: &str,
    body: &impl Serialize,
    limit: u64,
    out: &mut impl std::io::Write,
) -> Result<(), UpdateError> {
    let conn = |reason: String| UpdateError::Connection {
        url: url.to_owned(),
        reason,
    };
    let json = serde_json::to_vec(body).map_err(|e| conn(e.to_string()))?;
    let resp = agent
        .post(url)
        .header("content-type", "application/json")
        .send(&json[..])
        .map_err(|e| conn(e.to_string()))?;
    let status = resp.status();
    let mut reader = resp
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader()
        .take(limit.saturating_add(1));
    if !status.is_success() {
        let mut data = Vec::new();
        (&mut reader)
            .take(4096)
            .read_to_end(&mut data)
            .map_err(|e| conn(e.to_string()))?;
        let detail = serde_json::from_slice::<serde_json::Value>(&data)
            .ok()
            .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&data).chars().take(200).collect());
        return Err(conn(format!("HTTP {}: {detail}", status.as_u16())));
    }
    let copied = std::io::copy(&mut reader, out).map_err(|e| conn(e.to_string()))?;
    if copied > limit {
        return Err(UpdateError::TooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    out.flush().map_err(|e| conn(e.to_string()))?;
    Ok(())
}

impl Updater {
    /// One update run in the 2.5 mode: `update_status` and `download_agent` over the
    /// controller's mTLS connection, then the same signature (and, with a metadata root,
    /// metadata) checks and install as [`run`](Self::run). The package is written to a private
    /// file in the var directory as it arrives, hashed in one pass and installed from there only
    /// after its signature has been checked. Records `last_check`, and on success `last_update` and
    /// `agent_info.json`. Does nothing when the config says `activated = false`.
    pub fn run_controller(
        &self,
        files: &ControllerPaths,
        conn: &ReceiverConnection,
        opts: &RunOptions,
    ) -> Result<UpdateOutcome, UpdateError> {
        let _lock = self.lock()?;
        let cfg = ControllerConfig::load(&files.config_file)?;
        if !cfg.activated {
            tracing::info!("Automatic agent updates are deactivated (activated = false).");
            return Ok(UpdateOutcome::Deactivated);
        }
        let mut state = ControllerState::load(&files.state_file)?;
        let manual = opts.mode == Mode::Manual;
        let skip = manual && (opts.skip_signatures || opts.force);
        if skip {
            tracing::warn!(
                "WARNING: signature checks are skipped for this run (--skip-signatures/--force)"
            );
        }
        let reinstall = manual && (opts.reinstall || opts.force);
        let host = conn.host_name()?;
        let installed = read_agent_info(&files.agent_info_file)?.map(|i| i.hash);
        let agent = conn.agent(self.timeout)?;
        let base = conn.base_url.trim_end_matches('/');
        let request = UpdateStatusRequest {
            platform: self.platform.as_str().to_owned(),
            installed_aghash: installed.clone(),
            last_error: state
                .last_error
                .as_deref()
                .map(|e| truncate_last_error(e).to_owned()),
        };
        let url = format!("{base}/{UPDATE_STATUS_PAGE}");
        let body = post(&agent, &url, &request, self.status_limit)?;
        state.last_check = u64::try_from(self.clock.now()).ok();
        state.save(&files.state_file)?;
        let status: UpdateStatusResponse =
            serde_json::from_slice(&body).map_err(|e| UpdateError::Garbled(e.to_string()))?;
        self.rotate_root(
            status
                .target_agent
                .as_ref()
                .map_or(&[][..], |t| &t.root_metadata[..]),
        )?;
        let Some(target) = status.target_agent else {
            tracing::info!("No agent available for us.");
            return Ok(UpdateOutcome::NoAgent);
        };
        if !valid_aghash(&target.aghash) {
            return Err(UpdateError::Garbled(format!(
                "invalid aghash {:?}",
                target.aghash
            )));
        }
        let rollback = state.rollback_state.unwrap_or_default();
        let info = TargetInfo {
            host_name: &host,
            platform: self.platform,
            target_hash: &target.aghash,
            signatures: &target.signatures,
            metadata: target.target_metadata.as_ref(),
            trusted_keys: &cfg.signature_keys,
            rollback: &rollback,
            clock: self.clock.as_ref(),
        };
        let mut plan: Option<TargetPlan> = None;
        if self.verifier().requires_metadata() && !skip {
            plan = Some(self.gate(&info)?);
        }
        if installed.as_deref() == Some(target.aghash.as_str()) && !reinstall {
            tracing::info!("Agent {} already installed.", target.aghash);
            return Ok(UpdateOutcome::AlreadyInstalled {
                hash: target.aghash,
            });
        }
        if plan.is_none() && !skip {
            plan = Some(self.gate(&info)?);
        }
        let plan = plan.unwrap_or_default();
        let limit = plan
            .length()
            .map_or(self.download_cap, |len| len.min(self.download_cap));
        let url = format!("{base}/{DOWNLOAD_AGENT_PAGE}");
        // The package goes straight into a private file (bounded buffer), is hashed in one
        // pass from there and installed from there: memory does not grow with its size.
        let mut file = self.package_file(&target.aghash)?;
        post_into(
            &agent,
            &url,
            &DownloadAgentRequest {
                platform: self.platform.as_str().to_owned(),
                aghash: target.aghash.clone(),
            },
            limit,
            file.as_file_mut(),
        )?;
        let digest = file
            .reopen()
            .and_then(|mut f| agent_sign::PackageDigest::read_from(&mut f))
            .map_err(|e| file_err(file.path(), e))?;
        plan.check_package(&digest)?;
        let signature = self.check_signature(&digest, &info, skip, &target.aghash)?;
        self.install_file(file.path(), &target.aghash)?;
        drop(file);
        let agent_info = AgentInfo {
            hash: target.aghash.clone(),
            platform: self.platform.as_str().to_owned(),
        };
        let data =
            serde_json::to_vec(&agent_info).map_err(|e| file_err(&files.agent_info_file, e))?;
        agent_wire::fsutil::write_atomic(&files.agent_info_file, &data, false)
            .map_err(|e| file_err(&files.agent_info_file, e))?;
        let mut state = ControllerState::load(&files.state_file)?;
        state.last_update = u64::try_from(self.clock.now()).ok();
        state.pending_hash = None;
        if plan.targets.is_some() || plan.timestamp.is_some() {
            let mut rollback = state.rollback_state.clone().unwrap_or_default();
            plan.accept(&mut rollback);
            state.rollback_state = Some(rollback);
        }
        state.save(&files.state_file)?;
        tracing::info!("Agent {} installed.", target.aghash);
        Ok(UpdateOutcome::Installed {
            hash: target.aghash,
            signature,
        })
    }

    /// [`run_controller`](Self::run_controller), then stores the error text as `last_error`
    /// (cleared on success) and returns the section.
    pub fn run_controller_and_record(
        &self,
        files: &ControllerPaths,
        conn: &ReceiverConnection,
        opts: &RunOptions,
    ) -> (Result<UpdateOutcome, UpdateError>, String) {
        let result = self.run_controller(files, conn, opts);
        let error = result.as_ref().err().map(ToString::to_string);
        if let Some(e) = &error {
            tracing::error!(target: agent_wire::FILE_ONLY_TARGET, "{e}");
        }
        let recorded = ControllerState::load(&files.state_file).and_then(|mut s| {
            s.last_error = error;
            s.save(&files.state_file)
        });
        if let Err(e) = recorded {
            tracing::error!("{e}");
        }
        let section = self.controller_section(files, conn);
        (result, section)
    }

    /// Plug-in mode of the 2.5 mode: runs [`run_controller_and_record`](Self::run_controller_and_record)
    /// at most once per configured `interval` (counted from `last_check`); in between, and when
    /// deactivated, it only reports the section built from the files.
    pub fn controller_plugin_output(
        &self,
        files: &ControllerPaths,
        conn: &ReceiverConnection,
        opts: &RunOptions,
    ) -> String {
        let cfg = ControllerConfig::load(&files.config_file);
        let state = ControllerState::load(&files.state_file);
        if let (Ok(cfg), Ok(state)) = (cfg, state) {
            let due = match state.last_check {
                Some(t) => {
                    self.clock.now()
                        >= i64::try_from(t.saturating_add(cfg.interval)).unwrap_or(i64::MAX)
                }
                None => true,
            };
            if !due || !cfg.activated {
                return self.controller_section(files, conn);
            }
        }
        self.run_controller_and_record(files, conn, opts).1
    }

    /// The `<<<cmk_update_agent_status:sep(0)>>>` section built from the 2.5 files (what the
    /// 2.5 status plug-in reports).
    pub fn controller_section(&self, files: &ControllerPaths, conn: &ReceiverConnection) -> String {
        let mut errors = Vec::new();
        let state = ControllerState::load(&files.state_file).unwrap_or_else(|e| {
            errors.push(e.to_string());
            ControllerState::default()
        });
        let cfg = ControllerConfig::load(&files.config_file).unwrap_or_else(|e| {
            errors.push(e.to_string());
            ControllerConfig::default()
        });
        let aghash = read_agent_info(&files.agent_info_file)
            .unwrap_or_else(|e| {
                errors.push(e.to_string());
                None
            })
            .map(|i| i.hash);
        let error = state
            .last_error
            .clone()
            .into_iter()
            .chain(errors)
            .collect::<Vec<_>>();
        let line = SectionLine {
            last_check: state.last_check.map(|t| t as f64),
            last_update: state.last_update.map(|t| t as f64),
            aghash,
            pending_hash: state.pending_hash,
            update_url: Some(conn.base_url.clone()),
            trusted_certs: cfg
                .signature_keys
                .iter()
                .map(|pem| self.verifier().describe_key(pem))
                .collect(),
            error: (!error.is_empty()).then(|| error.join("; ")),
            host_name: conn.host_name().ok(),
        };
        line.render()
    }
}

/// Reads `agent_info.json`; `None` when it doesn't exist.
pub fn read_agent_info(path: &Path) -> Result<Option<AgentInfo>, UpdateError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| file_err(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_err(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_unknown_keys_and_limits() {
        let p = Path::new("cfg.toml");
        let cfg = ControllerConfig::parse(p, "").unwrap();
        assert_eq!(cfg, ControllerConfig::default());
        assert!(cfg.activated);
        assert_eq!(cfg.interval, 3600);
        let cfg = ControllerConfig::parse(
            p,
            "activated = false\ninterval = 600\nsignature_keys = [\"PEM\"]\nfuture_key = 1\n",
        )
        .unwrap();
        assert!(!cfg.activated);
        assert_eq!(cfg.interval, 600);
        assert_eq!(cfg.signature_keys, vec!["PEM".to_owned()]);
        let e = ControllerConfig::parse(p, "interval = 99999999").unwrap_err();
        assert!(e.to_string().starts_with("cfg.toml: interval"), "{e}");
        assert!(ControllerConfig::parse(p, "activated = \"yes\"").is_err());
    }

    #[test]
    fn state_round_trip_is_atomic_and_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("cmk-update-agent.state");
        assert_eq!(
            ControllerState::load(&path).unwrap(),
            ControllerState::default()
        );
        let state = ControllerState {
            last_check: Some(1_700_000_000),
            last_update: Some(1_600_000_000),
            pending_hash: Some("0123456789abcdef".into()),
            last_error: Some("boom".into()),
            rollback_state: None,
        };
        state.save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["last_check", "last_error", "last_update", "pending_hash"]
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(ControllerState::load(&path).unwrap(), state);
        fs::write(&path, "{not json").unwrap();
        let e = ControllerState::load(&path).unwrap_err();
        assert!(e.to_string().contains("cmk-update-agent.state"), "{e}");
    }
}
