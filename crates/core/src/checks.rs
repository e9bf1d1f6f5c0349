//! Checks: named results that CI/CD and platform jobs report for a version (`unit-tests` with
//! `coverage`, `integration-tests` on staging, `load-test` with `latency_ms_p99`,
//! `monitoring-configured`), and what policy requires of them.
//!
//! Invariants: a [`CheckName`] is 1–64 characters of `[a-z0-9._-]` starting with a letter or
//! digit; a report's metrics are finite; evidence names a SHA-256; a details URL is absolute
//! `http(s)`. A version keeps the latest report per (name, environment): what a gate reads is
//! always the newest word of the job, and the audit log keeps every report.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{FieldError, GovError};
use crate::types::{Environment, PrincipalId, Sha256};

/// The name of a check, e.g. `unit-tests`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CheckName(String);

impl CheckName {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let ok = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(FieldError::new(
                "name",
                format!("{s:?} is not a check name: 1-64 of a-z, 0-9, '-', '_', '.', starting with a letter or digit"),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CheckName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CheckName::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// Whether the job passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Passed,
    Failed,
}

/// A file that backs a report (a coverage report, a load-test summary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckEvidence {
    pub uri: String,
    pub sha256: Sha256,
}

/// The latest report of one check for a version, as stored on it and listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: CheckName,
    pub status: CheckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<CheckEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_url: Option<String>,
    pub reported_by: PrincipalId,
    pub reported_at: DateTime<Utc>,
    /// How many reports of this check (and environment) the version has had.
    pub reports: u32,
}

/// A report as posted: `{"name", "status", "environment"?, "metrics"?, "evidence"?,
/// "details_url"?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub name: CheckName,
    pub status: CheckStatus,
    pub environment: Option<Environment>,
    pub metrics: BTreeMap<String, f64>,
    pub evidence: Option<CheckEvidence>,
    pub details_url: Option<String>,
}

impl CheckReport {
    /// Parses a report body, naming every bad field at once.
    pub fn parse(body: &Value) -> Result<Self, GovError> {
        let Some(obj) = body.as_object() else {
            return Err(GovError::field("body", "must be a JSON object"));
        };
        let mut errors = Vec::new();
        for k in obj.keys() {
            if !matches!(
                k.as_str(),
                "name" | "status" | "environment" | "metrics" | "evidence" | "details_url"
            ) {
                errors.push(FieldError::new(
                    k.clone(),
                    "is not a field of a check report",
                ));
            }
        }
        let name = match obj.get("name").and_then(Value::as_str) {
            Some(s) => CheckName::parse(s).map_err(|e| errors.push(e)).ok(),
            None => {
                errors.push(FieldError::new("name", "is required (a string)"));
                None
            }
        };
        let status = match obj.get("status").and_then(Value::as_str) {
            Some("passed") => Some(CheckStatus::Passed),
            Some("failed") => Some(CheckStatus::Failed),
            _ => {
                errors.push(FieldError::new(
                    "status",
                    "is required: \"passed\" or \"failed\"",
                ));
                None
            }
        };
        let environment = match obj.get("environment") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Environment::parse(s).map_err(|e| errors.push(e)).ok(),
            Some(_) => {
                errors.push(FieldError::new(
                    "environment",
                    "must be \"staging\" or \"production\"",
                ));
                None
            }
        };
        let mut metrics = BTreeMap::new();
        match obj.get("metrics") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    match v.as_f64() {
                        Some(x) if x.is_finite() && !k.trim().is_empty() => {
                            metrics.insert(k.clone(), x);
                        }
                        _ => errors.push(FieldError::new(
                            format!("metrics.{k}"),
                            "must be a finite number under a non-empty name",
                        )),
                    }
                }
            }
            Some(_) => errors.push(FieldError::new(
                "metrics",
                "must be an object of metric name to number",
            )),
        }
        let evidence = match obj.get("evidence") {
            None | Some(Value::Null) => None,
            Some(v) => match serde_json::from_value::<CheckEvidence>(v.clone()) {
                Ok(e) if !e.uri.trim().is_empty() => Some(e),
                Ok(_) => {
                    errors.push(FieldError::new("evidence.uri", "must not be empty"));
                    None
                }
                Err(e) => {
                    errors.push(FieldError::new(
                        "evidence",
                        format!("must be {{\"uri\", \"sha256\"}}: {e}"),
                    ));
                    None
                }
            },
        };
        let details_url = match obj.get("details_url") {
            None | Some(Value::Null) => None,
            Some(Value::String(u))
                if (u.starts_with("https://") || u.starts_with("http://"))
                    && u.len() <= 2048
                    && !u.chars().any(char::is_whitespace) =>
            {
                Some(u.clone())
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "details_url",
                    "must be an absolute http(s) URL of at most 2048 characters",
                ));
                None
            }
        };
        match (name, status) {
            (Some(name), Some(status)) if errors.is_empty() => Ok(CheckReport {
                name,
                status,
                environment,
                metrics,
                evidence,
                details_url,
            }),
            _ => Err(GovError::Validation(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_check_report_parses_and_every_bad_field_is_named() {
        let ok = CheckReport::parse(&json!({
            "name": "unit-tests", "status": "passed", "environment": "staging",
            "metrics": {"coverage": 0.84},
            "evidence": {"uri": "s3://ci/report.xml", "sha256": "ab".repeat(32)},
            "details_url": "https://ci.example.com/run/42",
        }))
        .unwrap();
        assert_eq!(ok.name.as_str(), "unit-tests");
        assert_eq!(ok.metrics["coverage"], 0.84);
        let GovError::Validation(errors) = CheckReport::parse(&json!({
            "name": "Unit Tests", "status": "green", "environment": "qa",
            "metrics": {"coverage": "high"}, "details_url": "ftp://x", "extra": 1,
        }))
        .unwrap_err() else {
            panic!("a validation error")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "name",
            "status",
            "environment",
            "metrics.coverage",
            "details_url",
            "extra",
        ] {
            assert!(fields.contains(&f), "{f} in {fields:?}");
        }
    }
}
