//! The AI inventory: every model with its owner, tier, stage, production, reviews, incidents
//! and card completeness.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use steward_core::types::RiskTier;

use crate::common::*;

/// The latest decided review in a version detail's reviews.
fn latest_decided(detail: &Value) -> Result<Value> {
    detail["reviews"]
        .as_array()
        .context("reviews")?
        .iter()
        .filter(|r| r["decided_at"].is_string())
        .max_by_key(|r| r["decided_at"].as_str().unwrap_or_default().to_owned())
        .cloned()
        .context("a decided review")
}

#[tokio::test]
async fn an_empty_registry_has_an_empty_inventory() -> Result<()> {
    let app = spawn_app().await?;
    let r = app.get("aud", "/v1/inventory").await?.expect(200)?;
    assert_eq!(r.body, json!({"items": [], "next_cursor": null}));
    Ok(())
}

#[tokio::test]
async fn the_inventory_lists_every_model_with_its_owner_stage_reviews_incidents_and_card(
) -> Result<()> {
    let app = spawn_app().await?;

    // Low tier, in production, with an open drift incident.
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_production("credit-risk", 1).await?;
    let signal = json!({"model": "credit-risk", "version": 1, "kind": "drift", "metric": "psi", "value": 0.35});
    let incident = app.post("ops", "/v1/signals", &signal).await?.expect(200)?;
    let incident_id = incident.body["incident"]["id"].clone();
    assert!(incident_id.is_string(), "{}", incident.body);

    // Medium tier, v1 in staging and v2 just registered with a card that skips parts.
    app.register("churn", RiskTier::Medium).await?;
    app.to_staging("churn", 1).await?;
    let mut thin = manifest(RiskTier::Medium);
    thin["card"]["fairness"]["groups"] = json!([]);
    thin["card"]["operational"]["monitoring"]["drift"] = json!([]);
    app.post("dev", "/v1/models/churn/versions", &thin)
        .await?
        .expect(201)?;

    // High tier, in development, its staging promotion rejected; a card with a tested rollback.
    let mut tested = manifest(RiskTier::High);
    tested["owner"]["team"] = json!("fraud-ml");
    tested["owner"]["contact"] = json!("fraud@example.com");
    tested["card"]["rollback"]["last_tested"] = json!("2026-10-01");
    app.post("dev", "/v1/models/fraud/versions", &tested)
        .await?
        .expect(201)?;
    let p = app.promote_as("dev", "fraud", 1, "staging").await?;
    app.decide("tech", review_id(&p, "technical")?, "reject")
        .await?
        .expect(200)?;

    let r = app.get("dev", "/v1/inventory").await?.expect(200)?;
    assert!(r.body["next_cursor"].is_null());
    let items = r.body["items"].as_array().context("items")?;
    let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names, ["churn", "credit-risk", "fraud"]);

    // credit-risk: production since its deployment, next review from its approval.
    let credit = &items[1];
    let detail = app
        .get("dev", "/v1/models/credit-risk/versions/1")
        .await?
        .expect(200)?
        .body;
    let production = app
        .get("dev", "/v1/models/credit-risk/production")
        .await?
        .expect(200)?
        .body;
    let last = latest_decided(&detail)?;
    assert_eq!(
        *credit,
        json!({
            "name": "credit-risk",
            "owner": {"team": "credit-ml", "contact": "credit-ml@example.com"},
            "risk_tier": "low",
            "stage": "production",
            "production_version": {"version": 1, "since": production["since"]},
            "latest_version": 1,
            "last_review": {
                "at": last["decided_at"],
                "stage": last["stage"],
                "decided_by": last["decided_by"],
                "version": 1,
                "decision": "approved",
            },
            "next_periodic_review": detail["next_periodic_review"],
            "open_incidents": {"count": 1, "ids": [incident_id]},
            "card_completeness": {"score": 0.86, "missing": ["rollback_tested"]},
        })
    );
    assert!(production["since"].is_string(), "{production}");
    assert!(detail["next_periodic_review"].is_string(), "{detail}");

    // churn: staging (v1), latest v2, last review v1's technical approval, no incidents.
    let churn = &items[0];
    let v1 = app
        .get("dev", "/v1/models/churn/versions/1")
        .await?
        .expect(200)?
        .body;
    let last = latest_decided(&v1)?;
    assert_eq!(
        *churn,
        json!({
            "name": "churn",
            "owner": {"team": "credit-ml", "contact": "credit-ml@example.com"},
            "risk_tier": "medium",
            "stage": "staging",
            "production_version": null,
            "latest_version": 2,
            "last_review": {
                "at": last["decided_at"],
                "stage": "technical",
                "decided_by": "tech",
                "version": 1,
                "decision": "approved",
            },
            "next_periodic_review": null,
            "open_incidents": {"count": 0, "ids": []},
            "card_completeness": {"score": 0.57, "missing": [
                "fairness_groups", "monitoring_drift_thresholds", "rollback_tested"
            ]},
        })
    );

    // fraud: development, its last review the rejection, a complete card.
    let fraud = &items[2];
    let v1 = app
        .get("dev", "/v1/models/fraud/versions/1")
        .await?
        .expect(200)?
        .body;
    let last = latest_decided(&v1)?;
    assert_eq!(
        *fraud,
        json!({
            "name": "fraud",
            "owner": {"team": "fraud-ml", "contact": "fraud@example.com"},
            "risk_tier": "high",
            "stage": "development",
            "production_version": null,
            "latest_version": 1,
            "last_review": {
                "at": last["decided_at"],
                "stage": "technical",
                "decided_by": "tech",
                "version": 1,
                "decision": "rejected",
            },
            "next_periodic_review": null,
            "open_incidents": {"count": 0, "ids": []},
            "card_completeness": {"score": 1.0, "missing": []},
        })
    );
    Ok(())
}

#[tokio::test]
async fn the_inventory_needs_authentication_and_a_role() -> Result<()> {
    let app = spawn_app().await?;
    let r = app
        .client
        .get(app.url("/v1/inventory"))
        .send()
        .await?
        .status();
    assert_eq!(r.as_u16(), 401);
    let r = app.get(NEWCOMER, "/v1/inventory").await?.expect(403)?;
    assert_error_shape(&r)?;
    Ok(())
}
