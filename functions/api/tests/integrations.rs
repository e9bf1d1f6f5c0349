//! The api function's vendor webhooks on AWS, on the request path Lambda runs: the template
//! routes `POST /v1/integrations/github/{name}` (and Jira's) to the function without an IAM
//! authorizer, so the API Gateway event carries no caller; the function's router (`app`,
//! with the integrations file read from SSM on moto at cold start) checks GitHub's
//! signature, evaluates the gate on DynamoDB Local, and reviews the deployment at a fake
//! GitHub API on 127.0.0.1. A review GitHub does not take at first is a queued delivery,
//! which the `webhooks` function's scheduled run sends (nothing runs after a Lambda answers).
//!
//! The fake GitHub here answers the token and review requests and keeps them; the full check
//! of both against GitHub's documented API (the App JWT verified with the key's public half,
//! headers, bodies) is in `crates/integrations/tests/github.rs`, which the same code serves.
//!
//! Needs the emulators (`bash scripts/emulators run -- cargo test -p steward-fn-api --test
//! integrations`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use lambda_http::tower::{ServiceBuilder, ServiceExt};
use lambda_http::Body;
use serde_json::{json, Value};
use sha2::Sha256;
use steward_aws::dynamo::create_table;
use steward_aws::env::AwsEnv;
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::webhooks::{deliverer, webhooks};
use steward_core::audit::Ed25519Signer;
use steward_core::ports::AuditLog;
use steward_fn_api::{app, with_caller_arn};
use steward_testkit::emulators::put_ssm_parameter;

mod common;
use common::event_with;

const WEBHOOK_SECRET: &str = "github-webhook-secret-in-ssm";
const JIRA_SECRET: &str = "jira-webhook-secret-in-ssm";
const INSTALLATION: u64 = 77;

/// A GitHub API on 127.0.0.1: installation tokens (201) and deployment reviews, the first
/// `fail_reviews` of which are answered 502.
#[derive(Default)]
struct Github {
    seen: Mutex<Vec<(String, String, Value)>>,
    fail_reviews: Mutex<u32>,
}

async fn token(State(g): State<Arc<Github>>, Path(id): Path<u64>, h: HeaderMap) -> Response {
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    g.seen.lock().unwrap().push((
        format!("/app/installations/{id}/access_tokens"),
        auth.to_owned(),
        Value::Null,
    ));
    (
        StatusCode::CREATED,
        Json(json!({"token": "ghs_installation", "expires_at": "2099-01-01T00:00:00Z"})),
    )
        .into_response()
}

async fn review(
    State(g): State<Arc<Github>>,
    Path((owner, repo, run)): Path<(String, String, u64)>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    g.seen.lock().unwrap().push((
        format!("/repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule"),
        auth.to_owned(),
        body,
    ));
    let mut fail = g.fail_reviews.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        return StatusCode::BAD_GATEWAY.into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

impl Github {
    fn reviews(&self) -> Vec<Value> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(p, _, _)| p.starts_with("/repos/"))
            .map(|(_, auth, body)| json!({"auth": auth, "body": body}))
            .collect()
    }
}

/// The api function as it starts with `STEWARD_INTEGRATIONS_PARAMETER`, and the fake GitHub.
struct World {
    backend: AwsBackend,
    app: axum::Router,
    github: Arc<Github>,
    github_url: String,
}

