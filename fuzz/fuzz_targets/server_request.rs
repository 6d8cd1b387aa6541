//! The deployment server's request handling: one HTTP request through `agent_deploy::router`
//! in process (tower `oneshot`, one current-thread tokio runtime for the whole run), against a
//! temporary store with our user and two registered hosts (web02 with a published package).
//!
//! Input (text, so that seeds and the dictionary read like requests):
//!
//! ```text
//! METHOD PATH
//! header-name: value
//! x-client-host: web01        (not a header: the mTLS-verified host of the 2.5 API)
//!
//! body
//! ```
//!
//! Placeholders anywhere in the input are replaced by the live values, so that the fuzzer can
//! reach accepted requests: `$S1`/`$S2` web01's/web02's host secret, `$H` web02's package hash,
//! `$T` a GUI session token, `$U` the user's secret.
//!
//! Skipped: logins and registrations as another user than ours (without a session): the
//! server spends the work of a real password check on unknown users ([`agent_deploy::DEFAULT_PBKDF2_ITERATIONS`],
//! about a second here) so that timing does not reveal user names, which is slow by design.
//!
//! Checks: no panic; no 5xx; a JSON answer parses, an HTML answer is UTF-8, a Content-Length
//! matches the body; a refused request (anything but a 302 login, a JSON envelope with
//! `result_code` 0, or a 2xx of the 2.5 API for a verified host) changes no host's status and
//! no registration (host secret).
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use agent_deploy::{Advertise, ClientHost, DeployStore, Limits};
use agent_wire::{DeployForm, DeployMode, Platform, RegisterForm};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;

const SITE: &str = "mysite";
const USER: &str = "agent_registration";
const USER_SECRET: &str = "correct horse battery staple";
/// Hosts beyond which the store is made afresh (registrations of new names pile up).
const MAX_HOSTS: usize = 32;

/// A fresh store with its router and the live values of the placeholders.
struct World {
    _dir: tempfile::TempDir,
    store: Arc<DeployStore>,
    app: axum::Router,
    placeholders: [(&'static [u8], Vec<u8>); 5],
}

fn register_form(host: &str) -> RegisterForm {
    RegisterForm {
        host: host.into(),
        username: USER.into(),
        secret: USER_SECRET.into(),
        au_api: "2".into(),
    }
}

impl World {
    fn new() -> World {
        // tmpfs when there is one: registrations write files, and the run must not wear a disk.
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm")
        } else {
            tempfile::tempdir()
        }
        .expect("temp dir");
        // Few PBKDF2 rounds: every registration and login in the run hashes the secret.
        DeployStore::set_user(dir.path(), USER, USER_SECRET, 2).expect("user");
        let store = Arc::new(DeployStore::open(dir.path(), Advertise::default()).expect("store"));
        let now = SystemTime::now();
        let s1 = store.register(&register_form("web01"), now).expect("web01");
        let s2 = store.register(&register_form("web02"), now).expect("web02");
        let hash = store
            .publish("web02", Platform::LinuxDeb, b"package", &[], None)
            .expect("publish");
        let status = DeployForm {
            mode: DeployMode::Status,
            host: "web02".into(),
            host_secret: s2.host_secret.clone(),
            installed_aghash: String::new(),
            aghash: String::new(),
            os: "linux_deb".into(),
            last_error: String::new(),
            au_api: "2".into(),
        };
        store.deploy(&status, now).expect("status");
        let token = store.login(USER, USER_SECRET, now).expect("login");
        let app = agent_deploy::router(Arc::clone(&store), SITE, &Limits::default());
        World {
            _dir: dir,
            store,
            app,
            placeholders: [
                (b"$S1", s1.host_secret.into_bytes()),
                (b"$S2", s2.host_secret.into_bytes()),
                (b"$H", hash.into_bytes()),
                (b"$T", token.as_bytes().to_vec()),
                (b"$U", USER_SECRET.as_bytes().to_vec()),
            ],
        }
    }

    /// The registration files (`hosts/<host>.json`, with the SHA-256 of each host secret): a
    /// registration in the same second as the one before leaves the statuses as they were.
    fn registrations(&self) -> Vec<(std::ffi::OsString, Vec<u8>)> {
        let mut out: Vec<_> = std::fs::read_dir(self.store.dir().join("hosts"))
            .expect("hosts dir")
            .map(|e| {
                let e = e.expect("hosts dir entry");
                (
                    e.file_name(),
                    std::fs::read(e.path()).expect("registration file"),
                )
            })
            .collect();
        out.sort();
        out
    }

    fn substitute(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        'outer: while i < data.len() {
            for (name, value) in &self.placeholders {
                if data[i..].starts_with(name) {
                    out.extend_from_slice(value);
                    i += name.len();
                    continue 'outer;
                }
            }
            out.push(data[i]);
            i += 1;
        }
        out
    }
}

