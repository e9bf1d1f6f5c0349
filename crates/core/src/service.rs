//! The governance service: every rule of DESIGN.md, applied over the ports.
//!
//! Invariants:
//! - Each action reads what it needs, decides, and submits one [`Commit`] holding the records
//!   it changes, their expected revisions, the audit events and the outbox events. Nothing is
//!   written when a rule refuses the action or when another writer got there first.
//! - Identities come from [`Caller`] only (authentication), never from request bodies.
//! - Separation of duties: the registrant and the promoter never decide a review of their own
//!   promotion; reviewers decide only the stages their roles allow; in the high tier nobody
//!   approves two stages of one promotion; admins decide no reviews at all.

use std::sync::Arc;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::audit::{canonical_json, AuditDraft, AuditEvent, Checkpoint, Hash};
use crate::error::{FieldError, GovError, StoreError};
use crate::manifest::{from_value, Dependency, EvaluationInput, ModelCard, Registration};
use crate::policy::{unmet_thresholds, Policy};
use crate::ports::{
    ArtifactCheck, AuditLog, Caller, Clock, Commit, Evidence, EvidenceKind, Expect, IdGen, Key,
    ModelFilter, Page, Put, Registry, ReviewFilter, Workflows,
};
use crate::records::*;
use crate::types::*;

mod monitoring;
mod periodic;
mod retraining;

pub use monitoring::{card_kind, MonitoringSignal};
pub use periodic::{periodic_promotion_id, PERIODIC_REVIEW_ACTOR};

/// How many times registration retries a lost race for the next version number.
const REGISTER_ATTEMPTS: usize = 8;

/// The answer of a deployment gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    pub allowed: bool,
    pub reasons: Vec<String>,
}

/// A version with everything a reviewer needs on one page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionDetail {
    #[serde(flatten)]
    pub version: ModelVersion,
    /// Whether this version serves production now.
    pub serving: bool,
    pub promotions: Vec<Promotion>,
    pub reviews: Vec<Review>,
    pub card_revisions: usize,
    pub next_periodic_review: Option<DateTime<Utc>>,
}

/// What a retirement request did.
#[derive(Debug, Clone, PartialEq)]
pub enum RetireOutcome {
    /// The version is retired.
    Retired(ModelVersion),
    /// The request is recorded (`pending_retirement`) and its workflow started.
    Pending(ModelVersion),
}

impl RetireOutcome {
    /// The version, retired or with its pending retirement.
    pub fn into_version(self) -> ModelVersion {
        match self {
            RetireOutcome::Retired(v) | RetireOutcome::Pending(v) => v,
        }
    }
}

/// What retiring a version involves, read in one batch.
struct RetirementPlan {
    version: ModelVersion,
    model: Model,
    replacement: Option<ModelVersion>,
    serving: bool,
    /// Why it may not be retired now; empty when it may.
    reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelDetail {
    #[serde(flatten)]
    pub model: Model,
    pub versions: Vec<ModelVersion>,
}

/// What happened to a monitoring signal.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SignalOutcome {
    pub name: ModelName,
    pub version: u32,
    pub kind: SignalKind,
    pub metric: String,
    pub value: f64,
    pub threshold: Option<f64>,
    pub breached: bool,
    pub incident: Option<Incident>,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductionAt {
    pub name: ModelName,
    pub version: Option<u32>,
    pub since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodicReview {
    pub name: ModelName,
    pub version: u32,
    pub risk_tier: RiskTier,
    pub last_reviewed_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub overdue: bool,
}

/// A monitoring signal as posted.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalInput {
    pub model: ModelName,
    pub version: u32,
    pub kind: SignalKind,
    pub metric: String,
    pub value: f64,
}

/// A review decision as posted.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    pub decision: Decision,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub conditions: Vec<String>,
}

/// The governance service, shared by the HTTP API, the CLI's offline commands and the Lambdas.
pub struct Governance {
    registry: Arc<dyn Registry>,
    audit: Arc<dyn AuditLog>,
    workflows: Arc<dyn Workflows>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    policy: Policy,
    evidence: Option<Arc<dyn Evidence>>,
}

fn require_role(caller: &Caller, roles: &[Role], action: &str) -> Result<(), GovError> {
    if roles.iter().any(|r| caller.has(*r)) {
        Ok(())
    } else {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(GovError::Forbidden(format!(
            "{action} requires one of the roles: {}",
            names.join(", ")
        )))
    }
}

fn not_found_version(name: &ModelName, version: u32) -> GovError {
    GovError::NotFound(format!("model {name} has no version {version}"))
}

fn not_found_model(name: &ModelName) -> GovError {
    GovError::NotFound(format!("no model named {name}"))
}

fn expect_revision(current: u64, expected: Option<u64>, what: &str) -> Result<(), GovError> {
    match expected {
        Some(e) if e != current => Err(GovError::Conflict(format!(
            "{what} is at revision {current}, not {e}: re-read it and retry"
        ))),
        _ => Ok(()),
    }
}

fn conflict(e: StoreError) -> GovError {
    match e {
        StoreError::Conflict(m) => GovError::Conflict(format!(
            "{m}: another change landed first; re-read and retry"
        )),
        other => GovError::Store(other),
    }
}

fn non_empty(field: &str, value: &str) -> Result<String, GovError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(GovError::field(field, "must not be empty"));
    }
    if v.len() > 4000 {
        return Err(GovError::field(field, "must be at most 4000 bytes"));
    }
    Ok(v.to_owned())
}

impl Governance {
    pub fn new(
        registry: Arc<dyn Registry>,
        audit: Arc<dyn AuditLog>,
        workflows: Arc<dyn Workflows>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
        policy: Policy,
    ) -> Self {
        Self {
            registry,
            audit,
            workflows,
            clock,
            ids,
            policy,
            evidence: None,
        }
    }

    /// Keeps manifests, card revisions and evaluation reports in `evidence`, and checks
    /// artifact hashes wherever it can read the artifact.
    pub fn with_evidence(mut self, evidence: Arc<dyn Evidence>) -> Self {
        self.evidence = Some(evidence);
        self
    }

