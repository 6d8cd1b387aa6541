//! Integration tests of the updater, against our deployment server (one test binary).

// Test helpers outside #[test] functions may unwrap too (clippy.toml only covers #[test]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../agent-deploy/tests/support.rs"]
mod server_support;
mod support;

mod compat;
mod controller;
mod e2e;
mod login;
mod rating;
mod replay;
mod rotation;
mod verify;
