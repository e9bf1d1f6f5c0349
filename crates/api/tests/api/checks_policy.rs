//! What policy does with check reports: required checks on promotions, gates and
//! deployments, fairness limits at registration, and reviews policy decides itself.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use steward_core::types::RiskTier;
use steward_core::{GovError, Policy};

use crate::checks::*;
use crate::common::*;

#[tokio::test]
async fn required_checks_hold_promotions_until_they_pass_and_a_failing_re_report_closes_the_gate_again(
) -> Result<()> {
    let app = spawn_app_with(policy(LOW_REQUIRED_CHECKS, "", "")?).await?;
    app.register("credit-risk", RiskTier::Low).await?;

    // Staging: refused while unit-tests is missing, then while its coverage is too low.
    let r = promote(&app, "staging").await?.expect(422)?;
    assert_eq!(r.code(), "policy_violation");
    let why = reasons(&r);
    assert!(
        why.iter()
            .any(|w| w.contains("\"unit-tests\"") && w.contains("not been reported")),
        "{why:?}"
    );
    report(&app, "ci", "credit-risk", 1, &unit_tests("passed", 0.7))
        .await?
        .expect(201)?;
    let why = reasons(&promote(&app, "staging").await?.expect(422)?);
    assert!(
        why.iter()
            .any(|w| w.contains("\"unit-tests\"") && w.contains("coverage = 0.7")),
        "{why:?}"
    );
    report(&app, "ci", "credit-risk", 1, &unit_tests("passed", 0.84))
        .await?
        .expect(201)?;
    app.to_staging("credit-risk", 1).await?;

    // Production: the gate names the missing integration tests on staging.
    let (allowed, why) = gate(&app, "credit-risk", 1, "production").await?;
    assert!(!allowed);
    assert!(
        why.iter()
            .any(|w| w.contains("\"integration-tests\"") && w.contains("on staging")),
        "{why:?}"
    );
    let r = promote(&app, "production").await?.expect(422)?;
    assert!(
        reasons(&r)
            .iter()
            .any(|w| w.contains("\"integration-tests\"")),
        "{}",
        r.body
    );
    // A report from another environment does not count for `on = "staging"`.
    report(
        &app,
        "ci",
        "credit-risk",
        1,
        &json!({"name": "integration-tests", "status": "passed", "environment": "production"}),
    )
    .await?
    .expect(201)?;
    promote(&app, "production").await?.expect(422)?;
    report(&app, "ci", "credit-risk", 1, &integration_tests("passed"))
        .await?
        .expect(201)?;
    let p = app
        .promote_as("dev", "credit-risk", 1, "production")
        .await?;
    let p = app.approve_all(&p).await?;
    assert_eq!(p["status"], "approved", "{p}");
    let (allowed, why) = gate(&app, "credit-risk", 1, "production").await?;
    assert!(allowed, "{why:?}");

    // A failing re-report closes both gates again and stops the deployment, naming the check.
    report(&app, "ci", "credit-risk", 1, &integration_tests("failed"))
        .await?
        .expect(201)?;
    let (allowed, why) = gate(&app, "credit-risk", 1, "production").await?;
    assert!(!allowed);
    assert!(
        why.iter()
            .any(|w| w.contains("\"integration-tests\" failed on staging")),
        "{why:?}"
    );
    let r = app
        .deploy_as("rel", "credit-risk", 1, "production")
        .await?
        .expect(422)?;
    assert!(
        r.body.to_string().contains("integration-tests"),
        "{}",
        r.body
    );
    report(&app, "ci", "credit-risk", 1, &unit_tests("failed", 0.84))
        .await?
        .expect(201)?;
    let (allowed, why) = gate(&app, "credit-risk", 1, "staging").await?;
    assert!(!allowed);
    assert!(
        why.iter().any(|w| w.contains("\"unit-tests\" failed")),
        "{why:?}"
    );
    // Human approvals stand: only approvals policy gave are withdrawn.
    assert!(events(&app, "credit-risk", "approval.withdrawn")
        .await?
        .is_empty());
    Ok(())
}

