//! End to end over loopback HTTPS with a test CA: our updater against our server, with
//! packages signed and metadata written by `agent-sign`.

use std::sync::Arc;
use std::time::Duration;

use agent_deploy::ServerError;
use agent_updater::{
    AgentSignVerifier, Mode, RegisterOptions, RunOptions, UpdateError, UpdateOutcome, Updater,
    VerifyError,
};
use agent_wire::{Platform, TargetMetadata};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::support::*;

/// More than the test hosts' interval (600 s), so the plug-in cache has gone stale.
const PAST_INTERVAL: Duration = Duration::from_secs(720);

struct World {
    srv: TestServer,
    host: TestHost,
    key: SigningKey,
    meta: MetadataKeys,
}

impl World {
    fn new() -> World {
        let srv = TestServer::start();
        let key = SigningKey::new("signature");
        let host = TestHost::new("web01", &srv.pki.ca_pem, &[&key.cert_pem]);
        World {
            srv,
            host,
            key,
            meta: MetadataKeys::new(),
        }
    }

    /// A hardened updater (trusts the metadata root).
    fn updater(&self) -> Updater {
        self.host.updater(self.meta.verifier())
    }

    /// A hardened updater, registered at the server.
    fn registered(&self) -> Updater {
        let up = self.updater();
        register(&self.host, &self.srv, &up);
        up
    }

    /// Publishes `package` for web01, signed by the site key, with metadata `version` that
    /// expires in a day.
    fn publish(&self, package: &[u8], version: u64) -> String {
        let md = self.meta.metadata(&self.host.host, package, version, DAY);
        self.publish_with(package, &[&self.key], Some(&md))
    }

    /// Publishes `package` for web01, signed by each of `keys`, with `metadata`.
    fn publish_with(
        &self,
        package: &[u8],
        keys: &[&SigningKey],
        metadata: Option<&TargetMetadata>,
    ) -> String {
        publish_signed(&self.srv.store, &self.host.host, package, keys, metadata).unwrap()
    }

    /// Replaces the bytes of a published package on the server's disk.
    fn tamper(&self, hash: &str, bytes: &[u8]) {
        let path = self
            .srv
            .dir
            .path()
            .join(format!("agents/{}/linux_deb/{hash}/agent", self.host.host));
        std::fs::write(path, bytes).unwrap();
    }

    fn status(&self) -> agent_deploy::HostStatus {
        host_status(&self.srv.store, &self.host.host)
    }

    /// Nothing was installed, no installed hash recorded, no file left behind.
    fn assert_nothing_installed(&self) {
        assert!(!self.host.installed_file().exists());
        let state = self.host.state();
        assert!(!state.contains("installed_aghash': '"), "{state}");
        self.host.assert_no_stray_files();
    }
}

fn manual() -> RunOptions {
    RunOptions::new(Mode::Manual)
}

fn plugin() -> RunOptions {
    RunOptions::new(Mode::Plugin)
}

