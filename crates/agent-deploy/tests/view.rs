//! The status view (bakery.md §8, requirement 22): golden HTML, JSON and text for a fixture
//! with one host in each category, and the login, session, CSRF, anonymous refusal and
//! escaping over real HTTPS on loopback.
//!
//! The golden files are `tests/data/view/status.{html,json,txt}`. After an intended change,
//! regenerate them with `UPDATE_GOLDEN=1 cargo test -p agent-deploy --test view` and review
//! the diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bakery_site;
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent_deploy::view::html::{PageContext, page};
use agent_deploy::view::{Category, HostState, StatusView, Verdict, ViewQuery};
use agent_deploy::{Advertise, BakerySite, DeployStore, Limits};
use agent_wire::{DeployMode, Platform};

use bakery_site::BakerySiteFixture;
use support::{SigningKey, USER, USER_SECRET, register_form, status_form};

/// The fixture's clock: registrations at T0, calls after, the view an hour later.
const T0: u64 = 1_750_000_000;
const EVIL: &str = "<script>alert(\"host\")</script>";
const EVIL_ERROR: &str = "<script>alert('err')</script> download failed: connection reset";

fn at(t: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t)
}

/// A state directory and a bakery site with one host in each category.
struct Fixture {
    _site: BakerySiteFixture,
    _dir: tempfile::TempDir,
    store: Arc<DeployStore>,
    /// Published package hashes by host.
    hashes: std::collections::BTreeMap<&'static str, String>,
}

fn fixture() -> Fixture {
    let ca = include_str!("../../agent-sign/tests/data/pyca.crt.pem");
    let site = BakerySiteFixture::new("deploy.example.com", ca);
    site.add_hosts("lab", &["dl01", "in01", "err01", "new01", "nopkg01"]);
    site.deployment(true, Some("{'match_exclude_hosts': ['db02']}"));

    let dir = tempfile::tempdir().unwrap();
    DeployStore::set_user(dir.path(), USER, USER_SECRET, 1000).unwrap();
    // A hand-edited (or otherwise tampered) status file: host names that reach the store
    // through the protocol are validated, but the view must not trust its files either.
    std::fs::create_dir_all(dir.path().join("status")).unwrap();
    std::fs::write(
        dir.path().join("status/evil.json"),
        serde_json::json!({
            "host_name": EVIL,
            "registered_at": T0,
            "registered_by": "<b>mallory</b>",
            "platform": "linux_deb",
            "last_contact": T0 + 50,
        })
        .to_string(),
    )
    .unwrap();
    let store = Arc::new(
        DeployStore::open(dir.path(), Advertise::default())
            .unwrap()
            .with_bakery(BakerySite {
                root: site.root.clone(),
                site_id: "mysite".into(),
            }),
    );
    let key = SigningKey::new("view fixture");
    let mut hashes = std::collections::BTreeMap::new();
    for (i, host) in ["web01", "db02", "dl01", "in01", "err01", "pub01"]
        .into_iter()
        .enumerate()
    {
        let package = format!("package of {host}").into_bytes();
        // pub01's package is unsigned: the prerequisite shows it.
        let sigs = if host == "pub01" {
            Vec::new()
        } else {
            vec![key.sign(&package)]
        };
        let hash = store
            .publish(host, Platform::LinuxDeb, &package, &sigs, None)
            .unwrap();
        hashes.insert(host, hash);
        let _ = i;
    }
    let mut secrets = std::collections::BTreeMap::new();
    for host in ["web01", "db02", "dl01", "in01", "err01", "new01", "nopkg01"] {
        let r = store
            .register(&register_form(host, USER_SECRET), at(T0))
            .unwrap();
        secrets.insert(host, r.host_secret);
    }
    let status = |host: &str, t: u64, installed: &str, error: &str| {
        let mut form = status_form(host, &secrets[host]);
        form.installed_aghash = installed.into();
        form.last_error = error.into();
        store.deploy(&form, at(t))
    };
    // up to date
    status("web01", T0 + 100, &hashes["web01"], "").unwrap();
    // not selected: refused, the contact recorded
    assert!(status("db02", T0 + 200, "", "").is_err());
    // pending download
    status("dl01", T0 + 300, "", "").unwrap();
    // pending install: downloaded, not yet installed
    status("in01", T0 + 400, "", "").unwrap();
    let mut get = status_form("in01", &secrets["in01"]);
    get.mode = DeployMode::Agent;
    get.aghash = hashes["in01"].clone();
    store.deploy(&get, at(T0 + 410)).unwrap();
    status("in01", T0 + 420, "", "").unwrap();
    // error
    status("err01", T0 + 500, "", EVIL_ERROR).unwrap();
    // no package
    status("nopkg01", T0 + 600, "", "").unwrap();
    // new01: never contacted
    Fixture {
        _site: site,
        _dir: dir,
        store,
        hashes,
    }
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/view")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_GOLDEN=1 cargo test -p agent-deploy --test view writes it)",
            path.display()
        )
    });
    if expected != actual {
        let got = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.actual"));
        std::fs::write(&got, actual).unwrap();
        panic!(
            "{} differs from the golden file; the actual output is in {} \
             (UPDATE_GOLDEN=1 cargo test -p agent-deploy --test view accepts it)",
            name,
            got.display()
        );
    }
}

