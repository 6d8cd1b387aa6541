//! A small Checkmk site on disk for the bakery's tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use agent_bakery::{BakeOptions, BakeReport, Platform};

pub const CMK: &str = "2.3.0p9";
pub const PEM_KEY: &str = "-----BEGIN CERTIFICATE-----\nMIIFkey\n-----END CERTIFICATE-----\n";
pub const PEM_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIDca\n-----END CERTIFICATE-----\n";

pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
}

pub fn wato(rel: &str) -> String {
    if rel.is_empty() {
        "etc/check_mk/conf.d/wato".to_string()
    } else {
        format!("etc/check_mk/conf.d/wato/{rel}")
    }
}

pub fn hosts_mk(hosts: &[(&str, &str)]) -> String {
    // (name, criticality)
    let mut s = String::from("# Created by HostStorage\n\n");
    let names: Vec<String> = hosts.iter().map(|(h, _)| format!("'{h}'")).collect();
    s.push_str(&format!("all_hosts += [{}]\n\n", names.join(", ")));
    let tags: Vec<String> = hosts
        .iter()
        .map(|(h, c)| {
            format!("'{h}': {{'site': 'mysite', 'address_family': 'ip-v4-only', 'ip-v4': 'ip-v4', 'agent': 'cmk-agent', 'criticality': '{c}', 'networking': 'lan'}}")
        })
        .collect();
    s.push_str(&format!("host_tags.update({{{}}})\n\n", tags.join(", ")));
    let labels: Vec<String> = hosts
        .iter()
        .map(|(h, _)| format!("'{h}': {{'os': 'linux'}}"))
        .collect();
    s.push_str(&format!(
        "host_labels.update({{{}}})\n\n",
        labels.join(", ")
    ));
    s.push_str("# Host attributes (needed for WATO)\nhost_attributes.update({})\n");
    s
}

pub fn rules_mk(rules: &[&str]) -> String {
    format!(
        "# Written by Checkmk store\n\n\nagent_config.setdefault('cmk_update_agent', [])\n\nagent_config['cmk_update_agent'] = [\n{}\n] + agent_config['cmk_update_agent']\n\n",
        rules
            .iter()
            .map(|r| format!("{r},"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

pub fn root_rule() -> String {
    format!(
        "{{'id': 'r0', 'value': {{'activated': True, 'server_data': {{'usage': 'registration', 'server': 'checkmk.example.com', 'site': 'mysite', 'protocol': 'https'}}, 'certificates': [{ca:?}], 'interval': 3600, 'signature_keys': [{key:?}]}}, 'condition': {{}}, 'options': {{'disabled': False, 'comment': 'root'}}}}",
        ca = PEM_CA,
        key = PEM_KEY
    )
    .replace('"', "'")
}

pub const LINUX_RULE: &str = "{'id': 'r1', 'value': {'activated': True, 'interval': 600}, 'condition': {'host_folder': '/%s/' % FOLDER_PATH}}";
pub const DB_OFF_RULE: &str = "{'id': 'r2', 'value': {'activated': False}, 'condition': {'host_folder': '/%s/' % FOLDER_PATH, 'host_name': ['db01']}, 'options': {'description': 'no updates'}}";
pub const WIN_RULE: &str = "{'id': 'r3', 'value': {'activated': 'enabled', 'interval': 1200.0}, 'condition': {'host_folder': '/%s/' % FOLDER_PATH}}";

pub struct Site {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
}

/// The fixture: root (zr, bake_agent_package), linux (web01, web02, db01), linux/deep
/// (app01), windows (win01); rules r0 (root), r1 + r2 (linux), r3 (windows).
pub fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mysite");
    fs::create_dir_all(&root).unwrap();
    write(
        &root,
        "share/check_mk/agents/check_mk_agent.linux",
        "#!/bin/bash\necho '<<<check_mk>>>'\n",
    );
    write(
        &root,
        "share/check_mk/agents/mk-job",
        "#!/bin/sh\nexec \"$@\"\n",
    );
    write(
        &root,
        "share/check_mk/agents/plugins/cmk-update-agent",
        "\x7fELF fake updater binary\n",
    );
    write(
        &root,
        "share/check_mk/agents/plugins/cmk_update_agent.py",
        "#!/usr/bin/env python3\nprint('updater')\n",
    );
    for f in ["check_mk_agent.linux", "mk-job", "plugins/cmk-update-agent"] {
        let p = root.join("share/check_mk/agents").join(f);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    write(
        &root,
        &format!("{}/.wato", wato("")),
        "{'title': 'Main', 'attributes': {'bake_agent_package': True, 'meta_data': {'created_at': 1700000000.0}}, 'num_hosts': 1, 'lock': False, 'lock_subfolders': False, '__id': 'aaaa'}",
    );
    write(
        &root,
        &format!("{}/hosts.mk", wato("")),
        &hosts_mk(&[("zr", "prod")]),
    );
    write(
        &root,
        &format!("{}/rules.mk", wato("")),
        &rules_mk(&[&root_rule()]),
    );
    write(
        &root,
        &format!("{}/.wato", wato("linux")),
        "{'title': 'Linux servers', 'attributes': {'tag_criticality': 'prod'}, 'num_hosts': 3, 'lock': False, 'lock_subfolders': False, '__id': 'bbbb'}",
    );
    write(
        &root,
        &format!("{}/hosts.mk", wato("linux")),
        &hosts_mk(&[("web01", "prod"), ("web02", "prod"), ("db01", "test")]),
    );
    write(
        &root,
        &format!("{}/rules.mk", wato("linux")),
        &rules_mk(&[DB_OFF_RULE, LINUX_RULE]),
    );
    write(
        &root,
        &format!("{}/hosts.mk", wato("linux/deep")),
        &hosts_mk(&[("app01", "prod")]),
    );
    write(
        &root,
        &format!("{}/hosts.mk", wato("windows")),
        &hosts_mk(&[("win01", "prod")]),
    );
    write(
        &root,
        &format!("{}/rules.mk", wato("windows")),
        &rules_mk(&[WIN_RULE]),
    );
    Site { dir, root }
}

pub fn opts() -> BakeOptions {
    BakeOptions {
        site_id: Some("mysite".into()),
        cmk_version: Some(CMK.into()),
        ..BakeOptions::default()
    }
}

pub fn bake(root: &Path) -> BakeReport {
    agent_bakery::bake(root, &opts(), &mut |_| {}).unwrap()
}

/// Every file and link under var/check_mk/agents: path → bytes or link target.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                out.insert(
                    p.clone(),
                    fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                );
            } else if ft.is_dir() {
                walk(&p, out);
            } else {
                out.insert(p.clone(), fs::read(&p).unwrap());
            }
        }
    }
    walk(&root.join("var/check_mk/agents"), &mut out);
    out
}

pub fn package_of(root: &Path, platform: Platform, target: &str) -> PathBuf {
    let layout = agent_bakery::Layout::new(root);
    let hash = layout
        .reference(platform, target)
        .unwrap_or_else(|| panic!("no reference for {target}"));
    layout.package_path(platform, &hash)
}

/// Whether a tool is installed; prints the skip message otherwise.
pub fn have(tool: &str, install: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    testkit::require(ok, tool, &format!("apt-get install {install}"))
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}
