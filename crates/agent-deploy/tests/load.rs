//! Bounded load tests on loopback (ignored by default; see BENCHMARKS.md): 10,000 registered
//! hosts polling `deploy_agent.py mode=status` over HTTPS, over kept-alive connections
//! (`load_10000_hosts_polling`) and with a fresh TLS handshake per check, as real updaters
//! do (`load_fresh_handshake_status_checks`).
//!
//! `cargo test -p agent-deploy --test agent_deploy -- --ignored load --nocapture --test-threads 1`
//! Knobs: LOAD_HOSTS (10000), LOAD_CLIENTS (32; 16 for fresh handshakes), LOAD_SECS (10, capped
//! at 60); fresh handshakes only: LOAD_KEY (`p256` or `rsa2048`, the server's key),
//! LOAD_TLS (`1.3` or `1.2`), LOAD_WORKERS (2, the server's worker threads).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use agent_deploy::{Advertise, DeployStore, Limits, ServerOptions};
use agent_wire::Platform;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::CertificateDer;

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

/// The state directory, on tmpfs when available, so the figures measure the server, not the
/// disk.
fn state_dir() -> tempfile::TempDir {
    if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

/// Registers `hosts` hosts (`host00000`...) and publishes one signed package for every tenth;
/// returns each host with its secret.
fn register_hosts(store: &DeployStore, hosts: usize) -> Vec<(String, String)> {
    let t = Instant::now();
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
    secrets
}

/// Latency percentile `p` (0..=1) of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u32], p: f64) -> f64 {
    let n = sorted.len();
    f64::from(sorted[((n as f64 * p) as usize).min(n - 1)]) / 1000.0
}

#[test]
#[ignore = "load test: run explicitly, see BENCHMARKS.md"]
fn load_10000_hosts_polling() {
    let hosts = env_or("LOAD_HOSTS", 10_000);
    let clients = env_or("LOAD_CLIENTS", 32);
    let secs = env_or("LOAD_SECS", 10).min(60) as u64;
    let rss_start = rss_kib();

    let dir = state_dir();
    let limits = Limits {
        flush_interval: Duration::from_secs(5),
        ..Limits::default()
    };
    let mut srv = TestServer::start_in(dir, limits);
    let store = Arc::clone(&srv.store);
    let secrets = register_hosts(&store, hosts);
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
    let pct = |p: f64| percentile(&lat, p);
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

/// A CA and a server certificate for 127.0.0.1 with the key `LOAD_KEY` names: a new ECDSA
/// P-256 key (`p256`), or agent-sign's RSA-2048 fixture (`rsa2048`; ring cannot generate RSA).
fn server_pki(key: &str) -> (Arc<rustls::ServerConfig>, CertificateDer<'static>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "load test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = match key {
        "p256" => KeyPair::generate().unwrap(),
        "rsa2048" => KeyPair::from_pem(include_str!(
            "../../agent-sign/tests/data/plain-rsa.key.pem"
        ))
        .unwrap(),
        other => panic!("LOAD_KEY={other}: p256 or rsa2048"),
    };
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let der = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let tls = agent_deploy::tls_config(vec![leaf_cert.der().clone(), ca_cert.der().clone()], der)
        .unwrap();
    (tls, ca_cert.der().clone())
}

/// CPU time (ns) of each of this process's threads whose name starts with `prefix`.
fn thread_cpu_ns(prefix: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let ns = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        out.insert(task.file_name().to_string_lossy().into_owned(), ns);
    }
    out
}

