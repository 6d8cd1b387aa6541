//! The server serving what the Agent Bakery baked (bakery.md §6.2, requirements 15, 16, 18):
//! a real site baked and signed by `agent-bakery` through `agent-sign`, the real server over
//! loopback HTTPS, answers read as the updater reads them.

use std::process::Command;
use std::sync::Arc;

use agent_bakery::GLOBALLY_DISABLED;
use agent_deploy::{Advertise, BakerySite, DeployStore, Limits, ServerHandle};
use agent_sign::PackageDigest;
use agent_wire::{Platform, RatingMode, RatingParams, Section, State, StatusResult, rate_section};
use serde_json::Value;

use crate::bakery_site::{BakerySiteFixture, have};
use crate::support::*;

struct World {
    site: BakerySiteFixture,
    _state: tempfile::TempDir,
    store: Arc<DeployStore>,
    handle: ServerHandle,
    pki: TestPki,
}

impl World {
    /// The site (baked and signed once, master switch as `enabled`) and a server for it.
    fn new(enabled: bool) -> World {
        let pki = TestPki::new("deploy");
        let site = BakerySiteFixture::new("127.0.0.1", &pki.ca_pem);
        site.deployment(enabled, None);
        site.bake_and_sign();
        let state = tempfile::tempdir().unwrap();
        DeployStore::set_user(state.path(), USER, USER_SECRET, 1000).unwrap();
        let store = Arc::new(
            DeployStore::open(state.path(), Advertise::default())
                .unwrap()
                .with_bakery(BakerySite {
                    root: site.root.clone(),
                    site_id: SITE.into(),
                }),
        );
        let handle = spawn_https(&store, Limits::default(), Arc::clone(&pki.tls));
        World {
            site,
            _state: state,
            store,
            handle,
            pki,
        }
    }

    fn post(&self, page: &str, pairs: &[(&str, &str)]) -> Value {
        let url = format!(
            "https://127.0.0.1:{}/{SITE}/check_mk/{page}",
            self.handle.local_addr().port()
        );
        let mut resp = https_agent(&self.pki.ca_pem)
            .post(&url)
            .send_form(pairs.iter().copied())
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// Registers `host`: (host secret, monitored).
    fn register(&self, host: &str) -> (String, bool) {
        let env = self.post(
            "register_agent.py",
            &[
                ("host", host),
                ("_username", USER),
                ("_secret", USER_SECRET),
                ("au_api", "2"),
            ],
        );
        assert_eq!(env["result_code"], 0, "{env}");
        (
            env["result"]["host_secret"].as_str().unwrap().to_owned(),
            env["result"]["monitored"].as_bool().unwrap(),
        )
    }

    /// `deploy_agent.py` for `host` (linux_deb): the envelope.
    fn deploy(&self, host: &str, secret: &str, mode: &str, aghash: &str) -> Value {
        self.post(
            "deploy_agent.py",
            &[
                ("mode", mode),
                ("host", host),
                ("host_secret", secret),
                ("os", "linux_deb"),
                ("aghash", aghash),
                ("installed_aghash", ""),
                ("au_api", "2"),
            ],
        )
    }

    fn status(&self, host: &str, secret: &str) -> Result<StatusResult, String> {
        let env = self.deploy(host, secret, "status", "");
        match env["result_code"].as_i64() {
            Some(0) => Ok(serde_json::from_value(env["result"].clone()).unwrap()),
            _ => Err(env["result"].as_str().unwrap().to_owned()),
        }
    }

    fn download(&self, host: &str, secret: &str, aghash: &str) -> Vec<u8> {
        use base64::Engine as _;
        let env = self.deploy(host, secret, "agent", aghash);
        assert_eq!(env["result_code"], 0, "{env}");
        base64::engine::general_purpose::STANDARD
            .decode(env["result"]["agent"].as_str().unwrap())
            .unwrap()
    }
}

/// How the "Check_MK Agent" service rates the error line of an updater whose last run failed
/// with `error`.
fn rating_of(error: &str, params: &RatingParams) -> State {
    let section = Section {
        last_check: Some(1_000.0),
        error: Some(error.to_owned()),
        ..Section::default()
    };
    let rating = rate_section(&section, params, RatingMode::Legacy, 1_000);
    let line = rating
        .lines
        .iter()
        .find(|l| l.text == format!("Update error: {error}"))
        .unwrap_or_else(|| panic!("no error line in {rating:?}"));
    line.state
}

#[test]
fn master_switch_off_refuses_and_on_serves_the_baked_package_with_its_signatures() {
    let w = World::new(false);
    let (secret, monitored) = w.register("web01");
    assert!(monitored, "web01 is a host of the site");

    // Off: status and download are refused with the bakery's text (result_code 1).
    let refused = w.status("web01", &secret).unwrap_err();
    assert_eq!(refused, GLOBALLY_DISABLED);
    let env = w.deploy("web01", &secret, "agent", &w.site.hash("web01"));
    assert_eq!(
        (env["result_code"].as_i64(), env["result"].as_str()),
        (Some(1), Some(GLOBALLY_DISABLED))
    );
    // A wrong secret is still a wrong secret, not a refusal text.
    let other = w.status("web01", &"x".repeat(64)).unwrap_err();
    assert!(other.contains("not registered"), "{other}");

    // On: the host's baked package, its agent hash and the signature made by bake --sign.
    w.site.deployment(true, None);
    let st = w.status("web01", &secret).unwrap();
    let hash = w.site.hash("web01");
    assert!(st.agent_available);
    assert_eq!(st.target_hash.as_deref(), Some(hash.as_str()));
    assert_eq!(st.signatures.len(), 1);
    let bytes = w.download("web01", &secret, &hash);
    assert_eq!(bytes, std::fs::read(w.site.package("web01")).unwrap());
    let signer = st.signatures[0].check(&PackageDigest::of(&bytes)).unwrap();
    assert_eq!(
        signer.fingerprint_sha256(),
        w.site.certificate().fingerprint_sha256()
    );
    // A hash the host's reference does not name is not served.
    let env = w.deploy("web01", &secret, "agent", "0123456789abcdef");
    assert_eq!(env["result_code"], 1, "{env}");
    if have("dpkg-deb", "dpkg") {
        let pkg = w.site.package("web01");
        let out = Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&pkg)
            .arg("Package")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "check-mk-agent"
        );
    }
    // The status view shows the bakery's target.
    let status = w
        .store
        .statuses()
        .into_iter()
        .find(|s| s.host_name == "web01")
        .unwrap();
    assert_eq!(status.target_hash.as_deref(), Some(hash.as_str()));
}