#[test]
fn register_first_update_cached_run_and_new_package() {
    let w = World::new();
    let up = w.registered();
    let state = w.host.state();
    assert!(
        state.contains("'host_name': 'web01'") && state.contains("'site': 'mysite'"),
        "{state}"
    );
    assert!(
        !state.contains(USER_SECRET),
        "the password must never be stored"
    );
    let mode = std::fs::metadata(up.paths().state_file.clone()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    // No agent yet.
    let out = up.plugin_output(&plugin());
    let sec = section_json(&out);
    assert_eq!(sec["error"], Value::Null);
    assert_eq!(sec["aghash"], Value::Null);
    assert!(sec["last_check"].is_f64());

    // First update.
    let a = b"package A \x00\x01 bytes".to_vec();
    let hash_a = w.publish(&a, 1);
    w.host.clock.advance(PAST_INTERVAL);
    let out = up.plugin_output(&plugin());
    let sec = section_json(&out);
    assert_eq!(sec["error"], Value::Null, "{out}");
    assert_eq!(sec["aghash"], json!(hash_a));
    assert_eq!(sec["host_name"], "web01");
    assert_eq!(sec["trusted_certs"]["0"]["common_name"], "signature");
    assert_eq!(sec["trusted_certs"]["0"]["corrupt"], false);
    assert_eq!(sec["trusted_certs"]["0"]["signature_algorithm"], "sha512");
    assert_eq!(std::fs::read(w.host.installed_file()).unwrap(), a);
    let st = w.status();
    assert_eq!(st.downloaded_aghash.as_deref(), Some(hash_a.as_str()));
    assert_eq!(
        st.installed_aghash.as_deref(),
        Some(hash_a.as_str()),
        "pushed status after install"
    );
    // The verified metadata version is remembered for rollback protection.
    let state = w.host.state();
    assert!(
        state.contains("'rollback_state': {'targets': {'web01/linux_deb': {'sha256': '")
            && state.contains("'version': 1}}, 'timestamp_version': 1}"),
        "{state}"
    );

    // Within the interval: cached output, no contact.
    // A contact would rewrite the cache (a new file), which the second-granular contact time
    // alone could miss.
    let contact = w.srv.store.statuses()[0].last_contact;
    let cache = cache_identity(&w.host.paths().cache_file);
    std::fs::remove_file(w.host.installed_file()).unwrap();
    let again = up.plugin_output(&plugin());
    assert_eq!(again, out);
    assert_eq!(cache_identity(&w.host.paths().cache_file), cache);
    assert_eq!(w.srv.store.statuses()[0].last_contact, contact);

    // After the interval: a check, already installed, nothing downloaded.
    w.host.clock.advance(PAST_INTERVAL);
    assert_eq!(
        up.run(&manual()).unwrap(),
        UpdateOutcome::AlreadyInstalled { hash: hash_a }
    );
    assert!(!w.host.installed_file().exists());

    // A new package.
    let b = b"package B, newer".to_vec();
    let hash_b = w.publish(&b, 2);
    assert_eq!(
        up.run(&manual()).unwrap(),
        UpdateOutcome::Installed {
            hash: hash_b.clone(),
            signature: Some(1)
        }
    );
    assert_eq!(std::fs::read(w.host.installed_file()).unwrap(), b);
    assert!(
        w.host
            .state()
            .contains(&format!("'installed_aghash': '{hash_b}'"))
    );
    w.host.assert_no_stray_files();
}

#[test]
fn wrong_key_is_refused_before_download() {
    let w = World::new();
    let up = w.registered();
    let other = SigningKey::other("someone else");
    let pkg = b"evil".to_vec();
    let md = w.meta.metadata("web01", &pkg, 1, DAY);
    w.publish_with(&pkg, &[&other], Some(&md));
    let err = up.run(&manual()).unwrap_err();
    assert!(
        matches!(err, UpdateError::Verify(VerifyError::NoValidSignature)),
        "{err}"
    );
    assert_eq!(err.to_string(), "No valid signature found.");
    assert_eq!(w.status().downloaded_aghash, None, "no mode=agent request");
    w.assert_nothing_installed();
    // The error shows up in the section.
    let sec = section_json(&up.run_and_record(&plugin()));
    assert_eq!(sec["error"], "No valid signature found.");
}

#[test]
fn unsigned_agent_and_no_keys_use_checkmk_messages() {
    let w = World::new();
    let up = w.registered();
    let pkg = b"unsigned".to_vec();
    let md = w.meta.metadata("web01", &pkg, 1, DAY);
    w.publish_with(&pkg, &[], Some(&md));
    let err = up.run(&manual()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "The deployment server provides an agent but that is not signed."
    );

    // --skip-signatures is ignored in plug-in mode ...
    let opts = RunOptions {
        skip_signatures: true,
        ..plugin()
    };
    assert!(up.run(&opts).is_err());
    assert!(!w.host.installed_file().exists());
    // ... and works by hand.
    let opts = RunOptions {
        skip_signatures: true,
        ..manual()
    };
    assert!(matches!(
        up.run(&opts).unwrap(),
        UpdateOutcome::Installed {
            signature: None,
            ..
        }
    ));

    // No keys configured.
    let host2 = TestHost::new("web01", &w.srv.pki.ca_pem, &[]);
    let up2 = host2.updater(w.meta.verifier());
    register(&host2, &w.srv, &up2);
    w.publish(b"signed", 2);
    assert_eq!(
        up2.run(&manual()).unwrap_err().to_string(),
        "No signature keys are configured."
    );
}

#[test]
fn tampered_package_is_refused_and_nothing_is_left() {
    let w = World::new();
    let up = w.registered();
    let good = b"the real package".to_vec();
    let evil = b"the evil package".to_vec();
    // The server's disk is changed after publishing: hardened, the signed SHA-256 catches it.
    let hash = w.publish(&good, 1);
    w.tamper(&hash, &evil);
    let err = up.run(&manual()).unwrap_err();
    assert!(
        matches!(
            err,
            UpdateError::Verify(VerifyError::Metadata(agent_sign::Error::HashMismatch(_)))
        ),
        "{err}"
    );
    w.assert_nothing_installed();

    // Checkmk-compatible verifier (no metadata root): the signature check catches it.
    let up_compat = w.host.updater(Arc::new(AgentSignVerifier::checkmk()));
    let err = up_compat.run(&manual()).unwrap_err();
    assert!(
        matches!(err, UpdateError::Verify(VerifyError::NoValidSignature)),
        "{err}"
    );
    w.assert_nothing_installed();

    // An expired signing certificate: refused too, even for the real package.
    let expired = SigningKey::expired("old");
    let host2 = TestHost::new("web01", &w.srv.pki.ca_pem, &[&expired.cert_pem]);
    let up2 = host2.updater(Arc::new(AgentSignVerifier::checkmk()));
    register(&host2, &w.srv, &up2);
    w.publish_with(&good, &[&expired], None);
    assert!(matches!(
        up2.run(&manual()).unwrap_err(),
        UpdateError::Verify(VerifyError::NoValidSignature)
    ));
}

#[test]
fn host_b_secret_cannot_fetch_host_a() {
    let w = World::new();
    w.registered();
    let host_b = TestHost::new("web02", &w.srv.pki.ca_pem, &[&w.key.cert_pem]);
    let up_b = host_b.updater(w.meta.verifier());
    register(&host_b, &w.srv, &up_b);
    w.publish(b"A's agent with A's secrets", 1);

    // Host B's state, but claiming to be host A.
    let b_state = host_b
        .state()
        .replace("'host_name': 'web02'", "'host_name': 'web01'");
    std::fs::write(up_b.paths().state_file.clone(), b_state).unwrap();
    let err = up_b.run(&manual()).unwrap_err();
    assert!(matches!(err, UpdateError::Bakery(_)), "{err}");
    assert!(
        err.to_string().starts_with(
            "Agent Bakery: Host \"web01\" is not registered or the host secret is wrong"
        ),
        "{err}"
    );
    assert_eq!(w.status().downloaded_aghash, None);
}

#[test]
fn metadata_for_another_host_is_refused() {
    let w = World::new();
    let pkg = b"web02's package".to_vec();
    let for_web02 = w.meta.metadata("web02", &pkg, 1, DAY);
    // Our server refuses to publish it for web01 ...
    let err = publish_signed(&w.srv.store, "web01", &pkg, &[&w.key], Some(&for_web02)).unwrap_err();
    assert!(matches!(err, ServerError::Metadata { .. }), "{err}");
    assert!(
        err.to_string().contains("it is for web02/linux_deb"),
        "{err}"
    );

    // ... and the updater refuses it from a server that hands it out anyway.
    let signatures = sigs(&[&w.key], &pkg);
    let srv = ScriptedServer::start(move |_path, _form| {
        Reply::Json(json!({"result_code": 0, "result": {
            "AgentAvailable": true, "TargetHash": agent_deploy::package_hash(&pkg),
            "Signatures": signatures, "TargetMetadata": for_web02}}))
    });
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[&w.key.cert_pem]);
    write_registered_state(&host.paths(), &srv.server(), "web01", &"s".repeat(64));
    let err = host.updater(w.meta.verifier()).run(&manual()).unwrap_err();
    assert!(
        matches!(
            err,
            UpdateError::Verify(VerifyError::Metadata(agent_sign::Error::WrongTarget { .. }))
        ),
        "{err}"
    );
    host.assert_no_stray_files();
}

