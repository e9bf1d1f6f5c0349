//! Separation of duties through the API: refusals are 403 and change nothing.

use anyhow::Result;
use steward_core::types::RiskTier;

use crate::common::*;

/// Expects `who` deciding `stage` of `promotion` to be refused with `code`, leaving the review
/// pending and the log unchanged.
async fn refused(
    app: &App,
    who: &str,
    promotion: &serde_json::Value,
    stage: &str,
    code: &str,
) -> Result<()> {
    let before = app.snapshot().await?;
    let r = app
        .decide(who, review_id(promotion, stage)?, "approve")
        .await?
        .expect(403)?;
    assert_eq!(r.code(), code, "{}", r.body);
    assert_eq!(app.snapshot().await?, before, "a refused decision wrote");
    let id = promotion["id"].as_str().unwrap();
    let now = app
        .get("dev", &format!("/v1/promotions/{id}"))
        .await?
        .expect(200)?;
    assert_eq!(review_status(&now.body, stage), "pending");
    assert_eq!(now.body["status"], "in_review");
    Ok(())
}

#[tokio::test]
async fn the_registrant_may_not_approve_its_own_version() -> Result<()> {
    let app = spawn_app().await?;
    app.register_as("devtech", "selfie", RiskTier::Low).await?;
    let p = app.promote_as("dev", "selfie", 1, "staging").await?;
    refused(&app, "devtech", &p, "technical", "separation_of_duties").await?;
    app.decide("tech", review_id(&p, "technical")?, "approve")
        .await?
        .expect(200)?;
    Ok(())
}

#[tokio::test]
async fn the_promoter_may_not_approve_its_own_promotion() -> Result<()> {
    let app = spawn_app().await?;
    app.register("pushy", RiskTier::Low).await?;
    let p = app.promote_as("devtech", "pushy", 1, "staging").await?;
    refused(&app, "devtech", &p, "technical", "separation_of_duties").await
}

#[tokio::test]
async fn a_reviewer_decides_only_the_stages_its_roles_allow() -> Result<()> {
    let app = spawn_app().await?;
    app.register("roles", RiskTier::Medium).await?;
    let p = app.promote_as("dev", "roles", 1, "staging").await?;
    refused(&app, "biz", &p, "technical", "forbidden").await?;
    refused(&app, "dev2", &p, "technical", "forbidden").await?;
    refused(&app, "newcomer", &p, "technical", "forbidden").await
}

#[tokio::test]
async fn in_the_high_tier_nobody_approves_two_stages_of_one_promotion() -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::High).await?;
    app.to_staging("credit-risk", 1).await?;
    let p = app
        .promote_as("dev", "credit-risk", 1, "production")
        .await?;
    app.decide("tech", review_id(&p, "technical")?, "approve")
        .await?
        .expect(200)?;
    app.decide("bizcomp", review_id(&p, "business")?, "approve")
        .await?
        .expect(200)?;
    // The compliance review is hidden from the one person who may not take it...
    let listed = app.get("bizcomp", "/v1/reviews").await?.expect(200)?;
    assert!(
        listed.body["items"].as_array().unwrap().is_empty(),
        "{}",
        listed.body
    );
    // ... and refused if tried anyway.
    refused(&app, "bizcomp", &p, "compliance", "separation_of_duties").await?;
    app.decide("comp", review_id(&p, "compliance")?, "approve")
        .await?
        .expect(200)?;
    let done = app
        .decide("rel2", review_id(&p, "deployment")?, "approve")
        .await?
        .expect(200)?;
    assert_eq!(done.body["status"], "approved");
    Ok(())
}

#[tokio::test]
async fn an_admin_may_not_approve_even_holding_reviewer_roles() -> Result<()> {
    let app = spawn_app().await?;
    app.register("governed", RiskTier::Medium).await?;
    let p = app.promote_as("dev", "governed", 1, "staging").await?;
    refused(&app, "adminrev", &p, "technical", "separation_of_duties").await?;
    let listed = app.get("adminrev", "/v1/reviews").await?.expect(200)?;
    assert!(listed.body["items"].as_array().unwrap().is_empty());
    Ok(())
}

#[tokio::test]
async fn actions_need_their_roles() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    for who in ["tech", "ops", "aud", "newcomer"] {
        let r = app
            .post(who, "/v1/models/roles/versions", &manifest(RiskTier::Low))
            .await?
            .expect(403)?;
        assert_eq!(r.code(), "forbidden");
    }
    assert_eq!(app.snapshot().await?, before);
    app.register("roles", RiskTier::Low).await?;
    let before = app.snapshot().await?;
    for who in ["tech", "ops", "aud"] {
        app.promote_as(who, "roles", 1, "staging")
            .await
            .unwrap_err();
    }
    app.get("dev", "/v1/audit").await?.expect(403)?;
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

#[tokio::test]
async fn a_principal_who_administered_principals_during_a_promotion_may_not_decide_its_reviews(
) -> Result<()> {
    let app = spawn_app().await?;
    app.register("guarded", RiskTier::Low).await?;
    let p = app.promote_as("dev", "guarded", 1, "staging").await?;
    // "tech" is made an admin, administers, and is made a technical reviewer again by the
    // other admin: the audit then shows principal.roles_set by tech before its decision.
    // Before the fix that decision was accepted.
    for (who, id, roles) in [
        ("admin", "tech", serde_json::json!(["admin"])),
        ("tech", "newcomer", serde_json::json!(["auditor"])),
        ("admin", "tech", serde_json::json!(["technical-reviewer"])),
    ] {
        app.put(
            who,
            &format!("/v1/principals/{id}"),
            &serde_json::json!({ "roles": roles }),
        )
        .await?
        .expect(200)?;
    }
    refused(&app, "tech", &p, "technical", "separation_of_duties").await?;
    let inbox = app
        .get("tech", "/v1/reviews?status=pending")
        .await?
        .expect(200)?;
    assert_eq!(inbox.body["items"], serde_json::json!([]));
    // Another reviewer may.
    app.decide("tech2", review_id(&p, "technical")?, "approve")
        .await?
        .expect(200)?;
    Ok(())
}
