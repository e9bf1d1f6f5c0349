//! Idempotent retries: the same request under the same key answers the first result and
//! writes nothing; the same key with another request is a conflict; keys are per caller.

use serde_json::json;
use steward_core::service::MonitoringSignal;
use steward_core::testing::{block_on, manifest, vn, Harness};
use steward_core::types::{ModelName, RiskTier, SignalKind};

use crate::{fields, is_conflict};

#[test]
fn a_retried_registration_returns_the_first_version_and_writes_nothing() {
    let h = Harness::new();
    block_on(async {
        let (first, replay) = h
            .gov
            .register(
                &h.cast.dev,
                "credit-risk",
                manifest(RiskTier::Low),
                Some("k-1"),
            )
            .await
            .unwrap();
        assert!(!replay);
        let size = h.store.audit_events().len();
        h.clock.advance(std::time::Duration::from_secs(60));
        let (again, replay) = h
            .gov
            .register(
                &h.cast.dev,
                "credit-risk",
                manifest(RiskTier::Low),
                Some("k-1"),
            )
            .await
            .unwrap();
        assert!(replay);
        assert_eq!(
            again, first,
            "the very same version, registered_at included"
        );
        assert_eq!(h.store.audit_events().len(), size);
        let versions = h.gov.model_detail("credit-risk").await.unwrap().versions;
        assert_eq!(versions.len(), 1);
    });
}

#[test]
fn the_same_key_with_another_body_is_a_conflict() {
    let h = Harness::new();
    block_on(async {
        h.gov
            .register(
                &h.cast.dev,
                "credit-risk",
                manifest(RiskTier::Low),
                Some("k-1"),
            )
            .await
            .unwrap();
        let mut other = manifest(RiskTier::Low);
        other["description"] = json!("something else");
        let r = h
            .gov
            .register(&h.cast.dev, "credit-risk", other, Some("k-1"))
            .await;
        assert!(is_conflict(&r), "{r:?}");
        assert_eq!(
            h.gov
                .model_detail("credit-risk")
                .await
                .unwrap()
                .versions
                .len(),
            1
        );
    });
}

#[test]
fn idempotency_keys_are_scoped_to_the_caller_and_the_model() {
    let h = Harness::new();
    block_on(async {
        let key = Some("same-key");
        let (a, _) = h
            .gov
            .register(&h.cast.dev, "credit-risk", manifest(RiskTier::Low), key)
            .await
            .unwrap();
        let (b, replay) = h
            .gov
            .register(&h.cast.dev2, "credit-risk", manifest(RiskTier::Low), key)
            .await
            .unwrap();
        assert!(!replay);
        assert_eq!((a.version, b.version), (vn(1), vn(2)));
        let (c, replay) = h
            .gov
            .register(&h.cast.dev, "pricing", manifest(RiskTier::Low), key)
            .await
            .unwrap();
        assert!(!replay);
        assert_eq!(c.version, vn(1));
    });
}

#[test]
fn an_idempotency_key_must_be_one_to_255_characters() {
    let h = Harness::new();
    block_on(async {
        for bad in [String::new(), "k".repeat(256)] {
            let r = h
                .gov
                .register(
                    &h.cast.dev,
                    "credit-risk",
                    manifest(RiskTier::Low),
                    Some(&bad),
                )
                .await;
            assert_eq!(fields(r), ["Idempotency-Key"]);
        }
    });
}

#[test]
fn a_redelivered_monitoring_signal_opens_one_incident() {
    let h = Harness::new();
    block_on(async {
        h.new_production_version("credit-risk", RiskTier::Low).await;
        let s = || MonitoringSignal {
            model: ModelName::parse("credit-risk").unwrap(),
            version: vn(1),
            kind: Some(SignalKind::Drift),
            metric: "psi".into(),
            values: vec![0.4],
        };
        let (first, replay) = h
            .gov
            .signal_once(&h.cast.ops, s(), Some("event-1"))
            .await
            .unwrap();
        assert!(!replay);
        let size = h.store.audit_events().len();
        let (again, replay) = h
            .gov
            .signal_once(&h.cast.ops, s(), Some("event-1"))
            .await
            .unwrap();
        assert!(replay);
        assert_eq!(again, first);
        assert_eq!(h.store.audit_events().len(), size);
        let incidents = h.gov.incidents(None, None, 50).await.unwrap().items;
        assert_eq!(incidents.len(), 1);
        let mut changed = s();
        changed.values = vec![0.5];
        let r = h
            .gov
            .signal_once(&h.cast.ops, changed, Some("event-1"))
            .await;
        assert!(is_conflict(&r), "{r:?}");
        // Another key is another delivery.
        h.gov
            .signal_once(&h.cast.ops, s(), Some("event-2"))
            .await
            .unwrap();
        assert_eq!(
            h.gov.incidents(None, None, 50).await.unwrap().items.len(),
            2
        );
    });
}
