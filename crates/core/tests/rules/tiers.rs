//! Each risk tier's review stages: which open, in which order, and what a promotion needs.

use std::time::Duration;

use serde_json::json;
use steward_core::records::{PromotionStatus, ReviewStatus};
use steward_core::testing::{block_on, manifest, vn, Harness, WorkflowCall};
use steward_core::types::{Environment, ReviewStage, RiskTier, Stage};
use steward_core::GovError;

use crate::{is_conflict, policy_reasons, review, stages};

use ReviewStage::*;

fn production_stages(tier: RiskTier) -> Vec<ReviewStage> {
    let h = Harness::new();
    block_on(async {
        let v = h.register("credit-risk", tier).await;
        h.to_staging("credit-risk", v).await;
        let p = h.promote("credit-risk", v, Environment::Production).await;
        assert_eq!(p.status, PromotionStatus::InReview);
        assert!(p.reviews.iter().all(|r| r.status == ReviewStatus::Pending));
        stages(&p)
    })
}

#[test]
fn a_low_risk_production_promotion_opens_only_a_technical_review() {
    assert_eq!(production_stages(RiskTier::Low), [Technical]);
}

#[test]
fn a_medium_risk_production_promotion_opens_technical_then_business_reviews() {
    assert_eq!(production_stages(RiskTier::Medium), [Technical, Business]);
}

#[test]
fn a_high_risk_production_promotion_opens_all_four_reviews_in_order() {
    assert_eq!(
        production_stages(RiskTier::High),
        [Technical, Business, Compliance, Deployment]
    );
}

#[test]
fn a_staging_promotion_needs_only_the_technical_review_in_every_tier() {
    for tier in RiskTier::ALL {
        let h = Harness::new();
        block_on(async {
            let v = h.register("credit-risk", *tier).await;
            let p = h.promote("credit-risk", v, Environment::Staging).await;
            assert_eq!(stages(&p), [Technical], "{tier}");
            assert_eq!(p.target, Environment::Staging);
        });
    }
}

#[test]
fn every_review_of_a_promotion_is_due_the_tiers_review_timeout_after_the_request() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::High).await;
        h.to_staging("credit-risk", v).await;
        let p = h.promote("credit-risk", v, Environment::Production).await;
        let due = p.requested_at + chrono::Duration::days(3);
        assert!(p.reviews.iter().all(|r| r.deadline == due), "{p:?}");
        assert_eq!(
            h.workflows.calls()[..1],
            [WorkflowCall::PromotionStarted {
                promotion: "credit-risk.1.pr-1".into()
            }]
        );
    });
}

#[test]
fn a_high_risk_promotion_is_approved_only_when_its_fourth_review_is() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::High).await;
        h.to_staging("credit-risk", v).await;
        let p = h.promote("credit-risk", v, Environment::Production).await;
        for stage in [Technical, Business, Compliance] {
            let last = h
                .approve(h.cast.reviewer_for(stage), &review(&p, stage).id)
                .await
                .unwrap();
            assert_eq!(last.status, PromotionStatus::InReview, "after {stage}");
        }
        let gate = h
            .gov
            .gate("credit-risk", v, Environment::Production)
            .await
            .unwrap();
        assert!(!gate.allowed);
        assert_eq!(gate.reasons, ["version 1 is not approved for production"]);
        let done = h
            .approve(&h.cast.rel2, &review(&p, Deployment).id)
            .await
            .unwrap();
        assert_eq!(done.status, PromotionStatus::Approved);
        assert!(done.closed_at.is_some());
        let gate = h
            .gov
            .gate("credit-risk", v, Environment::Production)
            .await
            .unwrap();
        assert!(gate.allowed, "{gate:?}");
        let types = h.store.outbox_types();
        assert_eq!(
            types.iter().filter(|t| *t == "PromotionApproved").count(),
            2,
            "staging and production: {types:?}"
        );
    });
}

