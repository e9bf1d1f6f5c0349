//! Check reports from CI/CD (`POST/GET .../checks`) and what policy does with them: required
//! checks on promotions, gates and deployments, fairness limits at registration, and reviews
//! policy decides itself.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use steward_core::types::RiskTier;
use steward_core::{GovError, Policy};

use crate::common::*;

fn checks_path(name: &str, v: u32) -> String {
    format!("/v1/models/{name}/versions/{v}/checks")
}

fn unit_tests(status: &str, coverage: f64) -> Value {
    json!({"name": "unit-tests", "status": status, "metrics": {"coverage": coverage}})
}

fn integration_tests(status: &str) -> Value {
    json!({"name": "integration-tests", "status": status, "environment": "staging"})
}

async fn report(app: &App, who: &str, name: &str, v: u32, body: &Value) -> Result<Resp> {
    app.post(who, &checks_path(name, v), body).await
}

async fn report_keyed(
    app: &App,
    who: &str,
    name: &str,
    v: u32,
    body: &Value,
    key: &str,
) -> Result<Resp> {
    let r = app
        .client
        .post(app.url(&checks_path(name, v)))
        .bearer_auth(token(who))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

async fn list(app: &App, name: &str, v: u32) -> Result<Vec<Value>> {
    let r = app.get("dev", &checks_path(name, v)).await?.expect(200)?;
    assert_eq!(r.body["next_cursor"], Value::Null, "{}", r.body);
    Ok(r.body["items"].as_array().context("items")?.clone())
}

async fn events(app: &App, name: &str, action: &str) -> Result<Vec<Value>> {
    Ok(app
        .audit_events(Some(name))
        .await?
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect())
}

/// The reasons of a policy refusal (`details[].reason`).
fn reasons(r: &Resp) -> Vec<String> {
    r.body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["reason"].as_str().map(str::to_owned))
        .collect()
}

async fn promote(app: &App, target: &str) -> Result<Resp> {
    app.post(
        "dev",
        "/v1/models/credit-risk/versions/1/promotions",
        &json!({"target": target}),
    )
    .await
}

async fn gate(app: &App, name: &str, v: u32, env: &str) -> Result<(bool, Vec<String>)> {
    let r = app
        .get(
            "dev",
            &format!("/v1/models/{name}/versions/{v}/gate?environment={env}"),
        )
        .await?
        .expect(200)?;
    let reasons = r.body["reasons"]
        .as_array()
        .context("reasons")?
        .iter()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect();
    Ok((r.body["allowed"] == true, reasons))
}

/// A complete policy: the default tiers, `low` and `high` extended with the given keys (and
/// subtables), then `tail` (top-level tables such as `[[fairness]]`).
fn policy(low: &str, high: &str, tail: &str) -> Result<Policy> {
    Ok(Policy::from_toml(&policy_text(low, high, tail))?)
}

fn policy_text(low: &str, high: &str, tail: &str) -> String {
    format!(
        r#"
[tiers.low]
reviews = ["technical"]
review_timeout = "3days"
periodic_review = "365days"
auto_rollback = true
{low}

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
{high}

{tail}
"#
    )
}

/// Low tier: `unit-tests` with coverage for staging, `integration-tests` on staging for
/// production.
const LOW_REQUIRED_CHECKS: &str = r#"
[tiers.low.required_checks]
staging = [{ name = "unit-tests", require = ["coverage >= 0.8"] }]
production = [{ name = "integration-tests", on = "staging" }]
"#;

