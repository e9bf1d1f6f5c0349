//! Tampering with the audit log in the SQLite file: any change, deletion, reordering or
//! truncation makes `steward audit verify --data` exit non-zero.
//!
//! The log comes from one `steward demo --keep` run (a realistic few dozen events); each test
//! tampers with its own copy.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{steward, Server};
use predicates::prelude::*;
use predicates::str::contains;
use r2d2_sqlite::rusqlite::{params, Connection};
use sha2::Digest;

fn demo_data() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("data");
        let out = steward()
            .args(["demo", "--keep"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (tmp, path)
    });
    path
}

/// A private copy of the demo's data directory.
fn copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    copy_tree(demo_data(), &dir);
    (tmp, dir)
}

/// Copies a directory tree (the data dir holds the store, keys and an evidence/ tree).
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn db(dir: &Path) -> Connection {
    Connection::open(dir.join("steward.db")).unwrap()
}

fn event_count(conn: &Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))
        .unwrap()
}

fn bytes_of(conn: &Connection, seq: i64) -> Vec<u8> {
    conn.query_row(
        "SELECT bytes FROM audit_events WHERE seq = ?1",
        [seq],
        |r| r.get(0),
    )
    .unwrap()
}

/// Changes one letter of the event's actor, keeping the JSON valid.
fn change_one_byte(bytes: &mut [u8]) {
    let at = bytes.windows(9).position(|w| w == b"\"actor\":\"").unwrap() + 9;
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
}

fn verify_fails(dir: &Path) -> String {
    let out = steward()
        .args(["audit", "verify", "--data"])
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "a tampered log verified:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("FAILED"), "{stderr}");
    stderr
}

#[test]
fn an_untouched_copy_of_the_data_directory_verifies() {
    let (_tmp, dir) = copy();
    steward()
        .args(["audit", "verify", "--data"])
        .arg(&dir)
        .assert()
        .success()
        .stdout(contains("verified").and(contains("root")));
}

#[test]
fn a_changed_byte_in_an_audit_event_fails_verification() {
    let (_tmp, dir) = copy();
    let conn = db(&dir);
    let mut bytes = bytes_of(&conn, 5);
    change_one_byte(&mut bytes);
    conn.execute(
        "UPDATE audit_events SET bytes = ?1 WHERE seq = 5",
        params![bytes],
    )
    .unwrap();
    drop(conn);
    let err = verify_fails(&dir);
    assert!(err.contains("event 5"), "names the event: {err}");
}

#[test]
fn a_changed_event_with_a_recomputed_leaf_hash_still_fails_verification() {
    let (_tmp, dir) = copy();
    let conn = db(&dir);
    let mut bytes = bytes_of(&conn, 9);
    change_one_byte(&mut bytes);
    let mut leaf = sha2::Sha256::new();
    leaf.update([0u8]);
    leaf.update(&bytes);
    let leaf = leaf.finalize().to_vec();
    conn.execute(
        "UPDATE audit_events SET bytes = ?1, leaf_hash = ?2 WHERE seq = 9",
        params![bytes, leaf],
    )
    .unwrap();
    drop(conn);
    verify_fails(&dir);
}

#[test]
fn a_deleted_audit_event_fails_verification() {
    let (_tmp, dir) = copy();
    let conn = db(&dir);
    conn.execute("DELETE FROM audit_events WHERE seq = 7", [])
        .unwrap();
    drop(conn);
    let err = verify_fails(&dir);
    assert!(err.contains("deleted") || err.contains("event 7"), "{err}");
}

#[test]
fn two_swapped_audit_events_fail_verification() {
    let (_tmp, dir) = copy();
    let conn = db(&dir);
    let row = |seq: i64| -> (Vec<u8>, Vec<u8>) {
        conn.query_row(
            "SELECT bytes, leaf_hash FROM audit_events WHERE seq = ?1",
            [seq],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let (a, b) = (row(3), row(4));
    conn.execute(
        "UPDATE audit_events SET bytes = ?1, leaf_hash = ?2 WHERE seq = 3",
        params![b.0, b.1],
    )
    .unwrap();
    conn.execute(
        "UPDATE audit_events SET bytes = ?1, leaf_hash = ?2 WHERE seq = 4",
        params![a.0, a.1],
    )
    .unwrap();
    drop(conn);
    verify_fails(&dir);
}

#[test]
fn a_truncated_audit_log_fails_verification() {
    let (_tmp, dir) = copy();
    let conn = db(&dir);
    let n = event_count(&conn);
    assert!(n > 20, "the demo writes a realistic log ({n} events)");
    conn.execute("DELETE FROM audit_events WHERE seq > ?1", [n - 3])
        .unwrap();
    drop(conn);
    let err = verify_fails(&dir);
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn a_log_checked_against_another_public_key_fails_verification() {
    let (_tmp, dir) = copy();
    let other = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key();
    steward()
        .args(["audit", "verify", "--data"])
        .arg(&dir)
        .args(["--public-key", &hex::encode(other.as_bytes())])
        .assert()
        .code(1)
        .stderr(contains("key"));
}

#[test]
fn a_tampered_store_also_fails_verification_through_the_api() {
    let (_tmp, dir) = copy();
    let conn = db(&dir);
    let mut bytes = bytes_of(&conn, 12);
    change_one_byte(&mut bytes);
    conn.execute(
        "UPDATE audit_events SET bytes = ?1 WHERE seq = 12",
        params![bytes],
    )
    .unwrap();
    drop(conn);

    // The demo left its principals and their private tokens beside the data.
    let tokens = std::fs::read_to_string(dir.join("tokens.txt")).unwrap();
    let auditor = tokens
        .lines()
        .find(|l| l.starts_with("audrey"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_owned();
    let server = Server::start(&dir, &[]);
    server
        .cli(&auditor)
        .args(["audit", "verify"])
        .assert()
        .code(1)
        .stderr(contains("FAILED").and(contains("event 12")));
}
