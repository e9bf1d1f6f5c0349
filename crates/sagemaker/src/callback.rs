//! Pipeline registrations: a SageMaker Pipelines CallbackStep (through SQS) or LambdaStep
//! (direct invoke) hands Steward a registration manifest; Steward registers the version with
//! the pipeline execution as its lineage training job and answers the step.
//!
//! The CallbackStep's SQS message, as SageMaker documents it:
//! `{"token": "<10 characters>", "pipelineExecutionArn": "arn:aws:sagemaker:…:pipeline/<p>/execution/<id>", "arguments": {…}}`.
//! Steward reads two arguments (the step's `inputs`):
//! - `model_name`: the Steward model name;
//! - `manifest`: the registration manifest (DESIGN.md's wire format), inline as a JSON object
//!   or a JSON string, or an `s3://bucket/key` URI of a JSON object.
//!
//! The step's outputs (`OutputParameters`) are `model_name`, `version` and `stage`. A
//! refused registration is answered with `SendPipelineExecutionStepFailure`, whose
//! `FailureReason` (at most 256 characters) names the fields that failed validation first.
//! A LambdaStep invokes the function with `{"model_name", "manifest", "pipeline_execution_arn"}`
//! and gets `{"model_name", "version", "stage"}` back, or a function error with the reason.
//!
//! Invariants:
//! - Idempotent per callback token: the registration's Idempotency-Key and the answer's
//!   `ClientRequestToken` both derive from the token, and the answer is recorded (audited as
//!   `pipeline.step_answered`) before the message is acknowledged. A redelivered message finds
//!   the recorded answer and does nothing; one redelivered before the record was written
//!   replays the same registration and sends the same answer with the same
//!   `ClientRequestToken`, which SageMaker completes at most once.
//! - The pipeline execution ARN becomes `lineage.training_job`; a manifest naming another
//!   training job is refused.
//! - Storage or network trouble is never answered as a step failure: the message is retried.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use steward_aws::diagnostic::{TRANSIENT, VALIDATION};
use steward_aws::handlers::{for_each_message, Failure};
use steward_core::ports::Caller;
use steward_core::records::ModelVersion;
use steward_core::types::{ModelName, PrincipalId};
use steward_core::{GovError, Governance, StoreError};

use crate::sdk_failure;

/// The longest `FailureReason` SageMaker accepts.
pub const MAX_FAILURE_REASON: usize = 256;
/// The largest manifest read from S3.
pub const MAX_MANIFEST_BYTES: i64 = 1 << 20;

/// The SQS message body a CallbackStep sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CallbackMessage {
    pub token: String,
    #[serde(rename = "pipelineExecutionArn")]
    pub pipeline_execution_arn: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// The payload a LambdaStep invokes the function with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LambdaStepInput {
    pub pipeline_execution_arn: String,
    #[serde(flatten)]
    pub arguments: Map<String, Value>,
}

/// The step's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `OutputParameters` as (name, value).
    Success(Vec<(String, String)>),
    /// `FailureReason`.
    Failure(String),
}

/// Where step answers go: `SendPipelineExecutionStepSuccess` / `...Failure`. A seam because
/// moto does not implement these calls (docs/emulators.md); tests put aws-smithy-mocks
/// behind [`SageMakerAnswers`] or record answers with [`RecordedAnswers`].
#[async_trait]
pub trait PipelineAnswers: Send + Sync {
    async fn answer(
        &self,
        callback_token: &str,
        client_request_token: &str,
        answer: &Answer,
    ) -> Result<(), Failure>;
}

/// The real SageMaker API.
#[derive(Debug, Clone)]
pub struct SageMakerAnswers(pub aws_sdk_sagemaker::Client);

#[async_trait]
impl PipelineAnswers for SageMakerAnswers {
    async fn answer(
        &self,
        callback_token: &str,
        client_request_token: &str,
        answer: &Answer,
    ) -> Result<(), Failure> {
        match answer {
            Answer::Success(outputs) => {
                let params = outputs
                    .iter()
                    .map(|(n, v)| {
                        aws_sdk_sagemaker::types::OutputParameter::builder()
                            .name(n)
                            .value(v)
                            .build()
                    })
                    .collect();
                self.0
                    .send_pipeline_execution_step_success()
                    .callback_token(callback_token)
                    .client_request_token(client_request_token)
                    .set_output_parameters(Some(params))
                    .send()
                    .await
                    .map_err(|e| sdk_failure("SendPipelineExecutionStepSuccess", e))?;
            }
            Answer::Failure(reason) => {
                self.0
                    .send_pipeline_execution_step_failure()
                    .callback_token(callback_token)
                    .client_request_token(client_request_token)
                    .failure_reason(reason)
                    .send()
                    .await
                    .map_err(|e| sdk_failure("SendPipelineExecutionStepFailure", e))?;
            }
        }
        Ok(())
    }
}

