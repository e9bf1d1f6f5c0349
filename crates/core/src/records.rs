//! The registry's records: what the stores persist and the API returns.
//!
//! Invariants: every mutable record carries a `revision` that grows by one with each committed
//! change, and a store only accepts a change whose expected revision matches (optimistic
//! concurrency). Records are only ever built by the governance service from parsed input.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::VersionNumber;
use crate::manifest::{Artifact, EvaluationInput, Lineage, ModelCard, Owner};
use crate::types::{
    Decision, Environment, ModelName, PrincipalId, ReviewStage, RiskTier, Role, Sha256, SignalKind,
    Stage,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub name: ModelName,
    pub owner: Owner,
    pub risk_tier: RiskTier,
    pub description: String,
    pub created_by: PrincipalId,
    pub created_at: DateTime<Utc>,
    /// The highest version number assigned so far.
    pub latest_version: VersionNumber,
    /// The version serving production now, if any.
    pub production_version: Option<VersionNumber>,
    /// Every version that served production, in the order it started serving (rollbacks
    /// included): rollback finds its target here without reading the history records.
    #[serde(default)]
    pub production_history: Vec<VersionNumber>,
    /// Versions retired so far (rollback never returns to one).
    #[serde(default)]
    pub retired_versions: Vec<VersionNumber>,
    /// Versions production was rolled back from: rollback never returns to one, so repeated
    /// rollbacks walk back (v3 → v2 → v1) instead of flip-flopping. Deploying a version to
    /// production again (through a new promotion) takes it off this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolled_back_from: Vec<VersionNumber>,
    pub revision: u64,
}

/// An evaluation result as recorded, with who recorded it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    #[serde(flatten)]
    pub result: EvaluationInput,
    pub recorded_by: PrincipalId,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub environment: Environment,
    pub promotion_id: String,
    pub approved_at: DateTime<Utc>,
    /// Whether policy decided one of its reviews: such an approval is withdrawn when a
    /// required check fails before the version is deployed to `environment`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub automatic: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub environment: Environment,
    pub deployed_by: PrincipalId,
    pub deployed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retirement {
    pub reason: String,
    pub replacement: Option<VersionNumber>,
    pub retired_by: PrincipalId,
    pub retired_at: DateTime<Utc>,
    /// The retirement request this completes, when it went through the retirement workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Who confirmed it, when it went through the retirement workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<PrincipalId>,
}

/// A retirement waiting for its workflow (on AWS): requested and checked, to be confirmed by
/// a compliance reviewer or release manager other than the requester, then archived.
///
/// Invariant: at most one per version; it is cleared in the same commit that retires the
/// version, records a refusal, or records that the workflow timed out or refused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRetirement {
    /// `{name}.{version}.rt-<16 hex>`: also the workflow's execution name.
    pub id: String,
    pub reason: String,
    pub replacement: Option<VersionNumber>,
    pub requested_by: PrincipalId,
    pub requested_at: DateTime<Utc>,
    /// Set when a confirmer approved it; the workflow's archive step then retires the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<PrincipalId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// Where a pending retirement request stands: waiting for a confirmer, or confirmed and
/// waiting for the workflow's archive step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetirementStatus {
    AwaitingConfirmation,
    Confirmed,
}

impl RetirementStatus {
    pub const ALL: &'static [RetirementStatus] = &[
        RetirementStatus::AwaitingConfirmation,
        RetirementStatus::Confirmed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetirementStatus::AwaitingConfirmation => "awaiting_confirmation",
            RetirementStatus::Confirmed => "confirmed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|x| x.as_str() == s)
    }
}

impl PendingRetirement {
    pub fn status(&self) -> RetirementStatus {
        match self.confirmed_by {
            Some(_) => RetirementStatus::Confirmed,
            None => RetirementStatus::AwaitingConfirmation,
        }
    }

    /// The key lists of pending retirements are ordered and paged by: the request's time
    /// (fixed-width RFC 3339, so it sorts as text), then its id. Oldest request first.
    pub fn sort_key(&self) -> String {
        format!(
            "{}#{}",
            self.requested_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            self.id
        )
    }
}

/// A version of a model as another version names it, a dependency or a dependent: the
/// manifest's `{"name", "version"}` shape, with a version number the registry assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionRef {
    pub name: ModelName,
    pub version: VersionNumber,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: ModelName,
    pub version: VersionNumber,
    pub risk_tier: RiskTier,
    pub stage: Stage,
    pub artifact: Artifact,
    pub lineage: Lineage,
    pub evaluations: Vec<Evaluation>,
    pub card: ModelCard,
    pub card_revision: u32,
    /// The manifest's dependencies, each checked to exist when the version was registered.
    #[serde(default)]
    pub dependencies: Vec<VersionRef>,
    /// Versions of other models that declared this one as a dependency, kept here so that
    /// retirement checks them without a query.
    #[serde(default)]
    pub dependents: Vec<VersionRef>,
    pub registered_by: PrincipalId,
    pub registered_at: DateTime<Utc>,
    /// SHA-256 of the canonical registration manifest, the evidence the audit event names.
    pub manifest_sha256: Sha256,
    pub approvals: Vec<Approval>,
    pub deployments: Vec<DeploymentRecord>,
    /// The promotion under review, if any (at most one at a time).
    pub open_promotion: Option<String>,
    pub retirement: Option<Retirement>,
    /// A retirement waiting for its workflow's confirmation (AWS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_retirement: Option<PendingRetirement>,
    /// What the MLflow API said of this version, when it was created or edited through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow: Option<crate::mlflow::VersionMeta>,
    /// The latest report of each check (per name and environment) CI/CD sent for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::checks::CheckResult>,
    /// Serious incidents (Art. 73) classified and open on this version: while any is, the
    /// version may not be retired, rolled back from, re-promoted or have its card revised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serious_incidents: Vec<String>,
    pub revision: u64,
}

