//! SageMaker model packages checked against the registry by `sagemaker-sync`, on the
//! emulators: packages live on moto's SageMaker (which emits no events, so the tests build
//! the "SageMaker Model Package State Change" event from the documented sample,
//! `events/samples/SageMakerModelPackageStateChange.aws-docs.json`, and deliver it through a
//! real SQS queue as the rule's target would); the registry is on DynamoDB Local.

mod common;

use std::collections::HashMap;
use steward_core::records::{IncidentKind, IncidentStatus};

use serde_json::{json, Value};

use aws_sdk_sagemaker::types::ModelApprovalStatus;
use common::*;
use steward_sagemaker::sync::{sagemaker_sync, PackageSync, DETAIL_TYPE};

/// A versioned model package on moto; returns its ARN.
async fn create_package(
    stack: &Stack,
    group: &str,
    status: ModelApprovalStatus,
    metadata: &[(&str, &str)],
) -> anyhow::Result<String> {
    let _ = stack
        .sagemaker
        .create_model_package_group()
        .model_package_group_name(group)
        .send()
        .await;
    let props: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let out = stack
        .sagemaker
        .create_model_package()
        .model_package_group_name(group)
        .model_approval_status(status)
        .set_customer_metadata_properties((!props.is_empty()).then_some(props))
        .send()
        .await?;
    Ok(out.model_package_arn().unwrap_or_default().to_owned())
}

/// The documented event for a package, as the rule's SQS target receives it.
fn package_event(arn: &str, group: &str, status: &str, modified: &str, metadata: Value) -> String {
    let mut e: Value = serde_json::from_str(PACKAGE_EVENT).unwrap();
    assert!(matches_rule(&e), "the sample must match the deployed rule");
    e["resources"] = json!([arn]);
    let d = &mut e["detail"];
    d["ModelPackageArn"] = json!(arn);
    d["ModelPackageGroupName"] = json!(group);
    d["ModelPackageVersion"] = json!(arn.rsplit('/').next().unwrap().parse::<u64>().unwrap_or(1));
    d["ModelApprovalStatus"] = json!(status);
    d["LastModifiedTime"] = json!(modified);
    d["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] =
        json!(format!("s3://sagemaker-{group}/output/model.tar.gz"));
    if !metadata.is_null() {
        d["CustomerMetadataProperties"] = metadata;
    }
    e.to_string()
}

/// The rule (events/rules/sagemaker-model-package-state-change.json) takes the event.
fn matches_rule(event: &Value) -> bool {
    let rule: Value = serde_json::from_str(PACKAGE_RULE).unwrap();
    rule["source"]
        .as_array()
        .unwrap()
        .contains(&event["source"])
        && rule["detail-type"]
            .as_array()
            .unwrap()
            .contains(&event["detail-type"])
        && event["detail-type"] == DETAIL_TYPE
}

fn count(audit: &[steward_core::audit::AuditEvent], action: &str) -> usize {
    audit.iter().filter(|e| e.action == action).count()
}

#[tokio::test]
async fn a_model_package_without_a_steward_registration_is_reported_as_a_shadow_model(
) -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    let group = unique("shadow");
    let arn = create_package(
        &stack,
        &group,
        ModelApprovalStatus::PendingManualApproval,
        &[],
    )
    .await?;
    let sync = PackageSync {
        gov: &stack.backend.gov,
        sagemaker: stack.sagemaker.clone(),
        revert: true,
    };
    let body = package_event(
        &arn,
        &group,
        "PendingManualApproval",
        "2026-11-27T10:00:00Z",
        Value::Null,
    );
    let response = sagemaker_sync(&stack.deliver(&[body]).await?, &sync).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let audit = stack.audit().await?;
    let shadow: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "model_package.shadow_detected")
        .collect();
    assert_eq!(shadow.len(), 1);
    assert_eq!(shadow[0].actor, "system:sagemaker-sync");
    assert_eq!(shadow[0].details["model_package_arn"], arn.as_str());
    assert_eq!(
        count(&audit, "model_package.approval_violation"),
        0,
        "not approved: no violation"
    );

    let events = stack.outbox().await?;
    let detected: Vec<_> = events
        .iter()
        .filter(|e| e.detail_type == "ShadowModelDetected")
        .collect();
    assert_eq!(detected.len(), 1, "{events:?}");
    assert_eq!(detected[0].detail["schema_version"], "1");
    assert_eq!(detected[0].detail["model_package_arn"], arn.as_str());
    assert_eq!(
        detected[0].detail["incident_id"],
        shadow[0].details["incident_id"]
    );
    assert_eq!(detected[0].detail["registered_model"], false);

    // An incident, listed with the others under the package group's name.
    let incidents = stack.backend.gov.incidents(None, None, 100).await?.items;
    let mine: Vec<_> = incidents
        .iter()
        .filter(|i| i.subject.as_deref() == Some(arn.as_str()))
        .collect();
    assert_eq!(mine.len(), 1, "{incidents:?}");
    assert_eq!(mine[0].kind, IncidentKind::ShadowModel);
    assert_eq!(
        mine[0].id,
        shadow[0].details["incident_id"].as_str().unwrap()
    );
    assert_eq!(mine[0].name.to_string(), group);
    assert_eq!(mine[0].version, None);
    assert_eq!(mine[0].status, IncidentStatus::Open);
    assert!(mine[0].summary.contains("no Steward registration"));
    Ok(())
}

