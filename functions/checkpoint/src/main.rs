//! `checkpoint`: on a schedule, signs the audit log's head (KMS) and stores the checkpoint in
//! the table and the Object Lock bucket; then expires reviews past their deadline.

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;
use steward_aws::env::AwsEnv;
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::checkpoint::{checkpoint, Checkpointer};
use steward_aws::handlers::Failure;
use tracing_subscriber::EnvFilter;

const REQUIRED: &[&str] = &["STEWARD_TABLE", "STEWARD_AUDIT_BUCKET"];

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
    let deps = Checkpointer {
        gov: backend.gov.clone(),
        store: backend.store.clone(),
        objects: backend.audit_objects(&env)?,
        signer: backend.require_signer()?,
    };

    let deps = &deps;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        checkpoint(deps).await.map_err(|f| Diagnostic {
            error_type: f.error_type.into(),
            error_message: f.message,
        })
    }))
    .await
}
