//! `GET .../evidence-pack` on both backends: the signed zip of a high-risk version in
//! production verifies offline with the key `GET /v1/audit/key` serves (Ed25519 embedded, the
//! KMS P-256 key on AWS); only auditors, compliance reviewers and admins get one; on AWS the
//! pack is kept in the evidence bucket under Object Lock COMPLIANCE for the retention period.

use anyhow::{Context, Result};
use steward_core::audit::PublicKey;
use steward_core::pack::{from_zip, verify_pack, Document, DOCUMENT_JSON};
use steward_core::types::RiskTier;

use crate::common::*;

const PACK: &str = "/v1/models/credit-risk/versions/1/evidence-pack";

async fn get_pack(app: &App, who: &str, path: &str) -> Result<reqwest::Response> {
    Ok(app
        .client
        .get(app.url(path))
        .bearer_auth(token(who))
        .send()
        .await?)
}

async fn audit_key(app: &App) -> Result<PublicKey> {
    let key = app.get("dev", "/v1/audit/key").await?.expect(200)?;
    let hex_key = key.body["public_key"].as_str().context("public_key")?;
    let public = PublicKey::from_bytes(&hex::decode(hex_key)?)?;
    assert_eq!(key.body["key_id"], public.key_id());
    assert_eq!(key.body["algorithm"], public.algorithm());
    Ok(public)
}

#[tokio::test]
async fn a_production_versions_pack_verifies_offline_with_the_served_audit_key() -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::High).await?;
    app.to_production("credit-risk", 1).await?;

    let r = get_pack(&app, "aud", PACK).await?;
    assert_eq!(r.status(), 200);
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("content-type").as_deref(), Some("application/zip"));
    assert_eq!(
        header("content-disposition").as_deref(),
        Some("attachment; filename=\"credit-risk-v1-evidence.zip\"")
    );
    let sha = header("steward-pack-sha256").context("the pack's hash")?;
    let retain_until = header("steward-retain-until").context("the retention date")?;
    let location = header("steward-pack-location").context("where the pack is kept")?;
    let zip = r.bytes().await?.to_vec();
    assert_eq!(sha, steward_core::types::Sha256::digest(&zip).to_hex());

    let key = audit_key(&app).await?;
    let expected_algorithm = if app.backend == "aws" {
        "ecdsa-p256-sha256"
    } else {
        "ed25519"
    };
    assert_eq!(key.algorithm(), expected_algorithm);
    let pack = from_zip(&zip)?;
    let report = verify_pack(&pack, &key).map_err(|e| anyhow::anyhow!("{e}"))?;
    let document: Document = serde_json::from_slice(&pack.files[DOCUMENT_JSON])?;
    assert_eq!(report.events, document.lifecycle.len());
    // Every audit event of the version is in the pack, in log order.
    let logged: Vec<u64> = app
        .audit_events(Some("credit-risk"))
        .await?
        .iter()
        .filter(|e| e["version"] == 1)
        .map(|e| e["seq"].as_u64().unwrap_or(0))
        .collect();
    let cited: Vec<u64> = document.lifecycle.iter().map(|e| e.seq).collect();
    assert_eq!(cited, logged);
    assert_eq!(document.generated_by, "aud");
    assert_eq!(document.retention.years, 10);
    assert_eq!(document.retention.retain_until, retain_until);

    if app.backend == "aws" {
        // Object Lock COMPLIANCE on the kept pack, until the retention date.
        let emulators = steward_testkit::Emulators::required(
            "env STEWARD_TEST_BACKEND=aws cargo test -p steward-api --test api",
        );
        let (bucket, object) = location
            .strip_prefix("s3://")
            .and_then(|l| l.split_once('/'))
            .context("an s3:// location")?;
        let head = emulators
            .s3()
            .await
            .head_object()
            .bucket(bucket)
            .key(object)
            .send()
            .await?;
        assert_eq!(
            head.object_lock_mode(),
            Some(&aws_sdk_s3::types::ObjectLockMode::Compliance)
        );
        let until = head
            .object_lock_retain_until_date()
            .context("a retain-until date")?;
        let expected = chrono::DateTime::parse_from_rfc3339(&retain_until)?.timestamp();
        assert!(
            (until.secs() - expected).abs() <= 1,
            "{until} vs {retain_until}"
        );
        assert_eq!(head.content_length(), Some(zip.len() as i64));
    } else {
        assert_eq!(location, format!("evidence-pack/{sha}"));
    }
    Ok(())
}

#[tokio::test]
async fn only_auditors_compliance_reviewers_and_admins_take_a_pack() -> Result<()> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Medium).await?;
    for who in ["dev", "tech", "rel", "ops", "ci"] {
        let r = get_pack(&app, who, PACK).await?;
        assert_eq!(r.status(), 403, "{who}");
    }
    for who in ["aud", "comp", "admin"] {
        let r = get_pack(&app, who, PACK).await?;
        assert_eq!(r.status(), 200, "{who}");
    }
    let r = get_pack(
        &app,
        "aud",
        "/v1/models/credit-risk/versions/2/evidence-pack",
    )
    .await?;
    assert_eq!(r.status(), 404);
    let r = get_pack(
        &app,
        "aud",
        "/v1/models/credit-risk/versions/x/evidence-pack",
    )
    .await?;
    assert_eq!(r.status(), 400);
    let r = app.client.get(app.url(PACK)).send().await?;
    assert_eq!(r.status(), 401);
    Ok(())
}
