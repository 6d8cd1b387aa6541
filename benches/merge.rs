//! Three-way text merges (`site-merge`), in process.
//!
//! `cargo bench -p toolkit-benches --bench merge`.
//!
//! The workloads come from `../shared/corpus/merge-synth/gen.rs`, compiled and run in
//! the bench setup into `<target>/merge-synth/data` (reused when present; nothing is
//! committed). Skipped when the shared folder is absent.
//!
//! * `myers/<size>`: scattered one-sided edits, ~4% identical both-side edits and ~2%
//!   conflicting sites, for 1 KiB to 16 MiB of base.
//! * `myers/<size>-sparse`: 32 edit sites whatever the size.
//! * `myers/path-*`: the pathological cases (every line rewritten, reversed file,
//!   4-line alphabet).
//! * `histogram/...`: the same merges with the histogram diff.
//! * `view/<size>`: the merge as a view of its inputs written to a sink
//!   (`MergeOptions::merge_view` + `MergeView::write_to`), as `merge_file` does.
//!
//! Throughput is counted in bytes of base, so criterion's `MiB/s` is base MiB per second.
//! Whole-process comparisons with `git merge-file` and `diff3` are in `benches/compare.sh`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use site_merge::{Algorithm, MergeOptions};

/// The generated workloads, or `None` (skip) without the shared corpus.
fn workloads() -> Option<PathBuf> {
    let gen_src = testkit::shared_path("corpus/merge-synth/gen.rs")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| testkit::workspace_root().join("target"));
    let work = target.join("merge-synth");
    let data = work.join("data");
    if data.join("16MiB").join("theirs").is_file() {
        return Some(data);
    }
    std::fs::create_dir_all(&work).ok()?;
    let gen_bin = work.join("gen");
    let ok = Command::new("rustc")
        .args(["-O", "-o"])
        .arg(&gen_bin)
        .arg(&gen_src)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
        && Command::new(&gen_bin)
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: could not build and run {}", gen_src.display());
        return None;
    }
    Some(data)
}

fn load(dir: &Path) -> Option<[Vec<u8>; 3]> {
    let read = |n: &str| std::fs::read(dir.join(n)).ok();
    Some([read("base")?, read("ours")?, read("theirs")?])
}

const MYERS_CASES: &[&str] = &[
    "1KiB",
    "64KiB",
    "1MiB",
    "4MiB",
    "16MiB",
    "64KiB-sparse",
    "1MiB-sparse",
    "16MiB-sparse",
    "path-allchanged-64KiB",
    "path-allchanged-1MiB",
    "path-allchanged-4MiB",
    "path-reversed-64KiB",
    "path-reversed-1MiB",
    "path-reversed-4MiB",
    "path-repeat-64KiB",
    "path-repeat-1MiB",
    "path-repeat-4MiB",
];

const HISTOGRAM_CASES: &[&str] = &[
    "64KiB",
    "1MiB",
    "16MiB",
    "path-reversed-4MiB",
    "path-repeat-4MiB",
];

/// Benches `run` (base, ours, theirs) on each workload of `cases`.
fn bench_cases(
    c: &mut Criterion,
    data: &Path,
    name: &str,
    cases: &[&str],
    run: impl Fn(&[u8], &[u8], &[u8]) -> usize,
) {
    let mut group = c.benchmark_group(name);
    for case in cases {
        let Some([base, ours, theirs]) = load(&data.join(case)) else {
            eprintln!("SKIPPED: workload {case} is missing");
            continue;
        };
        let big = base.len() >= 1 << 20;
        group.sample_size(if big { 10 } else { 30 });
        group.measurement_time(Duration::from_secs(if big { 6 } else { 3 }));
        group.throughput(Throughput::Bytes(base.len() as u64));
        group.bench_function(*case, |b| {
            b.iter(|| black_box(run(black_box(&base), black_box(&ours), black_box(&theirs))))
        });
    }
    group.finish();
}

const VIEW_CASES: &[&str] = &["64KiB", "1MiB", "4MiB", "16MiB"];

fn merges(c: &mut Criterion) {
    let Some(data) = workloads() else {
        return;
    };
    for (name, algorithm, cases) in [
        ("myers", Algorithm::Myers, MYERS_CASES),
        ("histogram", Algorithm::Histogram, HISTOGRAM_CASES),
    ] {
        let opts = MergeOptions::new().algorithm(algorithm);
        bench_cases(c, &data, name, cases, |b, o, t| {
            opts.merge(b, o, t)
                .map(|m| m.conflicts)
                .unwrap_or(usize::MAX)
        });
    }
    let opts = MergeOptions::new();
    bench_cases(c, &data, "view", VIEW_CASES, |b, o, t| {
        opts.merge_view(b, o, t)
            .ok()
            .and_then(|v| v.write_to(std::io::sink()).ok().map(|()| v.conflicts()))
            .unwrap_or(usize::MAX)
    });
}

criterion_group!(benches, merges);
criterion_main!(benches);
