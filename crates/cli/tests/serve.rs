//! `steward serve` as a child process on a free port, driven by the client subcommands.

mod common;

use std::path::Path;

use common::{add_principals, steward, Server, MANIFEST};
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

fn write_manifest(dir: &Path, manifest: &Value) -> std::path::PathBuf {
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(manifest).unwrap()).unwrap();
    path
}

#[test]
fn a_model_is_registered_gated_promoted_reviewed_and_deployed_through_the_cli_with_a_verifiable_audit_log(
) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let principals = tmp.path().join("principals.toml");
    let tokens = add_principals(&principals);
    let server = Server::start(&data, &["--principals", principals.to_str().unwrap()]);
    let as_ = |who: &str| server.cli(&tokens[who]);
    let manifest = write_manifest(tmp.path(), &serde_json::from_str(MANIFEST).unwrap());

    // Register: a table by default, the API's JSON with --output json.
    as_("dev")
        .args(["register", "credit-risk", "--manifest"])
        .arg(&manifest)
        .assert()
        .success()
        .stdout(contains("version:").and(contains("development")));
    let out = as_("dev")
        .args(["versions", "get", "credit-risk", "1", "--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v = json_of(&out.stdout);
    assert_eq!(v["stage"], "development");
    assert_eq!(v["registered_by"], "dev");

    // The gate is closed before approval: exit 1 with the reason.
    as_("dev")
        .args(["gate", "credit-risk", "1", "--environment", "staging"])
        .assert()
        .code(1)
        .stdout(contains("NOT allowed").and(contains("not approved for staging")));

    // Promote, then the technical reviewer finds and approves the review.
    let out = as_("dev")
        .args([
            "promote",
            "credit-risk",
            "1",
            "--target",
            "staging",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let promotion = json_of(&out.stdout);
    assert_eq!(promotion["status"], "in_review");

    as_("tech")
        .args(["reviews", "list"])
        .assert()
        .success()
        .stdout(contains("credit-risk").and(contains("technical")));
    let out = as_("tech")
        .args(["reviews", "list", "-o", "json"])
        .output()
        .unwrap();
    let list = json_of(&out.stdout);
    let review = list["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list["items"][0]["promotion_id"], promotion["id"]);

    // The registrant may not decide it (no reviewer role: 403), and the error goes to stderr.
    as_("dev")
        .args(["reviews", "decide", &review, "--approve"])
        .assert()
        .code(1)
        .stderr(contains("403").and(contains("forbidden")));

    as_("tech")
        .args([
            "reviews",
            "decide",
            &review,
            "--approve",
            "--comment",
            "lineage checks out",
            "--condition",
            "watch psi weekly",
        ])
        .assert()
        .success()
        .stdout(contains("approved").and(contains("watch psi weekly")));
    as_("dev")
        .args(["promotions", "get", promotion["id"].as_str().unwrap()])
        .assert()
        .success()
        .stdout(contains("status:").and(contains("approved")));

    // Now the gate opens, and the deployment goes through.
    as_("dev")
        .args(["gate", "credit-risk", "1", "-e", "staging"])
        .assert()
        .success()
        .stdout(contains("allowed"));
    as_("dev")
        .args(["deploy", "credit-risk", "1", "--environment", "staging"])
        .assert()
        .success()
        .stdout(contains("staging"));
    as_("dev")
        .args(["models", "list", "--stage", "staging"])
        .assert()
        .success()
        .stdout(contains("credit-risk").and(contains("credit-ml")));

    // A monitoring job reports drift twice with one key: one incident.
    let drift = [
        "signal",
        "--model",
        "credit-risk",
        "--version",
        "1",
        "--kind",
        "drift",
        "--metric",
        "psi",
        "--value",
        "0.9",
        "--idempotency-key",
        "job-42",
        "-o",
        "json",
    ];
    let first = json_of(&as_("ops").args(drift).output().unwrap().stdout);
    let again = json_of(&as_("ops").args(drift).output().unwrap().stdout);
    assert!(first["incident"]["id"].is_string(), "{first}");
    assert_eq!(again["incident"]["id"], first["incident"]["id"]);
    let incidents = json_of(
        &as_("ops")
            .args(["incidents", "--model", "credit-risk", "-o", "json"])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(
        incidents["items"].as_array().unwrap().len(),
        1,
        "{incidents}"
    );

    // Audit: events and a proof through the API, then a full verification.
    as_("audit")
        .args(["audit", "events", "--model", "credit-risk"])
        .assert()
        .success()
        .stdout(contains("version.registered").and(contains("review.decided")));
    as_("audit")
        .args(["audit", "proof", "1"])
        .assert()
        .success()
        .stdout(contains("audit path"));
    as_("audit")
        .args(["audit", "verify"])
        .assert()
        .success()
        .stdout(contains("verified").and(contains("inclusion proofs")));
    // A developer may not read the audit log.
    as_("dev")
        .args(["audit", "checkpoint"])
        .assert()
        .code(1)
        .stderr(contains("403"));

    server.stop_gracefully();

    steward()
        .args(["audit", "verify", "--data"])
        .arg(&data)
        .assert()
        .success()
        .stdout(contains("verified").and(contains("offline")));
}

#[test]
fn an_api_refusal_prints_the_code_message_and_each_field_to_stderr_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let principals = tmp.path().join("principals.toml");
    let tokens = add_principals(&principals);
    let server = Server::start(&data, &["--principals", principals.to_str().unwrap()]);

    let mut manifest: Value = serde_json::from_str(MANIFEST).unwrap();
    manifest["card"].as_object_mut().unwrap().remove("rollback");
    let path = write_manifest(tmp.path(), &manifest);
    server
        .cli(&tokens["dev"])
        .args(["register", "credit-risk", "--manifest"])
        .arg(&path)
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            contains("422")
                .and(contains("validation_failed"))
                .and(contains("card.rollback: is required")),
        );

    // No token at all: 401, with a hint about STEWARD_TOKEN.
    steward()
        .env("STEWARD_SERVER", &server.url)
        .args(["models", "list"])
        .assert()
        .code(1)
        .stderr(contains("401").and(contains("STEWARD_TOKEN")));

    // A token that is not in the principals file.
    server
        .cli(&"0".repeat(64))
        .args(["models", "list"])
        .assert()
        .code(1)
        .stderr(contains("unauthenticated"));

    // Unknown version: 404.
    server
        .cli(&tokens["dev"])
        .args(["versions", "get", "credit-risk", "9"])
        .assert()
        .code(1)
        .stderr(contains("404"));

    // The pending retirements: none embedded (retirements take effect at once), and the
    // status is checked by the CLI before any request.
    server
        .cli(&tokens["comp"])
        .args(["retirements", "-o", "json"])
        .assert()
        .success()
        .stdout(contains("\"items\": []"));
    server
        .cli(&tokens["comp"])
        .args(["retirements", "--status", "retired"])
        .assert()
        .code(2)
        .stderr(contains("awaiting_confirmation"));

    // Confirming the retirement of an unknown version: 404 from the confirmation route.
    server
        .cli(&tokens["comp"])
        .args(["confirm-retirement", "credit-risk", "9", "--approve"])
        .assert()
        .code(1)
        .stderr(contains("404").and(contains("has no version 9")));
}

#[test]
fn usage_errors_exit_2_and_list_the_valid_values() {
    steward()
        .args(["gate", "credit-risk", "1", "--environment", "prod"])
        .assert()
        .code(2)
        .stderr(contains("staging").and(contains("production")));
    steward()
        .args(["reviews", "decide", "r-1"])
        .assert()
        .code(2);
    steward()
        .args(["confirm-retirement", "credit-risk", "1"])
        .assert()
        .code(2);
    steward().args(["signal", "--model", "m"]).assert().code(2);
    // There is no flag for the token: it comes from STEWARD_TOKEN only.
    steward()
        .args(["models", "list", "--token", "x"])
        .assert()
        .code(2);
}

#[test]
fn serve_refuses_an_invalid_policy_file_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[tiers.low]\nreviews = [\"business\"]\nreview_timeout = \"1h\"\nperiodic_review = \"1day\"\nauto_rollback = true\n",
    )
    .unwrap();
    steward()
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(tmp.path().join("data"))
        .arg("--policy")
        .arg(&policy)
        .assert()
        .code(1)
        .stderr(contains("tiers.low.reviews"));
}

#[test]
fn a_policy_file_decides_which_reviews_a_promotion_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("policy.toml");
    let tier = |reviews: &str| {
        format!("reviews = [{reviews}]\nreview_timeout = \"1h\"\nperiodic_review = \"30days\"\nauto_rollback = true\n")
    };
    std::fs::write(
        &policy,
        format!(
            "[tiers.low]\n{}[tiers.medium]\n{}[tiers.high]\n{}",
            tier("\"technical\""),
            tier("\"technical\", \"business\""),
            tier("\"technical\", \"compliance\""),
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let principals = tmp.path().join("principals.toml");
    let tokens = add_principals(&principals);
    let server = Server::start(
        &data,
        &[
            "--principals",
            principals.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    let dev = || server.cli(&tokens["dev"]);
    let manifest = write_manifest(tmp.path(), &serde_json::from_str(MANIFEST).unwrap());
    dev()
        .args(["register", "credit-risk", "--manifest"])
        .arg(&manifest)
        .assert()
        .success();
    let p = json_of(
        &dev()
            .args(["promote", "credit-risk", "1", "-t", "staging", "-o", "json"])
            .output()
            .unwrap()
            .stdout,
    );
    let review = p["reviews"][0]["id"].as_str().unwrap().to_owned();
    server
        .cli(&tokens["tech"])
        .args(["reviews", "decide", &review, "--approve"])
        .assert()
        .success();
    dev()
        .args(["deploy", "credit-risk", "1", "-e", "staging"])
        .assert()
        .success();
    let eval = tmp.path().join("eval.json");
    std::fs::write(
        &eval,
        r#"{"name": "staging-check", "dataset": {"uri": "s3://d/s.parquet", "sha256": "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a"}, "metrics": {"auc": 0.9}, "environment": "staging"}"#,
    )
    .unwrap();
    dev()
        .args(["evaluate", "credit-risk", "1", "--file"])
        .arg(&eval)
        .assert()
        .success()
        .stdout(contains("staging-check"));
    let p = json_of(
        &dev()
            .args([
                "promote",
                "credit-risk",
                "1",
                "-t",
                "production",
                "-o",
                "json",
            ])
            .output()
            .unwrap()
            .stdout,
    );
    let stages: Vec<&str> = p["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["technical", "compliance"],
        "the policy file, not the default, decides"
    );
}

#[test]
fn an_unreachable_server_is_an_error_naming_it() {
    steward()
        .env("STEWARD_SERVER", "http://127.0.0.1:9")
        .args(["models", "list"])
        .assert()
        .code(1)
        .stderr(contains("cannot reach http://127.0.0.1:9"));
}

#[test]
fn a_first_serve_creates_starter_principals_with_private_tokens_and_never_prints_a_token() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data, &[]);

    let tokens_file = data.join("tokens.txt");
    let text = std::fs::read_to_string(&tokens_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tokens_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "tokens.txt is readable by its owner only"
        );
    }
    let tokens: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[0].to_owned(), cols[1].to_owned())
        })
        .collect();
    let names: Vec<&str> = tokens.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["admin", "dev", "tech", "biz", "comp", "release", "ops", "audit", "ci"]
    );
    let printed = server.printed_before_listening.join("\n");
    assert!(
        printed.contains("tokens.txt"),
        "says where the tokens are: {printed}"
    );
    let principals_text = std::fs::read_to_string(data.join("principals.toml")).unwrap();

    let admin = &tokens[0].1;
    let out = server
        .cli(admin)
        .args(["principals", "list", "-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = json_of(&out.stdout);
    assert_eq!(list["items"].as_array().unwrap().len(), 9);

    // An admin sets roles through the API (audited).
    server
        .cli(admin)
        .args([
            "principals",
            "set",
            "biz",
            "--role",
            "business-reviewer,compliance-reviewer",
        ])
        .assert()
        .success()
        .stdout(contains("business-reviewer, compliance-reviewer"));

    server.stop_gracefully();
    let logs = std::fs::read_to_string(data.with_extension("stderr.log")).unwrap();
    for (name, token) in &tokens {
        assert!(
            !printed.contains(token.as_str()),
            "{name}'s token was printed"
        );
        assert!(!logs.contains(token.as_str()), "{name}'s token was logged");
        assert!(
            !principals_text.contains(token.as_str()),
            "{name}'s token is in principals.toml"
        );
    }

    // A second start reuses the principals and the tokens file untouched.
    let server = Server::start(&data, &[]);
    assert_eq!(std::fs::read_to_string(&tokens_file).unwrap(), text);
    server
        .cli(&tokens[1].1)
        .args(["models", "list"])
        .assert()
        .success()
        .stdout(contains("no models"));
}

#[test]
fn principals_add_prints_the_token_once_and_appends_a_loadable_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.toml");
    let out = steward()
        .args([
            "principals",
            "add",
            "alice",
            "--role",
            "developer",
            "--role",
            "auditor",
            "--file",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let token = token.trim();
    assert_eq!(token.len(), 64);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(token), "only the hash is stored");
    assert!(text.contains("name = \"alice\""));
    assert!(text.contains("\"developer\", \"auditor\""));
    // The same name twice is refused.
    steward()
        .args([
            "principals",
            "add",
            "alice",
            "--role",
            "developer",
            "--file",
        ])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(contains("already"));
}

#[tokio::test]
async fn steward_serve_serves_the_web_console_with_its_security_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = http.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()["location"], "/console/");
    let login = http
        .get(format!("{}/console/login", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(login.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = login.text().await.unwrap();
    assert!(html.contains("name=\"token\""), "{html}");
    server.stop_gracefully();
}
