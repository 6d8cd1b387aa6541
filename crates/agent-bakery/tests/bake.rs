//! Baking: targets, layout, hashes, jobs, signing, and bad input that must change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use agent_bakery::{
    BakeLock, BakeOptions, Error, JobState, JobStatus, Layout, Platform, SignWith, VANILLA,
};
use agent_sign::{KdfParams, KeyStore, Passphrase, TrustedCertificates, VerifyPolicy};
use common::*;
use sha2::Digest as _;

const COMBINED: &str = include_str!("../../agent-sign/tests/data/pyca.combined.pem");
const PASS: &str = "checkmk-fixture-pass";

fn key_store(dir: &Path) -> (std::path::PathBuf, u64) {
    let store_dir = dir.join("keys");
    let store = KeyStore::open(&store_dir).unwrap();
    let entry = store
        .import(
            COMBINED,
            "signature",
            "cmkadmin",
            &Passphrase::new(PASS),
            KdfParams::insecure_for_tests(10),
        )
        .unwrap();
    (store_dir, entry.id)
}

fn hash(root: &Path, p: Platform, target: &str) -> String {
    Layout::new(root).reference(p, target).unwrap()
}

#[test]
fn targets_share_packages_and_links_are_relative() {
    let s = site();
    let report = bake(&s.root);
    // None, 3600 (zr + generic root), 600 (web01, web02, app01), 1200 (win01).
    for r in &report.platforms {
        assert_eq!((r.packages, r.targets), (4, 8), "{r:?}");
    }
    let p = Platform::LinuxDeb;
    assert_eq!(hash(&s.root, p, "web01"), hash(&s.root, p, "web02"));
    assert_eq!(hash(&s.root, p, "web01"), hash(&s.root, p, "app01"));
    assert_eq!(hash(&s.root, p, "db01"), hash(&s.root, p, VANILLA));
    assert_eq!(
        hash(&s.root, p, "zr"),
        hash(&s.root, p, "_GENERIC[%2Fwato%2F]")
    );
    assert_ne!(hash(&s.root, p, "zr"), hash(&s.root, p, "web01"));
    let h = hash(&s.root, p, "web01");
    assert!(
        h.len() == 16
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let link = fs::read_link(
        s.root
            .join("var/check_mk/agents/linux_deb/references/web01"),
    )
    .unwrap();
    assert_eq!(link, Path::new("..").join(&h));
    // Platforms differ in hash.
    assert_ne!(hash(&s.root, Platform::LinuxRpm, "web01"), h);
    let job = JobStatus::read(&s.root).unwrap().unwrap();
    assert_eq!(
        (job.state, job.error.as_deref()),
        (JobState::Finished, None)
    );
    let log = fs::read_to_string(s.root.join("var/log/agent_bakery.log")).unwrap();
    assert!(
        log.contains("bake: job initialized") && log.contains("bake: finished"),
        "{log}"
    );
}

/// The log's messages, without the time and pid prefix.
fn log_messages(root: &Path) -> Vec<String> {
    fs::read_to_string(root.join(agent_bakery::LOG_FILE))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, m)| m).to_owned())
        .collect()
}

