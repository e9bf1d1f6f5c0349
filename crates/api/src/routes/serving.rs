//! The serving inventory: `POST /v1/serving` (operators: what an endpoint serves) and
//! `GET /v1/serving` (each endpoint with its outcome against the registry).
//!
//! Invariants: the reporter is the authenticated caller; the body goes to the core whole, which
//! names every bad field (422) and writes nothing for it; a repeated report answers the same
//! record and writes nothing.

use axum::extract::State;
use axum::Json;
use steward_core::serving::{Outcome, ServingRecord};

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
    let outcome = match q.str("outcome").filter(|o| !o.is_empty()) {
        None => None,
        Some(o) => Some(Outcome::parse(o).ok_or_else(|| {
            let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
            ApiError::invalid(
                "outcome",
                format!("{o:?} is not one of: {}", names.join(", ")),
            )
        })?),
    };
    let mut page = s
        .gov
        .serving_records(&caller, q.str("cursor"), q.limit(100)?)
        .await?;
    if let Some(o) = outcome {
        page.items.retain(|r| r.outcome == o);
    }
    Ok(Json(page.into()))
}
