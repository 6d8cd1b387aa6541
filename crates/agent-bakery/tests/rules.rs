//! Reading the site, rule matching, the merge, normalisation and the deployment decision
//! (requirements 1–7, 16–17).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use agent_bakery::{
    Condition, Decision, Format, MatchObject, Password, Proxy, Registration, SiteConfig,
    UPDATER_RULESET, UpdaterConfig, Usage, generic_object,
};
use common::*;
use py_literal::{PyValue, parse};

#[test]
fn three_level_inventory() {
    let s = site();
    let cfg = SiteConfig::read(&s.root, "mysite").unwrap();
    let folders: Vec<(&str, Option<&str>, bool)> = cfg
        .folders
        .iter()
        .map(|f| (f.path.as_str(), f.title.as_deref(), f.bake_agent_package))
        .collect();
    assert_eq!(
        folders,
        [
            ("/wato/", Some("Main"), true),
            ("/wato/linux/", Some("Linux servers"), false),
            ("/wato/linux/deep/", None, false),
            ("/wato/windows/", None, false),
        ]
    );
    let hosts: Vec<(&str, &str)> = cfg
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.folder.as_str()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("zr", "/wato/"),
            ("web01", "/wato/linux/"),
            ("web02", "/wato/linux/"),
            ("db01", "/wato/linux/"),
            ("app01", "/wato/linux/deep/"),
            ("win01", "/wato/windows/"),
        ]
    );
    let db = cfg.host("db01").unwrap();
    assert_eq!(db.site, "mysite");
    assert_eq!(db.tags.get("criticality").map(String::as_str), Some("test"));
    let labels: Vec<(&str, &str)> = db
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels, [("cmk/site", "mysite"), ("os", "linux")]);
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn spec_hosts_mk_parses_and_import_os_is_a_warning_not_a_run() {
    let s = site();
    let text = "# Created by HostStorage\n\nall_hosts += ['zr']\n\nhost_tags.update({'zr': {'site': 'git', 'address_family': 'ip-v4-only', 'ip-v4': 'ip-v4', 'agent': 'cmk-agent', 'tcp': 'tcp', 'checkmk-agent': 'checkmk-agent', 'piggyback': 'auto-piggyback', 'snmp_ds': 'no-snmp', 'criticality': 'prod', 'networking': 'lan'}})\n\nhost_labels.update({'zr': {'os': 'linux'}})\n\n# Host attributes (needed for WATO)\nhost_attributes.update({'zr': {'meta_data': {'created_at': 1680563093.7046874, 'updated_at': 1680563093.7462323, 'created_by': 'cmkadmin'}}})\n\nfolder_attributes.update({'/wato/': {'bake_agent_package': True}})\nimport os\nos.system('touch /tmp/pwned-by-bakery-test')\n";
    write(&s.root, &format!("{}/hosts.mk", wato("")), text);
    let cfg = SiteConfig::read(&s.root, "mysite").unwrap();
    let zr = cfg.host("zr").unwrap();
    assert_eq!(zr.site, "git");
    assert_eq!(zr.labels.get("cmk/site").map(String::as_str), Some("git"));
    assert_eq!(zr.tags.len(), 10);
    let lines: Vec<usize> = cfg.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [13, 14], "{:?}", cfg.warnings);
    assert!(cfg.warnings[0].message.contains("import os"));
    assert!(cfg.warnings[1].message.contains("os.system"));
    assert!(!std::path::Path::new("/tmp/pwned-by-bakery-test").exists());
}

#[test]
fn rules_deepest_folder_first_and_siblings_apart() {
    let s = site();
    let cfg = SiteConfig::read(&s.root, "mysite").unwrap();
    let ids: Vec<(&str, &str)> = cfg
        .rules(UPDATER_RULESET)
        .iter()
        .map(|r| (r.id.as_str(), r.folder.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("r3", "/wato/windows/"),
            ("r2", "/wato/linux/"),
            ("r1", "/wato/linux/"),
            ("r0", "/wato/")
        ]
    );
    let web = cfg.host("web01").unwrap();
    let matched: Vec<&str> = cfg
        .matching_rules(UPDATER_RULESET, &web.match_object())
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(matched, ["r1", "r0"]);
    let win = cfg.host("win01").unwrap();
    let matched: Vec<&str> = cfg
        .matching_rules(UPDATER_RULESET, &win.match_object())
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(matched, ["r3", "r0"]);
}

