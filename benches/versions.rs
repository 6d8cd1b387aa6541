//! Parsing and sorting Checkmk version strings (`omd-versions`).
//!
//! `cargo bench -p toolkit-benches --bench versions`. The input is 100,000
//! version strings in every form of the grammar, generated deterministically
//! (a fixed-seed xorshift), so runs are comparable.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use omd_versions::{Version, mkp_version_number};
use toolkit_benches::Rng;

const COUNT: usize = 100_000;

/// 100,000 version strings: mostly patch releases, plus innovation, beta and
/// stable releases, release candidates, `+meta`, branch and master dailies.
fn version_strings() -> Vec<String> {
    let mut rng = Rng(0x00c0_ffee_d15e_a5e5);
    (0..COUNT)
        .map(|_| {
            let base = format!("{}.{}.{}", 1 + rng.below(3), rng.below(6), rng.below(2));
            let date = format!(
                "{}.{:02}.{:02}",
                2019 + rng.below(7),
                1 + rng.below(12),
                1 + rng.below(28)
            );
            match rng.below(20) {
                0 => date,
                1 | 2 => format!("{base}-{date}"),
                3 => format!("{base}i{}", 1 + rng.below(9)),
                4 => format!("{base}b{}", 1 + rng.below(9)),
                5 => base,
                6 => format!("{base}p{}-rc{}", rng.below(50), 1 + rng.below(3)),
                7 => format!("{base}p{}+security", rng.below(50)),
                _ => format!("{base}p{}", rng.below(50)),
            }
        })
        .collect()
}

/// Parses every string; the generator only produces valid versions.
fn parse_all(strings: &[String]) -> Vec<Version> {
    match strings.iter().map(|s| s.parse()).collect() {
        Ok(v) => v,
        Err(e) => panic!("the generator produced an invalid version: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let strings = version_strings();
    let parsed = parse_all(&strings);

    let mut group = c.benchmark_group("versions_100k");
    group.throughput(Throughput::Elements(COUNT as u64));
    group.sample_size(20);
    group.bench_function("parse", |b| b.iter(|| parse_all(black_box(&strings))));
    group.bench_function("sort", |b| {
        b.iter_batched(
            || parsed.clone(),
            |mut v| {
                v.sort_by(Version::cmp_lenient);
                v
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("parse_and_sort", |b| {
        b.iter(|| {
            let mut v = parse_all(black_box(&strings));
            v.sort_by(Version::cmp_lenient);
            v
        })
    });
    group.bench_function("mkp_number", |b| {
        b.iter(|| {
            black_box(&strings)
                .iter()
                .filter_map(|s| mkp_version_number(s).ok())
                .fold(0u64, u64::wrapping_add)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
