//! Serious incidents (EU AI Act Art. 73) over HTTP: classification starts the reporting clock
//! and freezes the version involved; the report stops the reminder.

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use steward_core::types::RiskTier;

use crate::common::*;

/// `credit-risk` v1 in production with a drift incident on it; the incident id.
async fn incident(app: &App) -> Result<String> {
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_production("credit-risk", 1).await?;
    let r = app
        .post(
            "ops",
            "/v1/signals",
            &json!({"model": "credit-risk", "version": 1, "kind": "drift", "metric": "psi", "value": 0.35}),
        )
        .await?
        .expect(200)?;
    Ok(r.body["incident"]["id"].as_str().unwrap().to_owned())
}

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("an RFC 3339 time"))
        .expect("an RFC 3339 time")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn classifying_an_incident_as_serious_sets_its_report_due_and_freezes_the_version(
) -> Result<()> {
    let app = spawn_app().await?;
    let id = incident(&app).await?;
    let path = format!("/v1/incidents/{id}/classification");
    let body = json!({"severity": "serious", "category": "death"});

    let r = app.post("ops", &path, &body).await?.expect(403)?;
    assert_eq!(r.code(), "forbidden");
    let r = app
        .post(
            "comp",
            &path,
            &json!({"severity": "mild", "category": "x", "extra": 1}),
        )
        .await?
        .expect(422)?;
    let mut named: Vec<String> = r.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    named.sort();
    assert_eq!(named, ["category", "extra", "severity"], "{}", r.body);
    app.post("comp", "/v1/incidents/inc-nope/classification", &body)
        .await?
        .expect(404)?;

    let r = app.post("comp", &path, &body).await?.expect(200)?;
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["classification"]["category"], "death");
    assert_eq!(r.body["classification"]["classified_by"], "comp");
    let classified_at = time(&r.body["classification"]["classified_at"]);
    assert_eq!(
        time(&r.body["report_due"]),
        classified_at + Duration::days(10)
    );
    app.post("comp", &path, &body).await?.expect(409)?;

    let listed = app
        .get("ops", "/v1/incidents?model=credit-risk")
        .await?
        .expect(200)?;
    assert_eq!(listed.body["items"][0]["report_due"], r.body["report_due"]);

    let r = app
        .post(
            "dev",
            "/v1/models/credit-risk/versions/1/retirement",
            &json!({"reason": "superseded"}),
        )
        .await?
        .expect(409)?;
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("serious incident {id} is under investigation")),
        "{message}"
    );
    let events = app.audit_events(Some("credit-risk")).await?;
    assert!(events
        .iter()
        .any(|e| e["action"] == "incident.classified" && e["actor"] == "comp"));
    Ok(())
}

#[tokio::test]
async fn a_recorded_report_is_returned_and_stops_the_reminder() -> Result<()> {
    let app = spawn_app().await?;
    let id = incident(&app).await?;
    app.post(
        "comp",
        &format!("/v1/incidents/{id}/classification"),
        &json!({"severity": "serious", "category": "other"}),
    )
    .await?
    .expect(200)?;
    let report = format!("/v1/incidents/{id}/report");
    app.post("ops", &report, &json!({"reference": "MSA-1"}))
        .await?
        .expect(403)?;
    app.post("comp", &report, &json!({"ref": "MSA-1"}))
        .await?
        .expect(422)?;
    let r = app
        .post(
            "comp",
            &report,
            &json!({"reference": "MSA-2026-0042", "submitted_at": "2026-01-02T03:04:05Z"}),
        )
        .await?
        .expect(200)?;
    assert_eq!(r.body["report"]["reference"], "MSA-2026-0042");
    assert_eq!(r.body["report"]["recorded_by"], "comp");
    app.post("comp", &report, &json!({"reference": "again"}))
        .await?
        .expect(409)?;
    // Fourteen days on, the report would be due tomorrow: none is sent, a report is recorded.
    let later = app.gov.now() + Duration::days(14);
    assert!(app.gov.serious_incident_reminders(later).await?.is_empty());
    let events = app.audit_events(Some("credit-risk")).await?;
    assert!(events
        .iter()
        .any(|e| e["action"] == "incident.report_submitted"));
    Ok(())
}

#[tokio::test]
async fn the_reminder_goes_out_once_when_the_report_falls_due() -> Result<()> {
    let app = spawn_app().await?;
    let id = incident(&app).await?;
    app.post(
        "comp",
        &format!("/v1/incidents/{id}/classification"),
        &json!({"severity": "serious", "category": "other"}),
    )
    .await?
    .expect(200)?;
    let now = app.gov.now();
    assert!(app
        .gov
        .serious_incident_reminders(now + Duration::days(12))
        .await?
        .is_empty());
    let sent = app
        .gov
        .serious_incident_reminders(now + Duration::days(14))
        .await?;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].id, id);
    assert!(app
        .gov
        .serious_incident_reminders(now + Duration::days(20))
        .await?
        .is_empty());
    let listed = app
        .get("ops", "/v1/incidents?model=credit-risk")
        .await?
        .expect(200)?;
    assert!(listed.body["items"][0]["reminder_sent_at"].is_string());
    Ok(())
}

#[tokio::test]
async fn a_serious_incident_closes_after_its_report_and_its_version_is_no_longer_frozen(
) -> Result<()> {
    let app = spawn_app().await?;
    let id = incident(&app).await?;
    app.post(
        "comp",
        &format!("/v1/incidents/{id}/classification"),
        &json!({"severity": "serious", "category": "other"}),
    )
    .await?
    .expect(200)?;
    let close = format!("/v1/incidents/{id}/close");
    let body = json!({"resolution": "feed outage fixed upstream; no harm found"});
    let r = app.post("comp", &close, &body).await?.expect(409)?;
    assert!(
        r.body.to_string().contains("no report recorded"),
        "{}",
        r.body
    );
    app.post(
        "comp",
        &format!("/v1/incidents/{id}/report"),
        &json!({"reference": "MSA-2026-0142"}),
    )
    .await?
    .expect(200)?;
    app.post("ops", &close, &body).await?.expect(403)?;
    let r = app.post("comp", &close, &body).await?.expect(200)?;
    assert_eq!(r.body["status"], "resolved", "{}", r.body);
    assert_eq!(r.body["resolution"]["closed_by"], "comp");
    app.post("comp", &close, &body).await?.expect(409)?;
    let closed: Vec<_> = app
        .audit_events(Some("credit-risk"))
        .await?
        .into_iter()
        .filter(|e| e["action"] == "incident.closed")
        .collect();
    assert_eq!(closed.len(), 1);
    // Unfrozen: the version no longer lists the incident.
    let v = app
        .get("dev", "/v1/models/credit-risk/versions/1")
        .await?
        .expect(200)?;
    assert!(
        v.body["serious_incidents"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{}",
        v.body
    );
    Ok(())
}
