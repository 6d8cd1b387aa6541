//! The legacy HTTP protocol of section 3.1: form fields, JSON envelopes and result keys.

use agent_sign::{PackageSignature, SignedDocument};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Value of the `au_api` form field that every request carries.
pub const AU_API: &str = "2";
/// Length of a host secret, in characters.
pub const HOST_SECRET_LEN: usize = 64;
/// The updater sends at most this many characters of its last error.
pub const MAX_LAST_ERROR_CHARS: usize = 512;
/// Page of the registration endpoint, below `<base>`.
pub const REGISTER_PAGE: &str = "register_agent.py";
/// Page of the GUI login, below `<base>` (registration with a user's password).
pub const LOGIN_PAGE: &str = "login.py";
/// Page of the deployment endpoint, below `<base>`.
pub const DEPLOY_PAGE: &str = "deploy_agent.py";

/// Hardened metadata handed out with a status answer under `TargetMetadata` (our extension;
/// Checkmk's updater ignores unknown keys). Both documents are `agent-sign` envelopes exactly as
/// `agent-sign metadata targets` / `agent-sign metadata timestamp` write them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetMetadata {
    /// Signed targets metadata binding host, platform, aghash, SHA-256, length, version, expiry.
    pub targets: SignedDocument,
    /// Optional short-lived signed timestamp naming that targets document (freeze protection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<SignedDocument>,
}

/// Operating system / package flavour, the `os` form field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Debian package, installed with `dpkg -i`.
    LinuxDeb,
    /// RPM package, installed with `rpm -vU --oldpackage --replacepkgs`.
    LinuxRpm,
    /// Solaris package.
    SolarisPkg,
    /// Tarball.
    LinuxTgz,
    /// Windows MSI.
    WindowsMsi,
}

impl Platform {
    /// All platforms, in the order of section 3.1.
    pub const ALL: [Platform; 5] = [
        Platform::LinuxDeb,
        Platform::LinuxRpm,
        Platform::SolarisPkg,
        Platform::LinuxTgz,
        Platform::WindowsMsi,
    ];

    /// The wire name (`linux_deb`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::LinuxDeb => "linux_deb",
            Platform::LinuxRpm => "linux_rpm",
            Platform::SolarisPkg => "solaris_pkg",
            Platform::LinuxTgz => "linux_tgz",
            Platform::WindowsMsi => "windows_msi",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The `os` value is not one of the platforms of section 3.1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown platform {0:?} (expected linux_deb, linux_rpm, solaris_pkg, linux_tgz or windows_msi)"
)]
pub struct UnknownPlatform(pub String);

impl std::str::FromStr for Platform {
    type Err = UnknownPlatform;

    /// Parses a wire name (`linux_deb`); the command-line spelling `linux-deb` is accepted too.
    fn from_str(s: &str) -> Result<Platform, UnknownPlatform> {
        Platform::parse(&s.replace('-', "_")).ok_or_else(|| UnknownPlatform(s.to_owned()))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Form of `register_agent.py` with automation credentials.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct RegisterForm {
    /// Host to register.
    #[serde(default)]
    pub host: String,
    /// User name.
    #[serde(rename = "_username", default)]
    pub username: String,
    /// Password or automation secret.
    #[serde(rename = "_secret", default)]
    pub secret: String,
    /// Protocol version, `2`.
    #[serde(default)]
    pub au_api: String,
}

impl std::fmt::Debug for RegisterForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterForm")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("secret", &"<hidden>")
            .finish()
    }
}

impl Drop for RegisterForm {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// `mode` of a `deploy_agent.py` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployMode {
    /// Ask for the target state.
    Status,
    /// Download the package.
    Agent,
}

/// Form of `deploy_agent.py` (`mode=status` and `mode=agent`).
#[derive(Clone, Serialize, Deserialize)]
pub struct DeployForm {
    /// `status` or `agent`.
    pub mode: DeployMode,
    /// The host name.
    #[serde(default)]
    pub host: String,
    /// The 64-character host secret.
    #[serde(default)]
    pub host_secret: String,
    /// Hash of the installed agent, or empty.
    #[serde(default)]
    pub installed_aghash: String,
    /// Empty for `status`, the wanted `TargetHash` for `agent`.
    #[serde(default)]
    pub aghash: String,
    /// Platform, e.g. `linux_deb`.
    #[serde(default)]
    pub os: String,
    /// The updater's last error, at most 512 characters.
    #[serde(default)]
    pub last_error: String,
    /// Protocol version, `2`.
    #[serde(default)]
    pub au_api: String,
}

impl std::fmt::Debug for DeployForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployForm")
            .field("mode", &self.mode)
            .field("host", &self.host)
            .field("host_secret", &"<hidden>")
            .field("installed_aghash", &self.installed_aghash)
            .field("aghash", &self.aghash)
            .field("os", &self.os)
            .field("last_error", &self.last_error)
            .finish()
    }
}

impl Drop for DeployForm {
    fn drop(&mut self) {
        self.host_secret.zeroize();
    }
}

impl DeployForm {
    /// The form as `(field, value)` pairs, in the order the updater sends them.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        vec![
            (
                "mode",
                if self.mode == DeployMode::Status {
                    "status"
                } else {
                    "agent"
                },
            ),
            ("host", &self.host),
            ("host_secret", &self.host_secret),
            ("installed_aghash", &self.installed_aghash),
            ("aghash", &self.aghash),
            ("os", &self.os),
            ("last_error", &self.last_error),
            ("au_api", AU_API),
        ]
    }
}

