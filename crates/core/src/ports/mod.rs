//! The ports: what the governance service needs from the world, as small traits that the
//! embedded (SQLite) and AWS (DynamoDB, S3, Step Functions) backends implement.
//!
//! Invariants a `Registry` implementation must keep:
//! - `commit` applies all of a [`Commit`] or none of it: the records, the audit events (each
//!   assigned the next sequence number), the outbox events and the idempotency record.
//! - `Expect::Absent` fails if the record exists; `Expect::Revision(r)` fails unless the stored
//!   revision is `r`. A failed expectation is `StoreError::Conflict`, a taken idempotency key
//!   `StoreError::IdempotencyKeyTaken`; in both cases nothing was written.
//! - Every read is answered with a fixed small number of requests (no scans of the registry).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::{AuditDraft, AuditEvent, Checkpoint, Hash};
use crate::error::StoreError;
use crate::ids::VersionNumber;
use crate::mlflow::RegisteredModel;
use crate::records::{
    CardRevision, DomainEvent, IdempotencyRecord, Incident, Model, ModelVersion, PendingRetirement,
    PrincipalRecord, ProductionChange, Promotion, RetirementStatus, Review, ReviewStatus,
    VersionRef,
};
use crate::types::{ModelName, PrincipalId, ReviewStage, RiskTier, Stage};
use crate::webhooks::{Delivery, Webhook, WebhookId, WebhookSecret};

mod evidence;
pub use evidence::{ArtifactCheck, Evidence, EvidenceKind, ManifestSigner, SmallFile};

/// What a write expects of the record it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Absent,
    Revision(u64),
}

/// One record write inside a commit.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // a handful per commit, built once, moved once
pub enum Put {
    Model(Model, Expect),
    Version(ModelVersion, Expect),
    Promotion(Promotion, Expect),
    Principal(PrincipalRecord, Expect),
    /// Append-only records: written once, never replaced.
    CardRevision(CardRevision),
    ProductionChange(ProductionChange),
    Incident(Incident),
    /// A change of an incident after it was opened (classification, report, reminder):
    /// `Expect::Revision` of the stored incident (an unchanged one is at revision 0).
    IncidentChange(Incident, Expect),
    /// A webhook subscription (deleting one replaces it with its tombstone).
    Webhook(Webhook, Expect),
    /// An MLflow registered model's metadata (deleting one replaces it with its tombstone).
    RegisteredModel(RegisteredModel, Expect),
    /// What one serving endpoint serves, as last reported.
    Serving(crate::serving::ServingRecord, Expect),
}

/// Everything one governance action changes, committed atomically.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Commit {
    pub puts: Vec<Put>,
    pub audit: Vec<AuditDraft>,
    pub events: Vec<DomainEvent>,
    pub idempotency: Option<IdempotencyRecord>,
}

/// What a commit was assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The sequence numbers of the commit's audit events, in order.
    pub audit_seqs: Vec<u64>,
}

/// A page of results; `next_cursor` is opaque to callers.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelFilter {
    /// Models with at least one version in this stage.
    pub stage: Option<Stage>,
    pub owner: Option<String>,
    pub tier: Option<RiskTier>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReviewFilter {
    pub status: ReviewStatus,
    /// Only reviews of these stages (the ones the caller's roles allow); empty means none.
    pub stages: Vec<ReviewStage>,
}

/// A record a governance action reads by key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Model(ModelName),
    Version(ModelName, VersionNumber),
    Promotion(String),
    Principal(PrincipalId),
    Idempotency(String),
    RegisteredModel(ModelName),
}

/// The records a [`Registry::get_many`] found; absent keys are simply missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    pub models: HashMap<ModelName, Model>,
    pub versions: HashMap<(ModelName, VersionNumber), ModelVersion>,
    pub promotions: HashMap<String, Promotion>,
    pub principals: HashMap<PrincipalId, PrincipalRecord>,
    pub idempotency: HashMap<String, IdempotencyRecord>,
    pub registered_models: HashMap<ModelName, RegisteredModel>,
}

impl Fetched {
    pub fn model(&self, name: &ModelName) -> Option<&Model> {
        self.models.get(name)
    }
    pub fn version(&self, name: &ModelName, version: VersionNumber) -> Option<&ModelVersion> {
        self.versions.get(&(name.clone(), version))
    }
    pub fn promotion(&self, id: &str) -> Option<&Promotion> {
        self.promotions.get(id)
    }
    pub fn principal(&self, id: &PrincipalId) -> Option<&PrincipalRecord> {
        self.principals.get(id)
    }
    pub fn idempotency(&self, key: &str) -> Option<&IdempotencyRecord> {
        self.idempotency.get(key)
    }
    pub fn registered_model(&self, name: &ModelName) -> Option<&RegisteredModel> {
        self.registered_models.get(name)
    }
}

