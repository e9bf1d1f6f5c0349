//! The lifecycle through the API: registration, promotions with each tier's reviews,
//! deployments, rejection, expiry and point-in-time production queries.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use steward_core::ports::Clock;
use steward_core::types::RiskTier;

use crate::common::*;

async fn a_tier_reaches_production_through_exactly_its_reviews(
    tier: RiskTier,
    expected: &[&str],
) -> Result<()> {
    let app = spawn_app().await?;
    let name = format!("credit-risk-{tier}");
    let r = app
        .post(
            "dev",
            &format!("/v1/models/{name}/versions"),
            &manifest(tier),
        )
        .await?
        .expect(201)?;
    assert_eq!(r.body["name"], name.as_str());
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["stage"], "development");
    assert_eq!(r.body["risk_tier"], tier.as_str());
    assert_eq!(r.body["registered_by"], "dev");
    assert!(r.body["registered_at"].is_string());
    assert_eq!(r.body["revision"], 1);
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/models/{name}/versions/1").as_str())
    );
    assert_eq!(r.header("idempotent-replayed"), None);

    app.to_staging(&name, 1).await?;
    let p = app.promote_as("dev", &name, 1, "production").await?;
    assert_eq!(stages(&p), expected, "{p}");
    assert_eq!(p["status"], "in_review");
    assert_eq!(p["name"], name.as_str());
    assert_eq!(p["version"], 1);
    assert_eq!(p["target"], "production");
    for review in p["reviews"].as_array().unwrap() {
        assert_eq!(review["status"], "pending");
        assert!(review["id"].is_string() && review["deadline"].is_string());
    }
    let fetched = app
        .get(
            "dev",
            &format!("/v1/promotions/{}", p["id"].as_str().unwrap()),
        )
        .await?
        .expect(200)?;
    assert_eq!(fetched.body["id"], p["id"]);

    let gate = format!("/v1/models/{name}/versions/1/gate?environment=production");
    for (i, stage) in expected.iter().enumerate() {
        let g = app.get("dev", &gate).await?.expect(200)?;
        assert_eq!(
            g.body["allowed"], false,
            "gate before all approvals: {}",
            g.body
        );
        assert!(!g.body["reasons"].as_array().unwrap().is_empty());
        let before = app.snapshot().await?;
        app.deploy_as("rel", &name, 1, "production")
            .await?
            .expect(422)?;
        assert_eq!(app.snapshot().await?, before, "a refused deployment wrote");

        let after = app
            .decide(reviewer_for(stage), review_id(&p, stage)?, "approve")
            .await?
            .expect(200)?
            .body;
        assert_eq!(review_status(&after, stage), "approved");
        let last = i + 1 == expected.len();
        assert_eq!(
            after["status"],
            if last { "approved" } else { "in_review" },
            "{after}"
        );
    }
    let g = app.get("dev", &gate).await?.expect(200)?;
    assert_eq!(g.body, json!({"allowed": true, "reasons": []}));

    let d = app
        .deploy_as("rel", &name, 1, "production")
        .await?
        .expect(201)?;
    assert_eq!(d.body["stage"], "production");
    let m = app
        .get("dev", &format!("/v1/models/{name}"))
        .await?
        .expect(200)?;
    assert_eq!(m.body["production_version"], 1);
    assert_eq!(m.body["versions"].as_array().unwrap().len(), 1);
    assert_eq!(app.production_version(&name, None).await?, 1);
    let detail = app
        .get("dev", &format!("/v1/models/{name}/versions/1"))
        .await?
        .expect(200)?;
    assert_eq!(detail.body["serving"], true);
    assert_eq!(detail.body["promotions"].as_array().unwrap().len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_low_risk_model_needs_only_a_technical_review() -> Result<()> {
    a_tier_reaches_production_through_exactly_its_reviews(RiskTier::Low, &["technical"]).await
}

#[tokio::test]
async fn a_medium_risk_model_needs_technical_and_business_reviews() -> Result<()> {
    a_tier_reaches_production_through_exactly_its_reviews(
        RiskTier::Medium,
        &["technical", "business"],
    )
    .await
}

#[tokio::test]
async fn a_high_risk_model_needs_four_distinct_reviewers() -> Result<()> {
    a_tier_reaches_production_through_exactly_its_reviews(
        RiskTier::High,
        &["technical", "business", "compliance", "deployment"],
    )
    .await
}

#[tokio::test]
async fn reviewers_see_the_pending_reviews_they_may_decide() -> Result<()> {
    let app = spawn_app().await?;
    app.register("fraud", RiskTier::Medium).await?;
    app.to_staging("fraud", 1).await?;
    let p = app.promote_as("dev", "fraud", 1, "production").await?;
    let listed = |who: &'static str| {
        let app = &app;
        async move {
            let r = app.get(who, "/v1/reviews").await?.expect(200)?;
            anyhow::Ok(
                r.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x["id"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>(),
            )
        }
    };
    assert_eq!(listed("tech").await?, [review_id(&p, "technical")?]);
    assert_eq!(listed("biz").await?, [review_id(&p, "business")?]);
    assert!(listed("dev").await?.is_empty());
    let r = app.get("tech", "/v1/reviews").await?.expect(200)?;
    let item = &r.body["items"][0];
    for field in [
        "id", "name", "version", "target", "stage", "status", "deadline",
    ] {
        assert!(!item[field].is_null(), "review lacks {field}: {item}");
    }
    assert!(r.body["next_cursor"].is_null());
    let approved = app
        .get("tech", "/v1/reviews?status=approved")
        .await?
        .expect(200)?;
    assert_eq!(approved.body["items"].as_array().unwrap().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_rejection_ends_the_promotion_and_cancels_the_other_reviews() -> Result<()> {
    let app = spawn_app().await?;
    app.register("churn", RiskTier::Medium).await?;
    app.to_staging("churn", 1).await?;
    let p = app.promote_as("dev", "churn", 1, "production").await?;
    let after = app
        .decide("biz", review_id(&p, "business")?, "reject")
        .await?
        .expect(200)?
        .body;
    assert_eq!(after["status"], "rejected");
    assert_eq!(review_status(&after, "business"), "rejected");
    assert_eq!(review_status(&after, "technical"), "cancelled");

    let before = app.snapshot().await?;
    let r = app
        .deploy_as("rel", "churn", 1, "production")
        .await?
        .expect(422)?;
    assert_eq!(r.code(), "policy_violation");
    assert!(r.body["error"]["details"][0]["reason"].is_string());
    app.decide("tech", review_id(&p, "technical")?, "approve")
        .await?
        .expect(409)?;
    assert_eq!(app.snapshot().await?, before);

    let g = app
        .get(
            "dev",
            "/v1/models/churn/versions/1/gate?environment=production",
        )
        .await?
        .expect(200)?;
    assert_eq!(g.body["allowed"], false);
    // A rejection is not the end of the version: it can be put up again.
    app.promote_as("dev", "churn", 1, "production").await?;
    Ok(())
}

#[tokio::test]
async fn a_rejection_must_say_why() -> Result<()> {
    let app = spawn_app().await?;
    app.register("terse", RiskTier::Low).await?;
    let p = app.promote_as("dev", "terse", 1, "staging").await?;
    let before = app.snapshot().await?;
    let r = app
        .post(
            "tech",
            &format!("/v1/reviews/{}/decision", review_id(&p, "technical")?),
            &json!({"decision": "reject"}),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["comment"]);
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

#[tokio::test]
async fn a_review_left_past_its_deadline_expires_the_promotion() -> Result<()> {
    let clock = manual_clock();
    let app = spawn_app_with_clock(quick_expiry_policy(), clock.clone()).await?;
    app.register("late", RiskTier::Low).await?;
    app.to_staging("late", 1).await?;
    let p = app.promote_as("dev", "late", 1, "production").await?;
    clock.advance(Duration::from_millis(1200));
    assert_eq!(app.gov.expire_due_reviews().await?, 1);

    let id = p["id"].as_str().unwrap();
    let now = app
        .get("dev", &format!("/v1/promotions/{id}"))
        .await?
        .expect(200)?;
    assert_eq!(now.body["status"], "expired");
    assert_eq!(review_status(&now.body, "technical"), "expired");
    app.deploy_as("rel", "late", 1, "production")
        .await?
        .expect(422)?;
    let events = app.audit_events(Some("late")).await?;
    let expiry = events
        .iter()
        .find(|e| e["action"] == "promotion.expired")
        .expect("promotion.expired audited");
    assert_eq!(expiry["actor"], "system:workflow");
    Ok(())
}

#[tokio::test]
async fn a_decision_after_the_deadline_is_a_conflict_and_expires_the_promotion() -> Result<()> {
    let clock = manual_clock();
    let app = spawn_app_with_clock(quick_expiry_policy(), clock.clone()).await?;
    app.register("slow", RiskTier::Low).await?;
    let p = app.promote_as("dev", "slow", 1, "staging").await?;
    clock.advance(Duration::from_millis(1200));
    let r = app
        .decide("tech", review_id(&p, "technical")?, "approve")
        .await?
        .expect(409)?;
    assert_eq!(r.code(), "conflict");
    let id = p["id"].as_str().unwrap();
    let now = app
        .get("dev", &format!("/v1/promotions/{id}"))
        .await?
        .expect(200)?;
    assert_eq!(now.body["status"], "expired");
    app.deploy_as("dev", "slow", 1, "staging")
        .await?
        .expect(422)?;
    Ok(())
}

#[tokio::test]
async fn deploying_an_unapproved_version_is_refused_and_writes_nothing() -> Result<()> {
    let app = spawn_app().await?;
    app.register("shadow", RiskTier::Low).await?;
    let before = app.snapshot().await?;
    let r = app
        .deploy_as("dev", "shadow", 1, "staging")
        .await?
        .expect(422)?;
    assert_eq!(r.code(), "policy_violation");
    let r = app
        .deploy_as("rel", "shadow", 1, "production")
        .await?
        .expect(422)?;
    assert_eq!(r.code(), "policy_violation");
    // Production deployments are the release manager's alone.
    app.deploy_as("dev", "shadow", 1, "production")
        .await?
        .expect(403)?;
    assert_eq!(app.snapshot().await?, before);
    let v = app
        .get("dev", "/v1/models/shadow/versions/1")
        .await?
        .expect(200)?;
    assert_eq!(v.body["stage"], "development");
    assert_eq!(v.body["revision"], 1);
    Ok(())
}

#[tokio::test]
async fn a_production_promotion_needs_the_version_on_staging_first() -> Result<()> {
    let app = spawn_app().await?;
    app.register("eager", RiskTier::Low).await?;
    let before = app.snapshot().await?;
    let r = app
        .post(
            "dev",
            "/v1/models/eager/versions/1/promotions",
            &json!({"target": "production"}),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.code(), "policy_violation");
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

#[tokio::test]
async fn production_at_answers_across_deploys_and_rollbacks() -> Result<()> {
    let clock = manual_clock();
    let app = spawn_app_with_clock(steward_core::Policy::default(), clock.clone()).await?;
    // Time moves 30 ms between steps, so each stamp falls strictly between two changes.
    let pause = || clock.advance(Duration::from_millis(30));
    let stamp = || {
        clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    };

    app.register("pricing", RiskTier::Low).await?;
    pause();
    let before_any = stamp();
    pause();
    app.to_production("pricing", 1).await?;
    pause();
    let with_v1 = stamp();
    pause();
    app.register("pricing", RiskTier::Low).await?;
    app.to_production("pricing", 2).await?;
    pause();
    let with_v2 = stamp();
    pause();
    let m = app
        .post(
            "ops",
            "/v1/models/pricing/rollback",
            &json!({"reason": "latency regression"}),
        )
        .await?
        .expect(200)?;
    assert_eq!(m.body["production_version"], 1);
    pause();
    let after_rollback = stamp();

    assert_eq!(
        app.production_version("pricing", Some(&before_any)).await?,
        json!(null)
    );
    assert_eq!(app.production_version("pricing", Some(&with_v1)).await?, 1);
    assert_eq!(app.production_version("pricing", Some(&with_v2)).await?, 2);
    assert_eq!(
        app.production_version("pricing", Some(&after_rollback))
            .await?,
        1
    );
    assert_eq!(app.production_version("pricing", None).await?, 1);
    // Offsets other than Z name the same instant.
    let t = chrono::DateTime::parse_from_rfc3339(&with_v2)?
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339();
    assert_eq!(app.production_version("pricing", Some(&t)).await?, 2);
    let r = app
        .get("dev", "/v1/models/pricing/production")
        .await?
        .expect(200)?;
    assert_eq!(r.body["name"], "pricing");
    assert!(r.body["since"].is_string());

    let events = app.audit_events(Some("pricing")).await?;
    let rollback = events
        .iter()
        .find(|e| e["action"] == "model.rolled_back")
        .expect("rollback audited");
    assert_eq!(rollback["actor"], "ops");
    assert_eq!(rollback["details"]["reason"], "latency regression");
    Ok(())
}

#[tokio::test]
async fn a_rollback_without_an_earlier_production_version_is_a_conflict() -> Result<()> {
    let app = spawn_app().await?;
    app.register("solo", RiskTier::Low).await?;
    let before = app.snapshot().await?;
    app.post("ops", "/v1/models/solo/rollback", &json!({"reason": "x"}))
        .await?
        .expect(409)?;
    app.to_production("solo", 1).await?;
    let before2 = app.snapshot().await?;
    assert_ne!(before, before2);
    app.post("ops", "/v1/models/solo/rollback", &json!({"reason": "x"}))
        .await?
        .expect(409)?;
    app.post("dev", "/v1/models/solo/rollback", &json!({"reason": "x"}))
        .await?
        .expect(403)?;
    assert_eq!(app.snapshot().await?, before2);
    Ok(())
}

#[tokio::test]
async fn cards_are_revised_with_optimistic_concurrency_and_keep_their_history() -> Result<()> {
    let app = spawn_app().await?;
    app.register("cards", RiskTier::Low).await?;
    let c = app
        .get("dev", "/v1/models/cards/versions/1/card")
        .await?
        .expect(200)?;
    assert_eq!(c.body["card_revision"], 1);
    let revision = c.body["revision"].as_u64().unwrap();
    let mut card = c.body["card"].clone();
    card["overview"] = json!("Revised overview.");

    let put = |rev: u64| {
        app.client
            .put(app.url("/v1/models/cards/versions/1/card"))
            .bearer_auth(token("dev"))
            .header("If-Match", format!("\"{rev}\""))
            .json(&card)
            .send()
    };
    let r = put(revision).await?;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await?;
    assert_eq!(v["card_revision"], 2);
    // The same base revision again: someone else's edit landed first.
    let r = put(revision).await?;
    assert_eq!(r.status(), 409);

    let revs = app
        .get("aud", "/v1/models/cards/versions/1/card/revisions")
        .await?
        .expect(200)?;
    let items = revs.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["card"]["overview"], "Revised overview.");
    assert_eq!(items[1]["author"], "dev");

    let mut bad = card.clone();
    bad.as_object_mut().unwrap().remove("limitations");
    let r = app
        .put("dev", "/v1/models/cards/versions/1/card", &bad)
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["card.limitations"]);
    Ok(())
}

#[tokio::test]
async fn repeated_rollbacks_walk_back_and_never_return_to_a_version_rolled_back_from() -> Result<()>
{
    let app = spawn_app().await?;
    for v in 1..=3 {
        app.register("pricing", RiskTier::Low).await?;
        app.to_production("pricing", v).await?;
    }
    let mut served = Vec::new();
    for _ in 0..2 {
        let m = app
            .post(
                "ops",
                "/v1/models/pricing/rollback",
                &json!({"reason": "regression"}),
            )
            .await?
            .expect(200)?;
        served.push(m.body["production_version"].clone());
    }
    // 3 → 2 → 1; before the fix the second rollback went back to 3.
    assert_eq!(served, [json!(2), json!(1)]);
    app.post(
        "ops",
        "/v1/models/pricing/rollback",
        &json!({"reason": "regression"}),
    )
    .await?
    .expect(409)?;
    assert_eq!(app.production_version("pricing", None).await?, json!(1));
    Ok(())
}
