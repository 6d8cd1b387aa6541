//! `omd update` of a site of 10,000 skeleton files (5,000 changed upstream,
//! 500 edited by the operator: 100 conflicting, 200 merged cleanly, 200 in
//! files upstream left alone) compared with `cp -a` of the same site, on the
//! file system of `TMPDIR` (run it once on the disk and once with
//! `TMPDIR=/dev/shm`).
//!
//! The site is made as `omd create` makes it (so it also holds
//! `.version_meta`, the copy of its version's skeleton: 20,000 files in all),
//! and updated through `site_lifecycle::update` — everything `omd update`
//! does after parsing its arguments: lock, recovery check, update log, plan
//! (policy keepold, Checkmk's patch merge), the journaled transaction with
//! its flushes, the `.version_meta` refresh, the version switch.
//!
//! Run: `cargo bench -p toolkit-benches --bench update`. First the
//! side-by-side table: `cp -a`, `cp -a` + `sync` and the update, alternating,
//! five rounds, the minimum of each (`UPDATE_BENCH_ROUNDS` sets the rounds);
//! then criterion's medians of the same three. `UPDATE_BENCH_PROFILE=N`
//! instead runs only N updates, for a profiler.
//!
//! Figures: BENCHMARKS.md, "Site updates".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use omd_versions::OmdRoot;
use site_lifecycle::{PolicyResolver, Silent, UpdateRequest};
use site_merge::Policy;

const FILES: usize = 10_000;
const PER_DIR: usize = 100;
const LINES: usize = 40;
const FROM: &str = "2.4.0p1.cre";
const TO: &str = "2.4.0p2.cre";
const SITE: &str = "s";

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

/// The bench's OMD root: two versions and a template of the site.
struct Setup {
    root: OmdRoot,
    /// The site as the operator left it, copied to the site before each update.
    template: PathBuf,
    /// Where `cp -a` copies the template to.
    copy: PathBuf,
}

/// Builds the versions, creates the site from the old one as `omd create`
/// does, makes the operator's edits and keeps the result as the template.
fn prepare(dir: &Path) -> Setup {
    let root = OmdRoot::new(dir.join("omd"));
    let versions = root.versions_dir();
    let (old, new) = (
        versions.join(FROM).join("skel"),
        versions.join(TO).join("skel"),
    );
    for i in 0..FILES {
        write(&old, i, &content(i, None));
        // Half of the files changed upstream (line 10).
        let upstream = i % 2 == 0;
        write(&new, i, &content(i, upstream.then_some((10, "upstream"))));
    }
    site_lifecycle::create::create(&root, SITE, Some(FROM)).unwrap();
    let site = root.site_dir(SITE);
    // 5% edited by the operator: 1% on the line changed upstream (conflict),
    // 2% elsewhere in files changed upstream (clean merge), 2% in unchanged files.
    for i in 0..FILES {
        let edit = match i % 100 {
            0 => Some(10),    // changed upstream, same line: conflict
            2 | 4 => Some(3), // changed upstream, another line: merge
            1 | 3 => Some(3), // not changed upstream
            _ => None,
        };
        if let Some(line) = edit {
            let text = content(i, Some((line, "operator"))).replace("###SITE###", SITE);
            write(&site, i, &text);
        }
    }
    let template = dir.join("template");
    fs::rename(&site, &template).unwrap();
    Setup {
        root,
        template,
        copy: dir.join("copy"),
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

/// Wall-clock and CPU (user + system) time of one run.
#[derive(Clone, Copy)]
struct Took {
    wall: Duration,
    cpu: Duration,
}

impl Took {
    const MAX: Took = Took {
        wall: Duration::MAX,
        cpu: Duration::MAX,
    };

    fn min(self, other: Took) -> Took {
        Took {
            wall: self.wall.min(other.wall),
            cpu: self.cpu.min(other.cpu),
        }
    }
}

/// `cp -a from to` (then `sync` when `durable`), timed by bash's `time`,
/// which also reports the CPU time of `cp` (and `sync`).
fn timed_cp_a(from: &Path, to: &Path, durable: bool) -> Took {
    let script = if durable {
        r#"TIMEFORMAT="%3R %3U %3S"; time { cp -a "$0" "$1" && sync; }"#
    } else {
        r#"TIMEFORMAT="%3R %3U %3S"; time cp -a "$0" "$1""#
    };
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stderr).unwrap();
    let secs: Vec<f64> = text
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    let [real, user, sys] = secs[..] else {
        panic!("unexpected output of time: {text}");
    };
    Took {
        wall: Duration::from_secs_f64(real),
        cpu: Duration::from_secs_f64(user + sys),
    }
}

/// The CPU time (user + system, all threads) of this process so far.
fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap(),
        u32::try_from(t.tv_nsec).unwrap(),
    )
}

