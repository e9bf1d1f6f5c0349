//! Progressive automation: checks CI reports, policy that requires them, and reviews policy
//! decides itself (over the in-memory store; the API suite runs the same on both backends).

use serde_json::{json, Value};
use steward_core::ports::AuditLog;
use steward_core::records::{PromotionStatus, ReviewStatus};
use steward_core::testing::{block_on, caller, manifest, Harness};
use steward_core::types::{Environment, RiskTier, Role};
use steward_core::GovError;

fn policy_reasons(err: &GovError) -> Vec<String> {
    match err {
        GovError::Policy(reasons) => reasons.clone(),
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

/// Every tier as the default, plus automation for the low tier.
fn policy(low_extra: &str, extra: &str) -> String {
    format!(
        r#"
        [tiers.low]
        reviews = ["technical"]
        review_timeout = "3days"
        periodic_review = "365days"
        auto_rollback = true
        {low_extra}
        [tiers.medium]
        reviews = ["technical", "business"]
        review_timeout = "3days"
        periodic_review = "180days"
        auto_rollback = true
        [tiers.high]
        reviews = ["technical", "business", "compliance", "deployment"]
        review_timeout = "3days"
        periodic_review = "90days"
        auto_rollback = true
        {extra}
        "#
    )
}

const AUTOMATED_LOW: &str = r#"
        automatic_reviews = ["technical"]
        [tiers.low.required_checks]
        staging = [{ name = "unit-tests", require = ["coverage >= 0.8"] }]
        production = [{ name = "load-test", on = "staging", require = ["latency_ms_p99 <= card.operational.latency_ms_p99"] }]
"#;

/// The same checks, every review human.
const REQUIRED_LOW: &str = r#"
        [tiers.low.required_checks]
        staging = [{ name = "unit-tests", require = ["coverage >= 0.8"] }]
"#;

fn ci() -> steward_core::ports::Caller {
    caller("ci-bot", &[Role::Ci])
}

fn report(name: &str, status: &str, metrics: Value) -> Value {
    json!({"name": name, "status": status, "metrics": metrics})
}

async fn events(h: &Harness, action: &str) -> Vec<steward_core::audit::AuditEvent> {
    h.store
        .events(None, 1, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

#[test]
fn a_staging_promotion_names_a_missing_or_failing_required_check_until_it_passes() {
    let h = Harness::from_policy_toml(&policy(REQUIRED_LOW, "")).unwrap();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Low).await;
        let err = h
            .gov
            .request_promotion(&h.cast.dev, "credit-risk", v, Environment::Staging, None)
            .await
            .unwrap_err();
        let reasons = policy_reasons(&err);
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("\"unit-tests\" has not been reported")),
            "{reasons:?}"
        );
        h.gov
            .report_check(
                &ci(),
                "credit-risk",
                v,
                report("unit-tests", "passed", json!({"coverage": 0.6})),
                None,
            )
            .await
            .unwrap();
        let err = h
            .gov
            .request_promotion(&h.cast.dev, "credit-risk", v, Environment::Staging, None)
            .await
            .unwrap_err();
        assert!(
            policy_reasons(&err)
                .iter()
                .any(|r| r.contains("coverage = 0.6 does not meet coverage >= 0.8")),
            "{err:?}"
        );
        // An auditor may not report; nothing is written.
        let err = h
            .gov
            .report_check(
                &h.cast.aud,
                "credit-risk",
                v,
                report("unit-tests", "passed", json!({})),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, GovError::Forbidden(_)), "{err:?}");
        assert_eq!(events(&h, "check.reported").await.len(), 1);
    });
}

#[test]
fn policy_approves_a_low_tier_review_itself_with_the_evidence_in_the_audit_event() {
    let h = Harness::from_policy_toml(&policy(AUTOMATED_LOW, "")).unwrap();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Low).await;
        let (r, replayed) = h
            .gov
            .report_check(
                &ci(),
                "credit-risk",
                v,
                report("unit-tests", "passed", json!({"coverage": 0.91})),
                Some("run-1"),
            )
            .await
            .unwrap();
        assert!(!replayed && r.reports == 1);
        // The same key and body: a replay, one audit event.
        let (_, replayed) = h
            .gov
            .report_check(
                &ci(),
                "credit-risk",
                v,
                report("unit-tests", "passed", json!({"coverage": 0.91})),
                Some("run-1"),
            )
            .await
            .unwrap();
        assert!(replayed);
        let p = h.promote("credit-risk", v, Environment::Staging).await;
        assert_eq!(p.status, PromotionStatus::Approved, "{p:?}");
        assert_eq!(p.reviews[0].decided_by.as_ref().unwrap().as_ref(), "policy");
        let decided = events(&h, "review.decided").await;
        assert_eq!(decided.len(), 1);
        assert_eq!(decided[0].actor, "policy");
        let d = &decided[0].details;
        assert_eq!(d["automatic"], true);
        assert_eq!(
            d["policy"]["digest"],
            json!(h.gov.policy().digest().unwrap())
        );
        assert_eq!(d["policy"]["checks"][0]["name"], "unit-tests");
        assert_eq!(d["policy"]["checks"][0]["metrics"]["coverage"], 0.91);
        assert_eq!(events(&h, "check.reported").await.len(), 1);
    });
}

