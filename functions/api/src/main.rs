//! `api`: the shared `steward-api` router behind API Gateway: the machine API (IAM) and, with
//! OIDC configured, the people API (JWT authorizer, console).

use std::sync::Arc;

use lambda_http::tower::ServiceBuilder;
use lambda_http::Error;
use steward_api::{router, AppState};
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::Failure;
use steward_aws::lambda;
use steward_fn_api::{authenticators, with_caller_arn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = lambda::config(&["STEWARD_TABLE"])?;
    let backend = AwsBackend::connect(&env).await?;
    backend.require_signer()?; // the checkpoint route serves its public key
    lambda::record_policy(&backend).await?;
    let seeded = backend
        .seed_bootstrap_admins(&env.bootstrap_admins)
        .await
        .map_err(Failure::from)?;
    tracing::info!(seeded, "bootstrap admins checked");

    let app = router(AppState {
        gov: backend.gov.clone(),
        auth: Arc::new(authenticators(None)?),
    });
    lambda_http::run(
        ServiceBuilder::new()
            .map_request(with_caller_arn)
            .service(app),
    )
    .await
}
