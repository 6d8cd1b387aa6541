//! The `cmk-update-agent` binary against our deployment server over loopback HTTPS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use agent_deploy::{Advertise, DeployStore, ServerOptions};
use agent_sign::{Certificate, Passphrase, PrivateKey, Subject, SystemClock};
use agent_wire::Platform;

#[path = "../../agent-deploy/tests/support/tls.rs"]
mod tls;
use tls::write_tls_files;

/// The binary under test: this package's, or another build of it (e.g. the portable one of
/// `scripts/build-portable-updater`) named by `CMK_UPDATE_AGENT_BIN`.
fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("CMK_UPDATE_AGENT_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_cmk-update-agent").to_owned())
    })
}

struct Setup {
    _srv_dir: tempfile::TempDir,
    store: Arc<DeployStore>,
    handle: agent_deploy::ServerHandle,
    conf: tempfile::TempDir,
    var: tempfile::TempDir,
    cert: Certificate,
    key: PrivateKey,
}

/// Serves `store` for the site `mysite` on a free loopback port, over TLS with the server
/// certificate of `files`; with `client_ca`, hosts may present client certificates (mTLS).
fn spawn_server(
    store: &Arc<DeployStore>,
    files: &tls::TlsFiles,
    client_ca: Option<&Path>,
) -> agent_deploy::ServerHandle {
    let tls = match client_ca {
        None => agent_deploy::load_tls(&files.cert, &files.key),
        Some(ca) => agent_deploy::load_mtls(&files.cert, &files.key, ca),
    }
    .unwrap();
    let options = ServerOptions {
        site: "mysite".into(),
        limits: Default::default(),
        tls: Some(tls),
    };
    agent_deploy::spawn(
        Arc::clone(store),
        options,
        "127.0.0.1:0".parse().unwrap(),
        1,
    )
    .unwrap()
}

/// An RSA key of agent-sign's test data (`crates/agent-sign/tests/data`) with a fresh
/// certificate for `alias`.
fn fixture_signing_key(key_pem: &str, passphrase: &str, alias: &str) -> (PrivateKey, Certificate) {
    let key = PrivateKey::from_encrypted_pem(key_pem, &Passphrase::new(passphrase)).unwrap();
    let subject = Subject {
        alias: alias.into(),
        owner: "cmkadmin".into(),
        site: "mysite".into(),
    };
    let cert = Certificate::self_signed(&key, &subject, 10, &SystemClock).unwrap();
    (key, cert)
}

/// Package signing key: agent-sign's Checkmk-style RSA fixture.
fn package_signing_key() -> (PrivateKey, Certificate) {
    fixture_signing_key(
        include_str!("../../../crates/agent-sign/tests/data/pyca.key.pem"),
        "checkmk-fixture-pass",
        "signature",
    )
}

fn setup() -> Setup {
    let srv_dir = tempfile::tempdir().unwrap();
    // Test CA and server certificate, written as PEM files like an operator would.
    let files = write_tls_files(srv_dir.path());

    let state = srv_dir.path().join("state");
    DeployStore::set_user(&state, "automation", "s3cret-s3cret", 1000).unwrap();
    let store = Arc::new(DeployStore::open(&state, Advertise::default()).unwrap());
    let handle = spawn_server(&store, &files, None);

    let (key, cert) = package_signing_key();
    let key_pem = cert.to_pem();

    let conf = tempfile::tempdir().unwrap();
    let var = tempfile::tempdir().unwrap();
    let cfg = format!(
        "certificates = {}\nsignature_keys = {}\n",
        serde_json::to_string(&[&files.ca_pem]).unwrap(),
        serde_json::to_string(&[&key_pem]).unwrap()
    );
    std::fs::write(conf.path().join("cmk-update-agent.cfg"), cfg).unwrap();
    Setup {
        _srv_dir: srv_dir,
        store,
        handle,
        conf,
        var,
        cert,
        key,
    }
}

