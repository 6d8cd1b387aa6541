//! The "Check_MK Agent" service rating of the section (spec section 3.4, requirement 26).

use agent_wire::{
    RatingMode, RatingParams, Section, State, format_not_after, parse_not_after, rate_section,
};

const DAY: i64 = 86_400;
/// A fixed "now": 2026-11-21T00:00:00Z.
const NOW: i64 = 1_795_219_200;

fn iso(t: i64) -> String {
    format_not_after(t).unwrap()
}

/// A healthy section (checked an hour ago) with one key valid for `days` more days.
fn section_with_key_days(days: i64) -> Section {
    let text = format!(
        "<<<cmk_update_agent_status:sep(0)>>>\n{}\n",
        serde_json::json!({
            "last_check": (NOW - 3600) as f64 + 0.5,
            "last_update": (NOW - 10 * DAY) as f64,
            "aghash": "94b60c8ef40c4900",
            "pending_hash": null,
            "update_url": "https://srv/site/check_mk",
            "trusted_certs": {"0": {"corrupt": false, "not_after": iso(NOW + days * DAY),
                "signature_algorithm": "sha512", "common_name": "signature"}},
            "error": null,
            "host_name": "web01",
        })
    );
    Section::parse(&text).unwrap()
}

fn rate(s: &Section, mode: RatingMode) -> agent_wire::Rating {
    let params = RatingParams {
        host_name: Some("web01".into()),
        ..RatingParams::default()
    };
    rate_section(s, &params, mode, NOW)
}

/// Asserts the state of a section whose one key has `days` left, for each
/// `(days, expected state)` of `table`.
fn assert_key_validity_states(mode: RatingMode, table: &[(i64, State)]) {
    for &(days, state) in table {
        let r = rate(&section_with_key_days(days), mode);
        assert_eq!(r.state, state, "{days} days: {r:?}");
    }
}

#[test]
fn key_validity_table_legacy() {
    // (days left, expected state)
    assert_key_validity_states(
        RatingMode::Legacy,
        &[
            (100, State::Ok),
            (60, State::Warn),
            (20, State::Crit),
            (-1, State::Crit),
        ],
    );
    let r = rate(&section_with_key_days(60), RatingMode::Legacy);
    assert!(r.has("Key #0 (signature) expires in 60 days"), "{r:?}");
    assert!(r.summary().contains("Time until all keys expired: 60 days"));
    let r = rate(&section_with_key_days(-1), RatingMode::Legacy);
    assert!(r.has("Key #0 (signature) has expired"), "{r:?}");
    assert!(
        r.summary()
            .contains("Updater has no trusted certificates(!!)"),
        "{}",
        r.summary()
    );
    let r = rate(&section_with_key_days(100), RatingMode::Legacy);
    assert_eq!(r.summary(), "Last update check: 59 minutes ago");
}

#[test]
fn key_validity_table_25() {
    assert_key_validity_states(
        RatingMode::V25,
        &[
            (100, State::Ok),
            (60, State::Ok),
            (20, State::Ok),
            // An expired key is WARN in 2.5 (W17102), no longer CRIT.
            (-1, State::Warn),
        ],
    );
    // 20 days: shown as notices, not in the summary.
    let r = rate(&section_with_key_days(20), RatingMode::V25);
    let notice = r
        .lines
        .iter()
        .find(|l| l.text == "Key #0 (signature) expires in 20 days")
        .unwrap();
    assert!(notice.notice);
    assert!(!r.summary().contains("expires"));
}

