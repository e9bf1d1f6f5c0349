//! Every governance event the code emits validates against its schema in `events/schemas/`.
//!
//! A full governance scenario runs on the embedded backend (SQLite, no emulator, no env vars)
//! until every detail-type `crates/core/src/service/` can emit has been committed at least
//! once. Each outbox event is then wrapped in the EventBridge envelope exactly as EventBridge
//! delivers what the stream publisher puts (`source` `steward.governance`, the detail plus
//! `audit_seq`, see `handlers::stream::with_audit_seq`) and validated against
//! `events/schemas/<DetailType>.json` (Draft 2020-12, formats asserted).
//!
//! The set of detail-types is the typed events the service's files build (read at test time),
//! so a new event without a schema, or one the scenario does not reach, fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use std::sync::Arc;
use steward_aws::events::SOURCE;
use steward_aws::handlers::stream::with_audit_seq;
use steward_core::events::GovernanceEvent;
use steward_core::ids::VersionNumber;
use steward_core::ports::{Caller, SystemClock, Workflows};
use steward_core::records::{DomainEvent, ReviewStatus};
use steward_core::service::RetireOutcome;
use steward_core::service::{DecisionInput, SignalInput};
use steward_core::types::{
    Decision, Environment, ModelName, PrincipalId, ReviewStage, RiskTier, Role, SignalKind,
};
use steward_core::{Governance, Policy};
use steward_local::Embedded;
use steward_testkit::vn;

const MANIFEST_V1: &str = include_str!("../../../examples/credit-risk-v1.json");
const SERVICE_RS: &str = include_str!("../../core/src/service/mod.rs");
/// The submodules of service/ that emit events too.
const SERVICE_SUBMODULES: &[&str] = &[
    include_str!("../../core/src/service/admin.rs"),
    include_str!("../../core/src/service/cards.rs"),
    include_str!("../../core/src/service/deployment.rs"),
    include_str!("../../core/src/service/monitoring.rs"),
    include_str!("../../core/src/service/periodic.rs"),
    include_str!("../../core/src/service/promotions.rs"),
    include_str!("../../core/src/service/registration.rs"),
    include_str!("../../core/src/service/retirement.rs"),
    include_str!("../../core/src/service/reviews.rs"),
    include_str!("../../core/src/service/serious.rs"),
];
const MODEL: &str = "credit-risk";

// ---------------------------------------------------------------------------------- helpers

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/schemas")
}

/// The detail-types the service's files emit: every [`GovernanceEvent`] variant whose detail
/// struct one of them builds (`X {`).
fn emitted_by_core() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for source in std::iter::once(&SERVICE_RS).chain(SERVICE_SUBMODULES) {
        emitted_in(source, &mut names);
    }
    names
}

fn emitted_in(source: &str, names: &mut BTreeSet<String>) {
    for detail_type in GovernanceEvent::DETAIL_TYPES {
        if source.contains(&format!("{detail_type} {{")) {
            names.insert((*detail_type).to_owned());
        }
    }
}

fn caller(name: &str, roles: &[Role]) -> Caller {
    Caller {
        id: PrincipalId::parse(name).unwrap(),
        roles: roles.to_vec(),
        auth: steward_core::types::AuthMethod::Token,
    }
}

fn dev() -> Caller {
    caller("dana", &[Role::Developer])
}
fn rel() -> Caller {
    caller("rita", &[Role::ReleaseManager])
}
fn ops() -> Caller {
    caller("otto", &[Role::Operator])
}
fn admin() -> Caller {
    caller("ada", &[Role::Admin])
}
fn reviewer(stage: ReviewStage) -> Caller {
    match stage {
        ReviewStage::Technical => caller("tom", &[Role::TechnicalReviewer]),
        ReviewStage::Business => caller("bea", &[Role::BusinessReviewer]),
        ReviewStage::Compliance => caller("carl", &[Role::ComplianceReviewer]),
        ReviewStage::Deployment => rel(),
    }
}
fn everyone() -> Vec<Caller> {
    let mut all = vec![dev(), ops(), admin()];
    all.extend(ReviewStage::ALL.iter().map(|s| reviewer(*s)));
    all
}

fn manifest() -> Value {
    serde_json::from_str(MANIFEST_V1).unwrap()
}

