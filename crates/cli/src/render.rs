//! Human-readable output (`--output table`): aligned tables for lists and `key: value` lines
//! for single resources, read from the API's JSON so fields the server adds never break them.
//!
//! Invariant: every renderer tolerates missing fields (shown as `-`); none prints raw JSON
//! except where a value is itself free-form (hyperparameters, details), and then compactly.

use serde_json::Value;

use crate::client::{items, next_cursor};

/// A value as a table cell: strings bare, `null`/missing as `-`, the rest as compact JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Array(a) if a.iter().all(|x| x.is_string() || x.is_number()) => {
            if a.is_empty() {
                "-".into()
            } else {
                a.iter().map(cell).collect::<Vec<_>>().join(", ")
            }
        }
        other => other.to_string(),
    }
}

/// The first 12 hex digits of a hash, enough to tell hashes apart on a screen.
pub fn short(hash: &str) -> String {
    if hash.len() > 12 {
        format!("{}…", &hash[..12])
    } else {
        hash.to_owned()
    }
}

/// A time without its sub-second digits (`2026-11-27T10:00:00Z`).
pub fn time(v: &Value) -> String {
    match v.as_str() {
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(d) => d
                .with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%SZ")
                .to_string(),
            Err(_) => t.to_owned(),
        },
        None => cell(v),
    }
}

/// An aligned text table.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table, columns padded to their widest cell, with no trailing spaces.
    pub fn render(&self) -> String {
        let cols = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate().take(cols) {
                if i + 1 == cols {
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    out.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
                }
            }
            out.trim_end().to_owned()
        };
        let mut out = line(&self.headers);
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

/// `key: value` lines with the values aligned.
pub fn kv(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(&format!("{k}:{}{v}\n", " ".repeat(width - k.len() + 1)));
    }
    out
}

fn list_footer(v: &Value, empty: &str, table: &Table) -> String {
    let mut out = if table.is_empty() {
        format!("{empty}\n")
    } else {
        table.render()
    };
    if let Some(c) = next_cursor(v) {
        out.push_str(&format!("(more: --cursor {c})\n"));
    }
    out
}

/// A version (registration, deployment, retirement, `versions get`).
pub fn version(v: &Value) -> String {
    let mut pairs = vec![
        ("model", cell(&v["name"])),
        ("version", cell(&v["version"])),
        ("stage", cell(&v["stage"])),
        ("risk tier", cell(&v["risk_tier"])),
    ];
    if let Some(serving) = v.get("serving") {
        pairs.push(("serving production", cell(serving)));
    }
    pairs.extend([
        ("registered by", cell(&v["registered_by"])),
        ("registered at", time(&v["registered_at"])),
        ("artifact", cell(&v["artifact"]["uri"])),
        ("artifact sha256", cell(&v["artifact"]["sha256"])),
        ("manifest sha256", cell(&v["manifest_sha256"])),
        ("parent version", cell(&v["lineage"]["parent_version"])),
        ("card revision", cell(&v["card_revision"])),
    ]);
    let approvals: Vec<String> = v["approvals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| format!("{} ({})", cell(&a["environment"]), time(&a["approved_at"])))
        .collect();
    pairs.push((
        "approved for",
        if approvals.is_empty() {
            "-".into()
        } else {
            approvals.join(", ")
        },
    ));
    let deployments: Vec<String> = v["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "{} by {} ({})",
                cell(&d["environment"]),
                cell(&d["deployed_by"]),
                time(&d["deployed_at"])
            )
        })
        .collect();
    pairs.push((
        "deployments",
        if deployments.is_empty() {
            "-".into()
        } else {
            deployments.join(", ")
        },
    ));
    pairs.push(("open promotion", cell(&v["open_promotion"])));
    if let Some(r) = v.get("retirement").filter(|r| !r.is_null()) {
        pairs.push((
            "retired",
            format!(
                "by {} at {}: {} (replacement: {})",
                cell(&r["retired_by"]),
                time(&r["retired_at"]),
                cell(&r["reason"]),
                cell(&r["replacement"])
            ),
        ));
    }
    if let Some(p) = v.get("pending_retirement").filter(|p| !p.is_null()) {
        let confirmed = match p.get("confirmed_by").filter(|c| !c.is_null()) {
            Some(by) => format!("confirmed by {}", cell(by)),
            None => "waiting for confirmation".to_owned(),
        };
        pairs.push((
            "retirement requested",
            format!(
                "{} by {} at {}: {} (replacement: {}); {confirmed}",
                cell(&p["id"]),
                cell(&p["requested_by"]),
                time(&p["requested_at"]),
                cell(&p["reason"]),
                cell(&p["replacement"])
            ),
        ));
    }
    if let Some(due) = v.get("next_periodic_review").filter(|d| !d.is_null()) {
        pairs.push(("next periodic review", time(due)));
    }
    pairs.push(("revision", cell(&v["revision"])));
    let mut out = kv(&pairs);
    out.push_str(&evaluations(v));
    if let Some(reviews) = v["reviews"].as_array().filter(|r| !r.is_empty()) {
        out.push_str("\nreviews:\n");
        out.push_str(&review_table(reviews, true).render());
    }
    out
}

