//! The stream publisher: DynamoDB Streams is the outbox. For every new audit event item it
//! writes the event's canonical bytes to the Object Lock bucket and publishes the governance
//! events the commit carried to EventBridge, so no committed change misses its audit object
//! or its events.
//!
//! Invariants:
//! - Records are handled in stream order and the first failure stops the batch: it is
//!   reported as the batch item failure (its `SequenceNumber`), so Lambda delivers it and
//!   everything after it again, in order. Nothing is skipped, ever; a record that can never
//!   succeed (a corrupt item, an object key holding other bytes) blocks its shard until an
//!   operator looks (the event source mapping's retry limit and failure destination decide
//!   what happens then).
//! - Redelivery is harmless: an audit object already holding the same bytes is not written
//!   again (no new object version), and events whose outbox marker exists are not published
//!   again. Each published event's `detail` carries `audit_seq`, the sequence number of the
//!   audit event that carried it.
//! - Delivery of events is at least once: the marker is written after EventBridge accepted
//!   the events, so a crash between the two publishes them again on redelivery; consumers
//!   deduplicate on `(detail-type, audit_seq)`. A partial failure inside one `PutEvents`
//!   batch (some entries accepted, some not after retries) likewise republishes the
//!   accepted ones.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use steward_core::audit::{leaf_hash, AuditEvent};
use steward_core::records::DomainEvent;

use super::Failure;
use crate::dynamo::{audit_event_from_image, DynamoStore};
use crate::events::EventBridgePublisher;
use crate::s3::{AuditObjects, PutOutcome};

/// What the stream publisher writes to.
#[derive(Debug, Clone)]
pub struct StreamPublisher {
    /// The registry table (its outbox markers).
    pub store: Arc<DynamoStore>,
    pub objects: AuditObjects,
    pub events: EventBridgePublisher,
}

/// What happened to the governance events of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsOutcome {
    /// The audit event carried none (only a commit's first audit event carries them).
    NoEvents,
    /// Published now; their EventBridge ids.
    Published(Vec<String>),
    /// Published by an earlier delivery (the outbox marker exists): not published again.
    AlreadyPublished,
}

/// What one stream record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Not an inserted audit event (every item of the table streams).
    Skipped,
    AuditEvent {
        seq: u64,
        object: PutOutcome,
        events: EventsOutcome,
    },
}

/// The outcome of one batch: each record handled, in order, and the failure that stopped it.
#[derive(Debug, Default)]
pub struct StreamReport {
    /// `(SequenceNumber, outcome)` of every record handled.
    pub handled: Vec<(String, RecordOutcome)>,
    /// The record that failed (its `SequenceNumber`) and why; later records were not touched.
    pub failed: Option<(String, Failure)>,
}

impl StreamReport {
    /// The response Lambda's event source mapping reads (`ReportBatchItemFailures`).
    pub fn response(&self) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        if let Some((id, _)) = &self.failed {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(id.clone());
            response.batch_item_failures.push(failure);
        }
        response
    }
}

/// An inserted audit event item, checked: the bytes are canonical, name their own `seq` and
/// hash to the stored leaf hash.
struct Decoded {
    event: AuditEvent,
    events: Vec<DomainEvent>,
}

fn decode(record: &EventRecord) -> Result<Option<Decoded>, Failure> {
    if record.event_name != "INSERT" {
        return Ok(None);
    }
    let image: HashMap<String, AttributeValue> = record.change.new_image.clone().into();
    let Some(row) =
        audit_event_from_image(image).map_err(|e| Failure::validation(e.to_string()))?
    else {
        return Ok(None);
    };
    let corrupt = |why: &str| Failure::validation(format!("audit event item {}: {why}", row.seq));
    let event = AuditEvent::from_canonical(&row.bytes)
        .map_err(|e| corrupt(&format!("the bytes are not an audit event: {e}")))?;
    if event.seq != row.seq {
        return Err(corrupt(&format!("the bytes name event {}", event.seq)));
    }
    if leaf_hash(&row.bytes) != row.leaf_hash {
        return Err(corrupt("the bytes do not hash to the stored leaf hash"));
    }
    if event.canonical_bytes() != row.bytes {
        return Err(corrupt("the bytes are not canonical JSON"));
    }
    Ok(Some(Decoded {
        event,
        events: row.events,
    }))
}

/// The events as published: each `detail` gains `audit_seq`.
pub fn with_audit_seq(events: &[DomainEvent], seq: u64) -> Vec<DomainEvent> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Value::Object(detail) = &mut e.detail {
                detail.insert("audit_seq".into(), Value::from(seq));
            }
            e
        })
        .collect()
}