impl Setup {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env("MK_CONFDIR", self.conf.path())
            .env("MK_VARDIR", self.var.path())
            .env_remove("MK_AGENT_UPDATER_MANUAL")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.handle.local_addr().port())
    }

    /// `register` with all values on the command line (non-interactive) for the user
    /// `automation`, authenticating with `credentials` (`-S <secret>` or `-P <password>`).
    fn register_using(&self, credentials: &[&str]) -> Output {
        let server = self.server();
        let values = [
            "register",
            "-s",
            &server,
            "-i",
            "mysite",
            "-p",
            "https",
            "-H",
            "web01",
            "-U",
            "automation",
        ];
        self.cmd(&[&values[..], credentials].concat())
            .output()
            .unwrap()
    }

    /// `register` with all values on the command line (non-interactive) and this secret.
    fn register_with(&self, secret: &str) -> Output {
        self.register_using(&["-S", secret, "-v"])
    }

    fn register(&self) -> Output {
        self.register_with("s3cret-s3cret")
    }

    fn publish(&self, pkg: &[u8]) -> String {
        let mut sigs = Vec::new();
        agent_sign::sign_package(pkg, &self.key, &self.cert, &mut sigs).unwrap();
        self.store
            .publish("web01", Platform::LinuxDeb, pkg, &sigs, None)
            .unwrap()
    }

    fn install_cmd(&self) -> String {
        let script = self.var.path().join("install.sh");
        std::fs::write(
            &script,
            format!(
                "cp \"$1\" '{}'\n",
                self.var.path().join("installed").display()
            ),
        )
        .unwrap();
        format!("sh {}", script.display())
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_documents_exit_codes_and_flags() {
    let out = Command::new(bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in [
        "Exit codes",
        "--skip-signatures",
        "--trust-cert",
        "--insecure",
        "--logfile",
        "show-config",
        "register",
        "controller",
        "--metadata-root-dir",
    ] {
        assert!(help.contains(needle), "{needle} missing in\n{help}");
    }
    let out = Command::new(bin())
        .args(["register", "--help"])
        .output()
        .unwrap();
    let help = text(&out.stdout);
    for flag in [
        "-s, --server",
        "-i, --site",
        "-H, --hostname",
        "-p, --protocol",
        "-U, --user",
        "-P, --password",
        "-S, --secret",
        "-v, --verbose",
    ] {
        assert!(help.contains(flag), "{flag} missing in\n{help}");
    }
}

#[test]
fn register_update_plugin_and_show_config() {
    let s = setup();
    let out = s.register();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Successfully registered host web01"));
    let state = std::fs::read_to_string(s.var.path().join("cmk-update-agent.state")).unwrap();
    assert!(
        state.contains("'host_name': 'web01'") && !state.contains("s3cret"),
        "{state}"
    );

    // By hand; the log file carries Checkmk's signature-check lines.
    let hash = s.publish(b"agent package v1");
    let install = s.install_cmd();
    let log = s.var.path().join("updater.log");
    let out = s
        .cmd(&[
            "--install-command",
            &install,
            "-l",
            &log.display().to_string(),
        ])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("Installed agent {hash} (signature #1 verified)")));
    assert_eq!(
        std::fs::read(s.var.path().join("installed")).unwrap(),
        b"agent package v1"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("Signature check OK."), "{logged}");

    // Plug-in mode: the section on stdout, exit 0, cached on the second call.
    let out = s.cmd(&["--install-command", &install]).output().unwrap();
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("<<<cmk_update_agent_status:sep(0)>>>"));
    let sec: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(sec["aghash"], hash.as_str());
    assert_eq!(sec["error"], serde_json::Value::Null);
    let again = s.cmd(&[]).output().unwrap();
    assert_eq!(text(&again.stdout), stdout);

    // show-config groups values by file and hides the secret.
    let out = s.cmd(&["show-config"]).output().unwrap();
    let shown = text(&out.stdout);
    assert!(shown.contains("Values from the config file"), "{shown}");
    assert!(shown.contains("Values from the state file"), "{shown}");
    assert!(
        shown.contains("host_secret: <64 characters, hidden>"),
        "{shown}"
    );
    assert!(
        shown.contains("signature_keys: <1 certificate(s)>"),
        "{shown}"
    );
}

