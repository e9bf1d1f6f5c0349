//! The embedded backend on real SQLite in a temporary directory: atomic commits, optimistic
//! concurrency, idempotency, a persistent signing key and an audit log that detects tampering.

use std::path::Path;

use proptest::prelude::*;
use r2d2_sqlite::rusqlite;
use serde_json::{json, Value};
use steward_core::audit::merkle::verify_inclusion;
use steward_core::ports::{AuditLog, Caller, Commit, Expect, Put, Registry};
use steward_core::testing::vn;
use steward_core::types::{Environment, ModelName, PrincipalId, Role};
use steward_core::{GovError, Policy};
use steward_local::{verify_data_dir, Embedded, DB_FILE};

fn manifest() -> Value {
    serde_json::from_str(include_str!("fixtures/credit-risk-v1.json")).unwrap()
}

fn caller(name: &str, roles: &[Role]) -> Caller {
    Caller {
        id: PrincipalId::parse(name).unwrap(),
        roles: roles.to_vec(),
        auth: steward_core::types::AuthMethod::Token,
    }
}

async fn open(dir: &Path) -> Embedded {
    Embedded::open(dir, Policy::default()).await.unwrap()
}

async fn audit_size(emb: &Embedded) -> u64 {
    emb.store
        .latest_checkpoint()
        .await
        .unwrap()
        .map(|c| c.size)
        .unwrap_or(0)
}

#[tokio::test]
async fn a_registration_commits_the_version_its_card_and_one_audit_event_together() {
    let dir = tempfile::tempdir().unwrap();
    let emb = open(dir.path()).await;
    let before = audit_size(&emb).await;
    let dev = caller("dev", &[Role::Developer]);
    let (v, replayed) = emb
        .gov
        .register(&dev, "credit-risk", manifest(), None)
        .await
        .unwrap();
    assert!(!replayed);
    assert_eq!(v.version, vn(1));
    let name = ModelName::parse("credit-risk").unwrap();
    assert_eq!(
        emb.store.card_revisions(&name, vn(1)).await.unwrap().len(),
        1
    );
    assert_eq!(audit_size(&emb).await, before + 1);
    let events = emb.store.events(Some(&name), 0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "version.registered");
    assert_eq!(events[0].actor, "dev");
    let outbox = emb.store.outbox(0, 100).unwrap();
    assert!(outbox
        .iter()
        .any(|(_, e)| e.detail_type == "ModelVersionRegistered"));
}

#[tokio::test]
async fn a_commit_whose_revision_condition_fails_writes_nothing_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let emb = open(dir.path()).await;
    let dev = caller("dev", &[Role::Developer]);
    let (v, _) = emb
        .gov
        .register(&dev, "credit-risk", manifest(), None)
        .await
        .unwrap();
    let size = audit_size(&emb).await;
    let root = emb.store.latest_checkpoint().await.unwrap().unwrap().root;

    let mut stale = v.clone();
    stale.revision += 1;
    let commit = Commit {
        puts: vec![Put::Version(stale, Expect::Revision(v.revision + 7))],
        audit: vec![steward_core::audit::AuditDraft {
            time: chrono::Utc::now(),
            actor: "dev".into(),
            action: "test.should_not_land".into(),
            name: Some("credit-risk".into()),
            version: Some(vn(1)),
            details: json!({}),
        }],
        ..Commit::default()
    };
    let err = emb.store.commit(commit).await.unwrap_err();
    assert!(
        matches!(err, steward_core::StoreError::Conflict(_)),
        "{err}"
    );
    assert_eq!(audit_size(&emb).await, size);
    assert_eq!(
        emb.store.latest_checkpoint().await.unwrap().unwrap().root,
        root
    );
    let name = ModelName::parse("credit-risk").unwrap();
    assert_eq!(
        emb.store
            .version(&name, vn(1))
            .await
            .unwrap()
            .unwrap()
            .revision,
        v.revision
    );

    // The next commit takes the next sequence number: the failed one left no gap.
    emb.gov
        .request_promotion(&dev, "credit-risk", vn(1), Environment::Staging, None)
        .await
        .unwrap();
    let events = emb.store.events(None, 0, 1000).await.unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
    verify_data_dir(dir.path(), None).unwrap();
}