fn row<'a>(view: &'a StatusView, host: &str) -> &'a agent_deploy::view::HostRow {
    view.hosts
        .iter()
        .find(|r| r.status.host_name == host)
        .unwrap_or_else(|| panic!("no row for {host}"))
}

#[test]
fn golden_view_with_one_host_in_each_category() {
    let f = fixture();
    let view = StatusView::build(&f.store, ViewQuery::default(), at(T0 + 3600)).unwrap();

    // One host in each category, and the state each one shows.
    for c in Category::ALL {
        assert!(view.counts.get(c) >= 1, "{c:?}: {:?}", view.counts);
    }
    let expect = [
        ("web01", HostState::UpToDate),
        ("db02", HostState::NotSelected),
        ("dl01", HostState::PendingDownload),
        ("in01", HostState::PendingInstall),
        ("err01", HostState::Error),
        ("new01", HostState::NeverContacted),
        ("nopkg01", HostState::NoPackage),
        ("pub01", HostState::NeverContacted),
        (EVIL, HostState::NoPackage),
    ];
    for (host, state) in expect {
        assert_eq!(row(&view, host).state, state, "{host}");
    }
    assert_eq!(view.hosts.len(), expect.len());
    assert_eq!(row(&view, "db02").verdict, Verdict::HostDisabled);
    assert_eq!(
        row(&view, "db02").reason.as_deref(),
        Some("agent updates are disabled for host name db02 because it is on the exclusion list")
    );
    assert!(!row(&view, "pub01").is(Category::Registered));
    assert_eq!(view.counts.registered, 8);
    let packages = view
        .prerequisites
        .iter()
        .find(|p| p.id == "packages")
        .unwrap();
    assert_eq!(
        packages.detail,
        "6 packages for the listed hosts, 5 signed."
    );

    // Hashes: 8 characters shown, the full hash on hover; every text escaped.
    let html = page(
        &view,
        &PageContext {
            user: "agent_registration",
            csrf_token: "0123abcd",
        },
    );
    let web01 = &f.hashes["web01"];
    assert!(
        html.contains(&format!("<abbr title=\"{web01}\">{}</abbr>", &web01[..8])),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&quot;host&quot;)&lt;/script&gt;"));
    assert!(html.contains("&lt;script&gt;alert('err')&lt;/script&gt; download failed"));

    golden("status.html", &html);
    golden(
        "status.json",
        &format!("{}\n", serde_json::to_string_pretty(&view).unwrap()),
    );
    golden("status.txt", &view.to_text());
}

#[test]
fn search_filter_and_sort() {
    let f = fixture();
    let now = at(T0 + 3600);
    let names = |q: ViewQuery| -> Vec<String> {
        StatusView::build(&f.store, q, now)
            .unwrap()
            .hosts
            .into_iter()
            .map(|r| r.status.host_name)
            .collect()
    };
    assert_eq!(
        names(ViewQuery::parse(Some(" WEB "), None, None, None)),
        ["web01"]
    );
    assert_eq!(
        names(ViewQuery::parse(None, Some("pending_install"), None, None)),
        ["in01"]
    );
    assert_eq!(
        names(ViewQuery::parse(Some("0"), Some("error"), None, None)),
        ["err01"]
    );
    let by_contact = names(ViewQuery::parse(None, None, Some("contact"), Some("desc")));
    assert_eq!(by_contact[..3], ["nopkg01", "err01", "in01"]);
    let by_host_desc = names(ViewQuery::parse(None, None, None, Some("desc")));
    assert_eq!(by_host_desc.first().map(String::as_str), Some("web01"));
    // Unknown values fall back to the defaults.
    let all = names(ViewQuery::parse(
        None,
        Some("bogus"),
        Some("bogus"),
        Some("up"),
    ));
    assert_eq!(all.len(), 9);
    assert_eq!(all.first().map(String::as_str), Some(EVIL));
    // The filter shows exactly the bar's count.
    let view = StatusView::build(&f.store, ViewQuery::default(), now).unwrap();
    for c in Category::ALL {
        assert_eq!(
            names(ViewQuery::default().filtered(Some(c))).len(),
            view.counts.get(c),
            "{c:?}"
        );
    }
    // Links keep the other parameters and escape the search.
    let q = ViewQuery::parse(Some("a b&c"), Some("error"), Some("contact"), None);
    assert_eq!(
        q.sorted_by(agent_deploy::view::SortKey::Contact)
            .to_query_string(),
        "q=a+b%26c&state=error&sort=contact&dir=desc"
    );
}

