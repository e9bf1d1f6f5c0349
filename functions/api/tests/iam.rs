//! The API function's request path, as Lambda runs it: an API Gateway HTTP API (v2) event →
//! `lambda_http`'s request → the caller-ARN step → the shared router over DynamoDB Local →
//! `lambda_http`'s response conversion. Roles come from the table: the bootstrap admin is
//! seeded as at cold start, and manages another principal's roles through the API.
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` (see `scripts/emulators`); without it the test
//! prints a notice and passes, unless `CI` is set.

use std::sync::Arc;

use lambda_http::tower::{ServiceBuilder, ServiceExt};
use lambda_http::{Body, IntoResponse};
use serde_json::{json, Value};
use steward_api::{router, AppState, IamCallerArn};
use steward_aws::dynamo::create_table;
use steward_aws::env::AwsEnv;
use steward_aws::handlers::backend::AwsBackend;
use steward_core::audit::Ed25519Signer;
use steward_core::ports::AuditLog;
use steward_fn_api::with_caller_arn;

const ADMIN: &str = "arn:aws:iam::123456789012:role/platform-admin";
const DEV: &str = "arn:aws:sts::123456789012:assumed-role/ml-dev/alice";

fn event(method: &str, path: &str, caller: Option<&str>, body: Option<Value>) -> String {
    let mut context = json!({
        "accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.us-east-1.amazonaws.com",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "t"},
        "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "27/Nov/2026:10:00:00 +0000", "timeEpoch": 0,
    });
    if let Some(arn) = caller {
        context["authorizer"] = json!({"iam": {"accessKey": "AKIA", "accountId": "123456789012", "callerId": "AID", "userArn": arn, "userId": "AID"}});
    }
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"host": "abc.execute-api.us-east-1.amazonaws.com", "content-type": "application/json"},
        "requestContext": context,
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false,
    })
    .to_string()
}

#[tokio::test]
async fn the_iam_caller_is_the_principal_and_its_roles_come_from_the_table() {
    let endpoint = match std::env::var("STEWARD_TEST_DYNAMODB_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => e,
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but STEWARD_TEST_DYNAMODB_ENDPOINT is not")
        }
        _ => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: needs DynamoDB Local (scripts/emulators) ***\n"
            );
            return;
        }
    };
    let table = format!("steward-api-{}", std::process::id());
    let vars = [
        ("STEWARD_TABLE", table.as_str()),
        ("STEWARD_DYNAMODB_ENDPOINT_URL", endpoint.as_str()),
        ("STEWARD_BOOTSTRAP_ADMINS", ADMIN),
        ("STEWARD_ROLE_CACHE_SECONDS", "0"),
    ];
    let env = AwsEnv::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let backend = AwsBackend::connect_with(&env, Some(Ed25519Signer::from_seed(&[1; 32])))
        .await
        .unwrap();
    create_table(backend.store.client(), &table).await.unwrap();
    assert_eq!(
        backend
            .seed_bootstrap_admins(&env.bootstrap_admins)
            .await
            .unwrap(),
        1
    );

    let app = ServiceBuilder::new()
        .map_request(with_caller_arn)
        .service(router(AppState {
            gov: backend.gov.clone(),
            auth: Arc::new(IamCallerArn),
        }));
    let call = |method: &str, path: &str, caller: Option<&str>, body: Option<Value>| {
        let app = app.clone();
        let request = lambda_http::request::from_str(&event(method, path, caller, body)).unwrap();
        async move {
            let response = app.oneshot(request).await.unwrap().into_response().await;
            let status = response.status().as_u16();
            let body = match response.into_body() {
                Body::Text(t) => serde_json::from_str(&t).unwrap(),
                Body::Binary(b) => serde_json::from_slice(&b).unwrap(),
                Body::Empty => Value::Null,
                other => panic!("unexpected body {other:?}"),
            };
            (status, body)
        }
    };

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
