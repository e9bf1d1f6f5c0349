//! The governance events Steward emits (EventBridge source `steward.governance`), typed.
//!
//! [`GovernanceEvent`] has one variant per detail-type, each holding a struct of exactly the
//! fields its detail carries, so a renamed or dropped field is a compile error where it is
//! built, and `events/schemas/<DetailType>.json` is checked against these types (see the tests
//! next to this module). The service builds every event it emits as one of these types.
//!
//! Invariants:
//! - The stored and published form stays [`DomainEvent`] `{detail_type, detail}`: the detail is
//!   the variant's struct as JSON, field for field, plus `schema_version: "1"` added last.
//!   Backends, the stream publisher and webhooks see the same JSON as before the types.
//! - Converting to a [`DomainEvent`] is fallible (`TryFrom`): a detail that cannot be
//!   serialised is an error, never a `null` written to the outbox.
//! - Variant names are the detail-types (past-tense PascalCase); [`GovernanceEvent::DETAIL_TYPES`]
//!   lists them all.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ids::VersionNumber;
use crate::records::{DomainEvent, SeriousIncidentCategory};
use crate::types::{
    Decision, Environment, ModelName, PrincipalId, ReviewStage, RiskTier, Role, Sha256, SignalKind,
    Stage,
};

#[cfg(test)]
mod tests;

/// The version of every detail's shape; a breaking change gets a new version and schema.
pub const SCHEMA_VERSION: &str = "1";

/// The source of every governance event (EventBridge `source`, and in webhook bodies).
pub const SOURCE: &str = "steward.governance";

