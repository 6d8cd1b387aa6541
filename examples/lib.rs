//! The examples of the toolkit live beside this file, one program per file:
//!
//! * `tour.rs`: a guided tour of every capability on a sandbox under `target/`
//!   (`cargo run --release --example tour`).
//! * `merge_file.rs`: a drop-in for `git merge-file` built on `site-merge`.
//!
//! This library target is empty; Cargo needs one for the package to exist.
#![warn(missing_docs)]
