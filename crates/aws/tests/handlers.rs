//! The Lambda handlers against the emulators (DynamoDB Local for the table, moto for S3
//! Object Lock, EventBridge, SQS and Step Functions), built exactly as the functions' mains
//! build them (`AwsBackend::connect_with` over an `AwsEnv`), driven in-process.
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` and `STEWARD_TEST_AWS_ENDPOINT` (source the env file
//! of `scripts/emulators start`, or run under `scripts/emulators run -- cargo test -p
//! steward-aws --test handlers`); without them the tests fail, saying so. Each test builds its
//! own table, bucket, bus and queues.
//!
//! Stream records: see `common/stream.rs`. Writes of other items (models, versions,
//! reviews) are interleaved as the stream would carry them, as `INSERT` and `MODIFY` records.
//!
//! Workflows: the review-inbox and workflow-events tests run the deployed approval state
//! machine (`statemachines/approval.asl.json`) on moto, and feed their queues through the
//! deployed rules (`events/rules/`), draining them into the handlers as a Lambda event source
//! mapping would.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};

use steward_aws::events::EventBridgePublisher;
use steward_aws::handlers::checkpoint::checkpoint;
use steward_aws::handlers::inbox::{review_inbox, ReviewInbox};
use steward_aws::handlers::stream::{publish_stream, EventsOutcome, RecordOutcome};
use steward_aws::handlers::workflow_events::{
    apply_workflow_event, workflow_events, WorkflowOutcome,
};
use steward_aws::kms::CheckpointKey;
use steward_aws::s3::{verify_s3, PutOutcome};
use steward_aws::workflows::TaskTokens;
use steward_core::audit::{AuditEvent, CheckpointSigner, Ed25519Signer};
use steward_core::ports::AuditLog;
use steward_core::records::{PromotionStatus, ReviewStatus};
use steward_core::types::{Environment, PrincipalId, RiskTier, Role};

// ---------------------------------------------------------------------------------- harness

mod common;
use common::*;
use steward_testkit::vn;

impl Stack {
    /// The audit log's items as stream records, with the model's items interleaved (see the
    /// module documentation).
    async fn stream_batch(&self, model: &str) -> Result<Vec<Value>> {
        let mut records = Vec::new();
        for (i, item) in self
            .partition(&format!("MODEL#{model}"))
            .await?
            .into_iter()
            .enumerate()
        {
            records.push(stream_record(
                if i % 2 == 0 { "INSERT" } else { "MODIFY" },
                &item,
            ));
        }
        let mut interleaved = Vec::new();
        for item in self.partition("AUDIT#0").await? {
            interleaved.push(stream_record("INSERT", &item));
            if let Some(r) = records.pop() {
                interleaved.push(r);
            }
        }
        interleaved.extend(records);
        Ok(interleaved)
    }
}

/// `(detail-type, audit_seq)` of every governance event received, with how often each came.
fn received_events(messages: &[aws_sdk_sqs::types::Message]) -> BTreeMap<(String, u64), usize> {
    let mut out = BTreeMap::new();
    for m in messages {
        let body: Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap();
        let key = (
            body["detail-type"].as_str().unwrap_or_default().to_owned(),
            body["detail"]["audit_seq"]
                .as_u64()
                .expect("every event carries audit_seq"),
        );
        *out.entry(key).or_default() += 1;
    }
    out
}

async fn object_versions(stack: &Stack) -> Result<usize> {
    let out = stack
        .s3
        .list_object_versions()
        .bucket(stack.env.audit_bucket.as_deref().unwrap())
        .prefix(&stack.env.audit_prefix)
        .send()
        .await?;
    Ok(out.versions().len())
}

// ---------------------------------------------------------------------------------- stream

