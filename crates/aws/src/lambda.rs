//! The cold start every Steward Lambda shares: JSON logs, the typed configuration checked
//! for the settings the function needs, and the backend's clients, built once before the
//! first invocation. A `functions/<name>/src/main.rs` calls [`init`] (or [`config`], then its
//! own checks, then `AwsBackend::connect`) and keeps only its handler.
//!
//! Invariants:
//! - A function missing a setting stops here, before it asks the Runtime API for work, with one
//!   `Steward.Config` failure naming every missing or malformed variable at once
//!   (`Steward.Config: invalid Lambda configuration: STEWARD_TABLE is not set`).
//! - The policy in force is in the audit log before the first invocation ([`record_policy`]),
//!   after the configuration checks, which make no request.
//! - Logs are JSON lines filtered by `RUST_LOG` (default `info`), so CloudWatch Logs Insights
//!   can query their fields.
//! - A handler's [`Failure`] reaches the runtime as a [`Diagnostic`] with the same error type,
//!   so Step Functions `Retry`/`Catch` and alarms match on Steward's vocabulary, not on a Rust
//!   type name.

use lambda_runtime::Diagnostic;
use tracing_subscriber::EnvFilter;

use crate::diagnostic::Failure;
use crate::env::{AwsEnv, ConfigError};
use crate::handlers::backend::AwsBackend;

/// JSON logs to stdout, filtered by `RUST_LOG` (default `info`). A second call keeps the
/// first subscriber.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing::subscriber::set_global_default(json_logs(filter, std::io::stdout));
}

/// The functions' log lines: one JSON object per event, `{"timestamp", "level", "fields":
/// {"message", ...}, "target"}`, written to `writer`. The template's metric filters match
/// these keys (`$.level`, `$.fields.message`); the tests capture lines with it to check them.
pub fn json_logs<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// Logging and the process environment's configuration, with every one of `required` set.
/// For functions with checks of their own between configuration and connection.
pub fn config(required: &[&str]) -> Result<AwsEnv, Failure> {
    init_tracing();
    checked(AwsEnv::from_env(), required)
}

/// [`config`], then the backend's clients, then [`record_policy`]: everything a function
/// builds at cold start.
pub async fn init(required: &[&str]) -> Result<(AwsEnv, AwsBackend), Failure> {
    let env = config(required)?;
    let backend = AwsBackend::connect(&env).await?;
    record_policy(&backend).await?;
    Ok((env, backend))
}

/// Records the policy in force before the first invocation acts under it (see
/// `AwsBackend::record_policy`). A main that connects itself calls it after its own checks,
/// so a configuration error is reported before any request is made.
pub async fn record_policy(backend: &AwsBackend) -> Result<(), Failure> {
    let recorded = backend.record_policy().await?;
    tracing::info!(recorded, "policy in force checked");
    Ok(())
}

fn checked(env: Result<AwsEnv, ConfigError>, required: &[&str]) -> Result<AwsEnv, Failure> {
    let env = env?;
    env.require(required)?;
    Ok(env)
}

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Self {
        Diagnostic {
            error_type: f.error_type.into(),
            error_message: f.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_setting_is_a_config_failure_that_names_it() {
        let env = AwsEnv::from_lookup(|_| None);
        let err = checked(env, &["STEWARD_TABLE", "STEWARD_EVENT_BUS"]).unwrap_err();
        assert_eq!(
            format!("{err:?}"),
            "Steward.Config: invalid Lambda configuration: STEWARD_TABLE is not set; \
             STEWARD_EVENT_BUS is not set"
        );
    }

    #[test]
    fn a_malformed_setting_fails_before_the_required_ones_are_checked() {
        let env =
            AwsEnv::from_lookup(|k| (k == "STEWARD_ROLE_CACHE_SECONDS").then(|| "soon".to_owned()));
        let err = checked(env, &["STEWARD_TABLE"]).unwrap_err();
        assert_eq!(err.error_type, crate::diagnostic::CONFIG);
        assert!(err.message.contains("STEWARD_ROLE_CACHE_SECONDS"), "{err}");
        assert!(!err.message.contains("STEWARD_TABLE"), "{err}");
    }

    #[test]
    fn a_complete_configuration_passes() {
        let env = AwsEnv::from_lookup(|k| (k == "STEWARD_TABLE").then(|| "steward".to_owned()));
        let env = checked(env, &["STEWARD_TABLE"]).unwrap();
        assert_eq!(env.table.as_deref(), Some("steward"));
    }

    #[test]
    fn a_failure_reaches_the_runtime_with_its_steward_error_type() {
        let d = Diagnostic::from(Failure::validation("no body"));
        assert_eq!(d.error_type, crate::diagnostic::VALIDATION);
        assert_eq!(d.error_message, "no body");
    }
}
