//! GitHub custom deployment protection rules, as a GitHub App: `POST
//! /v1/integrations/github/{name}` receives the App's webhooks, evaluates Steward's gate for
//! the deployment's model, version and environment, and reviews the deployment at its
//! `deployment_callback_url` (`approved` or `rejected`, the gate's reasons as the comment).
//!
//! ```toml
//! [github.deployments]
//! app_id = 123456                                  # the App's id (or its client id, "Iv1.…")
//! private_key = { file = "/etc/steward/github-app.pem" }
//! webhook_secret = { env = "GITHUB_WEBHOOK_SECRET" }
//! api_url = "https://api.github.com"               # GitHub Enterprise Server: https://HOST/api/v3
//! environments = { prod = "production", qa = "staging" }  # default: staging and production as named
//! ```
//!
//! The deployment names what it deploys in its payload, as an object or as the JSON string
//! GitHub sometimes sends: `{"steward": {"model": "credit-risk", "version": 3}}`. A GitHub
//! Actions job with `environment:` creates its deployment with an empty payload: for those,
//! `models = { "acme/scoring" = "credit-risk" }` maps the repository to its model, and the
//! version is the one whose `lineage.code.commit` is the deployment's `sha` (exactly one, or
//! the deployment is rejected saying so).
//!
//! Invariants:
//! - Nothing is read, evaluated or answered before `X-Hub-Signature-256` (HMAC-SHA256 of the
//!   raw body with the webhook secret, compared in constant time) matches: a bad or missing
//!   signature is 401 and nothing else.
//! - The gate is [`Governance::gate`], the API's call; every answer is audited (`gate.checked`,
//!   `details.source = "github"`, actor `system:github`, authentication `integration`) before
//!   it is sent. A deployment that names no model or version, names an unknown one, or targets
//!   an unmapped GitHub environment is rejected with a comment saying what to fix; when Steward
//!   cannot evaluate or record, it rejects (fails closed) and says so.
//! - The installation token goes only to `api_url`: a callback URL elsewhere is refused.
//! - The webhook is answered (202, with the state sent) once the decision is recorded and
//!   its review queued as a delivery (target `github:NAME`) and attempted once. A review
//!   GitHub did not take is retried by the deliverer, as every delivery is (on its schedule,
//!   `Retry-After` honoured, for 24 h), also across a restart and on AWS, where nothing runs
//!   after a Lambda answers: GitHub wants a webhook answered within 10 s and waits up to 30
//!   days for the review. An answer that repeating cannot change (a 404 or 422) fails the
//!   delivery at once.

mod api;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use steward_core::ids::VersionNumber;
use steward_core::ports::Caller;
use steward_core::records::DomainEvent;
use steward_core::service::GateCheck;
use steward_core::types::{AuthMethod, Environment, ModelName, PrincipalId};
use steward_core::webhooks::{Delivery, DeliveryStatus, IntegrationKind, WebhookId};
use steward_core::{GovError, Governance};

use crate::config::{check_name, ConfigError, Secret, SecretRef};
use crate::inbound::Inbound;
use crate::{Outcome, Target};

/// The largest webhook body accepted (GitHub's payloads are at most 25 MB, protection rule
/// payloads a few kB).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The longest comment sent with a review.
const COMMENT_LIMIT: usize = 2000;

/// `[github.NAME]`: one GitHub App that provides a custom deployment protection rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// The App's id (`123456`) or client id (`"Iv1.…"`): the JWT's `iss`.
    pub app_id: AppId,
    /// The App's private key, PEM (as GitHub issues it: `BEGIN RSA PRIVATE KEY`; PKCS#8 too).
    pub private_key: SecretRef,
    /// The App's webhook secret.
    pub webhook_secret: SecretRef,
    /// The REST API's base URL; default [`DEFAULT_API_URL`].
    pub api_url: Option<String>,
    /// GitHub environment name → Steward environment (`staging` | `production`). Given, it is
    /// the whole map; left out, `staging` and `production` map to themselves. A deployment to
    /// any other GitHub environment is rejected.
    pub environments: Option<BTreeMap<String, String>>,
    /// Repository (`owner/name`) → Steward model, for deployments whose payload names no
    /// model, as a GitHub Actions job's `environment:` creates them: the version is the one
    /// of that model whose `lineage.code.commit` is the deployment's `sha`.
    pub models: Option<BTreeMap<String, String>>,
}

/// GitHub's public REST API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// An App id as a number or a client id as a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AppId {
    Id(u64),
    ClientId(String),
}

