//! Hostile clients against a real `agent-deploy serve` process on loopback (HTTPS): slowloris,
//! idle connections beyond the connection limit, an oversized body, a header flood, TLS
//! garbage, clients that never read their download, and a valid secret used for other hosts
//! at a high rate. Meanwhile a well-behaved updater (a new TLS connection per status check)
//! must keep getting answers quickly, the server's peak RSS (`VmHWM`) stays bounded, and no
//! refused request changes any host's state on disk.
//!
//! The always-run test is small (about 30 s); the full-size one (10,000 idle connections,
//! and the server's own timeouts ending slowloris and stalled downloads) is ignored:
//! `cargo test -p agent-deploy-cli --test hostile -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use agent_deploy::{Advertise, DeployStore};
use agent_wire::{DeployForm, DeployMode, Platform, RegisterForm};

mod support {
    pub(crate) mod server;
    pub(crate) mod tls;
}
use support::server::{drain, spawn_listening};
use support::tls::write_tls_files;

const BIN: &str = env!("CARGO_BIN_EXE_agent-deploy");
const SITE: &str = "mysite";
const USER: &str = "automation";
const USER_SECRET: &str = "s3cret-s3cret";
/// The well-behaved client's bound (issue 16), held by the full run.
const P99_LIMIT_MS: f64 = 50.0;
/// The always-run size shares the machine with the rest of the suite, so it checks that
/// well-behaved clients are not locked out (before the fix: 11.3 s) rather than a latency
/// target, which is a figure for the full run and BENCHMARKS.md.
const P99_LOCKOUT_MS: f64 = 5000.0;

/// Sizes of one run.
struct Size {
    max_connections: usize,
    phase: Duration,
    slowloris: usize,
    idle: usize,
    idle_phase: Duration,
    stalled_downloads: usize,
    package_bytes: usize,
    /// Wait long enough for the server's own timeouts (30 s) to end slowloris and stalls.
    wait_for_timeouts: bool,
}