impl ModelVersion {
    pub fn approved_for(&self, env: Environment) -> bool {
        self.approvals.iter().any(|a| a.environment == env)
    }
    pub fn deployed_to(&self, env: Environment) -> Option<&DeploymentRecord> {
        self.deployments.iter().rev().find(|d| d.environment == env)
    }
    pub fn evaluation_names(&self) -> Vec<&str> {
        self.evaluations
            .iter()
            .map(|e| e.result.name.as_str())
            .collect()
    }
}

/// One revision of a version's model card; every edit is a new revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardRevision {
    pub name: ModelName,
    pub version: VersionNumber,
    pub card_revision: u32,
    pub card: ModelCard,
    pub card_sha256: Sha256,
    pub author: PrincipalId,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionStatus {
    InReview,
    Approved,
    Rejected,
    Expired,
}

impl PromotionStatus {
    /// The wire name (`in_review`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionStatus::InReview => "in_review",
            PromotionStatus::Approved => "approved",
            PromotionStatus::Rejected => "rejected",
            PromotionStatus::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
    Cancelled,
}

impl ReviewStatus {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_owned())).ok()
    }

    /// The wire name (`pending`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Rejected => "rejected",
            ReviewStatus::Expired => "expired",
            ReviewStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// `<promotion id>-<stage>`: a review is found from its promotion in one read.
    pub id: String,
    pub promotion_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub target: Environment,
    pub stage: ReviewStage,
    pub status: ReviewStatus,
    pub deadline: DateTime<Utc>,
    pub decided_by: Option<PrincipalId>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision: Option<Decision>,
    pub comment: Option<String>,
    #[serde(default)]
    pub conditions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    pub id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub target: Environment,
    pub status: PromotionStatus,
    pub reviews: Vec<Review>,
    pub requested_by: PrincipalId,
    pub requested_at: DateTime<Utc>,
    /// The version's registrant, kept here so separation of duties is checked from one record.
    pub registered_by: PrincipalId,
    pub risk_tier: RiskTier,
    pub closed_at: Option<DateTime<Utc>>,
    pub revision: u64,
}

/// A change of which version serves production, for point-in-time queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductionChange {
    pub name: ModelName,
    pub at: DateTime<Utc>,
    /// The version serving from `at` on; `None` when production was emptied (retirement).
    pub version: Option<VersionNumber>,
    pub cause: String,
}

/// What opened an incident. The first two are monitoring signals (and serialise as
/// [`SignalKind`] does, so incidents stored before the others existed still read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    Drift,
    Quality,
    /// A model package in SageMaker with no Steward registration.
    ShadowModel,
    /// A model package approved in SageMaker without a Steward production approval.
    ApprovalViolation,
    /// A re-certification (periodic review) of a production version was rejected.
    PeriodicReviewRejected,
    /// A re-certification of a production version expired undecided.
    PeriodicReviewExpired,
}

impl From<SignalKind> for IncidentKind {
    fn from(k: SignalKind) -> Self {
        match k {
            SignalKind::Drift => IncidentKind::Drift,
            SignalKind::Quality => IncidentKind::Quality,
        }
    }
}

/// A valid model name for an external name (e.g. a SageMaker model package group, which
/// allows capitals): lower-cased, other characters made `-`, cut to 63 characters.
pub fn incident_model_name(external: &str) -> ModelName {
    let mut s: String = external
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s = s.trim_start_matches('-').chars().take(63).collect();
    ModelName::parse(&s)
        .or_else(|_| ModelName::parse("unnamed"))
        .expect("a valid literal model name")
}

