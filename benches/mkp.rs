//! Reading and writing MKP packages (`mkp-format`).
//!
//! `cargo bench -p toolkit-benches --bench mkp`.
//!
//! * `inspect/corpus`: read the manifest of every MKP in `../shared/corpus/mkp-real` and
//!   `mkp-peer` (skipped when the shared folder is absent).
//! * `pack/50MiB-5000-files` and `unpack/50MiB-5000-files`: a generated package of 5,000
//!   files (50 MiB of source-like text, deterministic) built at gzip level 9 like Checkmk, and
//!   read back plus unpacked into a staging directory.
//!
//! Set `MKP_BENCH_DUMP=DIR` to also write the generated files to `DIR/<part>/...` and the
//! package to `DIR/bench.mkp`, to time `tar`/`gzip` on the same data.

// Benchmark set-up may unwrap (clippy.toml only covers tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mkp_format::{
    Limits, Manifest, Mkp, PackOptions, PackageName, PackagePart, PartFile, build_part_tar,
    read_manifest, write_mkp,
};
use toolkit_benches::Rng;

const FILES: usize = 5_000;
const TOTAL: usize = 50 << 20;

const WORDS: &[&str] = &[
    "def",
    "check",
    "section",
    "params",
    "yield",
    "Result",
    "state",
    "summary",
    "metric",
    "return",
    "import",
    "from",
    "cmk",
    "agent_based",
    "v2",
    "for",
    "item",
    "in",
    "if",
    "else",
    "None",
    "True",
    "False",
    "self",
    "value",
    "levels",
    "warn",
    "crit",
    "(",
    ")",
    ":",
    "=",
    "\n    ",
    "\n        ",
    "\n",
    "# ",
    "\"",
    "'",
    ",",
    ".",
];

/// 5,000 files of about 10 KiB each, spread over three parts.
fn generate() -> Vec<(PackagePart, Vec<PartFile>)> {
    let mut rng = Rng(0x5eed_0f6d_6b70);
    let parts = [
        PackagePart::CmkAddonsPlugins,
        PackagePart::Agents,
        PackagePart::Lib,
    ];
    let mut out: Vec<(PackagePart, Vec<PartFile>)> =
        parts.iter().map(|p| (*p, Vec::new())).collect();
    let per_file = TOTAL / FILES;
    for i in 0..FILES {
        let mut text = String::with_capacity(per_file + 16);
        while text.len() < per_file {
            let w = WORDS[(rng.next_u64() % WORDS.len() as u64) as usize];
            text.push_str(w);
            text.push(' ');
            if rng.next_u64().is_multiple_of(11) {
                text.push_str(&format!("{}", rng.next_u64() % 10_000));
            }
        }
        text.truncate(per_file);
        let path = format!("bench/dir{:02}/sub{}/file_{i:05}.py", i % 50, i % 7);
        let slot = i % parts.len();
        out[slot].1.push(PartFile::new(path, text.into_bytes()));
    }
    out
}

fn manifest(parts: &[(PackagePart, Vec<PartFile>)]) -> Manifest {
    let mut m = Manifest::template(PackageName::new("bench").unwrap(), "2.3.0", Some(vec![]));
    m.files = parts
        .iter()
        .map(|(p, files)| (*p, files.iter().map(|f| f.path.clone()).collect()))
        .collect();
    m
}

fn pack(parts: &[(PackagePart, Vec<PartFile>)], m: &Manifest) -> Vec<u8> {
    let tars: Vec<(PackagePart, Vec<u8>)> = parts
        .iter()
        .map(|(p, files)| (*p, build_part_tar(files).unwrap()))
        .collect();
    write_mkp(m, &tars, &PackOptions::default().mtime(1_700_000_000)).unwrap()
}

fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in ["corpus/mkp-real", "corpus/mkp-peer"] {
        let Some(dir) = testkit::shared_path(dir) else {
            continue;
        };
        let paths = testkit::files_with_extension(&dir, "mkp");
        out.extend(paths.iter().map(|p| std::fs::read(p).unwrap()));
    }
    out
}

fn bench(c: &mut Criterion) {
    let files = corpus();
    if !files.is_empty() {
        let mut group = c.benchmark_group("inspect");
        group.throughput(Throughput::Bytes(
            files.iter().map(|f| f.len() as u64).sum(),
        ));
        group.bench_function(format!("corpus-{}-files", files.len()), |b| {
            b.iter(|| {
                for f in &files {
                    let _ = black_box(read_manifest(black_box(f), &Limits::default()));
                }
            });
        });
        group.finish();
    }

    let parts = generate();
    let m = manifest(&parts);
    let bytes = pack(&parts, &m);
    if let Some(dump) = std::env::var_os("MKP_BENCH_DUMP") {
        let dump = PathBuf::from(dump);
        for (part, files) in &parts {
            for f in files {
                let path = dump.join(part.id()).join(&f.path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, &f.data).unwrap();
            }
        }
        std::fs::write(dump.join("bench.mkp"), &bytes).unwrap();
    }

    let mut group = c.benchmark_group("pack");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.bench_function("50MiB-5000-files", |b| {
        b.iter(|| black_box(pack(&parts, &m)));
    });
    group.finish();

    let mut group = c.benchmark_group("unpack");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(TOTAL as u64));
    let base = std::env::temp_dir().join(format!("mkp-bench-{}", std::process::id()));
    let mut round = 0u64;
    group.bench_function("50MiB-5000-files", |b| {
        b.iter_batched(
            || {
                // Remove the previous round's output outside the timed part.
                let _ = std::fs::remove_dir_all(base.join(round.to_string()));
                round += 1;
                base.join(round.to_string())
            },
            |dest| {
                let mkp = Mkp::from_bytes(&bytes, &Limits::default()).unwrap();
                mkp.extract_all(&dest, &Limits::default()).unwrap();
                dest
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&base);
}

criterion_group!(benches, bench);
criterion_main!(benches);
