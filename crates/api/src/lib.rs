//! Steward's HTTP API: one axum [`Router`] shared by `steward serve` and the API Lambda.
//!
//! Invariants:
//! - Handlers parse, authenticate, call [`Governance`] once and map the answer; every business
//!   rule lives in `steward-core`.
//! - Every `/v1` route except `/v1/openapi.json` and `/v1/auth/oidc` (public provider
//!   metadata for `steward login`) authenticates the caller through the configured
//!   [`Authenticator`]; roles come from the registry (and a configured OIDC groups mapping),
//!   never from the request.
//! - Every response body is JSON, and every error has the shape
//!   `{"error": {"code", "message", "details"}}` — including unknown routes (404), wrong
//!   methods (405) and oversized bodies (413, above [`BODY_LIMIT`]).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method, Uri};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use steward_core::ports::Page;
use steward_core::Governance;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub mod auth;
pub mod bodies;
pub mod console;
pub mod error;
mod extract;
pub mod mlflow;
pub(crate) mod routes;

pub use auth::{
    Authenticator, Authenticators, BearerTokens, IamCallerArn, Identity, OidcConfig, OidcSettings,
    OidcVerifier, RequestContextArn,
};
pub use error::ApiError;

use routes::{
    audit, checks, evidence, identity, inventory, models, monitoring, principals, reviews, serving,
    webhooks,
};

/// The largest request body accepted: 1 MiB.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The OpenAPI 3.1 description of every route, served at `GET /v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub gov: Arc<Governance>,
    pub auth: Arc<dyn Authenticator>,
}

/// A page of a list: `{"items": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// A complete list (no further pages).
    pub fn all(items: Vec<T>) -> Self {
        Self {
            items,
            next_cursor: None,
        }
    }
}

impl<T> From<Page<T>> for List<T> {
    fn from(p: Page<T>) -> Self {
        Self {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

/// The API: every route of DESIGN.md's contract, with body limits, JSON errors and tracing;
/// console sessions in memory (one process serves the console: `steward serve`).
pub fn router(state: AppState) -> Router {
    router_with_sessions(state, Arc::new(console::session::MemorySessions::default()))
}

/// [`router`] with console sessions in `sessions`, shared by every instance (DynamoDB behind
/// the API function).
pub fn router_with_sessions(
    state: AppState,
    sessions: Arc<dyn steward_core::ports::SessionStore>,
) -> Router {
    let version = "/v1/models/{name}/versions/{version}";
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{name}", get(models::detail))
        .route("/v1/models/{name}/versions", post(models::register))
        .route(version, get(models::version))
        .route(
            &format!("{version}/card"),
            get(models::card).put(models::revise_card),
        )
        .route(
            &format!("{version}/card/revisions"),
            get(models::card_revisions),
        )
        .route(
            &format!("{version}/evaluations"),
            post(models::add_evaluation),
        )
        .route(
            &format!("{version}/checks"),
            post(checks::report).get(checks::list),
        )
        .route(&format!("{version}/gate"), get(models::gate))
        .route(&format!("{version}/evidence-pack"), get(evidence::pack))
        .route(
            &format!("{version}/promotions"),
            post(models::request_promotion),
        )
        .route(&format!("{version}/deployments"), post(models::deploy))
        .route(&format!("{version}/retirement"), post(models::retire))
        .route(
            &format!("{version}/retirement/confirmation"),
            post(models::confirm_retirement),
        )
        .route("/v1/models/{name}/rollback", post(models::rollback))
        .route("/v1/models/{name}/production", get(models::production_at))
        .route("/v1/promotions/{id}", get(reviews::promotion))
        .route("/v1/reviews", get(reviews::list))
        .route("/v1/retirements", get(reviews::retirements))
        .route("/v1/reviews/{id}/decision", post(reviews::decide))
        .route("/v1/signals", post(monitoring::signal))
        .route("/v1/incidents", get(monitoring::incidents))
        .route(
            "/v1/incidents/{id}/classification",
            post(monitoring::classify_incident),
        )
        .route(
            "/v1/incidents/{id}/report",
            post(monitoring::record_incident_report),
        )
        .route("/v1/incidents/{id}/close", post(monitoring::close_incident))
        .route("/v1/periodic-reviews", get(monitoring::periodic_reviews))
        .route("/v1/inventory", get(inventory::list))
        .route("/v1/serving", post(serving::report).get(serving::list))
        .route("/v1/audit", get(audit::events))
        .route("/v1/audit/checkpoint", get(audit::checkpoint))
        .route("/v1/audit/key", get(audit::key))
        .route("/v1/audit/proof/{seq}", get(audit::proof))
        .route("/v1/audit/consistency", get(audit::consistency))
        .route("/v1/whoami", get(identity::whoami))
        .route("/v1/auth/oidc", get(identity::oidc))
        .route("/v1/principals", get(principals::list))
        // A wildcard, so IAM ARNs (which contain `/`) work with or without percent-encoding.
        .route("/v1/principals/{*id}", put(principals::set_roles))
        .route("/v1/webhooks", get(webhooks::list))
        .route(
            "/v1/webhooks/{id}",
            put(webhooks::put)
                .get(webhooks::get)
                .delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .merge(mlflow::router())
        .fallback(unknown_route)
        .with_state(state.clone())
        .merge(console::router_with_sessions(state, sessions))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Refuses a declared oversized body before reading it; chunked bodies are cut off by
        // `DefaultBodyLimit` while they are read.
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(map_response(json_errors))
        .layer(TraceLayer::new_for_http())
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}; see /v1/openapi.json", uri.path()),
    )
}

/// Rewrites error responses produced outside the handlers (405 from the router, 413 from the
/// body limit layer) into the API's JSON error shape, keeping their headers (`Allow`).
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"));
    // The console's error pages are HTML on purpose; anything else becomes JSON.
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut fresh = ApiError::from_status(status).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fresh.headers_mut().insert(name, value.clone());
        }
    }
    fresh
}
