//! The Agent Bakery (`agent-bakery`) on a generated site.
//!
//! `cargo bench -p toolkit-benches --bench bakery`.
//!
//! The site: 10,000 hosts in 100 folders, 200 "Agent updater" rules (one root rule, one rule
//! per folder setting one of 50 intervals, 99 root rules with tag and host-name conditions),
//! giving 52 distinct configurations (50 intervals, the root rule's for the generic package, none). The agent is 100 KiB, the updater binary 1 MiB of
//! poorly compressible bytes.
//!
//! * `bakery_rules/evaluate_10000_hosts`: every target's matching, merge and normalisation
//!   ([`SiteConfig::plan`]) on a site already read.
//! * `bakery_rules/read_and_evaluate`: the same including reading all files.
//! * `bakery_bake/full_3_platforms`: a full bake (deb, rpm, tgz) from an empty
//!   `var/check_mk/agents` (156 packages, 30,006 links).
//! * `bakery_bake/deb_tgz`: the same for deb and tgz only, and
//!   `bakery_bake/reference_dpkg_deb_tar_czf`: `dpkg-deb --build -Zgzip -z6` and
//!   `tar czf` over the same 52 payload trees (skipped when dpkg-deb is missing), and
//!   `bakery_bake/reference_rpmbuild`: `rpmbuild -bb` (gzip level 6, no post-processing) of
//!   the same trees, so that the full bake has a reference for all three formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::hint::black_box;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use agent_bakery::{AgentFiles, BakeOptions, Platform, SiteConfig};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use toolkit_benches::Rng;

const FOLDERS: usize = 100;
const HOSTS_PER_FOLDER: usize = 100;

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

fn rules_mk(rules: &[String]) -> String {
    format!(
        "agent_config.setdefault('cmk_update_agent', [])\n\nagent_config['cmk_update_agent'] = [\n{}\n] + agent_config['cmk_update_agent']\n",
        rules.join(",\n")
    )
}

fn generate(root: &Path) {
    let mut rng = Rng(0x5eed);
    let noise = |n: usize, rng: &mut Rng| -> Vec<u8> {
        (0..n).map(|_| (rng.next_u64() >> 56) as u8).collect()
    };
    write(
        root,
        "share/check_mk/agents/check_mk_agent.linux",
        &noise(100 * 1024, &mut rng),
    );
    write(
        root,
        "share/check_mk/agents/plugins/cmk-update-agent",
        &noise(1024 * 1024, &mut rng),
    );
    for f in ["check_mk_agent.linux", "plugins/cmk-update-agent"] {
        fs::set_permissions(
            root.join("share/check_mk/agents").join(f),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    let w = "etc/check_mk/conf.d/wato";
    write(
        root,
        &format!("{w}/.wato"),
        b"{'title': 'Main', 'attributes': {'bake_agent_package': True}}",
    );
    let mut root_rules = vec![
        "{'id': 'root', 'value': {'activated': True, 'server_data': {'server': 'cmk.example.com', 'site': 'mysite', 'protocol': 'https'}, 'signature_keys': ['-----BEGIN CERTIFICATE-----\\nMIIF\\n-----END CERTIFICATE-----\\n'], 'interval': 3600}, 'condition': {}}".to_string(),
    ];
    for i in 0..99 {
        root_rules.push(format!(
            "{{'id': 'extra{i}', 'value': {{'activated': True}}, 'condition': {{'host_tags': {{'criticality': {{'$ne': 'c{i}'}}}}, 'host_name': [{{'$regex': 'h{:02}'}}]}}}}",
            i % 100
        ));
    }
    write(
        root,
        &format!("{w}/rules.mk"),
        rules_mk(&root_rules).as_bytes(),
    );
    for f in 0..FOLDERS {
        let names: Vec<String> = (0..HOSTS_PER_FOLDER)
            .map(|h| format!("h{f:02}-{h:03}"))
            .collect();
        let mut hosts = format!(
            "all_hosts += [{}]\n\n",
            names
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let tags: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("'{n}': {{'site': 'mysite', 'criticality': 'c{}', 'networking': 'lan', 'agent': 'cmk-agent'}}", i % 7))
            .collect();
        hosts.push_str(&format!("host_tags.update({{{}}})\n\n", tags.join(", ")));
        let labels: Vec<String> = names
            .iter()
            .map(|n| format!("'{n}': {{'os': 'linux'}}"))
            .collect();
        hosts.push_str(&format!("host_labels.update({{{}}})\n", labels.join(", ")));
        write(root, &format!("{w}/f{f:02}/hosts.mk"), hosts.as_bytes());
        let rule = format!(
            "{{'id': 'folder{f}', 'value': {{'activated': True, 'interval': {}}}, 'condition': {{'host_folder': '/%s/' % FOLDER_PATH}}}}",
            60 * (1 + f % 50)
        );
        write(
            root,
            &format!("{w}/f{f:02}/rules.mk"),
            rules_mk(&[rule]).as_bytes(),
        );
    }
}

fn opts(platforms: &[Platform]) -> BakeOptions {
    BakeOptions {
        platforms: platforms.to_vec(),
        site_id: Some("mysite".into()),
        cmk_version: Some("2.3.0p9".into()),
        ..BakeOptions::default()
    }
}

/// The 52 payload trees on disk, each with a DEBIAN/control, for dpkg-deb and tar.
fn payload_trees(root: &Path, out: &Path) -> Vec<std::path::PathBuf> {
    let site = SiteConfig::read(root, "mysite").unwrap();
    let plan = site.plan().unwrap();
    let files = AgentFiles::read(root, None).unwrap();
    let mut dirs = Vec::new();
    for (i, cfg) in plan.configs.iter().enumerate() {
        let text = cfg.as_ref().map(|c| c.cfg_text(&|_| None).unwrap());
        let payload = files.payload(cfg.as_ref(), text.as_deref()).unwrap();
        let dir = out.join(format!("tree{i}"));
        for f in &payload.files {
            let p = dir.join(&f.path[1..]);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, f.content.as_slice()).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(f.mode)).unwrap();
        }
        // A spec for rpmbuild that packages the tree as it is (no build, no post-processing).
        let files: String = payload
            .files
            .iter()
            .map(|f| format!("{}\n", f.path))
            .collect();
        write(
            &dir,
            "DEBIAN/agent.spec",
            format!(
                "Name: check-mk-agent\nVersion: 2.3.0p9\nRelease: 1\nSummary: agent\n\
                 License: GPL-2.0-only\nBuildArch: noarch\n%define __os_install_post %{{nil}}\n\
                 %define _build_id_links none\n%description\nagent\n%install\n\
                 cp -a {tree}/. %{{buildroot}}/\nrm -rf %{{buildroot}}/DEBIAN\n\
                 %files\n%defattr(-,root,root)\n{files}",
                tree = dir.display()
            )
            .as_bytes(),
        );
        write(
            &dir,
            "DEBIAN/control",
            b"Package: check-mk-agent\nVersion: 2.3.0p9-1\nArchitecture: all\nMaintainer: x <x@example.com>\nDescription: agent\n",
        );
        dirs.push(dir);
    }
    dirs
}