/// The server keeps the site's configuration while its files stay as they were; an operator's
/// change is seen at the next request even when it keeps the file's size and falls into the
/// clock tick of the change before (the file system's times are that coarse). Linux 6.13 and
/// later give a change after a `stat` a finer time, so there the stamps differ anyway; the
/// kernels of most production hosts do not.
#[test]
fn a_same_size_change_of_the_master_switch_is_seen_at_once() {
    let w = World::new(true);
    // Many rounds, so that some changes do fall into the tick of the one before.
    for _ in 0..50 {
        for enabled in [true, false] {
            // `True ` and `False`: the same size.
            w.site.set_global(if enabled {
                "agent_deployment_enabled = True \n"
            } else {
                "agent_deployment_enabled = False\n"
            });
            let decision = w.store.deployment_decision("web01").unwrap().unwrap();
            assert_eq!(decision.refusal("web01").is_none(), enabled, "{decision:?}");
        }
    }
}

/// Requirement 21: in a distributed setup a host the central site monitors itself gets
/// the central's own URL from `sites.mk` (its `multisiteurl`), as hosts of a remote site get
/// that site's; in a single site, even with its own entry in `sites.mk`, none is sent.
#[test]
fn a_host_of_the_central_site_gets_its_url_in_a_distributed_setup() {
    let w = World::new(true);
    let sites_mk = w.site.root.join(agent_deploy::SITES_MK);
    std::fs::create_dir_all(sites_mk.parent().unwrap()).unwrap();
    let url_of = |w: &World| {
        let env = w.post(
            "register_agent.py",
            &[
                ("host", "web01"),
                ("_username", USER),
                ("_secret", USER_SECRET),
                ("au_api", "2"),
            ],
        );
        assert_eq!(env["result_code"], 0, "{env}");
        env["result"]["update_url"].as_str().map(str::to_owned)
    };
    std::fs::write(
        &sites_mk,
        format!(
            "sites.update({{'{SITE}': {{'multisiteurl': 'https://central/{SITE}/check_mk/'}}}})\n"
        ),
    )
    .unwrap();
    assert_eq!(url_of(&w), None, "a single site sends no update_url");
    std::fs::write(
        &sites_mk,
        format!(
            "sites.update({{'{SITE}': {{'multisiteurl': 'https://central/{SITE}/check_mk/'}}, \
             'remote1': {{'multisiteurl': 'https://r1/remote1/check_mk/'}}}})\n"
        ),
    )
    .unwrap();
    assert_eq!(
        url_of(&w).as_deref(),
        Some(format!("https://central/{SITE}/check_mk/").as_str())
    );
}