#[test]
fn failures_have_documented_exit_codes() {
    let s = setup();
    // Not registered: plug-in mode reports it in the section and exits 0.
    let out = s.cmd(&["-u"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("The agent updater is not registered at the deployment server")
    );
    // By hand: exit 1 with the Checkmk message.
    let out = s
        .cmd(&[])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Please run 'cmk-update-agent register' first."));
    // A metadata root that is not one: exit 2, naming the file.
    let bad_root = s.var.path().join("root.json");
    std::fs::write(&bad_root, "{}").unwrap();
    let out = s
        .cmd(&["--metadata-root", &bad_root.display().to_string()])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("root.json: not a trusted metadata root"),
        "{}",
        text(&out.stderr)
    );
    // Missing values without a terminal: exit 2.
    let out = s.cmd(&["register", "-s", "127.0.0.1:1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no terminal to ask"));
    // Wrong credentials: exit 1.
    let out = s.register_with("wrong");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Agent Bakery: Cannot authenticate user"));
    // Unsigned package: refused, exit 1; with --skip-signatures by hand: installed, with a warning.
    assert!(s.register().status.success());
    s.store
        .publish("web01", Platform::LinuxDeb, b"unsigned", &[], None)
        .unwrap();
    let install = s.install_cmd();
    let log = s.var.path().join("updater.log");
    let log_arg = log.display().to_string();
    let out = s
        .cmd(&["--install-command", &install, "-l", &log_arg])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not signed"));
    let out = s
        .cmd(&[
            "--install-command",
            &install,
            "--skip-signatures",
            "-l",
            &log_arg,
        ])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("WARNING"));
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("WITHOUT checking its signature")
    );
    assert!(Path::new(&s.var.path().join("installed")).exists());
}

/// 2.5 mode: `cmk-update-agent controller` against `serve --client-ca`-style mTLS, with the
/// client certificate files; no registration, no secret.
#[test]
fn controller_mode_over_mtls() {
    let srv_dir = tempfile::tempdir().unwrap();
    let (files, ca_file, clients) = tls::write_tls_files_with_clients(srv_dir.path(), &["web01"]);
    let store =
        Arc::new(DeployStore::open(srv_dir.path().join("state"), Advertise::default()).unwrap());
    let handle = spawn_server(&store, &files, Some(&ca_file));
    let (key, cert) = package_signing_key();
    let pkg = b"agent 2.5".to_vec();
    let mut sigs = Vec::new();
    agent_sign::sign_package(&pkg, &key, &cert, &mut sigs).unwrap();
    let hash = store
        .publish("web01", Platform::LinuxDeb, &pkg, &sigs, None)
        .unwrap();

    let conf = tempfile::tempdir().unwrap();
    let var = tempfile::tempdir().unwrap();
    std::fs::write(
        conf.path().join("cmk-update-agent.toml"),
        format!(
            "activated = true\ninterval = 600\nsignature_keys = {}\n",
            serde_json::to_string(&[cert.to_pem()]).unwrap()
        ),
    )
    .unwrap();
    let script = var.path().join("install.sh");
    let installed = var.path().join("installed");
    std::fs::write(&script, format!("cp \"$1\" '{}'\n", installed.display())).unwrap();
    let receiver = format!(
        "https://127.0.0.1:{}/mysite/agent-receiver",
        handle.local_addr().port()
    );
    let run = |extra: &[&str]| {
        Command::new(bin())
            .args(extra)
            .args(["--install-command", &format!("sh {}", script.display())])
            .arg("controller")
            .args(["--receiver", &receiver])
            .arg("--client-cert")
            .arg(&clients[0].0)
            .arg("--client-key")
            .arg(&clients[0].1)
            .arg("--server-ca")
            .arg(&ca_file)
            .env("MK_CONFDIR", conf.path())
            .env("MK_VARDIR", var.path())
            .env("MK_AGENT_UPDATER_MANUAL", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("Installed agent {hash} (signature #1 verified).\n")
    );
    assert_eq!(std::fs::read(&installed).unwrap(), pkg);
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(var.path().join("cmk-update-agent/cmk-update-agent.state"))
            .unwrap(),
    )
    .unwrap();
    assert!(state["last_check"].is_u64(), "{state}");
    assert!(state["last_update"].is_u64(), "{state}");
    assert_eq!(state["last_error"], serde_json::Value::Null);

    // Plug-in mode prints the section with the certificate's host name.
    let out = run(&["-u"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("<<<cmk_update_agent_status:sep(0)>>>"));
    let sec: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(sec["host_name"], "web01");
    assert_eq!(sec["aghash"], hash.as_str());
    assert_eq!(sec["error"], serde_json::Value::Null);
    drop(handle);
}

/// `register -P`: a GUI login (`login.py`) and registration with the session cookie.
#[test]
fn register_with_password_uses_a_gui_session() {
    let s = setup();
    let register = |password: &str| s.register_using(&["-P", password]);
    let out = register("wrong-password");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Cannot authenticate, invalid user/passwort/secret."),
        "{}",
        text(&out.stderr)
    );
    let out = register("s3cret-s3cret");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let state = std::fs::read_to_string(s.var.path().join("cmk-update-agent.state")).unwrap();
    assert!(state.contains("'host_secret': '"), "{state}");
    assert!(!state.contains("s3cret-s3cret"));
}