impl World {
    async fn start() -> World {
        let emulators = steward_testkit::emulators!();
        let github = Arc::new(Github::default());
        let routes = Router::new()
            .route("/app/installations/{id}/access_tokens", post(token))
            .route(
                "/repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule",
                post(review),
            )
            .with_state(github.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let github_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, routes).await });

        let id = uuid::Uuid::new_v4().simple().to_string();
        let parameter = format!("/steward/fn-api-{}/integrations", &id[..12]);
        let key = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../crates/integrations/tests/fixtures/github-app-test-key.pem"
        ))
        .unwrap();
        put_ssm_parameter(
            &emulators.aws,
            &format!("{parameter}/github-key"),
            "SecureString",
            &key,
        )
        .await;
        for (name, value) in [
            ("github-webhook-secret", WEBHOOK_SECRET),
            ("jira-webhook-secret", JIRA_SECRET),
            ("jira-token", "jira-api-token"),
        ] {
            put_ssm_parameter(
                &emulators.aws,
                &format!("{parameter}/{name}"),
                "SecureString",
                value,
            )
            .await;
        }
        let file = format!(
            r#"
[github.deployments]
app_id = 4242
private_key = {{ ssm = "{parameter}/github-key" }}
webhook_secret = {{ ssm = "{parameter}/github-webhook-secret" }}
api_url = "{github_url}"

[jira.gov]
base_url = "{github_url}"
email = "steward-bot@example.com"
api_token = {{ ssm = "{parameter}/jira-token" }}
project = "GOV"
webhook_secret = {{ ssm = "{parameter}/jira-webhook-secret" }}
[jira.gov.accounts]
"acc-tom" = "arn:aws:iam::123456789012:user/tech"
"#
        );
        put_ssm_parameter(&emulators.aws, &parameter, "String", &file).await;

        let table = format!("steward-fn-int-{}", &id[..12]);
        let vars = [
            ("STEWARD_TABLE", table.clone()),
            ("STEWARD_ENDPOINT_URL", emulators.aws.clone()),
            ("STEWARD_DYNAMODB_ENDPOINT_URL", emulators.dynamodb.clone()),
            ("STEWARD_INTEGRATIONS_PARAMETER", parameter),
            // Roles granted by the test apply at once (the function caches them for 5 s).
            ("STEWARD_ROLE_CACHE_SECONDS", "0".into()),
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
        let app = app(&env, &backend).await.unwrap();
        World {
            backend,
            app,
            github,
            github_url,
        }
    }

    /// One API Gateway event through the function, as its main runs it.
    async fn send(&self, event: &str) -> (u16, String) {
        let service = ServiceBuilder::new()
            .map_request(with_caller_arn)
            .service(self.app.clone());
        let request = lambda_http::request::from_str(event).unwrap();
        let response =
            lambda_http::IntoResponse::into_response(service.oneshot(request).await.unwrap()).await;
        let status = response.status().as_u16();
        let text = match response.into_body() {
            Body::Text(t) => t,
            Body::Binary(b) => String::from_utf8(b).unwrap(),
            Body::Empty => String::new(),
            other => panic!("unexpected body {other:?}"),
        };
        (status, text)
    }

    /// A Jira `jira:issue_updated` webhook moving the issue of `review_id` to `status` by
    /// `account`, signed with the Jira integration's secret, without an IAM caller.
    async fn jira(
        &self,
        review_id: &str,
        account: &str,
        status: &str,
        identifier: &str,
    ) -> (u16, Value) {
        let body = json!({
            "timestamp": self.backend.gov.now().timestamp_millis(),
            "webhookEvent": "jira:issue_updated",
            "user": {"accountId": account, "displayName": "Tom"},
            "issue": {"id": "10001", "key": "GOV-7", "fields": {
                "labels": ["steward", steward_integrations::jira::adf::review_label(review_id)],
                "status": {"name": status}}},
            "changelog": {"id": "10100", "items": [{"field": "status", "fieldId": "status",
                "fromString": "To Do", "toString": status}]},
        });
        let mut mac = Hmac::<Sha256>::new_from_slice(JIRA_SECRET.as_bytes()).unwrap();
        mac.update(body.to_string().as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let headers = [
            ("x-hub-signature", signature.as_str()),
            ("x-atlassian-webhook-identifier", identifier),
        ];
        let event = event_with(
            "POST",
            "/v1/integrations/jira/gov",
            "",
            &headers,
            None,
            Some(body),
        );
        let (status, text) = self.send(&event).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A `deployment_protection_rule` webhook for `credit-risk` v1 to `environment`, signed
    /// with `secret` (no signature when `None`), without an IAM caller, as the route has none.
    async fn protection_rule(&self, environment: &str, secret: Option<&str>) -> (u16, String) {
        let body = json!({
            "action": "requested",
            "environment": environment,
            "event": "push",
            "deployment_callback_url": format!("{}/repos/acme/scoring/actions/runs/9001/deployment_protection_rule", self.github_url),
            "deployment": {"id": 555, "sha": "a1b2c3", "ref": "main", "environment": environment,
                "payload": {"steward": {"model": "credit-risk", "version": 1}}},
            "repository": {"full_name": "acme/scoring"},
            "installation": {"id": INSTALLATION},
            "sender": {"login": "octocat"},
        });
        let signature = secret.map(|s| {
            let mut mac = Hmac::<Sha256>::new_from_slice(s.as_bytes()).unwrap();
            mac.update(body.to_string().as_bytes());
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        });
        let mut headers = vec![
            ("x-github-event", "deployment_protection_rule"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ];
        if let Some(s) = &signature {
            headers.push(("x-hub-signature-256", s.as_str()));
        }
        let event = event_with(
            "POST",
            "/v1/integrations/github/deployments",
            "",
            &headers,
            None,
            Some(body),
        );
        self.send(&event).await
    }
}

#[tokio::test]
async fn the_api_function_answers_a_signed_github_protection_rule_without_an_iam_caller() {
    let w = World::start().await;
    w.backend
        .gov
        .register(
            &steward_testkit::dev(),
            "credit-risk",
            steward_testkit::manifest(),
            None,
        )
        .await
        .unwrap();

    // Unsigned or signed with another secret: 401, nothing evaluated, nothing sent.
    let (status, _) = w.protection_rule("staging", None).await;
    assert_eq!(status, 401);
    let (status, _) = w.protection_rule("staging", Some("not-the-secret")).await;
    assert_eq!(status, 401);
    assert!(w.github.seen.lock().unwrap().is_empty());
    // The route opens nothing else: the API without an IAM caller is still 401.
    let (status, _) = w
        .send(&event_with("GET", "/v1/models", "", &[], None, None))
        .await;
    assert_eq!(status, 401);

    // Signed with the secret from SSM, GitHub's first review answer a 502: answered 202
    // with the rejection, the review queued.
    *w.github.fail_reviews.lock().unwrap() = 1;
    let (status, text) = w.protection_rule("staging", Some(WEBHOOK_SECRET)).await;
    assert_eq!(status, 202, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["state"], "rejected");
    assert!(
        answer["comment"]
            .as_str()
            .unwrap()
            .contains("credit-risk version 1 may not be deployed to staging"),
        "{answer}"
    );
    assert_eq!(w.github.reviews().len(), 1);

    // The webhooks function's scheduled run sends it once it is due (the first retry is
    // about 5 s after the failed attempt).
    let deliverer = deliverer(&w.backend).unwrap();
    let scheduled = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    for _ in 0..40 {
        if w.github.reviews().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        webhooks(scheduled.clone(), &deliverer).await.unwrap();
    }
    let reviews = w.github.reviews();
    assert_eq!(
        reviews.len(),
        2,
        "the queued review was not retried: {reviews:?}"
    );
    assert_eq!(reviews[0]["body"], reviews[1]["body"]);
    assert_eq!(reviews[1]["auth"], "Bearer ghs_installation");
    assert_eq!(reviews[1]["body"]["state"], "rejected");
    assert_eq!(reviews[1]["body"]["environment_name"], "staging");
    // Nothing more is due: it was delivered once.
    assert_eq!(
        webhooks(scheduled, &deliverer).await.unwrap()["attempted"],
        0
    );

    // Audited once, as GitHub's integration.
    let checks: Vec<_> = w
        .backend
        .store
        .events(None, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "gate.checked")
        .collect();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].actor.as_str(), "system:github");
    assert_eq!(checks[0].details["allowed"], false);
}

