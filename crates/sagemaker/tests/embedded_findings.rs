//! The SageMaker findings of `steward_core::integrations` on the embedded backend (SQLite): the
//! same records, deduplication and events as on DynamoDB, with no emulator. Also the package →
//! version mapping against a version that really is approved for production.

use serde_json::{json, Value};

use steward_core::ids::VersionNumber;
use steward_core::integrations::{Finding, ModelPackageState};
use steward_core::ports::AuditLog;
use steward_core::types::{Environment, ModelName, PrincipalId, Role};
use steward_core::{Governance, Policy};
use steward_local::Embedded;
use steward_testkit::{approve, dev, reviewer, vn, MANIFEST};

const MODEL: &str = "credit-risk";

async fn to_production(gov: &Governance, v: VersionNumber) {
    let p = gov
        .request_promotion(&dev(), MODEL, v, Environment::Staging, None)
        .await
        .unwrap();
    for r in &p.reviews {
        gov.decide(&reviewer(r.stage), &r.id, approve())
            .await
            .unwrap();
    }
    gov.deploy(&dev(), MODEL, v, Environment::Staging, None)
        .await
        .unwrap();
    gov.add_evaluation(
        &dev(),
        MODEL,
        v,
        json!({
            "name": "staging-shadow",
            "dataset": {"uri": "s3://acme-data/credit/staging.parquet",
                        "sha256": "2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b"},
            "metrics": {"auc": 0.905, "accuracy": 0.869},
            "environment": "staging"
        }),
    )
    .await
    .unwrap();
    let p = gov
        .request_promotion(&dev(), MODEL, v, Environment::Production, None)
        .await
        .unwrap();
    for r in &p.reviews {
        gov.decide(&reviewer(r.stage), &r.id, approve())
            .await
            .unwrap();
    }
}

fn package(group: &str, version: u32, status: &str, modified: &str) -> ModelPackageState {
    ModelPackageState {
        arn: format!("arn:aws:sagemaker:eu-west-1:123456789012:model-package/{group}/{version}"),
        group: group.into(),
        package_version: Some(version),
        approval_status: status.into(),
        model_data_urls: vec![format!("s3://sagemaker-{group}/{version}/model.tar.gz")],
        generated_by: None,
        steward_version: None,
        last_modified: modified.into(),
    }
}

fn actions(events: &[steward_core::audit::AuditEvent], action: &str) -> usize {
    events.iter().filter(|e| e.action == action).count()
}

#[tokio::test]
async fn shadow_models_and_approval_violations_are_recorded_once_on_the_embedded_backend_too() {
    let tmp = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(tmp.path(), Policy::default()).await.unwrap();
    let gov = &embedded.gov;

    let rogue = package("fraud-score", 4, "Approved", "2026-11-27T10:00:00Z");
    let first = gov.model_package_changed(&rogue, false).await.unwrap();
    assert!(
        first.shadow_model.recorded() && first.approval_violation.recorded(),
        "{first:?}"
    );
    let again = gov.model_package_changed(&rogue, false).await.unwrap();
    assert!(
        matches!(again.shadow_model, Finding::Duplicate { .. })
            && matches!(again.approval_violation, Finding::Duplicate { .. }),
        "{again:?}"
    );
    assert_eq!(
        again.shadow_model,
        match first.shadow_model {
            Finding::Recorded { incident_id } => Finding::Duplicate { incident_id },
            other => other,
        },
        "the same incident id"
    );
    // Reverted, then approved again later: a new violation, still the same shadow model.
    let reverted = package(
        "fraud-score",
        4,
        "PendingManualApproval",
        "2026-11-27T10:01:00Z",
    );
    let approved_again = package("fraud-score", 4, "Approved", "2026-11-28T09:00:00Z");
    gov.model_package_changed(&reverted, false).await.unwrap();
    let later = gov
        .model_package_changed(&approved_again, false)
        .await
        .unwrap();
    assert!(later.approval_violation.recorded(), "{later:?}");
    assert!(matches!(later.shadow_model, Finding::Duplicate { .. }));

    let audit = embedded.store.events(None, 0, 1000).await.unwrap();
    assert_eq!(actions(&audit, "model_package.shadow_detected"), 1);
    assert_eq!(actions(&audit, "model_package.approval_violation"), 2);
    let outbox: Vec<String> = embedded
        .store
        .outbox(0, 1000)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.detail_type)
        .filter(|t| t != "PolicyChanged")
        .collect();
    assert_eq!(
        outbox,
        vec![
            "ShadowModelDetected",
            "ModelPackageApprovalViolation",
            "ModelPackageApprovalViolation"
        ]
    );
}

