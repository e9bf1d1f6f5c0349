//! The integrations file on AWS: the same TOML as `steward serve --integrations FILE`, kept in
//! the Parameter Store parameter `STEWARD_INTEGRATIONS_PARAMETER` (a `String` or
//! `SecureString`; the SAM template's `IntegrationsParameter`), read by the `api` function
//! (ServiceNow gating production, the Jira and GitHub endpoints) and the `webhooks` function
//! (Slack, Jira and ServiceNow deliveries) at cold start.
//!
//! Invariants:
//! - Secrets are `{ ssm = "NAME" }` references to `SecureString` parameters under the file's
//!   own path (`<parameter>/...`), the only ones the functions' roles may read and decrypt;
//!   a reference elsewhere, or an `env`/`file` one (a Lambda's environment is not a secret
//!   store, and it has no files of the deployment's), fails the cold start naming its key.
//! - A file that does not parse, or names a secret that cannot be read, fails the cold start
//!   (`Steward.Config`; SSM throttled or unreachable is `Steward.Transient`, and Lambda runs
//!   the init again): a function never runs with some integrations silently missing.
//! - Values are never logged: the log names the parameter and the integrations loaded.

use std::sync::Arc;

use aws_config::SdkConfig;
use steward_integrations::config::{Secret, SecretRef};
use steward_integrations::{Integrations, IntegrationsConfig};

use crate::diagnostic::Failure;
use crate::ssm;

/// The environment variable naming the file's parameter.
pub const PARAMETER_VAR: &str = "STEWARD_INTEGRATIONS_PARAMETER";

/// The integrations the file in `parameter` configures, secrets read from SSM. Requests:
/// one `GetParameter` for the file and one per secret.
pub async fn load(sdk: &SdkConfig, parameter: &str) -> Result<Arc<Integrations>, Failure> {
    let text = ssm::parameter(sdk, parameter).await?;
    let mut config = parse(parameter, &text)?;
    let prefix = format!("{}/", parameter.trim_end_matches('/'));
    for (field, r) in config.secret_refs_mut() {
        let name = match &*r {
            SecretRef::Ssm(name) if name.starts_with(&prefix) => name.clone(),
            SecretRef::Ssm(name) => {
                return Err(Failure::config(format!(
                    "{parameter}: {field}: the parameter {name} is not under {prefix}, the \
                     only path Steward's functions may read secrets from"
                )))
            }
            SecretRef::Env(_) | SecretRef::File(_) => {
                return Err(Failure::config(format!(
                    "{parameter}: {field}: on AWS a secret is a SecureString parameter under \
                     {prefix}, referenced as {{ ssm = \"{prefix}NAME\" }}"
                )))
            }
            SecretRef::Fetched(_) => continue,
        };
        let value = ssm::secure_parameter(sdk, &name).await.map_err(|e| {
            let f = Failure::from(e);
            Failure::new(f.error_type, format!("{parameter}: {field}: {}", f.message))
        })?;
        *r = SecretRef::Fetched(Secret::literal(&value));
    }
    let names: Vec<String> = config
        .names()
        .iter()
        .map(|(k, n)| format!("{k}.{n}"))
        .collect();
    let integrations =
        Integrations::build(&config).map_err(|e| Failure::config(format!("{parameter}: {e}")))?;
    tracing::info!(%parameter, integrations = ?names, "integrations loaded");
    Ok(integrations)
}

/// The file's text parsed; errors name the parameter and the key.
pub fn parse(parameter: &str, text: &str) -> Result<IntegrationsConfig, Failure> {
    IntegrationsConfig::from_toml(text).map_err(|e| Failure::config(format!("{parameter}: {e}")))
}
