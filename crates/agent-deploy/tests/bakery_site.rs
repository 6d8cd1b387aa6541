//! A small Checkmk site on disk, baked and signed by `agent-bakery` through `agent-sign`, for
//! the deployment server's bakery tests (the `agent-deploy` binary's end-to-end test includes
//! this file by path).
//!
//! Folders: `/wato/linux/` with `web01`, `/wato/other/` with `db02`; one "Agent updater" rule
//! in the root folder (plus whatever a test adds to `linux/`); `global.mk` as the test writes it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use agent_bakery::{BakeOptions, BakeReport, Layout, Platform, SignWith};
use agent_sign::{Certificate, KdfParams, KeyStore, Passphrase};

/// The Checkmk version the packages are baked for.
pub const CMK: &str = "2.3.0p9";
const COMBINED: &str = include_str!("../../agent-sign/tests/data/pyca.combined.pem");
const PASS: &str = "checkmk-fixture-pass";

pub struct BakerySiteFixture {
    pub dir: tempfile::TempDir,
    /// The site root (`…/mysite`).
    pub root: PathBuf,
    key_store: PathBuf,
    key_id: u64,
    /// The certificate of the signing key (PEM), for `signature_keys`.
    pub key_pem: String,
    /// `server_data.server` of the rule (`host` or `host:port`); [`Self::set_interval`]
    /// writes it.
    pub server: String,
    ca_pem: String,
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
}

fn hosts_mk(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|h| format!("'{h}'")).collect();
    let tags: Vec<String> = names
        .iter()
        .map(|h| {
            format!(
                "'{h}': {{'site': 'mysite', 'address_family': 'ip-v4-only', 'agent': 'cmk-agent'}}"
            )
        })
        .collect();
    format!(
        "# Created by HostStorage\n\nall_hosts += [{}]\n\nhost_tags.update({{{}}})\n",
        quoted.join(", "),
        tags.join(", ")
    )
}

