//! MLflow registered models' records on DynamoDB Local (`MLFLOW_MODELS` / `{name}`): created
//! only where none is, replaced at the revision read, kept as tombstones, read alone or in a
//! `get_many` batch and listed in name order, as the other stores do (the shared scenario in
//! `steward-testkit`).
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` and `STEWARD_TEST_AWS_ENDPOINT`, and fails without
//! them: `bash scripts/emulators run -- cargo test -p steward-aws --test registered_models`.

mod common;

use anyhow::Result;

use common::*;

#[tokio::test]
async fn registered_models_are_kept_on_dynamodb_as_on_every_store() -> Result<()> {
    let stack = Stack::new(&[]).await?;
    registered_models_are_kept_the_same_on(stack.backend.store.as_ref()).await;
    Ok(())
}
