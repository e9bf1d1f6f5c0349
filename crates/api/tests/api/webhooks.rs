//! Webhook subscriptions over HTTP, on both backends: admins manage them, auditors read them,
//! bad input is a 422 naming each field and writes nothing, and no answer carries the secret.

use anyhow::Result;
use serde_json::json;

use crate::common::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn an_admin_creates_updates_lists_and_deletes_a_webhook_without_the_secret_ever_coming_back(
) -> Result<()> {
    let app = spawn_app().await?;
    let body = json!({"url": "https://hooks.example.com/steward", "events": ["ReviewRequested"], "secret": SECRET});
    let created = app
        .put("admin", "/v1/webhooks/jira", &body)
        .await?
        .expect(201)?;
    assert_eq!(created.body["id"], "jira");
    assert_eq!(created.body["status"], "active");
    assert_eq!(created.body["events"], json!(["ReviewRequested"]));
    assert_eq!(created.body["updated_by"], "admin");
    assert_eq!(created.body["revision"], 1);
    // An update may leave the secret out; it is kept.
    let updated = app
        .put(
            "admin",
            "/v1/webhooks/jira",
            &json!({"url": "https://hooks.example.com/v2"}),
        )
        .await?
        .expect(200)?;
    assert_eq!(updated.body["url"], "https://hooks.example.com/v2");
    assert_eq!(updated.body["events"], json!([]));
    assert_eq!(updated.body["revision"], 2);
    let one = app.get("aud", "/v1/webhooks/jira").await?.expect(200)?;
    let list = app.get("aud", "/v1/webhooks").await?.expect(200)?;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let deliveries = app
        .get("aud", "/v1/webhooks/jira/deliveries?limit=5")
        .await?
        .expect(200)?;
    assert_eq!(deliveries.body["items"], json!([]));
    for r in [&created, &updated, &one, &list] {
        let text = r.body.to_string();
        assert!(
            !text.contains(&SECRET[6..]) && !text.contains("secret"),
            "{text}"
        );
    }
    let audit = app.audit_events(None).await?;
    let puts: Vec<_> = audit
        .iter()
        .filter(|e| e["action"] == "webhook.put")
        .collect();
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0]["actor"], "admin");
    assert_eq!(puts[0]["details"]["created"], true);
    assert_eq!(puts[1]["details"]["secret_changed"], false);
    assert!(!serde_json::to_string(&audit)?.contains(&SECRET[6..]));

    let del = app
        .send("admin", reqwest::Method::DELETE, "/v1/webhooks/jira", None)
        .await?;
    assert_eq!(del.status, 204);
    app.get("admin", "/v1/webhooks/jira").await?.expect(404)?;
    app.get("admin", "/v1/webhooks/jira/deliveries")
        .await?
        .expect(404)?;
    let list = app.get("admin", "/v1/webhooks").await?.expect(200)?;
    assert_eq!(list.body["items"], json!([]));
    let audit = app.audit_events(None).await?;
    assert_eq!(audit.last().unwrap()["action"], "webhook.deleted");
    Ok(())
}

#[tokio::test]
async fn only_admins_change_webhooks_and_only_admins_and_auditors_read_them() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    let body = json!({"url": "https://hooks.example.com/x", "secret": SECRET});
    for who in ["dev", "aud", "rel", "tech"] {
        let r = app.put(who, "/v1/webhooks/x", &body).await?.expect(403)?;
        assert_eq!(r.code(), "forbidden");
    }
    app.put("", "/v1/webhooks/x", &body).await?.expect(401)?;
    assert_eq!(app.snapshot().await?, before);
    app.put("admin", "/v1/webhooks/x", &body)
        .await?
        .expect(201)?;
    for who in ["dev", "rel"] {
        app.get(who, "/v1/webhooks").await?.expect(403)?;
        app.get(who, "/v1/webhooks/x").await?.expect(403)?;
        app.get(who, "/v1/webhooks/x/deliveries")
            .await?
            .expect(403)?;
        let r = app
            .send(who, reqwest::Method::DELETE, "/v1/webhooks/x", None)
            .await?;
        assert_eq!(r.status, 403);
    }
    app.get("aud", "/v1/webhooks/x").await?.expect(200)?;
    Ok(())
}

#[tokio::test]
async fn a_bad_webhook_is_refused_naming_each_field_and_writes_nothing() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    let r = app
        .put(
            "admin",
            "/v1/webhooks/x",
            &json!({"url": "http://hooks.example.com/x", "events": ["ReviewRequested", "Nope"], "secret": "hunter2"}),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["url", "events[1]", "secret"]);
    assert!(!r.body.to_string().contains("hunter2"));
    let r = app
        .put("admin", "/v1/webhooks/x", &json!({}))
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["url", "secret"]);
    let r = app
        .put(
            "admin",
            "/v1/webhooks/Bad.Id",
            &json!({"url": "https://h.example/", "secret": SECRET}),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["id"]);
    let r = app
        .put(
            "admin",
            "/v1/webhooks/x",
            &json!({"url": "https://h.example/", "secret": SECRET, "extra": 1}),
        )
        .await?;
    assert!(r.status == 400 || r.status == 422, "{r:?}");
    app.put(
        "admin",
        "/v1/webhooks/x",
        &json!({"url": "https://user:pw@h.example/", "secret": SECRET}),
    )
    .await?
    .expect(422)?;
    app.get("admin", "/v1/webhooks/nope").await?.expect(404)?;
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}