#[test]
fn a_bake_job_goes_through_initialized_running_finished_with_a_log() {
    use std::sync::{Arc, Mutex};
    let s = site();
    // What the job file and the log hold each time the job reaches a state.
    type Seen = Vec<(JobState, JobStatus, Vec<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let mut o = opts();
    let (root, sink) = (s.root.clone(), Arc::clone(&seen));
    o.job_hook = Some(Box::new(move |state| {
        let file = JobStatus::read(&root).unwrap().unwrap();
        sink.lock()
            .unwrap()
            .push((state, file, log_messages(&root)));
    }));
    // While packages are built, the job file says `running` and the log has the plan.
    let mut during = Vec::new();
    agent_bakery::bake(&s.root, &o, &mut |_| {
        let file = JobStatus::read(&s.root).unwrap().unwrap();
        during.push((file.state, log_messages(&s.root)));
    })
    .unwrap();

    let seen = seen.lock().unwrap();
    let states: Vec<JobState> = seen.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(
        states,
        [JobState::Initialized, JobState::Running, JobState::Finished]
    );
    for (state, file, _) in seen.iter() {
        assert_eq!(
            (file.state, file.kind.as_str()),
            (*state, "bake"),
            "{file:?}"
        );
    }
    let initialized = vec!["bake: job initialized".to_owned()];
    assert_eq!(seen[0].2, initialized);
    assert_eq!(seen[1].2, initialized);
    assert_eq!((seen[0].1.finished, seen[1].1.finished), (None, None));

    // 8 targets, 4 configurations, 3 platforms: 12 packages.
    let planned = "8 targets, 4 distinct configurations, 3 platforms, revision 1".to_owned();
    assert_eq!(during.len(), 12, "{during:?}");
    for (state, log) in &during {
        assert_eq!(*state, JobState::Running);
        assert_eq!(log, &[initialized[0].clone(), planned.clone()]);
    }

    let finished = &seen[2].1;
    assert_eq!(
        (finished.error.as_deref(), finished.progress),
        (None, (12, 12))
    );
    assert!(finished.finished.is_some_and(|t| t >= finished.started));
    let mut want = vec![initialized[0].clone(), planned];
    for p in Platform::ALL {
        want.push(format!(
            "{}: 4 packages (4 built, 0 removed), 8 targets",
            p.id()
        ));
    }
    want.push("bake: finished".into());
    assert_eq!(seen[2].2, want);
    assert_eq!(log_messages(&s.root), want);
}

#[test]
fn hash_is_stable_ignores_mtime_and_follows_content_and_mode() {
    let s = site();
    bake(&s.root);
    let before = hash(&s.root, Platform::LinuxTgz, "web01");
    bake(&s.root);
    assert_eq!(hash(&s.root, Platform::LinuxTgz, "web01"), before);
    let agent = s.root.join("share/check_mk/agents/check_mk_agent.linux");
    let f = fs::File::options().write(true).open(&agent).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(100))
        .unwrap();
    drop(f);
    bake(&s.root);
    assert_eq!(
        hash(&s.root, Platform::LinuxTgz, "web01"),
        before,
        "touch changed the hash"
    );
    fs::set_permissions(&agent, fs::Permissions::from_mode(0o700)).unwrap();
    bake(&s.root);
    let after_mode = hash(&s.root, Platform::LinuxTgz, "web01");
    assert_ne!(after_mode, before, "a mode change must change the hash");
    let mut bytes = fs::read(&agent).unwrap();
    bytes[5] ^= 1;
    fs::write(&agent, bytes).unwrap();
    bake(&s.root);
    assert_ne!(hash(&s.root, Platform::LinuxTgz, "web01"), after_mode);
    // The old packages were removed.
    let dir = s.root.join("var/check_mk/agents/linux_tgz");
    let files = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .count();
    assert_eq!(files, 4);
}

#[test]
fn rebake_after_a_rule_change_rebuilds_only_changed_packages_and_deleted_hosts_lose_links() {
    let s = site();
    bake(&s.root);
    let win_before = hash(&s.root, Platform::LinuxDeb, "win01");
    let web_before = hash(&s.root, Platform::LinuxDeb, "web01");
    write(
        &s.root,
        &format!("{}/rules.mk", wato("linux")),
        &rules_mk(&[DB_OFF_RULE, &LINUX_RULE.replace("600", "900")]),
    );
    write(
        &s.root,
        &format!("{}/hosts.mk", wato("linux/deep")),
        &hosts_mk(&[]),
    );
    let report = bake(&s.root);
    let deb = report
        .platforms
        .iter()
        .find(|r| r.platform == Platform::LinuxDeb)
        .unwrap();
    assert_eq!(deb.built, 1, "{deb:?}");
    assert_eq!(deb.removed, 1);
    assert_eq!(hash(&s.root, Platform::LinuxDeb, "win01"), win_before);
    assert_ne!(hash(&s.root, Platform::LinuxDeb, "web01"), web_before);
    assert!(
        Layout::new(&s.root)
            .reference(Platform::LinuxDeb, "app01")
            .is_none()
    );
    assert!(
        !s.root
            .join("var/check_mk/agents/linux_deb/references/app01")
            .exists()
    );
}

