//! Principals and their roles (admins only): the same core call as `PUT /v1/principals/{id}`,
//! so the same rules (nobody changes their own roles, the last admin stays) and the same audit
//! event.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use steward_core::types::Role;

use super::{check_post, failure, page, ConsoleState, Signed};

/// `GET /console/principals`
pub async fn list(State(s): State<ConsoleState>, signed: Signed) -> Response {
    let principals = match s.app.gov.principals(&signed.caller).await {
        Ok(p) => p,
        Err(e) => return failure(Some(&signed), e.into()),
    };
    let body = html! {
        h1 { "Principals" }
        table.principals {
            thead { tr { th { "Principal" } th { "Roles" } th { "Managed by" } } }
            tbody { @for p in &principals { tr {
                td { (p.id.to_string()) }
                td {
                    form method="post" action=(format!("/console/principals/{}", path_id(p.id.as_ref()))) {
                        input type="hidden" name="csrf" value=(signed.session.csrf);
                        @for r in Role::ALL {
                            label.role { input type="checkbox" name="roles" value=(r.as_str()) checked[p.roles.contains(r)]; " " (r.as_str()) }
                        }
                        button type="submit" { "Set roles" }
                    }
                }
                td { (p.managed_by) }
            } } }
        }
    };
    page(Some(&signed), "Principals", body).into_response()
}

/// `POST /console/principals/{id}` (`csrf`, `roles` repeated): sets the principal's roles.
pub async fn set_roles(
    State(s): State<ConsoleState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if let Some(refusal) = check_post(&headers, &signed.session, csrf) {
        return refusal;
    }
    let mut roles = Vec::new();
    for (k, v) in &fields {
        if k == "roles" {
            match Role::parse(v) {
                Ok(r) => roles.push(r),
                Err(e) => return failure(Some(&signed), steward_core::GovError::from(e).into()),
            }
        }
    }
    match s.app.gov.set_roles(&signed.caller, &id, roles).await {
        Ok(_) => Redirect::to("/console/principals").into_response(),
        Err(e) => failure(Some(&signed), e.into()),
    }
}

/// A principal id as a path: `#` and `?` (in `oidc:<issuer>#<sub>` ids) and `%` encoded, so the
/// browser does not cut the id at a fragment or query; `/` and `:` stay as they are (ARNs).
fn path_id(id: &str) -> String {
    id.replace('%', "%25")
        .replace('#', "%23")
        .replace('?', "%3F")
}
