//! Principals (admin): list them, set a principal's roles.

use axum::extract::State;
use axum::Json;
use steward_core::records::PrincipalRecord;

use crate::bodies::RolesRequest;
use crate::error::ApiError;
use crate::extract::{Auth, Body, PathParams};
use crate::{AppState, List};

/// `GET /v1/principals`
pub async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<List<PrincipalRecord>>, ApiError> {
    Ok(Json(List::all(s.gov.principals(&caller).await?)))
}

/// `PUT /v1/principals/{id}` (the id may contain `/`, as IAM ARNs do) → 200 with the record.
pub async fn set_roles(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    Body(req): Body<RolesRequest>,
) -> Result<Json<PrincipalRecord>, ApiError> {
    Ok(Json(
        s.gov.set_roles(&caller, path.str("id"), req.roles).await?,
    ))
}
