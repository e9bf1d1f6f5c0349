//! `webhooks`: SQS (fed by every `steward.governance` event) → one delivery per event and
//! subscription, then the due ones attempted; and a schedule → the due ones attempted, so
//! retries run without new events. Signing secrets are read from SSM under
//! STEWARD_WEBHOOK_SECRETS_PREFIX.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use steward_aws::handlers::webhooks::{deliverer, webhooks};
use steward_aws::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (_, backend) = lambda::init(&["STEWARD_TABLE"]).await?;
    let deliverer = &deliverer(&backend)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        webhooks(event.payload, deliverer).await
    }))
    .await
}
