//! `steward audit ...`: reading the log, its checkpoints and proofs, and `audit verify` with
//! its three sources of the log.
//!
//! Invariant: `audit verify` reads exactly one source (`--data`, `--s3` or `--server`); with
//! `--s3` a public key to trust is required, since S3 objects carry none.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Conn, ConnOnly, Output};
use crate::client::DEFAULT_SERVER;

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Audit events, oldest first
    Events(AuditEventsArgs),
    /// The latest signed checkpoint
    Checkpoint(ConnOnly),
    /// The inclusion proof of one event against the latest checkpoint
    Proof(ProofArgs),
    /// A consistency proof between two checkpointed tree sizes
    Consistency(ConsistencyArgs),
    /// Verify the whole log: offline from a data directory (--data) or an AWS deployment's S3
    /// audit objects (--s3), or through the API (--server)
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct AuditEventsArgs {
    /// Only events about this model
    #[arg(long)]
    pub model: Option<String>,
    /// Only events after this sequence number
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct ProofArgs {
    pub seq: u64,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct ConsistencyArgs {
    pub first: u64,
    /// Default: the latest checkpoint's size
    pub second: Option<u64>,
    #[command(flatten)]
    pub conn: Conn,
}

/// The environment variable naming the API when `--server` is not given.
pub const SERVER_ENV: &str = "STEWARD_SERVER";

/// `steward audit verify`: one source of the log (a data directory, an S3 bucket, or the API)
/// and, optionally, the one public key to trust.
///
/// `--data`, `--s3` and `--server` exclude each other. `STEWARD_SERVER` is only the default
/// API: it never conflicts with `--data` or `--s3`, which do not use it.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("key").args(["public_key", "public_key_file"]))]
pub struct VerifyArgs {
    /// Verify offline, straight from this data directory's store
    #[arg(long, value_name = "DIR", conflicts_with_all = ["s3", "server"])]
    pub data: Option<PathBuf>,
    /// Verify an AWS deployment offline from its S3 audit objects alone (BUCKET/PREFIX or
    /// s3://BUCKET/PREFIX), against a pinned key; needs a build with `--features aws`
    #[arg(
        long,
        value_name = "BUCKET/PREFIX",
        conflicts_with = "server",
        requires = "key"
    )]
    pub s3: Option<String>,
    /// Verify through this Steward API, with an inclusion proof per event [default: $STEWARD_SERVER, else http://127.0.0.1:8080]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Trust only this public key for checkpoint signatures, in hex: an Ed25519 key (64 hex
    /// digits) or a P-256 DER SubjectPublicKeyInfo (what KMS GetPublicKey returns)
    #[arg(long, value_name = "HEX")]
    pub public_key: Option<String>,
    /// Trust only the public key in this file: PEM (PUBLIC KEY), DER, or hex
    #[arg(long, value_name = "FILE", conflicts_with = "public_key")]
    pub public_key_file: Option<PathBuf>,
    /// With --s3: the S3 endpoint to use instead of AWS's (an emulator), with path-style
    /// addressing
    #[arg(long, value_name = "URL", requires = "s3")]
    pub endpoint_url: Option<String>,
    /// With --s3: the bucket's region [default: the AWS SDK's, e.g. AWS_REGION]; with --aws:
    /// the region to sign the API's requests for
    #[arg(long, value_name = "REGION", conflicts_with = "data")]
    pub region: Option<String>,
    /// Server mode: sign requests with AWS SigV4 (see `steward --help`)
    #[arg(long, env = "STEWARD_AWS", value_parser = clap::builder::BoolishValueParser::new())]
    pub aws: bool,
    /// Inclusion proofs fetched at once (server mode)
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Output format: a readable table, or JSON
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl VerifyArgs {
    /// Where server mode talks to: `--server`, else `STEWARD_SERVER`, else the default.
    pub fn conn(&self) -> Conn {
        let server = self
            .server
            .clone()
            .or_else(|| {
                std::env::var(SERVER_ENV)
                    .ok()
                    .filter(|s| !s.trim().is_empty())
            })
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        Conn {
            server,
            output: self.output,
            aws: self.aws,
            region: self.region.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn verify_args(args: &[&str]) -> Result<VerifyArgs, clap::Error> {
        let argv = ["steward", "audit", "verify"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Audit(AuditCmd::Verify(a)) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn audit_verify_takes_one_source_of_the_log() {
        use clap::error::ErrorKind::{ArgumentConflict, MissingRequiredArgument};
        let key = ["--public-key", "00"];
        for (a, b) in [
            ("--data", "--s3"),
            ("--data", "--server"),
            ("--s3", "--server"),
        ] {
            let err = verify_args(&[a, "x", b, "y", key[0], key[1]]).unwrap_err();
            assert_eq!(err.kind(), ArgumentConflict, "{a} {b}");
        }
        let a = verify_args(&["--s3", "b/p", "--public-key", "00"]).unwrap();
        assert_eq!(a.s3.as_deref(), Some("b/p"));
        // The S3 objects carry no key to trust: one must be given.
        let err = verify_args(&["--s3", "b/p"]).unwrap_err();
        assert_eq!(err.kind(), MissingRequiredArgument);
        assert!(verify_args(&["--s3", "b", "--public-key-file", "k.pem"]).is_ok());
        assert_eq!(
            verify_args(&["--public-key", "00", "--public-key-file", "k"])
                .unwrap_err()
                .kind(),
            ArgumentConflict
        );
        // S3-only options need --s3.
        assert!(verify_args(&["--endpoint-url", "http://127.0.0.1:1"]).is_err());
        assert!(verify_args(&["--data", "d", "--region", "eu-west-1"]).is_err());
    }
}
