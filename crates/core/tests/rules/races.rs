//! Lost races against state conflicts: a commit whose read went stale is `Contended` (retry
//! may win), a request the state refuses is `Conflict` (no retry changes it). The in-memory
//! store loses races on demand (`MemoryStore::lose_next_races`), standing in for a second
//! writer; everything else is the real service.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use steward_core::ports::Pause;
use steward_core::testing::{block_on, manifest, vn, Harness};
use steward_core::types::{Environment, ReviewStage, RiskTier};
use steward_core::{GovError, Governance};

use crate::{is_conflict, review};

/// The pauses the service asked for, in order (the test's timer: it records and returns).
#[derive(Default)]
struct RecordedPauses(Mutex<Vec<Duration>>);

#[async_trait::async_trait]
impl Pause for RecordedPauses {
    async fn pause(&self, duration: Duration) {
        self.0.lock().unwrap().push(duration);
    }
}

/// The harness's ports, governed by a service that backs off on `pauses`.
fn pausing(h: &Harness, pauses: Arc<RecordedPauses>) -> Governance {
    Governance::new(
        h.store.clone(),
        h.store.clone(),
        h.workflows.clone(),
        h.clock.clone(),
        h.ids.clone(),
        h.gov.policy().clone(),
    )
    .with_pause(pauses)
}

fn is_contended<T>(r: &Result<T, GovError>) -> bool {
    matches!(r, Err(GovError::Contended(_))) && matches!(r, Err(e) if e.code() == "contended")
}

#[test]
fn a_decision_that_loses_its_race_is_contended_writes_nothing_and_succeeds_when_retried() {
    let h = Harness::new();
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Low).await;
        let p = h.promote("credit-risk", v, Environment::Staging).await;
        let id = review(&p, ReviewStage::Technical).id.clone();
        let before = h.store.audit_actions();
        h.store.lose_next_races(1);
        let lost = h.approve(&h.cast.tech, &id).await;
        assert!(is_contended(&lost), "{lost:?}");
        assert!(
            !is_conflict(&lost),
            "a lost race must not read as a state conflict"
        );
        assert_eq!(h.store.audit_actions(), before, "a lost race wrote");
        let retried = h.approve(&h.cast.tech, &id).await.unwrap();
        assert_eq!(
            retried.reviews[0].status,
            steward_core::records::ReviewStatus::Approved
        );
        // Deciding it again is a state the retry cannot change: a conflict, not a race.
        let again = h.approve(&h.cast.tech, &id).await;
        assert!(is_conflict(&again), "{again:?}");
        assert!(!is_contended(&again));
    });
}

#[test]
fn a_registration_that_loses_races_backs_off_with_growing_jittered_pauses_and_then_succeeds() {
    let h = Harness::new();
    let pauses = Arc::new(RecordedPauses::default());
    let gov = pausing(&h, pauses.clone());
    h.store.lose_next_races(4);
    let (v, replayed) =
        block_on(gov.register(&h.cast.dev, "credit-risk", manifest(RiskTier::Low), None)).unwrap();
    assert_eq!((v.version, replayed), (vn(1), false));
    assert_eq!(h.store.audit_actions(), ["version.registered"]);
    let pauses = pauses.0.lock().unwrap().clone();
    assert_eq!(pauses.len(), 4, "one pause per lost race: {pauses:?}");
    for (attempt, p) in pauses.iter().enumerate() {
        let ceiling = Duration::from_millis(5 << attempt);
        assert!(*p < ceiling, "pause {attempt} {p:?} not under {ceiling:?}");
    }
}

#[test]
fn a_registration_that_loses_every_race_is_contended_and_leaves_no_version() {
    let h = Harness::new();
    h.store.lose_next_races(usize::MAX);
    let r = block_on(
        h.gov
            .register(&h.cast.dev, "credit-risk", manifest(RiskTier::Low), None),
    );
    h.store.lose_next_races(0);
    assert!(is_contended(&r), "{r:?}");
    assert!(h.store.audit_actions().is_empty());
    let model = block_on(h.gov.model_detail("credit-risk"));
    assert!(matches!(model, Err(GovError::NotFound(_))), "{model:?}");
}

#[test]
fn a_rollback_that_loses_its_race_is_contended_and_production_is_unchanged() {
    let h = Harness::new();
    block_on(async {
        h.to_production(
            "credit-risk",
            h.register("credit-risk", RiskTier::Low).await,
        )
        .await;
        h.new_production_version("credit-risk", RiskTier::Low).await;
        h.store.lose_next_races(1);
        let lost = h
            .gov
            .rollback(&h.cast.ops, "credit-risk", "regression", None)
            .await;
        assert!(is_contended(&lost), "{lost:?}");
        let m = h.gov.model_detail("credit-risk").await.unwrap();
        assert_eq!(m.model.production_version, Some(vn(2)));
        // A rollback from a version that no longer serves is a state conflict.
        let stale = h
            .gov
            .rollback(&h.cast.ops, "credit-risk", "regression", Some(1))
            .await;
        assert!(is_conflict(&stale), "{stale:?}");
    });
}
