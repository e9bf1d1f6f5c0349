//! Periodic reviews: a production version whose review interval passed is re-certified through
//! the review inbox, once per due period. The runner's tick (`open_due_periodic_reviews`, which
//! the embedded runner and the AWS checkpoint function call on their schedules) is called
//! directly; time is a manual clock the tests move past the due date, with a policy whose
//! interval is a few seconds.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use steward_core::ports::Clock;
use steward_core::testing::ManualClock;
use steward_core::types::RiskTier;
use steward_core::Policy;

use crate::common::*;

const INTERVAL: Duration = Duration::from_secs(3);

/// The default policy with every tier's periodic review due `INTERVAL` after approval.
fn periodic_policy() -> Policy {
    let mut policy = Policy::default();
    for tier in policy.tiers.values_mut() {
        tier.periodic_review = INTERVAL;
    }
    policy
}

/// The `GET /v1/periodic-reviews` entry of `name`.
async fn periodic_entry(app: &App, name: &str) -> Result<Value> {
    let r = app.get("aud", "/v1/periodic-reviews").await?.expect(200)?;
    r.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == name).cloned())
        .context("no periodic review entry")
}

/// Moves `clock` to when the periodic review of `name` is due (plus a margin).
async fn wait_until_due(app: &App, clock: &ManualClock, name: &str) -> Result<()> {
    let entry = periodic_entry(app, name).await?;
    let due: DateTime<Utc> = entry["due_at"].as_str().context("due_at")?.parse()?;
    let wait = (due - clock.now()).to_std().unwrap_or_default() + Duration::from_millis(200);
    clock.advance(wait);
    Ok(())
}

/// An app on the periodic policy whose time is `clock`.
async fn spawn_periodic_app() -> Result<(App, Arc<ManualClock>)> {
    let clock = manual_clock();
    let app = spawn_app_with_clock(periodic_policy(), clock.clone()).await?;
    Ok((app, clock))
}

/// The pending reviews `who` may decide, for `name`.
async fn inbox(app: &App, who: &str, name: &str) -> Result<Vec<Value>> {
    let r = app.get(who, "/v1/reviews").await?.expect(200)?;
    Ok(r.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["name"] == name)
        .collect())
}

async fn audit_actions(app: &App, name: &str, action: &str) -> Result<Vec<Value>> {
    Ok(app
        .audit_events(Some(name))
        .await?
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect())
}

#[tokio::test]
async fn a_production_version_appears_in_the_review_inbox_once_its_review_interval_has_passed(
) -> Result<()> {
    let (app, clock) = spawn_periodic_app().await?;
    app.register("credit-risk", RiskTier::Medium).await?;
    app.to_production("credit-risk", 1).await?;

    // Not due yet: the tick opens nothing and the inbox has nothing for the model.
    assert_eq!(app.gov.open_due_periodic_reviews().await?, 0);
    assert!(inbox(&app, "tech", "credit-risk").await?.is_empty());
    assert_eq!(periodic_entry(&app, "credit-risk").await?["overdue"], false);

    wait_until_due(&app, &clock, "credit-risk").await?;
    assert_eq!(periodic_entry(&app, "credit-risk").await?["overdue"], true);
    assert_eq!(app.gov.open_due_periodic_reviews().await?, 1);

    // The tier's reviews (medium: technical and business) wait in the reviewers' inboxes, as
    // a re-certification of the serving version for production.
    for (who, stage) in [("tech", "technical"), ("biz", "business")] {
        let items = inbox(&app, who, "credit-risk").await?;
        assert_eq!(items.len(), 1, "{who}: {items:?}");
        assert_eq!(items[0]["version"], 1);
        assert_eq!(items[0]["target"], "production");
        assert_eq!(items[0]["stage"], stage);
        assert_eq!(items[0]["status"], "pending");
    }
    let due = audit_actions(&app, "credit-risk", "periodic_review.due").await?;
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0]["actor"], "system:periodic-review");
    assert_eq!(due[0]["version"], 1);

    // Ticks in the same due period open nothing more: PeriodicReviewDue is emitted once.
    assert_eq!(app.gov.open_due_periodic_reviews().await?, 0);
    assert_eq!(app.gov.open_due_periodic_reviews().await?, 0);
    assert_eq!(inbox(&app, "tech", "credit-risk").await?.len(), 1);
    assert_eq!(
        audit_actions(&app, "credit-risk", "periodic_review.due")
            .await?
            .len(),
        1
    );
    // The version keeps serving production while it is reviewed.
    assert_eq!(app.production_version("credit-risk", None).await?, 1);
    Ok(())
}

