//! The demo's script: numbered steps on screen, and the expectations each step states (a
//! success, or a refusal with exactly this status and code) that stop the demo with an error
//! the moment the API behaves otherwise.
//!
//! Invariant: nothing printed here carries a token; ids are shortened for the screen only.

use std::collections::BTreeMap;
use std::fmt::Display;

use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Utc};
use serde_json::Value;
use steward_core::types::Decision;

use crate::client::{ApiError, Client, ClientError};

/// Prints the numbered steps.
pub(super) struct Script {
    pub(super) n: usize,
}

impl Script {
    pub(super) fn step(&mut self, text: impl Display) {
        self.n += 1;
        println!("\n{:>2}. {text}", self.n);
    }
    pub(super) fn ok(&self, text: impl Display) {
        println!("    ✓ {text}");
    }
    pub(super) fn refused(&self, e: &ApiError) {
        println!("    ✗ refused, as it must be: {} {}", e.status, e.code);
        // The details are what the message summarises; show them instead when there are any.
        if e.details.is_empty() {
            println!("      {}", e.message);
        }
        for d in &e.details {
            println!("      {d}");
        }
    }
    /// A refusal that comes from somewhere other than the API (the policy loader, say).
    pub(super) fn refused_by(&self, who: impl Display) {
        println!("    ✗ refused, as it must be, by {who}:");
    }
    pub(super) fn info(&self, text: impl Display) {
        println!("      {text}");
    }
}

pub(super) fn describe(e: &ClientError) -> String {
    let mut s = e.to_string();
    if let Some(api) = e.api() {
        for d in &api.details {
            s.push_str(&format!("; {d}"));
        }
    }
    s
}

/// Expects a success.
pub(super) fn ok(r: Result<Value, ClientError>, what: &str) -> anyhow::Result<Value> {
    r.map_err(|e| anyhow!("{what}: expected success, got {}", describe(&e)))
}

/// Expects a refusal with exactly this status and code.
pub(super) fn refused(
    r: Result<Value, ClientError>,
    status: u16,
    code: &str,
    what: &str,
) -> anyhow::Result<ApiError> {
    match r {
        Ok(_) => bail!("{what}: expected {status} {code}, but the API accepted it"),
        Err(ClientError::Api(e)) if e.status == status && e.code == code => Ok(e),
        Err(e) => bail!("{what}: expected {status} {code}, got {}", describe(&e)),
    }
}

pub(super) fn check(cond: bool, what: impl Display) -> anyhow::Result<()> {
    if cond {
        Ok(())
    } else {
        bail!("unexpected: {what}")
    }
}

/// Shortens the long hex run in an id: `pr-3f9a1c2e…-technical`.
pub(super) fn short_id(id: &str) -> String {
    let b = id.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_hexdigit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            if i - start >= 16 {
                return format!("{}{}…{}", &id[..start], &id[start..start + 8], &id[i..]);
            }
        } else {
            i += 1;
        }
    }
    id.to_owned()
}

pub(super) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("-")
}

pub(super) fn time_of(v: &Value) -> anyhow::Result<DateTime<Utc>> {
    let t = v
        .as_str()
        .ok_or_else(|| anyhow!("expected a time, got {v}"))?;
    Ok(DateTime::parse_from_rfc3339(t)
        .with_context(|| format!("{t} is not RFC 3339"))?
        .with_timezone(&Utc))
}

/// When a version was last deployed to production, from its deployment records.
pub(super) fn production_deployed_at(version: &Value) -> anyhow::Result<DateTime<Utc>> {
    let d = version["deployments"]
        .as_array()
        .and_then(|ds| ds.iter().rev().find(|d| d["environment"] == "production"))
        .ok_or_else(|| anyhow!("the version has no production deployment"))?;
    time_of(&d["deployed_at"])
}

/// The actors' clients, by name.
pub(super) struct Cast {
    pub(super) clients: BTreeMap<&'static str, Client>,
}

impl Cast {
    pub(super) fn as_(&self, name: &str) -> &Client {
        &self.clients[name]
    }
}

/// Approves one review as `who`, expecting success; returns the promotion.
pub(super) async fn approve(
    cast: &Cast,
    who: &str,
    review_id: &str,
    comment: &str,
    conditions: &[String],
) -> anyhow::Result<Value> {
    ok(
        cast.as_(who)
            .decide(review_id, Decision::Approve, Some(comment), conditions)
            .await,
        &format!("{who} approving {review_id}"),
    )
}

pub(super) fn review_id(promotion: &Value, stage: &str) -> anyhow::Result<String> {
    promotion["reviews"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["stage"] == stage))
        .and_then(|r| r["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the promotion has no {stage} review"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_shortened_around_their_hex_run() {
        assert_eq!(
            short_id("pr-0123456789abcdef0123456789abcdef-technical"),
            "pr-01234567…-technical"
        );
        assert_eq!(
            short_id("inc-0123456789abcdef0123456789abcdef"),
            "inc-01234567…"
        );
        assert_eq!(short_id("short"), "short");
    }
}
