//! Distributed sites end to end (bakery.md §7, requirements 20–21) with real processes over
//! loopback TLS: one central `agent-deploy` serving a baked site, two remote sites in relay
//! mode (`serve --central-url`), and the real `cmk-update-agent` on hosts monitored by the
//! remotes, whose packages `dpkg --root` installs into fake roots. A tiny fake central (plain
//! HTTP on loopback) serves the bad answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

mod support {
    pub(crate) mod fake_host;
    pub(crate) mod server;
    pub(crate) mod tls;
}
#[path = "../../../crates/agent-deploy/tests/bakery_site.rs"]
mod bakery_site;

use bakery_site::{BakerySiteFixture, have};
use support::fake_host::{FakeHost as Host, updater_bin};
use support::server::{DEPLOY, Proc, collect_lines, spawn_listening};

const SECRET: &str = "s3cret-s3cret";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A server process with its log lines; killed (by its id) when dropped.
struct Server {
    _proc: Proc,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(state: &Path, site_root: Option<&Path>, args: &[&str]) -> Server {
        let mut cmd = Command::new(DEPLOY);
        cmd.arg("-v").arg("--dir").arg(state);
        if let Some(root) = site_root {
            cmd.arg("--site-root").arg(root);
        }
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("NO_COLOR", "1");
        let (child, stderr, addr) = spawn_listening(&mut cmd);
        Server {
            _proc: Proc(child),
            addr,
            log: collect_lines(stderr),
        }
    }

    /// Log lines containing all of `needles`.
    fn count(&self, needles: &[&str]) -> usize {
        // The log thread may lag behind a finished request by a moment.
        std::thread::sleep(std::time::Duration::from_millis(200));
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .count()
    }

    fn url(&self, site: &str) -> String {
        format!("https://{}/{site}/check_mk/", self.addr)
    }
}

impl Host {
    /// `register` with the automation secret (`-S`), or with `-P` as a GUI password
    /// (`login.py`, then the session cookie).
    fn register_with(&self, server: &str, site: &str, protocol: &str, how: &str) -> Output {
        self.cmd(&[
            "register",
            "-s",
            server,
            "-i",
            site,
            "-p",
            protocol,
            "-H",
            self.name,
            "-U",
            "automation",
            how,
            SECRET,
        ])
        .output()
        .unwrap()
    }

    fn register(&self, server: &str, site: &str, protocol: &str) -> Output {
        self.register_with(server, site, protocol, "-S")
    }

    /// An update run by hand; `extra` e.g. `--reinstall`.
    fn update(&self, extra: &[&str]) -> Output {
        let install = self.install_command();
        let mut args = vec!["--install-command", &install];
        args.extend_from_slice(extra);
        self.cmd(&args)
            .env("MK_AGENT_UPDATER_MANUAL", "1")
            .output()
            .unwrap()
    }

    /// A plug-in run: the monitoring section on stdout (a fresh run, not the plug-in's cached
    /// output of the last one).
    fn plugin(&self) -> String {
        let _ = std::fs::remove_dir_all(self.var.join("cache"));
        let install = self.install_command();
        let out = self.cmd(&["--install-command", &install]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    }

    /// Whether any of the updater's files holds `needle` (the state file's `update_url`).
    fn state_has(&self, needle: &str) -> bool {
        fn walk(dir: &Path, needle: &str) -> bool {
            std::fs::read_dir(dir).unwrap().flatten().any(|e| {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, needle)
                } else {
                    std::fs::read(&p).is_ok_and(|b| text(&b).contains(needle))
                }
            })
        }
        walk(&self.var, needle)
    }
}

fn py(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\n', "\\n"))
}

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// `hosts.mk` of a folder: each host with its monitoring site.
fn hosts_mk(hosts: &[(&str, &str)]) -> String {
    let names: Vec<String> = hosts.iter().map(|(h, _)| format!("'{h}'")).collect();
    let tags: Vec<String> = hosts
        .iter()
        .map(|(h, site)| {
            format!(
                "'{h}': {{'site': '{site}', 'address_family': 'ip-v4-only', 'agent': 'cmk-agent'}}"
            )
        })
        .collect();
    format!(
        "# Created by HostStorage\n\nall_hosts += [{}]\n\nhost_tags.update({{{}}})\n",
        names.join(", "),
        tags.join(", ")
    )
}

fn cached_file(state: &Path, hash: &str) -> PathBuf {
    state.join("relay-cache/packages/linux_deb").join(hash)
}