/// The JSON envelope of every answer: `{"result_code": 0|1, "result": …}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// 0 = success, 1 = error (then `result` is the message).
    pub result_code: i64,
    /// The payload.
    pub result: serde_json::Value,
}

impl Envelope {
    /// A successful answer.
    pub fn ok<T: Serialize>(result: &T) -> Envelope {
        Envelope {
            result_code: 0,
            result: serde_json::to_value(result).unwrap_or(serde_json::Value::Null),
        }
    }

    /// An error answer with a message.
    pub fn error(message: impl Into<String>) -> Envelope {
        Envelope {
            result_code: 1,
            result: serde_json::Value::String(message.into()),
        }
    }
}

/// `result` of `register_agent.py`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterResult {
    /// The new host secret (64 characters).
    pub host_secret: String,
    /// `false` when the host is not (yet) known to the deployment server.
    #[serde(default = "default_true")]
    pub monitored: bool,
    /// Base URL the updater should use from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_url: Option<String>,
    /// CA certificates (PEM) the updater should trust for this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<String>>,
}

fn default_true() -> bool {
    true
}

/// `result` of `deploy_agent.py` with `mode=status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusResult {
    /// Whether an agent is ready for this host and platform.
    #[serde(rename = "AgentAvailable")]
    pub agent_available: bool,
    /// The server's 16-hex-character name of the package.
    #[serde(rename = "TargetHash", default)]
    pub target_hash: Option<String>,
    /// Signature list of the package.
    #[serde(rename = "Signatures", default)]
    pub signatures: Vec<PackageSignature>,
    /// Hardened, signed target metadata (our extension; Checkmk ignores it).
    #[serde(
        rename = "TargetMetadata",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_metadata: Option<TargetMetadata>,
    /// Published root documents, sorted by version (our extension): the updater applies the
    /// versions above its trusted root one at a time (`TrustedRoot::update`).
    #[serde(
        rename = "RootMetadata",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub root_metadata: Vec<SignedDocument>,
    /// Base URL the updater should use from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_url: Option<String>,
    /// CA certificates (PEM) the updater should trust for this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<String>>,
}

/// `result` of `deploy_agent.py` with `mode=agent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentResult {
    /// The package, base64.
    pub agent: String,
}

/// Cuts `text` to at most [`MAX_LAST_ERROR_CHARS`] characters.
pub fn truncate_last_error(text: &str) -> &str {
    match text.char_indices().nth(MAX_LAST_ERROR_CHARS) {
        Some((idx, _)) => &text[..idx],
        None => text,
    }
}

/// Checks that a host name is safe as a file name and plausible as a Checkmk host name:
/// 1–253 characters of `[A-Za-z0-9._-]`, not starting with `.` or `-`.
pub fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks the server's name of a package: 1–64 lower-case hex characters (16 in Checkmk).
pub fn valid_aghash(hash: &str) -> bool {
    !hash.is_empty()
        && hash.len() <= 64
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Path segment of the 2.5 (agent receiver) API below `/<site>/`.
pub const RECEIVER_PREFIX: &str = "agent-receiver";
/// 2.5 API: the status call, `POST /<site>/agent-receiver/update_status`.
pub const UPDATE_STATUS_PAGE: &str = "update_status";
/// 2.5 API: the download, `POST /<site>/agent-receiver/download_agent`.
pub const DOWNLOAD_AGENT_PAGE: &str = "download_agent";

/// 2.5 API: the host a TLS client certificate (DER) identifies, its subject CN. The server
/// reads it from the peer certificate, the updater from its own client certificate.
pub fn certificate_host_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(cn.to_owned())
}

/// 2.5 API `update_status` request (JSON). The host is the subject CN of the TLS client
/// certificate, so there is neither a host name nor a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStatusRequest {
    /// Package flavour (`linux_deb`, …).
    pub platform: String,
    /// Hash of the installed agent, if known.
    #[serde(default)]
    pub installed_aghash: Option<String>,
    /// Last error, at most [`MAX_LAST_ERROR_CHARS`] characters.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// 2.5 API `update_status` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateStatusResponse {
    /// The agent this host should run; `None` when none is published for it.
    pub target_agent: Option<TargetAgent>,
}

/// The target agent of an [`UpdateStatusResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetAgent {
    /// The server's 16-hex-character name of the package.
    pub aghash: String,
    /// Signature list of the package (our server sends it here; the updater checks it before
    /// installing).
    #[serde(default)]
    pub signatures: Vec<PackageSignature>,
    /// Hardened metadata, as in [`StatusResult::target_metadata`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_metadata: Option<TargetMetadata>,
    /// Published root documents, as in [`StatusResult::root_metadata`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_metadata: Vec<SignedDocument>,
}

/// 2.5 API `download_agent` request (JSON); the answer is the package bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadAgentRequest {
    /// Package flavour.
    pub platform: String,
    /// The `aghash` from [`TargetAgent`].
    pub aghash: String,
}

/// Form of `login.py` (`_login=1`, `_username`, `_password`).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct LoginForm {
    /// `1`.
    #[serde(rename = "_login", default)]
    pub login: String,
    /// User name.
    #[serde(rename = "_username", default)]
    pub username: String,
    /// The user's password.
    #[serde(rename = "_password", default)]
    pub password: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Drop for LoginForm {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}
