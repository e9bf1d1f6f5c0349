//! The HTTP client of the Steward API: one method per operation, used by the subcommands, the
//! demo and `audit verify --server`.
//!
//! Invariants: a response body is handed back as the API's own JSON (so `--output json` shows
//! exactly what the server said, fields this client does not know included); every non-2xx
//! answer becomes an [`ApiError`] carrying the status, code, message and details; the bearer
//! token is sent as a sensitive header and never appears in `Debug` output or errors.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use steward_core::types::{Decision, Environment, Role, SignalKind};

/// The server a client talks to when none is named.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One problem the API listed in `error.details`: a field and what is wrong with it, or a reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) if !field.is_empty() => write!(f, "{field}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A refusal answered by the API: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Vec<Detail>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl ApiError {
    fn from_body(status: StatusCode, body: &[u8]) -> Self {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let err = &value["error"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let details = err["details"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(
                        |d| match (text(&d["field"]), text(&d["message"]), text(&d["reason"])) {
                            (field, Some(message), _) => Detail { field, message },
                            (field, None, Some(reason)) => Detail {
                                field,
                                message: reason,
                            },
                            _ => Detail {
                                field: None,
                                message: d.to_string(),
                            },
                        },
                    )
                    .collect()
            })
            .unwrap_or_default();
        let fallback = || {
            let raw = String::from_utf8_lossy(body);
            let raw = raw.trim();
            if raw.is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                raw.chars().take(300).collect()
            }
        };
        ApiError {
            status: status.as_u16(),
            code: text(&err["code"]).unwrap_or_else(|| "http_error".to_owned()),
            message: text(&err["message"]).unwrap_or_else(fallback),
            details,
        }
    }
}

/// Why a call did not return a 2xx JSON answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{0}")]
    Api(ApiError),
    /// The server could not be reached or the exchange failed.
    #[error("cannot reach {server}: {message}")]
    Transport { server: String, message: String },
    /// The server answered 2xx with a body that is not JSON.
    #[error("the server's answer is not JSON: {0}")]
    Decode(String),
}

impl ClientError {
    /// The API refusal, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api(e) => Some(e),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Filters of `GET /v1/models`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A client of one Steward server, acting as the holder of one bearer token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.base)
            .finish_non_exhaustive()
    }
}