#[test]
fn server_claimed_hash_must_match_the_signed_metadata() {
    let w = World::new();
    let pkg = b"package".to_vec();
    let md = w.meta.metadata("web01", &pkg, 1, DAY);
    let signatures = sigs(&[&w.key], &pkg);
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&requests);
    let srv = ScriptedServer::start(move |_path, _form| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Reply::Json(json!({"result_code": 0, "result": {
            "AgentAvailable": true, "TargetHash": "0123456789abcdef",
            "Signatures": signatures, "TargetMetadata": md}}))
    });
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[&w.key.cert_pem]);
    write_registered_state(&host.paths(), &srv.server(), "web01", &"s".repeat(64));
    let err = host.updater(w.meta.verifier()).run(&manual()).unwrap_err();
    assert!(
        matches!(
            &err,
            UpdateError::Verify(VerifyError::AghashMismatch { server, metadata })
                if server == "0123456789abcdef" && *metadata == agent_deploy::package_hash(b"package")
        ),
        "{err}"
    );
    assert_eq!(
        requests.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "status only, no mode=agent"
    );
}

#[test]
fn hardened_updater_requires_metadata_signed_under_its_root() {
    let w = World::new();
    let up = w.registered();
    // No metadata at all.
    let pkg = b"package".to_vec();
    w.publish_with(&pkg, &[&w.key], None);
    let err = up.run(&manual()).unwrap_err();
    assert!(
        matches!(err, UpdateError::Verify(VerifyError::MissingMetadata)),
        "{err}"
    );
    // Metadata signed by another site's keys.
    let foreign = MetadataKeys::new().metadata("web01", &pkg, 1, DAY);
    w.publish_with(&pkg, &[&w.key], Some(&foreign));
    let err = up.run(&manual()).unwrap_err();
    assert!(
        matches!(
            err,
            UpdateError::Verify(VerifyError::Metadata(
                agent_sign::Error::ThresholdNotMet { .. }
            ))
        ),
        "{err}"
    );
    assert_eq!(
        w.status().downloaded_aghash,
        None,
        "refused before download"
    );
    w.assert_nothing_installed();
}

#[test]
fn expired_metadata_is_reported_even_when_installed() {
    let w = World::new();
    let up = w.registered();
    let pkg = b"package".to_vec();
    let md = w.meta.metadata("web01", &pkg, 1, 3600);
    let hash = w.publish_with(&pkg, &[&w.key], Some(&md));
    assert!(matches!(
        up.run(&manual()).unwrap(),
        UpdateOutcome::Installed { .. }
    ));
    // The server freezes: it keeps offering the same, now expired, metadata.
    w.host.clock.advance(Duration::from_secs(7200));
    let sec = section_json(&up.plugin_output(&plugin()));
    let err = sec["error"].as_str().unwrap();
    assert!(
        err.starts_with("target metadata: targets metadata expired at"),
        "{err}"
    );
    assert_eq!(sec["aghash"], json!(hash), "still the installed agent");
}