fn staging_evaluation(v: VersionNumber) -> Value {
    json!({
        "name": format!("staging-shadow-v{v}"),
        "dataset": {
            "uri": format!("s3://acme-data/credit/staging-shadow-v{v}.parquet"),
            "sha256": "2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b"
        },
        "metrics": {"auc": 0.905, "accuracy": 0.869},
        "environment": "staging"
    })
}

fn decision(decision: Decision) -> DecisionInput {
    DecisionInput {
        decision,
        comment: Some("looked at it".into()),
        conditions: vec![],
    }
}

async fn to_staging(gov: &Governance, v: VersionNumber) {
    let p = gov
        .request_promotion(&dev(), MODEL, v, Environment::Staging, None)
        .await
        .unwrap();
    gov.decide(
        &reviewer(ReviewStage::Technical),
        &p.reviews[0].id,
        decision(Decision::Approve),
    )
    .await
    .unwrap();
    gov.deploy(&dev(), MODEL, v, Environment::Staging, None)
        .await
        .unwrap();
    gov.add_evaluation(&dev(), MODEL, v, staging_evaluation(v))
        .await
        .unwrap();
}

async fn to_production(gov: &Governance, v: VersionNumber) {
    to_staging(gov, v).await;
    let p = gov
        .request_promotion(&dev(), MODEL, v, Environment::Production, None)
        .await
        .unwrap();
    assert_eq!(p.reviews.len(), 4, "a high-risk model needs four reviews");
    for r in &p.reviews {
        gov.decide(&reviewer(r.stage), &r.id, decision(Decision::Approve))
            .await
            .unwrap();
    }
    gov.deploy(&rel(), MODEL, v, Environment::Production, None)
        .await
        .unwrap();
}

/// The event as EventBridge delivers it to a rule's target: the envelope around the entry the
/// stream publisher puts (Source, DetailType, Detail with `audit_seq`).
fn envelope(event: &DomainEvent, audit_seq: u64) -> Value {
    let published = with_audit_seq(std::slice::from_ref(event), audit_seq)
        .pop()
        .unwrap();
    // The publisher sends the detail as JSON text; EventBridge parses it back into the event.
    let detail: Value = serde_json::from_str(&published.detail.to_string()).unwrap();
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": published.detail_type,
        "source": SOURCE,
        "account": "123456789012",
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    })
}

fn validator(detail_type: &str) -> jsonschema::Validator {
    let path = schemas_dir().join(format!("{detail_type}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{detail_type} has no schema ({}): {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{}: not a valid schema: {e}", path.display()))
}

/// Every error of `instance` against `v`, one line each.
fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect()
}

// ---------------------------------------------------------------------------------- scenario

/// A workflows port whose retirements wait for a workflow (as Step Functions' does).
struct ConfirmingWorkflows;
impl Workflows for ConfirmingWorkflows {
    fn confirms_retirements(&self) -> bool {
        true
    }
}

