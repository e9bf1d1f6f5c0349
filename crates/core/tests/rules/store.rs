//! The in-memory store's own semantics, which must match the SQLite store's: atomic commits,
//! conditions, idempotency records, the audit log and its proofs, listings and cursors.

use steward_core::audit::checkpoint::verify_checkpoint;
use steward_core::audit::merkle::verify_inclusion;
use steward_core::audit::verify::verify_log;
use steward_core::audit::{AuditDraft, CheckpointSigner};
use steward_core::ports::{AuditLog, Commit, Expect, ModelFilter, Put, Registry, ReviewFilter};
use steward_core::records::{IdempotencyRecord, ReviewStatus};
use steward_core::testing::{block_on, vn, Harness, MemoryStore};
use steward_core::types::{ModelName, ReviewStage, RiskTier, Sha256, Stage};
use steward_core::StoreError;

fn draft(h: &Harness, action: &str) -> AuditDraft {
    AuditDraft {
        time: h.now(),
        actor: "test".into(),
        action: action.into(),
        name: None,
        version: None,
        details: serde_json::json!({}),
    }
}

#[test]
fn a_commit_with_one_failed_condition_writes_nothing_at_all() {
    let h = Harness::new();
    block_on(async {
        h.register("credit-risk", RiskTier::Low).await;
        let m = h.gov.model_detail("credit-risk").await.unwrap().model;
        let v = h
            .gov
            .version_detail("credit-risk", vn(1))
            .await
            .unwrap()
            .version;
        let mut m2 = m.clone();
        m2.description = "changed".into();
        m2.revision += 1;
        let size = h.store.audit_events().len();
        let outbox = h.store.outbox().len();
        let r = h
            .store
            .commit(Commit {
                // The first put holds, the second names a stale revision.
                puts: vec![
                    Put::Model(m2, Expect::Revision(m.revision)),
                    Put::Version(v.clone(), Expect::Revision(v.revision + 5)),
                ],
                audit: vec![draft(&h, "x")],
                events: vec![],
                idempotency: Some(IdempotencyRecord {
                    key: "k".into(),
                    request_sha256: Sha256::digest(b"x"),
                    status: 200,
                    response: serde_json::json!({}),
                    at: h.now(),
                }),
            })
            .await;
        match r {
            Err(StoreError::Conflict(m)) => {
                assert_eq!(m, "credit-risk version 1 is at revision 1, expected 6")
            }
            other => panic!("{other:?}"),
        }
        let now = h.gov.model_detail("credit-risk").await.unwrap().model;
        assert_eq!(now, m, "the first put was not applied");
        assert_eq!(h.store.audit_events().len(), size);
        assert_eq!(h.store.outbox().len(), outbox);
        assert_eq!(h.store.idempotency("k").await.unwrap(), None);
    });
}

#[test]
fn conditions_name_what_failed_as_the_sqlite_store_does() {
    let h = Harness::new();
    block_on(async {
        h.register("credit-risk", RiskTier::Low).await;
        let m = h.gov.model_detail("credit-risk").await.unwrap().model;
        let absent = h
            .store
            .commit(Commit {
                puts: vec![Put::Model(m.clone(), Expect::Absent)],
                ..Default::default()
            })
            .await;
        assert_eq!(
            absent.unwrap_err().to_string(),
            "conflict: model credit-risk already exists"
        );
        let mut other = m.clone();
        other.name = ModelName::parse("other").unwrap();
        let missing = h
            .store
            .commit(Commit {
                puts: vec![Put::Model(other, Expect::Revision(1))],
                ..Default::default()
            })
            .await;
        assert_eq!(
            missing.unwrap_err().to_string(),
            "conflict: model other does not exist"
        );
    });
}

#[test]
fn an_idempotency_key_is_claimed_by_one_commit_only() {
    let h = Harness::new();
    block_on(async {
        let rec = IdempotencyRecord {
            key: "dana/register/x/k".into(),
            request_sha256: Sha256::digest(b"x"),
            status: 201,
            response: serde_json::json!({"first": true}),
            at: h.now(),
        };
        let commit = || Commit {
            audit: vec![draft(&h, "x")],
            idempotency: Some(rec.clone()),
            ..Default::default()
        };
        h.store.commit(commit()).await.unwrap();
        let second = h.store.commit(commit()).await;
        assert!(
            matches!(second, Err(StoreError::IdempotencyKeyTaken)),
            "{second:?}"
        );
        assert_eq!(h.store.audit_events().len(), 1);
        assert_eq!(h.store.idempotency(&rec.key).await.unwrap(), Some(rec));
    });
}

