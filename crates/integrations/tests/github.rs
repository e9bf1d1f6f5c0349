//! The GitHub deployment protection rule against a fake GitHub API on 127.0.0.1: it verifies
//! the App JWT with the test key's public half (`tests/fixtures/`), checks the paths, headers
//! and bodies of the installation-token request and of the review, and answers as GitHub
//! does (201 with a token, 204 for the review), or with the errors a test scripts.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use steward_core::ports::Deliveries;
use steward_core::testing::Harness;
use steward_core::types::{Environment, RiskTier};
use steward_core::webhooks::{Delivery, DeliveryStatus, IntegrationKind, RetrySchedule, WebhookId};
use steward_integrations::{inbound, Deliverer, Integrations, IntegrationsConfig};

const APP_ID: &str = "4242";
const INSTALLATION: u64 = 77;
const TOKEN: &str = "ghs_fake_installation_token";
const SECRET: &str = "webhook-secret-for-tests";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One request the fake GitHub received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    /// The token request's verified JWT claims, or the review's body.
    body: Value,
}

#[derive(Default)]
struct Github {
    seen: Mutex<Vec<Seen>>,
    /// Scripted failures, answered before the normal answers: (status, Retry-After).
    token_failures: Mutex<VecDeque<(u16, Option<u64>)>>,
    review_failures: Mutex<VecDeque<(u16, Option<u64>)>>,
    problems: Mutex<Vec<String>>,
}

impl Github {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn problem(&self, p: String) {
        self.problems.lock().unwrap().push(p);
    }
    fn scripted(queue: &Mutex<VecDeque<(u16, Option<u64>)>>) -> Option<Response> {
        let (code, retry_after) = queue.lock().unwrap().pop_front()?;
        let mut r = (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"message": "scripted failure", "documentation_url": "https://docs.github.com/rest"})),
        )
            .into_response();
        if let Some(s) = retry_after {
            r.headers_mut()
                .insert("retry-after", s.to_string().parse().unwrap());
        }
        Some(r)
    }
    /// The headers GitHub's REST API asks every request for.
    fn check_headers(&self, what: &str, h: &HeaderMap) {
        let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
        if get("accept") != "application/vnd.github+json" {
            self.problem(format!("{what}: Accept is {:?}", get("accept")));
        }
        if get("x-github-api-version") != "2022-11-28" {
            self.problem(format!(
                "{what}: X-GitHub-Api-Version is {:?}",
                get("x-github-api-version")
            ));
        }
    }
}

fn bearer(h: &HeaderMap) -> String {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned()
}

/// Verifies the App JWT: RS256 with the test key, `iss` the App id, at most 10 minutes long.
fn verify_app_jwt(jwt: &str) -> Result<Value, String> {
    let pem = std::fs::read_to_string(fixture("github-app-test-key.pub.pem")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&der);
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_issuer(&[APP_ID]);
    v.set_required_spec_claims(&["exp", "iat", "iss"]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &v)
        .map_err(|e| format!("the App JWT does not verify: {e}"))?
        .claims;
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    let now = chrono::Utc::now().timestamp();
    if exp - iat > 600 || iat > now || exp <= now {
        return Err(format!("the App JWT's times are wrong: {claims}"));
    }
    Ok(claims)
}

/// `GET /app` as GitHub answers it for a valid App JWT (the authenticated App).
async fn app(State(g): State<Arc<Github>>, headers: HeaderMap) -> Response {
    g.check_headers("app request", &headers);
    match verify_app_jwt(&bearer(&headers)) {
        Ok(claims) => {
            g.seen.lock().unwrap().push(Seen {
                path: "/app".into(),
                body: claims,
            });
            Json(json!({"id": 4242, "slug": "steward-gate", "name": "Steward gate"}))
                .into_response()
        }
        Err(p) => {
            g.problem(p);
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"message": "A JSON web token could not be decoded"})),
            )
                .into_response()
        }
    }
}

async fn access_tokens(
    State(g): State<Arc<Github>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    g.check_headers("token request", &headers);
    let claims = match verify_app_jwt(&bearer(&headers)) {
        Ok(c) => c,
        Err(p) => {
            g.problem(p);
            return StatusCode::UNAUTHORIZED.into_response();
        }
    };
    g.seen.lock().unwrap().push(Seen {
        path: format!("/app/installations/{id}/access_tokens"),
        body: claims,
    });
    if let Some(r) = Github::scripted(&g.token_failures) {
        return r;
    }
    (
        StatusCode::CREATED,
        Json(json!({
            "token": TOKEN,
            "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            "permissions": {"actions": "read", "deployments": "write"},
            "repository_selection": "selected",
        })),
    )
        .into_response()
}

