//! The request economy of `Governance::inventory` on DynamoDB Local: a fixed number of
//! listing pages and batches, never a request per version and never a `Scan`.
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` (run under `scripts/emulators run -- cargo test -p
//! steward-aws --test inventory_requests`).

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use steward_aws::dynamo::{create_table, DynamoStore};
use steward_aws::RequestCounter;
use steward_core::audit::{CheckpointSigner, Ed25519Signer};
use steward_core::ports::{InProcessWorkflows, Registry, SystemClock};
use steward_core::types::RiskTier;
use steward_core::{Governance, Policy};
use steward_local::UuidIds;
use steward_testkit::*;

#[tokio::test]
async fn the_inventory_of_a_few_models_costs_four_requests_and_no_scan() {
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
    gov.seed_principal(&who.id, who.roles.clone(), "bootstrap")
        .await
        .unwrap();
    for (name, tier) in [
        ("churn", RiskTier::Medium),
        ("credit-risk", RiskTier::Low),
        ("fraud", RiskTier::High),
        ("fraud", RiskTier::High),
    ] {
        gov.register(&who, name, manifest_at(tier), None)
            .await
            .unwrap();
    }
    store.principal(&who.id).await.unwrap();

    counter.take();
    let items = gov.inventory(&who).await.unwrap();
    let counts = counter.take();
    assert_eq!(items.len(), 3);
    assert!(!counts.keys().any(|op| op.ends_with(".Scan")), "{counts:?}");
    let total: u64 = counts.values().sum();
    // One page of models, one batch of the 4 versions, one page of rejected reviews, one of
    // incidents (no promotion batch: nothing was approved).
    assert_eq!(total, 4, "{counts:?}");
    client
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
}
