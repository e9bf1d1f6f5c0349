//! The embedded workflow runner opens periodic reviews that fell due, once per due period,
//! however often it ticks.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use steward_core::ports::Caller;
use steward_core::records::ReviewStatus;
use steward_core::service::DecisionInput;
use steward_core::testing::{vn, ManualClock};
use steward_core::types::{Decision, Environment, PrincipalId, Role};
use steward_core::{Governance, Policy};
use steward_local::Embedded;

const MODEL: &str = "credit-risk";

fn caller(id: &str, roles: &[Role]) -> Caller {
    Caller {
        id: PrincipalId::parse(id).unwrap(),
        roles: roles.to_vec(),
        auth: steward_core::types::AuthMethod::Token,
    }
}

fn manifest() -> Value {
    let mut m: Value = serde_json::from_str(include_str!("fixtures/credit-risk-v1.json")).unwrap();
    m["risk_tier"] = json!("low");
    m
}

async fn to_production(gov: &Governance) {
    let (dev, tech, rel) = (
        caller("dana", &[Role::Developer]),
        caller("tom", &[Role::TechnicalReviewer]),
        caller("rita", &[Role::ReleaseManager]),
    );
    gov.register(&dev, MODEL, manifest(), None).await.unwrap();
    for target in [Environment::Staging, Environment::Production] {
        let p = gov
            .request_promotion(&dev, MODEL, vn(1), target, None)
            .await
            .unwrap();
        for r in &p.reviews {
            let approve = DecisionInput {
                decision: Decision::Approve,
                comment: None,
                conditions: vec![],
            };
            gov.decide(&tech, &r.id, approve).await.unwrap();
        }
        let who = if target == Environment::Staging {
            &dev
        } else {
            &rel
        };
        gov.deploy(who, MODEL, vn(1), target, None).await.unwrap();
        if target == Environment::Staging {
            let evaluation = json!({
                "name": "staging-shadow",
                "dataset": {
                    "uri": "s3://acme-data/credit/staging-shadow.parquet",
                    "sha256": "2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b"
                },
                "metrics": {"auc": 0.905, "accuracy": 0.869},
                "environment": "staging"
            });
            gov.add_evaluation(&dev, MODEL, vn(1), evaluation)
                .await
                .unwrap();
        }
    }
}

// Tokio's clock is paused: the runner's 100 ms ticks pass as fast as they run, and the
// governance clock (a ManualClock) decides when the review falls due.
#[tokio::test(start_paused = true)]
async fn the_runner_opens_a_due_periodic_review_once_and_puts_it_in_the_review_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = Policy::default();
    for tier in policy.tiers.values_mut() {
        tier.periodic_review = Duration::from_secs(1);
    }
    let clock = Arc::new(ManualClock::default());
    let embedded = Embedded::open_with_clock(dir.path(), policy, clock.clone())
        .await
        .unwrap();
    let gov = embedded.gov.clone();
    let tech = caller("tom", &[Role::TechnicalReviewer]);
    gov.seed_principal(&tech.id, tech.roles.clone(), "file")
        .await
        .unwrap();
    to_production(&gov).await;

    // Ticks every 100 ms: five ticks before the review is due open nothing...
    let runner = embedded.spawn_runner(Duration::from_millis(100));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let early = gov
        .list_reviews(&tech, ReviewStatus::Pending, None, 50)
        .await
        .unwrap()
        .items;
    assert!(early.is_empty(), "not due yet: {early:?}");
    // ...then about 20 ticks while it is due.
    clock.advance(Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    runner.abort();

    let inbox = gov
        .list_reviews(&tech, ReviewStatus::Pending, None, 50)
        .await
        .unwrap()
        .items;
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0].target, Environment::Production);
    assert_eq!(inbox[0].version, vn(1));
    let auditor = caller("ada", &[Role::Auditor]);
    let due = gov
        .audit_events(&auditor, Some(MODEL), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "periodic_review.due")
        .count();
    assert_eq!(due, 1, "PeriodicReviewDue once per due period");
    let outbox = embedded.store.outbox(0, 10_000).unwrap();
    let emitted = outbox
        .iter()
        .filter(|(_, e)| e.detail_type == "PeriodicReviewDue")
        .count();
    assert_eq!(emitted, 1);
}
