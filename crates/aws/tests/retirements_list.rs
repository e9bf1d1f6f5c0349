//! `GET /v1/retirements` on DynamoDB Local: the pending-retirements list (sparse gsi3,
//! `RETIREMENTS#{status}` / requested-at and id) answers as the other stores do, in order and
//! page by page (the shared scenario in `steward-testkit`).
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` and `STEWARD_TEST_AWS_ENDPOINT`, and fails without
//! them: `bash scripts/emulators run -- cargo test -p steward-aws --test retirements_list`.

mod common;

use std::sync::Arc;

use anyhow::Result;

use common::*;
use steward_aws::handlers::backend::UuidIds;
use steward_core::ports::SystemClock;
use steward_core::{Governance, Policy};

#[tokio::test]
async fn pending_retirements_list_oldest_first_and_page_on_dynamodb() -> Result<()> {
    let stack = Stack::new(&[]).await?;
    let store = stack.backend.store.clone();
    // The same table, through a workflows port that keeps retirement requests pending.
    let gov = Governance::new(
        store.clone(),
        store,
        Arc::new(ConfirmingWorkflows),
        Arc::new(SystemClock),
        Arc::new(UuidIds),
        Policy::default(),
    );
    pending_retirements_list_the_same_on(&gov).await;
    Ok(())
}
