//! The request economy of `Governance::report_serving` on DynamoDB Local: a fixed number of
//! point reads, index queries and one commit per report, never a `Scan`, and a repeated report
//! stops after reading the endpoint's record.
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` (run under `scripts/emulators run -- cargo test -p
//! steward-aws --test serving_requests`).

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use serde_json::json;
use steward_aws::dynamo::{create_table, DynamoStore};
use steward_aws::RequestCounter;
use steward_core::audit::{CheckpointSigner, Ed25519Signer};
use steward_core::ports::{InProcessWorkflows, SystemClock};
use steward_core::serving::Outcome;
use steward_core::types::RiskTier;
use steward_core::{Governance, Policy};
use steward_local::UuidIds;
use steward_testkit::*;

fn total(counts: &std::collections::BTreeMap<String, u64>) -> u64 {
    assert!(!counts.keys().any(|op| op.ends_with(".Scan")), "{counts:?}");
    counts.values().sum()
}

#[tokio::test]
async fn a_serving_report_costs_a_fixed_few_requests_and_a_repeat_only_its_read() {
    let emulators = steward_testkit::emulators!();
    let conf = emulators.dynamodb_sdk().await;
    let counter = RequestCounter::default();
    let client = Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&conf)
            .interceptor(counter.clone())
            .build(),
    );
    let table = format!(
        "steward-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    create_table(&client, &table).await.unwrap();
    let s = Ed25519Signer::from_seed(&[42; 32]);
    let store = Arc::new(DynamoStore::new(
        client.clone(),
        table.clone(),
        (s.key_id(), s.public_key()),
    ));
    let gov = Governance::new(
        store.clone(),
        store.clone(),
        Arc::new(InProcessWorkflows),
        Arc::new(SystemClock),
        Arc::new(UuidIds),
        Policy::default(),
    );
    let who = dev();
    gov.register(&who, "credit-risk", manifest_at(RiskTier::Low), None)
        .await
        .unwrap();
    let uri = manifest_at(RiskTier::Low)["artifact"]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let report = |endpoint: &str, minute: u32| {
        json!({"platform": "kserve", "environment": "production", "endpoint": endpoint,
               "artifact": {"uri": uri}, "observed_at": format!("2026-12-01T10:{minute:02}:00Z")})
    };

    counter.take();
    let r = gov.report_serving(&ops(), report("ml/a", 0)).await.unwrap();
    let first = counter.take();
    assert_eq!(r.outcome, Outcome::Unapproved, "{r:?}");
    // The record (with the head), the URI index, the matched version and model, the commit.
    assert_eq!(total(&first), 4, "{first:?}");

    gov.report_serving(&ops(), report("ml/a", 0)).await.unwrap();
    let repeat = counter.take();
    assert_eq!(
        total(&repeat),
        1,
        "a repeated report reads its record only: {repeat:?}"
    );

    gov.report_serving(&ops(), report("ml/a", 5)).await.unwrap();
    let newer = counter.take();
    // A newer report of the same: the same reads, and a commit moving `observed_at` only.
    assert_eq!(total(&newer), 4, "{newer:?}");
    println!("report_serving: first {first:?}; repeat {repeat:?}; newer {newer:?}");
    client
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
}
