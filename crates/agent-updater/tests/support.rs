//! The host side of the test support: updaters in temporary directories, registration, a
//! scripted HTTPS server for client-side tests. The server side (PKI, keys, metadata, our
//! deployment server) is `crates/agent-deploy/tests/support.rs`, re-exported here.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent_sign::{Clock, TrustedRoot};
use agent_updater::{
    AgentSignVerifier, InstallCommand, PackageVerifier, Paths, RegisterOptions, Updater,
};
use agent_wire::Platform;
use serde_json::Value;
use zeroize::Zeroizing;

pub(crate) use crate::server_support::*;

/// The hardened verifier of an updater that trusts a site's metadata root.
pub(crate) trait HardenedVerifier {
    /// The verifier.
    fn verifier(&self) -> Arc<AgentSignVerifier>;
}

impl HardenedVerifier for MetadataKeys {
    fn verifier(&self) -> Arc<AgentSignVerifier> {
        Arc::new(AgentSignVerifier::hardened(
            TrustedRoot::bootstrap(&self.root).unwrap(),
        ))
    }
}

/// An updater in temporary directories, trusting `ca_pem` and `keys`.
pub(crate) struct TestHost {
    pub(crate) conf: tempfile::TempDir,
    pub(crate) var: tempfile::TempDir,
    pub(crate) clock: Arc<TestClock>,
    pub(crate) host: String,
}

impl TestHost {
    pub(crate) fn new(host: &str, ca_pem: &str, keys: &[&str]) -> TestHost {
        let conf = tempfile::tempdir().unwrap();
        let var = tempfile::tempdir().unwrap();
        let cfg = format!(
            "# written by the test bakery\ncertificates = {}\nsignature_keys = {}\ninterval = 600\n",
            serde_json::to_string(&[ca_pem]).unwrap(),
            serde_json::to_string(keys).unwrap()
        );
        std::fs::write(conf.path().join("cmk-update-agent.cfg"), cfg).unwrap();
        TestHost {
            conf,
            var,
            clock: TestClock::new(),
            host: host.to_owned(),
        }
    }

    pub(crate) fn paths(&self) -> Paths {
        Paths::in_dirs(self.conf.path(), self.var.path())
    }

    pub(crate) fn installed_file(&self) -> PathBuf {
        installed_file_in(self.var.path())
    }

    /// An updater with the test clock and an install script that copies the package.
    pub(crate) fn updater(&self, verifier: Arc<dyn PackageVerifier>) -> Updater {
        updater_installing_into(self.var.path(), self.paths(), verifier, &self.clock)
    }

    pub(crate) fn state(&self) -> String {
        std::fs::read_to_string(self.paths().state_file).unwrap_or_default()
    }

    /// Asserts that no download or candidate file was left in the var directory.
    pub(crate) fn assert_no_stray_files(&self) {
        let stray = self.stray_files();
        assert!(stray.is_empty(), "{stray:?}");
    }

    /// Files in the var directory other than the expected ones.
    pub(crate) fn stray_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.var.path()).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if !matches!(
                name.as_str(),
                "cmk-update-agent.state"
                    | "cmk-update-agent.state.bak"
                    | "cache"
                    | "install.sh"
                    | "installed.pkg"
            ) {
                out.push(name);
            }
        }
        out
    }
}

/// Where the install script of [`updater_installing_into`] copies the package.
pub(crate) fn installed_file_in(var: &Path) -> PathBuf {
    var.join("installed.pkg")
}

/// An updater on `paths` with `clock`, the Linux DEB platform, short timeouts and an install
/// script (`var/install.sh`) that copies the package to [`installed_file_in`] `var`.
pub(crate) fn updater_installing_into(
    var: &Path,
    paths: Paths,
    verifier: Arc<dyn PackageVerifier>,
    clock: &Arc<TestClock>,
) -> Updater {
    let script = var.join("install.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncp \"$1\" '{}'\n",
            installed_file_in(var).display()
        ),
    )
    .unwrap();
    Updater::new(paths, verifier)
        .with_clock(Arc::clone(clock) as Arc<dyn Clock>)
        .with_platform(Platform::LinuxDeb)
        .with_install_command(InstallCommand {
            program: "sh".into(),
            args: vec![script.display().to_string()],
        })
        .with_timeout(Duration::from_secs(10))
        .with_lock_retry(2, Duration::from_millis(10))
}

