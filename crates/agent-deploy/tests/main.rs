//! Integration tests of the deployment server and the updater (one test binary).

// Test helpers outside #[test] functions may unwrap too (clippy.toml only covers #[test]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod controller;
mod e2e;
mod load;
mod login;
mod rating;
mod replay;
mod rotation;
mod server;
mod signing_log;
mod verify;
