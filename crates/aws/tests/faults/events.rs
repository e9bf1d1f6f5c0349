//! EventBridge `PutEvents` failing in part: HTTP 200 with `FailedEntryCount` and per-entry
//! error codes. The publisher sends exactly the failed entries again; a record whose entries
//! still fail is a batch item failure, delivered again, never dropped. Delivery is at least
//! once: the entries accepted before a record failed are published again with it (the
//! outbox marker is per audit event); consumers deduplicate on `(detail-type, audit_seq)`.

use anyhow::{Context, Result};
use steward_aws::diagnostic::TRANSIENT;
use steward_aws::handlers::stream::{EventsOutcome, RecordOutcome};

use super::injector::{Fault, FaultInjector, Hits, Rule};
use crate::*;

#[tokio::test]
async fn put_events_entries_that_fail_are_sent_again_and_a_record_still_failing_is_redelivered(
) -> Result<()> {
    let stack = Stack::new(&[]).await?;
    some_governance(&stack, "churn").await?;
    let head = stack.backend.store.head().await?;
    let records = stack.audit_records().await?;
    let carried = carried_events(&stack).await?;
    // A commit that carries more than one event: one PutEvents request of several entries.
    let (seq, types) = carried
        .iter()
        .find(|(_, t)| t.len() >= 2)
        .cloned()
        .context("a commit with two events or more")?;
    let at = (seq - 1) as usize;
    let failing = types.last().cloned().unwrap_or_default();

    // The records before it go through a healthy publisher.
    let report = publish_stream(&batch(&records[..at]), &stack.publisher()).await;
    assert!(report.failed.is_none(), "{:?}", report.failed);

    // The last entry fails on every attempt, the others are accepted: after the publisher's
    // attempts the record fails as transient, nothing after it is touched, no marker.
    let injector = FaultInjector::new();
    injector.arm(Rule::new(
        "EventBridge.PutEvents",
        Hits::Every,
        Fault::FailEntries {
            detail_type: failing.clone(),
            code: "ThrottlingException",
        },
    ));
    let faulty = faulty_backend(&stack, &injector).await?;
    let p = stack.publisher_over(&faulty);
    let report = publish_stream(&batch(&records[at..]), &p).await;
    let (failed, failure) = report.failed.clone().expect("the record fails");
    assert_eq!(failed, sequence_number(&records[at]));
    assert!(report.handled.is_empty());
    assert_eq!(failure.error_type, TRANSIENT, "{failure}");
    assert!(
        failure.message.contains(&failing) && failure.message.contains("ThrottlingException"),
        "the failure names the entry: {failure}"
    );
    let (requests, injected) = injector.take();
    assert_eq!(
        requests.get("EventBridge.PutEvents"),
        Some(&5),
        "the first send and four of the failed entry alone: {requests:?}"
    );
    assert_eq!(injected.len(), 5);
    assert!(stack.backend.store.published(&[seq]).await?.is_empty());

    // The fault clears after one more failed send: the redelivery publishes the record
    // (the failed entry sent again once) and everything after it.
    injector.clear();
    injector.arm(Rule::new(
        "EventBridge.PutEvents",
        Hits::Nth(vec![1]),
        Fault::FailEntries {
            detail_type: failing.clone(),
            code: "InternalFailure",
        },
    ));
    let report = publish_stream(&batch(&records[at..]), &p).await;
    assert!(report.failed.is_none(), "{:?}", report.failed);
    match &report.handled[0].1 {
        RecordOutcome::AuditEvent {
            events: EventsOutcome::Published(ids),
            ..
        } => {
            assert_eq!(ids.len(), types.len());
            assert!(ids.iter().all(|id| !id.is_empty()), "{ids:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(injector.take().1.len(), 1);
    assert!(!stack.backend.store.published(&[seq]).await?.is_empty());

    // On the bus: every event; the failed entry once; the entries accepted before the record
    // failed twice (at least once); nothing else twice.
    let mut expected: BTreeMap<(String, u64), usize> = BTreeMap::new();
    for (s, ts) in &carried {
        for t in ts {
            *expected.entry((t.clone(), *s)).or_default() += 1;
        }
    }
    for t in &types[..types.len() - 1] {
        *expected.entry((t.clone(), seq)).or_default() += 1;
    }
    let total = expected.values().sum();
    assert_eq!(received_events(&stack, total).await?, expected);

    assert_eq!(stack.backend.store.head().await?, head);
    assert_eq!(
        stack
            .backend
            .gov
            .model_detail("churn")
            .await?
            .versions
            .len(),
        1
    );
    assert_audit_complete(&stack).await?;
    Ok(())
}
