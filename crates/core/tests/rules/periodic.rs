//! Periodic reviews falling due: a production version is re-certified through the review
//! inbox once its tier's interval has passed since its latest production approval, once per
//! due period.

use std::time::Duration;

use steward_core::records::{IncidentKind, PromotionStatus, ReviewStatus};
use steward_core::service::{periodic_promotion_id, PERIODIC_REVIEW_ACTOR};
use steward_core::testing::{block_on, caller, manifest, vn, Harness};
use steward_core::types::{Environment, ModelName, ReviewStage, RiskTier, Role, Stage};

const DAY: u64 = 24 * 3600;
const A_MOMENT: Duration = Duration::from_micros(1);

/// `credit-risk` v1 serving production in `tier`; returns when it was approved.
async fn serving(h: &Harness, tier: RiskTier) -> chrono::DateTime<chrono::Utc> {
    h.new_production_version("credit-risk", tier).await;
    h.now()
}

fn interval(tier: RiskTier) -> Duration {
    steward_core::Policy::default().tier(tier).periodic_review
}

#[test]
fn a_production_version_is_not_due_a_moment_before_its_interval_has_passed() {
    let h = Harness::new();
    block_on(async {
        serving(&h, RiskTier::Low).await;
        h.clock.advance(interval(RiskTier::Low) - A_MOMENT);
        assert_eq!(h.gov.open_due_periodic_reviews().await.unwrap(), 0);
        let list = h.gov.periodic_reviews().await.unwrap();
        assert_eq!(list.len(), 1);
        assert!(!list[0].overdue);
    });
}

#[test]
fn a_production_version_falls_due_exactly_when_its_interval_has_passed() {
    for tier in RiskTier::ALL {
        let h = Harness::new();
        block_on(async {
            let approved = serving(&h, *tier).await;
            h.clock.advance(interval(*tier));
            let list = h.gov.periodic_reviews().await.unwrap();
            assert_eq!(list[0].due_at, h.now(), "{tier}");
            assert_eq!(list[0].last_reviewed_at, approved);
            assert!(list[0].overdue);
            assert_eq!(
                h.gov.open_due_periodic_reviews().await.unwrap(),
                1,
                "{tier}"
            );
            let id =
                periodic_promotion_id(&ModelName::parse("credit-risk").unwrap(), vn(1), h.now());
            let p = h.gov.promotion(&id).await.unwrap();
            // The re-certification needs the tier's production reviews.
            let expected =
                steward_core::Policy::default().reviews_for(*tier, Environment::Production);
            assert_eq!(crate::stages(&p), expected, "{tier}");
            assert_eq!(
                p.requested_by.as_ref(),
                format!("system:{PERIODIC_REVIEW_ACTOR}")
            );
        });
    }
}

#[test]
fn a_due_period_opens_one_review_however_often_the_tick_runs() {
    let h = Harness::new();
    block_on(async {
        serving(&h, RiskTier::Medium).await;
        h.clock.advance(interval(RiskTier::Medium));
        assert_eq!(h.gov.open_due_periodic_reviews().await.unwrap(), 1);
        for _ in 0..3 {
            h.clock.advance(Duration::from_secs(300));
            assert_eq!(h.gov.open_due_periodic_reviews().await.unwrap(), 0);
        }
        let due = h.store.outbox_types();
        assert_eq!(due.iter().filter(|t| *t == "PeriodicReviewDue").count(), 1);
        let inbox = h
            .gov
            .list_reviews(&h.cast.tech, ReviewStatus::Pending, None, 50)
            .await
            .unwrap()
            .items;
        assert_eq!(inbox.len(), 1);
        assert_eq!(
            (inbox[0].target, inbox[0].version),
            (Environment::Production, vn(1))
        );
    });
}

#[test]
fn approving_a_periodic_review_recertifies_the_version_and_starts_its_next_interval() {
    let h = Harness::new();
    block_on(async {
        serving(&h, RiskTier::Low).await;
        h.clock
            .advance(interval(RiskTier::Low) + Duration::from_secs(7 * DAY));
        h.gov.open_due_periodic_reviews().await.unwrap();
        let approved_at = h.now();
        let inbox = h
            .gov
            .list_reviews(&h.cast.tech, ReviewStatus::Pending, None, 50)
            .await
            .unwrap()
            .items;
        let p = h.approve(&h.cast.tech, &inbox[0].id).await.unwrap();
        assert_eq!(p.status, PromotionStatus::Approved);
        let list = h.gov.periodic_reviews().await.unwrap();
        assert_eq!(list[0].last_reviewed_at, approved_at);
        assert!(!list[0].overdue);
        assert_eq!(h.gov.open_due_periodic_reviews().await.unwrap(), 0);
        // The version served throughout.
        let v = h.gov.version_detail("credit-risk", vn(1)).await.unwrap();
        assert!(v.serving);
        assert_eq!(v.version.stage, Stage::Production);
        // The next interval falls due from the new approval.
        h.clock.advance(interval(RiskTier::Low));
        assert_eq!(h.gov.open_due_periodic_reviews().await.unwrap(), 1);
    });
}