#[tokio::test]
async fn a_package_approved_in_sagemaker_without_a_steward_production_approval_is_recorded_alerted_and_reverted(
) -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    let model = unique("credit");
    let (v, _) = stack
        .backend
        .gov
        .register(&dev(), &model, manifest(), None)
        .await?;
    let arn = create_package(
        &stack,
        &model,
        ModelApprovalStatus::Approved,
        &[("steward:version", "1"), ("team", "credit-ml")],
    )
    .await?;
    let sync = PackageSync {
        gov: &stack.backend.gov,
        sagemaker: stack.sagemaker.clone(),
        revert: true,
    };
    let body = package_event(
        &arn,
        &model,
        "Approved",
        "2026-11-27T10:05:00Z",
        json!({"steward:version": "1", "team": "credit-ml"}),
    );
    let response = sagemaker_sync(&stack.deliver(&[body]).await?, &sync).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let audit = stack.audit().await?;
    let violations: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "model_package.approval_violation")
        .collect();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].name.as_deref(), Some(model.as_str()));
    assert_eq!(violations[0].version, Some(v.version));
    assert_eq!(violations[0].details["revert"], true);
    assert_eq!(
        count(&audit, "model_package.shadow_detected"),
        0,
        "the package maps to version 1"
    );

    let events = stack.outbox().await?;
    let alert: Vec<_> = events
        .iter()
        .filter(|e| e.detail_type == "ModelPackageApprovalViolation")
        .collect();
    assert_eq!(alert.len(), 1, "{events:?}");
    assert_eq!(alert[0].detail["schema_version"], "1");
    assert_eq!(alert[0].detail["version"], 1);
    assert_eq!(alert[0].detail["stage"], "development");

    // Reverted on moto, with the package's own metadata kept.
    let now = stack
        .sagemaker
        .describe_model_package()
        .model_package_name(&arn)
        .send()
        .await?;
    assert_eq!(
        now.model_approval_status(),
        Some(&ModelApprovalStatus::PendingManualApproval)
    );
    let meta = now
        .customer_metadata_properties()
        .cloned()
        .unwrap_or_default();
    assert_eq!(meta.get("steward:version").map(String::as_str), Some("1"));
    assert_eq!(meta.get("team").map(String::as_str), Some("credit-ml"));
    assert!(now
        .approval_description()
        .unwrap_or_default()
        .contains("Reverted by Steward"));
    Ok(())
}

#[tokio::test]
async fn without_the_revert_setting_a_violation_is_recorded_and_the_package_stays_approved(
) -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    let group = unique("rogue");
    let arn = create_package(&stack, &group, ModelApprovalStatus::Approved, &[]).await?;
    let sync = PackageSync {
        gov: &stack.backend.gov,
        sagemaker: stack.sagemaker.clone(),
        revert: false,
    };
    let body = package_event(
        &arn,
        &group,
        "Approved",
        "2026-11-27T10:06:00Z",
        Value::Null,
    );
    let response = sagemaker_sync(&stack.deliver(&[body]).await?, &sync).await;
    assert!(response.batch_item_failures.is_empty());

    let audit = stack.audit().await?;
    assert_eq!(count(&audit, "model_package.shadow_detected"), 1);
    assert_eq!(count(&audit, "model_package.approval_violation"), 1);
    let now = stack
        .sagemaker
        .describe_model_package()
        .model_package_name(&arn)
        .send()
        .await?;
    assert_eq!(
        now.model_approval_status(),
        Some(&ModelApprovalStatus::Approved)
    );
    Ok(())
}

