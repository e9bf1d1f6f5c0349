//! The AI inventory: every model with its owner, tier, stage, production, reviews, incidents
//! and card completeness.

use axum::extract::State;
use axum::Json;
use steward_core::service::InventoryEntry;

use crate::error::ApiError;
use crate::extract::Auth;
use crate::{AppState, List};

/// `GET /v1/inventory`: one entry per model, by name, in one complete list.
pub async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<List<InventoryEntry>>, ApiError> {
    Ok(Json(List::all(s.gov.inventory(&caller).await?)))
}
