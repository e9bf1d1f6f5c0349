//! Principals: admins manage roles through the API; every change is audited and applies to the
//! next request.

use anyhow::Result;
use serde_json::json;
use steward_core::types::RiskTier;

use crate::common::*;

#[tokio::test]
async fn only_admins_list_and_manage_principals() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    for who in ["dev", "aud", "rel", "newcomer"] {
        let r = app.get(who, "/v1/principals").await?.expect(403)?;
        assert_eq!(r.code(), "forbidden");
        app.put(who, "/v1/principals/dev", &json!({"roles": ["admin"]}))
            .await?
            .expect(403)?;
    }
    app.put("", "/v1/principals/dev", &json!({"roles": ["admin"]}))
        .await?
        .expect(401)?;
    assert_eq!(app.snapshot().await?, before);

    let r = app.get("admin", "/v1/principals").await?.expect(200)?;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), PRINCIPALS.len());
    let dev = items.iter().find(|p| p["id"] == "dev").unwrap();
    assert_eq!(dev["roles"], json!(["developer"]));
    assert_eq!(dev["managed_by"], "file");
    Ok(())
}

#[tokio::test]
async fn roles_an_admin_sets_are_audited_and_apply_to_the_next_request() -> Result<()> {
    let app = spawn_app().await?;
    app.post(
        "newcomer",
        "/v1/models/fresh/versions",
        &manifest(RiskTier::Low),
    )
    .await?
    .expect(403)?;
    let r = app
        .put(
            "admin",
            "/v1/principals/newcomer",
            &json!({"roles": ["developer"]}),
        )
        .await?
        .expect(200)?;
    assert_eq!(r.body["id"], "newcomer");
    assert_eq!(r.body["roles"], json!(["developer"]));
    assert_eq!(r.body["managed_by"], "api");
    app.register_as("newcomer", "fresh", RiskTier::Low).await?;

    let events = app.audit_events(None).await?;
    let change = events
        .iter()
        .rev()
        .find(|e| e["action"] == "principal.roles_set" && e["details"]["principal"] == "newcomer")
        .expect("role change audited");
    assert_eq!(change["actor"], "admin");
    assert_eq!(change["details"]["roles"], json!(["developer"]));

    // Taking a role away works just as fast.
    app.put("admin", "/v1/principals/newcomer", &json!({"roles": []}))
        .await?
        .expect(200)?;
    app.post(
        "newcomer",
        "/v1/models/fresh/versions",
        &manifest(RiskTier::Low),
    )
    .await?
    .expect(403)?;
    Ok(())
}

#[tokio::test]
async fn role_changes_are_validated() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    let r = app
        .put(
            "admin",
            "/v1/principals/dev",
            &json!({"roles": ["developer", "root"]}),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["roles[1]"]);
    let r = app
        .put("admin", "/v1/principals/dev", &json!({"role": "developer"}))
        .await?
        .expect(422)?;
    assert_eq!(r.code(), "validation_failed");
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

#[tokio::test]
async fn iam_arns_with_slashes_are_principal_ids() -> Result<()> {
    let app = spawn_app().await?;
    let arn = "arn:aws:iam::123456789012:role/ml-pipeline";
    let r = app
        .put(
            "admin",
            &format!("/v1/principals/{arn}"),
            &json!({"roles": ["developer"]}),
        )
        .await?
        .expect(200)?;
    assert_eq!(r.body["id"], arn);
    let encoded = arn.replace('/', "%2F");
    let r = app
        .put(
            "admin",
            &format!("/v1/principals/{encoded}"),
            &json!({"roles": ["developer", "operator"]}),
        )
        .await?
        .expect(200)?;
    assert_eq!(r.body["id"], arn);
    assert_eq!(r.body["revision"], 2);
    Ok(())
}

#[tokio::test]
async fn an_admin_cannot_change_its_own_roles_even_with_another_admin_present() -> Result<()> {
    let app = spawn_app().await?;
    app.put(
        "admin",
        "/v1/principals/second-admin",
        &json!({"roles": ["admin"]}),
    )
    .await?
    .expect(200)?;
    let before = app.snapshot().await?;
    // Before the fix this returned 200 and the admin could then decide reviews.
    let r = app
        .put(
            "admin",
            "/v1/principals/admin",
            &json!({"roles": ["technical-reviewer"]}),
        )
        .await?
        .expect(403)?;
    assert_eq!(r.code(), "separation_of_duties");
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}
