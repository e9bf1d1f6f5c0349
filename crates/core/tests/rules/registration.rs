//! Registration: the manifest validated field by field, against the model's history and the
//! evidence store; nothing is stored when anything is wrong.

use serde_json::{json, Value};
use steward_core::ports::EvidenceKind;
use steward_core::records::ModelVersion;
use steward_core::testing::{block_on, manifest, vn, Harness};
use steward_core::types::{RiskTier, Sha256, Stage};
use steward_core::GovError;

use crate::fields;

/// Registers `body` as `credit-risk` and asserts, when refused, that nothing was written.
fn register(h: &Harness, body: Value) -> Result<ModelVersion, GovError> {
    block_on(async {
        let before = (h.store.audit_events().len(), h.store.outbox().len());
        let r = h
            .gov
            .register(&h.cast.dev, "credit-risk", body, None)
            .await
            .map(|(v, _)| v);
        if r.is_err() {
            assert_eq!(
                (h.store.audit_events().len(), h.store.outbox().len()),
                before,
                "a refused registration writes nothing"
            );
        }
        r
    })
}

fn without(mut m: Value, path: &[&str]) -> Value {
    let (last, parents) = path.split_last().unwrap();
    let mut at = &mut m;
    for p in parents {
        at = &mut at[*p];
    }
    at.as_object_mut().unwrap().remove(*last);
    m
}

#[test]
fn a_complete_manifest_registers_version_one_in_development() {
    let h = Harness::new();
    let v = register(&h, manifest(RiskTier::High)).unwrap();
    assert_eq!(
        (v.version, v.stage, v.revision),
        (vn(1), Stage::Development, 1)
    );
    assert_eq!(v.registered_by.as_ref(), "dana");
    assert_eq!(v.registered_at, h.now());
    assert_eq!(h.store.audit_actions(), ["version.registered"]);
    assert_eq!(h.store.outbox_types(), ["ModelVersionRegistered"]);
    // The manifest and the card are kept as evidence, under their hashes.
    assert_eq!(h.evidence.count(EvidenceKind::Manifest), 1);
    assert_eq!(h.evidence.count(EvidenceKind::ModelCard), 1);
    assert!(h.evidence.get(&v.manifest_sha256).is_some());
    let v2 = register(&h, manifest(RiskTier::High)).unwrap();
    assert_eq!(v2.version, vn(2));
}

#[test]
fn no_registration_without_a_model_card() {
    let h = Harness::new();
    assert_eq!(
        fields(register(&h, without(manifest(RiskTier::Low), &["card"]))),
        ["card"]
    );
    assert!(block_on(h.gov.model_detail("credit-risk")).is_err());
}

#[test]
fn no_registration_without_evaluation_results() {
    let h = Harness::new();
    let mut m = manifest(RiskTier::Low);
    m["evaluations"] = json!([]);
    let named = fields(register(&h, m));
    assert!(named.contains(&"evaluations".to_owned()), "{named:?}");
    // The card then references an evaluation that is not recorded.
    assert!(
        named.contains(&"card.evaluation.evaluations[0]".to_owned()),
        "{named:?}"
    );
}

#[test]
fn no_evaluation_without_a_dataset_hash() {
    let h = Harness::new();
    let mut m = manifest(RiskTier::Low);
    m["evaluations"][0]["dataset"]
        .as_object_mut()
        .unwrap()
        .remove("sha256");
    assert_eq!(fields(register(&h, m)), ["evaluations[0].dataset.sha256"]);
}

#[test]
fn no_artifact_without_a_sha256() {
    let h = Harness::new();
    let m = without(manifest(RiskTier::Low), &["artifact", "sha256"]);
    assert_eq!(fields(register(&h, m)), ["artifact.sha256"]);
    let mut m = manifest(RiskTier::Low);
    m["artifact"]["sha256"] = json!("not-a-digest");
    assert_eq!(fields(register(&h, m)), ["artifact.sha256"]);
}

#[test]
fn the_card_may_only_cite_recorded_evaluations() {
    let h = Harness::new();
    let mut m = manifest(RiskTier::Low);
    m["card"]["evaluation"]["evaluations"] = json!(["holdout-2026q1", "imaginary"]);
    assert_eq!(fields(register(&h, m)), ["card.evaluation.evaluations[1]"]);
}

#[test]
fn every_empty_text_a_reviewer_must_read_is_named() {
    let h = Harness::new();
    let mut m = manifest(RiskTier::Low);
    m["description"] = json!(" ");
    m["card"]["overview"] = json!("");
    m["card"]["limitations"] = json!([]);
    m["lineage"]["training_data"] = json!([]);
    let named = fields(register(&h, m));
    for f in [
        "description",
        "card.overview",
        "card.limitations",
        "lineage.training_data",
    ] {
        assert!(named.contains(&f.to_owned()), "{f} not in {named:?}");
    }
}

#[test]
fn unknown_fields_are_refused_rather_than_dropped() {
    let h = Harness::new();
    let mut m = manifest(RiskTier::Low);
    m["card"]["rollbak"] = json!({"procedure": "typo"});
    let named = fields(register(&h, m));
    assert_eq!(
        named,
        ["card.rollbak"],
        "the misspelt field itself is named"
    );
}

#[test]
fn a_model_name_outside_the_pattern_is_refused() {
    let h = Harness::new();
    for bad in ["Credit", "-x", "credit_risk", &"a".repeat(64)] {
        let r = block_on(
            h.gov
                .register(&h.cast.dev, bad, manifest(RiskTier::Low), None),
        );
        assert_eq!(fields(r), ["name"], "{bad}");
    }
}

