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
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_bakery::{BakeOptions, Layout, SignWith};
use agent_deploy::{
    Advertise, BakerySite, DEFAULT_PBKDF2_ITERATIONS, DeployStore, Limits, ServerOptions,
    package_hash, spawn,
};
use agent_sign::{
    Clock as _, ExpiryThresholds, KdfParams, KeyStore, KeyType, MetaKey, NewKey, PackageSignature,
    Passphrase, PrivateKey, RoleKeys, Roles, RollbackState, Root, SignedDocument, SystemClock,
    Targets, TrustedCertificates, TrustedRoot, VerifyPolicy, sign_package, signatures_to_json,
    verify_package,
};
use agent_updater::{
    AgentSignVerifier, InstallCommand, Mode, Paths, RegisterOptions, RunOptions, Updater,
};
use agent_wire::{Platform, TargetMetadata};
use anyhow::{Context as _, Result};
use mkp_format::{
    ChangeOptions, Manifest, Mkp, PackOptions, PackageId, PackageName, PackagePart, PackageVersion,
    Site, package_from_dirs,
};
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
    mkp_section(&tour)?;
    let signed = signing_section(&tour)?;
    deploy_section(&tour, &signed)?;
    bakery_section(&tour, &signed)?;
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

// --- mkp-format: extension packages -------------------------------------------

/// Packs a small extension from files in the sandbox, inspects it, and manages
/// it on the site `alpha` of the site-update section.
fn mkp_section(tour: &Path) -> Result<()> {
    heading("MKP extension packages (mkp-format, bins/mkp)");
    let dir = tour.join("mkp");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    // The sources, laid out like a site's local/ hierarchy.
    let src = dir.join("src");
    let check = "hello/agent_based/hello.py";
    let web = "htdocs/images/icon_hello.svg";
    put(
        &src.join(PackagePart::CmkAddonsPlugins.site_path()),
        check,
        "from cmk.agent_based.v2 import CheckPlugin, Result, Service, State\n\n\
         def discover(section):\n    yield Service()\n\n\
         def check(section):\n    yield Result(state=State.OK, summary=\"Hello!\")\n\n\
         check_plugin_hello = CheckPlugin(name=\"hello\", service_name=\"Hello\",\n\
         \x20   discovery_function=discover, check_function=check)\n",
    )?;
    put(
        &src.join(PackagePart::Web.site_path()),
        web,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"16\" height=\"16\"/>\n",
    )?;
    let manifest = Manifest::new(
        PackageName::new("hello").context("package name")?,
        PackageVersion::new("1.0.0").context("package version")?,
        "Hello world check",
        "Says hello for every host.",
        "Tour Guide <tour@example.com>",
        "https://example.com/hello/",
        "2.3.0",
        None,
        vec![
            (PackagePart::CmkAddonsPlugins, vec![check.to_owned()]),
            (PackagePart::Web, vec![web.to_owned()]),
        ],
    );
    let bytes = package_from_dirs(
        &manifest,
        |part| src.join(part.site_path()),
        &PackOptions::default().mtime(1_735_689_600),
    )?;
    let file = dir.join(PackageId::of(&manifest).file_name());
    fs::write(&file, &bytes).with_context(|| format!("cannot write {}", file.display()))?;
    println!(
        "$ mkp package ...   # {} files from {} -> {} ({} bytes)",
        manifest.file_count(),
        src.display(),
        file.display(),
        bytes.len()
    );
    let mkp = Mkp::open(&file)?;
    show(
        &format!("mkp inspect {}", file.display()),
        &mkp.manifest().to_inspect_text(),
    );

    // Untrusted input fails cleanly, in one line.
    let truncated = dir.join("truncated.mkp");
    fs::write(&truncated, bytes.get(..bytes.len() / 2).unwrap_or_default())?;
    let html = dir.join("download.mkp");
    fs::write(
        &html,
        "<!DOCTYPE html>\n<html><body>Please log in to download.</body></html>\n",
    )?;
    for bad in [&truncated, &html] {
        match Mkp::open(bad) {
            Ok(_) => println!("{} was accepted?!", bad.display()),
            Err(e) => show(
                &format!("mkp inspect {}", bad.display()),
                &format!("{e}  (exit code 1)"),
            ),
        }
    }

    // The package store of the site `alpha` (its `version` link says 2.3.0p2).
    let home = OmdRoot::new(tour.join("update")).site_dir("alpha");
    let mut site = Site::open(&home)?;
    if site.version().is_err() {
        site = site.with_version("2.3.0p2");
    }
    let site_version = site.version()?;
    let added = site.add(&bytes)?;
    show(
        &format!("mkp add {}", file.display()),
        &format!("{} {}", added.name, added.version),
    );
    let id = PackageId::of(&added);
    // Paths on the site, shown as `~alpha/...`.
    let prefix = format!("{}/", site.root().display());
    let tilde = |text: String| text.replace(&prefix, "~alpha/");
    let plan = site.enable(&id, &ChangeOptions::default())?;
    show(
        &format!("mkp enable hello   # on ~alpha, Checkmk {site_version}"),
        &format!(
            "(silent on success; what it did:)\n{}",
            tilde(plan.to_string())
        ),
    );
    show("mkp list", &site.listing()?.to_table());

    // The guard: an installed file edited by the operator is not deleted silently.
    let installed = site
        .paths()
        .part_dir(PackagePart::CmkAddonsPlugins)
        .join(check);
    let mut text = fs::read_to_string(&installed)
        .with_context(|| format!("cannot read {}", installed.display()))?;
    text.push_str("# tuned by the operator\n");
    fs::write(&installed, text)?;
    println!("  (operator: appended a comment to the installed hello.py)");
    match site.disable(&id, &ChangeOptions::default()) {
        Ok(_) => println!("$ mkp disable hello\n  disabled?! the edit is lost"),
        Err(e) => show(
            "mkp disable hello",
            &format!(
                "{}\n(exit code 1; nothing was changed)",
                tilde(e.to_string())
            ),
        ),
    }
    let plan = site.disable(&id, &ChangeOptions::default().force(true))?;
    show(
        "mkp disable --force hello",
        &format!("(what it did:)\n{}", tilde(plan.to_string())),
    );
    show("mkp list", &site.listing()?.to_table());
    Ok(())
}