#[tokio::test]
async fn approving_a_periodic_review_recertifies_the_version_and_starts_its_next_interval(
) -> Result<()> {
    let (app, clock) = spawn_periodic_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_production("credit-risk", 1).await?;
    let first_due = periodic_entry(&app, "credit-risk").await?["due_at"].clone();
    wait_until_due(&app, &clock, "credit-risk").await?;
    assert_eq!(app.gov.open_due_periodic_reviews().await?, 1);

    let review = inbox(&app, "tech", "credit-risk").await?.remove(0);
    let p = app
        .decide("tech", review["id"].as_str().unwrap(), "approve")
        .await?
        .expect(200)?
        .body;
    assert_eq!(p["status"], "approved");

    // A new production approval: the next review falls due an interval later, and the
    // version is no longer overdue nor in anyone's inbox.
    let entry = periodic_entry(&app, "credit-risk").await?;
    assert_eq!(entry["overdue"], false);
    let next: DateTime<Utc> = entry["due_at"].as_str().unwrap().parse()?;
    let first: DateTime<Utc> = first_due.as_str().unwrap().parse()?;
    assert!(next > first, "{next} should be after {first}");
    assert!(inbox(&app, "tech", "credit-risk").await?.is_empty());
    assert_eq!(app.gov.open_due_periodic_reviews().await?, 0);
    assert_eq!(app.production_version("credit-risk", None).await?, 1);

    // The next due period opens the next review.
    wait_until_due(&app, &clock, "credit-risk").await?;
    assert_eq!(app.gov.open_due_periodic_reviews().await?, 1);
    assert_eq!(
        audit_actions(&app, "credit-risk", "periodic_review.due")
            .await?
            .len(),
        2
    );
    Ok(())
}

#[tokio::test]
async fn the_registrant_of_a_version_never_sees_or_decides_its_periodic_review() -> Result<()> {
    let (app, clock) = spawn_periodic_app().await?;
    // `devtech` registers (and is a technical reviewer too); `dev` requests the promotions.
    app.register_as("devtech", "credit-risk", RiskTier::Low)
        .await?;
    app.to_production("credit-risk", 1).await?;
    wait_until_due(&app, &clock, "credit-risk").await?;
    assert_eq!(app.gov.open_due_periodic_reviews().await?, 1);

    assert!(inbox(&app, "devtech", "credit-risk").await?.is_empty());
    let review = inbox(&app, "tech", "credit-risk").await?.remove(0);
    let r = app
        .decide("devtech", review["id"].as_str().unwrap(), "approve")
        .await?
        .expect(403)?;
    assert_eq!(r.code(), "separation_of_duties");
    Ok(())
}

#[tokio::test]
async fn a_rejected_periodic_review_is_not_reopened_in_its_due_period_but_can_be_requested_by_hand(
) -> Result<()> {
    let (app, clock) = spawn_periodic_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_production("credit-risk", 1).await?;
    wait_until_due(&app, &clock, "credit-risk").await?;
    assert_eq!(app.gov.open_due_periodic_reviews().await?, 1);
    let review = inbox(&app, "tech", "credit-risk").await?.remove(0);
    let p = app
        .decide("tech", review["id"].as_str().unwrap(), "reject")
        .await?
        .expect(200)?
        .body;
    assert_eq!(p["status"], "rejected");
    // The failed re-certification opens an incident, audited with the reviewer's reason.
    let rejected = audit_actions(&app, "credit-risk", "periodic_review.rejected").await?;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["actor"], "tech");
    assert_eq!(rejected[0]["details"]["periodic"], true);
    assert_eq!(rejected[0]["details"]["rejected_stage"], "technical");
    let incident_id = rejected[0]["details"]["incident_id"].as_str().unwrap();
    assert!(incident_id.starts_with("inc-"));
    // Listed with the other incidents.
    let incidents = app
        .get("ops", "/v1/incidents?model=credit-risk")
        .await?
        .expect(200)?
        .body;
    let items = incidents["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{incidents}");
    assert_eq!(items[0]["id"], incident_id);
    assert_eq!(items[0]["kind"], "periodic_review_rejected");
    assert_eq!(items[0]["version"], 1);
    assert_eq!(items[0]["subject"], p["id"]);
    assert_eq!(items[0]["status"], "open");
    // It keeps serving until someone acts.
    assert_eq!(app.production_version("credit-risk", None).await?, 1);

    // Still overdue, but the tick does not reopen the same due period.
    assert_eq!(app.gov.open_due_periodic_reviews().await?, 0);
    assert!(inbox(&app, "tech", "credit-risk").await?.is_empty());
    assert_eq!(periodic_entry(&app, "credit-risk").await?["overdue"], true);

    // A re-certification requested by hand goes through the tier's reviews again.
    let p = app
        .promote_as("rel", "credit-risk", 1, "production")
        .await?;
    assert_eq!(p["target"], "production");
    assert_eq!(inbox(&app, "tech", "credit-risk").await?.len(), 1);
    let p = app.approve_all(&p).await?;
    assert_eq!(p["status"], "approved");
    assert_eq!(periodic_entry(&app, "credit-risk").await?["overdue"], false);
    Ok(())
}

#[tokio::test]
async fn a_version_not_yet_in_production_still_needs_staging_before_a_production_promotion(
) -> Result<()> {
    // Re-certification is for versions in production; the usual refusals stand otherwise.
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let r = app
        .post(
            "dev",
            "/v1/models/credit-risk/versions/1/promotions",
            &json!({"target": "production"}),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.code(), "policy_violation");
    Ok(())
}