#[test]
fn replayed_older_metadata_is_refused() {
    let w = World::new();
    let up = w.registered();
    let a = b"version one".to_vec();
    let hash_a = w.publish(&a, 1);
    up.run(&manual()).unwrap();
    let b = b"version two".to_vec();
    let hash_b = w.publish(&b, 2);
    up.run(&manual()).unwrap();
    // The server goes back to the old, validly signed package and metadata.
    w.srv
        .store
        .set_current("web01", Platform::LinuxDeb, &hash_a)
        .unwrap();
    let state_before = w.host.state();
    let err = up.run(&manual()).unwrap_err();
    assert!(
        matches!(
            err,
            UpdateError::Verify(VerifyError::Metadata(agent_sign::Error::Rollback {
                ref role,
                offered: 1,
                stored: 2,
                ..
            })) if role == "targets"
        ),
        "{err}"
    );
    assert_eq!(
        w.status().downloaded_aghash.as_deref(),
        Some(hash_b.as_str())
    );
    let state = w.host.state();
    assert!(state.contains(&format!("'installed_aghash': '{hash_b}'")));
    let rollback = |s: &str| s[s.find("'rollback_state'").unwrap()..].to_owned();
    assert_eq!(
        rollback(&state),
        rollback(&state_before),
        "rollback state unchanged"
    );
    assert_eq!(std::fs::read(w.host.installed_file()).unwrap(), b);
}

#[test]
fn failed_install_keeps_the_old_hash() {
    let w = World::new();
    let up = w
        .updater()
        .with_install_command(agent_updater::InstallCommand::parse("false").unwrap());
    register(&w.host, &w.srv, &up);
    w.publish(b"pkg", 1);
    let err = up.run(&manual()).unwrap_err();
    assert!(matches!(err, UpdateError::Install { .. }), "{err}");
    let state = w.host.state();
    assert!(state.contains("'installed_aghash': None"), "{state}");
    assert!(
        state.contains("'last_error': 'installing the agent with false failed"),
        "{state}"
    );
    assert!(
        w.status()
            .last_error
            .unwrap()
            .starts_with("installing the agent"),
        "pushed status"
    );
    w.host.assert_no_stray_files();
}

#[test]
fn endless_download_is_cut_off_and_nothing_is_left() {
    let key = SigningKey::new("signature");
    let meta = MetadataKeys::new();
    let pkg = vec![7u8; 1000];
    let md = meta.metadata("web01", &pkg, 1, 3600);
    let signatures = sigs(&[&key], &pkg);
    let target_hash = agent_deploy::package_hash(&pkg);
    let srv = ScriptedServer::start(move |_path, form| {
        if form.get("mode").map(String::as_str) == Some("agent") {
            Reply::Endless
        } else {
            Reply::Json(json!({"result_code": 0, "result": {
                "AgentAvailable": true, "TargetHash": target_hash,
                "Signatures": signatures, "TargetMetadata": md}}))
        }
    });
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[&key.cert_pem]);
    write_registered_state(&host.paths(), &srv.server(), "web01", &"s".repeat(64));
    let up = host.updater(meta.verifier());
    let err = up.run(&manual()).unwrap_err();
    assert!(
        matches!(err, UpdateError::TooLarge { limit, .. } if limit == 1336 + 4096),
        "{err}"
    );
    host.assert_no_stray_files();

    // Without metadata (Checkmk mode) the absolute cap applies.
    let up = host
        .updater(Arc::new(AgentSignVerifier::checkmk()))
        .with_download_cap(100_000);
    let err = up.run(&manual()).unwrap_err();
    assert!(
        matches!(err, UpdateError::TooLarge { limit: 100_000, .. }),
        "{err}"
    );
    host.assert_no_stray_files();
}

#[test]
fn server_down_falls_back_and_reports() {
    let w = World::new();
    let up = w.registered();
    let hash = w.publish(b"pkg", 1);
    // A dead update_url first: the updater falls back to <protocol>://<server>/<site>/check_mk.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let state = w.host.state().replace(
        "'update_url': None",
        &format!("'update_url': 'https://{dead}/{SITE}/check_mk'"),
    );
    std::fs::write(up.paths().state_file.clone(), state).unwrap();
    assert_eq!(
        up.run(&manual()).unwrap(),
        UpdateOutcome::Installed {
            hash,
            signature: Some(1)
        }
    );

    // Everything down: the error is in the section, last_check unchanged.
    let last_check = section_json(&up.section(&up.settings().unwrap()))["last_check"].clone();
    let mut srv = w.srv;
    srv.handle.take().unwrap().shutdown().unwrap();
    w.host.clock.advance(PAST_INTERVAL);
    let sec = section_json(&up.plugin_output(&RunOptions::new(Mode::Plugin)));
    assert!(
        sec["error"]
            .as_str()
            .unwrap()
            .starts_with("Cannot connect to https://127.0.0.1:"),
        "{sec}"
    );
    assert_eq!(sec["last_check"], last_check);
}

