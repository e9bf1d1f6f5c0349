//! Check results: one reported (`steward check`) and a version's list (`steward checks`).

use serde_json::Value;

use super::{cell, kv, list_footer, short, time, Table};
use crate::client::items;

/// `metric=value` pairs of a result, space-separated (`-` for none).
fn metrics(c: &Value) -> String {
    match c["metrics"].as_object().filter(|m| !m.is_empty()) {
        Some(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", cell(v)))
            .collect::<Vec<_>>()
            .join(" "),
        None => "-".into(),
    }
}

/// `POST .../checks`: the stored result.
pub fn check(c: &Value) -> String {
    let mut pairs = vec![
        ("check", cell(&c["name"])),
        ("status", cell(&c["status"])),
        ("environment", cell(&c["environment"])),
        ("metrics", metrics(c)),
    ];
    if let Some(e) = c.get("evidence").filter(|e| !e.is_null()) {
        pairs.push((
            "evidence",
            format!("{} (sha256 {})", cell(&e["uri"]), cell(&e["sha256"])),
        ));
    }
    if let Some(u) = c.get("details_url").filter(|u| !u.is_null()) {
        pairs.push(("details", cell(u)));
    }
    pairs.extend([
        ("reported by", cell(&c["reported_by"])),
        ("reported at", time(&c["reported_at"])),
        ("reports", cell(&c["reports"])),
    ]);
    kv(&pairs)
}

/// The rows of a list of results.
pub(crate) fn checks_table(results: &[Value]) -> Table {
    let mut t = Table::new(&[
        "CHECK",
        "STATUS",
        "ENV",
        "METRICS",
        "EVIDENCE SHA256",
        "REPORTED BY",
        "REPORTED AT",
        "REPORTS",
    ]);
    for c in results {
        t.row(vec![
            cell(&c["name"]),
            cell(&c["status"]),
            cell(&c["environment"]),
            metrics(c),
            short(c["evidence"]["sha256"].as_str().unwrap_or("-")),
            cell(&c["reported_by"]),
            time(&c["reported_at"]),
            cell(&c["reports"]),
        ]);
    }
    t
}

/// `GET .../checks`
pub fn checks(v: &Value) -> String {
    list_footer(v, "no checks reported", &checks_table(items(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_check_list_reads_as_a_table_and_tolerates_missing_fields() {
        let out = checks(&json!({"items": [
            {"name": "unit-tests", "status": "passed", "metrics": {"coverage": 0.84},
             "reported_by": "ci", "reported_at": "2026-11-27T10:00:00.123Z", "reports": 2},
            {"name": "load-test", "status": "failed"},
        ], "next_cursor": null}));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("CHECK"), "{out}");
        assert!(
            lines[1].contains("unit-tests")
                && lines[1].contains("coverage=0.84")
                && lines[1].contains("2026-11-27 10:00:00Z"),
            "{out}"
        );
        assert!(
            lines[2].contains("load-test") && lines[2].contains("failed"),
            "{out}"
        );
        assert_eq!(checks(&json!({"items": []})), "no checks reported\n");
    }
}