/// Low tier: policy decides the technical review once `unit-tests` has passed.
fn automatic_low_policy() -> Result<Policy> {
    policy(
        r#"automatic_reviews = ["technical"]
[tiers.low.required_checks]
staging = [{ name = "unit-tests", require = ["coverage >= 0.8"] }]
"#,
        r#"[tiers.high.required_checks]
staging = ["unit-tests"]
"#,
        "",
    )
}

#[tokio::test]
async fn policy_approves_a_staging_review_once_the_required_checks_pass_and_audits_its_digest(
) -> Result<()> {
    let app = spawn_app_with(automatic_low_policy()?).await?;
    app.register("credit-risk", RiskTier::Low).await?;
    report(&app, "ci", "credit-risk", 1, &unit_tests("passed", 0.9))
        .await?
        .expect(201)?;
    let p = app.promote_as("dev", "credit-risk", 1, "staging").await?;
    assert_eq!(p["status"], "approved", "{p}");
    assert_eq!(review_status(&p, "technical"), "approved");
    assert_eq!(p["reviews"][0]["decided_by"], "policy");

    let decided = events(&app, "credit-risk", "review.decided").await?;
    assert_eq!(decided.len(), 1, "{decided:?}");
    let e = &decided[0];
    assert_eq!(e["actor"], "policy");
    assert_eq!(e["details"]["automatic"], true);
    assert_eq!(
        e["details"]["policy"]["digest"],
        app.gov.policy().digest()?,
        "{e}"
    );
    let relied_on = e["details"]["policy"]["checks"].to_string();
    assert!(relied_on.contains("unit-tests"), "{relied_on}");

    // Approved for staging, not yet deployed: a failing required check withdraws the approval.
    report(&app, "ci", "credit-risk", 1, &unit_tests("failed", 0.9))
        .await?
        .expect(201)?;
    let withdrawn = events(&app, "credit-risk", "approval.withdrawn").await?;
    assert_eq!(withdrawn.len(), 1, "{withdrawn:?}");
    assert_eq!(withdrawn[0]["details"]["environment"], "staging");
    assert_eq!(withdrawn[0]["details"]["check"], "unit-tests");
    assert_eq!(withdrawn[0]["details"]["promotion_id"], p["id"]);
    let (allowed, why) = gate(&app, "credit-risk", 1, "staging").await?;
    assert!(!allowed);
    assert!(
        why.iter().any(|w| w.contains("not approved for staging")),
        "{why:?}"
    );
    app.deploy_as("dev", "credit-risk", 1, "staging")
        .await?
        .expect(422)?;
    Ok(())
}

#[tokio::test]
async fn a_promotion_requested_before_its_check_waits_and_policy_approves_it_when_the_passing_report_arrives(
) -> Result<()> {
    // Policy decides every staging review of the low tier, so a check not reported yet does
    // not refuse the request: the review opens and waits; a failing report leaves it waiting;
    // the passing one is the last evidence, and policy approves.
    let app = spawn_app_with(automatic_low_policy()?).await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let p = app.promote_as("dev", "credit-risk", 1, "staging").await?;
    assert_eq!(p["status"], "in_review", "{p}");
    assert_eq!(review_status(&p, "technical"), "pending");
    let (allowed, why) = gate(&app, "credit-risk", 1, "staging").await?;
    assert!(
        !allowed && why.iter().any(|w| w.contains("\"unit-tests\"")),
        "{why:?}"
    );
    report(&app, "ci", "credit-risk", 1, &unit_tests("passed", 0.5))
        .await?
        .expect(201)?;
    assert!(events(&app, "credit-risk", "review.decided")
        .await?
        .is_empty());
    report(&app, "ci", "credit-risk", 1, &unit_tests("passed", 0.81))
        .await?
        .expect(201)?;
    let id = p["id"].as_str().unwrap_or_default();
    let p = app
        .get("dev", &format!("/v1/promotions/{id}"))
        .await?
        .expect(200)?
        .body;
    assert_eq!(p["status"], "approved", "{p}");
    assert_eq!(p["reviews"][0]["decided_by"], "policy");
    let decided = events(&app, "credit-risk", "review.decided").await?;
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["actor"], "policy");
    assert_eq!(
        decided[0]["details"]["policy"]["checks"][0]["metrics"]["coverage"],
        0.81
    );
    app.deploy_as("dev", "credit-risk", 1, "staging")
        .await?
        .expect(201)?;
    Ok(())
}

