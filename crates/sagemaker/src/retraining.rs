//! Retraining pipelines: a `RetrainingRequested` governance event whose detail names the
//! card's `retraining_pipeline` (`card.operational.monitoring.retraining_pipeline`) starts one
//! execution of that SageMaker pipeline.
//!
//! Invariants:
//! - One execution per incident: a start is recorded in the audit log with the incident as its
//!   idempotency key (`Governance::record_retraining_started`), and an incident already
//!   recorded is not started again. Between the start and the record, the `ClientRequestToken`
//!   derived from the incident id makes SageMaker answer a repeated start with the first
//!   execution (moto ignores that token; the record is what the tests exercise).
//! - No pipeline parameters are sent: SageMaker refuses parameters a pipeline does not
//!   declare. The execution's display name and description name the model, version,
//!   incident and metric.
//! - Nothing here approves anything: the version the pipeline trains comes back through
//!   registration (the pipeline's CallbackStep → `sagemaker-callback`) and then needs every
//!   review of its tier before it can be deployed.
//! - An event without a pipeline is acknowledged and ignored (the card names none).

use serde_json::Value;
use sha2::Digest;
use steward_aws::handlers::Failure;
use steward_core::ids::VersionNumber;
use steward_core::Governance;

/// The detail-type this module consumes.
pub const RETRAINING_REQUESTED: &str = "RetrainingRequested";

/// What one `RetrainingRequested` event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrainingOutcome {
    /// `StartPipelineExecution` accepted (or answered a repeat with the same execution), and
    /// recorded.
    Started {
        pipeline: String,
        execution_arn: String,
    },
    /// The incident's retraining was already started and recorded: nothing sent.
    AlreadyStarted { execution_arn: String },
    /// The card names no retraining pipeline: nothing to start.
    NoPipeline,
}

/// The fields of a `RetrainingRequested` detail this module reads.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct RetrainingRequest {
    pub name: String,
    pub version: VersionNumber,
    pub incident_id: String,
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    #[serde(default)]
    pub retraining_pipeline: Option<String>,
}

impl RetrainingRequest {
    pub fn parse(detail: &Value) -> Result<Self, Failure> {
        serde_json::from_value(detail.clone())
            .map_err(|e| Failure::validation(format!("a RetrainingRequested detail without {e}")))
    }

    /// 64 hex digits of SHA-256 over the incident id: SageMaker wants 32–128 characters.
    pub fn client_request_token(&self) -> String {
        hex::encode(sha2::Sha256::digest(self.incident_id.as_bytes()))
    }

    /// `retrain-<name>-v<version>`, cut to SageMaker's 82 characters.
    pub fn display_name(&self) -> String {
        let mut s = format!("retrain-{}-v{}", self.name, self.version);
        s.truncate(82);
        s.trim_end_matches('-').to_owned()
    }

    pub fn description(&self) -> String {
        format!(
            "Steward incident {}: {} version {} drifted, {} = {} over the card's maximum {}",
            self.incident_id, self.name, self.version, self.metric, self.value, self.threshold
        )
    }
}

/// Starts the retraining pipeline a `RetrainingRequested` detail names, once per incident,
/// and records the start.
pub async fn start_retraining(
    gov: &Governance,
    sagemaker: &aws_sdk_sagemaker::Client,
    detail: &Value,
) -> Result<RetrainingOutcome, Failure> {
    let request = RetrainingRequest::parse(detail)?;
    let Some(pipeline) = request
        .retraining_pipeline
        .clone()
        .filter(|p| !p.is_empty())
    else {
        return Ok(RetrainingOutcome::NoPipeline);
    };
    if let Some(done) = gov.retraining_started(&request.incident_id).await? {
        return Ok(RetrainingOutcome::AlreadyStarted {
            execution_arn: done["execution_arn"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    let out = sagemaker
        .start_pipeline_execution()
        .pipeline_name(&pipeline)
        .client_request_token(request.client_request_token())
        .pipeline_execution_display_name(request.display_name())
        .pipeline_execution_description(request.description())
        .send()
        .await
        .map_err(|e| crate::sdk_failure("StartPipelineExecution", e))?;
    let execution_arn = out.pipeline_execution_arn().unwrap_or_default().to_owned();
    gov.record_retraining_started(
        &request.name,
        request.version,
        &request.incident_id,
        &pipeline,
        &execution_arn,
    )
    .await?;
    tracing::info!(
        incident_id = %request.incident_id,
        model = %request.name,
        version = request.version.get(),
        %pipeline,
        %execution_arn,
        "retraining pipeline started"
    );
    Ok(RetrainingOutcome::Started {
        pipeline,
        execution_arn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> RetrainingRequest {
        RetrainingRequest::parse(&json!({
            "schema_version": "1", "name": "credit-risk", "version": 3, "incident_id": "inc-5c7e9a1c3e5a7c9e",
            "metric": "psi", "value": 0.31, "threshold": 0.2, "training_job": null,
            "retraining_pipeline": "credit-risk-train", "audit_seq": 53
        }))
        .unwrap()
    }

    #[test]
    fn the_request_token_is_stable_per_incident_and_within_sagemakers_length() {
        let a = request().client_request_token();
        assert_eq!(a, request().client_request_token());
        assert!((32..=128).contains(&a.len()));
        let mut other = request();
        other.incident_id = "inc-other".into();
        assert_ne!(other.client_request_token(), a);
    }

    #[test]
    fn the_display_name_fits_sagemakers_pattern() {
        assert_eq!(request().display_name(), "retrain-credit-risk-v3");
        let mut long = request();
        long.name = "m".repeat(63);
        assert!(long.display_name().len() <= 82);
        assert!(long
            .display_name()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn a_detail_without_the_incident_is_a_validation_failure() {
        let e = RetrainingRequest::parse(&json!({"name": "m", "version": 1})).unwrap_err();
        assert_eq!(e.error_type, steward_aws::diagnostic::VALIDATION);
    }
}