#[test]
fn missing_last_check_is_warn_in_both_modes() {
    let mut s = section_with_key_days(100);
    s.last_check = None;
    for mode in [RatingMode::Legacy, RatingMode::V25] {
        let r = rate(&s, mode);
        assert_eq!(r.state, State::Warn);
        assert!(r.has("No successful connect to server yet"));
    }
    // Also straight from JSON null.
    let s = Section::parse(r#"{"last_check": null, "trusted_certs": {}}"#).unwrap();
    assert!(rate(&s, RatingMode::V25).has("No successful connect to server yet"));
}

#[test]
fn last_check_older_than_two_days_is_warn() {
    let mut s = section_with_key_days(100);
    s.last_check = Some((NOW - 2 * DAY - 60) as f64);
    for mode in [RatingMode::Legacy, RatingMode::V25] {
        assert_eq!(rate(&s, mode).state, State::Warn);
    }
    s.last_check = Some((NOW - 2 * DAY + 60) as f64);
    for mode in [RatingMode::Legacy, RatingMode::V25] {
        assert_eq!(rate(&s, mode).state, State::Ok);
    }
}

#[test]
fn error_is_warn_with_first_line_and_disabled_states_are_configurable() {
    let mut s = section_with_key_days(100);
    s.error = Some("Agent Bakery: no agent\nsecond line".into());
    for mode in [RatingMode::Legacy, RatingMode::V25] {
        let r = rate(&s, mode);
        assert_eq!(r.state, State::Warn);
        assert!(r.has("Update error: Agent Bakery: no agent"), "{r:?}");
    }
    let params = RatingParams {
        globally_disabled_state: State::Ok,
        host_disabled_state: State::Crit,
        ..RatingParams::default()
    };
    s.error = Some("Automatic updates are globally disabled".into());
    assert_eq!(
        rate_section(&s, &params, RatingMode::Legacy, NOW).state,
        State::Ok
    );
    s.error = Some("Automatic updates are disabled for this host".into());
    assert_eq!(
        rate_section(&s, &params, RatingMode::Legacy, NOW).state,
        State::Crit
    );
}

#[test]
fn hostname_mismatch_is_crit_only_in_25() {
    let mut s = section_with_key_days(100);
    s.host_name = Some("web02".into());
    assert_eq!(rate(&s, RatingMode::V25).state, State::Crit);
    assert_eq!(rate(&s, RatingMode::Legacy).state, State::Ok);
    // No host name in the section (older updater): nothing to compare.
    s.host_name = None;
    assert_eq!(rate(&s, RatingMode::V25).state, State::Ok);
}

#[test]
fn corrupt_key_and_no_trusted_key() {
    let mut s = section_with_key_days(100);
    s.trusted_certs.insert(
        "1".into(),
        serde_json::from_str(
            r#"{"corrupt": true, "not_after": null, "signature_algorithm": null, "common_name": null}"#,
        )
        .unwrap(),
    );
    let r = rate(&s, RatingMode::Legacy);
    assert_eq!(r.state, State::Warn);
    assert!(r.has("Key #1 is corrupt"));
    assert_eq!(rate(&s, RatingMode::V25).state, State::Ok);

    s.trusted_certs.remove("0");
    let r = rate(&s, RatingMode::Legacy);
    assert_eq!(r.state, State::Crit);
    assert!(r.has("Updater has no trusted certificates"));
    let r = rate(&s, RatingMode::V25);
    assert_eq!(r.state, State::Ok);
    assert!(r.has("Updater has no trusted certificates"));

    s.trusted_certs.clear();
    assert_eq!(rate(&s, RatingMode::Legacy).state, State::Crit);
}

#[test]
fn all_keys_expiry_uses_the_latest_key() {
    let mut s = section_with_key_days(20);
    // A second key valid for 100 days: only the 20-day key warns; all-keys time is 100 days.
    s.trusted_certs.insert(
        "1".into(),
        serde_json::from_value(serde_json::json!({"corrupt": false,
            "not_after": iso(NOW + 100 * DAY), "signature_algorithm": "sha256",
            "common_name": "second"}))
        .unwrap(),
    );
    let r = rate(&s, RatingMode::Legacy);
    assert_eq!(r.state, State::Warn, "{r:?}");
    assert!(r.has("Time until all keys expired: 100 days"), "{r:?}");
}

#[test]
fn asn1_times_from_older_test_data() {
    let s = Section::parse(
        r#"{"last_check": 1795215600.0, "trusted_certs": {"0": {"corrupt": false,
            "not_after": "20430525111300Z", "signature_algorithm": "sha1WithRSAEncryption",
            "common_name": "x"}}, "error": null}"#,
    )
    .unwrap();
    assert_eq!(rate(&s, RatingMode::Legacy).state, State::Ok);
    assert!(parse_not_after("20430525111300Z").unwrap() > NOW);
}

#[test]
fn section_parse_skips_other_sections_and_rejects_garbage() {
    let text = "<<<check_mk>>>\nVersion: 2.3\n<<<cmk_update_agent_status:sep(0)>>>\n\
                {\"last_check\": 1.5, \"host_name\": \"h\", \"unknown\": 1}\n<<<local>>>\n0 x - y\n";
    let s = Section::parse(text).unwrap();
    assert_eq!(s.last_check, Some(1.5));
    assert_eq!(s.host_name.as_deref(), Some("h"));
    assert!(Section::parse("<<<check_mk>>>\nVersion: 2.3\n").is_err());
    assert!(Section::parse("<<<cmk_update_agent_status:sep(0)>>>\n{not json\n").is_err());
}

/// The updater's own section, rated: a fresh registration has no `last_check` yet.
#[test]
fn our_section_output_is_rated() {
    let dir = tempfile::tempdir().unwrap();
    let up = agent_updater::Updater::new(
        agent_updater::Paths::in_dirs(dir.path(), dir.path()),
        std::sync::Arc::new(agent_updater::AgentSignVerifier::checkmk()),
    );
    let text = up.section(&up.settings().unwrap());
    let s = Section::parse(&text).unwrap();
    let r = rate(&s, RatingMode::Legacy);
    assert_eq!(r.state, State::Crit); // no keys at all
    assert!(r.has("No successful connect to server yet"));
}