async fn handle(
    deps: &StreamPublisher,
    decoded: Decoded,
    published: &Result<HashSet<u64>, Failure>,
) -> Result<RecordOutcome, Failure> {
    let seq = decoded.event.seq;
    let object = deps.objects.put_event(&decoded.event).await?;
    let events = if decoded.events.is_empty() {
        EventsOutcome::NoEvents
    } else if published.as_ref().map_err(Clone::clone)?.contains(&seq) {
        EventsOutcome::AlreadyPublished
    } else {
        let ids = deps
            .events
            .publish(&with_audit_seq(&decoded.events, seq))
            .await?;
        deps.store.mark_published(seq, &ids).await?;
        EventsOutcome::Published(ids)
    };
    Ok(RecordOutcome::AuditEvent {
        seq,
        object,
        events,
    })
}

/// Handles one batch of stream records (see the module's invariants). Requests per audit
/// event: one `PutObject` (plus a `HeadObject` when redelivered); for one carrying events,
/// one `PutEvents` and one `PutItem` (marker); per batch, one `BatchGetItem` of the markers.
pub async fn publish_stream(event: &Event, deps: &StreamPublisher) -> StreamReport {
    let id_of = |r: &EventRecord| {
        r.change
            .sequence_number
            .clone()
            .unwrap_or_else(|| r.event_id.clone())
    };
    let decoded: Vec<(String, Result<Option<Decoded>, Failure>)> = event
        .records
        .iter()
        .map(|r| (id_of(r), decode(r)))
        .collect();
    // The markers of every decodable record before the first undecodable one, in one read.
    let seqs: Vec<u64> = decoded
        .iter()
        .map_while(|(_, d)| d.as_ref().ok())
        .flatten()
        .filter(|d| !d.events.is_empty())
        .map(|d| d.event.seq)
        .collect();
    let published = deps.store.published(&seqs).await.map_err(Failure::from);

    let mut report = StreamReport::default();
    for (id, d) in decoded {
        let outcome = match d {
            Ok(None) => Ok(RecordOutcome::Skipped),
            Ok(Some(d)) => handle(deps, d, &published).await,
            Err(f) => Err(f),
        };
        match outcome {
            Ok(outcome) => {
                if let RecordOutcome::AuditEvent {
                    seq,
                    object,
                    events,
                } = &outcome
                {
                    tracing::info!(sequence_number = %id, seq, ?object, ?events, "audit event published");
                }
                report.handled.push((id, outcome));
            }
            Err(f) => {
                tracing::error!(sequence_number = %id, error_type = f.error_type, error = %f.message,
                    "stream record failed; it and every later record will be delivered again");
                report.failed = Some((id, f));
                break;
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn published_events_carry_the_audit_seq() {
        let events = [
            DomainEvent {
                detail_type: "ReviewDecided".into(),
                detail: json!({"review_id": "r"}),
            },
            DomainEvent {
                detail_type: "Odd".into(),
                detail: json!([1]),
            },
        ];
        let out = with_audit_seq(&events, 42);
        assert_eq!(out[0].detail, json!({"review_id": "r", "audit_seq": 42}));
        assert_eq!(out[1].detail, json!([1]));
    }

    #[test]
    fn the_response_names_the_failed_record_only() {
        let mut report = StreamReport::default();
        assert!(report.response().batch_item_failures.is_empty());
        report.failed = Some(("400".into(), Failure::validation("x")));
        let body = serde_json::to_value(report.response()).unwrap();
        assert_eq!(
            body,
            json!({"batchItemFailures": [{"itemIdentifier": "400"}]})
        );
    }

    #[test]
    fn records_that_are_not_inserted_audit_events_are_skipped() {
        let record: EventRecord = serde_json::from_value(json!({
            "awsRegion": "us-east-1", "eventID": "1", "eventName": "MODIFY",
            "dynamodb": {"SizeBytes": 1, "NewImage": {"entity": {"S": "audit_event"}}},
        }))
        .unwrap();
        assert!(decode(&record).unwrap().is_none());
        let record: EventRecord = serde_json::from_value(json!({
            "awsRegion": "us-east-1", "eventID": "1", "eventName": "INSERT",
            "dynamodb": {"SizeBytes": 1, "NewImage": {"pk": {"S": "MODEL#m"}, "sk": {"S": "MODEL"}, "entity": {"S": "model"}}},
        }))
        .unwrap();
        assert!(decode(&record).unwrap().is_none());
        let record: EventRecord = serde_json::from_value(json!({
            "awsRegion": "us-east-1", "eventID": "1", "eventName": "INSERT",
            "dynamodb": {"SizeBytes": 1, "NewImage": {"entity": {"S": "audit_event"}, "seq": {"N": "1"},
                "bytes": {"B": "e30="}, "leaf_hash": {"B": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}},
        }))
        .unwrap();
        let err = decode(&record).err().unwrap();
        assert_eq!(err.error_type, crate::diagnostic::VALIDATION);
    }
}