/// Runs `cmk-update-agent` with `args` (shell words) on a pseudo-terminal through util-linux
/// `script`, with `input` typed in; returns what the terminal showed, or `None` (and a skip
/// message) when `script` is not available.
fn on_a_terminal(s: &Setup, args: &str, input: &str, env: &[(&str, &str)]) -> Option<String> {
    use std::io::Write as _;
    let command = format!("'{}' {args}", bin());
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"])
        .env("MK_CONFDIR", s.conf.path())
        .env("MK_VARDIR", s.var.path())
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let Ok(mut child) = cmd.spawn() else {
        testkit::skip(
            "util-linux `script` is not available to provide a terminal (apt-get install bsdutils)",
        );
        return None;
    };
    let mut stdin = child.stdin.take().unwrap();
    for line in input.lines() {
        // One answer at a time, as a person types.
        std::thread::sleep(std::time::Duration::from_millis(300));
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    Some(text(&out.stdout).replace("\r\n", "\n"))
}

/// Issue 15, defect 11: colour only on a terminal, and never with `NO_COLOR`.
#[test]
fn colour_only_on_a_terminal() {
    let s = setup();
    let out = s
        .cmd(&["-v", "show-config"])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    let err = s
        .cmd(&["-v"])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    for o in [&out, &err] {
        assert!(!text(&o.stderr).contains('\x1b'), "{:?}", text(&o.stderr));
    }
    // A warning on a terminal is coloured, unless NO_COLOR is set.
    std::fs::remove_file(s.conf.path().join("cmk-update-agent.cfg")).unwrap();
    let Some(shown) = on_a_terminal(&s, "show-config", "", &[]) else {
        return;
    };
    assert!(shown.contains("Missing config file"), "{shown}");
    assert!(shown.contains('\x1b'), "{shown:?}");
    let shown = on_a_terminal(&s, "show-config", "", &[("NO_COLOR", "1")]).unwrap();
    assert!(shown.contains("Missing config file"), "{shown}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
}

/// Issue 15, defect 12: `--install-command` is parsed as shell words.
#[test]
fn install_command_is_parsed_as_shell_words() {
    let s = setup();
    assert!(s.register().status.success());
    let hash = s.publish(b"agent package v1");
    let target = s.var.path().join("installed copy");
    let install = format!("sh -c 'cp \"$0\" \"$1\"' '{}'", target.display());
    // sh -c SCRIPT TARGET PACKAGE: $0 is the target, $1 the package; swap them in the script.
    let install = install.replace("cp \"$0\" \"$1\"", "cp \"$1\" \"$0\"");
    let out = s
        .cmd(&["--install-command", &install])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&hash));
    assert_eq!(std::fs::read(&target).unwrap(), b"agent package v1");
    // An unclosed quote is a usage error naming the option.
    let out = s
        .cmd(&["--install-command", "sh -c 'cp"])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--install-command: the install command has an unclosed quote"),
        "{}",
        text(&out.stderr)
    );
    let help = text(&Command::new(bin()).arg("--help").output().unwrap().stdout);
    assert!(help.contains("POSIX shell words"), "{help}");
}

/// Issue 15, defect 13: each error once; a missing cfg file is named; the cfg keys and
/// `signature_keys` are explained in `--help`.
#[test]
fn errors_once_missing_config_warning_and_cfg_help() {
    let s = setup();
    let log = s.var.path().join("updater.log");
    let out = s
        .cmd(&["-l", &log.display().to_string()])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr
            .matches("Please run 'cmk-update-agent register' first.")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.starts_with("cmk-update-agent: Not yet registered"),
        "{stderr}"
    );
    // The log file still records the error.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("Not yet registered"), "{logged}");

    let cfg = s.conf.path().join("cmk-update-agent.cfg");
    let out = s.cmd(&["show-config"]).output().unwrap();
    assert!(!text(&out.stderr).contains("Missing config file"));
    std::fs::remove_file(&cfg).unwrap();
    let out = s.cmd(&["show-config"]).output().unwrap();
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains(&format!(
            "Missing config file at {}. Configuration may be incomplete.",
            cfg.display()
        )),
        "{}",
        text(&out.stderr)
    );

    let help = text(&Command::new(bin()).arg("--help").output().unwrap().stdout);
    for needle in [
        "Keys of the cfg file",
        "signature_keys",
        "REQUIRED",
        "certificates",
        "interval",
        "ignore_update_url",
    ] {
        assert!(help.contains(needle), "{needle} missing in\n{help}");
    }
}

