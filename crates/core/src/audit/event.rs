//! Audit events and their canonical encoding.
//!
//! Invariants: an event's leaf in the Merkle log is `SHA-256(0x00 || canonical_bytes(event))`,
//! where the canonical bytes are compact JSON of the object
//! `{"seq","time","actor","action","name","version","details"}` with every object's keys sorted
//! (recursively) and no whitespace. Anyone holding an event as JSON (for example from
//! `GET /v1/audit`) can re-encode it and recompute its leaf hash, so the encoding depends on
//! values only, never on the order fields arrived in.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::VersionNumber;

use super::merkle::{leaf_hash, Hash};

/// One entry of the append-only audit log. `seq` starts at 1; leaf index is `seq - 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: u64,
    /// RFC 3339, UTC, microsecond precision (see [`format_time`]).
    pub time: String,
    /// The authenticated principal, or `system:<component>` for the workflow runner.
    pub actor: String,
    pub action: String,
    pub name: Option<String>,
    pub version: Option<VersionNumber>,
    pub details: Value,
}

/// What a state change asks the store to append: the store assigns `seq` inside the same
/// transaction as the change, so two commits can never claim one position.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    pub time: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub name: Option<String>,
    pub version: Option<VersionNumber>,
    pub details: Value,
}

impl AuditDraft {
    /// Fixes the draft at position `seq`.
    pub fn at(self, seq: u64) -> AuditEvent {
        AuditEvent {
            seq,
            time: format_time(self.time),
            actor: self.actor,
            action: self.action,
            name: self.name,
            version: self.version,
            details: self.details,
        }
    }
}

/// The one time format of the log: `2026-11-27T10:00:00.123456Z`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl AuditEvent {
    /// Canonical bytes: sorted keys, compact, deterministic from the values alone.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut obj = Map::new();
        obj.insert("action".into(), Value::String(self.action.clone()));
        obj.insert("actor".into(), Value::String(self.actor.clone()));
        obj.insert("details".into(), self.details.clone());
        obj.insert(
            "name".into(),
            self.name.clone().map(Value::String).unwrap_or(Value::Null),
        );
        obj.insert("seq".into(), Value::from(self.seq));
        obj.insert("time".into(), Value::String(self.time.clone()));
        obj.insert(
            "version".into(),
            self.version
                .map(|v| Value::from(v.get()))
                .unwrap_or(Value::Null),
        );
        canonical_json(&Value::Object(obj))
    }

    /// The event's Merkle leaf hash.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.canonical_bytes())
    }

    /// Parses canonical bytes back into an event (used by verifiers reading stored rows).
    pub fn from_canonical(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Compact JSON with object keys sorted recursively.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // `Value`'s `Display` is its compact JSON; a string always has one.
                out.extend_from_slice(Value::String((*k).clone()).to_string().as_bytes());
                out.push(b':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        // Null, booleans, numbers and strings: their compact JSON, which always exists.
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::vn;
    use serde_json::json;

    fn event(details: Value) -> AuditEvent {
        AuditEvent {
            seq: 7,
            time: "2026-11-27T10:00:00.000001Z".into(),
            actor: "alice".into(),
            action: "model.registered".into(),
            name: Some("credit-risk".into()),
            version: Some(vn(1)),
            details,
        }
    }

    #[test]
    fn the_encoding_does_not_depend_on_key_order() {
        let a =
            event(serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[3,{"q":1,"p":2}]}}"#).unwrap());
        let b =
            event(serde_json::from_str(r#"{"a":{"x":[3,{"p":2,"q":1}],"y":2},"b":1}"#).unwrap());
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        assert_eq!(a.leaf_hash(), b.leaf_hash());
    }

    #[test]
    fn canonical_bytes_are_compact_sorted_json() {
        let e = event(json!({"z": true, "a": "x"}));
        assert_eq!(
            String::from_utf8(e.canonical_bytes()).unwrap(),
            r#"{"action":"model.registered","actor":"alice","details":{"a":"x","z":true},"name":"credit-risk","seq":7,"time":"2026-11-27T10:00:00.000001Z","version":1}"#
        );
    }

    #[test]
    fn an_event_round_trips_through_its_canonical_bytes() {
        let e = event(json!({"metrics": {"auc": 0.912}, "n": [1, 2]}));
        let back = AuditEvent::from_canonical(&e.canonical_bytes()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.canonical_bytes(), e.canonical_bytes());
    }

    #[test]
    fn changing_any_field_changes_the_leaf_hash() {
        let base = event(json!({"k": 1}));
        let mut other = base.clone();
        other.actor = "mallory".into();
        assert_ne!(base.leaf_hash(), other.leaf_hash());
        let mut other = base.clone();
        other.seq = 8;
        assert_ne!(base.leaf_hash(), other.leaf_hash());
        let mut other = base.clone();
        other.details = json!({"k": 2});
        assert_ne!(base.leaf_hash(), other.leaf_hash());
    }
}