/// Runs the scenario and returns every outbox event, oldest first, with its outbox id.
async fn scenario(dir: &Path) -> Vec<(i64, DomainEvent)> {
    // Opening a fresh data directory records the policy: PolicyChanged.
    let embedded = Embedded::open(dir, Policy::default()).await.unwrap();
    let gov = &embedded.gov;
    for c in everyone() {
        gov.seed_principal(&c.id, c.roles.clone(), "file")
            .await
            .unwrap();
    }

    // Version 1: registered, card revised, evaluated, through staging into production.
    let (v1, _) = gov.register(&dev(), MODEL, manifest(), None).await.unwrap();
    assert_eq!(v1.version, vn(1));
    let mut card = manifest()["card"].clone();
    card["limitations"]
        .as_array_mut()
        .unwrap()
        .push(json!("Not validated for small-business loans."));
    gov.revise_card(&dev(), MODEL, vn(1), card, None)
        .await
        .unwrap();
    to_production(gov, vn(1)).await;

    // Version 2 replaces it in production; drift asks for retraining, a quality breach on
    // the serving version rolls production back by itself.
    gov.register(&dev(), MODEL, manifest(), None).await.unwrap();
    to_production(gov, vn(2)).await;
    let name = ModelName::parse(MODEL).unwrap();
    let drift = gov
        .signal(
            &ops(),
            SignalInput {
                model: name.clone(),
                version: 2,
                kind: SignalKind::Drift,
                metric: "psi".into(),
                value: 0.5,
            },
        )
        .await
        .unwrap();
    assert!(drift.breached, "the drift signal must breach the card");
    let quality = gov
        .signal(
            &ops(),
            SignalInput {
                model: name.clone(),
                version: 2,
                kind: SignalKind::Quality,
                metric: "auc".into(),
                value: 0.70,
            },
        )
        .await
        .unwrap();
    assert!(
        quality.actions.iter().any(|a| a == "rolled_back_to:1"),
        "the quality breach must roll back automatically: {:?}",
        quality.actions
    );

    // Version 3 goes to production and is rolled back by hand.
    gov.register(&dev(), MODEL, manifest(), None).await.unwrap();
    to_production(gov, vn(3)).await;
    let rolled = gov
        .rollback(&ops(), MODEL, "latency regression", None)
        .await
        .unwrap();
    let serving = rolled.production_version.expect("a version in production");

    // Version 4: its staging promotion is rejected.
    gov.register(&dev(), MODEL, manifest(), None).await.unwrap();
    let p = gov
        .request_promotion(&dev(), MODEL, vn(4), Environment::Staging, None)
        .await
        .unwrap();
    gov.decide(
        &reviewer(ReviewStage::Technical),
        &p.reviews[0].id,
        decision(Decision::Reject),
    )
    .await
    .unwrap();

    // Version 2 is retired in favour of the version in production.
    gov.retire(&rel(), MODEL, vn(2), "superseded", Some(serving))
        .await
        .unwrap();

    // An admin changes a principal's roles.
    gov.set_roles(&admin(), "newcomer", vec![Role::Developer])
        .await
        .unwrap();

    // Where retirements go through the retirement workflow (AWS), a request is recorded and
    // waits: RetirementRequested. Same store, a workflows port that confirms retirements.
    let confirming = Governance::new(
        embedded.store.clone(),
        embedded.store.clone(),
        Arc::new(ConfirmingWorkflows),
        Arc::new(SystemClock),
        Arc::new(steward_aws::handlers::backend::UuidIds),
        Policy::default(),
    );
    let pending = confirming
        .retire(&rel(), MODEL, vn(4), "never shipped", None)
        .await
        .unwrap();
    assert!(matches!(pending, RetireOutcome::Pending(_)), "{pending:?}");
    // A compliance reviewer refuses it: RetirementDecided.
    confirming
        .decide_retirement(
            &reviewer(ReviewStage::Compliance),
            MODEL,
            vn(4),
            Decision::Reject,
            Some("a partner still calls it"),
        )
        .await
        .unwrap();
    drop(embedded);

    // A changed policy (one-second review timeout and periodic review interval for high risk)
    // is recorded on reopening; a review left pending past it expires its promotion, and the
    // version serving production falls due for its periodic review.
    let mut policy = Policy::default();
    let high = policy.tiers.get_mut(&RiskTier::High).unwrap();
    high.review_timeout = Duration::from_secs(1);
    high.periodic_review = Duration::from_secs(1);
    let embedded = Embedded::open(dir, policy).await.unwrap();
    let gov = &embedded.gov;
    gov.register(&dev(), MODEL, manifest(), None).await.unwrap();
    gov.request_promotion(&dev(), MODEL, vn(5), Environment::Staging, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gov.open_due_periodic_reviews().await.unwrap(), 1);
    // Its technical reviewer rejects the re-certification: PeriodicReviewRejected.
    let technical = reviewer(ReviewStage::Technical);
    let periodic = gov
        .list_reviews(&technical, ReviewStatus::Pending, None, 50)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|r| r.promotion_id.contains(".pr-periodic-"))
        .expect("the periodic review in the technical reviewer's inbox");
    gov.decide(&technical, &periodic.id, decision(Decision::Reject))
        .await
        .unwrap();
    // A re-certification requested by hand, left undecided past its one-second timeout,
    // expires with the staging promotion: PeriodicReviewExpired.
    gov.request_promotion(&rel(), MODEL, serving, Environment::Production, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gov.expire_due_reviews().await.unwrap(), 2);

    // A compliance reviewer classifies the drift incident as serious (report due in two
    // days): SeriousIncidentClassified, and at once SeriousIncidentReportDue.
    let incident = drift.incident.expect("the drift incident");
    gov.classify_incident(
        &reviewer(ReviewStage::Compliance),
        &incident.id,
        json!({"severity": "serious", "category": "infringement"}),
    )
    .await
    .unwrap();
    assert_eq!(
        gov.serious_incident_reminders(gov.now())
            .await
            .unwrap()
            .len(),
        1
    );

    embedded.store.outbox(0, 10_000).unwrap()
}

