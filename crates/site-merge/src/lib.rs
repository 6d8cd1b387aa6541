//! File-level three-way merging for Checkmk site updates.
//!
//! This crate is a placeholder: its capability arrives with a later issue.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::print_stdout, clippy::print_stderr))]
