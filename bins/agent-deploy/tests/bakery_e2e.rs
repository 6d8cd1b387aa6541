//! End to end over loopback HTTPS with the real binaries: a site's "Agent updater" rule,
//! baked and signed by `agent-bakery` (library, through `agent-sign`), served by
//! `agent-deploy serve --site-root`, and the real `cmk-update-agent` on two hosts whose packages
//! are installed with `dpkg --root` into fake roots (issue 13's workflow, bakery.md §6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;

use std::process::{Command, Output, Stdio};

mod support {
    pub(crate) mod fake_host;
    pub(crate) mod server;
    pub(crate) mod tls;
}
#[path = "../../../crates/agent-deploy/tests/bakery_site.rs"]
mod bakery_site;

use bakery_site::{BakerySiteFixture, have};

use support::fake_host::{FakeHost as Host, updater_bin};
use support::server::DEPLOY;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Host {
    fn register(&self, server: &str) -> Output {
        self.cmd(&[
            "register",
            "-s",
            server,
            "-i",
            "mysite",
            "-p",
            "https",
            "-H",
            self.name,
            "-U",
            "automation",
            "-S",
            "s3cret-s3cret",
        ])
        .output()
        .unwrap()
    }

    /// An update run by hand, installing with dpkg into the fake root.
    fn update(&self) -> Output {
        let install = self.install_command();
        self.cmd(&["--install-command", &install])
            .env("MK_AGENT_UPDATER_MANUAL", "1")
            .output()
            .unwrap()
    }

    /// A plug-in run (the agent calling the updater): the monitoring section on stdout.
    fn plugin(&self) -> Output {
        let install = self.install_command();
        self.cmd(&["--install-command", &install]).output().unwrap()
    }

    fn has(&self, path: &str) -> bool {
        self.root.join(path).exists()
    }
}

/// `agent-deploy check-section` rating of a plug-in run's output, disabled states CRIT/OK.
fn rate(section: &[u8]) -> (Option<i32>, String) {
    let mut child = Command::new(DEPLOY)
        .args([
            "check-section",
            "--globally-disabled-state",
            "CRIT",
            "--host-disabled-state",
            "OK",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(section).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), text(&out.stdout))
}

/// The cfg file a baked package installed, read back by Python's `ast.literal_eval` and by the
/// updater (its settings parser, and the real binary's `show-config`): the same keys with
/// equal values.
fn cfg_read_back_by_python_and_the_updater(host: &Host) {
    if !have("python3", "python3") {
        return;
    }
    let cfg = host.root.join("etc/check_mk/cmk-update-agent.cfg");
    // `json.dumps` writes tuples as lists, as the updater reads them.
    let out = Command::new("python3")
        .arg("-c")
        .arg("import ast, json, sys; print(json.dumps(ast.literal_eval(open(sys.argv[1]).read())))")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "python3: {}", text(&out.stderr));
    let python: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap();
    assert!(python["interval"].is_number(), "{python:?}");

    // No state file yet: every value the updater sees comes from the cfg file.
    let settings = agent_updater::Settings::load(
        &host.var.join("cmk-update-agent.state"),
        &cfg,
        serde_json::Map::new(),
    )
    .unwrap();
    let show = host.cmd(&["show-config"]).output().unwrap();
    assert!(show.status.success(), "{}", text(&show.stderr));
    let show = text(&show.stdout);
    for (key, value) in &python {
        assert!(agent_updater::CONFIG_KEYS.contains(&key.as_str()), "{key}");
        match settings.get(key) {
            // The updater treats None as unset.
            None => assert!(value.is_null(), "{key}: updater lost {value}"),
            Some((got, origin)) => {
                assert_eq!(
                    (got, origin),
                    (value, agent_updater::Origin::Config(cfg.clone())),
                    "{key}"
                );
                let shown = match value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Array(a) => format!("<{} certificate(s)>", a.len()),
                    v => v.to_string(),
                };
                assert!(
                    show.contains(&format!("\n  {key}: {shown}\n")),
                    "{key}: {show}"
                );
            }
        }
    }
    for key in agent_updater::CONFIG_KEYS {
        assert!(
            settings.get(key).is_none() || python.contains_key(*key),
            "{key}: the updater reads a value Python does not"
        );
    }
}

