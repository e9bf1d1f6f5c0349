//! Sign-in and sign-out. A principal of the principals file signs in with its bearer token
//! (the form field `token`), checked by the same [`Authenticator`](crate::Authenticator) as
//! the API's `Authorization` header; a person signs in with the organisation's OpenID Connect
//! provider ("Sign in with ...", [`super::oidc`]). The token itself is never stored, logged or
//! echoed.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use super::{check_post, failure, over_tls, page, session, ConsoleState, Signed};
use crate::ApiError;

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct SignOut {
    csrf: Option<String>,
}

/// The sign-in page: the provider's button when OpenID Connect is configured for the console,
/// the token form when principals-file tokens are accepted.
pub(crate) fn login_page(s: &ConsoleState, status: StatusCode, problem: Option<&str>) -> Response {
    let provider = s
        .app
        .auth
        .oidc()
        .filter(|o| o.config.console.is_some())
        .map(|o| o.config.provider_name.clone());
    let tokens = s.app.auth.accepts_tokens();
    let body = page(
        None,
        "Sign in",
        html! {
            h1 { "Sign in to Steward" }
            @if let Some(p) = problem {
                p.error role="alert" { (p) }
            }
            @if let Some(name) = &provider {
                p { a.button #oidc-sign-in href="/console/login/oidc" { "Sign in with " (name) } }
            }
            @if tokens {
                form method="post" action="/console/login" {
                    label for="token" { "Your bearer token" }
                    input #token type="password" name="token" autocomplete="off" required;
                    button type="submit" { "Sign in" }
                }
                p.hint { "The token your administrator gave you for the API and the CLI." }
            }
            @if provider.is_none() && !tokens {
                p { "This Steward has no sign-in for people: ask your administrator to configure an OpenID Connect provider." }
            }
        },
    );
    (status, body).into_response()
}

/// `GET /console/login`
pub async fn form(State(s): State<ConsoleState>) -> Response {
    login_page(&s, StatusCode::OK, None)
}

/// `POST /console/login` (`token`): opens a session for the token's principal.
pub async fn sign_in(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    let token = f.token.trim();
    let refused = |s: &ConsoleState| {
        login_page(
            s,
            StatusCode::UNAUTHORIZED,
            Some("That token is not one Steward knows."),
        )
    };
    let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return refused(&s);
    };
    // The API's own authenticator, on a request that carries the token as the API expects it.
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.headers.insert(header::AUTHORIZATION, bearer);
    let identity = match s.app.auth.authenticate(&parts).await {
        Ok(p) if !token.is_empty() => p,
        _ => return refused(&s),
    };
    tracing::info!(principal = %identity.id, method = identity.method.as_str(), "console sign-in");
    open_session(&s, identity, &headers, false).await
}

/// Opens a session for `identity` and answers with its cookie: a redirect to the inbox, or
/// (after a cross-site return from the identity provider) a page that moves on by itself, so
/// that the `SameSite=Strict` cookie is sent on the next, same-site, navigation.
pub(crate) async fn open_session(
    s: &ConsoleState,
    identity: crate::Identity,
    headers: &HeaderMap,
    from_provider: bool,
) -> Response {
    let (id, _) = match s.sessions.open(identity, Utc::now()).await {
        Ok(opened) => opened,
        Err(e) => return failure(None, ApiError::from(steward_core::GovError::from(e))),
    };
    let tls = over_tls(headers);
    let mut response = if from_provider {
        let body = page(
            None,
            "Signed in",
            html! {
                (maud::PreEscaped(r#"<meta http-equiv="refresh" content="0;url=/console/reviews">"#))
                h1 { "Signed in" }
                p { a #continue href="/console/reviews" { "Continue to your reviews" } }
            },
        );
        (StatusCode::OK, body).into_response()
    } else {
        Redirect::to("/console/reviews").into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&session::cookie(&id, tls)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    if from_provider {
        if let Ok(v) = HeaderValue::from_str(&session::login_cookie_removal(tls)) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
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
        if let Err(e) = s.sessions.close(&id).await {
            return failure(None, ApiError::from(steward_core::GovError::from(e)));
        }
    }
    let mut response = Redirect::to("/console/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::removal(over_tls(&headers))) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}
