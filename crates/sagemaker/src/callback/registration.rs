//! From a pipeline step's arguments to a registration: the manifest (inline, a JSON string or
//! an S3 object), the pipeline execution as the lineage training job, the configured principal
//! as the caller; and a refusal as the `FailureReason` SageMaker shows.
//!
//! Invariant: only a refusal that will be refused again is answered; storage trouble and lost
//! races come back as [`NotRegistered::Retry`], so the message is delivered again.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use steward_aws::diagnostic::TRANSIENT;
use steward_aws::handlers::Failure;
use steward_core::ports::Caller;
use steward_core::records::ModelVersion;
use steward_core::types::ModelName;
use steward_core::{GovError, StoreError};

use super::{PipelineRegistrar, MAX_FAILURE_REASON, MAX_MANIFEST_BYTES};

/// Why a registration did not happen.
#[derive(Debug)]
pub(super) enum NotRegistered {
    /// For good: the step is answered with this reason.
    Refused {
        reason: String,
        name: Option<ModelName>,
    },
    /// May pass on a retry: the message is delivered again.
    Retry(Failure),
}

fn refused(field: &str, message: impl std::fmt::Display) -> NotRegistered {
    NotRegistered::Refused {
        reason: truncate(&format!("invalid fields: {field} ({field}: {message})")),
        name: None,
    }
}

