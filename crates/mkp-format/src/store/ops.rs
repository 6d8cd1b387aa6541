//! The changing operations: add, enable (install/update), disable, remove, release, package,
//! disable-outdated, update-active.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use omd_versions::{MkpIncompatible, check_mkp_min_required, check_mkp_usable_until};
use sha2::{Digest, Sha256};

use crate::{
    Manifest, Mkp, PackOptions, PackageName, PackagePart, PyValue, package_from_dirs, read_manifest,
};

use super::error::{Result, StoreError};
use super::txn::{self, Txn};
use super::{Action, ChangeOptions, HASHES_KEY, PackageId, Plan, Site, UpdateReport};

/// Permission bits of stored packages, marks and installed manifests.
const DATA_MODE: u32 = 0o644;

/// How an install is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `enable`: version checks unless forced; a version-only failure marks the package
    /// enabled.
    Enable,
    /// `update-active`: version checks; failures change nothing.
    UpdateActive,
    /// Site-mode `package`: no version checks, the listed files are the sources on disk
    /// (replaced, not conflicts), the package is stored in the local directory too.
    Package,
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

fn sha256_file(path: &Path) -> Result<String> {
    let data = fs::read(path).map_err(|e| StoreError::io("cannot read", path, e))?;
    Ok(hex::encode(Sha256::digest(&data)))
}

fn with_hint(e: &MkpIncompatible) -> String {
    let hint = "To enable it anyway, use the `--force-install` flag to skip all version checks.";
    match e {
        MkpIncompatible::TooOld { site, min_required } => format!(
            "Package requires a Checkmk version {min_required} or higher (this is {site}). {hint}"
        ),
        MkpIncompatible::TooNew { site, usable_until } => format!(
            "Package requires a Checkmk version below {usable_until} (this is {site}). {hint}"
        ),
    }
}

impl Site {
    fn lock(&self) -> Result<txn::Lock> {
        let lock = txn::lock(self.root())?;
        if let Some(msg) = txn::recover(self)? {
            tracing::warn!("{msg}");
        }
        Ok(lock)
    }

    /// The lock, except for dry runs (which change nothing, not even create the lock file).
    fn lock_unless(&self, dry_run: bool) -> Result<Option<txn::Lock>> {
        if dry_run {
            Ok(None)
        } else {
            self.lock().map(Some)
        }
    }

    /// The version problems of `m` on this site (messages with the `--force-install` hint).
    fn version_problems(&self, m: &Manifest) -> Result<Vec<String>> {
        let site = self.version()?;
        let mut out = Vec::new();
        if let Err(e) = check_mkp_min_required(&site, &m.version_min_required) {
            out.push(with_hint(&e));
        }
        if let Some(until) = &m.version_usable_until
            && let Err(e) = check_mkp_usable_until(&site, until)
        {
            out.push(with_hint(&e));
        }
        Ok(out)
    }

    /// File conflicts of installing `new` (legacy paths rewritten) over `old` (section 7.2).
    fn conflicts(
        &self,
        new: &Manifest,
        old: Option<&Manifest>,
        installed: &[Manifest],
        mode: Mode,
    ) -> Vec<String> {
        let mut owners: HashMap<(PackagePart, &str), &Manifest> = HashMap::new();
        for m in installed {
            for (part, files) in &m.files {
                for f in files {
                    owners.entry((*part, f.as_str())).or_insert(m);
                }
            }
        }
        let mut out = Vec::new();
        for (part, files) in &new.files {
            let old_files: HashSet<&str> = old
                .map(|o| o.files_of(*part).iter().map(String::as_str).collect())
                .unwrap_or_default();
            let dir = self.paths().part_dir(*part);
            for f in files {
                if old_files.contains(f.as_str()) {
                    continue;
                }
                let path = dir.join(f);
                match owners.get(&(*part, f.as_str())) {
                    Some(o) if !(mode == Mode::Package && o.name == new.name) => {
                        out.push(format!(
                            "File conflict: {} (already part of {} {})",
                            path.display(),
                            o.name,
                            o.version
                        ));
                    }
                    Some(_) => {}
                    None => {
                        if mode != Mode::Package && fs::metadata(&path).is_ok() {
                            out.push(format!(
                                "File conflict: {} (already existing)",
                                path.display()
                            ));
                        }
                    }
                }
            }
        }
        out
    }

