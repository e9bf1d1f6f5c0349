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
use crate::events::*;
use crate::ids::{IdempotencyKey, IncidentId, PromotionId, RetirementId, ReviewId, VersionNumber};
use crate::manifest::{from_value, EvaluationInput, ModelCard, Registration};
use crate::policy::{unmet_thresholds, Policy};
use crate::ports::{
    decode_cursor, ArtifactCheck, AuditLog, Caller, Clock, Commit, Evidence, EvidenceKind, Expect,
    Fetched, IdGen, Key, ModelFilter, Page, Pause, Put, Registry, ReviewFilter, Workflows,
};
use crate::records::*;
use crate::types::*;

mod admin;
mod audit;
mod automatic;
mod callbacks;
mod cards;
mod changes;
mod checks;
mod deployment;
mod evidence_pack;
mod gate_checks;
mod gates;
pub mod integrations;
mod inventory;
mod mlflow_aliases;
mod mlflow_models;
mod mlflow_versions;
mod monitoring;
mod periodic;
mod promotions;
mod reads;
mod registration;
mod retirement;
mod retirements;
mod retraining;
mod reviews;
mod rollback;
mod separation;
mod serious;
mod serving;
mod webhooks;

pub use admin::PolicyRecord;
pub use callbacks::IntegrationRefusal;
pub use evidence_pack::EvidencePack;
pub use gate_checks::GateCheck;
pub use gates::GateResult;
pub use inventory::{
    CardCompleteness, InventoryEntry, LastReview, OpenIncidents, ProductionServing, CARD_PARTS,
};
pub use mlflow_models::{parse_tags, MlflowModel, MlflowStage};
pub use mlflow_versions::MlflowVersionInput;
pub use monitoring::{card_kind, MonitoringSignal, SignalInput, SignalOutcome};
pub use periodic::{periodic_promotion_id, PeriodicReview, PERIODIC_REVIEW_ACTOR};
pub use reads::{ModelDetail, ProductionAt, VersionDetail};
pub use retirement::RetireOutcome;
pub use retirements::RetirementRequest;
pub use reviews::DecisionInput;
pub use serious::{ClassificationInput, SERIOUS_INCIDENTS_ACTOR};
pub use webhooks::{WebhookInput, WebhookPorts};

/// The governance service, shared by the HTTP API, the CLI's offline commands and the Lambdas.
pub struct Governance {
    registry: Arc<dyn Registry>,
    audit: Arc<dyn AuditLog>,
    workflows: Arc<dyn Workflows>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    policy: Policy,
    evidence: Option<Arc<dyn Evidence>>,
    pause: Option<Arc<dyn Pause>>,
    webhooks: Option<WebhookPorts>,
    change_control: Option<Arc<dyn crate::ports::ChangeControl>>,
    manifest_signer: Option<Arc<dyn crate::ports::ManifestSigner>>,
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

/// Every item of a paged listing: `page(cursor)` from the start until it hands out no cursor.
async fn every_page<T, F, Fut>(mut page: F) -> Result<Vec<T>, GovError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, StoreError>>,
{
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let p = page(cursor.take()).await?;
        all.extend(p.items);
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(all),
        }
    }
}

/// Reads open to anyone Steward knows: authenticated with at least one role.
fn require_some_role(caller: &Caller, what: &str) -> Result<(), GovError> {
    if caller.roles.is_empty() {
        return Err(GovError::Forbidden(format!(
            "{what} requires at least one role"
        )));
    }
    Ok(())
}

fn not_found_version(name: &ModelName, version: impl std::fmt::Display) -> GovError {
    GovError::NotFound(format!("model {name} has no version {version}"))
}

