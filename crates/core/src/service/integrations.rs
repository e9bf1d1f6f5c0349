//! Integrations with external model registries and pipelines (SageMaker): what Steward
//! concludes from a model package it did not register, or one approved behind its back, and
//! the bookkeeping of pipeline callbacks. The adapters (`steward-sagemaker`) parse AWS's shapes
//! into the plain values here and carry out what core decides.
//!
//! Invariants:
//! - Findings are deduplicated by idempotency records (the store's create-only write of
//!   [`Commit::idempotency`]): a shadow model once per model package ARN; an approval violation
//!   once per (package ARN, approval status, `LastModifiedTime`). A redelivered or repeated
//!   event records nothing new.
//! - A finding opens an incident (`shadow_model` or `approval_violation`, listed by
//!   `GET /v1/incidents`), audited and emitted in the same commit: audit actions
//!   `model_package.shadow_detected` and `model_package.approval_violation` with the incident
//!   id, events `ShadowModelDetected` and `ModelPackageApprovalViolation`. The incident names
//!   the matched Steward model, or else the package group made a valid model name.
//! - Mapping a package to a Steward version: the package group name is the Steward model name;
//!   the version is the package's `steward:version` customer metadata property when set, else
//!   the version whose lineage training job is the package's `MetadataProperties.GeneratedBy`
//!   (the pipeline execution that registered it through the callback), else the version whose
//!   artifact URI is one of the package's `ModelDataUrl`s.
//! - A package whose approval status is `Approved` is a violation unless its Steward version is
//!   approved for production and not retired.

use crate::ports::Caller;
use crate::types::AuthMethod;
use serde::Serialize;
use serde_json::{json, Value};

use crate::audit::canonical_json;
use crate::error::GovError;
use crate::events::{ModelPackage, ModelPackageApprovalViolation, ShadowModelDetected};
use crate::ids::VersionNumber;
use crate::ports::{Commit, Key, Put};
use crate::records::{
    incident_model_name, IdempotencyRecord, Incident, IncidentKind, IncidentStatus, ModelVersion,
};
use crate::types::{Environment, ModelName, PrincipalId, Sha256, Stage};
use crate::Governance;

/// The identity under which model package findings are recorded.
pub const SYNC_PRINCIPAL: &str = "sagemaker-sync";

/// A model package as the registry reported it (the fields Steward relies on).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelPackageState {
    pub arn: String,
    pub group: String,
    pub package_version: Option<u32>,
    /// `Approved`, `PendingManualApproval` or `Rejected`.
    pub approval_status: String,
    /// The containers' `ModelDataUrl`s.
    pub model_data_urls: Vec<String>,
    /// `MetadataProperties.GeneratedBy`: the pipeline execution that created it, if any.
    pub generated_by: Option<String>,
    /// `CustomerMetadataProperties["steward:version"]`.
    pub steward_version: Option<String>,
    /// `LastModifiedTime` as sent (a stable field of one change).
    pub last_modified: String,
}

/// What happened to one finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Finding {
    /// Nothing wrong.
    None,
    /// Recorded now under this incident id.
    Recorded { incident_id: String },
    /// Already recorded by an earlier event.
    Duplicate { incident_id: String },
}

impl Finding {
    pub fn found(&self) -> bool {
        !matches!(self, Finding::None)
    }
    pub fn recorded(&self) -> bool {
        matches!(self, Finding::Recorded { .. })
    }
}

/// What Steward concluded about a model package.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageOutcome {
    /// The Steward version the package maps to, if any.
    pub name: Option<ModelName>,
    pub version: Option<VersionNumber>,
    pub shadow_model: Finding,
    pub approval_violation: Finding,
}

/// The `sha256` hex of `s`, for idempotency keys and deterministic incident ids.
fn digest(s: &str) -> String {
    Sha256::digest(s.as_bytes()).to_hex()
}

fn incident_id(key: &str) -> String {
    format!("inc-{}", &digest(key)[..16])
}

/// The version a package maps to, among `versions` of the model named by its group.
pub fn match_version<'a>(
    pkg: &ModelPackageState,
    versions: &'a [ModelVersion],
) -> Option<&'a ModelVersion> {
    if let Some(n) = pkg
        .steward_version
        .as_deref()
        .and_then(|v| v.trim().parse::<u32>().ok())
    {
        // Compared as an integer, so that a property of 0 matches no version (and does not
        // fall through to the other rules), as any number the model has no version for.
        return versions.iter().find(|v| v.version.get() == n);
    }
    if let Some(job) = pkg.generated_by.as_deref().filter(|j| !j.is_empty()) {
        if let Some(v) = versions
            .iter()
            .rev()
            .find(|v| v.lineage.training_job.as_deref() == Some(job))
        {
            return Some(v);
        }
    }
    versions
        .iter()
        .rev()
        .find(|v| pkg.model_data_urls.contains(&v.artifact.uri))
}