fn world() -> &'static Mutex<World> {
    static W: OnceLock<Mutex<World>> = OnceLock::new();
    W.get_or_init(|| Mutex::new(World::new()))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// Whether the server checks the password of a user other than ours ([`agent_deploy::DEFAULT_PBKDF2_ITERATIONS`]
/// rounds for an unknown user): a login or registration whose first `_username` is not ours,
/// unless it is a registration with an empty `_secret` and a session cookie.
fn unknown_user_check(req: &Request<Body>, body: &[u8]) -> bool {
    let path = req.uri().path();
    let register = path.ends_with("register_agent.py");
    if !register && !path.ends_with("login.py") {
        return false;
    }
    let field = |name: &str| {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    if field("_username") == USER {
        return false;
    }
    let cookie = format!("auth_{SITE}");
    let session = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(k, _)| k == cookie);
    !(register && session && field("_secret").is_empty())
}

/// The request the input describes, or `None` when it is not one hyper would hand the router.
fn request(input: &[u8]) -> Option<(Request<Body>, Option<String>)> {
    let (head, body) = match input.windows(2).position(|w| w == b"\n\n") {
        Some(p) => (&input[..p], &input[p + 2..]),
        None => (input, &b""[..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let first = lines.next()?;
    let sp = first.iter().position(|&b| b == b' ')?;
    let method = Method::from_bytes(&first[..sp]).ok()?;
    let path = std::str::from_utf8(&first[sp + 1..]).ok()?;
    let mut builder = Request::builder().method(method).uri(path);
    let mut client_host = None;
    for line in lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii_start();
        if name.eq_ignore_ascii_case(b"x-client-host") {
            client_host = Some(String::from_utf8_lossy(value).into_owned());
        } else {
            builder = builder.header(name, value);
        }
    }
    let mut req = builder.body(Body::from(body.to_vec())).ok()?;
    if unknown_user_check(&req, body) {
        return None;
    }
    if let Some(host) = &client_host {
        req.extensions_mut().insert(ClientHost(host.clone()));
    }
    Some((req, client_host))
}

fuzz_target!(|data: &[u8]| {
    let mut world = world()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let input = world.substitute(data);
    let Some((req, client_host)) = request(&input) else {
        return;
    };
    let path = req.uri().path().to_owned();
    let is_head = req.method() == Method::HEAD;
    let before = (world.store.statuses(), world.registrations());
    let app = world.app.clone();
    let (status, headers, body) = runtime().block_on(async move {
        let resp = app.oneshot(req).await.expect("the router is infallible");
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, 1 << 24)
            .await
            .expect("answer body");
        (parts.status, parts.headers, body)
    });
    assert!(
        !status.is_server_error(),
        "{status} for {:?}: {}",
        String::from_utf8_lossy(&input),
        String::from_utf8_lossy(&body)
    );
    if is_head {
        // A HEAD answer has the headers of the GET answer (its Content-Length too) and
        // no body (crash-4ac8330c: the harness compared that length with the empty body).
        assert!(body.is_empty(), "a HEAD answer with a body");
    } else if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        assert_eq!(
            len.to_str().ok().and_then(|l| l.parse::<usize>().ok()),
            Some(body.len()),
            "Content-Length"
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json = if content_type.starts_with("application/json") {
        let value = serde_json::from_slice::<serde_json::Value>(&body);
        assert!(
            value.is_ok(),
            "invalid JSON answer: {}",
            String::from_utf8_lossy(&body)
        );
        value.ok()
    } else {
        if content_type.starts_with("text/html") {
            assert!(std::str::from_utf8(&body).is_ok(), "HTML not UTF-8");
        }
        None
    };
    if std::env::var_os("FUZZ_VERBOSE").is_some() {
        // To check what the seeds reach: `FUZZ_VERBOSE=1 server_request -runs=0 SEEDS`.
        eprintln!(
            "{status} {path}: {}",
            String::from_utf8_lossy(&body[..body.len().min(120)])
        );
    }
    let receiver = path.contains("/agent-receiver/");
    let accepted = status == StatusCode::FOUND
        || (status == StatusCode::OK && json.as_ref().is_some_and(|v| v["result_code"] == 0))
        || (receiver && client_host.is_some() && status.is_success());
    if !accepted {
        let after = (world.store.statuses(), world.registrations());
        assert!(
            after == before,
            "refused ({status}) {:?} changed host state:\nbefore {before:?}\nafter  {after:?}",
            String::from_utf8_lossy(&input)
        );
    }
    // A registration replaces a host secret (the placeholders would go stale), and new names
    // pile up: start from a fresh store then.
    if (accepted && path.ends_with("register_agent.py")) || world.store.statuses().len() > MAX_HOSTS
    {
        *world = World::new();
    }
});
