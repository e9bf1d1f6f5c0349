//! Separation of duties (`service/separation.rs`, DESIGN.md): who may decide which review,
//! and who may do what at all.

use steward_core::records::{PromotionStatus, ReviewStatus};
use steward_core::testing::{block_on, caller, manifest, vn, Harness};
use steward_core::types::{Environment, ReviewStage, RiskTier, Role};
use steward_core::GovError;

use crate::{review, separation};

use ReviewStage::*;

/// `name` v1 registered by `registrant`, on staging, with a production promotion requested
/// by `requester`.
async fn in_review(
    h: &Harness,
    tier: RiskTier,
    registrant: &steward_core::ports::Caller,
    requester: &steward_core::ports::Caller,
) -> steward_core::records::Promotion {
    h.gov
        .register(registrant, "credit-risk", manifest(tier), None)
        .await
        .unwrap();
    h.to_staging("credit-risk", vn(1)).await;
    h.gov
        .request_promotion(
            requester,
            "credit-risk",
            vn(1),
            Environment::Production,
            None,
        )
        .await
        .unwrap()
}

#[test]
fn the_registrant_never_decides_a_review_of_its_own_version() {
    let h = Harness::new();
    let devtech = caller("devtech", &[Role::Developer, Role::TechnicalReviewer]);
    block_on(async {
        let (v, _) = h
            .gov
            .register(&devtech, "credit-risk", manifest(RiskTier::Low), None)
            .await
            .unwrap();
        let p = h
            .promote("credit-risk", v.version, Environment::Staging)
            .await;
        let before = h.store.audit_events().len();
        let why = separation(h.approve(&devtech, &p.reviews[0].id).await);
        assert_eq!(
            why,
            "devtech registered credit-risk version 1 and may not review its promotion"
        );
        let reject = h.reject(&devtech, &p.reviews[0].id, "mine").await;
        separation(reject);
        assert_eq!(h.store.audit_events().len(), before, "nothing written");
        // Someone else may.
        let done = h.approve(&h.cast.tech, &p.reviews[0].id).await.unwrap();
        assert_eq!(done.status, PromotionStatus::Approved);
    });
}

#[test]
fn the_requester_never_decides_a_review_of_its_own_promotion() {
    let h = Harness::new();
    let reltech = caller("reltech", &[Role::ReleaseManager, Role::TechnicalReviewer]);
    block_on(async {
        let p = in_review(&h, RiskTier::High, &h.cast.dev, &reltech).await;
        for stage in [Technical, Deployment] {
            let why = separation(h.approve(&reltech, &review(&p, stage).id).await);
            assert_eq!(
                why,
                "reltech requested this promotion and may not review it"
            );
        }
    });
}

#[test]
fn a_reviewer_decides_only_the_stages_its_roles_allow() {
    let h = Harness::new();
    block_on(async {
        let p = in_review(&h, RiskTier::High, &h.cast.dev, &h.cast.dev).await;
        for stage in [Technical, Compliance, Deployment] {
            let r = h.approve(&h.cast.biz, &review(&p, stage).id).await;
            match r {
                Err(GovError::Forbidden(why)) => assert_eq!(
                    why,
                    format!(
                        "deciding a {stage} review requires the role {}",
                        stage.reviewer_role()
                    )
                ),
                other => panic!("{stage}: expected Forbidden, got {other:?}"),
            }
        }
        h.approve(&h.cast.biz, &review(&p, Business).id)
            .await
            .unwrap();
    });
}

#[test]
fn the_role_is_checked_before_who_registered_the_version() {
    let h = Harness::new();
    block_on(async {
        let p = in_review(&h, RiskTier::Low, &h.cast.dev, &h.cast.dev2).await;
        // The registrant without the technical-reviewer role hears about the role.
        let r = h.approve(&h.cast.dev, &p.reviews[0].id).await;
        assert!(matches!(r, Err(GovError::Forbidden(_))), "{r:?}");
    });
}

#[test]
fn in_the_high_tier_nobody_approves_two_stages_of_one_promotion() {
    let h = Harness::new();
    let carl = caller("carl", &[Role::TechnicalReviewer, Role::ComplianceReviewer]);
    block_on(async {
        let p = in_review(&h, RiskTier::High, &h.cast.dev, &h.cast.dev).await;
        h.approve(&carl, &review(&p, Technical).id).await.unwrap();
        let why = separation(h.approve(&carl, &review(&p, Compliance).id).await);
        assert_eq!(
            why,
            "carl already approved the technical review of this high-risk promotion; another person must approve compliance"
        );
        // Another person may approve it, and the promotion completes with four people.
        h.approve(&h.cast.comp, &review(&p, Compliance).id)
            .await
            .unwrap();
        h.approve(&h.cast.biz, &review(&p, Business).id)
            .await
            .unwrap();
        let done = h
            .approve(&h.cast.rel2, &review(&p, Deployment).id)
            .await
            .unwrap();
        assert_eq!(done.status, PromotionStatus::Approved);
        let deciders: std::collections::BTreeSet<_> = done
            .reviews
            .iter()
            .filter_map(|r| r.decided_by.clone())
            .collect();
        assert_eq!(deciders.len(), 4);
    });
}

