//! Steward's SageMaker adapter: the only crate that talks to the SageMaker API.
//!
//! | function | handler | input |
//! |---|---|---|
//! | `sagemaker-callback` | [`callback::sagemaker_callback`] (SQS) and [`callback::lambda_step`] (direct invoke) | SageMaker Pipelines CallbackStep messages; LambdaStep payloads |
//! | `sagemaker-sync` | [`sync::sagemaker_sync`] | SQS, fed by "SageMaker Model Package State Change" events and by `RetrainingRequested` ([`retraining`]: starts the card's retraining pipeline) |
//! | `sagemaker-discovery` | [`discovery::discover`] | a schedule, and CloudTrail's `CreateEndpoint`/`UpdateEndpoint`/`DeleteEndpoint`/`CreateEndpointConfig` events: every endpoint's models reported to the serving inventory |
//!
//! Invariants:
//! - Handlers decide nothing: registration goes through `Governance::register`, findings about
//!   model packages through `Governance::model_package_changed` (`steward_core::integrations`).
//! - Identities never come from a message. A pipeline registers as the principal configured in
//!   `STEWARD_SAGEMAKER_PRINCIPAL` (typically the pipeline's execution role ARN), with the roles
//!   the registry holds for it: an admin grants it `developer` through `/v1/principals` and can
//!   revoke it the same way. Findings about packages are recorded as `system:sagemaker-sync`.
//! - Every SDK client comes from `steward_aws::sdk_config` (through `AwsBackend`), so SageMaker
//!   calls carry the same timeouts, retries and emulator endpoint as every other client.
//! - Failures are `steward_aws::handlers::Failure`s: transient ones are reported as SQS batch
//!   item failures, the rest are logged and dropped (or, for a callback, answered as a step
//!   failure — the pipeline must never wait for an answer that will not come).

pub mod callback;
pub mod discovery;
pub mod retraining;
pub mod sync;

pub use aws_sdk_sagemaker;
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::Failure;
use steward_core::types::PrincipalId;

/// The SageMaker client of a function, from the backend's shared SDK configuration.
pub fn client(backend: &AwsBackend) -> aws_sdk_sagemaker::Client {
    aws_sdk_sagemaker::Client::new(&backend.sdk)
}

/// `STEWARD_SAGEMAKER_PRINCIPAL`: the principal pipelines register as (callback function).
pub const PRINCIPAL_VAR: &str = "STEWARD_SAGEMAKER_PRINCIPAL";
/// `STEWARD_SAGEMAKER_MANIFEST_BUCKET`: when set, manifests given as S3 URIs must be in it
/// (the callback function's IAM policy grants `s3:GetObject` on that bucket only).
pub const MANIFEST_BUCKET_VAR: &str = "STEWARD_SAGEMAKER_MANIFEST_BUCKET";
/// `STEWARD_SAGEMAKER_REVERT_APPROVALS`: `true` sets packages approved in SageMaker without a
/// Steward production approval back to `PendingManualApproval` (sync function; default `false`).
pub const REVERT_VAR: &str = "STEWARD_SAGEMAKER_REVERT_APPROVALS";

/// The principal pipelines register as, from [`PRINCIPAL_VAR`] (`get` reads the environment;
/// tests pass a map). Missing or not a principal id is a configuration failure naming it.
pub fn pipeline_principal(get: impl Fn(&str) -> Option<String>) -> Result<PrincipalId, Failure> {
    let principal = set(&get, PRINCIPAL_VAR)
        .ok_or_else(|| Failure::config(format!("{PRINCIPAL_VAR} is not set")))?;
    PrincipalId::parse(principal.trim())
        .map_err(|e| Failure::config(format!("{PRINCIPAL_VAR}: {e}")))
}

/// The only bucket manifests may be read from, from [`MANIFEST_BUCKET_VAR`]; `None`: any.
pub fn manifest_bucket(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    set(&get, MANIFEST_BUCKET_VAR)
}

// A blank variable counts as unset, as in `steward_aws::env`.
fn set(get: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name).filter(|v| !v.trim().is_empty())
}

/// Reads a boolean setting: `true`/`false` (any case), `1`/`0`; absent is `false`.
pub fn flag(value: Option<&str>, name: &str) -> Result<bool, Failure> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(Failure::config(format!(
            "{name}={other:?} is not true or false"
        ))),
    }
}

/// A failure of a SageMaker call: a request SageMaker refused for good (validation, unknown
/// resource, conflict) fails again on every retry; anything else may pass later.
pub(crate) fn sdk_failure<E, R>(
    operation: &str,
    err: aws_sdk_sagemaker::error::SdkError<E, R>,
) -> Failure
where
    E: aws_sdk_sagemaker::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err
        .as_service_error()
        .and_then(|e| e.code())
        .unwrap_or_default()
        .to_owned();
    let message = format!(
        "SageMaker {operation} failed: {}",
        aws_sdk_sagemaker::error::DisplayErrorContext(&err)
    );
    match code.as_str() {
        "ValidationException" | "ResourceNotFound" | "ConflictException" => {
            Failure::validation(message)
        }
        _ => Failure::new(steward_aws::diagnostic::TRANSIENT, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_accept_true_and_false_and_name_anything_else() {
        assert!(!flag(None, REVERT_VAR).unwrap());
        assert!(flag(Some("TRUE"), REVERT_VAR).unwrap());
        assert!(!flag(Some("false"), REVERT_VAR).unwrap());
        let err = flag(Some("yes please"), REVERT_VAR).unwrap_err();
        assert!(err.message.contains(REVERT_VAR), "{err}");
    }

    #[test]
    fn the_pipeline_principal_must_be_set_and_a_principal_id() {
        let err = pipeline_principal(|_| Some("  ".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Steward.Config: STEWARD_SAGEMAKER_PRINCIPAL is not set"
        );
        let role = "arn:aws:iam::123456789012:role/pipeline";
        let p = pipeline_principal(|k| (k == PRINCIPAL_VAR).then(|| format!(" {role} "))).unwrap();
        assert_eq!(p.as_ref(), role);
        assert_eq!(manifest_bucket(|_| Some(String::new())), None);
        assert_eq!(
            manifest_bucket(|k| (k == MANIFEST_BUCKET_VAR).then(|| "manifests".into())),
            Some("manifests".to_owned())
        );
    }
}
