//! Change control: with a [`ChangeControl`] attached (here a port fake standing in for
//! ServiceNow: it answers from a map the test fills, or fails as an unreachable system does),
//! production waits for an approved change request, the reasons name the change, the change
//! number lands in the deployment's audit event, an unreachable system refuses (fails closed),
//! and staging never asks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use steward_core::ids::VersionNumber;
use steward_core::ports::{ChangeControl, ChangeRecord};
use steward_core::service::WebhookPorts;
use steward_core::testing::{block_on, Harness};
use steward_core::types::{Environment, ModelName, RiskTier};
use steward_core::{Governance, Policy, StoreError};

use crate::policy_reasons;

/// A port fake of a change-management system: the change of each `(name, version)`, or down.
#[derive(Default)]
struct FakeChanges {
    changes: Mutex<HashMap<(String, u32), ChangeRecord>>,
    down: Mutex<bool>,
    asked: AtomicUsize,
}

impl FakeChanges {
    fn set(&self, name: &str, version: VersionNumber, number: &str, state: &str, approved: bool) {
        self.changes.lock().unwrap().insert(
            (name.to_owned(), version.get()),
            ChangeRecord {
                number: number.into(),
                state: state.into(),
                approved,
            },
        );
    }
    fn set_down(&self, down: bool) {
        *self.down.lock().unwrap() = down;
    }
}

#[async_trait]
impl ChangeControl for FakeChanges {
    fn system(&self) -> &str {
        "ServiceNow"
    }
    async fn change_for(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Option<ChangeRecord>, StoreError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if *self.down.lock().unwrap() {
            return Err(StoreError::backend_msg("ServiceNow answered 503"));
        }
        let key = (name.to_string(), version.get());
        Ok(self.changes.lock().unwrap().get(&key).cloned())
    }
}

/// The usual harness with `changes` attached to its governance service.
fn harness(changes: Arc<FakeChanges>) -> Harness {
    let h = Harness::new();
    let gov = Governance::new(
        h.store.clone(),
        h.store.clone(),
        h.workflows.clone(),
        h.clock.clone(),
        h.ids.clone(),
        Policy::default(),
    )
    .with_evidence(h.evidence.clone())
    .with_webhooks(WebhookPorts {
        secrets: h.secrets.clone(),
        deliveries: h.deliveries.clone(),
    })
    .with_change_control(changes);
    Harness {
        gov: Arc::new(gov),
        ..h
    }
}

/// A medium-tier `credit-risk` version approved for production, not yet deployed there.
async fn approved_for_production(h: &Harness) -> VersionNumber {
    let v = h.register("credit-risk", RiskTier::Medium).await;
    h.to_staging("credit-risk", v).await;
    let p = h.promote("credit-risk", v, Environment::Production).await;
    h.approve_all(&p).await;
    v
}

#[test]
fn production_waits_for_a_change_request_and_the_reason_says_there_is_none() {
    let changes = Arc::new(FakeChanges::default());
    let h = harness(changes.clone());
    block_on(async {
        let v = approved_for_production(&h).await;
        let gate = h
            .gov
            .gate("credit-risk", v, Environment::Production)
            .await
            .unwrap();
        assert!(!gate.allowed);
        assert_eq!(
            gate.reasons,
            ["no ServiceNow change request for credit-risk v1 (one is opened when its production promotion is approved)"]
        );
        let before = h.store.audit_events().len();
        let refused = h
            .gov
            .deploy(&h.cast.rel, "credit-risk", v, Environment::Production, None)
            .await;
        assert_eq!(policy_reasons(refused), gate.reasons);
        assert_eq!(
            h.store.audit_events().len(),
            before,
            "a refusal writes nothing"
        );
    });
}

