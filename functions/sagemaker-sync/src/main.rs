//! `sagemaker-sync`: SQS (fed by "SageMaker Model Package State Change" events) → shadow
//! models and approval violations recorded by core; violating approvals optionally reverted.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use steward_aws::env::AwsEnv;
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::Failure;
use steward_sagemaker::sync::{sagemaker_sync, PackageSync};
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
    let revert = std::env::var("STEWARD_SAGEMAKER_REVERT_APPROVALS").ok();
    let revert = steward_sagemaker::flag(revert.as_deref(), steward_sagemaker::REVERT_VAR)?;
    let backend = AwsBackend::connect(&env).await?;

    let sync = PackageSync {
        gov: backend.gov.as_ref(),
        sagemaker: steward_sagemaker::client(&backend),
        revert,
    };
    let sync = &sync;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(sagemaker_sync(&event.payload, sync).await)
    }))
    .await
}
