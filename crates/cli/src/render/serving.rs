//! The serving inventory: one report's record (`steward serving report`) and the list
//! (`steward serving list`).

use serde_json::Value;

use super::{cell, kv, list_footer, time, Table};
use crate::client::items;

fn matched(r: &Value) -> String {
    match (r["model"].as_str(), r["version"].as_u64()) {
        (Some(m), Some(v)) => format!("{m} v{v}"),
        _ => "-".into(),
    }
}

/// `POST /v1/serving`: the endpoint's record.
pub fn serving_record(r: &Value) -> String {
    let mut pairs = vec![
        (
            "endpoint",
            format!(
                "{} {} ({})",
                cell(&r["platform"]),
                cell(&r["endpoint"]),
                cell(&r["environment"])
            ),
        ),
        ("artifact", cell(&r["artifact"]["uri"])),
        ("outcome", cell(&r["outcome"])),
        ("why", cell(&r["reason"])),
        ("matches", matched(r)),
        ("incident", cell(&r["incident"])),
        ("observed at", time(&r["observed_at"])),
    ];
    if r["stopped_at"].is_string() {
        pairs.push(("stopped at", time(&r["stopped_at"])));
    }
    kv(&pairs)
}

/// `GET /v1/serving`
pub fn serving(v: &Value) -> String {
    let mut t = Table::new(&[
        "PLATFORM", "ENV", "ENDPOINT", "OUTCOME", "MATCHES", "INCIDENT", "ARTIFACT", "SEEN",
    ]);
    for r in items(v) {
        let outcome = if r["stopped_at"].is_string() {
            format!("{} (stopped)", cell(&r["outcome"]))
        } else {
            cell(&r["outcome"])
        };
        t.row(vec![
            cell(&r["platform"]),
            cell(&r["environment"]),
            cell(&r["endpoint"]),
            outcome,
            matched(r),
            cell(&r["incident"]),
            cell(&r["artifact"]["uri"]),
            time(&r["observed_at"]),
        ]);
    }
    list_footer(v, "no serving endpoints reported", &t)
}