#[test]
fn bake_and_sign_signs_and_a_changed_package_is_unsigned() {
    let s = site();
    let (store, id) = key_store(s.dir.path());
    let mut o = opts();
    o.sign = Some(SignWith {
        key_store: store.clone(),
        key_id: id,
        passphrase: Passphrase::new(PASS),
    });
    let report = agent_bakery::bake(&s.root, &o, &mut |_| {}).unwrap();
    assert!(report.signed);
    let layout = Layout::new(&s.root);
    let entry = KeyStore::open(&store).unwrap().get(id).unwrap();
    let trusted: TrustedCertificates = [entry.certificate].into_iter().collect();
    let clock = agent_sign::FixedClock(1_767_225_600);
    for p in Platform::ALL {
        for (target, h) in layout.references(p) {
            let bytes = fs::read(layout.package_path(p, &h)).unwrap();
            let sigs = layout.signatures(p, &h).unwrap();
            assert_eq!(sigs.len(), 1, "{target}");
            let r = agent_sign::verify_package(
                &bytes,
                &sigs,
                &trusted,
                VerifyPolicy::default(),
                &clock,
            );
            assert_eq!(r.log, ["Signature check OK."], "{target}");
        }
    }
    // Change web01's rule: its new package is unsigned, win01's keeps its signature.
    write(
        &s.root,
        &format!("{}/rules.mk", wato("linux")),
        &rules_mk(&[DB_OFF_RULE, &LINUX_RULE.replace("600", "900")]),
    );
    bake(&s.root);
    let web = agent_bakery::host_package(&s.root, "web01", Platform::LinuxDeb)
        .unwrap()
        .unwrap();
    assert!(web.signatures.is_empty());
    let win = agent_bakery::host_package(&s.root, "win01", Platform::LinuxDeb)
        .unwrap()
        .unwrap();
    assert_eq!(win.signatures.len(), 1);
    // "Sign agents" signs the rest.
    let n = agent_bakery::sign(
        &s.root,
        &SignWith {
            key_store: store,
            key_id: id,
            passphrase: Passphrase::new(PASS),
        },
    )
    .unwrap();
    assert_eq!(n, 12);
    let web = agent_bakery::host_package(&s.root, "web01", Platform::LinuxDeb)
        .unwrap()
        .unwrap();
    assert_eq!(web.signatures.len(), 1);
}

#[test]
fn every_signed_package_is_recorded_in_the_signing_log() {
    let s = site();
    let (store, id) = key_store(s.dir.path());
    let with = || SignWith {
        key_store: store.clone(),
        key_id: id,
        passphrase: Passphrase::new(PASS),
    };
    let mut o = opts();
    o.sign = Some(with());
    agent_bakery::bake(&s.root, &o, &mut |_| {}).unwrap();
    let log = agent_sign::SigningLog::new(s.root.join(agent_bakery::SIGNING_LOG));
    let entries = log.verify().unwrap();
    let layout = Layout::new(&s.root);
    let fingerprint = KeyStore::open(&store)
        .unwrap()
        .get(id)
        .unwrap()
        .certificate
        .fingerprint_sha256();
    // One entry per package of every platform, each naming the bytes, the agent hash and
    // the hosts that get it.
    assert_eq!(entries.len(), 12);
    for p in Platform::ALL {
        for (target, h) in layout.references(p) {
            let bytes = fs::read(layout.package_path(p, &h)).unwrap();
            let sha = hex::encode(sha2::Sha256::digest(&bytes));
            let e = entries
                .iter()
                .find(|e| e.package_sha256 == sha)
                .unwrap_or_else(|| panic!("{target} on {p:?} is not in the log"));
            assert_eq!(e.agent_hash.as_deref(), Some(h.as_str()));
            assert_eq!(e.key_fingerprint, fingerprint);
            if !target.starts_with('_') {
                assert!(
                    e.hosts.contains(&target),
                    "{target} missing in {:?}",
                    e.hosts
                );
            } else {
                assert!(e.hosts.iter().all(|h| !h.starts_with('_')));
            }
        }
    }
    let web = hash(&s.root, Platform::LinuxDeb, "web01");
    let e = entries
        .iter()
        .find(|e| e.agent_hash.as_deref() == Some(web.as_str()))
        .unwrap();
    let mut hosts = e.hosts.clone();
    hosts.sort();
    assert_eq!(hosts, ["app01", "web01", "web02"]);

    // "Sign agents" records its signatures as well, after the bake's.
    assert_eq!(agent_bakery::sign(&s.root, &with()).unwrap(), 12);
    assert_eq!(log.verify().unwrap().len(), 24);

    // A damaged log refuses signing, and nothing changes.
    let text = fs::read_to_string(log.path()).unwrap();
    fs::write(log.path(), text.replacen("web01", "web09", 1)).unwrap();
    let sig_path = layout.signatures_path(Platform::LinuxDeb, &web);
    let sigs_before = fs::read(&sig_path).unwrap();
    let err = agent_bakery::sign(&s.root, &with()).unwrap_err();
    assert!(matches!(err, Error::SigningLog { .. }), "{err}");
    assert_eq!(fs::read(&sig_path).unwrap(), sigs_before);
    let err = fails_untouched(&s.root, &o);
    assert!(matches!(err, Error::SigningLog { .. }), "{err}");
}

