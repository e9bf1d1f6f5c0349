//! Promotions and their reviews: reading a promotion, the reviews a caller may decide, and
//! decisions; and the pending retirement requests confirmers work through.

use axum::extract::State;
use axum::Json;
use steward_core::records::{Promotion, RetirementStatus, Review, ReviewStatus};
use steward_core::service::RetirementRequest;
use steward_core::FieldError;

use crate::bodies::DecisionInput;
use crate::error::ApiError;
use crate::extract::{Auth, Body, PathParams, QueryParams};
use crate::{AppState, List};

/// `GET /v1/promotions/{id}`
pub async fn promotion(
    State(s): State<AppState>,
    Auth(_): Auth,
    path: PathParams,
) -> Result<Json<Promotion>, ApiError> {
    Ok(Json(s.gov.promotion(path.str("id")).await?))
}

fn parse_status(s: &str) -> Result<ReviewStatus, FieldError> {
    ReviewStatus::parse(s).ok_or_else(|| {
        FieldError::new(
            "status",
            format!("{s:?} is not one of: pending, approved, rejected, expired, cancelled"),
        )
    })
}

/// `GET /v1/reviews?status=pending&cursor=&limit=`: reviews the caller may decide.
pub async fn list(
    State(s): State<AppState>,
    Auth(caller): Auth,
    q: QueryParams,
) -> Result<Json<List<Review>>, ApiError> {
    let status = q
        .parse("status", parse_status)?
        .unwrap_or(ReviewStatus::Pending);
    let page = s
        .gov
        .list_reviews(&caller, status, q.str("cursor"), q.limit(50)?)
        .await?;
    Ok(Json(page.into()))
}

/// `POST /v1/reviews/{id}/decision` → 200 with the promotion after the decision.
pub async fn decide(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    Body(input): Body<DecisionInput>,
) -> Result<Json<Promotion>, ApiError> {
    Ok(Json(s.gov.decide(&caller, path.str("id"), input).await?))
}

fn parse_retirement_status(s: &str) -> Result<RetirementStatus, FieldError> {
    RetirementStatus::parse(s).ok_or_else(|| {
        FieldError::new(
            "status",
            format!("{s:?} is not one of: awaiting_confirmation, confirmed"),
        )
    })
}

/// `GET /v1/retirements?status=awaiting_confirmation&cursor=&limit=`: pending retirement
/// requests, oldest first, each saying whether the caller may confirm or refuse it.
pub async fn retirements(
    State(s): State<AppState>,
    Auth(caller): Auth,
    q: QueryParams,
) -> Result<Json<List<RetirementRequest>>, ApiError> {
    let status = q
        .parse("status", parse_retirement_status)?
        .unwrap_or(RetirementStatus::AwaitingConfirmation);
    let page = s
        .gov
        .list_retirements(&caller, status, q.str("cursor"), q.limit(50)?)
        .await?;
    Ok(Json(page.into()))
}
