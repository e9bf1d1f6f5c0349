//! Sign-in and sign-out. Embedded, a principal signs in with its bearer token (the form field
//! `token`), checked by the same [`Authenticator`](crate::Authenticator) as the API's
//! `Authorization` header; the token itself is never stored, logged or echoed.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use super::{check_post, over_tls, page, session, ConsoleState, Signed};

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct SignOut {
    csrf: Option<String>,
}

fn login_page(status: StatusCode, problem: Option<&str>) -> Response {
    let body = page(
        None,
        "Sign in",
        html! {
            h1 { "Sign in to Steward" }
            @if let Some(p) = problem {
                p.error role="alert" { (p) }
            }
            form method="post" action="/console/login" {
                label for="token" { "Your bearer token" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
            p.hint { "The token your administrator gave you for the API and the CLI." }
        },
    );
    (status, body).into_response()
}

/// `GET /console/login`
pub async fn form() -> Response {
    login_page(StatusCode::OK, None)
}

/// `POST /console/login` (`token`): opens a session for the token's principal.
pub async fn sign_in(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    let token = f.token.trim();
    let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return login_page(StatusCode::UNAUTHORIZED, Some("That token is not valid."));
    };
    // The API's own authenticator, on a request that carries the token as the API expects it.
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.headers.insert(header::AUTHORIZATION, bearer);
    let principal = match s.app.auth.authenticate(&parts).await {
        Ok(p) if !token.is_empty() => p,
        _ => {
            return login_page(
                StatusCode::UNAUTHORIZED,
                Some("That token is not one Steward knows."),
            )
        }
    };
    tracing::info!(principal = %principal, "console sign-in");
    let (id, _) = s.sessions.open(principal, Utc::now());
    let mut response = Redirect::to("/console/reviews").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::cookie(&id, over_tls(&headers))) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `POST /console/logout` (`csrf`): ends the session.
pub async fn sign_out(
    State(s): State<ConsoleState>,
    signed: Signed,
    headers: HeaderMap,
    Form(f): Form<SignOut>,
) -> Response {
    if let Some(refusal) = check_post(&headers, &signed.session, f.csrf.as_deref()) {
        return refusal;
    }
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    if let Some(id) = session::presented(cookie) {
        s.sessions.close(&id);
    }
    let mut response = Redirect::to("/console/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::removal(over_tls(&headers))) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}
