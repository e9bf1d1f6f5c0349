//! Extractors that turn HTTP input into what `Governance` takes, and every rejection into the
//! API's JSON error shape.
//!
//! Invariants: the caller comes from [`Auth`] only; a body is JSON (`application/json`) of at
//! most [`crate::BODY_LIMIT`] bytes, parsed as a whole before anything is decided; small bodies
//! are parsed with `steward_core::manifest::from_value`, so unknown and missing fields are
//! refused with the field's path. Syntax errors are 400, shape errors 422.

use std::collections::HashMap;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use steward_core::ids::VersionNumber;
use steward_core::manifest::from_value;
use steward_core::ports::Caller;
use steward_core::service::existing_version;
use steward_core::FieldError;

use crate::auth::Identity;
use crate::error::ApiError;
use crate::AppState;

/// The authenticated caller with the roles the registry gives it.
pub struct Auth(pub Caller);

/// The authenticated caller and the identity its credentials proved (for `GET /v1/whoami`).
pub struct Authenticated {
    pub caller: Caller,
    pub identity: Identity,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let identity = state.auth.authenticate(parts).await?;
        let caller = crate::auth::caller(state.gov.registry().as_ref(), &identity).await?;
        Ok(Authenticated { caller, identity })
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Authenticated::from_request_parts(parts, state)
            .await
            .map(|a| Auth(a.caller))
    }
}

/// A JSON body, parsed into a value but not yet into a type: the core names the field at fault.
pub struct JsonBody(pub Value);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence
            .rsplit_once('+')
            .is_some_and(|(ty, suffix)| ty.starts_with("application/") && suffix == "json")
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large()
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::malformed_json(
                "the request body is empty; expected a JSON object",
            ));
        }
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::malformed_json(format!("the body is not valid JSON: {e}")))?;
        Ok(JsonBody(value))
    }
}

/// A small JSON body parsed into `T` (`deny_unknown_fields` types); shape errors are 422 with
/// the field's path.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBody(value) = JsonBody::from_request(req, state).await?;
        Ok(Body(from_value(value)?))
    }
}

/// Path parameters as strings; handlers parse them with [`path_int`] so a bad one is a 400
/// naming the parameter.
pub struct PathParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(map) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
        Ok(PathParams(map))
    }
}

impl PathParams {
    /// A string parameter (always present: the route names it).
    pub fn str(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or_default()
    }

    /// The `{version}` of a `/v1/models/{name}/versions/{version}` path. Not an integer: 400
    /// naming it, as any integer parameter; 0: the 404 of a version the model does not have
    /// (see `steward_core::service::existing_version`).
    pub fn version(&self) -> Result<VersionNumber, ApiError> {
        let n = self.int("version")?;
        Ok(existing_version(self.str("name"), n)?)
    }

    /// An integer parameter; anything else is 400 naming it.
    pub fn int<T: FromStr>(&self, name: &str) -> Result<T, ApiError> {
        let raw = self.str(name);
        raw.parse().map_err(|_| {
            ApiError::bad_request(name, format!("{raw:?} is not a non-negative integer"))
        })
    }
}

/// Query parameters; an empty value (`?stage=`) counts as absent.
pub struct QueryParams(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
        Ok(QueryParams(map))
    }
}

impl QueryParams {
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A parameter parsed by a domain parser; failures are 422 naming the parameter.
    pub fn parse<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, FieldError>,
    ) -> Result<Option<T>, ApiError> {
        self.str(name)
            .map(|s| parse(s).map_err(|e| ApiError::invalid(name, e.message)))
            .transpose()
    }

    /// An integer parameter; failures are 422 naming the parameter.
    pub fn int<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.parse(name, |s| {
            s.parse()
                .map_err(|_| FieldError::new(name, format!("{s:?} is not a non-negative integer")))
        })
    }

    /// The page size, `default` when absent.
    pub fn limit(&self, default: usize) -> Result<usize, ApiError> {
        Ok(self.int("limit")?.unwrap_or(default))
    }
}

/// An optional header as text; a value that is not visible ASCII is 400 naming the header.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request(name, "must be visible ASCII"))
        })
        .transpose()
}

/// `If-Match: <revision>` (bare or as a quoted entity tag): the revision the caller expects.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(raw) = header_str(headers, "If-Match")? else {
        return Ok(None);
    };
    let tag = raw.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
    tag.parse()
        .map(Some)
        .map_err(|_| ApiError::bad_request("If-Match", format!("{raw:?} is not a revision number")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_content_types_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }

    #[test]
    fn if_match_accepts_bare_and_quoted_revisions() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h).unwrap(), None);
        for v in ["3", "\"3\"", "W/\"3\""] {
            h.insert("If-Match", HeaderValue::from_static(v));
            assert_eq!(if_match(&h).unwrap(), Some(3), "{v}");
        }
        h.insert("If-Match", HeaderValue::from_static("*"));
        assert_eq!(if_match(&h).unwrap_err().status, 400);
    }
}
