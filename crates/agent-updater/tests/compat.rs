//! Compatibility fixes found by comparing with Checkmk's updater: trusted self-signed CA:TRUE
//! server certificates, received certificates in `local_certificates`, `update_url` handling,
//! URL fallback, login-failure texts and the push status after a failed plug-in run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agent_deploy::{Advertise, DeployStore, Limits};
use agent_updater::{AgentSignVerifier, Mode, RunOptions, Settings, UpdateError, UpdateOutcome};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::json;

use crate::support::*;

fn checkmk() -> Arc<AgentSignVerifier> {
    Arc::new(AgentSignVerifier::checkmk())
}

/// A self-signed server certificate with CA:TRUE (as `openssl req -x509` makes it) for
/// `names`, and the TLS configuration serving it alone.
fn ca_true_self_signed(names: &[&str]) -> (String, Arc<rustls::ServerConfig>) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "self-signed site");
    let cert = params.self_signed(&key).unwrap();
    let der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let tls = agent_deploy::tls_config(vec![cert.der().clone()], der).unwrap();
    (cert.pem(), tls)
}

/// Our deployment server with our test user, served with `tls`.
fn deploy_server(
    tls: Arc<rustls::ServerConfig>,
) -> (tempfile::TempDir, agent_deploy::ServerHandle) {
    let dir = tempfile::tempdir().unwrap();
    DeployStore::set_user(dir.path(), USER, USER_SECRET, 1000).unwrap();
    let store = Arc::new(DeployStore::open(dir.path(), Advertise::default()).unwrap());
    let handle = spawn_https(&store, Limits::default(), tls);
    (dir, handle)
}

#[test]
fn trusted_self_signed_ca_true_server_certificate_is_accepted() {
    let (pem, tls) = ca_true_self_signed(&["localhost"]);
    let (_dir, handle) = deploy_server(tls);
    let port = handle.local_addr().port();

    // Trusted by the cfg: accepted, and the host name is still checked.
    let host = TestHost::new("web01", &pem, &[]);
    let up = host.updater(checkmk());
    up.register(&register_options(format!("localhost:{port}"), "web01"))
        .unwrap();
    let err = up
        .register(&register_options(format!("127.0.0.1:{port}"), "web01"))
        .unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");

    // Not trusted: refused; --trust-cert stores exactly that certificate and then works.
    let other = TestPki::new("other");
    let host = TestHost::new("web02", &other.ca_pem, &[]);
    let up = host.updater(checkmk());
    let opts = register_options(format!("localhost:{port}"), "web02");
    let err = up.register(&opts).unwrap_err();
    assert!(matches!(err, UpdateError::Connection { .. }), "{err}");
    let stored = up
        .trust_server_certificate(&format!("localhost:{port}"))
        .unwrap()
        .unwrap();
    assert_eq!(stored.trim(), pem.replace('\r', "").trim());
    up.register(&opts).unwrap();
    assert!(host.state().contains("local_certificates"));
}

/// The forms a scripted server received, in order.
type Forms = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A scripted server answering `deploy_agent.py` with `status`, recording every form.
fn status_server(status: serde_json::Value) -> (ScriptedServer, Forms) {
    let forms = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&forms);
    let srv = ScriptedServer::start(move |_path, form| {
        seen.lock().unwrap().push(form.clone());
        Reply::Json(json!({"result_code": 0, "result": status.clone()}))
    });
    (srv, forms)
}

fn settings(host: &TestHost) -> Settings {
    let paths = host.paths();
    Settings::load(&paths.state_file, &paths.config_file, Default::default()).unwrap()
}

#[test]
fn received_certificates_are_merged_into_local_certificates() {
    let extra = TestPki::new("extra").ca_pem;
    let (srv, _) = status_server(json!({"AgentAvailable": false, "certificates": [extra]}));
    // The cfg has `certificates`, which would hide a state key of the same name.
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[]);
    write_registered_state(&host.paths(), &srv.server(), "web01", &"s".repeat(64));
    let up = host.updater(checkmk());
    for _ in 0..2 {
        assert_eq!(
            up.run(&RunOptions::new(Mode::Manual)).unwrap(),
            UpdateOutcome::NoAgent
        );
    }
    let s = settings(&host);
    assert_eq!(s.get_str_list("local_certificates"), vec![extra]);
    assert_eq!(s.get_str_list("certificates"), vec![srv.pki.ca_pem]);
    assert!(s.state_value("certificates").is_none());
}

#[test]
fn update_url_follows_the_status_answer_also_when_it_is_gone() {
    let (srv, _) = status_server(json!({"AgentAvailable": false}));
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[]);
    let paths = host.paths();
    write_registered_state(&paths, &srv.server(), "web01", &"s".repeat(64));
    remember_update_url(
        &paths,
        &format!("https://{}/{SITE}/check_mk/", srv.server()),
    );
    host.updater(checkmk())
        .run(&RunOptions::new(Mode::Manual))
        .unwrap();
    assert!(settings(&host).state_value("update_url").is_none());
}

