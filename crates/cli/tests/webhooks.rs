//! Webhook deliveries from `steward serve` to a real receiver on 127.0.0.1 that verifies every
//! request with an independent Standard Webhooks implementation (the `standardwebhooks`
//! package from PyPI, run by the emulators' Python: `bash scripts/emulators run -- ...`
//! exports STEWARD_TEST_PYTHON). The receiver goes down for a while and the server is killed
//! with SIGKILL in the middle: every event still arrives, and no event under two ids.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{add_principals, Server, MANIFEST};
use serde_json::Value;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn python() -> String {
    std::env::var("STEWARD_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "STEWARD_TEST_PYTHON is not set: run the webhook tests under the emulators' Python \
             with `bash scripts/emulators run -- cargo test -p steward --test webhooks` \
             (it has the standardwebhooks package)"
        )
    })
}

/// The Python receiver, killed on drop.
struct Receiver {
    child: Child,
    port: u16,
}

impl Receiver {
    fn start(port: u16, log: &Path) -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support/standard_webhooks_receiver.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .arg(log)
            .env("WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the receiver starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the receiver did not start: {line:?}"))
            .parse()
            .unwrap();
        Receiver { child, port }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn received(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The registrations (model, version) the receiver has verified deliveries of.
fn registrations_received(log: &Path) -> BTreeSet<(String, u64)> {
    received(log)
        .iter()
        .filter(|e| e["verified"] == true)
        .filter(|e| e["body"]["detail-type"] == "ModelVersionRegistered")
        .map(|e| {
            let d = &e["body"]["detail"];
            (
                d["name"].as_str().unwrap().to_owned(),
                d["version"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_server(data: &Path, principals: &Path) -> Server {
    Server::start(
        data,
        &[
            "--principals",
            principals.to_str().unwrap(),
            "--webhook-retry-first-ms",
            "200",
        ],
    )
}

fn register(server: &Server, token: &str, manifest: &Path, name: &str) {
    server
        .cli(token)
        .args(["register", name, "--manifest"])
        .arg(manifest)
        .assert()
        .success();
}

fn deliveries(server: &Server, token: &str) -> Vec<Value> {
    let out = server
        .cli(token)
        .args([
            "webhooks",
            "deliveries",
            "receiver",
            "--limit",
            "100",
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
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["items"].as_array().unwrap().clone()
}

#[test]
fn every_event_reaches_a_receiver_that_was_down_across_a_sigkill_restart_signed_and_under_one_id() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let principals = tmp.path().join("principals.toml");
    let tokens: BTreeMap<String, String> = add_principals(&principals);
    let manifest: PathBuf = tmp.path().join("manifest.json");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let secret_file = tmp.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let log = tmp.path().join("received.jsonl");

    let server = start_server(&data, &principals);
    let receiver = Receiver::start(0, &log);
    let port = receiver.port;
    let url = format!("http://127.0.0.1:{port}/steward");
    server
        .cli(&tokens["admin"])
        .args(["webhooks", "put", "receiver", "--url", &url, "--event"])
        .arg("ModelVersionRegistered,ReviewRequested")
        .arg("--secret-file")
        .arg(&secret_file)
        .assert()
        .success();
    // The API never shows the secret again.
    let shown = server
        .cli(&tokens["admin"])
        .args(["webhooks", "get", "receiver", "-o", "json"])
        .output()
        .unwrap();
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(
        shown.contains(&url) && !shown.contains(&SECRET[6..]),
        "{shown}"
    );

    register(&server, &tokens["dev"], &manifest, "alpha");
    wait_for("the first delivery", Duration::from_secs(30), || {
        registrations_received(&log).contains(&("alpha".into(), 1))
    });

    // The receiver goes away; two registrations fail to arrive and are retried.
    receiver.stop();
    register(&server, &tokens["dev"], &manifest, "beta");
    register(&server, &tokens["dev"], &manifest, "alpha");
    wait_for(
        "failed attempts to be recorded",
        Duration::from_secs(30),
        || {
            let d = deliveries(&server, &tokens["audit"]);
            d.iter()
                .filter(|d| d["status"] == "pending" && d["attempts"].as_u64() >= Some(1))
                .count()
                >= 2
        },
    );
    let pending = deliveries(&server, &tokens["admin"]);
    let refused = pending.iter().find(|d| d["status"] == "pending").unwrap();
    assert_eq!(
        refused["last_error"], "cannot connect to the receiver",
        "{refused}"
    );
    assert!(refused["next_attempt_at"].is_string());

    // SIGKILL in the middle, then a restart over the same data directory.
    let status = server.kill();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let server = start_server(&data, &principals);
    register(&server, &tokens["dev"], &manifest, "gamma");

    // The receiver comes back on the same port.
    let _receiver = Receiver::start(port, &log);
    let expected: BTreeSet<(String, u64)> = [("alpha", 1), ("alpha", 2), ("beta", 1), ("gamma", 1)]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    wait_for(
        "every registration to arrive",
        Duration::from_secs(60),
        || registrations_received(&log) == expected,
    );
    wait_for(
        "every delivery to be marked delivered",
        Duration::from_secs(30),
        || {
            deliveries(&server, &tokens["admin"])
                .iter()
                .all(|d| d["status"] == "delivered")
        },
    );

    let all = received(&log);
    for e in &all {
        assert_eq!(
            e["verified"], true,
            "the independent verifier accepted it: {e}"
        );
        assert_eq!(e["path"], "/steward");
        assert_eq!(e["content_type"], "application/json");
        let body = &e["body"];
        for field in ["id", "detail-type", "time", "detail"] {
            assert!(!body[field].is_null(), "the body has {field}: {body}");
        }
    }
    // Each event under exactly one webhook-id (repeats, if any, reuse it).
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in &all {
        ids.entry(e["body"]["id"].as_str().unwrap().to_owned())
            .or_default()
            .insert(e["webhook_id"].as_str().unwrap().to_owned());
    }
    assert!(ids.values().all(|s| s.len() == 1), "{ids:?}");
    // Only the subscribed event types were sent.
    assert!(all
        .iter()
        .all(|e| e["body"]["detail-type"] == "ModelVersionRegistered"
            || e["body"]["detail-type"] == "ReviewRequested"));
    let d = deliveries(&server, &tokens["admin"]);
    assert_eq!(d.len(), 4, "{d:?}");
    assert!(
        d.iter()
            .filter(|d| d["attempts"].as_u64() > Some(1))
            .count()
            >= 2,
        "{d:?}"
    );
    server.stop_gracefully();
    // Nothing logged the secret.
    let logs = std::fs::read_to_string(data.with_extension("stderr.log")).unwrap();
    assert!(!logs.contains(&SECRET[6..]));
}

#[test]
fn webhook_management_is_for_admins_and_a_bad_subscription_names_its_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let principals = tmp.path().join("principals.toml");
    let tokens = add_principals(&principals);
    let server = Server::start(
        &tmp.path().join("data"),
        &["--principals", principals.to_str().unwrap()],
    );
    server
        .cli(&tokens["dev"])
        .args([
            "webhooks",
            "put",
            "x",
            "--url",
            "https://hooks.example.com/x",
            "--generate-secret",
        ])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("403"));
    server
        .cli(&tokens["admin"])
        .args([
            "webhooks",
            "put",
            "x",
            "--url",
            "http://hooks.example.com/x",
            "--event",
            "Nope",
        ])
        .assert()
        .code(1)
        .stderr(
            predicates::str::contains("url")
                .and(predicates::str::contains("events[0]"))
                .and(predicates::str::contains("secret")),
        );
    let out = server
        .cli(&tokens["admin"])
        .args([
            "webhooks",
            "put",
            "x",
            "--url",
            "https://hooks.example.com/x",
            "--generate-secret",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout.lines().last().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{stdout}"
    );
    server
        .cli(&tokens["audit"])
        .args(["webhooks", "list"])
        .assert()
        .success()
        .stdout(
            predicates::str::contains("https://hooks.example.com/x")
                .and(predicates::str::contains("all")),
        );
    server
        .cli(&tokens["admin"])
        .args(["webhooks", "delete", "x"])
        .assert()
        .success();
    server
        .cli(&tokens["admin"])
        .args(["webhooks", "get", "x"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("404"));
    server.stop_gracefully();
}

use predicates::prelude::PredicateBooleanExt;
