//! The *Agent update status* view in a real browser: headless Chromium (Debian's `chromium`),
//! driven through WebDriver (`chromedriver`, started by the test on a free loopback port) with
//! `fantoccini`, against the real `agent-deploy serve --site-root` over HTTPS with a test CA
//! (the browser session accepts the test server's certificate: `acceptInsecureCerts`, scoped
//! to this session). The site is baked and signed by `agent-bakery`; hosts register and report
//! over the protocol; one state file is tampered with to carry a `<script>` host name.
//!
//! Logs in (a wrong password first), checks one row per host with the right hashes and
//! states, filters, searches, sorts, logs out, and saves a screenshot to
//! `$CARGO_TARGET_DIR/artifacts/status-view.png` (the path is printed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

mod support {
    pub(crate) mod server;
    pub(crate) mod tls;
}
#[path = "../../../crates/agent-deploy/tests/bakery_site.rs"]
mod bakery_site;

use bakery_site::BakerySiteFixture;
use support::server::Proc;

const INSTALL: &str = "apt-get install chromium chromium-driver";
const USER: &str = "automation";
const SECRET: &str = "s3cret-s3cret";
const EVIL: &str = "<script>window.__xss=3</script>evil";
const EVIL_ERROR: &str =
    "Agent Bakery: <img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>";

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where test artifacts go: `$CARGO_TARGET_DIR/artifacts`, else beside `target/debug`.
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // <target>/debug/deps/browser-<hash>
            std::env::current_exe()
                .unwrap()
                .ancestors()
                .nth(3)
                .unwrap()
                .to_owned()
        });
    target.join("artifacts")
}

/// The server with a baked, signed site and six hosts, one in each interesting state.
struct Setup {
    dir: tempfile::TempDir,
    site: BakerySiteFixture,
    _server: Proc,
    base: String,
    hashes: std::collections::BTreeMap<&'static str, String>,
}

fn https(ca_pem: &str) -> ureq::Agent {
    let ca = ureq::tls::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
                .build(),
        )
        .proxy(None)
        .build()
        .new_agent()
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let tls = support::tls::write_tls_files(dir.path());
    let state = dir.path().join("state");
    support::server::user_add(&state, USER, SECRET);
    // A tampered state file: names that reach the store over the protocol are validated, so
    // this is the way a `<script>` host name gets onto the page.
    std::fs::create_dir_all(state.join("status")).unwrap();
    std::fs::write(
        state.join("status/evil.json"),
        serde_json::json!({"host_name": EVIL, "registered_at": 1_750_000_000u64, "platform": "linux_deb"})
            .to_string(),
    )
    .unwrap();

    let site = BakerySiteFixture::new("127.0.0.1", &tls.ca_pem);
    site.add_hosts("lab", &["web02", "web03"]);
    site.deployment(true, Some("{'match_exclude_hosts': ['db02']}"));
    // web01 without the updater: a package (and hash) of its own.
    site.deactivate_web01();
    site.bake_and_sign();

    let (server, addr) = support::server::serve_site(&state, &site.root, &tls.cert, &tls.key);
    let base = format!("https://{addr}/mysite/check_mk");

    // The hosts talk the protocol.
    let agent = https(&tls.ca_pem);
    let call = |page: &str, form: &[(&str, &str)]| -> serde_json::Value {
        let text = agent
            .post(format!("{base}/{page}"))
            .send_form(form.iter().copied())
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let mut secrets = std::collections::BTreeMap::new();
    for host in ["web01", "web02", "web03", "db02", "new01"] {
        let r = call(
            "register_agent.py",
            &[
                ("host", host),
                ("_username", USER),
                ("_secret", SECRET),
                ("au_api", "2"),
            ],
        );
        assert_eq!(r["result_code"], 0, "{r}");
        secrets.insert(
            host,
            r["result"]["host_secret"].as_str().unwrap().to_owned(),
        );
    }
    let deploy = |host: &str, mode: &str, installed: &str, aghash: &str, error: &str| {
        call(
            "deploy_agent.py",
            &[
                ("mode", mode),
                ("host", host),
                ("host_secret", &secrets[host]),
                ("installed_aghash", installed),
                ("aghash", aghash),
                ("os", "linux_deb"),
                ("last_error", error),
                ("au_api", "2"),
            ],
        )
    };
    let mut hashes = std::collections::BTreeMap::new();
    for host in ["web01", "web02", "web03", "db02"] {
        hashes.insert(host, site.hash(host));
    }
    // web01 runs its target; web02 has not downloaded it; web03 downloaded and has not
    // installed it; db02 is excluded and reports an error with markup in it; new01 never
    // called.
    assert_eq!(
        deploy("web01", "status", &hashes["web01"], "", "")["result_code"],
        0
    );
    assert_eq!(deploy("web02", "status", "", "", "")["result_code"], 0);
    let s = deploy("web03", "status", "", "", "");
    assert_eq!(s["result"]["TargetHash"], hashes["web03"].as_str());
    assert_eq!(
        deploy("web03", "agent", "", &hashes["web03"], "")["result_code"],
        0
    );
    assert_eq!(
        deploy("db02", "status", "", "", EVIL_ERROR)["result_code"],
        1
    );
    Setup {
        dir,
        site,
        _server: server,
        base,
        hashes,
    }
}