#[test]
fn a_policy_file_decides_the_reviews_of_a_tier() {
    let policy = r#"
        [tiers.low]
        reviews = ["technical", "deployment"]
        review_timeout = "2h"
        periodic_review = "30days"
        auto_rollback = false
        [tiers.medium]
        reviews = ["technical"]
        review_timeout = "3days"
        periodic_review = "90days"
        auto_rollback = true
        [tiers.high]
        reviews = ["technical", "compliance"]
        review_timeout = "3days"
        periodic_review = "90days"
        auto_rollback = true
    "#;
    for (tier, expected) in [
        (RiskTier::Low, vec![Technical, Deployment]),
        (RiskTier::Medium, vec![Technical]),
        (RiskTier::High, vec![Technical, Compliance]),
    ] {
        let h = Harness::from_policy_toml(policy).unwrap();
        block_on(async {
            let v = h.register("pricing", tier).await;
            h.to_staging("pricing", v).await;
            let p = h.promote("pricing", v, Environment::Production).await;
            assert_eq!(stages(&p), expected, "{tier}");
            if tier == RiskTier::Low {
                let two_hours = p.requested_at + chrono::Duration::hours(2);
                assert_eq!(p.reviews[0].deadline, two_hours);
            }
        });
    }
}

#[test]
fn a_policy_whose_reviews_do_not_start_with_technical_is_refused() {
    let err = Harness::from_policy_toml(
        r#"
        [tiers.low]
        reviews = ["business"]
        review_timeout = "1h"
        periodic_review = "1day"
        auto_rollback = true
        "#,
    )
    .err()
    .expect("refused");
    let GovError::Validation(errors) = err else {
        panic!("{err:?}")
    };
    let named: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert!(named.contains(&"tiers.low.reviews"), "{named:?}");
}

#[test]
fn a_production_promotion_needs_the_version_deployed_to_staging_first() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("eager", RiskTier::Low).await;
        let before = h.store.audit_events().len();
        let r = h
            .gov
            .request_promotion(&h.cast.dev, "eager", v, Environment::Production, None)
            .await;
        assert_eq!(
            policy_reasons(r),
            ["version 1 is in development: production promotion needs the version deployed to staging first"]
        );
        assert_eq!(h.store.audit_events().len(), before, "nothing written");
    });
}

#[test]
fn a_production_promotion_needs_an_evaluation_on_staging_test_data() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Low).await;
        let p = h.promote("credit-risk", v, Environment::Staging).await;
        h.approve_all(&p).await;
        h.gov
            .deploy(&h.cast.dev, "credit-risk", v, Environment::Staging, None)
            .await
            .unwrap();
        let r = h
            .gov
            .request_promotion(&h.cast.dev, "credit-risk", v, Environment::Production, None)
            .await;
        let reasons = policy_reasons(r);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].starts_with("no evaluation recorded on staging test data"));
    });
}

#[test]
fn a_production_promotion_needs_monitoring_thresholds_and_a_rollback_procedure() {
    let h = Harness::new();
    block_on(async {
        let mut m = manifest(RiskTier::Low);
        m["card"]["operational"]["monitoring"] = json!({"quality": [], "drift": []});
        m["card"]["rollback"]["procedure"] = json!(" ");
        let (v, _) = h
            .gov
            .register(&h.cast.dev, "bare", m, None)
            .await
            .expect("registration allows empty monitoring and rollback");
        h.to_staging("bare", v.version).await;
        let r = h
            .gov
            .request_promotion(&h.cast.dev, "bare", vn(1), Environment::Production, None)
            .await;
        assert_eq!(
            policy_reasons(r),
            [
                "the model card has no quality thresholds (card.operational.monitoring.quality)",
                "the model card has no drift thresholds (card.operational.monitoring.drift)",
                "the model card documents no rollback procedure (card.rollback.procedure)",
            ]
        );
    });
}

#[test]
fn a_high_risk_production_promotion_needs_a_recently_tested_rollback_when_policy_says_so() {
    let h =
        Harness::from_policy_toml(include_str!("../../../../docs/policy.example.toml")).unwrap();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::High).await;
        h.to_staging("credit-risk", v).await;
        let r = h
            .gov
            .request_promotion(&h.cast.dev, "credit-risk", v, Environment::Production, None)
            .await;
        assert_eq!(
            policy_reasons(r),
            ["policy requires a tested rollback procedure (card.rollback.last_tested)"]
        );
    });
}

