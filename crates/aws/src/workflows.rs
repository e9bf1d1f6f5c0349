//! The [`Workflows`] port on Step Functions: one approval execution per promotion, answered
//! through the task tokens the execution hands out, one per review.
//!
//! Invariants:
//! - The execution of a promotion is named after the promotion id ([`execution_name`]), so
//!   starting it again (a retried request, a redelivered event) never starts a second one:
//!   `ExecutionAlreadyExists` is success, and the execution ARN is derived from the id alone.
//! - The execution's input is the review list core computed, with each review's timeout in
//!   seconds ([`approval_input`]); the state machine carries no policy.
//! - Task tokens never leave the backend: they are looked up by review id through
//!   [`TaskTokens`] (written by the review-inbox function) and sent only to Step Functions.
//! - A decision recorded before its token arrived is not an error: the inbox, on storing a
//!   token, answers the task itself when the review is already decided ([`TaskAnswer`]). A
//!   token Step Functions no longer accepts (task finished, timed out, execution stopped) is
//!   reported, not an error: the registry, not the workflow, is the record of the decision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureError;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::operation::stop_execution::StopExecutionError;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::{json, Value};
use sha2::Digest;
use steward_core::error::StoreError;
use steward_core::ports::Workflows;
use steward_core::records::{ModelVersion, PendingRetirement, Promotion, Review};
use steward_core::types::Decision;
use thiserror::Error;

/// Step Functions' limit on execution names.
pub const MAX_EXECUTION_NAME: usize = 80;
/// The error a rejected review fails its task with (what the approval ASL catches).
pub const REVIEW_REJECTED: &str = "Steward.ReviewRejected";
/// The error an execution stopped by Steward ends with.
pub const STOPPED: &str = "Steward.Stopped";
/// The error a confirmer's refusal fails the retirement's confirmation task with.
pub const RETIREMENT_REFUSED: &str = "Steward.RetirementRefused";
/// Step Functions' limit on `SendTaskFailure` causes and `StopExecution` causes.
const MAX_CAUSE: usize = 32_768;

/// Where task tokens are kept: one per review, stored by the review-inbox function when the
/// approval execution asks for that review.
#[async_trait]
pub trait TaskTokens: Send + Sync {
    /// The token of the task waiting on `review_id`, if it has arrived.
    async fn task_token(&self, review_id: &str) -> Result<Option<String>, StoreError>;
}

/// Task tokens in memory (tests, and a single-process setup).
#[derive(Debug, Default)]
pub struct MemoryTaskTokens {
    tokens: Mutex<HashMap<String, String>>,
}

impl MemoryTaskTokens {
    pub fn insert(&self, review_id: impl Into<String>, token: impl Into<String>) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(review_id.into(), token.into());
    }
}

#[async_trait]
impl TaskTokens for MemoryTaskTokens {
    async fn task_token(&self, review_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(review_id)
            .cloned())
    }
}

/// Why a workflow call failed.
#[derive(Debug, Error)]
pub enum WorkflowError {
    #[error(
        "{0:?} is not a Step Functions state machine ARN (arn:...:states:...:stateMachine:NAME)"
    )]
    InvalidStateMachineArn(String),
    /// A Step Functions request failed (after the SDK's own retries).
    #[error("Step Functions {op} for {subject} failed: {message}")]
    Request {
        op: &'static str,
        subject: String,
        message: String,
    },
    /// The task token store failed.
    #[error("task tokens: {0}")]
    Tokens(StoreError),
}

impl WorkflowError {
    fn request<E, R>(op: &'static str, subject: &str, err: &SdkError<E, R>) -> Self
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        WorkflowError::Request {
            op,
            subject: subject.to_owned(),
            message: DisplayErrorContext(err).to_string(),
        }
    }
}

impl From<WorkflowError> for StoreError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::Tokens(inner) => inner,
            other => StoreError::backend("a Step Functions request failed", other),
        }
    }
}

