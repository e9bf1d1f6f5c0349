//! The API function's request path, as Lambda runs it: an API Gateway HTTP API (v2) event →
//! `lambda_http`'s request → the caller-ARN step → the shared router over DynamoDB Local →
//! `lambda_http`'s response conversion. Roles come from the table: the bootstrap admin is
//! seeded as at cold start, and manages another principal's roles through the API.
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` (see `scripts/emulators`); without it the test
//! fails with the command that runs it.

mod common;

use std::sync::Arc;

use serde_json::json;
use steward_api::IamCallerArn;
use steward_core::ports::AuditLog;

use common::{Lambda, Signer};

const ADMIN: &str = "arn:aws:iam::123456789012:role/platform-admin";
const DEV: &str = "arn:aws:sts::123456789012:assumed-role/ml-dev/alice";

#[tokio::test]
async fn the_iam_caller_is_the_principal_and_its_roles_come_from_the_table() {
    let lambda = Lambda::start("api", ADMIN, Arc::new(IamCallerArn)).await;
    let (backend, env) = (&lambda.backend, &lambda.env);
    assert_eq!(
        backend
            .seed_bootstrap_admins(&env.bootstrap_admins)
            .await
            .unwrap(),
        1
    );
    let sign = |arn| {
        Some(Signer {
            arn,
            access_key: "AKIA",
        })
    };
    let call = |m, p, who: Option<&'static str>, b| lambda.call(m, p, who.and_then(sign), b);

    // No IAM identity in the request context: 401, whatever else the request says.
    let (status, body) = call("GET", "/v1/principals", None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    // An authenticated caller the table gives no roles: 403.
    assert_eq!(call("GET", "/v1/principals", Some(DEV), None).await.0, 403);

    // The bootstrap admin lists principals and gives the developer a role (audited).
    let (status, body) = call("GET", "/v1/principals", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["id"], ADMIN);
    let path = format!("/v1/principals/{DEV}");
    let (status, body) = call(
        "PUT",
        &path,
        Some(ADMIN),
        Some(json!({"roles": ["developer"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["roles"], json!(["developer"]));
    let audit = backend.store.events(None, 1, 10).await.unwrap();
    assert_eq!(audit[0].action, "principal.roles_set");
    assert_eq!(audit[0].actor, ADMIN);

    // The developer is now a developer: may list models, may still not manage principals.
    assert_eq!(call("GET", "/v1/models", Some(DEV), None).await.0, 200);
    assert_eq!(call("GET", "/v1/principals", Some(DEV), None).await.0, 403);
    // A cold start again seeds nothing: the admin is already there.
    assert_eq!(
        backend
            .seed_bootstrap_admins(&env.bootstrap_admins)
            .await
            .unwrap(),
        0
    );
}
