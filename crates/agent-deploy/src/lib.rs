//! The agent deployment server for `cmk-update-agent`.
//!
//! This crate serves Checkmk's legacy agent-update protocol (`register_agent.py`,
//! `deploy_agent.py`, section 3 of the signing spec; forms and answers in [`agent_wire`]) and
//! the 2.5 agent-receiver API over HTTP(S) with axum/hyper on tokio. The updater itself lives in
//! the `agent-updater` crate, which depends on neither this crate nor tokio.
//!
//! - **Store** ([`DeployStore`]): users with registration rights (hashed secrets),
//!   64-character host secrets from a CSPRNG (only their SHA-256 is stored, compared in
//!   constant time), one agent directory per host and platform, per-host status files.
//! - **Server** ([`serve`], [`spawn`], [`router`]): the endpoints, with TLS and, with a client
//!   CA, mTLS for the 2.5 API (host = the client certificate's CN).
//! - **Agent Bakery** ([`DeployStore::with_bakery`], [`BakerySite`]): serves what
//!   `agent-bakery` baked under a site's `var/check_mk/agents/` with its signatures, and
//!   applies the deployment decision (master switch, host selection) of the site's `global.mk`;
//!   refusals reach the updater as `Agent Bakery: <text>`.
//! - **Root rotation** ([`DeployStore::publish_root`]): published metadata roots are handed
//!   out with every status answer.
//! - **Status view** ([`view`]): the *Agent update status* page, its JSON and the text of
//!   `agent-deploy status`, for users with registration rights (login form, CSRF tokens).
//! - **Relay** ([`DeployStore::with_relay`], [`Relay`]): on a remote site, registration and
//!   deployment calls are forwarded to the central site over verified TLS and packages are
//!   cached by `(platform, aghash)` (bakery.md §7). [`RelayConfig::for_site`] reads the
//!   relay settings of the site's `global.mk` with an operator's [`RelayOverrides`] on top,
//!   as `agent-deploy serve` does.
//! - **Signing log** ([`DeployStore::audit_signing_log`]): every publication is recorded in
//!   `agent-sign`'s hash-chained [`SigningLog`](agent_sign::SigningLog).
//!
//! # Quick start
//!
//! ```no_run
//! use std::sync::Arc;
//! use agent_deploy::{Advertise, DeployStore, ServerOptions};
//!
//! let store = Arc::new(DeployStore::open("/var/lib/agent-deploy", Advertise::default())?);
//! let tls = agent_deploy::load_tls("server.pem".as_ref(), "server.key".as_ref())?;
//! let options = ServerOptions { site: "mysite".into(), limits: Default::default(), tls: Some(tls) };
//! let server = agent_deploy::spawn(store, options, "0.0.0.0:8443".parse()?, 2)?;
//! # server.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security
//!
//! The host secret is a bearer token: serve HTTPS.
#![warn(missing_docs)]

mod relay;
mod server;
mod stamp;
mod store;
pub mod view;

pub use relay::{
    AnswerError, AnswerKind, CentralAnswer, DEFAULT_CACHE_MAX_BYTES, MAX_AGENT_ANSWER_BYTES,
    MAX_STATUS_ANSWER_BYTES, PACKAGE_SHA256_KEY, PackageCache, RELAY_SITE_FIELD, RELAY_SITE_HEADER,
    RawAnswer, Relay, RelayAnswer, RelayConfig, RelayError, RelayOverrides, RelayStats,
    SITE_TRUST_STORE, SITES_MK, SiteRelaySettings, SiteUrl, package_sha256, parse_central_answer,
    pem_certificates, read_site_urls,
};
pub use server::{
    ClientHost, Limits, ServerHandle, ServerOptions, load_mtls, load_tls, mtls_config, router,
    serve, spawn, tls_config,
};
pub use store::{
    Advertise, BakerySite, DEFAULT_ABANDONED_RETENTION, DEFAULT_PBKDF2_ITERATIONS, DeployAnswer,
    DeployStore, HostStatus, SESSION_LIFETIME_SECS, SIGNING_LOG, ServerError, SigningAudit,
    VIEW_SESSION_LIFETIME_SECS, generate_host_secret, hash_user_secret, package_hash,
};
