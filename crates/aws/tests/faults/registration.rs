//! DynamoDB faults on the requests of a registration's commit: throttling and 5xx answered
//! in place of DynamoDB's, and a `TransactWriteItems` that DynamoDB carried out while its
//! caller never heard.

use anyhow::Result;
use steward_aws::diagnostic::{Failure, TRANSIENT};
use steward_core::GovError;

use super::injector::{Fault, FaultInjector, Hits, Rule};
use crate::*;

/// The registry holds exactly one version of `model`, version 1, and the log exactly one
/// audit event about it.
async fn assert_registered_once(stack: &Stack, model: &str) -> Result<()> {
    let detail = stack.backend.gov.model_detail(model).await?;
    assert_eq!(detail.model.latest_version, vn(1), "{model}");
    assert_eq!(
        detail
            .versions
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        vec![vn(1)],
        "{model}"
    );
    let events = stack
        .backend
        .gov
        .audit_events(&auditor(), Some(model), 0, 1000)
        .await?;
    assert_eq!(events.len(), 1, "{model}: {events:?}");
    Ok(())
}

/// A model name for an operation, e.g. `persistent-transactwriteitems`.
fn model_for(kind: &str, op: &str) -> String {
    format!(
        "{kind}-{}",
        op.trim_start_matches("DynamoDB.").to_lowercase()
    )
}

#[tokio::test]
async fn throttling_and_5xx_on_each_request_of_a_registration_are_retried_or_leave_nothing_written(
) -> Result<()> {
    let stack = Stack::new(&[]).await?;

    // The requests a registration sends from a cold start (no audit head cached yet) on a
    // log that is not empty.
    stack
        .backend
        .gov
        .register(&dev(), "seed", manifest(), None)
        .await?;
    let injector = FaultInjector::new();
    faulty_backend(&stack, &injector)
        .await?
        .gov
        .register(&dev(), "probe", manifest(), None)
        .await?;
    let (requests, _) = injector.take();
    let ops: Vec<String> = requests.into_keys().collect();
    assert!(
        ops.iter().all(|o| o.starts_with("DynamoDB."))
            && ops.contains(&"DynamoDB.TransactWriteItems".to_owned())
            && ops.len() >= 2,
        "a registration reads, then commits: {ops:?}"
    );
    let mut registered = vec!["seed".to_owned(), "probe".to_owned()];

    for op in &ops {
        // Two faults in a row: the SDK's third attempt goes through, and the caller sees
        // a plain success.
        let model = model_for("transient", op);
        let injector = FaultInjector::new();
        injector.arm(Rule::new(
            op.as_str(),
            Hits::Nth(vec![1]),
            Fault::dynamodb_throughput_exceeded(),
        ));
        injector.arm(Rule::new(
            op.as_str(),
            Hits::Nth(vec![2]),
            Fault::dynamodb_internal_error(),
        ));
        let backend = faulty_backend(&stack, &injector).await?;
        let (v, replayed) = backend
            .gov
            .register(&dev(), &model, manifest(), None)
            .await?;
        assert_eq!((v.version, replayed), (vn(1), false), "{op}");
        let (_, injected) = injector.take();
        assert_eq!(injected.len(), 2, "{op}: {injected:?}");
        registered.push(model.clone());
        assert_registered_once(&stack, &model).await?;

        // A fault on every attempt the SDK makes: the registration fails as transient
        // (retry later), and nothing of it is in the table.
        let model = model_for("persistent", op);
        let injector = FaultInjector::new();
        for (n, fault) in [
            Fault::dynamodb_throttling(),
            Fault::dynamodb_internal_error(),
            Fault::dynamodb_unavailable(),
        ]
        .into_iter()
        .enumerate()
        {
            injector.arm(Rule::new(op.as_str(), Hits::Nth(vec![n as u32 + 1]), fault));
        }
        let backend = faulty_backend(&stack, &injector).await?;
        let head = stack.backend.store.head().await?;
        let err = backend
            .gov
            .register(&dev(), &model, manifest(), None)
            .await
            .expect_err("every attempt failed");
        let (_, injected) = injector.take();
        assert_eq!(
            injected.len(),
            3,
            "{op}: the SDK's three attempts: {injected:?}"
        );
        let failure = Failure::from(err);
        assert_eq!(failure.error_type, TRANSIENT, "{op}: {failure}");
        assert!(
            matches!(
                stack.backend.gov.model_detail(&model).await,
                Err(GovError::NotFound(_))
            ),
            "{op}: nothing registered"
        );
        assert_eq!(
            stack.backend.store.head().await?,
            head,
            "{op}: no audit event"
        );

        // The fault clears; the caller's retry registers the version, once.
        injector.clear();
        let (v, _) = backend
            .gov
            .register(&dev(), &model, manifest(), None)
            .await?;
        assert_eq!(v.version, vn(1), "{op}");
        registered.push(model.clone());
        assert_registered_once(&stack, &model).await?;
    }

    // A transaction cancelled because one of its items was throttled: the SDK does not
    // retry that, the store re-plans and resends it.
    let injector = FaultInjector::new();
    injector.arm(Rule::new(
        "DynamoDB.TransactWriteItems",
        Hits::Nth(vec![1, 2]),
        Fault::TransactionThrottled,
    ));
    let backend = faulty_backend(&stack, &injector).await?;
    let (v, _) = backend
        .gov
        .register(&dev(), "transaction-throttled", manifest(), None)
        .await?;
    assert_eq!(v.version, vn(1));
    let (requests, injected) = injector.take();
    assert_eq!(injected.len(), 2, "{injected:?}");
    assert_eq!(requests.get("DynamoDB.TransactWriteItems"), Some(&3));
    registered.push("transaction-throttled".to_owned());
    assert_registered_once(&stack, "transaction-throttled").await?;

    let head = stack.backend.store.head().await?;
    assert_eq!(
        head.size,
        registered.len() as u64,
        "one audit event per registration"
    );
    assert_audit_complete(&stack).await?;
    Ok(())
}

