//! The AWS fault matrix (issue 10): DynamoDB throttling and 5xx on each request of a commit, a
//! commit that succeeded while its caller never heard, S3 Object Lock `PutObject` failing in
//! the stream publisher, KMS `Sign` failing in the checkpoint function, EventBridge
//! `PutEvents` failing in part. Each test ends by asserting the registry's state through the
//! backend's reads, the audit objects in the bucket, and that `steward audit verify --s3`'s
//! check (`steward_aws::s3::verify_s3`, which the CLI calls) accepts the bucket.
//!
//! The emulators are real (DynamoDB Local, moto; see `scripts/emulators`); the faults are
//! injected in front of them by [`injector::FaultInjector`], an HTTP client wrapped around
//! the SDK's: `AwsBackend::connect_over` builds the faulty backend exactly as the functions
//! build theirs, over the same table, bucket and bus as the healthy one. Without the
//! emulators every test fails, saying how to start them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use steward_aws::dynamo::audit_event_from_image;
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::checkpoint::checkpoint;
use steward_aws::handlers::stream::publish_stream;
use steward_aws::kms::PublicKey;
use steward_aws::s3::verify_s3;
use steward_core::audit::verify::VerifyReport;
use steward_core::audit::Ed25519Signer;
use steward_testkit::vn;

mod common;
use common::*;

mod faults {
    pub mod checkpoint;
    pub mod events;
    pub mod injector;
    pub mod registration;
    pub mod stream;
}
use faults::injector::FaultInjector;

/// A second backend over the stack's table, bucket and bus whose every request passes
/// through `injector`.
async fn faulty_backend(stack: &Stack, injector: &FaultInjector) -> Result<AwsBackend> {
    let sdk = &stack.backend.sdk;
    let http = sdk
        .http_client()
        .context("the SDK configuration has an HTTP client")?;
    let sdk = sdk.to_builder().http_client(injector.wrap(http)).build();
    AwsBackend::connect_over(&stack.env, Some(Ed25519Signer::from_seed(&SEED)), sdk)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))
}

/// The seqs of the event objects in the audit bucket.
async fn event_objects(stack: &Stack) -> Result<Vec<u64>> {
    keys_under(stack, "events/").await
}

/// The sizes of the checkpoint objects in the audit bucket.
async fn checkpoint_objects(stack: &Stack) -> Result<Vec<u64>> {
    keys_under(stack, "checkpoints/").await
}

async fn keys_under(stack: &Stack, dir: &str) -> Result<Vec<u64>> {
    let prefix = format!("{}{dir}", stack.env.audit_prefix);
    let out = stack
        .s3
        .list_objects_v2()
        .bucket(stack.env.audit_bucket.as_deref().unwrap_or_default())
        .prefix(&prefix)
        .send()
        .await?;
    out.contents()
        .iter()
        .map(|o| {
            let key = o.key().unwrap_or_default();
            let n = key[prefix.len()..].trim_end_matches(".json");
            n.parse::<u64>().with_context(|| format!("object {key}"))
        })
        .collect()
}

/// The key `steward audit verify --s3` is pinned to: the stack's checkpoint signer's.
async fn pinned_key(stack: &Stack) -> Result<PublicKey> {
    let signer = stack
        .backend
        .require_signer()
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    Ok(PublicKey::from_bytes(&signer.public_key().await)?)
}

/// Delivers the whole log to a healthy stream publisher again (redelivery is harmless) and
/// runs a healthy checkpoint, then checks the bucket as `steward audit verify --s3` does:
/// one object per event, `1..=head`, and a signed checkpoint of the head that verifies.
async fn assert_audit_complete(stack: &Stack) -> Result<VerifyReport> {
    let head = stack.backend.store.head().await?;
    let report = publish_stream(&stack.audit_stream().await?, &stack.publisher()).await;
    assert!(report.failed.is_none(), "{:?}", report.failed);
    let run = checkpoint(&stack.checkpointer())
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(run.size, head.size, "{run:?}");
    assert_eq!(
        event_objects(stack).await?,
        (1..=head.size).collect::<Vec<_>>(),
        "one audit object per event, no gap"
    );
    let verified = verify_s3(
        &stack.s3,
        stack.env.audit_bucket.as_deref().unwrap_or_default(),
        &stack.env.audit_prefix,
        &pinned_key(stack).await?,
    )
    .await?;
    assert_eq!((verified.events, verified.size), (head.size, head.size));
    assert!(verified.checkpoints >= 1);
    Ok(verified)
}

/// `(detail-type, audit_seq)` of every governance event that reached the bus, with how often
/// each came.
async fn received_events(stack: &Stack, at_least: usize) -> Result<BTreeMap<(String, u64), usize>> {
    let messages = stack
        .drain(&stack.governance_queue, at_least, Duration::from_secs(5))
        .await?;
    let mut out = BTreeMap::new();
    for m in &messages {
        let body: Value = serde_json::from_str(m.body().unwrap_or_default())?;
        let key = (
            body["detail-type"].as_str().unwrap_or_default().to_owned(),
            body["detail"]["audit_seq"].as_u64().context("audit_seq")?,
        );
        *out.entry(key).or_default() += 1;
    }
    Ok(out)
}

/// `(seq, detail-types)` of every audit event of the log that carries governance events.
async fn carried_events(stack: &Stack) -> Result<Vec<(u64, Vec<String>)>> {
    let mut out = Vec::new();
    for item in stack.partition("AUDIT#0").await? {
        if let Some(row) = audit_event_from_image(item)? {
            if !row.events.is_empty() {
                let types = row.events.iter().map(|e| e.detail_type.clone()).collect();
                out.push((row.seq, types));
            }
        }
    }
    Ok(out)
}