impl Governance {
    /// Checks a model package reported by SageMaker against the registry and records a shadow
    /// model (no Steward registration) and an approval violation (`Approved` in SageMaker without
    /// a Steward production approval). `revert` says whether the caller will set the package
    /// back to `PendingManualApproval` (recorded with the violation).
    ///
    /// Requests: one model read, one versions query when the model exists, one batched read
    /// of the idempotency records, and one commit per new finding.
    pub async fn model_package_changed(
        &self,
        pkg: &ModelPackageState,
        revert: bool,
    ) -> Result<PackageOutcome, GovError> {
        if pkg.arn.is_empty() {
            return Err(GovError::field("ModelPackageArn", "must not be empty"));
        }
        let actor = Caller::system(SYNC_PRINCIPAL);
        let name = ModelName::parse(&pkg.group).ok();
        let versions = match &name {
            Some(n) => match self.registry().model(n).await? {
                Some(_) => self.registry().versions(n).await?,
                None => vec![],
            },
            None => vec![],
        };
        let matched = match_version(pkg, &versions);
        let approved = pkg.approval_status == "Approved";
        let violation = approved
            && !matched.is_some_and(|v| {
                v.approved_for(Environment::Production) && v.stage != Stage::Retired
            });
        let mut outcome = PackageOutcome {
            name: matched.map(|v| v.name.clone()),
            version: matched.map(|v| v.version),
            shadow_model: Finding::None,
            approval_violation: Finding::None,
        };

        let shadow_key = format!("{}/model-package/shadow/{}", actor.id, digest(&pkg.arn));
        let violation_key = format!(
            "{}/model-package/violation/{}",
            actor.id,
            digest(&format!(
                "{}\n{}\n{}",
                pkg.arn, pkg.approval_status, pkg.last_modified
            ))
        );
        let mut keys = Vec::new();
        if matched.is_none() {
            keys.push(Key::Idempotency(shadow_key.clone()));
        }
        if violation {
            keys.push(Key::Idempotency(violation_key.clone()));
        }
        if keys.is_empty() {
            return Ok(outcome);
        }
        let fetched = self.registry().get_many(&keys).await?;
        let typed_package = ModelPackage {
            model_package_arn: pkg.arn.clone(),
            model_package_group: pkg.group.clone(),
            model_package_version: pkg.package_version,
            approval_status: pkg.approval_status.clone(),
            model_data_urls: pkg.model_data_urls.clone(),
            generated_by: pkg.generated_by.clone(),
        };
        let package = GovError::to_json("a model package", &typed_package)?;

        if matched.is_none() {
            let id = incident_id(&shadow_key);
            outcome.shadow_model = if fetched.idempotency(&shadow_key).is_some() {
                Finding::Duplicate { incident_id: id }
            } else {
                let registered_model = name.is_some() && !versions.is_empty();
                let mut details = package.clone();
                details["incident_id"] = json!(id);
                details["registered_model"] = json!(registered_model);
                let event = Self::event(ShadowModelDetected {
                    package: Some(typed_package.clone()),
                    serving: None,
                    incident_id: id.clone(),
                    registered_model,
                    name: name.clone(),
                })?;
                let incident = self.finding_incident(
                    &id,
                    IncidentKind::ShadowModel,
                    pkg,
                    None,
                    None,
                    format!("model package {} has no Steward registration", pkg.arn),
                    &actor.id,
                );
                let commit = self.finding_commit(
                    &actor,
                    "model_package.shadow_detected",
                    name.as_ref(),
                    None,
                    details,
                    event,
                    &shadow_key,
                    incident,
                );
                self.commit_finding(commit, id).await?
            };
        }
        if violation {
            let id = incident_id(&violation_key);
            outcome.approval_violation = if fetched.idempotency(&violation_key).is_some() {
                Finding::Duplicate { incident_id: id }
            } else {
                let reason = match matched {
                    None => "the model package has no Steward registration".to_owned(),
                    Some(v) if v.stage == Stage::Retired => {
                        format!("{} version {} is retired", v.name, v.version)
                    }
                    Some(v) => format!(
                        "{} version {} is not approved for production in Steward (stage {})",
                        v.name, v.version, v.stage
                    ),
                };
                let mut details = package.clone();
                details["incident_id"] = json!(id);
                details["reason"] = json!(reason);
                details["revert"] = json!(revert);
                details["last_modified"] = json!(pkg.last_modified);
                let event = Self::event(ModelPackageApprovalViolation {
                    package: typed_package.clone(),
                    incident_id: id.clone(),
                    reason: reason.clone(),
                    revert,
                    stage: matched.map(|v| v.stage),
                    name: outcome.name.clone().or_else(|| name.clone()),
                    version: outcome.version,
                })?;
                let mut incident = self.finding_incident(
                    &id,
                    IncidentKind::ApprovalViolation,
                    pkg,
                    outcome.name.clone(),
                    outcome.version,
                    format!("model package {} approved in SageMaker: {reason}", pkg.arn),
                    &actor.id,
                );
                if revert {
                    incident
                        .actions
                        .push("set_back_to_pending_manual_approval".to_owned());
                }
                let commit = self.finding_commit(
                    &actor,
                    "model_package.approval_violation",
                    outcome.name.as_ref().or(name.as_ref()),
                    outcome.version,
                    details,
                    event,
                    &violation_key,
                    incident,
                );
                self.commit_finding(commit, id).await?
            };
        }
        Ok(outcome)
    }

