//! "Sign in with <provider>": the OpenID Connect authorization code flow with PKCE, `state`
//! and `nonce`, ending in a server-side console session.
//!
//! Invariants:
//! - `state` is single-use and expires after ten minutes; it is bound to the browser that
//!   started the sign-in by a random cookie whose digest the pending sign-in keeps, so a
//!   callback URL replayed in another browser signs nobody in.
//! - The PKCE verifier and the nonce never leave the server except as the S256 challenge and
//!   in the authorization request; the ID token must carry that nonce, be for the console's
//!   client, and pass every check of [`OidcVerifier::verify`](crate::OidcVerifier::verify).
//! - Nothing from the provider is trusted before the token exchange and verification: the
//!   `code` and `error` query parameters only select what happens next.
//! - The client secret (confidential client) is sent only to the token endpoint, in the
//!   `Authorization: Basic` header (`client_secret_basic`), and never logged.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use steward_core::types::Sha256;
use subtle::ConstantTimeEq;

use super::login::{login_page, open_session};
use super::{over_tls, session, ConsoleState};
use crate::auth::oidc::OidcVerifier;

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The console's redirect URI: on the configured public URL, else on this request's host.
fn redirect_uri(oidc: &OidcVerifier, headers: &HeaderMap) -> String {
    let base = match &oidc.config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost");
            let scheme = if over_tls(headers) { "https" } else { "http" };
            format!("{scheme}://{host}")
        }
    };
    format!("{base}/console/login/callback")
}

fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()).bytes())
}

fn refused(s: &ConsoleState, status: StatusCode, why: &str) -> Response {
    login_page(s, status, Some(why))
}

/// `GET /console/login/oidc`: starts a sign-in at the provider.
pub async fn start(State(s): State<ConsoleState>, headers: HeaderMap) -> Response {
    let Some(oidc) = s.app.auth.oidc().filter(|o| o.config.console.is_some()) else {
        return refused(
            &s,
            StatusCode::NOT_FOUND,
            "This Steward has no OpenID Connect sign-in.",
        );
    };
    let Some(client) = &oidc.config.console else {
        unreachable!("filtered above")
    };
    let discovery = match oidc.discovery().await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "OIDC discovery failed at sign-in");
            return refused(
                &s,
                StatusCode::SERVICE_UNAVAILABLE,
                "The identity provider cannot be reached; try again shortly.",
            );
        }
    };
    let binding = session::secret();
    let pending = session::PendingLogin {
        nonce: session::secret(),
        verifier: session::secret(),
        binding_sha256: session::binding_digest(&binding),
        redirect_uri: redirect_uri(oidc, &headers),
    };
    let state = match s.sessions.begin_login(&pending, Utc::now()).await {
        Ok(state) => state,
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a pending sign-in");
            return refused(
                &s,
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now.",
            );
        }
    };
    let Ok(mut url) = url::Url::parse(&discovery.authorization_endpoint) else {
        return refused(
            &s,
            StatusCode::BAD_GATEWAY,
            "The identity provider's authorization endpoint is not a URL.",
        );
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", &pending.redirect_uri)
        .append_pair("scope", &oidc.config.scopes.join(" "))
        .append_pair("state", &state)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &pkce_challenge(&pending.verifier))
        .append_pair("code_challenge_method", "S256");
    let mut response = Redirect::to(url.as_str()).into_response();
    if let Ok(v) = HeaderValue::from_str(&session::login_cookie(&binding, over_tls(&headers))) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// `GET /console/login/callback?code&state`: the browser back from the provider.
pub async fn callback(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let Some(oidc) = s.app.auth.oidc().filter(|o| o.config.console.is_some()) else {
        return refused(
            &s,
            StatusCode::NOT_FOUND,
            "This Steward has no OpenID Connect sign-in.",
        );
    };
    let pending = match q.state.as_deref() {
        Some(state) => s.sessions.finish_login(state, Utc::now()).await,
        None => Ok(None),
    };
    let pending = match pending {
        Ok(Some(p)) => p,
        Ok(None) => {
            return refused(
                &s,
                StatusCode::BAD_REQUEST,
                "This sign-in has expired or was already used; please start again.",
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a pending sign-in");
            return refused(
                &s,
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now.",
            );
        }
    };
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    let bound = session::presented_login(cookies).is_some_and(|b| {
        bool::from(
            session::binding_digest(&b)
                .as_bytes()
                .ct_eq(pending.binding_sha256.as_bytes()),
        )
    });
    if !bound {
        return refused(
            &s,
            StatusCode::BAD_REQUEST,
            "This sign-in was started in another browser; please start again here.",
        );
    }
    if let Some(error) = &q.error {
        let why = q.error_description.as_deref().unwrap_or(error);
        return refused(
            &s,
            StatusCode::UNAUTHORIZED,
            &format!("The identity provider did not sign you in: {why}"),
        );
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return refused(
            &s,
            StatusCode::BAD_REQUEST,
            "The identity provider sent no code.",
        );
    };
    let identity = match exchange(oidc, code, &pending).await {
        Ok(identity) => identity,
        Err(why) => {
            tracing::info!(reason = %why, "console OIDC sign-in refused");
            return refused(
                &s,
                StatusCode::UNAUTHORIZED,
                &format!("Sign-in refused: {why}"),
            );
        }
    };
    tracing::info!(principal = %identity.id, method = "oidc", "console sign-in");
    open_session(&s, identity, &headers, true).await
}

/// Exchanges `code` at the token endpoint and verifies the ID token it returns.
async fn exchange(
    oidc: &OidcVerifier,
    code: &str,
    pending: &session::PendingLogin,
) -> Result<crate::Identity, String> {
    let client = oidc.config.console.as_ref().ok_or("no console client")?;
    let discovery = oidc.discovery().await.map_err(|e| e.to_string())?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", pending.redirect_uri.as_str()),
        ("code_verifier", pending.verifier.as_str()),
        ("client_id", client.client_id.as_str()),
    ];
    let mut request = oidc.http().post(&discovery.token_endpoint).form(&form);
    if let Some(secret) = &client.client_secret {
        // RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encoding.
        let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        request = request.basic_auth(enc(&client.client_id), Some(enc(secret)));
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("the token endpoint cannot be reached: {e}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("the token endpoint answered {status} without JSON: {e}"))?;
    if !status.is_success() {
        let error = body["error"].as_str().unwrap_or("unknown error");
        return Err(format!("the token endpoint refused the code ({error})"));
    }
    let id_token = body["id_token"]
        .as_str()
        .ok_or("the token endpoint returned no ID token")?;
    let claims = oidc
        .verify(id_token, Some(&pending.nonce))
        .await
        .map_err(|e| e.to_string())?;
    // The ID token must be for the console itself, not any accepted audience.
    let for_console = match &claims.get("aud") {
        Some(Value::String(a)) => a == &client.client_id,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(&client.client_id)),
        _ => false,
    };
    let azp_ok = claims
        .get("azp")
        .and_then(Value::as_str)
        .is_none_or(|azp| azp == client.client_id);
    if !for_console || !azp_ok {
        return Err("the ID token was issued to another client".into());
    }
    oidc.identity(&claims).map_err(|e| e.to_string())
}