#[tokio::test]
async fn a_stream_batch_redelivered_twice_produces_no_duplicate_audit_object_or_event() -> Result<()>
{
    let stack = Stack::new(&[]).await?;
    some_governance(&stack, "credit-risk").await?;
    let head = stack.backend.store.head().await?;
    let records = stack.stream_batch("credit-risk").await?;
    let audit_records = records
        .iter()
        .filter(|r| r["dynamodb"]["NewImage"]["entity"]["S"] == "audit_event")
        .count() as u64;
    assert_eq!(audit_records, head.size);
    let expected_events: usize = stack
        .partition("AUDIT#0")
        .await?
        .iter()
        .map(|i| {
            i.get("events")
                .and_then(|e| e.as_l().ok())
                .map_or(0, Vec::len)
        })
        .sum();
    assert!(
        expected_events >= 5,
        "the scenario publishes events: {expected_events}"
    );

    // First delivery: every audit event gets its object, every carried event is published.
    let publisher = stack.publisher();
    let report = publish_stream(&batch(&records), &publisher).await;
    assert!(report.failed.is_none(), "{:?}", report.failed);
    assert!(report.response().batch_item_failures.is_empty());
    let written: Vec<u64> = report
        .handled
        .iter()
        .filter_map(|(_, o)| match o {
            RecordOutcome::AuditEvent {
                seq,
                object: PutOutcome::Written { .. },
                ..
            } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(written, (1..=head.size).collect::<Vec<_>>());
    assert_eq!(
        report
            .handled
            .iter()
            .filter(|(_, o)| *o == RecordOutcome::Skipped)
            .count() as u64,
        records.len() as u64 - head.size
    );

    // The checkpoint function signs the head and stores it: S3 alone now verifies.
    let cp = checkpoint(&stack.checkpointer())
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert!(
        cp.signed && cp.object_written && cp.size == head.size,
        "{cp:?}"
    );
    let key = CheckpointKey::from_bytes(&Ed25519Signer::from_seed(&SEED).public_key())?;
    let verified = verify_s3(
        &stack.s3,
        stack.env.audit_bucket.as_deref().unwrap(),
        &stack.env.audit_prefix,
        &key,
    )
    .await?;
    assert_eq!(
        (verified.events, verified.checkpoints, verified.size),
        (head.size, 1, head.size)
    );

    // Every object is under COMPLIANCE retention for the configured day.
    for seq in [1, head.size] {
        let h = stack
            .s3
            .head_object()
            .bucket(stack.env.audit_bucket.as_deref().unwrap())
            .key(publisher.objects.event_key(seq))
            .send()
            .await?;
        assert_eq!(
            h.object_lock_mode(),
            Some(&aws_sdk_s3::types::ObjectLockMode::Compliance)
        );
        let until = h
            .object_lock_retain_until_date()
            .context("retain-until")?
            .secs();
        let in_a_day = chrono::Utc::now().timestamp() + 86_400;
        assert!(
            (until - in_a_day).abs() < 120,
            "retain until {until}, expected about {in_a_day}"
        );
    }

    let first = stack
        .drain(
            &stack.governance_queue,
            expected_events,
            Duration::from_secs(5),
        )
        .await?;
    let events = received_events(&first);
    assert_eq!(
        events.values().sum::<usize>(),
        expected_events,
        "{events:?}"
    );
    assert!(events.values().all(|n| *n == 1), "{events:?}");
    assert!(
        events.contains_key(&("ModelVersionRegistered".to_owned(), 1)),
        "{events:?}"
    );
    let versions = object_versions(&stack).await?;
    assert_eq!(versions as u64, head.size + 1);

    // The same batch, delivered twice more: nothing new anywhere.
    for _ in 0..2 {
        let again = publish_stream(&batch(&records), &publisher).await;
        assert!(again.failed.is_none(), "{:?}", again.failed);
        for (_, outcome) in &again.handled {
            if let RecordOutcome::AuditEvent { object, events, .. } = outcome {
                assert!(
                    matches!(object, PutOutcome::AlreadyPresent { .. }),
                    "{object:?}"
                );
                assert!(
                    matches!(
                        events,
                        EventsOutcome::NoEvents | EventsOutcome::AlreadyPublished
                    ),
                    "{events:?}"
                );
            }
        }
    }
    assert_eq!(
        object_versions(&stack).await?,
        versions,
        "no new object versions"
    );
    let duplicates = stack
        .drain(&stack.governance_queue, 0, Duration::from_secs(1))
        .await?;
    assert!(
        duplicates.is_empty(),
        "redelivery published {:?}",
        received_events(&duplicates)
    );

    // An idle log is not signed again.
    let idle = checkpoint(&stack.checkpointer())
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert!(
        !idle.signed && !idle.object_written && idle.size == head.size,
        "{idle:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_record_is_named_in_batch_item_failures_and_stops_the_batch() -> Result<()> {
    let stack = Stack::new(&[]).await?;
    some_governance(&stack, "churn").await?;
    let audit: Vec<Value> = stack.audit_records().await?;
    assert!(audit.len() >= 4);

    // EventBridge refuses the whole request (an unknown bus): the first record carrying
    // events fails, nothing after it is touched, and no marker is written.
    let mut broken = stack.publisher();
    broken.events = EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(&stack.backend.sdk),
        "no-such-bus",
    );
    let report = publish_stream(&batch(&audit), &broken).await;
    let (failed_id, failure) = report.failed.clone().expect("a failure");
    assert_eq!(
        failed_id,
        sequence_number(&audit[0]),
        "event 1 carries ModelVersionRegistered"
    );
    assert_eq!(failure.error_type, "Steward.Transient", "{failure}");
    assert!(report.handled.is_empty());
    let body = serde_json::to_value(report.response())?;
    assert_eq!(
        body,
        json!({"batchItemFailures": [{"itemIdentifier": failed_id}]})
    );
    assert!(stack.backend.store.published(&[1]).await?.is_empty());

    // Redelivered to a working publisher, everything goes through once.
    let publisher = stack.publisher();
    let ok = publish_stream(&batch(&audit), &publisher).await;
    assert!(ok.failed.is_none(), "{:?}", ok.failed);
    // The object of event 1 was written by the failed delivery already.
    assert!(matches!(
        &ok.handled[0].1,
        RecordOutcome::AuditEvent {
            object: PutOutcome::AlreadyPresent { .. },
            events: EventsOutcome::Published(_),
            ..
        }
    ));

    // A forged event at an existing position: the object holds other bytes, so the record
    // fails, is named, and the records after it wait.
    let item = &stack.partition("AUDIT#0").await?[2];
    let mut event = AuditEvent::from_canonical(item["bytes"].as_b().unwrap().as_ref())?;
    event.actor = "arn:aws:iam::123456789012:user/mallory".into();
    let bytes = event.canonical_bytes();
    let mut forged_item = item.clone();
    forged_item.insert("bytes".into(), AttributeValue::B(bytes.clone().into()));
    forged_item.insert(
        "leaf_hash".into(),
        AttributeValue::B(steward_core::audit::leaf_hash(&bytes).to_vec().into()),
    );
    let forged = stream_record("INSERT", &forged_item);
    let corrupt = {
        let mut r = stream_record("INSERT", item);
        r["dynamodb"]["NewImage"]["bytes"] = json!({"B": "bm90IGpzb24="});
        r
    };
    for (bad, expected_type) in [
        (forged, "Steward.Conflict"),
        (corrupt, "Steward.Validation"),
    ] {
        let records = vec![audit[1].clone(), bad.clone(), audit[3].clone()];
        let report = publish_stream(&batch(&records), &publisher).await;
        let (id, failure) = report.failed.clone().expect("a failure");
        assert_eq!(id, sequence_number(&bad));
        assert_eq!(failure.error_type, expected_type, "{failure}");
        assert_eq!(
            report.handled.len(),
            1,
            "the record after the failure was not touched"
        );
        assert_eq!(
            serde_json::to_value(report.response())?,
            json!({"batchItemFailures": [{"itemIdentifier": id}]})
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------- workflows

async fn execution_status(
    sdk: &aws_config::SdkConfig,
    arn: &str,
) -> Result<aws_sdk_sfn::types::ExecutionStatus> {
    let sfn = aws_sdk_sfn::Client::new(sdk);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let d = sfn.describe_execution().execution_arn(arn).send().await?;
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running
            || std::time::Instant::now() > deadline
        {
            return Ok(d.status().clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_inbox_stores_each_token_and_answers_a_review_decided_before_it_arrived() -> Result<()>
{
    let (stack, inbox_queue, outcomes_queue) = workflow_stack(None).await?;
    let workflows = stack
        .backend
        .require_step_functions()
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    let inbox = ReviewInbox {
        gov: stack.backend.gov.clone(),
        store: stack.backend.store.clone(),
        workflows: workflows.clone(),
    };
    let gov = &stack.backend.gov;
    gov.register(&dev(), "fraud", manifest(), None).await?;
    gov.register(&dev(), "fraud", manifest(), None).await?;

    // Version 1: the token arrives first, then the decision answers the task.
    let p1 = gov
        .request_promotion(&dev(), "fraud", vn(1), Environment::Staging, None)
        .await?;
    let asked = stack
        .drain(&inbox_queue, 1, Duration::from_secs(10))
        .await?;
    assert_eq!(asked.len(), 1);
    let response = review_inbox(&stack.sqs_event(&inbox_queue, &asked).await?, &inbox).await;
    assert!(response.batch_item_failures.is_empty());
    let token = stack
        .backend
        .store
        .task_token(&p1.reviews[0].id)
        .await?
        .expect("stored");
    assert!(asked[0].body().unwrap_or_default().contains(&token));
    // The review and promotion as the API returns them never carry the token.
    let shown = serde_json::to_string(&gov.promotion(&p1.id).await?)?;
    assert!(!shown.contains(&token));
    gov.decide(&tech(), &p1.reviews[0].id, approve()).await?;
    assert_eq!(
        execution_status(&stack.backend.sdk, &workflows.execution_arn(&p1.id)).await?,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded
    );
    // The workflow reports the approval; the registry agrees.
    let outcome = stack
        .drain(&outcomes_queue, 1, Duration::from_secs(5))
        .await?;
    assert_eq!(outcome.len(), 1);
    let event = stack.sqs_event(&outcomes_queue, &outcome).await?;
    let envelope = steward_aws::handlers::eventbridge_envelope(&event.records[0])
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(envelope.detail_type, "PromotionApproved");
    assert_eq!(
        apply_workflow_event(gov, &envelope).await?,
        WorkflowOutcome::Agrees
    );
    assert!(workflow_events(&event, gov, None)
        .await
        .batch_item_failures
        .is_empty());

    // Version 2: the decision comes first (no token yet); the inbox answers on arrival.
    let p2 = gov
        .request_promotion(&dev(), "fraud", vn(2), Environment::Staging, None)
        .await?;
    gov.decide(&tech(), &p2.reviews[0].id, approve()).await?;
    let asked = stack
        .drain(&inbox_queue, 1, Duration::from_secs(10))
        .await?;
    assert_eq!(asked.len(), 1);
    let event = stack.sqs_event(&inbox_queue, &asked).await?;
    let response = review_inbox(&event, &inbox).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        execution_status(&stack.backend.sdk, &workflows.execution_arn(&p2.id)).await?,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded
    );
    // A redelivered request finds the task closed: reported, not retried.
    let response = review_inbox(&event, &inbox).await;
    assert!(response.batch_item_failures.is_empty());

    // Malformed and unknown requests are dropped, not retried forever.
    let garbage = json!({"Records": [
        {"messageId": "m1", "body": "not json", "attributes": {}, "messageAttributes": {}},
        {"messageId": "m2", "body": json!({"detail-type": "ReviewRequested", "source": "steward.workflow",
            "detail": {"review_id": "fraud.9.pr-0000000000000000-technical", "task_token": "t"}}).to_string(),
            "attributes": {}, "messageAttributes": {}},
        {"messageId": "m3", "body": json!({"detail-type": "ReviewRequested", "source": "steward.workflow",
            "detail": {"review_id": "nonsense"}}).to_string(), "attributes": {}, "messageAttributes": {}},
    ]});
    let response = review_inbox(&serde_json::from_value(garbage)?, &inbox).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    Ok(())
}

#[tokio::test]
async fn a_review_timed_out_by_its_workflow_expires_the_promotion_once() -> Result<()> {
    // The default policy with a two-second review timeout for the high tier (the fixture's).
    let short_reviews = TestPolicy::default()
        .review_timeout(RiskTier::High, "2s")
        .to_string();
    let (stack, _, outcomes_queue) = workflow_stack(Some(&short_reviews)).await?;
    let gov = &stack.backend.gov;
    gov.register(&dev(), "pricing", manifest(), None).await?;
    let p = gov
        .request_promotion(&dev(), "pricing", vn(1), Environment::Staging, None)
        .await?;
    let review_id = p.reviews[0].id.clone();

    // Nobody decides: the workflow's task times out and it publishes ReviewTimedOut, which
    // the approval-outcomes rule delivers to the workflow-events queue.
    let messages = stack
        .drain(&outcomes_queue, 1, Duration::from_secs(15))
        .await?;
    assert_eq!(messages.len(), 1);
    let event = stack.sqs_event(&outcomes_queue, &messages).await?;
    let envelope = steward_aws::handlers::eventbridge_envelope(&event.records[0])
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(
        (
            envelope.detail_type.as_str(),
            envelope.detail["review_id"].as_str()
        ),
        ("ReviewTimedOut", Some(review_id.as_str()))
    );
    let response = workflow_events(&event, gov, None).await;
    assert!(response.batch_item_failures.is_empty());

    let after = gov.promotion(&p.id).await?;
    assert_eq!(after.status, PromotionStatus::Expired);
    assert_eq!(after.reviews[0].status, ReviewStatus::Expired);
    let name = steward_core::types::ModelName::parse("pricing").unwrap();
    let v = gov.registry().version(&name, vn(1)).await?.context("v1")?;
    assert_eq!(v.open_promotion, None, "the version may be promoted again");
    let size = stack.backend.store.head().await?.size;
    let last = stack.backend.store.events(None, size - 2, 10).await?;
    assert_eq!(
        last.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["review.expired", "promotion.expired"]
    );
    assert_eq!(last[0].actor, "system:workflow");

    // Redelivered: nothing changes, nothing is appended.
    let response = workflow_events(&event, gov, None).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stack.backend.store.head().await?.size, size);
    assert_eq!(
        apply_workflow_event(gov, &envelope).await?,
        WorkflowOutcome::AlreadyClosed
    );
    // The workflow claiming an approval the registry does not record is reported, not applied.
    let claim = |detail_type: &str, detail: Value| {
        serde_json::from_value(
            json!({"detail-type": detail_type, "source": "steward.workflow", "detail": detail}),
        )
        .unwrap()
    };
    assert_eq!(
        apply_workflow_event(
            gov,
            &claim("PromotionApproved", json!({"promotion_id": p.id}))
        )
        .await?,
        WorkflowOutcome::Disagrees {
            workflow: PromotionStatus::Approved,
            registry: PromotionStatus::Expired
        }
    );
    let unknown = apply_workflow_event(
        gov,
        &claim(
            "ReviewTimedOut",
            json!({"review_id": "pricing.1.pr-0-technical"}),
        ),
    )
    .await;
    assert_eq!(unknown.unwrap_err().error_type, "Steward.NotFound");
    assert_eq!(stack.backend.store.head().await?.size, size);
    Ok(())
}

#[tokio::test]
async fn bootstrap_admins_are_seeded_once_and_audited() -> Result<()> {
    let admin = "arn:aws:iam::123456789012:role/platform-admin";
    let stack = Stack::new(&[("STEWARD_BOOTSTRAP_ADMINS", admin.to_owned())]).await?;
    assert_eq!(stack.env.bootstrap_admins.len(), 1);
    assert_eq!(
        stack
            .backend
            .seed_bootstrap_admins(&stack.env.bootstrap_admins)
            .await?,
        1
    );
    assert_eq!(
        stack
            .backend
            .seed_bootstrap_admins(&stack.env.bootstrap_admins)
            .await?,
        0
    );
    let record = stack
        .backend
        .gov
        .registry()
        .principal(&PrincipalId::parse(admin)?)
        .await?
        .context("seeded")?;
    assert_eq!(
        (record.roles.as_slice(), record.managed_by.as_str()),
        (&[Role::Admin][..], "bootstrap")
    );
    let events = stack.backend.store.events(None, 0, 10).await?;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].action.as_str(), events[0].actor.as_str()),
        ("principal.roles_set", "system:bootstrap")
    );
    Ok(())
}