#[test]
fn an_automatic_review_waits_for_the_last_check_is_approved_when_it_passes_and_withdrawn_when_it_fails(
) {
    let h = Harness::from_policy_toml(&policy(AUTOMATED_LOW, "")).unwrap();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Low).await;
        h.gov
            .report_check(
                &ci(),
                "credit-risk",
                v,
                report("unit-tests", "passed", json!({"coverage": 0.9})),
                None,
            )
            .await
            .unwrap();
        h.to_staging_after_policy("credit-risk", v).await;
        // Policy decides every production review, so the request opens and waits for the load
        // test on staging; the passing report is the last evidence, and policy approves.
        let p = h.promote("credit-risk", v, Environment::Production).await;
        assert_eq!(p.status, PromotionStatus::InReview, "{p:?}");
        assert_eq!(p.reviews[0].status, ReviewStatus::Pending);
        let gate = h
            .gov
            .gate("credit-risk", v, Environment::Production)
            .await
            .unwrap();
        assert!(
            gate.reasons
                .iter()
                .any(|r| r.contains("\"load-test\" has not been reported on staging")),
            "{gate:?}"
        );
        let mut load = report("load-test", "passed", json!({"latency_ms_p99": 35.0}));
        load["environment"] = json!("staging");
        h.gov
            .report_check(&ci(), "credit-risk", v, load, None)
            .await
            .unwrap();
        let p = h.gov.promotion(&p.id).await.unwrap();
        assert_eq!(p.status, PromotionStatus::Approved, "{p:?}");
        assert_eq!(p.reviews[0].decided_by.as_ref().unwrap().as_ref(), "policy");
        let gate = h
            .gov
            .gate("credit-risk", v, Environment::Production)
            .await
            .unwrap();
        assert!(gate.allowed, "{gate:?}");

        // The load test fails on a re-run: the gate closes and policy's approval is withdrawn.
        let mut failed = report("load-test", "failed", json!({"latency_ms_p99": 900.0}));
        failed["environment"] = json!("staging");
        let (r, _) = h
            .gov
            .report_check(&ci(), "credit-risk", v, failed, None)
            .await
            .unwrap();
        assert_eq!(r.reports, 2);
        let gate = h
            .gov
            .gate("credit-risk", v, Environment::Production)
            .await
            .unwrap();
        assert!(!gate.allowed);
        assert!(
            gate.reasons
                .iter()
                .any(|r| r.contains("\"load-test\" failed on staging")),
            "{:?}",
            gate.reasons
        );
        assert!(
            gate.reasons
                .iter()
                .any(|r| r.contains("not approved for production")),
            "{gate:?}"
        );
        assert_eq!(events(&h, "approval.withdrawn").await.len(), 1);
    });
}

#[test]
fn a_review_policy_cannot_decide_yet_stays_pending_for_a_human() {
    let h = Harness::from_policy_toml(&policy(AUTOMATED_LOW, "")).unwrap();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Low).await;
        h.gov
            .report_check(
                &ci(),
                "credit-risk",
                v,
                report("unit-tests", "passed", json!({"coverage": 0.9})),
                None,
            )
            .await
            .unwrap();
        h.to_staging_after_policy("credit-risk", v).await;
        let mut load = report("load-test", "passed", json!({"latency_ms_p99": 35.0}));
        load["environment"] = json!("staging");
        h.gov
            .report_check(&ci(), "credit-risk", v, load, None)
            .await
            .unwrap();
        // A medium-tier model's business review is not automatic: it waits for a person.
        let m = h.register("fraud", RiskTier::Medium).await;
        h.to_staging("fraud", m).await;
        let p = h.promote("fraud", m, Environment::Production).await;
        assert_eq!(p.status, PromotionStatus::InReview);
        assert!(p.reviews.iter().all(|r| r.status == ReviewStatus::Pending));
    });
}

