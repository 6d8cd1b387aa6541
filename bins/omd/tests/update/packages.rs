//! The extension-package step of `omd update` (like `mkp disable-outdated`
//! and `mkp update-active`), on a site with an MKP store built with
//! `mkp-format`: the site is on 2.3.0p1 and is updated to 2.3.0p2.

use std::fs;
use std::path::{Path, PathBuf};

use mkp_format::{
    ChangeOptions, Manifest, PackOptions, PackageId, PackageName, PackagePart, PackageVersion,
    PartFile, Site, StoreError,
};

use super::{Fixture, NEW, Output, SITE, read, snapshot};

/// Checkmk version of OLD and NEW.
const OLD_CMK: &str = "2.3.0p1";
const NEW_CMK: &str = "2.3.0p2";

/// An MKP with one agent plugin `plugins/<file>`.
fn package(name: &str, version: &str, min: &str, until: Option<&str>, file: &str) -> Vec<u8> {
    let files = vec![(PackagePart::Agents, vec![format!("plugins/{file}")])];
    let manifest = Manifest::new(
        PackageName::new(name).unwrap(),
        PackageVersion::new(version).unwrap(),
        format!("{name} title"),
        "test package",
        "omd tests",
        "",
        min,
        until.map(str::to_owned),
        files,
    );
    let tar = mkp_format::build_part_tar(&[PartFile::new(
        format!("plugins/{file}"),
        format!("# {name} {version}\n"),
    )])
    .unwrap();
    mkp_format::write_mkp(
        &manifest,
        &[(PackagePart::Agents, tar)],
        &PackOptions::default().mtime(0),
    )
    .unwrap()
}

fn id(name: &str, version: &str) -> PackageId {
    PackageId {
        name: PackageName::new(name).unwrap(),
        version: PackageVersion::new(version).unwrap(),
    }
}

/// The site (on OLD) with four packages, all enabled:
/// * `old 1.0.0`: usable until 2.3.0p2 (outdated after the update);
/// * `fits 1.0.0`: no limits;
/// * `dual 1.0.0` (installed, usable until 2.3.0p2) and `dual 2.0.0`
///   (requires 2.3.0p2: enabled but inactive on OLD).
fn site_with_packages(fx: &Fixture) -> Site {
    fx.site_with_edits();
    let site = Site::open(fx.site()).unwrap().with_version(OLD_CMK);
    let packages = [
        ("old", "1.0.0", "2.3.0", Some(NEW_CMK), "old.sh"),
        ("fits", "1.0.0", "2.3.0", None, "fits.sh"),
        ("dual", "1.0.0", "2.3.0", Some(NEW_CMK), "dual1.sh"),
        ("dual", "2.0.0", NEW_CMK, None, "dual2.sh"),
    ];
    for (name, version, min, until, file) in packages {
        site.add(&package(name, version, min, until, file)).unwrap();
        let result = site.enable(&id(name, version), &ChangeOptions::default());
        if name == "dual" && version == "2.0.0" {
            // Too new for OLD: marked enabled, not installed.
            assert!(
                matches!(result, Err(StoreError::Incompatible { .. })),
                "{result:?}"
            );
        } else {
            result.unwrap();
        }
    }
    assert_eq!(installed_version(fx, "dual").as_deref(), Some("1.0.0"));
    assert!(mark(fx, "dual", "2.0.0").exists());
    site
}

fn plugin(site: &Site, file: &str) -> PathBuf {
    site.paths()
        .part_dir(PackagePart::Agents)
        .join("plugins")
        .join(file)
}

fn mark(fx: &Fixture, name: &str, version: &str) -> PathBuf {
    fx.site()
        .join("local/share/check_mk/enabled_packages")
        .join(format!("{name}-{version}.mkp"))
}

fn stored(fx: &Fixture, name: &str, version: &str) -> PathBuf {
    fx.site()
        .join("var/check_mk/packages_local")
        .join(format!("{name}-{version}.mkp"))
}