/// What starting a promotion's execution did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// Started now, or an execution with this name and the same input is still running (Step
    /// Functions answers such a repeat with that execution, as if it had started it).
    Started { execution_arn: String },
    /// `ExecutionAlreadyExists`: an execution of this promotion has finished (or runs with
    /// another input); nothing was started.
    AlreadyStarted { execution_arn: String },
}

/// What answering a review's task did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskAnswer {
    /// `SendTaskSuccess` (approved) or `SendTaskFailure` (rejected) was accepted.
    Sent,
    /// No token yet: the review-inbox function answers when the token arrives.
    AwaitingToken,
    /// Step Functions no longer accepts the token (`InvalidToken`, `TaskDoesNotExist`,
    /// `TaskTimedOut`): the task was already answered, timed out, or its execution stopped.
    AlreadyClosed { code: String },
    /// The review carries no decision (expired or cancelled): nothing to send.
    NotDecided,
}

/// What stopping a promotion's execution did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    Stopped,
    /// There is no execution for this promotion.
    NoExecution,
}

/// The execution name of a promotion: its id when that is a valid name (at most 80 of
/// `A-Za-z0-9._-`); otherwise the id with other characters replaced by `_`, cut to fit, and
/// `-` plus 16 hex digits of the id's SHA-256 appended, so that distinct ids keep distinct
/// names and the same id always gives the same name.
pub fn execution_name(promotion_id: &str) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !promotion_id.is_empty()
        && promotion_id.len() <= MAX_EXECUTION_NAME
        && promotion_id.chars().all(valid)
    {
        return promotion_id.to_owned();
    }
    let digest = hex::encode(&sha2::Sha256::digest(promotion_id.as_bytes())[..8]);
    let keep = MAX_EXECUTION_NAME - digest.len() - 1;
    let head: String = promotion_id
        .chars()
        .map(|c| if valid(c) { c } else { '_' })
        .take(keep)
        .collect();
    format!("{head}-{digest}")
}

/// The ARN of `machine`'s execution named after `id`, derived without a request:
/// `arn:...:states:REGION:ACCOUNT:execution:MACHINE:NAME`.
pub fn execution_arn_of(machine: &str, id: &str) -> String {
    format!(
        "{}:{}",
        machine.replacen(":stateMachine:", ":execution:", 1),
        execution_name(id)
    )
}

/// The approval execution's input: the promotion and the reviews core computed for it, each
/// with the seconds from the request to its deadline as its task timeout (at least 1).
pub fn approval_input(promotion: &Promotion) -> Value {
    let reviews: Vec<Value> = promotion
        .reviews
        .iter()
        .map(|r| {
            let timeout = (r.deadline - promotion.requested_at).num_seconds().max(1);
            json!({"review_id": r.id, "stage": r.stage, "timeout_seconds": timeout})
        })
        .collect();
    json!({
        "promotion_id": promotion.id,
        "name": promotion.name,
        "version": promotion.version,
        "target": promotion.target,
        "reviews": reviews,
    })
}

/// The retirement execution's input: the pending request (its id names the execution).
pub fn retirement_input(version: &ModelVersion, request: &PendingRetirement) -> Value {
    json!({
        "retirement_id": request.id,
        "name": version.name,
        "version": version.version,
        "reason": request.reason,
        "replacement": request.replacement,
        "requested_by": request.requested_by,
    })
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Review workflows on Step Functions.
#[derive(Clone)]
pub struct StepFunctionsWorkflows {
    client: aws_sdk_sfn::Client,
    approval_state_machine_arn: String,
    /// With it, retirements are requested, confirmed and archived by the retirement
    /// workflow; without it, they take effect when requested.
    retirement_state_machine_arn: Option<String>,
    tokens: Arc<dyn TaskTokens>,
}

impl std::fmt::Debug for StepFunctionsWorkflows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepFunctionsWorkflows")
            .field(
                "approval_state_machine_arn",
                &self.approval_state_machine_arn,
            )
            .field(
                "retirement_state_machine_arn",
                &self.retirement_state_machine_arn,
            )
            .finish_non_exhaustive()
    }
}

