//! The package store of a site (`mkp_format::Site`).
//!
//! `cargo bench -p toolkit-benches --bench store`.
//!
//! * `store/enable+disable 5000 files`: install and uninstall a package of 5,000 files.
//! * `list with 500 stored packages`: the `mkp list` table of a site with 500 stored packages.

// Benchmark set-up may unwrap (clippy.toml only covers tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::{Path, PathBuf};

use mkp_format::{
    ChangeOptions, Manifest, PackOptions, PackageId, PackageName, PackagePart, PackageVersion,
    PartFile, Site,
};

/// A fresh site directory below the system temp dir, removed on drop.
struct TempSite(PathBuf);

impl TempSite {
    fn new(tag: &str) -> TempSite {
        let dir =
            std::env::temp_dir().join(format!("mkp-store-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempSite(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempSite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn package(name: &str, files: usize) -> Vec<u8> {
    let paths: Vec<String> = (0..files)
        .map(|i| format!("bench/dir{:03}/file{i:05}.py", i % 100))
        .collect();
    let manifest = Manifest::new(
        PackageName::new(name).unwrap(),
        PackageVersion::new("1.0.0").unwrap(),
        format!("Title of {name}"),
        "benchmark package",
        "bench",
        "",
        "2.3.0",
        None,
        vec![(PackagePart::CmkAddonsPlugins, paths.clone())],
    );
    let tar = mkp_format::build_part_tar(
        &paths
            .iter()
            .map(|p| PartFile::new(p.clone(), format!("# {p}\n").into_bytes()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    mkp_format::write_mkp(
        &manifest,
        &[(PackagePart::CmkAddonsPlugins, tar)],
        &PackOptions::default().mtime(0).compression_level(1),
    )
    .unwrap()
}

fn enable_disable(c: &mut Criterion) {
    let dir = TempSite::new("enable");
    let site = Site::open(dir.path()).unwrap().with_version("2.4.0");
    let manifest = site.add(&package("big", 5000)).unwrap();
    let id = PackageId::of(&manifest);
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.bench_function("enable+disable 5000 files", |b| {
        b.iter(|| {
            site.enable(&id, &ChangeOptions::default()).unwrap();
            site.disable(&id, &ChangeOptions::default()).unwrap();
        });
    });
    group.finish();
}

fn list_500(c: &mut Criterion) {
    let dir = TempSite::new("list");
    let site = Site::open(dir.path()).unwrap().with_version("2.4.0");
    for i in 0..500 {
        site.add(&package(&format!("pkg{i:03}"), 3)).unwrap();
    }
    // One of them active, so every state is listed.
    let first = PackageId {
        name: PackageName::new("pkg000").unwrap(),
        version: PackageVersion::new("1.0.0").unwrap(),
    };
    site.enable(&first, &ChangeOptions::default()).unwrap();
    c.bench_function("list with 500 stored packages", |b| {
        b.iter(|| black_box(site.listing().unwrap().to_table()));
    });
}

criterion_group!(benches, enable_disable, list_500);
criterion_main!(benches);
