//! The web console: server-rendered HTML (maud) over the same [`Governance`] calls as the API,
//! acting as the signed-in principal.
//!
//! Invariants:
//! - Every page is rendered by maud, which escapes every interpolated value: registry content
//!   (model cards, comments, names) is text, never markup.
//! - Every console response carries a strict Content-Security-Policy (`default-src 'none'`,
//!   styles and scripts from `/console/assets/` only, no inline script), `nosniff`,
//!   `frame-ancestors 'none'`, `Referrer-Policy: same-origin` and `Cache-Control: no-store`.
//! - Every state-changing form is a POST carrying the session's CSRF token; a POST without it,
//!   with another, or from another origin (`Origin` not this host) is refused with 403 before
//!   anything is read or written.
//! - Roles, separation of duties and audit events are core's: a page may say why an action is
//!   refused, but only core decides, so a forged POST is refused the same way.
//! - Assets are compiled into the binary (no CDN, no build step), so the console works
//!   air-gapped, and every page works with JavaScript off.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::map_response;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use maud::{html, Markup, DOCTYPE};
use steward_core::ports::{Caller, SessionStore};

use crate::{ApiError, AppState};

mod audit;
mod login;
mod monitoring;
mod oidc;
mod principals;
mod registry;
mod reviews;
pub mod session;

use session::{Session, Sessions};

/// The console's shared state: the API's, and the open sessions.
#[derive(Clone)]
pub struct ConsoleState {
    pub app: AppState,
    pub sessions: Arc<Sessions>,
}

const CSS: &str = include_str!("assets/console.css");
const AUDIT_JS: &str = include_str!("assets/audit.js");

/// The Content-Security-Policy of every console response.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, with their state and security headers; `GET /` redirects here.
/// Sessions live in memory: one process serves the console (`steward serve`).
pub fn router(app: AppState) -> Router {
    router_with_sessions(app, Arc::new(session::MemorySessions::default()))
}

/// The console's routes with sessions in `store`, shared by every instance that serves them
/// (DynamoDB behind the API function).
pub fn router_with_sessions(app: AppState, store: Arc<dyn SessionStore>) -> Router {
    let state = ConsoleState {
        app,
        sessions: Arc::new(Sessions::new(store)),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/reviews") }),
        )
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/audit.js", get(audit_js))
        .route("/console/audit", get(audit::events))
        .route("/console/audit/checkpoint", get(audit::checkpoint))
        .route("/console/audit/proofs/{seq}", get(audit::proof))
        .route("/console/login", get(login::form).post(login::sign_in))
        .route("/console/login/oidc", get(oidc::start))
        .route("/console/login/callback", get(oidc::callback))
        .route("/console/logout", post(login::sign_out))
        .route("/console/models", get(registry::models))
        .route("/console/models/{name}", get(registry::model))
        .route(
            "/console/models/{name}/versions/{version}",
            get(registry::version),
        )
        .route("/console/incidents", get(monitoring::incidents))
        .route("/console/principals", get(principals::list))
        .route("/console/principals/{*id}", post(principals::set_roles))
        .route("/console/reviews", get(reviews::inbox))
        .route("/console/reviews/{id}", get(reviews::show))
        .route("/console/reviews/{id}/decision", post(reviews::decide))
        .with_state(state)
        .layer(map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` even
    // on the console's own form posts, and the origin check below needs the real one.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn audit_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        AUDIT_JS,
    )
        .into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// Whether the request reached Steward over TLS (directly or through a proxy that says so):
/// the session cookie is then `Secure`.
pub(crate) fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A request from a signed-in principal: its caller (roles read now) and its session.
pub struct Signed {
    pub caller: Caller,
    pub session: Session,
}

impl FromRequestParts<ConsoleState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Response> {
        let cookie = parts
            .headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok());
        let unavailable = |e: steward_core::error::StoreError| {
            failure(None, ApiError::from(steward_core::GovError::from(e)))
        };
        let session = match session::presented(cookie) {
            Some(id) => state
                .sessions
                .get(&id, Utc::now())
                .await
                .map_err(unavailable)?,
            None => None,
        }
        .ok_or_else(|| Redirect::to("/console/login").into_response())?;
        let caller = crate::auth::caller(state.app.gov.registry().as_ref(), &session.identity())
            .await
            .map_err(unavailable)?;
        Ok(Signed { caller, session })
    }
}

/// The 403 refusing a console POST whose `Origin` is another site's, or whose CSRF token is
/// not the session's (`None` when it may go on), before anything is read or written.
pub(crate) fn check_post(
    headers: &HeaderMap,
    session: &Session,
    csrf: Option<&str>,
) -> Option<Response> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if let (Some(origin), Some(host)) = (origin, host) {
        // `null` is what a browser sends for a cross-origin post under `same-origin`.
        let origin_host = origin.split("://").nth(1).unwrap_or(origin);
        if origin == "null" || origin_host != host {
            return Some(refused("this form was sent from another site"));
        }
    }
    match csrf {
        Some(t) if session.csrf_matches(t) => None,
        _ => Some(refused(
            "this form's CSRF token is missing or is not this session's; reload the page and try again",
        )),
    }
}

fn refused(why: &str) -> Response {
    failure(
        None,
        ApiError::new(StatusCode::FORBIDDEN, "csrf", why.to_owned()),
    )
}

/// An error page with the API error's status and message.
pub(crate) fn failure(signed: Option<&Signed>, e: ApiError) -> Response {
    let body = page(
        signed,
        "Refused",
        html! {
            h1 { (e.status.as_u16()) " — " (e.code) }
            p.error role="alert" { (e.message) }
            p { a href="/console/reviews" { "Back to the inbox" } }
        },
    );
    (e.status, body).into_response()
}

/// The layout every page shares: the navigation and, when signed in, who and a logout form.
pub(crate) fn page(signed: Option<&Signed>, title: &str, content: Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Steward" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                header {
                    a.brand href="/console/" { "Steward" }
                    @if let Some(s) = signed {
                        nav {
                            a href="/console/reviews" { "Reviews" }
                            a href="/console/models" { "Models" }
                            a href="/console/incidents" { "Monitoring" }
                            a href="/console/audit" { "Audit" }
                            @if s.caller.has(steward_core::types::Role::Admin) {
                                a href="/console/principals" { "Principals" }
                            }
                        }
                        form.logout method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(s.session.csrf);
                            span.who { (s.caller.id.to_string()) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (content) }
            }
        }
    };
    Html(page.into_string())
}
