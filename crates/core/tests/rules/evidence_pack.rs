//! Evidence packs: a high-risk version's signed documentation verifies offline, and every
//! kind of tampering (a flipped byte, a removed event, a swapped proof, a forged fact, another
//! key) makes verification fail with its reason. Tampering that re-signs the manifest with the
//! real key (what only a key holder could do) reaches the deeper checks.

use sha2::{Digest, Sha256};
use steward_core::audit::{CheckpointSigner, Ed25519Signer, PublicKey};
use steward_core::pack::document::Document;
use steward_core::pack::{
    event_path, from_zip, proof_path, render_html, signing_message, verify_pack, Manifest, Pack,
    PackError, DOCUMENT_HTML, DOCUMENT_JSON, MANIFEST, SIGNATURE,
};
use steward_core::service::DecisionInput;
use steward_core::testing::{block_on, vn, Harness};
use steward_core::types::{Decision, Environment, RiskTier};
use steward_core::GovError;

/// `credit-risk` v1 (high risk) in production with a conditional compliance approval.
fn high_risk_in_production(h: &Harness) {
    block_on(async {
        let v = h.register("credit-risk", RiskTier::High).await;
        h.to_staging("credit-risk", v).await;
        let p = h.promote("credit-risk", v, Environment::Production).await;
        for r in &p.reviews {
            let conditions = if r.stage.as_str() == "compliance" {
                vec!["re-check fairness after 30 days".to_owned()]
            } else {
                vec![]
            };
            h.gov
                .decide(
                    h.cast.reviewer_for(r.stage),
                    &r.id,
                    DecisionInput {
                        decision: Decision::Approve,
                        comment: Some(format!("{} review passed", r.stage)),
                        conditions,
                    },
                )
                .await
                .unwrap();
        }
        h.gov
            .deploy(&h.cast.rel, "credit-risk", v, Environment::Production, None)
            .await
            .unwrap();
    });
}

fn pack_of(h: &Harness) -> Pack {
    let pack = block_on(h.gov.evidence_pack(&h.cast.aud, "credit-risk", vn(1))).unwrap();
    from_zip(&pack.zip).unwrap()
}

fn key(h: &Harness) -> PublicKey {
    PublicKey::from_bytes(&h.store.signer().public_key()).unwrap()
}

/// Rewrites the manifest over the pack's current files and signs it with `signer`.
fn resign(pack: &mut Pack, signer: &Ed25519Signer) {
    let mut manifest: Manifest = serde_json::from_slice(&pack.files[MANIFEST]).unwrap();
    manifest.files = pack
        .files
        .iter()
        .filter(|(p, _)| *p != MANIFEST && *p != SIGNATURE)
        .map(|(p, b)| (p.clone(), hex::encode(Sha256::digest(b))))
        .collect();
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let sig = signer.sign(&signing_message(&bytes));
    pack.files.insert(MANIFEST.into(), bytes);
    pack.files
        .insert(SIGNATURE.into(), hex::encode(sig).into_bytes());
}

fn document(pack: &Pack) -> Document {
    serde_json::from_slice(&pack.files[DOCUMENT_JSON]).unwrap()
}

/// Replaces the document (JSON and its HTML rendering) in the pack.
fn put_document(pack: &mut Pack, d: &Document) {
    pack.files
        .insert(DOCUMENT_JSON.into(), serde_json::to_vec_pretty(d).unwrap());
    pack.files
        .insert(DOCUMENT_HTML.into(), render_html(d).into_bytes());
}