impl AppId {
    fn issuer(&self) -> String {
        match self {
            AppId::Id(n) => n.to_string(),
            AppId::ClientId(s) => s.trim().to_owned(),
        }
    }
}

impl GithubConfig {
    /// Checks the keys that need no secret: name, app id, API URL, environments.
    pub fn check(&self, name: &str) -> Result<(), ConfigError> {
        check_name("github", name)?;
        if self.app_id.issuer().is_empty() {
            return Err(ConfigError::invalid(
                format!("github.{name}.app_id"),
                "the App's id or client id",
            ));
        }
        if let Some(u) = &self.api_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(ConfigError::invalid(
                    format!("github.{name}.api_url"),
                    "an http(s):// URL",
                ));
            }
        }
        for (repo, model) in self.models.iter().flatten() {
            let key = format!("github.{name}.models.{repo}");
            if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
                return Err(ConfigError::invalid(key, "a repository as owner/name"));
            }
            ModelName::parse(model).map_err(|e| ConfigError::invalid(key, e.to_string()))?;
        }
        self.environment_map(name).map(|_| ())
    }

    fn environment_map(&self, name: &str) -> Result<BTreeMap<String, Environment>, ConfigError> {
        let Some(map) = &self.environments else {
            return Ok([Environment::Staging, Environment::Production]
                .into_iter()
                .map(|e| (e.as_str().to_owned(), e))
                .collect());
        };
        map.iter()
            .map(|(gh, steward)| {
                Environment::parse(steward)
                    .map(|e| (gh.clone(), e))
                    .map_err(|_| {
                        ConfigError::invalid(
                            format!("github.{name}.environments.{gh}"),
                            "staging or production",
                        )
                    })
            })
            .collect()
    }
}

/// A configured GitHub App, its secrets resolved and its key parsed.
pub struct GithubApp {
    id: WebhookId,
    name: String,
    /// Repository (`owner/name`, lowercase) → model (`github.NAME.models`).
    models: BTreeMap<String, String>,
    webhook_secret: Secret,
    environments: BTreeMap<String, Environment>,
    console: Option<String>,
    client: api::Client,
}

impl std::fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApp")
            .field("name", &self.name)
            .field("api_url", &self.client.api_url)
            .finish_non_exhaustive()
    }
}

