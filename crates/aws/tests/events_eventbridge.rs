//! Governance events to EventBridge.
//!
//! Delivery is tested against moto on loopback (`STEWARD_TEST_AWS_ENDPOINT`, see
//! `scripts/emulators`): a rule on a custom bus sends `steward.governance` events to an SQS
//! queue, as the review inbox's queue is fed in the design. Moto facts relied on (probed in
//! `scripts/emulator-probes/eventbridge_sqs.py`): rule → SQS delivery of the full envelope
//! with `detail` as a JSON object; moto's envelope lacks `account`, so it is not asserted.
//!
//! The retry of partially failed `PutEvents` requests is tested with a test double of the
//! one-request seam (`PutEntries`): neither moto nor any other emulator fails chosen entries
//! on demand (moto fails an entry only when it is malformed, and a malformed entry fails
//! again on every retry), and `aws-smithy-mocks` is not among the dependencies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use steward_testkit::unique;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};
use steward_aws::events::{
    publish_with, Entry, EntryResult, EventBridgePublisher, FailedEntry, PublishError, PutEntries,
    RetryPolicy, SOURCE,
};
use steward_core::records::DomainEvent;

fn event(i: usize) -> DomainEvent {
    DomainEvent {
        detail_type: ["ReviewRequested", "ModelDeployed"][i % 2].into(),
        detail: json!({"schema_version": "1", "name": "credit-risk", "version": 3, "n": i}),
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
    }
}

#[tokio::test]
async fn published_events_reach_an_sqs_target_with_source_detail_type_and_detail() -> Result<()> {
    let sdk = steward_testkit::emulators!().sdk().await;
    let events_client = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);

    let bus = unique("steward-bus");
    events_client.create_event_bus().name(&bus).send().await?;
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("governance"))
        .send()
        .await?
        .queue_url()
        .unwrap()
        .to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .unwrap();
    let rule = unique("all-governance");
    events_client
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(json!({"source": [SOURCE]}).to_string())
        .send()
        .await?;
    events_client
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&queue_arn)
                .build()?,
        )
        .send()
        .await?;

    // 12 events: two PutEvents requests (10 + 2).
    let events: Vec<DomainEvent> = (0..12).map(event).collect();
    let publisher = EventBridgePublisher::new(events_client.clone(), &bus);
    let ids = publisher.publish(&events).await?;
    assert_eq!(ids.len(), 12);
    assert!(ids.iter().all(|id| !id.is_empty()));

    let mut received: HashMap<String, Value> = HashMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while received.len() < 12 && std::time::Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await?;
        for m in out.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap_or_default())?;
            received.insert(body["id"].as_str().unwrap_or_default().to_owned(), body);
            sqs.delete_message()
                .queue_url(&queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await?;
        }
    }
    assert_eq!(received.len(), 12, "every event arrived once");
    for (id, event) in ids.iter().zip(&events) {
        let got = &received[id];
        assert_eq!(got["source"], SOURCE);
        assert_eq!(got["detail-type"], event.detail_type.as_str());
        assert_eq!(
            got["detail"], event.detail,
            "detail arrives as the JSON object, schema_version included"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_per_entry_failure_in_a_real_put_events_answer_is_reported_not_ignored() -> Result<()> {
    let sdk = steward_testkit::emulators!().sdk().await;
    let client = aws_sdk_eventbridge::Client::new(&sdk);
    let bus = unique("steward-bus");
    client.create_event_bus().name(&bus).send().await?;
    // The one entry moto fails on request: an empty DetailType (HTTP 200, FailedEntryCount 1,
    // InvalidArgument) — a failure no retry fixes, so it is reported after one attempt.
    let events = vec![
        event(0),
        DomainEvent {
            detail_type: String::new(),
            detail: json!({"n": 1}),
        },
        event(2),
    ];
    let publisher = EventBridgePublisher::new(client, &bus).with_retry(fast());
    match publisher.publish(&events).await {
        Err(PublishError::EntriesFailed { total, failed }) => {
            assert_eq!(total, 3);
            assert_eq!(failed.len(), 1);
            assert_eq!(
                (failed[0].index, failed[0].code.as_str(), failed[0].attempts),
                (1, "InvalidArgument", 1)
            );
        }
        other => panic!("expected EntriesFailed, got {other:?}"),
    }
    Ok(())
}

/// A `PutEvents` double: entry positions (in the caller's list) fail with the given code for
/// the given number of attempts, then succeed; every request is recorded.
#[derive(Default)]
struct Flaky {
    failures: Mutex<HashMap<u64, (String, u32)>>,
    requests: Mutex<Vec<Vec<Entry>>>,
}

impl Flaky {
    fn failing(spec: &[(u64, &str, u32)]) -> Self {
        let failures = spec
            .iter()
            .map(|&(n, code, times)| (n, (code.to_owned(), times)))
            .collect();
        Self {
            failures: Mutex::new(failures),
            ..Self::default()
        }
    }
    fn requests(&self) -> Vec<Vec<u64>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.iter().map(n_of).collect())
            .collect()
    }
}