#[test]
fn a_high_risk_versions_pack_verifies_and_documents_every_annex_iv_section() {
    let h = Harness::new();
    high_risk_in_production(&h);
    let pack = pack_of(&h);
    let report = verify_pack(&pack, &key(&h)).unwrap();
    assert!(report.html_compared);
    let d = document(&pack);
    assert_eq!(report.events, d.lifecycle.len());
    assert!(report.events >= 12, "{report:?}");
    assert!(report.facts >= 10, "{report:?}");

    // General description, development, data.
    assert_eq!(d.general.risk_tier, RiskTier::High);
    assert!(d.general.serving_production);
    assert!(!d.general.purpose.is_empty() && !d.general.owner.team.is_empty());
    assert!(d.general.registration.event.is_some());
    assert!(!d.development.code.commit.is_empty());
    assert!(!d.development.training_data.is_empty());
    assert!(!d.data.sources.is_empty());
    // Evaluation: the registration's and the staging one, each cited.
    assert!(d.evaluation.evaluations.len() >= 2);
    assert!(d
        .evaluation
        .evaluations
        .iter()
        .all(|e| e.recorded.event.is_some()));
    assert!(!d.evaluation.fairness.groups.is_empty());
    assert!(!d.evaluation.thresholds.is_empty());
    // Human oversight: four production reviews, each decided by a distinct person and cited.
    let prod = d
        .oversight
        .promotions
        .iter()
        .find(|p| p.target == Environment::Production)
        .unwrap();
    assert_eq!(prod.reviews.len(), 4);
    assert!(prod
        .reviews
        .iter()
        .all(|r| r.decided.as_ref().unwrap().event.is_some()));
    let comp = prod
        .reviews
        .iter()
        .find(|r| r.stage.as_str() == "compliance")
        .unwrap();
    assert_eq!(comp.conditions, vec!["re-check fairness after 30 days"]);
    assert_eq!(comp.decided.as_ref().unwrap().by, "cleo");
    assert!(d
        .oversight
        .separation_of_duties
        .iter()
        .any(|s| s.contains("none of them the registrant")));
    // Risk and policy, monitoring, lifecycle, retention.
    assert_eq!(d.risk.policy_digest, h.gov.policy().digest().unwrap());
    assert!(d.monitoring.next_periodic_review.is_some());
    assert_eq!(d.monitoring.deployments.len(), 2);
    assert!(d.lifecycle.iter().any(|e| e.action == "version.deployed"));
    assert_eq!(d.retention.years, 10);

    let html = String::from_utf8(pack.files[DOCUMENT_HTML].clone()).unwrap();
    for heading in [
        "1. General description",
        "2. Development",
        "3. Data",
        "4. Evaluation and testing",
        "5. Human oversight",
        "6. Risk management",
        "7. Post-market monitoring",
        "8. Lifecycle changes",
    ] {
        assert!(html.contains(heading), "{heading} missing");
    }
    assert!(!html.contains("<script"), "the document runs no script");
}

