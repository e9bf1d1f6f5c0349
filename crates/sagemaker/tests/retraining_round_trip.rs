//! A retraining round trip on the emulators (registry on DynamoDB Local; queues and the
//! SageMaker pipeline on moto):
//!
//! drift reported (`ModelMetricsReported`, the documented sample, through the monitor handler)
//! → incident + `RetrainingRequested` naming the card's retraining pipeline → the
//! sagemaker-sync handler starts that pipeline on moto, once, however often the event arrives
//! → the pipeline's CallbackStep message (the documented shape, naming that execution)
//! registers version 2 through the sagemaker-callback handler → version 2 is not approved for
//! anything and cannot be deployed until it has passed every review of its tier (medium:
//! technical for staging; technical and business for production).
//!
//! The step answer goes to `RecordedAnswers`: moto lacks `SendPipelineExecutionStepSuccess`
//! (its exact request is asserted with aws-smithy-mocks in `pipeline_callback.rs`).

mod common;

use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use common::*;
use steward_aws::handlers::monitor::monitor;
use steward_core::ids::VersionNumber;
use steward_core::types::{Environment, PrincipalId, Role, Stage};
use steward_core::{GovError, Governance};
use steward_sagemaker::callback::{sagemaker_callback, Answer, PipelineRegistrar, RecordedAnswers};
use steward_sagemaker::sync::{sagemaker_sync, PackageSync};
use steward_testkit::vn;

const METRICS_SAMPLE: &str = include_str!("../../../events/samples/ModelMetricsReported.json");

/// Takes `v` through staging into production with the tier's reviews; returns the number of
/// reviews decided.
async fn to_production(gov: &Governance, model: &str, v: VersionNumber) -> Result<usize> {
    let dev = dev();
    let mut decided = 0;
    for env in [Environment::Staging, Environment::Production] {
        let p = gov.request_promotion(&dev, model, v, env, None).await?;
        for r in &p.reviews {
            gov.decide(&reviewer(r.stage), &r.id, approve()).await?;
            decided += 1;
        }
        let deployer = if env == Environment::Production {
            rel()
        } else {
            dev.clone()
        };
        gov.deploy(&deployer, model, v, env, None).await?;
        if env == Environment::Staging {
            gov.add_evaluation(&dev, model, v, staging_evaluation(v.get()))
                .await?;
        }
    }
    Ok(decided)
}

/// The event as EventBridge delivers the stream publisher's entry to a rule's target.
fn governance_envelope(detail_type: &str, detail: &Value, audit_seq: u64) -> Value {
    let mut detail = detail.clone();
    detail["audit_seq"] = json!(audit_seq);
    json!({
        "version": "0", "id": format!("evt-{audit_seq}"), "detail-type": detail_type,
        "source": "steward.governance", "account": "123456789012", "time": "2026-12-10T06:00:01Z",
        "region": "us-east-1", "resources": [], "detail": detail,
    })
}

async fn executions(stack: &Stack, pipeline: &str) -> Result<Vec<String>> {
    Ok(stack
        .sagemaker
        .list_pipeline_executions()
        .pipeline_name(pipeline)
        .send()
        .await?
        .pipeline_execution_summaries()
        .iter()
        .filter_map(|e| e.pipeline_execution_arn().map(str::to_owned))
        .collect())
}