/// A pending review with the promotion it belongs to (for separation-of-duties checks).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewItem {
    pub review: Review,
    pub promotion: Promotion,
}

/// The cursor of a key-ordered listing (the SQLite and in-memory stores): opaque to callers,
/// the hex of the last key returned.
pub fn encode_cursor(key: &str) -> String {
    hex::encode(key)
}

/// For stores that hold few pending retirements and order them in memory: the versions of
/// `versions` whose request is in `status`, keyed and ordered by
/// [`PendingRetirement::sort_key`], after the cursor key `after`, at most `limit + 1` (one more
/// tells a page there is a next one).
pub fn pending_retirements_after(
    versions: impl IntoIterator<Item = ModelVersion>,
    status: RetirementStatus,
    after: &str,
    limit: usize,
) -> Vec<(String, ModelVersion)> {
    let mut found: Vec<(String, ModelVersion)> = versions
        .into_iter()
        .filter_map(|v| {
            let p = v.pending_retirement.as_ref()?;
            let key = (p.status() == status).then(|| p.sort_key())?;
            Some((key, v))
        })
        .filter(|(k, _)| k.as_str() > after)
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.truncate(limit.saturating_add(1));
    found
}

/// The key a listing resumes after (`""` for the first page); a cursor that is not one
/// [`encode_cursor`] made is [`StoreError::InvalidCursor`].
pub fn decode_cursor(cursor: Option<&str>) -> Result<String, StoreError> {
    let Some(c) = cursor else {
        return Ok(String::new());
    };
    // No store hands out an empty cursor or one longer than a key can make.
    if c.is_empty() || c.len() > MAX_CURSOR {
        return Err(StoreError::InvalidCursor);
    }
    hex::decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
        .ok_or(StoreError::InvalidCursor)
}

/// The longest cursor [`encode_cursor`] makes of a store key (1 KiB keys, hex).
const MAX_CURSOR: usize = 2048;

