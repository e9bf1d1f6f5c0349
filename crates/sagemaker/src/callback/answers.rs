//! The step's answer to SageMaker: `SendPipelineExecutionStepSuccess` / `...Failure`, or, where
//! no SageMaker answers (tests, emulators), a record of what would have been sent.
//!
//! Invariant: an answer carries the `ClientRequestToken` the caller derived from the callback
//! token, so a repeated answer is one SageMaker completes at most once.

use async_trait::async_trait;
use steward_aws::handlers::Failure;

use super::Answer;
use crate::sdk_failure;

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
