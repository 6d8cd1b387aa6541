//! Automatic agent updates: the deployment server and the `cmk-update-agent` updater.
//!
//! This crate reimplements the legacy Checkmk agent-update protocol (`register_agent.py`,
//! `deploy_agent.py`, section 3 of the signing spec) on both sides:
//!
//! - **Server** ([`DeployStore`], [`serve`], [`spawn`]): users with registration rights (hashed
//!   secrets), 64-character host secrets from a CSPRNG (only their SHA-256 is stored, compared
//!   in constant time), one agent directory per host and platform, per-host status files.
//! - **Updater** ([`Updater`]): registration, the update run (plug-in mode with interval
//!   caching, or by hand), configuration layering (state < cfg < command line), atomic
//!   0600 state writes with `.bak` fallback, TLS that trusts only configured certificates,
//!   signature and metadata checks before installing, and the
//!   `<<<cmk_update_agent_status:sep(0)>>>` section.
//!
//! Beyond the legacy protocol:
//!
//! - **Service rating** ([`rate_section`]): the "Check_MK Agent" service's rating of the
//!   section, in the 2.2–2.4 or the 2.5 behaviour ([`RatingMode`]).
//! - **2.5 mode** ([`Updater::run_controller`], [`load_mtls`]): the updater authenticates with
//!   the agent controller's TLS client certificate (CN = host name) instead of a host secret,
//!   with a TOML config and a JSON state ([`ControllerConfig`], [`ControllerState`]).
//! - **Root rotation** ([`Updater::with_metadata_root_file`], [`Updater::rotate_root`],
//!   [`DeployStore::publish_root`]): newer metadata roots, one version at a time.
//! - **Signing log** ([`DeployStore::audit_signing_log`]): every publication is recorded in
//!   `agent-sign`'s hash-chained [`SigningLog`](agent_sign::SigningLog).
//! - **GUI login** ([`RegisterOptions::gui_login`]): registration with a user's password
//!   through a `login.py` session.
//!
//! Signatures and hardened metadata are checked through the [`PackageVerifier`] trait, which
//! [`AgentSignVerifier`] implements with `agent-sign` (Checkmk's signature rules and log lines;
//! with a metadata root also signed targets/timestamp metadata, rollback and freeze
//! protection). Signature lists on the wire and on disk are `agent-sign`'s
//! [`PackageSignature`](agent_sign::PackageSignature); hardened metadata travels as
//! [`TargetMetadata`], made of `agent-sign` [`SignedDocument`](agent_sign::SignedDocument)s.
//! Time comes from `agent-sign`'s [`Clock`].
//!
//! # Quick start
//!
//! ```no_run
//! use std::sync::Arc;
//! use agent_deploy::{Advertise, AgentSignVerifier, DeployStore, Mode, Paths, RunOptions, ServerOptions, Updater};
//!
//! // Server
//! let store = Arc::new(DeployStore::open("/var/lib/agent-deploy", Advertise::default())?);
//! let tls = agent_deploy::load_tls("server.pem".as_ref(), "server.key".as_ref())?;
//! let options = ServerOptions { site: "mysite".into(), limits: Default::default(), tls: Some(tls) };
//! let server = agent_deploy::spawn(store, options, "0.0.0.0:8443".parse()?, 2)?;
//!
//! // Updater (plug-in mode: prints the <<<cmk_update_agent_status:sep(0)>>> section)
//! let updater = Updater::new(Paths::from_env(), Arc::new(AgentSignVerifier::checkmk()));
//! print!("{}", updater.plugin_output(&RunOptions::new(Mode::Plugin)));
//! # server.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security
//!
//! The host secret is a bearer token: use HTTPS. The updater downloads a package only after
//! the pre-download gate passes, reads at most the announced length (or an absolute cap) into a
//! private temporary file, verifies it, and records `installed_aghash` only after the install
//! command succeeded. Rollback protection (and the `aghash` check against signed metadata)
//! needs a metadata root: see [`AgentSignVerifier::hardened`].
#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
mod controller;
mod fsutil;
mod rating;
mod rotation;
mod server;
mod settings;
mod store;
mod updater;
mod verify;
mod wire;

/// The time source of every time-dependent rule, shared with `agent-sign` (Unix seconds).
pub use agent_sign::{Clock, FixedClock, SystemClock};
pub use controller::{
    AgentInfo, ControllerConfig, ControllerPaths, ControllerState, ReceiverConnection,
    read_agent_info,
};
pub use rating::{
    Rating, RatingLine, RatingMode, RatingParams, Section, SectionCert, SectionError, State,
    format_not_after, parse_not_after, rate_section,
};
pub use server::{
    ClientHost, Limits, ServerHandle, ServerOptions, load_mtls, load_tls, mtls_config, router,
    serve, spawn, tls_config,
};
pub use settings::{
    CONFIG_KEYS, DEFAULT_INTERVAL, MAX_INTERVAL, Origin, ProxySetting, Settings, SettingsError,
};
pub use store::{
    Advertise, DEFAULT_PBKDF2_ITERATIONS, DeployAnswer, DeployStore, HostStatus,
    SESSION_LIFETIME_SECS, SIGNING_LOG, ServerError, SigningAudit, generate_host_secret,
    hash_user_secret, package_hash,
};
pub use updater::{
    InstallCommand, Mode, Paths, ROLLBACK_STATE_KEY, RegisterOptions, Registered, RunOptions,
    SECTION_HEADER, UpdateError, UpdateOutcome, Updater,
};
pub use verify::{
    AgentSignVerifier, PackageVerifier, TargetInfo, TargetPlan, TrustedCertInfo, Verified,
    VerifyError,
};
pub use wire::{
    AU_API, AgentResult, DEPLOY_PAGE, DOWNLOAD_AGENT_PAGE, DeployForm, DeployMode,
    DownloadAgentRequest, Envelope, HOST_SECRET_LEN, LOGIN_PAGE, LoginForm, MAX_LAST_ERROR_CHARS,
    Platform, RECEIVER_PREFIX, REGISTER_PAGE, RegisterForm, RegisterResult, StatusResult,
    TargetAgent, TargetMetadata, UPDATE_STATUS_PAGE, UnknownPlatform, UpdateStatusRequest,
    UpdateStatusResponse, truncate_last_error, valid_aghash, valid_host_name,
};