#[tokio::test]
async fn a_stale_expected_revision_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let emb = open(dir.path()).await;
    let dev = caller("dev", &[Role::Developer]);
    emb.gov
        .register(&dev, "credit-risk", manifest(), None)
        .await
        .unwrap();
    let err = emb
        .gov
        .request_promotion(&dev, "credit-risk", vn(1), Environment::Staging, Some(99))
        .await
        .unwrap_err();
    assert!(matches!(err, GovError::Conflict(_)), "{err}");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_registration_and_refuses_another_body() {
    let dir = tempfile::tempdir().unwrap();
    let emb = open(dir.path()).await;
    let dev = caller("dev", &[Role::Developer]);
    let (first, _) = emb
        .gov
        .register(&dev, "credit-risk", manifest(), Some("k1"))
        .await
        .unwrap();
    let (again, replayed) = emb
        .gov
        .register(&dev, "credit-risk", manifest(), Some("k1"))
        .await
        .unwrap();
    assert!(replayed);
    assert_eq!(first.version, again.version);
    let mut other = manifest();
    other["description"] = json!("something else");
    let err = emb
        .gov
        .register(&dev, "credit-risk", other, Some("k1"))
        .await
        .unwrap_err();
    assert!(matches!(err, GovError::Conflict(_)), "{err}");
    let name = ModelName::parse("credit-risk").unwrap();
    assert_eq!(emb.store.versions(&name).await.unwrap().len(), 1);
}

#[tokio::test]
async fn reopening_a_data_dir_keeps_the_signing_key_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (key, root) = {
        let emb = open(dir.path()).await;
        let dev = caller("dev", &[Role::Developer]);
        emb.gov
            .register(&dev, "credit-risk", manifest(), None)
            .await
            .unwrap();
        (
            emb.store.public_key(),
            emb.store.latest_checkpoint().await.unwrap().unwrap(),
        )
    };
    let emb = open(dir.path()).await;
    assert_eq!(emb.store.public_key(), key);
    // The policy did not change, so reopening appended nothing.
    assert_eq!(emb.store.latest_checkpoint().await.unwrap().unwrap(), root);
    let dev = caller("dev", &[Role::Developer]);
    let (v2, _) = emb
        .gov
        .register(&dev, "credit-risk", manifest(), None)
        .await
        .unwrap();
    assert_eq!(v2.version, vn(2));
    verify_data_dir(dir.path(), None).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(steward_local::KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the signing key must be private to its owner"
        );
    }
}

#[tokio::test]
async fn a_changed_policy_is_recorded_in_the_audit_log_once() {
    let dir = tempfile::tempdir().unwrap();
    let emb = open(dir.path()).await;
    let first = emb.store.events(None, 0, 100).await.unwrap();
    assert_eq!(
        first.iter().filter(|e| e.action == "policy.loaded").count(),
        1
    );
    drop(emb);
    let mut policy = Policy::default();
    policy.thresholds.push(steward_core::policy::Threshold {
        metric: "auc".into(),
        comparison: steward_core::policy::Comparison::AtLeast,
        value: 0.5,
        tiers: vec![],
    });
    let emb = Embedded::open(dir.path(), policy.clone()).await.unwrap();
    drop(emb);
    let emb = Embedded::open(dir.path(), policy).await.unwrap();
    let events = emb.store.events(None, 0, 100).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "policy.loaded")
            .count(),
        2
    );
}

/// Builds a data dir with a realistic log: registrations, a promotion and a decision.
async fn populated(dir: &Path) -> u64 {
    let emb = open(dir).await;
    let dev = caller("dev", &[Role::Developer]);
    let tech = caller("tech", &[Role::TechnicalReviewer]);
    for _ in 0..5 {
        emb.gov
            .register(&dev, "credit-risk", manifest(), None)
            .await
            .unwrap();
    }
    let p = emb
        .gov
        .request_promotion(&dev, "credit-risk", vn(1), Environment::Staging, None)
        .await
        .unwrap();
    let decision = serde_json::from_value(json!({"decision": "approve"})).unwrap();
    emb.gov
        .decide(&tech, &p.reviews[0].id, decision)
        .await
        .unwrap();
    emb.gov
        .deploy(&dev, "credit-risk", vn(1), Environment::Staging, None)
        .await
        .unwrap();
    audit_size(&emb).await
}

#[tokio::test]
async fn every_inclusion_proof_verifies_and_is_logarithmic() {
    let dir = tempfile::tempdir().unwrap();
    let n = populated(dir.path()).await;
    let emb = open(dir.path()).await;
    let cp = emb.store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(cp.size, n);
    let max = 64 - (n - 1).leading_zeros() as usize; // ceil(log2 n)
    for seq in 1..=n {
        let (event, proof) = emb.store.inclusion_proof(seq, n).await.unwrap();
        assert!(
            proof.len() <= max,
            "proof of {seq} has {} hashes",
            proof.len()
        );
        verify_inclusion(&event.leaf_hash(), seq - 1, n, &proof, &cp.root).unwrap();
    }
}

