//! Who the caller is (`GET /v1/whoami`) and how people sign in (`GET /v1/auth/oidc`).
//!
//! Invariants: `whoami` reports what authentication established and the registry grants,
//! nothing the request claims; `auth/oidc` is public (a CLI needs it before it has a token)
//! and carries no secret: the issuer, the public client's id and the scopes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::AppState;

/// `GET /v1/whoami` → `{"principal", "roles", "authentication", "grants"}`.
pub async fn whoami(who: Authenticated) -> Json<Value> {
    Json(json!({
        "principal": who.caller.id,
        "roles": who.caller.roles,
        "authentication": who.caller.auth.as_str(),
        "grants": who.identity.grants,
    }))
}

/// `GET /v1/auth/oidc` → `{"issuer", "client_id", "scopes", "provider"}` for `steward login`:
/// the CLI's client, else the console's (a deployment with one public client for both); 404
/// when this deployment has no OpenID Connect provider.
pub async fn oidc(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this Steward has no OpenID Connect sign-in for the CLI (see README, Identities)",
        )
    };
    let oidc = s.auth.oidc().ok_or_else(missing)?;
    let client_id = oidc
        .config
        .cli_client_id
        .as_ref()
        .or(oidc.config.console.as_ref().map(|c| &c.client_id))
        .ok_or_else(missing)?;
    Ok(Json(json!({
        "issuer": oidc.config.issuer,
        "client_id": client_id,
        "scopes": oidc.config.scopes,
        "provider": oidc.config.provider_name,
    })))
}
