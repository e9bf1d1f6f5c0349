//! Webhook subscriptions (admin; auditors read): put, get, list, delete, recent deliveries.
//! Answers never carry the secret, nor where it is kept.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use steward_core::service::WebhookInput;
use steward_core::webhooks::{Delivery, Webhook};

use crate::error::ApiError;
use crate::extract::{Auth, Body, PathParams, QueryParams};
use crate::{AppState, List};

/// A subscription as the API shows it.
#[derive(Debug, Serialize)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub revision: u64,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id.to_string(),
            url: w.url.as_str().to_owned(),
            events: w.events.clone(),
            status: w.status.as_str(),
            created_at: w.created_at,
            updated_at: w.updated_at,
            updated_by: w.updated_by.to_string(),
            revision: w.revision,
        }
    }
}

/// A delivery as the API shows it (without its body: the event is in the audit log).
#[derive(Debug, Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: &'static str,
    pub attempts: u32,
    pub last_response_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        let pending = d.status == steward_core::webhooks::DeliveryStatus::Pending;
        Self {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            status: d.status.as_str(),
            attempts: d.attempts,
            last_response_code: d.last_response_code,
            last_error: d.last_error.clone(),
            created_at: d.created_at,
            last_attempt_at: d.last_attempt_at,
            next_attempt_at: pending.then_some(d.next_attempt_at),
        }
    }
}

/// `GET /v1/webhooks`
pub async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<List<WebhookView>>, ApiError> {
    let hooks = s.gov.list_webhooks(&caller).await?;
    Ok(Json(List::all(hooks.iter().map(Into::into).collect())))
}

/// `PUT /v1/webhooks/{id}` → 201 when created, 200 when updated.
pub async fn put(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    Body(input): Body<WebhookInput>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let (hook, created) = s.gov.put_webhook(&caller, path.str("id"), input).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json((&hook).into())))
}

/// `GET /v1/webhooks/{id}`
pub async fn get(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(
        (&s.gov.webhook(&caller, path.str("id")).await?).into(),
    ))
}

/// `DELETE /v1/webhooks/{id}` → 204.
pub async fn delete(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
) -> Result<StatusCode, ApiError> {
    s.gov.delete_webhook(&caller, path.str("id")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/webhooks/{id}/deliveries?limit=N` (newest first, at most 100).
pub async fn deliveries(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    q: QueryParams,
) -> Result<Json<List<DeliveryView>>, ApiError> {
    let items = s
        .gov
        .webhook_deliveries(&caller, path.str("id"), q.limit(20)?)
        .await?;
    Ok(Json(List::all(items.iter().map(Into::into).collect())))
}
