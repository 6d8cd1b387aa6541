//! criterion benchmarks of the toolkit, one file per area beside this one.
//!
//! Run them all with `cargo bench -p toolkit-benches`, or one with
//! `cargo bench -p toolkit-benches --bench versions`; `cargo test -p
//! toolkit-benches --benches` runs each benchmark once as a smoke test. CI
//! only compiles them (clippy over all targets) and never gates on timings.
#![warn(missing_docs)]

/// xorshift64*: a tiny deterministic generator, so that every run of a
/// benchmark measures the same input.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (not zero).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