#[test]
fn a_flipped_byte_in_any_file_fails_verification_naming_the_file() {
    let h = Harness::new();
    high_risk_in_production(&h);
    let pack = pack_of(&h);
    for path in pack.files.keys() {
        let mut bad = pack.clone();
        let bytes = bad.files.get_mut(path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        let err = verify_pack(&bad, &key(&h)).unwrap_err();
        match (path.as_str(), &err) {
            (MANIFEST, PackError::Signature(_) | PackError::Unreadable { .. }) => {}
            (SIGNATURE, PackError::Signature(_)) => {}
            (_, PackError::Altered { file, .. }) => assert_eq!(file, path),
            _ => panic!("{path}: unexpected {err}"),
        }
    }
}

#[test]
fn a_removed_event_fails_verification_even_when_the_manifest_is_signed_again() {
    let h = Harness::new();
    high_risk_in_production(&h);
    let mut pack = pack_of(&h);
    let seq = document(&pack).general.registration.event.unwrap();
    pack.files.remove(&event_path(seq));
    let err = verify_pack(&pack, &key(&h)).unwrap_err();
    assert_eq!(err, PackError::Removed(event_path(seq)), "{err}");

    pack.files.remove(&proof_path(seq));
    resign(&mut pack, h.store.signer());
    let err = verify_pack(&pack, &key(&h)).unwrap_err();
    assert!(
        err.to_string().contains(&format!("audit event {seq}")),
        "{err}"
    );
}

#[test]
fn a_swapped_proof_fails_verification_even_when_the_manifest_is_signed_again() {
    let h = Harness::new();
    high_risk_in_production(&h);
    let mut pack = pack_of(&h);
    let d = document(&pack);
    let (a, b) = (d.lifecycle[0].seq, d.lifecycle[1].seq);
    let pa = pack.files[&proof_path(a)].clone();
    let pb = pack.files[&proof_path(b)].clone();
    pack.files.insert(proof_path(a), pb);
    pack.files.insert(proof_path(b), pa);
    assert!(matches!(
        verify_pack(&pack, &key(&h)),
        Err(PackError::Altered { .. })
    ));
    resign(&mut pack, h.store.signer());
    let err = verify_pack(&pack, &key(&h)).unwrap_err();
    assert!(
        matches!(err, PackError::Proof { seq, .. } if seq == a),
        "{err}"
    );
}

#[test]
fn a_forged_fact_fails_verification_even_when_the_manifest_is_signed_again() {
    let h = Harness::new();
    high_risk_in_production(&h);
    let mut pack = pack_of(&h);
    let mut d = document(&pack);
    let prod = d
        .oversight
        .promotions
        .iter_mut()
        .find(|p| p.target == Environment::Production)
        .unwrap();
    let review = prod
        .reviews
        .iter_mut()
        .find(|r| r.stage.as_str() == "compliance")
        .unwrap();
    review.decided.as_mut().unwrap().by = "somebody-else".into();
    put_document(&mut pack, &d);
    resign(&mut pack, h.store.signer());
    let err = verify_pack(&pack, &key(&h)).unwrap_err();
    assert!(
        matches!(&err, PackError::Fact { reason, .. } if reason.contains("somebody-else") && reason.contains("cleo")),
        "{err}"
    );

    // document.html saying something document.json does not.
    let mut pack = pack_of(&h);
    let html = String::from_utf8(pack.files[DOCUMENT_HTML].clone()).unwrap();
    pack.files.insert(
        DOCUMENT_HTML.into(),
        html.replacen("cleo", "mallory", 1).into_bytes(),
    );
    resign(&mut pack, h.store.signer());
    assert_eq!(verify_pack(&pack, &key(&h)), Err(PackError::Html));
}

#[test]
fn another_key_fails_verification_and_names_both_keys() {
    let h = Harness::new();
    high_risk_in_production(&h);
    let pack = pack_of(&h);
    let other = Ed25519Signer::from_seed(&[9; 32]);
    let other_key = PublicKey::from_bytes(&other.public_key()).unwrap();
    let err = verify_pack(&pack, &other_key).unwrap_err();
    assert!(
        matches!(&err, PackError::WrongKey { expected, found } if *expected == other_key.key_id() && *found == key(&h).key_id()),
        "{err}"
    );

    // Signed again by the other key: the manifest verifies, the checkpoint does not.
    let mut forged = pack.clone();
    resign(&mut forged, &other);
    let mut manifest: Manifest = serde_json::from_slice(&forged.files[MANIFEST]).unwrap();
    manifest.key_id = other_key.key_id();
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    forged.files.insert(
        SIGNATURE.into(),
        hex::encode(other.sign(&signing_message(&bytes))).into_bytes(),
    );
    forged.files.insert(MANIFEST.into(), bytes);
    let err = verify_pack(&forged, &other_key).unwrap_err();
    assert!(matches!(err, PackError::Checkpoint(_)), "{err}");
}

#[test]
fn only_auditors_compliance_reviewers_and_admins_take_packs() {
    let h = Harness::new();
    high_risk_in_production(&h);
    for who in [&h.cast.dev, &h.cast.tech, &h.cast.ops, &h.cast.rel] {
        let err = block_on(h.gov.evidence_pack(who, "credit-risk", vn(1))).unwrap_err();
        assert!(matches!(err, GovError::Forbidden(_)), "{err:?}");
    }
    for who in [&h.cast.aud, &h.cast.comp, &h.cast.admin] {
        block_on(h.gov.evidence_pack(who, "credit-risk", vn(1))).unwrap();
    }
    let err = block_on(h.gov.evidence_pack(&h.cast.aud, "credit-risk", vn(9))).unwrap_err();
    assert!(matches!(err, GovError::NotFound(_)), "{err:?}");
}

#[test]
fn the_pack_is_kept_in_the_evidence_store_for_the_policys_retention_period() {
    let mut policy = steward_core::Policy::default();
    policy.evidence.retention_years = 12;
    let h = Harness::with_policy(policy);
    high_risk_in_production(&h);
    let pack = block_on(h.gov.evidence_pack(&h.cast.aud, "credit-risk", vn(1))).unwrap();
    let years = (pack.retain_until - h.now()).num_days() / 365;
    assert_eq!(years, 12);
    assert_eq!(
        pack.stored_at.as_deref(),
        Some(format!("evidence-pack/{}", pack.sha256).as_str())
    );
    let (kind, kept) = h.evidence.get(&pack.sha256).expect("the pack is kept");
    assert_eq!(kind, steward_core::ports::EvidenceKind::EvidencePack);
    assert_eq!(kept, pack.zip);
}
