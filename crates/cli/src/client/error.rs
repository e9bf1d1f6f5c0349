//! What a failed call says: an API refusal with its status, code, message and each detail,
//! or a transport or decoding failure.
//!
//! Invariant: every non-2xx answer becomes an [`ApiError`], whatever its body; a body that is
//! not the API's error JSON still yields a message (the body's start, or the status reason).

use reqwest::StatusCode;
use serde_json::Value;

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
    pub(super) fn from_body(status: StatusCode, body: &[u8]) -> Self {
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
            // API Gateway answers its own refusals (a bad signature: 403) as `{"message": ...}`.
            message: text(&err["message"])
                .or_else(|| text(&value["message"]))
                .unwrap_or_else(fallback),
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
    /// No credential could be attached (AWS credentials, an expired sign-in, ...).
    #[error("{0}")]
    Credentials(String),
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
    fn an_api_gateway_refusal_shows_its_message() {
        let e = ApiError::from_body(StatusCode::FORBIDDEN, br#"{"message":"Forbidden"}"#);
        assert_eq!((e.status, e.message.as_str()), (403, "Forbidden"));
    }

    #[test]
    fn a_non_json_error_still_says_what_happened() {
        let e = ApiError::from_body(StatusCode::BAD_GATEWAY, b"");
        assert_eq!(e.code, "http_error");
        assert_eq!(e.message, "Bad Gateway");
    }
}