async fn review(
    State(g): State<Arc<Github>>,
    Path((owner, repo, run)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    g.check_headers("review", &headers);
    if bearer(&headers) != TOKEN {
        g.problem("the review is not authorized with the installation token".into());
        return StatusCode::UNAUTHORIZED.into_response();
    }
    g.seen.lock().unwrap().push(Seen {
        path: format!("/repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule"),
        body,
    });
    Github::scripted(&g.review_failures).unwrap_or_else(|| StatusCode::NO_CONTENT.into_response())
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Steward (the inbound router over a harness) and the fake GitHub.
struct World {
    h: Harness,
    deliverer: Deliverer,
    github: Arc<Github>,
    api_url: String,
    steward: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let github = Arc::new(Github::default());
        let gh = Router::new()
            .route("/app/installations/{id}/access_tokens", post(access_tokens))
            .route("/app", axum::routing::get(app))
            .route(
                "/repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule",
                post(review),
            )
            .with_state(github.clone());
        let api_url = format!("http://{}", serve(gh).await);
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("webhook-secret");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        let toml = format!(
            r#"
console_url = "https://steward.example.com"

[github.deployments]
app_id = {APP_ID}
private_key = {{ file = "{key}" }}
webhook_secret = {{ file = "{secret}" }}
api_url = "{api_url}"
environments = {{ prod = "production", staging = "staging" }}
models = {{ "acme/training" = "credit-risk" }}
"#,
            key = fixture("github-app-test-key.pem").display(),
            secret = secret.display(),
        );
        let config = IntegrationsConfig::from_toml(&toml).unwrap();
        assert_eq!(config.names(), vec![("github", "deployments")]);
        let h = Harness::new();
        let integrations = Integrations::build(&config).unwrap();
        // Retries 10 ms apart, so the retry test need not wait for the default schedule.
        let schedule = RetrySchedule {
            first: chrono::Duration::milliseconds(10),
            ..Default::default()
        };
        let deliverer = Deliverer::new(h.gov.clone(), schedule, integrations).unwrap();
        let steward = format!("http://{}", serve(inbound::router(deliverer.clone())).await);
        Self {
            h,
            deliverer,
            github,
            api_url,
            steward,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// A `deployment_protection_rule` `requested` event as GitHub sends it.
    fn event(&self, environment: &str, payload: Value) -> Value {
        json!({
            "action": "requested",
            "environment": environment,
            "event": "push",
            "deployment_callback_url": format!("{}/repos/acme/scoring/actions/runs/9001/deployment_protection_rule", self.api_url),
            "deployment": {
                "id": 555, "sha": "a1b2c3", "ref": "main", "task": "deploy",
                "environment": environment, "payload": payload,
                "creator": {"login": "github-actions[bot]"},
            },
            "repository": {"full_name": "acme/scoring"},
            "installation": {"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc="},
            "sender": {"login": "octocat"},
        })
    }

    async fn send(&self, event: &str, body: &[u8], signature: Option<String>) -> reqwest::Response {
        let mut r = self
            .http
            .post(format!(
                "{}/v1/integrations/github/deployments",
                self.steward
            ))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
            .body(body.to_vec());
        if let Some(s) = signature {
            r = r.header("x-hub-signature-256", s);
        }
        r.send().await.unwrap()
    }

    async fn deliver(&self, event: &Value) -> reqwest::Response {
        let body = serde_json::to_vec(event).unwrap();
        let sig = sign(&body);
        self.send("deployment_protection_rule", &body, Some(sig))
            .await
    }

    /// Waits until GitHub has seen `n` reviews; returns every request it saw.
    async fn reviews(&self, n: usize) -> Vec<Seen> {
        for _ in 0..200 {
            let seen = self.github.seen();
            if seen
                .iter()
                .filter(|s| s.path.starts_with("/repos/"))
                .count()
                >= n
            {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("GitHub saw no review: {:?}", self.github.seen());
    }

    fn reviews_seen(&self) -> usize {
        self.github
            .seen()
            .iter()
            .filter(|s| s.path.starts_with("/repos/"))
            .count()
    }

    /// Every queued delivery (the reviews), as the store holds them.
    async fn queued(&self) -> Vec<Delivery> {
        let target = WebhookId::integration(IntegrationKind::Github, "deployments").unwrap();
        self.h.deliveries.recent(&target, 10).await.unwrap()
    }

    fn gate_checks(&self) -> Vec<steward_core::audit::AuditEvent> {
        self.h
            .store
            .audit_events()
            .into_iter()
            .filter(|e| e.action == "gate.checked")
            .collect()
    }

    fn no_problems(&self) {
        assert_eq!(*self.github.problems.lock().unwrap(), Vec::<String>::new());
    }
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

const REVIEW_PATH: &str = "/repos/acme/scoring/actions/runs/9001/deployment_protection_rule";

#[tokio::test]
async fn the_protection_rule_approves_a_version_approved_for_production() {
    let w = World::start().await;
    let v = w.h.register("credit-risk", RiskTier::Medium).await;
    w.h.to_staging("credit-risk", v).await;
    let p = w.h.promote("credit-risk", v, Environment::Production).await;
    w.h.approve_all(&p).await;

    let payload = json!({"steward": {"model": "credit-risk", "version": v.get()}});
    let r = w.deliver(&w.event("prod", payload)).await;
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["state"], "approved", "{answer}");

    let seen = w.reviews(1).await;
    w.no_problems();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].path,
        format!("/app/installations/{INSTALLATION}/access_tokens")
    );
    assert_eq!(seen[0].body["iss"], APP_ID);
    assert_eq!(seen[1].path, REVIEW_PATH);
    let body = &seen[1].body;
    assert_eq!(body["environment_name"], "prod");
    assert_eq!(body["state"], "approved");
    let comment = body["comment"].as_str().unwrap();
    assert!(
        comment.contains("credit-risk version 1 passed the production gate"),
        "{comment}"
    );
    assert!(
        comment.contains("https://steward.example.com/console/models/credit-risk/versions/1"),
        "{comment}"
    );
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");

    let audited = w.gate_checks();
    assert_eq!(audited.len(), 1);
    let e = &audited[0];
    assert_eq!(e.actor, "system:github");
    assert_eq!(e.name.as_deref(), Some("credit-risk"));
    assert_eq!(e.version, Some(v));
    assert_eq!(e.details["source"], "github");
    assert_eq!(e.details["environment"], "production");
    assert_eq!(e.details["allowed"], true);
    assert_eq!(e.details["authentication"], "integration");
    assert_eq!(e.details["context"]["repository"], "acme/scoring");
    assert_eq!(e.details["context"]["github_environment"], "prod");
    assert_eq!(
        e.details["context"]["delivery"],
        "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    );
}

#[tokio::test]
async fn the_protection_rule_rejects_a_version_not_approved_for_production_with_the_gates_reasons()
{
    let w = World::start().await;
    let v = w.h.register("credit-risk", RiskTier::Medium).await;
    // GitHub may send the payload as a JSON string.
    let payload = Value::String(format!(
        r#"{{"steward":{{"model":"credit-risk","version":"{v}"}}}}"#
    ));
    let r = w.deliver(&w.event("prod", payload)).await;
    assert_eq!(r.status(), 202);

    let seen = w.reviews(1).await;
    w.no_problems();
    let body = &seen.last().unwrap().body;
    assert_eq!(body["state"], "rejected");
    let reasons =
        w.h.gov
            .gate("credit-risk", v, Environment::Production)
            .await
            .unwrap()
            .reasons;
    assert!(!reasons.is_empty());
    let comment = body["comment"].as_str().unwrap();
    assert!(
        comment.contains("may not be deployed to production"),
        "{comment}"
    );
    for reason in &reasons {
        assert!(
            comment.contains(reason.as_str()),
            "{comment} lacks {reason}"
        );
    }
    let audited = w.gate_checks();
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].details["allowed"], false);
    assert_eq!(audited[0].details["reasons"], json!(reasons));
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_401_and_calls_nothing() {
    let w = World::start().await;
    w.h.register("credit-risk", RiskTier::Low).await;
    let body = serde_json::to_vec(&w.event(
        "prod",
        json!({"steward": {"model": "credit-risk", "version": 1}}),
    ))
    .unwrap();
    let mut wrong = Hmac::<Sha256>::new_from_slice(b"another secret").unwrap();
    wrong.update(&body);
    let wrong = format!("sha256={}", hex::encode(wrong.finalize().into_bytes()));
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    for (body, sig) in [
        (&body, None),
        (&body, Some(wrong)),
        (&body, Some("sha256=not-hex".to_owned())),
        (&body, Some(sign(&body).replace("sha256=", "sha1="))),
        (&tampered, Some(sign(&body))),
    ] {
        let r = w
            .send("deployment_protection_rule", body, sig.clone())
            .await;
        assert_eq!(r.status(), 401, "{sig:?}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "unauthenticated");
    }
    // A ping with a bad signature is refused too; a signed one is answered.
    assert_eq!(w.send("ping", b"{}", None).await.status(), 401);
    assert_eq!(w.send("ping", b"{}", Some(sign(b"{}"))).await.status(), 200);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(w.github.seen().is_empty(), "{:?}", w.github.seen());
    assert!(w.gate_checks().is_empty());
}

#[tokio::test]
async fn a_deployment_that_names_no_model_or_an_unmapped_environment_is_rejected_saying_what_to_fix(
) {
    let w = World::start().await;
    let r = w.deliver(&w.event("prod", json!({}))).await;
    assert_eq!(r.status(), 202);
    let seen = w.reviews(1).await;
    let body = &seen.last().unwrap().body;
    assert_eq!(body["state"], "rejected");
    let comment = body["comment"].as_str().unwrap();
    assert!(
        comment.contains(r#"{"steward": {"model": "NAME", "version": N}}"#),
        "{comment}"
    );

    // The map is the whole map: "production" is not one of its GitHub environments.
    let payload = json!({"steward": {"model": "credit-risk", "version": 1}});
    w.deliver(&w.event("production", payload)).await;
    let seen = w.reviews(2).await;
    let body = &seen.last().unwrap().body;
    assert_eq!(body["state"], "rejected");
    assert_eq!(body["environment_name"], "production");
    assert!(
        body["comment"].as_str().unwrap().contains("not mapped"),
        "{body}"
    );

    // An unknown model is rejected, naming it.
    let payload = json!({"steward": {"model": "nope", "version": 4}});
    w.deliver(&w.event("staging", payload)).await;
    let seen = w.reviews(3).await;
    let body = &seen.last().unwrap().body;
    assert_eq!(body["state"], "rejected");
    assert!(
        body["comment"]
            .as_str()
            .unwrap()
            .contains("nope version 4 is not registered"),
        "{body}"
    );

    w.no_problems();
    let audited = w.gate_checks();
    assert_eq!(audited.len(), 3);
    assert!(audited.iter().all(|e| e.details["allowed"] == false));
    assert_eq!(audited[0].name, None);
}

#[tokio::test]
async fn github_rate_limits_and_server_errors_are_retried_until_the_review_arrives() {
    let w = World::start().await;
    w.github
        .token_failures
        .lock()
        .unwrap()
        .push_back((500, None));
    w.github
        .review_failures
        .lock()
        .unwrap()
        .push_back((429, Some(1)));
    let v = w.h.register("credit-risk", RiskTier::Low).await;
    let payload = json!({"steward": {"model": "credit-risk", "version": v.get()}});
    let r = w.deliver(&w.event("staging", payload)).await;
    // Answered after one attempt, which failed at the token: the review is queued.
    assert_eq!(r.status(), 202);
    assert!(w
        .github
        .seen()
        .iter()
        .all(|s| !s.path.starts_with("/repos/")));
    let queued = w.queued().await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].status, DeliveryStatus::Pending);
    assert_eq!(queued[0].last_response_code, Some(500));
    assert_eq!(queued[0].webhook.as_str(), "github:deployments");

    // The deliverer retries it (the first retry is leased for a minute after the inline
    // attempt; the test moves the clock rather than waiting).
    let mut attempts = 0;
    while w.reviews_seen() < 2 {
        w.h.clock.advance(Duration::from_secs(61));
        attempts += w.deliverer.deliver_due(10).await.unwrap();
        assert!(attempts < 10, "not delivered: {:?}", w.queued().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(w.queued().await[0].status, DeliveryStatus::Delivered);
    let seen = w.reviews(2).await;
    w.no_problems();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    let token = format!("/app/installations/{INSTALLATION}/access_tokens");
    // 500 on the token: asked again; 429 on the review: sent again with the same token.
    assert_eq!(
        paths,
        vec![token.as_str(), token.as_str(), REVIEW_PATH, REVIEW_PATH]
    );
    assert_eq!(seen[2].body, seen[3].body);
    assert_eq!(w.gate_checks().len(), 1);
}

/// The commit `examples/credit-risk-v1.json` was built from (`lineage.code.commit`).
const BUILT_FROM: &str = "3f1d2c4b5a69788776655443322110ffeeddccbb";

#[tokio::test]
async fn an_actions_job_deployment_with_an_empty_payload_is_the_version_built_from_its_commit() {
    let w = World::start().await;
    let v = w.h.register("credit-risk", RiskTier::Low).await;
    w.h.to_staging("credit-risk", v).await;
    // What a GitHub Actions job with `environment:` sends: an empty payload, the job's sha.
    let job = |sha: &str, repo: &str| {
        let mut e = w.event("staging", json!({}));
        e["deployment"]["sha"] = json!(sha);
        e["repository"]["full_name"] = json!(repo);
        e
    };
    let r = w.deliver(&job(BUILT_FROM, "acme/training")).await;
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["state"], "approved", "{answer}");
    assert!(answer["comment"]
        .as_str()
        .unwrap()
        .contains("credit-risk version 1 passed the staging gate"));
    assert_eq!(w.gate_checks()[0].version.map(|v| v.get()), Some(1));

    // An abbreviated sha (7+ digits) matches; a commit no version was built from does not.
    let r = w
        .deliver(&job(&BUILT_FROM[..7].to_uppercase(), "Acme/Training"))
        .await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["state"], "approved", "{answer}");
    let r = w.deliver(&job("0123456789abcdef", "acme/training")).await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["state"], "rejected");
    assert!(
        answer["comment"]
            .as_str()
            .unwrap()
            .contains("no version of credit-risk was built from commit 0123456789abcdef"),
        "{answer}"
    );

    // Two versions from one commit: which one is deployed is not known, so it is rejected.
    w.h.register("credit-risk", RiskTier::Low).await;
    let r = w.deliver(&job(BUILT_FROM, "acme/training")).await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["state"], "rejected");
    assert!(
        answer["comment"]
            .as_str()
            .unwrap()
            .contains("versions 1, 2 of credit-risk were all built from commit"),
        "{answer}"
    );

    // A repository with no mapping still needs the payload.
    let r = w.deliver(&job(BUILT_FROM, "acme/other")).await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["state"], "rejected");
    assert!(answer["comment"]
        .as_str()
        .unwrap()
        .contains("github.NAME.models"));
    w.reviews(5).await;
    w.no_problems();
}