fn path_segment(s: &str) -> String {
    // Model names are `[a-z0-9-]`, but ids and principal names (IAM ARNs) are not.
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client of `server` (e.g. `http://127.0.0.1:8080`), sending `token` as its bearer token.
    pub fn new(server: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        if let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                anyhow::anyhow!("the token contains characters a header cannot carry")
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("steward-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            anyhow::bail!("--server must be an http:// or https:// URL, not {server:?}");
        }
        Ok(Self { http, base })
    }

    pub fn server(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    async fn send(&self, req: RequestBuilder) -> Result<Value> {
        let transport = |e: reqwest::Error| ClientError::Transport {
            server: self.base.clone(),
            // Without the URL: the cause is enough and keeps the message short.
            message: e.without_url().to_string(),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(ClientError::Api(ApiError::from_body(status, &body)));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::GET, path)).await
    }

    async fn get_query<Q: Serialize + ?Sized>(&self, path: &str, query: &Q) -> Result<Value> {
        self.send(self.request(Method::GET, path).query(query))
            .await
    }

    async fn post<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<Value> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    fn version_path(name: &str, version: u32) -> String {
        format!("/v1/models/{}/versions/{version}", path_segment(name))
    }

    /// `GET /healthz`
    pub async fn health(&self) -> Result<Value> {
        self.get("/healthz").await
    }

    /// `POST /v1/models/{name}/versions`: registers a version from a manifest (201).
    pub async fn register(
        &self,
        name: &str,
        manifest: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        let mut req = self
            .request(
                Method::POST,
                &format!("/v1/models/{}/versions", path_segment(name)),
            )
            .json(manifest);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        self.send(req).await
    }

    /// `GET /v1/models`
    pub async fn models(&self, query: &ModelQuery) -> Result<Value> {
        self.get_query("/v1/models", query).await
    }

    /// `GET /v1/models/{name}`
    pub async fn model(&self, name: &str) -> Result<Value> {
        self.get(&format!("/v1/models/{}", path_segment(name)))
            .await
    }

    /// `GET /v1/models/{name}/versions/{version}`
    pub async fn version(&self, name: &str, version: u32) -> Result<Value> {
        self.get(&Self::version_path(name, version)).await
    }

    /// `GET /v1/models/{name}/versions/{version}/card`
    pub async fn card(&self, name: &str, version: u32) -> Result<Value> {
        self.get(&format!("{}/card", Self::version_path(name, version)))
            .await
    }

    /// `PUT /v1/models/{name}/versions/{version}/card`: a new card revision.
    pub async fn put_card(
        &self,
        name: &str,
        version: u32,
        card: &Value,
        if_match: Option<u64>,
    ) -> Result<Value> {
        let mut req = self
            .request(
                Method::PUT,
                &format!("{}/card", Self::version_path(name, version)),
            )
            .json(card);
        if let Some(revision) = if_match {
            req = req.header("If-Match", revision.to_string());
        }
        self.send(req).await
    }

    /// `GET /v1/models/{name}/versions/{version}/card/revisions`
    pub async fn card_revisions(&self, name: &str, version: u32) -> Result<Value> {
        self.get(&format!(
            "{}/card/revisions",
            Self::version_path(name, version)
        ))
        .await
    }

    /// `POST /v1/models/{name}/versions/{version}/evaluations`
    pub async fn add_evaluation(
        &self,
        name: &str,
        version: u32,
        evaluation: &Value,
    ) -> Result<Value> {
        self.post(
            &format!("{}/evaluations", Self::version_path(name, version)),
            evaluation,
        )
        .await
    }

    /// `GET /v1/models/{name}/versions/{version}/gate?environment=`
    pub async fn gate(&self, name: &str, version: u32, env: Environment) -> Result<Value> {
        self.get_query(
            &format!("{}/gate", Self::version_path(name, version)),
            &[("environment", env.as_str())],
        )
        .await
    }

    /// `POST /v1/models/{name}/versions/{version}/promotions` (202 with the required reviews)
    pub async fn promote(&self, name: &str, version: u32, target: Environment) -> Result<Value> {
        self.post(
            &format!("{}/promotions", Self::version_path(name, version)),
            &json!({"target": target}),
        )
        .await
    }

    /// `GET /v1/promotions/{id}`
    pub async fn promotion(&self, id: &str) -> Result<Value> {
        self.get(&format!("/v1/promotions/{}", path_segment(id)))
            .await
    }

    /// `GET /v1/reviews?status=` (the server's default is `pending`)
    pub async fn reviews(
        &self,
        status: Option<&str>,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Value> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if let Some(s) = status {
            q.push(("status", s.to_owned()));
        }
        if let Some(c) = cursor {
            q.push(("cursor", c.to_owned()));
        }
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        self.get_query("/v1/reviews", &q).await
    }

    /// `POST /v1/reviews/{id}/decision`
    pub async fn decide(
        &self,
        review_id: &str,
        decision: Decision,
        comment: Option<&str>,
        conditions: &[String],
    ) -> Result<Value> {
        let mut body = json!({"decision": decision, "conditions": conditions});
        if let Some(c) = comment {
            body["comment"] = json!(c);
        }
        self.post(
            &format!("/v1/reviews/{}/decision", path_segment(review_id)),
            &body,
        )
        .await
    }

    /// `POST /v1/models/{name}/versions/{version}/deployments`
    pub async fn deploy(&self, name: &str, version: u32, env: Environment) -> Result<Value> {
        self.post(
            &format!("{}/deployments", Self::version_path(name, version)),
            &json!({"environment": env}),
        )
        .await
    }

    /// `POST /v1/models/{name}/rollback`
    pub async fn rollback(&self, name: &str, reason: &str) -> Result<Value> {
        self.post(
            &format!("/v1/models/{}/rollback", path_segment(name)),
            &json!({"reason": reason}),
        )
        .await
    }

    /// `POST /v1/signals`
    pub async fn signal(
        &self,
        model: &str,
        version: u32,
        kind: SignalKind,
        metric: &str,
        value: f64,
    ) -> Result<Value> {
        self.signal_with_key(model, version, kind, metric, value, None)
            .await
    }

    /// `POST /v1/signals` with an optional `Idempotency-Key`.
    pub async fn signal_with_key(
        &self,
        model: &str,
        version: u32,
        kind: SignalKind,
        metric: &str,
        value: f64,
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        let mut req = self.request(Method::POST, "/v1/signals").json(
            &json!({"model": model, "version": version, "kind": kind, "metric": metric, "value": value}),
        );
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        self.send(req).await
    }

    /// `GET /v1/incidents?model=`
    pub async fn incidents(
        &self,
        model: Option<&str>,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Value> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if let Some(m) = model {
            q.push(("model", m.to_owned()));
        }
        if let Some(c) = cursor {
            q.push(("cursor", c.to_owned()));
        }
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        self.get_query("/v1/incidents", &q).await
    }

    /// `GET /v1/periodic-reviews`
    pub async fn periodic_reviews(&self) -> Result<Value> {
        self.get("/v1/periodic-reviews").await
    }

    /// `POST /v1/models/{name}/versions/{version}/retirement`
    pub async fn retire(
        &self,
        name: &str,
        version: u32,
        reason: &str,
        replacement: Option<u32>,
    ) -> Result<Value> {
        let mut body = json!({"reason": reason});
        if let Some(r) = replacement {
            body["replacement"] = json!(r);
        }
        self.post(
            &format!("{}/retirement", Self::version_path(name, version)),
            &body,
        )
        .await
    }

    /// `POST /v1/models/{name}/versions/{version}/retirement/confirmation`
    pub async fn confirm_retirement(
        &self,
        name: &str,
        version: u32,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<Value> {
        let mut body = json!({"decision": if approve { "approve" } else { "reject" }});
        if let Some(c) = comment {
            body["comment"] = json!(c);
        }
        self.post(
            &format!(
                "{}/retirement/confirmation",
                Self::version_path(name, version)
            ),
            &body,
        )
        .await
    }

    /// `GET /v1/models/{name}/production?at=`
    pub async fn production(&self, name: &str, at: Option<DateTime<Utc>>) -> Result<Value> {
        let path = format!("/v1/models/{}/production", path_segment(name));
        match at {
            Some(t) => {
                let at = t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                self.get_query(&path, &[("at", at)]).await
            }
            None => self.get(&path).await,
        }
    }

    /// `GET /v1/audit?model=&after=&limit=`
    pub async fn audit_events(
        &self,
        model: Option<&str>,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Value> {
        let mut q: Vec<(&str, String)> = vec![("after", after.to_string())];
        if let Some(m) = model {
            q.push(("model", m.to_owned()));
        }
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        self.get_query("/v1/audit", &q).await
    }

    /// `GET /v1/audit/checkpoint`
    pub async fn audit_checkpoint(&self) -> Result<Value> {
        self.get("/v1/audit/checkpoint").await
    }

    /// `GET /v1/audit/proof/{seq}`
    pub async fn audit_proof(&self, seq: u64) -> Result<Value> {
        self.get(&format!("/v1/audit/proof/{seq}")).await
    }

    /// `GET /v1/audit/consistency?first=&second=`
    pub async fn audit_consistency(&self, first: u64, second: Option<u64>) -> Result<Value> {
        let mut q = vec![("first", first)];
        if let Some(s) = second {
            q.push(("second", s));
        }
        self.get_query("/v1/audit/consistency", &q).await
    }

    /// `GET /v1/principals`
    pub async fn principals(&self) -> Result<Value> {
        self.get("/v1/principals").await
    }

    /// `PUT /v1/principals/{id}`
    pub async fn set_roles(&self, id: &str, roles: &[Role]) -> Result<Value> {
        self.send(
            self.request(Method::PUT, &format!("/v1/principals/{}", path_segment(id)))
                .json(&json!({"roles": roles})),
        )
        .await
    }
}

/// The items of a list answer: `{"items": [...]}` (or a bare array).
pub fn items(v: &Value) -> &[Value] {
    v.get("items")
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The `next_cursor` of a list answer.
pub fn next_cursor(v: &Value) -> Option<&str> {
    v.get("next_cursor").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_keep_code_message_and_each_detail() {
        let body = br#"{"error":{"code":"validation_failed","message":"validation failed","details":[{"field":"card.rollback","message":"is required"},{"reason":"not approved"}]}}"#;
        let e = ApiError::from_body(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(e.status, 422);
        assert_eq!(e.code, "validation_failed");
        assert_eq!(e.details[0].to_string(), "card.rollback: is required");
        assert_eq!(e.details[1].to_string(), "not approved");
    }

    #[test]
    fn a_non_json_error_still_says_what_happened() {
        let e = ApiError::from_body(StatusCode::BAD_GATEWAY, b"");
        assert_eq!(e.code, "http_error");
        assert_eq!(e.message, "Bad Gateway");
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("credit-risk"), "credit-risk");
        assert_eq!(
            path_segment("arn:aws:iam::1:user/a b"),
            "arn%3Aaws%3Aiam%3A%3A1%3Auser%2Fa%20b"
        );
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let c = Client::new("http://127.0.0.1:1", Some("s3cret-token")).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