// ------------------------------------------------------------------------------------------
// over HTTPS

struct Http {
    agent: ureq::Agent,
    base: String,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `name=value` part of the Set-Cookie for `name` and its attributes.
    fn cookie(&self, name: &str) -> Option<(String, String)> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .find(|(_, v)| v.starts_with(&format!("{name}=")))
            .map(|(_, v)| {
                let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
                (pair.to_owned(), attrs.to_owned())
            })
    }

    /// The value of the form field `name` in the page.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

impl Http {
    fn new(ca_pem: &str, base: String) -> Http {
        let ca = ureq::tls::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .build()
            .new_agent();
        Http { agent, base }
    }

    fn answer(resp: ureq::http::Response<ureq::Body>) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = resp.into_body().read_to_string().unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    fn get(&self, page: &str, cookies: &[&str]) -> Answer {
        let mut req = self.agent.get(format!("{}/{page}", self.base));
        if !cookies.is_empty() {
            req = req.header("Cookie", cookies.join("; "));
        }
        Self::answer(req.call().unwrap())
    }

    fn post(&self, page: &str, cookies: &[&str], form: &[(&str, &str)]) -> Answer {
        let mut req = self.agent.post(format!("{}/{page}", self.base));
        if !cookies.is_empty() {
            req = req.header("Cookie", cookies.join("; "));
        }
        Self::answer(req.send_form(form.iter().copied()).unwrap())
    }
}