#[derive(Debug, Clone)]
enum Tamper {
    FlipByte { event: usize, byte: usize },
    Delete { event: usize },
    Swap { a: usize, b: usize },
    Truncate { keep: usize },
}

fn apply(db: &Path, t: &Tamper, n: usize) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let seq = |i: usize| (i % n) as i64 + 1;
    match t {
        Tamper::FlipByte { event, byte } => {
            let s = seq(*event);
            let mut bytes: Vec<u8> = conn
                .query_row("SELECT bytes FROM audit_events WHERE seq = ?1", [s], |r| {
                    r.get(0)
                })
                .unwrap();
            let i = byte % bytes.len();
            bytes[i] ^= 0x01;
            conn.execute(
                "UPDATE audit_events SET bytes = ?1 WHERE seq = ?2",
                rusqlite::params![bytes, s],
            )
            .unwrap();
        }
        Tamper::Delete { event } => {
            conn.execute("DELETE FROM audit_events WHERE seq = ?1", [seq(*event)])
                .unwrap();
        }
        Tamper::Swap { a, b } => {
            let (a, b) = (seq(*a), seq(*b));
            let b = if a == b { (b % n as i64) + 1 } else { b };
            conn.execute_batch(&format!(
                "UPDATE audit_events SET seq = -1 WHERE seq = {a};
                 UPDATE audit_events SET seq = {a} WHERE seq = {b};
                 UPDATE audit_events SET seq = {b} WHERE seq = -1;"
            ))
            .unwrap();
        }
        Tamper::Truncate { keep } => {
            conn.execute(
                "DELETE FROM audit_events WHERE seq > ?1",
                [(keep % n) as i64],
            )
            .unwrap();
        }
    }
}

fn tamper_strategy() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(event, byte)| Tamper::FlipByte { event, byte }),
        any::<usize>().prop_map(|event| Tamper::Delete { event }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::Swap { a, b }),
        any::<usize>().prop_map(|keep| Tamper::Truncate { keep }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_change_deletion_reordering_or_truncation_of_stored_events_fails_verification(t in tamper_strategy()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let template = tempfile::tempdir().unwrap();
        let n = rt.block_on(populated(template.path())) as usize;
        verify_data_dir(template.path(), None).unwrap();
        apply(&template.path().join(DB_FILE), &t, n);
        prop_assert!(verify_data_dir(template.path(), None).is_err(), "tampering {:?} went unnoticed", t);
    }
}

#[tokio::test]
async fn verifying_a_data_dir_changes_nothing_and_needs_its_key() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path()).await;
    let db = dir.path().join(DB_FILE);
    let before = std::fs::read(&db).unwrap();
    verify_data_dir(dir.path(), None).unwrap();
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "verification wrote to the store"
    );
    std::fs::remove_file(dir.path().join(steward_local::KEY_FILE)).unwrap();
    let err = verify_data_dir(dir.path(), None).unwrap_err();
    assert!(err.to_string().contains("signing key"), "{err}");
    assert!(
        !dir.path().join(steward_local::KEY_FILE).exists(),
        "verification created a key"
    );
}

#[tokio::test]
async fn a_version_that_an_active_model_depends_on_cannot_be_retired_until_the_dependent_is() {
    let dir = tempfile::tempdir().unwrap();
    let emb = open(dir.path()).await;
    let dev = caller("dev", &[Role::Developer]);
    emb.gov
        .register(&dev, "features", manifest(), None)
        .await
        .unwrap();
    let mut dependent = manifest();
    dependent["dependencies"] = json!([{"name": "features", "version": 1}]);
    emb.gov
        .register(&dev, "scorer", dependent, None)
        .await
        .unwrap();

    let err = emb
        .gov
        .retire(&dev, "features", vn(1), "superseded", None)
        .await
        .unwrap_err();
    let GovError::Policy(reasons) = err else {
        panic!("{err}")
    };
    assert!(reasons[0].contains("scorer version 1"), "{reasons:?}");

    emb.gov
        .retire(&dev, "scorer", vn(1), "replaced by a vendor model", None)
        .await
        .unwrap();
    let retired = emb
        .gov
        .retire(&dev, "features", vn(1), "superseded", None)
        .await
        .unwrap()
        .into_version();
    assert_eq!(retired.stage, steward_core::types::Stage::Retired);
}

