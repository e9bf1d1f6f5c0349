//! The MLflow Model Registry API driven by the real MLflow client (PyPI `mlflow-skinny`,
//! pinned in scripts/emulators, which installs it into its own venv and exports
//! `STEWARD_TEST_MLFLOW_PYTHON`). The client runs `mlflow_client.py` phase by phase against
//! this suite's server; between phases the test approves reviews through Steward's own API.
//! On the embedded backend the models are `file://` directories; on the AWS backend they are
//! `s3://` prefixes on moto, which Steward reads `steward.json` from.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use sha2::Digest;
use steward_core::types::RiskTier;

use crate::common::*;

const MODEL: &str = "credit-scorer";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/mlflow_client.py");

/// Where the client finds the model: a directory (or S3 prefix) holding `steward.json`, one
/// without it, and whether the client can download them (local files).
struct Sources {
    with: String,
    without: String,
    local: bool,
    _dir: tempfile::TempDir,
}

fn model_files() -> (Vec<u8>, Vec<u8>) {
    let mlmodel = b"artifact_path: model\nflavors: {}\nmodel_uuid: steward-test-model\n".to_vec();
    let weights = b"weights of the credit scorer, version one".to_vec();
    (mlmodel, weights)
}

/// The registration manifest of a model whose artifact is `weights` at `uri`.
fn manifest_for_artifact(uri: &str, weights: &[u8]) -> Value {
    let mut m = manifest(RiskTier::Low);
    m["artifact"] = json!({
        "uri": uri,
        "sha256": hex::encode(sha2::Sha256::digest(weights)),
        "size_bytes": weights.len(),
    });
    m
}