/// The evaluations of a version.
pub fn evaluations(v: &Value) -> String {
    let Some(evals) = v["evaluations"].as_array().filter(|e| !e.is_empty()) else {
        return String::new();
    };
    let mut t = Table::new(&[
        "EVALUATION",
        "ENV",
        "DATASET SHA256",
        "METRICS",
        "RECORDED BY",
    ]);
    for e in evals {
        let metrics = e["metrics"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", cell(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        t.row(vec![
            cell(&e["name"]),
            cell(&e["environment"]),
            short(e["dataset"]["sha256"].as_str().unwrap_or("-")),
            metrics,
            cell(&e["recorded_by"]),
        ]);
    }
    format!("\nevaluations:\n{}", t.render())
}

/// `GET /v1/models`
pub fn models(v: &Value) -> String {
    let mut t = Table::new(&[
        "NAME",
        "TIER",
        "OWNER",
        "LATEST",
        "PRODUCTION",
        "DESCRIPTION",
    ]);
    for m in items(v) {
        t.row(vec![
            cell(&m["name"]),
            cell(&m["risk_tier"]),
            cell(&m["owner"]["team"]),
            cell(&m["latest_version"]),
            cell(&m["production_version"]),
            cell(&m["description"]),
        ]);
    }
    list_footer(v, "no models", &t)
}

/// A model (`models get`, `rollback`).
pub fn model(v: &Value) -> String {
    let mut out = kv(&[
        ("model", cell(&v["name"])),
        ("risk tier", cell(&v["risk_tier"])),
        (
            "owner",
            format!(
                "{} <{}>",
                cell(&v["owner"]["team"]),
                cell(&v["owner"]["contact"])
            ),
        ),
        ("description", cell(&v["description"])),
        ("created by", cell(&v["created_by"])),
        ("created at", time(&v["created_at"])),
        ("latest version", cell(&v["latest_version"])),
        ("production version", cell(&v["production_version"])),
        ("revision", cell(&v["revision"])),
    ]);
    if let Some(versions) = v["versions"].as_array().filter(|x| !x.is_empty()) {
        let mut t = Table::new(&[
            "VERSION",
            "STAGE",
            "REGISTERED BY",
            "REGISTERED AT",
            "ARTIFACT SHA256",
        ]);
        for ver in versions {
            t.row(vec![
                cell(&ver["version"]),
                cell(&ver["stage"]),
                cell(&ver["registered_by"]),
                time(&ver["registered_at"]),
                short(ver["artifact"]["sha256"].as_str().unwrap_or("-")),
            ]);
        }
        out.push_str("\nversions:\n");
        out.push_str(&t.render());
    }
    out
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, x) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        Value::Array(items) if items.iter().any(|x| x.is_object() || x.is_array()) => {
            for (i, x) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        Value::Array(items) if items.len() > 1 => {
            for (i, x) in items.iter().enumerate() {
                out.push((format!("{prefix}[{i}]"), cell(x)));
            }
        }
        other => out.push((prefix.to_owned(), cell(other))),
    }
}