#[tokio::test]
async fn the_high_tiers_reviews_stay_human_even_when_its_checks_pass() -> Result<()> {
    let app = spawn_app_with(automatic_low_policy()?).await?;
    app.register("fraud-score", RiskTier::High).await?;
    report(&app, "ci", "fraud-score", 1, &unit_tests("passed", 0.99))
        .await?
        .expect(201)?;
    let p = app.promote_as("dev", "fraud-score", 1, "staging").await?;
    assert_eq!(p["status"], "in_review", "{p}");
    assert_eq!(review_status(&p, "technical"), "pending");
    assert_eq!(p["reviews"][0]["decided_by"], Value::Null);
    // Another passing report changes nothing either.
    report(&app, "ci", "fraud-score", 1, &unit_tests("passed", 0.99))
        .await?
        .expect(201)?;
    assert!(events(&app, "fraud-score", "review.decided")
        .await?
        .is_empty());
    let p = app
        .decide("tech", review_id(&p, "technical")?, "approve")
        .await?
        .expect(200)?
        .body;
    assert_eq!(p["reviews"][0]["decided_by"], "tech");

    // A policy that tries to automate the high tier (or compliance anywhere) is refused at load.
    let err = Policy::from_toml(&policy_text("", r#"automatic_reviews = ["technical"]"#, ""))
        .unwrap_err();
    let GovError::Validation(errors) = err else {
        panic!("a validation error: {err}")
    };
    assert!(
        errors
            .iter()
            .any(|e| e.field == "tiers.high.automatic_reviews" && e.message.contains("human-only")),
        "{errors:?}"
    );
    let medium_compliance = policy_text("", "", "")
        .replace(
            "reviews = [\"technical\", \"business\"]",
            "reviews = [\"technical\", \"business\", \"compliance\"]\nautomatic_reviews = [\"compliance\"]",
        );
    let GovError::Validation(errors) = Policy::from_toml(&medium_compliance).unwrap_err() else {
        panic!("a validation error")
    };
    assert!(
        errors
            .iter()
            .any(|e| e.field == "tiers.medium.automatic_reviews"),
        "{errors:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_card_whose_fairness_groups_break_a_policy_limit_is_refused_naming_the_groups(
) -> Result<()> {
    let fairness = r#"
[[fairness]]
metric = "approval_rate"
min_ratio = 0.8
"#;
    let app = spawn_app_with(policy("", "", fairness)?).await?;
    let groups = |young: f64, old: f64| {
        let mut m = manifest(RiskTier::Low);
        m["card"]["fairness"]["groups"] = json!([
            {"group": "age:18-29", "metrics": {"auc": 0.897, "approval_rate": young}},
            {"group": "age:30-59", "metrics": {"auc": 0.915, "approval_rate": old}},
        ]);
        m
    };
    let before = app.snapshot().await?;
    let r = app
        .post("dev", "/v1/models/credit-risk/versions", &groups(0.6, 0.8))
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["card.fairness.groups"], "{}", r.body);
    let message = r.body["error"]["details"][0]["message"]
        .as_str()
        .context("message")?;
    for part in ["approval_rate", "\"age:18-29\"", "\"age:30-59\"", "0.8"] {
        assert!(message.contains(part), "{part} in {message}");
    }
    assert_eq!(
        app.snapshot().await?,
        before,
        "a refused registration wrote"
    );
    app.post("dev", "/v1/models/credit-risk/versions", &groups(0.75, 0.8))
        .await?
        .expect(201)?;
    Ok(())
}