/// Issue 15, defect 13: a bad answer in interactive `register` is asked again.
#[test]
fn register_asks_again_on_a_bad_answer() {
    let s = setup();
    let args = format!(
        "register -s '{}' -i mysite -H web01 -U automation -S s3cret-s3cret",
        s.server()
    );
    let Some(shown) = on_a_terminal(&s, &args, "ftp\nhttps\n", &[]) else {
        return;
    };
    assert_eq!(
        shown
            .matches("Protocol to use (http/https) [https]:")
            .count(),
        2,
        "{shown}"
    );
    assert!(
        shown.contains("Please enter http or https, not \"ftp\"."),
        "{shown}"
    );
    assert!(
        shown.contains("Successfully registered host web01"),
        "{shown}"
    );
}

/// A self-signed server certificate for 127.0.0.1 made by `openssl req -x509` with `extra`
/// arguments, written to `dir`; `None` (and a skip message) without openssl.
fn openssl_server_cert(dir: &Path, extra: &[&str]) -> Option<tls::TlsFiles> {
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(extra)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(tls::TlsFiles {
            ca_pem: std::fs::read_to_string(&cert).unwrap(),
            cert,
            key,
        }),
        _ => {
            testkit::skip("openssl is not available (apt-get install openssl)");
            None
        }
    }
}

/// `register -t` with an ordinary self-signed certificate (OpenSSL's default, CA:TRUE): stored
/// on first use and accepted afterwards because exactly that certificate is trusted.
#[test]
fn trust_on_first_use_with_openssl_self_signed_certificates() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let Some(ca_true) = openssl_server_cert(dir.path(), &[]) else {
        return;
    };
    // The operator's cfg trusts nothing for HTTPS: the certificate must come from -t.
    let key_pem = s.cert.to_pem();
    std::fs::write(
        s.conf.path().join("cmk-update-agent.cfg"),
        format!(
            "signature_keys = {}\n",
            serde_json::to_string(&[&key_pem]).unwrap()
        ),
    )
    .unwrap();
    let register = |handle: &agent_deploy::ServerHandle| {
        let server = format!("127.0.0.1:{}", handle.local_addr().port());
        s.cmd(&[
            "register",
            "-t",
            "-s",
            &server,
            "-i",
            "mysite",
            "-p",
            "https",
            "-H",
            "web01",
            "-U",
            "automation",
            "-S",
            "s3cret-s3cret",
        ])
        .output()
        .unwrap()
    };
    // Trusted on first use, the CA:TRUE certificate is accepted, as by Checkmk's updater.
    let handle = spawn_server(&s.store, &ca_true, None);
    let out = register(&handle);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Successfully registered host web01"));
    let state = std::fs::read_to_string(s.var.path().join("cmk-update-agent.state")).unwrap();
    assert!(state.contains("local_certificates"), "{state}");
    // Later runs trust the saved certificate without -t.
    let hash = s.publish(b"agent over a pinned certificate");
    let install = s.install_cmd();
    let out = s
        .cmd(&["--install-command", &install])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&hash));
}

/// A second signing key: agent-sign's OpenSSL fixture.
fn second_signing_key() -> (PrivateKey, Certificate) {
    fixture_signing_key(
        include_str!("../../../crates/agent-sign/tests/data/openssl-rsa.key.pem"),
        "openssl-fixture-pass",
        "second signature",
    )
}

