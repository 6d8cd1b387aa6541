//! The host side of automatic agent updates: `cmk-update-agent`'s library.
//!
//! This crate speaks Checkmk's legacy agent-update protocol (`register_agent.py`,
//! `deploy_agent.py`, section 3 of the signing spec; forms and answers in [`agent_wire`]) as
//! the client, with a blocking HTTPS client (`ureq` on `rustls`): no async runtime and no HTTP
//! server is compiled in.
//!
//! - **Updater** ([`Updater`]): registration, the update run (plug-in mode with interval
//!   caching, or by hand), configuration layering (state < cfg < command line, [`Settings`]),
//!   atomic 0600 state writes with `.bak` fallback, TLS that trusts only configured
//!   certificates, signature and metadata checks before installing, and the
//!   `<<<cmk_update_agent_status:sep(0)>>>` section.
//! - **2.5 mode** ([`Updater::run_controller`]): the updater authenticates with the agent
//!   controller's TLS client certificate (CN = host name) instead of a host secret, with a TOML
//!   config and a JSON state ([`ControllerConfig`], [`ControllerState`]).
//! - **Root rotation** ([`Updater::with_metadata_root_file`], [`Updater::rotate_root`]): newer
//!   metadata roots, one version at a time.
//! - **GUI login** ([`RegisterOptions::gui_login`]): registration with a user's password
//!   through a `login.py` session.
//!
//! Signatures and hardened metadata are checked through the [`PackageVerifier`] trait, which
//! [`AgentSignVerifier`] implements with `agent-sign` (Checkmk's signature rules and log lines;
//! with a metadata root also signed targets/timestamp metadata, rollback and freeze
//! protection). Time comes from `agent-sign`'s [`Clock`].
//!
//! # Quick start
//!
//! ```no_run
//! use std::sync::Arc;
//! use agent_updater::{AgentSignVerifier, Mode, Paths, RunOptions, Updater};
//!
//! // Plug-in mode: prints the <<<cmk_update_agent_status:sep(0)>>> section.
//! let updater = Updater::new(Paths::from_env(), Arc::new(AgentSignVerifier::checkmk()));
//! print!("{}", updater.plugin_output(&RunOptions::new(Mode::Plugin)));
//! ```
//!
//! # Security
//!
//! The host secret is a bearer token: use HTTPS. The updater downloads a package only after
//! the pre-download gate passes, reads at most the announced length (or an absolute cap) into a
//! private temporary file, verifies it, and records `installed_aghash` only after the install
//! command succeeded. The answer's base64 is decoded and hashed as it arrives (and the deferred
//! install's candidate file is written and read the same way), so the updater's memory does not
//! grow with the package's size. Rollback protection (and the `aghash` check against signed metadata)
//! needs a metadata root: see [`AgentSignVerifier::hardened`].
#![warn(missing_docs)]

mod controller;
mod rotation;
mod settings;
mod stream;
mod tls;
mod updater;
mod verify;

/// The time source of every time-dependent rule, shared with `agent-sign` (Unix seconds).
pub use agent_sign::{Clock, FixedClock, SystemClock};
pub use controller::{
    AgentInfo, ControllerConfig, ControllerPaths, ControllerState, ReceiverConnection,
    read_agent_info,
};
pub use settings::{
    CONFIG_KEYS, DEFAULT_INTERVAL, MAX_INTERVAL, Origin, ProxySetting, Settings, SettingsError,
};
pub use updater::{
    BadInstallCommand, InstallCommand, Mode, Paths, ROLLBACK_STATE_KEY, RegisterOptions,
    Registered, RunOptions, UpdateError, UpdateOutcome, Updater, detect_platform,
};
pub use verify::{
    AgentSignVerifier, PackageVerifier, TargetInfo, TargetPlan, Verified, VerifyError,
};