#[test]
fn untrusted_server_certificate_is_rejected() {
    let w = World::new();
    let other = TestPki::new("other");
    let host = TestHost::new("web01", &other.ca_pem, &[&w.key.cert_pem]);
    let up = host.updater(w.meta.verifier());
    let opts = register_options(w.srv.server(), "web01");
    let err = up.register(&opts).unwrap_err();
    assert!(matches!(err, UpdateError::Connection { .. }), "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    // --insecure works for one call.
    up.register(&RegisterOptions {
        insecure: true,
        ..opts.clone()
    })
    .unwrap();
    // --trust-cert (TOFU) stores the CA the server sends and then verifies.
    let pem = up
        .trust_server_certificate(&w.srv.server())
        .unwrap()
        .unwrap();
    assert_eq!(
        pem.replace("\r", "").trim(),
        w.srv.pki.ca_pem.replace("\r", "").trim()
    );
    assert!(
        up.trust_server_certificate(&w.srv.server())
            .unwrap()
            .is_none(),
        "now trusted"
    );
    up.register(&opts).unwrap();
}

#[test]
fn wrong_registration_credentials() {
    let w = World::new();
    let up = w.updater();
    let opts = RegisterOptions {
        secret: Zeroizing::new("wrong".into()),
        ..register_options(w.srv.server(), "web01")
    };
    let err = up.register(&opts).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Agent Bakery: Cannot authenticate user"),
        "{err}"
    );
    assert!(!up.paths().state_file.exists());
    let err = up.run(&manual()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Not yet registered at deployment server. Please run 'cmk-update-agent register' first."
    );
    let err = up.run(&RunOptions::new(Mode::Plugin)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "The agent updater is not registered at the deployment server"
    );
}

#[test]
fn precedence_state_cfg_command_line() {
    let w = World::new();
    let conf = w.host.conf.path().join("cmk-update-agent.cfg");
    let mut cfg = std::fs::read_to_string(&conf).unwrap();
    cfg.push_str("site = 'from_cfg'\nserver = 'cfg.example'\n");
    std::fs::write(&conf, cfg).unwrap();
    std::fs::write(
        w.host.paths().state_file,
        "{'site': 'from_state', 'server': 'state.example', 'protocol': 'http', 'host_name': 'web01'}",
    )
    .unwrap();
    let up = w.updater().with_override("site", json!("from_cli"));
    let s = up.settings().unwrap();
    assert_eq!(s.get_str("site"), Some("from_cli"));
    assert_eq!(s.get_str("server"), Some("cfg.example"));
    assert_eq!(s.get_str("protocol"), Some("http"));
    let groups = s.show();
    let find = |key: &str| {
        groups
            .iter()
            .find(|(_, v)| v.iter().any(|(k, _)| k == key))
            .map(|(o, _)| o.clone())
    };
    assert_eq!(find("site"), Some(agent_updater::Origin::CommandLine));
    assert!(matches!(
        find("server"),
        Some(agent_updater::Origin::Config(_))
    ));
    assert!(matches!(
        find("protocol"),
        Some(agent_updater::Origin::State(_))
    ));
    // show-config never prints certificates in full.
    assert!(!format!("{groups:?}").contains("BEGIN CERTIFICATE"));
}

#[test]
fn corrupt_state_falls_back_to_backup() {
    let w = World::new();
    let up = w.registered();
    w.publish(b"pkg", 1);
    up.run(&manual()).unwrap(); // writes the state again, so .bak holds the registration
    std::fs::write(up.paths().state_file.clone(), "{'host_name': ").unwrap();
    let s = up.settings().unwrap();
    assert_eq!(s.get_str("host_name"), Some("web01"));
}

/// A minimal HTTP CONNECT proxy on 127.0.0.1 that counts tunnels.
fn connect_proxy() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count2 = Arc::clone(&count);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let count = Arc::clone(&count2);
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut b).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split_whitespace().next())
                    .unwrap()
                    .to_owned();
                let upstream = std::net::TcpStream::connect(target).unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (mut c1, mut u1) = (client, upstream);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Both);
                });
                let _ = std::io::copy(&mut c1, &mut u1);
                let _ = u1.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (addr, count)
}

#[test]
fn explicit_proxy_is_used() {
    let w = World::new();
    let (proxy, tunnels) = connect_proxy();
    let conf = w.host.conf.path().join("cmk-update-agent.cfg");
    let mut cfg = std::fs::read_to_string(&conf).unwrap();
    cfg.push_str(&format!(
        "proxy = {{'server': '127.0.0.1', 'port': {}, 'proxy_protocol': 'http'}}\n",
        proxy.port()
    ));
    std::fs::write(&conf, cfg).unwrap();
    let up = w.registered();
    let hash = w.publish(b"via proxy", 1);
    assert_eq!(
        up.run(&manual()).unwrap(),
        UpdateOutcome::Installed {
            hash,
            signature: Some(1)
        }
    );
    assert!(
        tunnels.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "register and update went through the proxy"
    );

    // A broken proxy setting is a configuration error naming the file.
    std::fs::write(&conf, "proxy = {'server': 'p', 'port': 'x'}\n").unwrap();
    let err = up.run(&manual()).unwrap_err();
    assert!(
        err.to_string()
            .contains("cmk-update-agent.cfg: invalid value for proxy"),
        "{err}"
    );
}

