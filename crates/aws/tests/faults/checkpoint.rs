//! KMS `Sign` failing in the checkpoint function: no checkpoint is stored, in the table or
//! the bucket, and the function fails (the `ops-checkpoint-failing` alarm counts its errors);
//! the next run signs one that verifies with the KMS key. A checkpoint the table stored but
//! the bucket did not get is written by the next run.

use anyhow::Result;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use steward_aws::diagnostic::TRANSIENT;
use steward_aws::kms::verify_checkpoint_any;
use steward_core::ports::AuditLog;

use super::injector::{Fault, FaultInjector, Hits, Rule};
use crate::*;

#[tokio::test]
async fn a_kms_sign_failure_stores_no_checkpoint_and_the_next_run_signs_one_that_verifies(
) -> Result<()> {
    let sdk = steward_testkit::emulators!().sdk().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await?
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .unwrap_or_default();
    let stack = Stack::new(&[("STEWARD_SIGNING_KEY_ID", key.clone())]).await?;
    some_governance(&stack, "fraud").await?;
    let head = stack.backend.store.head().await?;
    let report = publish_stream(&stack.audit_stream().await?, &stack.publisher()).await;
    assert!(report.failed.is_none(), "{:?}", report.failed);

    // Every attempt the SDK makes fails.
    let injector = FaultInjector::new();
    for (n, fault) in [
        Fault::kms_throttling(),
        Fault::kms_internal(),
        Fault::kms_internal(),
    ]
    .into_iter()
    .enumerate()
    {
        injector.arm(Rule::new("KMS.Sign", Hits::Nth(vec![n as u32 + 1]), fault));
    }
    // The next run's first attempt is throttled too; the SDK's retry signs.
    injector.arm(Rule::new(
        "KMS.Sign",
        Hits::Nth(vec![4]),
        Fault::kms_throttling(),
    ));
    let faulty = faulty_backend(&stack, &injector).await?;
    let deps = stack.checkpointer_over(&faulty);

    let failure = checkpoint(&deps).await.expect_err("KMS never signed");
    assert_eq!(failure.error_type, TRANSIENT, "{failure}");
    assert!(failure.message.contains("Sign"), "{failure}");
    assert_eq!(injector.take().1.len(), 3);
    assert!(stack.backend.store.latest_checkpoint().await?.is_none());
    assert!(checkpoint_objects(&stack).await?.is_empty());

    let run = checkpoint(&deps)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert!(
        run.signed && run.object_written && run.size == head.size,
        "{run:?}"
    );
    assert_eq!(injector.take().1.len(), 1);
    let cp = stack
        .backend
        .store
        .latest_checkpoint()
        .await?
        .expect("a checkpoint");
    let spki = kms
        .get_public_key()
        .key_id(&key)
        .send()
        .await?
        .public_key()
        .map(|b| b.as_ref().to_vec())
        .unwrap_or_default();
    verify_checkpoint_any(&cp, &spki)?;
    assert_eq!(checkpoint_objects(&stack).await?, vec![head.size]);

    let verified = assert_audit_complete(&stack).await?;
    assert_eq!(
        verified.checkpoints, 1,
        "the healthy run found the log signed"
    );
    assert_eq!(
        stack
            .backend
            .gov
            .model_detail("fraud")
            .await?
            .versions
            .len(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_checkpoint_stored_in_the_table_but_not_the_bucket_is_written_by_the_next_run(
) -> Result<()> {
    let stack = Stack::new(&[]).await?;
    some_governance(&stack, "fraud").await?;
    let head = stack.backend.store.head().await?;
    let report = publish_stream(&stack.audit_stream().await?, &stack.publisher()).await;
    assert!(report.failed.is_none(), "{:?}", report.failed);

    // The checkpoint's commit is carried out but its answer lost (the SDK's retry finds the
    // checkpoint stored), then its object cannot be written: the run fails.
    let injector = FaultInjector::new();
    let faulty = faulty_backend(&stack, &injector).await?;
    let deps = stack.checkpointer_over(&faulty);
    injector.arm(Rule::new(
        "DynamoDB.TransactWriteItems",
        Hits::Nth(vec![1]),
        Fault::LoseResponse,
    ));
    injector.arm(
        Rule::new("S3.PutObject", Hits::Every, Fault::s3(503, "SlowDown"))
            .on_path(deps.objects.checkpoint_key(head.size)),
    );
    let failure = checkpoint(&deps)
        .await
        .expect_err("the object was not written");
    assert_eq!(failure.error_type, TRANSIENT, "{failure}");
    assert!(failure.message.contains("PutObject"), "{failure}");
    let stored = stack
        .backend
        .store
        .latest_checkpoint()
        .await?
        .expect("stored");
    assert_eq!(stored.size, head.size);
    assert!(checkpoint_objects(&stack).await?.is_empty());

    // The next run signs nothing new and writes the stored checkpoint's object.
    injector.clear();
    let run = checkpoint(&deps)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert!(
        !run.signed && run.object_written && run.size == head.size,
        "{run:?}"
    );
    assert_eq!(checkpoint_objects(&stack).await?, vec![head.size]);
    assert_eq!(stack.backend.store.checkpoints().await?, vec![stored]);

    let verified = assert_audit_complete(&stack).await?;
    assert_eq!(verified.checkpoints, 1);
    Ok(())
}
