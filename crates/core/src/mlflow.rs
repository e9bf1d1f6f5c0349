//! What the MLflow Model Registry API adds to Steward's records: a registered model's
//! description, tags and free aliases, and a version's MLflow metadata.
//!
//! Invariants:
//! - A [`RegisteredModel`] never holds governance state. Who may deploy, what serves
//!   production and which versions are retired live on [`crate::records::Model`] and
//!   [`crate::records::ModelVersion`] only; the aliases the policy reserves for an environment
//!   ([`MlflowAliases`]) are computed from them and never stored here.
//! - Tag keys and values, alias names and descriptions are checked by [`TagKey::parse`],
//!   [`AliasName::parse`] and [`check_text`] before they reach a record, with MLflow's limits.
//! - Lineage tags ([`LINEAGE_TAGS`]) are written once, at registration: rewriting one would
//!   change what the version says it was built from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::ids::VersionNumber;
use crate::types::{ModelName, PrincipalId};

/// MLflow's limits (mlflow/utils/validation.py): tag keys 250 characters, values 5,000
/// (8,000 in newer servers; 5,000 is what every client accepts), descriptions 5,000.
pub const MAX_TAG_KEY: usize = 250;
pub const MAX_TAG_VALUE: usize = 5000;
pub const MAX_DESCRIPTION: usize = 5000;
/// Alias names: MLflow allows 255 characters.
pub const MAX_ALIAS: usize = 255;

/// The version tag that may carry the Steward manifest (a registration body as JSON).
pub const MANIFEST_TAG: &str = "steward.manifest";

/// Version tags that are lineage: read at registration and never rewritten or removed.
pub const LINEAGE_TAGS: &[&str] = &[
    MANIFEST_TAG,
    "mlflow.source.git.commit",
    "mlflow.source.git.repoURL",
    "mlflow.source.git.branch",
    "mlflow.source.name",
    "mlflow.source.type",
    "mlflow.log-model.history",
];

pub fn is_lineage_tag(key: &str) -> bool {
    LINEAGE_TAGS.contains(&key)
}

/// A tag key as MLflow accepts it: 1–250 characters, no control characters, not a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TagKey(String);

impl TagKey {
    pub fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
        if s.is_empty() || s.chars().count() > MAX_TAG_KEY {
            return Err(FieldError::new(
                field,
                format!("a tag key has 1 to {MAX_TAG_KEY} characters"),
            ));
        }
        if s.chars().any(char::is_control) || s.contains("..") || s.starts_with('/') {
            return Err(FieldError::new(
                field,
                format!("{s:?} is not a tag key: no control characters, '..' or leading '/'"),
            ));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tag value (at most 5,000 characters).
pub fn check_tag_value(field: &str, s: &str) -> Result<(), FieldError> {
    check_text(field, s, MAX_TAG_VALUE)
}

/// Free text (a description, a tag value): at most `max` characters, no NUL.
pub fn check_text(field: &str, s: &str, max: usize) -> Result<(), FieldError> {
    if s.chars().count() > max {
        return Err(FieldError::new(field, format!("at most {max} characters")));
    }
    if s.contains('\0') {
        return Err(FieldError::new(field, "contains a NUL character"));
    }
    Ok(())
}

/// An alias name as MLflow accepts it: 1–255 of letters, digits, `_` and `-`, not `latest`
/// and not of the form `v<digits>` (which MLflow reads as a version).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AliasName(String);

impl AliasName {
    pub fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if s.is_empty() || s.len() > MAX_ALIAS || !ok_chars {
            return Err(FieldError::new(
                field,
                format!("{s:?} is not an alias: use 1-{MAX_ALIAS} letters, digits, '_' or '-'"),
            ));
        }
        let lower = s.to_ascii_lowercase();
        let version_like = lower.len() > 1
            && lower.starts_with('v')
            && lower[1..].chars().all(|c| c.is_ascii_digit());
        if lower == "latest" || version_like {
            return Err(FieldError::new(
                field,
                format!("{s:?} is reserved: 'latest' and 'v<number>' name versions, not aliases"),
            ));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AliasName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The aliases the policy reserves: setting one is a deployment to that environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlflowAliases {
    #[serde(default = "default_production_aliases")]
    pub production_aliases: Vec<String>,
    #[serde(default = "default_staging_aliases")]
    pub staging_aliases: Vec<String>,
}

fn default_production_aliases() -> Vec<String> {
    vec!["champion".into(), "production".into()]
}

fn default_staging_aliases() -> Vec<String> {
    vec!["staging".into()]
}

impl MlflowAliases {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The environment an alias deploys to, if the policy reserves it.
    pub fn environment(&self, alias: &str) -> Option<crate::types::Environment> {
        use crate::types::Environment;
        if self.production_aliases.iter().any(|a| a == alias) {
            Some(Environment::Production)
        } else if self.staging_aliases.iter().any(|a| a == alias) {
            Some(Environment::Staging)
        } else {
            None
        }
    }

    /// Every reserved alias must be a valid alias, reserved for one environment only.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (field, list) in [
            ("mlflow.production_aliases", &self.production_aliases),
            ("mlflow.staging_aliases", &self.staging_aliases),
        ] {
            for a in list {
                if let Err(e) = AliasName::parse(field, a) {
                    errors.push(e);
                }
            }
        }
        for a in &self.production_aliases {
            if self.staging_aliases.contains(a) {
                errors.push(FieldError::new(
                    "mlflow.staging_aliases",
                    format!("{a:?} is also a production alias"),
                ));
            }
        }
        errors
    }
}

impl Default for MlflowAliases {
    fn default() -> Self {
        Self {
            production_aliases: default_production_aliases(),
            staging_aliases: default_staging_aliases(),
        }
    }
}

/// An MLflow registered model's own metadata, kept beside (never instead of) Steward's
/// [`crate::records::Model`]. It exists for every model the MLflow API touched, and alone for
/// a model created through MLflow that has no version yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    pub name: ModelName,
    pub description: String,
    pub tags: BTreeMap<TagKey, String>,
    /// Aliases the policy does not reserve, each naming an existing version.
    pub aliases: BTreeMap<AliasName, VersionNumber>,
    pub created_by: PrincipalId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Deleted through MLflow (kept as a tombstone so its revision keeps growing).
    #[serde(default)]
    pub deleted: bool,
    pub revision: u64,
}

/// What MLflow said about a version when it was created through the MLflow API, and what
/// it may change afterwards (description, non-lineage tags).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VersionMeta {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: BTreeMap<TagKey, String>,
    /// MLflow's `source`: the model's artifact directory as the client named it.
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub run_link: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_that_mlflow_reads_as_versions_are_refused() {
        for bad in ["latest", "v1", "V12", "", "has space", "a/b"] {
            assert!(AliasName::parse("alias", bad).is_err(), "{bad:?}");
        }
        for good in ["champion", "v", "v1a", "my_alias-2"] {
            assert!(AliasName::parse("alias", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn tag_keys_are_bounded_and_not_paths() {
        assert!(TagKey::parse("key", "").is_err());
        assert!(TagKey::parse("key", &"k".repeat(251)).is_err());
        assert!(TagKey::parse("key", "../etc").is_err());
        assert!(TagKey::parse("key", "mlflow.source.git.commit").is_ok());
        assert!(check_tag_value("value", &"x".repeat(5001)).is_err());
    }
}
