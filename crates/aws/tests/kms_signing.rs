//! Checkpoint signing with a KMS `ECC_NIST_P256` key, against moto on loopback
//! (`STEWARD_TEST_AWS_ENDPOINT`, see `scripts/emulators`).
//!
//! Moto facts relied on (probed in `scripts/emulator-probes/kms_sign.py`): `Sign` with
//! `ECDSA_SHA_256` / `MessageType=RAW` returns a real DER ECDSA signature that verifies with
//! the DER `SubjectPublicKeyInfo` from `GetPublicKey`; a key created without `KeySpec` is a
//! symmetric `ENCRYPT_DECRYPT` key. (Moto ignores `MessageType=DIGEST` — Steward never uses it.)

use std::time::Duration;

use anyhow::Result;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use chrono::Utc;
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use serde_json::json;
use steward_aws::kms::{
    sign_checkpoint, verify_checkpoint_any, AsyncCheckpointSigner, KmsSigner, SignError,
};
use steward_aws::s3::{create_audit_bucket, verify_s3, AuditObjects, S3VerifyError};
use steward_core::audit::checkpoint::{checkpoint_message, key_id_for};
use steward_core::audit::verify::VerifyError;
use steward_core::audit::{format_time, leaf_hash, AuditDraft, MerkleTree, PublicKey};
use steward_testkit::vn;

async fn p256_key(kms: &aws_sdk_kms::Client) -> Result<String> {
    let out = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .description("steward audit checkpoints (test)")
        .send()
        .await?;
    Ok(out
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .unwrap_or_default())
}

#[tokio::test]
async fn a_kms_signed_checkpoint_verifies_with_the_kms_public_key() -> Result<()> {
    let sdk = steward_testkit::emulators!().sdk().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = p256_key(&kms).await?;
    let alias = format!(
        "alias/steward-audit-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    kms.create_alias()
        .alias_name(&alias)
        .target_key_id(&key)
        .send()
        .await?;

    // Connected through the alias, as a deployment would be.
    let signer = KmsSigner::connect(kms.clone(), &alias).await?;
    let spki = kms
        .get_public_key()
        .key_id(&key)
        .send()
        .await?
        .public_key()
        .unwrap()
        .as_ref()
        .to_vec();
    assert_eq!(
        signer.public_key().await,
        spki,
        "the public key is the DER SPKI KMS returns"
    );
    assert_eq!(signer.key_id().await, key_id_for(&spki));

    let root = leaf_hash(b"some root");
    let cp = sign_checkpoint(&signer, 42, root, format_time(Utc::now())).await?;
    assert_eq!(cp.key_id, key_id_for(&spki));

    // Verified independently with the p256 crate: a DER ECDSA signature over the message.
    let verifying = p256::ecdsa::VerifyingKey::from_public_key_der(&spki)?;
    let signature = p256::ecdsa::Signature::from_der(&cp.signature)?;
    verifying.verify(&checkpoint_message(cp.size, &cp.root, &cp.time), &signature)?;

    // And through core's key-generic verifier (here via key bytes); a changed checkpoint
    // does not verify.
    verify_checkpoint_any(&cp, &spki)?;
    let key = PublicKey::from_bytes(&spki)?;
    assert_eq!(signer.verifying_key(), &key);
    assert_eq!(key.key_id(), cp.key_id);
    steward_core::audit::checkpoint::verify_checkpoint_with(&cp, &key)?;
    let mut tampered = cp.clone();
    tampered.size = 43;
    assert!(verify_checkpoint_any(&tampered, &spki).is_err());
    Ok(())
}

#[tokio::test]
async fn a_key_that_cannot_sign_checkpoints_is_refused_at_connect() -> Result<()> {
    let sdk = steward_testkit::emulators!().sdk().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let symmetric = kms
        .create_key()
        .send()
        .await?
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
    assert!(matches!(
        KmsSigner::connect(kms.clone(), &symmetric).await,
        // AWS refuses GetPublicKey on a symmetric key; an emulator may answer with its spec.
        Err(SignError::UnsupportedKey { .. } | SignError::Kms { .. })
    ));
    let rsa = kms
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await?
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
    match KmsSigner::connect(kms.clone(), &rsa).await {
        Err(SignError::UnsupportedKey { reason, .. }) => {
            assert!(reason.contains("ECC_NIST_P256"), "{reason}")
        }
        other => panic!("expected UnsupportedKey, got {other:?}"),
    }
    Ok(())
}

/// The whole AWS path: events and KMS-signed checkpoints in the Object Lock bucket, verified
/// from the objects alone with the KMS public key.
#[tokio::test]
async fn a_log_with_kms_signed_checkpoints_verifies_from_s3() -> Result<()> {
    let sdk = steward_testkit::emulators!().sdk().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let signer = KmsSigner::connect(kms.clone(), p256_key(&kms).await?).await?;
    let bucket = steward_testkit::unique("steward-audit");
    create_audit_bucket(&s3, &bucket, 1).await?;
    let objects = AuditObjects::new(s3.clone(), &bucket, "audit", Duration::from_secs(86_400));

    let mut tree = MerkleTree::new();
    for seq in 1..=4u64 {
        let event = AuditDraft {
            time: Utc::now(),
            actor: "arn:aws:iam::123456789012:user/alice".into(),
            action: "card.revised".into(),
            name: Some("credit-risk".into()),
            version: Some(vn(1)),
            details: json!({"card_revision": seq}),
        }
        .at(seq);
        tree.push(event.leaf_hash());
        objects.put_event(&event).await?;
        let cp = sign_checkpoint(&signer, seq, tree.root(), format_time(Utc::now())).await?;
        objects.put_checkpoint(&cp).await?;
    }

    let trusted = PublicKey::from_bytes(&signer.public_key().await)?;
    let report = verify_s3(&s3, &bucket, "audit/", &trusted).await?;
    assert_eq!((report.events, report.checkpoints, report.size), (4, 4, 4));

    // An Ed25519 key is not the key these checkpoints name.
    let other =
        PublicKey::Ed25519(steward_core::audit::Ed25519Signer::from_seed(&[1; 32]).verifying_key());
    assert!(matches!(
        verify_s3(&s3, &bucket, "audit/", &other).await,
        Err(S3VerifyError::Verify(VerifyError::WrongKey { size: 1, .. }))
    ));
    Ok(())
}
