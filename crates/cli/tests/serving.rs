//! `steward serving report` and `steward serving list` against a `steward serve` child
//! process: the registered artifact is unapproved in production, an unknown one unregistered,
//! a repeated report opens no second incident, and `--stopped` closes the finding.

mod common;

use common::{add_principals, Server, MANIFEST};
use serde_json::Value;

#[test]
fn a_platform_reports_its_endpoints_and_the_list_says_what_is_not_governed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let principals = tmp.path().join("principals.toml");
    let tokens = add_principals(&principals);
    let server = Server::start(&data, &["--principals", principals.to_str().unwrap()]);
    let as_ = |who: &str| server.cli(&tokens[who]);
    let manifest = tmp.path().join("manifest.json");
    std::fs::write(&manifest, MANIFEST).unwrap();
    as_("dev")
        .args(["register", "credit-risk", "--manifest"])
        .arg(&manifest)
        .assert()
        .success();
    let uri = serde_json::from_str::<Value>(MANIFEST).unwrap()["artifact"]["uri"]
        .as_str()
        .unwrap()
        .to_owned();

    let report = |endpoint: &str, artifact: &str, extra: &[&str]| {
        let out = as_("ops")
            .args([
                "serving",
                "report",
                "--platform",
                "kserve",
                "-e",
                "production",
            ])
            .args(["--endpoint", endpoint, "--artifact-uri", artifact])
            .args(["--observed-at", "2026-12-01T10:00:00Z", "-o", "json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let a = report("ml/credit-risk", &uri, &[]);
    assert_eq!(a["outcome"], "unapproved", "{a}");
    assert_eq!(a["model"], "credit-risk");
    let b = report("ml/mystery", "s3://nobody/model.bin", &[]);
    assert_eq!(b["outcome"], "unregistered", "{b}");
    // The same report again: the same record, the same incident.
    let again = report("ml/mystery", "s3://nobody/model.bin", &[]);
    assert_eq!(again, b);

    let out = as_("audit").args(["serving", "list"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("PLATFORM"), "{table}");
    assert!(
        lines.iter().any(|l| l.contains("ml/credit-risk")
            && l.contains("unapproved")
            && l.contains("credit-risk v1")),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ml/mystery") && l.contains("unregistered")),
        "{table}"
    );

    // The endpoint is deleted: its finding closes.
    let out = as_("ops")
        .args([
            "serving",
            "report",
            "--platform",
            "kserve",
            "-e",
            "production",
        ])
        .args([
            "--endpoint",
            "ml/mystery",
            "--artifact-uri",
            "s3://nobody/model.bin",
        ])
        .args(["--observed-at", "2026-12-01T11:00:00Z", "--stopped"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("stopped at"),
        "{text}"
    );
    let out = as_("ops")
        .args(["incidents", "-o", "json"])
        .output()
        .unwrap();
    let incidents: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mystery = incidents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == b["incident"])
        .unwrap()
        .clone();
    assert_eq!(mystery["status"], "resolved", "{mystery}");
    let shadow = incidents["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "shadow_model")
        .count();
    assert_eq!(shadow, 2, "one per finding");

    // A developer may not report.
    as_("dev")
        .args(["serving", "report", "--platform", "kserve", "-e", "staging"])
        .args(["--endpoint", "x", "--artifact-uri", "y"])
        .assert()
        .code(1);
}

/// The Kubernetes reporter (`examples/serving/k8s_reporter.py`, the CronJob's script) against
/// a real `steward serve`. No Kubernetes runs here: the objects come from
/// `examples/serving/cluster-items.json` (shaped as `kubectl get -o json` lists them) through
/// the script's `STEWARD_K8S_ITEMS_FILE`, so what is tested is everything but its API fetch.
#[test]
fn the_kubernetes_reporter_reports_kserve_seldon_bentoml_and_deployments() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let principals = tmp.path().join("principals.toml");
    let tokens = add_principals(&principals);
    let server = Server::start(&data, &["--principals", principals.to_str().unwrap()]);
    let manifest = tmp.path().join("manifest.json");
    std::fs::write(&manifest, MANIFEST).unwrap();
    server
        .cli(&tokens["dev"])
        .args(["register", "credit-risk", "--manifest"])
        .arg(&manifest)
        .assert()
        .success();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/serving");
    let out = std::process::Command::new("python3")
        .arg(examples.join("k8s_reporter.py"))
        .env("STEWARD_SERVER", &server.url)
        .env("STEWARD_TOKEN", &tokens["ops"])
        .env(
            "STEWARD_K8S_ITEMS_FILE",
            examples.join("cluster-items.json"),
        )
        .output()
        .expect("python3 runs the reporter");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = server
        .cli(&tokens["audit"])
        .args(["serving", "list", "-o", "json"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(String, String, String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (s("platform"), s("environment"), s("endpoint"), s("outcome"))
        })
        .collect();
    let row = |p: &str, e: &str, n: &str, o: &str| (p.into(), e.into(), n.into(), o.into());
    assert_eq!(
        got,
        vec![
            row("bentoml", "production", "ml/churn", "unregistered"),
            row("kserve", "production", "ml/credit-risk", "unapproved"),
            row(
                "kubernetes",
                "production",
                "shop/pricing/model",
                "unregistered"
            ),
            row("seldon", "staging", "ml/fraud/default", "unregistered"),
        ],
        "{list}"
    );
    assert!(printed.contains("ml/credit-risk: unapproved"), "{printed}");
}