/// Bakes with `o` expecting an error; checks that packages and links did not change.
fn fails_untouched(root: &Path, o: &BakeOptions) -> Error {
    let before = snapshot(root);
    assert!(!before.is_empty());
    let err = agent_bakery::bake(root, o, &mut |_| {}).unwrap_err();
    assert_eq!(
        snapshot(root),
        before,
        "packages or links changed after: {err}"
    );
    let job = JobStatus::read(root).unwrap().unwrap();
    assert_eq!(job.state, JobState::Finished);
    assert!(job.error.is_some());
    err
}

#[test]
fn wrong_passphrase_fails_before_any_change() {
    let s = site();
    bake(&s.root);
    let (store, id) = key_store(s.dir.path());
    let mut o = opts();
    o.sign = Some(SignWith {
        key_store: store,
        key_id: id,
        passphrase: Passphrase::new("wrong"),
    });
    let err = fails_untouched(&s.root, &o);
    assert!(matches!(err, Error::Sign { .. }), "{err}");
}

#[test]
fn syntax_error_in_rules_names_file_and_line() {
    let s = site();
    bake(&s.root);
    let path = s.root.join(wato("linux")).join("rules.mk");
    fs::write(&path, "agent_config['cmk_update_agent'] = [\n{'id': 'x', 'value': {'activated': True,}, 'condition': {}\n] + agent_config['cmk_update_agent']\n").unwrap();
    let err = fails_untouched(&s.root, &opts());
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}, line 3:", path.display())),
        "{text}"
    );
}

#[test]
fn unknown_value_shape_names_the_rule() {
    let s = site();
    bake(&s.root);
    write(
        &s.root,
        &format!("{}/rules.mk", wato("windows")),
        &rules_mk(&[
            "{'id': 'odd-rule', 'value': {'activated': True, 'edition': 'arm64'}, 'condition': {}}",
        ]),
    );
    let text = fails_untouched(&s.root, &opts()).to_string();
    assert!(
        text.contains("rule odd-rule") && text.contains("edition") && text.contains("line 6"),
        "{text}"
    );
}

#[test]
fn a_regex_neither_engine_takes_is_refused_with_the_rule_id() {
    let s = site();
    bake(&s.root);
    write(
        &s.root,
        &format!("{}/rules.mk", wato("windows")),
        &rules_mk(&[
            "{'id': 'lookahead', 'value': {'activated': True}, 'condition': {'host_name': [{'$regex': 'web(?=0'}]}}",
        ]),
    );
    let text = fails_untouched(&s.root, &opts()).to_string();
    assert!(
        text.contains("rule lookahead") && text.contains("cannot honour"),
        "{text}"
    );
}

