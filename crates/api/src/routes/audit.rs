//! The audit log: events with their leaf hashes, the latest signed checkpoint, inclusion and
//! consistency proofs. Hashes, roots, keys and signatures are hex on the wire.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use steward_core::audit::{AuditEvent, Checkpoint};

use crate::error::ApiError;
use crate::extract::{Auth, PathParams, QueryParams};
use crate::AppState;

/// The largest page of events one request returns.
const MAX_EVENTS: usize = 1000;

/// An event as listed: its fields plus `leaf_hash`, so a client can check it against a proof.
pub fn event_json(e: &AuditEvent) -> Value {
    json!({
        "seq": e.seq,
        "time": e.time,
        "actor": e.actor,
        "action": e.action,
        "name": e.name,
        "version": e.version,
        "details": e.details,
        "leaf_hash": hex::encode(e.leaf_hash()),
    })
}

/// A checkpoint on the wire: `{"size","root","time","key_id","signature"}`, bytes as hex.
pub fn checkpoint_json(cp: &Checkpoint) -> Value {
    // `Checkpoint`'s serde form is the wire format (hex root and signature).
    serde_json::to_value(cp).unwrap_or(Value::Null)
}

/// `GET /v1/audit?model=&after=&limit=` (`cursor` is accepted as a synonym of `after`).
pub async fn events(
    State(s): State<AppState>,
    Auth(caller): Auth,
    q: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let after = match (q.int::<u64>("after")?, q.int::<u64>("cursor")?) {
        (Some(a), Some(c)) if a != c => {
            return Err(ApiError::invalid(
                "cursor",
                "give `after` or `cursor`, not both",
            ))
        }
        (a, c) => a.or(c).unwrap_or(0),
    };
    let limit = q.limit(100)?.clamp(1, MAX_EVENTS);
    let events = s
        .gov
        .audit_events(&caller, q.str("model"), after, limit)
        .await?;
    let next_cursor = match events.last() {
        Some(last) if events.len() == limit => Some(last.seq.to_string()),
        _ => None,
    };
    let items: Vec<Value> = events.iter().map(event_json).collect();
    Ok(Json(json!({"items": items, "next_cursor": next_cursor})))
}

/// `GET /v1/audit/checkpoint`: the latest signed checkpoint and the key that verifies it.
pub async fn checkpoint(
    State(s): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<Value>, ApiError> {
    let cp = s.gov.audit_checkpoint(&caller).await?;
    let mut body = checkpoint_json(&cp);
    let (_, public_key) = s.gov.audit_public_key();
    body["public_key"] = Value::String(hex::encode(public_key));
    Ok(Json(body))
}

/// `GET /v1/audit/key`: the key that signs checkpoints and evidence pack manifests, for any
/// authenticated caller (it is public; verifiers should still pin it out of band).
pub async fn key(State(s): State<AppState>, Auth(_caller): Auth) -> Result<Json<Value>, ApiError> {
    let (key_id, public_key) = s.gov.audit_public_key();
    let algorithm = steward_core::audit::PublicKey::from_bytes(&public_key)
        .map(|k| k.algorithm())
        .map_err(|_| ApiError::internal())?;
    Ok(Json(json!({
        "key_id": key_id,
        "algorithm": algorithm,
        "public_key": hex::encode(public_key),
    })))
}

/// `GET /v1/audit/proof/{seq}`: inclusion proof of event `seq` against the latest checkpoint.
pub async fn proof(
    State(s): State<AppState>,
    Auth(caller): Auth,
    path: PathParams,
) -> Result<Json<Value>, ApiError> {
    let seq: u64 = path.int("seq")?;
    let (event, hashes, cp) = s.gov.audit_proof(&caller, seq).await?;
    Ok(Json(json!({
        "seq": seq,
        "size": cp.size,
        "leaf_hash": hex::encode(event.leaf_hash()),
        "hashes": hashes.iter().map(hex::encode).collect::<Vec<_>>(),
        "event": event_json(&event),
        "checkpoint": checkpoint_json(&cp),
    })))
}

/// `GET /v1/audit/consistency?first=&second=` (`second` defaults to the latest checkpoint).
pub async fn consistency(
    State(s): State<AppState>,
    Auth(caller): Auth,
    q: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let first = q
        .int::<u64>("first")?
        .ok_or_else(|| ApiError::invalid("first", "is required"))?;
    let cp = s.gov.audit_checkpoint(&caller).await?;
    let second = q.int::<u64>("second")?.unwrap_or(cp.size);
    let hashes = s.gov.audit_consistency(&caller, first, second).await?;
    Ok(Json(json!({
        "first": first,
        "second": second,
        "hashes": hashes.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}