#[test]
fn the_registrant_never_reviews_its_versions_periodic_review() {
    let h = Harness::new();
    let devtech = caller("devtech", &[Role::Developer, Role::TechnicalReviewer]);
    block_on(async {
        h.gov
            .register(&devtech, "credit-risk", manifest(RiskTier::Low), None)
            .await
            .unwrap();
        h.to_production("credit-risk", vn(1)).await;
        h.clock.advance(interval(RiskTier::Low));
        h.gov.open_due_periodic_reviews().await.unwrap();
        let inbox = h
            .gov
            .list_reviews(&devtech, ReviewStatus::Pending, None, 50)
            .await
            .unwrap();
        assert!(inbox.items.is_empty());
        let list = h
            .gov
            .list_reviews(&h.cast.tech, ReviewStatus::Pending, None, 50)
            .await
            .unwrap()
            .items;
        crate::separation(h.approve(&devtech, &list[0].id).await);
    });
}

#[test]
fn a_rejected_periodic_review_opens_an_incident_and_is_not_reopened_in_its_due_period() {
    let h = Harness::new();
    block_on(async {
        serving(&h, RiskTier::Low).await;
        h.clock.advance(interval(RiskTier::Low));
        h.gov.open_due_periodic_reviews().await.unwrap();
        let inbox = h
            .gov
            .list_reviews(&h.cast.tech, ReviewStatus::Pending, None, 50)
            .await
            .unwrap()
            .items;
        let p = h
            .reject(&h.cast.tech, &inbox[0].id, "drifted from its card")
            .await
            .unwrap();
        assert_eq!(p.status, PromotionStatus::Rejected);
        let incidents = h
            .gov
            .incidents(Some("credit-risk"), None, 50)
            .await
            .unwrap();
        assert_eq!(incidents.items.len(), 1);
        assert_eq!(
            incidents.items[0].kind,
            IncidentKind::PeriodicReviewRejected
        );
        assert!(h
            .store
            .outbox_types()
            .contains(&"PeriodicReviewRejected".to_owned()));
        // Still serving, still overdue, not reopened.
        h.clock.advance(Duration::from_secs(DAY));
        assert_eq!(h.gov.open_due_periodic_reviews().await.unwrap(), 0);
        assert!(h.gov.periodic_reviews().await.unwrap()[0].overdue);
        assert!(
            h.gov
                .version_detail("credit-risk", vn(1))
                .await
                .unwrap()
                .serving
        );
        // A re-certification can be requested by hand.
        let by_hand = h
            .promote("credit-risk", vn(1), Environment::Production)
            .await;
        assert_eq!(crate::stages(&by_hand), [ReviewStage::Technical]);
    });
}

#[test]
fn an_expired_periodic_review_opens_an_incident_and_is_not_reopened_in_its_due_period() {
    let h = Harness::new();
    block_on(async {
        serving(&h, RiskTier::Low).await;
        h.clock.advance(interval(RiskTier::Low));
        assert_eq!(h.gov.open_due_periodic_reviews().await.unwrap(), 1);
        h.clock.advance(Duration::from_secs(3 * DAY));
        assert_eq!(h.gov.expire_due_reviews().await.unwrap(), 1);
        assert_eq!(h.gov.open_due_periodic_reviews().await.unwrap(), 0);
        let incidents = h
            .gov
            .incidents(Some("credit-risk"), None, 50)
            .await
            .unwrap()
            .items;
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        let i = &incidents[0];
        assert_eq!(i.kind, IncidentKind::PeriodicReviewExpired);
        assert_eq!(i.version, Some(vn(1)));
        assert_eq!(
            i.opened_by,
            steward_core::types::PrincipalId::system("workflow")
        );
        let promotion = i.subject.clone().expect("the expired promotion");
        assert!(promotion.contains(".pr-periodic-"), "{promotion}");
        let types = h.store.outbox_types();
        assert!(
            types.contains(&"PeriodicReviewExpired".to_owned()),
            "{types:?}"
        );
        assert!(types.contains(&"PromotionExpired".to_owned()), "{types:?}");
        // Still serving.
        assert!(
            h.gov
                .version_detail("credit-risk", vn(1))
                .await
                .unwrap()
                .serving
        );
    });
}

#[test]
fn an_expired_promotion_of_a_version_not_yet_in_production_opens_no_incident() {
    let h = Harness::new();
    block_on(async {
        h.register("credit-risk", RiskTier::Low).await;
        h.promote("credit-risk", vn(1), Environment::Staging).await;
        h.clock.advance(Duration::from_secs(3 * DAY));
        assert_eq!(h.gov.expire_due_reviews().await.unwrap(), 1);
        let incidents = h
            .gov
            .incidents(Some("credit-risk"), None, 50)
            .await
            .unwrap();
        assert!(incidents.items.is_empty(), "{:?}", incidents.items);
        assert!(!h
            .store
            .outbox_types()
            .contains(&"PeriodicReviewExpired".to_owned()));
    });
}

#[test]
fn a_version_with_a_promotion_in_review_is_not_opened_for_periodic_review() {
    let h = Harness::new();
    block_on(async {
        serving(&h, RiskTier::Low).await;
        h.clock
            .advance(interval(RiskTier::Low) - Duration::from_secs(DAY));
        let by_hand = h
            .promote("credit-risk", vn(1), Environment::Production)
            .await;
        h.clock.advance(Duration::from_secs(DAY));
        assert_eq!(h.gov.open_due_periodic_reviews().await.unwrap(), 0);
        h.approve_all(&by_hand).await;
        // The approval by hand started the next interval.
        assert_eq!(h.gov.open_due_periodic_reviews().await.unwrap(), 0);
        assert!(!h.gov.periodic_reviews().await.unwrap()[0].overdue);
    });
}
