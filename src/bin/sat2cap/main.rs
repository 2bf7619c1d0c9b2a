//! The `sat2cap` command-line tool: one module per command.
//!
//! Exit codes: 0 success, 1 a runtime failure (I/O, corrupt file, locked database),
//! 2 bad usage or bad input (clap's own code for usage errors).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod compact;
mod import;
mod info;
mod query;
mod verify;

/// An embedded database for Sat2Cap embeddings, with its encoders built in.
#[derive(Parser)]
#[command(name = "sat2cap", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Import(import::ImportArgs),
    Query(query::QueryArgs),
    Info(info::InfoArgs),
    Verify(verify::VerifyArgs),
    Compact(compact::CompactArgs),
}

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), CliError> = match cli.command {
        Command::Import(a) => import::run(a),
        Command::Query(a) => query::run(a),
        Command::Info(a) => info::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Compact(a) => compact::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sat2cap: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
