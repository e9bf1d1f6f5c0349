//! Workflow outcomes and workflow actions, from one SQS queue.
//!
//! - Outcomes: the approval and retirement state machines report how each execution ended
//!   through EventBridge; rules deliver those events here.
//! - Actions: the retirement state machine asks for its two automated steps by sending a
//!   message straight to the queue (`sqs:sendMessage.waitForTaskToken`):
//!   `{"action": "check_dependents" | "archive", "task_token", "retirement_id", "name",
//!   "version", "replacement"}`. The handler asks core and answers the task: the check with
//!   `{retirable, reasons}`, the archive with `{retired: true}` or, when the version may no
//!   longer be retired, `SendTaskFailure` `Steward.RetirementRefused`. An action that can
//!   never succeed fails its task with the failure's `Steward.*` type; a transient failure
//!   leaves the message to be delivered again. (Not a Lambda invoke: the queue adds retries
//!   and a DLQ, keeps the token off the bus, and the whole workflow executes on the
//!   emulators.)
//!
//! Invariants:
//! - `ReviewTimedOut {review_id}`: the workflow stopped waiting for a review, so core expires
//!   its promotion (`Governance::expire_review`), once: a redelivered or late event finds the
//!   review no longer pending and changes nothing.
//! - `PromotionApproved` / `PromotionRejected {promotion_id}`: core recorded the outcome when
//!   the deciding review was decided, before the workflow heard of it; the handler only checks
//!   that the registry agrees and logs a warning when it does not. The registry, never the
//!   workflow, is the record.
//! - `RetirementRefused`, `RetirementTimedOut`, `RetirementFailed {retirement_id}`: the
//!   retirement workflow ended without archiving; core ends the pending request
//!   (`Governance::close_retirement`), once. A refusal by the confirmer or at the archive step
//!   was already recorded, so those find nothing pending.
//! - Core publishes events with these detail-types too (source `steward.governance`); the
//!   rule feeding this queue matches the state machine's source instead, but the handler
//!   treats core's the same way, so a rule that matches them by mistake is harmless.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::Value;
use steward_core::ids::VersionNumber;
use steward_core::records::PromotionStatus;
use steward_core::service::{existing_replacement, existing_version};
use steward_core::{GovError, Governance};

use super::{detail_str, eventbridge_envelope, for_each_message, Failure};
use crate::workflows::{StepFunctionsWorkflows, TaskAnswer, RETIREMENT_REFUSED};

/// What one workflow event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowOutcome {
    /// The review's promotion expired now.
    Expired,
    /// The review was already decided, expired or cancelled: nothing changed.
    AlreadyClosed,
    /// The registry records the outcome the workflow reported.
    Agrees,
    /// The registry records another status than the workflow reported (logged as a warning).
    Disagrees {
        workflow: PromotionStatus,
        registry: PromotionStatus,
    },
    /// The retirement workflow ended a pending request without archiving; core ended it.
    RetirementClosed,
    /// The retirement request was no longer pending (already refused, archived or closed).
    RetirementAlreadyClosed,
    /// A detail-type this handler does not act on.
    Ignored(String),
}

/// Applies one workflow event to the registry.
pub async fn apply_workflow_event(
    gov: &Governance,
    event: &EventBridgeEvent<Value>,
) -> Result<WorkflowOutcome, Failure> {
    let reported = match event.detail_type.as_str() {
        "ReviewTimedOut" => {
            let review_id = detail_str(event, "review_id")?;
            return Ok(if gov.expire_review(review_id).await? {
                tracing::info!(
                    review_id,
                    "review timed out in its workflow; promotion expired"
                );
                WorkflowOutcome::Expired
            } else {
                WorkflowOutcome::AlreadyClosed
            });
        }
        "RetirementRefused" | "RetirementTimedOut" | "RetirementFailed" => {
            let retirement_id = detail_str(event, "retirement_id")?;
            let outcome = match event.detail_type.as_str() {
                "RetirementRefused" => "refused",
                "RetirementTimedOut" => "timed_out",
                _ => "failed",
            };
            let mut details = event.detail.clone();
            if let Value::Object(m) = &mut details {
                m.remove("schema_version");
                m.remove("name");
                m.remove("version");
                m.remove("retirement_id");
            }
            return Ok(
                if gov
                    .close_retirement(retirement_id, outcome, details)
                    .await?
                {
                    tracing::info!(
                        retirement_id,
                        outcome,
                        "retirement workflow ended the request"
                    );
                    WorkflowOutcome::RetirementClosed
                } else {
                    WorkflowOutcome::RetirementAlreadyClosed
                },
            );
        }
        "PromotionApproved" => PromotionStatus::Approved,
        "PromotionRejected" => PromotionStatus::Rejected,
        other => return Ok(WorkflowOutcome::Ignored(other.to_owned())),
    };
    let promotion_id = detail_str(event, "promotion_id")?;
    let promotion = gov.promotion(promotion_id).await?;
    if promotion.status == reported {
        return Ok(WorkflowOutcome::Agrees);
    }
    tracing::warn!(
        promotion_id,
        workflow = ?reported,
        registry = ?promotion.status,
        "the approval workflow and the registry disagree on a promotion; the registry stands"
    );
    Ok(WorkflowOutcome::Disagrees {
        workflow: reported,
        registry: promotion.status,
    })
}