/// Issue 16's blind spots through the binary: `--signature-threshold 2` refuses a package
/// signed by one of the two trusted keys and installs it signed by both; with
/// `MK_RUN_SYNC_PARTS=false` the update is saved, and `install` (no metadata root) checks the
/// signatures again and refuses a candidate changed on disk.
#[test]
fn signature_threshold_and_deferred_install() {
    let s = setup();
    assert!(s.register().status.success());
    let (key2, cert2) = second_signing_key();
    let cfg_path = s.conf.path().join("cmk-update-agent.cfg");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let keys = serde_json::to_string(&[s.cert.to_pem(), cert2.to_pem()]).unwrap();
    let cfg: String = cfg
        .lines()
        .map(|l| {
            if l.starts_with("signature_keys") {
                format!("signature_keys = {keys}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&cfg_path, cfg).unwrap();
    let install = s.install_cmd();
    let installed = s.var.path().join("installed");
    let update = |extra: &[&str], env: &[(&str, &str)]| {
        let mut c = s.cmd(&[&["--install-command", &install][..], extra].concat());
        c.env("MK_AGENT_UPDATER_MANUAL", "1");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };

    // One signature, two required: refused (exit 1), nothing installed.
    let pkg = b"package needing two signatures";
    s.publish(pkg);
    let out = update(&["--signature-threshold", "2"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!installed.exists());
    // Both signatures: installed.
    let mut sigs = Vec::new();
    agent_sign::sign_package(pkg, &s.key, &s.cert, &mut sigs).unwrap();
    agent_sign::sign_package(pkg, &key2, &cert2, &mut sigs).unwrap();
    let hash = s
        .store
        .publish("web01", Platform::LinuxDeb, pkg, &sigs, None)
        .unwrap();
    let out = update(&["--signature-threshold", "2"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("Installed agent {hash}")));
    assert_eq!(std::fs::read(&installed).unwrap(), pkg);
    std::fs::remove_file(&installed).unwrap();

    // Deferred: saved, not installed.
    let hash = s.publish(b"deferred package");
    let out = update(&[], &[("MK_RUN_SYNC_PARTS", "false")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("run 'cmk-update-agent install'"));
    assert!(!installed.exists());
    // The candidate is changed consistently (bytes and SHA-256); the signatures are kept.
    let candidate = s.var.path().join(format!("new_agent_{hash}"));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&candidate).unwrap()).unwrap();
    let evil = b"evil deferred package";
    doc["agent_data"] = serde_json::json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        evil
    ));
    if doc["target_state"].get("sha256").is_some() {
        doc["target_state"]["sha256"] =
            serde_json::json!(agent_sign::PackageDigest::of(evil).sha256_hex());
    }
    std::fs::write(&candidate, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = s
        .cmd(&["--install-command", &install, "install"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(!installed.exists());
    let state = std::fs::read_to_string(s.var.path().join("cmk-update-agent.state")).unwrap();
    assert!(state.contains("'pending_hash': None"), "{state}");
}

/// The updater's peak resident memory (VmHWM, kB) at install time, written by the install
/// script from `/proc/<updater>/status` (the script's parent), and the installed package.
fn install_and_measure(s: &Setup) -> (u64, Vec<u8>) {
    let script = s.var.path().join("install.sh");
    let hwm = s.var.path().join("hwm");
    let installed = s.var.path().join("installed");
    std::fs::write(
        &script,
        format!(
            "grep VmHWM /proc/$PPID/status > '{}'\ncp \"$1\" '{}'\n",
            hwm.display(),
            installed.display()
        ),
    )
    .unwrap();
    let install = format!("sh {}", script.display());
    let out = s
        .cmd(&["--install-command", &install])
        .env("MK_AGENT_UPDATER_MANUAL", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = std::fs::read_to_string(&hwm).unwrap();
    let kb = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {line:?}"));
    (kb, std::fs::read(&installed).unwrap())
}

/// A package of some MiB goes from the `deploy_agent.py` answer (base64 in JSON) into a
/// private file as it arrives: it installs, no download file is left, and the updater's peak
/// memory stays below the package's size (the answer alone is 4/3 of it).
#[test]
fn large_package_is_streamed_with_bounded_memory() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("skipped: needs Linux /proc to read the updater's peak memory");
        return;
    }
    let s = setup();
    assert!(s.register().status.success());
    let size = 24 << 20;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let package: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    let hash = s.publish(&package);
    let (hwm_kb, installed) = install_and_measure(&s);
    assert!(installed == package, "installed package differs");
    let hwm = hwm_kb * 1024;
    eprintln!("updater peak RSS for a {size}-byte package: {hwm} bytes");
    assert!(
        hwm < size as u64,
        "peak RSS {hwm} bytes for a {size}-byte package"
    );
    let state = std::fs::read_to_string(s.var.path().join("cmk-update-agent.state")).unwrap();
    assert!(state.contains(&hash), "{state}");
    let left: Vec<_> = std::fs::read_dir(s.var.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("new_agent") || n.starts_with(".download"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
