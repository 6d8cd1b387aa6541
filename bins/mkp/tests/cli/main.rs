//! Integration tests of `mkp`, running the real binary: standalone mode on temporary
//! directories and the shared corpus, site mode on temporary sites.
// Test helpers may panic on unexpected I/O errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod core;
mod faults;
mod journal;
mod scenarios;
mod site;
mod standalone;