#[test]
fn unselected_hosts_are_refused_with_the_reason_and_may_still_register() {
    let w = World::new(true);
    w.site
        .deployment(true, Some("{'match_folders': ['/wato/linux/']}"));
    let (web, _) = w.register("web01");
    // §6.2.7: registration ignores the selection; an unknown host registers unmonitored.
    let (db, monitored) = w.register("db02");
    assert!(monitored);
    let (ghost, monitored) = w.register("ghost");
    assert!(!monitored);

    assert!(w.status("web01", &web).unwrap().agent_available);
    let refused = w.status("db02", &db).unwrap_err();
    assert_eq!(
        refused,
        "agent updates are disabled for host name db02 because it is not in one of the selected folders"
    );
    let refused = w.status("ghost", &ghost).unwrap_err();
    assert!(
        refused.contains("not in one of the selected folders"),
        "{refused}"
    );
    // The folder's short form and the exclusion list (Checkmk's own reason text).
    w.site.deployment(
        true,
        Some("{'match_folders': ['linux'], 'match_exclude_hosts': ['web01']}"),
    );
    assert_eq!(
        w.status("web01", &web).unwrap_err(),
        "agent updates are disabled for host name web01 because it is on the exclusion list"
    );
    w.site.deployment(
        true,
        Some("{'match_hosts': ['~db'], 'match_site': ['mysite']}"),
    );
    assert!(w.status("db02", &db).unwrap().agent_available);
    assert!(
        w.status("web01", &web)
            .unwrap_err()
            .ends_with("because it is not in the list of selected hosts")
    );

    // The refusal was a contact: recorded, without a target.
    let st = w
        .store
        .statuses()
        .into_iter()
        .find(|s| s.host_name == "web01")
        .unwrap();
    assert_eq!(st.platform.as_deref(), Some("linux_deb"));

    // The "Check_MK Agent" service rates both texts, as the updater shows them, with the
    // user's states (requirement 16).
    let params = RatingParams {
        globally_disabled_state: State::Crit,
        host_disabled_state: State::Ok,
        ..RatingParams::default()
    };
    w.site.deployment(false, None);
    let global = w.status("web01", &web).unwrap_err();
    assert_eq!(
        rating_of(&format!("Agent Bakery: {global}"), &params),
        State::Crit
    );
    w.site.deployment(true, Some("{'match_hosts': ['db02']}"));
    let host = w.status("web01", &web).unwrap_err();
    assert_eq!(
        rating_of(&format!("Agent Bakery: {host}"), &params),
        State::Ok
    );
    assert_eq!(
        rating_of(&format!("Agent Bakery: {host}"), &RatingParams::default()),
        State::Warn
    );
}