// --- agent-sign: signature keys, signed agents, hardened metadata --------------

/// What the deployment section needs from the signing section.
struct Signed {
    /// The agent package.
    package: Vec<u8>,
    /// Its signature list.
    signatures: Vec<PackageSignature>,
    /// The trusted certificate, PEM.
    certificate: String,
    /// The metadata root the updater trusts.
    root: TrustedRoot,
    /// Signed targets metadata (version 2) of the package for `web01`.
    targets: SignedDocument,
}

fn signing_section(tour: &Path) -> Result<Signed> {
    heading("Signed agents (agent-sign, bins/agent-sign)");
    let dir = tour.join("sign");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let store = KeyStore::open(dir.join("keys"))?;
    let passphrase = Passphrase::new("correct horse battery staple");
    let kdf = KdfParams::default();
    println!(
        "$ agent-sign key create --alias 'Agent signature key'\n  \
         (generating an RSA-4096 key and encrypting it with {} PBKDF2 rounds; takes a few seconds)",
        kdf.iterations()
    );
    let started = Instant::now();
    let entry = store.create(
        &NewKey {
            alias: "Agent signature key".into(),
            owner: "cmkadmin".into(),
            site: "tour".into(),
            key_type: KeyType::Rsa,
        },
        &passphrase,
        kdf,
        &SystemClock,
    )?;
    let cert = &entry.certificate;
    let state = cert.expiry_state(&SystemClock, ExpiryThresholds::default());
    show(
        "agent-sign key list",
        &format!(
            "Key {}: {} (owner {}, {}, {} bits), created in {:.1} s\n\
             MD5 digest:          {}\n\
             SHA-256 fingerprint: {}\n\
             Expiry:              {}, {} days left",
            entry.id,
            entry.alias,
            entry.owner,
            entry.key_type,
            cert.public_key().bits(),
            started.elapsed().as_secs_f64(),
            cert.md5_digest(),
            cert.fingerprint_sha256(),
            format!("{state:?}").to_uppercase(),
            cert.days_left(&SystemClock),
        ),
    );
    match store.unlock(entry.id, &Passphrase::new("not the passphrase")) {
        Ok(_) => println!("unlocked with a wrong passphrase?!"),
        Err(e) => show(
            &format!(
                "agent-sign sign --key {} agent.deb   # wrong passphrase",
                entry.id
            ),
            &e.to_string(),
        ),
    }
    let (key, _) = store.unlock(entry.id, &passphrase)?;

    // A fake agent package, signed like the Agent Bakery does.
    let package = b"!<arch>\ndebian-binary   check-mk-agent_2.3.0p2-1_all.deb (tour)\n".to_vec();
    let mut signatures = Vec::new();
    sign_package(&package, &key, cert, &mut signatures)?;
    let agent = dir.join("agent.deb");
    fs::write(&agent, &package)?;
    fs::write(
        dir.join("agent.deb.signatures.json"),
        signatures_to_json(&signatures),
    )?;
    println!(
        "$ agent-sign sign --key {} agent.deb\n  ({} signature(s) written to agent.deb.signatures.json)",
        entry.id,
        signatures.len()
    );
    let trusted: TrustedCertificates = [cert.clone()].into_iter().collect();
    let verify = |bytes: &[u8]| {
        let report = verify_package(
            bytes,
            &signatures,
            &trusted,
            VerifyPolicy::default(),
            &SystemClock,
        );
        let mut out = report.log.join("\n");
        if !report.accepted {
            out.push_str("\n(refused, exit code 1)");
        }
        out
    };
    show(
        "agent-sign verify --trust cert.pem agent.deb",
        &verify(&package),
    );
    let mut tampered = package.clone();
    if let Some(byte) = tampered.last_mut() {
        *byte ^= 0x01;
    }
    show(
        "agent-sign verify --trust cert.pem agent.deb   # one byte changed",
        &verify(&tampered),
    );

    // Hardened metadata: a root (offline Ed25519 key) delegating targets to the RSA key.
    let root_key = PrivateKey::generate_ed25519()?;
    let (root_id, root_meta) = MetaKey::from_public(root_key.public_key());
    let (targets_id, targets_meta) = MetaKey::from_public(key.public_key());
    let now = SystemClock.now();
    let day = 86_400;
    let role = |id: &str| RoleKeys {
        keyids: vec![id.to_owned()],
        threshold: 1,
    };
    let root = Root::new(
        1,
        now + 365 * day,
        [
            (root_id.clone(), root_meta),
            (targets_id.clone(), targets_meta),
        ]
        .into_iter()
        .collect(),
        Roles {
            root: role(&root_id),
            targets: role(&targets_id),
            timestamp: role(&root_id),
        },
    );
    let mut root_doc = SignedDocument::new(&root)?;
    root_doc.sign(&root_key)?;
    let trusted_root = TrustedRoot::bootstrap(&root_doc)?;
    println!(
        "\nMetadata root v1: root key {}…, targets key {}… (the RSA key above)",
        root_id.get(..16).unwrap_or(&root_id),
        targets_id.get(..16).unwrap_or(&targets_id)
    );
    let targets_doc = |package: &[u8], host: &str, version: u64| -> Result<SignedDocument> {
        let targets = Targets::for_package(
            package,
            host,
            "linux_deb",
            &package_hash(package),
            version,
            now,
            now + 7 * day,
        );
        let mut doc = SignedDocument::new(&targets)?;
        doc.sign(&key)?;
        Ok(doc)
    };
    let old_package = b"!<arch>\ndebian-binary   check-mk-agent_2.3.0p1-1_all.deb (tour)\n";
    let v1 = targets_doc(old_package, "web01", 1)?;
    let v2 = targets_doc(&package, "web01", 2)?;
    let other = targets_doc(&package, "db01", 3)?;
    fs::write(dir.join("targets-web01-v2.json"), v2.to_json()?)?;

    let mut rollback = RollbackState::default();
    let mut check = |doc: &SignedDocument, label: &str, bytes: &[u8]| -> Result<()> {
        let out =
            match trusted_root.verify_targets(doc, "web01", "linux_deb", &rollback, &SystemClock) {
                Ok(targets) => match targets.check_package(bytes) {
                    Ok(()) => {
                        rollback.accept(&targets);
                        format!(
                            "OK: targets v{} for {}/{}, {} bytes, SHA-256 {}…; accepted",
                            targets.version,
                            targets.host_name,
                            targets.platform,
                            targets.length,
                            targets.sha256.get(..16).unwrap_or_default()
                        )
                    }
                    Err(e) => format!("refused: {e}"),
                },
                Err(e) => format!("refused: {e}"),
            };
        show(
            &format!("agent-sign metadata verify --state web01.state --targets {label}"),
            &out,
        );
        Ok(())
    };
    println!(
        "$ agent-sign metadata targets agent.deb --host web01 --platform linux_deb \\\n      \
         --aghash {} --version 2 --key {} --out targets-web01-v2.json",
        package_hash(&package),
        entry.id
    );
    println!("  (also v1 of an older package for web01, and v3 for db01)");
    let state = "web01.state";
    println!("(the updater of web01 keeps the root and the highest accepted versions in {state})");
    check(&v2, "targets-web01-v2.json --package agent.deb", &package)?;
    check(&v1, "targets-web01-v1.json   # a replay", old_package)?;
    check(&other, "targets-db01-v3.json", &package)?;
    check(
        &v2,
        "targets-web01-v2.json --package agent.deb   # one byte changed",
        &tampered,
    )?;

    Ok(Signed {
        package,
        signatures,
        certificate: cert.to_pem(),
        root: trusted_root,
        targets: v2,
    })
}

