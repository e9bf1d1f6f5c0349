//! Monitoring signals against the card's thresholds, automatic rollback, and rollback by hand.

use steward_core::records::{IncidentKind, Model};
use steward_core::service::{MonitoringSignal, SignalInput, SignalOutcome};
use steward_core::testing::{block_on, vn, Harness};
use steward_core::types::{ModelName, RiskTier, SignalKind};
use steward_core::{GovError, Policy};

use crate::{fields, is_conflict};

fn signal(h: &Harness, version: u32, kind: SignalKind, metric: &str, value: f64) -> SignalOutcome {
    block_on(h.gov.signal(
        &h.cast.ops,
        SignalInput {
            model: ModelName::parse("credit-risk").unwrap(),
            version,
            kind,
            metric: metric.into(),
            value,
        },
    ))
    .unwrap()
}

fn model(h: &Harness) -> Model {
    block_on(h.gov.model_detail("credit-risk")).unwrap().model
}

/// `credit-risk` v1 and then v2 deployed to production in `h`.
fn two_production_versions(h: &Harness) {
    block_on(async {
        h.new_production_version("credit-risk", RiskTier::Medium)
            .await;
        h.new_production_version("credit-risk", RiskTier::Medium)
            .await;
    });
    assert_eq!(model(h).production_version, Some(vn(2)));
}

#[test]
fn drift_over_the_cards_maximum_opens_an_incident_and_requests_retraining() {
    let h = Harness::new();
    two_production_versions(&h);
    let out = signal(&h, 2, SignalKind::Drift, "psi", 0.31);
    assert!(out.breached);
    assert_eq!(out.threshold, Some(0.2));
    assert_eq!(out.actions, ["retraining_requested"]);
    let incident = out.incident.expect("an incident");
    assert_eq!(
        (incident.kind, incident.version),
        (IncidentKind::Drift, Some(vn(2)))
    );
    let types = h.store.outbox_types();
    assert!(types.ends_with(&["IncidentOpened".into(), "RetrainingRequested".into()]));
    // Drift never rolls back.
    assert_eq!(model(&h).production_version, Some(vn(2)));
}

#[test]
fn drift_at_the_cards_maximum_is_not_a_breach() {
    let h = Harness::new();
    two_production_versions(&h);
    let out = signal(&h, 2, SignalKind::Drift, "psi", 0.2);
    assert!(!out.breached);
    assert!(out.incident.is_none());
    assert_eq!(h.store.audit_actions().last().unwrap(), "signal.recorded");
}

#[test]
fn quality_under_the_minimum_rolls_production_back_when_policy_allows() {
    let h = Harness::new();
    two_production_versions(&h);
    let out = signal(&h, 2, SignalKind::Quality, "auc", 0.81);
    assert!(out.breached);
    assert_eq!(out.actions, ["alerted", "rolled_back_to:1"]);
    let m = model(&h);
    assert_eq!(m.production_version, Some(vn(1)));
    let rolled = h
        .store
        .audit_events()
        .into_iter()
        .find(|e| e.action == "model.rolled_back")
        .expect("audited");
    assert_eq!(rolled.details["automatic"], true);
    assert_eq!(rolled.details["from"], 2);
    assert_eq!(rolled.details["to"], 1);
    let now = block_on(h.gov.production_at("credit-risk", h.now())).unwrap();
    assert_eq!(now.version, Some(vn(1)));
}

#[test]
fn quality_at_the_minimum_is_not_a_breach() {
    let h = Harness::new();
    two_production_versions(&h);
    let out = signal(&h, 2, SignalKind::Quality, "auc", 0.85);
    assert!(!out.breached);
    assert_eq!(model(&h).production_version, Some(vn(2)));
}

#[test]
fn quality_under_the_minimum_only_alerts_when_the_tier_has_no_auto_rollback() {
    let mut policy = Policy::default();
    policy
        .tiers
        .get_mut(&RiskTier::Medium)
        .unwrap()
        .auto_rollback = false;
    let h = Harness::with_policy(policy);
    two_production_versions(&h);
    let out = signal(&h, 2, SignalKind::Quality, "auc", 0.5);
    assert_eq!(out.actions, ["alerted"]);
    assert_eq!(model(&h).production_version, Some(vn(2)));
}