/// Answers kept in memory, for tests that drive a pipeline callback without SageMaker
/// (e.g. a retraining round trip on the emulators).
#[derive(Debug, Default)]
pub struct RecordedAnswers {
    answers: std::sync::Mutex<Vec<(String, String, Answer)>>,
}

impl RecordedAnswers {
    /// Every answer sent so far: (callback token, client request token, answer).
    pub fn answers(&self) -> Vec<(String, String, Answer)> {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl PipelineAnswers for RecordedAnswers {
    async fn answer(
        &self,
        callback_token: &str,
        client_request_token: &str,
        answer: &Answer,
    ) -> Result<(), Failure> {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((
                callback_token.to_owned(),
                client_request_token.to_owned(),
                answer.clone(),
            ));
        Ok(())
    }
}

/// What the callback handler needs, built once per cold start.
#[derive(Clone)]
pub struct PipelineRegistrar {
    pub gov: Arc<Governance>,
    pub s3: aws_sdk_s3::Client,
    pub answers: Arc<dyn PipelineAnswers>,
    /// The principal pipelines register as (`STEWARD_SAGEMAKER_PRINCIPAL`).
    pub principal: PrincipalId,
    /// `STEWARD_SAGEMAKER_MANIFEST_BUCKET`: the only bucket manifests may be read from.
    pub manifest_bucket: Option<String>,
}

impl std::fmt::Debug for PipelineRegistrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineRegistrar")
            .field("principal", &self.principal)
            .field("manifest_bucket", &self.manifest_bucket)
            .finish_non_exhaustive()
    }
}

/// Why a registration did not happen.
#[derive(Debug)]
enum NotRegistered {
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
            | GovError::Store(StoreError::Conflict(_))
            | GovError::Store(StoreError::IdempotencyKeyTaken)
    )
}