#[test]
fn login_session_csrf_anonymous_refusal_and_escaping_over_https() {
    let f = fixture();
    let pki = support::TestPki::new("view");
    let server = support::spawn_https(&f.store, Limits::default(), Arc::clone(&pki.tls));
    let http = Http::new(
        &pki.ca_pem,
        format!(
            "https://127.0.0.1:{}/{}/check_mk",
            server.local_addr().port(),
            support::SITE
        ),
    );

    // Anonymous: no page, no data.
    let a = http.get("agent_update_status.py", &[]);
    assert_eq!((a.status, a.header("location")), (303, Some("login.py")));
    assert!(!a.body.contains("web01"));
    let a = http.get("agent_update_status.py?output_format=json", &[]);
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(!a.body.contains("web01"));
    // A made-up session is no session.
    let a = http.get("agent_update_status.py", &["auth_mysite=AAAAAAAA"]);
    assert_eq!(a.status, 303);

    // The login form: a pre-session cookie and its token.
    let form = http.get("login.py", &[]);
    assert_eq!(form.status, 200);
    let (pre, attrs) = form.cookie("csrf_mysite").expect("pre-session cookie");
    assert!(
        attrs.contains("HttpOnly") && attrs.contains("SameSite=Lax") && attrs.contains("Secure"),
        "{attrs}"
    );
    let token = form.field("_csrf_token");
    assert!(form.body.contains("<label for=\"_username\">"));
    assert!(
        form.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );

    let login = |cookies: &[&str], token: &str, password: &str| {
        http.post(
            "login.py",
            cookies,
            &[
                ("_login", "1"),
                ("_username", USER),
                ("_password", password),
                ("_csrf_token", token),
            ],
        )
    };
    // A wrong password: refused, no session.
    let a = login(&[&pre], &token, "wrong");
    assert_eq!(a.status, 401);
    assert!(a.body.contains("Invalid user name or password."));
    assert!(a.cookie("auth_mysite").is_none());
    // The right password without the pre-session cookie, or with another pre-session's
    // cookie: refused (login CSRF).
    let a = login(&[], &token, USER_SECRET);
    assert_eq!(a.status, 403);
    assert!(a.cookie("auth_mysite").is_none());
    let other = http.get("login.py", &[]).cookie("csrf_mysite").unwrap().0;
    let a = login(&[&other], &token, USER_SECRET);
    assert_eq!(a.status, 403);
    let a = login(&[&pre], "00", USER_SECRET);
    assert_eq!(a.status, 403);

    // The updater's login (no token) still works, but its session shows no view.
    let a = http.post(
        "login.py",
        &[],
        &[
            ("_login", "1"),
            ("_username", USER),
            ("_password", USER_SECRET),
        ],
    );
    assert_eq!((a.status, a.header("location")), (302, Some("index.py")));
    let updater_session = a.cookie("auth_mysite").unwrap().0;
    assert_eq!(
        http.get("agent_update_status.py", &[&updater_session])
            .status,
        303
    );
    assert_eq!(
        http.get(
            "agent_update_status.py?output_format=json",
            &[&updater_session]
        )
        .status,
        401
    );

    // The right login.
    let a = login(&[&pre], &token, USER_SECRET);
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), Some("agent_update_status.py"));
    let (session, attrs) = a.cookie("auth_mysite").unwrap();
    assert!(
        attrs.contains("HttpOnly")
            && attrs.contains("SameSite=Lax")
            && attrs.contains("Secure")
            && attrs.contains("Path=/mysite/"),
        "{attrs}"
    );

    // The page: escaped everywhere, no script, CSP without scripts.
    let p = http.get("agent_update_status.py?q=%3Cscript%3Ex", &[&session]);
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("<script"), "{}", p.body);
    assert!(p.body.contains("value=\"&lt;script&gt;x\""));
    let p = http.get("agent_update_status.py", &[&session]);
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("<script"));
    assert!(
        p.body
            .contains("&lt;script&gt;alert(&quot;host&quot;)&lt;/script&gt;")
    );
    assert!(
        p.body
            .contains(&format!("<abbr title=\"{}\">", f.hashes["web01"]))
    );
    assert_eq!(p.header("cache-control"), Some("no-store"));
    assert!(
        !p.header("content-security-policy")
            .unwrap()
            .contains("script-src")
    );
    let logout_token = p.field("_csrf_token");

    // JSON for scripts: the same document as `agent-deploy status --json`.
    let j = http.get(
        "agent_update_status.py?output_format=json&state=error",
        &[&session],
    );
    assert_eq!(j.status, 200);
    assert_eq!(j.header("content-type"), Some("application/json"));
    let doc: serde_json::Value = serde_json::from_str(&j.body).unwrap();
    assert_eq!(doc["schema"], 2);
    assert_eq!(doc["total"], 9);
    assert_eq!(doc["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(doc["hosts"][0]["host_name"], "err01");
    assert_eq!(doc["hosts"][0]["last_error"], EVIL_ERROR);

    // GET changes nothing; logout needs the session's token.
    assert_eq!(http.get("logout.py", &[&session]).status, 405);
    let a = http.post("logout.py", &[&session], &[]);
    assert_eq!(a.status, 403);
    let a = http.post("logout.py", &[&session], &[("_csrf_token", &token)]);
    assert_eq!(a.status, 403);
    assert_eq!(http.get("agent_update_status.py", &[&session]).status, 200);
    let a = http.post("logout.py", &[&session], &[("_csrf_token", &logout_token)]);
    assert_eq!((a.status, a.header("location")), (303, Some("login.py")));
    assert!(a.cookie("auth_mysite").unwrap().1.contains("Max-Age=0"));
    assert_eq!(http.get("agent_update_status.py", &[&session]).status, 303);
    assert_eq!(
        http.get("agent_update_status.py?output_format=json", &[&session])
            .status,
        401
    );
    server.shutdown().unwrap();
}

/// Time to build and render the view for many hosts (a figure, not an assertion):
/// `cargo test -p agent-deploy --test view --release -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; run by hand"]
fn build_and_render_time_for_many_hosts() {
    const HOSTS: usize = 5000;
    let dir = tempfile::tempdir().unwrap();
    DeployStore::set_user(dir.path(), USER, USER_SECRET, 1).unwrap();
    let store = DeployStore::open(dir.path(), Advertise::default()).unwrap();
    for i in 0..HOSTS {
        let host = format!("host{i:05}");
        let r = store
            .register(&register_form(&host, USER_SECRET), at(T0))
            .unwrap();
        let mut form = status_form(&host, &r.host_secret);
        if i % 7 == 0 {
            form.last_error = "connection refused".into();
        }
        store.deploy(&form, at(T0 + 60)).unwrap();
    }
    let start = std::time::Instant::now();
    let view = StatusView::build(&store, ViewQuery::default(), at(T0 + 3600)).unwrap();
    let built = start.elapsed();
    let html = page(
        &view,
        &PageContext {
            user: USER,
            csrf_token: "00",
        },
    );
    let rendered = start.elapsed() - built;
    let json = view.to_json();
    let serialised = start.elapsed() - built - rendered;
    println!(
        "{HOSTS} hosts: build {built:?}, HTML {rendered:?} ({} KiB), JSON {serialised:?} ({} KiB)",
        html.len() / 1024,
        json.len() / 1024
    );
    assert_eq!(view.hosts.len(), HOSTS);
}
