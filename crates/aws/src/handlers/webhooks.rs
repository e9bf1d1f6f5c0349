//! Webhook deliveries on AWS: the `webhooks` function fans governance events out to the
//! subscriptions that want them and delivers what is due, with the same
//! [`Deliverer`] `steward serve` runs over its SQLite outbox.
//!
//! Two triggers, one handler ([`webhooks`], dispatching on the payload):
//! - **The queue** (`Records`): a rule on the Steward bus sends every `steward.governance`
//!   event (`events/rules/webhook-deliveries.json`) to the webhooks queue. A batch is fanned
//!   out (one delivery per event and subscription, create-only), then up to
//!   [`DUE_PER_RUN`] due deliveries are attempted, so a new event usually goes out within
//!   the invocation that queued it.
//! - **The schedule** (anything else, e.g. the `rate(1 minute)` rule's Scheduled Event, or a
//!   manual `{}` invoke): attempts what is due, so retries run without new events. Retries
//!   are therefore as fine-grained as the schedule: a delivery due in 5 s goes at the next
//!   run after that.
//!
//! Invariants:
//! - The event id of a delivery (its `webhook-id` is `msg_<event id>_<subscription>`) is
//!   [`event_id`]: derived from the event's `audit_seq` and content, not from the EventBridge
//!   id. The stream publisher delivers events at least once, and a republished event gets a
//!   new EventBridge id; deriving the id from what committed makes an SQS redelivery and a
//!   republish queue nothing twice, under the same `webhook-id`.
//! - Every record whose fan-out failed is a batch item failure, including a record that can
//!   never be fanned out (not a governance event): unlike the other queues', each such record
//!   is an event some receiver would silently miss, so after five receives it rests in the
//!   DLQ, whose alarm tells an operator, rather than being dropped. A failure of the
//!   deliveries that follow the fan-out fails no record: the deliveries are queued, and the
//!   next run attempts them.
//! - One run attempts at most [`DUE_PER_RUN`] deliveries, eight at a time, each bounded by
//!   `steward_integrations::ATTEMPT_TIMEOUT` (10 s): a run of slow receivers takes at most
//!   about 70 s, inside the function's 120 s timeout.
//! - A delivery that gives up after the retry window marks its subscription failed (audited,
//!   `webhook.failed`) and logs the error "webhook delivery gave up after the retry window",
//!   which the template's metric filter counts (`WebhookDeliveriesFailed`) and alarms on.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use steward_core::records::DomainEvent;
use steward_core::webhooks::RetrySchedule;
use steward_integrations::{DeliverError, Deliverer};

use super::backend::AwsBackend;
use super::{eventbridge_envelope, Failure};
use crate::diagnostic::{self, CONFIG};

/// `(event id, time, event)`: what the deliverer fans out.
pub type QueuedEvent = (String, DateTime<Utc>, DomainEvent);

/// At most this many due deliveries are attempted per invocation (see the module docs).
pub const DUE_PER_RUN: usize = 50;

/// The function's deliverer over `backend`'s governance (its webhook ports are
/// `SsmSecrets` and `DynamoDeliveries`) and integrations (`STEWARD_INTEGRATIONS_PARAMETER`),
/// with the default retry schedule.
pub fn deliverer(backend: &AwsBackend) -> Result<Deliverer, Failure> {
    Deliverer::new(
        Arc::clone(&backend.gov),
        RetrySchedule::default(),
        Arc::clone(&backend.integrations),
    )
    .map_err(failure)
}

/// One invocation: an SQS batch (`Records`) answers with its batch item failures; anything
/// else runs the due deliveries and answers `{"attempted": N}`.
pub async fn webhooks(payload: Value, deliverer: &Deliverer) -> Result<Value, Failure> {
    if payload.get("Records").is_some() {
        let event: SqsEvent = serde_json::from_value(payload)
            .map_err(|e| Failure::validation(format!("not an SQS event: {e}")))?;
        let response = fan_out_batch(&event, deliverer).await;
        if let Err(f) = deliver_due(deliverer).await {
            // Queued already: the schedule attempts them.
            tracing::warn!(error_type = f.error_type, error = %f.message, "due webhook deliveries failed to run");
        }
        return serde_json::to_value(response)
            .map_err(|e| Failure::new(diagnostic::TRANSIENT, e.to_string()));
    }
    let attempted = deliver_due(deliverer).await?;
    Ok(json!({ "attempted": attempted }))
}

/// Attempts up to [`DUE_PER_RUN`] due deliveries; how many were attempted.
pub async fn deliver_due(deliverer: &Deliverer) -> Result<usize, Failure> {
    let attempted = deliverer.deliver_due(DUE_PER_RUN).await.map_err(failure)?;
    tracing::info!(attempted, "due webhook deliveries attempted");
    Ok(attempted)
}

