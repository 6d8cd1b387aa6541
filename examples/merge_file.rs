//! A drop-in for `git merge-file`, built on the `site-merge` text engine:
//! same arguments, output and exit status as git.
//!
//! ```text
//! cargo run --release --example merge_file -- [-p] [--diff3|--zdiff3] [-L ours -L base -L theirs] \
//!     [--ours|--theirs|--union] [--marker-size N] [--diff-algorithm myers|minimal|histogram] [-q] \
//!     <current-file> <base-file> <other-file>
//! ```
//!
//! The command line is `toolkit_examples::git_merge_file`, documented and
//! tested there; this file only connects it to the process.

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv = std::env::args_os().skip(1).collect();
    let status = toolkit_examples::git_merge_file::run(
        argv,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(status)
}
