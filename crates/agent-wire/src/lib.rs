//! The agent-update protocol shared by the deployment server (`agent-deploy`) and the host-side
//! updater (`agent-updater`, `cmk-update-agent`); it knows neither side.
//!
//! - **Forms and envelopes** of the legacy protocol (`register_agent.py`, `deploy_agent.py`,
//!   `login.py`; signing spec section 3.1) and the 2.5 agent-receiver API
//!   (`update_status`, `download_agent`), with the host-name and hash rules both sides apply.
//! - **The monitoring section** `<<<cmk_update_agent_status:sep(0)>>>`: what the updater writes
//!   ([`SectionLine`], [`TrustedCertInfo`]) and how the "Check_MK Agent" service rates it
//!   ([`Section`], [`rate_section`], in the 2.2–2.4 or the 2.5 behaviour).
//! - [`fsutil`]: atomic private file writes, used by the server's store and the updater's state.
//! - `cli` (feature `cli`): logging and exit-code helpers for the two binaries.
#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
mod forms;
pub mod fsutil;
mod rating;
mod section;

pub use forms::{
    AU_API, AgentResult, DEPLOY_PAGE, DOWNLOAD_AGENT_PAGE, DeployForm, DeployMode,
    DownloadAgentRequest, Envelope, HOST_SECRET_LEN, LOGIN_PAGE, LoginForm, MAX_LAST_ERROR_CHARS,
    Platform, RECEIVER_PREFIX, REGISTER_PAGE, RegisterForm, RegisterResult, StatusResult,
    TargetAgent, TargetMetadata, UPDATE_STATUS_PAGE, UnknownPlatform, UpdateStatusRequest,
    UpdateStatusResponse, certificate_host_name, truncate_last_error, valid_aghash,
    valid_host_name,
};
pub use rating::{
    Rating, RatingLine, RatingMode, RatingParams, Section, SectionCert, SectionError, State,
    format_not_after, parse_not_after, rate_section,
};
pub use section::{SECTION_HEADER, SectionLine, TrustedCertInfo};

/// Target of log events that a binary also reports itself on stderr (the error of an update
/// run): `cli::init_logging` sends them to the log file only, so that each error appears once
/// on the terminal.
pub const FILE_ONLY_TARGET: &str = "file_only";