impl StepFunctionsWorkflows {
    pub fn new(
        client: aws_sdk_sfn::Client,
        approval_state_machine_arn: impl Into<String>,
        tokens: Arc<dyn TaskTokens>,
    ) -> Result<Self, WorkflowError> {
        let arn = state_machine_arn(approval_state_machine_arn.into())?;
        Ok(Self {
            client,
            approval_state_machine_arn: arn,
            retirement_state_machine_arn: None,
            tokens,
        })
    }

    /// Routes retirements through the retirement state machine at `arn`.
    pub fn with_retirement(mut self, arn: impl Into<String>) -> Result<Self, WorkflowError> {
        self.retirement_state_machine_arn = Some(state_machine_arn(arn.into())?);
        Ok(self)
    }

    /// Starts the retirement execution of `request`, named after its id (idempotent like
    /// [`Self::start`]).
    pub async fn start_retirement(
        &self,
        version: &ModelVersion,
        request: &PendingRetirement,
    ) -> Result<StartOutcome, WorkflowError> {
        let Some(machine) = &self.retirement_state_machine_arn else {
            return Err(WorkflowError::Request {
                op: "StartExecution",
                subject: request.id.clone(),
                message: "no retirement state machine is configured".into(),
            });
        };
        self.start_named(machine, &request.id, retirement_input(version, request))
            .await
    }