/// Cuts `s` to [`MAX_FAILURE_REASON`] bytes on a character boundary, marking the cut.
pub fn truncate(s: &str) -> String {
    if s.len() <= MAX_FAILURE_REASON {
        return s.to_owned();
    }
    let mut end = MAX_FAILURE_REASON - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The `FailureReason` for a refused registration: the fields at fault first (so a cut
/// never hides which ones), then what is wrong with each.
pub fn failure_reason(e: &GovError) -> String {
    let text = match e {
        GovError::Validation(errors) => {
            let fields: Vec<&str> = errors.iter().map(|f| f.field.as_str()).collect();
            let details: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!(
                "invalid fields: {} ({})",
                fields.join(", "),
                details.join("; ")
            )
        }
        other => other.to_string(),
    };
    truncate(&text)
}

fn is_retryable(e: &GovError) -> bool {
    matches!(
        e,
        GovError::Store(StoreError::Backend(_))
            | GovError::Contended(_)
            | GovError::Store(StoreError::Conflict(_))
            | GovError::Store(StoreError::IdempotencyKeyTaken)
    )
}

pub(super) fn hex_sha256(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// The `ClientRequestToken` and registration Idempotency-Key of a callback token: 64 hex
/// digits (SageMaker accepts 32-128 characters).
pub fn token_key(callback_token: &str) -> String {
    hex_sha256(&["sagemaker-callback", callback_token])
}

impl PipelineRegistrar {
    /// Registers the manifest `arguments` carry, as the configured principal, with
    /// `execution_arn` as the lineage training job.
    pub(super) async fn register(
        &self,
        execution_arn: &str,
        arguments: &Map<String, Value>,
        idempotency_key: &str,
    ) -> Result<ModelVersion, NotRegistered> {
        let name = match arguments.get("model_name") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                return Err(refused(
                    "arguments.model_name",
                    "must be the Steward model name (a string)",
                ))
            }
        };
        let parsed_name = ModelName::parse(&name).ok();
        let mut body = self.manifest(arguments.get("manifest")).await?;
        if !execution_arn.starts_with("arn:") {
            return Err(refused(
                "pipelineExecutionArn",
                "must be a pipeline execution ARN",
            ));
        }
        if let Some(Value::Object(lineage)) = body.get_mut("lineage") {
            match lineage.get("training_job") {
                None | Some(Value::Null) => {
                    lineage.insert("training_job".into(), json!(execution_arn));
                }
                Some(Value::String(s)) if s == execution_arn => {}
                Some(_) => {
                    return Err(refused(
                        "lineage.training_job",
                        "must be absent or this pipeline execution's ARN",
                    ))
                }
            }
        }
        let roles = match self.gov.registry().principal(&self.principal).await {
            Ok(p) => p.map(|p| p.roles).unwrap_or_default(),
            Err(e) => return Err(NotRegistered::Retry(e.into())),
        };
        let caller = Caller {
            id: self.principal.clone(),
            roles,
            auth: steward_core::types::AuthMethod::System,
        };
        match self
            .gov
            .register(&caller, &name, body, Some(idempotency_key))
            .await
        {
            Ok((v, _replayed)) => Ok(v),
            Err(e) if is_retryable(&e) => Err(NotRegistered::Retry(e.into())),
            Err(e) => Err(NotRegistered::Refused {
                reason: failure_reason(&e),
                name: parsed_name,
            }),
        }
    }

    /// The manifest argument as a JSON object: inline, a JSON string, or an S3 URI.
    async fn manifest(&self, arg: Option<&Value>) -> Result<Value, NotRegistered> {
        const WHAT: &str = "must be the manifest as a JSON object or an s3:// URI";
        let text = match arg {
            Some(v @ Value::Object(_)) => return Ok(v.clone()),
            Some(Value::String(s)) => s.trim(),
            _ => return Err(refused("arguments.manifest", WHAT)),
        };
        if let Some(rest) = text.strip_prefix("s3://") {
            return self.manifest_from_s3(text, rest).await;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(refused("arguments.manifest", WHAT)),
        }
    }

    async fn manifest_from_s3(&self, uri: &str, rest: &str) -> Result<Value, NotRegistered> {
        let Some((bucket, key)) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        else {
            return Err(refused(
                "arguments.manifest",
                format!("{uri} is not s3://bucket/key"),
            ));
        };
        if let Some(allowed) = &self.manifest_bucket {
            if bucket != allowed {
                return Err(refused(
                    "arguments.manifest",
                    format!("manifests are read from s3://{allowed}/ only"),
                ));
            }
        }
        let out = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(o) => o,
            Err(e) => {
                let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key());
                return Err(if missing {
                    refused("arguments.manifest", format!("there is no object {uri}"))
                } else {
                    NotRegistered::Retry(Failure::new(
                        TRANSIENT,
                        format!(
                            "reading the manifest {uri} failed: {}",
                            aws_sdk_s3::error::DisplayErrorContext(&e)
                        ),
                    ))
                });
            }
        };
        if out.content_length().unwrap_or(0) > MAX_MANIFEST_BYTES {
            return Err(refused(
                "arguments.manifest",
                format!("{uri} is larger than {MAX_MANIFEST_BYTES} bytes"),
            ));
        }
        let bytes = out.body.collect().await.map_err(|e| {
            NotRegistered::Retry(Failure::new(
                TRANSIENT,
                format!("reading the manifest {uri} failed: {e}"),
            ))
        })?;
        match serde_json::from_slice::<Value>(&bytes.into_bytes()) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(refused(
                "arguments.manifest",
                format!("{uri} is not a JSON object"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_core::FieldError;

    #[test]
    fn failure_reasons_name_every_field_first_and_fit_in_256_characters() {
        let errors: Vec<FieldError> = (0..20)
            .map(|i| FieldError::new(format!("card.field{i}"), "must not be empty — really"))
            .collect();
        let reason = failure_reason(&GovError::Validation(errors));
        assert!(reason.chars().count() <= MAX_FAILURE_REASON && reason.len() <= MAX_FAILURE_REASON);
        assert!(
            reason.starts_with("invalid fields: card.field0, card.field1"),
            "{reason}"
        );
        assert!(reason.ends_with('…'));
    }

    #[test]
    fn token_keys_are_stable_and_within_sagemaker_limits() {
        let a = token_key("a1B2c3D4e5");
        assert_eq!(a, token_key("a1B2c3D4e5"));
        assert_ne!(a, token_key("a1B2c3D4e6"));
        assert!((32..=128).contains(&a.len()));
    }
}
