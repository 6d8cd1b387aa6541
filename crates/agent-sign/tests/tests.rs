//! Integration tests of agent-sign (one test binary, see the modules).
// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod keys;
mod metadata;
mod openssl;
mod package;
mod store;
