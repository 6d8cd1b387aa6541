//! The commands that work without a site: inspect, template, package, path-config-template,
//! find.

use std::path::Path;

use anyhow::{Context, anyhow};
use mkp_format::{
    Container, ErrorKind, Limits, Manifest, Mkp, PackOptions, PackageName, PathConfig,
    files_inventory, files_inventory_json, files_inventory_table, package_from_dirs,
};

use crate::{Log, Out};

pub(crate) fn inspect(file: &Path, json: bool, log: &Log) -> anyhow::Result<()> {
    let meta =
        std::fs::metadata(file).map_err(|e| anyhow!("Cannot read file {}: {e}", file.display()))?;
    if meta.is_dir() {
        return Err(anyhow!(
            "Cannot read file {}: Is a directory",
            file.display()
        ));
    }
    // Mkp::open_with also refuses oversized files before reading them into memory.
    let mkp = Mkp::open_with(file, &Limits::default()).map_err(|e| match e.kind() {
        ErrorKind::Io { source, .. } => anyhow!("Cannot read file {}: {source}", file.display()),
        _ => e.into(),
    })?;
    if mkp.container() == Container::PlainTar {
        log.warn(&format!(
            "note: {} is an uncompressed tar; Checkmk's own tool refuses it (\"not a gzip \
             file\"), so compress it with gzip before uploading it to a site",
            file.display()
        ));
    }
    let manifest = mkp.manifest();
    let text = if json {
        manifest.to_field_json()
    } else {
        manifest.to_inspect_text()
    };
    Out::write(&format!("{text}\n"))
}

pub(crate) fn template(name: &PackageName) -> anyhow::Result<()> {
    let manifest = Manifest::template(name.clone(), "", None);
    Out::write(&format!("{}\n", manifest.to_info()))
}

pub(crate) fn path_config_template() -> anyhow::Result<()> {
    Out::write(&format!("{}\n", PathConfig::template().to_toml()))
}

fn read_manifest_file(path: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read(path)
        .map_err(|e| anyhow!("{}: Failed to read package manifest: {e}", path.display()))?;
    let text = String::from_utf8(text).map_err(|_| {
        anyhow!(
            "{}: Failed to read package manifest: the file is not UTF-8 text",
            path.display()
        )
    })?;
    Manifest::from_info(&text)
        .map_err(|e| anyhow!("{}: Failed to read package manifest: {e}", path.display()))
}

pub(crate) fn package(
    config: &Path,
    manifest_file: &Path,
    target_dir: Option<&Path>,
    mtime: Option<u64>,
    log: &Log,
) -> anyhow::Result<()> {
    let paths = PathConfig::read(config)?;
    let manifest = read_manifest_file(manifest_file)?;
    manifest.version.require_semver()?;
    let mut options = PackOptions::default();
    let mtime = mtime.or_else(|| {
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
    log.info(&format!(
        "Successfully created {} {}",
        manifest.name, manifest.version
    ));
    let dir = target_dir.unwrap_or_else(|| Path::new("."));
    let target = dir.join(manifest.file_name());
    // Write next to the target and rename, so a reader never sees half a package.
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        manifest.file_name(),
        std::process::id()
    ));
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &target))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("Cannot write {}", target.display()))?;
    log.info("Successfully wrote package file");
    Ok(())
}

pub(crate) fn find(config: &Path, all: bool, json: bool) -> anyhow::Result<()> {
    let paths = PathConfig::read(config)?;
    // Standalone: there is no installed-package store, so every file is unpackaged.
    let mut files = files_inventory(&paths, &[]);
    if !all {
        files.retain(|f| f.package.is_none());
    }
    let text = if json {
        format!("{}\n", files_inventory_json(&files))
    } else {
        files_inventory_table(&files)
    };
    Out::write(&text)
}