#[tokio::test]
async fn a_dependency_on_an_unknown_or_retired_version_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let emb = open(dir.path()).await;
    let dev = caller("dev", &[Role::Developer]);
    let mut m = manifest();
    m["dependencies"] = json!([{"name": "nowhere", "version": 3}]);
    let err = emb.gov.register(&dev, "scorer", m, None).await.unwrap_err();
    let GovError::Validation(fields) = err else {
        panic!("{err}")
    };
    assert_eq!(fields[0].field, "dependencies[0]");
    assert!(emb
        .store
        .model(&ModelName::parse("scorer").unwrap())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_readable_artifact_must_match_its_declared_sha256_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let emb = open(dir.path()).await;
    let dev = caller("dev", &[Role::Developer]);
    let artifact = dir.path().join("model.tar.gz");
    std::fs::write(&artifact, b"weights").unwrap();
    let real = steward_core::types::Sha256::digest(b"weights").to_hex();

    let mut m = manifest();
    m["artifact"] = json!({"uri": format!("file://{}", artifact.display()), "sha256": "ab".repeat(32), "size_bytes": 7});
    let err = emb
        .gov
        .register(&dev, "checked", m.clone(), None)
        .await
        .unwrap_err();
    let GovError::Validation(fields) = err else {
        panic!("{err}")
    };
    assert_eq!(fields[0].field, "artifact.sha256");
    assert!(fields[0].message.contains(&real), "{}", fields[0].message);
    assert!(emb
        .store
        .model(&ModelName::parse("checked").unwrap())
        .await
        .unwrap()
        .is_none());

    m["artifact"]["sha256"] = json!(real);
    m["artifact"]["size_bytes"] = json!(8);
    let err = emb
        .gov
        .register(&dev, "checked", m.clone(), None)
        .await
        .unwrap_err();
    let GovError::Validation(fields) = err else {
        panic!("{err}")
    };
    assert_eq!(fields[0].field, "artifact.size_bytes");

    m["artifact"]["size_bytes"] = json!(7);
    emb.gov.register(&dev, "checked", m, None).await.unwrap();
    let name = ModelName::parse("checked").unwrap();
    let events = emb.store.events(Some(&name), 0, 10).await.unwrap();
    assert_eq!(events[0].details["artifact_check"], "verified");
}

#[tokio::test]
async fn manifests_cards_and_evaluation_reports_are_kept_by_content_hash() {
    use steward_core::ports::EvidenceKind;
    let dir = tempfile::tempdir().unwrap();
    let emb = open(dir.path()).await;
    let dev = caller("dev", &[Role::Developer]);
    let (v, _) = emb
        .gov
        .register(&dev, "credit-risk", manifest(), None)
        .await
        .unwrap();
    let files = steward_local::FileEvidence::new(dir.path());
    let manifest_file = files.path(EvidenceKind::Manifest, &v.manifest_sha256);
    let bytes = std::fs::read(&manifest_file).unwrap();
    assert_eq!(
        steward_core::types::Sha256::digest(&bytes),
        v.manifest_sha256
    );
    let card = emb.store.card_revisions(&v.name, vn(1)).await.unwrap()[0].card_sha256;
    assert!(files.path(EvidenceKind::ModelCard, &card).exists());

    let name = ModelName::parse("credit-risk").unwrap();
    emb.gov
        .add_evaluation(&dev, "credit-risk", vn(1), json!({"name": "shadow", "dataset": {"uri": "s3://d/x", "sha256": "cd".repeat(32)}, "metrics": {"auc": 0.9}, "environment": "staging"}))
        .await
        .unwrap();
    let events = emb.store.events(Some(&name), 0, 10).await.unwrap();
    let report = events.last().unwrap().details["report_sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let report = steward_core::types::Sha256::parse(&report).unwrap();
    assert!(files.path(EvidenceKind::EvaluationReport, &report).exists());
    // An s3:// artifact cannot be read here: recorded as not checked, not refused.
    assert!(events[0].details["artifact_check"]
        .as_str()
        .unwrap()
        .starts_with("not checked"));
}

#[tokio::test]
async fn pending_retirements_list_oldest_first_and_page_on_sqlite() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let emb = open(dir.path()).await;
    // The same store, through a workflows port that keeps retirement requests pending.
    let gov = steward_core::Governance::new(
        emb.store.clone(),
        emb.store.clone(),
        Arc::new(steward_testkit::ConfirmingWorkflows),
        Arc::new(steward_core::ports::SystemClock),
        Arc::new(steward_local::UuidIds),
        Policy::default(),
    );
    steward_testkit::pending_retirements_list_the_same_on(&gov).await;
}

#[tokio::test]
async fn registered_models_are_kept_on_sqlite_as_on_every_store() {
    let dir = tempfile::tempdir().unwrap();
    let emb = open(dir.path()).await;
    steward_testkit::registered_models_are_kept_the_same_on(emb.store.as_ref()).await;
}
