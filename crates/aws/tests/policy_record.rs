//! The policy in force reaches the audit log at every function's cold start
//! (`AwsBackend::connect` calls `record_policy`), once per change, on DynamoDB Local.
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` and `STEWARD_TEST_AWS_ENDPOINT`, and fails without
//! them: `bash scripts/emulators run -- cargo test -p steward-aws --test policy_record`.

mod common;

use anyhow::Result;

use common::*;
use steward_core::ports::AuditLog;
use steward_core::service::PolicyRecord;

/// `(change, policy_sha256)` of every `policy.loaded` in the audit log, in order.
async fn policy_loads(stack: &Stack) -> Result<Vec<(u64, String)>> {
    Ok(stack
        .backend
        .store
        .events(None, 0, 1000)
        .await?
        .into_iter()
        .filter(|e| e.action == "policy.loaded")
        .map(|e| {
            let change = e.details["change"].as_u64().unwrap_or(0);
            let digest = e.details["policy_sha256"].as_str().unwrap_or("").to_owned();
            (change, digest)
        })
        .collect())
}

fn short() -> (&'static str, String) {
    (
        "STEWARD_POLICY",
        TestPolicy::review_timeouts("8s").to_string(),
    )
}

#[tokio::test]
async fn a_cold_start_records_the_policy_once_and_again_each_time_a_different_one_comes_into_force(
) -> Result<()> {
    let stack = Stack::new(&[]).await?;
    let default = stack.backend.gov.policy().digest()?;
    assert!(
        stack.backend.record_policy().await?,
        "the first start records"
    );
    assert!(
        !stack.backend.record_policy().await?,
        "an unchanged policy is not recorded again"
    );
    assert_eq!(policy_loads(&stack).await?, [(1, default.clone())]);

    // A deployment with another policy, then back to the first: each change is recorded.
    let changed = stack.sibling(&[short()]).await?;
    let other = changed.gov.policy().digest()?;
    assert_ne!(other, default);
    assert!(changed.record_policy().await?);
    assert!(!changed.record_policy().await?);
    assert!(
        stack.backend.record_policy().await?,
        "the return to the first is a change too"
    );
    assert_eq!(
        policy_loads(&stack).await?,
        [(1, default.clone()), (2, other), (3, default)]
    );
    // Each commit carried a PolicyChanged, which the stream publisher puts on the bus.
    let report = steward_aws::handlers::stream::publish_stream(
        &stack.audit_stream().await?,
        &stack.publisher(),
    )
    .await;
    assert!(report.failed.is_none(), "{:?}", report.failed);
    let published = stack
        .drain(
            &stack.governance_queue,
            3,
            std::time::Duration::from_secs(10),
        )
        .await?;
    let changed = published
        .iter()
        .filter(|m| m.body().unwrap_or_default().contains("\"PolicyChanged\""))
        .count();
    assert_eq!(changed, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_functions_starting_at_once_under_a_new_policy_record_it_once() -> Result<()> {
    let stack = Stack::new(&[]).await?;
    let mut starts = Vec::new();
    for _ in 0..8 {
        starts.push(stack.sibling(&[short()]).await?);
    }
    let mut set = tokio::task::JoinSet::new();
    for b in &starts {
        let b = b.clone();
        set.spawn(async move { b.record_policy().await });
    }
    let mut recorded = Vec::new();
    while let Some(outcome) = set.join_next().await {
        recorded.push(outcome??);
    }
    assert_eq!(recorded.iter().filter(|r| **r).count(), 1, "{recorded:?}");
    let loads = policy_loads(&stack).await?;
    assert_eq!(loads.len(), 1, "{loads:?}");
    assert_eq!(loads[0].1, starts[0].gov.policy().digest()?);
    Ok(())
}

#[tokio::test]
async fn a_start_that_died_between_recording_and_moving_the_marker_is_completed_by_the_next(
) -> Result<()> {
    let stack = Stack::new(&[]).await?;
    let digest = stack.backend.gov.policy().digest()?;
    // What a start that recorded change 1 and died before moving the marker left behind.
    assert_eq!(
        stack.backend.gov.record_policy_change(1).await?,
        PolicyRecord::Recorded {
            digest: digest.clone()
        }
    );
    assert_eq!(stack.backend.store.policy_marker().await?, None);
    // The next start finds change 1 taken by this very policy: it moves the marker, and
    // records nothing more.
    assert!(!stack.backend.record_policy().await?);
    assert_eq!(
        stack.backend.store.policy_marker().await?,
        Some((1, digest.clone()))
    );
    assert_eq!(policy_loads(&stack).await?, [(1, digest)]);
    Ok(())
}
