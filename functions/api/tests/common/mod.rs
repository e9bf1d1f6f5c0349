//! The API function's request path, as Lambda runs it, for the tests: an API Gateway HTTP API
//! (v2) event → `lambda_http`'s request → the caller-ARN step → the shared router over DynamoDB
//! Local → `lambda_http`'s response conversion.

#![allow(dead_code)] // each test file uses part of it

use std::sync::Arc;

use lambda_http::tower::{ServiceBuilder, ServiceExt};
use lambda_http::{Body, IntoResponse};
use serde_json::{json, Value};
use steward_api::{router, AppState, Authenticator};
use steward_aws::dynamo::create_table;
use steward_aws::env::AwsEnv;
use steward_aws::handlers::backend::AwsBackend;
use steward_core::audit::Ed25519Signer;
use steward_fn_api::with_caller_arn;

/// Who signs a request: the caller ARN API Gateway puts in the context, and the access key
/// it was signed with (two sessions of one role have different keys).
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    pub arn: &'a str,
    pub access_key: &'a str,
}

/// An API Gateway HTTP API (v2) event, IAM-authorized by `signer` when given.
pub fn event(method: &str, path: &str, signer: Option<Signer>, body: Option<Value>) -> String {
    let mut context = json!({
        "accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.us-east-1.amazonaws.com",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "t"},
        "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "27/Nov/2026:10:00:00 +0000", "timeEpoch": 0,
    });
    if let Some(s) = signer {
        context["authorizer"] = json!({"iam": {"accessKey": s.access_key, "accountId": "123456789012", "callerId": "AID", "userArn": s.arn, "userId": "AID"}});
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

/// The function over a fresh table on DynamoDB Local, with `admins` bootstrapped.
pub struct Lambda {
    pub backend: AwsBackend,
    pub env: AwsEnv,
    auth: Arc<dyn Authenticator>,
}

impl Lambda {
    pub async fn start(name: &str, admins: &str, auth: Arc<dyn Authenticator>) -> Lambda {
        let emulators = steward_testkit::emulators!();
        let table = format!("steward-{name}-{}", std::process::id());
        let vars = [
            ("STEWARD_TABLE", table.as_str()),
            ("STEWARD_DYNAMODB_ENDPOINT_URL", emulators.dynamodb.as_str()),
            ("STEWARD_BOOTSTRAP_ADMINS", admins),
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
        Lambda { backend, env, auth }
    }

    /// One request through the function: its status and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        signer: Option<Signer<'_>>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let app = ServiceBuilder::new()
            .map_request(with_caller_arn)
            .service(router(AppState {
                gov: self.backend.gov.clone(),
                auth: self.auth.clone(),
            }));
        let request = lambda_http::request::from_str(&event(method, path, signer, body)).unwrap();
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
}
