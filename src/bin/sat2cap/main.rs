//! The `sat2cap` command-line tool: one module per command.
//!
//! Exit codes: 0 success, 1 a runtime failure (I/O, corrupt file, locked database),
//! 2 bad usage or bad input (clap's own code for usage errors).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An embedded database for Sat2Cap embeddings, with its encoders built in.
#[derive(Parser)]
#[command(name = "sat2cap", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

/// A failure a command reports: a one-line message and an exit code.
pub struct CliError {
    /// The message, printed as `sat2cap: <message>`.
    pub message: String,
    /// The process exit code.
    pub code: u8,
}

impl CliError {
    /// A runtime failure (exit code 1).
    pub fn runtime(message: impl std::fmt::Display) -> CliError {
        CliError {
            message: message.to_string(),
            code: 1,
        }
    }

    /// Bad input from the user (exit code 2).
    pub fn input(message: impl std::fmt::Display) -> CliError {
        CliError {
            message: message.to_string(),
            code: 2,
        }
    }
}

// Placeholder until the first command lands: the enum has no variants yet.
#[allow(unreachable_code, unused_variables)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), CliError> = match cli.command {};
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sat2cap: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
