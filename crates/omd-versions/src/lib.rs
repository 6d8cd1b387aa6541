//! Checkmk version strings, their order and compatibility rules, and the
//! registries of installed versions and sites.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]