/// A running `agent-deploy serve`.
struct Server {
    child: Child,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    ca_pem: String,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, page: &str) -> String {
        format!("https://{}/{SITE}/check_mk/{page}", self.addr)
    }

    /// A TCP connection with a completed TLS handshake.
    fn tls(&self) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(Arc::clone(&self.tls), name).unwrap();
        let sock = TcpStream::connect(self.addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        tls
    }

    /// SIGTERM; the server must stop cleanly (writing its pending status).
    fn stop(mut self) {
        let kill = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(kill.success());
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hosts' secrets.
struct Hosts {
    good: String,
    downloader: String,
    /// The hash of the downloader's package.
    package_hash: String,
}

fn register_form(host: &str) -> RegisterForm {
    RegisterForm {
        host: host.into(),
        username: USER.into(),
        secret: USER_SECRET.into(),
        au_api: "2".into(),
    }
}

fn status_form(host: &str, secret: &str, installed: &str) -> DeployForm {
    DeployForm {
        mode: DeployMode::Status,
        host: host.into(),
        host_secret: secret.into(),
        installed_aghash: installed.into(),
        aghash: String::new(),
        os: "linux_deb".into(),
        last_error: String::new(),
        au_api: "2".into(),
    }
}

/// State with four registered hosts: `good` (the well-behaved client), `downloader` (a
/// package to download), `victim` and `bystander` (in contact once, never again: their state
/// must not change).
fn prepare_state(state: &Path, package_bytes: usize) -> Hosts {
    DeployStore::set_user(state, USER, USER_SECRET, 1000).unwrap();
    let store = DeployStore::open(state, Advertise::default()).unwrap();
    let now = SystemTime::now();
    let secret = |host: &str| {
        store
            .register(&register_form(host), now)
            .unwrap()
            .host_secret
    };
    let good = secret("good");
    let downloader = secret("downloader");
    let victim = secret("victim");
    let bystander = secret("bystander");
    let package: Vec<u8> = (0..package_bytes).map(|i| (i * 7 % 251) as u8).collect();
    let package_hash = store
        .publish("downloader", Platform::LinuxDeb, &package, &[], None)
        .unwrap();
    store
        .publish("victim", Platform::LinuxDeb, b"victim's package", &[], None)
        .unwrap();
    for (host, secret) in [("victim", &victim), ("bystander", &bystander)] {
        store
            .deploy(&status_form(host, secret, "0123456789abcdef"), now)
            .unwrap();
    }
    store.flush().unwrap();
    Hosts {
        good,
        downloader,
        package_hash,
    }
}

fn start(dir: &Path, state: &Path, max_connections: usize) -> Server {
    let files = write_tls_files(dir);
    let (child, stderr, addr) = spawn_listening(
        Command::new(BIN)
            .arg("--dir")
            .arg(state)
            .args(["serve", "--site", SITE, "--listen", "127.0.0.1:0"])
            .arg("--cert")
            .arg(&files.cert)
            .arg("--key")
            .arg(&files.key)
            .args(["--max-connections", &max_connections.to_string()]),
    );
    drain(stderr);
    let addr = addr.parse().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls_pki_types::pem::PemObject::from_pem_slice(files.ca_pem.as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Server {
        child,
        addr,
        tls: Arc::new(tls),
        ca_pem: files.ca_pem,
    }
}

/// `VmHWM` (peak resident set) of `pid` in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0); false where that is not allowed.
fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// An HTTPS client that opens a new connection per request, like an updater run.
fn updater_agent(ca_pem: &str) -> ureq::Agent {
    let ca = ureq::tls::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .proxy(None)
        .max_idle_connections(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent()
}

fn post_status(agent: &ureq::Agent, url: &str, host: &str, secret: &str, mode: &str) -> String {
    agent
        .post(url)
        .send_form([
            ("mode", mode),
            ("host", host),
            ("host_secret", secret),
            ("installed_aghash", ""),
            ("aghash", ""),
            ("os", "linux_deb"),
            ("last_error", ""),
            ("au_api", "2"),
        ])
        .and_then(|mut r| r.body_mut().read_to_string())
        .unwrap_or_else(|e| format!("error: {e}"))
}

/// One line of the table.
struct Row {
    attack: &'static str,
    p99_ms: f64,
    max_ms: f64,
    checks: usize,
    failures: usize,
    peak_rss_mib: f64,
    outcome: String,
}

/// Runs `attack` (given a stop flag; it returns its outcome) while the well-behaved client
/// polls every 20 ms for `duration`. What `run` does before it returns (e.g. opening the
/// attack's connections) is not measured; what its thread does is.
fn phase(
    srv: &Server,
    hosts: &Hosts,
    attack: &'static str,
    duration: Duration,
    run: impl FnOnce(Arc<AtomicBool>) -> JoinHandle<String>,
) -> Row {
    let hwm_reset = reset_peak_rss(srv.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = run(Arc::clone(&stop));
    // Let the attack build up before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let agent = updater_agent(&srv.ca_pem);
    let url = srv.url("deploy_agent.py");
    let mut latencies = Vec::new();
    let mut failures = 0;
    let started = Instant::now();
    while started.elapsed() < duration {
        let t = Instant::now();
        let body = post_status(&agent, &url, "good", &hosts.good, "status");
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if body.starts_with("{\"result_code\":0") {
            latencies.push(ms);
        } else {
            failures += 1;
            eprintln!("{attack}: well-behaved request failed after {ms:.0} ms: {body}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let outcome = attacker.join().unwrap();
    latencies.sort_by(f64::total_cmp);
    let n = latencies.len();
    let pct = |p: f64| latencies[((n as f64 * p) as usize).min(n.max(1) - 1)];
    let row = Row {
        attack,
        p99_ms: if n > 0 { pct(0.99) } else { f64::INFINITY },
        max_ms: if n > 0 { pct(1.0) } else { f64::INFINITY },
        checks: n,
        failures,
        peak_rss_mib: peak_rss_kib(srv.pid()) as f64 / 1024.0,
        outcome: if hwm_reset {
            outcome
        } else {
            format!("{outcome} (VmHWM not resettable: peak since start)")
        },
    };
    eprintln!(
        "| {} | {:.1} ms (max {:.1}, {} checks, {} failed) | {:.1} MiB | {} |",
        row.attack, row.p99_ms, row.max_ms, row.checks, row.failures, row.peak_rss_mib, row.outcome
    );
    row
}

/// Spawns `threads` attacker threads running `each(stop)`; the outcome sums their counts.
fn attackers(
    threads: usize,
    stop: &Arc<AtomicBool>,
    each: impl Fn(&AtomicBool) -> (usize, usize) + Send + Sync + 'static,
    describe: impl FnOnce(usize, usize) -> String + Send + 'static,
) -> JoinHandle<String> {
    let each = Arc::new(each);
    let stop = Arc::clone(stop);
    std::thread::spawn(move || {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (each, stop) = (Arc::clone(&each), Arc::clone(&stop));
                std::thread::spawn(move || each(&stop))
            })
            .collect();
        let (mut a, mut b) = (0, 0);
        for h in handles {
            let (x, y) = h.join().unwrap();
            a += x;
            b += y;
        }
        describe(a, b)
    })
}

/// Reads an HTTP answer's status line (or what ended the connection).
fn status_line(r: &mut impl std::io::Read) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while buf.len() < 200 {
        match r.read(&mut byte) {
            Ok(1) if byte[0] != b'\r' && byte[0] != b'\n' => buf.push(byte[0]),
            Ok(1) => break,
            Ok(_) => return "closed".into(),
            Err(e) => return format!("error: {}", e.kind()),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Reads an answer's head: the status line and the `Content-Length`.
fn head(r: &mut impl std::io::Read) -> (String, usize) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 8192 {
        if r.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let length = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (text.lines().next().unwrap_or("").to_owned(), length)
}

/// True when the server has closed `sock` (EOF or reset), without blocking.
fn closed_by_server(sock: &TcpStream) -> bool {
    sock.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let closed = match sock.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    sock.set_nonblocking(false).unwrap();
    closed
}

fn run_attacks(size: &Size) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let hosts = prepare_state(&state, size.package_bytes);
    let before = testkit::file_snapshot(&state);
    let srv = Arc::new(start(dir.path(), &state, size.max_connections));
    let mut rows = Vec::new();
    let phase_len = size.phase;

    rows.push(phase(&srv, &hosts, "none (baseline)", phase_len, |stop| {
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
            }
            "-".into()
        })
    }));

    // Slowloris: TLS done, then request headers one byte a second, never finished.
    let slow_len = if size.wait_for_timeouts {
        Duration::from_secs(36)
    } else {
        phase_len
    };
    let s = Arc::clone(&srv);
    let n = size.slowloris;
    let wait = size.wait_for_timeouts;
    rows.push(phase(
        &srv,
        &hosts,
        "slowloris (headers 1 byte/s)",
        slow_len,
        move |stop| {
            let mut conns: Vec<_> = (0..n).map(|_| Some(s.tls())).collect();
            std::thread::spawn(move || {
                let head = b"POST /mysite/check_mk/deploy_agent.py HTTP/1.1\r\nHost: x\r\nX-Slow: ";
                let started = Instant::now();
                let mut i = 0;
                let mut closed_after = None;
                while !stop.load(Ordering::Relaxed) {
                    let byte = head.get(i).copied().unwrap_or(b'a');
                    i += 1;
                    for c in conns.iter_mut() {
                        let ok = c
                            .as_mut()
                            .is_some_and(|t| t.write_all(&[byte]).and_then(|()| t.flush()).is_ok());
                        if !ok && c.take().is_some() {
                            closed_after = Some(started.elapsed());
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                let open = conns
                    .iter()
                    .flatten()
                    .filter(|t| !closed_by_server(&t.sock))
                    .count();
                if wait {
                    assert_eq!(open, 0, "slowloris connections still open after 36 s");
                }
                format!(
                    "{n} connections, {i} bytes each sent; {} closed by the server{}",
                    n - open,
                    closed_after.map_or(String::new(), |d| format!(
                        " (last after {:.0} s)",
                        d.as_secs_f64()
                    ))
                )
            })
        },
    ));

    // Idle TCP connections (no TLS handshake), more than the connection limit.
    let s = Arc::clone(&srv);
    let n = size.idle;
    let max = size.max_connections;
    rows.push(phase(&srv, &hosts, "idle connections", size.idle_phase, move |stop| {
        std::thread::spawn(move || {
            let t = Instant::now();
            // Eight connecting threads: a connect whose SYN meets a TIME_WAIT socket of an
            // earlier phase waits a second for its retransmission.
            let openers: Vec<_> = (0..8)
                .map(|_| {
                    let addr = s.addr;
                    std::thread::spawn(move || {
                        let results: Vec<_> = (0..n / 8).map(|_| TcpStream::connect(addr)).collect();
                        results
                    })
                })
                .collect();
            let mut socks = Vec::with_capacity(n);
            let mut failed = 0;
            for o in openers {
                for r in o.join().unwrap() {
                    match r {
                        Ok(c) => socks.push(c),
                        Err(_) => failed += 1,
                    }
                }
            }
            let opened = t.elapsed();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let closed = socks.iter().filter(|c| closed_by_server(c)).count();
            assert!(
                n <= max || closed > 0,
                "the server closed none of {n} idle connections beyond its limit {max}"
            );
            format!(
                "{} opened in {:.1} s ({failed} refused), limit {max}: {closed} closed by the server",
                socks.len(),
                opened.as_secs_f64()
            )
        })
    }));

    // Oversized bodies: Content-Length 1 GiB, and chunked without end.
    let s = Arc::clone(&srv);
    rows.push(phase(&srv, &hosts, "oversized body (1 GiB, chunked)", phase_len, move |stop| {
        attackers(
            2,
            &stop,
            move |stop| {
                let (mut refused, mut other) = (0, 0);
                let mut chunked = false;
                while !stop.load(Ordering::Relaxed) {
                    chunked = !chunked;
                    let mut t = s.tls();
                    let framing = if chunked {
                        "Transfer-Encoding: chunked\r\n".to_owned()
                    } else {
                        "Content-Length: 1073741824\r\n".to_owned()
                    };
                    let _ = write!(
                        t,
                        "POST /mysite/check_mk/deploy_agent.py HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n{framing}\r\n"
                    );
                    let chunk = vec![b'a'; 8192];
                    // 64 KiB sent, four times the limit; the server must answer 413 or close.
                    for _ in 0..8 {
                        let r = if chunked {
                            write!(t, "2000\r\n").and_then(|()| t.write_all(&chunk)).and_then(|()| write!(t, "\r\n"))
                        } else {
                            t.write_all(&chunk)
                        };
                        if r.and_then(|()| t.flush()).is_err() {
                            break;
                        }
                    }
                    let line = status_line(&mut t);
                    if line.starts_with("HTTP/1.1 413") {
                        refused += 1;
                    } else {
                        other += 1;
                        assert!(!line.starts_with("HTTP/1.1 2"), "{line}");
                    }
                }
                (refused, other)
            },
            |refused, other| format!("{refused} answered 413, {other} closed or reset before the answer was read"),
        )
    }));

    // Header floods: 1,000 small headers, and one 1 MiB header.
    let s = Arc::clone(&srv);
    rows.push(phase(
        &srv,
        &hosts,
        "header flood",
        phase_len,
        move |stop| {
            attackers(
                2,
                &stop,
                move |stop| {
                    let (mut refused, mut other) = (0, 0);
                    let mut many = false;
                    while !stop.load(Ordering::Relaxed) {
                        many = !many;
                        let mut t = s.tls();
                        let mut req = String::from(
                            "POST /mysite/check_mk/deploy_agent.py HTTP/1.1\r\nHost: x\r\n",
                        );
                        if many {
                            for i in 0..1000 {
                                req.push_str(&format!("X-Flood-{i}: {i}\r\n"));
                            }
                        } else {
                            req.push_str(&format!("X-Big: {}\r\n", "b".repeat(1 << 20)));
                        }
                        req.push_str("\r\n");
                        let _ = t.write_all(req.as_bytes()).and_then(|()| t.flush());
                        let line = status_line(&mut t);
                        if line.starts_with("HTTP/1.1 431") {
                            refused += 1;
                        } else {
                            other += 1;
                            assert!(!line.starts_with("HTTP/1.1 2"), "{line}");
                        }
                    }
                    (refused, other)
                },
                |refused, other| format!("{refused} answered 431, {other} closed or reset"),
            )
        },
    ));

    // TLS garbage: a handshake record of noise, and plain noise.
    let s = Arc::clone(&srv);
    rows.push(phase(
        &srv,
        &hosts,
        "TLS handshake of garbage",
        phase_len,
        move |stop| {
            attackers(
                2,
                &stop,
                move |stop| {
                    let (mut closed, mut slow) = (0, 0);
                    let mut seed = 0x2545_f491_4f6c_dd1du64;
                    let mut record = true;
                    while !stop.load(Ordering::Relaxed) {
                        record = !record;
                        let mut noise: Vec<u8> = (0..4096)
                            .map(|_| {
                                seed ^= seed << 13;
                                seed ^= seed >> 7;
                                seed ^= seed << 17;
                                seed as u8
                            })
                            .collect();
                        if record {
                            // One complete handshake record holding one complete "ClientHello"
                            // of noise (an incomplete one would wait for the handshake timeout).
                            noise[..9].copy_from_slice(&[
                                0x16, 0x03, 0x01, 0x0f, 0xfb, 0x01, 0x00, 0x0f, 0xf7,
                            ]);
                        }
                        let mut c = TcpStream::connect(s.addr).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let t = Instant::now();
                        let _ = c.write_all(&noise);
                        let mut sink = [0u8; 512];
                        loop {
                            match c.read(&mut sink) {
                                Ok(0) | Err(_) => break,
                                Ok(_) => {}
                            }
                        }
                        if t.elapsed() < Duration::from_secs(1) {
                            closed += 1;
                        } else {
                            slow += 1;
                        }
                    }
                    assert_eq!(slow, 0, "garbage handshakes not closed within 1 s");
                    (closed, slow)
                },
                |closed, _| format!("{closed} connections, each closed by the server within 1 s"),
            )
        },
    ));

    // Clients that ask for the package and never read it.
    let s = Arc::clone(&srv);
    let n = size.stalled_downloads;
    let secret = hosts.downloader.clone();
    let aghash = hosts.package_hash.clone();
    let stall_len = if size.wait_for_timeouts {
        Duration::from_secs(36)
    } else {
        phase_len
    };
    let package_mib = size.package_bytes as f64 / (1 << 20) as f64;
    rows.push(phase(&srv, &hosts, "download never read", stall_len, move |stop| {
        let body = format!(
            "mode=agent&host=downloader&host_secret={secret}&installed_aghash=&aghash={aghash}&os=linux_deb&last_error=&au_api=2"
        );
        let mut conns: Vec<_> = (0..n)
                .map(|_| {
                    let mut t = s.tls();
                    write!(
                        t,
                        "POST /mysite/check_mk/deploy_agent.py HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .unwrap();
                    t.flush().unwrap();
                    // The answer starts (status line and headers read), then is never read.
                    // 503: the server's budget for answers in memory is spent.
                    let (status, length) = head(&mut t);
                    let sent = status.starts_with("HTTP/1.1 200");
                    assert!(sent || status.starts_with("HTTP/1.1 503"), "{status}");
                    (t, sent, length)
                })
                .collect();
        let sent = conns.iter().filter(|(_, sent, _)| *sent).count();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            // Closed by the server: what is left to read ends early (not a whole answer).
            let mut cut = 0;
            if wait {
                for (t, _, length) in conns.iter_mut().filter(|(_, sent, _)| *sent) {
                    let mut sink = Vec::new();
                    let _ = t.read_to_end(&mut sink);
                    if sink.len() < *length {
                        cut += 1;
                    }
                }
                assert_eq!(cut, sent, "stalled downloads not ended by the server");
            }
            format!(
                "{n} requests of a {package_mib:.0} MiB package: {sent} answered and never read, {} refused 503 (answer budget){}",
                n - sent,
                if wait {
                    format!("; {cut} ended by the server's send timeout")
                } else {
                    String::new()
                }
            )
        })
    }));

    // A valid host secret used for other hosts, as fast as four clients can.
    let s = Arc::clone(&srv);
    let good_secret = hosts.good.clone();
    let downloader_secret = hosts.downloader.clone();
    rows.push(phase(
        &srv,
        &hosts,
        "valid secret for another host",
        phase_len,
        move |stop| {
            let count = Arc::new(AtomicUsize::new(0));
            let c2 = Arc::clone(&count);
            let started = Instant::now();
            attackers(
                4,
                &stop,
                move |stop| {
                    // Keep-alive: as many requests as possible.
                    let ca = ureq::tls::Certificate::from_pem(s.ca_pem.as_bytes()).unwrap();
                    let agent = ureq::Agent::config_builder()
                        .tls_config(
                            ureq::tls::TlsConfig::builder()
                                .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
                                .build(),
                        )
                        .http_status_as_error(false)
                        .proxy(None)
                        .build()
                        .new_agent();
                    let url = s.url("deploy_agent.py");
                    let (mut refused, mut other) = (0, 0);
                    let mut i = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let (host, secret, mode) = match i % 4 {
                            0 => ("victim", good_secret.as_str(), "status"),
                            1 => ("victim", downloader_secret.as_str(), "agent"),
                            2 => ("bystander", good_secret.as_str(), "status"),
                            _ => ("bystander", downloader_secret.as_str(), "agent"),
                        };
                        let body = post_status(&agent, &url, host, secret, mode);
                        c2.fetch_add(1, Ordering::Relaxed);
                        if body.starts_with("{\"result_code\":1") {
                            refused += 1;
                        } else {
                            other += 1;
                            assert!(!body.starts_with("{\"result_code\":0"), "accepted: {body}");
                        }
                    }
                    (refused, other)
                },
                move |refused, other| {
                    format!(
                        "{refused} refused ({:.0} req/s), {other} other",
                        count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
                    )
                },
            )
        },
    ));

    // Stop (the server writes its pending status), then compare the state directory: only the
    // hosts that made valid requests may have changed.
    let srv = Arc::into_inner(srv).expect("attack threads ended");
    srv.stop();
    let mut after = testkit::file_snapshot(&state);
    let mut before = before;
    for host in ["good", "downloader"] {
        let status = PathBuf::from(format!("status/{host}.json"));
        before.remove(&status);
        assert!(
            after.remove(&status).is_some(),
            "{host} made valid requests"
        );
    }
    let changed: Vec<_> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k.display().to_string())
        .chain(
            before
                .keys()
                .filter(|k| !after.contains_key(*k))
                .map(|k| k.display().to_string()),
        )
        .collect();
    assert!(changed.is_empty(), "refused requests changed {changed:?}");

    eprintln!("\nattack | well-behaved p99 | peak RSS (VmHWM) | outcome");
    for r in &rows {
        eprintln!(
            "{} | {:.1} ms ({} checks, {} failed) | {:.1} MiB | {}",
            r.attack, r.p99_ms, r.checks, r.failures, r.peak_rss_mib, r.outcome
        );
    }
    rows
}

fn assert_rows(rows: &[Row], p99_limit_ms: f64) {
    for r in rows {
        assert_eq!(r.failures, 0, "{}: well-behaved requests failed", r.attack);
        assert!(
            r.p99_ms < p99_limit_ms,
            "{}: well-behaved p99 {:.1} ms",
            r.attack,
            r.p99_ms
        );
    }
}

#[test]
fn hostile_clients_small() {
    let rows = run_attacks(&Size {
        max_connections: 256,
        phase: Duration::from_secs(3),
        slowloris: 100,
        idle: 1000,
        idle_phase: Duration::from_secs(3),
        stalled_downloads: 20,
        package_bytes: 4 << 20,
        wait_for_timeouts: false,
    });
    assert_rows(&rows, P99_LOCKOUT_MS);
}

#[test]
#[ignore = "full size (10,000 idle connections, server timeouts): about 5 minutes"]
fn hostile_clients_full() {
    let rows = run_attacks(&Size {
        max_connections: 4096,
        phase: Duration::from_secs(5),
        slowloris: 1000,
        idle: 10_000,
        idle_phase: Duration::from_secs(40),
        stalled_downloads: 200,
        package_bytes: 4 << 20,
        wait_for_timeouts: true,
    });
    assert_rows(&rows, P99_LIMIT_MS);
}
