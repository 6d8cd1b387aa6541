//! Packages checked by the real tools: dpkg-deb, dpkg --root, rpm, tar, python3.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use agent_bakery::{Layout, Platform};
use common::*;

#[test]
fn deb_metadata_contents_and_install_into_a_fake_root() {
    if !have("dpkg-deb", "dpkg") {
        return;
    }
    let s = site();
    bake(&s.root);
    let layout = Layout::new(&s.root);
    let hash = layout.reference(Platform::LinuxDeb, "web01").unwrap();
    let deb = layout.package_path(Platform::LinuxDeb, &hash);
    let field = |f: &str| {
        run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(f))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "check-mk-agent");
    assert_eq!(field("Architecture"), "all");
    assert_eq!(field("Version"), format!("{CMK}-1.{hash}"));
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(info.contains("postinst"), "{info}");
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for (mode, path) in [
        (
            "-rwxr-xr-x",
            "./usr/lib/check_mk_agent/plugins/600/cmk-update-agent",
        ),
        ("-rwxr-xr-x", "./usr/bin/cmk-update-agent"),
        ("-rwxr-xr-x", "./usr/bin/check_mk_agent"),
        ("-rw-r--r--", "./etc/check_mk/cmk-update-agent.cfg"),
        ("-rw-r--r--", "./etc/prelink.conf.d/cmk-update-agent.conf"),
        (
            "-rw-r--r--",
            "./usr/lib/systemd/system/cmk-update-agent.timer",
        ),
    ] {
        assert!(
            contents
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path) && l.contains("root/root")),
            "{mode} {path} missing in\n{contents}"
        );
    }
    // db01's rule deactivates the updater: no updater files.
    let db = package_of(&s.root, Platform::LinuxDeb, "db01");
    let db_contents = run(Command::new("dpkg-deb").arg("--contents").arg(&db));
    assert!(db_contents.contains("./usr/bin/check_mk_agent"));
    assert!(!db_contents.contains("cmk-update-agent"), "{db_contents}");

    if !have("dpkg", "dpkg") {
        return;
    }
    let fake = s.dir.path().join("fakeroot");
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        fs::create_dir_all(fake.join(d)).unwrap();
    }
    fs::write(fake.join("var/lib/dpkg/status"), "").unwrap();
    fs::write(fake.join("etc/prelink.conf"), "-l /usr/lib\n").unwrap();
    run(Command::new("dpkg")
        .arg(format!("--root={}", fake.display()))
        .arg(format!(
            "--admindir={}",
            fake.join("var/lib/dpkg").display()
        ))
        .args([
            "--force-not-root",
            "--force-script-chrootless",
            "--log=/dev/null",
            "-i",
        ])
        .arg(&deb));
    let plugin = fake.join("usr/lib/check_mk_agent/plugins/600/cmk-update-agent");
    assert_eq!(fs::read(&plugin).unwrap(), b"\x7fELF fake updater binary\n");
    assert_eq!(
        fs::metadata(&plugin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let cfg = fs::read_to_string(fake.join("etc/check_mk/cmk-update-agent.cfg")).unwrap();
    assert!(
        cfg.starts_with("# Created by Check_MK Agent Bakery.\n"),
        "{cfg}"
    );
    assert!(cfg.contains("'interval': 600"), "{cfg}");
    let wrapper = fs::read_to_string(fake.join("usr/bin/cmk-update-agent")).unwrap();
    assert!(wrapper.contains("exec /usr/lib/check_mk_agent/plugins/600/cmk-update-agent \"$@\""));
    // The postinst registered the prelink blacklist.
    assert_eq!(
        fs::read_to_string(fake.join("etc/prelink.conf")).unwrap(),
        "-l /usr/lib\n-c /etc/prelink.conf.d/cmk-update-agent.conf\n"
    );
    let status = fs::read_to_string(fake.join("var/lib/dpkg/status")).unwrap();
    assert!(
        status.contains(&format!("Version: {CMK}-1.{hash}")),
        "{status}"
    );
}

#[test]
fn rpm_metadata_contents_and_install_into_a_fake_root() {
    if !have("rpm", "rpm") {
        return;
    }
    let s = site();
    bake(&s.root);
    let layout = Layout::new(&s.root);
    let hash = layout.reference(Platform::LinuxRpm, "win01").unwrap();
    let rpm = layout.package_path(Platform::LinuxRpm, &hash);
    let q = run(Command::new("rpm")
        .args(["-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}"])
        .arg(&rpm));
    assert_eq!(q, format!("check-mk-agent {CMK} 1.{hash} noarch"));
    let list = run(Command::new("rpm").arg("-qlp").arg(&rpm));
    for path in [
        "/usr/lib/check_mk_agent/plugins/1200/cmk-update-agent",
        "/usr/bin/cmk-update-agent",
        "/etc/check_mk/cmk-update-agent.cfg",
        "/etc/prelink.conf.d/cmk-update-agent.conf",
        "/usr/bin/check_mk_agent",
    ] {
        assert!(list.lines().any(|l| l == path), "{path} missing in\n{list}");
    }
    let script = run(Command::new("rpm").args(["-qp", "--scripts"]).arg(&rpm));
    assert!(
        script.contains("prelink.conf.d/cmk-update-agent.conf"),
        "{script}"
    );
    let fake = s.dir.path().join("rpmroot");
    fs::create_dir_all(&fake).unwrap();
    run(Command::new("rpm").arg("--root").arg(&fake).arg("--initdb"));
    run(Command::new("rpm")
        .arg("--root")
        .arg(&fake)
        .args(["-i", "--nodeps", "--noscripts"])
        .arg(&rpm));
    let installed = run(Command::new("rpm")
        .arg("--root")
        .arg(&fake)
        .args(["-q", "check-mk-agent"]));
    assert_eq!(
        installed.trim(),
        format!("check-mk-agent-{CMK}-1.{hash}.noarch")
    );
    let plugin = fake.join("usr/lib/check_mk_agent/plugins/1200/cmk-update-agent");
    assert_eq!(
        fs::metadata(&plugin).unwrap().permissions().mode() & 0o777,
        0o755
    );
}

#[test]
fn tgz_contents_and_cfg_read_back_by_python() {
    let s = site();
    bake(&s.root);
    let tgz = package_of(&s.root, Platform::LinuxTgz, "zr");
    if have("tar", "tar") {
        let list = run(Command::new("tar").arg("-tzvf").arg(&tgz));
        assert!(
            list.lines().any(|l| l.starts_with("-rwxr-xr-x root/root")
                && l.ends_with(" usr/lib/check_mk_agent/plugins/3600/cmk-update-agent")),
            "{list}"
        );
        assert!(list.lines().any(|l| l.starts_with("-rw-r--r-- root/root")
            && l.ends_with(" etc/check_mk/cmk-update-agent.cfg")));
        let out = s.dir.path().join("x");
        fs::create_dir_all(&out).unwrap();
        run(Command::new("tar")
            .arg("-xzf")
            .arg(&tgz)
            .arg("-C")
            .arg(&out));
        let cfg = out.join("etc/check_mk/cmk-update-agent.cfg");
        if !have("python3", "python3") {
            return;
        }
        let json = run(Command::new("python3").arg("-c").arg(
            "import ast, json, sys; print(json.dumps(ast.literal_eval(open(sys.argv[1]).read()), sort_keys=True))",
        ).arg(&cfg));
        let got: serde_json::Value = serde_json::from_str(&json).unwrap();
        let want = serde_json::json!({
            "server": "checkmk.example.com", "site": "mysite", "protocol": "https",
            "ignore_update_url": false, "certificates": [PEM_CA], "interval": 3600,
            "proxy": null, "use_proxy_env": false, "signature_keys": [PEM_KEY],
        });
        assert_eq!(got, want);
    }
}

#[test]
fn packages_are_reproducible_across_sites() {
    let a = site();
    let b = site();
    bake(&a.root);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    bake(&b.root);
    for p in Platform::ALL {
        let pa = package_of(&a.root, p, "web01");
        let pb = package_of(&b.root, p, "web01");
        assert_eq!(pa.file_name(), pb.file_name(), "{p:?}");
        assert_eq!(
            fs::read(&pa).unwrap(),
            fs::read(&pb).unwrap(),
            "{p:?} bytes differ"
        );
    }
}