/// Flushes all dirty data, so that one measurement does not pay for the
/// previous one's (or the setup's) writes.
fn sync() {
    assert!(Command::new("sync").status().unwrap().success());
}

impl Setup {
    fn site(&self) -> PathBuf {
        self.root.site_dir(SITE)
    }

    /// `cp -a` of the site (then `sync` when `durable`): the time.
    fn copy(&self, durable: bool) -> Took {
        sync();
        let took = timed_cp_a(&self.template, &self.copy, durable);
        fs::remove_dir_all(&self.copy).unwrap();
        took
    }

    /// `omd update` of a fresh copy of the site: the time and the outcome.
    fn update(&self) -> (Took, site_lifecycle::UpdateOutcome) {
        cp_a(&self.template, &self.site());
        sync();
        let mut request = UpdateRequest::new(SITE, Policy::KeepOld);
        request.version = Some(TO.to_owned());
        let (start, cpu) = (Instant::now(), cpu_now());
        let outcome = site_lifecycle::update(
            &self.root,
            &request,
            &mut PolicyResolver(Policy::KeepOld),
            &mut Silent,
        )
        .unwrap();
        let took = Took {
            wall: start.elapsed(),
            cpu: cpu_now() - cpu,
        };
        let status = Command::new("rm").arg("-rf").arg(self.site()).status();
        assert!(status.unwrap().success());
        (took, outcome)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// `cp -a`, `cp -a` + `sync` and the update, alternating, `rounds` times;
/// prints the minimum of each side by side.
fn side_by_side(setup: &Setup, rounds: usize) {
    let (mut cp, mut cp_sync, mut up) = (Took::MAX, Took::MAX, Took::MAX);
    for _ in 0..rounds {
        cp = cp.min(setup.copy(false));
        up = up.min(setup.update().0);
        cp_sync = cp_sync.min(setup.copy(true));
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    eprintln!(
        "minimum of {rounds} alternating rounds: cp -a {}, cp -a + sync {}, omd update {} \
         ({:.2}x cp -a, {:.2}x cp -a + sync)",
        ms(cp.wall),
        ms(cp_sync.wall),
        ms(up.wall),
        ratio(up.wall, cp.wall),
        ratio(up.wall, cp_sync.wall)
    );
    eprintln!(
        "CPU time (user + system), minimum: cp -a {}, cp -a + sync {}, omd update {} \
         ({:.2}x cp -a)",
        ms(cp.cpu),
        ms(cp_sync.cpu),
        ms(up.cpu),
        ratio(up.cpu, cp.cpu)
    );
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let setup = prepare(tmp.path());
    fs::create_dir_all(setup.root.sites_dir()).unwrap();

    if let Some(n) = std::env::var("UPDATE_BENCH_PROFILE")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        for _ in 0..n {
            setup.update();
        }
        // Without removing the temporary tree in this process (a profiler
        // recording only this process then sees the updates and the setup).
        let dir = tmp.keep();
        assert!(
            Command::new("rm")
                .arg("-rf")
                .arg(dir)
                .status()
                .unwrap()
                .success()
        );
        return;
    }

    // One checked run first: the numbers measure a correct update.
    let flushes = site_merge::flushes();
    let (_, outcome) = setup.update();
    let flushes = site_merge::flushes() - flushes;
    eprintln!(
        "paths {}, changes {}, conflicts {}, flushes {flushes} (fsync/fdatasync/syncfs of one update)",
        outcome.plan.entries.len(),
        outcome.changes,
        outcome.questions,
    );
    assert_eq!(outcome.questions, FILES / 100);
    // Changed upstream, minus the conflicts resolved by keeping the operator's file.
    assert_eq!(outcome.changes, FILES / 2 - FILES / 100);

    // `cargo test --benches` runs each benchmark once: one round is enough there.
    let measuring = std::env::args().any(|a| a == "--bench");
    let rounds = std::env::var("UPDATE_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if measuring { 5 } else { 1 });
    side_by_side(&setup, rounds);

    let mut group = c.benchmark_group("update_10k");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    let sum = |f: &dyn Fn() -> Took, iters: u64| (0..iters).map(|_| f().wall).sum::<Duration>();
    group.bench_function("cp_a", |b| b.iter_custom(|n| sum(&|| setup.copy(false), n)));
    group.bench_function("cp_a_then_sync", |b| {
        b.iter_custom(|n| sum(&|| setup.copy(true), n))
    });
    group.bench_function("omd_update", |b| {
        b.iter_custom(|n| sum(&|| setup.update().0, n))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