#[test]
fn a_rebake_after_deactivation_serves_a_package_without_the_updater() {
    let w = World::new(true);
    let (secret, _) = w.register("web01");
    let before = w.status("web01", &secret).unwrap();
    let old = before.target_hash.unwrap();

    let (db, _) = w.register("db02");

    // §6.3: the rule deactivated and re-baked → web01's target is the package without the
    // updater (the stock one, signed by the first bake and sign: same bytes, same signature).
    w.site.deactivate_web01();
    w.site.bake();
    let st = w.status("web01", &secret).unwrap();
    let new = st.target_hash.clone().unwrap();
    assert_ne!(new, old);
    assert_eq!(new, w.site.hash(agent_bakery::VANILLA));
    let bytes = w.download("web01", &secret, &new);
    st.signatures[0].check(&PackageDigest::of(&bytes)).unwrap();
    // Requirement 15: a bake that changes bytes leaves them unsigned (status answers
    // AgentAvailable with empty Signatures) until they are signed again.
    let db_old = w.status("db02", &db).unwrap().target_hash.unwrap();
    w.site.set_interval(900);
    w.site.bake();
    let st = w.status("db02", &db).unwrap();
    assert_ne!(st.target_hash.as_deref(), Some(db_old.as_str()));
    assert!(st.agent_available && st.signatures.is_empty(), "{st:?}");
    w.site.bake_and_sign();
    let st = w.status("db02", &db).unwrap();
    assert_eq!(st.signatures.len(), 1);
    assert_eq!(w.status("web01", &secret).unwrap().target_hash, Some(new));
    // The old package is gone; asking for it is refused, not an internal error.
    let env = w.deploy("web01", &secret, "agent", &old);
    assert_eq!(env["result_code"], 1);
    assert!(
        env["result"].as_str().unwrap().contains("No agent"),
        "{env}"
    );
    if have("dpkg-deb", "dpkg") {
        let out = Command::new("dpkg-deb")
            .arg("--contents")
            .arg(w.site.package("web01"))
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("./usr/bin/check_mk_agent"), "{listing}");
        assert!(!listing.contains("cmk-update-agent"), "{listing}");
    }
}

#[test]
fn the_bakery_goes_before_published_packages_and_publish_fills_the_gaps() {
    let w = World::new(true);
    let (web, _) = w.register("web01");
    let (ghost, _) = w.register("ghost");
    let published = w
        .store
        .publish("web01", Platform::LinuxDeb, b"made elsewhere", &[], None)
        .unwrap();
    // The bake wins for web01/linux_deb.
    let st = w.status("web01", &web).unwrap();
    assert_eq!(st.target_hash, Some(w.site.hash("web01")));
    assert_ne!(st.target_hash, Some(published));
    // A host the bakery did not bake for gets the published package.
    let hash = w
        .store
        .publish("ghost", Platform::LinuxDeb, b"made elsewhere", &[], None)
        .unwrap();
    let st = w.status("ghost", &ghost).unwrap();
    assert_eq!(st.target_hash, Some(hash.clone()));
    assert_eq!(w.download("ghost", &ghost, &hash), b"made elsewhere");
    // The master switch is global: it stops published packages too.
    w.site.deployment(false, None);
    assert_eq!(w.status("ghost", &ghost).unwrap_err(), GLOBALLY_DISABLED);
}