/// The number `n` of a version of model `name` as it arrives from outside (a path, a signal,
/// a workflow message): 0 is answered as any version the model does not have, 404 `model
/// {name} has no version 0`, not as a malformed request, as before numbers were typed. A
/// malformed name is reported first, as the operations that take the number report it.
pub fn existing_version(name: &str, n: u32) -> Result<VersionNumber, GovError> {
    let name = ModelName::parse(name)?;
    VersionNumber::new(n).map_err(|_| not_found_version(&name, n))
}

/// The replacement `n` a retirement of a version of `name` names, as it arrives: 0 is the
/// `replacement` validation error of any version the model does not have.
pub fn existing_replacement(name: &str, n: u32) -> Result<VersionNumber, GovError> {
    let name = ModelName::parse(name)?;
    VersionNumber::new(n).map_err(|_| no_replacement(&name, n))
}

fn no_replacement(name: &ModelName, n: impl std::fmt::Display) -> GovError {
    GovError::field("replacement", format!("model {name} has no version {n}"))
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

/// A store failure as the caller sees it: a failed commit condition is a lost race
/// ([`GovError::Contended`]), never a state conflict: the state the action was decided on
/// changed, so deciding again on a fresh read may succeed.
fn lost_race(e: StoreError) -> GovError {
    match e {
        StoreError::Conflict(m) => GovError::Contended(format!(
            "{m}: another change landed first; re-read and retry"
        )),
        StoreError::IdempotencyKeyTaken => GovError::Contended(
            "a concurrent request with this Idempotency-Key committed first; retry to get its answer"
                .into(),
        ),
        other => GovError::Store(other),
    }
}

/// A random number for backoff jitter. std's `RandomState` is seeded from the OS for each
/// thread and stepped for each instance, which is random enough to spread retries and needs
/// no dependency (the core has no `rand`).
fn jitter() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
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
            pause: None,
            webhooks: None,
            change_control: None,
            manifest_signer: None,
        }
    }

    /// Backs off between attempts of an action that lost a race (see [`Self::back_off`]).
    pub fn with_pause(mut self, pause: Arc<dyn Pause>) -> Self {
        self.pause = Some(pause);
        self
    }

    /// Waits before attempt `attempt + 1` of an action whose commit lost a race: a random
    /// time below 5 ms × 2^attempt (at most 320 ms), "full jitter", so that writers that
    /// collided once spread out instead of colliding again in step.
    async fn back_off(&self, attempt: usize) {
        let Some(pause) = &self.pause else { return };
        let ceiling_us = 5_000u64 << attempt.min(6);
        pause
            .pause(std::time::Duration::from_micros(jitter() % ceiling_us))
            .await;
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

    /// The time on Steward's clock (the edge stamps requests with it).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn draft(
        &self,
        caller: &Caller,
        action: &str,
        name: Option<&ModelName>,
        version: Option<VersionNumber>,
        details: Value,
    ) -> AuditDraft {
        let mut details = details;
        // How the actor's identity was established, beside who it is: a token, OpenID Connect,
        // IAM or Steward's own workflows.
        if let Value::Object(map) = &mut details {
            map.insert(
                "authentication".into(),
                Value::String(caller.auth.as_str().into()),
            );
        }
        AuditDraft {
            time: self.now(),
            actor: caller.id.to_string(),
            action: action.to_owned(),
            name: name.map(ToString::to_string),
            version,
            details,
        }
    }

    /// A typed governance event in its stored form (`schema_version` added); an event that
    /// cannot be serialised refuses the action rather than put a `null` in the outbox.
    pub(crate) fn event(event: impl Into<GovernanceEvent>) -> Result<DomainEvent, GovError> {
        DomainEvent::try_from(event.into()).map_err(|source| GovError::Serialization {
            what: "a governance event",
            source,
        })
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

    async fn load_version(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<ModelVersion, GovError> {
        self.registry
            .version(name, version)
            .await?
            .ok_or_else(|| not_found_version(name, version))
    }

    /// A version and its model, in one batched read.
    async fn load_version_and_model(
        &self,
        name: &ModelName,
        version: VersionNumber,
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
}
