//! The package store ([`Site`]): operations, rollback through the fault hook, recovery
//! after a crash.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use mkp_format::{
    Action, ChangeOptions, Manifest, PackOptions, PackageId, PackageName, PackagePart,
    PackageVersion, PartFile, Site, StoreError,
};

fn package(name: &str, version: &str, files: &[(PackagePart, &str, &str)]) -> Vec<u8> {
    let mut list: Vec<(PackagePart, Vec<String>)> = Vec::new();
    for (part, path, _) in files {
        match list.iter_mut().find(|(p, _)| p == part) {
            Some((_, l)) => l.push(path.to_string()),
            None => list.push((*part, vec![path.to_string()])),
        }
    }
    let manifest = Manifest::new(
        PackageName::new(name).unwrap(),
        PackageVersion::new(version).unwrap(),
        "t",
        "d",
        "a",
        "",
        "2.3.0",
        None,
        list.clone(),
    );
    let tars: Vec<_> = list
        .iter()
        .map(|(part, _)| {
            let pf: Vec<PartFile> = files
                .iter()
                .filter(|(p, _, _)| p == part)
                .map(|(_, path, data)| PartFile::new(*path, *data))
                .collect();
            (*part, mkp_format::build_part_tar(&pf).unwrap())
        })
        .collect();
    mkp_format::write_mkp(&manifest, &tars, &PackOptions::default().mtime(0)).unwrap()
}

fn id(name: &str, version: &str) -> PackageId {
    PackageId {
        name: PackageName::new(name).unwrap(),
        version: PackageVersion::new(version).unwrap(),
    }
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if m.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &p, out);
            } else {
                let data = fs::read(&p).unwrap();
                out.insert(
                    rel,
                    format!(
                        "{:o} {} {} {}",
                        m.permissions().mode(),
                        m.mtime(),
                        m.mtime_nsec(),
                        hex_len(&data)
                    ),
                );
            }
        }
    }
    fn hex_len(d: &[u8]) -> String {
        format!("{}:{:?}", d.len(), &d[..d.len().min(64)])
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out.remove(Path::new("var/check_mk/mkp-transaction.lock"));
    out
}

fn site_with_v1() -> (tempfile::TempDir, Site) {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::open(dir.path()).unwrap().with_version("2.4.0");
    site.add(&package(
        "p",
        "1.0.0",
        &[
            (PackagePart::Agents, "plugins/a", "1"),
            (PackagePart::Agents, "plugins/b", "1"),
        ],
    ))
    .unwrap();
    site.add(&package(
        "p",
        "2.0.0",
        &[
            (PackagePart::Agents, "plugins/a", "2"),
            (PackagePart::Doc, "new/readme", "2"),
        ],
    ))
    .unwrap();
    site.enable(&id("p", "1.0.0"), &ChangeOptions::default())
        .unwrap();
    (dir, site)
}

#[test]
fn enable_update_disable_through_the_api() {
    let (dir, site) = site_with_v1();
    let plan = site
        .enable(&id("p", "2.0.0"), &ChangeOptions::default().dry_run(true))
        .unwrap();
    let agents = dir.path().join("local/share/check_mk/agents");
    assert!(
        plan.actions
            .contains(&Action::Replace(agents.join("plugins/a")))
    );
    assert!(
        plan.actions
            .contains(&Action::Delete(agents.join("plugins/b")))
    );
    assert_eq!(plan.what, "update p from 1.0.0 to 2.0.0");
    site.enable(&id("p", "2.0.0"), &ChangeOptions::default())
        .unwrap();
    assert_eq!(fs::read_to_string(agents.join("plugins/a")).unwrap(), "2");
    assert!(!agents.join("plugins/b").exists());
    let listing = site.listing().unwrap();
    assert_eq!(listing.installed.len(), 1);
    assert_eq!(listing.inactive.len(), 1, "1.0.0 keeps its mark");
    site.disable(&id("p", "2.0.0"), &ChangeOptions::default())
        .unwrap();
    assert!(site.installed().is_empty());
    assert!(!dir.path().join("local/share/doc/check_mk/new").exists());
}

