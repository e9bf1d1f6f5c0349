//! `monitor`: SQS (fed by the model alarm and `ModelMetricsReported` rules) → core monitoring
//! signals: the model card's thresholds decide on incidents, retraining requests and rollback.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use steward_aws::env::AwsEnv;
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::monitor::monitor;
use steward_aws::handlers::Failure;
use tracing_subscriber::EnvFilter;

const REQUIRED: &[&str] = &["STEWARD_TABLE"];

#[tokio::main]
async fn main() -> Result<(), Error> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .init();

    let env = AwsEnv::from_env().map_err(Failure::from)?;
    env.require(REQUIRED).map_err(Failure::from)?;
    let backend = AwsBackend::connect(&env).await?;

    let gov = backend.gov.as_ref();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(monitor(&event.payload, gov).await)
    }))
    .await
}
