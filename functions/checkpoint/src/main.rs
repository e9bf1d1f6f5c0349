//! `checkpoint`: on a schedule, signs the audit log's head (KMS) and stores the checkpoint in
//! the table and the Object Lock bucket; then expires reviews past their deadline.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use steward_aws::handlers::checkpoint::{checkpoint, Checkpointer};
use steward_aws::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (env, backend) = lambda::init(&["STEWARD_TABLE", "STEWARD_AUDIT_BUCKET"]).await?;
    let deps = &Checkpointer {
        gov: backend.gov.clone(),
        store: backend.store.clone(),
        objects: backend.audit_objects(&env)?,
        signer: backend.require_signer()?,
    };
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| checkpoint(deps))).await
}