#[tokio::test]
async fn duplicate_model_package_events_record_one_incident() -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    let model = unique("credit");
    stack
        .backend
        .gov
        .register(&dev(), &model, manifest(), None)
        .await?;
    let arn = create_package(
        &stack,
        &model,
        ModelApprovalStatus::Approved,
        &[("steward:version", "1")],
    )
    .await?;
    let shadow_group = unique("shadow");
    let shadow_arn = create_package(
        &stack,
        &shadow_group,
        ModelApprovalStatus::PendingManualApproval,
        &[],
    )
    .await?;
    let sync = PackageSync {
        gov: &stack.backend.gov,
        sagemaker: stack.sagemaker.clone(),
        revert: false,
    };
    let approved = package_event(
        &arn,
        &model,
        "Approved",
        "2026-11-27T10:07:00Z",
        json!({"steward:version": "1"}),
    );
    let shadow = package_event(
        &shadow_arn,
        &shadow_group,
        "PendingManualApproval",
        "2026-11-27T10:07:00Z",
        Value::Null,
    );
    // The shadow package changes again (another status): still the same shadow model.
    let shadow_rejected = package_event(
        &shadow_arn,
        &shadow_group,
        "Rejected",
        "2026-11-27T10:08:00Z",
        Value::Null,
    );

    // SageMaker may send several events for one change; SQS may deliver each more than once.
    let first = sagemaker_sync(
        &stack
            .deliver(&[
                approved.clone(),
                approved.clone(),
                shadow.clone(),
                shadow.clone(),
            ])
            .await?,
        &sync,
    )
    .await;
    let second = sagemaker_sync(
        &stack.deliver(&[approved, shadow, shadow_rejected]).await?,
        &sync,
    )
    .await;
    assert!(first.batch_item_failures.is_empty() && second.batch_item_failures.is_empty());

    let audit = stack.audit().await?;
    assert_eq!(count(&audit, "model_package.approval_violation"), 1);
    assert_eq!(count(&audit, "model_package.shadow_detected"), 1);
    let incidents = stack.backend.gov.incidents(None, None, 100).await?.items;
    let kinds = |subject: &str| -> Vec<IncidentKind> {
        incidents
            .iter()
            .filter(|i| i.subject.as_deref() == Some(subject))
            .map(|i| i.kind)
            .collect()
    };
    assert_eq!(kinds(&arn), [IncidentKind::ApprovalViolation]);
    assert_eq!(kinds(&shadow_arn), [IncidentKind::ShadowModel]);
    let events = stack.outbox().await?;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.detail_type == "ModelPackageApprovalViolation")
            .count(),
        1
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.detail_type == "ShadowModelDetected")
            .count(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_package_that_maps_to_a_registered_version_awaiting_approval_records_nothing(
) -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    let model = unique("credit");
    let mut m = manifest();
    m["artifact"]["uri"] = json!(format!("s3://sagemaker-{model}/output/model.tar.gz"));
    stack.backend.gov.register(&dev(), &model, m, None).await?;
    // No steward:version property: the package maps to version 1 by its ModelDataUrl.
    let arn = create_package(
        &stack,
        &model,
        ModelApprovalStatus::PendingManualApproval,
        &[],
    )
    .await?;
    let sync = PackageSync {
        gov: &stack.backend.gov,
        sagemaker: stack.sagemaker.clone(),
        revert: true,
    };
    let body = package_event(
        &arn,
        &model,
        "PendingManualApproval",
        "2026-11-27T10:09:00Z",
        Value::Null,
    );
    let before = stack.audit().await?.len();
    let response = sagemaker_sync(&stack.deliver(&[body]).await?, &sync).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stack.audit().await?.len(), before, "nothing to record");
    Ok(())
}