#[test]
fn audit_events_are_numbered_from_one_and_every_commit_signs_a_checkpoint_over_them() {
    let h = Harness::new();
    block_on(async {
        let r = h
            .store
            .commit(Commit {
                audit: vec![draft(&h, "a"), draft(&h, "b")],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(r.audit_seqs, [1, 2]);
        let r = h
            .store
            .commit(Commit {
                audit: vec![draft(&h, "c")],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(r.audit_seqs, [3]);
        // A commit without audit events signs nothing new.
        h.store.commit(Commit::default()).await.unwrap();
        let cp = h.store.latest_checkpoint().await.unwrap().unwrap();
        assert_eq!(cp.size, 3);
        verify_checkpoint(&cp, &h.store.signer().verifying_key()).unwrap();
        let (rows, checkpoints) = h.store.audit_rows();
        assert_eq!(checkpoints.len(), 1, "superseded checkpoints are dropped");
        let report = verify_log(&rows, &checkpoints, &h.store.signer().verifying_key()).unwrap();
        assert_eq!(report.events, 3);
        let (event, proof) = h.store.inclusion_proof(2, cp.size).await.unwrap();
        assert_eq!(event.action, "b");
        verify_inclusion(&event.leaf_hash(), 1, cp.size, &proof, &cp.root).unwrap();
        assert!(h.store.inclusion_proof(0, cp.size).await.is_err());
        let (key_id, key) = h.store.public_key();
        assert_eq!(key_id, h.store.signer().key_id());
        assert_eq!(key, h.store.signer().public_key());
    });
}

#[test]
fn a_whole_governance_history_verifies_offline() {
    let h = Harness::new();
    block_on(async {
        h.new_production_version("credit-risk", RiskTier::High)
            .await;
        h.new_production_version("credit-risk", RiskTier::High)
            .await;
        h.gov
            .rollback(&h.cast.ops, "credit-risk", "regression", None)
            .await
            .unwrap();
    });
    let (rows, checkpoints) = h.store.audit_rows();
    let report = verify_log(&rows, &checkpoints, &h.store.signer().verifying_key()).unwrap();
    assert_eq!(report.events, rows.len() as u64);
    let model_events = block_on(h.store.events(
        Some(&ModelName::parse("credit-risk").unwrap()),
        0,
        1000,
    ))
    .unwrap();
    assert_eq!(model_events.len(), rows.len());
    let after = block_on(h.store.events(None, 5, 3)).unwrap();
    assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), [6, 7, 8]);
}

#[test]
fn listings_come_in_key_order_a_page_at_a_time() {
    let h = Harness::new();
    block_on(async {
        for name in ["delta", "alpha", "charlie", "bravo", "echo"] {
            h.register(name, RiskTier::Low).await;
        }
        h.register("zulu", RiskTier::High).await;
        let mut names = vec![];
        let mut cursor = None;
        loop {
            let page = h
                .store
                .list_models(&ModelFilter::default(), cursor.as_deref(), 2)
                .await
                .unwrap();
            names.extend(page.items.iter().map(|m| m.name.to_string()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(
            names,
            ["alpha", "bravo", "charlie", "delta", "echo", "zulu"]
        );
        let high = ModelFilter {
            tier: Some(RiskTier::High),
            ..Default::default()
        };
        let page = h.store.list_models(&high, None, 10).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.next_cursor, None);
        let staged = ModelFilter {
            stage: Some(Stage::Staging),
            ..Default::default()
        };
        assert!(h
            .store
            .list_models(&staged, None, 10)
            .await
            .unwrap()
            .items
            .is_empty());
        h.to_staging("bravo", vn(1)).await;
        let page = h.store.list_models(&staged, None, 10).await.unwrap();
        assert_eq!(page.items[0].name.as_ref(), "bravo");
        let bad = h
            .store
            .list_models(&ModelFilter::default(), Some("zz"), 10)
            .await;
        assert!(matches!(bad, Err(StoreError::InvalidCursor)), "{bad:?}");
    });
}

#[test]
fn pending_reviews_are_listed_by_stage_with_their_promotion() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::High).await;
        h.to_staging("credit-risk", v).await;
        let p = h
            .promote(
                "credit-risk",
                v,
                steward_core::types::Environment::Production,
            )
            .await;
        let filter = ReviewFilter {
            status: ReviewStatus::Pending,
            stages: vec![ReviewStage::Compliance, ReviewStage::Business],
        };
        let page = h.store.list_reviews(&filter, None, 1).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].review.stage, ReviewStage::Business);
        assert_eq!(page.items[0].promotion.id, p.id);
        let next = h
            .store
            .list_reviews(&filter, page.next_cursor.as_deref(), 1)
            .await
            .unwrap();
        assert_eq!(next.items[0].review.stage, ReviewStage::Compliance);
        assert_eq!(next.next_cursor, None);
        let none = ReviewFilter {
            status: ReviewStatus::Pending,
            stages: vec![],
        };
        assert!(h
            .store
            .list_reviews(&none, None, 10)
            .await
            .unwrap()
            .items
            .is_empty());
    });
}

#[test]
fn a_fresh_store_is_empty() {
    let store = MemoryStore::default();
    block_on(async {
        assert_eq!(store.latest_checkpoint().await.unwrap(), None);
        assert!(store.principals().await.unwrap().is_empty());
        let page = store.production_models(None, 10).await.unwrap();
        assert!(page.items.is_empty());
    });
}
