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
use site_merge as tree;

fn main() -> Result<()> {
    let tour = tour_dir();
    println!("cmk-toolkit tour, sandbox in {}", tour.display());
    versions_section()?;
    let root = omd_registry_section(&tour)?;
    compatibility_section(&root)?;
    site_merge_section(&tour)?;
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

// --- site update: omd create and omd update -----------------------------------

/// Writes `text` to `dir/rel`, creating the parent directories.
fn put(dir: &Path, rel: &str, text: &str) -> Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Two versions with small skeletons, two sites created from the older one
/// with the same operator edits, each updated to the newer one: `alpha`
/// with the `keepold` policy, `beta` with `install`.
fn site_merge_section(tour: &Path) -> Result<()> {
    heading("Site update (site-merge, bins/omd)");
    let dir = tour.join("update");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let root = OmdRoot::new(&dir);
    let (old, new) = ("2.3.0p1.cre", "2.3.0p2.cre");
    let main_mk = |extra: &str| {
        format!(
            "# main.mk of site ###SITE### in ###ROOT###\n\n# hosts\nall_hosts = []\n\n# checks\ncheck_interval = 60\n{extra}"
        )
    };
    for (version, port, extra, only) in [
        (old, "5000", "", "etc/check_mk/legacy.mk"),
        (
            new,
            "5001",
            "retry_interval = 10\n",
            "etc/check_mk/rules.mk",
        ),
    ] {
        let base = root.versions_dir().join(version);
        let skel = base.join("skel");
        put(&skel, "etc/check_mk/main.mk", &main_mk(extra))?;
        put(
            &skel,
            "etc/apache/listen-port.conf",
            &format!("Listen 127.0.0.1:{port}\n"),
        )?;
        put(
            &skel,
            "etc/omd/site.conf",
            "CONFIG_CORE='nagios'\nEDITION='###EDITION###'\n",
        )?;
        put(&skel, only, "# shipped with this version only\n")?;
        put(
            &base,
            "share/omd/skel.permissions",
            "etc/omd/site.conf 640\n",
        )?;
    }
    println!(
        "Versions {old} and {new} in {} (skel/ and share/omd/skel.permissions each).",
        root.versions_dir().display()
    );

    for (site, policy) in [
        ("alpha", tree::Policy::KeepOld),
        ("beta", tree::Policy::Install),
    ] {
        let home = root.site_dir(site);
        let home_abs = std::path::absolute(&home)?.to_string_lossy().into_owned();
        let versions = root.versions_dir();
        let created = tree::SiteCreation::new(
            &home,
            site,
            tree::Skeleton::of_version(&versions, old).edition("raw"),
        )
        .root(home_abs.as_str())
        .create()?;
        println!(
            "\n$ omd -V {old} create {site}\n  Created new site {site} with version {old} ({} paths).",
            created.paths
        );

        // The operator adds hosts (a clean merge) and moves the port (a conflict).
        let main = home.join("etc/check_mk/main.mk");
        let text = fs::read_to_string(&main)?
            .replace("all_hosts = []", "all_hosts = [\"web01\", \"db01\"]");
        fs::write(&main, text)?;
        fs::write(
            home.join("etc/apache/listen-port.conf"),
            "Listen 127.0.0.1:5005\n",
        )?;
        println!("  (operator: added two hosts to etc/check_mk/main.mk, moved the port to 5005)");

        let recovery = tree::recover(&home)?;
        let update = tree::Update::builder(
            &home,
            site,
            tree::Skeleton::for_site(&home, &versions, old).edition("raw"),
            tree::Skeleton::of_version(&versions, new).edition("raw"),
        )
        .root(home_abs.as_str())
        .build()?;
        let merger = tree::GitMerge::new();
        if policy == tree::Policy::KeepOld {
            // A dry run: the questions stay open, nothing is written.
            let dry = update.plan(&merger, &mut tree::Policy::Ask)?;
            let mut out = String::new();
            for line in dry.lines() {
                out.push_str(&format!("{line}\n"));
            }
            for (path, q) in dry.conflicts() {
                out.push_str(&format!(
                    "question about {path}: {} (choices {})\n",
                    q.title,
                    q.choices
                        .iter()
                        .map(|c| c.key.to_string())
                        .collect::<Vec<_>>()
                        .join("/")
                ));
            }
            out.push_str(&format!(
                "{} unresolved; nothing was changed.\n",
                dry.unresolved()
            ));
            show(&format!("omd update --dry-run {site}"), &out);
        }
        let mut resolver = policy;
        let plan = update.plan(&merger, &mut resolver)?;
        update.apply(&plan, &tree::ApplyOptions::new())?;
        let mut out = format!("(recovery first: {recovery:?})\n");
        for line in plan.lines() {
            out.push_str(&format!("{line}\n"));
        }
        out.push_str("Finished update.\n");
        let name = if policy == tree::Policy::KeepOld {
            "keepold"
        } else {
            "install"
        };
        show(&format!("omd update --conflict={name} {site}"), &out);
        show(
            &format!("cat ~{site}/etc/check_mk/main.mk   # merged"),
            &fs::read_to_string(&main)?,
        );
        show(
            &format!("cat ~{site}/etc/apache/listen-port.conf"),
            &fs::read_to_string(home.join("etc/apache/listen-port.conf"))?,
        );
        let version = root.site_version(site)?.unwrap_or_default();
        show(
            &format!("omd version --bare {site}"),
            &version_line(&version, true),
        );
    }
    Ok(())
}
