//! `steward check` and `steward checks` against a `steward serve` child process: a CI
//! principal (added with `steward principals add --role ci`) reports, anyone lists.

mod common;

use common::{add_principals, steward, Server, MANIFEST};
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

#[test]
fn a_ci_principal_reports_checks_through_the_cli_and_anyone_lists_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let principals = tmp.path().join("principals.toml");
    let mut tokens = add_principals(&principals);
    let out = steward()
        .args(["principals", "add", "ci", "--role", "ci", "--file"])
        .arg(&principals)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokens.insert(
        "ci".into(),
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    );
    let server = Server::start(&data, &["--principals", principals.to_str().unwrap()]);
    let as_ = |who: &str| server.cli(&tokens[who]);
    let manifest = tmp.path().join("manifest.json");
    std::fs::write(&manifest, MANIFEST).unwrap();
    as_("dev")
        .args(["register", "credit-risk", "--manifest"])
        .arg(&manifest)
        .assert()
        .success();

    as_("ci")
        .args(["checks", "credit-risk", "1"])
        .assert()
        .success()
        .stdout("no checks reported\n");

    let sha = "ab".repeat(32);
    let report = [
        "check",
        "credit-risk",
        "1",
        "--name",
        "unit-tests",
        "--status",
        "passed",
        "--environment",
        "staging",
        "--metric",
        "coverage=0.84",
        "--metric",
        "tests=412",
        "--evidence-uri",
        "s3://ci-reports/credit-risk/junit.xml",
        "--evidence-sha256",
        &sha,
        "--details-url",
        "https://ci.example.com/runs/42",
        "--idempotency-key",
        "run-42",
    ];
    // A short table by default...
    as_("ci").args(report).assert().success().stdout(
        contains("unit-tests")
            .and(contains("passed"))
            .and(contains("coverage=0.84 tests=412"))
            .and(contains("https://ci.example.com/runs/42"))
            .and(contains("reported by:")),
    );
    // ...and the API's JSON with -o json; the retry with the same key is the same result.
    let again = json_of(
        &as_("ci")
            .args(report)
            .args(["-o", "json"])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(again["reported_by"], "ci");
    assert_eq!(again["reports"], 1, "a replay records nothing: {again}");
    assert_eq!(again["environment"], "staging");
    assert_eq!(again["metrics"]["coverage"], 0.84);
    assert_eq!(again["evidence"]["sha256"], sha.as_str());

    // A failing re-report without a key is a second report.
    as_("ci")
        .args([
            "check",
            "credit-risk",
            "1",
            "--name",
            "unit-tests",
            "--status",
            "failed",
            "-e",
            "staging",
        ])
        .assert()
        .success()
        .stdout(contains("failed"));
    as_("audit")
        .args(["checks", "credit-risk", "1"])
        .assert()
        .success()
        .stdout(
            contains("CHECK")
                .and(contains("unit-tests"))
                .and(contains("failed"))
                .and(contains("staging")),
        );
    let list = json_of(
        &as_("dev")
            .args(["checks", "credit-risk", "1", "-o", "json"])
            .output()
            .unwrap()
            .stdout,
    );
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["reports"], 2);
    assert_eq!(items[0]["status"], "failed");
    assert_eq!(list["next_cursor"], Value::Null);
    as_("dev")
        .args(["versions", "get", "credit-risk", "1"])
        .assert()
        .success()
        .stdout(contains("checks:").and(contains("unit-tests")));

    // An auditor may not report (403 on stderr, exit 1); a bad status is a usage error (2).
    as_("audit")
        .args([
            "check",
            "credit-risk",
            "1",
            "--name",
            "unit-tests",
            "--status",
            "passed",
        ])
        .assert()
        .code(1)
        .stderr(contains("403").and(contains("forbidden")));
    as_("ci")
        .args([
            "check",
            "credit-risk",
            "1",
            "--name",
            "unit-tests",
            "--status",
            "green",
        ])
        .assert()
        .code(2);
    // A bad field the server refuses is named on stderr.
    as_("ci")
        .args([
            "check",
            "credit-risk",
            "1",
            "--name",
            "Unit Tests",
            "--status",
            "passed",
        ])
        .assert()
        .code(1)
        .stderr(contains("422").and(contains("name")));
    server.stop_gracefully();
}
