//! The audit log through the API: every event carries its leaf hash, checkpoints are signed,
//! and inclusion and consistency proofs verify against them.

use anyhow::{Context, Result};
use steward_core::audit::merkle::{root_from_leaves, verify_consistency, verify_inclusion, Hash};
use steward_core::audit::{AuditEvent, Checkpoint};
use steward_core::types::RiskTier;

use crate::common::*;

fn hash(v: &serde_json::Value) -> Result<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(v.as_str().context("hash is a string")?, &mut out)?;
    Ok(out)
}

fn hashes(v: &serde_json::Value) -> Result<Vec<Hash>> {
    v.as_array()
        .context("hash list")?
        .iter()
        .map(hash)
        .collect()
}

/// An app with a few events of a model beyond the principals' seeding.
async fn busy_app() -> Result<App> {
    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    app.to_staging("credit-risk", 1).await?;
    app.register("fraud", RiskTier::Medium).await?;
    Ok(app)
}

#[tokio::test]
async fn every_event_carries_the_leaf_hash_of_its_canonical_form() -> Result<()> {
    let app = busy_app().await?;
    let events = app.audit_events(None).await?;
    assert!(events.len() > 10);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "events are numbered without gaps");
        let mut fields = e.clone();
        fields.as_object_mut().unwrap().remove("leaf_hash");
        let event: AuditEvent = serde_json::from_value(fields)?;
        assert_eq!(hash(&e["leaf_hash"])?, event.leaf_hash(), "{e}");
    }
    let registered = events
        .iter()
        .find(|e| e["action"] == "version.registered")
        .context("registration audited")?;
    assert_eq!(registered["actor"], "dev");
    assert_eq!(registered["name"], "credit-risk");
    assert_eq!(registered["version"], 1);

    let only = app.audit_events(Some("fraud")).await?;
    assert!(!only.is_empty());
    assert!(only.iter().all(|e| e["name"] == "fraud"));

    let page = app.get("aud", "/v1/audit?limit=3").await?.expect(200)?;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(page.body["next_cursor"], "3");
    let next = app
        .get("aud", "/v1/audit?limit=3&cursor=3")
        .await?
        .expect(200)?;
    assert_eq!(next.body["items"][0]["seq"], 4);
    Ok(())
}

#[tokio::test]
async fn the_checkpoint_is_signed_and_covers_every_event() -> Result<()> {
    let app = busy_app().await?;
    let events = app.audit_events(None).await?;
    let r = app.get("aud", "/v1/audit/checkpoint").await?.expect(200)?;
    for field in ["size", "root", "time", "key_id", "signature", "public_key"] {
        assert!(
            !r.body[field].is_null(),
            "checkpoint lacks {field}: {}",
            r.body
        );
    }
    assert_eq!(r.body["size"], events.len() as u64);
    let leaves: Vec<Hash> = events
        .iter()
        .map(|e| hash(&e["leaf_hash"]))
        .collect::<Result<_>>()?;
    assert_eq!(hash(&r.body["root"])?, root_from_leaves(&leaves));

    // Ed25519 on the embedded backend, the KMS P-256 key on the AWS one: the key decides.
    let key = steward_core::audit::PublicKey::from_bytes(&hex::decode(
        r.body["public_key"].as_str().unwrap(),
    )?)?;
    let mut body = r.body.clone();
    body.as_object_mut().unwrap().remove("public_key");
    let cp: Checkpoint = serde_json::from_value(body)?;
    assert_eq!(cp.key_id, key.key_id());
    steward_core::audit::checkpoint::verify_checkpoint_with(&cp, &key)?;
    let mut forged = cp.clone();
    forged.size -= 1;
    assert!(steward_core::audit::checkpoint::verify_checkpoint_with(&forged, &key).is_err());
    Ok(())
}

#[tokio::test]
async fn inclusion_proofs_verify_and_tampered_proofs_do_not() -> Result<()> {
    let app = busy_app().await?;
    let size = app.audit_size().await?;
    for seq in 1..=size {
        let r = app
            .get("aud", &format!("/v1/audit/proof/{seq}"))
            .await?
            .expect(200)?;
        let b = &r.body;
        assert_eq!(b["seq"], seq);
        assert_eq!(b["size"], size);
        assert_eq!(b["event"]["seq"], seq);
        assert_eq!(b["event"]["leaf_hash"], b["leaf_hash"]);
        let leaf = hash(&b["leaf_hash"])?;
        let proof = hashes(&b["hashes"])?;
        let root = hash(&b["checkpoint"]["root"])?;
        verify_inclusion(&leaf, seq - 1, size, &proof, &root)
            .map_err(|e| anyhow::anyhow!("proof of {seq}: {e}"))?;
        if let Some(first) = proof.first() {
            let mut bad = proof.clone();
            bad[0][0] ^= 1;
            assert!(verify_inclusion(&leaf, seq - 1, size, &bad, &root).is_err());
            assert_ne!(first, &bad[0]);
        }
        let mut other = leaf;
        other[31] ^= 0x80;
        assert!(verify_inclusion(&other, seq - 1, size, &proof, &root).is_err());
    }
    app.get("aud", &format!("/v1/audit/proof/{}", size + 1))
        .await?
        .expect(404)?;
    app.get("aud", "/v1/audit/proof/0").await?.expect(404)?;
    Ok(())
}

#[tokio::test]
async fn consistency_proofs_show_the_log_only_grew() -> Result<()> {
    let app = busy_app().await?;
    let events = app.audit_events(None).await?;
    let leaves: Vec<Hash> = events
        .iter()
        .map(|e| hash(&e["leaf_hash"]))
        .collect::<Result<_>>()?;
    let size = leaves.len() as u64;
    let new_root = root_from_leaves(&leaves);
    for first in [1, 2, 5, size - 1, size] {
        let r = app
            .get(
                "aud",
                &format!("/v1/audit/consistency?first={first}&second={size}"),
            )
            .await?
            .expect(200)?;
        assert_eq!(r.body["first"], first);
        assert_eq!(r.body["second"], size);
        let proof = hashes(&r.body["hashes"])?;
        let old_root = root_from_leaves(&leaves[..first as usize]);
        verify_consistency(first, size, &old_root, &new_root, &proof)
            .map_err(|e| anyhow::anyhow!("consistency {first}..{size}: {e}"))?;
    }
    let r = app
        .get("aud", "/v1/audit/consistency?first=3")
        .await?
        .expect(200)?;
    assert_eq!(r.body["second"], size);
    let r = app
        .get(
            "aud",
            &format!("/v1/audit/consistency?first=1&second={}", size + 5),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["second"]);
    let r = app
        .get("aud", "/v1/audit/consistency?first=0")
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["first"]);
    let r = app.get("aud", "/v1/audit/consistency").await?.expect(422)?;
    assert_eq!(r.fields(), ["first"]);
    Ok(())
}

#[tokio::test]
async fn only_auditors_and_admins_read_the_audit_log() -> Result<()> {
    let app = busy_app().await?;
    for path in [
        "/v1/audit",
        "/v1/audit/checkpoint",
        "/v1/audit/proof/1",
        "/v1/audit/consistency?first=1",
    ] {
        for who in ["dev", "tech", "ops", "newcomer"] {
            let r = app.get(who, path).await?.expect(403)?;
            assert_eq!(r.code(), "forbidden", "{who} {path}");
        }
        app.get("admin", path).await?.expect(200)?;
    }
    assert_eq!(
        app.get("", "/v1/audit").await?.expect(401)?.code(),
        "unauthenticated"
    );
    Ok(())
}