#[test]
fn a_change_not_yet_approved_is_named_with_its_state_and_an_approved_one_lets_production_through_with_its_number_audited(
) {
    let changes = Arc::new(FakeChanges::default());
    let h = harness(changes.clone());
    block_on(async {
        let v = approved_for_production(&h).await;
        changes.set("credit-risk", v, "CHG0030001", "Assess", false);
        let gate = h
            .gov
            .gate("credit-risk", v, Environment::Production)
            .await
            .unwrap();
        assert_eq!(
            (gate.allowed, gate.reasons),
            (
                false,
                vec!["ServiceNow change CHG0030001 is not approved (state: Assess)".to_owned()]
            )
        );
        assert_eq!(
            policy_reasons(
                h.gov
                    .deploy(&h.cast.rel, "credit-risk", v, Environment::Production, None)
                    .await
            ),
            ["ServiceNow change CHG0030001 is not approved (state: Assess)"]
        );

        changes.set("credit-risk", v, "CHG0030001", "Scheduled", true);
        let gate = h
            .gov
            .gate("credit-risk", v, Environment::Production)
            .await
            .unwrap();
        assert!(gate.allowed, "{gate:?}");
        h.gov
            .deploy(&h.cast.rel, "credit-risk", v, Environment::Production, None)
            .await
            .unwrap();
        let events = h.store.audit_events();
        let deployed = events
            .iter()
            .rev()
            .find(|e| e.action == "version.deployed")
            .unwrap();
        assert_eq!(deployed.details["environment"], "production");
        assert_eq!(deployed.details["change"], "CHG0030001");
    });
}

#[test]
fn an_unreachable_change_system_refuses_production_saying_so_and_never_allows_it() {
    let changes = Arc::new(FakeChanges::default());
    let h = harness(changes.clone());
    block_on(async {
        let v = approved_for_production(&h).await;
        changes.set("credit-risk", v, "CHG0030001", "Implement", true);
        changes.set_down(true);
        let gate = h
            .gov
            .gate("credit-risk", v, Environment::Production)
            .await
            .unwrap();
        assert!(!gate.allowed);
        assert_eq!(gate.reasons.len(), 1, "{gate:?}");
        assert!(
            gate.reasons[0]
                .starts_with("cannot check the ServiceNow change request for credit-risk v1:")
                && gate.reasons[0].ends_with("production waits until ServiceNow answers"),
            "{gate:?}"
        );
        // A policy refusal (422), not a store failure (5xx).
        let refused = h
            .gov
            .deploy(&h.cast.rel, "credit-risk", v, Environment::Production, None)
            .await;
        assert_eq!(policy_reasons(refused), gate.reasons);
        changes.set_down(false);
        assert!(
            h.gov
                .gate("credit-risk", v, Environment::Production)
                .await
                .unwrap()
                .allowed
        );
    });
}

#[test]
fn staging_never_asks_change_control() {
    let changes = Arc::new(FakeChanges::default());
    let h = harness(changes.clone());
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Medium).await;
        h.to_staging("credit-risk", v).await;
        assert!(
            h.gov
                .gate("credit-risk", v, Environment::Staging)
                .await
                .unwrap()
                .allowed
        );
        assert_eq!(changes.asked.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn the_gate_lists_the_change_beside_the_policy_reasons() {
    let changes = Arc::new(FakeChanges::default());
    let h = harness(changes.clone());
    block_on(async {
        let v = h.register("credit-risk", RiskTier::Medium).await;
        h.to_staging("credit-risk", v).await;
        changes.set("credit-risk", v, "CHG0030002", "New", false);
        let gate = h
            .gov
            .gate("credit-risk", v, Environment::Production)
            .await
            .unwrap();
        assert_eq!(
            gate.reasons,
            [
                "version 1 is not approved for production",
                "ServiceNow change CHG0030002 is not approved (state: New)"
            ]
        );
    });
}

#[test]
fn a_replacement_takes_over_production_only_with_an_approved_change() {
    let changes = Arc::new(FakeChanges::default());
    let h = harness(changes.clone());
    block_on(async {
        let v1 = approved_for_production(&h).await;
        changes.set("credit-risk", v1, "CHG0030001", "Implement", true);
        h.gov
            .deploy(
                &h.cast.rel,
                "credit-risk",
                v1,
                Environment::Production,
                None,
            )
            .await
            .unwrap();
        let v2 = approved_for_production(&h).await;
        let refused = h
            .gov
            .retire(&h.cast.rel, "credit-risk", v1, "superseded", Some(v2))
            .await;
        assert_eq!(
            policy_reasons(refused),
            ["replacement cannot take over production: no ServiceNow change request for credit-risk v2 (one is opened when its production promotion is approved)"]
        );
    });
}
