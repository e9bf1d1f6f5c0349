//! The pack's document (`document.json`): what Annex IV of the EU AI Act asks of technical
//! documentation, filled from the registry, section by section.
//!
//! Invariants:
//! - Every time is in the audit log's one format (`format_time`), so a fact and the audit event
//!   it cites compare as strings.
//! - A fact "dated and signed by the responsible persons" is a [`Signed`]: who, when (the
//!   time of the audit event, the log's signed time), and the `seq` of the audit event that
//!   recorded it (`None` only when the log holds no such event, which the document then says).
//!   The verifier checks each cited event against the fact: who, when, and what it records.
//! - `lifecycle` lists every audit event of the version, in log order; the pack's `events/`
//!   holds exactly those events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checks::CheckResult;
use crate::ids::VersionNumber;
use crate::manifest::{
    Artifact, CodeRef, Dataset, DriftThreshold, Fairness, Owner, Period, QualityThreshold, Slice,
    TrainingData,
};
use crate::records::VersionRef;
use crate::types::{Environment, ModelName, ReviewStage, RiskTier, Stage};

/// `document.json`'s `format`.
pub const DOCUMENT_FORMAT: &str = "steward-evidence-document/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub format: String,
    /// The template `document.html` was rendered with: a verifier that knows it renders the
    /// JSON again and compares.
    pub renderer: String,
    pub generated_at: String,
    pub generated_by: String,
    pub model: ModelName,
    pub version: VersionNumber,
    /// Annex IV 1: general description.
    pub general: General,
    /// Annex IV 2(a)-(c): how the system was developed.
    pub development: Development,
    /// Annex IV 2(d): the data.
    pub data: DataSection,
    /// Annex IV 2(g), 4: validation and testing, accuracy and fairness.
    pub evaluation: EvaluationSection,
    /// Annex IV 2(e), Art. 14: human oversight.
    pub oversight: Oversight,
    /// Annex IV 5, Art. 9: the risk tier and the policy applied to it.
    pub risk: RiskSection,
    /// Annex IV 9, Art. 72: the post-market monitoring plan and what it found.
    pub monitoring: MonitoringSection,
    /// Annex IV 6, Art. 12: every audited change of the version.
    pub lifecycle: Vec<LifecycleEntry>,
    pub retention: Retention,
    /// The signed checkpoint every cited event is proven against.
    pub checkpoint: CheckpointRef,
}