#[tokio::test]
async fn a_message_that_is_not_a_model_package_event_is_dropped_not_retried() -> anyhow::Result<()>
{
    let stack = Stack::new().await?;
    let sync = PackageSync {
        gov: &stack.backend.gov,
        sagemaker: stack.sagemaker.clone(),
        revert: false,
    };
    let response = sagemaker_sync(
        &stack
            .deliver(&["{\"not\": \"an event\"}".to_owned()])
            .await?,
        &sync,
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert!(stack.audit().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn the_deployed_rule_delivers_a_package_event_that_the_handler_checks() -> anyhow::Result<()>
{
    let stack = Stack::new().await?;
    // The rule of the template (events/rules/sagemaker-model-package-state-change.json) on
    // moto's default bus, targeting a queue, fed by PutEvents as SageMaker would publish.
    let events = aws_sdk_eventbridge::Client::new(&stack.backend.sdk);
    let (url, arn) = stack.queue().await?;
    let rule = unique("sagemaker-packages");
    events
        .put_rule()
        .name(&rule)
        .event_pattern(PACKAGE_RULE)
        .send()
        .await?;
    events
        .put_targets()
        .rule(&rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("sagemaker-sync")
                .arn(arn)
                .build()?,
        )
        .send()
        .await?;
    let group = unique("rogue");
    let package = create_package(&stack, &group, ModelApprovalStatus::Approved, &[]).await?;
    let event: Value = serde_json::from_str(&package_event(
        &package,
        &group,
        "Approved",
        "2026-11-27T10:10:00Z",
        Value::Null,
    ))?;
    let put = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source(event["source"].as_str().unwrap_or_default())
                .detail_type(event["detail-type"].as_str().unwrap_or_default())
                .resources(package.clone())
                .detail(event["detail"].to_string())
                .build(),
        )
        .send()
        .await?;
    assert_eq!(put.failed_entry_count(), 0);
    let received = stack
        .sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await?;
    let bodies: Vec<String> = received
        .messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_owned))
        .collect();
    assert_eq!(bodies.len(), 1, "the rule delivers the event once");

    let sync = PackageSync {
        gov: &stack.backend.gov,
        sagemaker: stack.sagemaker.clone(),
        revert: true,
    };
    let response = sagemaker_sync(&stack.deliver(&bodies).await?, &sync).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let audit = stack.audit().await?;
    assert_eq!(count(&audit, "model_package.shadow_detected"), 1);
    assert_eq!(count(&audit, "model_package.approval_violation"), 1);
    let now = stack
        .sagemaker
        .describe_model_package()
        .model_package_name(&package)
        .send()
        .await?;
    assert_eq!(
        now.model_approval_status(),
        Some(&ModelApprovalStatus::PendingManualApproval)
    );
    Ok(())
}

#[tokio::test]
async fn concurrent_deliveries_of_one_change_record_one_incident() -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    let group = unique("rogue");
    let arn = create_package(&stack, &group, ModelApprovalStatus::Approved, &[]).await?;
    let sync = PackageSync {
        gov: &stack.backend.gov,
        sagemaker: stack.sagemaker.clone(),
        revert: false,
    };
    let body = package_event(
        &arn,
        &group,
        "Approved",
        "2026-11-27T10:11:00Z",
        Value::Null,
    );
    let (a, b) = (
        stack.deliver(std::slice::from_ref(&body)).await?,
        stack.deliver(std::slice::from_ref(&body)).await?,
    );
    let (ra, rb) = tokio::join!(sagemaker_sync(&a, &sync), sagemaker_sync(&b, &sync));
    // A delivery that lost a race is retried (a batch item failure), as SQS would redeliver it.
    for (event, response) in [(&a, ra), (&b, rb)] {
        if !response.batch_item_failures.is_empty() {
            let again = sagemaker_sync(event, &sync).await;
            assert!(again.batch_item_failures.is_empty(), "{again:?}");
        }
    }
    let audit = stack.audit().await?;
    assert_eq!(count(&audit, "model_package.shadow_detected"), 1);
    assert_eq!(count(&audit, "model_package.approval_violation"), 1);
    Ok(())
}
