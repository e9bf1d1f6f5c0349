//! The typed events against their JSON Schemas in `events/schemas/`: every governance schema
//! has a variant and every variant a schema, and a representative instance of every variant,
//! converted to the stored [`DomainEvent`] and wrapped as EventBridge delivers it, validates.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::TimeZone;

use super::*;
use crate::testing::vn;

const SOURCE: &str = "steward.governance";

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/schemas")
}

fn schema(detail_type: &str) -> Value {
    let path = schemas_dir().join(format!("{detail_type}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{detail_type} has no schema ({}): {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether a schema describes events of source `steward.governance` (alone or beside the
/// workflows' `steward.workflow`).
fn is_governance(schema: &Value) -> bool {
    let source = &schema["properties"]["source"];
    source["const"] == SOURCE
        || source["enum"]
            .as_array()
            .is_some_and(|e| e.iter().any(|s| s == SOURCE))
}

/// The detail-types of every governance schema in `events/schemas/`.
fn governance_schemas() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(schemas_dir()).expect("events/schemas is readable") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if is_governance(&schema(&name)) {
                names.insert(name);
            }
        }
    }
    names
}

fn validator(detail_type: &str) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema(detail_type))
        .unwrap_or_else(|e| panic!("{detail_type}: not a valid schema: {e}"))
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect()
}

/// The stored event as EventBridge delivers it: the envelope, and the detail with the
/// `audit_seq` the stream publisher adds.
fn envelope(event: &DomainEvent) -> Value {
    let mut detail = event.detail.clone();
    detail["audit_seq"] = json!(7);
    json!({
        "version": "0",
        "id": "6f1c2d4e-0000-4000-8000-000000000001",
        "detail-type": event.detail_type,
        "source": SOURCE,
        "account": "123456789012",
        "time": "2026-12-01T10:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    })
}

fn name() -> ModelName {
    ModelName::parse("credit-risk").unwrap()
}
fn who(p: &str) -> PrincipalId {
    PrincipalId::parse(p).unwrap()
}
fn sha(byte: u8) -> Sha256 {
    Sha256::digest(&[byte])
}
fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, 9, 30, 0).unwrap()
}
fn package() -> ModelPackage {
    ModelPackage {
        model_package_arn: "arn:aws:sagemaker:eu-west-1:123456789012:model-package/fraud-score/4"
            .into(),
        model_package_group: "fraud-score".into(),
        model_package_version: Some(4),
        approval_status: "Approved".into(),
        model_data_urls: vec!["s3://sagemaker-fraud/4/model.tar.gz".into()],
        generated_by: None,
    }
}

const PROMOTION: &str = "credit-risk.2.pr-01";
const REVIEW: &str = "credit-risk.2.pr-01-technical";

