//! S3 Object Lock `PutObject` failing in the stream publisher: the stream holds at the gap
//! until the object is written. What alarms it is the deployment's: the event source mapping
//! never gives up on a record (`MaximumRetryAttempts: -1`) and the `ops-outbox-behind` alarm
//! fires on the publisher's `IteratorAge`; a batch item failure is no Lambda error, so the
//! iterator age is what grows while a record keeps failing.

use anyhow::Result;
use steward_aws::diagnostic::TRANSIENT;
use steward_aws::handlers::stream::RecordOutcome;
use steward_aws::s3::PutOutcome;

use super::injector::{Fault, FaultInjector, Hits, Rule};
use crate::*;

#[tokio::test]
async fn an_audit_object_put_that_keeps_failing_holds_the_stream_at_the_gap_until_it_is_written(
) -> Result<()> {
    let stack = Stack::new(&[]).await?;
    some_governance(&stack, "credit-risk").await?;
    let head = stack.backend.store.head().await?;
    let records = stack.audit_records().await?;
    assert_eq!(records.len() as u64, head.size);
    assert!(head.size >= 4, "{head:?}");

    let injector = FaultInjector::new();
    let faulty = faulty_backend(&stack, &injector).await?;
    let objects = faulty
        .audit_objects(&stack.env)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    // Event 1's object is written but the answer lost: the SDK's retry is refused by
    // If-None-Match and read back as the same bytes.
    injector.arm(
        Rule::new("S3.PutObject", Hits::Nth(vec![1]), Fault::LoseResponse)
            .on_path(objects.event_key(1)),
    );
    // Event 2's object cannot be written at all, for as long as the fault lasts.
    injector.arm(
        Rule::new("S3.PutObject", Hits::Every, Fault::s3(500, "InternalError"))
            .on_path(objects.event_key(2)),
    );

    let p = stack.publisher_over(&faulty);
    for delivery in 0..2 {
        // Lambda delivers the batch again from the failed record on (ReportBatchItemFailures).
        let from = if delivery == 0 { 0 } else { 1 };
        let report = publish_stream(&batch(&records[from..]), &p).await;
        let (failed, failure) = report.failed.clone().expect("event 2 fails");
        assert_eq!(failed, sequence_number(&records[1]), "delivery {delivery}");
        assert_eq!(failure.error_type, TRANSIENT, "{failure}");
        assert!(failure.message.contains("PutObject"), "{failure}");
        assert_eq!(
            serde_json::to_value(report.response())?,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": failed}]})
        );
        if delivery == 0 {
            assert!(
                matches!(
                    &report.handled[..],
                    [(
                        _,
                        RecordOutcome::AuditEvent {
                            seq: 1,
                            object: PutOutcome::AlreadyPresent { .. },
                            ..
                        }
                    )]
                ),
                "{:?}",
                report.handled
            );
        } else {
            assert!(report.handled.is_empty());
        }
        // Never past the gap: no later object, no later event published.
        assert_eq!(event_objects(&stack).await?, vec![1], "delivery {delivery}");
        let later: Vec<u64> = (2..=head.size).collect();
        assert!(stack.backend.store.published(&later).await?.is_empty());
    }
    let (requests, injected) = injector.take();
    // 1 lost answer, then 3 SDK attempts for event 2 on each of the two deliveries.
    assert_eq!(injected.len(), 7, "{injected:?}");
    assert!(requests.contains_key("S3.HeadObject"), "{requests:?}");

    // The fault clears; the next delivery writes everything from the gap on.
    injector.clear();
    let report = publish_stream(&batch(&records[1..]), &p).await;
    assert!(report.failed.is_none(), "{:?}", report.failed);
    assert_eq!(report.handled.len(), records.len() - 1);
    assert_eq!(
        event_objects(&stack).await?,
        (1..=head.size).collect::<Vec<_>>()
    );

    // Every carried event reached the bus once.
    let carried = carried_events(&stack).await?;
    let expected: BTreeMap<(String, u64), usize> = carried
        .iter()
        .flat_map(|(seq, types)| types.iter().map(|t| ((t.clone(), *seq), 1)))
        .collect();
    assert_eq!(received_events(&stack, expected.len()).await?, expected);

    let model = stack.backend.gov.model_detail("credit-risk").await?;
    assert_eq!(model.versions.len(), 1);
    assert_audit_complete(&stack).await?;
    Ok(())
}

/// The lines of the template's resource `name`, up to the next resource or section.
fn resource(template: &str, name: &str) -> String {
    let header = format!("  {name}:");
    let mut lines = template.lines().skip_while(|l| *l != header);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("{name} is in the template"));
    let sibling = |l: &&str| {
        let body = l.trim_start_matches(' ');
        l.len() - body.len() <= 2 && body.starts_with(|c: char| c.is_ascii_alphanumeric())
    };
    std::iter::once(first)
        .chain(lines.take_while(|l| !sibling(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_failing_outbox_record_is_retried_for_ever_and_alarmed() {
    let template = include_str!("../../../../infra/template.yaml");
    let function = resource(template, "StreamPublisherFunction");
    for line in [
        "FunctionResponseTypes: [ReportBatchItemFailures]",
        "MaximumRetryAttempts: -1",
        "MaximumRecordAgeInSeconds: -1",
    ] {
        assert!(function.contains(line), "StreamPublisherFunction: {line}");
    }
    let alarm = resource(template, "StreamPublisherIteratorAgeAlarm");
    for line in [
        "MetricName: IteratorAge",
        "Value: !Ref StreamPublisherFunction",
        "AlarmActions: [!Ref AlarmTopic]",
    ] {
        assert!(
            alarm.contains(line),
            "StreamPublisherIteratorAgeAlarm: {line}"
        );
    }
}
