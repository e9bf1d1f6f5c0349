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

//!
//! Layout: [`answers`] sends (or records) the step's answer; `registration` turns a step's
//! arguments into a registration and a refusal into its `FailureReason`; this module reads
//! the messages and ties the two together.

mod answers;
mod registration;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use steward_aws::diagnostic::VALIDATION;
use steward_aws::handlers::{for_each_message, Failure};
use steward_core::types::PrincipalId;
use steward_core::Governance;

pub use answers::{PipelineAnswers, RecordedAnswers, SageMakerAnswers};
pub use registration::{failure_reason, token_key, truncate};
use registration::{hex_sha256, NotRegistered};

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

impl PipelineRegistrar {
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
                version.map_or(0, |v| v.get()),
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
