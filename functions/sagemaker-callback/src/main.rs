//! `sagemaker-callback`: SageMaker Pipelines CallbackStep messages (SQS) and LambdaStep
//! invocations → a registration as the configured pipeline principal, answered to the step.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::lambda;
use steward_sagemaker::callback::{invoke, PipelineRegistrar, SageMakerAnswers};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = lambda::config(&["STEWARD_TABLE"])?;
    let lookup = |k: &str| std::env::var(k).ok();
    let principal = steward_sagemaker::pipeline_principal(lookup)?;
    let backend = AwsBackend::connect(&env).await?;
    lambda::record_policy(&backend).await?;
    let registrar = &PipelineRegistrar {
        gov: backend.gov.clone(),
        s3: backend.s3(),
        answers: Arc::new(SageMakerAnswers(steward_sagemaker::client(&backend))),
        principal,
        manifest_bucket: steward_sagemaker::manifest_bucket(lookup),
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        invoke(event.payload, registrar)
    }))
    .await
}
