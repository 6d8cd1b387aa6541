//! Signature keys, X.509 certificates and signed agent packages.
//!
//! This crate is a placeholder: its capability arrives with a later issue.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]
