//! The registration manifest and the other request bodies that carry evidence, parsed straight
//! into domain types.
//!
//! Invariants: a value of any type here passed `parse_*` — its SHA-256 digests are digests,
//! its names are names, every required card section is present, every text that a reviewer
//! must read is non-empty, and the card's evaluation summary only references evaluations that
//! were recorded. Unknown fields are refused, never dropped, so a misspelt section cannot
//! silently go missing.
//!
//! The version numbers a manifest names (`lineage.parent_version`, `dependencies[].version`)
//! are kept as submitted, plain integers: they are claims the registration checks against the
//! registry, where a 0 is reported like any other version the model does not have. The
//! version records hold them as [`crate::records::VersionRef`] once checked.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

use crate::error::{FieldError, GovError};
use crate::types::{Environment, ModelName, RiskTier, Sha256};

mod objects;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub team: String,
    pub contact: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub uri: String,
    pub sha256: Sha256,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRef {
    pub repository: String,
    pub commit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingData {
    pub uri: String,
    pub sha256: Sha256,
    pub period: Period,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    pub code: CodeRef,
    pub training_data: Vec<TrainingData>,
    #[serde(default)]
    pub hyperparameters: BTreeMap<String, Value>,
    #[serde(default)]
    pub training_job: Option<String>,
    #[serde(default)]
    pub parent_version: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    pub uri: String,
    pub sha256: Sha256,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slice {
    pub group: String,
    pub metrics: BTreeMap<String, f64>,
}

/// An evaluation result as submitted (registration body or `POST .../evaluations`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationInput {
    pub name: String,
    pub dataset: Dataset,
    pub metrics: BTreeMap<String, f64>,
    #[serde(default)]
    pub slices: Vec<Slice>,
    /// Where the test data comes from; `staging` evaluations are what production gates read.
    #[serde(default)]
    pub environment: Option<Environment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntendedUse {
    pub purpose: String,
    pub users: Vec<String>,
    pub out_of_scope: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardTrainingData {
    pub sources: Vec<String>,
    pub period: Period,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardEvaluation {
    pub summary: String,
    pub evaluations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fairness {
    pub groups: Vec<Slice>,
    pub known_disparities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityThreshold {
    pub metric: String,
    pub min: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftThreshold {
    pub metric: String,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    #[serde(default)]
    pub quality: Vec<QualityThreshold>,
    #[serde(default)]
    pub drift: Vec<DriftThreshold>,
    /// The SageMaker pipeline (name or ARN) that retrains this model. With it, a drift breach
    /// starts an execution of that pipeline (on AWS); its new version comes back through
    /// registration and the tier's reviews like any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining_pipeline: Option<String>,
}

/// Whether `s` is a SageMaker pipeline name (`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$`) or a
/// pipeline ARN (`arn:<partition>:sagemaker:<region>:<account>:pipeline/<name>`).
pub fn is_pipeline_ref(s: &str) -> bool {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 256
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !n.starts_with('-')
            && !n.ends_with('-')
    };
    if let Some(rest) = s.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        return parts.len() == 5
            && parts[0].starts_with("aws")
            && parts[1] == "sagemaker"
            && !parts[2].is_empty()
            && parts[3].len() == 12
            && parts[3].chars().all(|c| c.is_ascii_digit())
            && parts[4].strip_prefix("pipeline/").is_some_and(name_ok);
    }
    name_ok(s)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operational {
    pub compute: String,
    pub latency_ms_p99: f64,
    pub monitoring: Monitoring,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackPlan {
    pub procedure: String,
    /// When the procedure was last exercised; policy may require a recent test for a tier.
    #[serde(default)]
    pub last_tested: Option<NaiveDate>,
}

/// A model card: every section is required; monitoring thresholds and the rollback procedure
/// may still be empty at registration, but the production gate refuses them empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub overview: String,
    pub intended_use: IntendedUse,
    pub training_data: CardTrainingData,
    pub evaluation: CardEvaluation,
    pub fairness: Fairness,
    pub limitations: Vec<String>,
    pub operational: Operational,
    pub rollback: RollbackPlan,
}

/// A declared runtime dependency on another model's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    pub name: ModelName,
    pub version: u32,
}

/// The registration manifest (`examples/credit-risk-v1.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub owner: Owner,
    pub risk_tier: RiskTier,
    pub description: String,
    pub artifact: Artifact,
    pub lineage: Lineage,
    pub evaluations: Vec<EvaluationInput>,
    pub card: ModelCard,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
}

/// Deserializes `value` into `T`, naming the field at fault on failure
/// (`card.rollback: missing field` rather than a line and column). Types with named fields
/// are read from objects only, never from a positional array of their fields.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, GovError> {
    serde_path_to_error::deserialize::<_, T>(objects::Objects(value)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde reports a missing field at the parent's path; name the field itself.
        let (field, message) = match inner.strip_prefix("missing field `") {
            Some(rest) => {
                let name = rest.split('`').next().unwrap_or_default();
                let field = if path == "." {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                };
                (field, "is required".to_owned())
            }
            None => {
                let field = if path == "." { String::new() } else { path };
                (field, inner)
            }
        };
        GovError::Validation(vec![FieldError::new(field, message)])
    })
}

fn require_text(errors: &mut Vec<FieldError>, field: &str, value: &str) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if value.len() > 10_000 {
        errors.push(FieldError::new(field, "must be at most 10000 bytes"));
    }
}

fn require_list(errors: &mut Vec<FieldError>, field: &str, values: &[String]) {
    if values.is_empty() {
        errors.push(FieldError::new(field, "must list at least one entry"));
    }
    for (i, v) in values.iter().enumerate() {
        require_text(errors, &format!("{field}[{i}]"), v);
    }
}

fn check_period(errors: &mut Vec<FieldError>, field: &str, p: &Period) {
    if p.from > p.to {
        errors.push(FieldError::new(field, "period.from is after period.to"));
    }
}

fn check_metrics(errors: &mut Vec<FieldError>, field: &str, metrics: &BTreeMap<String, f64>) {
    if metrics.is_empty() {
        errors.push(FieldError::new(field, "must record at least one metric"));
    }
    for (k, v) in metrics {
        if k.trim().is_empty() {
            errors.push(FieldError::new(field, "metric names must not be empty"));
        }
        if !v.is_finite() {
            errors.push(FieldError::new(
                format!("{field}.{k}"),
                "must be a finite number",
            ));
        }
    }
}

impl EvaluationInput {
    /// Semantic checks beyond the shape: a name, a non-empty metric set.
    pub fn check(&self, field: &str, errors: &mut Vec<FieldError>) {
        require_text(errors, &format!("{field}.name"), &self.name);
        require_text(errors, &format!("{field}.dataset.uri"), &self.dataset.uri);
        check_metrics(errors, &format!("{field}.metrics"), &self.metrics);
        for (i, s) in self.slices.iter().enumerate() {
            require_text(errors, &format!("{field}.slices[{i}].group"), &s.group);
            check_metrics(errors, &format!("{field}.slices[{i}].metrics"), &s.metrics);
        }
    }
}

impl ModelCard {
    /// Checks the card against the evaluations recorded for its version.
    pub fn check(&self, evaluation_names: &[&str], errors: &mut Vec<FieldError>) {
        require_text(errors, "card.overview", &self.overview);
        require_text(
            errors,
            "card.intended_use.purpose",
            &self.intended_use.purpose,
        );
        require_list(errors, "card.intended_use.users", &self.intended_use.users);
        require_list(
            errors,
            "card.intended_use.out_of_scope",
            &self.intended_use.out_of_scope,
        );
        require_list(
            errors,
            "card.training_data.sources",
            &self.training_data.sources,
        );
        check_period(
            errors,
            "card.training_data.period",
            &self.training_data.period,
        );
        require_text(errors, "card.evaluation.summary", &self.evaluation.summary);
        if self.evaluation.evaluations.is_empty() {
            errors.push(FieldError::new(
                "card.evaluation.evaluations",
                "must reference at least one recorded evaluation result",
            ));
        }
        for (i, name) in self.evaluation.evaluations.iter().enumerate() {
            if !evaluation_names.contains(&name.as_str()) {
                errors.push(FieldError::new(
                    format!("card.evaluation.evaluations[{i}]"),
                    format!("{name:?} is not a recorded evaluation of this version"),
                ));
            }
        }
        for (i, g) in self.fairness.groups.iter().enumerate() {
            require_text(
                errors,
                &format!("card.fairness.groups[{i}].group"),
                &g.group,
            );
            // A group's metrics are its fairness analysis: checked as an evaluation slice's.
            check_metrics(
                errors,
                &format!("card.fairness.groups[{i}].metrics"),
                &g.metrics,
            );
        }
        require_list(errors, "card.limitations", &self.limitations);
        require_text(
            errors,
            "card.operational.compute",
            &self.operational.compute,
        );
        if !(self.operational.latency_ms_p99.is_finite() && self.operational.latency_ms_p99 > 0.0) {
            errors.push(FieldError::new(
                "card.operational.latency_ms_p99",
                "must be a positive number",
            ));
        }
        for (i, q) in self.operational.monitoring.quality.iter().enumerate() {
            require_text(
                errors,
                &format!("card.operational.monitoring.quality[{i}].metric"),
                &q.metric,
            );
            if !q.min.is_finite() {
                errors.push(FieldError::new(
                    format!("card.operational.monitoring.quality[{i}].min"),
                    "must be a finite number",
                ));
            }
        }
        for (i, d) in self.operational.monitoring.drift.iter().enumerate() {
            require_text(
                errors,
                &format!("card.operational.monitoring.drift[{i}].metric"),
                &d.metric,
            );
            if !d.max.is_finite() {
                errors.push(FieldError::new(
                    format!("card.operational.monitoring.drift[{i}].max"),
                    "must be a finite number",
                ));
            }
        }
        if let Some(p) = &self.operational.monitoring.retraining_pipeline {
            if !is_pipeline_ref(p) {
                errors.push(FieldError::new(
                    "card.operational.monitoring.retraining_pipeline",
                    "must be a SageMaker pipeline name or arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME",
                ));
            }
        }
    }
}

impl Registration {
    /// Parses a registration body. Shape errors name the first field at fault; semantic errors
    /// are all collected.
    pub fn parse(value: Value) -> Result<Self, GovError> {
        let r: Registration = from_value(value)?;
        let mut errors = Vec::new();
        require_text(&mut errors, "owner.team", &r.owner.team);
        require_text(&mut errors, "owner.contact", &r.owner.contact);
        require_text(&mut errors, "description", &r.description);
        require_text(&mut errors, "artifact.uri", &r.artifact.uri);
        require_text(
            &mut errors,
            "lineage.code.repository",
            &r.lineage.code.repository,
        );
        require_text(&mut errors, "lineage.code.commit", &r.lineage.code.commit);
        if r.lineage.training_data.is_empty() {
            errors.push(FieldError::new(
                "lineage.training_data",
                "must list the training data with its SHA-256",
            ));
        }
        for (i, t) in r.lineage.training_data.iter().enumerate() {
            require_text(
                &mut errors,
                &format!("lineage.training_data[{i}].uri"),
                &t.uri,
            );
            check_period(
                &mut errors,
                &format!("lineage.training_data[{i}].period"),
                &t.period,
            );
        }
        if r.evaluations.is_empty() {
            errors.push(FieldError::new(
                "evaluations",
                "a version needs at least one evaluation result",
            ));
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, e) in r.evaluations.iter().enumerate() {
            e.check(&format!("evaluations[{i}]"), &mut errors);
            if names.contains(&e.name.as_str()) {
                errors.push(FieldError::new(
                    format!("evaluations[{i}].name"),
                    "duplicate evaluation name",
                ));
            }
            names.push(&e.name);
        }
        r.card.check(&names, &mut errors);
        if errors.is_empty() {
            Ok(r)
        } else {
            Err(GovError::Validation(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_pipeline_ref;

    #[test]
    fn a_retraining_pipeline_is_a_sagemaker_pipeline_name_or_arn() {
        for ok in [
            "credit-risk-retrain",
            "p1",
            "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/credit-risk-retrain",
            "arn:aws-cn:sagemaker:cn-north-1:123456789012:pipeline/x",
        ] {
            assert!(is_pipeline_ref(ok), "{ok}");
        }
        for bad in [
            "",
            "-leading",
            "trailing-",
            "has space",
            "under_score",
            "arn:aws:s3:::bucket",
            "arn:aws:sagemaker:eu-west-1:1234:pipeline/x",
            "arn:aws:sagemaker:eu-west-1:123456789012:model-package/x",
            "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/",
        ] {
            assert!(!is_pipeline_ref(bad), "{bad:?}");
        }
    }
}
