//! The `agent-deploy` binary: user admin, publishing what `agent-sign` writes, status, and
//! serve (HTTP and HTTPS) with a clean shutdown, against our updater.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;

use agent_deploy::package_hash;
use agent_sign::{
    Clock as _, KdfParams, KeyStore, KeyType, MetaKey, NewKey, Passphrase, PrivateKey, RoleKeys,
    Roles, Root, SignedDocument, SystemClock, Targets, Timestamp, TrustedRoot,
};
use agent_updater::{
    AgentSignVerifier, InstallCommand, Mode, Paths, RegisterOptions, RunOptions, UpdateOutcome,
    Updater,
};

mod support {
    pub(crate) mod server;
    pub(crate) mod tls;
}
use support::server::spawn_listening;
use support::tls::write_tls_files;

const BIN: &str = env!("CARGO_BIN_EXE_agent-deploy");

fn cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--dir").arg(dir).args(args).env_remove("RUST_LOG");
    c
}

/// Spawns `command` with `input` on its stdin (closed after it).
fn spawn_with_stdin(command: &mut Command, input: &[u8]) -> Child {
    let mut child = command.stdin(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child
}

/// `user-add automation` with the secret on stdin.
fn add_user(state: &Path) {
    let mut child = spawn_with_stdin(
        &mut cmd(state, &["user-add", "automation", "--iterations", "1000"]),
        b"s3cret-s3cret\n",
    );
    assert!(child.wait().unwrap().success());
}

/// Starts `serve` with `extra` arguments; returns the child and the address it listens on.
fn serve(state: &Path, extra: &[&str]) -> (Child, BufReader<std::process::ChildStderr>, String) {
    let mut args = vec!["serve", "--site", "mysite", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    spawn_listening(&mut cmd(state, &args))
}

/// SIGTERM: the server must stop cleanly with exit code 0.
fn stop(mut server: Child) {
    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(server.wait().unwrap().success());
}

/// Asserts that the command succeeded, showing its stderr otherwise.
fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that the command's stderr contains `needle`.
fn assert_stderr_contains(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(needle), "{stderr}");
}

fn register_options(server: String, protocol: &str) -> RegisterOptions {
    RegisterOptions {
        server,
        site: "mysite".into(),
        protocol: protocol.into(),
        host_name: "web01".into(),
        user: "automation".into(),
        secret: zeroize::Zeroizing::new("s3cret-s3cret".into()),
        insecure: false,
        gui_login: false,
    }
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "serve",
        "status",
        "user-add",
        "publish",
        "set-target",
        "unregister",
        "check-section",
        "log-verify",
        "publish-root",
        "expire",
        "Exit codes",
    ] {
        assert!(help.contains(needle), "{needle}:\n{help}");
    }
}

#[test]
fn admin_serve_register_status_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // user-add reads the secret from stdin when it isn't a terminal.
    add_user(&state);
    let users = std::fs::read_to_string(state.join("users")).unwrap();
    assert!(users.starts_with("automation:pbkdf2-sha256:1000:") && !users.contains("s3cret"));

    // publish an (unsigned) package: warns, prints the hash.
    let pkg = dir.path().join("agent.deb");
    std::fs::write(&pkg, b"package").unwrap();
    let out = cmd(
        &state,
        &[
            "publish",
            "--host",
            "web01",
            "--os",
            "linux-deb",
            "--package",
        ],
    )
    .arg(&pkg)
    .output()
    .unwrap();
    assert_success(&out);
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(hash.len(), 16);
    assert_stderr_contains(&out, "unsigned");

    // serve (plain HTTP on loopback), learn the port from stderr.
    let (server, mut stderr, addr) = serve(&state, &[]);

    let conf = tempfile::tempdir().unwrap();
    let var = tempfile::tempdir().unwrap();
    let up = Updater::new(
        Paths::in_dirs(conf.path(), var.path()),
        Arc::new(AgentSignVerifier::checkmk()),
    );
    up.register(&register_options(addr, "http")).unwrap();
    let err = up.run(&RunOptions::new(Mode::Manual)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "The deployment server provides an agent but that is not signed."
    );

    // SIGTERM: clean shutdown, exit 0.
    stop(server);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("agent-deploy: stopped"), "{rest}");

    // status: human and JSON.
    let out = cmd(&state, &["status", "--json"]).output().unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], 2);
    assert_eq!(doc["hosts"][0]["host_name"], "web01");
    assert_eq!(doc["hosts"][0]["target_hash"], hash.as_str());
    assert_eq!(doc["hosts"][0]["registered_by"], "automation");
    assert!(doc["hosts"][0]["last_contact"].is_u64());
    let out = cmd(&state, &["status"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("HOST") && table.contains("web01") && table.contains(&hash),
        "{table}"
    );

    // unregister: 0, then 1 for an unknown host.
    assert_eq!(
        cmd(&state, &["unregister", "web01"])
            .status()
            .unwrap()
            .code(),
        Some(0)
    );
    assert_eq!(
        cmd(&state, &["unregister", "web01"])
            .status()
            .unwrap()
            .code(),
        Some(1)
    );
}

