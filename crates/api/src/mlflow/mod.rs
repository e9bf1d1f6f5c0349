//! The MLflow Model Registry REST API (`/api/2.0/mlflow/...`), as the MLflow 3.x Python
//! client calls it, translated onto the governance service.
//!
//! Invariants:
//! - Every route authenticates exactly as `/v1` does (bearer token, OpenID Connect or IAM)
//!   and goes through `Governance` only: the rules are the core's, never re-decided here.
//! - Success is 200 with a JSON object (the client fails on 204); every error is
//!   `{"error_code", "message"}` with MLflow's codes and statuses. A refusal is never a 5xx
//!   (the client retries 5xx for minutes); only a storage failure is.
//! - GET routes read their fields from the query string (repeated keys are lists), the
//!   others from a JSON body, as the client sends them.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{request::Parts, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use steward_core::ids::VersionNumber;
use steward_core::ports::Caller;
use steward_core::{GovError, StoreError};

use crate::extract::Authenticated;
use crate::AppState;

mod models;
mod search;
mod versions;
mod view;

/// The registry routes, to be merged into the API's router.
pub fn router() -> Router<AppState> {
    let m = |p: &str| format!("/api/2.0/mlflow/registered-models/{p}");
    let v = |p: &str| format!("/api/2.0/mlflow/model-versions/{p}");
    Router::new()
        .route(&m("create"), post(models::create))
        .route(&m("get"), get(models::get))
        .route(&m("search"), get(models::search))
        .route(&m("update"), axum::routing::patch(models::update))
        .route(&m("rename"), post(models::rename))
        .route(&m("delete"), axum::routing::delete(models::delete))
        .route(
            &m("get-latest-versions"),
            post(models::latest_versions).get(models::latest_versions),
        )
        .route(&m("set-tag"), post(models::set_tag))
        .route(&m("delete-tag"), axum::routing::delete(models::delete_tag))
        .route(
            &m("alias"),
            post(models::set_alias)
                .delete(models::delete_alias)
                .get(models::get_by_alias),
        )
        .route(&v("create"), post(versions::create))
        .route(&v("get"), get(versions::get))
        .route(&v("update"), axum::routing::patch(versions::update))
        .route(&v("delete"), axum::routing::delete(versions::delete))
        .route(&v("search"), get(versions::search))
        .route(&v("transition-stage"), post(versions::transition_stage))
        .route(&v("get-download-uri"), get(versions::download_uri))
        .route(&v("set-tag"), post(versions::set_tag))
        .route(
            &v("delete-tag"),
            axum::routing::delete(versions::delete_tag),
        )
        .route("/api/2.0/mlflow/{*rest}", axum::routing::any(unsupported))
        .route("/api/2.0/mlflow", axum::routing::any(unsupported))
}

/// Anything else under `/api/2.0/mlflow/`: experiments, runs and artifacts are MLflow's
/// tracking server, not its registry.
async fn unsupported(method: Method, uri: Uri) -> MlflowError {
    MlflowError::new(
        StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        format!(
            "Steward serves MLflow's model registry only; {method} {} is not one of its \
             endpoints (see docs/mlflow.md)",
            uri.path()
        ),
    )
}

/// An MLflow API error: `{"error_code", "message"}`.
#[derive(Debug)]
pub struct MlflowError {
    status: StatusCode,
    code: &'static str,
    message: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl MlflowError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: vec![],
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }

    /// A governance error as MLflow states it. `creating`: a conflict means the name is taken
    /// (RESOURCE_ALREADY_EXISTS, 400) rather than a state conflict (RESOURCE_CONFLICT, 409).
    pub fn from_gov(e: GovError, creating: bool) -> Self {
        let message = e.to_string();
        match e {
            GovError::Validation(_) | GovError::Store(StoreError::InvalidCursor) => {
                Self::invalid(message)
            }
            GovError::Policy(_) | GovError::Forbidden(_) | GovError::SeparationOfDuties(_) => {
                Self::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", message)
            }
            GovError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST", message)
            }
            GovError::Conflict(_) if creating => {
                Self::new(StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS", message)
            }
            GovError::Conflict(_)
            | GovError::Contended(_)
            | GovError::Store(StoreError::Conflict(_))
            | GovError::Store(StoreError::IdempotencyKeyTaken) => {
                Self::new(StatusCode::CONFLICT, "RESOURCE_CONFLICT", message)
            }
            GovError::Store(StoreError::Backend(ref cause)) => {
                // The cause goes to the log only, as on /v1.
                tracing::error!(error = %cause, "MLflow API: storage failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "the registry's storage failed; retry",
                )
            }
            GovError::Serialization { .. } => {
                tracing::error!(error = %message, "MLflow API: serialisation failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "internal error",
                )
            }
        }
    }
}

impl From<GovError> for MlflowError {
    fn from(e: GovError) -> Self {
        Self::from_gov(e, false)
    }
}

impl From<steward_core::FieldError> for MlflowError {
    fn from(e: steward_core::FieldError) -> Self {
        Self::invalid(e.to_string())
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"error_code": self.code, "message": self.message})),
        )
            .into_response();
        for (k, v) in self.headers {
            r.headers_mut().insert(k, v);
        }
        r
    }
}