    /// Stores evidence when an evidence store is configured.
    async fn keep(&self, kind: EvidenceKind, value: &Value) -> Result<(), GovError> {
        if let Some(e) = &self.evidence {
            e.put(kind, &canonical_json(value)).await?;
        }
        Ok(())
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn draft(
        &self,
        caller: &PrincipalId,
        action: &str,
        name: Option<&ModelName>,
        version: Option<u32>,
        details: Value,
    ) -> AuditDraft {
        AuditDraft {
            time: self.now(),
            actor: caller.to_string(),
            action: action.to_owned(),
            name: name.map(ToString::to_string),
            version,
            details,
        }
    }

    pub(crate) fn event(detail_type: &str, detail: Value) -> DomainEvent {
        let mut detail = detail;
        if let Value::Object(m) = &mut detail {
            m.insert("schema_version".into(), json!("1"));
        }
        DomainEvent {
            detail_type: detail_type.to_owned(),
            detail,
        }
    }

    /// Commits a change that carries an idempotency record, once: `false` (nothing written)
    /// when its key was already taken, by a repeat or by a concurrent twin that committed
    /// first.
    pub(crate) async fn commit_once(&self, commit: Commit) -> Result<bool, GovError> {
        debug_assert!(commit.idempotency.is_some(), "commit_once needs a key");
        match self.registry.commit(commit).await {
            Ok(_) => Ok(true),
            Err(StoreError::IdempotencyKeyTaken) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Audits `audit` once per idempotency `key`, keeping `response` under the key (read back
    /// with [`Self::recorded`]). Returns `false` when the key already had a record.
    pub(crate) async fn record_once(
        &self,
        audit: AuditDraft,
        key: String,
        request_sha256: Sha256,
        response: Value,
    ) -> Result<bool, GovError> {
        self.commit_once(Commit {
            audit: vec![audit],
            idempotency: Some(IdempotencyRecord {
                key,
                request_sha256,
                status: 200,
                response,
                at: self.now(),
            }),
            ..Commit::default()
        })
        .await
    }

    /// The response kept under an idempotency `key`, if any.
    pub(crate) async fn recorded(&self, key: &str) -> Result<Option<Value>, GovError> {
        Ok(self.registry.idempotency(key).await?.map(|r| r.response))
    }

    /// When reviews of a `tier` promotion requested at `now` fall due.
    pub(crate) fn review_deadline(&self, tier: RiskTier, now: DateTime<Utc>) -> DateTime<Utc> {
        let timeout = self.policy.tier(tier).review_timeout;
        now + ChronoDuration::from_std(timeout).unwrap_or(ChronoDuration::days(3))
    }

    /// The pending reviews a promotion `id` of `v` to `target` needs under the policy, each
    /// due the tier's review timeout after `now`.
    pub(crate) fn pending_reviews(
        &self,
        v: &ModelVersion,
        id: &str,
        target: Environment,
        now: DateTime<Utc>,
    ) -> Vec<Review> {
        let deadline = self.review_deadline(v.risk_tier, now);
        self.policy
            .reviews_for(v.risk_tier, target)
            .into_iter()
            .map(|stage| Review {
                id: format!("{id}-{stage}"),
                promotion_id: id.to_owned(),
                name: v.name.clone(),
                version: v.version,
                target,
                stage,
                status: ReviewStatus::Pending,
                deadline,
                decided_by: None,
                decided_at: None,
                decision: None,
                comment: None,
                conditions: vec![],
            })
            .collect()
    }

    async fn load_version(&self, name: &ModelName, version: u32) -> Result<ModelVersion, GovError> {
        self.registry
            .version(name, version)
            .await?
            .ok_or_else(|| not_found_version(name, version))
    }

    /// A version and its model, in one batched read.
    async fn load_version_and_model(
        &self,
        name: &ModelName,
        version: u32,
    ) -> Result<(ModelVersion, Model), GovError> {
        let mut f = self
            .registry
            .get_many(&[
                Key::Version(name.clone(), version),
                Key::Model(name.clone()),
            ])
            .await?;
        let v = f
            .versions
            .remove(&(name.clone(), version))
            .ok_or_else(|| not_found_version(name, version))?;
        let m = f.models.remove(name).ok_or_else(|| not_found_model(name))?;
        Ok((v, m))
    }

    async fn load_model(&self, name: &ModelName) -> Result<Model, GovError> {
        self.registry
            .model(name)
            .await?
            .ok_or_else(|| not_found_model(name))
    }

    // ----------------------------------------------------------------- registration

    /// Registers a new version of `name` (creating the model on first use).
    ///
    /// With an idempotency key, a retry with the same body returns the version the first call
    /// created (and `true`); the same key with another body is a conflict.
    pub async fn register(
        &self,
        caller: &Caller,
        name: &str,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> Result<(ModelVersion, bool), GovError> {
        require_role(caller, &[Role::Developer], "registering a model version")?;
        let name = ModelName::parse(name)?;
        let manifest_bytes = canonical_json(&body);
        let manifest_sha256 = Sha256::digest(&manifest_bytes);
        let scoped_key = match idempotency_key {
            Some(k) if k.is_empty() || k.len() > 255 => {
                return Err(GovError::field(
                    "Idempotency-Key",
                    "must be 1-255 characters",
                ))
            }
            Some(k) => Some(format!("{}/register/{name}/{k}", caller.id)),
            None => None,
        };
        let reg = Registration::parse(body)?;
        // Where the artifact can be read, its bytes must match the declared SHA-256.
        let artifact_check = match &self.evidence {
            None => Value::Null,
            Some(e) => {
                let check = e
                    .check_artifact(&reg.artifact.uri, &reg.artifact.sha256)
                    .await?;
                match check {
                    ArtifactCheck::Mismatch { actual } => {
                        return Err(GovError::field(
                            "artifact.sha256",
                            format!(
                                "the artifact at {} has SHA-256 {actual}, not the declared one",
                                reg.artifact.uri
                            ),
                        ))
                    }
                    ArtifactCheck::Verified { size } if size != reg.artifact.size_bytes => {
                        return Err(GovError::field(
                            "artifact.size_bytes",
                            format!("the artifact at {} has {size} bytes", reg.artifact.uri),
                        ))
                    }
                    ArtifactCheck::Verified { .. } => json!("verified"),
                    ArtifactCheck::NotChecked { reason } => json!(format!("not checked: {reason}")),
                }
            }
        };
        if let Some(e) = &self.evidence {
            e.put(EvidenceKind::Manifest, &manifest_bytes).await?;
        }
        self.keep(
            EvidenceKind::ModelCard,
            &serde_json::to_value(&reg.card).unwrap_or_default(),
        )
        .await?;

        for _ in 0..REGISTER_ATTEMPTS {
            // One batched read: the model, the idempotency record and every dependency.
            let mut keys = vec![Key::Model(name.clone())];
            keys.extend(scoped_key.iter().map(|k| Key::Idempotency(k.clone())));
            keys.extend(
                reg.dependencies
                    .iter()
                    .map(|d| Key::Version(d.name.clone(), d.version)),
            );
            let fetched = self.registry.get_many(&keys).await?;
            if let Some(rec) = scoped_key.as_deref().and_then(|k| fetched.idempotency(k)) {
                return Ok((replay(rec, &manifest_sha256)?, true));
            }
            let existing = fetched.model(&name).cloned();
            let mut problems = Vec::new();
            if let Some(m) = &existing {
                if m.risk_tier != reg.risk_tier {
                    problems.push(FieldError::new(
                        "risk_tier",
                        format!(
                            "model {name} is {} risk; a version cannot change the model's tier",
                            m.risk_tier
                        ),
                    ));
                }
                if let Some(p) = reg.lineage.parent_version {
                    if p == 0 || p > m.latest_version {
                        problems.push(FieldError::new(
                            "lineage.parent_version",
                            format!("model {name} has no version {p}"),
                        ));
                    }
                }
            } else if reg.lineage.parent_version.is_some() {
                problems.push(FieldError::new(
                    "lineage.parent_version",
                    format!("model {name} has no versions yet"),
                ));
            }
            let mut dependency_puts = Vec::new();
            for (i, d) in reg.dependencies.iter().enumerate() {
                match fetched.version(&d.name, d.version) {
                    Some(v) if v.stage != Stage::Retired => dependency_puts.push(v.clone()),
                    Some(_) => problems.push(FieldError::new(
                        format!("dependencies[{i}]"),
                        format!("{} version {} is retired", d.name, d.version),
                    )),
                    None => problems.push(FieldError::new(
                        format!("dependencies[{i}]"),
                        format!("{} has no version {}", d.name, d.version),
                    )),
                }
            }
            if !problems.is_empty() {
                return Err(GovError::Validation(problems));
            }

            let now = self.now();
            let (model, expect) = match existing {
                Some(mut m) => {
                    let expect = Expect::Revision(m.revision);
                    m.latest_version += 1;
                    m.owner = reg.owner.clone();
                    m.description = reg.description.clone();
                    m.revision += 1;
                    (m, expect)
                }
                None => (
                    Model {
                        name: name.clone(),
                        owner: reg.owner.clone(),
                        risk_tier: reg.risk_tier,
                        description: reg.description.clone(),
                        created_by: caller.id.clone(),
                        created_at: now,
                        latest_version: 1,
                        production_version: None,
                        production_history: vec![],
                        retired_versions: vec![],
                        revision: 1,
                    },
                    Expect::Absent,
                ),
            };
            let number = model.latest_version;
            let card_sha256 = Sha256::digest(&canonical_json(
                &serde_json::to_value(&reg.card).unwrap_or_default(),
            ));
            let version = ModelVersion {
                name: name.clone(),
                version: number,
                risk_tier: model.risk_tier,
                stage: Stage::Development,
                artifact: reg.artifact.clone(),
                lineage: reg.lineage.clone(),
                evaluations: reg
                    .evaluations
                    .iter()
                    .map(|e| Evaluation {
                        result: e.clone(),
                        recorded_by: caller.id.clone(),
                        recorded_at: now,
                    })
                    .collect(),
                card: reg.card.clone(),
                card_revision: 1,
                dependencies: reg.dependencies.clone(),
                dependents: vec![],
                registered_by: caller.id.clone(),
                registered_at: now,
                manifest_sha256,
                approvals: vec![],
                deployments: vec![],
                open_promotion: None,
                retirement: None,
                pending_retirement: None,
                revision: 1,
            };
            let details = json!({
                "created_model": expect == Expect::Absent,
                "risk_tier": model.risk_tier,
                "owner": model.owner,
                "manifest_sha256": manifest_sha256,
                "artifact": {"uri": reg.artifact.uri, "sha256": reg.artifact.sha256},
                "code": reg.lineage.code,
                "training_data_sha256": reg.lineage.training_data.iter().map(|t| t.sha256).collect::<Vec<_>>(),
                "evaluations": reg.evaluations.iter().map(|e| json!({"name": e.name, "dataset_sha256": e.dataset.sha256})).collect::<Vec<_>>(),
                "card_sha256": card_sha256,
                "training_job": reg.lineage.training_job,
                "artifact_check": artifact_check,
            });
            let mut puts = Vec::new();
            for mut dep in dependency_puts {
                // The dependency learns its dependent, so retiring it needs no query.
                let prev = dep.revision;
                dep.dependents.push(Dependency {
                    name: name.clone(),
                    version: number,
                });
                dep.revision += 1;
                puts.push(Put::Version(dep, Expect::Revision(prev)));
            }
            puts.extend([
                Put::Model(model.clone(), expect),
                Put::CardRevision(CardRevision {
                    name: name.clone(),
                    version: number,
                    card_revision: 1,
                    card: reg.card.clone(),
                    card_sha256,
                    author: caller.id.clone(),
                    at: now,
                }),
                Put::Version(version.clone(), Expect::Absent),
            ]);
            let commit = Commit {
                puts,
                audit: vec![self.draft(
                    &caller.id,
                    "version.registered",
                    Some(&name),
                    Some(number),
                    details.clone(),
                )],
                events: vec![Self::event(
                    "ModelVersionRegistered",
                    json!({"name": name, "version": number, "risk_tier": model.risk_tier, "registered_by": caller.id,
                           "artifact_sha256": reg.artifact.sha256, "manifest_sha256": manifest_sha256}),
                )],
                idempotency: scoped_key.as_ref().map(|key| IdempotencyRecord {
                    key: key.clone(),
                    request_sha256: manifest_sha256,
                    status: 201,
                    response: serde_json::to_value(&version).unwrap_or_default(),
                    at: now,
                }),
            };
            match self.registry.commit(commit).await {
                Ok(_) => return Ok((version, false)),
                Err(StoreError::Conflict(_)) => continue,
                // Another request with this key committed first: the next pass replays it.
                Err(StoreError::IdempotencyKeyTaken) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        // A lost race, not a state the caller must change: the store's conflict, so that
        // callers that retry races (the pipeline callback) retry it. Same 409 and message.
        Err(GovError::Store(StoreError::Conflict(format!(
            "too many concurrent registrations of {name}; retry"
        ))))
    }

    // ----------------------------------------------------------------- reads

    pub async fn model_detail(&self, name: &str) -> Result<ModelDetail, GovError> {
        let name = ModelName::parse(name)?;
        let model = self.load_model(&name).await?;
        let versions = self.registry.versions(&name).await?;
        Ok(ModelDetail { model, versions })
    }

    pub async fn list_models(
        &self,
        filter: &ModelFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, GovError> {
        Ok(self
            .registry
            .list_models(filter, cursor, limit.clamp(1, 500))
            .await?)
    }

    pub async fn version_detail(
        &self,
        name: &str,
        version: u32,
    ) -> Result<VersionDetail, GovError> {
        let name = ModelName::parse(name)?;
        let (v, model) = self.load_version_and_model(&name, version).await?;
        let promotions = self.registry.promotions_of(&name, version).await?;
        let reviews = promotions.iter().flat_map(|p| p.reviews.clone()).collect();
        let card_revisions = v.card_revision as usize;
        let serving = model.production_version == Some(version);
        let next_periodic_review = if serving { self.periodic_due(&v) } else { None };
        Ok(VersionDetail {
            version: v,
            serving,
            promotions,
            reviews,
            card_revisions,
            next_periodic_review,
        })
    }

    pub async fn card_revisions(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Vec<CardRevision>, GovError> {
        let name = ModelName::parse(name)?;
        self.load_version(&name, version).await?;
        Ok(self.registry.card_revisions(&name, version).await?)
    }

    // ----------------------------------------------------------------- evidence

    /// Records a new revision of a version's model card.
    pub async fn revise_card(
        &self,
        caller: &Caller,
        name: &str,
        version: u32,
        body: Value,
        expected: Option<u64>,
    ) -> Result<ModelVersion, GovError> {
        require_role(caller, &[Role::Developer], "revising a model card")?;
        let name = ModelName::parse(name)?;
        let card: ModelCard = from_value(body).map_err(|e| prefix(e, "card"))?;
        let mut v = self.load_version(&name, version).await?;
        let mut errors = Vec::new();
        card.check(&v.evaluation_names(), &mut errors);
        if !errors.is_empty() {
            return Err(GovError::Validation(errors));
        }
        if v.stage == Stage::Retired {
            return Err(GovError::Conflict(format!(
                "{name} version {version} is retired"
            )));
        }
        expect_revision(v.revision, expected, "the version")?;
        let now = self.now();
        let card_value = serde_json::to_value(&card).unwrap_or_default();
        self.keep(EvidenceKind::ModelCard, &card_value).await?;
        let card_sha256 = Sha256::digest(&canonical_json(&card_value));
        let prev = v.revision;
        v.card = card.clone();
        v.card_revision += 1;
        v.revision += 1;
        let commit = Commit {
            puts: vec![
                Put::CardRevision(CardRevision {
                    name: name.clone(),
                    version,
                    card_revision: v.card_revision,
                    card,
                    card_sha256,
                    author: caller.id.clone(),
                    at: now,
                }),
                Put::Version(v.clone(), Expect::Revision(prev)),
            ],
            audit: vec![self.draft(
                &caller.id,
                "card.revised",
                Some(&name),
                Some(version),
                json!({"card_revision": v.card_revision, "card_sha256": card_sha256}),
            )],
            events: vec![Self::event(
                "ModelCardRevised",
                json!({"name": name, "version": version, "card_revision": v.card_revision, "card_sha256": card_sha256}),
            )],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        Ok(v)
    }

    /// Adds an evaluation result to a version.
    pub async fn add_evaluation(
        &self,
        caller: &Caller,
        name: &str,
        version: u32,
        body: Value,
    ) -> Result<ModelVersion, GovError> {
        require_role(caller, &[Role::Developer], "recording an evaluation")?;
        let name = ModelName::parse(name)?;
        let input: EvaluationInput = from_value(body)?;
        let mut errors = Vec::new();
        input.check("", &mut errors);
        for e in &mut errors {
            e.field = e.field.trim_start_matches('.').to_owned();
        }
        if !errors.is_empty() {
            return Err(GovError::Validation(errors));
        }
        let mut v = self.load_version(&name, version).await?;
        if v.stage == Stage::Retired {
            return Err(GovError::Conflict(format!(
                "{name} version {version} is retired"
            )));
        }
        if v.evaluation_names().contains(&input.name.as_str()) {
            return Err(GovError::Conflict(format!(
                "evaluation {:?} is already recorded for this version",
                input.name
            )));
        }
        let now = self.now();
        let prev = v.revision;
        let report = serde_json::to_value(&input).unwrap_or_default();
        self.keep(EvidenceKind::EvaluationReport, &report).await?;
        let details = json!({"evaluation": input.name, "dataset_sha256": input.dataset.sha256, "environment": input.environment, "metrics": input.metrics, "report_sha256": Sha256::digest(&canonical_json(&report))});
        v.evaluations.push(Evaluation {
            result: input,
            recorded_by: caller.id.clone(),
            recorded_at: now,
        });
        v.revision += 1;
        let commit = Commit {
            puts: vec![Put::Version(v.clone(), Expect::Revision(prev))],
            audit: vec![self.draft(
                &caller.id,
                "evaluation.recorded",
                Some(&name),
                Some(version),
                details.clone(),
            )],
            events: vec![Self::event(
                "EvaluationRecorded",
                json!({"name": name, "version": version, "details": details}),
            )],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        Ok(v)
    }

    // ----------------------------------------------------------------- gates

    /// Whether the evaluations meet the thresholds; returns the reasons they do not.
    fn threshold_reasons(&self, v: &ModelVersion, staging_only: bool) -> Vec<String> {
        let thresholds = self.policy.thresholds_for(v.risk_tier, &v.card);
        let candidates: Vec<&Evaluation> = v
            .evaluations
            .iter()
            .filter(|e| !staging_only || e.result.environment == Some(Environment::Staging))
            .collect();
        if candidates.is_empty() {
            return vec![if staging_only {
                "no evaluation recorded on staging test data (POST an evaluation with \"environment\": \"staging\")".to_owned()
            } else {
                "no evaluation results recorded".to_owned()
            }];
        }
        // The version passes if one evaluation meets every threshold; otherwise report the
        // closest one's shortfalls.
        let best = candidates
            .iter()
            .map(|e| {
                (
                    e.result.name.as_str(),
                    unmet_thresholds(&e.result.metrics, &thresholds),
                )
            })
            .min_by_key(|(_, unmet)| unmet.len());
        match best {
            Some((_, unmet)) if unmet.is_empty() => vec![],
            Some((name, unmet)) => unmet
                .into_iter()
                .map(|u| format!("evaluation {name:?}: {u}"))
                .collect(),
            None => vec![],
        }
    }

    /// The production readiness rules every production promotion and deployment must meet.
    fn production_readiness(&self, v: &ModelVersion) -> Vec<String> {
        let mut reasons = self.threshold_reasons(v, true);
        let mon = &v.card.operational.monitoring;
        if mon.quality.is_empty() {
            reasons.push(
                "the model card has no quality thresholds (card.operational.monitoring.quality)"
                    .into(),
            );
        }
        if mon.drift.is_empty() {
            reasons.push(
                "the model card has no drift thresholds (card.operational.monitoring.drift)".into(),
            );
        }
        if v.card.rollback.procedure.trim().is_empty() {
            reasons.push(
                "the model card documents no rollback procedure (card.rollback.procedure)".into(),
            );
        }
        if let Some(within) = self.policy.tier(v.risk_tier).rollback_tested_within {
            let limit = self.now().date_naive() - ChronoDuration::seconds(within.as_secs() as i64);
            match v.card.rollback.last_tested {
                Some(d) if d >= limit => {}
                Some(d) => reasons.push(format!("the rollback procedure was last tested on {d}; policy requires a test since {limit}")),
                None => reasons.push("policy requires a tested rollback procedure (card.rollback.last_tested)".into()),
            }
        }
        reasons
    }

    fn gate_reasons(&self, v: &ModelVersion, env: Environment) -> Vec<String> {
        let mut reasons = Vec::new();
        if v.stage == Stage::Retired {
            reasons.push(format!("version {} is retired", v.version));
            return reasons;
        }
        if !v.approved_for(env) {
            reasons.push(format!("version {} is not approved for {env}", v.version));
        }
        match env {
            Environment::Staging => reasons.extend(self.threshold_reasons(v, false)),
            Environment::Production => reasons.extend(self.production_readiness(v)),
        }
        reasons
    }

    /// For CI/CD pipelines: may this version be deployed to `env` now?
    pub async fn gate(
        &self,
        name: &str,
        version: u32,
        env: Environment,
    ) -> Result<GateResult, GovError> {
        let name = ModelName::parse(name)?;
        let v = self.load_version(&name, version).await?;
        let reasons = self.gate_reasons(&v, env);
        Ok(GateResult {
            allowed: reasons.is_empty(),
            reasons,
        })
    }

    // ----------------------------------------------------------------- promotions

    /// Starts the review workflow that promotion to `target` needs.
    pub async fn request_promotion(
        &self,
        caller: &Caller,
        name: &str,
        version: u32,
        target: Environment,
        expected: Option<u64>,
    ) -> Result<Promotion, GovError> {
        require_role(
            caller,
            &[Role::Developer, Role::ReleaseManager],
            "requesting a promotion",
        )?;
        let name = ModelName::parse(name)?;
        let mut v = self.load_version(&name, version).await?;
        expect_revision(v.revision, expected, "the version")?;
        if let Some(open) = &v.open_promotion {
            return Err(GovError::Conflict(format!(
                "promotion {open} of this version is still in review"
            )));
        }
        // A version in production may be re-certified (a periodic review opened by hand).
        let recertification = target == Environment::Production && v.stage == Stage::Production;
        if v.approved_for(target) && !recertification {
            return Err(GovError::Conflict(format!(
                "version {version} is already approved for {target}"
            )));
        }
        let mut reasons = Vec::new();
        match (target, v.stage) {
            (_, Stage::Retired) => reasons.push(format!("version {version} is retired")),
            (Environment::Staging, Stage::Development) => reasons.extend(self.threshold_reasons(&v, false)),
            (Environment::Staging, s) => reasons.push(format!("version {version} is already in {s}")),
            (Environment::Production, Stage::Staging | Stage::Production) => reasons.extend(self.production_readiness(&v)),
            (Environment::Production, s) => reasons.push(format!(
                "version {version} is in {s}: production promotion needs the version deployed to staging first"
            )),
        }
        if !reasons.is_empty() {
            return Err(GovError::Policy(reasons));
        }
        let now = self.now();
        let id = promotion_id(&name, version, &self.ids.id("pr"));
        let reviews = self.pending_reviews(&v, &id, target, now);
        let deadline = self.review_deadline(v.risk_tier, now);
        let promotion = Promotion {
            id: id.clone(),
            name: name.clone(),
            version,
            target,
            status: PromotionStatus::InReview,
            reviews,
            requested_by: caller.id.clone(),
            requested_at: now,
            registered_by: v.registered_by.clone(),
            risk_tier: v.risk_tier,
            closed_at: None,
            revision: 1,
        };
        let prev = v.revision;
        v.open_promotion = Some(id.clone());
        v.revision += 1;
        let stages: Vec<_> = promotion.reviews.iter().map(|r| r.stage).collect();
        let mut events = vec![Self::event(
            "PromotionRequested",
            json!({"name": name, "version": version, "target": target, "promotion_id": id, "reviews": stages}),
        )];
        events.extend(promotion.reviews.iter().map(|r| {
            Self::event("ReviewRequested", json!({"review_id": r.id, "promotion_id": id, "name": name, "version": version, "target": target, "stage": r.stage, "deadline": r.deadline}))
        }));
        let commit = Commit {
            puts: vec![
                Put::Version(v, Expect::Revision(prev)),
                Put::Promotion(promotion.clone(), Expect::Absent),
            ],
            audit: vec![self.draft(
                &caller.id,
                "promotion.requested",
                Some(&name),
                Some(version),
                json!({
                    "promotion_id": id, "target": target, "reviews": stages, "deadline": deadline,
                }),
            )],
            events,
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        self.workflows.promotion_started(&promotion).await?;
        Ok(promotion)
    }

    /// Reviews with `status` that the caller's roles allow it to decide.
    pub async fn list_reviews(
        &self,
        caller: &Caller,
        status: ReviewStatus,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Review>, GovError> {
        let stages: Vec<ReviewStage> = if caller.has(Role::Admin) {
            vec![]
        } else {
            ReviewStage::ALL
                .iter()
                .copied()
                .filter(|s| caller.has(s.reviewer_role()))
                .collect()
        };
        if stages.is_empty() {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            });
        }
        let page = self
            .registry
            .list_reviews(
                &ReviewFilter { status, stages },
                cursor,
                limit.clamp(1, 500),
            )
            .await?;
        // Hide pending reviews that separation of duties would refuse this caller.
        let items = page
            .items
            .into_iter()
            .filter(|i| {
                status != ReviewStatus::Pending
                    || self
                        .separation_of_duties(
                            caller,
                            &i.promotion,
                            i.review.stage,
                            Decision::Approve,
                        )
                        .is_ok()
            })
            .map(|i| i.review)
            .collect();
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    fn separation_of_duties(
        &self,
        caller: &Caller,
        p: &Promotion,
        stage: ReviewStage,
        decision: Decision,
    ) -> Result<(), GovError> {
        if caller.has(Role::Admin) {
            return Err(GovError::SeparationOfDuties(
                "an admin manages principals and policy and may not decide reviews".into(),
            ));
        }
        if caller.id == p.registered_by {
            return Err(GovError::SeparationOfDuties(format!(
                "{} registered {} version {} and may not review its promotion",
                caller.id, p.name, p.version
            )));
        }
        if caller.id == p.requested_by {
            return Err(GovError::SeparationOfDuties(format!(
                "{} requested this promotion and may not review it",
                caller.id
            )));
        }
        if p.risk_tier == RiskTier::High && decision == Decision::Approve {
            if let Some(other) = p.reviews.iter().find(|r| {
                r.stage != stage
                    && r.status == ReviewStatus::Approved
                    && r.decided_by.as_ref() == Some(&caller.id)
            }) {
                return Err(GovError::SeparationOfDuties(format!(
                    "{} already approved the {} review of this high-risk promotion; another person must approve {stage}",
                    caller.id, other.stage
                )));
            }
        }
        Ok(())
    }

    /// A review's promotion, the review's index in it and the promotion's version, read in one
    /// batch: the review id names the promotion, and the promotion id names the version.
    async fn load_review(
        &self,
        review_id: &str,
    ) -> Result<(Promotion, usize, ModelVersion), GovError> {
        let unknown = || GovError::NotFound(format!("no review {review_id}"));
        let (promotion_id, stage) = parse_review_id(review_id).ok_or_else(unknown)?;
        let (name, version) = parse_promotion_id(promotion_id).ok_or_else(unknown)?;
        let mut f = self
            .registry
            .get_many(&[
                Key::Promotion(promotion_id.to_owned()),
                Key::Version(name.clone(), version),
            ])
            .await?;
        let p = f.promotions.remove(promotion_id).ok_or_else(unknown)?;
        let v = f
            .versions
            .remove(&(name, version))
            .ok_or_else(|| not_found_version(&p.name, p.version))?;
        let idx = p
            .reviews
            .iter()
            .position(|r| r.stage == stage && r.id == review_id)
            .ok_or_else(unknown)?;
        Ok((p, idx, v))
    }

    /// Records a reviewer's decision and advances the promotion.
    pub async fn decide(
        &self,
        caller: &Caller,
        review_id: &str,
        input: DecisionInput,
    ) -> Result<Promotion, GovError> {
        let (mut p, idx, v) = self.load_review(review_id).await?;
        let stage = p.reviews[idx].stage;
        let role = stage.reviewer_role();
        if !caller.has(role) {
            return Err(GovError::Forbidden(format!(
                "deciding a {stage} review requires the role {role}"
            )));
        }
        self.separation_of_duties(caller, &p, stage, input.decision)?;
        let comment = match input.comment.as_deref() {
            Some(c) if !c.trim().is_empty() => Some(non_empty("comment", c)?),
            _ if input.decision == Decision::Reject => {
                return Err(GovError::field("comment", "a rejection must say why"))
            }
            _ => None,
        };
        let mut conditions = Vec::new();
        for (i, c) in input.conditions.iter().enumerate() {
            conditions.push(non_empty(&format!("conditions[{i}]"), c)?);
        }
        if p.status != PromotionStatus::InReview || p.reviews[idx].status != ReviewStatus::Pending {
            return Err(GovError::Conflict(format!(
                "review {review_id} is {:?} and promotion {} is {:?}; nothing to decide",
                p.reviews[idx].status, p.id, p.status
            )));
        }
        let now = self.now();
        if p.reviews[idx].deadline <= now {
            self.expire_promotion(p, idx, v).await?;
            return Err(GovError::Conflict(format!(
                "review {review_id} expired before the decision"
            )));
        }
        let prev = p.revision;
        {
            let r = &mut p.reviews[idx];
            r.status = if input.decision == Decision::Approve {
                ReviewStatus::Approved
            } else {
                ReviewStatus::Rejected
            };
            r.decision = Some(input.decision);
            r.decided_by = Some(caller.id.clone());
            r.decided_at = Some(now);
            r.comment = comment.clone();
            r.conditions = conditions.clone();
        }
        p.revision += 1;
        let name = p.name.clone();
        let version = p.version;
        let mut audit =
            vec![self.draft(&caller.id, "review.decided", Some(&name), Some(version), json!({
            "review_id": review_id, "promotion_id": p.id, "stage": stage, "target": p.target,
            "decision": input.decision, "comment": comment, "conditions": conditions,
        }))];
        let mut events = vec![Self::event(
            "ReviewDecided",
            json!({"review_id": review_id, "promotion_id": p.id, "name": name, "version": version, "stage": stage, "decision": input.decision, "decided_by": caller.id}),
        )];
        let mut puts = Vec::new();
        let all_approved = p.reviews.iter().all(|r| r.status == ReviewStatus::Approved);
        if input.decision == Decision::Reject || all_approved {
            let mut v = v;
            let vprev = v.revision;
            v.open_promotion = None;
            v.revision += 1;
            p.closed_at = Some(now);
            if input.decision == Decision::Reject {
                p.status = PromotionStatus::Rejected;
                for r in p
                    .reviews
                    .iter_mut()
                    .filter(|r| r.status == ReviewStatus::Pending)
                {
                    r.status = ReviewStatus::Cancelled;
                }
                audit.push(self.draft(
                    &caller.id,
                    "promotion.rejected",
                    Some(&name),
                    Some(version),
                    json!({"promotion_id": p.id, "target": p.target, "rejected_stage": stage}),
                ));
                events.push(Self::event("PromotionRejected", json!({"promotion_id": p.id, "name": name, "version": version, "target": p.target, "stage": stage})));
                // A failed re-certification of a production version opens an incident (periodic.rs).
                if let Some((a, e, incident)) =
                    self.recertification_rejected(&p, &v, stage, &caller.id, comment.as_deref())
                {
                    audit.push(a);
                    events.push(e);
                    puts.push(Put::Incident(incident));
                }
            } else {
                p.status = PromotionStatus::Approved;
                v.approvals.push(Approval {
                    environment: p.target,
                    promotion_id: p.id.clone(),
                    approved_at: now,
                });
                let approvers: Vec<_> = p
                    .reviews
                    .iter()
                    .map(|r| json!({"stage": r.stage, "by": r.decided_by}))
                    .collect();
                audit.push(self.draft(
                    &caller.id,
                    "promotion.approved",
                    Some(&name),
                    Some(version),
                    json!({"promotion_id": p.id, "target": p.target, "approvals": approvers}),
                ));
                events.push(Self::event("PromotionApproved", json!({"promotion_id": p.id, "name": name, "version": version, "target": p.target})));
            }
            puts.push(Put::Version(v, Expect::Revision(vprev)));
        }
        puts.push(Put::Promotion(p.clone(), Expect::Revision(prev)));
        self.registry
            .commit(Commit {
                puts,
                audit,
                events,
                idempotency: None,
            })
            .await
            .map_err(conflict)?;
        self.workflows.review_decided(&p, &p.reviews[idx]).await?;
        Ok(p)
    }

    /// Ends a promotion because review `idx` passed its deadline.
    async fn expire_promotion(
        &self,
        mut p: Promotion,
        idx: usize,
        mut v: ModelVersion,
    ) -> Result<(), GovError> {
        let now = self.now();
        let system = PrincipalId::system("workflow");
        let prev = p.revision;
        let expired_stage = p.reviews[idx].stage;
        p.reviews[idx].status = ReviewStatus::Expired;
        for r in p
            .reviews
            .iter_mut()
            .filter(|r| r.status == ReviewStatus::Pending)
        {
            r.status = ReviewStatus::Cancelled;
        }
        p.status = PromotionStatus::Expired;
        p.closed_at = Some(now);
        p.revision += 1;
        let vprev = v.revision;
        v.open_promotion = None;
        v.revision += 1;
        let review_id = p.reviews[idx].id.clone();
        let commit = Commit {
            audit: vec![
                self.draft(&system, "review.expired", Some(&p.name), Some(p.version), json!({"review_id": review_id, "promotion_id": p.id, "stage": expired_stage, "deadline": p.reviews[idx].deadline})),
                self.draft(&system, "promotion.expired", Some(&p.name), Some(p.version), json!({"promotion_id": p.id, "target": p.target, "expired_stage": expired_stage})),
            ],
            events: vec![
                Self::event("ReviewTimedOut", json!({"review_id": review_id, "promotion_id": p.id, "name": p.name, "version": p.version, "stage": expired_stage})),
                Self::event("PromotionExpired", json!({"promotion_id": p.id, "name": p.name, "version": p.version, "target": p.target})),
            ],
            puts: vec![Put::Version(v, Expect::Revision(vprev)), Put::Promotion(p, Expect::Revision(prev))],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        Ok(())
    }

    /// Expires every pending review past its deadline (the workflow runner's tick). Returns how
    /// many promotions it ended; a promotion another writer changed meanwhile is left for the
    /// next tick.
    pub async fn expire_due_reviews(&self) -> Result<usize, GovError> {
        let now = self.now();
        let mut ended = 0;
        for r in self.registry.reviews_due(now, 100).await? {
            let mut f = self
                .registry
                .get_many(&[
                    Key::Promotion(r.promotion_id.clone()),
                    Key::Version(r.name.clone(), r.version),
                ])
                .await?;
            let (Some(p), Some(v)) = (
                f.promotions.remove(&r.promotion_id),
                f.versions.remove(&(r.name.clone(), r.version)),
            ) else {
                continue;
            };
            let Some(idx) = p.reviews.iter().position(|x| x.id == r.id) else {
                continue;
            };
            if p.status != PromotionStatus::InReview
                || p.reviews[idx].status != ReviewStatus::Pending
                || p.reviews[idx].deadline > now
            {
                continue;
            }
            match self.expire_promotion(p, idx, v).await {
                Ok(()) => ended += 1,
                Err(GovError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ended)
    }

    /// Expires the promotion of review `review_id` because its workflow timed the review out
    /// (the approval state machine's `ReviewTimedOut`). The workflow no longer waits for this
    /// review, so a pending review ends now even if its deadline is a moment away (clocks
    /// differ). Idempotent: `Ok(false)` when the review is no longer pending or its promotion
    /// is closed; `NotFound` for an id this registry never issued; a concurrent change is a
    /// `Conflict` (retry re-reads and usually finds nothing left to do).
    pub async fn expire_review(&self, review_id: &str) -> Result<bool, GovError> {
        let (p, idx, v) = self.load_review(review_id).await?;
        if p.status != PromotionStatus::InReview || p.reviews[idx].status != ReviewStatus::Pending {
            return Ok(false);
        }
        self.expire_promotion(p, idx, v).await?;
        Ok(true)
    }

    pub async fn promotion(&self, id: &str) -> Result<Promotion, GovError> {
        self.registry
            .promotion(id)
            .await?
            .ok_or_else(|| GovError::NotFound(format!("no promotion {id}")))
    }

    // ----------------------------------------------------------------- deployment

    /// Deploys an approved version to `env`.
    pub async fn deploy(
        &self,
        caller: &Caller,
        name: &str,
        version: u32,
        env: Environment,
        expected: Option<u64>,
    ) -> Result<ModelVersion, GovError> {
        let roles: &[Role] = match env {
            Environment::Staging => &[Role::Developer, Role::ReleaseManager],
            Environment::Production => &[Role::ReleaseManager],
        };
        require_role(caller, roles, &format!("deploying to {env}"))?;
        let name = ModelName::parse(name)?;
        let (mut v, mut model) = self.load_version_and_model(&name, version).await?;
        expect_revision(v.revision, expected, "the version")?;
        match env {
            Environment::Production if model.production_version == Some(version) => {
                return Err(GovError::Conflict(format!(
                    "version {version} already serves production"
                )))
            }
            Environment::Staging if v.stage != Stage::Development => {
                return Err(GovError::Conflict(format!(
                    "version {version} is in {}; it cannot go back to staging",
                    v.stage
                )))
            }
            _ => {}
        }
        let reasons = self.gate_reasons(&v, env);
        if !reasons.is_empty() {
            return Err(GovError::Policy(reasons));
        }
        let now = self.now();
        let prev = v.revision;
        v.stage = env.stage();
        v.deployments.push(DeploymentRecord {
            environment: env,
            deployed_by: caller.id.clone(),
            deployed_at: now,
        });
        v.revision += 1;
        let mut puts = vec![Put::Version(v.clone(), Expect::Revision(prev))];
        let mut previous = None;
        if env == Environment::Production {
            let mprev = model.revision;
            previous = model.production_version;
            model.production_version = Some(version);
            model.production_history.push(version);
            model.revision += 1;
            puts.push(Put::Model(model, Expect::Revision(mprev)));
            puts.push(Put::ProductionChange(ProductionChange {
                name: name.clone(),
                at: now,
                version: Some(version),
                cause: "deployment".into(),
            }));
        }
        let commit = Commit {
            puts,
            audit: vec![self.draft(
                &caller.id,
                "version.deployed",
                Some(&name),
                Some(version),
                json!({"environment": env, "previous_production_version": previous}),
            )],
            events: vec![Self::event(
                "ModelDeployed",
                json!({"name": name, "version": version, "environment": env, "previous_version": previous, "deployed_by": caller.id}),
            )],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        Ok(v)
    }

    /// The version that served production before the current one, if it can serve again:
    /// the latest entry of the model's production history that is neither the current version
    /// nor retired.
    fn rollback_target(model: &Model) -> Option<u32> {
        let current = model.production_version?;
        model
            .production_history
            .iter()
            .rev()
            .copied()
            .find(|v| *v != current && !model.retired_versions.contains(v))
    }

    fn rollback_puts(&self, model: &Model, to: u32, cause: &str) -> (Vec<Put>, Option<u32>) {
        let mut m = model.clone();
        let from = m.production_version;
        m.production_version = Some(to);
        m.production_history.push(to);
        m.revision += 1;
        (
            vec![
                Put::Model(m, Expect::Revision(model.revision)),
                Put::ProductionChange(ProductionChange {
                    name: model.name.clone(),
                    at: self.now(),
                    version: Some(to),
                    cause: cause.into(),
                }),
            ],
            from,
        )
    }

    /// Puts the previous production version back into production.
    pub async fn rollback(
        &self,
        caller: &Caller,
        name: &str,
        reason: &str,
    ) -> Result<Model, GovError> {
        require_role(
            caller,
            &[Role::Operator, Role::ReleaseManager],
            "rolling back",
        )?;
        let name = ModelName::parse(name)?;
        let reason = non_empty("reason", reason)?;
        let model = self.load_model(&name).await?;
        let Some(current) = model.production_version else {
            return Err(GovError::Conflict(format!(
                "{name} has no version in production"
            )));
        };
        let Some(to) = Self::rollback_target(&model) else {
            return Err(GovError::Conflict(format!(
                "{name} has no earlier production version to roll back to"
            )));
        };
        let (puts, _) = self.rollback_puts(&model, to, "rollback");
        // The model as committed: answering with it costs no second read.
        let committed = puts.iter().find_map(|p| match p {
            Put::Model(m, _) => Some(m.clone()),
            _ => None,
        });
        let commit = Commit {
            puts,
            audit: vec![self.draft(
                &caller.id,
                "model.rolled_back",
                Some(&name),
                Some(to),
                json!({"from": current, "to": to, "reason": reason, "automatic": false}),
            )],
            events: vec![Self::event(
                "ModelRolledBack",
                json!({"name": name, "from_version": current, "to_version": to, "reason": reason, "automatic": false}),
            )],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        committed
            .ok_or_else(|| GovError::Store(StoreError::Backend("rollback built no model".into())))
    }

    // ----------------------------------------------------------------- monitoring

    // `signal` and `signal_once`: service/monitoring.rs.

    pub async fn incidents(
        &self,
        name: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Incident>, GovError> {
        let name = name.map(ModelName::parse).transpose()?;
        Ok(self
            .registry
            .incidents(name.as_ref(), cursor, limit.clamp(1, 500))
            .await?)
    }

    fn periodic_due(&self, v: &ModelVersion) -> Option<DateTime<Utc>> {
        let last = v
            .approvals
            .iter()
            .filter(|a| a.environment == Environment::Production)
            .map(|a| a.approved_at)
            .max()?;
        let every = ChronoDuration::from_std(self.policy.tier(v.risk_tier).periodic_review).ok()?;
        Some(last + every)
    }

    /// Production versions with the date their periodic review falls due, soonest first.
    pub async fn periodic_reviews(&self) -> Result<Vec<PeriodicReview>, GovError> {
        let now = self.now();
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .registry
                .production_models(cursor.as_deref(), 200)
                .await?;
            for m in &page.items {
                let Some(pv) = m.production_version else {
                    continue;
                };
                let Some(v) = self.registry.version(&m.name, pv).await? else {
                    continue;
                };
                let Some(due_at) = self.periodic_due(&v) else {
                    continue;
                };
                let last_reviewed_at = due_at
                    - ChronoDuration::from_std(self.policy.tier(v.risk_tier).periodic_review)
                        .unwrap_or_default();
                out.push(PeriodicReview {
                    name: m.name.clone(),
                    version: pv,
                    risk_tier: v.risk_tier,
                    last_reviewed_at,
                    due_at,
                    overdue: due_at <= now,
                });
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        out.sort_by_key(|p| p.due_at);
        Ok(out)
    }

    // ----------------------------------------------------------------- retirement

    /// Retires a version, recording why and what replaces it. Where the workflows port
    /// confirms retirements (AWS), this only records the request and starts the retirement
    /// workflow; the version is retired when a confirmer approves and the workflow archives it.
    pub async fn retire(
        &self,
        caller: &Caller,
        name: &str,
        version: u32,
        reason: &str,
        replacement: Option<u32>,
    ) -> Result<RetireOutcome, GovError> {
        require_role(
            caller,
            &[Role::Developer, Role::ReleaseManager],
            "retiring a version",
        )?;
        let name = ModelName::parse(name)?;
        let reason = non_empty("reason", reason)?;
        if replacement == Some(version) {
            return Err(GovError::field(
                "replacement",
                "a version cannot replace itself",
            ));
        }
        let plan = self.plan_retirement(&name, version, replacement).await?;
        if !plan.reasons.is_empty() {
            return Err(GovError::Policy(plan.reasons));
        }
        if self.workflows.confirms_retirements() {
            return self
                .request_retirement(caller, plan, reason, replacement)
                .await
                .map(RetireOutcome::Pending);
        }
        self.commit_retirement(plan, &reason, replacement, &caller.id, None)
            .await
            .map(RetireOutcome::Retired)
    }

    /// Why `version` may not be retired now (empty: it may): what the retirement workflow's
    /// dependents check asks, when the confirmation may come days after the request.
    pub async fn retirement_check(
        &self,
        name: &str,
        version: u32,
        replacement: Option<u32>,
    ) -> Result<Vec<String>, GovError> {
        let name = ModelName::parse(name)?;
        Ok(self
            .plan_retirement(&name, version, replacement)
            .await?
            .reasons)
    }

    /// Records a confirmer's decision on a version's pending retirement and tells the
    /// workflow. Only a compliance reviewer or a release manager may decide, never the
    /// requester; a refusal needs a comment and ends the request.
    pub async fn decide_retirement(
        &self,
        caller: &Caller,
        name: &str,
        version: u32,
        decision: Decision,
        comment: Option<&str>,
    ) -> Result<ModelVersion, GovError> {
        require_role(
            caller,
            &[Role::ComplianceReviewer, Role::ReleaseManager],
            "confirming a retirement",
        )?;
        let name = ModelName::parse(name)?;
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        if decision == Decision::Reject && comment.is_none() {
            return Err(GovError::field("comment", "a refusal must say why"));
        }
        let mut v = self.load_version(&name, version).await?;
        let Some(mut pending) = v.pending_retirement.clone() else {
            return Err(GovError::Conflict(format!(
                "no retirement of {name} version {version} is waiting for confirmation"
            )));
        };
        if pending.confirmed_by.is_some() {
            return Err(GovError::Conflict(format!(
                "retirement {} is already confirmed",
                pending.id
            )));
        }
        if pending.requested_by == caller.id {
            return Err(GovError::SeparationOfDuties(
                "the requester of a retirement cannot confirm or refuse it".into(),
            ));
        }
        let prev = v.revision;
        let now = self.now();
        let action = match decision {
            Decision::Approve => {
                pending.confirmed_by = Some(caller.id.clone());
                pending.confirmed_at = Some(now);
                v.pending_retirement = Some(pending.clone());
                "retirement.confirmed"
            }
            Decision::Reject => {
                v.pending_retirement = None;
                "retirement.refused"
            }
        };
        v.revision += 1;
        let commit = Commit {
            puts: vec![Put::Version(v.clone(), Expect::Revision(prev))],
            audit: vec![self.draft(
                &caller.id,
                action,
                Some(&name),
                Some(version),
                json!({"retirement_id": pending.id, "comment": comment}),
            )],
            events: vec![],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        self.workflows
            .retirement_decided(&pending, comment.filter(|_| decision == Decision::Reject))
            .await?;
        Ok(v)
    }

    /// The retirement workflow's archive step: retires the version of a confirmed request,
    /// checking again what may have changed since it was requested. Idempotent: archiving an
    /// archived request returns the retired version. When the version may no longer be
    /// retired, the request ends (audited) and the reasons are the error.
    pub async fn archive_retirement(&self, retirement_id: &str) -> Result<ModelVersion, GovError> {
        let (name, version) = parse_retirement_id(retirement_id).ok_or_else(|| {
            GovError::field("retirement_id", "not a retirement id Steward issued")
        })?;
        let v = self.load_version(&name, version).await?;
        if v.retirement
            .as_ref()
            .is_some_and(|r| r.request_id.as_deref() == Some(retirement_id))
        {
            return Ok(v);
        }
        let pending = match &v.pending_retirement {
            Some(p) if p.id == retirement_id && p.confirmed_by.is_some() => p.clone(),
            _ => {
                return Err(GovError::Conflict(format!(
                    "retirement {retirement_id} is not waiting to be archived"
                )))
            }
        };
        let plan = self
            .plan_retirement(&name, version, pending.replacement)
            .await?;
        if !plan.reasons.is_empty() {
            self.close_retirement(
                retirement_id,
                "refused",
                json!({"step": "Archive", "reasons": plan.reasons}),
            )
            .await?;
            return Err(GovError::Policy(plan.reasons));
        }
        self.commit_retirement(
            plan,
            &pending.reason,
            pending.replacement,
            &pending.requested_by,
            Some(&pending),
        )
        .await
    }

    /// Ends a pending retirement that its workflow ended without archiving (`outcome`:
    /// `refused`, `timed_out` or `failed`), audited as `retirement.<outcome>` by the workflow.
    /// Returns whether it was still pending (false for a repeated or late report).
    pub async fn close_retirement(
        &self,
        retirement_id: &str,
        outcome: &str,
        details: Value,
    ) -> Result<bool, GovError> {
        let (name, version) = parse_retirement_id(retirement_id).ok_or_else(|| {
            GovError::field("retirement_id", "not a retirement id Steward issued")
        })?;
        let mut v = self.load_version(&name, version).await?;
        if v.pending_retirement.as_ref().map(|p| p.id.as_str()) != Some(retirement_id) {
            return Ok(false);
        }
        let prev = v.revision;
        v.pending_retirement = None;
        v.revision += 1;
        let mut details = details;
        if let Value::Object(m) = &mut details {
            m.insert("retirement_id".into(), json!(retirement_id));
        }
        let commit = Commit {
            puts: vec![Put::Version(v, Expect::Revision(prev))],
            audit: vec![self.draft(
                &PrincipalId::system("workflow"),
                &format!("retirement.{outcome}"),
                Some(&name),
                Some(version),
                details,
            )],
            events: vec![],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        Ok(true)
    }

    /// Records a retirement request (pending until confirmed) and starts its workflow. A
    /// client repeating the pending request gets it back and the workflow start is repeated
    /// (idempotent); any other request while one is pending is a conflict.
    async fn request_retirement(
        &self,
        caller: &Caller,
        plan: RetirementPlan,
        reason: String,
        replacement: Option<u32>,
    ) -> Result<ModelVersion, GovError> {
        let mut v = plan.version;
        if let Some(p) = &v.pending_retirement {
            if p.reason == reason
                && p.replacement == replacement
                && p.requested_by == caller.id
                && p.confirmed_by.is_none()
            {
                self.workflows.retirement_requested(&v, p).await?;
                return Ok(v);
            }
            return Err(GovError::Conflict(format!(
                "retirement {} of this version is pending; it must end first",
                p.id
            )));
        }
        let name = v.name.clone();
        let pending = PendingRetirement {
            id: retirement_id(&name, v.version, &self.ids.id("rt")),
            reason: reason.clone(),
            replacement,
            requested_by: caller.id.clone(),
            requested_at: self.now(),
            confirmed_by: None,
            confirmed_at: None,
        };
        let prev = v.revision;
        v.pending_retirement = Some(pending.clone());
        v.revision += 1;
        let commit = Commit {
            puts: vec![Put::Version(v.clone(), Expect::Revision(prev))],
            audit: vec![self.draft(
                &caller.id,
                "retirement.requested",
                Some(&name),
                Some(v.version),
                json!({"retirement_id": pending.id, "reason": reason, "replacement": replacement}),
            )],
            events: vec![Self::event(
                "RetirementRequested",
                json!({"retirement_id": pending.id, "name": name, "version": v.version, "reason": reason, "replacement": replacement, "requested_by": caller.id}),
            )],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        self.workflows.retirement_requested(&v, &pending).await?;
        Ok(v)
    }

    /// Reads what retiring `version` involves and why it may not be retired now. Errors are
    /// what no later attempt can change: unknown version, already retired, a promotion in
    /// review, an unknown or retired replacement.
    async fn plan_retirement(
        &self,
        name: &ModelName,
        version: u32,
        replacement: Option<u32>,
    ) -> Result<RetirementPlan, GovError> {
        let mut keys = vec![
            Key::Version(name.clone(), version),
            Key::Model(name.clone()),
        ];
        keys.extend(replacement.map(|r| Key::Version(name.clone(), r)));
        let mut f = self.registry.get_many(&keys).await?;
        let v = f
            .versions
            .remove(&(name.clone(), version))
            .ok_or_else(|| not_found_version(name, version))?;
        let model = f.models.remove(name).ok_or_else(|| not_found_model(name))?;
        if v.stage == Stage::Retired {
            return Err(GovError::Conflict(format!(
                "version {version} is already retired"
            )));
        }
        if let Some(open) = &v.open_promotion {
            return Err(GovError::Conflict(format!(
                "promotion {open} of this version is in review; it must end first"
            )));
        }
        let serving = model.production_version == Some(version);
        let mut reasons = Vec::new();
        if !v.dependents.is_empty() {
            // Only versions that declared this one read their stage: most have none.
            let keys: Vec<Key> = v
                .dependents
                .iter()
                .map(|d| Key::Version(d.name.clone(), d.version))
                .collect();
            let found = self.registry.get_many(&keys).await?;
            let active: Vec<String> = v
                .dependents
                .iter()
                .filter(|d| {
                    found
                        .version(&d.name, d.version)
                        .is_some_and(|dv| dv.stage != Stage::Retired)
                })
                .map(|d| format!("{} version {}", d.name, d.version))
                .collect();
            if !active.is_empty() {
                reasons.push(format!("active models depend on it: {}", active.join(", ")));
            }
        }
        let mut replacement_record = None;
        if let Some(r) = replacement {
            let rv = f.versions.remove(&(name.clone(), r)).ok_or_else(|| {
                GovError::field("replacement", format!("model {name} has no version {r}"))
            })?;
            if rv.stage == Stage::Retired {
                return Err(GovError::field(
                    "replacement",
                    format!("version {r} is retired"),
                ));
            }
            if serving {
                let gate = self.gate_reasons(&rv, Environment::Production);
                reasons.extend(
                    gate.into_iter()
                        .map(|g| format!("replacement cannot take over production: {g}")),
                );
            }
            replacement_record = Some(rv);
        } else if serving {
            reasons.push(format!(
                "version {version} serves production; name an approved replacement"
            ));
        }
        Ok(RetirementPlan {
            version: v,
            model,
            replacement: replacement_record,
            serving,
            reasons,
        })
    }

    /// Retires the planned version (and hands production to the replacement when it was
    /// serving), audited as done by `actor`; `request` is the confirmed request it completes.
    async fn commit_retirement(
        &self,
        plan: RetirementPlan,
        reason: &str,
        replacement: Option<u32>,
        actor: &PrincipalId,
        request: Option<&PendingRetirement>,
    ) -> Result<ModelVersion, GovError> {
        let RetirementPlan {
            version: mut v,
            model,
            replacement: replacement_record,
            serving,
            ..
        } = plan;
        let name = v.name.clone();
        let version = v.version;
        let now = self.now();
        let prev = v.revision;
        v.stage = Stage::Retired;
        v.retirement = Some(Retirement {
            reason: reason.to_owned(),
            replacement,
            retired_by: actor.clone(),
            retired_at: now,
            request_id: request.map(|r| r.id.clone()),
            confirmed_by: request.and_then(|r| r.confirmed_by.clone()),
        });
        v.pending_retirement = None;
        v.revision += 1;
        let mut puts = vec![Put::Version(v.clone(), Expect::Revision(prev))];
        let mut m = model.clone();
        m.retired_versions.push(version);
        m.revision += 1;
        if let (true, Some(mut rv)) = (serving, replacement_record) {
            let rprev = rv.revision;
            rv.stage = Stage::Production;
            rv.deployments.push(DeploymentRecord {
                environment: Environment::Production,
                deployed_by: actor.clone(),
                deployed_at: now,
            });
            rv.revision += 1;
            m.production_version = Some(rv.version);
            m.production_history.push(rv.version);
            puts.push(Put::Version(rv.clone(), Expect::Revision(rprev)));
            puts.push(Put::ProductionChange(ProductionChange {
                name: name.clone(),
                at: now,
                version: Some(rv.version),
                cause: format!("retirement of version {version}"),
            }));
        }
        puts.push(Put::Model(m, Expect::Revision(model.revision)));
        let mut details =
            json!({"reason": reason, "replacement": replacement, "was_serving": serving});
        if let Some(r) = request {
            details["retirement_id"] = json!(r.id);
            details["confirmed_by"] = json!(r.confirmed_by);
        }
        let commit = Commit {
            puts,
            audit: vec![self.draft(
                actor,
                "version.retired",
                Some(&name),
                Some(version),
                details,
            )],
            events: vec![Self::event(
                "ModelRetired",
                json!({"name": name, "version": version, "reason": reason, "replacement": replacement}),
            )],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        Ok(v)
    }

    /// Which version served production at `at`.
    pub async fn production_at(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<ProductionAt, GovError> {
        let name = ModelName::parse(name)?;
        self.load_model(&name).await?;
        let change = self.registry.production_at(&name, at).await?;
        Ok(ProductionAt {
            name,
            version: change.as_ref().and_then(|c| c.version),
            since: change.map(|c| c.at),
        })
    }

    // ----------------------------------------------------------------- audit

    fn require_auditor(caller: &Caller) -> Result<(), GovError> {
        require_role(
            caller,
            &[Role::Auditor, Role::Admin],
            "reading the audit log",
        )
    }

    pub async fn audit_events(
        &self,
        caller: &Caller,
        model: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, GovError> {
        Self::require_auditor(caller)?;
        let model = model.map(ModelName::parse).transpose()?;
        Ok(self
            .audit
            .events(model.as_ref(), after, limit.clamp(1, 1000))
            .await?)
    }

    pub async fn audit_checkpoint(&self, caller: &Caller) -> Result<Checkpoint, GovError> {
        Self::require_auditor(caller)?;
        self.audit
            .latest_checkpoint()
            .await?
            .ok_or_else(|| GovError::NotFound("the audit log is empty".into()))
    }

    /// Inclusion proof of `seq` against the latest checkpoint.
    pub async fn audit_proof(
        &self,
        caller: &Caller,
        seq: u64,
    ) -> Result<(AuditEvent, Vec<Hash>, Checkpoint), GovError> {
        let cp = self.audit_checkpoint(caller).await?;
        if seq == 0 || seq > cp.size {
            return Err(GovError::NotFound(format!(
                "no audit event {seq} in the checkpointed log of {} events",
                cp.size
            )));
        }
        let (event, proof) = self.audit.inclusion_proof(seq, cp.size).await?;
        Ok((event, proof, cp))
    }

    pub async fn audit_consistency(
        &self,
        caller: &Caller,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, GovError> {
        let size = self.audit_checkpoint(caller).await?.size;
        if new_size > size {
            return Err(GovError::field(
                "second",
                format!("the checkpointed log has {size} events"),
            ));
        }
        if old_size == 0 || old_size > new_size {
            return Err(GovError::field(
                "first",
                "must be between 1 and the second size",
            ));
        }
        Ok(self.audit.consistency_proof(old_size, new_size).await?)
    }

    pub fn audit_public_key(&self) -> (String, Vec<u8>) {
        self.audit.public_key()
    }

    // ----------------------------------------------------------------- principals

    pub async fn principals(&self, caller: &Caller) -> Result<Vec<PrincipalRecord>, GovError> {
        require_role(caller, &[Role::Admin], "listing principals")?;
        Ok(self.registry.principals().await?)
    }

    /// Sets a principal's roles (admin only, audited). Refuses to remove the last admin.
    pub async fn set_roles(
        &self,
        caller: &Caller,
        id: &str,
        roles: Vec<Role>,
    ) -> Result<PrincipalRecord, GovError> {
        require_role(caller, &[Role::Admin], "managing principals")?;
        let id = PrincipalId::parse(id)?;
        let mut roles = roles;
        roles.sort();
        roles.dedup();
        // One read of all principals answers both "who is this" and "is this the last admin".
        let all = self.registry.principals().await?;
        let existing = all.iter().find(|p| p.id == id).cloned();
        let is_admin = existing
            .as_ref()
            .is_some_and(|p| p.roles.contains(&Role::Admin));
        if is_admin && !roles.contains(&Role::Admin) {
            let admins = all
                .iter()
                .filter(|p| p.roles.contains(&Role::Admin))
                .count();
            if admins <= 1 {
                return Err(GovError::Conflict(
                    "this is the last admin; name another admin first".into(),
                ));
            }
        }
        self.put_principal(&caller.id, id, roles, "api", existing)
            .await
    }

    /// Seeds a principal from configuration (principals file or bootstrap admins). Writes and
    /// audits only when the stored roles differ; roles an admin set through the API win.
    pub async fn seed_principal(
        &self,
        id: &PrincipalId,
        roles: Vec<Role>,
        source: &str,
    ) -> Result<Option<PrincipalRecord>, GovError> {
        let existing = self.registry.principal(id).await?;
        match &existing {
            Some(p) if p.managed_by == "api" => return Ok(None),
            Some(p) if p.roles == roles => return Ok(None),
            _ => {}
        }
        let system = PrincipalId::system(source);
        self.put_principal(&system, id.clone(), roles, source, existing)
            .await
            .map(Some)
    }

    async fn put_principal(
        &self,
        actor: &PrincipalId,
        id: PrincipalId,
        roles: Vec<Role>,
        source: &str,
        existing: Option<PrincipalRecord>,
    ) -> Result<PrincipalRecord, GovError> {
        let now = self.now();
        let (expect, revision, before) = match &existing {
            Some(p) => (
                Expect::Revision(p.revision),
                p.revision + 1,
                Some(p.roles.clone()),
            ),
            None => (Expect::Absent, 1, None),
        };
        let record = PrincipalRecord {
            id: id.clone(),
            roles: roles.clone(),
            managed_by: source.to_owned(),
            updated_at: now,
            revision,
        };
        let commit = Commit {
            puts: vec![Put::Principal(record.clone(), expect)],
            audit: vec![self.draft(actor, "principal.roles_set", None, None, json!({"principal": id, "roles": roles, "previous_roles": before, "source": source}))],
            events: vec![Self::event("PrincipalRolesChanged", json!({"principal": id, "roles": roles}))],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        Ok(record)
    }

    /// Records the policy in force when it differs from the last one recorded.
    pub async fn record_policy(&self, last_digest: Option<&str>) -> Result<bool, GovError> {
        let digest = self.policy.digest();
        if last_digest == Some(digest.as_str()) {
            return Ok(false);
        }
        let system = PrincipalId::system("config");
        let commit = Commit {
            audit: vec![self.draft(
                &system,
                "policy.loaded",
                None,
                None,
                json!({"policy_sha256": digest, "policy": self.policy}),
            )],
            events: vec![Self::event(
                "PolicyChanged",
                json!({"policy_sha256": digest}),
            )],
            ..Commit::default()
        };
        self.registry.commit(commit).await?;
        Ok(true)
    }
}

/// The response an idempotency record stored, if the retry carries the same body.
fn replay(rec: &IdempotencyRecord, request: &Sha256) -> Result<ModelVersion, GovError> {
    if rec.request_sha256 != *request {
        return Err(GovError::Conflict(
            "this Idempotency-Key was used with a different request body".into(),
        ));
    }
    serde_json::from_value(rec.response.clone())
        .map_err(|e| GovError::Store(StoreError::backend("corrupt idempotency record", e)))
}

/// Re-roots validation errors of a nested body under `parent`.
fn prefix(e: GovError, parent: &str) -> GovError {
    match e {
        GovError::Validation(errors) => {
            GovError::Validation(errors.into_iter().map(|f| f.at(parent)).collect())
        }
        other => other,
    }
}
