//! `steward evidence NAME VERSION --out DIR`: download a version's signed documentation pack;
//! `steward evidence verify PATH --public-key HEX`: verify one offline, with no server.
//!
//! Invariant: `verify` trusts exactly the key it is given (`--public-key` or
//! `--public-key-file`); it never asks a server for one.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Conn;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct EvidenceArgs {
    #[command(subcommand)]
    pub command: Option<EvidenceCmd>,
    /// Model name
    #[arg(required = true)]
    pub name: Option<String>,
    /// Version number
    #[arg(required = true)]
    pub version: Option<u32>,
    /// Unpack the pack into this directory (created; must be empty if it exists)
    /// [default: NAME-vVERSION-evidence, unless --zip is given]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the zip as the server sent it
    #[arg(long, value_name = "FILE")]
    pub zip: Option<PathBuf>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Verify a pack (a directory or a zip) offline: the manifest signature, every file's
    /// SHA-256, every inclusion proof against the signed checkpoint, and the document's facts
    /// against the audit events they cite
    Verify(EvidenceVerifyArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("key").args(["public_key", "public_key_file"]).required(true))]
pub struct EvidenceVerifyArgs {
    /// The pack: a directory `steward evidence --out` wrote, or the zip
    pub path: PathBuf,
    /// The audit key to trust, hex (`GET /v1/audit/key`; Ed25519 or a KMS P-256 DER key)
    #[arg(long, value_name = "HEX")]
    pub public_key: Option<String>,
    /// The audit key to trust from a file (PEM, DER or hex)
    #[arg(long, value_name = "FILE")]
    pub public_key_file: Option<PathBuf>,
    /// Print the verification report as JSON
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::EvidenceCmd;
    use clap::Parser;

    #[test]
    fn evidence_takes_a_name_and_version_or_the_verify_subcommand() {
        let cli =
            Cli::try_parse_from(["steward", "evidence", "credit-risk", "3", "--out", "d"]).unwrap();
        let Command::Evidence(a) = cli.command else {
            panic!("not evidence")
        };
        assert_eq!(
            (a.name.as_deref(), a.version),
            (Some("credit-risk"), Some(3))
        );
        assert!(a.command.is_none());

        let cli = Cli::try_parse_from([
            "steward",
            "evidence",
            "verify",
            "pack.zip",
            "--public-key",
            "ab",
        ])
        .unwrap();
        let Command::Evidence(a) = cli.command else {
            panic!("not evidence")
        };
        let Some(EvidenceCmd::Verify(v)) = a.command else {
            panic!("not verify")
        };
        assert_eq!(v.public_key.as_deref(), Some("ab"));

        assert!(Cli::try_parse_from(["steward", "evidence", "credit-risk"]).is_err());
        assert!(Cli::try_parse_from(["steward", "evidence", "verify", "pack.zip"]).is_err());
    }
}