#[test]
fn the_server_and_test_host_give_the_same_verdict_and_the_2_5_api_is_refused_too() {
    let w = World::new(true);
    let hosts = ["web01", "db02", "ghost"];
    let secrets: Vec<String> = hosts.iter().map(|h| w.register(h).0).collect();
    // Requirement 17: the status endpoint and "Test host name" (the library call behind
    // `agent-bakery test-host`) agree, for every selection key and host.
    for selection in [
        None,
        Some("{'match_site': ['mysite']}"),
        Some("{'match_site': ['othersite']}"),
        Some("{'match_folders': ['other']}"),
        Some("{'match_hosttags': {'agent': 'cmk-agent'}}"),
        Some("{'match_hosttags': ['no-agent']}"),
        Some("{'match_hostlabels': {'os': 'linux'}}"),
        Some("{'match_hostgroups': ['web']}"),
        Some("{'match_hosts': ['~web', 'ghost']}"),
        Some("{'match_exclude_hosts': ['db02']}"),
        Some("{'match_folders': ['/wato/'], 'match_exclude_hosts': ['web01']}"),
    ] {
        w.site.deployment(true, selection);
        let site = agent_bakery::SiteConfig::read(&w.site.root, SITE).unwrap();
        for (host, secret) in hosts.iter().zip(&secrets) {
            let expected = site.deployment_decision(host).refusal(host);
            let served = w.status(host, secret).err();
            assert_eq!(served, expected, "{host} with {selection:?}");
        }
    }
    // The 2.5 API (host authenticated by its client certificate) is refused the same way.
    w.site.deployment(false, None);
    let form = agent_wire::DeployForm {
        mode: agent_wire::DeployMode::Status,
        host: String::new(),
        host_secret: String::new(),
        installed_aghash: String::new(),
        aghash: String::new(),
        os: "linux_deb".into(),
        last_error: String::new(),
        au_api: String::new(),
    };
    match w
        .store
        .deploy_authenticated("web01", &form, std::time::SystemTime::now())
    {
        Err(agent_deploy::ServerError::Refused(text)) => assert_eq!(text, GLOBALLY_DISABLED),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unreadable_site_configuration_refuses_updates_but_not_registrations() {
    let w = World::new(true);
    let (secret, _) = w.register("web01");
    assert!(w.status("web01", &secret).unwrap().agent_available);
    std::fs::write(
        w.site.root.join("etc/check_mk/conf.d/wato/rules.mk"),
        "agent_config['cmk_update_agent'] = [{'id': \n",
    )
    .unwrap();
    // Fail closed: no package is handed out on a configuration that cannot be read.
    let err = w.status("web01", &secret).unwrap_err();
    assert_eq!(err, "internal error on the deployment server");
    let (_, monitored) = w.register("db02");
    assert!(!monitored);
}

#[test]
fn the_audit_knows_the_packages_the_bakery_signed() {
    let w = World::new(true);
    let (secret, _) = w.register("web01");
    let baked = w.status("web01", &secret).unwrap().target_hash.unwrap();
    let (other_secret, _) = w.register("db02");
    for (host, secret, installed) in [
        ("web01", &secret, baked.as_str()),
        ("db02", &other_secret, "0123456789abcdef"),
    ] {
        let env = w.post(
            "deploy_agent.py",
            &[
                ("mode", "status"),
                ("host", host),
                ("host_secret", secret),
                ("os", "linux_deb"),
                ("aghash", ""),
                ("installed_aghash", installed),
                ("au_api", "2"),
            ],
        );
        assert_eq!(env["result_code"], 0, "{env}");
    }
    w.store.flush().unwrap();
    let audit = w.store.audit_signing_log().unwrap();
    assert!(
        audit
            .bakery_entries
            .iter()
            .any(|e| e.agent_hash.as_deref() == Some(baked.as_str())),
        "{:?}",
        audit.bakery_entries
    );
    assert_eq!(
        audit.unrecorded,
        vec![("db02".to_owned(), "0123456789abcdef".to_owned())]
    );
}

#[test]
fn registrations_of_hosts_in_no_site_expire_after_the_retention() {
    let w = World::new(true);
    let day = std::time::Duration::from_secs(86_400);
    let (_, monitored) = w.register("web01");
    assert!(monitored);
    let (ghost_secret, monitored) = w.register("ghost");
    assert!(
        !monitored,
        "an unknown host registers with monitored: false"
    );
    let now = std::time::SystemTime::now();
    assert_eq!(
        w.store.abandoned_retention().unwrap(),
        agent_deploy::DEFAULT_ABANDONED_RETENTION
    );
    // Within the retention nothing expires; after it only the host in no site does, and a
    // dry run changes nothing.
    assert!(
        w.store
            .expire_abandoned(now + 29 * day, false)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        w.store.expire_abandoned(now + 31 * day, true).unwrap(),
        ["ghost"]
    );
    assert!(w.status("ghost", &ghost_secret).is_ok());
    assert_eq!(
        w.store.expire_abandoned(now + 31 * day, false).unwrap(),
        ["ghost"]
    );
    assert!(w.status("ghost", &ghost_secret).is_err());
    let hosts: Vec<String> = w
        .store
        .statuses()
        .into_iter()
        .map(|s| s.host_name)
        .collect();
    assert!(hosts.contains(&"web01".to_owned()), "{hosts:?}");
    assert!(!hosts.contains(&"ghost".to_owned()), "{hosts:?}");

    // The site's `cleanup_abandoned_host_files` (seconds) sets the retention; a contact
    // counts as activity.
    w.site
        .set_global("agent_deployment_enabled = True\ncleanup_abandoned_host_files = 86400\n");
    assert_eq!(w.store.abandoned_retention().unwrap(), day);
    let (secret, _) = w.register("ghost");
    assert!(
        w.store
            .expire_abandoned(now + day / 2, false)
            .unwrap()
            .is_empty()
    );
    assert!(w.status("ghost", &secret).is_ok());
    assert_eq!(
        w.store.expire_abandoned(now + 2 * day, false).unwrap(),
        ["ghost"]
    );
}