#[test]
fn quality_under_the_minimum_of_a_version_not_serving_does_not_roll_back() {
    let h = Harness::new();
    two_production_versions(&h);
    let out = signal(&h, 1, SignalKind::Quality, "auc", 0.5);
    assert_eq!(out.actions, ["alerted"]);
    assert_eq!(model(&h).production_version, Some(vn(2)));
}

#[test]
fn quality_under_the_minimum_with_no_earlier_production_version_says_so() {
    let h = Harness::new();
    block_on(h.new_production_version("credit-risk", RiskTier::Low));
    let out = signal(&h, 1, SignalKind::Quality, "auc", 0.5);
    assert_eq!(out.actions, ["alerted", "no_rollback_target"]);
    assert_eq!(model(&h).production_version, Some(vn(1)));
}

#[test]
fn a_signal_without_a_kind_takes_the_kind_of_the_cards_threshold_and_its_worst_value() {
    let h = Harness::new();
    two_production_versions(&h);
    let s = |metric: &str, values: Vec<f64>| MonitoringSignal {
        model: ModelName::parse("credit-risk").unwrap(),
        version: vn(2),
        kind: None,
        metric: metric.into(),
        values,
    };
    let (out, replay) = block_on(h.gov.signal_once(
        &h.cast.ops,
        s("psi", vec![0.1, 0.25, 0.15]),
        None,
    ))
    .unwrap();
    assert!(!replay);
    assert_eq!(
        (out.kind, out.value, out.breached),
        (SignalKind::Drift, 0.25, true)
    );
    let (out, _) = block_on(
        h.gov
            .signal_once(&h.cast.ops, s("auc", vec![0.9, 0.86]), None),
    )
    .unwrap();
    assert_eq!(
        (out.kind, out.value, out.breached),
        (SignalKind::Quality, 0.86, false)
    );
    let before = h.store.audit_events().len();
    let unknown = block_on(
        h.gov
            .signal_once(&h.cast.ops, s("latency", vec![1.0]), None),
    );
    assert_eq!(fields(unknown), ["metric"]);
    let not_finite = block_on(
        h.gov
            .signal_once(&h.cast.ops, s("psi", vec![f64::NAN]), None),
    );
    assert_eq!(fields(not_finite), ["value"]);
    assert_eq!(h.store.audit_events().len(), before, "nothing recorded");
}

#[test]
fn only_an_operator_reports_signals() {
    let h = Harness::new();
    two_production_versions(&h);
    let r = block_on(h.gov.signal(
        &h.cast.dev,
        SignalInput {
            model: ModelName::parse("credit-risk").unwrap(),
            version: 2,
            kind: SignalKind::Quality,
            metric: "auc".into(),
            value: 0.1,
        },
    ));
    assert!(matches!(r, Err(GovError::Forbidden(_))), "{r:?}");
    assert_eq!(model(&h).production_version, Some(vn(2)));
}

#[test]
fn a_rollback_puts_the_previous_production_version_back_and_is_audited() {
    let h = Harness::new();
    two_production_versions(&h);
    let m = block_on(
        h.gov
            .rollback(&h.cast.ops, "credit-risk", "latency regression", None),
    )
    .unwrap();
    assert_eq!(m.production_version, Some(vn(1)));
    let e = h.store.audit_events().pop().unwrap();
    assert_eq!(
        (e.action.as_str(), e.actor.as_str()),
        ("model.rolled_back", "otto")
    );
    assert_eq!(e.details["reason"], "latency regression");
    assert_eq!(e.details["automatic"], false);
    let empty = block_on(h.gov.rollback(&h.cast.ops, "credit-risk", " ", None));
    assert_eq!(fields(empty), ["reason"]);
}