/// Declares the enum, its detail-type names and the conversions from each detail struct.
macro_rules! governance_events {
    ($($(#[$doc:meta])* $name:ident),+ $(,)?) => {
        /// A governance event, tagged by its detail-type (`{"detail-type", "detail"}` in serde).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "detail-type", content = "detail")]
        pub enum GovernanceEvent {
            $($(#[$doc])* $name($name),)+
        }

        impl GovernanceEvent {
            /// Every detail-type, in declaration order.
            pub const DETAIL_TYPES: &'static [&'static str] = &[$(stringify!($name)),+];

            /// The EventBridge detail-type.
            pub fn detail_type(&self) -> &'static str {
                match self {
                    $(Self::$name(_) => stringify!($name),)+
                }
            }

            /// The detail as JSON, without `schema_version`.
            fn detail_fields(&self) -> Result<Value, serde_json::Error> {
                match self {
                    $(Self::$name(d) => serde_json::to_value(d),)+
                }
            }
        }

        $(impl From<$name> for GovernanceEvent {
            fn from(d: $name) -> Self {
                Self::$name(d)
            }
        })+
    };
}

governance_events! {
    /// A version was registered (the model created on first use).
    ModelVersionRegistered,
    /// A version's model card has a new revision.
    ModelCardRevised,
    /// An evaluation result was recorded for a version.
    EvaluationRecorded,
    /// A CI/CD or platform job reported a check for a version.
    CheckReported,
    /// A required check failed after policy approved a promotion: the approval was withdrawn.
    ApprovalWithdrawn,
    /// A promotion's review workflow started.
    PromotionRequested,
    /// One review of a promotion was opened (one event per review).
    ReviewRequested,
    /// A reviewer decided a review.
    ReviewDecided,
    /// A review rejected the promotion.
    PromotionRejected,
    /// Every review approved the promotion.
    PromotionApproved,
    /// A review passed its deadline undecided.
    ReviewTimedOut,
    /// A promotion ended because a review timed out.
    PromotionExpired,
    /// A version was deployed to an environment.
    ModelDeployed,
    /// Production went back to an earlier version (by hand or automatically).
    ModelRolledBack,
    /// A retirement was requested and waits for confirmation.
    RetirementRequested,
    /// A confirmer confirmed or refused a pending retirement.
    RetirementDecided,
    /// A version was retired.
    ModelRetired,
    /// An admin (or configuration) set a principal's roles.
    PrincipalRolesChanged,
    /// A different policy came into force.
    PolicyChanged,
    /// A drift signal breached the card's threshold: retrain.
    RetrainingRequested,
    /// A monitoring signal breached a threshold and opened an incident.
    IncidentOpened,
    /// A production version's periodic review fell due and was opened.
    PeriodicReviewDue,
    /// A re-certification of a production version was rejected (an incident opened).
    PeriodicReviewRejected,
    /// A re-certification of a production version expired undecided (an incident opened).
    PeriodicReviewExpired,
    /// A SageMaker model package has no Steward registration.
    ShadowModelDetected,
    /// A SageMaker model package was approved without a Steward production approval.
    ModelPackageApprovalViolation,
    /// A compliance reviewer classified an incident as serious (EU AI Act Art. 73): the
    /// reporting clock started.
    SeriousIncidentClassified,
    /// A serious incident's report falls due within two days (or is overdue) and none is
    /// recorded; emitted once per incident.
    SeriousIncidentReportDue,
}

impl TryFrom<GovernanceEvent> for DomainEvent {
    type Error = serde_json::Error;

    fn try_from(event: GovernanceEvent) -> Result<Self, Self::Error> {
        let mut detail = event.detail_fields()?;
        match &mut detail {
            Value::Object(m) => {
                m.insert("schema_version".into(), json!(SCHEMA_VERSION));
            }
            // Every detail is a struct; anything else is a bug in this module.
            _ => {
                return Err(serde::ser::Error::custom(
                    "an event detail must be an object",
                ))
            }
        }
        Ok(DomainEvent {
            detail_type: event.detail_type().to_owned(),
            detail,
        })
    }
}

impl TryFrom<&DomainEvent> for GovernanceEvent {
    type Error = serde_json::Error;

    /// Reads a stored event back (its `schema_version` is ignored).
    fn try_from(event: &DomainEvent) -> Result<Self, Self::Error> {
        serde_json::from_value(json!({"detail-type": event.detail_type, "detail": event.detail}))
    }
}

// ----------------------------------------------------------------- versions and evidence

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersionRegistered {
    pub name: ModelName,
    pub version: VersionNumber,
    pub risk_tier: RiskTier,
    pub registered_by: PrincipalId,
    pub artifact_sha256: Sha256,
    pub manifest_sha256: Sha256,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCardRevised {
    pub name: ModelName,
    pub version: VersionNumber,
    pub card_revision: u32,
    pub card_sha256: Sha256,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecorded {
    pub name: ModelName,
    pub version: VersionNumber,
    /// The same details the audit event `evaluation.recorded` carries.
    pub details: EvaluationDetails,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReported {
    pub name: ModelName,
    pub version: VersionNumber,
    pub check: crate::checks::CheckName,
    pub status: crate::checks::CheckStatus,
    pub environment: Option<Environment>,
    pub reported_by: PrincipalId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalWithdrawn {
    pub name: ModelName,
    pub version: VersionNumber,
    pub environment: Environment,
    pub promotion_id: String,
    /// The required check whose failure withdrew it.
    pub check: crate::checks::CheckName,
}

/// What an evaluation record adds, as audited and emitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationDetails {
    pub evaluation: String,
    pub dataset_sha256: Sha256,
    pub environment: Option<Environment>,
    pub metrics: BTreeMap<String, f64>,
    /// SHA-256 of the canonical evaluation report kept as evidence.
    pub report_sha256: Sha256,
}

// ----------------------------------------------------------------- promotions and reviews

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionRequested {
    pub name: ModelName,
    pub version: VersionNumber,
    pub target: Environment,
    pub promotion_id: String,
    pub reviews: Vec<ReviewStage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewRequested {
    pub review_id: String,
    pub promotion_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub target: Environment,
    pub stage: ReviewStage,
    pub deadline: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewDecided {
    pub review_id: String,
    pub promotion_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub stage: ReviewStage,
    pub decision: Decision,
    pub decided_by: PrincipalId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionRejected {
    pub promotion_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub target: Environment,
    /// The stage whose review rejected it.
    pub stage: ReviewStage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionApproved {
    pub promotion_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub target: Environment,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewTimedOut {
    pub review_id: String,
    pub promotion_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub stage: ReviewStage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionExpired {
    pub promotion_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub target: Environment,
}

// ----------------------------------------------------------------- deployment and retirement

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDeployed {
    pub name: ModelName,
    pub version: VersionNumber,
    pub environment: Environment,
    /// The version that served production before (production deployments only).
    pub previous_version: Option<VersionNumber>,
    pub deployed_by: PrincipalId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRolledBack {
    pub name: ModelName,
    pub from_version: VersionNumber,
    pub to_version: VersionNumber,
    pub reason: String,
    pub automatic: bool,
    /// The incident that triggered an automatic rollback; absent for a manual one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetirementRequested {
    pub retirement_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub reason: String,
    pub replacement: Option<VersionNumber>,
    pub requested_by: PrincipalId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetirementDecided {
    pub retirement_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    /// `approve` confirms the request (the workflow archives next); `reject` refuses it.
    pub decision: Decision,
    pub decided_by: PrincipalId,
    /// Why it was refused; absent for a confirmation.
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRetired {
    pub name: ModelName,
    pub version: VersionNumber,
    pub reason: String,
    pub replacement: Option<VersionNumber>,
}

// ----------------------------------------------------------------- administration

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrincipalRolesChanged {
    pub principal: PrincipalId,
    pub roles: Vec<Role>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyChanged {
    /// Hex SHA-256 of the canonical policy.
    pub policy_sha256: String,
}

// ----------------------------------------------------------------- monitoring

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainingRequested {
    pub name: ModelName,
    pub version: VersionNumber,
    pub incident_id: String,
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    /// The version's lineage training job, if recorded.
    pub training_job: Option<String>,
    /// The card's retraining pipeline, if it names one.
    pub retraining_pipeline: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentOpened {
    pub incident_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub kind: SignalKind,
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriousIncidentClassified {
    pub incident_id: String,
    pub name: ModelName,
    /// The version involved; `None` when no Steward version matches (a shadow model).
    pub version: Option<VersionNumber>,
    pub category: SeriousIncidentCategory,
    pub classified_by: PrincipalId,
    pub classified_at: DateTime<Utc>,
    pub report_due: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriousIncidentReportDue {
    pub incident_id: String,
    pub name: ModelName,
    pub version: Option<VersionNumber>,
    pub category: SeriousIncidentCategory,
    pub report_due: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodicReviewDue {
    pub name: ModelName,
    pub version: VersionNumber,
    pub risk_tier: RiskTier,
    pub promotion_id: String,
    pub due_at: DateTime<Utc>,
    pub last_approved_at: DateTime<Utc>,
    pub reviews: Vec<ReviewStage>,
    pub deadline: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodicReviewRejected {
    pub incident_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub promotion_id: String,
    pub stage: ReviewStage,
    pub rejected_by: PrincipalId,
    /// The reviewer's comment.
    pub reason: Option<String>,
    /// Whether the schedule opened the review (or a person requested the re-certification).
    pub periodic: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodicReviewExpired {
    pub incident_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub promotion_id: String,
    /// The stage whose review passed its deadline undecided.
    pub stage: ReviewStage,
    /// Whether the schedule opened the review (or a person requested the re-certification).
    pub periodic: bool,
}

// ----------------------------------------------------------------- SageMaker integration

/// A SageMaker model package as a finding reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPackage {
    pub model_package_arn: String,
    pub model_package_group: String,
    pub model_package_version: Option<u32>,
    pub approval_status: String,
    pub model_data_urls: Vec<String>,
    pub generated_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowModelDetected {
    /// A SageMaker model package without a registration (the model package sync).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub package: Option<ModelPackage>,
    /// An endpoint serving something that is not governed (the serving inventory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<ServingFinding>,
    pub incident_id: String,
    /// Whether a Steward model of the group's name exists (none of its versions matched).
    pub registered_model: bool,
    /// The group name as a Steward model name; `None` when it is not a valid one.
    pub name: Option<ModelName>,
}

/// What a serving platform reported that Steward does not govern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingFinding {
    pub platform: String,
    pub environment: Environment,
    pub endpoint: String,
    pub artifact_uri: String,
    pub artifact_sha256: Option<crate::types::Sha256>,
    /// `unapproved`, `unregistered` or `stale`.
    pub outcome: String,
    pub reason: String,
    /// The registered version the artifact matched, if any (`name` names its model).
    pub version: Option<VersionNumber>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPackageApprovalViolation {
    #[serde(flatten)]
    pub package: ModelPackage,
    pub incident_id: String,
    pub reason: String,
    /// Whether Steward sets the package back to `PendingManualApproval`.
    pub revert: bool,
    /// The matched version's stage; `None` for a shadow model.
    pub stage: Option<Stage>,
    pub name: Option<ModelName>,
    pub version: Option<VersionNumber>,
}
