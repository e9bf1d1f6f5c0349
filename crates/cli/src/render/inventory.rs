//! The AI inventory (`steward inventory`): a table, or RFC 4180 CSV.

use serde_json::Value;

use super::{cell, list_footer, time, Table};
use crate::client::items;

/// The CSV columns, in order (a stable header: spreadsheets and scripts key on it).
pub const INVENTORY_CSV_HEADER: &[&str] = &[
    "name",
    "owner_team",
    "owner_contact",
    "risk_tier",
    "stage",
    "production_version",
    "production_since",
    "latest_version",
    "last_review_at",
    "last_review_by",
    "next_periodic_review",
    "open_incidents",
    "card_completeness",
    "card_missing",
];

/// A JSON value as a CSV field: strings bare, null empty, arrays joined with `;`.
fn field(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(field).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

/// One RFC 4180 field. The `csv` crate is not in the workspace's lock file and the rule is
/// short: a field holding a comma, a double quote, CR or LF is wrapped in double quotes with
/// its double quotes doubled; any other field is written as is.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn record(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| quote(f))
        .collect::<Vec<_>>()
        .join(",");
    // RFC 4180 ends every record, the last included, with CRLF.
    line.push_str("\r\n");
    line
}

/// The inventory as CSV, with a header row.
pub fn inventory_csv(v: &Value) -> String {
    let header: Vec<String> = INVENTORY_CSV_HEADER.iter().map(|h| h.to_string()).collect();
    let mut out = record(&header);
    for e in items(v) {
        out.push_str(&record(&[
            field(&e["name"]),
            field(&e["owner"]["team"]),
            field(&e["owner"]["contact"]),
            field(&e["risk_tier"]),
            field(&e["stage"]),
            field(&e["production_version"]["version"]),
            field(&e["production_version"]["since"]),
            field(&e["latest_version"]),
            field(&e["last_review"]["at"]),
            field(&e["last_review"]["decided_by"]),
            field(&e["next_periodic_review"]),
            field(&e["open_incidents"]["count"]),
            field(&e["card_completeness"]["score"]),
            field(&e["card_completeness"]["missing"]),
        ]));
    }
    out
}

/// The inventory as a table.
pub fn inventory(v: &Value) -> String {
    let mut t = Table::new(&[
        "NAME",
        "OWNER",
        "TIER",
        "STAGE",
        "PRODUCTION",
        "LATEST",
        "LAST REVIEW",
        "NEXT REVIEW",
        "INCIDENTS",
        "CARD",
    ]);
    for e in items(v) {
        let last = &e["last_review"];
        let last = if last.is_null() {
            "-".to_owned()
        } else {
            format!("{} by {}", time(&last["at"]), cell(&last["decided_by"]))
        };
        let score = e["card_completeness"]["score"].as_f64().unwrap_or(0.0);
        t.row(vec![
            cell(&e["name"]),
            cell(&e["owner"]["team"]),
            cell(&e["risk_tier"]),
            cell(&e["stage"]),
            cell(&e["production_version"]["version"]),
            cell(&e["latest_version"]),
            last,
            time(&e["next_periodic_review"]),
            cell(&e["open_incidents"]["count"]),
            format!("{:.0}%", score * 100.0),
        ]);
    }
    list_footer(v, "no models", &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_field_with_a_comma_quote_or_line_break_is_quoted_and_its_quotes_doubled() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        assert_eq!(record(&["x".into(), String::new()]), "x,\r\n");
    }
}