// --- agent-deploy: the deployment server and the updater ----------------------

/// Serves the signed package of the signing section on 127.0.0.1 (plain HTTP,
/// an ephemeral port, in this process), registers `web01` and runs its
/// updater once in plug-in mode; the "install" copies the package.
fn deploy_section(tour: &Path, signed: &Signed) -> Result<()> {
    heading("Agent deployment (agent-deploy, bins/agent-deploy, bins/cmk-update-agent)");
    let dir = tour.join("deploy");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let state = dir.join("server");
    fs::create_dir_all(&state)?;
    let (user, secret) = ("automation", "tour-automation-secret");
    DeployStore::set_user(&state, user, secret, DEFAULT_PBKDF2_ITERATIONS)?;
    println!(
        "$ agent-deploy user-add {user}\n  (secret hashed with {DEFAULT_PBKDF2_ITERATIONS} PBKDF2 rounds)"
    );
    let store = Arc::new(DeployStore::open(&state, Advertise::default())?);
    let hash = store.publish(
        "web01",
        Platform::LinuxDeb,
        &signed.package,
        &signed.signatures,
        Some(&TargetMetadata {
            targets: signed.targets.clone(),
            timestamp: None,
        }),
    )?;
    println!(
        "$ agent-deploy publish --host web01 --os linux_deb --package agent.deb \\\n      \
         --signatures agent.deb.signatures.json --metadata targets-web01-v2.json\n  {hash}"
    );
    let options = ServerOptions {
        site: "tour".into(),
        limits: Limits::default(),
        tls: None,
    };
    let addr = "127.0.0.1:0".parse().context("listen address")?;
    let server = spawn(Arc::clone(&store), options, addr, 1)
        .context("cannot start the deployment server")?;
    let addr = server.local_addr();
    println!(
        "$ agent-deploy serve --site tour --listen 127.0.0.1:0\n  \
         (listening on http://{addr}/tour/check_mk/; plain HTTP for the tour only)"
    );

    // The host: the trusted certificate in its config, as the bakery writes it.
    let host = dir.join("web01");
    let (conf, var) = (host.join("etc"), host.join("var"));
    // A Python literal; Rust's `{:?}` of the (ASCII) PEM is one.
    put(
        &conf,
        "cmk-update-agent.cfg",
        &format!("signature_keys = [{:?}]\n", signed.certificate),
    )?;
    let installed = host.join("installed-agent.deb");
    let install = InstallCommand {
        program: "sh".into(),
        args: vec!["-c".into(), format!("cp \"$0\" '{}'", installed.display())],
    };
    let updater = Updater::new(
        Paths::in_dirs(&conf, &var),
        Arc::new(AgentSignVerifier::hardened(signed.root.clone())),
    )
    .with_install_command(install)
    .with_timeout(Duration::from_secs(10));
    let registered = updater.register(&RegisterOptions {
        server: addr.to_string(),
        site: "tour".into(),
        protocol: "http".into(),
        host_name: "web01".into(),
        user: user.into(),
        secret: secret.to_owned().into(),
        gui_login: false,
        insecure: false,
    })?;
    show(
        &format!("cmk-update-agent register -s {addr} -i tour -p http -H web01 -U {user} -S ..."),
        &format!(
            "Registered; the server monitors web01: {}",
            registered.monitored
        ),
    );
    let result = updater.run(&RunOptions::new(Mode::Plugin));
    let outcome = match &result {
        Ok(o) => format!("{o:?}"),
        Err(e) => format!("failed: {e}"),
    };
    let section = updater.record_result(&result);
    show(
        "cmk-update-agent --plugin   # as the agent runs it",
        &format!("({outcome})\n{section}"),
    );
    let copied = fs::read(&installed).unwrap_or_default();
    println!(
        "  (the install command copied {} bytes to {}; identical: {})",
        copied.len(),
        installed.display(),
        copied == signed.package
    );
    let mut out = String::new();
    for s in store.statuses() {
        out.push_str(&format!(
            "{}: platform {}, target {}, installed {}, last error {}\n",
            s.host_name,
            s.platform.as_deref().unwrap_or("-"),
            s.target_hash.as_deref().unwrap_or("-"),
            s.installed_aghash.as_deref().unwrap_or("-"),
            s.last_error.as_deref().unwrap_or("-"),
        ));
    }
    show("agent-deploy status", &out);
    server
        .shutdown()
        .context("cannot stop the deployment server")?;
    Ok(())
}

