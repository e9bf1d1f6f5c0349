//! API errors: one JSON shape for every refusal, `{"error": {"code", "message", "details"}}`.
//!
//! Invariants: every error response is `application/json` with a stable machine-readable
//! `code`; validation details are `{"field", "message"}` objects and policy details are
//! `{"reason"}` objects; 409 `conflict` is a state a retry cannot change, 409 `contended` a
//! lost race that a retry may win (it carries `Retry-After`); a storage failure answers 500 with a generic message and its cause
//! goes to the log only.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use steward_core::{FieldError, GovError, StoreError};

/// An error answered to an API caller.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `validation_failed`, `separation_of_duties`.
    pub code: &'static str,
    pub message: String,
    pub details: Vec<Value>,
    /// Extra response headers (`WWW-Authenticate`, `Allow`, `Retry-After`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_details(mut self, details: Vec<Value>) -> Self {
        self.details = details;
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// `Retry-After: seconds`: the same request may succeed when sent again.
    pub fn retry_after(self, seconds: u32) -> Self {
        self.with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
    }

    /// 400: the request is not well-formed (a path parameter, a header, the query string).
    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{field}: {message}"),
        )
        .with_details(vec![json!({"field": field, "message": message})])
    }

    /// 400: the body is not JSON.
    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 422: an input value is not acceptable.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        GovError::field(field, message).into()
    }

    /// 401, with the `WWW-Authenticate` challenge for bearer tokens (RFC 6750).
    pub fn unauthenticated(message: impl Into<String>, invalid_token: bool) -> Self {
        let challenge = if invalid_token {
            r#"Bearer realm="steward", error="invalid_token""#
        } else {
            r#"Bearer realm="steward""#
        };
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message).with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        )
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {} bytes", crate::BODY_LIMIT),
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the request may not have been applied, retry later",
        )
    }

    /// The error for a bare status produced outside the handlers (405 from the router, 413 from
    /// the body limit layer, ...).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "the request is not well-formed"),
            StatusCode::UNAUTHORIZED => ("unauthenticated", "authentication required"),
            StatusCode::FORBIDDEN => ("forbidden", "forbidden"),
            StatusCode::NOT_FOUND => ("not_found", "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this method is not allowed on this path; see the Allow header",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => return Self::payload_too_large(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ),
            s if s.is_server_error() => return Self::internal(),
            _ => ("error", "the request failed"),
        };
        Self::new(status, code, message)
    }
}

fn field_details(errors: &[FieldError]) -> Vec<Value> {
    errors
        .iter()
        .map(|e| json!({"field": e.field, "message": e.message}))
        .collect()
}

impl From<GovError> for ApiError {
    fn from(e: GovError) -> Self {
        let code = e.code();
        match e {
            GovError::Validation(ref errors) => {
                let details = field_details(errors);
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
                    .with_details(details)
            }
            GovError::Policy(ref reasons) => {
                let details = reasons.iter().map(|r| json!({"reason": r})).collect();
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
                    .with_details(details)
            }
            GovError::Forbidden(_) | GovError::SeparationOfDuties(_) => {
                Self::new(StatusCode::FORBIDDEN, code, e.to_string())
            }
            GovError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, code, e.to_string()),
            GovError::Conflict(_) => Self::new(StatusCode::CONFLICT, code, e.to_string()),
            // A lost race: the same request may succeed on a retry, which Retry-After invites.
            GovError::Contended(_)
            | GovError::Store(StoreError::Conflict(_))
            | GovError::Store(StoreError::IdempotencyKeyTaken) => {
                Self::new(StatusCode::CONFLICT, code, e.to_string()).retry_after(1)
            }
            GovError::Store(StoreError::InvalidCursor) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                "cursor: is not a cursor this list returned",
            )
            .with_details(vec![
                json!({"field": "cursor", "message": "is not a cursor this list returned"}),
            ]),
            GovError::Store(StoreError::Backend(ref cause)) => {
                tracing::error!(cause = %steward_core::error::chain(cause), "storage backend failed");
                Self::internal()
            }
            GovError::Serialization { .. } => {
                tracing::error!(cause = %steward_core::error::chain(&e), "serialisation failed");
                Self::internal()
            }
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        GovError::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        GovError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "details": self.details,
        }});
        let mut response = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}