#[test]
fn merge_first_key_wins_and_server_data_is_whole() {
    let s = site();
    // A linux rule with its own partial server_data: it wins whole, never merged key by key.
    write(
        &s.root,
        &format!("{}/rules.mk", wato("linux")),
        &rules_mk(&[
            DB_OFF_RULE,
            LINUX_RULE,
            "{'id': 'r4', 'value': {'activated': True, 'server_data': {'server': 'other.example.com'}, 'interval': 5}, 'condition': {'host_name': ['web02']}}",
        ]),
    );
    let cfg = SiteConfig::read(&s.root, "mysite").unwrap();
    let merged = cfg
        .merged_updater_value(&cfg.host("web01").unwrap().match_object())
        .unwrap();
    assert_eq!(
        merged.repr(),
        parse(&format!(
            "{{'activated': True, 'interval': 600, 'server_data': {{'usage': 'registration', 'server': 'checkmk.example.com', 'site': 'mysite', 'protocol': 'https'}}, 'certificates': [{PEM_CA:?}], 'signature_keys': [{PEM_KEY:?}]}}"
        ))
        .unwrap()
        .repr()
    );
    let web02 = cfg
        .updater_config(&cfg.host("web02").unwrap().match_object())
        .unwrap()
        .unwrap();
    assert_eq!(web02.interval, 600, "r1 comes before r4 in the file");
    let sd = web02.server.unwrap();
    assert_eq!(
        (sd.server.as_str(), sd.site.as_str(), sd.protocol.as_str()),
        ("other.example.com", "mysite", "https")
    );
    // Deactivated host: no updater.
    assert!(
        cfg.updater_config(&cfg.host("db01").unwrap().match_object())
            .unwrap()
            .is_none()
    );
    // Disabled rules are ignored.
    write(
        &s.root,
        &format!("{}/rules.mk", wato("linux")),
        &rules_mk(&[&DB_OFF_RULE.replace("'description'", "'disabled': True, 'description'")]),
    );
    let cfg = SiteConfig::read(&s.root, "mysite").unwrap();
    assert!(
        cfg.updater_config(&cfg.host("db01").unwrap().match_object())
            .unwrap()
            .is_some()
    );
}

fn obj_match(
    cond: &str,
    name: &str,
    folder: &str,
    tags: &[(&str, &str)],
    labels: &[(&str, &str)],
) -> bool {
    let c = Condition::parse(&parse(cond).unwrap()).unwrap();
    let tags: BTreeMap<String, String> = tags
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    c.matches(&MatchObject {
        name,
        folder,
        tags: &tags,
        labels: &labels,
    })
}

/// (condition, host name, folder, tags, labels, expected)
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [(&'a str, &'a str)],
    bool,
);

