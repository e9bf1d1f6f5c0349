//! The audit page: the event stream, filterable by model, which the browser verifies itself.
//!
//! Invariants:
//! - Each row carries its event's canonical bytes (hex, `data-event`); the page's script
//!   (`assets/audit.js`) hashes them (RFC 6962 leaf hash, WebCrypto SHA-256), checks each
//!   event's inclusion proof against the signed checkpoint's root, checks the checkpoint's
//!   signature with the log's public key where the browser supports its algorithm (Ed25519;
//!   ECDSA P-256), and checks that what the row shows is what the bytes say. The result goes
//!   in `#audit-verification` as `data-status="verified"` or `"failed"`: an auditor need not
//!   trust the HTML the server sent, only the key.
//! - The proofs and the checkpoint come from `/console/audit/checkpoint` and
//!   `/console/audit/proofs/{seq}` (JSON, the signed-in session; auditors and admins only, as
//!   in the API).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::html;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{failure, page, ConsoleState, Signed};
use crate::routes::audit::checkpoint_json;
use crate::ApiError;

const PAGE: usize = 100;

#[derive(Deserialize)]
pub struct AuditQuery {
    model: Option<String>,
    after: Option<u64>,
}

/// `GET /console/audit?model=&after=`
pub async fn events(
    State(s): State<ConsoleState>,
    signed: Signed,
    Query(q): Query<AuditQuery>,
) -> Response {
    let model = q.model.as_deref().filter(|m| !m.is_empty());
    let after = q.after.unwrap_or(0);
    let events = match s
        .app
        .gov
        .audit_events(&signed.caller, model, after, PAGE)
        .await
    {
        Ok(e) => e,
        Err(e) => return failure(Some(&signed), e.into()),
    };
    let (key_id, _) = s.app.gov.audit_public_key();
    let body = html! {
        h1 { "Audit log" }
        p #audit-verification data-status="pending" role="status" {
            "Verifying in your browser… (needs JavaScript; the same checks run offline with "
            code { "steward audit verify" } ")"
        }
        p.hint { "Signing key " code { (key_id) } ": compare it with the key your organisation published." }
        form method="get" action="/console/audit" {
            label for="model" { "Model" }
            input #model type="text" name="model" value=(model.unwrap_or_default());
            button type="submit" { "Filter" }
        }
        table.audit {
            thead { tr { th { "Seq" } th { "Time" } th { "Actor" } th { "Action" } th { "Model" } th { "Details" } th { "Leaf hash" } } }
            tbody {
                @for e in &events {
                    tr data-seq=(e.seq) data-event=(hex::encode(e.canonical_bytes())) {
                        td { (e.seq) }
                        td.time { (e.time) }
                        td.actor { (e.actor) }
                        td.action { (e.action) }
                        td { (e.name.as_deref().unwrap_or("")) " " (e.version.map(|v| v.to_string()).unwrap_or_default()) }
                        td { code { (e.details.to_string()) } }
                        td { code.leaf { (hex::encode(e.leaf_hash())) } }
                    }
                }
            }
        }
        @if events.len() == PAGE {
            @if let Some(last) = events.last() {
                p { a href=(format!("/console/audit?model={}&after={}", model.unwrap_or_default(), last.seq)) { "Later events" } }
            }
        }
        script src="/console/assets/audit.js" {}
    };
    page(Some(&signed), "Audit", body).into_response()
}

/// `GET /console/audit/checkpoint`: the latest signed checkpoint and the log's public key.
pub async fn checkpoint(State(s): State<ConsoleState>, signed: Signed) -> Response {
    match s.app.gov.audit_checkpoint(&signed.caller).await {
        Ok(cp) => {
            let mut body = checkpoint_json(&cp);
            let (_, public_key) = s.app.gov.audit_public_key();
            body["public_key"] = Value::String(hex::encode(public_key));
            Json(body).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /console/audit/proofs/{seq}`: event `seq`'s inclusion proof against the latest
/// checkpoint.
pub async fn proof(
    State(s): State<ConsoleState>,
    signed: Signed,
    Path(seq): Path<u64>,
) -> Response {
    match s.app.gov.audit_proof(&signed.caller, seq).await {
        Ok((_, hashes, cp)) => Json(json!({
            "seq": seq,
            "size": cp.size,
            "hashes": hashes.iter().map(hex::encode).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