/// The site's keys as `agent-sign` keeps them: the Checkmk-style package key imported from
/// agent-sign's fixture, and three Ed25519 metadata keys (root, targets, timestamp) created in
/// the key store, all with a fast test KDF.
struct SiteKeys {
    store: KeyStore,
    pass: Passphrase,
    package: u64,
    root: u64,
    targets: u64,
    timestamp: u64,
}

impl SiteKeys {
    fn new(dir: &Path) -> SiteKeys {
        let store = KeyStore::open(dir.join("keys")).unwrap();
        let kdf = || KdfParams::insecure_for_tests(1000);
        let pass = Passphrase::new("checkmk-fixture-pass");
        let combined = include_str!("../../../crates/agent-sign/tests/data/pyca.combined.pem");
        let package = store
            .import(combined, "signature", "cmkadmin", &pass, kdf())
            .unwrap()
            .id;
        let ed25519 = |alias: &str| {
            let new = NewKey {
                alias: alias.into(),
                owner: "cmkadmin".into(),
                site: "mysite".into(),
                key_type: KeyType::Ed25519,
            };
            store.create(&new, &pass, kdf(), &SystemClock).unwrap().id
        };
        let (root, targets, timestamp) =
            (ed25519("root"), ed25519("targets"), ed25519("timestamp"));
        SiteKeys {
            store,
            pass,
            package,
            root,
            targets,
            timestamp,
        }
    }

    fn unlock(&self, id: u64) -> PrivateKey {
        self.store.unlock(id, &self.pass).unwrap().0
    }

    /// What `agent-sign metadata root` writes.
    fn root_json(&self) -> String {
        let mut keys = BTreeMap::new();
        let mut role = |id: u64| {
            let entry = self.store.get(id).unwrap();
            let (keyid, meta) = MetaKey::from_public(entry.certificate.public_key());
            keys.insert(keyid.clone(), meta);
            RoleKeys {
                keyids: vec![keyid],
                threshold: 1,
            }
        };
        let roles = Roles {
            root: role(self.root),
            targets: role(self.targets),
            timestamp: role(self.timestamp),
        };
        let root = Root::new(1, SystemClock.now() + 365 * 86_400, keys, roles);
        let mut doc = SignedDocument::new(&root).unwrap();
        doc.sign(&self.unlock(self.root)).unwrap();
        doc.to_json().unwrap()
    }

    /// What `agent-sign sign` writes next to the package.
    fn signatures_json(&self, package: &[u8]) -> String {
        let (key, entry) = self.store.unlock(self.package, &self.pass).unwrap();
        let mut list = Vec::new();
        agent_sign::sign_package(package, &key, &entry.certificate, &mut list).unwrap();
        agent_sign::signatures_to_json(&list)
    }

    /// What `agent-sign metadata targets` and `agent-sign metadata timestamp` write.
    fn metadata_json(&self, package: &[u8], host: &str, version: u64) -> (String, String) {
        let now = SystemClock.now();
        let t = Targets::for_package(
            package,
            host,
            "linux_deb",
            &package_hash(package),
            version,
            now,
            now + 30 * 86_400,
        );
        let mut targets = SignedDocument::new(&t).unwrap();
        targets.sign(&self.unlock(self.targets)).unwrap();
        let ts = Timestamp::for_targets(&targets, version, now, now + 86_400).unwrap();
        let mut timestamp = SignedDocument::new(&ts).unwrap();
        timestamp.sign(&self.unlock(self.timestamp)).unwrap();
        (targets.to_json().unwrap(), timestamp.to_json().unwrap())
    }
}

