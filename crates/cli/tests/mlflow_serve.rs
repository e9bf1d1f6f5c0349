//! The real MLflow client (PyPI `mlflow-skinny`, installed by scripts/emulators, which exports
//! `STEWARD_TEST_MLFLOW_PYTHON`) against the real `steward serve` binary on the embedded
//! backend, authenticated as MLflow sends it (`MLFLOW_TRACKING_TOKEN`). The models are
//! `file://` directories; reviews are decided with the `steward` CLI between the client's
//! phases (crates/api/tests/api/mlflow_client.py).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{add_principals, steward, Server};
use serde_json::{json, Value};
use sha2::Digest;
use steward_core::types::RiskTier;

const MODEL: &str = "credit-scorer";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../api/tests/api/mlflow_client.py"
);

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// `file://` model directories: one with `steward.json` beside the model, one without.
fn models(dir: &Path) -> (String, String) {
    let with = dir.join("credit");
    let without = dir.join("bare");
    std::fs::create_dir_all(&with).unwrap();
    std::fs::create_dir_all(&without).unwrap();
    let mlmodel = "artifact_path: model\nflavors: {}\nmodel_uuid: steward-test-model\n";
    let weights = b"weights of the credit scorer, version one";
    for d in [&with, &without] {
        std::fs::write(d.join("MLmodel"), mlmodel).unwrap();
    }
    std::fs::write(with.join("model.pkl"), weights).unwrap();
    let mut manifest = steward_testkit::manifest_at(RiskTier::Low);
    manifest["artifact"] = json!({
        "uri": format!("file://{}", with.join("model.pkl").display()),
        "sha256": hex::encode(sha2::Sha256::digest(weights)),
        "size_bytes": weights.len(),
    });
    std::fs::write(
        with.join("steward.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let uri = |p: &Path| format!("file://{}", p.display());
    (uri(&with), uri(&without))
}

fn client_phase(
    server: &Server,
    tokens: &BTreeMap<String, String>,
    src: &(String, String),
    phase: &str,
) {
    let python = std::env::var("STEWARD_TEST_MLFLOW_PYTHON").expect(
        "STEWARD_TEST_MLFLOW_PYTHON is not set: run through `bash scripts/emulators run -- ...`, \
         which installs mlflow-skinny",
    );
    let out = Command::new(python)
        .arg(SCRIPT)
        .arg(phase)
        .env_remove("MLFLOW_TRACKING_AUTH")
        .env_remove("MLFLOW_TRACKING_AWS_SIGV4")
        .env("MLFLOW_TRACKING_URI", &server.url)
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        .env("TOKEN_DEV", &tokens["dev"])
        .env("TOKEN_REL", &tokens["release"])
        .env("MODEL", MODEL)
        .env("PREFIX", "paging")
        .env("SOURCE_WITH", &src.0)
        .env("SOURCE_WITHOUT", &src.1)
        .env("LOCAL_FILES", "1")
        .env(
            "MANIFEST_JSON",
            serde_json::to_string(&steward_testkit::manifest_at(RiskTier::Low)).unwrap(),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the MLflow client's {phase} phase failed ({}):\n{}\n{}\nserver stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
}

/// Requests the promotion as `dev` and approves every review with the CLI, each by a
/// reviewer of its stage.
fn promote_and_approve(server: &Server, tokens: &BTreeMap<String, String>, target: &str) {
    let out = server
        .cli(&tokens["dev"])
        .args(["promote", MODEL, "1", "--target", target, "-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let promotion = json_of(&out.stdout);
    for review in promotion["reviews"].as_array().unwrap() {
        let who = match review["stage"].as_str().unwrap() {
            "technical" => "tech",
            "business" => "biz",
            "compliance" => "comp",
            // The release manager who sets the champion alias does not review it too.
            "deployment" => "release2",
            other => panic!("unexpected review stage {other}"),
        };
        server
            .cli(&tokens[who])
            .args([
                "reviews",
                "decide",
                review["id"].as_str().unwrap(),
                "--approve",
            ])
            .assert()
            .success();
    }
}

#[test]
fn the_mlflow_client_against_steward_serve_registers_deploys_only_after_approval_and_is_audited_by_name(
) {
    let tmp = tempfile::tempdir().unwrap();
    let principals = tmp.path().join("principals.toml");
    let mut tokens = add_principals(&principals);
    let out = steward()
        .args([
            "principals",
            "add",
            "release2",
            "--role",
            "release-manager",
            "--file",
        ])
        .arg(&principals)
        .output()
        .unwrap();
    assert!(out.status.success());
    tokens.insert(
        "release2".into(),
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    );
    let server = Server::start(
        &tmp.path().join("data"),
        &["--principals", principals.to_str().unwrap()],
    );
    let src = models(tmp.path());

    client_phase(&server, &tokens, &src, "registry");
    promote_and_approve(&server, &tokens, "staging");
    client_phase(&server, &tokens, &src, "staging");

    let evaluation = tmp.path().join("evaluation.json");
    std::fs::write(
        &evaluation,
        serde_json::to_vec(&steward_testkit::staging_evaluation(1)).unwrap(),
    )
    .unwrap();
    server
        .cli(&tokens["dev"])
        .args(["evaluate", MODEL, "1", "--file"])
        .arg(&evaluation)
        .assert()
        .success();
    promote_and_approve(&server, &tokens, "production");
    client_phase(&server, &tokens, &src, "production");

    // Steward's own view agrees, and its audit log names each MLflow caller.
    let out = server
        .cli(&tokens["audit"])
        .args(["audit", "events", "--model", MODEL, "-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = json_of(&out.stdout);
    let events = body["items"]
        .as_array()
        .or(body.as_array())
        .unwrap()
        .clone();
    let actors = |action: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| e["actor"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(actors("mlflow.model.created"), ["dev"]);
    assert_eq!(actors("version.registered"), ["dev", "dev"]);
    assert_eq!(actors("version.deployed"), ["dev", "release"]);
    assert!(actors("mlflow.alias.set").contains(&"dev".to_owned()));
    server.stop_gracefully();
}
