//! What serving platforms say they serve, and how it compares with what Steward approved.
//!
//! Invariants:
//! - A report is parsed whole: unknown fields, a missing endpoint or artifact URI, a bad hash,
//!   a version without its model, a time in the future are each a field error, and nothing is
//!   written.
//! - One [`ServingRecord`] per `(platform, environment, endpoint)`; a report older than the
//!   record's latest observation changes nothing.
//! - [`classify`] is the one place an outcome is decided: the artifact is matched by SHA-256
//!   when the report gives one, else by URI; `governed` needs the matched version approved for
//!   and deployed to that environment (and, in production, to be the version Steward records as
//!   serving); a retired, rolled-back or superseded version is `stale`; a registered version
//!   that is not governed there is `unapproved`; no match is `unregistered`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{FieldError, GovError};
use crate::ids::VersionNumber;
use crate::records::{Model, ModelVersion, VersionRef};
use crate::types::{Environment, ModelName, PrincipalId, Sha256, Stage};

/// The artifact a platform serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServedArtifact {
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
}

/// `POST /v1/serving` as posted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    platform: String,
    environment: Environment,
    endpoint: String,
    artifact: ServedArtifact,
    #[serde(default)]
    model: Option<ModelName>,
    #[serde(default)]
    version: Option<u32>,
    observed_at: DateTime<Utc>,
    /// The endpoint no longer serves this artifact (it was deleted or changed).
    #[serde(default)]
    stopped: bool,
}

/// A parsed serving report.
#[derive(Debug, Clone, PartialEq)]
pub struct ServingReport {
    pub platform: String,
    pub environment: Environment,
    pub endpoint: String,
    pub artifact: ServedArtifact,
    /// What the platform claims it serves (checked, never trusted over the artifact).
    pub model: Option<ModelName>,
    pub version: Option<VersionNumber>,
    pub observed_at: DateTime<Utc>,
    pub stopped: bool,
}

fn platform_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

impl ServingReport {
    /// Parses a report; `now` bounds `observed_at` (five minutes of clock skew allowed).
    pub fn parse(body: Value, now: DateTime<Utc>) -> Result<Self, GovError> {
        let raw: RawReport = crate::manifest::from_value(body)?;
        let mut errors = Vec::new();
        if !platform_ok(&raw.platform) {
            errors.push(FieldError::new(
                "platform",
                "must be 1-64 characters of a-z, 0-9, '-', '_' or '.' (e.g. sagemaker, kserve)",
            ));
        }
        let endpoint = raw.endpoint.trim();
        if endpoint.is_empty() || endpoint.len() > 512 || endpoint.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "endpoint",
                "must be 1-512 printable characters",
            ));
        }
        let uri = raw.artifact.uri.trim();
        if uri.is_empty() || uri.len() > 2048 || uri.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "artifact.uri",
                "must be 1-2048 printable characters",
            ));
        }
        let version = match (raw.version, &raw.model) {
            (Some(_), None) => {
                errors.push(FieldError::new(
                    "version",
                    "needs the model it is a version of",
                ));
                None
            }
            (Some(n), Some(_)) => match VersionNumber::new(n) {
                Ok(v) => Some(v),
                Err(_) => {
                    errors.push(FieldError::new("version", "must be 1 or more"));
                    None
                }
            },
            (None, _) => None,
        };
        if raw.observed_at > now + chrono::Duration::minutes(5) {
            errors.push(FieldError::new("observed_at", "must not be in the future"));
        }
        if !errors.is_empty() {
            return Err(GovError::Validation(errors));
        }
        Ok(Self {
            platform: raw.platform,
            environment: raw.environment,
            endpoint: endpoint.to_owned(),
            artifact: ServedArtifact {
                uri: uri.to_owned(),
                sha256: raw.artifact.sha256,
            },
            model: raw.model,
            version,
            observed_at: raw.observed_at,
            stopped: raw.stopped,
        })
    }

    /// The record key: `{platform}/{environment}/{endpoint}`.
    pub fn key(&self) -> String {
        serving_key(&self.platform, self.environment, &self.endpoint)
    }
}

/// The key of the record of `endpoint` on `platform` in `environment`.
pub fn serving_key(platform: &str, environment: Environment, endpoint: &str) -> String {
    format!("{platform}/{environment}/{endpoint}")
}

