//! Monitoring: signals, incidents and periodic reviews.

use axum::extract::State;
use axum::Json;
use steward_core::records::Incident;
use steward_core::service::{PeriodicReview, SignalOutcome};

use crate::bodies::SignalInput;
use crate::error::ApiError;
use crate::extract::{Auth, Body, QueryParams};
use crate::{AppState, List};

/// `POST /v1/signals` → 200 with what Steward did about the signal (processed synchronously).
pub async fn signal(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Body(input): Body<SignalInput>,
) -> Result<Json<SignalOutcome>, ApiError> {
    Ok(Json(s.gov.signal(&caller, input).await?))
}

/// `GET /v1/incidents?model=&cursor=&limit=`
pub async fn incidents(
    State(s): State<AppState>,
    Auth(_): Auth,
    q: QueryParams,
) -> Result<Json<List<Incident>>, ApiError> {
    let page = s
        .gov
        .incidents(q.str("model"), q.str("cursor"), q.limit(50)?)
        .await?;
    Ok(Json(page.into()))
}

/// `GET /v1/periodic-reviews`: production versions by the date their review falls due.
pub async fn periodic_reviews(
    State(s): State<AppState>,
    Auth(_): Auth,
) -> Result<Json<List<PeriodicReview>>, ApiError> {
    Ok(Json(List::all(s.gov.periodic_reviews().await?)))
}