#[test]
fn condition_table() {
    let t: &[(&str, &str)] = &[
        ("criticality", "prod"),
        ("networking", "lan"),
        ("snmp", "snmp"),
    ];
    let l: &[(&str, &str)] = &[
        ("os", "linux"),
        ("cmk/site", "mysite"),
        ("cmk/check_mk_server", "yes"),
    ];
    let f = "/wato/linux/";
    #[rustfmt::skip]
    let cases: &[Case<'_>] = &[
        ("{}", "web01", f, t, l, true),
        ("{'host_name': ['web01']}", "web01", f, t, l, true),
        ("{'host_name': ['web01']}", "web011", f, t, l, false),
        ("{'host_name': ['db01', 'web01']}", "web01", f, t, l, true),
        ("{'host_name': []}", "web01", f, t, l, false),
        ("{'host_name': [{'$regex': 'web'}]}", "web01", f, t, l, true),
        ("{'host_name': [{'$regex': 'eb'}]}", "web01", f, t, l, false),
        ("{'host_name': [{'$regex': '.*eb'}]}", "web01", f, t, l, true),
        ("{'host_name': [{'$regex': 'web0[2-9]$'}]}", "web01", f, t, l, false),
        ("{'host_name': {'$nor': ['web01']}}", "web01", f, t, l, false),
        ("{'host_name': {'$nor': ['db01']}}", "web01", f, t, l, true),
        ("{'host_name': {'$nor': [{'$regex': 'w'}]}}", "web01", f, t, l, false),
        ("{'host_name': ['web01']}", "", f, &[], &[], false),
        ("{'host_name': {'$nor': ['web01']}}", "", f, &[], &[], true),
        ("{'host_tags': {'criticality': 'prod'}}", "web01", f, t, l, true),
        ("{'host_tags': {'criticality': 'test'}}", "web01", f, t, l, false),
        ("{'host_tags': {'criticality': {'$ne': 'test'}}}", "web01", f, t, l, true),
        ("{'host_tags': {'criticality': {'$ne': 'prod'}}}", "web01", f, t, l, false),
        ("{'host_tags': {'criticality': {'$or': ['test', 'prod']}}}", "web01", f, t, l, true),
        ("{'host_tags': {'criticality': {'$nor': ['test', 'prod']}}}", "web01", f, t, l, false),
        ("{'host_tags': {'criticality': 'prod', 'networking': 'wan'}}", "web01", f, t, l, false),
        ("{'host_tags': {'snmp': 'snmp'}}", "web01", f, t, l, true),
        ("{'host_tags': {'criticality': 'prod'}}", "", f, &[], &[], false),
        ("{'host_label_groups': [('and', [('and', 'cmk/check_mk_server:yes'), ('and', '')])]}", "web01", f, t, l, true),
        ("{'host_label_groups': [('and', [('and', 'cmk/check_mk_server:yes'), ('and', '')])]}", "web01", f, t, &[("os", "linux")], false),
        ("{'host_label_groups': [('and', [('and', 'os:linux'), ('or', 'os:windows')])]}", "web01", f, t, &[("os", "aix")], false),
        ("{'host_label_groups': [('and', [('and', 'os:aix'), ('or', 'os:linux')])]}", "web01", f, t, l, true),
        ("{'host_label_groups': [('and', [('and', 'os:linux'), ('not', 'cmk/site:mysite')])]}", "web01", f, t, l, false),
        ("{'host_label_groups': [('and', [('not', 'os:windows')])]}", "web01", f, t, l, true),
        ("{'host_label_groups': [('and', [('and', 'os:windows')]), ('or', [('and', 'os:linux')])]}", "web01", f, t, l, true),
        ("{'host_label_groups': [('and', [('and', 'os:linux')]), ('not', [('and', 'cmk/site:mysite')])]}", "web01", f, t, l, false),
        ("{'host_label_groups': [('and', [('and', 'os:linux')])]}", "web01", f, t, &[], false),
        ("{'host_label_groups': [('and', [('or', 'os:linux')])]}", "web01", f, t, &[], true),
        ("{'host_label_groups': [('and', [('and', '')])]}", "", f, &[], &[], true),
        ("{'host_labels': {'os': 'linux'}}", "web01", f, t, l, true),
        ("{'host_labels': {'os': {'$ne': 'linux'}}}", "web01", f, t, l, false),
        ("{'host_folder': '/wato/linux/'}", "web01", f, t, l, true),
        ("{'host_folder': '/wato/linux/'}", "web01", "/wato/linux/deep/", t, l, true),
        ("{'host_folder': '/wato/lin'}", "web01", f, t, l, true),
        ("{'host_folder': '/wato/linux/'}", "web01", "/wato/", t, l, false),
        ("{'host_folder': '/wato/'}", "", "/wato/windows/", &[], &[], true),
        ("{'host_folder': '/wato/linux/', 'host_name': ['web01'], 'host_tags': {'criticality': 'prod'}}", "web01", f, t, l, true),
    ];
    assert!(cases.len() >= 30);
    for (cond, name, folder, tags, labels, want) in cases {
        assert_eq!(
            obj_match(cond, name, folder, tags, labels),
            *want,
            "{cond} on {name:?} in {folder}"
        );
    }
}

/// bakery.md §4.2: patterns are Python's; look-around and back-references match as
/// `re.match` does (at the start of the name), and a pattern neither engine takes is an error.
#[test]
fn look_around_and_back_references_match_as_in_python() {
    let cases = [
        ("web(?=0)", "web01", true),
        ("web(?=0)", "web1", false),
        ("(?!db).*", "db02", false),
        ("(?!db).*", "web01", true),
        ("(?<=a)b", "ab", false),
        ("(a)\\1", "aa", true),
        ("(a)\\1", "ab", false),
        ("(?P<x>a)(?P=x)", "aax", true),
        ("(?P<x>a)(?P=x)", "ab", false),
    ];
    for (p, name, want) in cases {
        let cond = format!("{{'host_name': [{{'$regex': {p:?}}}]}}");
        assert_eq!(
            obj_match(&cond, name, "/wato/", &[], &[]),
            want,
            "{p} on {name}"
        );
    }
    for p in ["a(", "(?<x", "web(?=0"] {
        let err =
            Condition::parse(&parse(&format!("{{'host_name': [{{'$regex': {p:?}}}]}}")).unwrap())
                .unwrap_err();
        assert!(err.contains("cannot honour"), "{p}: {err}");
    }
}

