//! The updater's configuration layers (section 3.3): defaults < state file < cfg file <
//! command line. Values written by the updater go to the state file only.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use agent_wire::fsutil::{with_suffix, write_atomic};
use py_literal::PyValue;
use py_literal::json::{dict_to_json, object_to_py, to_json};

/// Default update interval in seconds.
pub const DEFAULT_INTERVAL: u64 = 3600;
/// The rule's upper limit for the interval (30 days).
pub const MAX_INTERVAL: u64 = 30 * 24 * 3600;

/// Errors while reading or writing the updater's files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file is not a valid Python literal.
    #[error("{path}: cannot parse: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A value has the wrong type or is out of range.
    #[error("{origin}: invalid value for {key}: {reason}")]
    Invalid {
        /// Where the value came from.
        origin: Origin,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// Where a setting's effective value comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// Built-in default.
    Default,
    /// The state file.
    State(PathBuf),
    /// The cfg file (written by the bakery).
    Config(PathBuf),
    /// This call's command line.
    CommandLine,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::State(p) => write!(f, "state file {}", p.display()),
            Origin::Config(p) => write!(f, "config file {}", p.display()),
            Origin::CommandLine => f.write_str("command line"),
        }
    }
}

/// The `proxy` / `use_proxy_env` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxySetting {
    /// Connect directly; proxy variables in the environment are ignored.
    Direct,
    /// Use `http_proxy` / `https_proxy` / `all_proxy` from the environment.
    Environment,
    /// An explicit proxy.
    Explicit {
        /// `http`, `socks4` or `socks5`.
        protocol: String,
        /// Proxy host.
        server: String,
        /// Proxy port.
        port: u16,
        /// Optional user.
        user: Option<String>,
        /// Optional password.
        password: Option<String>,
    },
}

/// Keys the cfg file may set (DOC `show-config`).
pub const CONFIG_KEYS: &[&str] = &[
    "server",
    "site",
    "protocol",
    "certificates",
    "ignore_update_url",
    "interval",
    "proxy",
    "signature_keys",
    "use_proxy_env",
];

/// The merged settings of one updater call.
#[derive(Clone)]
pub struct Settings {
    state_path: PathBuf,
    config_path: PathBuf,
    state: Map<String, Value>,
    config: Map<String, Value>,
    cli: Map<String, Value>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may hold the host secret or a proxy password: show the files only.
        f.debug_struct("Settings")
            .field("state_path", &self.state_path)
            .field("config_path", &self.config_path)
            .finish_non_exhaustive()
    }
}

/// Reads a state or cfg file (section 3.2): either one dict literal (the state file, a Python
/// `repr` read with `ast.literal_eval`) or `name = literal` lines (the cfg file).
fn parse_document(text: &str) -> Result<Map<String, Value>, String> {
    let first_line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    if first_line.is_some_and(|l| l.starts_with('{')) {
        match py_literal::parse(text).map_err(|e| e.to_string())? {
            PyValue::Dict(items) => dict_to_json(&items).map_err(|e| e.to_string()),
            other => Err(format!("expected a dict, found {}", other.type_name())),
        }
    } else {
        let mut map = Map::new();
        for (name, value) in py_literal::parse_assignments(text).map_err(|e| e.to_string())? {
            let value = to_json(&value).map_err(|e| format!("{name}: {e}"))?;
            map.insert(name, value);
        }
        Ok(map)
    }
}

/// Writes the state layer as Python's `repr` of a dict on one line (keys sorted), plus a
/// newline: what the real updater writes and `ast.literal_eval` reads.
fn format_state(state: &Map<String, Value>) -> String {
    let mut text = object_to_py(state).repr();
    text.push('\n');
    text
}