/// A temporary directory holding a state directory (`state`, with the user `automation`) and
/// the site's keys; returns the directory, the state directory and the keys.
fn site_with_user_and_keys() -> (tempfile::TempDir, PathBuf, SiteKeys) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    add_user(&state);
    let keys = SiteKeys::new(dir.path());
    (dir, state, keys)
}

#[test]
fn publish_agent_sign_artefacts_and_install_them_over_https() {
    let (dir, state, keys) = site_with_user_and_keys();
    let files = dir.path();
    let write = |name: &str, text: &[u8]| {
        let path = files.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let package: &[u8] = b"checkmk agent 2.5.0p1 for web01";
    let pkg = write("agent.deb", package);
    let sigs = write(
        "agent.deb.signatures.json",
        keys.signatures_json(package).as_bytes(),
    );
    let (targets, timestamp) = keys.metadata_json(package, "web01", 1);
    let targets = write("targets.json", targets.as_bytes());
    let timestamp = write("timestamp.json", timestamp.as_bytes());
    let publish = |metadata: &str| {
        cmd(
            &state,
            &[
                "publish",
                "--host",
                "web01",
                "--os",
                "linux_deb",
                "--package",
                &pkg,
                "--signatures",
                &sigs,
                "--metadata",
                metadata,
                "--timestamp",
                &timestamp,
            ],
        )
        .output()
        .unwrap()
    };

    // Metadata for another package is refused with a hint at the expected aghash.
    let (other, _) = keys.metadata_json(b"another package", "web01", 1);
    let out = publish(&write("other.json", other.as_bytes()));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the package's aghash is {}",
            package_hash(package)
        )),
        "{err}"
    );

    let out = publish(&targets);
    assert_success(&out);
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(hash, package_hash(package));

    // Serve over HTTPS; a hardened updater trusting the CA, the package certificate and the
    // metadata root registers, verifies and installs.
    let tls = write_tls_files(dir.path());
    let (cert, key) = (
        tls.cert.display().to_string(),
        tls.key.display().to_string(),
    );
    let (server, _stderr, addr) = serve(&state, &["--cert", &cert, "--key", &key]);
    let conf = tempfile::tempdir().unwrap();
    let var = tempfile::tempdir().unwrap();
    let package_cert = keys.store.get(keys.package).unwrap().certificate.to_pem();
    std::fs::write(
        conf.path().join("cmk-update-agent.cfg"),
        format!(
            "certificates = {}\nsignature_keys = {}\n",
            serde_json::to_string(&[&tls.ca_pem]).unwrap(),
            serde_json::to_string(&[&package_cert]).unwrap()
        ),
    )
    .unwrap();
    let root = SignedDocument::from_json(&keys.root_json()).unwrap();
    let verifier = AgentSignVerifier::hardened(TrustedRoot::bootstrap(&root).unwrap());
    let installed = var.path().join("installed.deb");
    let up = Updater::new(Paths::in_dirs(conf.path(), var.path()), Arc::new(verifier))
        .with_install_command(InstallCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                format!("cp \"$1\" '{}'", installed.display()),
                "sh".into(),
            ],
        });
    up.register(&register_options(addr, "https")).unwrap();
    let outcome = up.run(&RunOptions::new(Mode::Manual));
    stop(server);
    assert_eq!(
        outcome.unwrap(),
        UpdateOutcome::Installed {
            hash,
            signature: Some(1)
        }
    );
    assert_eq!(std::fs::read(&installed).unwrap(), package);
    let state_file = std::fs::read_to_string(var.path().join("cmk-update-agent.state")).unwrap();
    assert!(state_file.contains("'version': 1}"), "{state_file}");
}