fn norm(v: &str) -> UpdaterConfig {
    UpdaterConfig::from_value(&parse(v).unwrap(), "mysite")
        .unwrap()
        .0
}

#[test]
fn every_era_normalises() {
    assert!(norm("{'activated': True}").activated);
    assert!(norm("{'activated': 'enabled'}").activated);
    assert!(!norm("{'activated': 'disabled'}").activated);
    for (e, f) in [
        ("'64bit'", Format::Binary),
        ("('bit64', None)", Format::Binary),
        ("'bit64'", Format::Binary),
        ("'32bit'", Format::Script),
        ("'script'", Format::Script),
        ("('script', None)", Format::Script),
    ] {
        assert_eq!(
            norm(&format!("{{'activated': True, 'edition': {e}}}")).format,
            f,
            "{e}"
        );
    }
    let old = norm("{'activated': True, 'certificates': ['PEM1']}");
    let new = norm(
        "{'activated': 'enabled', 'certificates': [('certificate_0.pem', 'application/x-pem-file', b'PEM1')]}",
    );
    assert_eq!(old.certificates, new.certificates);
    assert_eq!(norm("{'activated': True, 'interval': 300.0}").interval, 300);
    let sd =
        norm("{'activated': True, 'server_data': {'server': 'h', 'protocol': ('https', None)}}")
            .server
            .unwrap();
    assert_eq!(
        (sd.usage, sd.site.as_str(), sd.protocol.as_str()),
        (Usage::Registration, "mysite", "https")
    );
    assert_eq!(
        norm("{'activated': True, 'server_data': {'server': 'h', 'usage': 'always'}}")
            .server
            .unwrap()
            .usage,
        Usage::Always
    );
    let explicit =
        |server: &str, port: u16, protocol: &str, user: Option<&str>, pw: Option<Password>| {
            Proxy::Explicit {
                server: server.into(),
                port,
                protocol: protocol.into(),
                user: user.map(Into::into),
                password: pw,
            }
        };
    for (v, want) in [
        ("None", Proxy::Direct),
        ("'env'", Proxy::Env),
        (
            "{'server': 'p', 'port': 3128, 'proxy_protocol': 'http'}",
            explicit("p", 3128, "http", None, None),
        ),
        (
            "{'server': 'p', 'port': 1080, 'proxy_protocol': 'socks5'}",
            explicit("p", 1080, "socks5", None, None),
        ),
        (
            "{'server': 'p', 'port': 3128, 'proxy_protocol': ('http', None)}",
            explicit("p", 3128, "http", None, None),
        ),
        (
            "{'server': 'p', 'port': 3128, 'proxy_protocol': ('http', {'credentials': ('u', 'pw')})}",
            explicit(
                "p",
                3128,
                "http",
                Some("u"),
                Some(Password::Explicit("pw".into())),
            ),
        ),
        (
            "{'server': 'p', 'port': 1080, 'proxy_protocol': ('socks4', None)}",
            explicit("p", 1080, "socks4", None, None),
        ),
        ("('no_proxy', None)", Proxy::Direct),
        ("('env_proxy', 'env')", Proxy::Env),
        (
            "('explicit_proxy', {'server': 'p'})",
            explicit("p", 80, "http", None, None),
        ),
        (
            "('explicit_proxy', {'server': 'p', 'port': 8080, 'proxy_protocol': 'socks5', 'credentials': {'user': 'u', 'password': ('cmk_postprocessed', 'explicit_password', ('uuid1', 'secret'))}})",
            explicit(
                "p",
                8080,
                "socks5",
                Some("u"),
                Some(Password::Explicit("secret".into())),
            ),
        ),
        (
            "('explicit_proxy', {'server': 'p', 'credentials': {'user': 'u', 'password': ('cmk_postprocessed', 'stored_password', ('store1', ''))}})",
            explicit(
                "p",
                80,
                "http",
                Some("u"),
                Some(Password::Stored("store1".into())),
            ),
        ),
    ] {
        assert_eq!(
            norm(&format!("{{'activated': True, 'proxy': {v}}}")).proxy,
            want,
            "{v}"
        );
    }
    assert_eq!(
        norm("{'activated': True, 'updater_registration': 'overwrite'}").registration,
        Registration::Overwrite
    );
    let (_, unknown) =
        UpdaterConfig::from_value(&parse("{'activated': True, 'frobnicate': 1}").unwrap(), "s")
            .unwrap();
    assert_eq!(unknown, ["frobnicate"]);
    for bad in [
        "{'activated': 'yes'}",
        "{'edition': 'arm64'}",
        "{'interval': 2592001}",
        "{'proxy': ('carrier_pigeon', None)}",
        "{'server_data': {'server': 'h', 'protocol': 'ftp'}}",
    ] {
        assert!(
            UpdaterConfig::from_value(&parse(bad).unwrap(), "s").is_err(),
            "{bad}"
        );
    }
}