#[test]
fn central_and_two_remotes_with_real_updaters() {
    if !have("dpkg", "dpkg") {
        return;
    }
    let Some(updater) = updater_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tls = support::tls::write_tls_files(dir.path());
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &tls.ca_pem).unwrap();
    let secret_file = dir.path().join("central.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let cert = tls.cert.to_str().unwrap().to_owned();
    let key = tls.key.to_str().unwrap().to_owned();

    // The central site: the bakery, the users, the deployment switched on.
    let central_state = dir.path().join("central");
    support::server::user_add(&central_state, "automation", SECRET);
    let mut site = BakerySiteFixture::new("127.0.0.1", &tls.ca_pem);
    let central = Server::start(
        &central_state,
        Some(&site.root),
        &["--site", "mysite", "--cert", &cert, "--key", &key],
    );
    let central_url = central.url("mysite");

    // Two remote sites relaying to it, verifying its certificate with the test CA.
    let remote = |name: &str| {
        let state = dir.path().join(name);
        let server = Server::start(
            &state,
            None,
            &[
                "--site",
                name,
                "--cert",
                &cert,
                "--key",
                &key,
                "--central-url",
                &central_url,
                "--central-ca",
                ca_file.to_str().unwrap(),
                "--central-user",
                "automation",
                "--central-secret-file",
                secret_file.to_str().unwrap(),
            ],
        );
        (server, state)
    };
    let (remote_a, state_a) = remote("remote1");
    let (remote_b, _state_b) = remote("remote2");
    let (url_a, url_b) = (remote_a.url("remote1"), remote_b.url("remote2"));

    // The central's view of the distributed setup: each site's URL, and the hosts' sites.
    write(
        &site.root,
        agent_deploy::SITES_MK,
        &format!(
            "sites.update({{'mysite': {{'multisiteurl': {}}}, 'remote1': {{'multisiteurl': {}}}, \
             'remote2': {{'multisiteurl': {}}}}})\n",
            py(&central_url),
            py(&url_a),
            py(&url_b)
        ),
    );
    let wato = "etc/check_mk/conf.d/wato";
    let linux_hosts = format!("{wato}/linux/hosts.mk");
    write(
        &site.root,
        &linux_hosts,
        &hosts_mk(&[("web01", "remote1"), ("app03", "remote1")]),
    );
    write(
        &site.root,
        &format!("{wato}/other/hosts.mk"),
        &hosts_mk(&[("db02", "remote1")]),
    );
    // The rule points the updaters at remote1.
    site.server = remote_a.addr.clone();
    let rule = format!(
        "{{'id': 'root-updater', 'value': {{'activated': True, 'server_data': {{'usage': 'registration', \
         'server': {}, 'site': 'remote1', 'protocol': 'https'}}, 'certificates': [{}], 'interval': 600, \
         'signature_keys': [{}]}}, 'condition': {{}}, 'options': {{'description': 'updater'}}}}",
        py(&remote_a.addr),
        py(&tls.ca_pem),
        py(&site.key_pem)
    );
    write(
        &site.root,
        &format!("{wato}/rules.mk"),
        &format!(
            "agent_config.setdefault('cmk_update_agent', [])\n\n\
             agent_config['cmk_update_agent'] = [\n{rule},\n] + agent_config['cmk_update_agent']\n"
        ),
    );
    site.deployment(true, None);
    site.bake_and_sign();
    let hash = site.hash("web01");
    assert_eq!(site.hash("db02"), hash, "both hosts share one package");
    let package = std::fs::read(site.package("web01")).unwrap();
    let sent = || central.count(&["package sent"]);

    // 1. Register through remote1 (app03 directly at the central): either way the answer
    //    names remote1's URL, the URL of the site that monitors the hosts (requirement 21).
    let web = Host::new(dir.path(), "web01", &updater);
    let db = Host::new(dir.path(), "db02", &updater);
    let app = Host::new(dir.path(), "app03", &updater);
    //    db02 logs in with a password (GUI login through the relay).
    for (h, server, site_id, how) in [
        (&web, &remote_a.addr, "remote1", "-S"),
        (&db, &remote_a.addr, "remote1", "-P"),
        (&app, &central.addr, "mysite", "-S"),
    ] {
        h.install(&site.package(h.name));
        let out = h.register_with(server, site_id, "https", how);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            h.state_has(url_a.trim_end_matches('/')),
            "{}: no update_url",
            h.name
        );
    }
    assert_eq!(
        remote_a.count(&["relayed call"]),
        0,
        "registration is not a deploy call"
    );

    // 2. Update through remote1: fetched from the central once, verified, installed.
    let out = web.update(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("Installed agent {hash} (signature #1 verified).")),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(sent(), 1);
    assert_eq!(
        std::fs::read(cached_file(&state_a, &hash)).unwrap(),
        package
    );

    // 3. The second host behind remote1 gets the package from the cache.
    let out = db.update(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("Installed agent {hash}")));
    assert_eq!(sent(), 1, "no second download at the central");
    assert!(remote_a.count(&["relayed call", "db02"]) >= 2);

    // 4. A tampered cached file is detected and fetched again.
    let mut evil = package.clone();
    let last = evil.len() - 1;
    evil[last] ^= 0xff;
    std::fs::write(cached_file(&state_a, &hash), &evil).unwrap();
    let out = web.update(&["--reinstall"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("Installed agent {hash} (signature #1 verified)."))
    );
    assert_eq!(sent(), 2, "refetched after the hash mismatch");
    assert_eq!(
        std::fs::read(cached_file(&state_a, &hash)).unwrap(),
        package
    );
    assert!(remote_a.count(&["does not match the central's checksum"]) >= 1);

    // 5. web01 moves to remote2: the next answer (through remote1) names remote2's URL, and the
    //    run after that goes to remote2.
    write(
        &site.root,
        &linux_hosts,
        &hosts_mk(&[("web01", "remote2"), ("app03", "remote1")]),
    );
    let out = web.update(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(web.state_has(url_b.trim_end_matches('/')));
    assert_eq!(remote_b.count(&["relayed call", "web01"]), 0);
    let out = web.update(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        remote_b.count(&["relayed call", "web01"]) >= 1,
        "web01 follows update_url"
    );
    let section = web.plugin();
    assert!(section.contains(url_b.trim_end_matches('/')), "{section}");

    // 6. remote2 down: the updater falls back to its saved server (remote1).
    let before = remote_a.count(&["relayed call", "web01"]);
    drop(remote_b);
    let out = web.update(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(remote_a.count(&["relayed call", "web01"]) > before);

    // 7. The central down: remote1 answers web01 from its last central answer and serves the
    //    cached package it named; app03, for which remote1 has no central answer, gets a
    //    clear error in its section.
    drop(central);
    let out = web.update(&["--reinstall"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("Installed agent {hash} (signature #1 verified)."))
    );
    let section = app.plugin();
    assert!(section.contains("cmk_update_agent_status"), "{section}");
    assert!(
        section.contains("Agent Bakery: the central site is unreachable")
            && section.contains("names no package cached here"),
        "{section}"
    );
    // db02's last answer names the package: it is still served.
    let out = db.update(&["--reinstall"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Canned `(HTTP status, body)` answers.
type Queue = Arc<Mutex<std::collections::VecDeque<(u16, Vec<u8>)>>>;

/// A fake central on loopback (plain HTTP): answers each request with the next canned
/// `(status, body)` and records the request bodies.
struct FakeCentral {
    addr: String,
    answers: Queue,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeCentral {
    fn start() -> FakeCentral {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let answers: Queue = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (a, r) = (Arc::clone(&answers), Arc::clone(&requests));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.trim_end().to_ascii_lowercase();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                r.lock().unwrap().push(text(&body));
                let (status, answer) = a
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or_else(|| (500, b"no answer queued".to_vec()));
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    answer.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&answer);
            }
        });
        FakeCentral {
            addr,
            answers,
            requests,
        }
    }

    fn queue(&self, status: u16, body: impl Into<Vec<u8>>) {
        self.answers
            .lock()
            .unwrap()
            .push_back((status, body.into()));
    }
}

#[test]
fn bad_central_answers_are_refused_and_reach_the_section() {
    let Some(updater) = updater_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeCentral::start();
    let state = dir.path().join("remote");
    let relay = Server::start(
        &state,
        None,
        &[
            "--site",
            "remote1",
            "--central-url",
            &format!("http://{}/central/check_mk/", fake.addr),
        ],
    );
    let host = Host::new(dir.path(), "web01", &updater);
    fake.queue(
        200,
        format!(
            r#"{{"result_code": 0, "result": {{"host_secret": "{}"}}}}"#,
            "a".repeat(64)
        ),
    );
    let out = host.register(&relay.addr, "remote1", "http");
    assert!(out.status.success(), "{}", text(&out.stderr));
    {
        let reqs = fake.requests.lock().unwrap();
        assert!(
            reqs[0].contains("host=web01") && reqs[0].contains("site=remote1"),
            "{reqs:?}"
        );
    }

    // Not JSON.
    fake.queue(200, "<html>surprise</html>");
    let section = host.plugin();
    assert!(
        section.contains(
            "Agent Bakery: the central site's answer was refused: the answer is not JSON"
        ),
        "{section}"
    );

    // Oversized.
    let mut big = br#"{"result_code": 0, "result": {"AgentAvailable": false, "pad": ""#.to_vec();
    big.extend(std::iter::repeat_n(
        b'x',
        agent_deploy::MAX_STATUS_ANSWER_BYTES,
    ));
    big.extend_from_slice(br#""}}"#);
    fake.queue(200, big);
    let section = host.plugin();
    assert!(section.contains("the answer is larger than"), "{section}");

    // A package whose bytes do not match the checksum the central named.
    let hash = "0123456789abcdef";
    let status = format!(
        r#"{{"result_code": 0, "result": {{"AgentAvailable": true, "TargetHash": "{hash}", "Signatures": [], "PackageSha256": "{}"}}}}"#,
        agent_deploy::package_sha256(b"the real package")
    );
    fake.queue(200, status);
    fake.queue(
        200,
        r#"{"result_code": 0, "result": {"agent": "dGhlIGV2aWwgcGFja2FnZQ=="}}"#,
    );
    let out = host.update(&["--skip-signatures"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(&format!(
            "Agent Bakery: the central site's answer was refused: the package {hash} does not match the checksum"
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(!cached_file(&state, hash).exists(), "nothing cached");
    let cache = std::fs::read_dir(state.join("relay-cache/packages/linux_deb"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(cache, 0);
}
