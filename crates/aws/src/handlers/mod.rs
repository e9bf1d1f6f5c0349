//! What Steward's Lambdas do, as plain async functions over the backend's clients: each
//! `functions/<name>/src/main.rs` only reads its configuration, builds these once at cold
//! start (the shared part of that is `crate::lambda`, behind the `lambda` feature) and hands
//! every invocation to one of them. Tests call them directly, without a
//! Lambda runtime.
//!
//! | function | handler | input |
//! |---|---|---|
//! | `api` | (the `steward-api` router; [`backend::AwsBackend`] builds its state) | API Gateway HTTP API |
//! | `stream-publisher` | [`stream::publish_stream`] | DynamoDB Streams (`NEW_IMAGE`) |
//! | `review-inbox` | [`inbox::review_inbox`] | SQS, fed by the `ReviewRequested` rule |
//! | `workflow-events` | [`workflow_events::workflow_events`] | SQS, fed by workflow outcome events |
//! | `checkpoint` | [`checkpoint::checkpoint`] | EventBridge schedule |
//! | `monitor` | [`monitor::monitor`] | SQS, fed by model alarm and `ModelMetricsReported` rules |
//! | `webhooks` | [`webhooks::webhooks`] | SQS, fed by every governance event; and a schedule |
//!
//! Invariants:
//! - Handlers decide nothing: every state change goes through `steward_core::Governance`.
//! - Every failure is a [`Failure`] whose type is one of
//!   [`crate::diagnostic::ERROR_TYPES`]. Batch handlers report the items that may succeed on
//!   a retry (`Steward.Transient`, `Steward.Contended`) as batch item failures; an SQS message
//!   that can never succeed (malformed, unknown review, a state conflict) is logged and dropped, so it is not
//!   redelivered until it expires (except `webhooks`, whose every unqueued record goes to its
//!   DLQ: see there). Stream records are never dropped: the stream is the outbox.

pub mod backend;
pub mod checkpoint;
pub mod inbox;
pub mod monitor;
pub mod stream;
pub mod webhooks;
pub mod workflow_events;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};
use serde_json::Value;

pub use crate::diagnostic::Failure;

/// The EventBridge event an SQS message carries (a rule's SQS target delivers the whole
/// envelope as the body).
pub fn eventbridge_envelope(message: &SqsMessage) -> Result<EventBridgeEvent<Value>, Failure> {
    let body = message
        .body
        .as_deref()
        .ok_or_else(|| Failure::validation("the SQS message has no body"))?;
    serde_json::from_str(body).map_err(|e| {
        Failure::validation(format!(
            "the SQS message body is not an EventBridge event: {e}"
        ))
    })
}

/// A string field of an event's `detail`.
pub fn detail_str<'a>(event: &'a EventBridgeEvent<Value>, field: &str) -> Result<&'a str, Failure> {
    event
        .detail
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Failure::validation(format!(
                "the {} event's detail has no string field {field:?}",
                event.detail_type
            ))
        })
}

/// Runs `handle` on every message of an SQS batch, one after another; collects the messages
/// to be delivered again (transient failures) and logs and drops the rest of the failures.
pub async fn for_each_message<'a, F, Fut>(
    messages: &'a [SqsMessage],
    mut handle: F,
) -> SqsBatchResponse
where
    F: FnMut(&'a SqsMessage) -> Fut,
    Fut: std::future::Future<Output = Result<String, Failure>>,
{
    let mut response = SqsBatchResponse::default();
    for message in messages {
        let id = message.message_id.as_deref().unwrap_or_default();
        match handle(message).await {
            Ok(outcome) => tracing::info!(message_id = id, %outcome, "message handled"),
            Err(f) if f.is_transient() => {
                tracing::warn!(message_id = id, error_type = f.error_type, error = %f.message, "message failed; it will be delivered again");
                response.add_failure(id);
            }
            Err(f) => {
                tracing::error!(message_id = id, error_type = f.error_type, error = %f.message, "message dropped: it can never succeed");
            }
        }
    }
    response
}