#[tokio::test]
async fn a_check_reported_by_ci_is_recorded_listed_on_the_version_and_audited_with_ci_as_actor(
) -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let sha = "ab".repeat(32);
    let body = json!({
        "name": "unit-tests", "status": "passed", "environment": "staging",
        "metrics": {"coverage": 0.84, "tests": 412},
        "evidence": {"uri": "s3://ci-reports/credit-risk/junit.xml", "sha256": sha},
        "details_url": "https://ci.example.com/runs/42",
    });
    let r = report(&app, "ci", "credit-risk", 1, &body)
        .await?
        .expect(201)?;
    assert_eq!(
        r.header("location"),
        Some("/v1/models/credit-risk/versions/1/checks")
    );
    assert!(r.header("idempotent-replayed").is_none());
    let c = &r.body;
    assert_eq!(c["name"], "unit-tests");
    assert_eq!(c["status"], "passed");
    assert_eq!(c["environment"], "staging");
    assert_eq!(c["metrics"], json!({"coverage": 0.84, "tests": 412.0}));
    assert_eq!(c["evidence"]["sha256"], sha);
    assert_eq!(c["details_url"], "https://ci.example.com/runs/42");
    assert_eq!(c["reported_by"], "ci", "the caller, never the body");
    assert_eq!(c["reports"], 1);
    assert!(c["reported_at"].is_string());

    assert_eq!(list(&app, "credit-risk", 1).await?, vec![c.clone()]);
    let v = app
        .get("aud", "/v1/models/credit-risk/versions/1")
        .await?
        .expect(200)?;
    assert_eq!(v.body["checks"], json!([c]), "{}", v.body);

    let audited = events(&app, "credit-risk", "check.reported").await?;
    assert_eq!(audited.len(), 1, "{audited:?}");
    let e = &audited[0];
    assert_eq!(e["actor"], "ci");
    assert_eq!(e["version"], 1);
    assert_eq!(e["details"]["check"], "unit-tests");
    assert_eq!(e["details"]["status"], "passed");
    assert_eq!(e["details"]["environment"], "staging");
    assert_eq!(e["details"]["evidence"]["sha256"], sha);
    assert_eq!(e["details"]["reports"], 1);
    Ok(())
}

#[tokio::test]
async fn a_developer_may_report_a_check_but_an_auditor_may_not_and_the_refusal_writes_nothing(
) -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let before = app.snapshot().await?;
    for who in ["aud", "tech", "admin", NEWCOMER] {
        let r = report(&app, who, "credit-risk", 1, &unit_tests("passed", 0.9))
            .await?
            .expect(403)?;
        assert_eq!(r.code(), "forbidden", "{who}: {}", r.body);
    }
    let r = report(&app, "", "credit-risk", 1, &unit_tests("passed", 0.9)).await?;
    assert_eq!(r.status, 401);
    assert_eq!(app.snapshot().await?, before, "a refused report wrote");
    assert!(list(&app, "credit-risk", 1).await?.is_empty());

    let r = report(&app, "dev", "credit-risk", 1, &unit_tests("failed", 0.5))
        .await?
        .expect(201)?;
    assert_eq!(r.body["reported_by"], "dev");
    Ok(())
}

