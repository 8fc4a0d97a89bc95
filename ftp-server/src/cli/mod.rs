//! The command line: `ftp-server [serve]`, `ftp-server check-config` and
//! `ftp-server user ...`.
//!
//! Module map: [`serve`] holds the options of `serve` and `check-config`
//! (and what they resolve to with the configuration file), the server's
//! start-up (first user, first certificate); [`check`] the configuration
//! check and what `serve` checks before it creates anything;
//! [`user`] manages the users file.

mod check;
mod serve;
mod user;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use self::check::check_config;
use self::serve::{ServeArgs, serve};
use self::user::{UserAction, user};

/// An authenticated file-transfer server: TLS 1.3, SCRAM-SHA-256-PLUS login, one sandboxed home per user.
#[derive(Debug, Parser)]
#[command(name = "ftp-server", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (what happens with no subcommand).
    Serve(ServeArgs),
    /// Check the configuration, the users file and the TLS certificate, then exit (0 when valid).
    CheckConfig(ServeArgs),
    /// Manage the users file.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::CheckConfig(args)) => check_config(&args),
        Some(Command::User { action }) => user(action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
