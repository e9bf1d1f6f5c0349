//! The review inbox: the approval workflow asks for each review with a `ReviewRequested`
//! event carrying the task token it waits on; a rule delivers those events to an SQS queue
//! drained by this handler, which keeps the token where the decision path finds it.
//!
//! Invariants:
//! - The token is stored first, then the review is read (both strongly consistent). The
//!   decision path records the decision first, then reads the token. So whichever runs second
//!   sees the other's write, and every decided review's task is answered exactly by one of
//!   them (or by both: Step Functions refuses the second answer as `InvalidToken`, which is
//!   reported, not an error). A decision that arrived before the workflow asked is answered
//!   here, at once.
//! - The token never leaves the backend: it goes to the table and to Step Functions only,
//!   and is never logged.
//!
//! Core publishes a `ReviewRequested` of its own (without a token) when a promotion opens; the
//! rule feeding this queue selects the workflow's by its token:
//! `{"detail-type": ["ReviewRequested"], "detail": {"task_token": [{"exists": true}]}}`.
//! The retirement workflow asks for a confirmation the same way
//! (`RetirementConfirmationRequested {retirement_id, task_token}`): the token is stored under
//! the request id, then the version is read; a request already confirmed is answered at once,
//! and one that is no longer pending (refused before the token arrived) is refused at once.
//! Anything else that arrives is logged and dropped.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use steward_core::ids::{RetirementId, ReviewId};
use steward_core::records::ReviewStatus;
use steward_core::Governance;

use super::{detail_str, eventbridge_envelope, for_each_message, Failure};
use crate::dynamo::DynamoStore;
use crate::workflows::{StepFunctionsWorkflows, TaskAnswer, RETIREMENT_REFUSED};

/// The detail-type of the approval workflow's request for a review.
pub const REVIEW_REQUESTED: &str = "ReviewRequested";
/// The detail-type of the retirement workflow's request for a confirmation.
pub const RETIREMENT_CONFIRMATION_REQUESTED: &str = "RetirementConfirmationRequested";

/// What the review inbox reads and writes.
#[derive(Clone)]
pub struct ReviewInbox {
    pub gov: Arc<Governance>,
    pub store: Arc<DynamoStore>,
    pub workflows: Arc<StepFunctionsWorkflows>,
}

/// What receiving one token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOutcome {
    /// Stored; the review is pending, so its decision will use it.
    Stored,
    /// Stored, and the review was already decided: the decision was sent with it now.
    Answered(TaskAnswer),
    /// Stored; the review is expired or cancelled, so nothing will answer it (the workflow's
    /// own timeout ends the task).
    Closed(ReviewStatus),
}

/// Stores the token of the task waiting on `review_id`; answers it at once when the review
/// is already decided. Requests: one `PutItem`, one `BatchGetItem`, and one
/// `SendTaskSuccess`/`SendTaskFailure` for a decided review.
pub async fn receive_task_token(
    inbox: &ReviewInbox,
    review_id: &str,
    task_token: &str,
) -> Result<TokenOutcome, Failure> {
    let unknown =
        || Failure::validation(format!("{review_id:?} is not a review id Steward issued"));
    let id = ReviewId::parse(review_id).map_err(|_| unknown())?;
    inbox.store.put_task_token(review_id, task_token).await?;
    let promotion = inbox.gov.promotion(&id.promotion().to_string()).await?;
    let review = promotion
        .reviews
        .iter()
        .find(|r| r.id == review_id)
        .ok_or_else(|| {
            Failure::new(
                crate::diagnostic::NOT_FOUND,
                format!("no review {review_id}"),
            )
        })?;
    Ok(match review.status {
        ReviewStatus::Pending => TokenOutcome::Stored,
        ReviewStatus::Approved | ReviewStatus::Rejected => {
            TokenOutcome::Answered(inbox.workflows.answer(review, task_token).await?)
        }
        other => TokenOutcome::Closed(other),
    })
}

/// Stores the token of the task waiting on the confirmation of retirement `retirement_id`;
/// answers it at once when the request was already confirmed, or refuses it when the request
/// is no longer pending. Requests: one `PutItem`, one `GetItem`, at most one answer.
pub async fn receive_retirement_token(
    inbox: &ReviewInbox,
    retirement_id: &str,
    task_token: &str,
) -> Result<TokenOutcome, Failure> {
    let id = RetirementId::parse(retirement_id).map_err(|_| {
        Failure::validation(format!(
            "{retirement_id:?} is not a retirement id Steward issued"
        ))
    })?;
    let (name, version) = (id.name().clone(), id.version());
    inbox
        .store
        .put_task_token(retirement_id, task_token)
        .await?;
    let v = inbox
        .gov
        .registry()
        .version(&name, version)
        .await?
        .ok_or_else(|| {
            Failure::new(
                crate::diagnostic::NOT_FOUND,
                format!("no version {version} of {name}"),
            )
        })?;
    match v.pending_retirement {
        Some(p) if p.id == retirement_id => {
            if p.confirmed_by.is_some() {
                let answer = inbox
                    .workflows
                    .answer_retirement(&p, None, task_token)
                    .await?;
                Ok(TokenOutcome::Answered(answer))
            } else {
                Ok(TokenOutcome::Stored)
            }
        }
        _ => {
            let answer = inbox
                .workflows
                .fail(
                    task_token,
                    RETIREMENT_REFUSED,
                    "the retirement request is no longer pending",
                    retirement_id,
                )
                .await?;
            Ok(TokenOutcome::Answered(answer))
        }
    }
}

/// Handles a batch of `ReviewRequested` events from SQS (see [`super::for_each_message`]
/// for which failures are retried).
pub async fn review_inbox(event: &SqsEvent, inbox: &ReviewInbox) -> SqsBatchResponse {
    for_each_message(&event.records, |message| async move {
        let envelope = eventbridge_envelope(message)?;
        if envelope.detail_type == RETIREMENT_CONFIRMATION_REQUESTED {
            let retirement_id = detail_str(&envelope, "retirement_id")?;
            let token = detail_str(&envelope, "task_token")?;
            let outcome = receive_retirement_token(inbox, retirement_id, token).await?;
            return Ok(format!("retirement {retirement_id}: {outcome:?}"));
        }
        if envelope.detail_type != REVIEW_REQUESTED {
            return Err(Failure::validation(format!(
                "expected a {REVIEW_REQUESTED} or {RETIREMENT_CONFIRMATION_REQUESTED} event, got {}",
                envelope.detail_type
            )));
        }
        let review_id = detail_str(&envelope, "review_id")?;
        let token = detail_str(&envelope, "task_token")?;
        let outcome = receive_task_token(inbox, review_id, token).await?;
        Ok(format!("review {review_id}: {outcome:?}"))
    })
    .await
}