/// One representative instance of every variant.
fn samples() -> Vec<GovernanceEvent> {
    vec![
        ModelVersionRegistered {
            name: name(),
            version: vn(2),
            risk_tier: RiskTier::High,
            registered_by: who("dana"),
            artifact_sha256: sha(1),
            manifest_sha256: sha(2),
        }
        .into(),
        ModelCardRevised {
            name: name(),
            version: vn(2),
            card_revision: 3,
            card_sha256: sha(3),
        }
        .into(),
        EvaluationRecorded {
            name: name(),
            version: vn(2),
            details: EvaluationDetails {
                evaluation: "staging-shadow".into(),
                dataset_sha256: sha(4),
                environment: Some(Environment::Staging),
                metrics: BTreeMap::from([("auc".to_owned(), 0.91)]),
                report_sha256: sha(5),
            },
        }
        .into(),
        CheckReported {
            name: name(),
            version: vn(2),
            check: crate::checks::CheckName::parse("unit-tests").unwrap(),
            status: crate::checks::CheckStatus::Passed,
            environment: None,
            reported_by: who("ci-bot"),
        }
        .into(),
        ApprovalWithdrawn {
            name: name(),
            version: vn(2),
            environment: Environment::Production,
            promotion_id: PROMOTION.into(),
            check: crate::checks::CheckName::parse("load-test").unwrap(),
        }
        .into(),
        PromotionRequested {
            name: name(),
            version: vn(2),
            target: Environment::Production,
            promotion_id: PROMOTION.into(),
            reviews: ReviewStage::ALL.to_vec(),
        }
        .into(),
        ReviewRequested {
            review_id: REVIEW.into(),
            promotion_id: PROMOTION.into(),
            name: name(),
            version: vn(2),
            target: Environment::Production,
            stage: ReviewStage::Technical,
            deadline: at(4),
        }
        .into(),
        ReviewDecided {
            review_id: REVIEW.into(),
            promotion_id: PROMOTION.into(),
            name: name(),
            version: vn(2),
            stage: ReviewStage::Technical,
            decision: Decision::Approve,
            decided_by: who("tom"),
        }
        .into(),
        PromotionRejected {
            promotion_id: PROMOTION.into(),
            name: name(),
            version: vn(2),
            target: Environment::Production,
            stage: ReviewStage::Compliance,
        }
        .into(),
        PromotionApproved {
            promotion_id: PROMOTION.into(),
            name: name(),
            version: vn(2),
            target: Environment::Staging,
        }
        .into(),
        ReviewTimedOut {
            review_id: REVIEW.into(),
            promotion_id: PROMOTION.into(),
            name: name(),
            version: vn(2),
            stage: ReviewStage::Technical,
        }
        .into(),
        PromotionExpired {
            promotion_id: PROMOTION.into(),
            name: name(),
            version: vn(2),
            target: Environment::Production,
        }
        .into(),
        ModelDeployed {
            name: name(),
            version: vn(2),
            environment: Environment::Production,
            previous_version: Some(vn(1)),
            deployed_by: who("rita"),
        }
        .into(),
        ModelRolledBack {
            name: name(),
            from_version: vn(2),
            to_version: vn(1),
            reason: "auc = 0.7 under the card's minimum 0.85".into(),
            automatic: true,
            incident_id: Some("inc-01".into()),
        }
        .into(),
        RetirementRequested {
            retirement_id: "credit-risk.1.rt-01".into(),
            name: name(),
            version: vn(1),
            reason: "superseded".into(),
            replacement: Some(vn(2)),
            requested_by: who("dana"),
        }
        .into(),
        RetirementDecided {
            retirement_id: "credit-risk.1.rt-01".into(),
            name: name(),
            version: vn(1),
            decision: Decision::Reject,
            decided_by: who("carol"),
            comment: Some("version 1 still serves a partner".into()),
        }
        .into(),
        ModelRetired {
            name: name(),
            version: vn(1),
            reason: "superseded".into(),
            replacement: None,
        }
        .into(),
        PrincipalRolesChanged {
            principal: who("oidc:https://id.example#42"),
            roles: vec![Role::TechnicalReviewer, Role::Auditor],
        }
        .into(),
        PolicyChanged {
            policy_sha256: sha(6).to_hex(),
        }
        .into(),
        RetrainingRequested {
            name: name(),
            version: vn(2),
            incident_id: "inc-02".into(),
            metric: "psi".into(),
            value: 0.4,
            threshold: 0.2,
            training_job: Some(
                "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/credit/execution/x1".into(),
            ),
            retraining_pipeline: None,
        }
        .into(),
        IncidentOpened {
            incident_id: "inc-02".into(),
            name: name(),
            version: vn(2),
            kind: SignalKind::Drift,
            metric: "psi".into(),
            value: 0.4,
            threshold: 0.2,
            actions: vec!["retraining_requested".into()],
        }
        .into(),
        SeriousIncidentClassified {
            incident_id: "inc-05".into(),
            name: name(),
            version: Some(vn(2)),
            category: SeriousIncidentCategory::Death,
            classified_by: who("carol"),
            classified_at: at(1),
            report_due: at(11),
        }
        .into(),
        SeriousIncidentReportDue {
            incident_id: "inc-05".into(),
            name: name(),
            version: None,
            category: SeriousIncidentCategory::Infringement,
            report_due: at(3),
        }
        .into(),
        PeriodicReviewDue {
            name: name(),
            version: vn(2),
            risk_tier: RiskTier::High,
            promotion_id: "credit-risk.2.pr-periodic-20261201T093000Z".into(),
            due_at: at(1),
            last_approved_at: at(1) - chrono::Duration::days(90),
            reviews: ReviewStage::ALL.to_vec(),
            deadline: at(4),
        }
        .into(),
        PeriodicReviewRejected {
            incident_id: "inc-03".into(),
            name: name(),
            version: vn(2),
            promotion_id: "credit-risk.2.pr-periodic-20261201T093000Z".into(),
            stage: ReviewStage::Business,
            rejected_by: who("bea"),
            reason: Some("the use changed".into()),
            periodic: true,
        }
        .into(),
        PeriodicReviewExpired {
            incident_id: "inc-05".into(),
            name: name(),
            version: vn(2),
            promotion_id: "credit-risk.2.pr-periodic-20261201T093000Z".into(),
            stage: ReviewStage::Compliance,
            periodic: true,
        }
        .into(),
        ShadowModelDetected {
            package: Some(package()),
            serving: None,
            incident_id: "inc-04".into(),
            registered_model: false,
            name: Some(ModelName::parse("fraud-score").unwrap()),
        }
        .into(),
        ShadowModelDetected {
            package: None,
            serving: Some(crate::events::ServingFinding {
                platform: "kserve".into(),
                environment: Environment::Production,
                endpoint: "models/fraud-score".into(),
                artifact_uri: "s3://acme-models/fraud/model.tar.gz".into(),
                artifact_sha256: None,
                outcome: "unregistered".into(),
                reason: "no registered version has artifact s3://acme-models/fraud/model.tar.gz"
                    .into(),
                version: None,
            }),
            incident_id: "inc-06".into(),
            registered_model: false,
            name: Some(ModelName::parse("models-fraud-score").unwrap()),
        }
        .into(),
        ModelPackageApprovalViolation {
            package: package(),
            incident_id: "inc-05".into(),
            reason: "the model package has no Steward registration".into(),
            revert: true,
            stage: None,
            name: Some(ModelName::parse("fraud-score").unwrap()),
            version: None,
        }
        .into(),
    ]
}