// ---------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_a_governance_scenario_emits_validates_against_its_schema_as_eventbridge_delivers_it(
) {
    let tmp = tempfile::tempdir().unwrap();
    let events = scenario(tmp.path()).await;

    let mut validators = BTreeMap::new();
    let mut seen = BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for (id, event) in &events {
        let v = validators
            .entry(event.detail_type.clone())
            .or_insert_with(|| validator(&event.detail_type));
        let instance = envelope(event, u64::try_from(*id).unwrap());
        let errs = errors(v, &instance);
        if !errs.is_empty() {
            failures.push(format!(
                "{} (outbox {id}) fails its schema:\n    {}\n  event: {}",
                event.detail_type,
                errs.join("\n    "),
                serde_json::to_string_pretty(&instance).unwrap()
            ));
        }
        *seen.entry(event.detail_type.clone()).or_default() += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("validated {} events: {seen:?}", events.len());

    let emitted = emitted_by_core();
    assert!(
        emitted.len() >= 17,
        "service.rs parsing found too few events: {emitted:?}"
    );
    let seen_types: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(
        seen_types, emitted,
        "the scenario must emit exactly the detail-types service.rs can emit (seen {seen:?})"
    );
}

#[test]
fn a_schema_rejects_an_event_with_a_bad_time_or_without_audit_seq_so_the_check_has_teeth() {
    let v = validator("PolicyChanged");
    let event = DomainEvent {
        detail_type: "PolicyChanged".into(),
        detail: json!({
            "schema_version": "1",
            "policy_sha256": "2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b"
        }),
    };
    let good = envelope(&event, 7);
    assert_eq!(errors(&v, &good), Vec::<String>::new());

    let mut bad_time = good.clone();
    bad_time["time"] = json!("yesterday at noon");
    assert!(
        !errors(&v, &bad_time).is_empty(),
        "format assertions must be on"
    );

    let mut no_seq = good.clone();
    no_seq["detail"]
        .as_object_mut()
        .unwrap()
        .remove("audit_seq");
    assert!(!errors(&v, &no_seq).is_empty());
}

/// The SageMaker integration's findings (`crates/core/src/integrations.rs`): every detail-type
/// it can emit is emitted by a shadow model approved behind Steward's back, and validates.
#[tokio::test]
async fn every_event_the_sagemaker_integration_emits_validates_against_its_schema() {
    const INTEGRATIONS_RS: &str = include_str!("../../core/src/service/integrations.rs");
    let mut emitted = BTreeSet::new();
    emitted_in(INTEGRATIONS_RS, &mut emitted);
    assert!(
        emitted.len() >= 2,
        "integrations.rs parsing found too few events: {emitted:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(tmp.path(), Policy::default()).await.unwrap();
    let pkg = steward_core::integrations::ModelPackageState {
        arn: "arn:aws:sagemaker:eu-west-1:123456789012:model-package/fraud-score/4".into(),
        group: "fraud-score".into(),
        package_version: Some(4),
        approval_status: "Approved".into(),
        model_data_urls: vec!["s3://sagemaker-fraud/4/model.tar.gz".into()],
        generated_by: None,
        steward_version: None,
        last_modified: "2026-11-27T10:00:00Z".into(),
    };
    embedded
        .gov
        .model_package_changed(&pkg, true)
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    for (id, event) in embedded.store.outbox(0, 10_000).unwrap() {
        if !emitted.contains(&event.detail_type) {
            continue;
        }
        let instance = envelope(&event, u64::try_from(id).unwrap());
        let errs = errors(&validator(&event.detail_type), &instance);
        assert!(
            errs.is_empty(),
            "{}: {errs:?}\n{instance:#}",
            event.detail_type
        );
        seen.insert(event.detail_type);
    }
    assert_eq!(seen, emitted);
}
