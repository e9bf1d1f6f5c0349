//! Check reports from CI/CD and platform jobs: `POST` records one (`ci` or `developer`),
//! `GET` lists a version's latest report per check and environment.
//!
//! Invariants: the reporter is the authenticated caller, never the body; the body goes to the
//! core whole, which names every bad field (422); an `Idempotency-Key` replay answers 201 with
//! the first report's result and `Idempotent-Replayed: true`, writing nothing.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use steward_core::checks::CheckResult;
use steward_core::ids::VersionNumber;

use crate::error::ApiError;
use crate::extract::{header_str, Auth, JsonBody, PathParams};
use crate::{AppState, List};

fn checks_location(name: &str, version: VersionNumber) -> HeaderValue {
    // Model names are `[a-z0-9-]`, so the path needs no escaping.
    HeaderValue::from_str(&format!("/v1/models/{name}/versions/{version}/checks"))
        .unwrap_or_else(|_| HeaderValue::from_static("/v1/models"))
}

/// `POST /v1/models/{name}/versions/{version}/checks` → 201 with the stored result.
pub async fn report(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let version = path.version()?;
    let key = header_str(&headers, "Idempotency-Key")?;
    let (result, replayed) = s
        .gov
        .report_check(&caller, path.str("name"), version, body, key)
        .await?;
    let mut response = (StatusCode::CREATED, Json(&result)).into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, checks_location(path.str("name"), version));
    if replayed {
        h.insert("Idempotent-Replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `GET /v1/models/{name}/versions/{version}/checks` → every latest report, by name and
/// environment (one page).
pub async fn list(
    State(s): State<AppState>,
    Auth(_): Auth,
    path: PathParams,
) -> Result<Json<List<CheckResult>>, ApiError> {
    let checks = s.gov.checks(path.str("name"), path.version()?).await?;
    Ok(Json(List::all(checks)))
}
