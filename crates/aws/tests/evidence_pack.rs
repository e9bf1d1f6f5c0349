//! Evidence packs on the AWS backend as the functions build it (`AwsBackend::connect`): the
//! manifest is signed by the KMS audit key (on moto), a pack waits for the checkpoint
//! function to cover the version's events (409 until then, never a pack that leaves one
//! out), and the pack lands in the evidence bucket under Object Lock COMPLIANCE.
//!
//! Needs the emulators (run under `scripts/emulators run -- cargo test -p steward-aws --test
//! evidence_pack`).

mod common;

use anyhow::{Context, Result};
use common::*;
use steward_aws::handlers::checkpoint::checkpoint;
use steward_core::audit::PublicKey;
use steward_core::pack::{from_zip, verify_pack};
use steward_core::GovError;

#[tokio::test]
async fn a_pack_waits_for_the_checkpoint_then_verifies_with_the_kms_key_and_is_locked() -> Result<()>
{
    let emulators = steward_testkit::emulators!();
    let sdk = emulators.sdk().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await?;
    let key_id = key
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .context("a key id")?;
    let evidence_bucket = unique("artifacts");
    emulators
        .s3()
        .await
        .create_bucket()
        .bucket(&evidence_bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await?;
    let stack = Stack::new(&[
        ("STEWARD_SIGNING_KEY_ID", key_id.clone()),
        ("STEWARD_EVIDENCE_BUCKET", evidence_bucket.clone()),
    ])
    .await?;
    let gov = &stack.backend.gov;
    let auditor = auditor();
    gov.seed_principal(&auditor.id, auditor.roles.clone(), "bootstrap")
        .await?;
    some_governance(&stack, "credit-risk").await?;

    // No checkpoint yet: refused, and nothing is kept.
    let err = gov
        .evidence_pack(&auditor, "credit-risk", vn(1))
        .await
        .unwrap_err();
    assert!(matches!(err, GovError::Conflict(_)), "{err:?}");
    let kept = stack
        .s3
        .list_objects_v2()
        .bucket(&evidence_bucket)
        .prefix("evidence/evidence-pack/")
        .send()
        .await?;
    assert_eq!(kept.key_count(), Some(0));

    // The checkpoint function signs the head with the KMS key; now the pack is made.
    let cp = checkpoint(&stack.checkpointer())
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert!(cp.signed);
    let pack = gov.evidence_pack(&auditor, "credit-risk", vn(1)).await?;

    // Verified with the KMS key's public key as KMS itself hands it out.
    let public = kms.get_public_key().key_id(&key_id).send().await?;
    let der = public
        .public_key()
        .context("a public key")?
        .as_ref()
        .to_vec();
    let key = PublicKey::from_bytes(&der)?;
    assert_eq!(key.algorithm(), "ecdsa-p256-sha256");
    let files = from_zip(&pack.zip)?;
    let report = verify_pack(&files, &key).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(report.events >= 4, "{report:?}");
    assert_eq!(report.checkpoint_size, cp.size);

    // Kept under Object Lock COMPLIANCE until the retention date (10 years by default).
    let location = pack.stored_at.clone().context("kept")?;
    let object = location
        .strip_prefix(&format!("s3://{evidence_bucket}/"))
        .context("in the evidence bucket")?;
    let head = stack
        .s3
        .head_object()
        .bucket(&evidence_bucket)
        .key(object)
        .send()
        .await?;
    assert_eq!(
        head.object_lock_mode(),
        Some(&aws_sdk_s3::types::ObjectLockMode::Compliance)
    );
    let until = head
        .object_lock_retain_until_date()
        .context("retain until")?;
    assert_eq!(until.secs(), pack.retain_until.timestamp());
    let years = (pack.retain_until - chrono::Utc::now()).num_days() / 365;
    assert_eq!(years, 10, "{}", pack.retain_until);

    // A second pack of the same events is another file (its own time), kept beside the first.
    let again = gov.evidence_pack(&auditor, "credit-risk", vn(1)).await?;
    assert_ne!(again.sha256, pack.sha256);
    Ok(())
}
