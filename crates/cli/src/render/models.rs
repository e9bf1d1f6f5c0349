//! The registry's reads: versions with their evaluations and reviews, models, model cards
//! and the deployment gate.

use serde_json::Value;

use super::{cell, kv, list_footer, review_table, short, time, Table};
use crate::client::items;

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
    if let Some(checks) = v["checks"].as_array().filter(|c| !c.is_empty()) {
        out.push_str("\nchecks:\n");
        out.push_str(&super::checks::checks_table(checks).render());
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_card_reads_as_path_value_lines() {
        let out = card(
            &json!({"name": "m", "version": 1, "card": {"overview": "o", "limitations": ["a", "b"], "operational": {"monitoring": {"drift": [{"metric": "psi", "max": 0.2}]}}}}),
        );
        assert!(out.contains("limitations[1]"), "{out}");
        assert!(out.contains("operational.monitoring.drift[0].max"), "{out}");
    }
}