impl GithubApp {
    pub fn new(
        name: &str,
        c: &GithubConfig,
        console_url: Option<&str>,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        c.check(name)?;
        let field = |k: &str| format!("github.{name}.{k}");
        let pem = c.private_key.resolve(&field("private_key"))?;
        let key = api::AppKey::from_pem(pem.expose())
            .map_err(|m| ConfigError::invalid(field("private_key"), m))?;
        Ok(Self {
            id: WebhookId::integration(IntegrationKind::Github, name)
                .map_err(|e| ConfigError::invalid(format!("github.{name}"), e.message))?,
            name: name.to_owned(),
            models: c
                .models
                .iter()
                .flatten()
                .map(|(r, m)| (r.to_ascii_lowercase(), m.clone()))
                .collect(),
            webhook_secret: c.webhook_secret.resolve(&field("webhook_secret"))?,
            environments: c.environment_map(name)?,
            console: console_url.map(|u| u.trim_end_matches('/').to_owned()),
            client: api::Client {
                http,
                api_url: c
                    .api_url
                    .as_deref()
                    .unwrap_or(DEFAULT_API_URL)
                    .trim_end_matches('/')
                    .to_owned(),
                app_id: c.app_id.issuer(),
                key,
                tokens: Default::default(),
            },
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` with the webhook secret.
    pub fn signed(&self, header: Option<&str>, body: &[u8]) -> bool {
        let Some(sig) = header
            .and_then(|h| h.trim().strip_prefix("sha256="))
            .and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.webhook_secret.expose().as_bytes())
        else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    }
}

/// The identity GitHub's protection rule acts under in the audit log.
pub fn caller() -> Caller {
    Caller::new(
        PrincipalId::system("github"),
        Vec::new(),
        AuthMethod::Integration,
    )
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message, "details": []}})),
    )
        .into_response()
}

/// `POST /v1/integrations/github/{name}`: the App's webhook.
pub(crate) async fn webhook(
    State(s): State<Inbound>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(app) = s.integrations.github(&name).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such GitHub integration",
        );
    };
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if !app.signed(header("x-hub-signature-256"), &body) {
        tracing::warn!(integration = %app.name, "github: refused a webhook with a bad or missing X-Hub-Signature-256");
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "X-Hub-Signature-256 is missing or does not match",
        );
    }
    match header("x-github-event").unwrap_or_default() {
        "ping" => return (StatusCode::OK, Json(json!({"ok": true}))).into_response(),
        "deployment_protection_rule" => {}
        _ => return StatusCode::NO_CONTENT.into_response(),
    }
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return error(StatusCode::BAD_REQUEST, "malformed", "the body is not JSON"),
    };
    if event["action"] != "requested" {
        return StatusCode::NO_CONTENT.into_response();
    }
    let request = match Request::parse(&event, &app.client.api_url, &app.models) {
        Ok(r) => r,
        Err(m) => {
            tracing::warn!(integration = %app.name, why = m, "github: a protection rule request Steward cannot answer");
            return error(StatusCode::BAD_REQUEST, "malformed", m);
        }
    };
    let delivery = header("x-github-delivery").map(str::to_owned);
    let (check, comment) = decide(&s.gov, &app, &request, delivery.clone()).await;
    let (status, check, comment) = match s.gov.record_gate_check(&caller(), &check).await {
        Ok(()) => (StatusCode::ACCEPTED, check, comment),
        Err(e) => {
            tracing::error!(integration = %app.name, error = %e, "github: cannot audit the gate check; rejecting the deployment");
            let why = "Steward could not record its decision, so it rejects the deployment; re-run the job once Steward is healthy".to_owned();
            let check = GateCheck {
                allowed: false,
                reasons: vec![why.clone()],
                ..check
            };
            (StatusCode::SERVICE_UNAVAILABLE, check, why)
        }
    };
    let review = json!({
        "environment_name": request.environment,
        "state": if check.allowed { "approved" } else { "rejected" },
        "comment": comment,
    });
    let d = review_delivery(&app, &request, delivery.as_deref(), &review, s.gov.now());
    match s.deliverer.send_now(d).await {
        Ok(d) if d.status == DeliveryStatus::Delivered => {
            tracing::info!(integration = %app.name, state = %review["state"], "github: deployment reviewed")
        }
        Ok(d) => {
            tracing::warn!(integration = %app.name, state = %review["state"], delivery = %d.id, status = ?d.status,
                error = d.last_error.as_deref().unwrap_or(""), "github: the deployment review was not accepted yet; the delivery queue retries it")
        }
        Err(e) => {
            tracing::error!(integration = %app.name, state = %review["state"], error = %e,
                "github: the deployment review could not be queued; redeliver the webhook from the App's settings")
        }
    }
    (status, Json(review)).into_response()
}

/// What the review delivery's event is called (it is never published: only GitHub's own
/// target reads it).
pub const REVIEW_EVENT: &str = "GithubDeploymentReview";

/// The queued delivery of `review` for `r`: its event id is `gh_` and the webhook's
/// `X-GitHub-Delivery` (else the SHA-256 of the callback URL), with the state, so a
/// redelivered webhook that gets the same answer is the same delivery.
fn review_delivery(
    app: &GithubApp,
    r: &Request,
    github_delivery: Option<&str>,
    review: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Delivery {
    let key = github_delivery
        .map(|g| {
            g.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(64)
                .collect::<String>()
        })
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| hex::encode(&Sha256::digest(r.callback_url.as_bytes())[..8]));
    let event = DomainEvent {
        detail_type: REVIEW_EVENT.into(),
        detail: json!({
            "installation": r.installation,
            "callback_url": r.callback_url,
            "review": review,
        }),
    };
    let state = review["state"].as_str().unwrap_or("unknown");
    Delivery::new(&app.id, &format!("gh_{key}_{state}"), now, &event, now)
}

#[async_trait]
impl Target for GithubApp {
    fn id(&self) -> &WebhookId {
        &self.id
    }

    /// No governance event: its deliveries are the reviews its endpoint queues.
    fn wants(&self, _event: &DomainEvent) -> bool {
        false
    }

    async fn deliver(&self, delivery: &Delivery) -> Outcome {
        let event: Value = serde_json::from_str(&delivery.body).unwrap_or(Value::Null);
        if event["detail"]["test"] == true && event["detail-type"] != REVIEW_EVENT {
            // `steward integrations test`: authenticate as the App; there is no run to review.
            return match self.client.authenticate().await {
                Ok(slug) => {
                    tracing::info!(integration = %self.name, app = %slug, "github: authenticated as the App");
                    Outcome::ok(200)
                }
                Err(f) => Outcome {
                    code: f.status,
                    error: Some(f.why),
                    retry_after: None,
                    give_up: true,
                },
            };
        }
        let d = &event["detail"];
        let (Some(installation), Some(callback_url)) =
            (d["installation"].as_u64(), d["callback_url"].as_str())
        else {
            return Outcome {
                give_up: true,
                ..Outcome::failed(format!(
                    "not a deployment review: GitHub takes only {REVIEW_EVENT} deliveries"
                ))
            };
        };
        if event["detail-type"] != REVIEW_EVENT
            || !callback_url.starts_with(&format!("{}/", self.client.api_url))
        {
            return Outcome {
                give_up: true,
                ..Outcome::failed("the review's callback URL is not on the configured api_url")
            };
        }
        match self
            .client
            .review_once(installation, callback_url, &d["review"])
            .await
        {
            Ok(()) => Outcome::ok(200),
            Err(f) => Outcome {
                code: f.status,
                error: Some(f.why),
                retry_after: f
                    .retry_after
                    .and_then(|r| chrono::Duration::from_std(r).ok()),
                give_up: !f.retryable,
            },
        }
    }
}

/// What a deployment deploys.
#[derive(Debug)]
enum Deploys {
    /// `deployment.payload.steward`: a model and a version (number or string, checked later).
    Named(String, Value),
    /// A repository mapped to `model` (`github.NAME.models`): the version built from `sha`.
    Commit { model: String, sha: String },
}

/// What a `deployment_protection_rule` `requested` event asks, parsed.
#[derive(Debug)]
struct Request {
    /// The GitHub environment's name.
    environment: String,
    callback_url: String,
    installation: u64,
    /// What the deployment deploys, or why that is not known.
    target: Result<Deploys, String>,
    context: Value,
}

const PAYLOAD_HINT: &str =
    "add {\"steward\": {\"model\": \"NAME\", \"version\": N}} to the deployment's payload, or map the repository to its model (github.NAME.models)";

impl Request {
    fn parse(
        e: &Value,
        api_url: &str,
        models: &BTreeMap<String, String>,
    ) -> Result<Self, &'static str> {
        let environment = e["environment"]
            .as_str()
            .or_else(|| e["deployment"]["environment"].as_str())
            .filter(|s| !s.is_empty())
            .ok_or("the event names no environment")?
            .to_owned();
        let callback_url = e["deployment_callback_url"]
            .as_str()
            .ok_or("the event has no deployment_callback_url")?
            .to_owned();
        if !callback_url.starts_with(&format!("{api_url}/")) {
            return Err("the deployment_callback_url is not on the configured api_url");
        }
        let installation = e["installation"]["id"]
            .as_u64()
            .ok_or("the event has no installation.id")?;
        let payload = match &e["deployment"]["payload"] {
            Value::String(s) if s.trim().is_empty() => Value::Null,
            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            v => v.clone(),
        };
        let s = &payload["steward"];
        let repository = e["repository"]["full_name"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let sha = e["deployment"]["sha"].as_str().unwrap_or_default();
        let target = match (s["model"].as_str(), version_of(&s["version"])) {
            (Some(m), Some(v)) => Ok(Deploys::Named(m.to_owned(), v)),
            _ if s.is_null() && !sha.is_empty() && models.contains_key(&repository) => {
                Ok(Deploys::Commit {
                    model: models[&repository].clone(),
                    sha: sha.to_owned(),
                })
            }
            _ => Err(format!(
                "the deployment does not say which Steward model and version it deploys: {PAYLOAD_HINT}"
            )),
        };
        let context = json!({
            "github_environment": environment,
            "repository": e["repository"]["full_name"],
            "deployment_id": e["deployment"]["id"],
            "ref": e["deployment"]["ref"],
            "sha": e["deployment"]["sha"],
            "sender": e["sender"]["login"],
            "callback_url": callback_url,
        });
        Ok(Self {
            environment,
            callback_url,
            installation,
            target,
            context,
        })
    }
}

/// A version as a number or a numeric string; anything else is kept for the error message.
fn version_of(v: &Value) -> Option<Value> {
    match v {
        Value::Number(_) => Some(v.clone()),
        Value::String(s) if !s.trim().is_empty() => Some(v.clone()),
        _ => None,
    }
}

/// Evaluates the gate for `r`; returns what to audit and the review's comment.
async fn decide(
    gov: &Governance,
    app: &GithubApp,
    r: &Request,
    delivery: Option<String>,
) -> (GateCheck, String) {
    let mut context = r.context.clone();
    context["integration"] = json!(app.name);
    context["delivery"] = json!(delivery);
    let mut check = GateCheck {
        source: "github".into(),
        name: None,
        version: None,
        environment: app.environments.get(&r.environment).copied(),
        allowed: false,
        reasons: Vec::new(),
        context,
    };
    let refuse = |mut check: GateCheck, why: String| {
        check.reasons = vec![why.clone()];
        (check, format!("Steward: {why}"))
    };
    let Some(env) = check.environment else {
        let why = format!(
            "the GitHub environment {:?} is not mapped to a Steward environment (github.{}.environments)",
            r.environment, app.name
        );
        return refuse(check, why);
    };
    let (model, version) = match &r.target {
        Ok(Deploys::Named(m, v)) => (m.clone(), v.clone()),
        Ok(Deploys::Commit { model, sha }) => match built_from(gov, model, sha).await {
            Ok(v) => (model.clone(), json!(v)),
            Err(why) => return refuse(check, why),
        },
        Err(why) => return refuse(check, why.clone()),
    };
    let (model, version) = (&model, &version);
    let parsed = ModelName::parse(model)
        .map_err(|e| e.to_string())
        .and_then(|n| {
            let v = match version {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            v.and_then(|v| u32::try_from(v).ok())
                .and_then(|v| VersionNumber::new(v).ok())
                .map(|v| (n, v))
                .ok_or_else(|| format!("{version} is not a version number; {PAYLOAD_HINT}"))
        });
    let (name, version) = match parsed {
        Ok(p) => p,
        Err(why) => return refuse(check, format!("the deployment's payload: {why}")),
    };
    check.name = Some(name.clone());
    check.version = Some(version);
    let subject = format!("{name} version {version}");
    match gov.gate(name.as_ref(), version, env).await {
        Ok(g) => {
            check.allowed = g.allowed;
            check.reasons = g.reasons;
            let mut comment = if check.allowed {
                format!("Steward: {subject} passed the {env} gate.")
            } else {
                format!(
                    "Steward: {subject} may not be deployed to {env}: {}.",
                    check.reasons.join("; ")
                )
            };
            if let Some(c) = &app.console {
                comment.push_str(&format!(" {c}/console/models/{name}/versions/{version}"));
            }
            (check, truncate(comment))
        }
        Err(GovError::NotFound(_)) => {
            let why = format!("{subject} is not registered in Steward");
            refuse(check, why)
        }
        Err(e @ (GovError::Validation(_) | GovError::Policy(_))) => refuse(check, e.to_string()),
        Err(e) => {
            tracing::error!(integration = %app.name, error = %e, "github: cannot evaluate the gate");
            refuse(check, format!("Steward could not evaluate the {env} gate for {subject}, so it rejects the deployment; re-run the job once Steward is healthy"))
        }
    }
}

/// The one version of `model` whose `lineage.code.commit` is `sha` (either may be
/// abbreviated to at least 7 hex digits), or why there is not exactly one.
async fn built_from(gov: &Governance, model: &str, sha: &str) -> Result<u32, String> {
    let detail = match gov.model_detail(model).await {
        Ok(d) => d,
        Err(GovError::NotFound(_)) => {
            return Err(format!(
                "{model} (github models mapping) is not registered in Steward"
            ))
        }
        Err(e) => return Err(format!("cannot read {model}'s versions: {e}")),
    };
    let same = |a: &str, b: &str| {
        let (a, b) = (a.trim().to_ascii_lowercase(), b.trim().to_ascii_lowercase());
        let n = a.len().min(b.len());
        n >= 7 && a[..n] == b[..n]
    };
    let found: Vec<u32> = detail
        .versions
        .iter()
        .filter(|v| same(&v.lineage.code.commit, sha))
        .map(|v| v.version.get())
        .collect();
    match found.as_slice() {
        [v] => Ok(*v),
        [] => Err(format!(
            "no version of {model} was built from commit {sha} (lineage.code.commit); register it first, or name the version in the deployment's payload"
        )),
        many => Err(format!(
            "versions {} of {model} were all built from commit {sha}; name the one deployed in the deployment's payload ({{\"steward\": {{\"model\": \"{model}\", \"version\": N}}}})",
            many.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > COMMENT_LIMIT {
        let mut end = COMMENT_LIMIT - 3;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// The configured Apps by name.
pub type Apps = BTreeMap<String, Arc<GithubApp>>;
