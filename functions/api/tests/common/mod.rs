//! The API function's request path, as Lambda runs it, for the tests: an API Gateway HTTP API
//! (v2) event → `lambda_http`'s request → the caller-ARN step → the shared router over DynamoDB
//! Local → `lambda_http`'s response conversion.

#![allow(dead_code)] // each test file uses part of it

use std::sync::Arc;

use lambda_http::tower::{ServiceBuilder, ServiceExt};
use lambda_http::{Body, IntoResponse};
use serde_json::{json, Value};
use steward_api::{router_with_sessions, AppState, Authenticator};
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
    event_with(method, path, "", &[], signer, body)
}

/// [`event`] with a query string and extra headers (cookies, say), as the people's API sends
/// a browser's request: no IAM authorizer, `x-forwarded-proto: https`.
pub fn event_with(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    signer: Option<Signer>,
    body: Option<Value>,
) -> String {
    let mut context = json!({
        "accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.us-east-1.amazonaws.com",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1", "userAgent": "t"},
        "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "27/Nov/2026:10:00:00 +0000", "timeEpoch": 0,
    });
    if let Some(s) = signer {
        context["authorizer"] = json!({"iam": {"accessKey": s.access_key, "accountId": "123456789012", "callerId": "AID", "userArn": s.arn, "userId": "AID"}});
    }
    let mut all = json!({"host": "abc.execute-api.us-east-1.amazonaws.com", "content-type": "application/json", "x-forwarded-proto": "https"});
    for (k, v) in headers {
        all[*k] = json!(v);
    }
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": all,
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
        Self::start_with(name, admins, auth, &[]).await
    }

    /// [`Lambda::start`] with more of the function's environment (an evidence bucket on
    /// moto, say).
    pub async fn start_with(
        name: &str,
        admins: &str,
        auth: Arc<dyn Authenticator>,
        more: &[(&str, &str)],
    ) -> Lambda {
        let emulators = steward_testkit::emulators!();
        let table = format!("steward-{name}-{}", std::process::id());
        let mut vars = vec![
            ("STEWARD_TABLE", table.as_str()),
            ("STEWARD_DYNAMODB_ENDPOINT_URL", emulators.dynamodb.as_str()),
            ("STEWARD_BOOTSTRAP_ADMINS", admins),
            ("STEWARD_ROLE_CACHE_SECONDS", "0"),
        ];
        vars.extend_from_slice(more);
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
        let (status, _, text) = self.send(&event(method, path, signer, body)).await;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }

    /// One event through the function (sessions in the table, as the function keeps them):
    /// status, headers and body text.
    pub async fn send(&self, event: &str) -> (u16, lambda_http::http::HeaderMap, String) {
        let app = ServiceBuilder::new()
            .map_request(with_caller_arn)
            .service(router_with_sessions(
                AppState {
                    gov: self.backend.gov.clone(),
                    auth: self.auth.clone(),
                },
                Arc::new(self.backend.sessions()),
            ));
        let request = lambda_http::request::from_str(event).unwrap();
        let response = app.oneshot(request).await.unwrap().into_response().await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = match response.into_body() {
            Body::Text(t) => t,
            Body::Binary(b) => String::from_utf8(b).unwrap(),
            Body::Empty => String::new(),
            other => panic!("unexpected body {other:?}"),
        };
        (status, headers, text)
    }
}