#[tokio::test]
async fn drift_starts_the_retraining_pipeline_once_and_its_version_must_pass_every_review_before_deploy(
) -> Result<()> {
    let stack = Stack::new().await?;
    let gov = stack.backend.gov.clone();
    stack.grant_pipeline(vec![Role::Developer]).await?;
    let pipeline = unique("retrain");
    stack
        .sagemaker
        .create_pipeline()
        .pipeline_name(&pipeline)
        .pipeline_definition(r#"{"Version": "2020-12-01", "Steps": []}"#)
        .role_arn("arn:aws:iam::123456789012:role/sagemaker-pipeline-exec")
        .send()
        .await?;

    // Version 1 of a medium-risk model whose card names its retraining pipeline, in production.
    let model = unique("credit");
    let mut m = manifest();
    m["risk_tier"] = json!("medium");
    m["card"]["operational"]["monitoring"]["retraining_pipeline"] = json!(pipeline);
    gov.register(&dev(), &model, m.clone(), None).await?;
    to_production(&gov, &model, vn(1)).await?;

    // Drift over the card's maximum, as a monitoring job reports it.
    let mut metrics: Value = serde_json::from_str(METRICS_SAMPLE)?;
    metrics["detail"]["model"] = json!(model);
    metrics["detail"]["version"] = json!(1);
    let event = stack.deliver(&[metrics.to_string()]).await?;
    let response = monitor(&event, &gov).await;
    ensure!(response.batch_item_failures.is_empty(), "{response:?}");

    let outbox = stack.outbox().await?;
    let retraining = outbox
        .iter()
        .find(|e| e.detail_type == "RetrainingRequested" && e.detail["name"] == model.as_str())
        .context("RetrainingRequested in the outbox")?
        .detail
        .clone();
    ensure!(
        retraining["retraining_pipeline"] == pipeline.as_str()
            && retraining["version"] == 1
            && retraining["metric"] == "psi",
        "{retraining}"
    );
    let incident = retraining["incident_id"]
        .as_str()
        .context("incident")?
        .to_owned();

    // The sagemaker-sync function starts the pipeline once, even when the event comes twice.
    let body = governance_envelope("RetrainingRequested", &retraining, 99).to_string();
    let sync = PackageSync {
        gov: &gov,
        sagemaker: stack.sagemaker.clone(),
        revert: false,
    };
    for _ in 0..2 {
        let event = stack.deliver(std::slice::from_ref(&body)).await?;
        let response = sagemaker_sync(&event, &sync).await;
        ensure!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    let started = executions(&stack, &pipeline).await?;
    ensure!(started.len() == 1, "pipeline executions: {started:?}");
    let execution = started[0].clone();
    let described = stack
        .sagemaker
        .describe_pipeline_execution()
        .pipeline_execution_arn(&execution)
        .send()
        .await?;
    ensure!(
        described.pipeline_execution_display_name() == Some(&*format!("retrain-{model}-v1"))
            && described
                .pipeline_execution_description()
                .is_some_and(|d| d.contains(&incident)),
        "{described:?}"
    );
    let recorded: Vec<Value> = stack
        .audit()
        .await?
        .into_iter()
        .filter(|e| e.action == "retraining.started")
        .map(|e| e.details)
        .collect();
    ensure!(
        recorded.len() == 1
            && recorded[0]["incident_id"] == incident.as_str()
            && recorded[0]["execution_arn"] == execution.as_str(),
        "retraining.started audit events: {recorded:?}"
    );

    // The pipeline's CallbackStep registers what it trained: version 2, lineage = the execution.
    let mut v2_manifest = m.clone();
    v2_manifest["lineage"]
        .as_object_mut()
        .unwrap()
        .remove("training_job");
    let mut message: Value = serde_json::from_str(CALLBACK_MESSAGE)?;
    message["token"] = json!("r3Tr4InAbC");
    message["pipelineExecutionArn"] = json!(execution);
    message["arguments"]["model_name"] = json!(model);
    message["arguments"]["manifest"] = v2_manifest;
    let answers = Arc::new(RecordedAnswers::default());
    let registrar = PipelineRegistrar {
        gov: gov.clone(),
        s3: stack.s3.clone(),
        answers: answers.clone(),
        principal: PrincipalId::parse(PIPELINE_PRINCIPAL)?,
        manifest_bucket: Some(stack.manifest_bucket.clone()),
    };
    let event = stack.deliver(&[message.to_string()]).await?;
    let response = sagemaker_callback(&event, &registrar).await;
    ensure!(response.batch_item_failures.is_empty(), "{response:?}");
    let sent = answers.answers();
    ensure!(sent.len() == 1, "{sent:?}");
    let Answer::Success(outputs) = &sent[0].2 else {
        anyhow::bail!("the step failed: {sent:?}");
    };
    ensure!(
        outputs.contains(&("version".to_owned(), "2".to_owned()))
            && outputs.contains(&("stage".to_owned(), "development".to_owned())),
        "{outputs:?}"
    );
    let v2 = gov.version_detail(&model, vn(2)).await?.version;
    ensure!(
        v2.lineage.training_job.as_deref() == Some(execution.as_str())
            && v2.stage == Stage::Development
            && v2.approvals.is_empty(),
        "the retrained version is registered, not approved: {v2:?}"
    );

    // Never auto-approved: no deployment before its reviews.
    let rel = rel();
    for env in [Environment::Staging, Environment::Production] {
        let refused = gov.deploy(&rel, &model, vn(2), env, None).await;
        ensure!(
            matches!(refused, Err(GovError::Policy(_))),
            "deploying the unreviewed version to {env:?}: {refused:?}"
        );
    }
    let early = gov
        .request_promotion(&dev(), &model, vn(2), Environment::Production, None)
        .await;
    ensure!(
        matches!(early, Err(GovError::Policy(_))),
        "production before staging: {early:?}"
    );

    // Through the tier's full review path, then it serves.
    let decided = to_production(&gov, &model, vn(2)).await?;
    ensure!(
        decided == 3,
        "medium tier: technical, then technical and business"
    );
    let detail = gov.model_detail(&model).await?;
    ensure!(
        detail.model.production_version == Some(vn(2)),
        "{:?}",
        detail.model.production_version
    );
    Ok(())
}
