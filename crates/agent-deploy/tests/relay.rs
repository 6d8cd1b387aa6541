//! Relay mode in process, over loopback HTTPS: one central and two remote sites
//! ([`agent_deploy::Relay`]) with the test PKI.
//!
//! The load figure (ignored by default; see BENCHMARKS.md):
//! `cargo test --release -p agent-deploy --test relay -- --ignored --nocapture`
//! Knobs: LOAD_HOSTS (10000), LOAD_CLIENTS (32), LOAD_SECS (10, capped at 60).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use agent_deploy::{Advertise, DeployStore, Limits, Relay, RelayConfig, ServerHandle};
use agent_wire::Platform;

use support::*;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tmp() -> tempfile::TempDir {
    // State on tmpfs when available, so the figures measure the servers, not the disk.
    if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

/// A remote site relaying to `central` (HTTPS, verified with the test CA).
fn remote(
    dir: &std::path::Path,
    name: &str,
    central: &TestServer,
    limits: &Limits,
) -> (Arc<Relay>, ServerHandle) {
    let state = dir.join(name);
    let mut cfg = RelayConfig::new(&central.base(), name, state.join("relay-cache"));
    cfg.central_ca = agent_deploy::pem_certificates(central.pki.ca_pem.as_bytes()).unwrap();
    let relay = Arc::new(Relay::new(cfg).unwrap());
    let store = Arc::new(
        DeployStore::open(&state, Advertise::default())
            .unwrap()
            .with_relay(Arc::clone(&relay)),
    );
    let handle = spawn_https(&store, limits.clone(), Arc::clone(&central.pki.tls));
    (relay, handle)
}

fn form(
    host: &str,
    secret: &str,
    mode: &str,
    installed: &str,
    aghash: &str,
) -> Vec<(String, String)> {
    [
        ("mode", mode),
        ("host", host),
        ("host_secret", secret),
        ("installed_aghash", installed),
        ("aghash", aghash),
        ("os", "linux_deb"),
        ("last_error", ""),
        ("au_api", "2"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn post(agent: &ureq::Agent, url: &str, form: &[(String, String)]) -> Option<String> {
    agent
        .post(url)
        .send_form(form.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .and_then(|mut r| r.body_mut().with_config().limit(64 << 20).read_to_string())
        .ok()
}

#[test]
fn a_relay_forwards_and_caches_in_process() {
    let dir = tmp();
    let limits = Limits::default();
    let central = TestServer::start_in(tmp(), limits.clone());
    let pkg = b"relay test package".to_vec();
    let signatures = sigs(&[&SigningKey::new("signature")], &pkg);
    let (relay, handle) = remote(dir.path(), "remote1", &central, &limits);
    let base = format!(
        "https://127.0.0.1:{}/{SITE}/check_mk",
        handle.local_addr().port()
    );
    let agent = https_agent(&central.pki.ca_pem);

    // Registration through the relay.
    let answer = post(
        &agent,
        &format!("{base}/register_agent.py"),
        &[
            ("host".to_owned(), "web01".to_owned()),
            ("_username".to_owned(), USER.to_owned()),
            ("_secret".to_owned(), USER_SECRET.to_owned()),
        ],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let secret = v["result"]["host_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    let hash = central
        .store
        .publish("web01", Platform::LinuxDeb, &pkg, &signatures, None)
        .unwrap();

    let url = format!("{base}/deploy_agent.py");
    let status = post(&agent, &url, &form("web01", &secret, "status", "", "")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["result"]["TargetHash"], hash.as_str(), "{status}");
    assert_eq!(
        v["result"][agent_deploy::PACKAGE_SHA256_KEY],
        agent_deploy::package_sha256(&pkg).as_str()
    );
    // Updaters asking the central directly get Checkmk's answer, without the relay's key.
    let direct = post(
        &agent,
        &format!("{}/deploy_agent.py", central.base()),
        &form("web01", &secret, "status", "", ""),
    )
    .unwrap();
    assert!(direct.contains(&hash), "{direct}");
    assert!(
        !direct.contains(agent_deploy::PACKAGE_SHA256_KEY),
        "{direct}"
    );
    for _ in 0..3 {
        let answer = post(&agent, &url, &form("web01", &secret, "agent", "", &hash)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            v["result"]["agent"],
            base64_encode(&pkg).as_str(),
            "{answer}"
        );
    }
    // A GUI login through the relay, then a registration with its session cookie.
    let no_redirects = https_config(&central.pki.ca_pem)
        .max_redirects(0)
        .build()
        .new_agent();
    let login = |password: &str| {
        no_redirects
            .post(format!("{base}/login.py"))
            .send_form([
                ("_login", "1"),
                ("_username", USER),
                ("_password", password),
            ])
            .unwrap()
    };
    let resp = login(USER_SECRET);
    assert_eq!(resp.status(), 302);
    let cookie: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    assert_eq!(cookie.len(), 1, "{cookie:?}");
    let mut resp = no_redirects
        .post(format!("{base}/register_agent.py"))
        .header("cookie", &cookie[0])
        .send_form([("host", "db02")])
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        v["result"]["host_secret"].as_str().unwrap().len(),
        64,
        "{v}"
    );
    // A wrong password gets the central's login page, and no cookie.
    let mut resp = login("wrong");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp.body_mut().read_to_string().unwrap().contains("_login"));
    // An unknown session: the login page again (the updater reports "Cannot authenticate").
    let mut resp = no_redirects
        .post(format!("{base}/register_agent.py"))
        .header("cookie", "auth_mysite=expired")
        .send_form([("host", "db02")])
        .unwrap();
    assert!(resp.body_mut().read_to_string().unwrap().contains("_login"));

    let stats = relay.stats();
    assert_eq!(
        (stats.central_downloads, stats.cache_hits),
        (1, 2),
        "{stats:?}"
    );
    // A wrong host secret is the central's business: refused, and the cache is not offered.
    let answer = post(
        &agent,
        &url,
        &form("web01", &"x".repeat(64), "agent", "", &hash),
    )
    .unwrap();
    assert!(answer.contains("\"result_code\":1"), "{answer}");
    assert_eq!(relay.stats().cache_hits, 2);
}

/// A relay set up as `agent-deploy serve --site-root` sets it up, with the site's trust store
/// holding `trusted_pem`, forwards a registration to `central`: the answer's result, or its
/// refusal text.
fn register_through_site_relay(
    dir: &std::path::Path,
    central: &TestServer,
    trusted_pem: &str,
) -> Result<serde_json::Value, String> {
    let site_root = dir.join("site");
    let store_file = site_root.join(agent_deploy::SITE_TRUST_STORE);
    std::fs::create_dir_all(store_file.parent().unwrap()).unwrap();
    std::fs::write(&store_file, trusted_pem).unwrap();
    let settings = agent_deploy::SiteRelaySettings {
        central_url: Some(central.base()),
        ..agent_deploy::SiteRelaySettings::default()
    }
    .with_trust_store(&site_root)
    .unwrap();
    let state = dir.join("state");
    let cfg = RelayConfig::for_site(
        "remote1",
        &state,
        &settings,
        agent_deploy::RelayOverrides::default(),
    )
    .unwrap()
    .unwrap();
    let relay = Arc::new(Relay::new(cfg).unwrap());
    let store = Arc::new(
        DeployStore::open(&state, Advertise::default())
            .unwrap()
            .with_relay(relay),
    );
    let pki = TestPki::new("remote");
    let handle = spawn_https(&store, Limits::default(), Arc::clone(&pki.tls));
    let url = format!(
        "https://127.0.0.1:{}/{SITE}/check_mk/register_agent.py",
        handle.local_addr().port()
    );
    let answer = post(
        &https_agent(&pki.ca_pem),
        &url,
        &[
            ("host".to_owned(), "web01".to_owned()),
            ("_username".to_owned(), USER.to_owned()),
            ("_secret".to_owned(), USER_SECRET.to_owned()),
        ],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    match v["result_code"].as_i64() {
        Some(0) => Ok(v["result"].clone()),
        _ => Err(v["result"].as_str().unwrap_or_default().to_owned()),
    }
}

#[test]
fn a_relay_verifies_the_central_with_the_sites_trust_store() {
    let central = TestServer::start_in(tmp(), Limits::default());
    let stranger = TestPki::new("stranger");

    // The site trusts the central's CA (among others): the registration goes through.
    let dir = tmp();
    let bundle = format!("{}{}", stranger.ca_pem, central.pki.ca_pem);
    let result = register_through_site_relay(dir.path(), &central, &bundle).unwrap();
    assert_eq!(result["host_secret"].as_str().unwrap().len(), 64);

    // The site trusts only another CA: the central's certificate is refused.
    let dir = tmp();
    let refusal = register_through_site_relay(dir.path(), &central, &stranger.ca_pem).unwrap_err();
    assert!(
        refusal.contains("unreachable") && refusal.contains("UnknownIssuer"),
        "{refusal}"
    );
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
#[ignore = "load test: run explicitly, see BENCHMARKS.md"]
fn load_10000_hosts_through_two_remotes() {
    let hosts = env_or("LOAD_HOSTS", 10_000);
    let clients = env_or("LOAD_CLIENTS", 32);
    let secs = env_or("LOAD_SECS", 10).min(60) as u64;
    let dir = tmp();
    let limits = Limits {
        flush_interval: Duration::from_secs(5),
        ..Limits::default()
    };
    let central = TestServer::start_in(tmp(), limits.clone());
    let t = Instant::now();
    // One signed package (one (platform, aghash)), published for every tenth host (as in the
    // central's own load test: publishing appends to the signing log).
    let pkg: Vec<u8> = (0..32 * 1024u32).map(|i| (i % 251) as u8).collect();
    let signatures = sigs(&[&SigningKey::new("signature")], &pkg);
    let mut secrets = Vec::with_capacity(hosts);
    let mut hash = String::new();
    for i in 0..hosts {
        let host = format!("host{i:05}");
        let secret = central
            .store
            .register(&register_form(&host, USER_SECRET), SystemTime::now())
            .unwrap()
            .host_secret;
        let published = i % 10 == 0;
        if published {
            hash = central
                .store
                .publish(&host, Platform::LinuxDeb, &pkg, &signatures, None)
                .unwrap();
        }
        secrets.push((host, secret, published));
    }
    eprintln!(
        "setup: {hosts} hosts registered, every tenth with a package, in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let (relay_a, handle_a) = remote(dir.path(), "remote1", &central, &limits);
    let (relay_b, handle_b) = remote(dir.path(), "remote2", &central, &limits);
    let urls: Arc<Vec<String>> = Arc::new(
        [&handle_a, &handle_b]
            .iter()
            .map(|h| {
                format!(
                    "https://127.0.0.1:{}/{SITE}/check_mk/deploy_agent.py",
                    h.local_addr().port()
                )
            })
            .collect(),
    );
    let secrets = Arc::new(secrets);
    let hash = Arc::new(hash);
    let errors = Arc::new(Mutex::new(0usize));

    // Phase 1: every host checks its status and downloads the package through its remote
    // (hosts 0–9 through remote1, 10–19 through remote2, and so on).
    let t = Instant::now();
    let mut threads = Vec::new();
    for c in 0..clients {
        let (secrets, urls, hash, errors) = (
            Arc::clone(&secrets),
            Arc::clone(&urls),
            Arc::clone(&hash),
            Arc::clone(&errors),
        );
        let agent = https_agent(&central.pki.ca_pem);
        threads.push(std::thread::spawn(move || {
            let mut i = c;
            while i < secrets.len() {
                let (host, secret, published) = &secrets[i];
                let url = &urls[(i / 10) % 2];
                let ok = if *published {
                    post(&agent, url, &form(host, secret, "status", "", ""))
                        .is_some_and(|b| b.contains(hash.as_str()))
                        && post(&agent, url, &form(host, secret, "agent", "", &hash))
                            .is_some_and(|b| b.starts_with("{\"result_code\": 0"))
                } else {
                    post(&agent, url, &form(host, secret, "status", "", ""))
                        .is_some_and(|b| b.starts_with("{\"result_code\":0"))
                };
                if !ok {
                    *errors.lock().unwrap() += 1;
                }
                i += clients;
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let downloads_secs = t.elapsed().as_secs_f64();
    let after_downloads = (relay_a.stats(), relay_b.stats());

    // Phase 2: polling (status checks of hosts that run the target) for `secs` seconds.
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let started = Instant::now();
    let mut threads = Vec::new();
    for c in 0..clients {
        let (secrets, urls, hash, stop, latencies, errors) = (
            Arc::clone(&secrets),
            Arc::clone(&urls),
            Arc::clone(&hash),
            Arc::clone(&stop),
            Arc::clone(&latencies),
            Arc::clone(&errors),
        );
        let agent = https_agent(&central.pki.ca_pem);
        threads.push(std::thread::spawn(move || {
            let mut mine = Vec::new();
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let (host, secret, published) = &secrets[i % secrets.len()];
                let url = &urls[(i % secrets.len() / 10) % 2];
                i += clients;
                let installed = if *published { hash.as_str() } else { "" };
                let t = Instant::now();
                match post(&agent, url, &form(host, secret, "status", installed, "")) {
                    Some(b) if b.starts_with("{\"result_code\":0") => {
                        mine.push(t.elapsed().as_micros() as u32)
                    }
                    _ => *errors.lock().unwrap() += 1,
                }
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap());
    lat.sort_unstable();
    let n = lat.len();
    assert!(n > 0, "no successful requests");
    let pct = |p: f64| f64::from(lat[((n as f64 * p) as usize).min(n - 1)]) / 1000.0;
    let errors = *errors.lock().unwrap();
    let (a, b) = (relay_a.stats(), relay_b.stats());
    let hits = after_downloads.0.cache_hits + after_downloads.1.cache_hits;
    let misses = after_downloads.0.cache_misses + after_downloads.1.cache_misses;
    eprintln!(
        "relay load: {hosts} hosts, 2 remotes, {clients} keep-alive TLS clients.\n  \
         first round: {hosts} status checks and {} downloads in {downloads_secs:.1}s; cache hits {hits}, misses {misses} \
         (hit rate {:.2}%); package downloads at the central {} + {} = {}; package size {} bytes\n  \
         polling: {elapsed:.1}s, {n} status checks, {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {errors}\n  \
         at the central (whole run): {} requests, {} answer bytes (remote1 {} req / {} B, remote2 {} req / {} B)",
        hosts.div_ceil(10),
        100.0 * hits as f64 / (hits + misses).max(1) as f64,
        a.central_downloads,
        b.central_downloads,
        a.central_downloads + b.central_downloads,
        pkg.len(),
        n as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(1.0),
        a.central_requests + b.central_requests,
        a.central_bytes + b.central_bytes,
        a.central_requests,
        a.central_bytes,
        b.central_requests,
        b.central_bytes,
    );
    assert_eq!(errors, 0);
    // Each package's bytes crossed each central→remote link once.
    assert_eq!((a.central_downloads, b.central_downloads), (1, 1));
    drop((handle_a, handle_b));
}
