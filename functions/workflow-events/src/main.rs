//! `workflow-events`: SQS (fed by the workflows' outcome events, and by the retirement
//! workflow's action messages) → core state changes: a review the workflow timed out expires
//! its promotion; approvals and rejections are checked against the registry; a retirement's
//! dependents check and archive are answered; an ended retirement request is closed.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use steward_aws::env::AwsEnv;
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::workflow_events::workflow_events;
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
    let workflows = backend.step_functions.as_deref();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(workflow_events(&event.payload, gov, workflows).await)
    }))
    .await
}
