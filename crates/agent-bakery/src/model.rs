//! The canonical model of the "Agent updater" rule value (spec bakery.md §3.2–3.3) and the
//! `cmk-update-agent.cfg` written from it (§5.4).

use py_literal::PyValue;
use serde::Serialize;

/// `server_data.usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Usage {
    /// "Registration and fallback".
    Registration,
    /// "Use for all connections": ignore the update URL the server hands out.
    Always,
}

/// `server_data`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ServerData {
    /// Usage.
    pub usage: Usage,
    /// DNS name or IP of the Checkmk server.
    pub server: String,
    /// The site id.
    pub site: String,
    /// `http` or `https`.
    pub protocol: String,
}

/// A proxy password.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Password {
    /// Given in the rule.
    Explicit(String),
    /// An id in the site's password store.
    Stored(String),
}

/// The proxy setting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Proxy {
    /// Connect directly, ignore the environment.
    Direct,
    /// Use the environment's proxy settings.
    Env,
    /// An explicit proxy.
    Explicit {
        /// Host.
        server: String,
        /// Port.
        port: u16,
        /// `http`, `socks4` or `socks5`.
        protocol: String,
        /// User, if any.
        user: Option<String>,
        /// Password, if any.
        password: Option<Password>,
    },
}

/// The executable format of the updater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The x86-64 binary.
    Binary,
    /// The Python script.
    Script,
}

/// `updater_registration` (2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Keep an existing registration.
    Keep,
    /// Overwrite it.
    Overwrite,
    /// Register manually.
    Manual,
}

/// One "Agent updater" value, every era's shape normalised (§3.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UpdaterConfig {
    /// Whether the updater is packaged.
    pub activated: bool,
    /// The server to register with and update from.
    pub server: Option<ServerData>,
    /// CA certificates (PEM) for HTTPS.
    pub certificates: Vec<String>,
    /// Check interval in seconds.
    pub interval: u32,
    /// Proxy.
    pub proxy: Proxy,
    /// Binary or script.
    pub format: Format,
    /// Certificates (PEM) whose signatures the updater accepts.
    pub signature_keys: Vec<String>,
    /// Registration mode.
    pub registration: Registration,
}

/// The largest interval the rule allows (30 days).
pub const MAX_INTERVAL: u32 = 2_592_000;

fn bad(key: &str, v: &PyValue) -> String {
    format!("{key}: the value {} has an unknown shape", v.repr())
}

fn get<'a>(items: &'a [(PyValue, PyValue)], key: &str) -> Option<&'a PyValue> {
    items
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// A tuple/list of two.
fn two(v: &PyValue) -> Option<(&PyValue, &PyValue)> {
    match v {
        PyValue::Tuple(t) | PyValue::List(t) if t.len() == 2 => Some((&t[0], &t[1])),
        _ => None,
    }
}

fn pem_list(key: &str, v: &PyValue) -> Result<Vec<String>, String> {
    let (PyValue::List(items) | PyValue::Tuple(items)) = v else {
        return Err(bad(key, v));
    };
    items
        .iter()
        .map(|item| match item {
            PyValue::Str(s) => Ok(s.clone()),
            // 2.5 upload: (file_name, mime, pem bytes or text)
            PyValue::Tuple(t) | PyValue::List(t) if t.len() == 3 => match &t[2] {
                PyValue::Str(s) => Ok(s.clone()),
                PyValue::Bytes(b) => String::from_utf8(b.clone()).map_err(|_| bad(key, item)),
                _ => Err(bad(key, item)),
            },
            _ => Err(bad(key, item)),
        })
        .collect()
}