fn n_of(e: &Entry) -> u64 {
    serde_json::from_str::<Value>(&e.detail).unwrap()["n"]
        .as_u64()
        .unwrap()
}

#[async_trait]
impl PutEntries for Flaky {
    async fn put_entries(&self, entries: &[Entry]) -> Result<Vec<EntryResult>, PublishError> {
        assert!(entries.len() <= 10, "PutEvents takes at most 10 entries");
        self.requests.lock().unwrap().push(entries.to_vec());
        let mut failures = self.failures.lock().unwrap();
        Ok(entries
            .iter()
            .map(|e| {
                let n = n_of(e);
                match failures.get_mut(&n) {
                    Some((code, times)) if *times > 0 => {
                        *times -= 1;
                        EntryResult::Failed {
                            code: code.clone(),
                            message: format!("entry {n} failed"),
                        }
                    }
                    _ => EntryResult::Accepted {
                        event_id: format!("id-{n}"),
                    },
                }
            })
            .collect())
    }
}

#[tokio::test]
async fn a_partial_failure_resends_exactly_the_failed_entries() -> Result<()> {
    let put = Flaky::failing(&[(1, "ThrottlingException", 1), (3, "InternalException", 1)]);
    let events: Vec<DomainEvent> = (0..5).map(event).collect();

    let ids = publish_with(&put, &fast(), &events).await?;

    assert_eq!(put.requests(), vec![vec![0, 1, 2, 3, 4], vec![1, 3]]);
    // The resent entries are the very entries that failed, detail and all.
    let requests = put.requests.lock().unwrap().clone();
    assert_eq!(
        requests[1],
        vec![requests[0][1].clone(), requests[0][3].clone()]
    );
    assert_eq!(ids, ["id-0", "id-1", "id-2", "id-3", "id-4"]);
    Ok(())
}

#[tokio::test]
async fn failures_across_requests_are_retried_within_their_own_request() -> Result<()> {
    let put = Flaky::failing(&[
        (2, "ThrottlingException", 2),
        (11, "ThrottlingException", 1),
    ]);
    let events: Vec<DomainEvent> = (0..13).map(event).collect();
    let ids = publish_with(&put, &fast(), &events).await?;
    assert_eq!(
        put.requests(),
        vec![
            (0..10).collect::<Vec<_>>(),
            vec![2],
            vec![2],
            vec![10, 11, 12],
            vec![11]
        ]
    );
    assert_eq!(ids.len(), 13);
    Ok(())
}

#[tokio::test]
async fn entries_still_failing_after_the_last_attempt_are_named_in_the_error() -> Result<()> {
    let put = Flaky::failing(&[(1, "ThrottlingException", 99)]);
    let events: Vec<DomainEvent> = (0..3).map(event).collect();
    let err = publish_with(&put, &fast(), &events).await.unwrap_err();
    assert_eq!(
        err,
        PublishError::EntriesFailed {
            total: 3,
            failed: vec![FailedEntry {
                index: 1,
                detail_type: "ModelDeployed".into(),
                code: "ThrottlingException".into(),
                message: "entry 1 failed".into(),
                attempts: 3,
            }],
        }
    );
    assert_eq!(put.requests(), vec![vec![0, 1, 2], vec![1], vec![1]]);
    assert!(
        err.to_string().contains("1 of 3 events were not published"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn an_entry_no_retry_can_fix_is_not_retried() -> Result<()> {
    let put = Flaky::failing(&[(0, "MalformedDetail", 99), (2, "ThrottlingException", 1)]);
    let events: Vec<DomainEvent> = (0..3).map(event).collect();
    match publish_with(&put, &fast(), &events).await {
        Err(PublishError::EntriesFailed { failed, .. }) => {
            assert_eq!(
                failed
                    .iter()
                    .map(|f| (f.index, f.attempts))
                    .collect::<Vec<_>>(),
                [(0, 1)]
            );
        }
        other => panic!("expected EntriesFailed, got {other:?}"),
    }
    assert_eq!(put.requests(), vec![vec![0, 1, 2], vec![2]]);
    Ok(())
}

/// A double whose second request fails as a whole.
struct DownAfterFirst(Mutex<u32>);

#[async_trait]
impl PutEntries for DownAfterFirst {
    async fn put_entries(&self, entries: &[Entry]) -> Result<Vec<EntryResult>, PublishError> {
        let mut calls = self.0.lock().unwrap();
        *calls += 1;
        if *calls > 1 {
            return Err(PublishError::Request {
                message: "connection reset".into(),
                published: 0,
                total: entries.len(),
            });
        }
        Ok(entries
            .iter()
            .map(|e| EntryResult::Accepted {
                event_id: format!("id-{}", n_of(e)),
            })
            .collect())
    }
}

#[tokio::test]
async fn a_failed_request_reports_how_many_events_were_already_published() {
    let events: Vec<DomainEvent> = (0..15).map(event).collect();
    assert_eq!(
        publish_with(&DownAfterFirst(Mutex::new(0)), &fast(), &events).await,
        Err(PublishError::Request {
            message: "connection reset".into(),
            published: 10,
            total: 15
        })
    );
}
