//! criterion benchmarks of the toolkit, one file per area beside this one.
//!
//! Run them all with `cargo bench -p toolkit-benches`, or one with
//! `cargo bench -p toolkit-benches --bench versions`. CI only smoke-runs them
//! (`cargo test --benches` runs each benchmark once) and never gates on timings.
#![warn(missing_docs)]
