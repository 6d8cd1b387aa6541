//! `agent-sign`: the command-line face of the `agent-sign` crate.
//!
//! Exit codes: 0 success, 1 negative verification result, 2 error.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

mod cli;
mod commands;

/// The error and its causes, joined by `: `, each cause once: a cause whose text
/// the message already ends with (a library error that prints its source) is
/// not repeated.
fn message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let json = cli.json();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            let text = message(&err);
            let (code, number) = commands::exit_code_for(&err);
            if json {
                let doc = serde_json::json!({"schema": 1, "error": text, "exit_code": number});
                // A closed stdout must not turn the error into a panic.
                let _ = writeln!(std::io::stdout(), "{doc:#}");
            }
            eprintln!("agent-sign: {text}");
            code
        }
    }
}
