//! Site mode: every command, over the package store of `mkp_format::Site`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use mkp_format::{ChangeOptions, FaultHook, Manifest, PackageId, Plan, Site, StoreError};

use crate::{
    ChangeArgs, Command, IdArgs, inspect, out, path_config_template, print_inventory,
    print_manifest, print_template, read_file, read_manifest_file, usage_error,
};

/// Installs the `MKP_SITE_FAULT` test hook, if set.
fn install_fault_hook(site: &mut Site) -> anyhow::Result<()> {
    let Ok(spec) = std::env::var("MKP_SITE_FAULT") else {
        return Ok(());
    };
    let (kind, n) = spec
        .split_once(':')
        .ok_or_else(|| anyhow!("MKP_SITE_FAULT must be error:N, abort:N or sleep:MS"))?;
    let n: usize = n
        .parse()
        .with_context(|| format!("MKP_SITE_FAULT: '{n}' is not a number"))?;
    let hook: FaultHook = match kind {
        "error" => Box::new(move |step| {
            if step == n {
                Err(std::io::Error::other(format!(
                    "injected fault at step {step}"
                )))
            } else {
                Ok(())
            }
        }),
        "abort" => Box::new(move |step| {
            if step == n {
                std::process::abort();
            }
            Ok(())
        }),
        "sleep" => Box::new(move |_| {
            std::thread::sleep(std::time::Duration::from_millis(n as u64));
            Ok(())
        }),
        other => return Err(anyhow!("MKP_SITE_FAULT: unknown kind '{other}'")),
    };
    site.set_fault_hook(hook);
    Ok(())
}

fn open_site(root: &Path, version: Option<&str>) -> anyhow::Result<Site> {
    tracing::debug!("site {}", root.display());
    let mut site = Site::open(root)?;
    if let Some(v) = version {
        site = site.with_version(v);
    }
    install_fault_hook(&mut site)?;
    Ok(site)
}

fn show_plan(plan: &Plan, dry_run: bool) -> anyhow::Result<()> {
    if dry_run {
        out(&format!("Dry run, nothing was changed. Would {plan}"))?;
    }
    Ok(())
}

fn options(change: ChangeArgs) -> ChangeOptions {
    ChangeOptions::default()
        .dry_run(change.dry_run)
        .force(change.force)
}

fn resolve(site: &Site, id: &IdArgs) -> anyhow::Result<PackageId> {
    Ok(site.resolve(&id.name, id.version.as_ref())?)
}

/// Runs a command in site mode, on the site rooted at `root` (opened, and repaired if a
/// change was interrupted, unless the command does not need it).
pub(crate) fn run(cmd: Command, root: &Path, version: Option<&str>) -> anyhow::Result<ExitCode> {
    // These two behave as in standalone mode and never touch the site.
    match cmd {
        Command::Inspect(a) => inspect(&a.file, a.json.json)?,
        Command::PathConfigTemplate => path_config_template()?,
        cmd => {
            if let Command::Package(a) = &cmd
                && (a.target_dir.is_some() || a.mtime.is_some())
            {
                return Ok(usage_error(
                    "TARGET_DIR and --mtime of `mkp package` are for standalone mode; on a \
                     site the package is stored in the site",
                ));
            }
            run_on(cmd, &open_site(root, version)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_on(cmd: Command, site: &Site) -> anyhow::Result<()> {
    match cmd {
        Command::Inspect(a) => inspect(&a.file, a.json.json)?,
        Command::PathConfigTemplate => path_config_template()?,
        Command::List(a) => {
            let listing = site.listing()?;
            if a.json {
                out(&format!("{}\n", listing.to_json()))?;
            } else {
                out(&listing.to_table())?;
            }
        }
        Command::Show { json, id } => {
            let id = resolve(site, &id)?;
            print_manifest(&site.stored_manifest(&id)?, json.json)?;
        }
        Command::ShowAll(a) => {
            let local = site.local_packages();
            let shipped = site.shipped_packages();
            if a.json {
                let list = |ms: &[Manifest]| {
                    ms.iter()
                        .map(Manifest::to_field_json)
                        .collect::<Vec<_>>()
                        .join(",")
                };
                out(&format!(
                    "{{\"local\":[{}],\"shipped\":[{}]}}\n",
                    list(&local),
                    list(&shipped)
                ))?;
            } else {
                let mut text =
                    String::from("Local extension packages\n========================\n\n");
                for m in &local {
                    text.push_str(&m.to_inspect_text());
                    text.push('\n');
                }
                text.push_str("Shipped extension packages\n==========================\n\n");
                for m in &shipped {
                    text.push_str(&m.to_inspect_text());
                    text.push('\n');
                }
                out(&text)?;
            }
        }
        Command::Files(id) => {
            let id = resolve(site, &id)?;
            let mut text = String::new();
            for p in site.package_files(&id)? {
                text.push_str(&format!("{}\n", p.display()));
            }
            out(&text)?;
        }
        Command::Add { file } => {
            let bytes = read_file(&file)?;
            let m = site.add(&bytes).map_err(|e| match e {
                StoreError::Package(e) => anyhow!("{}: {e}", file.display()),
                e => e.into(),
            })?;
            out(&format!("{} {}\n", m.name, m.version))?;
        }
        Command::Remove { change, id } => {
            let id = resolve(site, &id)?;
            show_plan(&site.remove(&id, &options(change))?, change.dry_run)?;
        }
        Command::Release { name } => {
            site.release(&name)?;
        }
        Command::Enable {
            force_install,
            change,
            id,
        } => {
            let id = resolve(site, &id)?;
            let plan = site.enable(&id, &options(change).force_install(force_install))?;
            show_plan(&plan, change.dry_run)?;
        }
        Command::Disable { change, id } => {
            // An explicit version needs no stored package: disabling succeeds silently.
            let id = match id.version {
                Some(version) => PackageId {
                    name: id.name,
                    version,
                },
                None => site.resolve(&id.name, None)?,
            };
            show_plan(&site.disable(&id, &options(change))?, change.dry_run)?;
        }
        Command::DisableOutdated(change) => {
            for plan in site.disable_outdated(&options(change))? {
                show_plan(&plan, change.dry_run)?;
            }
        }
        Command::UpdateActive { json, change } => {
            let report = site.update_active(&options(change))?;
            for plan in &report.plans {
                show_plan(plan, change.dry_run)?;
            }
            if json.json {
                out(&format!("{}\n", report.to_json()))?;
            } else {
                out(&report.to_text())?;
            }
        }
        Command::Find { all, json } => print_inventory(site.find(), all, json.json)?,
        Command::Template { name } => print_template(&site.template(&name)?)?,
        Command::Package(a) => {
            let manifest = read_manifest_file(&a.manifest_file)?;
            let (built, plan) = site.package(&manifest, &options(a.change))?;
            show_plan(&plan, a.change.dry_run)?;
            if !a.change.dry_run {
                tracing::info!("Successfully created {} {}", built.name, built.version);
            }
        }
    }
    Ok(())
}