/// What a serious incident (EU AI Act Art. 73) involved; it decides the reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriousIncidentCategory {
    /// The death of a person (10 days).
    Death,
    /// A widespread infringement of fundamental rights (2 days).
    Infringement,
    /// A serious and irreversible disruption of critical infrastructure (2 days).
    CriticalInfrastructure,
    /// Any other serious incident (15 days).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    /// The model concerned. For a model package with no Steward registration: its package
    /// group name, made a valid model name ([`incident_model_name`]).
    pub name: ModelName,
    /// The version concerned; absent when no Steward version matches (a shadow model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<VersionNumber>,
    pub kind: IncidentKind,
    /// Monitoring signals only: the metric, its value and the card's threshold.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// What else it concerns: a model package ARN, a promotion id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// One line on what happened (findings and reviews; signals say it with their fields).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    pub status: IncidentStatus,
    pub opened_at: DateTime<Utc>,
    pub opened_by: PrincipalId,
    /// What Steward did about it: `retraining_requested`, `alerted`, `rolled_back_to:N`.
    pub actions: Vec<String>,
    /// Serious-incident reporting (EU AI Act Art. 73), once a compliance reviewer classified it.
    #[serde(default, flatten)]
    pub serious: SeriousReporting,
    /// How it was closed, once it is `resolved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<IncidentResolution>,
    /// Grows by one with each change after the incident was opened (classification, report,
    /// reminder, closing); 0 (left out) for an incident never changed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Incident {
    /// The change that resolves this incident: `resolution`, by whom and when, its revision
    /// moved on (commit it with `Expect::Revision` of this one's).
    pub fn closed(&self, resolution: String, by: PrincipalId, at: DateTime<Utc>) -> Incident {
        let mut changed = self.clone();
        changed.status = IncidentStatus::Resolved;
        changed.resolution = Some(IncidentResolution {
            resolution,
            closed_by: by,
            closed_at: at,
        });
        changed.revision = self.revision + 1;
        changed
    }

    /// Whether the incident is classified serious and still open: the version involved may
    /// then not be altered.
    pub fn under_investigation(&self) -> bool {
        self.status == IncidentStatus::Open && self.serious.classification.is_some()
    }
}

/// The severity a classification gives an incident; Art. 73 knows one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentSeverity {
    Serious,
}

/// A compliance reviewer's classification of an incident as serious.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub severity: IncidentSeverity,
    pub category: SeriousIncidentCategory,
    pub classified_by: PrincipalId,
    pub classified_at: DateTime<Utc>,
    /// `classified_at` plus the category's period (policy `[serious_incidents]`).
    pub report_due: DateTime<Utc>,
}

/// That the report to the market surveillance authority was submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentReport {
    /// The authority's (or the submission's) reference.
    pub reference: String,
    pub submitted_at: DateTime<Utc>,
    pub recorded_by: PrincipalId,
    pub recorded_at: DateTime<Utc>,
}

/// How an incident was closed: what was found or done, by whom, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentResolution {
    pub resolution: String,
    pub closed_by: PrincipalId,
    pub closed_at: DateTime<Utc>,
}

/// An incident's serious-incident reporting state; all absent until it is classified.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriousReporting {
    /// When the report is due (RFC 3339): the classification's `report_due`, at the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_due: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<IncidentReport>,
    /// When the `SeriousIncidentReportDue` reminder was sent (it is sent once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_sent_at: Option<DateTime<Utc>>,
}

impl SeriousReporting {
    /// Whether a reminder is still to be sent once the report falls due soon: classified,
    /// no report recorded, no reminder sent.
    pub fn awaiting_reminder(&self) -> bool {
        self.classification.is_some() && self.report.is_none() && self.reminder_sent_at.is_none()
    }
}

/// A principal's roles as the registry knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrincipalRecord {
    pub id: PrincipalId,
    pub roles: Vec<Role>,
    /// Where the roles came from: `file`/`bootstrap` (seeded) or `api` (set by an admin).
    pub managed_by: String,
    pub updated_at: DateTime<Utc>,
    /// When this principal last set another principal's roles: it decides no review of a
    /// promotion requested before then (separation of duties, rule 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_administered_at: Option<DateTime<Utc>>,
    pub revision: u64,
}

/// A governance event for the outbox (published to EventBridge on AWS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// Past-tense PascalCase, e.g. `ModelVersionRegistered`.
    pub detail_type: String,
    pub detail: Value,
}

/// A stored response for an idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Scoped key: `<principal>/<operation>/<client key>`.
    pub key: String,
    pub request_sha256: Sha256,
    pub status: u16,
    pub response: Value,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::vn;

    #[test]
    fn an_external_name_becomes_a_valid_model_name() {
        assert_eq!(
            incident_model_name("credit-risk").to_string(),
            "credit-risk"
        );
        assert_eq!(
            incident_model_name("CreditRisk_V2").to_string(),
            "creditrisk-v2"
        );
        assert_eq!(incident_model_name("-x").to_string(), "x");
        assert_eq!(
            incident_model_name(&"A".repeat(100)).to_string(),
            "a".repeat(63)
        );
        assert_eq!(incident_model_name("").to_string(), "unnamed");
    }

    #[test]
    fn incidents_stored_before_other_kinds_existed_still_read() {
        let stored = serde_json::json!({
            "id": "inc-1", "name": "credit-risk", "version": 3, "kind": "drift", "metric": "psi",
            "value": 0.31, "threshold": 0.2, "status": "open", "opened_at": "2026-11-27T10:00:00Z",
            "opened_by": "system:monitor", "actions": ["retraining_requested"]
        });
        let i: Incident = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(
            (i.kind, i.version, i.value, i.threshold),
            (IncidentKind::Drift, Some(vn(3)), Some(0.31), Some(0.2))
        );
        // And a signal's incident is written in the same shape as before.
        assert_eq!(serde_json::to_value(&i).unwrap(), stored);
    }
}