    /// `StartExecution` of `machine` named after `id` (see [`execution_name`]): an execution
    /// that already exists under that name is [`StartOutcome::AlreadyStarted`].
    async fn start_named(
        &self,
        machine: &str,
        id: &str,
        input: Value,
    ) -> Result<StartOutcome, WorkflowError> {
        let name = execution_name(id);
        let result = self
            .client
            .start_execution()
            .state_machine_arn(machine)
            .name(&name)
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(out) => Ok(StartOutcome::Started {
                execution_arn: out.execution_arn().to_owned(),
            }),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(StartExecutionError::ExecutionAlreadyExists(_))
                ) =>
            {
                Ok(StartOutcome::AlreadyStarted {
                    execution_arn: execution_arn_of(machine, id),
                })
            }
            Err(e) => Err(WorkflowError::request("StartExecution", id, &e)),
        }
    }

    /// The ARN of a retirement request's execution, when retirements run as workflows.
    pub fn retirement_execution_arn(&self, retirement_id: &str) -> Option<String> {
        self.retirement_state_machine_arn
            .as_ref()
            .map(|m| execution_arn_of(m, retirement_id))
    }

    /// Answers a retirement's confirmation task: `SendTaskSuccess` with who confirmed, or
    /// `SendTaskFailure` [`RETIREMENT_REFUSED`] with the refusal. Also what the review-inbox
    /// function calls when the token arrives after the decision.
    pub async fn answer_retirement(
        &self,
        request: &PendingRetirement,
        refusal: Option<&str>,
        token: &str,
    ) -> Result<TaskAnswer, WorkflowError> {
        match refusal {
            None => {
                let output = json!({
                    "retirement_id": request.id,
                    "confirmed_by": request.confirmed_by,
                    "confirmed_at": request.confirmed_at,
                });
                self.succeed(token, &output, &request.id).await
            }
            Some(comment) => {
                self.fail(token, RETIREMENT_REFUSED, comment, &request.id)
                    .await
            }
        }
    }

    /// `SendTaskSuccess` with `output`; a token Step Functions no longer accepts is reported.
    pub async fn succeed(
        &self,
        token: &str,
        output: &Value,
        subject: &str,
    ) -> Result<TaskAnswer, WorkflowError> {
        match self
            .client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
        {
            Ok(_) => Ok(TaskAnswer::Sent),
            Err(e) => match e.as_service_error() {
                Some(
                    se @ (SendTaskSuccessError::InvalidToken(_)
                    | SendTaskSuccessError::TaskDoesNotExist(_)
                    | SendTaskSuccessError::TaskTimedOut(_)),
                ) => Ok(TaskAnswer::AlreadyClosed {
                    code: se.code().unwrap_or("Unknown").to_owned(),
                }),
                _ => Err(WorkflowError::request("SendTaskSuccess", subject, &e)),
            },
        }
    }

    /// `SendTaskFailure` with `error` and `cause`; a token no longer accepted is reported.
    pub async fn fail(
        &self,
        token: &str,
        error: &str,
        cause: &str,
        subject: &str,
    ) -> Result<TaskAnswer, WorkflowError> {
        match self
            .client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(truncate(cause.to_owned(), MAX_CAUSE))
            .send()
            .await
        {
            Ok(_) => Ok(TaskAnswer::Sent),
            Err(e) => match e.as_service_error() {
                Some(
                    se @ (SendTaskFailureError::InvalidToken(_)
                    | SendTaskFailureError::TaskDoesNotExist(_)
                    | SendTaskFailureError::TaskTimedOut(_)),
                ) => Ok(TaskAnswer::AlreadyClosed {
                    code: se.code().unwrap_or("Unknown").to_owned(),
                }),
                _ => Err(WorkflowError::request("SendTaskFailure", subject, &e)),
            },
        }
    }

    /// The ARN of a promotion's execution, derived without a request:
    /// `arn:...:states:REGION:ACCOUNT:execution:MACHINE:NAME`.
    pub fn execution_arn(&self, promotion_id: &str) -> String {
        execution_arn_of(&self.approval_state_machine_arn, promotion_id)
    }

    /// Starts the promotion's approval execution (`StartExecution`, once per promotion).
    pub async fn start(&self, promotion: &Promotion) -> Result<StartOutcome, WorkflowError> {
        self.start_named(
            &self.approval_state_machine_arn,
            &promotion.id,
            approval_input(promotion),
        )
        .await
    }

    /// Answers the task waiting on `review` with its decision, if its token has arrived.
    pub async fn decide(&self, review: &Review) -> Result<TaskAnswer, WorkflowError> {
        if review.decision.is_none() {
            return Ok(TaskAnswer::NotDecided);
        }
        let token = self
            .tokens
            .task_token(&review.id)
            .await
            .map_err(WorkflowError::Tokens)?;
        match token {
            Some(token) => self.answer(review, &token).await,
            None => Ok(TaskAnswer::AwaitingToken),
        }
    }

    /// Sends a decided review's decision with `token`: `SendTaskSuccess` with the decision as
    /// output when approved, `SendTaskFailure` with [`REVIEW_REJECTED`] when rejected. Also
    /// what the review-inbox function calls when a token arrives for a decided review.
    pub async fn answer(&self, review: &Review, token: &str) -> Result<TaskAnswer, WorkflowError> {
        let Some(decision) = review.decision else {
            return Ok(TaskAnswer::NotDecided);
        };
        let outcome = json!({
            "review_id": review.id,
            "stage": review.stage,
            "decision": decision,
            "decided_by": review.decided_by,
            "decided_at": review.decided_at,
            "conditions": review.conditions,
        });
        match decision {
            Decision::Approve => self.succeed(token, &outcome, &review.id).await,
            Decision::Reject => {
                self.fail(token, REVIEW_REJECTED, &outcome.to_string(), &review.id)
                    .await
            }
        }
    }

    /// Stops the promotion's execution (`StopExecution`, error [`STOPPED`]), e.g. when its
    /// version is retired mid-review. Stopping a finished execution changes nothing.
    pub async fn stop(
        &self,
        promotion_id: &str,
        cause: &str,
    ) -> Result<StopOutcome, WorkflowError> {
        let result = self
            .client
            .stop_execution()
            .execution_arn(self.execution_arn(promotion_id))
            .error(STOPPED)
            .cause(truncate(cause.to_owned(), MAX_CAUSE))
            .send()
            .await;
        match result {
            Ok(_) => Ok(StopOutcome::Stopped),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(StopExecutionError::ExecutionDoesNotExist(_))
                ) =>
            {
                Ok(StopOutcome::NoExecution)
            }
            Err(e) => Err(WorkflowError::request("StopExecution", promotion_id, &e)),
        }
    }
}