fn hex_sha256(parts: &[&str]) -> String {
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
    async fn register(
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

    /// Handles one CallbackStep message body: registers, answers the step, records the answer.
    /// Returns what happened, for the log. This is also the entry point for tests that
    /// simulate a pipeline callback delivering a manifest.
    pub async fn handle_callback(&self, body: &str) -> Result<String, Failure> {
        let msg: CallbackMessage = serde_json::from_str(body).map_err(|e| {
            Failure::validation(format!(
                "the SQS message is not a SageMaker CallbackStep message: {e}"
            ))
        })?;
        if msg.token.is_empty() || msg.token.len() > 128 {
            return Err(Failure::validation(
                "the CallbackStep message's token is empty or too long",
            ));
        }
        let key = token_key(&msg.token);
        if self
            .gov
            .pipeline_answer(&self.principal, &key)
            .await
            .map_err(Failure::from)?
            .is_some()
        {
            return Ok(format!(
                "callback for {} already answered",
                msg.pipeline_execution_arn
            ));
        }
        let idempotency_key = format!("sagemaker-callback-{key}");
        let (answer, name, version) = match self
            .register(
                &msg.pipeline_execution_arn,
                &msg.arguments,
                &idempotency_key,
            )
            .await
        {
            Ok(v) => (
                Answer::Success(vec![
                    ("model_name".into(), v.name.to_string()),
                    ("version".into(), v.version.to_string()),
                    ("stage".into(), v.stage.to_string()),
                ]),
                Some(v.name),
                Some(v.version),
            ),
            Err(NotRegistered::Refused { reason, name }) => (Answer::Failure(reason), name, None),
            Err(NotRegistered::Retry(f)) => return Err(f),
        };
        self.answers.answer(&msg.token, &key, &answer).await?;
        let record = match &answer {
            Answer::Success(outputs) => json!({
                "pipeline_execution_arn": msg.pipeline_execution_arn,
                "client_request_token": key,
                "outcome": "success",
                "output_parameters": outputs.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
            }),
            Answer::Failure(reason) => json!({
                "pipeline_execution_arn": msg.pipeline_execution_arn,
                "client_request_token": key,
                "outcome": "failure",
                "failure_reason": reason,
            }),
        };
        self.gov
            .record_pipeline_answer(&self.principal, &key, name.as_ref(), version, record)
            .await
            .map_err(Failure::from)?;
        Ok(match answer {
            Answer::Success(_) => format!(
                "registered {} version {} for {}",
                name.map(|n| n.to_string()).unwrap_or_default(),
                version.unwrap_or_default(),
                msg.pipeline_execution_arn
            ),
            Answer::Failure(reason) => format!(
                "refused the registration for {}: {reason}",
                msg.pipeline_execution_arn
            ),
        })
    }

    /// A LambdaStep invocation: registers and returns `{"model_name", "version", "stage"}`.
    /// A refusal is a `Steward.Validation` failure whose message is the reason.
    pub async fn lambda_step(&self, input: LambdaStepInput) -> Result<Value, Failure> {
        let model = input
            .arguments
            .get("model_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let key = format!(
            "sagemaker-lambda-step-{}",
            hex_sha256(&[
                "sagemaker-lambda-step",
                &input.pipeline_execution_arn,
                &model
            ])
        );
        match self
            .register(&input.pipeline_execution_arn, &input.arguments, &key)
            .await
        {
            Ok(v) => Ok(json!({"model_name": v.name, "version": v.version, "stage": v.stage})),
            Err(NotRegistered::Refused { reason, .. }) => Err(Failure::new(VALIDATION, reason)),
            Err(NotRegistered::Retry(f)) => Err(f),
        }
    }
}

/// The `sagemaker-callback` function on an SQS batch.
pub async fn sagemaker_callback(
    event: &SqsEvent,
    registrar: &PipelineRegistrar,
) -> SqsBatchResponse {
    for_each_message(&event.records, |m: &SqsMessage| async move {
        let body = m
            .body
            .as_deref()
            .ok_or_else(|| Failure::validation("the SQS message has no body"))?;
        registrar.handle_callback(body).await
    })
    .await
}

/// What the `sagemaker-callback` function was invoked with.
#[derive(Debug, Clone)]
pub enum Invocation {
    Sqs(SqsEvent),
    LambdaStep(LambdaStepInput),
}

impl Invocation {
    /// An SQS event has `Records`; anything else is a LambdaStep payload.
    pub fn parse(payload: Value) -> Result<Self, Failure> {
        if payload.get("Records").is_some() {
            serde_json::from_value(payload)
                .map(Invocation::Sqs)
                .map_err(|e| Failure::validation(format!("not an SQS event: {e}")))
        } else {
            serde_json::from_value(payload)
                .map(Invocation::LambdaStep)
                .map_err(|e| {
                    Failure::validation(format!(
                        "not a LambdaStep payload {{\"pipeline_execution_arn\", \"model_name\", \"manifest\"}}: {e}"
                    ))
                })
        }
    }
}

/// Runs one invocation of the `sagemaker-callback` function: an SQS batch answers with its
/// batch item failures, a LambdaStep with its outputs.
pub async fn invoke(payload: Value, registrar: &PipelineRegistrar) -> Result<Value, Failure> {
    match Invocation::parse(payload)? {
        Invocation::Sqs(event) => {
            let response = sagemaker_callback(&event, registrar).await;
            serde_json::to_value(response)
                .map_err(|e| Failure::validation(format!("batch response: {e}")))
        }
        Invocation::LambdaStep(input) => registrar.lambda_step(input).await,
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

    #[test]
    fn a_payload_with_records_is_sqs_and_anything_else_a_lambda_step() {
        let sqs = Invocation::parse(json!({"Records": []})).unwrap();
        assert!(matches!(sqs, Invocation::Sqs(_)));
        let step = Invocation::parse(json!({
            "pipeline_execution_arn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/e",
            "model_name": "credit-risk", "manifest": "s3://b/k.json"
        }))
        .unwrap();
        match step {
            Invocation::LambdaStep(i) => {
                assert_eq!(i.arguments["model_name"], "credit-risk");
            }
            other => panic!("{other:?}"),
        }
        assert!(Invocation::parse(json!({"model_name": "x"})).is_err());
    }
}
