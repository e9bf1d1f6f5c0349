//! `steward check` (report a check result from CI/CD) and `steward checks` (list them).

use clap::Args;
use steward_core::types::Environment;

use super::{environment, Conn};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Model name
    #[arg(value_name = "NAME")]
    pub model: String,
    /// Version number
    pub version: u32,
    /// The check's name, e.g. unit-tests, integration-tests, load-test
    #[arg(long = "name", value_name = "CHECK")]
    pub check: String,
    /// Whether the job passed
    #[arg(long, value_parser = ["passed", "failed"])]
    pub status: String,
    /// The environment the job ran against
    #[arg(long, short = 'e', value_parser = environment())]
    pub environment: Option<Environment>,
    /// A metric the job measured, as NAME=NUMBER (repeatable), e.g. coverage=0.84
    #[arg(long = "metric", value_name = "NAME=NUMBER", value_parser = metric, allow_negative_numbers = true)]
    pub metrics: Vec<(String, f64)>,
    /// Where the job's report lives (needs --evidence-sha256)
    #[arg(long, value_name = "URI", requires = "evidence_sha256")]
    pub evidence_uri: Option<String>,
    /// The SHA-256 of the report at --evidence-uri (needs --evidence-uri)
    #[arg(long, value_name = "HEX", requires = "evidence_uri")]
    pub evidence_sha256: Option<String>,
    /// The job's page (http or https)
    #[arg(long, value_name = "URL")]
    pub details_url: Option<String>,
    /// Makes retries safe: the same key and report return the first result and record nothing
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

/// `NAME=NUMBER`, the number finite.
fn metric(s: &str) -> Result<(String, f64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=NUMBER, e.g. coverage=0.84"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("{s:?} has no metric name before '='"));
    }
    match value.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok((name.to_owned(), x)),
        _ => Err(format!("{value:?} in {s:?} is not a finite number")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use clap::Parser;

    #[test]
    fn a_check_report_parses_metrics_and_needs_both_halves_of_its_evidence() {
        let cli = Cli::try_parse_from([
            "steward",
            "check",
            "credit-risk",
            "1",
            "--name",
            "unit-tests",
            "--status",
            "passed",
            "--metric",
            "coverage=0.84",
            "--metric",
            "delta=-1.5",
        ])
        .unwrap();
        let Command::Check(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.model, "credit-risk");
        assert_eq!(a.check, "unit-tests");
        assert_eq!(
            a.metrics,
            vec![("coverage".to_owned(), 0.84), ("delta".to_owned(), -1.5)]
        );
        let base = ["steward", "check", "m", "1", "--name", "t"];
        for bad in [
            &["--status", "green"][..],
            &["--status", "passed", "--metric", "coverage"],
            &["--status", "passed", "--metric", "coverage=high"],
            &["--status", "passed", "--evidence-uri", "s3://ci/r.xml"],
            &["--status", "passed", "--evidence-sha256", "ab"],
        ] {
            let args: Vec<&str> = base.iter().chain(bad).copied().collect();
            assert!(Cli::try_parse_from(&args).is_err(), "{bad:?}");
        }
    }
}