/// Fans out every governance event of the batch; the records that were not queued are the
/// batch item failures. One fan-out for the whole batch (one read of the subscriptions);
/// only when it fails is each record fanned out on its own, to find the ones that fail
/// (fanning out is idempotent, so what the first try queued is not queued twice).
pub async fn fan_out_batch(event: &SqsEvent, deliverer: &Deliverer) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut good: Vec<(&str, QueuedEvent)> = Vec::new();
    for message in &event.records {
        let id = message.message_id.as_deref().unwrap_or_default();
        match governance_event(message) {
            Ok(e) => good.push((id, e)),
            Err(f) => {
                tracing::error!(message_id = id, error_type = f.error_type, error = %f.message,
                    "not a governance event; reported, so it reaches the DLQ");
                response.add_failure(id);
            }
        }
    }
    let events: Vec<_> = good.iter().map(|(_, e)| e.clone()).collect();
    match deliverer.fan_out(&events).await {
        Ok(queued) => {
            tracing::info!(events = events.len(), queued, "webhook deliveries queued");
            return response;
        }
        Err(e) => {
            tracing::warn!(error = %e, "fanning the batch out failed; trying each record")
        }
    }
    for (id, e) in good {
        match deliverer.fan_out(std::slice::from_ref(&e)).await {
            Ok(queued) => {
                tracing::info!(message_id = id, event_id = %e.0, queued, "webhook deliveries queued")
            }
            Err(err) => {
                let f = failure(err);
                tracing::warn!(message_id = id, event_id = %e.0, error_type = f.error_type, error = %f.message,
                    "webhook deliveries not queued; the message will be delivered again");
                response.add_failure(id);
            }
        }
    }
    response
}

/// `(event id, time, event)` of the governance event an SQS message carries (the rule's
/// target delivers the EventBridge envelope as the body).
pub fn governance_event(message: &SqsMessage) -> Result<QueuedEvent, Failure> {
    let envelope = eventbridge_envelope(message)?;
    if envelope.source != steward_core::events::SOURCE {
        return Err(Failure::validation(format!(
            "expected a {} event, got source {:?}",
            steward_core::events::SOURCE,
            envelope.source
        )));
    }
    if !envelope.detail.is_object() {
        return Err(Failure::validation(format!(
            "the {} event's detail is not an object",
            envelope.detail_type
        )));
    }
    let time = envelope.time.ok_or_else(|| {
        Failure::validation(format!("the {} event has no time", envelope.detail_type))
    })?;
    let event = DomainEvent {
        detail_type: envelope.detail_type,
        detail: envelope.detail,
    };
    let id = event_id(&event, envelope.id.as_deref()).ok_or_else(|| {
        Failure::validation(format!(
            "the {} event has neither an audit_seq nor an id",
            event.detail_type
        ))
    })?;
    Ok((id, time, event))
}

/// The event id deliveries of `event` carry: `evt_<audit_seq>_<16 hex digits of the
/// SHA-256 of its detail-type and canonical detail>`, the same for every publication of one
/// committed event (a commit's events share its `audit_seq`; their contents tell them
/// apart). An event without `audit_seq` (not from the outbox) falls back to its EventBridge
/// id.
pub fn event_id(event: &DomainEvent, eventbridge_id: Option<&str>) -> Option<String> {
    let Some(seq) = event.detail.get("audit_seq").and_then(Value::as_u64) else {
        return eventbridge_id
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
    };
    let mut text = String::new();
    canonical(&event.detail, &mut text);
    let mut hash = Sha256::new();
    hash.update(event.detail_type.as_bytes());
    hash.update([0u8]);
    hash.update(text.as_bytes());
    let digest = hex::encode(hash.finalize());
    Some(format!("evt_{seq}_{}", &digest[..16]))
}

/// JSON with object keys sorted at every level, so the id does not depend on key order.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn failure(e: DeliverError) -> Failure {
    match e {
        DeliverError::Gov(g) => g.into(),
        DeliverError::Store(s) => s.into(),
        DeliverError::NoStore | DeliverError::Client(_) => {
            Failure::new(CONFIG, steward_core::error::chain(&e).to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(detail: Value) -> DomainEvent {
        DomainEvent {
            detail_type: "ReviewRequested".into(),
            detail,
        }
    }

    #[test]
    fn an_event_republished_with_another_eventbridge_id_keeps_its_event_id() {
        let a = ev(json!({"review_id": "r1", "audit_seq": 7, "nested": {"b": 1, "a": 2}}));
        let b = ev(json!({"nested": {"a": 2, "b": 1}, "audit_seq": 7, "review_id": "r1"}));
        let id = event_id(&a, Some("eb-1")).unwrap();
        assert!(
            id.starts_with("evt_7_") && id.len() == "evt_7_".len() + 16,
            "{id}"
        );
        assert_eq!(event_id(&b, Some("eb-2")).unwrap(), id);
    }

    #[test]
    fn two_events_of_one_commit_get_different_ids() {
        let a = ev(json!({"review_id": "r1", "audit_seq": 7}));
        let b = ev(json!({"review_id": "r2", "audit_seq": 7}));
        assert_ne!(event_id(&a, None), event_id(&b, None));
        let mut c = a.clone();
        c.detail_type = "ReviewDecided".into();
        assert_ne!(event_id(&a, None), event_id(&c, None));
    }

    #[test]
    fn an_event_without_audit_seq_uses_its_eventbridge_id() {
        let a = ev(json!({"review_id": "r1"}));
        assert_eq!(event_id(&a, Some("eb-1")).as_deref(), Some("eb-1"));
        assert_eq!(event_id(&a, None), None);
        assert_eq!(event_id(&a, Some("")), None);
    }
}