#[test]
fn in_the_high_tier_a_reviewer_who_approved_one_stage_may_still_reject_another() {
    let h = Harness::new();
    let carl = caller("carl", &[Role::TechnicalReviewer, Role::BusinessReviewer]);
    block_on(async {
        let p = in_review(&h, RiskTier::High, &h.cast.dev, &h.cast.dev).await;
        h.approve(&carl, &review(&p, Technical).id).await.unwrap();
        let done = h
            .reject(&carl, &review(&p, Business).id, "the business case changed")
            .await
            .unwrap();
        assert_eq!(done.status, PromotionStatus::Rejected);
    });
}

#[test]
fn below_the_high_tier_one_person_may_approve_two_stages() {
    let h = Harness::new();
    let carl = caller("carl", &[Role::TechnicalReviewer, Role::BusinessReviewer]);
    block_on(async {
        let p = in_review(&h, RiskTier::Medium, &h.cast.dev, &h.cast.dev).await;
        h.approve(&carl, &review(&p, Technical).id).await.unwrap();
        let done = h.approve(&carl, &review(&p, Business).id).await.unwrap();
        assert_eq!(done.status, PromotionStatus::Approved);
    });
}

#[test]
fn an_admin_decides_no_reviews_even_with_the_reviewer_roles() {
    let h = Harness::new();
    let ada = caller("ada-admin", &[Role::Admin, Role::TechnicalReviewer]);
    block_on(async {
        let p = in_review(&h, RiskTier::Low, &h.cast.dev, &h.cast.dev).await;
        let why = separation(h.approve(&ada, &p.reviews[0].id).await);
        assert_eq!(
            why,
            "an admin manages principals and policy and may not decide reviews"
        );
        let inbox = h
            .gov
            .list_reviews(&ada, ReviewStatus::Pending, None, 50)
            .await
            .unwrap();
        assert!(inbox.items.is_empty(), "{inbox:?}");
    });
}

#[test]
fn the_inbox_shows_a_reviewer_only_the_reviews_it_may_decide() {
    let h = Harness::new();
    let devtech = caller("devtech", &[Role::Developer, Role::TechnicalReviewer]);
    let carl = caller("carl", &[Role::TechnicalReviewer, Role::BusinessReviewer]);
    block_on(async {
        let p = in_review(&h, RiskTier::High, &devtech, &h.cast.dev).await;
        let inbox = |who: steward_core::ports::Caller| {
            let gov = h.gov.clone();
            async move {
                gov.list_reviews(&who, ReviewStatus::Pending, None, 50)
                    .await
                    .unwrap()
                    .items
                    .into_iter()
                    .map(|r| r.stage)
                    .collect::<Vec<_>>()
            }
        };
        // The registrant does not see the review it may not decide; another reviewer does.
        assert!(inbox(devtech.clone()).await.is_empty());
        assert_eq!(inbox(h.cast.tech.clone()).await, [Technical]);
        assert_eq!(inbox(h.cast.biz.clone()).await, [Business]);
        assert_eq!(inbox(carl.clone()).await, [Business, Technical]);
        // Having approved one stage of a high-risk promotion, carl no longer sees the other.
        h.approve(&carl, &review(&p, Technical).id).await.unwrap();
        assert!(inbox(carl).await.is_empty());
        // Without a reviewer role, nothing.
        assert!(inbox(h.cast.ops.clone()).await.is_empty());
    });
}

#[test]
fn each_action_needs_its_role() {
    let h = Harness::new();
    block_on(async {
        let forbidden = |r: Result<(), GovError>| matches!(r, Err(GovError::Forbidden(_)));
        let c = &h.cast;
        let register = h
            .gov
            .register(&c.tech, "x", manifest(RiskTier::Low), None)
            .await
            .map(drop);
        assert!(forbidden(register), "registering needs developer");
        h.to_production(
            "credit-risk",
            h.register("credit-risk", RiskTier::Low).await,
        )
        .await;
        let promote = h
            .gov
            .request_promotion(&c.tech, "credit-risk", vn(1), Environment::Production, None)
            .await
            .map(drop);
        assert!(
            forbidden(promote),
            "promoting needs developer or release manager"
        );
        let rollback = h
            .gov
            .rollback(&c.dev, "credit-risk", "why", None)
            .await
            .map(drop);
        assert!(
            forbidden(rollback),
            "rolling back needs operator or release manager"
        );
        let retire = h
            .gov
            .retire(&c.ops, "credit-risk", vn(1), "old", None)
            .await
            .map(drop);
        assert!(
            forbidden(retire),
            "retiring needs developer or release manager"
        );
        let audit = h.gov.audit_events(&c.dev, None, 0, 10).await.map(drop);
        assert!(
            forbidden(audit),
            "reading the audit log needs auditor or admin"
        );
        assert!(h.gov.audit_events(&c.aud, None, 0, 10).await.is_ok());
        let roles = h
            .gov
            .set_roles(&c.aud, "tom", vec![Role::Admin])
            .await
            .map(drop);
        assert!(forbidden(roles), "managing principals needs admin");
    });
}

