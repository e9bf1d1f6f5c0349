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
//! - Answering after a decision committed never fails the decision: the port's
//!   `review_decided`/`retirement_decided` log a failed send and return, and the commit's
//!   `ReviewDecided`/`RetirementDecided` event, delivered from the outbox at least once, has the
//!   review inbox answer again until Step Functions has the answer or the token is gone.
//!
//! Layout: this file holds the names, inputs, outcomes and errors; [`step_functions`] the
//! port's implementation on the Step Functions API.

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

mod step_functions;

pub use step_functions::StepFunctionsWorkflows;

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