// --- agent-bakery: from the "Agent updater" rule to signed per-host packages -------

/// A Python string literal (for the sandbox site's rules.mk).
fn py_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\n', "\\n"))
}

/// The sandbox site's files: the agent, the updater plug-in, two folders with one host each
/// and the root folder's "Agent updater" rule.
fn bakery_site(root: &Path, server: &str, signature_key: &str) -> Result<()> {
    put(
        root,
        "share/check_mk/agents/check_mk_agent.linux",
        "#!/bin/bash\necho '<<<check_mk>>>'\n",
    )?;
    put(
        root,
        "share/check_mk/agents/plugins/cmk-update-agent",
        "#!/bin/sh\nexec cmk-update-agent \"$@\"\n",
    )?;
    let wato = "etc/check_mk/conf.d/wato";
    put(
        root,
        &format!("{wato}/.wato"),
        "{'title': 'Main', 'attributes': {}}",
    )?;
    for (folder, host) in [("linux", "web01"), ("other", "db02")] {
        put(
            root,
            &format!("{wato}/{folder}/hosts.mk"),
            &format!(
                "all_hosts += ['{host}']\nhost_tags.update({{'{host}': {{'site': 'tour'}}}})\n"
            ),
        )?;
    }
    let rule = format!(
        "{{'id': 'updater', 'value': {{'activated': True, 'server_data': {{'usage': 'registration', \
         'server': {}, 'site': 'tour', 'protocol': 'http'}}, 'interval': 600, \
         'signature_keys': [{}]}}, 'condition': {{}}}}",
        py_str(server),
        py_str(signature_key)
    );
    put(root, &format!("{wato}/rules.mk"), &updater_rules(&rule))?;
    Ok(())
}