#[test]
fn rule_bake_sign_register_switch_selection_update_and_deactivation() {
    if !have("dpkg", "dpkg") {
        return;
    }
    let Some(updater) = updater_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tls = support::tls::write_tls_files(dir.path());
    let state = dir.path().join("state");
    support::server::user_add(&state, "automation", "s3cret-s3cret");

    // The site, with the master switch off (its default).
    let mut site = BakerySiteFixture::new("127.0.0.1", &tls.ca_pem);
    let (_server, addr) = support::server::serve_site(&state, &site.root, &tls.cert, &tls.key);

    // 1. The rule names this server; bake and sign.
    site.server = addr.clone();
    site.set_interval(600);
    site.bake_and_sign();

    // 2. Both hosts get their baked package by hand and register (web01 in /wato/linux/,
    //    db02 in /wato/other/). Registration is open whatever the switch says.
    let web = Host::new(dir.path(), "web01", &updater);
    let db = Host::new(dir.path(), "db02", &updater);
    for h in [&web, &db] {
        h.install(&site.package(h.name));
        assert!(h.has("etc/check_mk/cmk-update-agent.cfg"));
        cfg_read_back_by_python_and_the_updater(h);
        let out = h.register(&addr);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    // 3. Master switch off: refused with the bakery's text; the plug-in's section is rated
    //    with the "globally disabled" state.
    let out = web.update();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("Agent Bakery: Agent deployment is currently globally disabled."),
        "{}",
        text(&out.stderr)
    );
    let out = db.plugin();
    assert!(out.status.success());
    let (code, rating) = rate(&out.stdout);
    assert_eq!(code, Some(2), "{rating}");
    assert!(
        rating.contains(
            "Update error: Agent Bakery: Agent deployment is currently globally disabled.(!!)"
        ),
        "{rating}"
    );

    // 4. The operator changes the interval (a new package), bakes and signs, switches on and
    //    limits the rollout to one folder.
    site.set_interval(900);
    site.bake_and_sign();
    site.deployment(true, Some("{'match_folders': ['/wato/linux/']}"));

    // 5. web01 (selected) updates: downloaded, signature verified, installed by dpkg.
    let hash = site.hash("web01");
    let out = web.update();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("Installed agent {hash} (signature #1 verified).")),
        "{}",
        text(&out.stdout)
    );
    let dpkg_status = std::fs::read_to_string(web.root.join("var/lib/dpkg/status")).unwrap();
    assert!(dpkg_status.contains(&format!("Version: {}-1.{hash}", bakery_site::CMK)));
    assert!(web.has("usr/lib/check_mk_agent/plugins/900/cmk-update-agent"));
    assert!(!web.has("usr/lib/check_mk_agent/plugins/600/cmk-update-agent"));
    let cfg = std::fs::read_to_string(web.root.join("etc/check_mk/cmk-update-agent.cfg")).unwrap();
    assert!(cfg.contains("'interval': 900"), "{cfg}");
    let out = web.update();
    assert!(
        text(&out.stdout).contains(&format!("Agent {hash} is already installed.")),
        "{}",
        text(&out.stdout)
    );

    // 6. db02 (not selected) is refused with the reason; nothing is installed.
    let before = std::fs::read_to_string(db.root.join("var/lib/dpkg/status")).unwrap();
    let out = db.update();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "Agent Bakery: agent updates are disabled for host name db02 because it is not in one of the selected folders"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(db.root.join("var/lib/dpkg/status")).unwrap(),
        before
    );

    // 7. The rule deactivated for web01, baked and signed: web01's next update installs the
    //    package without the updater, so the updater is gone (§6.3); the agent stays.
    site.deactivate_web01();
    site.bake_and_sign();
    let gone = site.hash("web01");
    assert_ne!(gone, hash);
    let out = web.update();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("Installed agent {gone}")));
    assert!(web.has("usr/bin/check_mk_agent"));
    assert!(!web.has("usr/bin/cmk-update-agent"));
    assert!(!web.has("usr/lib/check_mk_agent/plugins/900/cmk-update-agent"));

    // The server's status view shows the bakery's targets.
    let out = Command::new(DEPLOY)
        .arg("--dir")
        .arg(&state)
        .arg("--site-root")
        .arg(&site.root)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let web01 = doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host_name"] == "web01")
        .unwrap();
    assert_eq!(web01["target_hash"], gone.as_str());
    assert_eq!(web01["installed_aghash"], gone.as_str());

    // Every package a host runs was recorded when the bakery signed it.
    let out = Command::new(DEPLOY)
        .arg("--dir")
        .arg(&state)
        .arg("--site-root")
        .arg(&site.root)
        .args(["log-verify", "--list"])
        .output()
        .unwrap();
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{listing}{}", text(&out.stderr));
    assert!(listing.contains("agent_bakery/signing.log: "), "{listing}");
    assert!(listing.contains(&format!("agent_hash={gone}")), "{listing}");
}
