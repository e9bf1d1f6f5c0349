//! The `steward` command: `serve` (the HTTP API on the embedded backend), `demo` (a whole
//! governed lifecycle against a throwaway server), `audit verify`, a client subcommand for
//! every API operation (bearer token, AWS SigV4 or a `steward login` sign-in), and `login`,
//! `logout` and `whoami`.
//!
//! Invariants: the client subcommands and the demo talk to the server only through
//! [`client::Client`], i.e. the public HTTP API; business rules are never re-implemented here.

pub mod cli;
pub mod client;
pub mod commands;
pub mod demo;
pub mod login;
pub mod principals_file;
pub mod render;
pub mod server;
pub mod verify;
pub mod webhooks;

use std::process::ExitCode;

use cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn init_tracing(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    init_tracing(match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => server::serve(args).await.map(|()| ExitCode::SUCCESS),
            Command::Demo(args) => demo::run(args).await.map(|()| ExitCode::SUCCESS),
            other => commands::run(other).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
