//! The serving inventory over HTTP, on both backends: platforms push what each endpoint
//! serves; Steward matches it (artifact SHA-256, else URI) and says governed, unapproved,
//! unregistered or stale; each finding opens one `shadow_model` incident however often it is
//! reported, and closes when the endpoint stops serving it or it becomes governed; bad reports
//! are refused naming the field, and write nothing.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use steward_core::types::RiskTier;

use crate::common::*;
use crate::console::Browser;

/// Registers `credit-risk` version with its own artifact (`n` makes it unique); its URI and hash.
async fn register_artifact(app: &App, n: u32) -> Result<(String, String)> {
    let mut m = manifest(RiskTier::Low);
    let uri = format!("s3://acme-models/credit-risk/{n}/model.tar.gz");
    let sha = format!("{n:02x}").repeat(32);
    m["artifact"]["uri"] = json!(uri);
    m["artifact"]["sha256"] = json!(sha);
    app.post("dev", "/v1/models/credit-risk/versions", &m)
        .await?
        .expect(201)?;
    Ok((uri, sha))
}

fn report(endpoint: &str, env: &str, uri: &str, sha: Option<&str>, at: &str) -> Value {
    let mut artifact = json!({"uri": uri});
    if let Some(s) = sha {
        artifact["sha256"] = json!(s);
    }
    json!({"platform": "kserve", "environment": env, "endpoint": endpoint,
           "artifact": artifact, "observed_at": at})
}

async fn post_report(app: &App, body: &Value) -> Result<Value> {
    Ok(app
        .post("ops", "/v1/serving", body)
        .await?
        .expect(200)?
        .body)
}

async fn shadow_incidents(app: &App) -> Result<Vec<Value>> {
    let r = app
        .get("ops", "/v1/incidents?limit=200")
        .await?
        .expect(200)?;
    Ok(r.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|i| i["kind"] == "shadow_model")
        .cloned()
        .collect())
}

/// A fixed time (an hour ago, on the minute) plus `minutes`: the same argument gives the same
/// report time.
fn at(minutes: i64) -> String {
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).timestamp();
    let base = chrono::DateTime::from_timestamp(hour_ago - hour_ago % 3600, 0).expect("a time");
    (base + chrono::Duration::minutes(minutes)).to_rfc3339()
}