#[test]
fn cfg_with_proxy_password_resolves_the_store() {
    let cfg = norm(
        "{'activated': True, 'proxy': ('explicit_proxy', {'server': 'p', 'credentials': {'user': 'u', 'password': ('cmk_postprocessed', 'stored_password', ('store1', ''))}})}",
    );
    assert!(cfg.has_secret());
    let text = cfg
        .cfg_text(&|id| (id == "store1").then(|| "s3cret".to_string()))
        .unwrap();
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let v = parse(&body).unwrap();
    let PyValue::Dict(items) = v else { panic!() };
    let proxy = items
        .iter()
        .find(|(k, _)| k.as_str() == Some("proxy"))
        .unwrap();
    assert_eq!(
        proxy.1.repr(),
        "{'password': 's3cret', 'port': 80, 'proxy_protocol': 'http', 'server': 'p', 'user': 'u'}"
    );
    assert!(cfg.cfg_text(&|_| None).is_err());
}

#[test]
fn generic_targets_ignore_host_conditions() {
    let s = site();
    let cfg = SiteConfig::read(&s.root, "mysite").unwrap();
    let g = cfg
        .updater_config(&generic_object("/wato/"))
        .unwrap()
        .unwrap();
    assert_eq!(g.interval, 3600);
    let plan = cfg.plan().unwrap();
    let names: Vec<&str> = plan.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names[..2], ["_VANILLA", "_GENERIC[%2Fwato%2F]"]);
    assert_eq!(plan.configs.len(), 4);
}

fn decide(global: &str, host: &str) -> Decision {
    let s = site();
    write(&s.root, "etc/check_mk/multisite.d/wato/global.mk", global);
    write(
        &s.root,
        &format!("{}/rules.mk", wato("linux")),
        "host_groups = [\n{'id': 'g1', 'value': 'webservers', 'condition': {'host_name': [{'$regex': 'web'}]}},\n] + host_groups\n",
    );
    SiteConfig::read(&s.root, "mysite")
        .unwrap()
        .deployment_decision(host)
}

#[test]
fn deployment_decision_per_key() {
    assert_eq!(decide("", "web01"), Decision::GloballyDisabled);
    assert_eq!(
        decide("agent_deployment_enabled = False\n", "web01")
            .refusal("web01")
            .unwrap(),
        "Agent deployment is currently globally disabled."
    );
    let on = "agent_deployment_enabled = True\n";
    assert_eq!(decide(on, "web01"), Decision::Allowed);
    assert_eq!(decide(on, "unknown-host"), Decision::Allowed);
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "'match_site': ['mysite']",
            "web01",
            "zr-elsewhere",
            "it is not monitored by one of the selected sites",
        ),
        (
            "'match_folders': ['/wato/linux/']",
            "app01",
            "win01",
            "it is not in one of the selected folders",
        ),
        (
            "'match_folders': ['linux']",
            "web01",
            "zr",
            "it is not in one of the selected folders",
        ),
        (
            "'match_hosttags': {'criticality': 'prod'}",
            "web01",
            "db01",
            "it does not have the selected host tags",
        ),
        (
            // W16713's own example of the old form: the leading host name is dropped.
            "'match_hosttags': ['my-host|cmk-agent|prod|lan']",
            "web01",
            "db01",
            "it does not have the selected host tags",
        ),
        (
            "'match_hostlabels': {'os': 'linux'}",
            "web01",
            "nolabel",
            "it does not have the selected host labels",
        ),
        (
            "'match_hostgroups': ['webservers']",
            "web02",
            "db01",
            "it is not in one of the selected host groups",
        ),
        (
            "'match_hosts': ['web01', '~app']",
            "app01",
            "web02",
            "it is not in the list of selected hosts",
        ),
        (
            "'match_exclude_hosts': ['db01']",
            "web01",
            "db01",
            "it is on the exclusion list",
        ),
    ];
    for (sel, pass, fail, reason) in cases {
        let g = format!("{on}agent_deployment_host_selection = {{{sel}}}\n");
        assert_eq!(decide(&g, pass), Decision::Allowed, "{sel}: {pass}");
        let d = decide(&g, fail);
        let text = d.refusal(fail).unwrap();
        assert_eq!(
            text,
            format!("agent updates are disabled for host name {fail} because {reason}"),
            "{sel}"
        );
        // The check plug-in's rating: case-insensitive substrings.
        let lower = text.to_lowercase();
        assert!(
            lower.contains("agent updates are disabled for host")
                && !lower.contains("deployment is currently globally disabled")
        );
    }
    let g = decide("", "x").refusal("x").unwrap().to_lowercase();
    assert!(g.contains("deployment is currently globally disabled"));
}

