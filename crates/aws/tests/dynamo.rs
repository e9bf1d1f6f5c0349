//! The DynamoDB registry and audit log against DynamoDB Local: real governance through
//! `steward_core::Governance`, the audit log's proofs against the in-memory Merkle tree, the
//! request economy of every operation, and the fault paths of the one-transaction commit.
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` (load the env file of `scripts/emulators start`, or
//! run under `scripts/emulators run -- cargo test -p steward-aws --test dynamo`); without it
//! the tests fail, saying so. Each test creates its own table.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use chrono::Utc;
use proptest::prelude::*;
use serde_json::json;

use steward_aws::dynamo::{create_table, DynamoStore};
use steward_aws::RequestCounter;
use steward_core::audit::checkpoint::sign_checkpoint;
use steward_core::audit::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use steward_core::audit::verify::verify_log;
use steward_core::audit::{AuditDraft, CheckpointSigner, Ed25519Signer, MerkleTree};
use steward_core::ids::VersionNumber;
use steward_core::ports::{
    AuditLog, Caller, Commit, Expect, InProcessWorkflows, ModelFilter, Put, Registry, SystemClock,
    Workflows,
};
use steward_core::records::{IdempotencyRecord, ReviewStatus};
use steward_core::service::SignalInput;
use steward_core::types::{
    Decision, Environment, ModelName, PrincipalId, ReviewStage, RiskTier, Role, Sha256, SignalKind,
    Stage,
};
use steward_core::{GovError, Governance, Policy, StoreError};
use steward_local::UuidIds;
use steward_testkit::vn;
use steward_testkit::*;

// ---------------------------------------------------------------------------------- harness

/// A DynamoDB client that counts its requests by operation.
async fn client(emulators: &Emulators) -> (Client, RequestCounter) {
    let conf = emulators.dynamodb_sdk().await;
    let counter = RequestCounter::default();
    let client = Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&conf)
            .interceptor(counter.clone())
            .build(),
    );
    (client, counter)
}

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(&[42; 32])
}

/// A fresh table with a store and a governance service over it.
struct Env {
    emulators: Emulators,
    client: Client,
    counter: RequestCounter,
    /// Every request of the test, for the no-`Scan` check.
    all: Mutex<BTreeMap<String, u64>>,
    table: String,
    store: Arc<DynamoStore>,
    gov: Governance,
}

impl Env {
    async fn new() -> Env {
        Self::with_principal_ttl(Duration::from_secs(5)).await
    }

    /// Fails the test when the emulators are not configured.
    async fn with_principal_ttl(ttl: Duration) -> Env {
        let emulators = steward_testkit::emulators!();
        let (client, counter) = client(&emulators).await;
        let table = format!(
            "steward-test-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        create_table(&client, &table).await.unwrap();
        let store = Arc::new(Self::store_on(&client, &table).with_principal_ttl(ttl));
        let gov = governance(store.clone());
        let env = Env {
            emulators,
            client,
            counter,
            all: Mutex::new(BTreeMap::new()),
            table,
            store,
            gov,
        };
        env.take();
        env
    }

    fn store_on(client: &Client, table: &str) -> DynamoStore {
        let s = signer();
        DynamoStore::new(
            client.clone(),
            table.to_owned(),
            (s.key_id(), s.public_key()),
        )
    }

    /// Another store instance (another Lambda) on the same table, with its own counter.
    async fn other_store(&self) -> (Arc<DynamoStore>, RequestCounter) {
        let (client, counter) = client(&self.emulators).await;
        (Arc::new(Self::store_on(&client, &self.table)), counter)
    }

    /// Requests since the last take, by operation.
    fn take(&self) -> BTreeMap<String, u64> {
        let counts = self.counter.take();
        let mut all = self.all.lock().unwrap();
        for (op, n) in &counts {
            *all.entry(op.clone()).or_default() += n;
        }
        counts
    }

    /// Checks that no `Scan` was ever sent and drops the table.
    async fn finish(self) {
        self.take();
        let all = self.all.lock().unwrap().clone();
        assert!(
            !all.keys().any(|op| op.ends_with(".Scan")),
            "a Scan was issued: {all:?}"
        );
        let _ = self
            .client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await;
    }
}

fn governance(store: Arc<DynamoStore>) -> Governance {
    Governance::new(
        store.clone(),
        store,
        Arc::new(InProcessWorkflows),
        Arc::new(SystemClock),
        Arc::new(UuidIds),
        Policy::default(),
    )
}

fn name(s: &str) -> ModelName {
    ModelName::parse(s).unwrap()
}

fn draft(action: &str) -> AuditDraft {
    AuditDraft {
        time: Utc::now(),
        actor: "system:test".into(),
        action: action.into(),
        name: None,
        version: None,
        details: json!({}),
    }
}

async fn to_staging(gov: &Governance, model: &str, v: VersionNumber) {
    let p = gov
        .request_promotion(&dev(), model, v, Environment::Staging, None)
        .await
        .unwrap();
    gov.decide(
        &reviewer(ReviewStage::Technical),
        &p.reviews[0].id,
        approve(),
    )
    .await
    .unwrap();
    gov.deploy(&dev(), model, v, Environment::Staging, None)
        .await
        .unwrap();
    gov.add_evaluation(
        &dev(),
        model,
        v,
        staging_evaluation_named("staging-shadow-2026q2"),
    )
    .await
    .unwrap();
}

async fn to_production(gov: &Governance, model: &str, v: VersionNumber) {
    to_staging(gov, model, v).await;
    let p = gov
        .request_promotion(&dev(), model, v, Environment::Production, None)
        .await
        .unwrap();
    for r in &p.reviews {
        gov.decide(&reviewer(r.stage), &r.id, approve())
            .await
            .unwrap();
    }
    gov.deploy(&rel(), model, v, Environment::Production, None)
        .await
        .unwrap();
}

/// Checks every event's leaf, the root, proofs and `verify_log` with a freshly stored
/// checkpoint; returns the log size.
async fn verify_audit_log(store: &DynamoStore) -> u64 {
    let rows = store.events_range(0, usize::MAX).await.unwrap();
    let head = store.head().await.unwrap();
    assert_eq!(rows.len() as u64, head.size);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.seq, i as u64 + 1, "the log has a gap");
        assert_eq!(
            row.leaf_hash,
            Some(leaf_hash(&row.bytes)),
            "event {}",
            row.seq
        );
        let event = steward_core::audit::AuditEvent::from_canonical(&row.bytes).unwrap();
        assert_eq!(event.seq, row.seq);
        assert_eq!(event.canonical_bytes(), row.bytes, "not canonical");
    }
    let tree = MerkleTree::from_leaves(rows.iter().map(|r| r.leaf_hash.unwrap()));
    assert_eq!(head.root, tree.root());

    let s = signer();
    let cp = sign_checkpoint(&s, head.size, head.root, head.time.clone().unwrap());
    assert!(store.put_checkpoint(&cp).await.unwrap());
    assert_eq!(store.latest_checkpoint().await.unwrap(), Some(cp.clone()));
    let report = verify_log(
        &rows,
        &store.checkpoints().await.unwrap(),
        &s.verifying_key(),
    )
    .unwrap();
    assert_eq!(report.size, head.size);

    let n = head.size;
    for seq in [1, n / 3 + 1, n / 2 + 1, n] {
        let (event, proof) = store.inclusion_proof(seq, n).await.unwrap();
        assert_eq!(event.seq, seq);
        verify_inclusion(&event.leaf_hash(), seq - 1, n, &proof, &cp.root).unwrap();
    }
    for old in [1, n / 2, n - 1] {
        let proof = store.consistency_proof(old, n).await.unwrap();
        verify_consistency(old, n, &tree.root_at(old).unwrap(), &cp.root, &proof).unwrap();
    }
    n
}

// ---------------------------------------------------------------------------------- table

#[tokio::test]
async fn the_table_is_created_with_four_gsis_a_new_image_stream_and_ttl() {
    let env = Env::new().await;
    let t = env
        .client
        .describe_table()
        .table_name(&env.table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let mut gsis: Vec<(String, aws_sdk_dynamodb::types::ProjectionType)> = t
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            (
                g.index_name().unwrap().to_owned(),
                g.projection()
                    .and_then(|p| p.projection_type())
                    .unwrap()
                    .clone(),
            )
        })
        .collect();
    gsis.sort_by(|a, b| a.0.cmp(&b.0));
    use aws_sdk_dynamodb::types::ProjectionType::{All, KeysOnly};
    assert_eq!(
        gsis,
        [
            ("gsi1".to_owned(), All),
            ("gsi2".to_owned(), All),
            ("gsi3".to_owned(), All),
            // Versions by artifact URI: keys only, the versions are read after it.
            ("gsi4".to_owned(), KeysOnly),
        ]
    );
    let stream = t.stream_specification().unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type(),
        Some(&aws_sdk_dynamodb::types::StreamViewType::NewImage)
    );
    assert_eq!(
        t.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
    );
    let ttl = env
        .client
        .describe_time_to_live()
        .table_name(&env.table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    env.finish().await;
}

// ---------------------------------------------------------------------------------- governance

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_risk_model_goes_from_registration_through_production_to_retirement() {
    let env = Env::new().await;
    let gov = &env.gov;
    let m = "credit-risk";
    let (v1, replayed) = gov.register(&dev(), m, manifest(), None).await.unwrap();
    assert!(!replayed);
    assert_eq!(
        (v1.version, v1.stage, v1.revision),
        (vn(1), Stage::Development, 1)
    );
    let (v2, _) = gov.register(&dev(), m, manifest(), None).await.unwrap();
    assert_eq!(v2.version, vn(2));
    let model = env.store.model(&name(m)).await.unwrap().unwrap();
    assert_eq!((model.latest_version, model.revision), (vn(2), 2));

    // A card revision is a new revision of the version and of the card.
    let mut card = manifest()["card"].clone();
    card["limitations"]
        .as_array_mut()
        .unwrap()
        .push(json!("Not validated for small-business loans."));
    let revised = gov
        .revise_card(&dev(), m, vn(1), card, Some(1))
        .await
        .unwrap();
    assert_eq!((revised.card_revision, revised.revision), (2, 2));
    let cards = gov.card_revisions(m, vn(1)).await.unwrap();
    assert_eq!(
        cards.iter().map(|c| c.card_revision).collect::<Vec<_>>(),
        [1, 2]
    );

    // Staging, then production with four distinct reviewers.
    let before_staging = Utc::now();
    to_staging(gov, m, vn(1)).await;
    let v = gov.version_detail(m, vn(1)).await.unwrap();
    assert_eq!(v.version.stage, Stage::Staging);
    assert_eq!(v.promotions.len(), 1);
    let p = gov
        .request_promotion(&dev(), m, vn(1), Environment::Production, None)
        .await
        .unwrap();
    assert_eq!(
        p.reviews.iter().map(|r| r.stage).collect::<Vec<_>>(),
        ReviewStage::ALL
    );
    for r in &p.reviews {
        let visible = gov
            .list_reviews(&reviewer(r.stage), ReviewStatus::Pending, None, 50)
            .await
            .unwrap();
        assert_eq!(
            visible
                .items
                .iter()
                .map(|x| x.id.as_str())
                .collect::<Vec<_>>(),
            [r.id.as_str()],
            "{} sees exactly its own pending review",
            r.stage
        );
    }
    assert!(gov
        .list_reviews(&dev(), ReviewStatus::Pending, None, 50)
        .await
        .unwrap()
        .items
        .is_empty());
    let gate = gov.gate(m, vn(1), Environment::Production).await.unwrap();
    assert!(!gate.allowed);
    let err = gov
        .decide(
            &reviewer(ReviewStage::Technical),
            &p.reviews[1].id,
            approve(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GovError::Forbidden(_)), "{err}");
    let mut last = None;
    for r in &p.reviews {
        last = Some(
            gov.decide(&reviewer(r.stage), &r.id, approve())
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        last.unwrap().status,
        steward_core::records::PromotionStatus::Approved
    );
    let approved = gov
        .list_reviews(
            &reviewer(ReviewStage::Technical),
            ReviewStatus::Approved,
            None,
            50,
        )
        .await
        .unwrap();
    assert_eq!(
        approved.items.len(),
        2,
        "the staging and the production review"
    );
    assert!(
        gov.gate(m, vn(1), Environment::Production)
            .await
            .unwrap()
            .allowed
    );
    let before_v1 = Utc::now();
    let deployed = gov
        .deploy(&rel(), m, vn(1), Environment::Production, None)
        .await
        .unwrap();
    assert_eq!(deployed.stage, Stage::Production);
    let after_v1 = Utc::now();

    // Version 2 replaces it, then a rollback returns to version 1.
    to_production(gov, m, vn(2)).await;
    let after_v2 = Utc::now();
    let rolled = gov
        .rollback(&ops(), m, "latency regression", None)
        .await
        .unwrap();
    assert_eq!(rolled.production_version, Some(vn(1)));
    assert_eq!(rolled.production_history, [vn(1), vn(2), vn(1)]);
    let after_rollback = Utc::now();

    // Signals: drift over the card's threshold opens an incident and requests retraining;
    // quality under it rolls production back automatically (high tier).
    let drift = gov
        .signal(
            &ops(),
            SignalInput {
                model: name(m),
                version: 1,
                kind: SignalKind::Drift,
                metric: "psi".into(),
                value: 0.35,
            },
        )
        .await
        .unwrap();
    assert!(drift.breached);
    assert_eq!(drift.actions, ["retraining_requested"]);
    let quality = gov
        .signal(
            &ops(),
            SignalInput {
                model: name(m),
                version: 1,
                kind: SignalKind::Quality,
                metric: "auc".into(),
                value: 0.80,
            },
        )
        .await
        .unwrap();
    // Version 2 was rolled back from, so the automatic rollback does not return to it.
    assert_eq!(quality.actions, ["alerted", "no_rollback_target"]);
    let fine = gov
        .signal(
            &ops(),
            SignalInput {
                model: name(m),
                version: 2,
                kind: SignalKind::Quality,
                metric: "auc".into(),
                value: 0.95,
            },
        )
        .await
        .unwrap();
    assert!(!fine.breached && fine.incident.is_none());
    let incidents = gov.incidents(Some(m), None, 10).await.unwrap();
    assert_eq!(incidents.items.len(), 2);
    let all_incidents = gov.incidents(None, None, 1).await.unwrap();
    assert_eq!(all_incidents.items.len(), 1);
    let rest = gov
        .incidents(None, all_incidents.next_cursor.as_deref(), 10)
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_ne!(rest.items[0].id, all_incidents.items[0].id);
    let paged = gov.incidents(Some(m), None, 1).await.unwrap();
    let paged2 = gov
        .incidents(Some(m), paged.next_cursor.as_deref(), 1)
        .await
        .unwrap();
    assert_eq!(paged2.items.len(), 1);
    assert_ne!(paged.items[0].id, paged2.items[0].id);

    // Point-in-time production.
    let at = |t| gov.production_at(m, t);
    assert_eq!(at(before_staging).await.unwrap().version, None);
    assert_eq!(at(before_v1).await.unwrap().version, None);
    assert_eq!(at(after_v1).await.unwrap().version, Some(vn(1)));
    assert_eq!(at(after_v2).await.unwrap().version, Some(vn(2)));
    assert_eq!(at(after_rollback).await.unwrap().version, Some(vn(1)));
    assert_eq!(at(Utc::now()).await.unwrap().version, Some(vn(1)));

    // Retirement: refused while serving without a replacement, then with one (an explicit
    // replacement may be a version once rolled back from: people decided it).
    let err = gov
        .retire(&dev(), m, vn(1), "superseded", None)
        .await
        .unwrap_err();
    assert!(matches!(err, GovError::Policy(_)), "{err}");
    let retired = gov
        .retire(&dev(), m, vn(1), "superseded by version 2", Some(vn(2)))
        .await
        .unwrap()
        .into_version();
    assert_eq!(retired.stage, Stage::Retired);
    let model = gov.model_detail(m).await.unwrap();
    assert_eq!(model.model.production_version, Some(vn(2)));
    assert_eq!(model.model.retired_versions, [vn(1)]);
    assert!(model.model.rolled_back_from.is_empty());
    assert_eq!(
        model.versions.iter().map(|v| v.stage).collect::<Vec<_>>(),
        [Stage::Retired, Stage::Production]
    );
    let serving = env.store.production_models(None, 10).await.unwrap();
    assert_eq!(serving.items.len(), 1);

    // The audit log recorded every step and verifies.
    let actions: Vec<String> = gov
        .audit_events(&auditor(), Some(m), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "version.registered",
        "card.revised",
        "promotion.requested",
        "review.decided",
        "promotion.approved",
        "version.deployed",
        "evaluation.recorded",
        "model.rolled_back",
        "signal.recorded",
        "incident.opened",
        "retraining.requested",
        "version.retired",
    ] {
        assert!(actions.iter().any(|x| x == a), "no {a} in {actions:?}");
    }
    verify_audit_log(&env.store).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_listed_by_stage_owner_and_tier_and_paged_with_opaque_cursors() {
    let env = Env::new().await;
    let gov = &env.gov;
    let models = [
        ("alpha", "risk", RiskTier::High),
        ("beta", "growth", RiskTier::Low),
        ("delta", "risk", RiskTier::Medium),
        ("gamma", "growth", RiskTier::Low),
        ("omega", "risk", RiskTier::Low),
    ];
    for (m, team, tier) in models {
        gov.register(&dev(), m, manifest_for(team, tier), None)
            .await
            .unwrap();
    }
    gov.register(&dev(), "beta", manifest_for("growth", RiskTier::Low), None)
        .await
        .unwrap();
    to_staging(gov, "beta", vn(2)).await;
    to_staging(gov, "omega", vn(1)).await;

    let all = |f: ModelFilter, limit: usize| async move {
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = gov.list_models(&f, cursor.as_deref(), limit).await.unwrap();
            assert!(page.items.len() <= limit);
            names.extend(page.items.iter().map(|m| m.name.to_string()));
            pages += 1;
            assert!(pages < 20, "paging does not end");
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return names,
            }
        }
    };
    let everything = ["alpha", "beta", "delta", "gamma", "omega"];
    for limit in [1, 2, 5, 10] {
        assert_eq!(
            all(ModelFilter::default(), limit).await,
            everything,
            "limit {limit}"
        );
    }
    let risk = ModelFilter {
        owner: Some("risk".into()),
        ..ModelFilter::default()
    };
    assert_eq!(all(risk.clone(), 2).await, ["alpha", "delta", "omega"]);
    let low = ModelFilter {
        tier: Some(RiskTier::Low),
        ..ModelFilter::default()
    };
    assert_eq!(all(low.clone(), 1).await, ["beta", "gamma", "omega"]);
    let risk_low = ModelFilter {
        tier: Some(RiskTier::Low),
        ..risk.clone()
    };
    assert_eq!(all(risk_low, 1).await, ["omega"]);
    let staging = ModelFilter {
        stage: Some(Stage::Staging),
        ..ModelFilter::default()
    };
    assert_eq!(all(staging.clone(), 1).await, ["beta", "omega"]);
    let development = ModelFilter {
        stage: Some(Stage::Development),
        ..ModelFilter::default()
    };
    // beta keeps version 1 in development; omega has none left there.
    assert_eq!(
        all(development.clone(), 2).await,
        ["alpha", "beta", "delta", "gamma"]
    );
    let dev_growth = ModelFilter {
        owner: Some("growth".into()),
        ..development
    };
    assert_eq!(all(dev_growth, 1).await, ["beta", "gamma"]);
    assert!(all(
        ModelFilter {
            stage: Some(Stage::Production),
            ..ModelFilter::default()
        },
        3
    )
    .await
    .is_empty());

    for bad in ["not-hex", "ff", ""] {
        let err = env
            .store
            .list_models(&ModelFilter::default(), Some(bad), 2)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidCursor), "{bad}: {err}");
    }
    let err = gov
        .list_models(&ModelFilter::default(), Some("zz"), 2)
        .await
        .unwrap_err();
    assert!(matches!(err, GovError::Validation(_)), "{err}");
    let err = env
        .store
        .incidents(Some(&name("alpha")), Some(&hex::encode("X#nope")), 2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidCursor), "{err}");

    let versions = env.store.versions(&name("beta")).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [vn(1), vn(2)]
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_are_listed_by_status_and_stage_and_paged() {
    let env = Env::new().await;
    let gov = &env.gov;
    for m in ["m1", "m2", "m3"] {
        gov.register(&dev(), m, manifest_for("risk", RiskTier::Medium), None)
            .await
            .unwrap();
        gov.request_promotion(&dev(), m, vn(1), Environment::Staging, None)
            .await
            .unwrap();
    }
    let tech = reviewer(ReviewStage::Technical);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = gov
            .list_reviews(&tech, ReviewStatus::Pending, cursor.as_deref(), 2)
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|r| r.name.to_string()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["m1", "m2", "m3"]);
    let biz = reviewer(ReviewStage::Business);
    assert!(gov
        .list_reviews(&biz, ReviewStatus::Pending, None, 10)
        .await
        .unwrap()
        .items
        .is_empty());

    // Due reviews: none yet; all three once their deadline has passed.
    assert!(env
        .store
        .reviews_due(Utc::now(), 10)
        .await
        .unwrap()
        .is_empty());
    let later = Utc::now() + chrono::Duration::days(4);
    assert_eq!(env.store.reviews_due(later, 10).await.unwrap().len(), 3);
    assert_eq!(env.store.reviews_due(later, 2).await.unwrap().len(), 2);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_the_first_registration_and_refuses_another_body() {
    let env = Env::new().await;
    let gov = &env.gov;
    let (first, replayed) = gov
        .register(&dev(), "fraud", manifest(), Some("run-1"))
        .await
        .unwrap();
    assert!(!replayed);
    let size = env.store.head().await.unwrap().size;
    let (again, replayed) = gov
        .register(&dev(), "fraud", manifest(), Some("run-1"))
        .await
        .unwrap();
    assert!(replayed);
    assert_eq!(
        again, first,
        "the replay returns the stored version exactly"
    );
    let mut other = manifest();
    other["description"] = json!("something else");
    let err = gov
        .register(&dev(), "fraud", other, Some("run-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, GovError::Conflict(_)), "{err}");
    assert_eq!(
        env.store.head().await.unwrap().size,
        size,
        "nothing was appended"
    );
    assert_eq!(env.store.versions(&name("fraud")).await.unwrap().len(), 1);
    let (next, _) = gov
        .register(&dev(), "fraud", manifest(), Some("run-2"))
        .await
        .unwrap();
    assert_eq!(next.version, vn(2));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_registrations_of_one_model_get_twenty_versions_and_a_gap_free_log() {
    let env = Env::new().await;
    let gov = Arc::new(governance(env.store.clone()));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let gov = gov.clone();
        set.spawn(async move {
            let who = if i % 2 == 0 { dev() } else { dev2() };
            gov.register(&who, "busy", manifest(), None).await
        });
    }
    let mut versions = Vec::new();
    while let Some(r) = set.join_next().await {
        versions.push(r.unwrap().unwrap().0.version);
    }
    println!("20 concurrent registrations: {:?}", env.take());
    versions.sort();
    assert_eq!(versions, (1..=20).map(vn).collect::<Vec<_>>());
    let registered = env
        .store
        .events(Some(&name("busy")), 0, 100)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "version.registered")
        .count();
    assert_eq!(registered, 20);
    assert_eq!(verify_audit_log(&env.store).await, 20);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_promotion_requests_start_exactly_one_and_the_other_is_a_409() {
    let env = Env::new().await;
    env.gov
        .register(&dev(), "racy", manifest(), None)
        .await
        .unwrap();
    // Two API instances: separate stores, so neither sees the other's head in memory.
    let (other, _) = env.other_store().await;
    let other_gov = governance(other);
    let (one, two) = (dev(), dev2());
    let (a, b) = tokio::join!(
        env.gov
            .request_promotion(&one, "racy", vn(1), Environment::Staging, None),
        other_gov.request_promotion(&two, "racy", vn(1), Environment::Staging, None)
    );
    let results = [a, b];
    // The loser read before the winner committed: it lost the race (contended), or it read
    // after and found a promotion in review (a state conflict). Either way a 409.
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(GovError::Conflict(_) | GovError::Contended(_))))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((ok, conflicts), (1, 1), "{results:?}");
    let promotions = env.store.promotions_of(&name("racy"), vn(1)).await.unwrap();
    assert_eq!(promotions.len(), 1);
    let requested = env
        .store
        .events(Some(&name("racy")), 0, 100)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "promotion.requested")
        .count();
    assert_eq!(requested, 1);
    verify_audit_log(&env.store).await;
    env.finish().await;
}

// ---------------------------------------------------------------------------------- faults

#[tokio::test]
async fn a_stale_expected_revision_is_a_409_and_writes_nothing() {
    let env = Env::new().await;
    let (v, _) = env
        .gov
        .register(&dev(), "credit-risk", manifest(), None)
        .await
        .unwrap();
    let head = env.store.head().await.unwrap();

    // Through governance: the caller's expected revision is stale.
    let err = env
        .gov
        .request_promotion(&dev(), "credit-risk", vn(1), Environment::Staging, Some(99))
        .await
        .unwrap_err();
    assert!(matches!(err, GovError::Conflict(_)), "{err}");
    assert_eq!(err.code(), "conflict");

    // In the store: the transaction's revision condition fails, so nothing lands.
    let mut stale = v.clone();
    stale.revision += 1;
    let commit = Commit {
        puts: vec![Put::Version(stale, Expect::Revision(v.revision + 7))],
        audit: vec![draft("test.should_not_land")],
        ..Commit::default()
    };
    let err = env.store.commit(commit).await.unwrap_err();
    let StoreError::Conflict(msg) = &err else {
        panic!("{err}")
    };
    assert_eq!(msg, "credit-risk version 1 is at revision 1, expected 8");
    assert_eq!(
        env.store.head().await.unwrap(),
        head,
        "the head did not move"
    );
    assert_eq!(
        env.store.events_range(0, 100).await.unwrap().len() as u64,
        head.size
    );
    let stored = env
        .store
        .version(&name("credit-risk"), vn(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, v);

    // A create-only record that exists is a conflict too.
    let commit = Commit {
        puts: vec![Put::Version(v.clone(), Expect::Absent)],
        audit: vec![draft("test.should_not_land")],
        ..Commit::default()
    };
    let err = env.store.commit(commit).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m == "credit-risk version 1 already exists"),
        "{err}"
    );

    // A commit without audit events (none exist today) writes its records and leaves the
    // head alone.
    let record = steward_core::records::PrincipalRecord {
        id: PrincipalId::parse("quiet").unwrap(),
        roles: vec![Role::Auditor],
        managed_by: "test".into(),
        updated_at: Utc::now(),
        last_administered_at: None,
        revision: 1,
    };
    let r = env
        .store
        .commit(Commit {
            puts: vec![Put::Principal(record.clone(), Expect::Absent)],
            ..Commit::default()
        })
        .await
        .unwrap();
    assert!(r.audit_seqs.is_empty());
    assert_eq!(env.store.head().await.unwrap(), head);
    assert_eq!(env.store.principal(&record.id).await.unwrap(), Some(record));

    // The next commit takes the next position: the failures left no gap.
    let r = env
        .store
        .commit(Commit {
            audit: vec![draft("test.lands")],
            ..Commit::default()
        })
        .await
        .unwrap();
    assert_eq!(r.audit_seqs, [head.size + 1]);
    verify_audit_log(&env.store).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_taken_by_a_concurrent_writer_replays_instead_of_registering_twice() {
    let env = Env::new().await;
    let gov = Arc::new(governance(env.store.clone()));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        // Separate stores: each request reads and commits on its own, like separate Lambdas.
        let (store, _) = env.other_store().await;
        let gov = governance(store);
        set.spawn(async move {
            gov.register(&dev(), "credit-risk", manifest(), Some("pipeline-run-7"))
                .await
        });
    }
    let mut outcomes = Vec::new();
    while let Some(r) = set.join_next().await {
        let (v, replayed) = r.unwrap().unwrap();
        outcomes.push((v.version, replayed));
    }
    assert!(outcomes.iter().all(|(v, _)| *v == vn(1)), "{outcomes:?}");
    assert_eq!(
        outcomes.iter().filter(|(_, r)| !r).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        env.store
            .versions(&name("credit-risk"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(env.store.head().await.unwrap().size, 1);

    // In the store: a commit whose key is taken writes nothing and says so.
    let rec = IdempotencyRecord {
        key: format!("{}/register/credit-risk/pipeline-run-7", dev().id),
        request_sha256: Sha256::digest(b"x"),
        status: 201,
        response: json!({}),
        at: Utc::now(),
    };
    let err = env
        .store
        .commit(Commit {
            idempotency: Some(rec),
            audit: vec![draft("test.should_not_land")],
            ..Commit::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::IdempotencyKeyTaken), "{err}");
    assert_eq!(env.store.head().await.unwrap().size, 1);
    let (_, replayed) = gov
        .register(&dev(), "credit-risk", manifest(), Some("pipeline-run-7"))
        .await
        .unwrap();
    assert!(replayed);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_that_loses_the_race_for_the_audit_head_is_retried_but_a_record_conflict_is_not() {
    let env = Env::new().await;
    let (a, _) = env.other_store().await;
    let (b, b_requests) = env.other_store().await;
    // Both instances know the head of the empty log.
    assert_eq!(a.head().await.unwrap().size, 0);
    assert_eq!(b.head().await.unwrap().size, 0);
    let ra = a
        .commit(Commit {
            audit: vec![draft("test.a")],
            ..Commit::default()
        })
        .await
        .unwrap();
    assert_eq!(ra.audit_seqs, [1]);

    // B plans on size 0: DynamoDB cancels on the head alone; B re-plans on size 1.
    b_requests.take();
    let rb = b
        .commit(Commit {
            audit: vec![draft("test.b1"), draft("test.b2")],
            ..Commit::default()
        })
        .await
        .unwrap();
    assert_eq!(rb.audit_seqs, [2, 3]);
    let counts = b_requests.take();
    println!("head race, requests of the losing commit: {counts:?}");
    assert_eq!(counts.get("DynamoDB.TransactWriteItems"), Some(&2));
    assert_eq!(
        counts.values().sum::<u64>(),
        2,
        "the head came back with the cancellation"
    );

    // A is now stale too, and its record condition fails: that is a conflict, not a retry.
    let (v, _) = env
        .gov
        .register(&dev(), "credit-risk", manifest(), None)
        .await
        .unwrap();
    let (c, c_requests) = env.other_store().await;
    c.get_many(&[]).await.unwrap(); // warm head
    a.commit(Commit {
        audit: vec![draft("test.a2")],
        ..Commit::default()
    })
    .await
    .unwrap();
    c_requests.take();
    let mut stale = v.clone();
    stale.revision = 9;
    let err = c
        .commit(Commit {
            puts: vec![Put::Version(stale, Expect::Revision(8))],
            audit: vec![draft("test.never")],
            ..Commit::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(
        c_requests.take().get("DynamoDB.TransactWriteItems"),
        Some(&1),
        "a record conflict is final"
    );

    // Truly concurrent commits from two instances all land, at consecutive positions.
    let start = env.store.head().await.unwrap().size;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..12 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        set.spawn(async move {
            store
                .commit(Commit {
                    audit: vec![draft("test.concurrent")],
                    ..Commit::default()
                })
                .await
        });
    }
    let mut seqs = Vec::new();
    while let Some(r) = set.join_next().await {
        seqs.extend(r.unwrap().unwrap().audit_seqs);
    }
    seqs.sort();
    assert_eq!(seqs, ((start + 1)..=(start + 12)).collect::<Vec<_>>());
    verify_audit_log(&env.store).await;
    env.finish().await;
}

#[tokio::test]
async fn a_commit_too_large_for_one_transaction_is_refused_and_writes_nothing() {
    let env = Env::new().await;
    let err = env
        .store
        .commit(Commit {
            audit: (0..60).map(|_| draft("test.bulk")).collect(),
            ..Commit::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(m) if m.to_string().contains("at most 100")),
        "{err}"
    );
    assert_eq!(env.store.head().await.unwrap().size, 0);
    let err = env
        .store
        .commit(Commit {
            events: vec![steward_core::records::DomainEvent {
                detail_type: "Orphan".into(),
                detail: json!({}),
            }],
            ..Commit::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
    env.finish().await;
}

// ---------------------------------------------------------------------------------- principals

#[tokio::test]
async fn principal_roles_are_cached_for_the_ttl_and_changes_through_this_instance_are_seen_at_once()
{
    let env = Env::new().await;
    let id = PrincipalId::parse("arn:aws:iam::123456789012:role/ci").unwrap();
    let reader = Arc::new(
        DynamoStore::new(
            env.client.clone(),
            env.table.clone(),
            (signer().key_id(), signer().public_key()),
        )
        .with_principal_ttl(Duration::from_millis(1500)),
    );
    let reader_gov = governance(reader.clone());
    assert_eq!(reader.principal(&id).await.unwrap(), None);
    env.take();
    assert_eq!(reader.principal(&id).await.unwrap(), None);
    assert_eq!(
        env.take().values().sum::<u64>(),
        0,
        "a warm lookup costs no request"
    );

    // Another instance grants a role: seen here once the TTL has passed.
    env.gov
        .seed_principal(&id, vec![Role::Developer], "bootstrap")
        .await
        .unwrap();
    assert_eq!(reader.principal(&id).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let p = reader.principal(&id).await.unwrap().unwrap();
    assert_eq!(p.roles, [Role::Developer]);

    // A change committed through the reader itself is visible at once.
    reader_gov
        .set_roles(&admin(), id.as_ref(), vec![Role::Auditor])
        .await
        .unwrap();
    assert_eq!(
        reader.principal(&id).await.unwrap().unwrap().roles,
        [Role::Auditor]
    );

    // TTL 0: every lookup reads the table.
    let uncached = DynamoStore::new(
        env.client.clone(),
        env.table.clone(),
        (signer().key_id(), signer().public_key()),
    )
    .with_principal_ttl(Duration::ZERO);
    env.take();
    uncached.principal(&id).await.unwrap();
    uncached.principal(&id).await.unwrap();
    assert_eq!(env.take().get("DynamoDB.GetItem"), Some(&2));
    let listed = env.gov.principals(&admin()).await.unwrap();
    assert_eq!(listed.len(), 1);
    env.finish().await;
}

// ---------------------------------------------------------------------------------- audit log

#[tokio::test]
async fn the_latest_checkpoint_never_goes_backwards() {
    let env = Env::new().await;
    for _ in 0..3 {
        env.store
            .commit(Commit {
                audit: vec![draft("test.e")],
                ..Commit::default()
            })
            .await
            .unwrap();
    }
    let s = signer();
    let store = &env.store;
    let root = |n: u64| async move {
        let rows = store.events_range(0, n as usize).await.unwrap();
        MerkleTree::from_leaves(rows.iter().map(|r| r.leaf_hash.unwrap())).root()
    };
    let t = steward_core::audit::format_time(Utc::now());
    let cp3 = sign_checkpoint(&s, 3, root(3).await, t.clone());
    let cp2 = sign_checkpoint(&s, 2, root(2).await, t.clone());
    assert!(env.store.put_checkpoint(&cp3).await.unwrap());
    assert!(
        !env.store.put_checkpoint(&cp2).await.unwrap(),
        "an older checkpoint"
    );
    assert!(
        !env.store.put_checkpoint(&cp3).await.unwrap(),
        "the same size again"
    );
    assert_eq!(
        env.store.latest_checkpoint().await.unwrap(),
        Some(cp3.clone())
    );
    assert_eq!(env.store.checkpoints().await.unwrap(), [cp3]);
    env.finish().await;
}

#[tokio::test]
async fn an_audit_page_across_a_partition_boundary_takes_two_queries() {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    let env = Env::new().await;
    // Events 4081..=4126 straddle the first partition (4096 events each), written in the
    // layout of ACCESS_PATTERNS.md; committing 4096 events first would take minutes.
    let mut writes = Vec::new();
    for seq in 4081u64..=4126 {
        let event = draft("test.fill").at(seq);
        let bytes = event.canonical_bytes();
        let item = std::collections::HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S(format!("AUDIT#{}", (seq - 1) / 4096)),
            ),
            ("sk".to_owned(), AttributeValue::S(format!("{seq:020}"))),
            ("entity".to_owned(), AttributeValue::S("audit_event".into())),
            ("seq".to_owned(), AttributeValue::N(seq.to_string())),
            (
                "leaf_hash".to_owned(),
                AttributeValue::B(leaf_hash(&bytes).to_vec().into()),
            ),
            ("bytes".to_owned(), AttributeValue::B(bytes.into())),
        ]);
        writes.push(
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build(),
        );
    }
    for chunk in writes.chunks(25) {
        let out = env
            .client
            .batch_write_item()
            .request_items(&env.table, chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert!(out.unprocessed_items.unwrap_or_default().is_empty());
    }
    env.take();
    let page = env.store.events(None, 4090, 20).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (4091..=4110).collect::<Vec<_>>()
    );
    assert_eq!(env.take().get("DynamoDB.Query"), Some(&2));
    let page = env.store.events(None, 4100, 1000).await.unwrap();
    assert_eq!(page.len(), 26);
    assert_eq!(env.take().get("DynamoDB.Query"), Some(&1));
    let page = env.store.events(None, 4096, 5).await.unwrap();
    assert_eq!(page.first().map(|e| e.seq), Some(4097));
    assert_eq!(env.take().get("DynamoDB.Query"), Some(&1));
    let rows = env.store.events_range(4080, usize::MAX).await.unwrap();
    assert_eq!(rows.len(), 46);
    assert!(rows
        .iter()
        .all(|r| r.leaf_hash == Some(leaf_hash(&r.bytes))));
    env.finish().await;
}

/// Proofs assembled from the table's items equal the in-memory tree's, for random tree sizes,
/// leaves and old sizes.
#[test]
fn proofs_from_the_table_equal_the_in_memory_merkle_trees() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(Env::new());
    let n = 300u64;
    rt.block_on(async {
        let mut size = 0;
        let mut batch = 1;
        while size < n {
            let k = batch.min(n - size);
            size += env
                .store
                .commit(Commit {
                    audit: (0..k).map(|_| draft("test.leaf")).collect(),
                    ..Commit::default()
                })
                .await
                .unwrap()
                .audit_seqs
                .len() as u64;
            batch = batch % 37 + 1; // commits of 1..37 events
        }
    });
    let rows = rt.block_on(env.store.events_range(0, n as usize)).unwrap();
    let tree = MerkleTree::from_leaves(rows.iter().map(|r| r.leaf_hash.unwrap()));
    assert_eq!(rt.block_on(env.store.head()).unwrap().root, tree.root());

    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(40));
    runner
        .run(&(1..=n, any::<u64>(), any::<u64>()), |(size, a, b)| {
            let seq = 1 + a % size;
            let (event, proof) = rt.block_on(env.store.inclusion_proof(seq, size)).unwrap();
            prop_assert_eq!(event.seq, seq);
            prop_assert_eq!(&proof, &tree.inclusion_proof(seq - 1, size).unwrap());
            let old = b % (size + 1);
            let proof = rt.block_on(env.store.consistency_proof(old, size)).unwrap();
            prop_assert_eq!(&proof, &tree.consistency_proof(old, size).unwrap());
            Ok(())
        })
        .unwrap();

    // Out of range, as the in-memory tree refuses them.
    for (seq, size) in [(0, 5), (6, 5), (1, n + 1)] {
        let err = rt
            .block_on(env.store.inclusion_proof(seq, size))
            .unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err}");
    }
    assert!(rt.block_on(env.store.consistency_proof(6, 5)).is_err());
    assert!(rt.block_on(env.store.consistency_proof(1, n + 1)).is_err());
    rt.block_on(env.finish());
}

// ---------------------------------------------------------------------------------- economy

/// Operation → requests by DynamoDB operation.
type Counts = Vec<(String, BTreeMap<String, u64>)>;

impl Env {
    /// Runs `op` the way a request would: authenticate (principal lookup, cached), then the
    /// governance call; records the requests it made.
    async fn measure<T>(
        &self,
        counts: &mut Counts,
        label: &str,
        who: &Caller,
        op: impl Future<Output = T>,
    ) -> T {
        self.take();
        self.store.principal(&who.id).await.unwrap();
        let out = op.await;
        counts.push((label.to_owned(), self.take()));
        out
    }
}

/// A workflows port whose retirements wait for the retirement workflow, as Step Functions'
/// does, without calling it.
struct ConfirmingWorkflows;
impl Workflows for ConfirmingWorkflows {
    fn confirms_retirements(&self) -> bool {
        true
    }
}

/// Operations that need more than two requests, and why. Anything not listed here must make
/// at most two.
const OVER_TWO: &[(&str, u64, &str)] = &[
    (
        "retirement archive (workflow step)",
        3,
        "not an API operation: the workflow's archive step reads the version to find the \
         confirmed request, then plans the retirement as the API does (version, model and \
         replacement in one batch) before the commit",
    ),
    (
        "rollback",
        3,
        "a manual rollback reads the serving version after the model (which names it) to \
         refuse while a serious incident on it is under investigation (EU AI Act Art. 73)",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_makes_at_most_two_requests_and_none_is_a_scan() {
    // Warm means warm for the whole test, however slow the machine.
    let env = Env::with_principal_ttl(Duration::from_secs(600)).await;
    let gov = &env.gov;
    // Seed every principal, then warm the cache and the head the way a running Lambda is warm.
    for c in everyone() {
        gov.seed_principal(&c.id, c.roles.clone(), "bootstrap")
            .await
            .unwrap();
        env.store.principal(&c.id).await.unwrap();
    }
    gov.register(&dev(), "warmup", manifest(), None)
        .await
        .unwrap();

    let mut c = Counts::new();
    let m = "credit-risk";
    let (tech, biz, comp) = (
        reviewer(ReviewStage::Technical),
        reviewer(ReviewStage::Business),
        reviewer(ReviewStage::Compliance),
    );
    env.measure(
        &mut c,
        "register (new model)",
        &dev(),
        gov.register(&dev(), m, manifest(), None),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "register (next version)",
        &dev(),
        gov.register(&dev(), m, manifest(), Some("k1")),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "register (idempotent replay)",
        &dev(),
        gov.register(&dev(), m, manifest(), Some("k1")),
    )
    .await
    .unwrap();
    env.measure(&mut c, "get model", &dev(), gov.model_detail(m))
        .await
        .unwrap();
    env.measure(
        &mut c,
        "get version detail",
        &dev(),
        gov.version_detail(m, vn(1)),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "list models",
        &dev(),
        gov.list_models(&ModelFilter::default(), None, 50),
    )
    .await
    .unwrap();
    let f = ModelFilter {
        owner: Some("credit-ml".into()),
        ..ModelFilter::default()
    };
    env.measure(
        &mut c,
        "list models (owner)",
        &dev(),
        gov.list_models(&f, None, 50),
    )
    .await
    .unwrap();
    let f = ModelFilter {
        tier: Some(RiskTier::High),
        ..ModelFilter::default()
    };
    env.measure(
        &mut c,
        "list models (tier)",
        &dev(),
        gov.list_models(&f, None, 50),
    )
    .await
    .unwrap();
    let f = ModelFilter {
        stage: Some(Stage::Development),
        ..ModelFilter::default()
    };
    env.measure(
        &mut c,
        "list models (stage)",
        &dev(),
        gov.list_models(&f, None, 50),
    )
    .await
    .unwrap();
    let card = manifest()["card"].clone();
    env.measure(
        &mut c,
        "put card",
        &dev(),
        gov.revise_card(&dev(), m, vn(1), card, None),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "card revisions",
        &dev(),
        gov.card_revisions(m, vn(1)),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "gate",
        &dev(),
        gov.gate(m, vn(1), Environment::Staging),
    )
    .await
    .unwrap();
    let p = env
        .measure(
            &mut c,
            "promotion (staging)",
            &dev(),
            gov.request_promotion(&dev(), m, vn(1), Environment::Staging, None),
        )
        .await
        .unwrap();
    env.measure(
        &mut c,
        "list reviews",
        &tech,
        gov.list_reviews(&tech, ReviewStatus::Pending, None, 50),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "decision",
        &tech,
        gov.decide(&tech, &p.reviews[0].id, approve()),
    )
    .await
    .unwrap();
    env.measure(&mut c, "get promotion", &dev(), gov.promotion(&p.id))
        .await
        .unwrap();
    env.measure(
        &mut c,
        "deploy (staging)",
        &dev(),
        gov.deploy(&dev(), m, vn(1), Environment::Staging, None),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "evaluation",
        &dev(),
        gov.add_evaluation(
            &dev(),
            m,
            vn(1),
            staging_evaluation_named("staging-shadow-2026q2"),
        ),
    )
    .await
    .unwrap();
    let p = env
        .measure(
            &mut c,
            "promotion (production, high tier)",
            &dev(),
            gov.request_promotion(&dev(), m, vn(1), Environment::Production, None),
        )
        .await
        .unwrap();
    for (r, who) in p.reviews.iter().zip([&tech, &biz, &comp, &rel()]) {
        let label = format!("decision ({})", r.stage);
        env.measure(&mut c, &label, who, gov.decide(who, &r.id, approve()))
            .await
            .unwrap();
    }
    env.measure(
        &mut c,
        "gate (production)",
        &rel(),
        gov.gate(m, vn(1), Environment::Production),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "deploy (production)",
        &rel(),
        gov.deploy(&rel(), m, vn(1), Environment::Production, None),
    )
    .await
    .unwrap();
    to_production(gov, m, vn(2)).await;
    env.measure(
        &mut c,
        "rollback",
        &ops(),
        gov.rollback(&ops(), m, "latency regression", None),
    )
    .await
    .unwrap();
    let drift = SignalInput {
        model: name(m),
        version: 1,
        kind: SignalKind::Drift,
        metric: "psi".into(),
        value: 0.5,
    };
    env.measure(
        &mut c,
        "signal (drift, incident)",
        &ops(),
        gov.signal(&ops(), drift),
    )
    .await
    .unwrap();
    let quality = SignalInput {
        model: name(m),
        version: 1,
        kind: SignalKind::Quality,
        metric: "auc".into(),
        value: 0.70,
    };
    env.measure(
        &mut c,
        "signal (quality, auto-rollback)",
        &ops(),
        gov.signal(&ops(), quality.clone()),
    )
    .await
    .unwrap();
    let keyed = SignalInput {
        value: 0.71,
        ..quality
    };
    env.measure(
        &mut c,
        "signal (with Idempotency-Key)",
        &ops(),
        gov.signal_once(&ops(), keyed.clone().try_into().unwrap(), Some("evt-1")),
    )
    .await
    .unwrap();
    let (_, replayed) = env
        .measure(
            &mut c,
            "signal (idempotent replay)",
            &ops(),
            gov.signal_once(&ops(), keyed.try_into().unwrap(), Some("evt-1")),
        )
        .await
        .unwrap();
    assert!(replayed);
    env.measure(
        &mut c,
        "incidents",
        &ops(),
        gov.incidents(Some(m), None, 50),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "retire (with replacement)",
        &rel(),
        gov.retire(&rel(), m, vn(2), "superseded", Some(vn(1))),
    )
    .await
    .unwrap();
    // Where retirements go through the retirement workflow (AWS): the request, the
    // confirmation and the workflow's archive step (Step Functions calls not counted).
    let workflow = Governance::new(
        env.store.clone(),
        env.store.clone(),
        Arc::new(ConfirmingWorkflows),
        Arc::new(SystemClock),
        Arc::new(UuidIds),
        Policy::default(),
    );
    gov.register(&dev(), "retiring", manifest(), None)
        .await
        .unwrap();
    let pending = env
        .measure(
            &mut c,
            "retirement request (workflow)",
            &dev(),
            workflow.retire(&dev(), "retiring", vn(1), "superseded", None),
        )
        .await
        .unwrap()
        .into_version()
        .pending_retirement
        .expect("a pending retirement");
    env.measure(
        &mut c,
        "retirement confirmation",
        &comp,
        workflow.decide_retirement(&comp, "retiring", vn(1), Decision::Approve, None),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "retirement archive (workflow step)",
        &dev(),
        workflow.archive_retirement(&pending.id),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "production at",
        &dev(),
        gov.production_at(m, Utc::now()),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "principals list",
        &admin(),
        gov.principals(&admin()),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "principals set",
        &admin(),
        gov.set_roles(&admin(), "newcomer", vec![Role::Developer]),
    )
    .await
    .unwrap();

    // Audit reads, against a checkpoint the checkpoint function would have stored.
    let head = env.store.head().await.unwrap();
    let cp = sign_checkpoint(&signer(), head.size, head.root, head.time.unwrap());
    env.store.put_checkpoint(&cp).await.unwrap();
    env.measure(
        &mut c,
        "audit events",
        &auditor(),
        gov.audit_events(&auditor(), None, 0, 100),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "audit events (model)",
        &auditor(),
        gov.audit_events(&auditor(), Some(m), 0, 100),
    )
    .await
    .unwrap();
    env.measure(
        &mut c,
        "audit checkpoint",
        &auditor(),
        gov.audit_checkpoint(&auditor()),
    )
    .await
    .unwrap();
    let (event, proof, cp) = env
        .measure(
            &mut c,
            "audit proof",
            &auditor(),
            gov.audit_proof(&auditor(), 5),
        )
        .await
        .unwrap();
    verify_inclusion(&event.leaf_hash(), 4, cp.size, &proof, &cp.root).unwrap();
    env.measure(
        &mut c,
        "audit consistency",
        &auditor(),
        gov.audit_consistency(&auditor(), 3, cp.size),
    )
    .await
    .unwrap();

    println!("\nDynamoDB requests per operation (warm: principal cache and audit head)");
    println!(
        "{:<36} {:>8}  by DynamoDB operation",
        "operation", "requests"
    );
    println!("{}", "-".repeat(96));
    let mut failures = Vec::new();
    for (label, counts) in &c {
        let total: u64 = counts.values().sum();
        let by_op = counts
            .iter()
            .map(|(op, n)| format!("{}×{n}", op.trim_start_matches("DynamoDB.")))
            .collect::<Vec<_>>()
            .join(", ");
        println!("{label:<36} {total:>8}  {by_op}");
        let allowed = OVER_TWO
            .iter()
            .find(|(op, _, _)| label == op)
            .map_or(2, |(_, n, _)| *n);
        if total > allowed {
            failures.push(format!("{label}: {total} requests ({by_op})"));
        }
        assert!(
            !counts.keys().any(|op| op.ends_with(".Scan")),
            "{label} issued a Scan"
        );
    }
    for (op, n, why) in OVER_TWO {
        println!("note: {op} makes {n}: {why}");
    }
    assert!(failures.is_empty(), "over budget: {failures:#?}");
    env.finish().await;
}