#[test]
fn hook_error_at_every_step_rolls_back() {
    for n in 1.. {
        let (dir, mut site) = site_with_v1();
        let before = snapshot(dir.path());
        let start = n;
        let counter = std::cell::Cell::new(0usize);
        site.set_fault_hook(Box::new(move |_| {
            counter.set(counter.get() + 1);
            if counter.get() == start {
                Err(std::io::Error::other("boom"))
            } else {
                Ok(())
            }
        }));
        match site.enable(&id("p", "2.0.0"), &ChangeOptions::default()) {
            Ok(_) => {
                assert!(n > 8);
                break;
            }
            Err(e) => {
                assert!(e.to_string().contains("boom"), "{e}");
                assert_eq!(snapshot(dir.path()), before, "step {n}");
            }
        }
    }
}

#[test]
fn a_crash_leaves_a_journal_that_the_next_open_repairs() {
    let mut outcomes = (0, 0);
    for n in 1.. {
        let (dir, mut site) = site_with_v1();
        let before = snapshot(dir.path());
        let counter = std::cell::Cell::new(0usize);
        site.set_fault_hook(Box::new(move |_| {
            counter.set(counter.get() + 1);
            assert!(counter.get() != n, "simulated crash");
            Ok(())
        }));
        let result = catch_unwind(AssertUnwindSafe(|| {
            site.enable(&id("p", "2.0.0"), &ChangeOptions::default())
        }));
        if result.is_ok() {
            break;
        }
        drop(site);
        let site = Site::open(dir.path()).unwrap().with_version("2.4.0");
        assert!(!dir.path().join("var/check_mk/mkp-transaction").exists());
        let now = snapshot(dir.path());
        if now == before {
            outcomes.0 += 1;
        } else {
            let m = site.installed_manifest(&id("p", "2.0.0").name).unwrap();
            assert_eq!(m.version.as_str(), "2.0.0", "step {n}: {now:#?}");
            outcomes.1 += 1;
        }
    }
    assert!(outcomes.0 > 5, "{outcomes:?}");
}

#[test]
fn errors_name_the_package() {
    let (_dir, site) = site_with_v1();
    let e = site
        .remove(&id("p", "1.0.0"), &ChangeOptions::default())
        .unwrap_err();
    assert!(matches!(e, StoreError::Enabled { .. }));
    let e = site
        .resolve(&PackageName::new("p").unwrap(), None)
        .unwrap_err();
    assert_eq!(e.to_string(), "Please specify version (1.0.0, 2.0.0)");
    let e = site
        .release(&PackageName::new("nope").unwrap())
        .unwrap_err();
    assert_eq!(e.to_string(), "Package nope not installed or corrupt.");
}

#[test]
fn recovery_is_idempotent_when_itself_interrupted() {
    let mut exercised = 0;
    for n in 1.. {
        let (dir, mut site) = site_with_v1();
        let before = snapshot(dir.path());
        let counter = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let c = counter.clone();
        site.set_fault_hook(Box::new(move |_| {
            c.set(c.get() + 1);
            assert!(c.get() != n, "simulated crash");
            Ok(())
        }));
        let result = catch_unwind(AssertUnwindSafe(|| {
            site.enable(&id("p", "2.0.0"), &ChangeOptions::default())
        }));
        if result.is_ok() {
            break;
        }
        // Crash the recovery too, at each of its steps in turn.
        for m in 1.. {
            let c = counter.clone();
            let crash_at = c.get() + m;
            site.set_fault_hook(Box::new(move |_| {
                c.set(c.get() + 1);
                assert!(c.get() != crash_at, "simulated crash in recovery");
                Ok(())
            }));
            if catch_unwind(AssertUnwindSafe(|| site.recover())).is_ok() {
                break;
            }
            exercised += 1;
        }
        drop(site);
        let _site = Site::open(dir.path()).unwrap();
        assert!(!dir.path().join("var/check_mk/mkp-transaction").exists());
        let now = snapshot(dir.path());
        let installed = fs::read_to_string(dir.path().join("var/check_mk/packages/p")).unwrap();
        assert!(
            now == before || installed.contains("'version': '2.0.0'"),
            "step {n}: {now:#?}"
        );
    }
    assert!(exercised > 5, "{exercised}");
}
