//! Print the manifest of an MKP and check that every part unpacks.
//!
//! `cargo run -p mkp-format --example inspect -- some-package.mkp`

use mkp_format::{Limits, Mkp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) = std::env::args_os().nth(1) else {
        return Err("usage: inspect FILE.mkp".into());
    };
    let mkp = Mkp::open(&path)?;
    print!("{}", mkp.manifest().to_inspect_text());

    // Unpack into a throw-away staging directory to prove the package is complete.
    let staging = std::env::temp_dir().join(format!("mkp-inspect-{}", std::process::id()));
    let result = mkp.extract_all(&staging, &Limits::default());
    let _ = std::fs::remove_dir_all(&staging);
    for (part, files) in result? {
        println!("{}: {} file(s) unpack cleanly", part.title(), files.len());
    }
    Ok(())
}
