//! Retirement: the reason and replacement recorded, refused while the version serves
//! production without a replacement, while active versions depend on it or while it is in
//! review; with confirming workflows, requested, confirmed by someone else, then archived.

use serde_json::json;
use steward_core::records::Model;
use steward_core::service::RetireOutcome;
use steward_core::testing::{block_on, manifest, vn, Harness, WorkflowCall};
use steward_core::types::{Decision, Environment, RiskTier, Stage};
use steward_core::{GovError, Policy};

use crate::{fields, is_conflict, policy_reasons, separation};

fn model(h: &Harness) -> Model {
    block_on(h.gov.model_detail("credit-risk")).unwrap().model
}

#[test]
fn retiring_records_the_reason_and_the_replacement() {
    let h = Harness::new();
    block_on(async {
        h.register("credit-risk", RiskTier::Low).await;
        h.register("credit-risk", RiskTier::Low).await;
        let out = h
            .gov
            .retire(
                &h.cast.dev,
                "credit-risk",
                vn(1),
                "superseded by v2",
                Some(vn(2)),
            )
            .await
            .unwrap();
        let RetireOutcome::Retired(v) = out else {
            panic!("{out:?}")
        };
        assert_eq!(v.stage, Stage::Retired);
        let r = v.retirement.unwrap();
        assert_eq!(
            (r.reason.as_str(), r.replacement),
            ("superseded by v2", Some(vn(2)))
        );
        assert_eq!(r.retired_at, h.now());
        assert_eq!(model(&h).retired_versions, [vn(1)]);
        assert_eq!(h.store.outbox_types().last().unwrap(), "ModelRetired");
    });
}

#[test]
fn retiring_needs_a_reason_and_a_replacement_other_than_itself() {
    let h = Harness::new();
    block_on(async {
        h.register("credit-risk", RiskTier::Low).await;
        let r = h
            .gov
            .retire(&h.cast.dev, "credit-risk", vn(1), "  ", None)
            .await;
        assert_eq!(fields(r), ["reason"]);
        let r = h
            .gov
            .retire(&h.cast.dev, "credit-risk", vn(1), "old", Some(vn(1)))
            .await;
        assert_eq!(fields(r), ["replacement"]);
        let r = h
            .gov
            .retire(&h.cast.dev, "credit-risk", vn(1), "old", Some(vn(7)))
            .await;
        assert_eq!(fields(r), ["replacement"]);
    });
}

#[test]
fn the_version_serving_production_is_not_retired_without_a_replacement() {
    let h = Harness::new();
    block_on(async {
        h.new_production_version("credit-risk", RiskTier::Low).await;
        let before = h.store.audit_events().len();
        let r = h
            .gov
            .retire(&h.cast.dev, "credit-risk", vn(1), "old", None)
            .await;
        assert_eq!(
            policy_reasons(r),
            ["version 1 serves production; name an approved replacement"]
        );
        // A replacement that is not approved for production cannot take over either.
        h.register("credit-risk", RiskTier::Low).await;
        let r = h
            .gov
            .retire(&h.cast.dev, "credit-risk", vn(1), "old", Some(vn(2)))
            .await;
        let reasons = policy_reasons(r);
        assert!(
            reasons.contains(&"replacement cannot take over production: version 2 is not approved for production".to_owned()),
            "{reasons:?}"
        );
        assert_eq!(
            h.store.audit_events().len(),
            before + 1,
            "only the registration"
        );
        assert_eq!(model(&h).production_version, Some(vn(1)));
    });
}

#[test]
fn an_approved_replacement_takes_over_production_when_the_serving_version_retires() {
    let h = Harness::new();
    block_on(async {
        h.new_production_version("credit-risk", RiskTier::Low).await;
        let v2 = h.register("credit-risk", RiskTier::Low).await;
        h.to_staging("credit-risk", v2).await;
        let p = h.promote("credit-risk", v2, Environment::Production).await;
        h.approve_all(&p).await;
        h.gov
            .retire(&h.cast.rel, "credit-risk", vn(1), "replaced", Some(vn(2)))
            .await
            .unwrap();
        let m = model(&h);
        assert_eq!(m.production_version, Some(vn(2)));
        let v2 = h.gov.version_detail("credit-risk", vn(2)).await.unwrap();
        assert_eq!(v2.version.stage, Stage::Production);
        let at = h.gov.production_at("credit-risk", h.now()).await.unwrap();
        assert_eq!(at.version, Some(vn(2)));
    });
}