/// `check-section`: the service rating from a file or stdin, exit code = state.
#[test]
fn check_section_rates_and_exits_with_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let now: i64 = 1_795_219_200; // 2026-11-21T00:00:00Z
    // One key valid until 2027-01-10 (50 days), checked an hour ago, host web01.
    let section = format!(
        "<<<check_mk>>>\nVersion: 2.4\n<<<cmk_update_agent_status:sep(0)>>>\n{}\n",
        serde_json::json!({"last_check": now - 3600, "last_update": null, "aghash": null,
            "pending_hash": null, "update_url": null, "error": null, "host_name": "web01",
            "trusted_certs": {"0": {"corrupt": false, "not_after": "2027-01-10T00:00:00+00:00",
                "signature_algorithm": "sha512", "common_name": "signature"}}})
    );
    let file = dir.path().join("section.txt");
    std::fs::write(&file, &section).unwrap();
    let now_s = now.to_string();
    let run = |extra: &[&str]| {
        // No --dir: check-section needs no state directory.
        let out = Command::new(BIN)
            .args(["check-section", file.to_str().unwrap(), "--now", &now_s])
            .args(extra)
            .env_remove("AGENT_DEPLOY_DIR")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    };
    let (code, out) = run(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("WARN - "), "{out}");
    assert!(
        out.contains("Key #0 (signature) expires in 50 days(!)"),
        "{out}"
    );
    let (code, out) = run(&["--checkmk", "2.5", "--host", "web01"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Key #0 (signature) expires in 50 days\n"),
        "{out}"
    );
    let (code, out) = run(&["--checkmk", "2.5", "--host", "web02"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = run(&["--key-crit-days", "60"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with("CRIT - "), "{out}");

    // From stdin; a garbled section is UNKNOWN (3).
    let child = spawn_with_stdin(
        Command::new(BIN)
            .args(["check-section", "-"])
            .stdout(Stdio::piped()),
        b"<<<cmk_update_agent_status:sep(0)>>>\n{garbled\n",
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("UNKNOWN - garbled"));
}

/// `publish-root`: stores the root for updaters to rotate to; idempotent; refuses a root that
/// isn't signed by its own keys.
#[test]
fn publish_root_stores_signed_roots_only() {
    let (dir, state, keys) = site_with_user_and_keys();
    let root_file = dir.path().join("root.json");
    let json = keys.root_json();
    std::fs::write(&root_file, &json).unwrap();
    for _ in 0..2 {
        let out = cmd(&state, &["publish-root", root_file.to_str().unwrap()])
            .output()
            .unwrap();
        assert_success(&out);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n");
    }
    assert_eq!(
        SignedDocument::from_json(
            &std::fs::read_to_string(state.join("roots/root.1.json")).unwrap()
        )
        .unwrap(),
        SignedDocument::from_json(&json).unwrap()
    );
    // Tampered content: the signature no longer matches.
    let mut doc = SignedDocument::from_json(&json).unwrap();
    doc.signed["version"] = serde_json::json!(2);
    std::fs::write(&root_file, doc.to_json().unwrap()).unwrap();
    let out = cmd(&state, &["publish-root", root_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_contains(&out, "root metadata");
    assert!(!state.join("roots/root.2.json").exists());
}

/// `log-verify`: `publish` records into the signing log; a changed old entry is exit 1.
#[test]
fn log_verify_checks_the_chain_written_by_publish() {
    let (dir, state, keys) = site_with_user_and_keys();
    for (i, content) in [b"first".as_slice(), b"second".as_slice()]
        .iter()
        .enumerate()
    {
        let pkg = dir.path().join(format!("agent{i}.deb"));
        std::fs::write(&pkg, content).unwrap();
        let sigs = dir.path().join(format!("agent{i}.sig.json"));
        std::fs::write(&sigs, keys.signatures_json(content)).unwrap();
        let out = cmd(&state, &["publish", "--host", "web01", "--os", "linux_deb"])
            .arg("--package")
            .arg(&pkg)
            .arg("--signatures")
            .arg(&sigs)
            .output()
            .unwrap();
        assert_success(&out);
    }
    let out = cmd(&state, &["log-verify", "--list"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("2 entries, chain intact, head "),
        "{stdout}"
    );
    assert!(stdout.contains("#2 time="), "{stdout}");
    assert!(stdout.contains("hosts=web01"), "{stdout}");

    let log = state.join("signing.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[0] = lines[0].replace("\"version\":0", "\"version\":1");
    assert_ne!(
        lines.join("\n") + "\n",
        text,
        "the edit must change the log"
    );
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let out = cmd(&state, &["log-verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "signing.log");
}

/// Writes `content` as a package and its signature list into `dir`; returns both paths.
fn package_files(dir: &Path, keys: &SiteKeys, name: &str, content: &[u8]) -> (PathBuf, PathBuf) {
    let pkg = dir.join(format!("{name}.deb"));
    std::fs::write(&pkg, content).unwrap();
    let sigs = dir.join(format!("{name}.deb.signatures.json"));
    std::fs::write(&sigs, keys.signatures_json(content)).unwrap();
    (pkg, sigs)
}

fn publish(state: &Path, pkg: &Path, sigs: &Path) -> Output {
    cmd(state, &["publish", "--host", "web01", "--os", "linux_deb"])
        .arg("--package")
        .arg(pkg)
        .arg("--signatures")
        .arg(sigs)
        .output()
        .unwrap()
}

/// Issue 15, defect 8: a signature list that belongs to other bytes is refused before
/// anything is logged or published.
#[test]
fn publish_refuses_signatures_of_other_bytes() {
    let (dir, state, keys) = site_with_user_and_keys();
    let (_, original_sigs) = package_files(dir.path(), &keys, "original", b"original package");
    let tampered = dir.path().join("tampered.deb");
    std::fs::write(&tampered, b"tampered package").unwrap();
    let out = publish(&state, &tampered, &original_sigs);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_contains(&out, "signature #1 does not verify against the package");
    assert!(out.stdout.is_empty());
    assert!(!state.join("agents").join("web01").exists());
    let log = std::fs::read_to_string(state.join("signing.log")).unwrap_or_default();
    assert_eq!(log, "", "nothing may be logged");

    // A signature list made for the package itself is accepted.
    let (pkg, sigs) = package_files(dir.path(), &keys, "good", b"good package");
    assert_success(&publish(&state, &pkg, &sigs));
}

/// Issue 15, defect 9: `status` shows the configured target, after `publish` and after
/// `set-target`, also when the host's last contact was offered another one.
#[test]
fn status_shows_the_configured_target() {
    let (dir, state, keys) = site_with_user_and_keys();
    let mut hashes = Vec::new();
    for name in ["a", "b"] {
        let (pkg, sigs) = package_files(dir.path(), &keys, name, name.as_bytes());
        let out = publish(&state, &pkg, &sigs);
        assert_success(&out);
        hashes.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let target = || {
        let out = cmd(&state, &["status", "--json"]).output().unwrap();
        assert_success(&out);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let host = doc["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host_name"] == "web01")
            .cloned()
            .unwrap_or_else(|| panic!("web01 missing: {doc}"));
        host["target_hash"].as_str().unwrap_or("-").to_owned()
    };
    assert_eq!(target(), hashes[1], "after publish");
    // The server recorded that it offered B at the host's last contact.
    std::fs::create_dir_all(state.join("status")).unwrap();
    std::fs::write(
        state.join("status/web01.json"),
        format!(
            r#"{{"host_name": "web01", "platform": "linux_deb", "target_hash": "{}"}}"#,
            hashes[1]
        ),
    )
    .unwrap();
    let out = cmd(
        &state,
        &[
            "set-target",
            "--host",
            "web01",
            "--os",
            "linux_deb",
            "--hash",
            &hashes[0],
        ],
    )
    .output()
    .unwrap();
    assert_success(&out);
    assert_eq!(target(), hashes[0], "after set-target");
    let out = cmd(&state, &["status"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table.lines().find(|l| l.starts_with("web01 ")).unwrap();
    assert!(row.contains(&hashes[0]), "{table}");
}

/// `expire`: registrations of hosts in no site whose last activity is older than 30 days.
#[test]
fn expire_removes_old_registrations_of_hosts_in_no_site() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    add_user(&state);
    let hosts = state.join("hosts");
    std::fs::create_dir_all(&hosts).unwrap();
    let record = |at: u64| {
        format!(
            r#"{{"secret_sha256": "{}", "registered_at": {at}, "registered_by": "automation"}}"#,
            "ab".repeat(32)
        )
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::write(hosts.join("gone.json"), record(now - 31 * 86_400)).unwrap();
    std::fs::write(hosts.join("recent.json"), record(now - 86_400)).unwrap();

    let out = cmd(&state, &["expire", "--dry-run", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["retention_seconds"], 30 * 86_400);
    assert_eq!(doc["expired"], serde_json::json!(["gone"]));
    assert!(hosts.join("gone.json").is_file());

    let out = cmd(&state, &["expire"]).output().unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "gone\n");
    assert!(!hosts.join("gone.json").exists());
    assert!(hosts.join("recent.json").is_file());
}
