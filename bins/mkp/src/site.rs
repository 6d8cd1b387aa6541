//! Site mode: every command, over the package store of `mkp_format::Site`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use mkp_format::{Action, ChangeOptions, Manifest, PackageId, Plan, Site, StoreError};

use crate::{
    ChangeArgs, Command, IdArgs, inspect, out, path_config_template, print_inventory,
    print_manifest, print_template, read_file, read_manifest_file, usage_error,
    warn_unpackable_names,
};

fn open_site(root: &Path, version: Option<&str>) -> anyhow::Result<Site> {
    tracing::debug!("site {}", root.display());
    let mut site = Site::open(root)?;
    if let Some(v) = version {
        site = site.with_version(v);
    }
    // Only in test builds (the `fault-injection` feature of mkp-format).
    site.install_env_fault_hook()?;
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
            check_update_state(&cmd, root)?;
            run_on(cmd, &open_site(root, version)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses a command that changes the site while the journal of an interrupted `omd
/// update` is there (the site is neither the old nor the new version), naming the `omd`
/// command that recovers it; a reading command only warns. A leftover
/// `.site-update.done~` is only reported: `omd` removes it. Nothing is changed here.
fn check_update_state(cmd: &Command, root: &Path) -> anyhow::Result<()> {
    let condition = site_lifecycle::state::inspect_site(root)?;
    // The site's name is its home's (`/omd/sites/NAME`).
    let name = std::fs::canonicalize(root)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| root.display().to_string());
    if let Some(warning) = condition.warning(&name) {
        if cmd.changes_site() {
            return Err(anyhow!("Cannot run `mkp {}`: {warning}", cmd.name()));
        }
        tracing::warn!("{warning}");
    }
    if condition.leftovers.done {
        tracing::warn!(
            "{} is left from an earlier update (its journal, not deleted); the next \
             omd command on the site removes it.",
            root.join(site_merge::DONE_DIR).display()
        );
    }
    Ok(())
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
        Command::Install {
            force_install,
            file,
        } => {
            let bytes = read_file(&file)?;
            let opts = ChangeOptions::default().force_install(force_install);
            let (m, _) = site.install_package(&bytes, &opts).map_err(|e| match e {
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
        Command::Template { name, stdout } => template(site, &name, stdout)?,
        Command::Package(a) => {
            let manifest = read_manifest_file(&a.manifest_file)?;
            let (built, plan) = site.package(&manifest, &options(a.change))?;
            show_plan(&plan, a.change.dry_run)?;
            if !a.change.dry_run {
                out(&package_report(&built, &plan))?;
            }
        }
    }
    Ok(())
}

/// Site-mode `template`: writes `tmp/check_mk/<name>.manifest.temp` (Checkmk's place and
/// message), or prints the manifest with `--stdout`.
fn template(site: &Site, name: &mkp_format::PackageName, stdout: bool) -> anyhow::Result<()> {
    let inventory = site.find();
    warn_unpackable_names(
        &inventory
            .into_iter()
            .filter(|f| f.part.is_some() && f.package.is_none())
            .collect::<Vec<_>>(),
    );
    let manifest = site.template(name)?;
    if stdout {
        return print_template(&manifest);
    }
    let dir = site.root().join("tmp/check_mk");
    let path = dir.join(format!("{name}.manifest.temp"));
    std::fs::create_dir_all(&dir).map_err(|e| anyhow!("cannot create {}: {e}", dir.display()))?;
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(anyhow!(
                "{} exists already (an edited template?): package it with `mkp package {}`, \
                 or delete it to start a new one (`mkp template --stdout` only prints)",
                path.display(),
                path.display()
            ));
        }
        Err(e) => return Err(anyhow!("cannot create {}: {e}", path.display())),
    };
    std::io::Write::write_all(&mut file, format!("{}\n", manifest.to_info()).as_bytes())
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    out(&format!(
        "Created '{}'.\nYou may now edit it.\nCreate the package using `mkp package {}`.\n",
        path.display(),
        path.display()
    ))
}

/// What site-mode `package` did: the stored package, the installed files, the state.
fn package_report(built: &Manifest, plan: &Plan) -> String {
    let id = format!("{} {}", built.name, built.version);
    let mut text = String::new();
    for a in &plan.actions {
        if let Action::Store(p) = a {
            text.push_str(&format!("Created {id}: {}\n", p.display()));
        }
    }
    let files: Vec<_> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Install(p) | Action::Replace(p) => Some(p),
            _ => None,
        })
        .collect();
    text.push_str(&format!(
        "Installed {id} ({} file{}), enabled (active on this site):\n",
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    ));
    for p in files {
        text.push_str(&format!("  {}\n", p.display()));
    }
    text
}