/// Registration values for `host` at `server` (our test user, HTTPS).
pub(crate) fn register_options(server: String, host: &str) -> RegisterOptions {
    RegisterOptions {
        server,
        site: SITE.into(),
        protocol: "https".into(),
        host_name: host.into(),
        user: USER.into(),
        secret: Zeroizing::new(USER_SECRET.into()),
        insecure: false,
        gui_login: false,
    }
}

/// Registers `host` at `srv` with `updater`.
pub(crate) fn register(host: &TestHost, srv: &TestServer, updater: &Updater) {
    let reg = updater
        .register(&register_options(srv.server(), &host.host))
        .unwrap();
    assert!(!reg.monitored || srv.dir.path().join("agents").join(&host.host).exists());
}

/// Parses the JSON line of a section.
pub(crate) fn section_json(section: &str) -> Value {
    let mut lines = section.lines();
    assert_eq!(lines.next(), Some(agent_wire::SECTION_HEADER));
    let v: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(lines.next(), None, "one JSON line only");
    v
}

// ---- a scripted HTTPS server for client-side tests -------------------------------------

/// What the scripted server answers.
pub(crate) enum Reply {
    /// A JSON body.
    Json(Value),
    /// Headers, then bytes forever (no Content-Length).
    Endless,
    /// An HTML page (HTTP 200), as a login or error page.
    Html(String),
}

/// A minimal HTTPS/1.1 server on 127.0.0.1 (one request per connection) driven by a closure.
pub(crate) struct ScriptedServer {
    pub(crate) addr: SocketAddr,
    pub(crate) pki: TestPki,
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(h, 16).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

pub(crate) fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

impl ScriptedServer {
    pub(crate) fn start(
        handler: impl Fn(&str, &HashMap<String, String>) -> Reply + Send + Sync + 'static,
    ) -> ScriptedServer {
        let pki = TestPki::new("scripted");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = Arc::clone(&pki.tls);
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let tls = Arc::clone(&tls);
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let conn = rustls::ServerConnection::new(tls).unwrap();
                    let mut s = rustls::StreamOwned::new(conn, stream);
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let header_end = loop {
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < header_end + len {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body =
                        String::from_utf8_lossy(&buf[header_end..header_end + len]).into_owned();
                    let pairs = parse_form(&body);
                    let form: HashMap<String, String> = pairs.into_iter().collect();
                    match handler(&path, &form) {
                        Reply::Json(v) => {
                            let body = v.to_string();
                            let _ = write!(
                                s,
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = s.flush();
                            s.conn.send_close_notify();
                            let _ = s.flush();
                        }
                        Reply::Html(body) => {
                            let _ = write!(
                                s,
                                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = s.flush();
                            s.conn.send_close_notify();
                            let _ = s.flush();
                        }
                        Reply::Endless => {
                            let _ = write!(
                                s,
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{{\"result_code\": 0, \"result\": {{\"agent\": \""
                            );
                            let block = [b'A'; 16 * 1024];
                            while s.write_all(&block).is_ok() {}
                        }
                    }
                });
            }
        });
        ScriptedServer { addr, pki }
    }

    pub(crate) fn server(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }
}

/// Writes a registered state file (as `register` would) for scripted-server tests.
pub(crate) fn write_registered_state(paths: &Paths, server: &str, host: &str, secret: &str) {
    let state = format!(
        "{{'host_secret': '{secret}', 'server': '{server}', 'site': '{SITE}', 'host_name': '{host}', 'protocol': 'https', 'user': '{USER}'}}\n"
    );
    std::fs::create_dir_all(paths.state_file.parent().unwrap()).unwrap();
    std::fs::write(&paths.state_file, state).unwrap();
}