#[test]
fn a_staging_promotion_needs_the_policy_thresholds_met() {
    let h = Harness::from_policy_toml(
        &include_str!("../../../../docs/policy.example.toml")
            .replace("value = 0.8", "value = 0.95"),
    )
    .unwrap();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Medium).await;
        let r = h
            .gov
            .request_promotion(&h.cast.dev, "credit-risk", v, Environment::Staging, None)
            .await;
        assert_eq!(
            policy_reasons(r),
            ["evaluation \"holdout-2026q1\": auc = 0.912 does not meet >= 0.95"]
        );
        // The threshold names only medium and high: a low-risk model passes.
        let v = h.register("pricing", RiskTier::Low).await;
        h.promote("pricing", v, Environment::Staging).await;
    });
}

#[test]
fn a_version_has_at_most_one_promotion_in_review() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Low).await;
        h.promote("credit-risk", v, Environment::Staging).await;
        let again = h
            .gov
            .request_promotion(&h.cast.dev, "credit-risk", v, Environment::Staging, None)
            .await;
        assert!(is_conflict(&again), "{again:?}");
    });
}

#[test]
fn an_approved_version_is_not_promoted_to_the_same_environment_again() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Low).await;
        let p = h.promote("credit-risk", v, Environment::Staging).await;
        h.approve_all(&p).await;
        let again = h
            .gov
            .request_promotion(&h.cast.dev, "credit-risk", v, Environment::Staging, None)
            .await;
        assert!(is_conflict(&again), "{again:?}");
    });
}

#[test]
fn a_rejection_ends_the_promotion_and_cancels_the_reviews_still_pending() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::High).await;
        h.to_staging("credit-risk", v).await;
        let p = h.promote("credit-risk", v, Environment::Production).await;
        h.approve(&h.cast.tech, &review(&p, Technical).id)
            .await
            .unwrap();
        let no_reason = h.reject(&h.cast.biz, &review(&p, Business).id, "  ").await;
        assert_eq!(crate::fields(no_reason), ["comment"]);
        let done = h
            .reject(&h.cast.biz, &review(&p, Business).id, "no business case")
            .await
            .unwrap();
        assert_eq!(done.status, PromotionStatus::Rejected);
        let statuses: Vec<_> = done.reviews.iter().map(|r| r.status).collect();
        use ReviewStatus::*;
        assert_eq!(statuses, [Approved, Rejected, Cancelled, Cancelled]);
        let late = h.approve(&h.cast.comp, &review(&p, Compliance).id).await;
        assert!(is_conflict(&late), "{late:?}");
        // The version may be promoted again.
        let v1 = h.gov.version_detail("credit-risk", v).await.unwrap();
        assert_eq!(v1.version.open_promotion, None);
        assert_eq!(v1.version.stage, Stage::Staging);
        assert!(!v1.version.approved_for(Environment::Production));
    });
}

#[test]
fn a_version_is_deployed_only_where_it_is_approved() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("shadow", RiskTier::Low).await;
        let r = h
            .gov
            .deploy(&h.cast.dev, "shadow", v, Environment::Staging, None)
            .await;
        assert_eq!(policy_reasons(r), ["version 1 is not approved for staging"]);
        let r = h
            .gov
            .deploy(&h.cast.rel, "shadow", v, Environment::Production, None)
            .await;
        assert!(policy_reasons(r).contains(&"version 1 is not approved for production".to_owned()));
        let r = h
            .gov
            .deploy(&h.cast.dev, "shadow", v, Environment::Production, None)
            .await;
        assert!(matches!(r, Err(GovError::Forbidden(_))), "{r:?}");
        assert!(h
            .store
            .audit_actions()
            .iter()
            .all(|a| a != "version.deployed"));
    });
}

#[test]
fn time_moving_on_does_not_change_what_a_promotion_needs() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Medium).await;
        h.to_staging("credit-risk", v).await;
        h.clock.advance(Duration::from_secs(30 * 24 * 3600));
        let p = h.promote("credit-risk", v, Environment::Production).await;
        assert_eq!(stages(&p), [Technical, Business]);
        assert_eq!(p.requested_at, h.now());
    });
}
