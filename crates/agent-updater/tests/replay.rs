//! A recorded exchange (tests/fixtures/exchange.json) replayed against our server and our client.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use agent_updater::{AgentSignVerifier, Mode, RunOptions, Updater};
use agent_wire::Platform;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::*;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/exchange.json")).unwrap()
}

/// Replaces `"$NAME"` strings by `vars[NAME]`.
fn substitute(v: &Value, vars: &HashMap<&str, Value>) -> Value {
    match v {
        Value::String(s) if s.starts_with('$') => {
            vars.get(&s[1..]).cloned().unwrap_or_else(|| v.clone())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, vars)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), substitute(x, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn recorded_exchange_against_our_server() {
    let srv = TestServer::start();
    let key = SigningKey::new("signature");
    let pkg = b"recorded package".to_vec();
    let signatures = sigs(&[&key], &pkg);
    let hash = srv
        .store
        .publish("web01", Platform::LinuxDeb, &pkg, &signatures, None)
        .unwrap();
    let mut vars: HashMap<&str, Value> = HashMap::new();
    vars.insert("USER_SECRET", json!(USER_SECRET));
    vars.insert("TARGET_HASH", json!(hash));
    vars.insert("SIGNATURES", json!(signatures));
    vars.insert(
        "AGENT",
        json!(base64::engine::general_purpose::STANDARD.encode(&pkg)),
    );
    let agent = https_agent(&srv.pki.ca_pem);
    let fx = fixture();
    for (n, step) in fx["steps"].as_array().unwrap().iter().enumerate() {
        let request = substitute(&step["request"], &vars);
        let pairs: Vec<(String, String)> = request
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let url = format!("{}/{}", srv.base(), step["page"].as_str().unwrap());
        let mut resp = agent
            .post(&url)
            .send_form(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .unwrap();
        assert_eq!(resp.status(), 200, "step {n}");
        let got: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        if n == 0 {
            let secret = got["result"]["host_secret"].as_str().unwrap().to_owned();
            assert_eq!(secret.len(), 64);
            assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
            vars.insert("HOST_SECRET", json!(secret));
        }
        assert_eq!(got, substitute(&step["response"], &vars), "step {n}");
    }
}

#[test]
fn recorded_exchange_against_our_client() {
    let key = SigningKey::new("signature");
    let pkg = b"recorded package".to_vec();
    let mut vars: HashMap<&str, Value> = HashMap::new();
    vars.insert("USER_SECRET", json!(USER_SECRET));
    vars.insert("HOST_SECRET", json!("Ab3".repeat(21) + "Z"));
    vars.insert("TARGET_HASH", json!("94b60c8ef40c4900"));
    vars.insert("SIGNATURES", json!(sigs(&[&key], &pkg)));
    vars.insert(
        "AGENT",
        json!(base64::engine::general_purpose::STANDARD.encode(&pkg)),
    );
    let steps: Vec<Value> = fixture()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| substitute(s, &vars))
        .collect();
    let steps = Arc::new(steps);
    let step = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let (steps2, step2, failures2) = (Arc::clone(&steps), Arc::clone(&step), Arc::clone(&failures));
    let srv = ScriptedServer::start(move |path, form| {
        let n = step2.fetch_add(1, Ordering::SeqCst);
        let Some(expected) = steps2.get(n) else {
            failures2
                .lock()
                .unwrap()
                .push(format!("unexpected request #{n} to {path}"));
            return Reply::Json(json!({"result_code": 1, "result": "unexpected"}));
        };
        let page = expected["page"].as_str().unwrap();
        if path != format!("/{SITE}/check_mk/{page}") {
            failures2
                .lock()
                .unwrap()
                .push(format!("step {n}: path {path}, expected {page}"));
        }
        let want = expected["request"].as_object().unwrap();
        let got_keys: BTreeSet<&String> = form.keys().collect();
        let want_keys: BTreeSet<&String> = want.keys().collect();
        if got_keys != want_keys {
            failures2.lock().unwrap().push(format!(
                "step {n}: fields {got_keys:?}, expected {want_keys:?}"
            ));
        }
        for (k, v) in want {
            if form.get(k).map(String::as_str) != v.as_str() {
                failures2
                    .lock()
                    .unwrap()
                    .push(format!("step {n}: {k}={:?}, expected {v}", form.get(k)));
            }
        }
        Reply::Json(expected["response"].clone())
    });
    let host = TestHost::new("web01", &srv.pki.ca_pem, &[&key.cert_pem]);
    let up: Updater = host.updater(Arc::new(AgentSignVerifier::checkmk()));
    up.register(&register_options(srv.server(), "web01"))
        .unwrap();
    up.run(&RunOptions::new(Mode::Manual)).unwrap();
    assert_eq!(std::fs::read(host.installed_file()).unwrap(), pkg);
    assert_eq!(*failures.lock().unwrap(), Vec::<String>::new());
    assert_eq!(step.load(Ordering::SeqCst), steps.len());
}