#[test]
fn a_version_an_active_model_depends_on_is_not_retired() {
    let h = Harness::new();
    block_on(async {
        h.gov
            .register(&h.cast.dev, "features", manifest(RiskTier::Low), None)
            .await
            .unwrap();
        let mut m = manifest(RiskTier::Low);
        m["dependencies"] = json!([{"name": "features", "version": 1}]);
        h.gov
            .register(&h.cast.dev, "credit-risk", m, None)
            .await
            .unwrap();
        let r = h
            .gov
            .retire(&h.cast.dev, "features", vn(1), "old", None)
            .await;
        assert_eq!(
            policy_reasons(r),
            ["active models depend on it: credit-risk version 1"]
        );
        // Once the dependent is retired, so may the dependency be.
        h.gov
            .retire(&h.cast.dev, "credit-risk", vn(1), "gone", None)
            .await
            .unwrap();
        h.gov
            .retire(&h.cast.dev, "features", vn(1), "old", None)
            .await
            .unwrap();
    });
}

#[test]
fn a_version_in_review_or_already_retired_is_not_retired() {
    let h = Harness::new();
    block_on(async {
        h.register("credit-risk", RiskTier::Low).await;
        let p = h.promote("credit-risk", vn(1), Environment::Staging).await;
        let r = h
            .gov
            .retire(&h.cast.dev, "credit-risk", vn(1), "old", None)
            .await;
        assert!(is_conflict(&r), "{r:?}");
        h.reject(&h.cast.tech, &p.reviews[0].id, "no")
            .await
            .unwrap();
        h.gov
            .retire(&h.cast.dev, "credit-risk", vn(1), "old", None)
            .await
            .unwrap();
        let again = h
            .gov
            .retire(&h.cast.dev, "credit-risk", vn(1), "old", None)
            .await;
        assert!(is_conflict(&again), "{again:?}");
        // Nothing is added to a retired version.
        let eval = h
            .gov
            .add_evaluation(
                &h.cast.dev,
                "credit-risk",
                vn(1),
                steward_core::testing::staging_evaluation(),
            )
            .await;
        assert!(is_conflict(&eval), "{eval:?}");
        let promote = h
            .gov
            .request_promotion(
                &h.cast.dev,
                "credit-risk",
                vn(1),
                Environment::Staging,
                None,
            )
            .await;
        assert_eq!(policy_reasons(promote), ["version 1 is retired"]);
        let gate = h
            .gov
            .gate("credit-risk", vn(1), Environment::Staging)
            .await
            .unwrap();
        assert_eq!(gate.reasons, ["version 1 is retired"]);
    });
}

#[test]
fn with_confirming_workflows_a_retirement_waits_for_someone_other_than_the_requester() {
    let h = Harness::confirming_retirements(Policy::default());
    block_on(async {
        h.register("credit-risk", RiskTier::Low).await;
        let out = h
            .gov
            .retire(&h.cast.rel, "credit-risk", vn(1), "end of life", None)
            .await
            .unwrap();
        let RetireOutcome::Pending(v) = out else {
            panic!("{out:?}")
        };
        assert_eq!(v.stage, Stage::Development, "not retired yet");
        let pending = v.pending_retirement.clone().unwrap();
        assert_eq!(pending.id, "credit-risk.1.rt-1");
        // Repeating the same request restarts the workflow, idempotently.
        h.gov
            .retire(&h.cast.rel, "credit-risk", vn(1), "end of life", None)
            .await
            .unwrap();
        let other = h
            .gov
            .retire(&h.cast.dev, "credit-risk", vn(1), "other", None)
            .await;
        assert!(is_conflict(&other), "{other:?}");
        let own = h
            .gov
            .decide_retirement(&h.cast.rel, "credit-risk", vn(1), Decision::Approve, None)
            .await;
        separation(own);
        let no_reason = h
            .gov
            .decide_retirement(&h.cast.comp, "credit-risk", vn(1), Decision::Reject, None)
            .await;
        assert_eq!(fields(no_reason), ["comment"]);
        h.gov
            .decide_retirement(&h.cast.comp, "credit-risk", vn(1), Decision::Approve, None)
            .await
            .unwrap();
        let retired = h.gov.archive_retirement(&pending.id).await.unwrap();
        assert_eq!(retired.stage, Stage::Retired);
        let r = retired.retirement.clone().unwrap();
        assert_eq!(r.confirmed_by.as_ref().map(|c| c.as_ref()), Some("cleo"));
        assert_eq!(r.request_id.as_deref(), Some(pending.id.as_str()));
        // Archiving again answers with the retired version.
        assert_eq!(
            h.gov.archive_retirement(&pending.id).await.unwrap(),
            retired
        );
        assert_eq!(
            h.workflows.calls(),
            [
                WorkflowCall::RetirementRequested {
                    retirement: pending.id.clone()
                },
                WorkflowCall::RetirementRequested {
                    retirement: pending.id.clone()
                },
                WorkflowCall::RetirementDecided {
                    retirement: pending.id.clone(),
                    refusal: None
                },
            ]
        );
    });
}