/// `GET .../card`: the card's sections as `path: value` lines.
pub fn card(v: &Value) -> String {
    let mut out = kv(&[
        ("model", cell(&v["name"])),
        ("version", cell(&v["version"])),
        ("card revision", cell(&v["card_revision"])),
        ("version revision", cell(&v["revision"])),
    ]);
    // The card's sections in the order a reader expects (DESIGN.md), then any others.
    const SECTIONS: &[&str] = &[
        "overview",
        "intended_use",
        "training_data",
        "evaluation",
        "fairness",
        "limitations",
        "operational",
        "rollback",
    ];
    let mut lines = Vec::new();
    if let Some(card) = v["card"].as_object() {
        for key in SECTIONS {
            if let Some(section) = card.get(*key) {
                flatten(key, section, &mut lines);
            }
        }
        for (key, section) in card.iter().filter(|(k, _)| !SECTIONS.contains(&k.as_str())) {
            flatten(key, section, &mut lines);
        }
    }
    out.push('\n');
    let pairs: Vec<(&str, String)> = lines.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    out.push_str(&kv(&pairs));
    out
}

/// `GET .../card/revisions`
pub fn card_revisions(v: &Value) -> String {
    let mut t = Table::new(&["REVISION", "AUTHOR", "AT", "CARD SHA256"]);
    for r in items(v) {
        t.row(vec![
            cell(&r["card_revision"]),
            cell(&r["author"]),
            time(&r["at"]),
            cell(&r["card_sha256"]),
        ]);
    }
    list_footer(v, "no card revisions", &t)
}

/// `GET .../gate`
pub fn gate(v: &Value, name: &str, version: u32, env: &str) -> String {
    let allowed = v["allowed"].as_bool().unwrap_or(false);
    let mut out = format!(
        "{name} version {version} -> {env}: {}\n",
        if allowed { "allowed" } else { "NOT allowed" }
    );
    for r in v["reasons"].as_array().into_iter().flatten() {
        out.push_str(&format!("  - {}\n", cell(r)));
    }
    out
}

fn review_table(reviews: &[Value], with_decider: bool) -> Table {
    let mut headers = vec![
        "REVIEW", "MODEL", "VERSION", "TARGET", "STAGE", "STATUS", "DEADLINE",
    ];
    if with_decider {
        headers.extend(["DECIDED BY", "CONDITIONS"]);
    }
    let mut t = Table::new(&headers);
    for r in reviews {
        let mut row = vec![
            cell(&r["id"]),
            cell(&r["name"]),
            cell(&r["version"]),
            cell(&r["target"]),
            cell(&r["stage"]),
            cell(&r["status"]),
            time(&r["deadline"]),
        ];
        if with_decider {
            row.push(cell(&r["decided_by"]));
            row.push(cell(&r["conditions"]));
        }
        t.row(row);
    }
    t
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_trim_trailing_space() {
        let mut t = Table::new(&["A", "LONGER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        t.row(vec!["y".into(), "-".into()]);
        assert_eq!(
            t.render(),
            "A          LONGER\nwide cell  x\ny          -\n"
        );
    }

    #[test]
    fn missing_fields_show_as_a_dash() {
        let out = production(&json!({"name": "m", "version": null}));
        assert!(out.contains("production version: -"), "{out}");
    }

    #[test]
    fn a_card_reads_as_path_value_lines() {
        let out = card(
            &json!({"name": "m", "version": 1, "card": {"overview": "o", "limitations": ["a", "b"], "operational": {"monitoring": {"drift": [{"metric": "psi", "max": 0.2}]}}}}),
        );
        assert!(out.contains("limitations[1]"), "{out}");
        assert!(out.contains("operational.monitoring.drift[0].max"), "{out}");
    }
}
