//! Workflow outcomes: the approval state machine reports how each execution ended through
//! EventBridge; a rule delivers those events to an SQS queue drained by this handler.
//!
//! Invariants:
//! - `ReviewTimedOut {review_id}`: the workflow stopped waiting for a review, so core expires
//!   its promotion (`Governance::expire_review`), once: a redelivered or late event finds the
//!   review no longer pending and changes nothing.
//! - `PromotionApproved` / `PromotionRejected {promotion_id}`: core recorded the outcome when
//!   the deciding review was decided, before the workflow heard of it; the handler only checks
//!   that the registry agrees and logs a warning when it does not. The registry, never the
//!   workflow, is the record.
//! - Core publishes events with these detail-types too (source `steward.governance`); the
//!   rule feeding this queue matches the state machine's source instead, but the handler
//!   treats core's the same way, so a rule that matches them by mistake is harmless.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::Value;
use steward_core::records::PromotionStatus;
use steward_core::Governance;

use super::{detail_str, eventbridge_envelope, for_each_message, Failure};

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

/// Handles a batch of workflow events from SQS (see [`super::for_each_message`] for which
/// failures are retried: a lost race with another writer is, an unknown review is not).
pub async fn workflow_events(event: &SqsEvent, gov: &Governance) -> SqsBatchResponse {
    for_each_message(&event.records, |message| async move {
        let envelope = eventbridge_envelope(message)?;
        let outcome = apply_workflow_event(gov, &envelope).await?;
        Ok(format!("{}: {outcome:?}", envelope.detail_type))
    })
    .await
}