#[test]
fn a_rollback_without_an_earlier_production_version_is_a_conflict() {
    let h = Harness::new();
    block_on(async {
        h.register("credit-risk", RiskTier::Low).await;
        let none = h.gov.rollback(&h.cast.ops, "credit-risk", "x", None).await;
        assert!(is_conflict(&none), "nothing in production: {none:?}");
        h.to_production("credit-risk", vn(1)).await;
        let only = h.gov.rollback(&h.cast.ops, "credit-risk", "x", None).await;
        assert!(is_conflict(&only), "no earlier version: {only:?}");
    });
}

#[test]
fn a_rollback_never_returns_to_a_retired_version() {
    let h = Harness::new();
    block_on(async {
        for _ in 0..3 {
            h.new_production_version("credit-risk", RiskTier::Low).await;
        }
        h.gov
            .retire(&h.cast.dev, "credit-risk", vn(2), "superseded", None)
            .await
            .unwrap();
        let m = h
            .gov
            .rollback(&h.cast.ops, "credit-risk", "regression", None)
            .await
            .unwrap();
        assert_eq!(m.production_version, Some(vn(1)));
    });
}

#[test]
fn concurrent_rollbacks_of_one_production_state_change_it_once() {
    let h = Harness::new();
    two_production_versions(&h);
    block_on(async {
        // Two operators read the same production state; the second commit loses.
        let stale = h.gov.model_detail("credit-risk").await.unwrap().model;
        h.gov
            .rollback(&h.cast.ops, "credit-risk", "first", None)
            .await
            .unwrap();
        let mut m = stale.clone();
        m.production_version = Some(vn(1));
        m.revision += 1;
        let r = steward_core::ports::Registry::commit(
            h.store.as_ref(),
            steward_core::ports::Commit {
                puts: vec![steward_core::ports::Put::Model(
                    m,
                    steward_core::ports::Expect::Revision(stale.revision),
                )],
                ..Default::default()
            },
        )
        .await;
        assert!(
            matches!(r, Err(steward_core::StoreError::Conflict(_))),
            "{r:?}"
        );
        let rollbacks = h
            .store
            .audit_actions()
            .iter()
            .filter(|a| *a == "model.rolled_back")
            .count();
        assert_eq!(rollbacks, 1);
    });
}

#[test]
fn repeated_rollbacks_walk_back_through_earlier_versions_and_never_return_to_one_rolled_back_from()
{
    let h = Harness::new();
    two_production_versions(&h);
    block_on(h.new_production_version("credit-risk", RiskTier::Medium));
    assert_eq!(model(&h).production_version, Some(vn(3)));
    let rollback = || {
        block_on(
            h.gov
                .rollback(&h.cast.ops, "credit-risk", "regression", None),
        )
    };
    assert_eq!(rollback().unwrap().production_version, Some(vn(2)));
    // Before the fix this went back to 3, the version just rolled back from.
    assert_eq!(rollback().unwrap().production_version, Some(vn(1)));
    let m = model(&h);
    assert_eq!(m.production_history, [vn(1), vn(2), vn(3), vn(2), vn(1)]);
    assert_eq!(m.rolled_back_from, [vn(3), vn(2)]);
    let exhausted = rollback();
    assert!(is_conflict(&exhausted), "{exhausted:?}");
    assert_eq!(model(&h).production_version, Some(vn(1)));
}

#[test]
fn an_automatic_rollback_after_a_manual_one_does_not_return_to_the_version_rolled_back_from() {
    let h = Harness::new();
    two_production_versions(&h);
    block_on(h.new_production_version("credit-risk", RiskTier::Medium));
    block_on(
        h.gov
            .rollback(&h.cast.ops, "credit-risk", "regression", None),
    )
    .unwrap();
    assert_eq!(model(&h).production_version, Some(vn(2)));
    let out = signal(&h, 2, SignalKind::Quality, "auc", 0.1);
    assert!(out.breached, "{out:?}");
    assert!(
        out.actions.contains(&"rolled_back_to:1".to_owned()),
        "{:?}",
        out.actions
    );
    assert_eq!(model(&h).production_version, Some(vn(1)));
}
