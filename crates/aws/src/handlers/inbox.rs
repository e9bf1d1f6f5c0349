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
//!
//! The inbox is also where decisions are answered again. A decision commits first and its
//! answer (`SendTaskSuccess`/`SendTaskFailure`) is sent after, by the API function; if that
//! send fails, the workflow would wait for its timeout. So the commit's own governance event
//! (`ReviewDecided` / `RetirementDecided`, source `steward.governance`), which the stream
//! publisher delivers from the outbox at least once, reaches this queue too
//! (`events/rules/decisions.json`), and the inbox answers from the registry's record of the
//! decision: a failed send is a transient failure, so SQS redelivers it until Step Functions
//! has the answer or the token is gone. An answer sent twice is refused by Step Functions
//! (`InvalidToken`/`TaskDoesNotExist`) and reported, not an error.
//!
//! Anything else that arrives is logged and dropped.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use steward_core::ids::{RetirementId, ReviewId};
use steward_core::records::ReviewStatus;
use steward_core::types::Decision;
use steward_core::Governance;

use super::{detail_str, eventbridge_envelope, for_each_message, Failure};
use crate::dynamo::DynamoStore;
use crate::workflows::{StepFunctionsWorkflows, TaskAnswer, RETIREMENT_REFUSED};

/// The detail-type of the approval workflow's request for a review.
pub const REVIEW_REQUESTED: &str = "ReviewRequested";
/// The detail-type of the retirement workflow's request for a confirmation.
pub const RETIREMENT_CONFIRMATION_REQUESTED: &str = "RetirementConfirmationRequested";

/// The detail-type of the governance event a review decision commits with.
pub const REVIEW_DECIDED: &str = "ReviewDecided";
/// The detail-type of the governance event a retirement decision commits with.
pub const RETIREMENT_DECIDED: &str = "RetirementDecided";

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
    let review = read_review(inbox, &id, review_id).await?;
    Ok(match review.status {
        ReviewStatus::Pending => TokenOutcome::Stored,
        ReviewStatus::Approved | ReviewStatus::Rejected => {
            TokenOutcome::Answered(inbox.workflows.answer(&review, task_token).await?)
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

/// What answering a committed decision again did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResendOutcome {
    /// Answered with the stored token (or found the task already closed).
    Answered(TaskAnswer),
    /// No token yet: the workflow has not asked, and the inbox answers when it does.
    AwaitingToken,
    /// The retirement request is no longer pending (archived or ended): its workflow has
    /// moved past the confirmation, so there is nothing to answer.
    NotPending,
}

impl From<TaskAnswer> for ResendOutcome {
    fn from(answer: TaskAnswer) -> Self {
        match answer {
            TaskAnswer::AwaitingToken => Self::AwaitingToken,
            other => Self::Answered(other),
        }
    }
}

/// Answers the task of decided review `review_id` from the registry's record of the
/// decision. Requests: one `BatchGetItem` for the promotion, one `GetItem` for the token, at
/// most one answer.
pub async fn resend_review_answer(
    inbox: &ReviewInbox,
    review_id: &str,
) -> Result<ResendOutcome, Failure> {
    let id = ReviewId::parse(review_id).map_err(|_| {
        Failure::validation(format!("{review_id:?} is not a review id Steward issued"))
    })?;
    let review = read_review(inbox, &id, review_id).await?;
    Ok(inbox.workflows.decide(&review).await?.into())
}

/// The review `review_id` as its promotion holds it (one consistent read of the promotion).
async fn read_review(
    inbox: &ReviewInbox,
    id: &ReviewId,
    review_id: &str,
) -> Result<steward_core::records::Review, Failure> {
    let promotion = inbox.gov.promotion(&id.promotion().to_string()).await?;
    promotion
        .reviews
        .into_iter()
        .find(|r| r.id == review_id)
        .ok_or_else(|| {
            Failure::new(
                crate::diagnostic::NOT_FOUND,
                format!("no review {review_id}"),
            )
        })
}

/// Answers the confirmation task of retirement `retirement_id` with the committed decision:
/// a refusal with its `comment`; a confirmation with the request as the registry holds it.
pub async fn resend_retirement_answer(
    inbox: &ReviewInbox,
    retirement_id: &str,
    decision: Decision,
    comment: Option<&str>,
) -> Result<ResendOutcome, Failure> {
    let id = RetirementId::parse(retirement_id).map_err(|_| {
        Failure::validation(format!(
            "{retirement_id:?} is not a retirement id Steward issued"
        ))
    })?;
    let Some(token) = inbox.workflows.token(retirement_id).await? else {
        return Ok(ResendOutcome::AwaitingToken);
    };
    if decision == Decision::Reject {
        let cause = comment.unwrap_or("the retirement was refused");
        let answer = inbox
            .workflows
            .fail(&token, RETIREMENT_REFUSED, cause, retirement_id)
            .await?;
        return Ok(ResendOutcome::Answered(answer));
    }
    let v = inbox
        .gov
        .registry()
        .version(id.name(), id.version())
        .await?
        .ok_or_else(|| {
            Failure::new(
                crate::diagnostic::NOT_FOUND,
                format!("no version {} of {}", id.version(), id.name()),
            )
        })?;
    match v.pending_retirement {
        Some(p) if p.id == retirement_id && p.confirmed_by.is_some() => {
            let answer = inbox.workflows.answer_retirement(&p, None, &token).await?;
            Ok(ResendOutcome::Answered(answer))
        }
        _ => Ok(ResendOutcome::NotPending),
    }
}

/// Handles a batch of token requests and committed decisions from SQS (see [`super::for_each_message`]
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
        if envelope.detail_type == REVIEW_DECIDED {
            let review_id = detail_str(&envelope, "review_id")?;
            let outcome = resend_review_answer(inbox, review_id).await?;
            return Ok(format!("decided review {review_id}: {outcome:?}"));
        }
        if envelope.detail_type == RETIREMENT_DECIDED {
            let retirement_id = detail_str(&envelope, "retirement_id")?;
            let decision: Decision = serde_json::from_value(envelope.detail["decision"].clone())
                .map_err(|e| Failure::validation(format!("{RETIREMENT_DECIDED}.decision: {e}")))?;
            let comment = envelope.detail["comment"].as_str();
            let outcome = resend_retirement_answer(inbox, retirement_id, decision, comment).await?;
            return Ok(format!("decided retirement {retirement_id}: {outcome:?}"));
        }
        if envelope.detail_type != REVIEW_REQUESTED {
            return Err(Failure::validation(format!(
                "expected a {REVIEW_REQUESTED}, {RETIREMENT_CONFIRMATION_REQUESTED}, {REVIEW_DECIDED} or {RETIREMENT_DECIDED} event, got {}",
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