#[test]
fn a_policy_that_automates_a_human_only_review_is_refused_at_load_naming_the_field() {
    let high = policy("", "").replace(
        "reviews = [\"technical\", \"business\", \"compliance\", \"deployment\"]",
        "reviews = [\"technical\", \"business\", \"compliance\", \"deployment\"]\n        automatic_reviews = [\"technical\"]",
    );
    let err = steward_core::Policy::from_toml(&high).unwrap_err();
    let GovError::Validation(errors) = err else {
        panic!("{err:?}")
    };
    assert_eq!(errors[0].field, "tiers.high.automatic_reviews");
    assert!(errors[0].message.contains("human-only"), "{errors:?}");

    let compliance = policy("", "").replace(
        "reviews = [\"technical\", \"business\"]\n",
        "reviews = [\"technical\", \"business\", \"compliance\"]\n        automatic_reviews = [\"compliance\"]\n",
    );
    let err = steward_core::Policy::from_toml(&compliance).unwrap_err();
    let GovError::Validation(errors) = err else {
        panic!("{err:?}")
    };
    assert_eq!(errors[0].field, "tiers.medium.automatic_reviews");
    assert!(
        errors[0]
            .message
            .contains("compliance review is human-only"),
        "{errors:?}"
    );
}

#[test]
fn a_fairness_disparity_refuses_the_registration_naming_the_groups() {
    let h = Harness::from_policy_toml(&policy(
        "",
        "[[fairness]]\nmetric = \"approval_rate\"\nmin_ratio = 0.8\n",
    ))
    .unwrap();
    block_on(async {
        let mut m = manifest(RiskTier::Low);
        m["card"]["fairness"]["groups"] = json!([
            {"group": "age<30", "metrics": {"approval_rate": 0.52}},
            {"group": "age>=30", "metrics": {"approval_rate": 0.80}},
        ]);
        let err = h
            .gov
            .register(&h.cast.dev, "credit-risk", m, None)
            .await
            .unwrap_err();
        let GovError::Validation(errors) = err else {
            panic!("{err:?}")
        };
        assert_eq!(errors[0].field, "card.fairness.groups");
        assert!(
            errors[0].message.contains("\"age<30\" (0.52)")
                && errors[0].message.contains("\"age>=30\" (0.8)"),
            "{errors:?}"
        );
        assert_eq!(events(&h, "version.registered").await.len(), 0);
    });
}

trait PolicySteps {
    async fn to_staging_after_policy(&self, name: &str, v: steward_core::ids::VersionNumber);
}

impl PolicySteps for Harness {
    /// Staging approved by policy alone, deployed, and evaluated on staging.
    async fn to_staging_after_policy(&self, name: &str, v: steward_core::ids::VersionNumber) {
        let p = self.promote(name, v, Environment::Staging).await;
        assert_eq!(p.status, PromotionStatus::Approved, "{p:?}");
        self.gov
            .deploy(&self.cast.dev, name, v, Environment::Staging, None)
            .await
            .unwrap();
        self.gov
            .add_evaluation(
                &self.cast.dev,
                name,
                v,
                steward_core::testing::staging_evaluation(),
            )
            .await
            .unwrap();
    }
}

#[test]
fn every_tier_promotes_to_staging_without_required_checks_and_waits_for_them_when_required() {
    for (tier, table) in [
        (RiskTier::Low, "low"),
        (RiskTier::Medium, "medium"),
        (RiskTier::High, "high"),
    ] {
        // Without required checks (the default policy), staging needs only the review.
        let h = Harness::new();
        block_on(async {
            let v = h.register("credit-risk", tier).await;
            let p = h.promote("credit-risk", v, Environment::Staging).await;
            assert_eq!(p.status, PromotionStatus::InReview, "{tier}");
        });
        // With `unit-tests` required for this tier's staging: refused until it passes.
        let text = policy("", "").replace(
            &format!("[tiers.{table}]\n"),
            &format!("[tiers.{table}.required_checks]\n        staging = [\"unit-tests\"]\n        [tiers.{table}]\n"),
        );
        let h = Harness::from_policy_toml(&text).unwrap();
        block_on(async {
            let v = h.register("credit-risk", tier).await;
            let err = h
                .gov
                .request_promotion(&h.cast.dev, "credit-risk", v, Environment::Staging, None)
                .await
                .unwrap_err();
            assert_eq!(
                policy_reasons(&err),
                ["required check \"unit-tests\" has not been reported"],
                "{tier}"
            );
            h.gov
                .report_check(
                    &ci(),
                    "credit-risk",
                    v,
                    report("unit-tests", "passed", json!({})),
                    None,
                )
                .await
                .unwrap();
            let p = h.promote("credit-risk", v, Environment::Staging).await;
            assert_eq!(
                p.status,
                PromotionStatus::InReview,
                "{tier}: reviews stay human"
            );
        });
    }
}
