//! `steward serving report` (a serving platform says what an endpoint serves) and
//! `steward serving list` (everything serving, with its outcome against the registry).

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use steward_core::types::Environment;

use super::{environment, rfc3339, Conn};

#[derive(Debug, Subcommand)]
pub enum ServingCmd {
    /// Report what an endpoint serves (operators; what a platform's reporter job sends)
    Report(ServingReportArgs),
    /// Every endpoint reported, with its outcome: governed, unapproved, unregistered or stale
    List(ServingListArgs),
}

#[derive(Debug, Args)]
pub struct ServingReportArgs {
    /// The serving platform: sagemaker, kserve, seldon, bentoml, kubernetes, ...
    #[arg(long)]
    pub platform: String,
    #[arg(long, short = 'e', value_parser = environment())]
    pub environment: Environment,
    /// The endpoint, as the platform names it (e.g. NAMESPACE/INFERENCESERVICE)
    #[arg(long)]
    pub endpoint: String,
    /// The model artifact it serves (e.g. the storage URI)
    #[arg(long, value_name = "URI")]
    pub artifact_uri: String,
    /// The artifact's SHA-256, when the platform knows it (matched before the URI)
    #[arg(long, value_name = "HEX")]
    pub artifact_sha256: Option<String>,
    /// What the platform says it serves (checked against the artifact, never trusted over it)
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, requires = "model")]
    pub version: Option<u32>,
    /// When the platform saw it [default: now]
    #[arg(long, value_parser = rfc3339, value_name = "RFC3339")]
    pub observed_at: Option<DateTime<Utc>>,
    /// The endpoint no longer serves this artifact (closes its finding)
    #[arg(long)]
    pub stopped: bool,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct ServingListArgs {
    /// Only this outcome
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(
        steward_core::serving::Outcome::ALL.iter().map(|o| o.as_str())
    ))]
    pub outcome: Option<String>,
    #[arg(long)]
    pub cursor: Option<String>,
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub conn: Conn,
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::ServingCmd;
    use clap::Parser;

    #[test]
    fn a_serving_report_needs_platform_environment_endpoint_and_artifact() {
        let cli = Cli::try_parse_from([
            "steward",
            "serving",
            "report",
            "--platform",
            "kserve",
            "-e",
            "production",
            "--endpoint",
            "ml/fraud",
            "--artifact-uri",
            "s3://m/model.tar.gz",
        ])
        .unwrap();
        let Command::Serving(ServingCmd::Report(r)) = cli.command else {
            panic!("not serving report")
        };
        assert_eq!(r.endpoint, "ml/fraud");
        assert!(Cli::try_parse_from(["steward", "serving", "report", "--platform", "k"]).is_err());
        assert!(
            Cli::try_parse_from([
                "steward",
                "serving",
                "report",
                "--platform",
                "kserve",
                "-e",
                "production",
                "--endpoint",
                "x",
                "--artifact-uri",
                "u",
                "--version",
                "2",
            ])
            .is_err(),
            "--version needs --model"
        );
    }
}