#[test]
fn hoststorage_files_of_every_version_are_read() {
    let s = site();
    // 2.0/2.1 HostStorage output: contact groups, attributes, explicit settings, custom
    // macros (a chained call) and folder contact groups (`FOLDER_PATH`).
    let hosts = "# Created by HostStorage\n\n\
        host_contactgroups += [{'value': 'all', 'condition': {'host_name': ['web01']}}]\n\n\
        all_hosts += ['web01']\n\n\
        host_tags.update({'web01': {'site': 'mysite', 'criticality': 'prod'}})\n\n\
        host_labels.update({'web01': {'os': 'linux'}})\n\n\
        # ipaddresses\nipaddresses.update({'web01': '10.0.0.1'})\n\n\
        # Explicit settings for alias\nexplicit_host_conf.setdefault('alias', {})\n\
        explicit_host_conf['alias'].update({'web01': 'Web server'})\n\n\
        # Settings for _X\nextra_host_conf.setdefault('_X', []).extend(\n  [('v', ['web01'])])\n\n\
        # Folder contact groups\n\
        host_contactgroups.insert(0, {'value': ['all'], 'condition': {'host_folder': '/%s/' % FOLDER_PATH}})\n\n\
        # Host attributes (needed for WATO)\nhost_attributes.update({'web01': {'site': 'mysite'}})\n";
    write(&s.root, &format!("{}/hosts.mk", wato("linux")), hosts);
    // 1.5 era: the folder is part of each `all_hosts` entry.
    write(
        &s.root,
        &format!("{}/hosts.mk", wato("windows")),
        "# Written by WATO\n# encoding: utf-8\n\nall_hosts += [\n  \"win01|lan|prod|cmk-agent|wato|/\" + FOLDER_PATH + \"/\",\n]\n\nimport os\n",
    );
    let cfg = SiteConfig::read(&s.root, "mysite").unwrap();
    let web = cfg.host("web01").unwrap();
    assert_eq!(web.folder, "/wato/linux/");
    assert_eq!(
        web.tags.get("criticality").map(String::as_str),
        Some("prod")
    );
    assert_eq!(cfg.host("win01").unwrap().folder, "/wato/windows/");
    // Only the statement of an unknown shape is warned about, with its file and line.
    let w: Vec<String> = cfg.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].ends_with("windows/hosts.mk, line 8: statement skipped, not run: import os"),
        "{w:?}"
    );
}

#[test]
fn statements_of_unknown_shape_in_hosts_mk_are_skipped_and_the_rest_is_read() {
    let s = site();
    write(
        &s.root,
        &format!("{}/hosts.mk", wato("windows")),
        "all_hosts += ['win01']\nsomething.append(FOO + 1)\nhost_tags.update({'win01': {'site': 'other'}})\n",
    );
    let cfg = SiteConfig::read(&s.root, "mysite").unwrap();
    assert_eq!(cfg.host("win01").unwrap().site, "other");
    let w: Vec<String> = cfg.warnings.iter().map(ToString::to_string).collect();
    assert!(
        w.len() == 1 && w[0].contains("windows/hosts.mk, line 2: statement skipped"),
        "{w:?}"
    );
}

#[test]
fn an_unreadable_updater_rule_set_is_still_an_error() {
    let s = site();
    write(
        &s.root,
        &format!("{}/rules.mk", wato("windows")),
        "agent_config['cmk_update_agent'] = [\n{'id': 'x', 'value': {'activated': ACTIVE}, 'condition': {}},\n] + agent_config['cmk_update_agent']\n",
    );
    let text = SiteConfig::read(&s.root, "mysite").unwrap_err().to_string();
    assert!(
        text.contains("windows/rules.mk, line 2") && text.contains("ACTIVE"),
        "{text}"
    );
}
