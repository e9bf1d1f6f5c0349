//! `sagemaker-sync`: SQS (fed by "SageMaker Model Package State Change" events) → shadow
//! models and approval violations recorded by core; violating approvals optionally reverted.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::lambda;
use steward_sagemaker::sync::{sagemaker_sync, PackageSync};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = lambda::config(&["STEWARD_TABLE"])?;
    let revert = std::env::var(steward_sagemaker::REVERT_VAR).ok();
    let revert = steward_sagemaker::flag(revert.as_deref(), steward_sagemaker::REVERT_VAR)?;
    let backend = AwsBackend::connect(&env).await?;
    lambda::record_policy(&backend).await?;
    let sync = &PackageSync {
        gov: backend.gov.as_ref(),
        sagemaker: steward_sagemaker::client(&backend),
        revert,
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(sagemaker_sync(&event.payload, sync).await)
    }))
    .await
}