fn updater_rules(rule: &str) -> String {
    format!(
        "agent_config.setdefault('cmk_update_agent', [])\n\
         agent_config['cmk_update_agent'] = [\n{rule},\n] + agent_config['cmk_update_agent']\n"
    )
}

/// The workflow of Checkmk's automatic agent updates on a sandbox site: the "Agent updater"
/// rule, bake and sign, registration, the master switch, a rollout limited to one folder, and
/// the deactivation that makes the next update remove the updater.
fn bakery_section(tour: &Path, signed: &Signed) -> Result<()> {
    heading("Agent Bakery (agent-bakery, bins/agent-bakery, agent-deploy --site-root)");
    let dir = tour.join("bakery");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let root = dir.join("tour");
    // The server first: the rule names its address.
    put(&root, "etc/check_mk/conf.d/wato/.wato", "{'title': 'Main'}")?;
    let state = dir.join("server");
    fs::create_dir_all(&state)?;
    let (user, secret) = ("automation", "tour-automation-secret");
    DeployStore::set_user(&state, user, secret, 10_000)?;
    let store = Arc::new(
        DeployStore::open(&state, Advertise::default())?.with_bakery(BakerySite {
            root: root.clone(),
            site_id: "tour".into(),
        }),
    );
    let options = ServerOptions {
        site: "tour".into(),
        limits: Limits::default(),
        tls: None,
    };
    let server = spawn(
        Arc::clone(&store),
        options,
        "127.0.0.1:0".parse().context("listen address")?,
        1,
    )
    .context("cannot start the deployment server")?;
    let addr = server.local_addr();
    bakery_site(&root, &addr.to_string(), &signed.certificate)?;
    println!(
        "(site {}: folders /wato/linux/ with web01, /wato/other/ with db02; the root folder's\n \
         \"Agent updater\" rule: activated, server {addr}, interval 600, the signing section's key)",
        root.display()
    );

    // Bake and sign with the signing section's key.
    let keys = tour.join("sign").join("keys");
    let key_id = KeyStore::open(&keys)?
        .list()?
        .first()
        .map(|k| k.id)
        .context("the signing section's key store is empty")?;
    let bake = |sign: bool| -> Result<String> {
        let report = agent_bakery::bake(
            &root,
            &BakeOptions {
                site_id: Some("tour".into()),
                cmk_version: Some("2.3.0p9".into()),
                sign: sign.then(|| SignWith {
                    key_store: keys.clone(),
                    key_id,
                    passphrase: Passphrase::new("correct horse battery staple"),
                }),
                ..BakeOptions::default()
            },
            &mut |_| {},
        )?;
        let mut out = String::new();
        for p in &report.platforms {
            out.push_str(&format!(
                "{}: {} packages ({} built), {} targets\n",
                p.platform.id(),
                p.packages,
                p.built,
                p.targets
            ));
        }
        out.push_str(&format!("signed: {}", report.signed));
        Ok(out)
    };
    show(&format!("agent-bakery bake --sign {key_id}"), &bake(true)?);
    let layout = Layout::new(&root);
    let deb_hash = |host: &str| {
        layout
            .reference(agent_bakery::Platform::LinuxDeb, host)
            .unwrap_or_default()
    };
    println!(
        "  (var/check_mk/agents/linux_deb/references/web01 -> ../{})",
        deb_hash("web01")
    );
    println!(
        "$ agent-deploy serve --site tour --site-root {} --listen 127.0.0.1:0\n  \
         (listening on http://{addr}/tour/check_mk/)",
        root.display()
    );

    // Two hosts, each with the updater configuration its baked package carries.
    let updater_for = |host: &str| -> Result<(Updater, PathBuf)> {
        let (conf, var) = (dir.join(host).join("etc"), dir.join(host).join("var"));
        put(
            &conf,
            "cmk-update-agent.cfg",
            &format!("signature_keys = [{:?}]\n", signed.certificate),
        )?;
        let installed = dir.join(host).join("installed-agent.deb");
        let install = InstallCommand {
            program: "sh".into(),
            args: vec!["-c".into(), format!("cp \"$0\" '{}'", installed.display())],
        };
        let updater = Updater::new(
            Paths::in_dirs(&conf, &var),
            Arc::new(AgentSignVerifier::checkmk()),
        )
        .with_install_command(install)
        .with_timeout(Duration::from_secs(10));
        let registered = updater.register(&RegisterOptions {
            server: addr.to_string(),
            site: "tour".into(),
            protocol: "http".into(),
            host_name: host.into(),
            user: user.into(),
            secret: secret.to_owned().into(),
            gui_login: false,
            insecure: false,
        })?;
        show(
            &format!("cmk-update-agent register -H {host} ...   # on {host}"),
            &format!(
                "Registered (the master switch is off: registration is always open); monitored: {}",
                registered.monitored
            ),
        );
        Ok((updater, installed))
    };
    let (web, web_installed) = updater_for("web01")?;
    let (db, _) = updater_for("db02")?;
    let run = |name: &str, updater: &Updater| {
        let result = updater.run(&RunOptions::new(Mode::Manual));
        let text = match &result {
            Ok(o) => format!("{o:?}"),
            Err(e) => format!("{e}"),
        };
        updater.record_result(&result);
        show(&format!("cmk-update-agent   # on {name}"), &text);
    };

    // The master switch is off by default.
    run("web01", &web);
    put(
        &root,
        "etc/check_mk/multisite.d/wato/global.mk",
        "agent_deployment_enabled = True\n\
         agent_deployment_host_selection = {'match_folders': ['/wato/linux/']}\n",
    )?;
    println!("(global.mk: agent_deployment_enabled = True, host selection: folder /wato/linux/)");
    run("web01", &web);
    println!(
        "  (installed {} bytes; the package of references/web01: {})",
        fs::metadata(&web_installed).map(|m| m.len()).unwrap_or(0),
        fs::read(&web_installed).ok()
            == fs::read(layout.package_path(agent_bakery::Platform::LinuxDeb, &deb_hash("web01")))
                .ok()
    );
    run("db02", &db);

    // Deactivated for web01: the next bake gives it the stock agent without the updater.
    put(
        &root,
        "etc/check_mk/conf.d/wato/linux/rules.mk",
        &updater_rules(
            "{'id': 'web01-off', 'value': {'activated': False}, \
             'condition': {'host_folder': '/%s/' % FOLDER_PATH, 'host_name': ['web01']}}",
        ),
    )?;
    println!("(a rule in /wato/linux/ sets activated = False for web01)");
    show(&format!("agent-bakery bake --sign {key_id}"), &bake(true)?);
    println!(
        "  (references/web01 -> ../{} = references/_VANILLA: {}; installing it with dpkg\n   \
         removes the updater from web01)",
        deb_hash("web01"),
        deb_hash("web01") == deb_hash(agent_bakery::VANILLA)
    );
    run("web01", &web);
    let mut out = String::new();
    for s in store.statuses() {
        let verdict = match store.deployment_decision(&s.host_name)? {
            Some(d) => d.refusal(&s.host_name).unwrap_or_else(|| "selected".into()),
            None => "-".into(),
        };
        out.push_str(&format!(
            "{}: target {}, installed {}: {verdict}\n",
            s.host_name,
            s.target_hash.as_deref().unwrap_or("-"),
            s.installed_aghash.as_deref().unwrap_or("-"),
        ));
    }
    show(
        &format!("agent-deploy status --site-root {}", root.display()),
        &out,
    );
    server
        .shutdown()
        .context("cannot stop the deployment server")?;
    Ok(())
}