#[tokio::test]
async fn the_integrations_test_of_a_github_app_authenticates_as_the_app_and_reviews_nothing() {
    let w = World::start().await;
    let integrations = w.deliverer.integrations();
    let target = integrations.named("deployments").unwrap();
    let outcome = target
        .deliver(&steward_integrations::test_delivery(
            target.id(),
            chrono::Utc::now(),
        ))
        .await;
    assert!(outcome.succeeded(), "{outcome:?}");
    let seen = w.github.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/app");
    assert_eq!(seen[0].body["iss"], APP_ID);
    w.no_problems();
}

#[tokio::test]
async fn other_events_and_actions_are_acknowledged_without_a_review() {
    let w = World::start().await;
    let body = br#"{"action":"created"}"#;
    assert_eq!(
        w.send("installation", body, Some(sign(body)))
            .await
            .status(),
        204
    );
    let mut e = w.event("prod", json!({}));
    e["action"] = json!("completed");
    assert_eq!(w.deliver(&e).await.status(), 204);
    // A callback URL off the configured API is refused: the token goes nowhere else.
    let mut e = w.event("prod", json!({}));
    e["deployment_callback_url"] = json!("https://attacker.example/steal");
    assert_eq!(w.deliver(&e).await.status(), 400);
    // Over 1 MiB: refused before anything reads it.
    let big = vec![b' '; 1024 * 1024 + 1];
    let r = w
        .send("deployment_protection_rule", &big, Some(sign(&big)))
        .await;
    assert_eq!(r.status(), 413);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(w.github.seen().is_empty());
    assert!(w.gate_checks().is_empty());
}

#[test]
fn the_example_integrations_file_is_a_valid_configuration_and_bad_keys_are_named() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/ci/github-integrations.toml");
    let config = IntegrationsConfig::load(&path).unwrap();
    assert_eq!(config.names(), vec![("github", "deployments")]);
    let base =
        "[github.x]\napp_id = 1\nprivate_key = { env = \"K\" }\nwebhook_secret = { env = \"S\" }\n";
    let err =
        IntegrationsConfig::from_toml(&format!("{base}environments = {{ prod = \"prd\" }}\n"))
            .unwrap_err();
    assert!(
        err.to_string().contains("github.x.environments.prod"),
        "{err}"
    );
    let err = IntegrationsConfig::from_toml(&format!("{base}api_url = \"ftp://x\"\n")).unwrap_err();
    assert!(err.to_string().contains("github.x.api_url"), "{err}");
    let err = IntegrationsConfig::from_toml(
        "[github.x]\napp_id = 1\nprivate_key = \"-----BEGIN\"\nwebhook_secret = { env = \"S\" }\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("github.x.private_key"), "{err}");
}
