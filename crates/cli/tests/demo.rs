//! `steward demo` end to end: the real binary, a real server, every step asserted.

mod common;

use common::steward;

#[test]
fn the_demo_runs_the_whole_lifecycle_and_ends_with_a_verified_audit_log() {
    let tmp = tempfile::tempdir().unwrap();
    let keep = tmp.path().join("demo-data");
    let started = std::time::Instant::now();
    let out = steward()
        .args(["demo", "--keep"])
        .arg(&keep)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the demo failed:\n{stdout}\n{stderr}");
    assert!(started.elapsed().as_secs() < 60, "the demo is quick");

    for expected in [
        "422 validation_failed",
        "card.rollback",
        "self-approval",
        "refused, as it must be: 403 separation_of_duties",
        "rolled back to version 1",
        "lineage.parent_version = 1",
        "-> version 2",
        "retired",
        "required check \"unit-tests\" has not been reported",
        "the technical review decided by policy, no person asked",
        "approved by policy: every rule of staging holds",
        "review.decided by policy (automatic)",
        "every one by a person",
        "the high tier's reviews are human-only",
        "takes the evidence pack of credit-risk v1",
        "facts match their events",
        "refused: document.html has been altered",
        "inclusion proofs",
        "verified",
        "the same root the API proved",
        "Demo complete",
        "http://127.0.0.1:8080/console/",
    ] {
        assert!(
            stdout.contains(expected),
            "the demo output lacks {expected:?}:\n{stdout}"
        );
    }
    assert!(!stdout.contains("Value::"), "no debug dumps");

    // No token reaches the screen, and the kept directory serves and verifies.
    let tokens = std::fs::read_to_string(keep.join("tokens.txt")).unwrap();
    for line in tokens.lines().filter(|l| !l.starts_with('#')) {
        let token = line.split_whitespace().nth(1).unwrap();
        assert!(
            !stdout.contains(token) && !stderr.contains(token),
            "a token was printed"
        );
    }
    steward()
        .args(["audit", "verify", "--data"])
        .arg(&keep)
        .assert()
        .success();
}

#[test]
fn the_demo_refuses_to_reuse_a_directory_that_is_not_empty() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("something"), "x").unwrap();
    let out = steward()
        .args(["demo", "--keep"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}
