//! The serving inventory: `POST /v1/serving` (operators: what an endpoint serves) and
//! `GET /v1/serving` (each endpoint with its outcome against the registry).
//!
//! Invariants: the reporter is the authenticated caller; the body goes to the core whole, which
//! names every bad field (422) and writes nothing for it; a repeated report answers the same
//! record and writes nothing.

use axum::extract::State;
use axum::Json;
use steward_core::serving::ServingRecord;

use crate::error::ApiError;
use crate::extract::{Auth, JsonBody, QueryParams};
use crate::{AppState, List};

/// `POST /v1/serving` → 200 with the endpoint's record: its outcome (`governed`,
/// `unapproved`, `unregistered` or `stale`), the matched version and the open incident.
pub async fn report(
    State(s): State<AppState>,
    Auth(caller): Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<ServingRecord>, ApiError> {
    Ok(Json(s.gov.report_serving(&caller, body).await?))
}

/// `GET /v1/serving?outcome=&cursor=&limit=`: endpoints by `{platform}/{environment}/{endpoint}`.
pub async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
    q: QueryParams,
) -> Result<Json<List<ServingRecord>>, ApiError> {
    let outcome = match q.str("outcome") {
        None | Some("") => None,
        Some(o @ ("governed" | "unapproved" | "unregistered" | "stale")) => Some(o.to_owned()),
        Some(other) => {
            return Err(ApiError::invalid(
                "outcome",
                format!("{other:?} is not one of: governed, unapproved, unregistered, stale"),
            ))
        }
    };
    let mut page = s
        .gov
        .serving_records(&caller, q.str("cursor"), q.limit(100)?)
        .await?;
    if let Some(o) = outcome {
        page.items.retain(|r| r.outcome.as_str() == o);
    }
    Ok(Json(page.into()))
}