#[test]
fn single_instance_lock() {
    let w = World::new();
    let up = w.registered();
    // A live process (us) holds the lock: the run gives up.
    std::fs::write(&up.paths().lock_file, format!("{}\n", std::process::id())).unwrap();
    let err = up.run(&manual()).unwrap_err();
    assert!(matches!(err, UpdateError::Locked(_)), "{err}");
    // A stale lock (no such process) is taken over.
    std::fs::write(&up.paths().lock_file, "4000000000\n").unwrap();
    assert_eq!(up.run(&manual()).unwrap(), UpdateOutcome::NoAgent);
    assert!(!up.paths().lock_file.exists(), "released after the run");
}

#[test]
fn interval_above_30_days_is_refused() {
    let w = World::new();
    let conf = w.host.conf.path().join("cmk-update-agent.cfg");
    std::fs::write(&conf, "interval = 2592001\n").unwrap();
    let err = w.updater().settings().unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid value for interval: more than 30 days"),
        "{err}"
    );
}

#[test]
fn deferred_install_rechecks_the_candidate() {
    let w = World::new();
    let up = w.updater().with_deferred_install(true);
    register(&w.host, &w.srv, &up);
    let hash = w.publish(b"deferred package", 1);
    assert_eq!(
        up.run(&manual()).unwrap(),
        UpdateOutcome::Pending { hash: hash.clone() }
    );
    assert!(
        w.host
            .state()
            .contains(&format!("'pending_hash': '{hash}'"))
    );
    assert!(!w.host.installed_file().exists());
    let candidate = w.host.var.path().join(format!("new_agent_{hash}"));
    let doc: Value = serde_json::from_slice(&std::fs::read(&candidate).unwrap()).unwrap();
    assert_eq!(doc["target_state"]["target_hash"], json!(hash));
    assert!(doc["agent_data"].is_string() && doc["target_state"]["signatures"].is_array());
    assert_eq!(
        up.install_pending().unwrap(),
        Some(UpdateOutcome::Installed {
            hash: hash.clone(),
            signature: Some(1)
        })
    );
    assert_eq!(
        std::fs::read(w.host.installed_file()).unwrap(),
        b"deferred package"
    );
    assert!(!candidate.exists());
    assert_eq!(
        up.install_pending().unwrap(),
        None,
        "nothing pending any more"
    );

    // Tampered candidate: one byte of the package flipped (sha256 field removed, so the
    // re-verified signed metadata is what catches it) -> refused, pending_hash cleared.
    let hash2 = w.publish(b"second deferred package", 2);
    assert_eq!(
        up.run(&manual()).unwrap(),
        UpdateOutcome::Pending {
            hash: hash2.clone()
        }
    );
    let candidate = w.host.var.path().join(format!("new_agent_{hash2}"));
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&candidate).unwrap()).unwrap();
    let mut pkg = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        doc["agent_data"].as_str().unwrap(),
    )
    .unwrap();
    pkg[0] ^= 1;
    doc["agent_data"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        &pkg
    ));
    doc["target_state"]
        .as_object_mut()
        .unwrap()
        .remove("sha256");
    std::fs::write(&candidate, serde_json::to_vec(&doc).unwrap()).unwrap();
    let err = up.install_pending().unwrap_err();
    assert!(
        matches!(
            err,
            UpdateError::Verify(VerifyError::Metadata(agent_sign::Error::HashMismatch(_)))
        ),
        "{err}"
    );
    let state = w.host.state();
    assert!(
        state.contains("'pending_hash': None")
            && state.contains(&format!("'installed_aghash': '{hash}'")),
        "{state}"
    );
    assert_eq!(
        std::fs::read(w.host.installed_file()).unwrap(),
        b"deferred package"
    );

    // Missing candidate -> "inconsistent pending update".
    let hash3 = w.publish(b"third", 3);
    up.run(&manual()).unwrap();
    std::fs::remove_file(w.host.var.path().join(format!("new_agent_{hash3}"))).unwrap();
    assert_eq!(
        up.install_pending().unwrap_err().to_string(),
        "inconsistent pending update"
    );
    assert!(w.host.state().contains("'pending_hash': None"));
}