fn rules(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mysite");
    generate(&root);
    let site = SiteConfig::read(&root, "mysite").unwrap();
    assert_eq!(site.hosts.len(), FOLDERS * HOSTS_PER_FOLDER);
    assert_eq!(site.rules(agent_bakery::UPDATER_RULESET).len(), 200);
    let plan = site.plan().unwrap();
    assert_eq!(plan.configs.len(), 52);
    let mut group = c.benchmark_group("bakery_rules");
    group.sample_size(10);
    group.bench_function("evaluate_10000_hosts", |b| {
        b.iter(|| black_box(site.plan().unwrap()))
    });
    group.bench_function("read_and_evaluate", |b| {
        b.iter(|| black_box(SiteConfig::read(&root, "mysite").unwrap().plan().unwrap()))
    });
    group.finish();
}

fn bake(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mysite");
    generate(&root);
    let agents = root.join("var/check_mk/agents");
    let mut group = c.benchmark_group("bakery_bake");
    group.sample_size(10);
    for (name, platforms) in [
        ("full_3_platforms", &Platform::ALL[..]),
        ("deb_tgz", &[Platform::LinuxDeb, Platform::LinuxTgz][..]),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let _ = fs::remove_dir_all(&agents);
                },
                |()| agent_bakery::bake(&root, &opts(platforms), &mut |_| {}).unwrap(),
                BatchSize::PerIteration,
            )
        });
    }
    let have_dpkg = Command::new("dpkg-deb")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if have_dpkg {
        let trees = payload_trees(&root, &dir.path().join("trees"));
        let out = dir.path().join("out");
        fs::create_dir_all(&out).unwrap();
        group.bench_function("reference_dpkg_deb_tar_czf", |b| {
            b.iter(|| {
                for (i, t) in trees.iter().enumerate() {
                    let ok = Command::new("dpkg-deb")
                        .args(["--build", "-Zgzip", "-z6", "--root-owner-group"])
                        .arg(t)
                        .arg(out.join(format!("{i}.deb")))
                        .output()
                        .unwrap()
                        .status
                        .success();
                    assert!(ok);
                    let ok = Command::new("tar")
                        .arg("czf")
                        .arg(out.join(format!("{i}.tgz")))
                        .args(["--exclude=./DEBIAN", "-C"])
                        .arg(t)
                        .arg(".")
                        .status()
                        .unwrap()
                        .success();
                    assert!(ok);
                }
            })
        });
        let have_rpmbuild = Command::new("rpmbuild")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if have_rpmbuild {
            let top = dir.path().join("rpmbuild");
            group.bench_function("reference_rpmbuild", |b| {
                b.iter(|| {
                    for t in &trees {
                        let ok = Command::new("rpmbuild")
                            .args(["-bb", "--quiet", "--define"])
                            .arg(format!("_topdir {}", top.display()))
                            .args(["--define", "_binary_payload w6.gzdio"])
                            .arg(t.join("DEBIAN/agent.spec"))
                            .status()
                            .unwrap()
                            .success();
                        assert!(ok);
                    }
                })
            });
        } else {
            eprintln!("SKIP reference_rpmbuild: rpmbuild is not installed (apt-get install rpm)");
        }
    } else {
        eprintln!(
            "SKIP reference_dpkg_deb_tar_czf: dpkg-deb is not installed (apt-get install dpkg)"
        );
    }
    group.finish();
}

criterion_group!(benches, rules, bake);
criterion_main!(benches);
