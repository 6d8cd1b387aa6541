//! The MKP extension-package format and the site's package store.
//!
//! This crate is a placeholder: its capability arrives with a later issue.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]