fn rules_mk(rules: &[String]) -> String {
    format!(
        "# Written by Checkmk store\n\nagent_config.setdefault('cmk_update_agent', [])\n\n\
         agent_config['cmk_update_agent'] = [\n{}\n] + agent_config['cmk_update_agent']\n",
        rules
            .iter()
            .map(|r| format!("{r},"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// A Python string literal.
fn py(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\n', "\\n"))
}

impl BakerySiteFixture {
    /// The site with the signing key imported into a key store next to it and the root rule
    /// "Agent updater" activated for `server` (`host:port`), trusting `ca_pem` for HTTPS.
    pub fn new(server: &str, ca_pem: &str) -> BakerySiteFixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mysite");
        write(
            &root,
            "share/check_mk/agents/check_mk_agent.linux",
            "#!/bin/bash\necho '<<<check_mk>>>'\n",
        );
        write(
            &root,
            "share/check_mk/agents/plugins/cmk-update-agent",
            "#!/bin/sh\necho 'the updater plug-in'\n",
        );
        for f in ["check_mk_agent.linux", "plugins/cmk-update-agent"] {
            let p = root.join("share/check_mk/agents").join(f);
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let wato = "etc/check_mk/conf.d/wato";
        write(
            &root,
            &format!("{wato}/.wato"),
            "{'title': 'Main', 'attributes': {}}",
        );
        write(
            &root,
            &format!("{wato}/linux/hosts.mk"),
            &hosts_mk(&["web01"]),
        );
        write(
            &root,
            &format!("{wato}/other/hosts.mk"),
            &hosts_mk(&["db02"]),
        );
        let key_store = dir.path().join("keys");
        let entry = KeyStore::open(&key_store)
            .unwrap()
            .import(
                COMBINED,
                "signature",
                "cmkadmin",
                &Passphrase::new(PASS),
                KdfParams::insecure_for_tests(10),
            )
            .unwrap();
        let site = BakerySiteFixture {
            dir,
            root,
            key_store,
            key_id: entry.id,
            key_pem: entry.certificate.to_pem(),
            server: server.to_owned(),
            ca_pem: ca_pem.to_owned(),
        };
        site.set_interval(600);
        site
    }

    /// Adds a folder below the root with these hosts (monitored by `mysite`).
    pub fn add_hosts(&self, folder: &str, names: &[&str]) {
        write(
            &self.root,
            &format!("etc/check_mk/conf.d/wato/{folder}/hosts.mk"),
            &hosts_mk(names),
        );
    }

    /// Writes the root folder's "Agent updater" rule with this interval.
    pub fn set_interval(&self, interval: u32) {
        let rule = format!(
            "{{'id': 'root-updater', 'value': {{'activated': True, 'server_data': {{'usage': 'registration', \
             'server': {}, 'site': 'mysite', 'protocol': 'https'}}, 'certificates': [{}], 'interval': {interval}, \
             'signature_keys': [{}]}}, 'condition': {{}}, 'options': {{'description': 'updater'}}}}",
            py(&self.server),
            py(&self.ca_pem),
            py(&self.key_pem)
        );
        write(
            &self.root,
            "etc/check_mk/conf.d/wato/rules.mk",
            &rules_mk(&[rule]),
        );
    }

    /// The signing key's certificate.
    pub fn certificate(&self) -> Certificate {
        Certificate::from_pem(&self.key_pem).unwrap()
    }

    /// Writes `global.mk` (the "Automatic agent updates" settings).
    pub fn set_global(&self, text: &str) {
        write(&self.root, agent_bakery::GLOBAL_MK, text);
    }

    /// The master switch and, when given, the host selection (a Python dict literal).
    pub fn deployment(&self, enabled: bool, selection: Option<&str>) {
        let mut text = format!(
            "agent_deployment_enabled = {}\n",
            if enabled { "True" } else { "False" }
        );
        if let Some(sel) = selection {
            text.push_str(&format!("agent_deployment_host_selection = {sel}\n"));
        }
        self.set_global(&text);
    }

    /// Deactivates the updater for `web01` (a host-specific rule in `linux/`, §6.3).
    pub fn deactivate_web01(&self) {
        let rule = "{'id': 'web01-off', 'value': {'activated': False}, \
                    'condition': {'host_folder': '/%s/' % FOLDER_PATH, 'host_name': ['web01']}}"
            .to_owned();
        write(
            &self.root,
            "etc/check_mk/conf.d/wato/linux/rules.mk",
            &rules_mk(&[rule]),
        );
    }

    fn options(&self, sign: bool) -> BakeOptions {
        BakeOptions {
            platforms: vec![Platform::LinuxDeb],
            site_id: Some("mysite".into()),
            cmk_version: Some(CMK.into()),
            sign: sign.then(|| SignWith {
                key_store: self.key_store.clone(),
                key_id: self.key_id,
                passphrase: Passphrase::new(PASS),
            }),
            ..BakeOptions::default()
        }
    }

    /// "Bake and sign agents" (deb only, for speed).
    pub fn bake_and_sign(&self) -> BakeReport {
        agent_bakery::bake(&self.root, &self.options(true), &mut |_| {}).unwrap()
    }

    /// "Bake agents" without signing.
    pub fn bake(&self) -> BakeReport {
        agent_bakery::bake(&self.root, &self.options(false), &mut |_| {}).unwrap()
    }

    /// The hash `references/<host>` points to.
    pub fn hash(&self, host: &str) -> String {
        Layout::new(&self.root)
            .reference(Platform::LinuxDeb, host)
            .unwrap_or_else(|| panic!("no linux_deb reference for {host}"))
    }

    /// The package file of `host`.
    pub fn package(&self, host: &str) -> PathBuf {
        Layout::new(&self.root).package_path(Platform::LinuxDeb, &self.hash(host))
    }
}

/// Whether `tool` runs; skips ([`testkit::require`]) naming the install command otherwise.
pub fn have(tool: &str, install: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    testkit::require(
        ok,
        &format!("`{tool}`"),
        &format!("apt-get install {install}"),
    )
}