/// chromedriver on a free loopback port.
fn chromedriver(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .arg(format!(
            "--log-path={}",
            dir.join("chromedriver.log").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let start = Instant::now();
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "chromedriver did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (proc, port)
}

async fn browser(port: u16, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("acceptInsecureCerts".into(), serde_json::json!(true));
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1440,1100",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
}

/// The host names of the table's rows, in order.
async fn rows(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for th in c
        .find_all(Locator::Css("#hosts tbody tr th"))
        .await
        .unwrap()
    {
        out.push(th.text().await.unwrap());
    }
    out
}

/// Clicks `target` and waits until the page it was on is replaced and the new one shows its
/// table (the click returns before the navigation finishes).
async fn click_and_reload(c: &Client, target: fantoccini::elements::Element) {
    let old = c.find(Locator::Id("hosts")).await.unwrap();
    target.click().await.unwrap();
    let start = Instant::now();
    while old.attr("id").await.is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the page did not reload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("hosts"))
        .await
        .unwrap();
}

/// Submits the search and filter form with these values.
async fn search(c: &Client, text: &str, state: &str) {
    let q = c.find(Locator::Id("q")).await.unwrap();
    q.clear().await.unwrap();
    if !text.is_empty() {
        q.send_keys(text).await.unwrap();
    }
    c.find(Locator::Id("state"))
        .await
        .unwrap()
        .select_by_value(state)
        .await
        .unwrap();
    let apply = c
        .find(Locator::Css("form.filters button.apply"))
        .await
        .unwrap();
    click_and_reload(c, apply).await;
}

async fn cell(c: &Client, host: &str, column: &str) -> fantoccini::elements::Element {
    c.find(Locator::Css(&format!(
        "#hosts tr[data-host=\"{host}\"] td.{column}"
    )))
    .await
    .unwrap()
}

async fn drive(c: &Client, s: &Setup) {
    let view = format!("{}/agent_update_status.py", s.base);
    // No session: the login form, and no data.
    c.goto(&view).await.unwrap();
    let url = c.current_url().await.unwrap();
    assert!(url.path().ends_with("/mysite/check_mk/login.py"), "{url}");
    assert!(!c.source().await.unwrap().contains("web01"));

    // A wrong password is refused.
    let login = async |password: &str| {
        c.find(Locator::Id("_username"))
            .await
            .unwrap()
            .send_keys(USER)
            .await
            .unwrap();
        c.find(Locator::Id("_password"))
            .await
            .unwrap()
            .send_keys(password)
            .await
            .unwrap();
        c.find(Locator::Id("_login_button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    };
    login("wrong password").await;
    let error = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("login_error"))
        .await
        .unwrap();
    assert_eq!(
        error.text().await.unwrap(),
        "Invalid user name or password."
    );
    assert!(c.find(Locator::Id("hosts")).await.is_err());

    // The right one shows the view.
    login(SECRET).await;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("hosts"))
        .await
        .unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/agent_update_status.py")
    );

    // One row per host, sorted by name, with their states and hashes.
    assert_eq!(
        rows(c).await,
        [EVIL, "db02", "new01", "web01", "web02", "web03"]
    );
    let states = [
        ("db02", "Error"),
        ("new01", "Never contacted"),
        ("web01", "Up to date"),
        ("web02", "Pending download"),
        ("web03", "Pending install"),
    ];
    for (host, state) in states {
        let badge = c
            .find(Locator::Css(&format!(
                "#hosts tr[data-host=\"{host}\"] .badge"
            )))
            .await
            .unwrap();
        assert_eq!(badge.text().await.unwrap(), state, "{host}");
    }
    for (host, column) in [
        ("web01", "target"),
        ("web01", "installed"),
        ("web02", "target"),
        ("web03", "target"),
        ("web03", "downloaded"),
    ] {
        let abbr = cell(c, host, column)
            .await
            .find(Locator::Css("abbr"))
            .await
            .unwrap();
        let full = &s.hashes[host];
        assert_eq!(abbr.text().await.unwrap(), full[..8], "{host} {column}");
        assert_eq!(
            abbr.attr("title").await.unwrap().as_deref(),
            Some(full.as_str())
        );
    }
    assert_eq!(
        cell(c, "web02", "installed").await.text().await.unwrap(),
        "—"
    );
    assert_ne!(s.hashes["web01"], s.hashes["web02"]);
    let db02 = c
        .find(Locator::Css("#hosts tr[data-host=\"db02\"]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(db02.contains("it is on the exclusion list"), "{db02}");
    // Markup in a host name and in an error is text; no script ran.
    assert_eq!(
        cell(c, "db02", "err").await.text().await.unwrap(),
        EVIL_ERROR
    );
    let xss = c
        .execute(
            "return [typeof window.__xss, document.querySelectorAll('script, img').length];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(xss, serde_json::json!(["undefined", 0]));

    let counts = c
        .find(Locator::Css("#state option[value=\"error\"]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(counts, "Error (1)");

    // The screenshot, for a person to look at.
    let png = c.screenshot().await.unwrap();
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("status-view.png");
    std::fs::write(&shot, &png).unwrap();
    println!("screenshot: {}", shot.display());

    // Filter by state, search by name, both.
    search(c, "", "pending_install").await;
    assert_eq!(rows(c).await, ["web03"]);
    assert!(
        c.current_url()
            .await
            .unwrap()
            .query()
            .unwrap()
            .contains("state=pending_install")
    );
    search(c, "WEB", "").await;
    assert_eq!(rows(c).await, ["web01", "web02", "web03"]);
    search(c, "web", "up_to_date").await;
    assert_eq!(rows(c).await, ["web01"]);
    search(c, "nothing-like-this", "").await;
    assert!(rows(c).await.is_empty());
    search(c, "", "").await;
    assert_eq!(rows(c).await.len(), 6);

    // Sort: the Host column again reverses; Last contact puts the never-contacted first.
    let header = |name: &'static str| {
        let c = c.clone();
        async move {
            for a in c.find_all(Locator::Css("#hosts thead th a")).await.unwrap() {
                if a.text().await.unwrap().starts_with(name) {
                    return a;
                }
            }
            panic!("no column {name}");
        }
    };
    click_and_reload(c, header("Host").await).await;
    c.find(Locator::Css("#hosts th[aria-sort=\"descending\"]"))
        .await
        .unwrap();
    assert_eq!(
        rows(c).await,
        ["web03", "web02", "web01", "new01", "db02", EVIL]
    );
    click_and_reload(c, header("Last contact").await).await;
    c.find(Locator::Css("#hosts th[aria-sort=\"ascending\"]"))
        .await
        .unwrap();
    let by_contact = rows(c).await;
    assert_eq!(by_contact[..2], [EVIL, "new01"], "{by_contact:?}");
    assert!(
        c.current_url()
            .await
            .unwrap()
            .query()
            .unwrap()
            .contains("sort=contact")
    );

    // The JSON for scripts is the document `agent-deploy status --json` prints.
    c.goto(&format!("{view}?output_format=json")).await.unwrap();
    let text = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut served: serde_json::Value = serde_json::from_str(&text).unwrap();
    let out = Command::new(support::server::DEPLOY)
        .arg("--dir")
        .arg(s.dir.path().join("state"))
        .arg("--site-root")
        .arg(&s.site.root)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for doc in [&mut served, &mut printed] {
        doc.as_object_mut().unwrap().remove("generated_at");
    }
    assert_eq!(served, printed);
    assert_eq!(served["schema"], 2);
    assert_eq!(served["counts"]["pending_install"], 1);
    c.goto(&view).await.unwrap();

    // Logout ends the session.
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("_username"))
        .await
        .unwrap();
    c.goto(&view).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/login.py"));
}

#[test]
fn status_view_in_headless_chromium() {
    if !testkit::require_tool("chromium", INSTALL)
        || !testkit::require_tool("chromedriver", INSTALL)
    {
        return;
    }
    let s = setup();
    let profile = tempfile::tempdir().unwrap();
    let (_driver, port) = chromedriver(profile.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = browser(port, &profile.path().join("profile")).await;
        // Close the session even when an assertion fails, so no browser is left behind.
        let result = futures_catch(drive(&c, &s)).await;
        let _ = c.close().await;
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}

/// Runs `f`, catching a panic.
async fn futures_catch(f: impl Future<Output = ()>) -> Result<(), Box<dyn std::any::Any + Send>> {
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(())) => std::task::Poll::Ready(Ok(())),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(p) => std::task::Poll::Ready(Err(p)),
        }
    })
    .await
}