#[test]
fn nobody_changes_their_own_roles_not_even_with_a_second_admin_present() {
    let h = Harness::new();
    block_on(async {
        let root = &h.cast.admin;
        h.gov
            .set_roles(root, "second", vec![Role::Admin])
            .await
            .unwrap();
        let own = h
            .gov
            .set_roles(root, root.id.as_ref(), vec![Role::TechnicalReviewer])
            .await;
        assert!(separation(own).contains("own roles"));
        let stored = h.gov.principals(root).await.unwrap();
        assert!(
            stored.iter().all(|p| p.id != root.id),
            "nothing written: {stored:?}"
        );
    });
}

#[test]
fn the_last_admin_cannot_lose_the_admin_role() {
    let h = Harness::new();
    block_on(async {
        let root = &h.cast.admin;
        // An admin by authentication (a bootstrap token), not a stored principal.
        let ada = caller("ada", &[Role::Admin]);
        h.gov
            .seed_principal(&root.id, vec![Role::Admin], "bootstrap")
            .await
            .unwrap();
        let r = h.gov.set_roles(&ada, "root", vec![Role::Auditor]).await;
        assert!(crate::is_conflict(&r), "{r:?}");
        h.gov
            .set_roles(root, "second", vec![Role::Admin])
            .await
            .unwrap();
        let r = h
            .gov
            .set_roles(&ada, "root", vec![Role::Auditor])
            .await
            .unwrap();
        assert_eq!(r.roles, [Role::Auditor]);
        assert_eq!(r.managed_by, "api");
        // Roles set through the API win over configuration seeding.
        let seeded = h
            .gov
            .seed_principal(&root.id, vec![Role::Admin], "bootstrap")
            .await
            .unwrap();
        assert_eq!(seeded, None);
    });
}

#[test]
fn a_principal_who_administered_principals_while_a_promotion_was_open_never_decides_its_reviews() {
    let h = Harness::new();
    block_on(async {
        let (root, dev) = (&h.cast.admin, &h.cast.dev);
        h.gov
            .seed_principal(&root.id, vec![Role::Admin], "bootstrap")
            .await
            .unwrap();
        h.gov
            .set_roles(root, "ex", vec![Role::Admin])
            .await
            .unwrap();
        let p = in_review(&h, RiskTier::Low, dev, dev).await;
        // "ex" administers while the promotion is open, then another admin makes it a
        // technical reviewer: it may not decide that promotion's reviews, nor see them.
        h.clock.advance(std::time::Duration::from_secs(60));
        let ex_admin = caller("ex", &[Role::Admin]);
        h.gov
            .set_roles(&ex_admin, "someone", vec![Role::Auditor])
            .await
            .unwrap();
        h.clock.advance(std::time::Duration::from_secs(60));
        h.gov
            .set_roles(root, "ex", vec![Role::TechnicalReviewer])
            .await
            .unwrap();
        let ex = caller("ex", &[Role::TechnicalReviewer]);
        let tech_review = &review(&p, Technical).id;
        let why = separation(h.approve(&ex, tech_review).await);
        assert!(why.contains("administered principals"), "{why}");
        let inbox = h
            .gov
            .list_reviews(&ex, ReviewStatus::Pending, None, 50)
            .await
            .unwrap();
        assert!(inbox.items.is_empty(), "{inbox:?}");
        // A promotion requested after its last administration is ex's to review.
        h.clock.advance(std::time::Duration::from_secs(60));
        h.gov
            .register(dev, "pricing", manifest(RiskTier::Low), None)
            .await
            .unwrap();
        h.to_staging("pricing", vn(1)).await;
        let later = h
            .gov
            .request_promotion(dev, "pricing", vn(1), Environment::Production, None)
            .await
            .unwrap();
        let decided = h.approve(&ex, &review(&later, Technical).id).await.unwrap();
        assert_eq!(review(&decided, Technical).status, ReviewStatus::Approved);
    });
}

#[test]
fn every_audit_event_records_how_its_actor_authenticated() {
    use steward_core::ports::Caller;
    use steward_core::types::AuthMethod;
    let h = Harness::new();
    let person = Caller::new(
        steward_core::types::PrincipalId::parse("oidc:https://idp.example.com#u-1").unwrap(),
        vec![Role::Developer],
        AuthMethod::Oidc,
    );
    block_on(async {
        h.gov
            .register(&person, "credit-risk", manifest(RiskTier::Low), None)
            .await
            .unwrap();
        h.to_staging("credit-risk", vn(1)).await;
        let events = h.store.audit_events();
        assert_eq!(events[0].actor, "oidc:https://idp.example.com#u-1");
        assert_eq!(events[0].details["authentication"], "oidc");
        // Every event says how its actor was established: people and workflows alike.
        for e in &events {
            let method = e.details["authentication"].as_str().unwrap_or_default();
            assert!(
                ["token", "oidc", "iam", "system"].contains(&method),
                "{} by {} has authentication {method:?}",
                e.action,
                e.actor
            );
        }
    });
}
