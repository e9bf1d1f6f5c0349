//! Webhook subscriptions and deliveries as tables.

use serde_json::Value;

use super::{cell, kv, list_footer, time, Table};
use crate::client::items;

/// `GET /v1/webhooks`
pub fn webhooks(v: &Value) -> String {
    let mut t = Table::new(&["WEBHOOK", "URL", "EVENTS", "STATUS", "UPDATED AT"]);
    for w in items(v) {
        t.row(vec![
            cell(&w["id"]),
            cell(&w["url"]),
            events(&w["events"]),
            cell(&w["status"]),
            time(&w["updated_at"]),
        ]);
    }
    list_footer(v, "no webhooks", &t)
}

/// `GET|PUT /v1/webhooks/{id}`
pub fn webhook(v: &Value) -> String {
    kv(&[
        ("webhook", cell(&v["id"])),
        ("url", cell(&v["url"])),
        ("events", events(&v["events"])),
        ("status", cell(&v["status"])),
        ("updated by", cell(&v["updated_by"])),
        ("updated at", time(&v["updated_at"])),
        ("revision", cell(&v["revision"])),
    ])
}

/// `GET /v1/webhooks/{id}/deliveries`
pub fn deliveries(v: &Value) -> String {
    let mut t = Table::new(&[
        "DELIVERY",
        "EVENT",
        "STATUS",
        "ATTEMPTS",
        "LAST CODE",
        "LAST ERROR",
        "CREATED AT",
    ]);
    for d in items(v) {
        t.row(vec![
            cell(&d["id"]),
            cell(&d["event_type"]),
            cell(&d["status"]),
            cell(&d["attempts"]),
            cell(&d["last_response_code"]),
            cell(&d["last_error"]),
            time(&d["created_at"]),
        ]);
    }
    list_footer(v, "no deliveries yet", &t)
}

fn events(v: &Value) -> String {
    match v.as_array() {
        Some(a) if a.is_empty() => "all".into(),
        _ => cell(v),
    }
}