#[test]
fn a_broken_regex_in_a_rule_set_the_bakery_does_not_use_is_a_warning() {
    let s = site();
    write(
        &s.root,
        &format!("{}/rules.mk", wato("windows")),
        &format!(
            "{}\nchecks.setdefault('filesystem', [])\n\ncheckgroup_parameters['filesystem'] = [\n\
             {{'id': 'fs1', 'value': {{'levels': (80.0, 90.0)}}, 'condition': {{'host_name': [{{'$regex': '(?!db.*'}}]}}}},\n\
             ] + checkgroup_parameters['filesystem']\n",
            rules_mk(&[WIN_RULE])
        ),
    );
    let report = bake(&s.root);
    let w: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert!(
        w.iter().any(|w| w.contains("rules.mk, line")
            && w.contains("fs1")
            && w.contains("checkgroup_parameters:filesystem")),
        "{w:?}"
    );
    assert!(
        Layout::new(&s.root)
            .reference(Platform::LinuxDeb, "win01")
            .is_some()
    );
}

#[test]
fn host_names_with_slash_or_dotdot_are_refused() {
    for bad in ["../../etc/passwd", "..", "a/b"] {
        let s = site();
        bake(&s.root);
        write(
            &s.root,
            &format!("{}/hosts.mk", wato("windows")),
            &hosts_mk(&[(bad, "prod")]),
        );
        let err = fails_untouched(&s.root, &opts());
        assert!(matches!(err, Error::HostName { line: 3, .. }), "{err}");
        let p = s
            .root
            .join("var/check_mk/agents/linux_deb/references")
            .join(bad);
        assert!(!fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()));
        assert!(agent_bakery::host_package(&s.root, bad, Platform::LinuxDeb).is_err());
    }
}

#[test]
fn missing_agent_file_is_named() {
    let s = site();
    bake(&s.root);
    let agent = s.root.join("share/check_mk/agents/check_mk_agent.linux");
    fs::remove_file(&agent).unwrap();
    let err = fails_untouched(&s.root, &opts());
    assert!(
        err.to_string().contains(&agent.display().to_string()),
        "{err}"
    );
    // A missing updater matters only when a rule activates it.
    let s = site();
    bake(&s.root);
    fs::remove_file(
        s.root
            .join("share/check_mk/agents/plugins/cmk-update-agent"),
    )
    .unwrap();
    let err = fails_untouched(&s.root, &opts());
    assert!(
        err.to_string().contains("plugins/cmk-update-agent"),
        "{err}"
    );
}

#[test]
fn full_disk_during_a_bake_changes_nothing() {
    let s = site();
    bake(&s.root);
    write(
        &s.root,
        &format!("{}/rules.mk", wato("linux")),
        &rules_mk(&[&LINUX_RULE.replace("600", "900")]),
    );
    let mut o = opts();
    o.fault = Some(Box::new(|step| {
        if step == 2 {
            Err(std::io::Error::from_raw_os_error(28))
        } else {
            Ok(())
        }
    }));
    let err = fails_untouched(&s.root, &o);
    assert!(err.to_string().contains("No space left on device"), "{err}");
    // No temporary files are left behind.
    for p in Platform::ALL {
        let dir = s.root.join("var/check_mk/agents").join(p.id());
        assert!(
            fs::read_dir(dir)
                .unwrap()
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with(".new-"))
        );
    }
}

#[test]
fn a_second_bake_is_refused_with_the_holder_named() {
    let s = site();
    bake(&s.root);
    let before = snapshot(&s.root);
    let lock = BakeLock::acquire(&s.root, "bake").unwrap();
    let err = agent_bakery::bake(&s.root, &opts(), &mut |_| {}).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::BakeRunning { .. }), "{text}");
    assert!(
        text.contains(&format!("bake by pid {}", std::process::id())),
        "{text}"
    );
    assert_eq!(snapshot(&s.root), before);
    drop(lock);
    bake(&s.root);
}

#[test]
fn readers_never_see_a_missing_link_during_rebakes() {
    let s = site();
    bake(&s.root);
    let link = s
        .root
        .join("var/check_mk/agents/linux_tgz/references/web01");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (link, stop) = (link, stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                fs::read_link(&link).expect("the link vanished during a re-bake");
                reads += 1;
            }
            reads
        })
    };
    for interval in ["900", "600", "900"] {
        write(
            &s.root,
            &format!("{}/rules.mk", wato("linux")),
            &rules_mk(&[DB_OFF_RULE, &LINUX_RULE.replace("600", interval)]),
        );
        let mut o = opts();
        o.platforms = vec![Platform::LinuxTgz];
        agent_bakery::bake(&s.root, &o, &mut |_| {}).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
}