fn read_layer(path: &Path) -> Result<Option<Map<String, Value>>, SettingsError> {
    match fs::read_to_string(path) {
        Ok(text) => parse_document(&text)
            .map(Some)
            .map_err(|reason| SettingsError::Parse {
                path: path.to_owned(),
                reason,
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SettingsError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

impl Settings {
    /// Loads the state file (falling back to `<state>.bak` if it is corrupt) and the cfg file.
    pub fn load(
        state_path: &Path,
        config_path: &Path,
        cli: Map<String, Value>,
    ) -> Result<Settings, SettingsError> {
        let state = match read_layer(state_path) {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => {
                let bak = with_suffix(state_path, ".bak");
                match read_layer(&bak) {
                    Ok(Some(s)) => {
                        tracing::warn!("{e}; using the backup {}", bak.display());
                        s
                    }
                    _ => return Err(e),
                }
            }
        };
        let config = read_layer(config_path)?.unwrap_or_default();
        let settings = Settings {
            state_path: state_path.to_owned(),
            config_path: config_path.to_owned(),
            state,
            config,
            cli,
        };
        settings.interval()?;
        Ok(settings)
    }

    /// The effective value of `key` and where it comes from.
    pub fn get(&self, key: &str) -> Option<(&Value, Origin)> {
        fn pick<'m>(m: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
            m.get(key).filter(|v| !v.is_null())
        }
        if let Some(v) = pick(&self.cli, key) {
            return Some((v, Origin::CommandLine));
        }
        if let Some(v) = pick(&self.config, key) {
            return Some((v, Origin::Config(self.config_path.clone())));
        }
        pick(&self.state, key).map(|v| (v, Origin::State(self.state_path.clone())))
    }

    /// The effective string value of `key` (empty strings count as unset).
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(|(v, _)| v.as_str())
            .filter(|s| !s.is_empty())
    }

    /// The effective boolean value of `key` (`false` when unset).
    pub fn get_bool(&self, key: &str) -> bool {
        self.get(key)
            .and_then(|(v, _)| v.as_bool())
            .unwrap_or(false)
    }

    /// The effective number value of `key`.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(|(v, _)| v.as_f64())
    }

    /// The effective list of strings of `key` (a single string counts as a list of one).
    pub fn get_str_list(&self, key: &str) -> Vec<String> {
        match self.get(key).map(|(v, _)| v) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// A state-file value only (ignoring cfg and command line).
    pub fn state_value(&self, key: &str) -> Option<&Value> {
        self.state.get(key).filter(|v| !v.is_null())
    }

    /// The update interval (default 3600 s; at most 30 days).
    pub fn interval(&self) -> Result<u64, SettingsError> {
        let Some((v, origin)) = self.get("interval") else {
            return Ok(DEFAULT_INTERVAL);
        };
        let invalid = |reason: &str| SettingsError::Invalid {
            origin: origin.clone(),
            key: "interval".into(),
            reason: reason.into(),
        };
        let secs = v
            .as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64));
        match secs {
            Some(s) if s <= MAX_INTERVAL => Ok(s),
            Some(_) => Err(invalid("more than 30 days")),
            None => Err(invalid("not a number of seconds")),
        }
    }

    /// The proxy to use.
    pub fn proxy(&self) -> Result<ProxySetting, SettingsError> {
        match self.get("proxy") {
            None => {}
            Some((Value::String(s), _)) if s == "env" => return Ok(ProxySetting::Environment),
            Some((Value::Object(m), origin)) => {
                let invalid = |reason: &str| SettingsError::Invalid {
                    origin: origin.clone(),
                    key: "proxy".into(),
                    reason: reason.into(),
                };
                let server = m
                    .get("server")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("missing server"))?;
                let port = m
                    .get("port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| invalid("missing or bad port"))?;
                let protocol = m
                    .get("proxy_protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("http");
                if !matches!(protocol, "http" | "socks4" | "socks5") {
                    return Err(invalid("proxy_protocol must be http, socks4 or socks5"));
                }
                let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
                return Ok(ProxySetting::Explicit {
                    protocol: protocol.to_owned(),
                    server: server.to_owned(),
                    port,
                    user: text("user"),
                    password: text("password"),
                });
            }
            Some((_, origin)) => {
                return Err(SettingsError::Invalid {
                    origin,
                    key: "proxy".into(),
                    reason: "expected None, 'env' or a dict".into(),
                });
            }
        }
        Ok(if self.get_bool("use_proxy_env") {
            ProxySetting::Environment
        } else {
            ProxySetting::Direct
        })
    }

    /// Sets a value in the state layer (saved by [`save_state`](Self::save_state)).
    pub fn set_state(&mut self, key: &str, value: Value) {
        self.state.insert(key.to_owned(), value);
    }

    /// Writes the state file atomically (mode 0600), keeping the previous one as `.bak`.
    pub fn save_state(&self) -> Result<(), SettingsError> {
        let text = format_state(&self.state);
        write_atomic(&self.state_path, text.as_bytes(), true).map_err(|source| SettingsError::Io {
            path: self.state_path.clone(),
            source,
        })
    }

    /// All effective values grouped by origin, for `show-config`. Secrets are masked.
    pub fn show(&self) -> Vec<(Origin, Vec<(String, String)>)> {
        let mut keys: Vec<&String> = self
            .cli
            .keys()
            .chain(self.config.keys())
            .chain(self.state.keys())
            .collect();
        keys.sort();
        keys.dedup();
        let mut groups: BTreeMap<Origin, Vec<(String, String)>> = BTreeMap::new();
        for key in keys {
            let Some((value, origin)) = self.get(key) else {
                continue;
            };
            let shown = match (key.as_str(), value) {
                ("host_secret" | "password", Value::String(s)) => {
                    format!("<{} characters, hidden>", s.chars().count())
                }
                ("proxy", Value::Object(m)) => {
                    let mut m = m.clone();
                    if m.contains_key("password") {
                        m.insert("password".into(), Value::String("<hidden>".into()));
                    }
                    Value::Object(m).to_string()
                }
                ("certificates" | "local_certificates" | "signature_keys", Value::Array(a)) => {
                    format!("<{} certificate(s)>", a.len())
                }
                (_, Value::String(s)) => s.clone(),
                (_, v) => v.to_string(),
            };
            groups.entry(origin).or_default().push((key.clone(), shown));
        }
        if !self.config.contains_key("interval")
            && !self.cli.contains_key("interval")
            && !self.state.contains_key("interval")
        {
            groups
                .entry(Origin::Default)
                .or_default()
                .push(("interval".into(), DEFAULT_INTERVAL.to_string()));
        }
        groups.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_repr_dict() {
        let text = "{'host_name': 'web01', 'last_check': 1660750511.8, 'pending_hash': None, \
                    'ignore_update_url': True, 'certificates': ['-----BEGIN\\nX'], 'n': 3}";
        let m = parse_document(text).unwrap();
        assert_eq!(m["host_name"], "web01");
        assert_eq!(m["pending_hash"], Value::Null);
        assert_eq!(m["ignore_update_url"], true);
        assert_eq!(m["certificates"][0], "-----BEGIN\nX");
        assert_eq!(m["n"], 3);
        let written = format_state(&m);
        assert_eq!(
            written,
            "{'certificates': ['-----BEGIN\\nX'], 'host_name': 'web01', 'ignore_update_url': True, \
             'last_check': 1660750511.8, 'n': 3, 'pending_hash': None}\n"
        );
        assert_eq!(parse_document(&written).unwrap(), m);
    }

    #[test]
    fn state_strings_are_written_like_python_repr() {
        let mut m = Map::new();
        m.insert("last_error".into(), Value::from("can't connect"));
        m.insert("x".into(), Value::from(1e20));
        assert_eq!(
            format_state(&m),
            "{'last_error': \"can't connect\", 'x': 1e+20}\n"
        );
        assert_eq!(parse_document(&format_state(&m)).unwrap(), m);
    }

    #[test]
    fn assignments_and_comments() {
        let text = "# Created by the bakery\nserver = \"cmk.example\"\nsite = 'mysite' # comment\ninterval = 600\nproxy = {'server': 'p', 'port': 3128, 'proxy_protocol': 'http'}\n";
        let m = parse_document(text).unwrap();
        assert_eq!(m["server"], "cmk.example");
        assert_eq!(m["interval"], 600);
        assert_eq!(m["proxy"]["port"], 3128);
        let dict_after_comment = "# state\n{'a': 1}\n";
        assert_eq!(parse_document(dict_after_comment).unwrap()["a"], 1);
    }

    #[test]
    fn rejects_code() {
        assert!(parse_document("server = __import__('os')").is_err());
        assert!(parse_document("{'a': 1").is_err());
        assert!(parse_document("{'a': b'x'}").is_err());
    }
}
