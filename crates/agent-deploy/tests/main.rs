//! Integration tests of the deployment server (one test binary).

// Test helpers outside #[test] functions may unwrap too (clippy.toml only covers #[test]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bakery_site;
mod support;

mod bakery;

mod load;
mod router_props;
mod server;
mod signing_log;