fn deb_version(root: &Path, target: &str) -> String {
    let deb = package_of(root, Platform::LinuxDeb, target);
    run(std::process::Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .arg("Version"))
    .trim()
    .to_owned()
}

#[test]
fn bake_revision_counts_newly_baked_packages_only() {
    if !have("dpkg-deb", "dpkg") {
        return;
    }
    let s = site();
    write(
        &s.root,
        "etc/check_mk/multisite.d/wato/global.mk",
        "apply_bake_revision = True\n",
    );
    bake(&s.root);
    let before = snapshot(&s.root);
    // Nothing changed: every package stays as it is, revision 1.
    bake(&s.root);
    assert_eq!(snapshot(&s.root), before);
    let web = hash(&s.root, Platform::LinuxDeb, "web01");
    assert_eq!(deb_version(&s.root, "web01"), format!("{CMK}-1.{web}"));
    // A changed configuration is a newly baked package: revision 2; the others keep 1.
    write(
        &s.root,
        &format!("{}/rules.mk", wato("linux")),
        &rules_mk(&[DB_OFF_RULE, &LINUX_RULE.replace("600", "900")]),
    );
    bake(&s.root);
    let web = hash(&s.root, Platform::LinuxDeb, "web01");
    assert_eq!(deb_version(&s.root, "web01"), format!("{CMK}-2.{web}"));
    let zr = hash(&s.root, Platform::LinuxDeb, "zr");
    assert_eq!(deb_version(&s.root, "zr"), format!("{CMK}-1.{zr}"));
}

#[test]
fn rebake_without_changes_keeps_signatures_with_bake_revision_on() {
    let s = site();
    write(
        &s.root,
        "etc/check_mk/multisite.d/wato/global.mk",
        "apply_bake_revision = True\n",
    );
    let (store, id) = key_store(s.dir.path());
    let mut o = opts();
    o.sign = Some(SignWith {
        key_store: store,
        key_id: id,
        passphrase: Passphrase::new(PASS),
    });
    agent_bakery::bake(&s.root, &o, &mut |_| {}).unwrap();
    let before = snapshot(&s.root);
    let report = bake(&s.root);
    assert!(report.platforms.iter().all(|r| r.built == 0), "{report:?}");
    assert_eq!(
        snapshot(&s.root),
        before,
        "bytes and signature lists unchanged"
    );
    let layout = Layout::new(&s.root);
    let web = hash(&s.root, Platform::LinuxDeb, "web01");
    assert_eq!(
        layout.signatures(Platform::LinuxDeb, &web).unwrap().len(),
        1
    );
}

#[test]
fn bake_revision_defaults_follow_the_site_version() {
    use agent_bakery::apply_bake_revision;
    use py_literal::PyValue;
    // Before 2.3 the revision was always applied; since 2.3 it is off unless set.
    assert!(apply_bake_revision(None, "2.2.0p20"));
    assert!(apply_bake_revision(None, "2.1.0p1"));
    assert!(!apply_bake_revision(None, "2.3.0p9"));
    assert!(!apply_bake_revision(None, "2.4.0b1"));
    assert!(!apply_bake_revision(
        Some(&PyValue::Bool(false)),
        "2.2.0p20"
    ));
    assert!(apply_bake_revision(Some(&PyValue::Bool(true)), "2.3.0p9"));
}

#[test]
fn a_2_2_site_gets_a_bake_revision_without_the_setting() {
    if !have("dpkg-deb", "dpkg") {
        return;
    }
    let s = site();
    let mut o = opts();
    o.cmk_version = Some("2.2.0p20".into());
    agent_bakery::bake(&s.root, &o, &mut |_| {}).unwrap();
    write(
        &s.root,
        &format!("{}/rules.mk", wato("linux")),
        &rules_mk(&[DB_OFF_RULE, &LINUX_RULE.replace("600", "900")]),
    );
    agent_bakery::bake(&s.root, &o, &mut |_| {}).unwrap();
    let web = hash(&s.root, Platform::LinuxDeb, "web01");
    assert_eq!(deb_version(&s.root, "web01"), format!("2.2.0p20-2.{web}"));
}
