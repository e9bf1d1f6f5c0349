//! The `steward` binary; see the library for what each subcommand does.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    steward::run(steward::cli::Cli::parse())
}
