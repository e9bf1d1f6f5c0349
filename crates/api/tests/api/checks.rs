//! Check reports from CI/CD (`POST/GET .../checks`): who may report, what is stored, listed
//! and audited, idempotent retries; and the helpers `checks_policy.rs` shares.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use steward_core::types::RiskTier;
use steward_core::Policy;

use crate::common::*;

pub(crate) fn checks_path(name: &str, v: u32) -> String {
    format!("/v1/models/{name}/versions/{v}/checks")
}

pub(crate) fn unit_tests(status: &str, coverage: f64) -> Value {
    json!({"name": "unit-tests", "status": status, "metrics": {"coverage": coverage}})
}

pub(crate) fn integration_tests(status: &str) -> Value {
    json!({"name": "integration-tests", "status": status, "environment": "staging"})
}

pub(crate) async fn report(app: &App, who: &str, name: &str, v: u32, body: &Value) -> Result<Resp> {
    app.post(who, &checks_path(name, v), body).await
}

pub(crate) async fn report_keyed(
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

pub(crate) async fn list(app: &App, name: &str, v: u32) -> Result<Vec<Value>> {
    let r = app.get("dev", &checks_path(name, v)).await?.expect(200)?;
    assert_eq!(r.body["next_cursor"], Value::Null, "{}", r.body);
    Ok(r.body["items"].as_array().context("items")?.clone())
}

pub(crate) async fn events(app: &App, name: &str, action: &str) -> Result<Vec<Value>> {
    Ok(app
        .audit_events(Some(name))
        .await?
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect())
}

/// The reasons of a policy refusal (`details[].reason`).
pub(crate) fn reasons(r: &Resp) -> Vec<String> {
    r.body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["reason"].as_str().map(str::to_owned))
        .collect()
}

pub(crate) async fn promote(app: &App, target: &str) -> Result<Resp> {
    app.post(
        "dev",
        "/v1/models/credit-risk/versions/1/promotions",
        &json!({"target": target}),
    )
    .await
}

pub(crate) async fn gate(app: &App, name: &str, v: u32, env: &str) -> Result<(bool, Vec<String>)> {
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
pub(crate) fn policy(low: &str, high: &str, tail: &str) -> Result<Policy> {
    Ok(Policy::from_toml(&policy_text(low, high, tail))?)
}

pub(crate) fn policy_text(low: &str, high: &str, tail: &str) -> String {
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
pub(crate) const LOW_REQUIRED_CHECKS: &str = r#"
[tiers.low.required_checks]
staging = [{ name = "unit-tests", require = ["coverage >= 0.8"] }]
production = [{ name = "integration-tests", on = "staging" }]
"#;

#[tokio::test]
pub(crate) async fn a_check_reported_by_ci_is_recorded_listed_on_the_version_and_audited_with_ci_as_actor(
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
pub(crate) async fn a_developer_may_report_a_check_but_an_auditor_may_not_and_the_refusal_writes_nothing(
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
pub(crate) async fn a_bad_check_report_is_refused_naming_every_bad_field_and_writes_nothing(
) -> Result<()> {
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
pub(crate) async fn an_idempotent_retry_replays_the_first_result_and_writes_one_audit_event(
) -> Result<()> {
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
pub(crate) async fn a_re_report_replaces_the_previous_result_and_counts_the_reports() -> Result<()>
{
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