/// A retirement workflow's request for one of its automated steps.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ActionMessage {
    pub action: String,
    pub task_token: String,
    pub retirement_id: String,
    pub name: String,
    /// As sent, plain integers: a 0 still makes an action that fails its task (the version
    /// does not exist), rather than a message that is not an action at all.
    pub version: u32,
    #[serde(default)]
    pub replacement: Option<u32>,
}

/// The version and replacement an action names, as core takes them.
fn action_versions(
    message: &ActionMessage,
) -> Result<(VersionNumber, Option<VersionNumber>), GovError> {
    let version = existing_version(&message.name, message.version)?;
    let replacement = message
        .replacement
        .map(|r| existing_replacement(&message.name, r))
        .transpose()?;
    Ok((version, replacement))
}

/// Does a workflow action and answers its task. Returns what was sent.
pub async fn apply_workflow_action(
    gov: &Governance,
    workflows: &StepFunctionsWorkflows,
    message: &ActionMessage,
) -> Result<TaskAnswer, Failure> {
    let id = message.retirement_id.as_str();
    let result = match message.action.as_str() {
        "check_dependents" => match action_versions(message) {
            Ok((version, replacement)) => gov
                .retirement_check(&message.name, version, replacement)
                .await
                .map(|reasons| serde_json::json!({"retirable": reasons.is_empty(), "reasons": reasons})),
            Err(e) => Err(e),
        },
        "archive" => gov.archive_retirement(id).await.map(|v| {
            serde_json::json!({"retired": true, "retired_at": v.retirement.map(|r| r.retired_at)})
        }),
        other => {
            return Err(Failure::validation(format!(
                "unknown workflow action {other:?} (expected check_dependents or archive)"
            )))
        }
    };
    let token = message.task_token.as_str();
    let answer = match result {
        Ok(output) => workflows.succeed(token, &output, id).await?,
        Err(GovError::Policy(reasons)) => {
            workflows
                .fail(token, RETIREMENT_REFUSED, &reasons.join("; "), id)
                .await?
        }
        // The request is no longer in a state this action applies to (withdrawn, refused or
        // archived meanwhile): no retry can change that, so the run ends refused, not failed.
        Err(GovError::Conflict(why)) => workflows.fail(token, RETIREMENT_REFUSED, &why, id).await?,
        Err(e) => {
            let failure = Failure::from(e);
            if failure.is_transient() {
                return Err(failure);
            }
            workflows
                .fail(token, failure.error_type, &failure.message, id)
                .await?
        }
    };
    tracing::info!(retirement_id = id, action = %message.action, ?answer, "workflow action answered");
    Ok(answer)
}

/// Handles a batch from the workflow-events queue: outcome events, and the retirement
/// workflow's action messages when `workflows` is configured (see [`super::for_each_message`]
/// for which failures are retried: a lost race with another writer is, an unknown review is
/// not).
pub async fn workflow_events(
    event: &SqsEvent,
    gov: &Governance,
    workflows: Option<&StepFunctionsWorkflows>,
) -> SqsBatchResponse {
    for_each_message(&event.records, |message| async move {
        let body = message.body.as_deref().unwrap_or_default();
        if let Ok(action) = serde_json::from_str::<ActionMessage>(body) {
            let workflows = workflows.ok_or_else(|| {
                Failure::config(
                    "a workflow action arrived, but STEWARD_APPROVAL_STATE_MACHINE_ARN is not set",
                )
            })?;
            let answer = apply_workflow_action(gov, workflows, &action).await?;
            return Ok(format!(
                "{} {}: {answer:?}",
                action.action, action.retirement_id
            ));
        }
        let envelope = eventbridge_envelope(message)?;
        let outcome = apply_workflow_event(gov, &envelope).await?;
        Ok(format!("{}: {outcome:?}", envelope.detail_type))
    })
    .await
}
