//! `agent-bakery`: bake and sign agent packages for a Checkmk site (site mode: `--site-root`
//! or `$OMD_ROOT`).
//!
//! Exit codes: 0 success, 1 a valid negative answer (`test-host`: the host is refused),
//! 2 usage or operational error.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agent_bakery::{
    BakeEvent, BakeOptions, JobStatus, Layout, Platform, SignWith, SiteConfig, UPDATER_RULESET,
    default_site_id,
};
use agent_sign::Passphrase;
use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

const EXIT_CODES: &str =
    "Exit codes: 0 success, 1 negative answer (test-host: the host is refused), 2 error.";

#[derive(Debug, Parser)]
#[command(name = "agent-bakery", version, about, after_long_help = EXIT_CODES)]
struct Cli {
    /// The site root (default: $OMD_ROOT)
    #[arg(long, global = true, value_name = "DIR", env = "OMD_ROOT")]
    site_root: Option<PathBuf>,
    /// The site id (default: the site root's directory name)
    #[arg(long, global = true, value_name = "ID")]
    site_id: Option<String>,
    /// Print one JSON document with a "schema" field
    #[arg(long, global = true)]
    json: bool,
    /// The signature key store (default: <site>/etc/check_mk/agent_signature_keys)
    #[arg(long, global = true, value_name = "DIR", env = "AGENT_SIGN_STORE")]
    key_store: Option<PathBuf>,
    /// Read the key passphrase from the first line of this file (else
    /// $AGENT_SIGN_PASSPHRASE, else the terminal)
    #[arg(long, global = true, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Bake every target's package (and sign them with --sign KEY)
    Bake {
        /// Sign every package produced with this key id ("bake and sign")
        #[arg(long, value_name = "KEY")]
        sign: Option<u64>,
        /// Bake only these platforms (linux_deb, linux_rpm, linux_tgz)
        #[arg(long = "platform", value_name = "P")]
        platforms: Vec<String>,
        /// The updater binary to package (default: the site's
        /// share/check_mk/agents/plugins/cmk-update-agent)
        #[arg(long, value_name = "FILE")]
        updater_binary: Option<PathBuf>,
        /// The Checkmk version (default: from the site's `version` link)
        #[arg(long, value_name = "VERSION")]
        cmk_version: Option<String>,
    },
    /// Sign every baked package with a key
    Sign {
        /// The key id
        key: u64,
    },
    /// The last bake job's state and per-platform counts
    Status,
    /// Target → agent hash → hosts, signed or not
    Targets,
    /// Whether a host may update, why, which rules matched and its merged configuration
    TestHost {
        /// The host name
        name: String,
    },
    /// Every host's merged "Agent updater" value as Checkmk reads it (null: no rule)
    Config {
        /// Only these hosts
        hosts: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            if err
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("agent-bakery: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn print_json(v: &Value) -> Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

fn out(text: &str) -> Result<()> {
    let mut o = io::stdout().lock();
    o.write_all(text.as_bytes())?;
    Ok(())
}

fn passphrase(cli: &Cli, key: u64) -> Result<Passphrase> {
    if let Some(path) = &cli.passphrase_file {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the passphrase file {}", path.display()))?,
        );
        return Ok(Passphrase::new(text.lines().next().unwrap_or_default()));
    }
    if let Ok(p) = std::env::var("AGENT_SIGN_PASSPHRASE") {
        return Ok(Passphrase::new(p));
    }
    if !io::stdin().is_terminal() {
        bail!("no passphrase: use --passphrase-file, $AGENT_SIGN_PASSPHRASE or a terminal");
    }
    let p = rpassword::prompt_password(format!("Passphrase for key #{key}: "))?;
    Ok(Passphrase::new(p))
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let Some(root) = cli.site_root.clone() else {
        bail!("no site: pass --site-root DIR or set OMD_ROOT");
    };
    if !root.is_dir() {
        bail!("{}: the site root is not a directory", root.display());
    }
    let site_id = cli
        .site_id
        .clone()
        .unwrap_or_else(|| default_site_id(&root));
    let key_store = cli
        .key_store
        .clone()
        .unwrap_or_else(|| root.join("etc/check_mk/agent_signature_keys"));
    match &cli.command {
        Command::Bake {
            sign,
            platforms,
            updater_binary,
            cmk_version,
        } => {
            let platforms = platforms
                .iter()
                .map(|p| Platform::parse(p))
                .collect::<Result<Vec<_>, _>>()?;
            let sign = match sign {
                Some(key) => Some(SignWith {
                    key_store,
                    key_id: *key,
                    passphrase: passphrase(cli, *key)?,
                }),
                None => None,
            };
            // `..default()` covers the test-only field that exists when a workspace build
            // unifies the library's `fault-injection` feature.
            #[allow(clippy::needless_update)]
            let opts = BakeOptions {
                platforms,
                site_id: Some(site_id),
                cmk_version: cmk_version.clone(),
                updater_binary: updater_binary.clone(),
                sign,
                ..BakeOptions::default()
            };
            let terminal = io::stderr().is_terminal();
            let mut progress = |e: &BakeEvent| {
                let BakeEvent::Progress { done, total } = e;
                if terminal {
                    eprint!("\rbaking: {done}/{total} packages");
                    if done == total {
                        eprintln!();
                    }
                }
            };
            let report = agent_bakery::bake(&root, &opts, &mut progress)?;
            for w in &report.warnings {
                eprintln!("agent-bakery: warning: {w}");
            }
            if cli.json {
                print_json(&json!({
                    "schema": 1,
                    "signed": report.signed,
                    "platforms": report.platforms,
                    "warnings": report.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }))?;
            } else {
                let mut text = String::new();
                for r in &report.platforms {
                    text.push_str(&format!(
                        "{r}{}\n",
                        if report.signed { ", signed" } else { "" }
                    ));
                }
                out(&text)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sign { key } => {
            let with = SignWith {
                key_store,
                key_id: *key,
                passphrase: passphrase(cli, *key)?,
            };
            let n = agent_bakery::sign(&root, &with)?;
            if cli.json {
                print_json(&json!({"schema": 1, "signed": n, "key": key}))?;
            } else {
                out(&format!("signed {n} packages with key #{key}\n"))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => {
            let job = JobStatus::read(&root)?;
            let layout = Layout::new(&root);
            let mut platforms = Vec::new();
            for p in Platform::ALL {
                let refs = layout.references(p);
                let hashes: BTreeSet<&String> = refs.values().collect();
                let mut signed = 0;
                for h in &hashes {
                    if !layout.signatures(p, h)?.is_empty() {
                        signed += 1;
                    }
                }
                platforms.push(json!({"platform": p.id(), "packages": hashes.len(), "signed": signed, "targets": refs.len()}));
            }
            if cli.json {
                print_json(&json!({"schema": 1, "job": job, "platforms": platforms}))?;
            } else {
                let mut text = match &job {
                    None => "job: none yet\n".to_string(),
                    Some(j) => format!(
                        "job: {} {:?}, started {}{}{}\n",
                        j.kind,
                        j.state,
                        j.started,
                        j.finished
                            .map(|f| format!(", finished {f}"))
                            .unwrap_or_default(),
                        j.error
                            .as_ref()
                            .map(|e| format!(", failed: {e}"))
                            .unwrap_or_default()
                    ),
                };
                for p in &platforms {
                    text.push_str(&format!(
                        "{}: {} packages ({} signed), {} targets\n",
                        p["platform"].as_str().unwrap_or_default(),
                        p["packages"],
                        p["signed"],
                        p["targets"]
                    ));
                }
                out(&text)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Targets => {
            let layout = Layout::new(&root);
            let mut rows = Vec::new();
            let mut text = String::new();
            for p in Platform::ALL {
                let mut by_hash: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (t, h) in layout.references(p) {
                    by_hash.entry(h).or_default().push(t);
                }
                for (h, targets) in by_hash {
                    let signed = !layout.signatures(p, &h)?.is_empty();
                    text.push_str(&format!(
                        "{} {} {} {}\n",
                        p.id(),
                        h,
                        if signed { "signed  " } else { "unsigned" },
                        targets.join(" ")
                    ));
                    rows.push(json!({"platform": p.id(), "aghash": h, "signed": signed, "targets": targets}));
                }
            }
            if cli.json {
                print_json(&json!({"schema": 1, "packages": rows}))?;
            } else {
                out(&text)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::TestHost { name } => test_host(cli, &root, &site_id, name),
        Command::Config { hosts } => {
            let site = SiteConfig::read(&root, &site_id)?;
            site.check_updater_rules()?;
            let names: Vec<String> = if hosts.is_empty() {
                site.hosts.iter().map(|h| h.name.clone()).collect()
            } else {
                hosts.clone()
            };
            let mut map = serde_json::Map::new();
            for n in &names {
                let host = site
                    .host(n)
                    .ok_or_else(|| agent_bakery::Error::NoSuchHost(n.clone()))?;
                let v = match site.merged_updater_value(&host.match_object()) {
                    Some(v) => {
                        value_json(&v).with_context(|| format!("the merged value of {n}"))?
                    }
                    None => Value::Null,
                };
                map.insert(n.clone(), v);
            }
            if cli.json {
                print_json(&json!({"schema": 1, "hosts": map}))?;
            } else {
                let mut text = String::new();
                for (n, v) in &map {
                    text.push_str(&format!("{n}: {v}\n"));
                }
                out(&text)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The JSON form of a rule value: tuples become arrays; bytes (2.5 certificate uploads) their
/// UTF-8 text, which JSON can carry.
fn value_json(v: &py_literal::PyValue) -> Result<Value> {
    use py_literal::PyValue;
    fn text_bytes(v: &PyValue) -> PyValue {
        match v {
            PyValue::Bytes(b) => PyValue::Str(String::from_utf8_lossy(b).into_owned()),
            PyValue::List(l) => PyValue::List(l.iter().map(text_bytes).collect()),
            PyValue::Tuple(l) => PyValue::Tuple(l.iter().map(text_bytes).collect()),
            PyValue::Dict(d) => {
                PyValue::Dict(d.iter().map(|(k, v)| (k.clone(), text_bytes(v))).collect())
            }
            other => other.clone(),
        }
    }
    Ok(py_literal::json::to_json(&text_bytes(v))?)
}

fn test_host(cli: &Cli, root: &Path, site_id: &str, name: &str) -> Result<ExitCode> {
    let site = SiteConfig::read(root, site_id)?;
    let decision = site.deployment_decision(name);
    let refusal = decision.refusal(name);
    let host = site.host(name);
    let (rules, merged, config) = match host {
        Some(h) => {
            let obj = h.match_object();
            let rules: Vec<Value> = site
                .matching_rules(UPDATER_RULESET, &obj)
                .iter()
                .map(|r| json!({"id": r.id, "folder": r.folder, "file": r.path.display().to_string(), "line": r.line}))
                .collect();
            let merged = match site.merged_updater_value(&obj) {
                Some(v) => value_json(&v)?,
                None => Value::Null,
            };
            let config = site.updater_config(&obj)?;
            (rules, merged, serde_json::to_value(config)?)
        }
        None => (Vec::new(), Value::Null, Value::Null),
    };
    let layout = Layout::new(root);
    let mut packages = serde_json::Map::new();
    for p in Platform::ALL {
        if host.is_some()
            && let Some(h) = layout.reference(p, name)
        {
            packages.insert(p.id().to_string(), json!(h));
        }
    }
    if cli.json {
        print_json(&json!({
            "schema": 1,
            "host": name,
            "monitored": host.is_some(),
            "allowed": refusal.is_none(),
            "reason": refusal,
            "rules": rules,
            "value": merged,
            "config": config,
            "packages": packages,
        }))?;
    } else {
        let mut text = String::new();
        match &refusal {
            None => text.push_str(&format!("{name}: agent updates allowed\n")),
            Some(r) => text.push_str(&format!("{name}: refused: {r}\n")),
        }
        if host.is_none() {
            text.push_str("  (not in the monitoring)\n");
        }
        for r in &rules {
            text.push_str(&format!(
                "  rule {} in {}\n",
                r["id"].as_str().unwrap_or_default(),
                r["folder"].as_str().unwrap_or_default()
            ));
        }
        text.push_str(&format!("  merged value: {merged}\n"));
        for (p, h) in &packages {
            text.push_str(&format!("  {p}: {}\n", h.as_str().unwrap_or_default()));
        }
        out(&text)?;
    }
    Ok(if refusal.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
