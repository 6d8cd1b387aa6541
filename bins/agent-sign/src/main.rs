//! `agent-sign`: the command-line face of the `agent-sign` crate.
//!
//! Exit codes: 0 success, 1 negative verification result, 2 error.

use std::process::ExitCode;

use clap::Parser as _;

mod cli;
mod commands;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("agent-sign: {err:#}");
            commands::exit_code_for(&err)
        }
    }
}
