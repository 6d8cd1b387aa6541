//! The `agent-bakery` binary on a small site: bake, targets, status, test-host, config,
//! signing with a wrong passphrase, exit codes and JSON schemas.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
}

fn site() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mysite");
    write(
        &root,
        "share/check_mk/agents/check_mk_agent.linux",
        "#!/bin/sh\necho agent\n",
    );
    write(
        &root,
        "share/check_mk/agents/plugins/cmk-update-agent",
        "updater\n",
    );
    fs::set_permissions(
        root.join("share/check_mk/agents/check_mk_agent.linux"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::create_dir_all(root.join("versions/2.3.0p9.cre")).unwrap();
    std::os::unix::fs::symlink("versions/2.3.0p9.cre", root.join("version")).unwrap();
    let w = "etc/check_mk/conf.d/wato";
    write(
        &root,
        &format!("{w}/hosts.mk"),
        "all_hosts += ['zr']\nhost_tags.update({'zr': {'site': 'mysite'}})\n",
    );
    write(
        &root,
        &format!("{w}/linux/hosts.mk"),
        "all_hosts += ['web01', 'db01']\nhost_tags.update({'web01': {'site': 'mysite', 'criticality': 'prod'}, 'db01': {'site': 'mysite', 'criticality': 'test'}})\n",
    );
    write(
        &root,
        &format!("{w}/linux/rules.mk"),
        "agent_config.setdefault('cmk_update_agent', [])\n\nagent_config['cmk_update_agent'] = [\n{'id': 'r1', 'value': {'activated': True, 'interval': 600, 'proxy': ('env_proxy', 'env'), 'server_data': {'server': 's', 'site': 'mysite', 'protocol': ('https', None)}}, 'condition': {'host_folder': '/%s/' % FOLDER_PATH}},\n] + agent_config['cmk_update_agent']\n",
    );
    write(
        &root,
        "etc/check_mk/multisite.d/wato/global.mk",
        "agent_deployment_enabled = True\nagent_deployment_host_selection = {'match_exclude_hosts': ['db01']}\n",
    );
    (dir, root)
}

fn bakery(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agent-bakery"))
        .arg("--site-root")
        .arg(root)
        .args(args)
        .env_remove("OMD_ROOT")
        .env_remove("AGENT_SIGN_PASSPHRASE")
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], 1);
    v
}

#[test]
fn bake_targets_status_test_host_config() {
    let (_d, root) = site();
    let v = json(&bakery(&root, &["bake", "--json"]));
    assert_eq!(v["platforms"].as_array().unwrap().len(), 3);
    assert_eq!(v["platforms"][0]["platform"], "linux_deb");
    assert_eq!(v["platforms"][0]["packages"], 2);
    assert_eq!(v["platforms"][0]["targets"], 4);
    let deb = fs::read_dir(root.join("var/check_mk/agents/linux_deb"))
        .unwrap()
        .count();
    assert_eq!(deb, 3, "two packages and references/");
    // Again, as text: nothing to build, one summary line per platform.
    let o = bakery(&root, &["bake"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("linux_deb: 2 packages (0 built, 0 removed), 4 targets\n"),
        "{text}"
    );

    let t = json(&bakery(&root, &["targets", "--json"]));
    let rows = t["packages"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let web = rows
        .iter()
        .find(|r| {
            r["platform"] == "linux_rpm"
                && r["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == "web01")
        })
        .unwrap();
    assert_eq!(web["signed"], false);
    assert_eq!(web["targets"], serde_json::json!(["db01", "web01"]));

    let s = json(&bakery(&root, &["status", "--json"]));
    assert_eq!(s["job"]["state"], "finished");
    assert_eq!(s["platforms"][2]["packages"], 2);

    let ok = bakery(&root, &["test-host", "web01", "--json"]);
    assert_eq!(ok.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["allowed"], true);
    assert_eq!(v["rules"][0]["id"], "r1");
    assert_eq!(v["rules"][0]["folder"], "/wato/linux/");
    assert_eq!(v["value"]["interval"], 600);
    assert_eq!(v["config"]["interval"], 600);
    let refused = bakery(&root, &["test-host", "db01"]);
    assert_eq!(refused.status.code(), Some(1));
    let text = String::from_utf8(refused.stdout).unwrap();
    assert!(
        text.contains(
            "agent updates are disabled for host name db01 because it is on the exclusion list"
        ),
        "{text}"
    );

    let c = json(&bakery(&root, &["config", "--json"]));
    assert_eq!(c["hosts"]["zr"], Value::Null);
    // Values as Checkmk reads them: tuples become arrays, nothing normalised.
    assert_eq!(
        c["hosts"]["web01"]["proxy"],
        serde_json::json!(["env_proxy", "env"])
    );
    assert_eq!(
        c["hosts"]["web01"]["server_data"]["protocol"],
        serde_json::json!(["https", null])
    );
    let one = json(&bakery(&root, &["config", "web01", "--json"]));
    assert_eq!(one["hosts"].as_object().unwrap().len(), 1);
    assert_eq!(bakery(&root, &["config", "nope"]).status.code(), Some(2));
}

#[test]
fn errors_exit_2_and_name_the_problem() {
    let (d, root) = site();
    let o = Command::new(env!("CARGO_BIN_EXE_agent-bakery"))
        .arg("status")
        .env_remove("OMD_ROOT")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--site-root"));
    let o = bakery(&root, &["bake", "--platform", "solaris_pkg"]);
    assert_eq!(o.status.code(), Some(2));
    // Sign with a wrong passphrase: exit 2, nothing baked.
    let store = d.path().join("keys");
    let ks = agent_sign::KeyStore::open(&store).unwrap();
    ks.import(
        include_str!("../../../crates/agent-sign/tests/data/pyca.combined.pem"),
        "signature",
        "cmkadmin",
        &agent_sign::Passphrase::new("checkmk-fixture-pass"),
        agent_sign::KdfParams::insecure_for_tests(10),
    )
    .unwrap();
    let pass = d.path().join("pass");
    fs::write(&pass, "wrong\n").unwrap();
    let o = bakery(
        &root,
        &[
            "bake",
            "--sign",
            "1",
            "--key-store",
            store.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("signing with key #1"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!root.join("var/check_mk/agents/linux_deb").exists());
    fs::write(&pass, "checkmk-fixture-pass\n").unwrap();
    let v = json(&bakery(
        &root,
        &[
            "bake",
            "--json",
            "--sign",
            "1",
            "--key-store",
            store.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
    ));
    assert_eq!(v["signed"], true);
    let t = json(&bakery(&root, &["targets", "--json"]));
    assert!(
        t["packages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["signed"] == true)
    );
}
