//! Models and versions: registration, reads, cards, evaluations, gates, promotions,
//! deployments, rollback, retirement and point-in-time production queries.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use steward_core::ids::VersionNumber;
use steward_core::manifest::ModelCard;
use steward_core::ports::ModelFilter;
use steward_core::records::{CardRevision, Model, ModelVersion};
use steward_core::service::{
    existing_replacement, GateResult, ModelDetail, ProductionAt, RetireOutcome, VersionDetail,
};
use steward_core::types::{Environment, ModelName, RiskTier, Stage};

use crate::bodies::{
    DeploymentRequest, PromotionRequest, RetirementConfirmation, RetirementRequest, RollbackRequest,
};
use crate::error::ApiError;
use crate::extract::{header_str, if_match, Auth, Body, JsonBody, PathParams, QueryParams};
use crate::{AppState, List};

/// `GET .../card`: the current card with the numbers an editor needs.
#[derive(Debug, Serialize)]
pub struct CardView {
    pub name: ModelName,
    pub version: VersionNumber,
    /// Which revision of the card this is (1 at registration).
    pub card_revision: u32,
    /// The version's revision, to send back as `If-Match` with the edited card.
    pub revision: u64,
    pub card: ModelCard,
}

fn version_location(name: &str, version: VersionNumber) -> HeaderValue {
    // Model names are `[a-z0-9-]`, so the path needs no escaping.
    HeaderValue::from_str(&format!("/v1/models/{name}/versions/{version}"))
        .unwrap_or_else(|_| HeaderValue::from_static("/v1/models"))
}

/// `POST /v1/models/{name}/versions`
pub async fn register(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let key = header_str(&headers, "Idempotency-Key")?;
    let (version, replayed) = s.gov.register(&caller, path.str("name"), body, key).await?;
    let mut response = (StatusCode::CREATED, Json(&version)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::LOCATION,
        version_location(version.name.as_ref(), version.version),
    );
    if replayed {
        h.insert("Idempotent-Replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `GET /v1/models?stage=&owner=&tier=&cursor=&limit=`
pub async fn list(
    State(s): State<AppState>,
    Auth(_): Auth,
    q: QueryParams,
) -> Result<Json<List<Model>>, ApiError> {
    let filter = ModelFilter {
        stage: q.parse("stage", Stage::parse)?,
        owner: q.str("owner").map(str::to_owned),
        tier: q.parse("tier", RiskTier::parse)?,
    };
    let page = s
        .gov
        .list_models(&filter, q.str("cursor"), q.limit(50)?)
        .await?;
    Ok(Json(page.into()))
}

/// `GET /v1/models/{name}`
pub async fn detail(
    State(s): State<AppState>,
    Auth(_): Auth,
    path: PathParams,
) -> Result<Json<ModelDetail>, ApiError> {
    Ok(Json(s.gov.model_detail(path.str("name")).await?))
}

/// `GET /v1/models/{name}/versions/{version}`
pub async fn version(
    State(s): State<AppState>,
    Auth(_): Auth,
    path: PathParams,
) -> Result<Json<VersionDetail>, ApiError> {
    let detail = s
        .gov
        .version_detail(path.str("name"), path.version()?)
        .await?;
    Ok(Json(detail))
}

/// `GET /v1/models/{name}/versions/{version}/card`: the current card, its revision number and
/// the version revision to send back as `If-Match`.
pub async fn card(
    State(s): State<AppState>,
    Auth(_): Auth,
    path: PathParams,
) -> Result<Json<CardView>, ApiError> {
    let v = s
        .gov
        .version_detail(path.str("name"), path.version()?)
        .await?
        .version;
    Ok(Json(CardView {
        name: v.name,
        version: v.version,
        card_revision: v.card_revision,
        revision: v.revision,
        card: v.card,
    }))
}

/// `GET /v1/models/{name}/versions/{version}/card/revisions`
pub async fn card_revisions(
    State(s): State<AppState>,
    Auth(_): Auth,
    path: PathParams,
) -> Result<Json<List<CardRevision>>, ApiError> {
    let revisions = s
        .gov
        .card_revisions(path.str("name"), path.version()?)
        .await?;
    Ok(Json(List::all(revisions)))
}

/// `PUT /v1/models/{name}/versions/{version}/card` (optional `If-Match: <revision>`)
pub async fn revise_card(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    headers: HeaderMap,
    JsonBody(card): JsonBody,
) -> Result<Json<ModelVersion>, ApiError> {
    let expected = if_match(&headers)?;
    let v = s
        .gov
        .revise_card(&caller, path.str("name"), path.version()?, card, expected)
        .await?;
    Ok(Json(v))
}

/// `POST /v1/models/{name}/versions/{version}/evaluations`
pub async fn add_evaluation(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let v = s
        .gov
        .add_evaluation(&caller, path.str("name"), path.version()?, body)
        .await?;
    let location = version_location(v.name.as_ref(), v.version);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(v)).into_response())
}

/// `GET /v1/models/{name}/versions/{version}/gate?environment=`: 200 whether allowed or not.
pub async fn gate(
    State(s): State<AppState>,
    Auth(_): Auth,
    path: PathParams,
    q: QueryParams,
) -> Result<Json<GateResult>, ApiError> {
    let version = path.version()?;
    let env = q
        .parse("environment", Environment::parse)?
        .ok_or_else(|| ApiError::invalid("environment", "is required (staging or production)"))?;
    let result = s.gov.gate(path.str("name"), version, env).await?;
    Ok(Json(result))
}

/// `POST /v1/models/{name}/versions/{version}/promotions` → 202 with the required reviews.
pub async fn request_promotion(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    Body(req): Body<PromotionRequest>,
) -> Result<Response, ApiError> {
    let p = s
        .gov
        .request_promotion(
            &caller,
            path.str("name"),
            path.version()?,
            req.target,
            req.revision,
        )
        .await?;
    let location = HeaderValue::from_str(&format!("/v1/promotions/{}", p.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/v1/promotions"));
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(p),
    )
        .into_response())
}

/// `POST /v1/models/{name}/versions/{version}/deployments` → 201 with the version.
pub async fn deploy(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    Body(req): Body<DeploymentRequest>,
) -> Result<Response, ApiError> {
    let v = s
        .gov
        .deploy(
            &caller,
            path.str("name"),
            path.version()?,
            req.environment,
            req.revision,
        )
        .await?;
    let location = version_location(v.name.as_ref(), v.version);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(v)).into_response())
}

