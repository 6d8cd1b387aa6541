//! A guided tour of the toolkit on a sandbox under `target/tour/`.
//!
//! ```text
//! cargo run --release --example tour
//! ```
//!
//! Every capability has its own section below; each builds what it needs
//! under `target/tour/` (recreated on every run) and prints what an operator
//! would see. Only the crates' public APIs are used; no binary is run.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use omd_versions::{
    Edition, OmdRoot, OmdVersion, SiteVersionInfo, SitesListing, Version, VersionOrder,
    VersionsListing, check_distributed, check_mkp_min_required, check_mkp_usable_until,
    check_update, mkp_version_number, version_line,
};

fn main() -> Result<()> {
    let tour = tour_dir();
    println!("cmk-toolkit tour, sandbox in {}", tour.display());
    versions_section()?;
    let root = omd_registry_section(&tour)?;
    compatibility_section(&root)?;
    println!("\nEnd of the tour.");
    Ok(())
}

/// `target/tour` in the workspace root.
fn tour_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join("target")
        .join("tour")
}

fn heading(title: &str) {
    println!("\n== {title} ==\n");
}

/// Shows a command and its output, indented.
fn show(command: &str, output: &str) {
    println!("$ {command}");
    for line in output.lines() {
        println!("  {line}");
    }
}

fn v(s: &str) -> Result<Version> {
    s.parse().with_context(|| format!("tour data {s:?}"))
}

// --- omd-versions: version strings ------------------------------------------

fn versions_section() -> Result<()> {
    heading("Checkmk versions (omd-versions)");
    let mut list: Vec<Version> = [
        "2.3.0p12",
        "2024.01.01",
        "2.3.0",
        "2.3.0p4",
        "2.3.0b1",
        "2.3.0-2024.05.01",
        "2.3.0i1",
        "2.2.0p8",
        "2.4.0b1",
    ]
    .iter()
    .map(|s| v(s))
    .collect::<Result<_>>()?;
    list.sort_by(Version::cmp_lenient);
    let sorted: Vec<String> = list.iter().map(ToString::to_string).collect();
    println!("Checkmk order:  {}", sorted.join(" < "));

    let (release, rc) = (v("2.3.0p8")?, v("2.3.0p8-rc1")?);
    println!(
        "{release} vs {rc}: {:?} (a release candidate and its release cannot be ordered)",
        release.partial_cmp(&rc)
    );
    match "2.3.0p12.cre".parse::<Version>() {
        Ok(_) => println!("2.3.0p12.cre parsed?!"),
        Err(e) => println!("{e}"),
    }
    let name: OmdVersion = "1.6.0p3.cee.demo".parse()?;
    println!(
        "OMD name {name}: Checkmk {}, edition {}, demo {}",
        name.version(),
        name.edition().map_or("none", Edition::short),
        name.is_demo()
    );
    for s in ["2.3.0p21+security", "2.2.0b1", "1.5.0-2019.10.10"] {
        println!("MKP number of {s}: {}", mkp_version_number(s)?);
    }
    Ok(())
}

// --- omd-versions: the registry of an OMD root -------------------------------

/// Builds `target/tour/omd` with a few versions and sites and shows what
/// `omd versions`, `omd sites` and `omd version` print.
fn omd_registry_section(tour: &Path) -> Result<OmdRoot> {
    heading("The OMD registry (omd-versions, bins/omd)");
    let dir = tour.join("omd");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let root = OmdRoot::new(&dir);
    for version in [
        "2.1.0p40.cre",
        "2.2.0p8.cre",
        "2.3.0p1.cee",
        "2.3.0p12.cee",
        "2.3.0p4.cee",
        "2.3.0-2024.05.01.cee",
    ] {
        let d = root.versions_dir().join(version);
        fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    fs::create_dir_all(dir.join("apache"))?;
    for (site, version, enabled) in [
        ("prod", Some("2.3.0p12.cee"), true),
        ("staging", Some("2.3.0p4.cee"), true),
        ("legacy", Some("2.1.0p40.cre"), false),
        ("lab", Some("2.2.0p8.cre"), true),
        ("fresh", None, true),
    ] {
        fs::create_dir_all(root.site_dir(site))?;
        if let Some(version) = version {
            root.set_site_version(site, version)?;
        }
        if enabled {
            fs::write(dir.join("apache").join(format!("{site}.conf")), "")?;
        }
    }
    root.set_default_version("2.3.0p4.cee")?;
    root.set_default_version("2.3.0p12.cee")?;

    show(
        "omd versions",
        &VersionsListing::read(&root, VersionOrder::Checkmk)?.to_text(false),
    );
    show(
        "omd versions --sort string   # upstream's order",
        &VersionsListing::read(&root, VersionOrder::String)?.to_text(false),
    );
    show(
        "omd sites",
        &SitesListing::read(&root)?.to_text(false, false, false),
    );
    let default = root.default_version()?.unwrap_or_default();
    show("omd version", &version_line(&default, false));
    let staging = root.site_version("staging")?.unwrap_or_default();
    show("omd version --bare staging", &version_line(&staging, true));
    match root.site_version("nosuchsite") {
        Ok(_) => println!("nosuchsite exists?!"),
        Err(e) => show("omd version nosuchsite", &format!("{e}  (exit code 1)")),
    }
    Ok(root)
}

// --- omd-versions: compatibility rules ---------------------------------------

fn compatibility_section(root: &OmdRoot) -> Result<()> {
    heading("Compatibility (omd-versions)");
    let verdict = |from: &str, to: &str| -> Result<String> {
        Ok(match check_update(&v(from)?, &v(to)?) {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("refused: {e}"),
        })
    };
    for (from, to) in [
        ("2.2.0p8", "2.3.0p1"),
        ("2.1.0", "2.3.0"),
        ("2.2.0", "2.3.0p1"),
        ("2.3.0p10", "2.3.0p5"),
        ("2.3.0p30", "2.5.0"),
    ] {
        println!("omd update {from} -> {to}: {}", verdict(from, to)?);
    }

    // Which sites of the sandbox could move to the default version?
    let default: OmdVersion = root
        .default_version()?
        .context("the sandbox has a default version")?
        .parse()?;
    println!("\nUpdating the sandbox's sites to the default {default}:");
    for site in root.site_infos()? {
        let Some(name) = site.version else {
            println!("  {:<8} (empty site dir)", site.name);
            continue;
        };
        let from: OmdVersion = name.parse()?;
        let result = match check_update(from.version(), default.version()) {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("refused: {e}"),
        };
        println!("  {:<8} {name:<14} {result}", site.name);
    }

    println!();
    for (site, bound) in [("2.2.0b1", "2.2.0"), ("2.2.0", "2.2.0")] {
        let result = check_mkp_min_required(site, bound);
        println!(
            "MKP min_required {bound} on {site}: {}",
            result.map_or_else(|e| e.to_string(), |()| "ok".to_owned())
        );
    }
    let result = check_mkp_usable_until("2.3.0-2024.01.01", "2.3.0p5");
    println!(
        "MKP usable_until 2.3.0p5 on 2.3.0-2024.01.01: {}",
        result.map_or_else(|e| e.to_string(), |()| "ok".to_owned())
    );
    let info = |s: &str| -> Result<SiteVersionInfo> {
        Ok(SiteVersionInfo {
            version: v(s)?,
            edition: None,
        })
    };
    let result = check_distributed(Some(&info("1.6.0p23")?), &info("2.2.0")?);
    println!(
        "Central 1.6.0p23, remote 2.2.0: {}",
        result.map_or_else(|e| e.to_string(), |()| "ok".to_owned())
    );
    Ok(())
}