#[test]
fn a_confirmed_retirement_is_checked_again_when_it_is_archived() {
    let h = Harness::confirming_retirements(Policy::default());
    block_on(async {
        h.register("features", RiskTier::Low).await;
        let v = h
            .gov
            .retire(&h.cast.rel, "features", vn(1), "end of life", None)
            .await
            .unwrap()
            .into_version();
        let id = v.pending_retirement.unwrap().id;
        h.gov
            .decide_retirement(&h.cast.comp, "features", vn(1), Decision::Approve, None)
            .await
            .unwrap();
        // Meanwhile an active model declared it as a dependency.
        let mut m = manifest(RiskTier::Low);
        m["dependencies"] = json!([{"name": "features", "version": 1}]);
        h.gov
            .register(&h.cast.dev, "credit-risk", m, None)
            .await
            .unwrap();
        let r = h.gov.archive_retirement(&id).await;
        assert!(matches!(r, Err(GovError::Policy(_))), "{r:?}");
        let v = h
            .gov
            .version_detail("features", vn(1))
            .await
            .unwrap()
            .version;
        assert_eq!(v.stage, Stage::Development);
        assert_eq!(v.pending_retirement, None, "the request ended");
        assert!(h
            .store
            .audit_actions()
            .contains(&"retirement.refused".to_owned()));
    });
}

#[test]
fn a_version_with_a_pending_retirement_is_neither_promoted_nor_deployed_until_the_request_ends() {
    let h = Harness::confirming_retirements(Policy::default());
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Low).await;
        let staging = h.promote("credit-risk", v, Environment::Staging).await;
        h.approve_all(&staging).await;
        let id = h
            .gov
            .retire(&h.cast.rel, "credit-risk", v, "end of life", None)
            .await
            .unwrap()
            .into_version()
            .pending_retirement
            .unwrap()
            .id;
        let before = h.store.audit_actions();
        // Approved for staging before the request: the deployment is refused now, and the
        // gate that CI/CD asks says so too.
        let deploy = h
            .gov
            .deploy(&h.cast.dev, "credit-risk", v, Environment::Staging, None)
            .await;
        let reasons = policy_reasons(deploy);
        assert!(
            reasons[0].contains("pending retirement request"),
            "{reasons:?}"
        );
        assert!(reasons[0].contains(&id), "{reasons:?}");
        let gate = h
            .gov
            .gate("credit-risk", v, Environment::Staging)
            .await
            .unwrap();
        assert!(!gate.allowed, "{gate:?}");
        // Before the fix this opened a promotion of a version on its way out.
        let promote = h
            .gov
            .request_promotion(&h.cast.dev, "credit-risk", v, Environment::Production, None)
            .await;
        let reasons = policy_reasons(promote);
        assert!(
            reasons[0].contains("pending retirement request"),
            "{reasons:?}"
        );
        assert_eq!(h.store.audit_actions(), before, "a refusal wrote");
        // Once the request is refused, the version moves again.
        h.gov
            .decide_retirement(
                &h.cast.comp,
                "credit-risk",
                v,
                Decision::Reject,
                Some("still needed"),
            )
            .await
            .unwrap();
        h.gov
            .deploy(&h.cast.dev, "credit-risk", v, Environment::Staging, None)
            .await
            .unwrap();
    });
}
