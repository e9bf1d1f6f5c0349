//! `monitor`: SQS (fed by the model alarm and `ModelMetricsReported` rules) → core monitoring
//! signals: the model card's thresholds decide on incidents, retraining requests and rollback.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use steward_aws::handlers::monitor::monitor;
use steward_aws::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (_, backend) = lambda::init(&["STEWARD_TABLE"]).await?;
    let gov = backend.gov.as_ref();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(monitor(&event.payload, gov).await)
    }))
    .await
}