/// CPU time (ns) of the calling thread.
fn own_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One status check on a new TCP connection with a full TLS handshake (no resumption, as a
/// new updater process has none), `Connection: close`; the answer must be `result_code` 0.
fn fresh_status_check(
    config: &Arc<rustls::ClientConfig>,
    addr: std::net::SocketAddr,
    body: &str,
) -> Result<(), String> {
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    let sock = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    write!(
        tls,
        "POST /{SITE}/check_mk/deploy_agent.py HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    // The server closes after the answer; an EOF without close_notify after a complete
    // answer is not this test's concern.
    let _ = tls.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    if text.starts_with("HTTP/1.1 200") && text.contains("\r\n\r\n{\"result_code\":0") {
        Ok(())
    } else {
        Err(text.chars().take(200).collect())
    }
}

#[test]
#[ignore = "load test: run explicitly, see BENCHMARKS.md"]
fn load_fresh_handshake_status_checks() {
    let hosts = env_or("LOAD_HOSTS", 10_000);
    let clients = env_or("LOAD_CLIENTS", 16);
    let secs = env_or("LOAD_SECS", 10).min(60) as u64;
    let workers = env_or("LOAD_WORKERS", 2);
    let key = std::env::var("LOAD_KEY").unwrap_or_else(|_| "p256".into());
    let tls_version = std::env::var("LOAD_TLS").unwrap_or_else(|_| "1.3".into());

    let dir = state_dir();
    DeployStore::set_user(dir.path(), USER, USER_SECRET, 1000).unwrap();
    let store = Arc::new(DeployStore::open(dir.path(), Advertise::default()).unwrap());
    let secrets = Arc::new(register_hosts(&store, hosts));
    let (mut server_tls, ca) = server_pki(&key);
    if let Some(tickets) = std::env::var("LOAD_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Arc::make_mut(&mut server_tls).send_tls13_tickets = tickets;
    }
    let tickets = server_tls.send_tls13_tickets;
    let options = ServerOptions {
        site: SITE.into(),
        limits: Limits {
            flush_interval: Duration::from_secs(5),
            ..Limits::default()
        },
        tls: Some(server_tls),
    };
    let handle = agent_deploy::spawn(
        Arc::clone(&store),
        options,
        "127.0.0.1:0".parse().unwrap(),
        workers,
    )
    .unwrap();
    let addr = handle.local_addr();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] = match tls_version.as_str() {
        "1.3" => &[&rustls::version::TLS13],
        "1.2" => &[&rustls::version::TLS12],
        other => panic!("LOAD_TLS={other}: 1.3 or 1.2"),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = rustls::client::Resumption::disabled();
    let client = Arc::new(client);

    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let server_before = thread_cpu_ns("agent-deploy");
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let client_cpu_ns = Arc::new(Mutex::new(0u64));
    let started = Instant::now();
    let mut threads = Vec::new();
    for c in 0..clients {
        let (secrets, stop, latencies, errors, client_cpu_ns, client) = (
            Arc::clone(&secrets),
            Arc::clone(&stop),
            Arc::clone(&latencies),
            Arc::clone(&errors),
            Arc::clone(&client_cpu_ns),
            Arc::clone(&client),
        );
        let thread = std::thread::Builder::new()
            .name(format!("load-client-{c}"))
            .spawn(move || {
                let cpu_start = own_cpu_ns();
                let mut mine = Vec::new();
                let mut failed = Vec::new();
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let (host, secret) = &secrets[i % secrets.len()];
                    i += clients;
                    let body = format!(
                        "mode=status&host={host}&host_secret={secret}&installed_aghash=&aghash=\
                         &os=linux_deb&last_error=&au_api=2"
                    );
                    let t = Instant::now();
                    match fresh_status_check(&client, addr, &body) {
                        Ok(()) => mine.push(t.elapsed().as_micros() as u32),
                        Err(e) => failed.push(e),
                    }
                }
                *client_cpu_ns.lock().unwrap() += own_cpu_ns() - cpu_start;
                latencies.lock().unwrap().extend(mine);
                errors.lock().unwrap().extend(failed);
            })
            .unwrap();
        threads.push(thread);
    }
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    // Read the server's CPU time before its idle blocking threads may end.
    let server_after = thread_cpu_ns("agent-deploy");
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    handle.shutdown().unwrap();

    let server_ns: u64 = server_after
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(server_before.get(tid).copied().unwrap_or(0)))
        .sum();
    let client_ns = *client_cpu_ns.lock().unwrap();
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap());
    lat.sort_unstable();
    let n = lat.len();
    assert!(n > 0, "no successful requests");
    let errors = std::mem::take(&mut *errors.lock().unwrap());
    let per_check_ms = |ns: u64| ns as f64 / 1e6 / n as f64;
    let rate = n as f64 / elapsed;
    eprintln!(
        "fresh handshakes: {hosts} hosts, {clients} clients, server key {key}, TLS {tls_version} \
         ({tickets} session tickets), {workers} workers, {elapsed:.1}s: {n} status checks, {rate:.0} req/s, p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms, errors {}; CPU per check: server {:.3} ms, client {:.3} ms \
         (server alone on 2 cores: ~{:.0} req/s); load average before: {}",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
        errors.len(),
        per_check_ms(server_ns),
        per_check_ms(client_ns),
        2000.0 / per_check_ms(server_ns),
        loadavg.trim()
    );
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
}