#[tokio::test]
async fn a_bad_check_report_is_refused_naming_every_bad_field_and_writes_nothing() -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let before = app.snapshot().await?;

    let r = app
        .client
        .post(app.url(&checks_path("credit-risk", 1)))
        .bearer_auth(token("ci"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await?;
    assert_eq!(r.status(), 400, "malformed JSON");

    let r = app
        .post(
            "ci",
            "/v1/models/credit-risk/versions/one/checks",
            &unit_tests("passed", 0.9),
        )
        .await?
        .expect(400)?;
    assert_eq!(r.fields(), ["version"]);

    let r = report(
        &app,
        "ci",
        "credit-risk",
        1,
        &json!({
            "name": "Unit Tests", "status": "green", "environment": "qa",
            "metrics": {"coverage": "high"},
            "evidence": {"uri": "s3://ci/r.xml", "sha256": "not-a-digest"},
            "details_url": "javascript:alert(1)", "reporter": "someone-else",
        }),
    )
    .await?
    .expect(422)?;
    assert_eq!(r.code(), "validation_failed");
    let fields = r.fields();
    for f in [
        "name",
        "status",
        "environment",
        "metrics.coverage",
        "evidence",
        "details_url",
        "reporter",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }

    let r = report(&app, "ci", "credit-risk", 1, &json!({}))
        .await?
        .expect(422)?;
    let fields = r.fields();
    assert!(fields.contains(&"name".to_owned()) && fields.contains(&"status".to_owned()));
    let r = report(&app, "ci", "credit-risk", 1, &json!(["unit-tests"]))
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["body"]);
    let long_key = "k".repeat(256);
    let r = report_keyed(
        &app,
        "ci",
        "credit-risk",
        1,
        &unit_tests("passed", 0.9),
        &long_key,
    )
    .await?
    .expect(422)?;
    assert_eq!(r.fields(), ["Idempotency-Key"]);

    for path in [
        checks_path("credit-risk", 9),
        checks_path("credit-risk", 0),
        checks_path("unknown-model", 1),
    ] {
        app.post("ci", &path, &unit_tests("passed", 0.9))
            .await?
            .expect(404)?;
        app.get("ci", &path).await?.expect(404)?;
    }
    assert_eq!(app.snapshot().await?, before, "a refused report wrote");
    assert!(list(&app, "credit-risk", 1).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_idempotent_retry_replays_the_first_result_and_writes_one_audit_event() -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let body = unit_tests("passed", 0.84);
    let first = report_keyed(&app, "ci", "credit-risk", 1, &body, "run-42")
        .await?
        .expect(201)?;
    let size = app.audit_size().await?;
    let again = report_keyed(&app, "ci", "credit-risk", 1, &body, "run-42")
        .await?
        .expect(201)?;
    assert_eq!(
        again.body, first.body,
        "the same result, reported_at included"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.audit_size().await?, size, "a replay writes nothing");
    assert_eq!(
        events(&app, "credit-risk", "check.reported").await?.len(),
        1
    );
    assert_eq!(list(&app, "credit-risk", 1).await?[0]["reports"], 1);

    // The same key with another body is a conflict, and writes nothing either.
    let r = report_keyed(
        &app,
        "ci",
        "credit-risk",
        1,
        &unit_tests("failed", 0.5),
        "run-42",
    )
    .await?
    .expect(409)?;
    assert_eq!(r.code(), "conflict", "{}", r.body);
    assert_eq!(app.audit_size().await?, size);
    // Keys are the caller's own: another reporter's same key is a new report.
    let r = report_keyed(&app, "dev", "credit-risk", 1, &body, "run-42")
        .await?
        .expect(201)?;
    assert_eq!(r.body["reports"], 2);
    assert!(r.header("idempotent-replayed").is_none());
    Ok(())
}

#[tokio::test]
async fn a_re_report_replaces_the_previous_result_and_counts_the_reports() -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    report(&app, "ci", "credit-risk", 1, &unit_tests("failed", 0.61))
        .await?
        .expect(201)?;
    let second = report(&app, "ci", "credit-risk", 1, &unit_tests("passed", 0.86))
        .await?
        .expect(201)?;
    assert_eq!(second.body["reports"], 2);
    // Another environment is another result.
    report(&app, "ci", "credit-risk", 1, &integration_tests("passed"))
        .await?
        .expect(201)?;
    let items = list(&app, "credit-risk", 1).await?;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0]["name"], "integration-tests");
    assert_eq!(items[0]["reports"], 1);
    assert_eq!(items[1], second.body, "the latest report of unit-tests");
    assert_eq!(items[1]["status"], "passed");
    assert_eq!(items[1]["metrics"]["coverage"], 0.86);
    assert_eq!(
        events(&app, "credit-risk", "check.reported").await?.len(),
        3
    );

    // A retired version takes no more reports.
    app.post(
        "dev",
        "/v1/models/credit-risk/versions/1/retirement",
        &json!({"reason": "superseded"}),
    )
    .await?
    .expect(200)?;
    let before = app.snapshot().await?;
    report(&app, "ci", "credit-risk", 1, &unit_tests("passed", 0.9))
        .await?
        .expect(409)?;
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

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
