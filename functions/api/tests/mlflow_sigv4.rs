//! The MLflow client against Steward as it runs on AWS: the real client (PyPI `mlflow-skinny`
//! with `MLFLOW_TRACKING_AWS_SIGV4=true`, installed by scripts/emulators) signs each request
//! with SigV4; API Gateway, played on 127.0.0.1 by `steward_testkit::gateway`, checks the
//! signature and hands the request to the API function's request path (caller-ARN step →
//! router with the IAM authenticator) over DynamoDB Local, with the models' `steward.json`
//! read from `s3://` on moto. The callers are sessions of IAM roles, so the audit log names
//! each session.
//!
//! Needs the emulators (`bash scripts/emulators run -- cargo test -p steward-fn-api --test
//! mlflow_sigv4`); fails without them.

mod common;

use std::process::Command;
use std::sync::Arc;

use serde_json::{json, Value};
use sha2::Digest;
use steward_api::{router_with_sessions, AppState, IamCallerArn};
use steward_core::ports::AuditLog;
use steward_core::types::{Environment, PrincipalId, RiskTier, Role};
use steward_fn_api::with_caller_arn;
use steward_testkit::gateway::{self, AccessKey};
use steward_testkit::{approve, dev, manifest_at, reviewer, staging_evaluation, vn};

use common::Lambda;

const REGION: &str = "eu-west-1";
const MODEL: &str = "credit-scorer";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crates/api/tests/api/mlflow_client.py"
);
/// The data scientists' role and Dana's session of it (MLflow's `dev`).
const DEV_ROLE: &str = "arn:aws:iam::123456789012:role/ml-dev";
const DANA: &str = "arn:aws:sts::123456789012:assumed-role/ml-dev/dana";
/// The release managers' role and Alice's session of it (MLflow's `rel`).
const RELEASE_ROLE: &str = "arn:aws:iam::123456789012:role/ml-release";
const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/ml-release/alice";

fn keys() -> Vec<AccessKey> {
    vec![
        AccessKey {
            id: "ASIADANA000000000001".into(),
            secret: "ZGFuYS1zZWNyZXQtb2YtYS1kYXRhLXNjaWVudGlzdA".into(),
            token: Some("IQoJb3JpZ2luX2VjEPT//dana-session".into()),
            arn: DANA.into(),
        },
        AccessKey {
            id: "ASIAALICE00000000001".into(),
            secret: "YWxpY2Utc2VjcmV0LW9mLWEtcmVsZWFzZS1tYW5hZ2Vy".into(),
            token: Some("IQoJb3JpZ2luX2VjEPT//alice-session".into()),
            arn: ALICE.into(),
        },
    ]
}

/// `AWS_KEYS` for the client script: who is whom.
fn keys_for_client() -> String {
    let k = keys();
    let one = |k: &AccessKey| json!({"id": k.id, "secret": k.secret, "token": k.token});
    json!({"dev": one(&k[0]), "rel": one(&k[1])}).to_string()
}