/// The version of the installed manifest `var/check_mk/packages/<name>`.
fn installed_version(fx: &Fixture, name: &str) -> Option<String> {
    let site = Site::open(fx.site()).unwrap();
    site.installed_manifest(&PackageName::new(name).unwrap())
        .map(|m| m.version.to_string())
}

/// The snapshot entries below `prefix` (relative to the site).
fn below(snap: &std::collections::BTreeMap<String, String>, prefix: &str) -> Vec<String> {
    snap.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| format!("{k} {v}"))
        .collect()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

fn pkg_names(doc: &serde_json::Value, key: &str) -> Vec<String> {
    doc["packages"][key]
        .as_array()
        .unwrap_or_else(|| panic!("packages.{key} in {doc}"))
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect()
}

/// Asserts that the site's `version` link points at NEW.
fn assert_site_on_new_version(fx: &Fixture) {
    assert_eq!(
        fs::read_link(fx.site().join("version")).unwrap(),
        Path::new("../../versions").join(NEW)
    );
}

/// Runs `omd update --conflict=install`, which must exit with 3 and a warning line
/// starting with `warning_start` while the update itself is finished (`Finished update.`,
/// the site on NEW). Returns the output and the warning line.
fn update_finished_with_warning(fx: &Fixture, warning_start: &str) -> (Output, String) {
    let out = fx.omd(&["update", "--conflict=install", SITE]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let warning = out
        .stdout
        .lines()
        .find(|l| l.starts_with(warning_start))
        .unwrap_or_else(|| panic!("{}", out.stdout))
        .to_owned();
    assert!(
        out.stdout.ends_with("Finished update.\n\n"),
        "{}",
        out.stdout
    );
    assert_site_on_new_version(fx);
    (out, warning)
}

#[test]
fn update_disables_outdated_packages_and_activates_the_fitting_version() {
    let fx = Fixture::new();
    let site = site_with_packages(&fx);
    let fits_before = below(&snapshot(&fx.site()), "var/check_mk/packages/fits");
    let fits_file = read(&plugin(&site, "fits.sh"));

    let out = fx.omd(&["update", "--conflict=install", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    assert_site_on_new_version(&fx);

    // (a) outdated: uninstalled and no longer enabled (mkp.md 5.12: disable
    // = uninstall + remove the enabled mark); the stored package is kept.
    assert!(!plugin(&site, "old.sh").exists());
    assert_eq!(installed_version(&fx, "old"), None);
    assert!(!mark(&fx, "old", "1.0.0").exists());
    assert!(stored(&fx, "old", "1.0.0").exists());
    // (b) fits: untouched.
    assert_eq!(read(&plugin(&site, "fits.sh")), fits_file);
    assert_eq!(
        below(&snapshot(&fx.site()), "var/check_mk/packages/fits"),
        fits_before
    );
    assert!(mark(&fx, "fits", "1.0.0").exists());
    // (c) two versions: the one that fits the new version is active.
    assert_eq!(installed_version(&fx, "dual").as_deref(), Some("2.0.0"));
    assert!(!plugin(&site, "dual1.sh").exists());
    assert_eq!(read(&plugin(&site, "dual2.sh")), "# dual 2.0.0\n");
    assert!(mark(&fx, "dual", "2.0.0").exists());
    assert!(!mark(&fx, "dual", "1.0.0").exists());

    // The lines, between the status lines and `Finished update.`, and in the log.
    let lines = [
        format!("Updating extension packages (MKPs) for version {NEW_CMK}..."),
        format!(
            "[old 1.0.0]: disabled (outdated: Package requires Checkmk version below {NEW_CMK} (this is {NEW_CMK}))"
        ),
        "[dual 2.0.0]: enabled".to_owned(),
        "[fits 1.0.0]: enabled".to_owned(),
    ];
    for line in &lines {
        assert!(has_line(&out.stdout, line), "{line:?} in\n{}", out.stdout);
    }
    assert!(
        has_line(
            &out.stdout,
            "[dual 1.0.0]: disabled (outdated: Package requires Checkmk version below 2.3.0p2 (this is 2.3.0p2))"
        ),
        "{}",
        out.stdout
    );
    let header = out.stdout.find("Updating extension packages").unwrap();
    assert!(out.stdout[..header].contains(" * Updated        etc/updated.conf"));
    assert!(
        out.stdout[header..].ends_with("[fits 1.0.0]: enabled\nFinished update.\n\n"),
        "{}",
        out.stdout
    );
    let log = read(&fx.site().join("var/log/update.log"));
    for line in &lines {
        assert!(has_line(&log, line), "{line:?} in log\n{log}");
    }
}

#[test]
fn dry_run_reports_the_packages_and_changes_nothing() {
    let fx = Fixture::new();
    site_with_packages(&fx);
    let before = snapshot(fx.root());
    let out = fx.omd(&["update", "--dry-run", "--conflict=install", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    assert_eq!(snapshot(fx.root()), before);
    for line in [
        format!("Extension packages (MKPs) for version {NEW_CMK} (dry run, nothing is changed):"),
        "[dual 2.0.0]: enabled".to_owned(),
        "[fits 1.0.0]: enabled".to_owned(),
        "Changes that would be made:".to_owned(),
        "  disable old 1.0.0:".to_owned(),
    ] {
        assert!(has_line(&out.stdout, &line), "{line:?} in\n{}", out.stdout);
    }
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("[old 1.0.0]: disabled (outdated: ")),
        "{}",
        out.stdout
    );
    // Each outdated package is reported once (update-active would see it
    // installed in a dry run, the real update does not).
    assert_eq!(out.stdout.matches("[old 1.0.0]: disabled").count(), 1);
    assert!(!out.stdout.contains("Finished update."));
    assert!(
        out.stdout.ends_with("Nothing was changed.\n"),
        "{}",
        out.stdout
    );

    // --json carries the same report.
    let out = fx.omd(&["update", "--dry-run", "--json", "--conflict=install", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    assert_eq!(snapshot(fx.root()), before);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["packages"]["dry_run"], true);
    assert_eq!(doc["packages"]["result"], "planned");
    assert_eq!(doc["packages"]["site_version"], NEW_CMK);
    assert_eq!(pkg_names(&doc, "disabled"), ["dual 1.0.0", "old 1.0.0"]);
    assert_eq!(pkg_names(&doc, "installed"), ["dual 2.0.0", "fits 1.0.0"]);
    assert!(pkg_names(&doc, "uninstalled").is_empty());
    assert!(pkg_names(&doc, "refused").is_empty());
    assert!(doc["packages"]["error"].is_null());
    assert!(
        doc["packages"]["disabled"][1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("outdated: ")
    );
    assert!(!doc["packages"]["changes"].as_array().unwrap().is_empty());
}

#[test]
fn json_update_carries_the_package_report() {
    let fx = Fixture::new();
    site_with_packages(&fx);
    let out = fx.omd(&["update", "--json", "--conflict=keepold", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["result"], "finished");
    assert_eq!(doc["packages"]["dry_run"], false);
    assert_eq!(doc["packages"]["result"], "done");
    assert_eq!(pkg_names(&doc, "disabled"), ["dual 1.0.0", "old 1.0.0"]);
    assert_eq!(pkg_names(&doc, "installed"), ["dual 2.0.0", "fits 1.0.0"]);
    assert_eq!(installed_version(&fx, "dual").as_deref(), Some("2.0.0"));
    // The log has the text lines even though stdout had JSON only.
    let log = read(&fx.site().join("var/log/update.log"));
    assert!(has_line(&log, "[dual 2.0.0]: enabled"), "{log}");
}

#[test]
fn an_edited_package_file_is_kept_and_reported_with_exit_code_3() {
    let fx = Fixture::new();
    let site = site_with_packages(&fx);
    let edited = plugin(&site, "old.sh");
    fs::write(&edited, "# my local fix\n").unwrap();

    // The dry run predicts it.
    let before = snapshot(fx.root());
    let out = fx.omd(&["update", "--dry-run", "--conflict=install", SITE]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(snapshot(fx.root()), before);

    // The update is committed with a warning that names the file; the package is as it was.
    let (out, warning) = update_finished_with_warning(
        &fx,
        " ! [old 1.0.0]: does not fit version 2.3.0p2 but was not disabled: ",
    );
    assert!(warning.contains(&edited.display().to_string()), "{warning}");
    assert!(
        warning.contains("The update is done; the package stays as it was."),
        "{warning}"
    );
    assert_eq!(read(&edited), "# my local fix\n");
    assert_eq!(installed_version(&fx, "old").as_deref(), Some("1.0.0"));
    assert!(mark(&fx, "old", "1.0.0").exists());
    // Not listed as enabled either; the others were handled.
    assert!(!has_line(&out.stdout, "[old 1.0.0]: enabled"));
    assert!(
        has_line(&out.stdout, "[dual 2.0.0]: enabled"),
        "{}",
        out.stdout
    );
    assert!(read(&fx.site().join("var/log/update.log")).contains(&warning));
}

#[test]
fn a_site_without_a_package_store_has_no_package_step() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let out = fx.omd(&["update", "--json", "--conflict=install", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(doc["packages"].is_null(), "{doc}");
    assert!(!read(&fx.site().join("var/log/update.log")).contains("extension packages"));
    assert!(!fx.site().join("var/check_mk").exists());
}

#[test]
fn a_failing_package_step_warns_and_keeps_the_update() {
    let fx = Fixture::new();
    site_with_packages(&fx);
    // The journal of an interrupted package change that cannot be read:
    // the store refuses to open.
    let txn = fx.site().join("var/check_mk/mkp-transaction");
    fs::create_dir_all(&txn).unwrap();
    fs::write(txn.join("journal"), "not a journal\n").unwrap();

    let before = snapshot(fx.root());
    let pkgs_before = below(&snapshot(&fx.site()), "var/check_mk/packages/");
    let out = fx.omd(&["update", "--dry-run", "--json", "--conflict=install", SITE]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(snapshot(fx.root()), before);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["packages"]["result"], "failed");
    assert!(
        doc["packages"]["error"]
            .as_str()
            .unwrap()
            .contains("interrupted package change"),
        "{doc}"
    );

    let (_, warning) = update_finished_with_warning(
        &fx,
        " ! Updating the extension packages failed: cannot open the package store: ",
    );
    assert!(
        warning.contains("The update is done (not rolled back)"),
        "{warning}"
    );
    // The packages were not touched.
    assert_eq!(
        below(&snapshot(&fx.site()), "var/check_mk/packages/"),
        pkgs_before
    );
    assert!(
        fx.site()
            .join("local/share/check_mk/agents/plugins/old.sh")
            .exists()
    );
    assert!(read(&fx.site().join("var/log/update.log")).contains(&warning));
}

#[test]
fn a_downgrade_uninstalls_a_too_new_package_and_keeps_its_mark() {
    let fx = Fixture::new();
    fx.site_with_edits();
    let out = fx.omd(&["update", "--conflict=install", SITE]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let site = Site::open(fx.site()).unwrap().with_version(NEW_CMK);
    site.add(&package("newonly", "1.0.0", NEW_CMK, None, "newonly.sh"))
        .unwrap();
    site.enable(&id("newonly", "1.0.0"), &ChangeOptions::default())
        .unwrap();

    // Back to OLD (a downgrade within 2.3.0): update-active uninstalls it.
    let out = fx.omd(&["-V", super::OLD, "update", "--conflict=install", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    assert!(
        has_line(&out.stdout, "[newonly 1.0.0]: disabled"),
        "{}",
        out.stdout
    );
    assert!(!plugin(&site, "newonly.sh").exists());
    assert_eq!(installed_version(&fx, "newonly"), None);
    assert!(mark(&fx, "newonly", "1.0.0").exists());

    // And up again: the mark makes update-active install it again.
    let out = fx.omd(&["-V", NEW, "update", "--conflict=install", SITE]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    assert!(
        has_line(&out.stdout, "[newonly 1.0.0]: enabled"),
        "{}",
        out.stdout
    );
    assert_eq!(read(&plugin(&site, "newonly.sh")), "# newonly 1.0.0\n");
}
