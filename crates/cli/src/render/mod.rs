//! Human-readable output (`--output table`): aligned tables for lists and `key: value` lines
//! for single resources, read from the API's JSON so fields the server adds never break them.
//!
//! Invariant: every renderer tolerates missing fields (shown as `-`); none prints raw JSON
//! except where a value is itself free-form (hyperparameters, details), and then compactly.//!
//! Layout: this module holds the building blocks (cells, tables, `key: value` lines);
//! `models` renders the registry's reads, `lifecycle` promotions, reviews and monitoring,
//! `audit` the audit log and principals.

mod audit;
mod checks;
mod inventory;
mod lifecycle;
mod models;
mod serving;
mod webhooks;

use serde_json::Value;

use crate::client::next_cursor;

pub use audit::{audit_events, checkpoint, consistency, principal, principals, proof, whoami};
pub use checks::{check, checks};
pub use inventory::{inventory, inventory_csv};
pub use lifecycle::{
    incidents, periodic_reviews, production, promotion, retirements, reviews, signal,
};
pub use models::{card, card_revisions, evaluations, gate, model, models, version};
pub use serving::{serving, serving_record};
pub use webhooks::{deliveries, webhook, webhooks};

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

pub(crate) fn list_footer(v: &Value, empty: &str, table: &Table) -> String {
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

pub(crate) fn review_table(reviews: &[Value], with_decider: bool) -> Table {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
