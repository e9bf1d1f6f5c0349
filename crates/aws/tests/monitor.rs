//! The monitor function's handler on the emulators (DynamoDB Local for the table, moto for
//! EventBridge and SQS), and the checkpoint schedule opening periodic reviews.
//!
//! Events are the samples in `events/samples/` — CloudWatch's documented "Alarm State Change"
//! shape for alarms that follow Steward's naming, and `ModelMetricsReported` — put on a bus and
//! routed by the deployed rules (`events/rules/model-alarm-state-change.json`,
//! `model-metrics-reported.json`) to a queue, then drained into the handler as a Lambda event
//! source mapping would. (CloudWatch puts its events on the default bus; each test uses its own
//! bus with the same rule so that tests running together don't receive each other's events.)
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` and `STEWARD_TEST_AWS_ENDPOINT`; without them the
//! tests fail, saying how to start them (`steward_testkit::emulators!`).

use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{json, Value};

use steward_aws::handlers::checkpoint::{checkpoint, Checkpointer};
use steward_aws::handlers::inbox::{review_inbox, ReviewInbox};
use steward_aws::handlers::monitor::{alarm_name_target, monitor};
use steward_aws::workflows::TaskTokens;
use steward_core::ids::VersionNumber;
use steward_core::records::ReviewStatus;
use steward_core::types::{Environment, RiskTier};
use steward_core::Governance;

mod common;
use common::*;
use steward_testkit::vn;

const MODEL: &str = "credit-risk";
const ALARM_RULE: &str = include_str!("../../../events/rules/model-alarm-state-change.json");
const METRICS_RULE: &str = include_str!("../../../events/rules/model-metrics-reported.json");
const QUALITY_ALARM: &str =
    include_str!("../../../events/samples/CloudWatchAlarmStateChange.steward-model.json");
const DRIFT_ALARM: &str =
    include_str!("../../../events/samples/CloudWatchAlarmStateChange.steward-model-drift.json");
const AWS_DOCS_ALARM: &str =
    include_str!("../../../events/samples/CloudWatchAlarmStateChange.single-metric.aws-docs.json");
const METRICS_REPORTED: &str = include_str!("../../../events/samples/ModelMetricsReported.json");

/// The example manifest at the low tier: production needs the technical review only.
fn manifest() -> Value {
    manifest_at(RiskTier::Low)
}

/// Registered → staging → production with every approval.
async fn to_production(gov: &Governance, v: VersionNumber) -> Result<()> {
    for target in [Environment::Staging, Environment::Production] {
        let p = gov
            .request_promotion(&dev(), MODEL, v, target, None)
            .await?;
        for r in &p.reviews {
            gov.decide(&tech(), &r.id, approve()).await?;
        }
        let who = if target == Environment::Staging {
            dev()
        } else {
            rel()
        };
        gov.deploy(&who, MODEL, v, target, None).await?;
        if target == Environment::Staging {
            gov.add_evaluation(&dev(), MODEL, v, staging_evaluation(v.get()))
                .await?;
        }
    }
    Ok(())
}

/// Versions 1 to 3 of credit-risk (the samples name version 3); 1 and then 3 went to
/// production, so 3 serves and 1 is the rollback target.
async fn three_versions(gov: &Governance) -> Result<()> {
    for _ in 0..3 {
        gov.register(&dev(), MODEL, manifest(), None).await?;
    }
    to_production(gov, vn(1)).await?;
    to_production(gov, vn(3)).await?;
    Ok(())
}

/// Puts `sample` (an EventBridge event as AWS delivers it) on the stack's bus, as its source
/// would, and returns the SQS event the queue behind `rule` hands the function.
async fn deliver(stack: &Stack, rule: &str, samples: &[&str]) -> Result<SqsEvent> {
    let queue = stack.queue_for(serde_json::from_str(rule)?).await?;
    let mut entries = Vec::new();
    for sample in samples {
        let e: Value = serde_json::from_str(sample)?;
        let resources: Vec<String> = e["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect();
        entries.push(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(&stack.bus)
                .source(e["source"].as_str().context("source")?)
                .detail_type(e["detail-type"].as_str().context("detail-type")?)
                .detail(e["detail"].to_string())
                .set_resources(Some(resources))
                .build(),
        );
    }
    let out = stack
        .events
        .put_events()
        .set_entries(Some(entries))
        .send()
        .await?;
    assert_eq!(out.failed_entry_count(), 0, "{out:?}");
    let messages = stack
        .drain(&queue, samples.len(), Duration::from_secs(5))
        .await?;
    assert_eq!(
        messages.len(),
        samples.len(),
        "the rule must deliver each event"
    );
    stack.sqs_event(&queue, &messages).await
}

async fn audit_actions(gov: &Governance) -> Result<Vec<Value>> {
    let events = gov.audit_events(&auditor(), None, 0, 1000).await?;
    Ok(events
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect())
}

fn count(events: &[Value], action: &str) -> usize {
    events.iter().filter(|e| e["action"] == action).count()
}

#[tokio::test]
async fn a_drift_alarm_over_the_card_maximum_opens_an_incident_and_requests_retraining(
) -> Result<()> {
    let stack = Stack::new(&[]).await?;
    let gov = &stack.backend.gov;
    three_versions(gov).await?;

    let event = deliver(&stack, ALARM_RULE, &[DRIFT_ALARM]).await?;
    let response = monitor(&event, gov).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let incidents = gov.incidents(Some(MODEL), None, 10).await?.items;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = &incidents[0];
    assert_eq!(incident.version, Some(vn(3)));
    assert_eq!(incident.metric, "psi");
    // The worst of the alarm's datapoints [0.24, 0.31] for a drift maximum.
    assert_eq!(incident.value, Some(0.31));
    assert_eq!(incident.threshold, Some(0.2));
    assert_eq!(incident.actions, ["retraining_requested"]);
    assert_eq!(incident.opened_by.to_string(), "system:monitor");

    let audit = audit_actions(gov).await?;
    let retraining = audit
        .iter()
        .find(|e| e["action"] == "retraining.requested")
        .context("retraining requested")?;
    assert_eq!(retraining["actor"], "system:monitor");
    assert_eq!(retraining["details"]["incident_id"], incident.id.as_str());
    assert_eq!(retraining["details"]["metric"], "psi");
    // Drift does not move production.
    assert_eq!(
        gov.model_detail(MODEL).await?.model.production_version,
        Some(vn(3))
    );
    Ok(())
}

#[tokio::test]
async fn a_quality_alarm_under_the_card_minimum_rolls_production_back() -> Result<()> {
    let stack = Stack::new(&[]).await?;
    let gov = &stack.backend.gov;
    three_versions(gov).await?;

    let event = deliver(&stack, ALARM_RULE, &[QUALITY_ALARM]).await?;
    let response = monitor(&event, gov).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let incidents = gov.incidents(Some(MODEL), None, 10).await?.items;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].metric, "auc");
    assert_eq!(incidents[0].value, Some(0.71));
    assert_eq!(incidents[0].threshold, Some(0.85));
    assert_eq!(incidents[0].actions, ["alerted", "rolled_back_to:1"]);
    assert_eq!(
        gov.model_detail(MODEL).await?.model.production_version,
        Some(vn(1))
    );
    let audit = audit_actions(gov).await?;
    let rollback = audit
        .iter()
        .find(|e| e["action"] == "model.rolled_back")
        .context("rollback audited")?;
    assert_eq!(rollback["details"]["automatic"], true);
    assert_eq!(rollback["actor"], "system:monitor");
    Ok(())
}

#[tokio::test]
async fn reported_metrics_apply_the_card_drift_maximum_and_quality_minimum() -> Result<()> {
    let stack = Stack::new(&[]).await?;
    let gov = &stack.backend.gov;
    three_versions(gov).await?;

    // The sample reports psi 0.31 for version 3; a second report, auc 0.7 (quality).
    let mut quality: Value = serde_json::from_str(METRICS_REPORTED)?;
    quality["detail"]["kind"] = json!("quality");
    quality["detail"]["metric"] = json!("auc");
    quality["detail"]["value"] = json!(0.7);
    let quality = quality.to_string();
    let event = deliver(&stack, METRICS_RULE, &[METRICS_REPORTED, &quality]).await?;
    let response = monitor(&event, gov).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let mut incidents = gov.incidents(Some(MODEL), None, 10).await?.items;
    incidents.sort_by(|a, b| a.metric.cmp(&b.metric));
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert_eq!(incidents[0].metric, "auc");
    assert_eq!(incidents[0].actions, ["alerted", "rolled_back_to:1"]);
    assert_eq!(incidents[1].metric, "psi");
    assert_eq!(incidents[1].value, Some(0.31));
    assert_eq!(incidents[1].actions, ["retraining_requested"]);
    assert_eq!(
        gov.model_detail(MODEL).await?.model.production_version,
        Some(vn(1))
    );
    Ok(())
}

#[tokio::test]
async fn an_alarm_for_an_unknown_model_is_logged_and_ignored_with_nothing_written() -> Result<()> {
    let stack = Stack::new(&[]).await?;
    let gov = &stack.backend.gov;
    three_versions(gov).await?;
    let before = stack.backend.store.head().await?.size;

    // A Steward-named alarm for a model (and one for a version) the registry does not have.
    let mut unknown_model: Value = serde_json::from_str(QUALITY_ALARM)?;
    unknown_model["detail"]["alarmName"] = json!("steward-model-fraud-score-2-auc");
    unknown_model["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
        json!({"Model": "fraud-score", "Version": "2"});
    let mut unknown_version: Value = serde_json::from_str(QUALITY_ALARM)?;
    unknown_version["detail"]["alarmName"] = json!("steward-model-credit-risk-9-auc");
    unknown_version["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]
        ["dimensions"] = json!({"Model": "credit-risk", "Version": "9"});
    let (a, b) = (unknown_model.to_string(), unknown_version.to_string());
    let event = deliver(&stack, ALARM_RULE, &[&a, &b]).await?;
    let response = monitor(&event, gov).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    // Events the rule would not deliver, straight into the queue: an AWS alarm naming no model,
    // a transition out of ALARM, and a body that is not an event.
    let mut ok_again: Value = serde_json::from_str(QUALITY_ALARM)?;
    ok_again["detail"]["state"]["value"] = json!("OK");
    let event = sqs_event_of(&[
        AWS_DOCS_ALARM.to_owned(),
        ok_again.to_string(),
        "{not json".to_owned(),
    ])?;
    let response = monitor(&event, gov).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    assert_eq!(
        stack.backend.store.head().await?.size,
        before,
        "nothing audited"
    );
    assert!(gov.incidents(Some(MODEL), None, 10).await?.items.is_empty());
    assert_eq!(
        gov.model_detail(MODEL).await?.model.production_version,
        Some(vn(3))
    );
    Ok(())
}

#[tokio::test]
async fn a_redelivered_alarm_opens_one_incident() -> Result<()> {
    let stack = Stack::new(&[]).await?;
    let gov = &stack.backend.gov;
    three_versions(gov).await?;

    let event = deliver(&stack, ALARM_RULE, &[DRIFT_ALARM]).await?;
    // The same message three times: twice in one batch, then again in a later batch (an SQS
    // redelivery after a visibility timeout).
    let mut twice = event.clone();
    twice.records.push(event.records[0].clone());
    let response = monitor(&twice, gov).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let size = stack.backend.store.head().await?.size;
    let response = monitor(&event, gov).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    assert_eq!(gov.incidents(Some(MODEL), None, 10).await?.items.len(), 1);
    let audit = audit_actions(gov).await?;
    assert_eq!(count(&audit, "incident.opened"), 1);
    assert_eq!(count(&audit, "retraining.requested"), 1);
    assert_eq!(
        stack.backend.store.head().await?.size,
        size,
        "a replay writes nothing"
    );
    Ok(())
}

#[test]
fn an_alarm_name_names_its_model_version_and_metric() {
    let t = |name: &str| alarm_name_target(name).map(|(m, v, x)| (m.to_string(), v, x));
    assert_eq!(
        t("steward-model-credit-risk-3-auc"),
        Some(("credit-risk".into(), vn(3), "auc".into()))
    );
    assert_eq!(
        t("steward-model-gpt-4-mini-12-psi-daily"),
        Some(("gpt-4-mini".into(), vn(12), "psi-daily".into()))
    );
    assert_eq!(t("steward-model-credit-risk-auc"), None);
    assert_eq!(t("steward-model-credit-risk-3"), None);
    assert_eq!(t("ServerCpuTooHigh"), None);
}

/// The default policy with a two-second periodic review for the low tier.
fn quick_periodic() -> String {
    TestPolicy::default()
        .periodic_review(RiskTier::Low, "2s")
        .to_string()
}

#[tokio::test]
async fn the_checkpoint_schedule_opens_a_due_periodic_review_once() -> Result<()> {
    let stack = Stack::new(&[("STEWARD_POLICY", quick_periodic())]).await?;
    let gov = &stack.backend.gov;
    gov.register(&dev(), MODEL, manifest(), None).await?;
    to_production(gov, vn(1)).await?;
    let deps = Checkpointer {
        gov: gov.clone(),
        store: stack.backend.store.clone(),
        objects: stack.backend.audit_objects(&stack.env)?,
        signer: stack.backend.require_signer()?,
    };
    let early = checkpoint(&deps)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(early.periodic_reviews_opened, 0);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let due = checkpoint(&deps)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(due.periodic_reviews_opened, 1);
    let again = checkpoint(&deps)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(again.periodic_reviews_opened, 0, "once per due period");

    let inbox = gov
        .list_reviews(&tech(), ReviewStatus::Pending, None, 50)
        .await?
        .items;
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0].version, vn(1));
    assert_eq!(inbox[0].target, Environment::Production);
    let audit = audit_actions(gov).await?;
    assert_eq!(count(&audit, "periodic_review.due"), 1);
    Ok(())
}

#[tokio::test]
async fn a_periodic_review_runs_the_approval_workflow_and_its_approval_ends_the_execution(
) -> Result<()> {
    let (stack, inbox_queue, _outcomes) = workflow_stack(Some(&quick_periodic())).await?;
    let gov = &stack.backend.gov;
    let workflows = stack
        .backend
        .step_functions
        .clone()
        .context("the stack runs Step Functions")?;
    gov.register(&dev(), MODEL, manifest(), None).await?;
    to_production(gov, vn(1)).await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let deps = Checkpointer {
        gov: gov.clone(),
        store: stack.backend.store.clone(),
        objects: stack.backend.audit_objects(&stack.env)?,
        signer: stack.backend.require_signer()?,
    };
    let report = checkpoint(&deps)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(report.periodic_reviews_opened, 1);
    let review = gov
        .list_reviews(&tech(), ReviewStatus::Pending, None, 50)
        .await?
        .items
        .remove(0);

    // The execution asks for the review: its task token reaches the inbox (with those of the
    // earlier promotions' executions), which stores it.
    let inbox = ReviewInbox {
        gov: gov.clone(),
        store: stack.backend.store.clone(),
        workflows: workflows.clone(),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stack.backend.store.task_token(&review.id).await?.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no task token for {}",
            review.id
        );
        let messages = stack.drain(&inbox_queue, 1, Duration::from_secs(2)).await?;
        if !messages.is_empty() {
            let event = stack.sqs_event(&inbox_queue, &messages).await?;
            let response = review_inbox(&event, &inbox).await;
            assert!(response.batch_item_failures.is_empty(), "{response:?}");
        }
    }

    // The reviewer's approval re-certifies the version and answers the task.
    let p = gov.decide(&tech(), &review.id, approve()).await?;
    assert_eq!(p.status, steward_core::records::PromotionStatus::Approved);
    let sfn = aws_sdk_sfn::Client::new(&stack.backend.sdk);
    let arn = workflows.execution_arn(&review.promotion_id);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = sfn.describe_execution().execution_arn(&arn).send().await?;
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
            assert_eq!(d.status(), &aws_sdk_sfn::types::ExecutionStatus::Succeeded);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