#[tokio::test]
async fn a_commit_that_succeeded_unheard_is_replayed_on_retry_never_registered_twice() -> Result<()>
{
    let stack = Stack::new(&[]).await?;
    let commit = "DynamoDB.TransactWriteItems";

    // DynamoDB carries out the transaction, the answer is lost, the SDK sends it again: the
    // commit's ClientRequestToken makes the second attempt the first one's success.
    let injector = FaultInjector::new();
    injector.arm(Rule::new(commit, Hits::Nth(vec![1]), Fault::LoseResponse));
    let backend = faulty_backend(&stack, &injector).await?;
    let (v, replayed) = backend
        .gov
        .register(&dev(), "sdk-retried", manifest(), None)
        .await?;
    assert_eq!((v.version, replayed), (vn(1), false));
    let (requests, injected) = injector.take();
    assert_eq!(injected.len(), 1);
    assert_eq!(requests.get(commit), Some(&2), "{requests:?}");
    assert_registered_once(&stack, "sdk-retried").await?;

    // Every answer lost (the function timed out after the commit): the caller gets an
    // error, though the version exists. Its retry with the same Idempotency-Key, as the
    // API redelivers it, is a replay: the same version, no second one, no second event.
    let injector = FaultInjector::new();
    injector.arm(Rule::new(commit, Hits::Every, Fault::LoseResponse));
    let backend = faulty_backend(&stack, &injector).await?;
    let key = Some("retry-me-1");
    let err = backend
        .gov
        .register(&dev(), "lambda-retried", manifest(), key)
        .await
        .expect_err("no answer came back");
    assert_eq!(Failure::from(err).error_type, TRANSIENT);
    assert_registered_once(&stack, "lambda-retried").await?;
    injector.clear();
    let (v, replayed) = backend
        .gov
        .register(&dev(), "lambda-retried", manifest(), key)
        .await?;
    assert_eq!((v.version, replayed), (vn(1), true), "an idempotent replay");
    // And through another instance (the retry reached a fresh function).
    let (v, replayed) = stack
        .backend
        .gov
        .register(&dev(), "lambda-retried", manifest(), key)
        .await?;
    assert_eq!((v.version, replayed), (vn(1), true));
    assert_registered_once(&stack, "lambda-retried").await?;

    assert_eq!(stack.backend.store.head().await?.size, 2);
    assert_audit_complete(&stack).await?;
    Ok(())
}