#[tokio::test]
async fn a_jira_approval_by_a_mapped_reviewer_is_recorded_on_dynamodb_and_its_replay_refused() {
    let w = World::start().await;
    let gov = &w.backend.gov;
    let tech = steward_testkit::tech();
    let seeded = gov
        .seed_principal(&tech.id, tech.roles.clone(), "test")
        .await
        .unwrap();
    assert!(seeded.is_some());
    assert_eq!(
        tech.id.to_string(),
        "arn:aws:iam::123456789012:user/tech",
        "the file maps acc-tom to it"
    );
    gov.register(
        &steward_testkit::dev(),
        "credit-risk",
        steward_testkit::manifest(),
        None,
    )
    .await
    .unwrap();
    let p = gov
        .request_promotion(
            &steward_testkit::dev(),
            "credit-risk",
            steward_testkit::vn(1),
            steward_core::types::Environment::Staging,
            None,
        )
        .await
        .unwrap();
    let review = p.reviews[0].id.clone();

    let (status, body) = w.jira(&review, "acc-tom", "Approved", "wh-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recorded"], review.as_str(), "{body}");
    let detail = gov
        .version_detail("credit-risk", steward_testkit::vn(1))
        .await
        .unwrap();
    assert_eq!(detail.reviews[0].status.as_str(), "approved");

    // The same webhook again (its identifier is remembered in the table): refused, audited.
    let (status, body) = w.jira(&review, "acc-tom", "Approved", "wh-1").await;
    assert_eq!(status, 200, "{body}");
    let events = w.backend.store.events(None, 0, 100).await.unwrap();
    let decided: Vec<_> = events
        .iter()
        .filter(|e| e.action == "review.decided")
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].actor, tech.id.to_string());
    assert_eq!(decided[0].details["authentication"], "integration");
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.action == "integration.refused")
        .collect();
    assert_eq!(refused.len(), 1, "{events:?}");
    assert!(
        refused[0].details["reason"]
            .as_str()
            .unwrap()
            .starts_with("replayed"),
        "{:?}",
        refused[0].details
    );
}