    /// Installed files of `m` (selected by `keep`) that were changed since install.
    fn modified_files(
        &self,
        m: &Manifest,
        keep: impl Fn(PackagePart, &str) -> bool,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (part, files) in &m.files {
            for f in files {
                if !keep(*part, f) {
                    continue;
                }
                let Some(recorded) = Site::recorded_hash(m, *part, f) else {
                    continue;
                };
                let path = self.paths().part_dir(*part).join(f);
                if !fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                    continue;
                }
                if sha256_file(&path)? != recorded {
                    out.push(format!(
                        "{} was changed since {} {} was installed; refusing to delete or \
                         overwrite it (use --force to proceed and lose the change)",
                        path.display(),
                        m.name,
                        m.version
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Installs (or updates to) the package in `bytes`. The caller holds the lock.
    fn install(&self, bytes: &[u8], mode: Mode, opts: &ChangeOptions) -> Result<Plan> {
        let mkp = Mkp::from_bytes(bytes, self.read_limits())?;
        let raw = mkp.manifest().clone();
        raw.check_paths()?;
        // What the installed manifest records: legacy lib paths rewritten.
        let mut new = raw.clone();
        new.rewrite_legacy_lib_paths();
        let id = PackageId::of(&new);
        let old = self.installed_manifest(&new.name);
        let installed = self.installed();
        let check_versions = mode != Mode::Package && !opts.force_install;
        let version_problems = if check_versions {
            self.version_problems(&new)?
        } else {
            Vec::new()
        };
        let conflicts = self.conflicts(&new, old.as_ref(), &installed, mode);
        let new_set: HashSet<(PackagePart, &str)> = new
            .files
            .iter()
            .flat_map(|(p, fs)| fs.iter().map(move |f| (*p, f.as_str())))
            .collect();
        let guard = match (&old, opts.force) {
            (Some(o), false) => self.modified_files(o, |p, f| {
                // `package` replaces listed files by themselves: no loss.
                mode != Mode::Package || !new_set.contains(&(p, f))
            })?,
            _ => Vec::new(),
        };
        let what = match &old {
            Some(o) if o.version != new.version => {
                format!("update {} from {} to {}", new.name, o.version, new.version)
            }
            _ => format!("enable {id}"),
        };
        if !conflicts.is_empty() || !guard.is_empty() {
            let mut problems = version_problems;
            problems.extend(conflicts);
            problems.extend(guard);
            return Err(StoreError::Refused { problems });
        }
        let mark = self.mark_path(&id);
        if !version_problems.is_empty() {
            if mode == Mode::Enable && !exists(&mark) && !opts.dry_run {
                // The only problem is the version: keep Checkmk's "Enabled (inactive on this
                // site)" so that update-active installs it once the version fits.
                let mut txn = Txn::new(self, format!("mark {id} enabled"))?;
                txn.place_bytes(bytes, DATA_MODE, mark)?;
                txn.commit()?;
            }
            return Err(StoreError::Incompatible {
                message: version_problems.join("\n"),
            });
        }

        // The plan.
        let mut actions = Vec::new();
        let mut seen = HashSet::new();
        for (part, files) in &raw.files {
            let dir = self.paths().part_dir(*part);
            for f in files {
                if !seen.insert((*part, f.as_str())) {
                    continue;
                }
                let target = dir.join(raw.install_path(*part, f).as_ref());
                if exists(&target) {
                    actions.push(Action::Replace(target));
                } else {
                    actions.push(Action::Install(target));
                }
            }
        }
        let mut deletes = Vec::new();
        if let Some(o) = &old {
            for (part, files) in &o.files {
                let dir = self.paths().part_dir(*part);
                for f in files {
                    if !new_set.contains(&(*part, f.as_str())) {
                        let target = dir.join(f);
                        deletes.push((target.clone(), dir.to_path_buf()));
                        if exists(&target) {
                            actions.push(Action::Delete(target));
                        }
                    }
                }
            }
        }
        let manifest_path = self.installed_path(&new.name);
        actions.push(Action::WriteManifest(manifest_path.clone()));
        if !exists(&mark) {
            actions.push(Action::Mark(mark.clone()));
        }
        let local = self.local_path(&id);
        if mode == Mode::Package {
            actions.push(Action::Store(local.clone()));
        }
        let plan = Plan { what, actions };
        if opts.dry_run {
            return Ok(plan);
        }

        // Stage, then apply.
        match &old {
            Some(o) if o.version != new.version => {
                tracing::info!("[{id}]: Updating from {}", o.version);
            }
            _ => tracing::info!("[{id}]: Installing"),
        }
        let mut txn = Txn::new(self, plan.what.clone())?;
        let staging = txn.staging();
        let mut hashes: Vec<(PyValue, PyValue)> = Vec::new();
        for (part, files) in &raw.files {
            if files.is_empty() {
                continue;
            }
            let part_stage = staging.join(part.id());
            txn.step("cannot unpack into", &part_stage)?;
            let written = mkp.extract_part(*part, &part_stage, self.read_limits())?;
            let dir = self.paths().part_dir(*part);
            let mut part_hashes = Vec::new();
            for f in written {
                let staged_rel = format!("{}/{f}", part.id());
                let rel = raw.install_path(*part, &f).into_owned();
                part_hashes.push((
                    PyValue::Str(rel.clone()),
                    PyValue::Str(sha256_file(&staging.join(&staged_rel))?),
                ));
                let target = dir.join(&rel);
                if mode == Mode::Package && rel != f {
                    // The legacy source path goes away, the file moves to the new path.
                    let source = dir.join(&f);
                    if let Some(parent) = source.parent() {
                        txn.cleanup(parent.to_path_buf(), dir.to_path_buf());
                    }
                    txn.remove(source);
                }
                if exists(&target) {
                    txn.remove(target.clone());
                }
                txn.place(staged_rel, target);
            }
            hashes.push((
                PyValue::Str(part.id().to_string()),
                PyValue::Dict(part_hashes),
            ));
        }
        for (target, stop) in deletes {
            if let Some(parent) = target.parent() {
                txn.cleanup(parent.to_path_buf(), stop);
            }
            txn.remove(target);
        }
        let mut record = new.clone();
        record.remove_extra(HASHES_KEY);
        record
            .extra
            .push((HASHES_KEY.to_string(), PyValue::Dict(hashes)));
        if exists(&manifest_path) {
            txn.remove(manifest_path.clone());
        }
        txn.place_bytes(record.to_info().as_bytes(), DATA_MODE, manifest_path)?;
        if !exists(&mark) {
            txn.place_bytes(bytes, DATA_MODE, mark)?;
        }
        if mode == Mode::Package {
            txn.place_bytes(bytes, DATA_MODE, local)?;
        }
        txn.commit()?;
        Ok(plan)
    }

    /// Adds the uninstall of `m` to `actions` / `txn`.
    fn uninstall_actions(&self, m: &Manifest) -> Vec<Action> {
        let mut actions = Vec::new();
        for (part, files) in &m.files {
            let dir = self.paths().part_dir(*part);
            for f in files {
                let target = dir.join(f);
                if exists(&target) {
                    actions.push(Action::Delete(target));
                }
            }
        }
        actions.push(Action::DeleteManifest(self.installed_path(&m.name)));
        actions
    }

    fn uninstall_into(&self, txn: &mut Txn<'_>, m: &Manifest) {
        for (part, files) in &m.files {
            let dir = self.paths().part_dir(*part);
            for f in files {
                let target = dir.join(f);
                if let Some(parent) = target.parent() {
                    txn.cleanup(parent.to_path_buf(), dir.to_path_buf());
                }
                txn.remove(target);
            }
        }
        txn.remove(self.installed_path(&m.name));
    }

    /// Stores a package (`mkp add`): `var/check_mk/packages_local/<name>-<version>.mkp`.
    /// Refuses an id that exists as local or shipped package.
    pub fn add(&self, bytes: &[u8]) -> Result<Manifest> {
        let manifest = read_manifest(bytes, self.read_limits())?;
        let id = PackageId::of(&manifest);
        let _lock = self.lock()?;
        let local = self.local_path(&id);
        if exists(&local) || exists(&self.shipped_path(&id)) {
            return Err(StoreError::Exists {
                name: id.name.to_string(),
                version: id.version.to_string(),
            });
        }
        let mut txn = Txn::new(self, format!("add {id}"))?;
        txn.place_bytes(bytes, DATA_MODE, local)?;
        txn.commit()?;
        Ok(manifest)
    }

    /// `mkp install FILE`: stores the package as [`Site::add`] does, then enables it as
    /// [`Site::enable`] does. A package that is already stored with exactly these bytes
    /// is enabled from there; other bytes under the same name and version are refused as
    /// by `add`. Returns the manifest and what `enable` did.
    pub fn install_package(&self, bytes: &[u8], opts: &ChangeOptions) -> Result<(Manifest, Plan)> {
        let manifest = match self.add(bytes) {
            Ok(m) => m,
            Err(StoreError::Exists { name, version }) => {
                let m = read_manifest(bytes, self.read_limits())?;
                let (_, stored) = self.package_bytes(&PackageId::of(&m))?;
                if stored != bytes {
                    return Err(StoreError::Exists { name, version });
                }
                m
            }
            Err(e) => return Err(e),
        };
        let plan = self.enable(&PackageId::of(&manifest), opts)?;
        Ok((manifest, plan))
    }

    /// Installs a stored package and marks it enabled (`mkp enable`). See [`Site`] for
    /// what happens on failure.
    pub fn enable(&self, id: &PackageId, opts: &ChangeOptions) -> Result<Plan> {
        let _lock = self.lock_unless(opts.dry_run)?;
        let (path, bytes) = self.package_bytes(id)?;
        self.install(&bytes, Mode::Enable, opts)
            .map_err(|e| match e {
                StoreError::Package(source) => StoreError::Format { path, source },
                e => e,
            })
    }

    fn disable_locked(&self, id: &PackageId, opts: &ChangeOptions) -> Result<Plan> {
        let installed = self
            .installed_manifest(&id.name)
            .filter(|m| m.version == id.version);
        let mut actions = Vec::new();
        if let Some(m) = &installed {
            if !opts.force {
                let modified = self.modified_files(m, |_, _| true)?;
                if !modified.is_empty() {
                    return Err(StoreError::Refused { problems: modified });
                }
            }
            actions.extend(self.uninstall_actions(m));
        }
        let mark = self.mark_path(id);
        if exists(&mark) {
            actions.push(Action::Unmark(mark.clone()));
        }
        let plan = Plan {
            what: format!("disable {id}"),
            actions,
        };
        if opts.dry_run || plan.actions.is_empty() {
            return Ok(plan);
        }
        let mut txn = Txn::new(self, plan.what.clone())?;
        if let Some(m) = &installed {
            tracing::info!("[{id}]: Uninstalling");
            self.uninstall_into(&mut txn, m);
        }
        txn.remove(mark);
        txn.commit()?;
        Ok(plan)
    }

    /// Uninstalls the package if `id` is the installed version and removes its enabled mark
    /// (`mkp disable`). Disabling something that is not enabled succeeds.
    pub fn disable(&self, id: &PackageId, opts: &ChangeOptions) -> Result<Plan> {
        let _lock = self.lock_unless(opts.dry_run)?;
        self.disable_locked(id, opts)
    }

    /// Deletes a stored local package (`mkp remove`); refuses an enabled or installed one.
    pub fn remove(&self, id: &PackageId, opts: &ChangeOptions) -> Result<Plan> {
        let _lock = self.lock_unless(opts.dry_run)?;
        let installed = self
            .installed_manifest(&id.name)
            .is_some_and(|m| m.version == id.version);
        if exists(&self.mark_path(id)) || installed {
            return Err(StoreError::Enabled {
                name: id.name.to_string(),
                version: id.version.to_string(),
            });
        }
        let local = self.local_path(id);
        if !exists(&local) {
            return Err(if exists(&self.shipped_path(id)) {
                StoreError::Shipped {
                    name: id.name.to_string(),
                    version: id.version.to_string(),
                }
            } else {
                StoreError::NoSuchPackage {
                    name: id.name.to_string(),
                    version: Some(id.version.to_string()),
                }
            });
        }
        let plan = Plan {
            what: format!("remove {id}"),
            actions: vec![Action::Unstore(local.clone())],
        };
        if opts.dry_run {
            return Ok(plan);
        }
        tracing::info!("Removing package {}...", id.name);
        let mut txn = Txn::new(self, plan.what.clone())?;
        txn.remove(local);
        txn.commit()?;
        tracing::info!("Successfully removed package {}.", id.name);
        Ok(plan)
    }

    /// Forgets the installation of `name` but leaves its files (`mkp release`); the enabled
    /// mark is kept, as in Checkmk.
    pub fn release(&self, name: &PackageName) -> Result<Manifest> {
        let _lock = self.lock()?;
        let m = self
            .installed_manifest(name)
            .ok_or_else(|| StoreError::NotInstalled {
                name: name.to_string(),
            })?;
        let mut txn = Txn::new(self, format!("release {name}"))?;
        txn.remove(self.installed_path(name));
        txn.commit()?;
        Ok(m)
    }

    /// Site-mode `mkp package`: builds the package from the files on disk, stores it, marks
    /// it enabled and installs it. Conflicts with other packages are checked first.
    pub fn package(&self, manifest: &Manifest, opts: &ChangeOptions) -> Result<(Manifest, Plan)> {
        manifest.version.require_semver()?;
        manifest.check_paths()?;
        let _lock = self.lock_unless(opts.dry_run)?;
        let id = PackageId::of(manifest);
        if exists(&self.local_path(&id)) || exists(&self.shipped_path(&id)) {
            return Err(StoreError::Exists {
                name: id.name.to_string(),
                version: id.version.to_string(),
            });
        }
        let bytes = package_from_dirs(
            manifest,
            |p| self.paths().part_dir(p).to_path_buf(),
            &PackOptions::default(),
        )?;
        let built = read_manifest(&bytes, self.read_limits())?;
        let mut plan = self.install(&bytes, Mode::Package, opts)?;
        plan.what = format!("package {id}");
        Ok((built, plan))
    }

    /// Disables every installed package whose `version.usable_until` excludes the site
    /// version (`mkp disable-outdated`); returns what was (or would be) done.
    pub fn disable_outdated(&self, opts: &ChangeOptions) -> Result<Vec<Plan>> {
        let _lock = self.lock_unless(opts.dry_run)?;
        let site = self.version()?;
        let mut plans = Vec::new();
        for m in self.installed() {
            let id = PackageId::of(&m);
            match m
                .version_usable_until
                .as_deref()
                .map(|u| check_mkp_usable_until(&site, u))
            {
                Some(Err(e)) => {
                    tracing::info!("[{id}]: Disabling: {e}");
                    plans.push(self.disable_locked(&id, opts)?);
                }
                _ => tracing::info!("[{id}]: Not disabling"),
            }
        }
        Ok(plans)
    }

    /// `mkp update-active`: uninstalls installed packages that no longer fit (keeping their
    /// enabled marks), then installs, per name, the highest enabled version that works.
    pub fn update_active(&self, opts: &ChangeOptions) -> Result<UpdateReport> {
        let _lock = self.lock_unless(opts.dry_run)?;
        let mut report = UpdateReport::default();
        let installed = self.installed();
        let mut dropped: Vec<PackageId> = Vec::new();
        for m in &installed {
            let id = PackageId::of(m);
            let mut problems = self.version_problems(m)?;
            problems.extend(self.conflicts(m, Some(m), &installed, Mode::UpdateActive));
            if problems.is_empty() {
                continue;
            }
            tracing::info!("[{id}]: Uninstalling: {}", problems.join(", "));
            if !opts.force {
                let modified = self.modified_files(m, |_, _| true)?;
                if !modified.is_empty() {
                    tracing::warn!("[{id}]: Not uninstalled: {}", modified.join(", "));
                    continue;
                }
            }
            let plan = Plan {
                what: format!("disable {id}"),
                actions: self.uninstall_actions(m),
            };
            if !opts.dry_run {
                let mut txn = Txn::new(self, plan.what.clone())?;
                self.uninstall_into(&mut txn, m);
                txn.commit()?;
            }
            report.plans.push(plan);
            dropped.push(id.clone());
            report.uninstalled.push(id);
        }
        let mut by_name: BTreeMap<String, Vec<(PackageId, PathBuf)>> = BTreeMap::new();
        for m in self.enabled_packages() {
            let id = PackageId::of(&m);
            let path = self.mark_path(&id);
            by_name
                .entry(id.name.to_string())
                .or_default()
                .push((id, path));
        }
        for (_, mut candidates) in by_name {
            candidates.sort_by_key(|c| std::cmp::Reverse(c.0.version.sort_key()));
            for (id, path) in candidates {
                let active = self
                    .installed_manifest(&id.name)
                    .is_some_and(|m| m.version == id.version)
                    && !dropped.contains(&id);
                if active {
                    report.installed.push(id);
                    break;
                }
                let bytes = match fs::read(&path) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::info!(
                            "[{id}]: Not installed: cannot read {}: {e}",
                            path.display()
                        );
                        continue;
                    }
                };
                let check = ChangeOptions {
                    force_install: false,
                    ..*opts
                };
                match self.install(&bytes, Mode::UpdateActive, &check) {
                    Ok(plan) => {
                        report.plans.push(plan);
                        report.installed.push(id);
                        break;
                    }
                    Err(e) => tracing::info!("[{id}]: Not installed: {e}"),
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_messages_carry_the_hint() {
        let e = check_mkp_min_required("1.3", "1.4").unwrap_err();
        assert_eq!(
            with_hint(&e),
            "Package requires a Checkmk version 1.4 or higher (this is 1.3). To enable it \
             anyway, use the `--force-install` flag to skip all version checks."
        );
    }
}