/// Who did something, when, and the audit event that recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub by: String,
    pub at: String,
    pub event: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct General {
    pub description: String,
    pub overview: String,
    pub purpose: String,
    pub intended_users: Vec<String>,
    pub out_of_scope: Vec<String>,
    pub owner: Owner,
    pub risk_tier: RiskTier,
    pub stage: Stage,
    pub serving_production: bool,
    pub registration: Signed,
    pub artifact: Artifact,
    /// The model's earlier versions.
    pub predecessors: Vec<Predecessor>,
    pub dependencies: Vec<VersionRef>,
    pub dependents: Vec<VersionRef>,
    /// How the system is run and reached (Annex IV 1(b)-(d)).
    pub interfaces: Interfaces,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predecessor {
    pub version: VersionNumber,
    pub stage: Stage,
    pub registered_at: String,
    pub registered_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interfaces {
    pub compute: String,
    pub latency_ms_p99: f64,
    /// Where the registry's MLflow API names the model, when it was created through it.
    pub mlflow_source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Development {
    pub code: CodeRef,
    pub training_data: Vec<TrainingData>,
    pub hyperparameters: BTreeMap<String, Value>,
    pub training_job: Option<String>,
    pub parent_version: Option<u32>,
    /// Design choices and their limits, from the model card.
    pub limitations: Vec<String>,
    pub card_revision: u32,
    /// SHA-256 of the current card revision's canonical JSON.
    pub card_sha256: String,
    pub card_revisions: Vec<CardRevisionFact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardRevisionFact {
    pub revision: u32,
    pub card_sha256: String,
    pub author: Signed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub sources: Vec<String>,
    pub period: Period,
    pub datasets: Vec<TrainingData>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSection {
    pub summary: String,
    pub evaluations: Vec<EvaluationFact>,
    /// The card's monitoring thresholds, with the latest result each was held to.
    pub thresholds: Vec<ThresholdFact>,
    pub fairness: Fairness,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationFact {
    pub name: String,
    pub dataset: Dataset,
    pub environment: Option<Environment>,
    pub metrics: BTreeMap<String, f64>,
    pub slices: Vec<Slice>,
    pub recorded: Signed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdFact {
    pub metric: String,
    /// `min` (quality) or `max` (drift).
    pub bound: String,
    pub limit: f64,
    /// The metric's value in the latest evaluation that measured it, and that evaluation.
    pub result: Option<f64>,
    pub evaluation: Option<String>,
    pub met: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oversight {
    pub promotions: Vec<PromotionFact>,
    /// What separation of duties meant here, as checked facts (who registered, who decided).
    pub separation_of_duties: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionFact {
    pub id: String,
    pub target: Environment,
    pub status: String,
    pub requested: Signed,
    pub reviews: Vec<ReviewFact>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewFact {
    pub id: String,
    pub stage: ReviewStage,
    pub status: String,
    pub deadline: String,
    pub decision: Option<String>,
    pub comment: Option<String>,
    pub conditions: Vec<String>,
    /// Whether policy decided it rather than a person.
    pub automatic: bool,
    pub decided: Option<Signed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskSection {
    pub tier: RiskTier,
    /// SHA-256 of the canonical policy in force when the pack was produced.
    pub policy_digest: String,
    pub production_reviews: Vec<ReviewStage>,
    pub automatic_reviews: Vec<ReviewStage>,
    pub required_checks_staging: Vec<String>,
    pub required_checks_production: Vec<String>,
    pub periodic_review_days: u64,
    pub auto_rollback: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSection {
    pub quality: Vec<QualityThreshold>,
    pub drift: Vec<DriftThreshold>,
    pub retraining_pipeline: Option<String>,
    pub rollback_procedure: String,
    pub rollback_last_tested: Option<String>,
    pub next_periodic_review: Option<String>,
    pub deployments: Vec<DeploymentFact>,
    pub incidents: Vec<IncidentFact>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFact {
    pub environment: Environment,
    pub deployed: Signed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentFact {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub summary: String,
    pub opened_at: String,
    /// Art. 73: the category, when the report is due and the report's reference once filed.
    pub serious_category: Option<String>,
    pub report_due: Option<String>,
    pub report_reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleEntry {
    pub seq: u64,
    pub time: String,
    pub actor: String,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub years: u32,
    pub retain_until: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRef {
    pub size: u64,
    /// Hex.
    pub root: String,
}

impl Document {
    /// Every fact that cites an audit event, with what kind of fact it is.
    pub fn citations(&self) -> Vec<(Citation<'_>, &Signed)> {
        let mut out = vec![(Citation::Registration, &self.general.registration)];
        for c in &self.development.card_revisions {
            out.push((Citation::CardRevision(c), &c.author));
        }
        for e in &self.evaluation.evaluations {
            out.push((Citation::Evaluation(e), &e.recorded));
        }
        for p in &self.oversight.promotions {
            out.push((Citation::PromotionRequested(p), &p.requested));
            for r in &p.reviews {
                if let Some(d) = &r.decided {
                    out.push((Citation::ReviewDecided(r), d));
                }
            }
        }
        for d in &self.monitoring.deployments {
            out.push((Citation::Deployment(d), &d.deployed));
        }
        out
    }
}

/// A fact that cites an audit event.
#[derive(Debug, Clone, Copy)]
pub enum Citation<'a> {
    Registration,
    CardRevision(&'a CardRevisionFact),
    Evaluation(&'a EvaluationFact),
    PromotionRequested(&'a PromotionFact),
    ReviewDecided(&'a ReviewFact),
    Deployment(&'a DeploymentFact),
}

impl Citation<'_> {
    /// How the fact is named in a verification failure.
    pub fn describe(&self) -> String {
        match self {
            Citation::Registration => "the registration".into(),
            Citation::CardRevision(c) => format!("card revision {}", c.revision),
            Citation::Evaluation(e) => format!("evaluation {:?}", e.name),
            Citation::PromotionRequested(p) => format!("promotion {}", p.id),
            Citation::ReviewDecided(r) => format!("review {}", r.id),
            Citation::Deployment(d) => format!("the deployment to {}", d.environment),
        }
    }
}
