//! Updates a sandbox site through the `site-lifecycle` library, with a
//! scripted resolver instead of the terminal menu:
//!
//! ```text
//! cargo run --example update_site
//! ```
//!
//! The sandbox is `target/update_site/` (recreated on every run); the body is
//! `toolkit_examples::update_site`, which the examples' tests run too.

use std::path::Path;

use anyhow::Result;

fn main() -> Result<()> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest
        .parent()
        .unwrap_or(manifest)
        .join("target")
        .join("update_site");
    let (outcome, resolver, printer) = toolkit_examples::update_site::run(&dir)?;
    println!(
        "Asked about {:?}; {} progress events; committed: {}; result: {}, exit code {}.",
        resolver.asked,
        printer.progress,
        printer.committed,
        outcome.result,
        outcome.exit_code()
    );
    Ok(())
}