pub type MlResult = Result<Json<Value>, MlflowError>;

/// The authenticated caller; failures in MLflow's shape (UNAUTHENTICATED 401 keeps its
/// `WWW-Authenticate`).
pub struct MlAuth(pub Caller);

impl FromRequestParts<AppState> for MlAuth {
    type Rejection = MlflowError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, MlflowError> {
        match Authenticated::from_request_parts(parts, state).await {
            Ok(a) => Ok(MlAuth(a.caller)),
            Err(e) => {
                let code = match e.status {
                    StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
                    StatusCode::FORBIDDEN => "PERMISSION_DENIED",
                    s if s.is_server_error() => "INTERNAL_ERROR",
                    _ => "INVALID_PARAMETER_VALUE",
                };
                let mut out = MlflowError::new(e.status, code, e.message);
                out.headers = e.headers;
                Err(out)
            }
        }
    }
}

/// A request's fields: the query string for GET, the JSON body otherwise (an empty body is
/// no fields).
pub struct Params(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = MlflowError;

    async fn from_request(req: Request, state: &S) -> Result<Self, MlflowError> {
        let mut map = Map::new();
        let query = req.uri().query().unwrap_or_default().to_owned();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match map.get_mut(k.as_ref()) {
                Some(Value::Array(a)) => a.push(Value::String(v.into_owned())),
                Some(other) => {
                    let first = other.take();
                    *other = Value::Array(vec![first, Value::String(v.into_owned())]);
                }
                None => {
                    map.insert(k.into_owned(), Value::String(v.into_owned()));
                }
            }
        }
        if req.method() == Method::GET {
            return Ok(Params(map));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| MlflowError::new(e.status(), "INVALID_PARAMETER_VALUE", e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Params(map));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(body)) => {
                map.extend(body);
                Ok(Params(map))
            }
            Ok(_) => Err(MlflowError::invalid(
                "the request body must be a JSON object",
            )),
            Err(e) => Err(MlflowError::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_REQUEST",
                format!("the request body is not valid JSON: {e}"),
            )),
        }
    }
}

impl Params {
    /// A string field; absent is `None`. Numbers and booleans are read as their text, as
    /// MLflow's proto parser does for query strings.
    pub fn opt(&self, field: &str) -> Result<Option<String>, MlflowError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(Value::Array(a)) if a.len() == 1 => match &a[0] {
                Value::String(s) => Ok(Some(s.clone())),
                _ => Err(MlflowError::invalid(format!("{field} must be a string"))),
            },
            Some(_) => Err(MlflowError::invalid(format!("{field} must be a string"))),
        }
    }

    /// A required string field: MLflow's "Missing value for required parameter".
    pub fn req(&self, field: &str) -> Result<String, MlflowError> {
        self.opt(field)?.filter(|s| !s.is_empty()).ok_or_else(|| {
            MlflowError::invalid(format!(
                "Missing value for required parameter '{field}'. See the API docs for \
                     more information about request parameters."
            ))
        })
    }

    pub fn text(&self, field: &str) -> Result<String, MlflowError> {
        Ok(self.opt(field)?.unwrap_or_default())
    }

    /// A list of strings (`stages`, `order_by`): repeated query keys or a JSON array.
    pub fn list(&self, field: &str) -> Result<Vec<String>, MlflowError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(vec![]),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| MlflowError::invalid(format!("{field} must be strings")))
                })
                .collect(),
            Some(_) => Err(MlflowError::invalid(format!("{field} must be a list"))),
        }
    }

    /// `tags: [{"key", "value"}]`.
    pub fn tags(&self) -> Result<Vec<(String, String)>, MlflowError> {
        let Some(v) = self.0.get("tags") else {
            return Ok(vec![]);
        };
        let Some(items) = v.as_array() else {
            return Err(MlflowError::invalid("tags must be a list of {key, value}"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let key = t.get("key").and_then(Value::as_str);
                let value = t.get("value").and_then(Value::as_str).unwrap_or_default();
                key.map(|k| (k.to_owned(), value.to_owned()))
                    .ok_or_else(|| {
                        MlflowError::invalid(format!("tags[{i}].key: a tag needs a key"))
                    })
            })
            .collect()
    }

    /// A positive integer field (`max_results`), `default` when absent.
    pub fn number(&self, field: &str, default: usize) -> Result<usize, MlflowError> {
        match self.opt(field)? {
            None => Ok(default),
            Some(s) => s.parse::<usize>().map_err(|_| {
                MlflowError::invalid(format!("{field} must be a non-negative integer, not {s:?}"))
            }),
        }
    }

    /// The `name` and `version` of a model version; a version that is not a positive number
    /// is INVALID_PARAMETER_VALUE, an absent one RESOURCE_DOES_NOT_EXIST as MLflow answers.
    pub fn version(&self) -> Result<(String, VersionNumber), MlflowError> {
        let name = self.req("name")?;
        let text = self.req("version")?;
        let n: u32 = text.trim().parse().map_err(|_| {
            MlflowError::invalid(format!("version must be a positive integer, not {text:?}"))
        })?;
        let v = steward_core::service::existing_version(&name, n)?;
        Ok((name, v))
    }
}
