//! Malformed and hostile requests through the router in process (issue 16: the server's
//! request handling; the fuzz crate's target is left for later): arbitrary methods, paths,
//! content types, headers and bodies (random bytes, or forms mixing the real field names with
//! real and hostile values, including another host's valid secret). The router never
//! panics, never answers 5xx, and a request it refuses changes no host's state (neither the
//! in-memory status nor any file of the state directory).

use std::sync::Arc;
use std::time::SystemTime;

use agent_deploy::{Advertise, DeployStore, Limits};
use agent_wire::Platform;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tower::ServiceExt as _;

use crate::support::*;

/// One generated request.
#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

/// Requests for our site's pages (mostly `deploy_agent.py`) and others; `secrets` are the
/// host secrets of web01 and web02, `hash` the hash of web02's package.
fn strategy(secrets: [String; 2], hash: String) -> impl Strategy<Value = Req> {
    let page = prop_oneof![
        1 => Just("/mysite/check_mk/register_agent.py".to_owned()),
        3 => Just("/mysite/check_mk/deploy_agent.py".to_owned()),
        1 => Just("/mysite/check_mk/login.py".to_owned()),
        1 => Just("/mysite/agent-receiver/update_status".to_owned()),
        1 => Just("/mysite/agent-receiver/download_agent".to_owned()),
        1 => Just("/othersite/check_mk/deploy_agent.py".to_owned()),
        1 => "/[a-zA-Z0-9_./%-]{0,40}",
    ];
    // Forms: each field of the deploy, registration and login forms present or not, mostly
    // with a plausible value for that field (host names, both hosts' secrets, the package
    // hash...), else an arbitrary one; plus arbitrary extra pairs.
    let fields: Vec<(&'static str, Vec<String>)> = vec![
        ("mode", strings(&["status", "agent"])),
        ("host", strings(&["web01", "web02", "../web02"])),
        ("host_secret", vec![secrets[0].clone(), secrets[1].clone()]),
        (
            "installed_aghash",
            vec![hash.clone(), "0123456789abcdef".into()],
        ),
        ("aghash", vec![hash]),
        ("os", strings(&["linux_deb", "amiga"])),
        ("last_error", strings(&["", "boom"])),
        ("au_api", strings(&["1", "2"])),
        ("_username", strings(&[USER, "nobody"])),
        ("_secret", strings(&[USER_SECRET, "wrong"])),
        ("_login", strings(&["1"])),
        ("_password", strings(&[USER_SECRET, "wrong"])),
    ];
    let names: Vec<&'static str> = fields.iter().map(|(k, _)| *k).collect();
    let known: Vec<_> = fields
        .into_iter()
        .map(|(_, pool)| {
            proptest::option::weighted(
                0.85,
                prop_oneof![
                    5 => proptest::sample::select(pool),
                    1 => ".{0,80}",
                    1 => Just("x".repeat(20_000)),
                ],
            )
        })
        .collect();
    let extra = proptest::collection::vec(("[a-z_]{0,8}", ".{0,20}"), 0..3);
    let form = (known, extra).prop_map(move |(known, extra)| {
        names
            .iter()
            .zip(known)
            .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), v)))
            .chain(extra)
            .map(|(k, v)| format!("{}={}", percent_encode(&k), percent_encode(&v)))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    });
    let body = prop_oneof![
        3 => form,
        1 => proptest::collection::vec(any::<u8>(), 0..2048),
        1 => Just(br#"{"platform": "linux_deb", "aghash": "0123456789abcdef"}"#.to_vec()),
    ];
    let content_type = prop_oneof![
        3 => Just(Some("application/x-www-form-urlencoded".to_owned())),
        1 => Just(Some("application/json".to_owned())),
        1 => Just(None),
        1 => "[ -~]{0,40}".prop_map(Some),
    ];
    let header = prop_oneof![
        "[ -~]{0,60}".prop_map(|v| ("cookie".to_owned(), format!("auth_mysite={v}"))),
        ("x-[a-z]{1,10}", "[ -~]{0,60}"),
        "[0-9]{1,6}".prop_map(|v| ("content-length".to_owned(), v)),
    ];
    (
        prop_oneof![4 => Just("POST"), 1 => Just("GET"), 1 => Just("PUT")],
        page,
        content_type,
        proptest::collection::vec(header, 0..4),
        body,
    )
        .prop_map(|(method, path, content_type, headers, body)| Req {
            method,
            path,
            content_type,
            headers,
            body,
        })
}