/// `POST /v1/models/{name}/rollback` → 200 with the model; an `Idempotency-Key` makes a
/// retry answer with the first rollback's model (`Idempotent-Replayed: true`).
pub async fn rollback(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    headers: HeaderMap,
    Body(req): Body<RollbackRequest>,
) -> Result<Response, ApiError> {
    let key = header_str(&headers, "Idempotency-Key")?;
    let (m, replayed) = s
        .gov
        .rollback_keyed(
            &caller,
            path.str("name"),
            &req.reason,
            req.from_version,
            key,
        )
        .await?;
    let mut response = Json(&m).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("Idempotent-Replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `POST /v1/models/{name}/versions/{version}/retirement` → 200 with the retired version;
/// where retirements go through the retirement workflow (AWS), 202 with the version and its
/// `pending_retirement` (the request waits for confirmation).
pub async fn retire(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    Body(req): Body<RetirementRequest>,
) -> Result<Response, ApiError> {
    let outcome = s
        .gov
        .retire(
            &caller,
            path.str("name"),
            path.version()?,
            &req.reason,
            req.replacement
                .map(|r| existing_replacement(path.str("name"), r))
                .transpose()?,
        )
        .await?;
    Ok(match outcome {
        RetireOutcome::Retired(v) => Json(v).into_response(),
        RetireOutcome::Pending(v) => (StatusCode::ACCEPTED, Json(v)).into_response(),
    })
}

/// `POST /v1/models/{name}/versions/{version}/retirement/confirmation` `{"decision", "comment"}`
/// → 200 with the version: a compliance reviewer or release manager (not the requester)
/// confirms or refuses a pending retirement; the retirement workflow then archives or ends.
pub async fn confirm_retirement(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
    Body(req): Body<RetirementConfirmation>,
) -> Result<Json<ModelVersion>, ApiError> {
    let v = s
        .gov
        .decide_retirement(
            &caller,
            path.str("name"),
            path.version()?,
            req.decision,
            req.comment.as_deref(),
        )
        .await?;
    Ok(Json(v))
}

/// Parses an RFC 3339 time from a query string. An unencoded `+` in the offset arrives as a
/// space, so a space is read back as `+`.
fn parse_time(s: &str) -> Result<DateTime<Utc>, steward_core::FieldError> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|e| DateTime::parse_from_rfc3339(&s.replace(' ', "+")).map_err(|_| e))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            steward_core::FieldError::new(
                "at",
                format!("{s:?} is not an RFC 3339 time ({e}); e.g. 2026-11-27T10:00:00Z"),
            )
        })
}

/// `GET /v1/models/{name}/production?at=<RFC 3339>` (default: now)
pub async fn production_at(
    State(s): State<AppState>,
    Auth(_): Auth,
    path: PathParams,
    q: QueryParams,
) -> Result<Json<ProductionAt>, ApiError> {
    let at = q.parse("at", parse_time)?.unwrap_or_else(Utc::now);
    Ok(Json(s.gov.production_at(path.str("name"), at).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_times_parse_with_offsets_even_when_the_plus_was_not_encoded() {
        let utc = parse_time("2026-11-27T10:00:00Z").unwrap();
        assert_eq!(parse_time("2026-11-27T11:00:00+01:00").unwrap(), utc);
        assert_eq!(parse_time("2026-11-27T11:00:00 01:00").unwrap(), utc);
        assert_eq!(parse_time("yesterday").unwrap_err().field, "at");
    }
}