    /// The incident a finding opens, named after the matched Steward model or else the
    /// package group.
    #[allow(clippy::too_many_arguments)]
    fn finding_incident(
        &self,
        id: &str,
        kind: IncidentKind,
        pkg: &ModelPackageState,
        name: Option<ModelName>,
        version: Option<VersionNumber>,
        summary: String,
        actor: &PrincipalId,
    ) -> Incident {
        Incident {
            id: id.to_owned(),
            name: name.unwrap_or_else(|| incident_model_name(&pkg.group)),
            version,
            kind,
            metric: String::new(),
            value: None,
            threshold: None,
            subject: Some(pkg.arn.clone()),
            summary,
            status: IncidentStatus::Open,
            opened_at: self.now(),
            opened_by: actor.clone(),
            actions: vec!["alerted".to_owned()],
            serious: Default::default(),
            resolution: None,
            revision: 0,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finding_commit(
        &self,
        actor: &Caller,
        action: &str,
        name: Option<&ModelName>,
        version: Option<VersionNumber>,
        details: Value,
        event: crate::records::DomainEvent,
        key: &str,
        incident: Incident,
    ) -> Commit {
        let now = self.now();
        Commit {
            puts: vec![Put::Incident(incident)],
            audit: vec![self.draft(actor, action, name, version, details.clone())],
            events: vec![event],
            idempotency: Some(IdempotencyRecord {
                key: key.to_owned(),
                request_sha256: Sha256::digest(&canonical_json(&details)),
                status: 201,
                response: details,
                at: now,
            }),
        }
    }

    async fn commit_finding(&self, commit: Commit, id: String) -> Result<Finding, GovError> {
        Ok(if self.commit_once(commit).await? {
            Finding::Recorded { incident_id: id }
        } else {
            // A concurrent delivery of the same change recorded it first.
            Finding::Duplicate { incident_id: id }
        })
    }

    /// The answer already recorded for a pipeline callback step (`key` names the step, e.g.
    /// derived from its callback token), if any.
    pub async fn pipeline_answer(
        &self,
        caller: &PrincipalId,
        key: &str,
    ) -> Result<Option<Value>, GovError> {
        self.recorded(&format!("{caller}/pipeline-answer/{key}"))
            .await
    }

    /// Records (audited, action `pipeline.step_answered`) the answer Steward sent to a pipeline
    /// step, so a redelivered callback message is not answered twice. Returns `false` when an
    /// answer was already recorded under `key`.
    pub async fn record_pipeline_answer(
        &self,
        caller: &PrincipalId,
        key: &str,
        name: Option<&ModelName>,
        version: Option<VersionNumber>,
        answer: Value,
    ) -> Result<bool, GovError> {
        // The pipeline's principal is configured, not authenticated: Steward's callback acts.
        let caller = Caller::new(caller.clone(), Vec::new(), AuthMethod::System);
        let audit = self.draft(
            &caller,
            "pipeline.step_answered",
            name,
            version,
            answer.clone(),
        );
        self.record_once(
            audit,
            format!("{}/pipeline-answer/{key}", caller.id),
            Sha256::digest(&canonical_json(&answer)),
            answer,
        )
        .await
    }
}