#[test]
fn section_golden_line() {
    let w = World::new();
    let up = w.updater();
    std::fs::write(
        up.paths().state_file.clone(),
        "{'last_check': 1660750511.8, 'last_update': 1660750584.8, 'installed_aghash': '94b60c8ef40c4900', \
         'pending_hash': None, 'update_url': 'https://srv/site/check_mk', 'last_error': None, 'host_name': 'web01'}",
    )
    .unwrap();
    // Checkmk's fixture certificate (fixed dates), then a corrupt key.
    let conf = w.host.conf.path().join("cmk-update-agent.cfg");
    let fixture = include_str!("../../agent-sign/tests/data/pyca.crt.pem");
    let cfg = format!(
        "signature_keys = {}\n",
        serde_json::to_string(&[fixture, "garbage"]).unwrap()
    );
    std::fs::write(&conf, cfg).unwrap();
    let section = up.section(&up.settings().unwrap());
    let expected = "<<<cmk_update_agent_status:sep(0)>>>\n\
        {\"last_check\":1660750511.8,\"last_update\":1660750584.8,\"aghash\":\"94b60c8ef40c4900\",\
        \"pending_hash\":null,\"update_url\":\"https://srv/site/check_mk\",\"trusted_certs\":{\
        \"0\":{\"corrupt\":false,\"not_after\":\"2035-12-30T00:00:00+00:00\",\"signature_algorithm\":\"sha512\",\"common_name\":\"signature\"},\
        \"1\":{\"corrupt\":true,\"not_after\":null,\"signature_algorithm\":null,\"common_name\":null}},\
        \"error\":null,\"host_name\":\"web01\"}\n";
    assert_eq!(section, expected);
}

#[test]
fn oversized_status_answer_is_refused() {
    let srv = ScriptedServer::start(|_path, _form| Reply::Endless);
    let key = SigningKey::new("signature");
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[&key.cert_pem]);
    write_registered_state(&host.paths(), &srv.server(), "web01", &"s".repeat(64));
    let up = host.updater(Arc::new(AgentSignVerifier::checkmk()));
    let err = up.run(&manual()).unwrap_err();
    assert!(
        matches!(err, UpdateError::TooLarge { limit: 65_536, .. }),
        "{err}"
    );
}

/// A plain-HTTP server on 127.0.0.1 that redirects everything to `https://<target>/…`.
fn redirector(target: String) -> std::net::SocketAddr {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if conn.read(&mut b).unwrap_or(0) == 0 {
                    break;
                }
                head.push(b[0]);
            }
            let path = String::from_utf8_lossy(&head)
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            let _ = write!(
                conn,
                "HTTP/1.1 301 Moved Permanently\r\nLocation: https://{target}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    addr
}

#[test]
fn http_redirecting_to_https_is_followed_with_a_switch() {
    let w = World::new();
    let http = redirector(w.srv.server());
    let up = w.updater();
    let opts = RegisterOptions {
        protocol: "http".into(),
        ..register_options(http.to_string(), "web01")
    };
    up.register(&opts).unwrap();
    let state = w.host.state();
    assert!(state.contains("'protocol': 'https'"), "{state}");
    assert!(
        state.contains(&format!("'server': '{}'", w.srv.server())),
        "{state}"
    );
}

#[test]
fn registering_expires_the_plugin_cache() {
    let w = World::new();
    let up = w.registered();
    let plugin = RunOptions::new(Mode::Plugin);
    assert_eq!(
        section_json(&up.plugin_output(&plugin))["aghash"],
        Value::Null
    );
    let hash = w.publish(b"pkg", 1);
    assert_eq!(
        section_json(&up.plugin_output(&plugin))["aghash"],
        Value::Null,
        "cached"
    );
    register(&w.host, &w.srv, &up);
    assert_eq!(
        section_json(&up.plugin_output(&plugin))["aghash"],
        json!(hash),
        "checked after register"
    );
}

/// `--signature-threshold 2` (a Checkmk-compatible verifier with a k-of-n policy, as
/// `cmk-update-agent` builds it): a package signed by one trusted key is refused, the same
/// package signed by two distinct trusted keys is installed.
#[test]
fn signature_threshold_two_is_enforced_through_the_updater() {
    let srv = TestServer::start();
    let site_key = SigningKey::new("signature");
    let second_key = SigningKey::other("second signature");
    let host = TestHost::new(
        "web01",
        &srv.pki.ca_pem,
        &[&site_key.cert_pem, &second_key.cert_pem],
    );
    let policy = agent_sign::VerifyPolicy {
        threshold: 2,
        ..agent_sign::VerifyPolicy::default()
    };
    let up = host.updater(Arc::new(AgentSignVerifier::checkmk().with_policy(policy)));
    register(&host, &srv, &up);

    let package = b"package needing two signatures".to_vec();
    publish_signed(&srv.store, "web01", &package, &[&site_key], None).unwrap();
    let err = up.run(&manual()).unwrap_err();
    assert!(
        matches!(err, UpdateError::Verify(VerifyError::NoValidSignature)),
        "{err}"
    );
    assert!(!host.installed_file().exists());
    host.assert_no_stray_files();

    // The same package with both signatures: accepted (the first valid one is reported).
    let hash = publish_signed(
        &srv.store,
        "web01",
        &package,
        &[&site_key, &second_key],
        None,
    )
    .unwrap();
    assert_eq!(
        up.run(&manual()).unwrap(),
        UpdateOutcome::Installed {
            hash,
            signature: Some(1)
        }
    );
    assert_eq!(std::fs::read(host.installed_file()).unwrap(), package);
}