#[tokio::test]
async fn a_package_approved_in_sagemaker_for_a_version_steward_approved_for_production_is_no_violation(
) {
    let tmp = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(tmp.path(), Policy::default()).await.unwrap();
    let gov = &embedded.gov;
    let execution =
        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/credit-risk/execution/4k2j9x0qz1ab";
    let manifest: Value = serde_json::from_str(MANIFEST).unwrap();
    assert_eq!(manifest["lineage"]["training_job"], execution);
    gov.register(&dev(), MODEL, manifest.clone(), None)
        .await
        .unwrap();
    let mut v2 = manifest;
    v2["lineage"]["training_job"] =
        json!("arn:aws:sagemaker:eu-west-1:123456789012:pipeline/credit-risk/execution/other");
    gov.register(&dev(), MODEL, v2, None).await.unwrap();
    to_production(gov, vn(1)).await;

    // Mapped by MetadataProperties.GeneratedBy (the pipeline execution that registered it).
    let mut pkg = package(MODEL, 9, "Approved", "2026-11-27T11:00:00Z");
    pkg.generated_by = Some(execution.into());
    let ok = gov.model_package_changed(&pkg, true).await.unwrap();
    assert_eq!(ok.version, Some(vn(1)));
    assert_eq!(ok.shadow_model, Finding::None);
    assert_eq!(ok.approval_violation, Finding::None);

    // The steward:version property wins, and version 2 has no production approval.
    pkg.steward_version = Some("2".into());
    let bad = gov.model_package_changed(&pkg, true).await.unwrap();
    assert_eq!(bad.version, Some(vn(2)));
    assert!(bad.approval_violation.recorded(), "{bad:?}");
    let audit = embedded
        .store
        .events(Some(&ModelName::parse(MODEL).unwrap()), 0, 1000)
        .await
        .unwrap();
    let v = audit
        .iter()
        .find(|e| e.action == "model_package.approval_violation")
        .unwrap();
    assert_eq!(v.version, Some(vn(2)));
    assert_eq!(v.details["revert"], true);
    assert!(v.details["reason"]
        .as_str()
        .unwrap()
        .contains("not approved for production"));
}

#[tokio::test]
async fn a_pipeline_answer_is_recorded_once() {
    let tmp = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(tmp.path(), Policy::default()).await.unwrap();
    let gov = &embedded.gov;
    let pipeline = PrincipalId::parse("arn:aws:iam::123456789012:role/pipeline").unwrap();
    assert_eq!(gov.pipeline_answer(&pipeline, "k1").await.unwrap(), None);
    let answer = json!({"outcome": "failure", "failure_reason": "invalid fields: description"});
    assert!(gov
        .record_pipeline_answer(&pipeline, "k1", None, None, answer.clone())
        .await
        .unwrap());
    assert!(!gov
        .record_pipeline_answer(&pipeline, "k1", None, None, answer.clone())
        .await
        .unwrap());
    assert_eq!(
        gov.pipeline_answer(&pipeline, "k1").await.unwrap(),
        Some(answer)
    );
    let audit = embedded.store.events(None, 0, 1000).await.unwrap();
    assert_eq!(actions(&audit, "pipeline.step_answered"), 1);
}

#[tokio::test]
async fn a_simulated_pipeline_callback_registers_as_the_pipeline_principal_on_the_embedded_backend()
{
    use steward_sagemaker::callback::Answer;
    let tmp = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(tmp.path(), Policy::default()).await.unwrap();
    let pipeline = PrincipalId::parse("arn:aws:iam::123456789012:role/pipeline").unwrap();
    embedded
        .gov
        .seed_principal(&pipeline, vec![Role::Developer], "file")
        .await
        .unwrap();
    let execution =
        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/credit-risk/execution/retrain1";
    let mut manifest: Value = serde_json::from_str(MANIFEST).unwrap();
    manifest["lineage"]["training_job"] = json!(execution);

    let answer =
        simulate_pipeline_callback(embedded.gov.clone(), &pipeline, MODEL, manifest, execution)
            .await
            .unwrap();
    assert_eq!(
        answer,
        Answer::Success(vec![
            ("model_name".into(), MODEL.into()),
            ("version".into(), "1".into()),
            ("stage".into(), "development".into()),
        ])
    );
    let v = embedded.gov.version_detail(MODEL, vn(1)).await.unwrap();
    assert_eq!(v.version.registered_by, pipeline);
    assert_eq!(v.version.lineage.training_job.as_deref(), Some(execution));

    let refused = simulate_pipeline_callback(
        embedded.gov.clone(),
        &pipeline,
        MODEL,
        json!({"owner": {"team": "credit-ml"}}),
        execution,
    )
    .await
    .unwrap();
    assert!(
        matches!(&refused, Answer::Failure(reason) if reason.starts_with("invalid fields: ")),
        "{refused:?}"
    );
}

/// A SageMaker pipeline's CallbackStep delivering `manifest` (inline) for `model`: the
/// documented SQS message body with a fresh 10-character token and `execution_arn`, handled as
/// `sagemaker-callback` would, as `principal`, with the step's answer recorded in memory
/// instead of sent to SageMaker. No S3 or SageMaker request is made.
async fn simulate_pipeline_callback(
    gov: std::sync::Arc<steward_core::Governance>,
    principal: &PrincipalId,
    model: &str,
    manifest: Value,
    execution_arn: &str,
) -> Result<steward_sagemaker::callback::Answer, steward_aws::handlers::Failure> {
    use steward_sagemaker::callback::{PipelineRegistrar, RecordedAnswers};
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let token = format!(
        "sim{:07}",
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    // Never used for an inline manifest; built offline, it sends nothing.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build(),
    );
    let answers = std::sync::Arc::new(RecordedAnswers::default());
    let registrar = PipelineRegistrar {
        gov,
        s3,
        answers: answers.clone(),
        principal: principal.clone(),
        manifest_bucket: None,
    };
    let body = json!({
        "token": token,
        "pipelineExecutionArn": execution_arn,
        "arguments": {"model_name": model, "manifest": manifest},
    });
    registrar.handle_callback(&body.to_string()).await?;
    answers
        .answers()
        .pop()
        .map(|(_, _, answer)| answer)
        .ok_or_else(|| steward_aws::handlers::Failure::validation("the callback was not answered"))
}