/// Normalises one key of a rule value; `Ok(false)` for an unknown key (a warning).
fn apply(cfg: &mut UpdaterConfig, key: &str, v: &PyValue, this_site: &str) -> Result<bool, String> {
    match key {
        "activated" => {
            cfg.activated = match v {
                PyValue::Bool(b) => *b,
                PyValue::Str(s) if s == "enabled" => true,
                PyValue::Str(s) if s == "disabled" => false,
                _ => return Err(bad(key, v)),
            }
        }
        "server_data" => {
            let PyValue::Dict(d) = v else {
                return Err(bad(key, v));
            };
            let usage = match get(d, "usage").map(|u| u.as_str()) {
                None | Some(Some("registration")) => Usage::Registration,
                Some(Some("always")) => Usage::Always,
                _ => return Err(bad("server_data.usage", v)),
            };
            let server = match get(d, "server") {
                Some(PyValue::Str(s)) => s.clone(),
                _ => return Err(bad("server_data.server", v)),
            };
            let site = match get(d, "site") {
                None => this_site.to_string(),
                Some(PyValue::Str(s)) if !s.is_empty() => s.clone(),
                _ => return Err(bad("server_data.site", v)),
            };
            let protocol = match get(d, "protocol") {
                None => "https".to_string(),
                Some(p) => {
                    let p = two(p).map_or(p, |(a, _)| a);
                    match p.as_str() {
                        Some(s @ ("http" | "https")) => s.to_string(),
                        _ => return Err(bad("server_data.protocol", v)),
                    }
                }
            };
            cfg.server = Some(ServerData {
                usage,
                server,
                site,
                protocol,
            });
        }
        "certificates" => cfg.certificates = pem_list(key, v)?,
        "signature_keys" => cfg.signature_keys = pem_list(key, v)?,
        "interval" => {
            let n = match v {
                PyValue::Int(i) => *i as f64,
                PyValue::Float(f) => *f,
                _ => return Err(bad(key, v)),
            };
            if !(0.0..=f64::from(MAX_INTERVAL)).contains(&n) {
                return Err(format!("interval: {n} is outside 0..={MAX_INTERVAL}"));
            }
            cfg.interval = n as u32;
        }
        "edition" => {
            let e = two(v).map_or(v, |(a, _)| a);
            cfg.format = match e.as_str() {
                Some("64bit" | "bit64") => Format::Binary,
                Some("32bit" | "bit32" | "script") => Format::Script,
                _ => return Err(bad(key, v)),
            }
        }
        "proxy" => cfg.proxy = proxy(v)?,
        "updater_registration" => {
            cfg.registration = match v.as_str() {
                Some("keep") => Registration::Keep,
                Some("overwrite") => Registration::Overwrite,
                Some("manual") => Registration::Manual,
                _ => return Err(bad(key, v)),
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn password(v: &PyValue) -> Result<Password, String> {
    match v {
        PyValue::Str(s) => Ok(Password::Explicit(s.clone())),
        PyValue::Tuple(t) | PyValue::List(t) => match t.as_slice() {
            [PyValue::Str(a), PyValue::Str(kind), inner] if a == "cmk_postprocessed" => {
                let (id, secret) = two(inner).ok_or_else(|| bad("proxy password", v))?;
                match (kind.as_str(), id.as_str(), secret.as_str()) {
                    ("explicit_password", _, Some(s)) => Ok(Password::Explicit(s.to_string())),
                    ("stored_password", Some(id), _) => Ok(Password::Stored(id.to_string())),
                    _ => Err(bad("proxy password", v)),
                }
            }
            [PyValue::Str(kind), PyValue::Str(s)] if kind == "password" => {
                Ok(Password::Explicit(s.clone()))
            }
            [PyValue::Str(kind), PyValue::Str(s)] if kind == "store" => {
                Ok(Password::Stored(s.clone()))
            }
            _ => Err(bad("proxy password", v)),
        },
        _ => Err(bad("proxy password", v)),
    }
}

fn explicit_proxy(d: &[(PyValue, PyValue)], era25: bool, whole: &PyValue) -> Result<Proxy, String> {
    let server = match get(d, "server") {
        Some(PyValue::Str(s)) => s.clone(),
        _ => return Err(bad("proxy.server", whole)),
    };
    let port = match get(d, "port") {
        Some(PyValue::Int(p)) => u16::try_from(*p).map_err(|_| bad("proxy.port", whole))?,
        None if era25 => 80,
        _ => return Err(bad("proxy.port", whole)),
    };
    let (protocol, mut creds) = match get(d, "proxy_protocol") {
        None => ("http".to_string(), None),
        Some(PyValue::Str(p)) => (p.clone(), None),
        Some(t) => match two(t) {
            Some((PyValue::Str(p), PyValue::None)) => (p.clone(), None),
            Some((PyValue::Str(p), PyValue::Dict(o))) => {
                (p.clone(), get(o, "credentials").cloned())
            }
            _ => return Err(bad("proxy.proxy_protocol", whole)),
        },
    };
    if !matches!(protocol.as_str(), "http" | "socks4" | "socks5") {
        return Err(bad("proxy.proxy_protocol", whole));
    }
    if let Some(c) = get(d, "credentials") {
        creds = Some(c.clone());
    }
    let (user, password) = match &creds {
        None | Some(PyValue::None) => (None, None),
        Some(PyValue::Dict(c)) => {
            let user = get(c, "user").and_then(|u| u.as_str()).map(str::to_string);
            let pw = get(c, "password").map(password).transpose()?;
            (user, pw)
        }
        Some(c) => match two(c) {
            Some((PyValue::Str(u), pw)) => (Some(u.clone()), Some(password(pw)?)),
            _ => return Err(bad("proxy.credentials", whole)),
        },
    };
    Ok(Proxy::Explicit {
        server,
        port,
        protocol,
        user,
        password,
    })
}

fn proxy(v: &PyValue) -> Result<Proxy, String> {
    match v {
        PyValue::None => Ok(Proxy::Direct),
        PyValue::Str(s) if s == "env" => Ok(Proxy::Env),
        PyValue::Dict(d) => explicit_proxy(d, false, v),
        _ => match two(v) {
            Some((PyValue::Str(k), PyValue::None)) if k == "no_proxy" => Ok(Proxy::Direct),
            Some((PyValue::Str(k), _)) if k == "env_proxy" => Ok(Proxy::Env),
            Some((PyValue::Str(k), PyValue::Dict(d))) if k == "explicit_proxy" => {
                explicit_proxy(d, true, v)
            }
            _ => Err(bad("proxy", v)),
        },
    }
}

impl UpdaterConfig {
    /// The defaults of keys no rule sets.
    pub fn defaults() -> UpdaterConfig {
        UpdaterConfig {
            activated: false,
            server: None,
            certificates: Vec::new(),
            interval: 3600,
            proxy: Proxy::Direct,
            format: Format::Binary,
            signature_keys: Vec::new(),
            registration: Registration::Keep,
        }
    }

    /// Normalises a (merged or single) rule value. Unknown keys are returned for a warning;
    /// a known key with a value of an unknown shape is an error.
    pub fn from_value(
        value: &PyValue,
        this_site: &str,
    ) -> Result<(UpdaterConfig, Vec<String>), String> {
        let PyValue::Dict(items) = value else {
            return Err(format!("the value is a {}, not a dict", value.type_name()));
        };
        let mut cfg = UpdaterConfig::defaults();
        let mut unknown = Vec::new();
        for (k, v) in items {
            let Some(key) = k.as_str() else {
                return Err(format!("key {} is not a string", k.repr()));
            };
            if !apply(&mut cfg, key, v, this_site)? {
                unknown.push(key.to_string());
            }
        }
        Ok((cfg, unknown))
    }

    /// `cmk-update-agent.cfg` (§5.4): the Bakery API header, then one Python dict literal.
    /// `resolve` looks up stored proxy passwords.
    pub fn cfg_text(&self, resolve: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        let s = |t: &str| PyValue::Str(t.to_string());
        let pems = |l: &[String]| PyValue::List(l.iter().map(|p| s(p)).collect());
        let mut items: Vec<(PyValue, PyValue)> = Vec::new();
        if let Some(sd) = &self.server {
            items.push((s("server"), s(&sd.server)));
            items.push((s("site"), s(&sd.site)));
            items.push((s("protocol"), s(&sd.protocol)));
        }
        let ignore = self
            .server
            .as_ref()
            .is_some_and(|sd| sd.usage == Usage::Always);
        items.push((s("ignore_update_url"), PyValue::Bool(ignore)));
        items.push((s("certificates"), pems(&self.certificates)));
        items.push((s("interval"), PyValue::Int(i64::from(self.interval))));
        let proxy = match &self.proxy {
            Proxy::Direct | Proxy::Env => PyValue::None,
            Proxy::Explicit {
                server,
                port,
                protocol,
                user,
                password,
            } => {
                let mut p = vec![
                    (s("server"), s(server)),
                    (s("port"), PyValue::Int(i64::from(*port))),
                    (s("proxy_protocol"), s(protocol)),
                ];
                if let Some(u) = user {
                    p.push((s("user"), s(u)));
                }
                match password {
                    None => {}
                    Some(Password::Explicit(pw)) => p.push((s("password"), s(pw))),
                    Some(Password::Stored(id)) => {
                        let pw = resolve(id).ok_or_else(|| {
                            format!("the stored password {id:?} is not in the password store")
                        })?;
                        p.push((s("password"), s(&pw)));
                    }
                }
                PyValue::Dict(p)
            }
        };
        items.push((s("proxy"), proxy));
        items.push((s("use_proxy_env"), PyValue::Bool(self.proxy == Proxy::Env)));
        items.push((s("signature_keys"), pems(&self.signature_keys)));
        let mut out = String::from(CFG_HEADER);
        out.push('\n');
        // One key per line, in the order above (repr would sort the keys).
        for (i, (k, v)) in items.iter().enumerate() {
            out.push(if i == 0 { '{' } else { ' ' });
            out.push_str(&k.repr());
            out.push_str(": ");
            out.push_str(&v.repr());
            out.push_str(if i + 1 == items.len() { "}\n" } else { ",\n" });
        }
        Ok(out)
    }

    /// Whether the cfg holds a proxy password (the file is then mode 0600).
    pub fn has_secret(&self) -> bool {
        matches!(
            &self.proxy,
            Proxy::Explicit {
                password: Some(_),
                ..
            }
        )
    }
}

/// The Bakery API's header of generated config files.
pub const CFG_HEADER: &str = "# Created by Check_MK Agent Bakery.\n\
# This file is managed via WATO, do not edit manually or you\n\
# lose your changes next time when you update the agent.\n";
