//! Review expiry at the deadline, with time moved by the manual clock: a moment before the
//! deadline a review is still open; at and after it, it has expired and ended its promotion.

use std::time::Duration;

use steward_core::records::{Promotion, PromotionStatus, ReviewStatus};
use steward_core::testing::{block_on, vn, Harness};
use steward_core::types::{Environment, ReviewStage, RiskTier};

use crate::{is_conflict, review};

const THREE_DAYS: Duration = Duration::from_secs(3 * 24 * 3600);
const A_MOMENT: Duration = Duration::from_micros(1);

/// A high-risk production promotion of `credit-risk` v1, just requested.
async fn requested(h: &Harness) -> Promotion {
    let v = h.register("credit-risk", RiskTier::High).await;
    h.to_staging("credit-risk", v).await;
    h.promote("credit-risk", v, Environment::Production).await
}

#[test]
fn a_review_is_still_open_a_moment_before_its_deadline() {
    let h = Harness::new();
    block_on(async {
        let p = requested(&h).await;
        h.clock.advance(THREE_DAYS - A_MOMENT);
        assert_eq!(h.gov.expire_due_reviews().await.unwrap(), 0);
        let now = h.gov.promotion(&p.id).await.unwrap();
        assert_eq!(now.status, PromotionStatus::InReview);
        // And a decision a moment before the deadline counts.
        let decided = h
            .approve(&h.cast.tech, &review(&p, ReviewStage::Technical).id)
            .await
            .unwrap();
        assert_eq!(decided.reviews[0].status, ReviewStatus::Approved);
    });
}

#[test]
fn a_review_expires_exactly_at_its_deadline_and_ends_its_promotion() {
    let h = Harness::new();
    block_on(async {
        let p = requested(&h).await;
        h.approve(&h.cast.tech, &review(&p, ReviewStage::Technical).id)
            .await
            .unwrap();
        h.clock.advance(THREE_DAYS);
        assert_eq!(h.now(), p.reviews[1].deadline);
        assert_eq!(h.gov.expire_due_reviews().await.unwrap(), 1);
        let now = h.gov.promotion(&p.id).await.unwrap();
        assert_eq!(now.status, PromotionStatus::Expired);
        assert_eq!(now.closed_at, Some(h.now()));
        use ReviewStatus::*;
        let statuses: Vec<_> = now.reviews.iter().map(|r| r.status).collect();
        // The first pending review (business) is the one that expired; the rest are cancelled.
        assert_eq!(statuses, [Approved, Expired, Cancelled, Cancelled]);
        let v = h.gov.version_detail("credit-risk", vn(1)).await.unwrap();
        assert_eq!(v.version.open_promotion, None);
        let events = h.store.audit_events();
        let expired: Vec<_> = events
            .iter()
            .filter(|e| e.action == "review.expired" || e.action == "promotion.expired")
            .collect();
        assert_eq!(expired.len(), 2);
        assert!(expired.iter().all(|e| e.actor == "system:workflow"));
        let types = h.store.outbox_types();
        assert!(types.ends_with(&["ReviewTimedOut".into(), "PromotionExpired".into()]));
    });
}

#[test]
fn a_review_past_its_deadline_has_expired_too() {
    let h = Harness::new();
    block_on(async {
        let p = requested(&h).await;
        h.clock.advance(THREE_DAYS + Duration::from_secs(3600));
        assert_eq!(h.gov.expire_due_reviews().await.unwrap(), 1);
        assert_eq!(
            h.gov.promotion(&p.id).await.unwrap().status,
            PromotionStatus::Expired
        );
    });
}

#[test]
fn a_decision_at_the_deadline_is_a_conflict_and_expires_the_promotion() {
    let h = Harness::new();
    block_on(async {
        let p = requested(&h).await;
        h.clock.advance(THREE_DAYS);
        let r = h
            .approve(&h.cast.tech, &review(&p, ReviewStage::Technical).id)
            .await;
        assert!(is_conflict(&r), "{r:?}");
        let now = h.gov.promotion(&p.id).await.unwrap();
        assert_eq!(now.status, PromotionStatus::Expired);
        assert_eq!(now.reviews[0].status, ReviewStatus::Expired);
        assert_eq!(
            now.reviews[0].decided_by, None,
            "the late decision is not recorded"
        );
        // Nothing is left for the runner's tick.
        assert_eq!(h.gov.expire_due_reviews().await.unwrap(), 0);
    });
}

#[test]
fn a_promotion_expires_once_however_often_the_runner_ticks() {
    let h = Harness::new();
    block_on(async {
        requested(&h).await;
        h.clock.advance(THREE_DAYS);
        assert_eq!(h.gov.expire_due_reviews().await.unwrap(), 1);
        h.clock.advance(Duration::from_secs(60));
        assert_eq!(h.gov.expire_due_reviews().await.unwrap(), 0);
        let count = h
            .store
            .audit_actions()
            .iter()
            .filter(|a| *a == "promotion.expired")
            .count();
        assert_eq!(count, 1);
    });
}

#[test]
fn the_review_timeout_is_the_tiers_from_the_policy() {
    let mut policy = steward_core::Policy::default();
    policy.tiers.get_mut(&RiskTier::Low).unwrap().review_timeout = Duration::from_secs(2 * 3600);
    let h = Harness::with_policy(policy);
    block_on(async {
        let v = h.register("pricing", RiskTier::Low).await;
        let p = h.promote("pricing", v, Environment::Staging).await;
        h.clock.advance(Duration::from_secs(2 * 3600) - A_MOMENT);
        assert_eq!(h.gov.expire_due_reviews().await.unwrap(), 0);
        h.clock.advance(A_MOMENT);
        assert_eq!(h.gov.expire_due_reviews().await.unwrap(), 1);
        assert_eq!(
            h.gov.promotion(&p.id).await.unwrap().status,
            PromotionStatus::Expired
        );
    });
}

#[test]
fn an_expired_promotion_can_be_requested_again_with_a_fresh_deadline() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("pricing", RiskTier::Low).await;
        h.promote("pricing", v, Environment::Staging).await;
        h.clock.advance(THREE_DAYS);
        h.gov.expire_due_reviews().await.unwrap();
        let again = h.promote("pricing", v, Environment::Staging).await;
        assert_eq!(
            again.reviews[0].deadline,
            h.now() + chrono::Duration::days(3)
        );
        h.approve_all(&again).await;
    });
}

#[test]
fn a_workflow_timing_a_review_out_ends_it_even_before_the_deadline_once() {
    let h = Harness::new();
    block_on(async {
        let p = requested(&h).await;
        let id = &review(&p, ReviewStage::Technical).id;
        assert!(h.gov.expire_review(id).await.unwrap());
        assert!(!h.gov.expire_review(id).await.unwrap(), "a repeated report");
        assert_eq!(
            h.gov.promotion(&p.id).await.unwrap().status,
            PromotionStatus::Expired
        );
        let unknown = h.gov.expire_review("credit-risk.1.pr-99-technical").await;
        assert!(matches!(unknown, Err(steward_core::GovError::NotFound(_))));
    });
}
