//! The deployment server on its own: secrets, users, limits, status files, shutdown.

use std::os::unix::fs::PermissionsExt as _;

use rustls_pki_types::pem::PemObject as _;
use std::time::{Duration, SystemTime};

use agent_deploy::{Advertise, DeployStore, Limits, ServerError, generate_host_secret};
use agent_wire::{DeployMode, Platform};
use serde_json::Value;

use crate::support::*;

fn post(srv: &TestServer, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    let url = format!("https://{}{path}", srv.server());
    let mut resp = https_agent(&srv.pki.ca_pem)
        .post(&url)
        .send_form(pairs.iter().copied())
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn host_secrets_are_64_random_alphanumerics() {
    let a = generate_host_secret().unwrap();
    let b = generate_host_secret().unwrap();
    assert_eq!(a.len(), 64);
    assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(*a, *b);
    // All 62 symbols show up over many secrets (no truncated alphabet).
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..50 {
        seen.extend(generate_host_secret().unwrap().bytes());
    }
    assert_eq!(seen.len(), 62);
}

#[test]
fn re_registration_replaces_the_secret_and_only_hashes_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    DeployStore::set_user(dir.path(), USER, USER_SECRET, 1000).unwrap();
    let users = std::fs::read_to_string(dir.path().join("users")).unwrap();
    assert!(
        !users.contains(USER_SECRET) && users.starts_with("agent_registration:pbkdf2-sha256:1000:")
    );
    let store = DeployStore::open(dir.path(), Advertise::default()).unwrap();
    let now = SystemTime::now();
    let first = store
        .register(&register_form("web01", USER_SECRET), now)
        .unwrap()
        .host_secret;
    assert!(store.deploy(&status_form("web01", &first), now).is_ok());
    let second = store
        .register(&register_form("web01", USER_SECRET), now)
        .unwrap()
        .host_secret;
    assert_ne!(first, second);
    assert!(matches!(
        store.deploy(&status_form("web01", &first), now),
        Err(ServerError::HostAuth { .. })
    ));
    assert!(store.deploy(&status_form("web01", &second), now).is_ok());
    let rec_path = dir.path().join("hosts/web01.json");
    let rec = std::fs::read_to_string(&rec_path).unwrap();
    assert!(!rec.contains(&second), "the secret itself is not stored");
    assert_eq!(
        std::fs::metadata(&rec_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Wrong user secret, unknown user, bad host name.
    assert!(matches!(
        store.register(&register_form("web01", "nope"), now),
        Err(ServerError::UserAuth { .. })
    ));
    let mut f = register_form("web01", USER_SECRET);
    f.username = "nobody".into();
    assert!(matches!(
        store.register(&f, now),
        Err(ServerError::UserAuth { .. })
    ));
    assert!(matches!(
        store.register(&register_form("../etc", USER_SECRET), now),
        Err(ServerError::InvalidHost(_))
    ));
    // Secrets of the wrong length never match, and unregistering revokes.
    assert!(
        store
            .deploy(&status_form("web01", &second[..63]), now)
            .is_err()
    );
    assert!(store.unregister("web01").unwrap());
    assert!(store.deploy(&status_form("web01", &second), now).is_err());
}

#[test]
fn a_host_gets_only_its_own_current_agent() {
    let dir = tempfile::tempdir().unwrap();
    DeployStore::set_user(dir.path(), USER, USER_SECRET, 1000).unwrap();
    let store = DeployStore::open(dir.path(), Advertise::default()).unwrap();
    let now = SystemTime::now();
    let sa = store
        .register(&register_form("a", USER_SECRET), now)
        .unwrap()
        .host_secret;
    let sb = store
        .register(&register_form("b", USER_SECRET), now)
        .unwrap()
        .host_secret;
    let ha = store
        .publish("a", Platform::LinuxDeb, b"A", &[], None)
        .unwrap();
    let hb = store
        .publish("b", Platform::LinuxDeb, b"B", &[], None)
        .unwrap();
    let mut f = status_form("b", &sb);
    f.mode = DeployMode::Agent;
    f.aghash = ha.clone();
    assert!(
        matches!(store.deploy(&f, now), Err(ServerError::NoSuchAgent { .. })),
        "B asks for A's hash"
    );
    f.aghash = hb;
    assert!(store.deploy(&f, now).is_ok());
    let mut f = status_form("a", &sb);
    f.mode = DeployMode::Agent;
    f.aghash = ha;
    assert!(
        matches!(store.deploy(&f, now), Err(ServerError::HostAuth { .. })),
        "B's secret for A"
    );
    f.host_secret = sa;
    assert!(store.deploy(&f, now).is_ok());
    let mut f = status_form("a", "x");
    f.os = "amiga".into();
    assert!(store.deploy(&f, now).is_err());
}

#[test]
fn http_limits_site_and_errors() {
    let srv = TestServer::start_with(Limits {
        max_body_bytes: 4096,
        ..Limits::default()
    });
    let big = "x".repeat(10_000);
    let (status, _) = post(
        &srv,
        "/mysite/check_mk/deploy_agent.py",
        &[("mode", "status"), ("last_error", &big)],
    );
    assert_eq!(status, 413);
    let (status, _) = post(
        &srv,
        "/othersite/check_mk/deploy_agent.py",
        &[("mode", "status")],
    );
    assert_eq!(status, 404);
    let (status, body) = post(
        &srv,
        "/mysite/check_mk/deploy_agent.py",
        &[("mode", "bogus")],
    );
    assert_eq!(status, 400);
    assert_eq!(body["result_code"], 1);
    let (status, body) = post(
        &srv,
        "/mysite/check_mk/deploy_agent.py",
        &[
            ("mode", "status"),
            ("host", "web01"),
            ("host_secret", &"x".repeat(64)),
            ("os", "linux_deb"),
        ],
    );
    assert_eq!(status, 200);
    assert_eq!(body["result_code"], 1);
    assert!(body["result"].as_str().unwrap().contains("not registered"));
    let (status, body) = post(
        &srv,
        "/mysite/check_mk/register_agent.py",
        &[
            ("host", "web01"),
            ("_username", USER),
            ("_secret", USER_SECRET),
            ("au_api", "2"),
        ],
    );
    assert_eq!(status, 200);
    assert_eq!(body["result"]["host_secret"].as_str().unwrap().len(), 64);
    assert_eq!(body["result"]["monitored"], false);
}

#[test]
fn status_files_and_graceful_shutdown() {
    let limits = Limits {
        flush_interval: Duration::from_secs(3600),
        ..Limits::default()
    };
    let mut srv = TestServer::start_with(limits);
    let (_, body) = post(
        &srv,
        "/mysite/check_mk/register_agent.py",
        &[
            ("host", "web01"),
            ("_username", USER),
            ("_secret", USER_SECRET),
        ],
    );
    let secret = body["result"]["host_secret"].as_str().unwrap().to_owned();
    let long_error = "é".repeat(600);
    let pairs = [
        ("mode", "status"),
        ("host", "web01"),
        ("host_secret", secret.as_str()),
        ("installed_aghash", "0123456789abcdef"),
        ("os", "linux_rpm"),
        ("last_error", long_error.as_str()),
    ];
    let (_, body) = post(&srv, "/mysite/check_mk/deploy_agent.py", &pairs);
    assert_eq!(
        body,
        serde_json::json!({"result_code": 0, "result": {"AgentAvailable": false, "TargetHash": null, "Signatures": []}})
    );
    let path = srv.dir.path().join("status/web01.json");
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(on_disk["installed_aghash"], "0123456789abcdef");
    assert_eq!(on_disk["platform"], "linux_rpm");
    assert_eq!(on_disk["last_error"].as_str().unwrap().chars().count(), 512);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A contact-only change is written at the latest on shutdown.
    std::thread::sleep(Duration::from_millis(1100));
    post(&srv, "/mysite/check_mk/deploy_agent.py", &pairs);
    let before: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let started = std::time::Instant::now();
    srv.handle.take().unwrap().shutdown().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        after["last_contact"].as_u64() > before["last_contact"].as_u64(),
        "{before} {after}"
    );
    // The server's state survives a restart.
    let store = DeployStore::open(srv.dir.path(), Advertise::default()).unwrap();
    assert_eq!(
        store.statuses()[0].installed_aghash.as_deref(),
        Some("0123456789abcdef")
    );
}

#[test]
fn slow_request_body_times_out() {
    use std::io::{Read as _, Write as _};
    let srv = TestServer::start_with(Limits {
        request_timeout: Duration::from_millis(800),
        ..Limits::default()
    });
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls_pki_types::CertificateDer::from_pem_slice(srv.pki.ca_pem.as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = std::net::TcpStream::connect(srv.addr()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let started = std::time::Instant::now();
    write!(
        tls,
        "POST /mysite/check_mk/deploy_agent.py HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nmode=sta"
    )
    .unwrap();
    tls.flush().unwrap();
    let mut buf = [0u8; 64];
    let n = tls.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
