//! The examples of the toolkit live beside this file, one program per file:
//!
//! * `tour.rs`: a guided tour of every capability on a sandbox under `target/`
//!   (`cargo run --release --example tour`).
//! * `merge_file.rs`: a drop-in for `git merge-file` built on `site-merge`;
//!   its command line lives in [`git_merge_file`], where its tests can reach it.
//! * `update_site.rs`: updates a sandbox site through the `site-lifecycle`
//!   library with a scripted resolver; its body is [`update_site`].
#![warn(missing_docs)]

pub mod git_merge_file;
#[path = "update_site_lib.rs"]
pub mod update_site;