#[test]
fn malformed_requests_never_panic_5xx_or_change_state_when_refused() {
    let dir = tempfile::tempdir().unwrap();
    DeployStore::set_user(dir.path(), USER, USER_SECRET, 1000).unwrap();
    let store = Arc::new(DeployStore::open(dir.path(), Advertise::default()).unwrap());
    let now = SystemTime::now();
    let web01 = store
        .register(&register_form("web01", USER_SECRET), now)
        .unwrap()
        .host_secret;
    let web02 = store
        .register(&register_form("web02", USER_SECRET), now)
        .unwrap()
        .host_secret;
    let hash = store
        .publish("web02", Platform::LinuxDeb, b"package", &[], None)
        .unwrap();
    store.deploy(&status_form("web02", &web02), now).unwrap();
    store.flush().unwrap();
    let app = agent_deploy::router(Arc::clone(&store), SITE, &Limits::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy([web01, web02], hash), |req| {
            let mut builder = Request::builder().method(req.method).uri(&req.path);
            if let Some(ct) = &req.content_type {
                builder = builder.header("content-type", ct);
            }
            for (k, v) in &req.headers {
                builder = builder.header(k, v);
            }
            let Ok(request) = builder.body(Body::from(req.body.clone())) else {
                // Not a valid HTTP request at all (hyper would refuse it before the router).
                return Ok(());
            };
            let statuses_before = store.statuses();
            store.flush().unwrap();
            let files_before = testkit::file_snapshot(dir.path());
            let (status, body) = rt.block_on(async {
                let resp = app.clone().oneshot(request).await.unwrap();
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 24)
                    .await
                    .unwrap();
                (status, body)
            });
            prop_assert!(
                !status.is_server_error(),
                "{status} for {req:?}: {}",
                String::from_utf8_lossy(&body)
            );
            let accepted = status == StatusCode::FOUND
                || (status == StatusCode::OK
                    && serde_json::from_slice::<serde_json::Value>(&body)
                        .is_ok_and(|v| v["result_code"] == 0));
            if !accepted {
                prop_assert_eq!(&store.statuses(), &statuses_before, "{:?}", req);
                store.flush().unwrap();
                let files_after = testkit::file_snapshot(dir.path());
                prop_assert!(
                    files_after == files_before,
                    "refused {req:?} changed {:?}",
                    files_after
                        .iter()
                        .filter(|(k, v)| files_before.get(*k) != Some(v))
                        .map(|(k, _)| k)
                        .collect::<Vec<_>>()
                );
            }
            Ok(())
        })
        .unwrap();
}

/// fuzz `server_request` crash-4ac8330c (a harness error, kept as a check of the server):
/// a HEAD request gets the GET answer's headers, its Content-Length included, and no body.
#[test]
fn a_head_request_gets_the_get_headers_and_no_body() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DeployStore::open(dir.path(), Advertise::default()).unwrap());
    let app = agent_deploy::router(store, SITE, &Limits::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = |method: &str| {
        let request = Request::builder()
            .method(method)
            .uri(format!("/{SITE}/check_mk/login.py"))
            .body(Body::empty())
            .unwrap();
        rt.block_on(async {
            let resp = app.clone().oneshot(request).await.unwrap();
            let (parts, body) = resp.into_parts();
            let body = axum::body::to_bytes(body, 1 << 24).await.unwrap();
            (parts.status, parts.headers, body)
        })
    };
    let (get_status, get_headers, get_body) = answer("GET");
    let (head_status, head_headers, head_body) = answer("HEAD");
    assert_eq!(head_status, get_status);
    assert!(!get_body.is_empty());
    assert!(head_body.is_empty(), "HEAD answered with a body");
    let length = |h: &axum::http::HeaderMap| h.get("content-length").cloned();
    assert_eq!(length(&head_headers), length(&get_headers));
    assert_eq!(
        length(&get_headers).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()),
        Some(get_body.len())
    );
}
