//! Monitoring signals: drift requests retraining, quality under threshold rolls back.

use anyhow::Result;
use serde_json::json;
use steward_core::types::RiskTier;

use crate::common::*;

fn signal(model: &str, version: u32, kind: &str, metric: &str, value: f64) -> serde_json::Value {
    json!({"model": model, "version": version, "kind": kind, "metric": metric, "value": value})
}

#[tokio::test]
async fn a_drift_signal_over_the_threshold_opens_an_incident_and_requests_retraining() -> Result<()>
{
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_production("credit-risk", 1).await?;

    let calm = app
        .post(
            "ops",
            "/v1/signals",
            &signal("credit-risk", 1, "drift", "psi", 0.05),
        )
        .await?
        .expect(200)?;
    assert_eq!(calm.body["breached"], false);
    assert!(calm.body["incident"].is_null());

    let r = app
        .post(
            "ops",
            "/v1/signals",
            &signal("credit-risk", 1, "drift", "psi", 0.35),
        )
        .await?
        .expect(200)?;
    assert_eq!(r.body["breached"], true);
    assert_eq!(r.body["threshold"], 0.2);
    let actions: Vec<&str> = r.body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(actions.contains(&"retraining_requested"), "{actions:?}");
    let incident_id = r.body["incident"]["id"].as_str().unwrap();

    let incidents = app
        .get("ops", "/v1/incidents?model=credit-risk")
        .await?
        .expect(200)?;
    let items = incidents.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], incident_id);
    assert_eq!(items[0]["status"], "open");
    let events = app.audit_events(Some("credit-risk")).await?;
    assert!(events.iter().any(|e| e["action"] == "retraining.requested"));
    assert!(events
        .iter()
        .any(|e| e["action"] == "incident.opened" && e["actor"] == "ops"));
    // Drift does not move production.
    assert_eq!(app.production_version("credit-risk", None).await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_quality_signal_under_the_threshold_rolls_production_back() -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_production("credit-risk", 1).await?;
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_production("credit-risk", 2).await?;
    assert_eq!(app.production_version("credit-risk", None).await?, 2);

    let r = app
        .post(
            "ops",
            "/v1/signals",
            &signal("credit-risk", 2, "quality", "auc", 0.71),
        )
        .await?
        .expect(200)?;
    assert_eq!(r.body["breached"], true);
    let actions: Vec<&str> = r.body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(actions.contains(&"alerted"), "{actions:?}");
    assert!(actions.contains(&"rolled_back_to:1"), "{actions:?}");
    assert_eq!(app.production_version("credit-risk", None).await?, 1);
    let m = app
        .get("dev", "/v1/models/credit-risk")
        .await?
        .expect(200)?;
    assert_eq!(m.body["production_version"], 1);
    let events = app.audit_events(Some("credit-risk")).await?;
    let rollback = events
        .iter()
        .find(|e| e["action"] == "model.rolled_back")
        .expect("rollback audited");
    assert_eq!(rollback["details"]["automatic"], true);
    Ok(())
}

#[tokio::test]
async fn signals_need_the_operator_role_and_a_known_version() -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let before = app.snapshot().await?;
    app.post(
        "dev",
        "/v1/signals",
        &signal("credit-risk", 1, "drift", "psi", 0.9),
    )
    .await?
    .expect(403)?;
    app.post(
        "ops",
        "/v1/signals",
        &signal("credit-risk", 9, "drift", "psi", 0.9),
    )
    .await?
    .expect(404)?;
    let r = app
        .post(
            "ops",
            "/v1/signals",
            &signal("Credit-Risk", 1, "drift", "psi", 0.9),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["model"]);
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

#[tokio::test]
async fn production_versions_are_listed_for_periodic_review() -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Medium).await?;
    app.to_production("credit-risk", 1).await?;
    let r = app.get("aud", "/v1/periodic-reviews").await?.expect(200)?;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "credit-risk");
    assert_eq!(items[0]["overdue"], false);
    assert!(items[0]["due_at"].is_string());
    assert!(r.body["next_cursor"].is_null());
    Ok(())
}

#[tokio::test]
async fn retirement_records_the_reason_and_refuses_a_serving_version_without_replacement(
) -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_production("credit-risk", 1).await?;
    let before = app.snapshot().await?;
    let r = app
        .post(
            "dev",
            "/v1/models/credit-risk/versions/1/retirement",
            &json!({"reason": "superseded"}),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.code(), "policy_violation");
    assert_eq!(app.snapshot().await?, before);

    app.register("credit-risk", RiskTier::Low).await?;
    let r = app
        .post(
            "dev",
            "/v1/models/credit-risk/versions/2/retirement",
            &json!({"reason": "never shipped"}),
        )
        .await?
        .expect(200)?;
    assert_eq!(r.body["stage"], "retired");
    assert_eq!(r.body["retirement"]["reason"], "never shipped");
    assert_eq!(r.body["retirement"]["retired_by"], "dev");
    app.post(
        "dev",
        "/v1/models/credit-risk/versions/2/retirement",
        &json!({"reason": "again"}),
    )
    .await?
    .expect(409)?;
    Ok(())
}

#[tokio::test]
async fn a_retirement_confirmation_needs_a_pending_retirement_and_a_confirming_role() -> Result<()>
{
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let path = "/v1/models/credit-risk/versions/1/retirement/confirmation";
    let before = app.snapshot().await?;
    // Only compliance reviewers and release managers confirm retirements.
    app.post("dev", path, &json!({"decision": "approve"}))
        .await?
        .expect(403)?;
    // Embedded, retirements take effect when requested: nothing ever waits for confirmation.
    let r = app
        .post("comp", path, &json!({"decision": "approve"}))
        .await?
        .expect(409)?;
    assert!(r.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("waiting for confirmation")));
    let r = app
        .post("comp", path, &json!({"decision": "maybe"}))
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["decision"]);
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

async fn signal_with_key(app: &App, key: &str, body: &serde_json::Value) -> Result<Resp> {
    let r = app
        .client
        .post(app.url("/v1/signals"))
        .bearer_auth(token("ops"))
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

#[tokio::test]
async fn a_signal_delivered_again_with_its_idempotency_key_opens_no_second_incident() -> Result<()>
{
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let drift = signal("credit-risk", 1, "drift", "psi", 0.9);
    let first = signal_with_key(&app, "evt-1", &drift).await?.expect(200)?;
    assert!(first.header("Idempotent-Replayed").is_none());
    let incident = first.body["incident"]["id"].clone();
    assert!(incident.is_string(), "{}", first.body);
    let after_first = app.snapshot().await?;

    let again = signal_with_key(&app, "evt-1", &drift).await?.expect(200)?;
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(again.body["incident"]["id"], incident);
    assert_eq!(
        app.snapshot().await?,
        after_first,
        "a replay writes nothing"
    );

    // The same key with another signal is a conflict, and writes nothing either.
    let other = signal("credit-risk", 1, "drift", "psi", 0.95);
    signal_with_key(&app, "evt-1", &other).await?.expect(409)?;
    assert_eq!(app.snapshot().await?, after_first);
    let incidents = app
        .get("ops", "/v1/incidents?model=credit-risk")
        .await?
        .expect(200)?
        .body;
    assert_eq!(incidents["items"].as_array().unwrap().len(), 1);
    Ok(())
}
