//! Standalone mode (no site): template, package and find over the part directories of the
//! path configuration (`mkp-tool.toml`). `inspect` and `path-config-template` are the same
//! in both modes and live in `main.rs`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use mkp_format::{Manifest, PackOptions, PathConfig, files_inventory, package_from_dirs};

use crate::{
    Command, PackageArgs, inspect, path_config_template, print_inventory, print_template,
    read_manifest_file, usage_error,
};

/// Runs a command in standalone mode; site commands are usage errors (exit code 2).
pub(crate) fn run(cmd: Command, config: &Path) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Inspect(a) => inspect(&a.file, a.json.json)?,
        Command::PathConfigTemplate => path_config_template()?,
        Command::Template { name, .. } => print_template(&Manifest::template(name, "", None))?,
        Command::Find { all, json } => {
            let paths = PathConfig::read(config)?;
            // There is no installed-package store, so every file is unpackaged.
            print_inventory(files_inventory(&paths, &[]), all, json.json)?;
        }
        Command::Package(a) => {
            if a.change.dry_run || a.change.force {
                return Ok(usage_error(
                    "--dry-run and --force of `mkp package` need a site (--site-root or $OMD_ROOT)",
                ));
            }
            package(config, &a)?;
        }
        other => {
            return Ok(usage_error(format!(
                "`mkp {}` needs a site: pass --site-root DIR or set OMD_ROOT",
                other.name()
            )));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn package(config: &Path, a: &PackageArgs) -> anyhow::Result<()> {
    let paths = PathConfig::read(config)?;
    let manifest = read_manifest_file(&a.manifest_file)?;
    manifest.version.require_semver()?;
    let mut options = PackOptions::default();
    let mtime = a.mtime.or_else(|| {
        std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.trim().parse().ok())
    });
    if let Some(mtime) = mtime {
        options = options.mtime(mtime);
    }
    let bytes = package_from_dirs(
        &manifest,
        |part| paths.part_dir(part).to_path_buf(),
        &options,
    )?;
    tracing::info!(
        "Successfully created {} {}",
        manifest.name,
        manifest.version
    );
    let dir = a.target_dir.as_deref().unwrap_or_else(|| Path::new("."));
    let target = dir.join(manifest.file_name());
    // Write next to the target and rename, so a reader never sees half a package.
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        manifest.file_name(),
        std::process::id()
    ));
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &target))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow!("Cannot write {}: {e}", target.display())
        })?;
    tracing::info!("Successfully wrote package file");
    crate::out(&format!(
        "Created {} {}: {}\n",
        manifest.name,
        manifest.version,
        target.display()
    ))
}