#[test]
fn an_unknown_risk_tier_is_refused_and_a_version_cannot_change_the_models_tier() {
    let h = Harness::new();
    let mut m = manifest(RiskTier::Low);
    m["risk_tier"] = json!("critical");
    assert_eq!(fields(register(&h, m)), ["risk_tier"]);
    register(&h, manifest(RiskTier::Low)).unwrap();
    assert_eq!(
        fields(register(&h, manifest(RiskTier::High))),
        ["risk_tier"]
    );
}

#[test]
fn a_parent_version_must_exist() {
    let h = Harness::new();
    let mut m = manifest(RiskTier::Low);
    m["lineage"]["parent_version"] = json!(1);
    assert_eq!(fields(register(&h, m.clone())), ["lineage.parent_version"]);
    register(&h, manifest(RiskTier::Low)).unwrap();
    let v2 = register(&h, m).unwrap();
    assert_eq!(v2.lineage.parent_version, Some(1));
    let mut m = manifest(RiskTier::Low);
    m["lineage"]["parent_version"] = json!(5);
    assert_eq!(fields(register(&h, m)), ["lineage.parent_version"]);
}

#[test]
fn a_declared_dependency_must_be_an_active_version_and_learns_its_dependent() {
    let h = Harness::new();
    let mut m = manifest(RiskTier::Low);
    m["dependencies"] = json!([{"name": "features", "version": 1}]);
    assert_eq!(fields(register(&h, m.clone())), ["dependencies[0]"]);
    block_on(async {
        h.gov
            .register(&h.cast.dev, "features", manifest(RiskTier::Low), None)
            .await
            .unwrap();
    });
    register(&h, m).unwrap();
    let features = block_on(h.gov.version_detail("features", vn(1))).unwrap();
    assert_eq!(features.version.dependents.len(), 1);
    assert_eq!(features.version.dependents[0].name.as_ref(), "credit-risk");
    assert_eq!(features.version.revision, 2);
}

#[test]
fn a_readable_artifact_must_match_its_declared_hash_and_size() {
    let h = Harness::new();
    let uri = "s3://acme-models/credit-risk/1/model.tar.gz";
    let bytes = b"model bytes";
    h.evidence.add_artifact(uri, bytes);
    // The example declares another hash.
    let named = fields(register(&h, manifest(RiskTier::Low)));
    assert_eq!(named, ["artifact.sha256"]);
    let mut m = manifest(RiskTier::Low);
    m["artifact"]["sha256"] = json!(Sha256::digest(bytes).to_hex());
    assert_eq!(fields(register(&h, m.clone())), ["artifact.size_bytes"]);
    m["artifact"]["size_bytes"] = json!(bytes.len());
    register(&h, m).unwrap();
    let registered = &h.store.audit_events()[0];
    assert_eq!(registered.details["artifact_check"], "verified");
}

#[test]
fn an_artifact_the_backend_cannot_read_keeps_its_declared_hash_and_says_so() {
    let h = Harness::new();
    register(&h, manifest(RiskTier::Low)).unwrap();
    let check = h.store.audit_events()[0].details["artifact_check"].clone();
    assert!(
        check
            .as_str()
            .is_some_and(|c| c.starts_with("not checked: ")),
        "{check}"
    );
}

#[test]
fn a_card_revision_must_cite_recorded_evaluations_and_match_the_expected_revision() {
    let h = Harness::new();
    let v = register(&h, manifest(RiskTier::Low)).unwrap();
    let card = manifest(RiskTier::Low)["card"].clone();
    block_on(async {
        let mut bad = card.clone();
        bad["evaluation"]["evaluations"] = json!(["unknown"]);
        let r = h
            .gov
            .revise_card(&h.cast.dev, "credit-risk", vn(1), bad, None)
            .await;
        assert_eq!(fields(r), ["card.evaluation.evaluations[0]"]);
        let stale = h
            .gov
            .revise_card(
                &h.cast.dev,
                "credit-risk",
                vn(1),
                card.clone(),
                Some(v.revision + 1),
            )
            .await;
        assert!(crate::is_conflict(&stale), "{stale:?}");
        let revised = h
            .gov
            .revise_card(&h.cast.dev, "credit-risk", vn(1), card, Some(v.revision))
            .await
            .unwrap();
        assert_eq!(revised.card_revision, 2);
        let history = h.gov.card_revisions("credit-risk", vn(1)).await.unwrap();
        assert_eq!(
            history.iter().map(|c| c.card_revision).collect::<Vec<_>>(),
            [1, 2]
        );
    });
}

#[test]
fn an_evaluation_name_is_recorded_once_per_version() {
    let h = Harness::new();
    register(&h, manifest(RiskTier::Low)).unwrap();
    block_on(async {
        let eval = steward_core::testing::staging_evaluation();
        h.gov
            .add_evaluation(&h.cast.dev, "credit-risk", vn(1), eval.clone())
            .await
            .unwrap();
        let again = h
            .gov
            .add_evaluation(&h.cast.dev, "credit-risk", vn(1), eval)
            .await;
        assert!(crate::is_conflict(&again), "{again:?}");
        let mut no_metrics = steward_core::testing::staging_evaluation();
        no_metrics["name"] = json!("other");
        no_metrics["metrics"] = json!({});
        let r = h
            .gov
            .add_evaluation(&h.cast.dev, "credit-risk", vn(1), no_metrics)
            .await;
        assert_eq!(fields(r), ["metrics"]);
    });
}