/// Registry storage: reads plus one atomic commit.
///
/// Request economy: a governance action reads what it needs with one [`Registry::get_many`]
/// (one batched request on DynamoDB), at most one query, and writes with one [`Registry::commit`].
#[async_trait]
pub trait Registry: Send + Sync {
    /// Point reads of several records at once. Backends answer it with one request (the
    /// default issues one read per key, which suits an embedded database).
    async fn get_many(&self, keys: &[Key]) -> Result<Fetched, StoreError> {
        let mut out = Fetched::default();
        for key in keys {
            match key {
                Key::Model(n) => {
                    if let Some(m) = self.model(n).await? {
                        out.models.insert(n.clone(), m);
                    }
                }
                Key::Version(n, v) => {
                    if let Some(r) = self.version(n, *v).await? {
                        out.versions.insert((n.clone(), *v), r);
                    }
                }
                Key::Promotion(id) => {
                    if let Some(p) = self.promotion(id).await? {
                        out.promotions.insert(id.clone(), p);
                    }
                }
                Key::Principal(id) => {
                    if let Some(p) = self.principal(id).await? {
                        out.principals.insert(id.clone(), p);
                    }
                }
                Key::Idempotency(k) => {
                    if let Some(r) = self.idempotency(k).await? {
                        out.idempotency.insert(k.clone(), r);
                    }
                }
                Key::RegisteredModel(n) => {
                    if let Some(r) = self.registered_model(n).await? {
                        out.registered_models.insert(n.clone(), r);
                    }
                }
            }
        }
        Ok(out)
    }
    async fn model(&self, name: &ModelName) -> Result<Option<Model>, StoreError>;
    async fn version(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Option<ModelVersion>, StoreError>;
    /// All versions of a model, ascending.
    async fn versions(&self, name: &ModelName) -> Result<Vec<ModelVersion>, StoreError>;
    async fn list_models(
        &self,
        filter: &ModelFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError>;
    async fn card_revisions(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Vec<CardRevision>, StoreError>;
    async fn promotion(&self, id: &str) -> Result<Option<Promotion>, StoreError>;
    /// Promotions of one version, newest first.
    async fn promotions_of(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Vec<Promotion>, StoreError>;
    async fn list_reviews(
        &self,
        filter: &ReviewFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ReviewItem>, StoreError>;
    /// Versions whose pending retirement request is in `status`, ordered by the request's
    /// [`PendingRetirement::sort_key`](crate::records::PendingRetirement::sort_key) (the
    /// cursor's key).
    async fn retirements(
        &self,
        status: RetirementStatus,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ModelVersion>, StoreError>;
    /// Pending reviews whose deadline is at or before `now` (for the workflow runner).
    async fn reviews_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Review>, StoreError>;
    /// The last production change of a model at or before `at`.
    async fn production_at(
        &self,
        name: &ModelName,
        at: DateTime<Utc>,
    ) -> Result<Option<ProductionChange>, StoreError>;
    /// Models serving production (for periodic reviews).
    async fn production_models(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError>;
    async fn incidents(
        &self,
        name: Option<&ModelName>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Incident>, StoreError>;
    /// One incident, by id.
    async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError>;
    /// Serious incidents awaiting their report reminder ([`SeriousReporting::awaiting_reminder`],
    /// still open) whose report is due at or before `before`, earliest due first.
    ///
    /// [`SeriousReporting::awaiting_reminder`]: crate::records::SeriousReporting::awaiting_reminder
    async fn serious_reports_due(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError>;
    async fn principal(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, StoreError>;
    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError>;
    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// A webhook subscription, its tombstone included.
    async fn webhook(&self, id: &WebhookId) -> Result<Option<Webhook>, StoreError>;
    /// Every webhook subscription, tombstones included, by id (a deployment has a handful).
    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// An MLflow registered model's metadata, its tombstone included.
    async fn registered_model(
        &self,
        name: &ModelName,
    ) -> Result<Option<RegisteredModel>, StoreError>;
    /// Every MLflow registered model's metadata, tombstones included, ordered by name.
    async fn registered_models(&self) -> Result<Vec<RegisteredModel>, StoreError>;
    /// The serving record of `key` (`{platform}/{environment}/{endpoint}`).
    async fn serving(&self, key: &str)
        -> Result<Option<crate::serving::ServingRecord>, StoreError>;
    /// Serving records ordered by key, after `cursor`.
    async fn serving_records(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<crate::serving::ServingRecord>, StoreError>;
    /// Every version whose artifact has SHA-256 `sha256` (when given) or URI `uri`.
    async fn versions_with_artifact(
        &self,
        sha256: Option<&crate::types::Sha256>,
        uri: &str,
    ) -> Result<Vec<VersionRef>, StoreError>;
    async fn commit(&self, commit: Commit) -> Result<Receipt, StoreError>;
}

/// Read side of the audit log.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Events with `seq > after`, ascending, optionally only those naming `model`.
    async fn events(
        &self,
        model: Option<&ModelName>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError>;
    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError>;
    /// Inclusion proof of event `seq` against the tree of `size` events.
    async fn inclusion_proof(
        &self,
        seq: u64,
        size: u64,
    ) -> Result<(AuditEvent, Vec<Hash>), StoreError>;
    /// Consistency proof between two tree sizes.
    async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, StoreError>;
    /// The public key checkpoints are signed with (raw bytes) and its id.
    fn public_key(&self) -> (String, Vec<u8>);
}

/// Time, injectable so tests can move it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Waiting before an action that lost a race tries again. The core has no async runtime, so
/// the backends hand it their timer ([`Governance::with_pause`](crate::service::Governance));
/// without one, retries follow each other at once.
#[async_trait]
pub trait Pause: Send + Sync {
    async fn pause(&self, duration: std::time::Duration);
}

/// Unique ids for promotions and incidents.
pub trait IdGen: Send + Sync {
    fn id(&self, prefix: &str) -> String;
}

/// Starts and advances review workflows outside the registry. The embedded backend needs none
/// (its runner reads pending reviews from the store); AWS starts Step Functions executions and
/// answers their task tokens.
#[async_trait]
pub trait Workflows: Send + Sync {
    async fn promotion_started(&self, _promotion: &Promotion) -> Result<(), StoreError> {
        Ok(())
    }
    async fn review_decided(
        &self,
        _promotion: &Promotion,
        _review: &Review,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// Whether retirements go through a workflow (request, confirmation, archive) rather than
    /// taking effect when requested. The embedded mode retires at once.
    fn confirms_retirements(&self) -> bool {
        false
    }
    /// Starts the retirement workflow of `version`'s pending retirement. Called again for the
    /// same request when a client repeats it: starting must be idempotent.
    async fn retirement_requested(
        &self,
        _version: &ModelVersion,
        _request: &PendingRetirement,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// Tells the retirement workflow that `request` was confirmed (`confirmed_by` set) or
    /// refused (`refusal` given).
    async fn retirement_decided(
        &self,
        _request: &PendingRetirement,
        _refusal: Option<&str>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Workflows that need nothing beyond the registry (the embedded mode).
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcessWorkflows;
impl Workflows for InProcessWorkflows {}

/// Who is calling, as established by authentication — never by a request body.
///
/// `id` is the acting identity: the audit log's actor and what separation of duties compares.
/// For an IAM assumed-role session it is the session (`arn:aws:sts::…:assumed-role/ROLE/SESSION`),
/// so two people sharing a role stay two people, while `roles` may come from grants to the role
/// itself; core does not care where roles came from, only who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub id: PrincipalId,
    pub roles: Vec<crate::types::Role>,
    /// How the caller authenticated; recorded with every audit event it causes.
    pub auth: crate::types::AuthMethod,
}

impl Caller {
    pub fn new(
        id: PrincipalId,
        roles: Vec<crate::types::Role>,
        auth: crate::types::AuthMethod,
    ) -> Self {
        Self { id, roles, auth }
    }

    /// Steward's own component `component` (`system:<component>`), acting without roles.
    pub fn system(component: &str) -> Self {
        Self::new(
            PrincipalId::system(component),
            Vec::new(),
            crate::types::AuthMethod::System,
        )
    }

    pub fn has(&self, role: crate::types::Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Short-lived sign-in state (web console sessions, pending OpenID Connect sign-ins), shared by
/// every instance that serves the console: in memory for `steward serve`, DynamoDB on AWS.
///
/// Invariants an implementation must keep: `key` is already a digest of the secret (so the
/// store never holds a usable session id); an entry past `expires_at` is never returned, even
/// if the backend has not removed it yet; `take` returns an entry to at most one caller (a
/// sign-in state is single-use).
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores `value` under `key` until `expires_at`, replacing what was there.
    async fn put(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The live value under `key`.
    async fn get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError>;
    /// Removes the entry under `key` and returns it if it was live: single use.
    async fn take(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError>;
    /// Removes the entry under `key`, if any.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// Where webhook signing secrets live: the SQLite database's own table on `steward serve`,
/// SSM SecureString parameters on AWS (never a plain environment variable or a record).
///
/// Invariant: a name is written once with one secret (a new secret gets a new name), so a
/// subscription record never points at a secret that changed under it.
#[async_trait]
pub trait Secrets: Send + Sync {
    async fn put(&self, name: &str, secret: &WebhookSecret) -> Result<(), StoreError>;
    async fn get(&self, name: &str) -> Result<Option<WebhookSecret>, StoreError>;
    /// Removes a secret no record points at any more (best effort; absent is fine).
    async fn delete(&self, name: &str) -> Result<(), StoreError>;
}

/// Webhook deliveries in flight and recently done (not governance state: not audited).
///
/// Invariants: `enqueue` is create-only by delivery id, so fanning the same event out twice
/// (after a crash) queues it once; `due` returns pending deliveries whose `next_attempt_at`
/// is at or before `now`, oldest first.
#[async_trait]
pub trait Deliveries: Send + Sync {
    async fn enqueue(&self, deliveries: &[Delivery]) -> Result<(), StoreError>;
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// Replaces the stored delivery of the same id with this state.
    async fn save(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// A subscription's deliveries, newest first.
    async fn recent(&self, webhook: &WebhookId, limit: usize) -> Result<Vec<Delivery>, StoreError>;
}

/// A change request in an external change-management system (ServiceNow), as the production
/// gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// The change's number, e.g. `CHG0030001`: what the gate's reasons and the deployment's
    /// audit event name.
    pub number: String,
    /// Its state as people read it (`Assess`, `Scheduled`, ...), for reasons.
    pub state: String,
    /// Whether the system's configured rule counts it as approved for implementation.
    pub approved: bool,
}

/// Change control for production: when a deployment attaches one
/// ([`Governance::with_change_control`](crate::service::Governance::with_change_control)),
/// nothing reaches production until the change request opened for that version is approved.
///
/// Invariant: an implementation answers from the system of record on every call (no cache that
/// could approve after the change was withdrawn); `Err` when it cannot, which the gate treats as
/// a refusal, never as an approval.
#[async_trait]
pub trait ChangeControl: Send + Sync {
    /// The system's name for people, e.g. `ServiceNow`.
    fn system(&self) -> &str;
    /// The change request opened for `name` `version`, if there is one.
    async fn change_for(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Option<ChangeRecord>, StoreError>;
}
