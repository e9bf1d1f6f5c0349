//! Monitoring: signals, incidents and periodic reviews.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use steward_core::records::Incident;
use steward_core::service::{MonitoringSignal, PeriodicReview};

use crate::bodies::SignalInput;
use crate::error::ApiError;
use crate::extract::{header_str, Auth, Body, JsonBody, PathParams, QueryParams};
use crate::{AppState, List};

/// `POST /v1/signals` → 200 with what Steward did about the signal (processed synchronously).
/// With an `Idempotency-Key`, a repeated delivery of the same signal returns the first outcome
/// (header `Idempotent-Replayed: true`) and opens no second incident; the same key with
/// another signal is a 409.
pub async fn signal(
    State(s): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Body(input): Body<SignalInput>,
) -> Result<Response, ApiError> {
    let key = header_str(&headers, "Idempotency-Key")?;
    let (outcome, replayed) = s
        .gov
        .signal_once(&caller, MonitoringSignal::try_from(input)?, key)
        .await?;
    let mut response = Json(outcome).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("Idempotent-Replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
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

/// `POST /v1/incidents/{id}/classification` (compliance): `{"severity": "serious", "category"}`
/// → 200 with the incident, which now carries `report_due` and `classification`.
pub async fn classify_incident(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    JsonBody(body): JsonBody,
) -> Result<Json<Incident>, ApiError> {
    let incident = s
        .gov
        .classify_incident(&caller, path.str("id"), body)
        .await?;
    Ok(Json(incident))
}

/// `POST /v1/incidents/{id}/report` (compliance): `{"reference", "submitted_at"?}` → 200 with
/// the incident: the serious incident's report was submitted.
pub async fn record_incident_report(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    JsonBody(body): JsonBody,
) -> Result<Json<Incident>, ApiError> {
    let incident = s
        .gov
        .record_incident_report(&caller, path.str("id"), body)
        .await?;
    Ok(Json(incident))
}

/// `POST /v1/incidents/{id}/close` (operator or compliance): `{"resolution"}` → 200 with the
/// incident, now `resolved`; a serious one closes only after its report is recorded.
pub async fn close_incident(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    JsonBody(body): JsonBody,
) -> Result<Json<Incident>, ApiError> {
    let incident = s.gov.close_incident(&caller, path.str("id"), body).await?;
    Ok(Json(incident))
}

/// `GET /v1/periodic-reviews`: production versions by the date their review falls due.
pub async fn periodic_reviews(
    State(s): State<AppState>,
    Auth(_): Auth,
) -> Result<Json<List<PeriodicReview>>, ApiError> {
    Ok(Json(List::all(s.gov.periodic_reviews().await?)))
}
