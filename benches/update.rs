//! Updating a site of 10,000 skeleton files (20% changed upstream, 5% edited
//! by the operator, 1% conflicting) compared with `cp -a` of the same tree.
//! Content merges go through `GitMerge`, as in `omd update`.
//!
//! Run: `cargo bench -p toolkit-benches --bench update`.
//!
//! Figures of 2026-11-21, session 2 (idle 2-core VM, ext4 on virtio; median
//! of 10 runs, plan + apply, policy keepold, `.version_meta` refreshed, i.e.
//! 10,000 more files copied):
//!
//! | what | time |
//! |---|---|
//! | `cp -a` of the site | 5.53 s |
//! | update without fsync | 6.61 s |
//! | `cp -a` + `sync` | 6.45 s |
//! | update with fsync (batched journal + one syncfs) | 7.08 s |
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use site_merge::{ApplyOptions, GitMerge, Policy, SiteCreation, Skeleton, Update};

const FILES: usize = 10_000;
const PER_DIR: usize = 100;
const LINES: usize = 40;

fn content(i: usize, changed_line: Option<(usize, &str)>) -> String {
    let mut s = String::with_capacity(LINES * 48);
    for l in 0..LINES {
        match changed_line {
            Some((c, tag)) if c == l => s.push_str(&format!("# {tag} line {l} of file {i}\n")),
            _ => s.push_str(&format!(
                "setting_{l} = \"value {l} of ###SITE### file {i}\"\n"
            )),
        }
    }
    s
}

fn write(root: &Path, i: usize, text: &str) {
    let path = root.join(format!("etc/d{:03}/f{:05}.conf", i / PER_DIR, i));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// Builds versions 1 and 2 and a template site of version 1 with operator edits.
fn prepare(root: &Path) {
    let versions = root.join("versions");
    let (old, new) = (versions.join("1/skel"), versions.join("2/skel"));
    for i in 0..FILES {
        write(&old, i, &content(i, None));
        // 20% changed upstream (line 10).
        let upstream = i % 5 == 0;
        write(&new, i, &content(i, upstream.then_some((10, "upstream"))));
    }
    let site = root.join("template");
    SiteCreation::new(&site, "s", Skeleton::of_version(&versions, "1"))
        .version_meta(false)
        .create()
        .unwrap();
    // 5% edited by the operator: 1% on the line changed upstream (conflict),
    // 2% elsewhere in files changed upstream (clean merge), 2% in unchanged files.
    for i in 0..FILES {
        let edit = match i % 100 {
            0 => Some(10),     // upstream-changed, same line: conflict
            5 | 10 => Some(3), // upstream-changed, other line: merge
            1 | 2 => Some(3),  // not changed upstream
            _ => None,
        };
        if let Some(line) = edit {
            let text = content(i, Some((line, "operator")));
            let text = text.replace("###SITE###", "s");
            write(&site, i, &text);
        }
    }
}

fn cp_a(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Flushes all dirty data, so that one measurement does not pay for the
/// previous one's (or the setup's) writes.
fn sync() {
    assert!(Command::new("sync").status().unwrap().success());
}

fn update(site: &Path, versions: &Path) -> Update {
    Update::builder(
        site,
        "s",
        Skeleton::of_version(versions, "1"),
        Skeleton::of_version(versions, "2"),
    )
    .build()
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    prepare(root);
    let template = root.join("template");
    fs::create_dir_all(root.join("sites")).unwrap();
    let site = root.join("sites/s");
    let versions = root.join("versions");

    // cp -a of the site, without and with making it durable.
    let copy = |durable: bool| {
        let (site, template) = (site.clone(), template.clone());
        move |iters: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                sync();
                let start = Instant::now();
                cp_a(&template, &site);
                if durable {
                    sync();
                }
                total += start.elapsed();
                fs::remove_dir_all(&site).unwrap();
            }
            total
        }
    };
    // plan + apply (KeepOld) on a fresh copy of the site.
    let run = |options: ApplyOptions| {
        let (site, template, versions) = (site.clone(), template.clone(), versions.clone());
        move |iters: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                cp_a(&template, &site);
                sync();
                let start = Instant::now();
                let up = update(&site, &versions);
                let plan = up.plan(&GitMerge::new(), &mut Policy::KeepOld).unwrap();
                up.apply(&plan, &options).unwrap();
                total += start.elapsed();
                fs::remove_dir_all(&site).unwrap();
            }
            total
        }
    };

    let mut group = c.benchmark_group("update_10k");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    group.bench_function("cp_a", |b| b.iter_custom(copy(false)));
    group.bench_function("update_nosync", |b| {
        b.iter_custom(run(ApplyOptions::new().sync(false)))
    });
    group.bench_function("cp_a_then_sync", |b| b.iter_custom(copy(true)));
    group.bench_function("update_fsync", |b| b.iter_custom(run(ApplyOptions::new())));
    group.finish();

    // One checked run: the numbers above measure a correct update.
    cp_a(&template, &site);
    let up = update(&site, &versions);
    let plan = up.plan(&GitMerge::new(), &mut Policy::KeepOld).unwrap();
    let conflicts = plan.conflicts().len();
    let changes = plan.changes();
    let flushes = site_merge::flushes();
    up.apply(&plan, &ApplyOptions::new()).unwrap();
    let flushes = site_merge::flushes() - flushes;
    eprintln!(
        "paths {}, changes {changes}, conflicts {conflicts}, flushes {flushes} (fsync/fdatasync/syncfs of one update with fsync)",
        plan.entries.len()
    );
    assert_eq!(conflicts, FILES / 100);
    // Changed upstream, minus the conflicts resolved by keeping the operator's file.
    assert_eq!(changes, FILES / 5 - FILES / 100);
}

criterion_group!(benches, bench);
criterion_main!(benches);