#[tokio::test]
async fn each_outcome_is_found_and_each_finding_opens_one_incident_until_it_closes() -> Result<()> {
    let app = spawn_app().await?;
    let (uri1, sha1) = register_artifact(&app, 1).await?;
    app.to_production("credit-risk", 1).await?;
    let (uri2, _) = register_artifact(&app, 2).await?;

    // governed: v1 is approved for and deployed to production.
    let a = post_report(&app, &report("a", "production", &uri1, Some(&sha1), &at(0))).await?;
    assert_eq!(
        (
            a["outcome"].as_str(),
            a["model"].as_str(),
            a["version"].as_u64()
        ),
        (Some("governed"), Some("credit-risk"), Some(1)),
        "{a}"
    );
    assert!(a["incident"].is_null());
    // unapproved: v2 is registered, never approved (matched by URI alone).
    let b = post_report(&app, &report("b", "production", &uri2, None, &at(0))).await?;
    assert_eq!(b["outcome"], "unapproved", "{b}");
    assert_eq!(b["version"], 2);
    let b_incident = b["incident"].as_str().context("an incident")?.to_owned();
    // unregistered: nothing matches.
    let c = post_report(
        &app,
        &report("c", "production", "s3://elsewhere/model.bin", None, &at(0)),
    )
    .await?;
    assert_eq!(c["outcome"], "unregistered", "{c}");
    assert!(c["model"].is_null() && c["incident"].is_string());
    assert_eq!(shadow_incidents(&app).await?.len(), 2);

    // Re-reports: the same one writes nothing; a newer one keeps the one incident.
    let size = app.audit_size().await?;
    let again = post_report(&app, &report("b", "production", &uri2, None, &at(0))).await?;
    assert_eq!(again, b);
    let later = post_report(&app, &report("b", "production", &uri2, None, &at(5))).await?;
    assert_eq!(later["incident"], b["incident"]);
    let seen = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["observed_at"].as_str().unwrap_or_default()).ok()
    };
    assert_eq!(
        seen(&later),
        chrono::DateTime::parse_from_rfc3339(&at(5)).ok()
    );
    assert_eq!(
        app.audit_size().await?,
        size,
        "a repeated finding is not audited again"
    );
    assert_eq!(shadow_incidents(&app).await?.len(), 2);
    // An older report than the record changes nothing.
    let older = post_report(
        &app,
        &report("b", "production", "s3://x/other", None, &at(-5)),
    )
    .await?;
    assert_eq!(older["artifact"]["uri"], uri2.as_str());

    // stale: v2 goes to production, so endpoint a still serving v1 is superseded.
    app.to_production("credit-risk", 2).await?;
    let a = post_report(
        &app,
        &report("a", "production", &uri1, Some(&sha1), &at(10)),
    )
    .await?;
    assert_eq!(a["outcome"], "stale", "{a}");
    assert!(
        a["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("Steward records version 2"),
        "{a}"
    );
    // ... and b, serving v2, became governed: its finding closes.
    let b = post_report(&app, &report("b", "production", &uri2, None, &at(10))).await?;
    assert_eq!(b["outcome"], "governed", "{b}");
    assert!(b["incident"].is_null());
    let incidents = shadow_incidents(&app).await?;
    let closed = incidents
        .iter()
        .find(|i| i["id"] == b_incident.as_str())
        .context("b's")?;
    assert_eq!(closed["status"], "resolved", "{closed}");
    assert_eq!(incidents.len(), 3, "a's stale finding is the third");

    // The endpoint stops serving: its finding closes.
    let mut stop = report("c", "production", "s3://elsewhere/model.bin", None, &at(15));
    stop["stopped"] = json!(true);
    let c2 = post_report(&app, &stop).await?;
    assert!(
        c2["stopped_at"].is_string() && c2["incident"].is_null(),
        "{c2}"
    );
    let c_incident = shadow_incidents(&app)
        .await?
        .into_iter()
        .find(|i| i["id"] == c["incident"])
        .context("c's")?;
    assert_eq!(c_incident["status"], "resolved");

    // GET /v1/serving lists every endpoint with its outcome.
    let list = app.get("aud", "/v1/serving").await?.expect(200)?;
    let outcomes: Vec<(String, String)> = list.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|r| {
            (
                r["endpoint"].as_str().unwrap_or_default().to_owned(),
                r["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("a".to_owned(), "stale".to_owned()),
            ("b".to_owned(), "governed".to_owned()),
            ("c".to_owned(), "unregistered".to_owned()),
        ]
    );
    let stale = app
        .get("aud", "/v1/serving?outcome=stale")
        .await?
        .expect(200)?;
    assert_eq!(stale.body["items"].as_array().map(Vec::len), Some(1));
    app.get("aud", "/v1/serving?outcome=sideways")
        .await?
        .expect(422)?;

    // The console's monitoring page shows what serves and what is not governed.
    let mut b = Browser::new(&app)?;
    b.sign_in("ops").await?;
    let page = b.get("/console/incidents").await?;
    assert_eq!(page.status, 200);
    for part in [
        "What serves",
        "2 endpoints reported",
        "1 not governed",
        "stale",
        "superseded",
    ] {
        assert!(page.html.contains(part), "{part}: {}", page.html);
    }
    Ok(())
}

#[tokio::test]
async fn bad_serving_reports_are_refused_naming_the_field_and_write_nothing() -> Result<()> {
    let app = spawn_app().await?;
    let size = app.audit_size().await.unwrap_or(0);
    let good = report("a", "production", "s3://m/model.tar.gz", None, &at(0));

    let mut unknown = good.clone();
    unknown["colour"] = json!("blue");
    let mut no_endpoint = good.clone();
    no_endpoint.as_object_mut().unwrap().remove("endpoint");
    let mut version_alone = good.clone();
    version_alone["version"] = json!(3);
    let mut bad_sha = good.clone();
    bad_sha["artifact"]["sha256"] = json!("nope");
    let mut future = good.clone();
    future["observed_at"] = json!((chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339());
    let mut bad_env = good.clone();
    bad_env["environment"] = json!("qa");
    for (body, field) in [
        (unknown, "colour"),
        (no_endpoint, "endpoint"),
        (version_alone, "version"),
        (bad_sha, "artifact.sha256"),
        (future, "observed_at"),
        (bad_env, "environment"),
    ] {
        let r = app.post("ops", "/v1/serving", &body).await?.expect(422)?;
        assert!(
            r.fields().contains(&field.to_owned()),
            "{field}: {}",
            r.body
        );
    }
    // Only operators (and admins) report.
    app.post("dev", "/v1/serving", &good).await?.expect(403)?;
    let list = app.get("aud", "/v1/serving").await?.expect(200)?;
    assert_eq!(list.body["items"], json!([]));
    assert_eq!(app.audit_size().await.unwrap_or(0), size);
    assert!(shadow_incidents(&app).await?.is_empty());
    Ok(())
}
