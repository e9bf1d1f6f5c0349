//! The lifecycle after registration: promotions and their reviews, monitoring signals and
//! incidents, periodic reviews, and which version serves production.

use serde_json::Value;

use super::{cell, kv, list_footer, review_table, time, Table};
use crate::client::items;

/// A promotion (`promote`, `promotions get`, `reviews decide`).
pub fn promotion(v: &Value) -> String {
    let mut out = kv(&[
        ("promotion", cell(&v["id"])),
        ("model", cell(&v["name"])),
        ("version", cell(&v["version"])),
        ("target", cell(&v["target"])),
        ("status", cell(&v["status"])),
        ("requested by", cell(&v["requested_by"])),
        ("requested at", time(&v["requested_at"])),
    ]);
    if let Some(reviews) = v["reviews"].as_array() {
        out.push_str("\nreviews:\n");
        out.push_str(&review_table(reviews, true).render());
    }
    out
}

/// `GET /v1/reviews`
pub fn reviews(v: &Value) -> String {
    list_footer(
        v,
        "no reviews for you to decide",
        &review_table(items(v), false),
    )
}

/// `POST /v1/signals`
pub fn signal(v: &Value) -> String {
    let mut pairs = vec![
        (
            "model",
            format!("{} version {}", cell(&v["name"]), cell(&v["version"])),
        ),
        (
            "signal",
            format!(
                "{} {} = {}",
                cell(&v["kind"]),
                cell(&v["metric"]),
                cell(&v["value"])
            ),
        ),
        ("threshold", cell(&v["threshold"])),
        ("breached", cell(&v["breached"])),
    ];
    if let Some(inc) = v.get("incident").filter(|i| !i.is_null()) {
        pairs.push(("incident", cell(&inc["id"])));
    }
    pairs.push(("actions", cell(&v["actions"])));
    kv(&pairs)
}

/// `GET /v1/incidents`
pub fn incidents(v: &Value) -> String {
    let mut t = Table::new(&[
        "INCIDENT",
        "MODEL",
        "VERSION",
        "KIND",
        "METRIC",
        "VALUE",
        "THRESHOLD",
        "STATUS",
        "OPENED AT",
        "ACTIONS",
        "SUMMARY",
    ]);
    for i in items(v) {
        t.row(vec![
            cell(&i["id"]),
            cell(&i["name"]),
            cell(&i["version"]),
            cell(&i["kind"]),
            cell(&i["metric"]),
            cell(&i["value"]),
            cell(&i["threshold"]),
            cell(&i["status"]),
            time(&i["opened_at"]),
            cell(&i["actions"]),
            cell(&i["summary"]),
        ]);
    }
    list_footer(v, "no incidents", &t)
}

/// `GET /v1/periodic-reviews`
pub fn periodic_reviews(v: &Value) -> String {
    let mut t = Table::new(&[
        "MODEL",
        "VERSION",
        "TIER",
        "LAST REVIEWED",
        "DUE",
        "OVERDUE",
    ]);
    for p in items(v) {
        t.row(vec![
            cell(&p["name"]),
            cell(&p["version"]),
            cell(&p["risk_tier"]),
            time(&p["last_reviewed_at"]),
            time(&p["due_at"]),
            cell(&p["overdue"]),
        ]);
    }
    list_footer(v, "no version serves production", &t)
}

/// `GET /v1/models/{name}/production`
pub fn production(v: &Value) -> String {
    kv(&[
        ("model", cell(&v["name"])),
        ("production version", cell(&v["version"])),
        ("since", time(&v["since"])),
    ])
}

/// `GET /v1/retirements`
pub fn retirements(v: &Value) -> String {
    let mut t = Table::new(&[
        "RETIREMENT",
        "MODEL",
        "VERSION",
        "STATUS",
        "REQUESTED BY",
        "REQUESTED AT",
        "REPLACEMENT",
        "YOU MAY DECIDE",
        "REASON",
    ]);
    for r in items(v) {
        t.row(vec![
            cell(&r["retirement_id"]),
            cell(&r["name"]),
            cell(&r["version"]),
            cell(&r["status"]),
            cell(&r["requested_by"]),
            time(&r["requested_at"]),
            cell(&r["replacement"]),
            cell(&r["may_decide"]),
            cell(&r["reason"]),
        ]);
    }
    list_footer(v, "no pending retirements", &t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_fields_show_as_a_dash() {
        let out = production(&json!({"name": "m", "version": null}));
        assert!(out.contains("production version: -"), "{out}");
    }
}
