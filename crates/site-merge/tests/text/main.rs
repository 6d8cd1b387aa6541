//! Tests of the text engine: git oracle, corpus, named edge cases, properties.
// Tests may unwrap: a failure is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod corpus;
mod edge;
mod fuzz;
mod oracle;
mod props;
mod view;