/// What a served artifact is, measured against the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Governed,
    Unapproved,
    Unregistered,
    Stale,
}

impl Outcome {
    pub const ALL: &'static [Outcome] = &[
        Outcome::Governed,
        Outcome::Unapproved,
        Outcome::Unregistered,
        Outcome::Stale,
    ];

    /// The outcome of its wire name (`governed`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|o| o.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Governed => "governed",
            Outcome::Unapproved => "unapproved",
            Outcome::Unregistered => "unregistered",
            Outcome::Stale => "stale",
        }
    }
}

/// One endpoint as Steward last heard of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingRecord {
    pub platform: String,
    pub environment: Environment,
    pub endpoint: String,
    pub artifact: ServedArtifact,
    /// What the platform claimed it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_model: Option<ModelName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_version: Option<VersionNumber>,
    pub outcome: Outcome,
    /// Why, in a sentence.
    pub reason: String,
    /// The registered version the artifact matched, if any.
    pub model: Option<ModelName>,
    pub version: Option<VersionNumber>,
    /// The open `shadow_model` incident of this finding (anything but governed).
    pub incident: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    pub observed_at: DateTime<Utc>,
    pub reported_by: PrincipalId,
    /// Set once the endpoint stopped serving the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
    pub revision: u64,
}

impl ServingRecord {
    pub fn key(&self) -> String {
        serving_key(&self.platform, self.environment, &self.endpoint)
    }
}

/// The outcome of serving `artifact` in `env`, given every registered version whose artifact
/// has its SHA-256 or URI, each with its model. When several versions carry the artifact (it
/// was registered more than once), the one that makes it governed wins, then an unapproved
/// one, then a stale one; the latest version among equals.
pub fn classify(
    artifact: &ServedArtifact,
    env: Environment,
    candidates: &[(Model, ModelVersion)],
) -> (Outcome, Option<VersionRef>, String) {
    let matches = candidates.iter().filter(|(_, v)| match artifact.sha256 {
        Some(sha) => v.artifact.sha256 == sha,
        None => v.artifact.uri == artifact.uri,
    });
    let rank = |o: Outcome| match o {
        Outcome::Governed => 0,
        Outcome::Unapproved => 1,
        Outcome::Stale => 2,
        Outcome::Unregistered => 3,
    };
    let best = matches
        .map(|(m, v)| {
            let (outcome, reason) = judge(m, v, env);
            (outcome, v, reason)
        })
        .min_by(|a, b| {
            rank(a.0)
                .cmp(&rank(b.0))
                .then(b.1.version.cmp(&a.1.version))
        });
    match best {
        Some((outcome, v, reason)) => (
            outcome,
            Some(VersionRef {
                name: v.name.clone(),
                version: v.version,
            }),
            reason,
        ),
        None => {
            let how = match artifact.sha256 {
                Some(sha) => format!("no registered version has artifact SHA-256 {sha}"),
                None => format!("no registered version has artifact {}", artifact.uri),
            };
            (Outcome::Unregistered, None, how)
        }
    }
}

/// What serving version `v` of `model` in `env` is.
fn judge(model: &Model, v: &ModelVersion, env: Environment) -> (Outcome, String) {
    let it = format!("{} version {}", v.name, v.version);
    if v.stage == Stage::Retired {
        return (Outcome::Stale, format!("{it} is retired"));
    }
    if env == Environment::Production && model.rolled_back_from.contains(&v.version) {
        return (
            Outcome::Stale,
            format!("production was rolled back from {it}"),
        );
    }
    let governed_here = v.approved_for(env) && v.deployed_to(env).is_some();
    if env == Environment::Production
        && governed_here
        && model.production_version != Some(v.version)
    {
        let recorded = match model.production_version {
            Some(p) => format!("Steward records version {p} serving production"),
            None => "Steward records no version serving production".to_owned(),
        };
        return (Outcome::Stale, format!("{it} was superseded: {recorded}"));
    }
    if governed_here {
        return (
            Outcome::Governed,
            format!("{it} is approved for and deployed to {env}"),
        );
    }
    let why = if v.approved_for(env) {
        format!("{it} is approved for {env} but was never deployed there through Steward")
    } else {
        format!("{it} is not approved for {env} (stage {})", v.stage)
    };
    (Outcome::Unapproved, why)
}
