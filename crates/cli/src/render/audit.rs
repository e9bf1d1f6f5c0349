//! The audit log (events, checkpoints, inclusion and consistency proofs) and the principals
//! whose roles it records.

use serde_json::Value;

use super::{cell, kv, list_footer, short, time, Table};
use crate::client::{items, next_cursor};

/// `GET /v1/audit`
pub fn audit_events(v: &Value) -> String {
    let mut t = Table::new(&[
        "SEQ",
        "TIME",
        "ACTOR",
        "ACTION",
        "MODEL",
        "VERSION",
        "LEAF HASH",
    ]);
    for e in items(v) {
        t.row(vec![
            cell(&e["seq"]),
            time(&e["time"]),
            cell(&e["actor"]),
            cell(&e["action"]),
            cell(&e["name"]),
            cell(&e["version"]),
            short(e["leaf_hash"].as_str().unwrap_or("-")),
        ]);
    }
    if t.is_empty() {
        return "no audit events\n".into();
    }
    let mut out = t.render();
    if let Some(c) = next_cursor(v) {
        out.push_str(&format!("(more: --after {c})\n"));
    }
    out
}

/// `GET /v1/audit/checkpoint`
pub fn checkpoint(v: &Value) -> String {
    kv(&[
        ("size", cell(&v["size"])),
        ("root", cell(&v["root"])),
        ("time", cell(&v["time"])),
        ("key id", cell(&v["key_id"])),
        ("public key", cell(&v["public_key"])),
        ("signature", cell(&v["signature"])),
    ])
}

fn hash_lines(v: &Value) -> String {
    let mut out = String::new();
    for (i, h) in v.as_array().into_iter().flatten().enumerate() {
        out.push_str(&format!("  {i:>2}  {}\n", cell(h)));
    }
    out
}

/// `GET /v1/audit/proof/{seq}`
pub fn proof(v: &Value) -> String {
    let mut out = kv(&[
        ("event", cell(&v["seq"])),
        ("tree size", cell(&v["size"])),
        ("leaf hash", cell(&v["leaf_hash"])),
        ("root", cell(&v["checkpoint"]["root"])),
    ]);
    out.push_str("audit path:\n");
    out.push_str(&hash_lines(&v["hashes"]));
    out
}

/// `GET /v1/audit/consistency`
pub fn consistency(v: &Value) -> String {
    let mut out = kv(&[
        ("first size", cell(&v["first"])),
        ("second size", cell(&v["second"])),
    ]);
    out.push_str("proof:\n");
    out.push_str(&hash_lines(&v["hashes"]));
    out
}

/// `GET /v1/principals`
pub fn principals(v: &Value) -> String {
    let mut t = Table::new(&["PRINCIPAL", "ROLES", "MANAGED BY", "UPDATED AT"]);
    for p in items(v) {
        t.row(vec![
            cell(&p["id"]),
            cell(&p["roles"]),
            cell(&p["managed_by"]),
            time(&p["updated_at"]),
        ]);
    }
    list_footer(v, "no principals", &t)
}

/// `PUT /v1/principals/{id}`
pub fn principal(v: &Value) -> String {
    kv(&[
        ("principal", cell(&v["id"])),
        ("roles", cell(&v["roles"])),
        ("managed by", cell(&v["managed_by"])),
        ("updated at", time(&v["updated_at"])),
        ("revision", cell(&v["revision"])),
    ])
}

/// `GET /v1/whoami`
pub fn whoami(v: &Value) -> String {
    let mut pairs = vec![
        ("principal", cell(&v["principal"])),
        ("roles", cell(&v["roles"])),
        ("authentication", cell(&v["authentication"])),
    ];
    if v["grants"].as_array().is_some_and(|g| !g.is_empty()) {
        pairs.push(("grants", cell(&v["grants"])));
    }
    kv(&pairs)
}