async fn sources(app: &App) -> Result<Sources> {
    let dir = tempfile::tempdir()?;
    let (mlmodel, weights) = model_files();
    if app.backend == "aws" {
        let s3 = steward_testkit::Emulators::required(
            "bash scripts/emulators run -- env STEWARD_TEST_BACKEND=aws cargo test -p steward-api --test api mlflow",
        )
        .s3()
        .await;
        let bucket = format!(
            "mlflow-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        s3.create_bucket().bucket(&bucket).send().await?;
        let with = format!("s3://{bucket}/models/credit");
        let manifest = manifest_for_artifact(&format!("{with}/model.pkl"), &weights);
        for (key, body) in [
            ("models/credit/MLmodel", mlmodel.clone()),
            ("models/credit/model.pkl", weights.clone()),
            ("models/credit/steward.json", serde_json::to_vec(&manifest)?),
            ("models/bare/MLmodel", mlmodel),
        ] {
            s3.put_object()
                .bucket(&bucket)
                .key(key)
                .body(body.into())
                .send()
                .await?;
        }
        return Ok(Sources {
            with,
            without: format!("s3://{bucket}/models/bare"),
            local: false,
            _dir: dir,
        });
    }
    let with = dir.path().join("credit");
    let without = dir.path().join("bare");
    std::fs::create_dir_all(&with)?;
    std::fs::create_dir_all(&without)?;
    std::fs::write(with.join("MLmodel"), &mlmodel)?;
    std::fs::write(with.join("model.pkl"), &weights)?;
    std::fs::write(without.join("MLmodel"), &mlmodel)?;
    let uri = |p: &Path| format!("file://{}", p.display());
    let manifest = manifest_for_artifact(&uri(&with.join("model.pkl")), &weights);
    std::fs::write(with.join("steward.json"), serde_json::to_vec(&manifest)?)?;
    Ok(Sources {
        with: uri(&with),
        without: uri(&without),
        local: true,
        _dir: dir,
    })
}

/// Runs one phase of the client script; fails with its output unless it passes.
async fn client_phase(app: &App, src: &Sources, phase: &str) -> Result<()> {
    let python = std::env::var("STEWARD_TEST_MLFLOW_PYTHON").context(
        "STEWARD_TEST_MLFLOW_PYTHON is not set: run the suite through \
         `bash scripts/emulators run -- bash scripts/test`, which installs mlflow-skinny",
    )?;
    let mut cmd = Command::new(python);
    cmd.arg(SCRIPT)
        .arg(phase)
        .env("MLFLOW_TRACKING_URI", &app.base)
        // A failure must surface at once, not after the client's retries of a 5xx.
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        .env("TOKEN_DEV", token("dev"))
        .env("TOKEN_REL", token("rel"))
        .env("MODEL", MODEL)
        .env("PREFIX", "paging")
        .env("SOURCE_WITH", &src.with)
        .env("SOURCE_WITHOUT", &src.without)
        .env("LOCAL_FILES", if src.local { "1" } else { "0" })
        .env(
            "MANIFEST_JSON",
            serde_json::to_string(&manifest(RiskTier::Low))?,
        );
    // The server runs on this test's runtime: wait for the client off it.
    let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
    if !out.status.success() {
        bail!(
            "the MLflow client's {phase} phase failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn actions_by<'a>(events: &'a [Value], action: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["action"] == action).collect()
}

#[tokio::test]
async fn the_mlflow_client_registers_with_a_manifest_and_cannot_set_champion_until_the_reviews_approve(
) -> Result<()> {
    let app = spawn_app().await?;
    let src = sources(&app).await?;
    client_phase(&app, &src, "registry").await?;

    // The staging review approved through Steward; the client deploys by stage.
    let p = app.promote_as("dev", MODEL, 1, "staging").await?;
    app.decide("tech", review_id(&p, "technical")?, "approve")
        .await?
        .expect(200)?;
    client_phase(&app, &src, "staging").await?;

    // The production reviews approved; the release manager sets the champion alias.
    app.post(
        "dev",
        &format!("/v1/models/{MODEL}/versions/1/evaluations"),
        &staging_evaluation(),
    )
    .await?
    .expect(201)?;
    let p = app.promote_as("dev", MODEL, 1, "production").await?;
    let p = app.approve_all(&p).await?;
    ensure!(p["status"] == "approved", "production promotion: {p}");
    client_phase(&app, &src, "production").await?;

    // Steward's own API agrees with what the client saw.
    ensure!(app.production_version(MODEL, None).await? == json!(1));

    // Every MLflow-originated action is in the audit log with the caller's identity.
    let events = app.audit_events(Some(MODEL)).await?;
    let one = |action: &str, actor: &str| -> Result<()> {
        let found = actions_by(&events, action);
        ensure!(
            found.iter().any(|e| e["actor"] == actor),
            "no {action} by {actor} in {found:?}"
        );
        Ok(())
    };
    one("mlflow.model.created", "dev")?;
    one("mlflow.model.updated", "dev")?;
    one("mlflow.model.tag_set", "dev")?;
    one("mlflow.model.tag_deleted", "dev")?;
    one("mlflow.alias.set", "dev")?;
    one("mlflow.version.updated", "dev")?;
    one("mlflow.version.tag_set", "dev")?;
    one("version.retired", "dev")?;
    let registered = actions_by(&events, "version.registered");
    ensure!(registered.len() == 2, "two registrations: {registered:?}");
    ensure!(
        registered[0]["details"]["mlflow"]["source"] == src.with.as_str()
            && registered[0]["details"]["authentication"] == "token",
        "the registration names MLflow's source and how the caller signed in: {:?}",
        registered[0]
    );
    let deployed = actions_by(&events, "version.deployed");
    ensure!(
        deployed.len() == 2
            && deployed[0]["actor"] == "dev"
            && deployed[0]["details"]["environment"] == "staging"
            && deployed[1]["actor"] == "rel"
            && deployed[1]["details"]["environment"] == "production",
        "the stage transition and the champion alias are deployments by their callers: {deployed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_model_registered_through_steward_shows_in_mlflow_with_its_production_alias() -> Result<()>
{
    let app = spawn_app().await?;
    let v = app.register("fraud", RiskTier::Low).await?;
    app.to_production("fraud", v).await?;
    let r = app
        .get(
            "aud",
            "/api/2.0/mlflow/registered-models/alias?name=fraud&alias=champion",
        )
        .await?
        .expect(200)?;
    let mv = &r.body["model_version"];
    ensure!(
        mv["version"] == "1" && mv["current_stage"] == "Production" && mv["status"] == "READY",
        "{mv}"
    );
    let r = app
        .get("aud", "/api/2.0/mlflow/registered-models/get?name=fraud")
        .await?
        .expect(200)?;
    let aliases = &r.body["registered_model"]["aliases"];
    ensure!(
        aliases
            == &json!([{"alias": "champion", "version": "1"}, {"alias": "production", "version": "1"}]),
        "{aliases}"
    );
    Ok(())
}

#[tokio::test]
async fn mlflow_errors_are_mlflow_shaped_and_refusals_are_never_5xx() -> Result<()> {
    let app = spawn_app().await?;
    let r = app
        .get("", "/api/2.0/mlflow/registered-models/get?name=x")
        .await?;
    ensure!(
        r.status == 401 && r.body["error_code"] == "UNAUTHENTICATED",
        "{} {}",
        r.status,
        r.body
    );
    let r = app
        .post(
            "dev",
            "/api/2.0/mlflow/registered-models/create",
            &json!({}),
        )
        .await?;
    ensure!(
        r.status == 400
            && r.body["error_code"] == "INVALID_PARAMETER_VALUE"
            && r.body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("name"),
        "{}",
        r.body
    );
    let r = app
        .get("dev", "/api/2.0/mlflow/experiments/get?experiment_id=0")
        .await?;
    ensure!(
        r.status == 404 && r.body["error_code"] == "ENDPOINT_NOT_FOUND",
        "{}",
        r.body
    );
    // A viewer without the developer role: PERMISSION_DENIED, and nothing written.
    let before = app.audit_size().await?;
    let r = app
        .post(
            "aud",
            "/api/2.0/mlflow/registered-models/create",
            &json!({"name": "quiet"}),
        )
        .await?;
    ensure!(
        r.status == 403 && r.body["error_code"] == "PERMISSION_DENIED",
        "{}",
        r.body
    );
    ensure!(
        app.audit_size().await? == before,
        "a refusal writes nothing"
    );
    Ok(())
}