/// The deferred install (`MK_RUN_SYNC_PARTS=false`, then `install`) without a metadata root:
/// only the second signature check stands between a tampered candidate and the install.
#[test]
fn deferred_install_without_metadata_root_rechecks_the_signatures() {
    let srv = TestServer::start();
    let key = SigningKey::new("signature");
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[&key.cert_pem]);
    let up = host
        .updater(Arc::new(AgentSignVerifier::checkmk()))
        .with_deferred_install(true);
    register(&host, &srv, &up);
    let hash = publish_signed(&srv.store, "web01", b"deferred package", &[&key], None).unwrap();
    assert_eq!(
        up.run(&manual()).unwrap(),
        UpdateOutcome::Pending { hash: hash.clone() }
    );

    // The candidate on disk is changed consistently (package bytes and their SHA-256), the
    // signatures kept: only the signature check can tell.
    let candidate = host.var.path().join(format!("new_agent_{hash}"));
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&candidate).unwrap()).unwrap();
    let evil = b"evil deferred package";
    doc["agent_data"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        evil
    ));
    if doc["target_state"].get("sha256").is_some() {
        doc["target_state"]["sha256"] = json!(agent_sign::PackageDigest::of(evil).sha256_hex());
    }
    std::fs::write(&candidate, serde_json::to_vec(&doc).unwrap()).unwrap();
    let err = up.install_pending().unwrap_err();
    assert!(
        matches!(err, UpdateError::Verify(VerifyError::NoValidSignature)),
        "{err}"
    );
    assert!(!host.installed_file().exists());
    let state = host.state();
    assert!(
        state.contains("'pending_hash': None") && !state.contains("installed_aghash': '"),
        "{state}"
    );
    assert!(!candidate.exists());
}

/// A package answer whose `agent` is not base64, not a string or missing: a clear error, and
/// no download file is left.
#[test]
fn garbled_package_answers_are_refused_and_nothing_is_left() {
    let key = SigningKey::new("signature");
    let pkg = b"the package".to_vec();
    let signatures = sigs(&[&key], &pkg);
    let target_hash = agent_deploy::package_hash(&pkg);
    for (agent, want) in [
        (json!({"agent": "QUJD!RUZH"}), "agent is not base64: "),
        (json!({"agent": "QUJDRA"}), "agent is not base64: "),
        (
            json!({"agent": 5}),
            "invalid type: integer `5`, expected a string",
        ),
        (json!({"other": "QUJD"}), "missing field `agent`"),
    ] {
        let (signatures, target_hash) = (signatures.clone(), target_hash.clone());
        let srv = ScriptedServer::start(move |_path, form| {
            if form.get("mode").map(String::as_str) == Some("agent") {
                Reply::Json(json!({"result_code": 0, "result": agent}))
            } else {
                Reply::Json(json!({"result_code": 0, "result": {
                    "AgentAvailable": true, "TargetHash": target_hash,
                    "Signatures": signatures}}))
            }
        });
        let host = TestHost::new("web01", &srv.pki.ca_pem, &[&key.cert_pem]);
        write_registered_state(&host.paths(), &srv.server(), "web01", &"s".repeat(64));
        let up = host.updater(Arc::new(AgentSignVerifier::checkmk()));
        let err = up.run(&manual()).unwrap_err();
        assert!(matches!(err, UpdateError::Garbled(_)), "{err}");
        assert!(err.to_string().contains(want), "{err}");
        assert!(!host.installed_file().exists());
        host.assert_no_stray_files();
    }
}

/// Deferred install of a package of some MiB: the candidate is written and read as a stream,
/// and a candidate whose base64 has `\/` escapes and `\n` line breaks (as other JSON writers
/// and base64 encoders make it) installs too.
#[test]
fn deferred_install_of_a_large_package_streams_the_candidate() {
    let w = World::new();
    let up = w.updater().with_deferred_install(true);
    register(&w.host, &w.srv, &up);
    let package: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    let hash = w.publish(&package, 1);
    assert_eq!(
        up.run(&manual()).unwrap(),
        UpdateOutcome::Pending { hash: hash.clone() }
    );
    let candidate = w.host.var.path().join(format!("new_agent_{hash}"));
    let doc: Value = serde_json::from_slice(&std::fs::read(&candidate).unwrap()).unwrap();
    let b64 = doc["agent_data"].as_str().unwrap();
    assert_eq!(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap(),
        package
    );
    assert!(b64.contains('/'));
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|line| String::from_utf8_lossy(line).replace('/', "\\/"))
        .collect::<Vec<_>>()
        .join("\\n");
    let text = format!(
        "{{\"target_state\": {}, \"agent_data\": \"{wrapped}\\n\"}}",
        doc["target_state"]
    );
    std::fs::write(&candidate, text).unwrap();
    assert_eq!(
        up.install_pending().unwrap(),
        Some(UpdateOutcome::Installed {
            hash,
            signature: Some(1)
        })
    );
    assert!(std::fs::read(w.host.installed_file()).unwrap() == package);
    assert!(!candidate.exists());
    w.host.assert_no_stray_files();
}

/// The inode and modification time of the plug-in cache.
fn cache_identity(path: &std::path::Path) -> (u64, std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).unwrap();
    (meta.ino(), meta.modified().unwrap())
}
