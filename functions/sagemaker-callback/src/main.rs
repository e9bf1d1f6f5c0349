//! `sagemaker-callback`: SageMaker Pipelines CallbackStep messages (SQS) and LambdaStep
//! invocations → a registration as the configured pipeline principal, answered to the step.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;
use steward_aws::env::AwsEnv;
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::Failure;
use steward_core::types::PrincipalId;
use steward_sagemaker::callback::{invoke, PipelineRegistrar, SageMakerAnswers};
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
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let principal = var("STEWARD_SAGEMAKER_PRINCIPAL")
        .ok_or_else(|| Failure::config("STEWARD_SAGEMAKER_PRINCIPAL is not set"))?;
    let principal = PrincipalId::parse(principal.trim())
        .map_err(|e| Failure::config(format!("STEWARD_SAGEMAKER_PRINCIPAL: {e}")))?;
    let backend = AwsBackend::connect(&env).await?;

    let registrar = PipelineRegistrar {
        gov: backend.gov.clone(),
        s3: backend.s3(),
        answers: Arc::new(SageMakerAnswers(steward_sagemaker::client(&backend))),
        principal,
        manifest_bucket: var("STEWARD_SAGEMAKER_MANIFEST_BUCKET"),
    };
    let registrar = &registrar;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        invoke(event.payload, registrar)
            .await
            .map_err(|f| Diagnostic {
                error_type: f.error_type.into(),
                error_message: f.message,
            })
    }))
    .await
}
