//! Bounded load test on loopback (ignored by default; see BENCHMARKS.md):
//! 10,000 registered hosts polling `deploy_agent.py mode=status` over HTTPS.
//!
//! `cargo test -p agent-deploy --test agent_deploy -- --ignored load --nocapture`
//! Knobs: LOAD_HOSTS (10000), LOAD_CLIENTS (32), LOAD_SECS (10, capped at 60).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use agent_deploy::Limits;
use agent_wire::Platform;

use crate::support::*;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "load test: run explicitly, see BENCHMARKS.md"]
fn load_10000_hosts_polling() {
    let hosts = env_or("LOAD_HOSTS", 10_000);
    let clients = env_or("LOAD_CLIENTS", 32);
    let secs = env_or("LOAD_SECS", 10).min(60) as u64;
    let rss_start = rss_kib();

    // State on tmpfs when available, so the figures measure the server, not the disk.
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let limits = Limits {
        flush_interval: Duration::from_secs(5),
        ..Limits::default()
    };
    let mut srv = TestServer::start_in(dir, limits);
    let store = Arc::clone(&srv.store);
    let t = Instant::now();
    // One signed package, published for every tenth host.
    let pkg = b"agent package for the load test".to_vec();
    let signatures = sigs(&[&SigningKey::new("signature")], &pkg);
    let mut secrets = Vec::with_capacity(hosts);
    for i in 0..hosts {
        let host = format!("host{i:05}");
        let secret = store
            .register(&register_form(&host, USER_SECRET), SystemTime::now())
            .unwrap()
            .host_secret;
        if i % 10 == 0 {
            store
                .publish(&host, Platform::LinuxDeb, &pkg, &signatures, None)
                .unwrap();
        }
        secrets.push((host, secret));
    }
    eprintln!(
        "setup: {hosts} hosts registered in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let url = format!("{}/deploy_agent.py", srv.base());
    let rss_ready = rss_kib();

    let secrets = Arc::new(secrets);
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let errors = Arc::new(Mutex::new(0usize));
    let started = Instant::now();
    let mut threads = Vec::new();
    for c in 0..clients {
        let (secrets, stop, latencies, errors, url) = (
            Arc::clone(&secrets),
            Arc::clone(&stop),
            Arc::clone(&latencies),
            Arc::clone(&errors),
            url.clone(),
        );
        let agent = https_agent(&srv.pki.ca_pem);
        threads.push(std::thread::spawn(move || {
            let mut mine = Vec::new();
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let (host, secret) = &secrets[i % secrets.len()];
                i += clients;
                let t = Instant::now();
                let res = agent
                    .post(&url)
                    .send_form([
                        ("mode", "status"),
                        ("host", host.as_str()),
                        ("host_secret", secret.as_str()),
                        ("installed_aghash", ""),
                        ("aghash", ""),
                        ("os", "linux_deb"),
                        ("last_error", ""),
                        ("au_api", "2"),
                    ])
                    .and_then(|mut r| r.body_mut().read_to_string());
                match res {
                    Ok(body) if body.starts_with("{\"result_code\":0") => {
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
    let rss_peak = rss_kib();
    srv.handle.take().unwrap().shutdown().unwrap();

    let mut lat = std::mem::take(&mut *latencies.lock().unwrap());
    lat.sort_unstable();
    let n = lat.len();
    assert!(n > 0, "no successful requests");
    let pct = |p: f64| f64::from(lat[((n as f64 * p) as usize).min(n - 1)]) / 1000.0;
    let errors = *errors.lock().unwrap();
    eprintln!(
        "load: {hosts} hosts, {clients} keep-alive TLS clients, {elapsed:.1}s: {n} status checks, {:.0} req/s, \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {errors}; RSS (server + load generator, one process) \
         start {} MiB, after setup {} MiB, end {} MiB",
        n as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(1.0),
        rss_start / 1024,
        rss_ready / 1024,
        rss_peak / 1024
    );
    assert_eq!(errors, 0);
    // Every host that was polled has a status file after shutdown.
    assert_eq!(
        store
            .statuses()
            .iter()
            .filter(|s| s.last_contact.is_some())
            .count(),
        hosts.min(n)
    );
}