#[test]
fn every_governance_schema_has_a_variant_and_every_variant_a_schema() {
    let schemas = governance_schemas();
    let variants: BTreeSet<String> = GovernanceEvent::DETAIL_TYPES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(variants.len(), GovernanceEvent::DETAIL_TYPES.len());
    assert!(
        schemas.len() >= 20,
        "too few governance schemas: {schemas:?}"
    );
    assert_eq!(
        schemas.difference(&variants).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "schemas without a variant"
    );
    assert_eq!(
        variants.difference(&schemas).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "variants without a schema"
    );
}

#[test]
fn the_inbound_and_workflow_schemas_are_not_governance_events() {
    let schemas = governance_schemas();
    for inbound in [
        "SageMakerModelPackageStateChange",
        "CloudWatchAlarmStateChange",
        "ModelMetricsReported",
        "RetirementConfirmationRequested",
    ] {
        assert!(!schemas.contains(inbound), "{inbound}");
    }
}

#[test]
fn a_representative_instance_of_every_variant_validates_against_its_schema() {
    let samples = samples();
    let covered: BTreeSet<&str> = samples.iter().map(|e| e.detail_type()).collect();
    let all: BTreeSet<&str> = GovernanceEvent::DETAIL_TYPES.iter().copied().collect();
    assert_eq!(covered, all, "every variant needs a sample");
    for event in samples {
        let stored = DomainEvent::try_from(event.clone()).unwrap();
        assert_eq!(stored.detail_type, event.detail_type());
        assert_eq!(stored.detail["schema_version"], "1");
        let instance = envelope(&stored);
        let errs = errors(&validator(&stored.detail_type), &instance);
        assert!(
            errs.is_empty(),
            "{} fails its schema:\n    {}\n{instance:#}",
            stored.detail_type,
            errs.join("\n    ")
        );
    }
}

#[test]
fn a_schema_rejects_an_instance_whose_fields_are_renamed_so_the_check_has_teeth() {
    for event in samples() {
        let stored = DomainEvent::try_from(event).unwrap();
        let mut instance = envelope(&stored);
        let detail = instance["detail"].as_object_mut().unwrap();
        let keys: Vec<String> = detail.keys().cloned().collect();
        for k in keys
            .iter()
            .filter(|k| *k != "schema_version" && *k != "audit_seq")
        {
            let value = detail.remove(k).unwrap();
            detail.insert(format!("{k}_renamed"), value);
        }
        assert!(
            !errors(&validator(&stored.detail_type), &instance).is_empty(),
            "{}: an instance with every field renamed still validates",
            stored.detail_type
        );
    }
}

#[test]
fn a_stored_event_reads_back_as_the_same_variant() {
    for event in samples() {
        let stored = DomainEvent::try_from(event.clone()).unwrap();
        assert_eq!(GovernanceEvent::try_from(&stored).unwrap(), event);
    }
}

#[test]
fn a_stored_detail_is_the_struct_s_fields_plus_schema_version() {
    let stored = DomainEvent::try_from(GovernanceEvent::from(ModelRetired {
        name: name(),
        version: vn(1),
        reason: "superseded".into(),
        replacement: None,
    }))
    .unwrap();
    assert_eq!(stored.detail_type, "ModelRetired");
    assert_eq!(
        stored.detail,
        json!({"name": "credit-risk", "version": 1, "reason": "superseded", "replacement": null, "schema_version": "1"})
    );
}

#[test]
fn a_manual_rollback_has_no_incident_id_key() {
    let stored = DomainEvent::try_from(GovernanceEvent::from(ModelRolledBack {
        name: name(),
        from_version: vn(2),
        to_version: vn(1),
        reason: "bad release".into(),
        automatic: false,
        incident_id: None,
    }))
    .unwrap();
    assert!(stored.detail.get("incident_id").is_none());
}