/// A model on moto's S3 with `steward.json` beside it, and one without.
async fn models_on_s3(bucket: &str) -> (String, String) {
    let s3 = steward_testkit::emulators!().s3().await;
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let weights = b"weights of the credit scorer, version one".to_vec();
    let with = format!("s3://{bucket}/models/credit");
    let mut manifest = manifest_at(RiskTier::Low);
    manifest["artifact"] = json!({
        "uri": format!("{with}/model.pkl"),
        "sha256": hex::encode(sha2::Sha256::digest(&weights)),
        "size_bytes": weights.len(),
    });
    let mlmodel = b"artifact_path: model\nflavors: {}\n".to_vec();
    for (key, body) in [
        ("models/credit/MLmodel", mlmodel.clone()),
        ("models/credit/model.pkl", weights),
        (
            "models/credit/steward.json",
            serde_json::to_vec(&manifest).unwrap(),
        ),
        ("models/bare/MLmodel", mlmodel),
    ] {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
    (with, format!("s3://{bucket}/models/bare"))
}

/// How the client signs: Steward's MLflow request auth (clients/mlflow-sigv4), or MLflow's
/// own `MLFLOW_TRACKING_AWS_SIGV4=true`.
#[derive(Clone, Copy)]
enum Signing {
    Steward,
    Builtin,
}

/// Runs one phase of the client script through the gateway; panics with its output unless it
/// passes.
async fn client_phase(url: &str, with: &str, without: &str, phase: &str) {
    client_phase_signed(url, with, without, phase, Signing::Steward).await
}

async fn client_phase_signed(url: &str, with: &str, without: &str, phase: &str, how: Signing) {
    let python = std::env::var("STEWARD_TEST_MLFLOW_PYTHON").expect(
        "STEWARD_TEST_MLFLOW_PYTHON is not set: run through `bash scripts/emulators run -- ...`, \
         which installs mlflow-skinny",
    );
    let mut cmd = Command::new(python);
    cmd.arg(SCRIPT)
        .arg(phase)
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("MLFLOW_TRACKING_AUTH")
        .env_remove("MLFLOW_TRACKING_AWS_SIGV4")
        .env("MLFLOW_TRACKING_URI", url)
        // Only the keys the script sets: no profile, no instance metadata.
        .env("AWS_CONFIG_FILE", "/nonexistent/steward-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/steward-test/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_KEYS", keys_for_client())
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        .env("MODEL", MODEL)
        .env("PREFIX", "paging")
        .env("SOURCE_WITH", with)
        .env("SOURCE_WITHOUT", without)
        .env("LOCAL_FILES", "0")
        .env(
            "MANIFEST_JSON",
            serde_json::to_string(&manifest_at(RiskTier::Low)).unwrap(),
        );
    match how {
        Signing::Steward => cmd.env("MLFLOW_TRACKING_AUTH", "steward-sigv4"),
        Signing::Builtin => cmd.env("MLFLOW_TRACKING_AWS_SIGV4", "true"),
    };
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the MLflow client's {phase} phase failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mlflow_client_signing_with_sigv4_registers_on_dynamodb_and_sets_champion_only_after_the_reviews(
) {
    let bucket = steward_testkit::unique("mlflow-sigv4");
    let emulators = steward_testkit::emulators!();
    let lambda = Lambda::start_with(
        "mlflow-sigv4",
        "",
        Arc::new(IamCallerArn),
        &[
            ("STEWARD_ENDPOINT_URL", emulators.aws.as_str()),
            ("STEWARD_EVIDENCE_BUCKET", bucket.as_str()),
        ],
    )
    .await;
    let (with, without) = models_on_s3(&bucket).await;
    let gov = lambda.backend.gov.clone();
    // Roles are granted to the IAM roles; every session of them has them.
    for (arn, role) in [
        (DEV_ROLE, Role::Developer),
        (RELEASE_ROLE, Role::ReleaseManager),
    ] {
        gov.seed_principal(&PrincipalId::parse(arn).unwrap(), vec![role], "test")
            .await
            .unwrap();
    }
    let app = router_with_sessions(
        AppState {
            gov: gov.clone(),
            auth: Arc::new(IamCallerArn),
        },
        Arc::new(lambda.backend.sessions()),
    );
    let url = gateway::start(REGION, keys(), app, with_caller_arn).await;

    client_phase(&url, &with, &without, "registry").await;

    // Reviews are decided in Steward (in-process here; the HTTP path is tested elsewhere).
    let v1 = vn(1);
    let staging = gov
        .request_promotion(&dev(), MODEL, v1, Environment::Staging, None)
        .await
        .unwrap();
    for r in &staging.reviews {
        gov.decide(&reviewer(r.stage), &r.id, approve())
            .await
            .unwrap();
    }
    client_phase(&url, &with, &without, "staging").await;

    gov.add_evaluation(&dev(), MODEL, v1, staging_evaluation(1))
        .await
        .unwrap();
    let production = gov
        .request_promotion(&dev(), MODEL, v1, Environment::Production, None)
        .await
        .unwrap();
    for r in &production.reviews {
        gov.decide(&reviewer(r.stage), &r.id, approve())
            .await
            .unwrap();
    }
    client_phase(&url, &with, &without, "production").await;
    // MLflow's own signer passes the gateway except where the query has a space (searches).
    client_phase_signed(&url, &with, &without, "builtin_sigv4", Signing::Builtin).await;

    // The audit log names each session, authenticated by IAM.
    let events: Vec<Value> = lambda
        .backend
        .store
        .events(None, 1, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let by = |action: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["action"] == action && e["name"] == MODEL)
            .collect()
    };
    assert!(
        by("mlflow.model.created")
            .iter()
            .any(|e| e["actor"] == DANA),
        "{events:?}"
    );
    let registered = by("version.registered");
    assert_eq!(registered.len(), 2, "{registered:?}");
    assert_eq!(registered[0]["actor"], DANA);
    assert_eq!(registered[0]["details"]["authentication"], "iam");
    assert_eq!(registered[0]["details"]["mlflow"]["source"], with.as_str());
    let deployed = by("version.deployed");
    assert_eq!(deployed.len(), 2, "{deployed:?}");
    assert_eq!(deployed[0]["actor"], DANA);
    assert_eq!(deployed[0]["details"]["environment"], "staging");
    assert_eq!(deployed[1]["actor"], ALICE);
    assert_eq!(deployed[1]["details"]["environment"], "production");
}
