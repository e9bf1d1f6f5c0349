//! Evidence packs for auditors: `GET /v1/models/{name}/versions/{version}/evidence-pack`.
//!
//! Invariants: the answer is the signed zip itself (`application/zip`, as an attachment named
//! `{name}-v{version}-evidence.zip`), never cached by intermediaries; its SHA-256 and the
//! date it is retained until travel in headers, so a caller can check the download against
//! what the evidence store keeps, and where it keeps it (`Steward-Pack-Location`).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::{Auth, PathParams};
use crate::AppState;

/// `GET /v1/models/{name}/versions/{version}/evidence-pack` → 200 with the zip.
pub async fn pack(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
) -> Result<Response, ApiError> {
    let version = path.version()?;
    let pack = s
        .gov
        .evidence_pack(&caller, path.str("name"), version)
        .await?;
    let disposition = format!("attachment; filename=\"{}\"", pack.file_name);
    let mut response = pack.zip.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The file name is `[a-z0-9-]` and digits: always a valid header value.
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&pack.sha256.to_hex()) {
        h.insert("Steward-Pack-Sha256", v);
    }
    if let Ok(v) = HeaderValue::from_str(&steward_core::audit::format_time(pack.retain_until)) {
        h.insert("Steward-Retain-Until", v);
    }
    // Where the evidence store keeps it (an s3:// URI on AWS), for the auditor's records.
    if let Some(v) = pack
        .stored_at
        .as_deref()
        .and_then(|s| HeaderValue::from_str(s).ok())
    {
        h.insert("Steward-Pack-Location", v);
    }
    Ok(response)
}