#[test]
fn section_update_url_is_the_effective_base_url() {
    let host = TestHost::new("web01", "", &[]);
    let paths = host.paths();
    write_registered_state(&paths, "srv:8443", "web01", &"s".repeat(64));
    let up = host.updater(checkmk());
    let section = section_json(&up.section(&settings(&host)));
    assert_eq!(section["update_url"], "https://srv:8443/mysite/check_mk");

    let state = std::fs::read_to_string(&paths.state_file).unwrap().replace(
        "'user'",
        "'update_url': 'https://other/mysite/check_mk/', 'user'",
    );
    std::fs::write(&paths.state_file, state).unwrap();
    let section = section_json(&up.section(&settings(&host)));
    assert_eq!(section["update_url"], "https://other/mysite/check_mk");
}

/// A server whose `/other/` site answers `other` and whose real site answers "no agent".
fn two_sites(other: Reply) -> (ScriptedServer, Arc<Mutex<Vec<String>>>) {
    let other = Arc::new(Mutex::new(Some(other)));
    let paths = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&paths);
    let srv = ScriptedServer::start(move |path, _form| {
        seen.lock().unwrap().push(path.to_owned());
        if path.starts_with("/other/") {
            match other.lock().unwrap().take() {
                Some(r) => r,
                None => Reply::Html("gone".into()),
            }
        } else {
            Reply::Json(json!({"result_code": 0, "result": {"AgentAvailable": false}}))
        }
    });
    (srv, paths)
}

fn host_with_update_url(srv: &ScriptedServer) -> TestHost {
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[]);
    let paths = host.paths();
    write_registered_state(&paths, &srv.server(), "web01", &"s".repeat(64));
    remember_update_url(&paths, &format!("https://{}/other/check_mk", srv.server()));
    host
}

/// Adds `update_url` to the registered state at `paths`, as a status answer leaves it.
fn remember_update_url(paths: &agent_updater::Paths, url: &str) {
    let state = std::fs::read_to_string(&paths.state_file)
        .unwrap()
        .replace("'user'", &format!("'update_url': '{url}', 'user'"));
    std::fs::write(&paths.state_file, state).unwrap();
}

#[test]
fn fallback_on_any_error_except_the_bakerys() {
    // An HTML answer at the update_url: the next URL is tried.
    let (srv, paths) = two_sites(Reply::Html("<html>not a bakery</html>".into()));
    let host = host_with_update_url(&srv);
    let outcome = host
        .updater(checkmk())
        .run(&RunOptions::new(Mode::Manual))
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::NoAgent);
    assert_eq!(paths.lock().unwrap().len(), 2);

    // The bakery's own error ends the search.
    let (srv, paths) = two_sites(Reply::Json(
        json!({"result_code": 1, "result": "host not registered"}),
    ));
    let host = host_with_update_url(&srv);
    let err = host
        .updater(checkmk())
        .run(&RunOptions::new(Mode::Manual))
        .unwrap_err();
    assert!(matches!(err, UpdateError::Bakery(_)), "{err}");
    assert_eq!(paths.lock().unwrap().len(), 1);
}

#[test]
fn checkmk_login_failure_texts_mean_cannot_authenticate() {
    for body in [
        "Invalid automation secret for user automation",
        "Permission denied",
        "<html><body>Nicht angemeldet</body></html>",
        "<html><div id=\"login_error\">Incorrect username or password.</div></html>",
    ] {
        let page = body.to_owned();
        let srv = ScriptedServer::start(move |_path, _form| Reply::Html(page.clone()));
        let host = TestHost::new("web01", &srv.pki.ca_pem, &[]);
        write_registered_state(&host.paths(), &srv.server(), "web01", &"s".repeat(64));
        let err = host
            .updater(checkmk())
            .run(&RunOptions::new(Mode::Manual))
            .unwrap_err();
        assert!(
            matches!(err, UpdateError::CannotAuthenticate),
            "{body}: {err}"
        );
    }
}

#[test]
fn failed_plugin_run_pushes_its_error() {
    let (srv, forms) = status_server(json!({
        "AgentAvailable": true, "TargetHash": "0123456789abcdef", "Signatures": []}));
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[]);
    write_registered_state(&host.paths(), &srv.server(), "web01", &"s".repeat(64));
    let section = host
        .updater(checkmk())
        .plugin_output(&RunOptions::new(Mode::Plugin));
    let error = section_json(&section)["error"].as_str().unwrap().to_owned();
    assert_eq!(
        error,
        "The deployment server provides an agent but that is not signed."
    );
    let forms = forms.lock().unwrap();
    assert_eq!(forms.len(), 2, "status, then the push");
    assert_eq!(forms[0]["last_error"], "");
    assert_eq!(forms[1]["mode"], "status");
    assert_eq!(forms[1]["last_error"], error);
}