/// Checks that `arn` names a Step Functions state machine.
fn state_machine_arn(arn: String) -> Result<String, WorkflowError> {
    if !arn.starts_with("arn:") || !arn.contains(":states:") || !arn.contains(":stateMachine:") {
        return Err(WorkflowError::InvalidStateMachineArn(arn));
    }
    Ok(arn)
}

#[async_trait]
impl Workflows for StepFunctionsWorkflows {
    fn confirms_retirements(&self) -> bool {
        self.retirement_state_machine_arn.is_some()
    }

    async fn retirement_requested(
        &self,
        version: &ModelVersion,
        request: &PendingRetirement,
    ) -> Result<(), StoreError> {
        self.start_retirement(version, request).await?;
        Ok(())
    }

    async fn retirement_decided(
        &self,
        request: &PendingRetirement,
        refusal: Option<&str>,
    ) -> Result<(), StoreError> {
        let token = self
            .tokens
            .task_token(&request.id)
            .await
            .map_err(WorkflowError::Tokens)?;
        let Some(token) = token else {
            tracing::info!(
                retirement = %request.id,
                "decision recorded before the confirmation token arrived; the review inbox will answer"
            );
            return Ok(());
        };
        if let TaskAnswer::AlreadyClosed { code } =
            self.answer_retirement(request, refusal, &token).await?
        {
            tracing::warn!(
                retirement = %request.id,
                %code,
                "Step Functions no longer accepts this retirement's confirmation token"
            );
        }
        Ok(())
    }

    async fn promotion_started(&self, promotion: &Promotion) -> Result<(), StoreError> {
        self.start(promotion).await?;
        Ok(())
    }

    async fn review_decided(
        &self,
        _promotion: &Promotion,
        review: &Review,
    ) -> Result<(), StoreError> {
        match self.decide(review).await? {
            TaskAnswer::Sent | TaskAnswer::NotDecided => {}
            TaskAnswer::AwaitingToken => tracing::info!(
                review = %review.id,
                "decision recorded before its task token arrived; the review inbox will answer"
            ),
            TaskAnswer::AlreadyClosed { code } => tracing::warn!(
                review = %review.id,
                %code,
                "Step Functions no longer accepts this review's task token; decision kept in the registry"
            ),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_promotion_id_is_its_own_execution_name() {
        assert_eq!(
            execution_name("credit-risk.3.pr-0001"),
            "credit-risk.3.pr-0001"
        );
    }

    #[test]
    fn long_or_odd_ids_get_distinct_stable_names_within_80_characters() {
        let long = format!("{}.12.pr-{}", "m".repeat(63), "u".repeat(30));
        let a = execution_name(&long);
        assert_eq!(a.len(), MAX_EXECUTION_NAME);
        assert_eq!(a, execution_name(&long));
        let other = format!("{}.12.pr-{}", "m".repeat(63), "v".repeat(30));
        assert_ne!(a, execution_name(&other));

        let odd = execution_name("a b/c");
        assert!(odd.starts_with("a_b_c-") && odd.len() == 6 + 16, "{odd}");
        assert_ne!(odd, execution_name("a_b_c"));
        assert_eq!(execution_name("a_b_c"), "a_b_c");
        assert!(execution_name("").len() == 17);
    }

    #[test]
    fn causes_are_cut_on_character_boundaries() {
        assert_eq!(truncate("héllo".into(), 2), "h");
        assert_eq!(truncate("hi".into(), 10), "hi");
    }
}
