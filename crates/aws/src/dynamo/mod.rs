//! The registry and audit log on one DynamoDB table: [`DynamoStore`] implements the core's
//! [`Registry`] and [`AuditLog`] ports with the keys and access patterns of
//! `crates/aws/ACCESS_PATTERNS.md` (keep the two in step).
//!
//! Invariants:
//! - Every call is a fixed small number of requests and none is a `Scan`: point reads are one
//!   consistent `BatchGetItem` (or `GetItem`), lists one `Query` (two for a stage filter or an
//!   audit page that crosses a partition), and every state change one `TransactWriteItems`.
//! - A commit applies all of a [`Commit`] or nothing: records with their expectations as
//!   conditions, the idempotency record, the audit events at `head.size + 1 ..`, the Merkle
//!   nodes they complete and the head conditioned on its old size (`commit.rs`). A failed
//!   expectation is `Conflict`, a taken key `IdempotencyKeyTaken`; a lost race for the head
//!   alone is retried on the new head, a bounded number of times. A `Conflict` is reported
//!   after a short random pause that widens while this instance keeps losing races, so that
//!   callers that retry at once (core's `register`) do not collide again in lockstep.
//! - The audit head is cached between calls. Point reads (`get_many`, `model`, `version`,
//!   `promotion`) fetch it in the same batch, so a governance action's commit is planned on a
//!   head that is milliseconds old and a commit costs one request; a stale head costs a
//!   retry, never a fork.
//! - Reads that decide anything (point reads, a model's versions, promotions, card revisions,
//!   production history, principals, the audit partitions) are strongly consistent. Queries on
//!   a GSI (list models, reviews, incidents, events of one model) are eventually consistent,
//!   as DynamoDB offers them.
//! - Principal roles are served from a TTL cache (default 5 s, [`DynamoStore::with_principal_ttl`];
//!   0 disables it) so authenticating a request costs no request when warm. A role change made
//!   through another instance (another Lambda) is therefore seen here after at most the TTL;
//!   changes committed through this instance are seen at once.
//! - Checkpoints are not signed here: the checkpoint function reads [`DynamoStore::head`],
//!   signs, and stores with [`DynamoStore::put_checkpoint`], which never moves the latest
//!   checkpoint backwards.

mod commit;
mod items;
mod keys;
mod merkle;
mod outbox;
mod table;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use steward_core::audit::merkle::ProofError;
use steward_core::audit::verify::StoredEvent;
use steward_core::audit::{AuditEvent, Checkpoint, Hash};
use steward_core::ports::{
    AuditLog, Commit, Fetched, Key, ModelFilter, Page, Put, Receipt, Registry, ReviewFilter,
    ReviewItem,
};
use steward_core::records::{
    CardRevision, IdempotencyRecord, Incident, Model, ModelVersion, PrincipalRecord,
    ProductionChange, Promotion, Review, ReviewStatus,
};
use steward_core::types::{ModelName, PrincipalId, ReviewStage};
use steward_core::StoreError;

pub use outbox::{audit_event_from_image, StreamedAuditEvent, OUTBOX_MARKER_TTL, TASK_TOKEN_TTL};
pub use table::create_table;

use commit::Outcome;
use items::{from_item, key_item, str_attr, Head, Item};
use keys::{decode_cursor, encode_cursor, ItemKey, BUCKET};

/// How many times a commit is re-planned after losing the race for the audit head.
const COMMIT_ATTEMPTS: u32 = 16;
/// How many times unprocessed keys of a `BatchGetItem` are asked for again.
const BATCH_ATTEMPTS: u32 = 8;
/// Keys per `BatchGetItem` (DynamoDB's limit).
const BATCH_KEYS: usize = 100;
/// Principal records cached at most (the cache is cleared when full).
const PRINCIPAL_CACHE_MAX: usize = 10_000;

/// The audit log's current state, for the checkpoint function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// Number of events: events `1..=size` exist.
    pub size: u64,
    /// RFC 6962 root of the first `size` events.
    pub root: Hash,
    /// Time of the last event (the log's time format); `None` for the empty log.
    pub time: Option<String>,
}

/// Describes an SDK failure for `StoreError::Backend`: the operation, the service's error code
/// and message, or the transport failure with its causes. Never includes credentials.
pub(crate) fn sdk_error<E, R>(op: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            StoreError::Backend(format!(
                "DynamoDB {op} failed: {}: {}",
                err.code().unwrap_or("unknown error"),
                err.message().unwrap_or("no message")
            ))
        }
        _ => StoreError::Backend(format!("DynamoDB {op} failed: {}", DisplayErrorContext(&e))),
    }
}

/// Lost races seen by this instance in quick succession, to size the pause before the
/// next one is reported (see [`DynamoStore::lost_race_pause`]).
#[derive(Debug)]
struct Contention {
    last: Instant,
    level: u32,
}

/// A small pseudo-random delay for retries, so racing writers spread out.
fn jitter(attempt: u32) -> Duration {
    let cap = 5u64 << attempt.min(5); // 5 ms .. 160 ms
    let r = (uuid::Uuid::new_v4().as_u128() % u128::from(cap)) as u64;
    Duration::from_millis(r + 1)
}

/// One `Query`'s parameters.
#[derive(Default, Clone)]
struct Query {
    index: Option<&'static str>,
    key_condition: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    filter: Option<String>,
    projection: Option<String>,
    limit: Option<i32>,
    descending: bool,
    consistent: bool,
    start: Option<Item>,
}

impl Query {
    fn table(pk: String) -> Self {
        Self::on(None, "pk", pk).consistent()
    }

    fn index(index: &'static str, pk: String) -> Self {
        Self::on(Some(index), &format!("{index}pk"), pk)
    }

    fn on(index: Option<&'static str>, pk_attr: &str, pk: String) -> Self {
        let mut q = Query {
            index,
            key_condition: "#pk = :pk".into(),
            ..Query::default()
        };
        q.names.insert("#pk".into(), pk_attr.into());
        q.values.insert(":pk".into(), AttributeValue::S(pk));
        q
    }

    fn consistent(mut self) -> Self {
        self.consistent = true;
        self
    }

    /// Adds a sort-key condition; `cond` uses `#sk` and the given values.
    fn sort(mut self, sk_attr: &str, cond: &str, values: &[(&str, String)]) -> Self {
        self.key_condition = format!("#pk = :pk AND {cond}");
        self.names.insert("#sk".into(), sk_attr.into());
        for (k, v) in values {
            self.values
                .insert((*k).into(), AttributeValue::S(v.clone()));
        }
        self
    }

    fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        self
    }

    fn filter(
        mut self,
        expr: String,
        names: &[(&str, &str)],
        values: Vec<(String, AttributeValue)>,
    ) -> Self {
        self.filter = Some(expr);
        for (k, v) in names {
            self.names.insert((*k).into(), (*v).into());
        }
        self.values.extend(values);
        self
    }
}

/// How many items a filtered query evaluates for a page of `limit` (a filter drops some).
fn budget(limit: usize, filtered: bool) -> usize {
    let page = limit.saturating_add(1);
    if filtered {
        page.saturating_mul(4).min(1000).max(page)
    } else {
        page
    }
}

/// A page from rows keyed by the sort key they resume after; `evaluated` is the sort key of
/// the query's `LastEvaluatedKey`, if it stopped early.
fn page_of<T>(mut rows: Vec<(String, T)>, limit: usize, evaluated: Option<String>) -> Page<T> {
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(k, _)| encode_cursor(k))
    } else {
        evaluated.map(|k| encode_cursor(&k))
    };
    Page {
        items: rows.into_iter().map(|(_, v)| v).collect(),
        next_cursor: next,
    }
}

#[derive(Default)]
struct PrincipalCache {
    entries: HashMap<PrincipalId, (Instant, Option<PrincipalRecord>)>,
}

/// The registry and audit log on one DynamoDB table.
pub struct DynamoStore {
    client: Client,
    table: String,
    signer_public: (String, Vec<u8>),
    head: Mutex<Option<Head>>,
    principal_ttl: Duration,
    principals: Mutex<PrincipalCache>,
    contention: Mutex<Contention>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .field("key_id", &self.signer_public.0)
            .field("principal_ttl", &self.principal_ttl)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store on `table`. `signer_public` is `(key id, raw public key)` of the key that signs
    /// checkpoints (the checkpoint function's KMS key), returned by [`AuditLog::public_key`].
    pub fn new(client: Client, table: String, signer_public: (String, Vec<u8>)) -> Self {
        Self {
            client,
            table,
            signer_public,
            head: Mutex::new(None),
            principal_ttl: Duration::from_secs(5),
            principals: Mutex::new(PrincipalCache::default()),
            contention: Mutex::new(Contention {
                last: Instant::now(),
                level: 0,
            }),
        }
    }

    /// How long a principal's roles are served from memory (`0` reads the table every time).
    pub fn with_principal_ttl(mut self, ttl: Duration) -> Self {
        self.principal_ttl = ttl;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    // ------------------------------------------------------------------ low-level requests

    fn cached_head(&self) -> Option<Head> {
        self.head.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Remembers a head read or written; a smaller one never replaces a larger one, since the
    /// log only grows (a stale cache only costs a retry).
    fn observe_head(&self, head: Head) {
        let mut cached = self.head.lock().unwrap_or_else(|e| e.into_inner());
        if cached.as_ref().is_none_or(|c| head.size >= c.size) {
            *cached = Some(head);
        }
    }

    /// How long to wait before reporting a lost race as `Conflict`: random, within a window
    /// of the transaction's own round trip (at least 5 ms) for an isolated conflict, doubling
    /// up to 32 round trips (at most 1 s) while this instance keeps losing races. The caller re-reads and
    /// retries at once (core's `register` does, a few times); without the pause, writers
    /// that collided once collide again in lockstep and only one of them wins per round.
    fn lost_race_pause(&self, round_trip: Duration) -> Duration {
        let level = {
            let mut c = self.contention.lock().unwrap_or_else(|e| e.into_inner());
            if c.last.elapsed() > Duration::from_secs(2) {
                c.level = 0;
            }
            c.level = (c.level + 1).min(5);
            c.last = Instant::now();
            c.level
        };
        let unit = (round_trip.as_millis() as u64).clamp(5, 200);
        let window = (unit << level).min(1000);
        Duration::from_millis(1 + (uuid::Uuid::new_v4().as_u128() % u128::from(window)) as u64)
    }

    fn forget_head(&self) {
        *self.head.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn get_item(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
    }

    /// Consistent reads of many items: one `BatchGetItem` per 100 distinct keys, asking again
    /// for unprocessed keys.
    async fn batch_get(&self, keys: &[ItemKey]) -> Result<HashMap<ItemKey, Item>, StoreError> {
        let mut seen = HashSet::new();
        let distinct: Vec<&ItemKey> = keys.iter().filter(|k| seen.insert(*k)).collect();
        let mut found = HashMap::with_capacity(distinct.len());
        for chunk in distinct.chunks(BATCH_KEYS) {
            let mut pending: Vec<Item> = chunk.iter().map(|k| key_item(k)).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == BATCH_ATTEMPTS {
                    return Err(StoreError::Backend(format!(
                        "DynamoDB BatchGetItem left {} keys unprocessed after {attempt} attempts",
                        pending.len()
                    )));
                }
                if attempt > 0 {
                    tokio::time::sleep(jitter(attempt)).await;
                }
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Backend(format!("cannot build a batch read: {e}")))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| sdk_error("BatchGetItem", e))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let Some(k) = items::item_key(&item) {
                        found.insert(k, item);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|ka| ka.keys)
                    .unwrap_or_default();
            }
        }
        Ok(found)
    }

    /// One `Query` request: the items and the `LastEvaluatedKey`.
    async fn query(&self, q: Query) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(q.index.map(str::to_owned))
            .key_condition_expression(q.key_condition)
            .set_expression_attribute_names(Some(q.names))
            .set_expression_attribute_values(Some(q.values))
            .set_filter_expression(q.filter)
            .set_projection_expression(q.projection)
            .set_limit(q.limit)
            .scan_index_forward(!q.descending)
            .set_consistent_read(q.consistent.then_some(true))
            .set_exclusive_start_key(q.start)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// Every item of a query, following `LastEvaluatedKey` (one request unless the results
    /// pass 1 MB).
    async fn query_all(&self, q: Query) -> Result<Vec<Item>, StoreError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let mut page_query = q.clone();
            page_query.start = start;
            let (mut page, next) = self.query(page_query).await?;
            all.append(&mut page);
            match next {
                Some(k) => start = Some(k),
                None => return Ok(all),
            }
        }
    }

    async fn read_head(&self) -> Result<Head, StoreError> {
        let head = match self.get_item(&keys::head_key()).await? {
            Some(item) => items::head_from_item(item)?,
            None => Head::empty(),
        };
        self.observe_head(head.clone());
        Ok(head)
    }

    /// Items by key, with the audit head fetched in the same batch and cached.
    async fn read_with_head(&self, keys: &[ItemKey]) -> Result<HashMap<ItemKey, Item>, StoreError> {
        let head_key = keys::head_key();
        let mut all = keys.to_vec();
        all.push(head_key.clone());
        let mut found = self.batch_get(&all).await?;
        let head = match found.remove(&head_key) {
            Some(item) => items::head_from_item(item)?,
            None => Head::empty(),
        };
        self.observe_head(head);
        Ok(found)
    }

    async fn point_read<T: serde::de::DeserializeOwned>(
        &self,
        key: ItemKey,
    ) -> Result<Option<T>, StoreError> {
        self.read_with_head(std::slice::from_ref(&key))
            .await?
            .remove(&key)
            .map(from_item)
            .transpose()
    }

    // ------------------------------------------------------------------ audit helpers

    /// The audit head (consistent read), for the checkpoint function.
    pub async fn head(&self) -> Result<AuditHead, StoreError> {
        let head = self.read_head().await?;
        Ok(AuditHead {
            size: head.size,
            root: merkle::frontier_root(&head.frontier),
            time: head.time,
        })
    }

    /// Stores a signed checkpoint as `CHECKPOINT#{size}` and as `CHECKPOINT#LATEST`, in one
    /// transaction that only succeeds if it advances the latest checkpoint. Returns `false`
    /// (writing nothing) when a checkpoint of this size or a later one is already stored.
    ///
    /// The store does not check the signature or the root; the checkpoint function computed
    /// them from [`DynamoStore::head`], and verifiers check them against the events.
    pub async fn put_checkpoint(&self, cp: &Checkpoint) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::types::{Put as PutAction, TransactWriteItem};
        let build = |b: aws_sdk_dynamodb::types::builders::PutBuilder| {
            b.build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| StoreError::Backend(format!("cannot build a DynamoDB put: {e}")))
        };
        let history = build(
            PutAction::builder()
                .table_name(&self.table)
                .set_item(Some(items::checkpoint_item(
                    cp,
                    keys::checkpoint_key(cp.size),
                )?))
                .condition_expression("attribute_not_exists(pk)"),
        )?;
        let latest = build(
            PutAction::builder()
                .table_name(&self.table)
                .set_item(Some(items::checkpoint_item(
                    cp,
                    keys::latest_checkpoint_key(),
                )?))
                .condition_expression("attribute_not_exists(pk) OR #size < :size")
                .expression_attribute_names("#size", "size")
                .expression_attribute_values(":size", items::n(cp.size)),
        )?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(history)
            .transact_items(latest)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c))
                    if c.cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                {
                    Ok(false)
                }
                _ => Err(sdk_error("TransactWriteItems", e)),
            },
        }
    }

    /// Every stored checkpoint, oldest first (the history `verify_log` checks).
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let q = Query::table(keys::AUDIT_PK.into()).sort(
            "sk",
            "#sk BETWEEN :lo AND :hi",
            &[
                (":lo", "CHECKPOINT#0".into()),
                (":hi", "CHECKPOINT#9".into()),
            ],
        );
        self.query_all(q)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Stored audit rows with `seq > after`, ascending, at most `limit`: exactly what a
    /// verifier needs (`steward_core::audit::verify::verify_log`).
    pub async fn events_range(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self
            .event_rows(after, limit)
            .await?
            .into_iter()
            .map(|(seq, bytes, leaf)| StoredEvent {
                seq,
                bytes,
                leaf_hash: Some(leaf),
            })
            .collect())
    }

    /// Rows of the event partitions from `after + 1`: one query per partition touched (a
    /// page of at most 4096 events touches at most two), more only past 1 MB.
    async fn event_rows(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>, Hash)>, StoreError> {
        let mut out = Vec::new();
        let mut after = after;
        let mut start = None;
        while out.len() < limit {
            let bucket = after / BUCKET;
            let mut q = Query::table(keys::event_bucket_pk(bucket))
                .sort("sk", "#sk > :after", &[(":after", keys::seq_sk(after))])
                .limit(limit - out.len());
            q.start = start.take();
            let (rows, next) = self.query(q).await?;
            for item in rows {
                let row = items::event_from_item(item)?;
                after = row.0;
                out.push(row);
            }
            if next.is_some() {
                start = next; // the same partition continues past 1 MB
            } else if after < (bucket + 1) * BUCKET {
                break; // the partition is not full: the log ends here
            }
        }
        Ok(out)
    }

    /// Fetches the stored subtrees a proof needs and the head, in one batch.
    async fn proof_items(
        &self,
        ranges: &[merkle::Range],
        size: u64,
        extra: Option<ItemKey>,
    ) -> Result<(HashMap<merkle::Subtree, Hash>, HashMap<ItemKey, Item>), StoreError> {
        let needed = merkle::needed(ranges);
        let mut keys: Vec<ItemKey> = needed.iter().map(|s| items::subtree_key(*s)).collect();
        keys.extend(extra);
        let mut found = self.read_with_head(&keys).await?;
        let len = self.cached_head().map_or(0, |h| h.size);
        if size > len {
            return Err(StoreError::Backend(
                ProofError::SizeBeyondTree { size, len }.to_string(),
            ));
        }
        let mut hashes = HashMap::with_capacity(needed.len());
        for s in needed {
            let key = items::subtree_key(s);
            let item = found.remove(&key).ok_or_else(|| {
                StoreError::Backend(format!(
                    "the audit log has no Merkle item {} / {} (level {}, index {})",
                    key.0, key.1, s.level, s.index
                ))
            })?;
            hashes.insert(s, items::subtree_hash(s, item)?);
        }
        Ok((hashes, found))
    }

    fn assemble(
        ranges: &[merkle::Range],
        hashes: &HashMap<merkle::Subtree, Hash>,
    ) -> Result<Vec<Hash>, StoreError> {
        merkle::assemble(ranges, hashes).map_err(|s| {
            StoreError::Backend(format!(
                "the audit log has no Merkle item for level {}, index {}",
                s.level, s.index
            ))
        })
    }

    // ------------------------------------------------------------------ commit

    async fn try_commit(&self, commit: &Commit) -> Result<Receipt, StoreError> {
        let appends = !commit.audit.is_empty();
        let mut last = String::new();
        for attempt in 0..COMMIT_ATTEMPTS {
            let head = match (appends, self.cached_head()) {
                (false, _) => None,
                (true, Some(h)) => Some(h),
                (true, None) => Some(self.read_head().await?),
            };
            let plan = commit::plan(&self.table, commit, head.as_ref(), Utc::now())?;
            let sent = Instant::now();
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(plan.items))
                // Lets the SDK's own retry of a timed-out attempt succeed idempotently
                // instead of failing on conditions its first attempt already satisfied.
                .client_request_token(uuid::Uuid::new_v4().to_string())
                .send()
                .await;
            let err = match result {
                Ok(_) => {
                    if let Some(h) = plan.new_head {
                        self.observe_head(h);
                    }
                    return Ok(Receipt {
                        audit_seqs: plan.seqs,
                    });
                }
                Err(e) => e,
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    c.cancellation_reasons().to_vec()
                }
                _ => return Err(sdk_error("TransactWriteItems", err)),
            };
            match commit::classify(&plan.slots, &reasons) {
                Outcome::IdempotencyKeyTaken => return Err(StoreError::IdempotencyKeyTaken),
                Outcome::Conflict(m) => {
                    tokio::time::sleep(self.lost_race_pause(sent.elapsed())).await;
                    return Err(StoreError::Conflict(m));
                }
                Outcome::HeadMoved(Some(h)) => {
                    last = format!("the audit head moved to {}", h.size);
                    *self.head.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
                    if attempt > 0 {
                        tokio::time::sleep(jitter(attempt)).await;
                    }
                }
                Outcome::HeadMoved(None) => {
                    last = "the audit head moved".into();
                    self.forget_head();
                }
                Outcome::Retry(code) => {
                    last = code;
                    self.forget_head();
                    tokio::time::sleep(jitter(attempt)).await;
                }
                Outcome::AuditItemExists(seq) => {
                    // Either the head moved and DynamoDB reported only the event, or the log
                    // is inconsistent; a fresh head tells which.
                    let fresh = self.read_head().await?;
                    if fresh.size == plan.old_size {
                        return Err(StoreError::Backend(format!(
                            "the audit log is inconsistent: an item for event {seq} exists \
                             beyond the head's size {}",
                            fresh.size
                        )));
                    }
                    last = format!("audit event {seq} was taken");
                }
                Outcome::Failed(m) => return Err(StoreError::Backend(m)),
            }
        }
        Err(StoreError::Conflict(format!(
            "the audit log is busy: the commit lost the race for the next position \
             {COMMIT_ATTEMPTS} times ({last}); retry"
        )))
    }

    fn remember_principals(&self, commit: &Commit) {
        if self.principal_ttl.is_zero() {
            return;
        }
        let mut cache = self.principals.lock().unwrap_or_else(|e| e.into_inner());
        for p in &commit.puts {
            if let Put::Principal(p, _) = p {
                cache
                    .entries
                    .insert(p.id.clone(), (Instant::now(), Some(p.clone())));
            }
        }
    }

    // ------------------------------------------------------------------ listing helpers

    /// One page of a GSI partition in sort-key order, resuming after `after`.
    async fn index_page(
        &self,
        mut q: Query,
        sk_attr: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<(String, Item)>, Option<String>), StoreError> {
        if let Some(a) = after {
            q = q.sort(sk_attr, "#sk > :after", &[(":after", a)]);
        }
        let filtered = q.filter.is_some();
        let (found, next) = self.query(q.limit(budget(limit, filtered))).await?;
        let rows = found
            .into_iter()
            .map(|item| {
                let k = str_attr(&item, sk_attr).unwrap_or_default().to_owned();
                (k, item)
            })
            .collect();
        let evaluated = next.and_then(|k| str_attr(&k, sk_attr).map(str::to_owned));
        Ok((rows, evaluated))
    }

    /// Models listed through the stage index: a query for the versions in the stage, then
    /// one batch read of their distinct models.
    async fn models_in_stage(
        &self,
        filter: &ModelFilter,
        stage: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        let mut q = Query::index("gsi1", keys::stage_gsi_pk(stage));
        if let Some(name) = &after {
            // Past every version of the last model listed.
            q = q.sort("gsi1sk", "#sk > :after", &[(":after", format!("{name}$"))]);
        }
        q.projection = Some("gsi1sk".into());
        let (found, next) = self.query(q.limit(budget(limit, true))).await?;
        let mut names: Vec<String> = Vec::new();
        for item in &found {
            let Some((name, _)) = str_attr(item, "gsi1sk").and_then(|k| k.rsplit_once('#')) else {
                continue;
            };
            if names.last().map(String::as_str) != Some(name) {
                names.push(name.to_owned());
            }
        }
        let next_cursor = if names.len() > limit {
            names.truncate(limit);
            names.last().map(|n| encode_cursor(n))
        } else if next.is_some() {
            names.last().map(|n| encode_cursor(n))
        } else {
            None
        };
        let model_keys: Vec<ItemKey> = names
            .iter()
            .filter_map(|n| ModelName::parse(n).ok())
            .map(|n| keys::model_key(&n))
            .collect();
        let mut found = self.batch_get(&model_keys).await?;
        let mut items = Vec::with_capacity(model_keys.len());
        for k in &model_keys {
            if let Some(item) = found.remove(k) {
                let m: Model = from_item(item)?;
                let owner_ok = filter.owner.as_ref().is_none_or(|o| *o == m.owner.team);
                let tier_ok = filter.tier.is_none_or(|t| t == m.risk_tier);
                if owner_ok && tier_ok {
                    items.push(m);
                }
            }
        }
        Ok(Page { items, next_cursor })
    }
}

fn decode_all<T: serde::de::DeserializeOwned>(items: Vec<Item>) -> Result<Vec<T>, StoreError> {
    items.into_iter().map(from_item).collect()
}

fn decode_rows<T: serde::de::DeserializeOwned>(
    rows: Vec<(String, Item)>,
) -> Result<Vec<(String, T)>, StoreError> {
    rows.into_iter()
        .map(|(k, item)| Ok((k, from_item(item)?)))
        .collect()
}

#[async_trait]
impl Registry for DynamoStore {
    async fn get_many(&self, wanted: &[Key]) -> Result<Fetched, StoreError> {
        let mut by_key: HashMap<ItemKey, &Key> = HashMap::new();
        for k in wanted {
            if let Some(ik) = keys::key_of(k) {
                by_key.insert(ik, k);
            }
        }
        let item_keys: Vec<ItemKey> = by_key.keys().cloned().collect();
        let found = self.read_with_head(&item_keys).await?;
        let now = Utc::now();
        let mut out = Fetched::default();
        for (ik, item) in found {
            let Some(key) = by_key.get(&ik) else { continue };
            match key {
                Key::Model(n) => {
                    out.models.insert(n.clone(), from_item(item)?);
                }
                Key::Version(n, v) => {
                    out.versions.insert((n.clone(), *v), from_item(item)?);
                }
                Key::Promotion(id) => {
                    out.promotions.insert(id.clone(), from_item(item)?);
                }
                Key::Principal(id) => {
                    out.principals.insert(id.clone(), from_item(item)?);
                }
                Key::Idempotency(k) => {
                    if !items::expired(&item, now) {
                        out.idempotency.insert(k.clone(), from_item(item)?);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn model(&self, name: &ModelName) -> Result<Option<Model>, StoreError> {
        self.point_read(keys::model_key(name)).await
    }

    async fn version(
        &self,
        name: &ModelName,
        version: u32,
    ) -> Result<Option<ModelVersion>, StoreError> {
        self.point_read(keys::version_key(name, version)).await
    }

    async fn versions(&self, name: &ModelName) -> Result<Vec<ModelVersion>, StoreError> {
        let q = Query::table(keys::model_pk(name)).sort(
            "sk",
            "begins_with(#sk, :prefix)",
            &[(":prefix", "V#".into())],
        );
        decode_all(self.query_all(q).await?)
    }

    async fn list_models(
        &self,
        filter: &ModelFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        let after = decode_cursor(cursor)?;
        if let Some(stage) = filter.stage {
            return self
                .models_in_stage(filter, stage.as_str(), after, limit)
                .await;
        }
        let (mut q, sk) = match &filter.owner {
            Some(team) => (Query::index("gsi2", keys::owner_gsi_pk(team)), "gsi2sk"),
            None => (Query::index("gsi1", keys::MODELS_GSI_PK.into()), "gsi1sk"),
        };
        if let Some(tier) = filter.tier {
            q = q.filter(
                "#tier = :tier".into(),
                &[("#tier", "risk_tier")],
                vec![(":tier".into(), items::to_attr(&tier)?)],
            );
        }
        let (rows, evaluated) = self.index_page(q, sk, after, limit).await?;
        Ok(page_of(decode_rows(rows)?, limit, evaluated))
    }

    async fn card_revisions(
        &self,
        name: &ModelName,
        version: u32,
    ) -> Result<Vec<CardRevision>, StoreError> {
        decode_all(
            self.query_all(Query::table(keys::card_pk(name, version)))
                .await?,
        )
    }

    async fn promotion(&self, id: &str) -> Result<Option<Promotion>, StoreError> {
        match keys::promotion_key(id) {
            Some(key) => self.point_read(key).await,
            None => Ok(None),
        }
    }

    async fn promotions_of(
        &self,
        name: &ModelName,
        version: u32,
    ) -> Result<Vec<Promotion>, StoreError> {
        let q = Query::table(keys::model_pk(name)).sort(
            "sk",
            "begins_with(#sk, :prefix)",
            &[(":prefix", keys::promotions_prefix(version))],
        );
        let mut all: Vec<Promotion> = decode_all(self.query_all(q).await?)?;
        all.sort_by_key(|p| std::cmp::Reverse(p.requested_at));
        Ok(all)
    }

    async fn list_reviews(
        &self,
        filter: &ReviewFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ReviewItem>, StoreError> {
        let after = decode_cursor(cursor)?;
        if filter.stages.is_empty() {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            });
        }
        let mut q = Query::index(
            "gsi1",
            keys::reviews_gsi_pk(&items::review_status_str(filter.status)),
        );
        let all_stages = ReviewStage::ALL.iter().all(|s| filter.stages.contains(s));
        if !all_stages {
            let mut placeholders = Vec::new();
            let mut values = Vec::new();
            for (i, stage) in filter.stages.iter().enumerate() {
                placeholders.push(format!(":st{i}"));
                values.push((format!(":st{i}"), items::to_attr(stage)?));
            }
            q = q.filter(
                format!("#stage IN ({})", placeholders.join(", ")),
                &[("#stage", "stage")],
                values,
            );
        }
        let (rows, evaluated) = self.index_page(q, "gsi1sk", after, limit).await?;
        let rows = rows
            .into_iter()
            .map(|(k, item)| Ok((k, items::review_from_item(item)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page_of(rows, limit, evaluated))
    }

    async fn reviews_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Review>, StoreError> {
        if limit == 0 {
            return Ok(vec![]);
        }
        let pending = items::review_status_str(ReviewStatus::Pending);
        let q = Query::index("gsi1", keys::reviews_gsi_pk(&pending))
            .sort(
                "gsi1sk",
                "#sk <= :upper",
                &[(":upper", keys::deadline_upper(now))],
            )
            .limit(limit);
        let (found, _) = self.query(q).await?;
        found
            .into_iter()
            .map(|item| items::review_from_item(item).map(|r| r.review))
            .collect()
    }

    async fn production_at(
        &self,
        name: &ModelName,
        at: DateTime<Utc>,
    ) -> Result<Option<ProductionChange>, StoreError> {
        let mut q = Query::table(keys::model_pk(name))
            .sort(
                "sk",
                "#sk BETWEEN :lo AND :hi",
                &[
                    (":lo", "X#".into()),
                    (":hi", keys::production_change_upper(at)),
                ],
            )
            .limit(1);
        q.descending = true;
        let (found, _) = self.query(q).await?;
        found.into_iter().next().map(from_item).transpose()
    }

    async fn production_models(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        let after = decode_cursor(cursor)?;
        let q = Query::index("gsi3", keys::SERVING_GSI_PK.into());
        let (rows, evaluated) = self.index_page(q, "gsi3sk", after, limit).await?;
        Ok(page_of(decode_rows(rows)?, limit, evaluated))
    }

    async fn incidents(
        &self,
        name: Option<&ModelName>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Incident>, StoreError> {
        let after = decode_cursor(cursor)?;
        let Some(name) = name else {
            let q = Query::index("gsi1", keys::INCIDENTS_GSI_PK.into());
            let (rows, evaluated) = self.index_page(q, "gsi1sk", after, limit).await?;
            return Ok(page_of(decode_rows(rows)?, limit, evaluated));
        };
        // The model's partition, from just after the cursor's incident.
        let lo = match after {
            Some(a) if a.starts_with("I#") => a,
            Some(_) => return Err(StoreError::InvalidCursor),
            None => "I#".to_owned(),
        };
        let q = Query::table(keys::model_pk(name))
            .sort(
                "sk",
                "#sk BETWEEN :lo AND :hi",
                &[(":lo", lo.clone()), (":hi", keys::prefix_upper("I#"))],
            )
            .limit(limit.saturating_add(2));
        let (found, next) = self.query(q).await?;
        let rows = found
            .into_iter()
            .filter_map(|item| {
                let sk = str_attr(&item, "sk")?.to_owned();
                (sk != lo).then_some((sk, item))
            })
            .collect();
        let evaluated = next.and_then(|k| str_attr(&k, "sk").map(str::to_owned));
        Ok(page_of(decode_rows(rows)?, limit, evaluated))
    }

    async fn principal(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, StoreError> {
        if !self.principal_ttl.is_zero() {
            let cache = self.principals.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, rec)) = cache.entries.get(id) {
                if at.elapsed() < self.principal_ttl {
                    return Ok(rec.clone());
                }
            }
        }
        let rec: Option<PrincipalRecord> = self
            .get_item(&keys::principal_key(id.as_ref()))
            .await?
            .map(from_item)
            .transpose()?;
        if !self.principal_ttl.is_zero() {
            let mut cache = self.principals.lock().unwrap_or_else(|e| e.into_inner());
            if cache.entries.len() >= PRINCIPAL_CACHE_MAX {
                cache.entries.clear();
            }
            cache
                .entries
                .insert(id.clone(), (Instant::now(), rec.clone()));
        }
        Ok(rec)
    }

    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        decode_all(
            self.query_all(Query::table(keys::PRINCIPALS_PK.into()))
                .await?,
        )
    }

    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        match self.get_item(&keys::idempotency_key(key)).await? {
            Some(item) if !items::expired(&item, Utc::now()) => from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    async fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
        let receipt = self.try_commit(&commit).await?;
        self.remember_principals(&commit);
        Ok(receipt)
    }
}

#[async_trait]
impl AuditLog for DynamoStore {
    async fn events(
        &self,
        model: Option<&ModelName>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        if limit == 0 {
            return Ok(vec![]);
        }
        let rows: Vec<Vec<u8>> = match model {
            None => self
                .event_rows(after, limit)
                .await?
                .into_iter()
                .map(|(_, bytes, _)| bytes)
                .collect(),
            Some(name) => {
                let q = Query::index("gsi1", keys::audit_gsi_pk(name.as_ref()))
                    .sort("gsi1sk", "#sk > :after", &[(":after", keys::seq_sk(after))])
                    .limit(limit);
                let (found, _) = self.query(q).await?;
                found
                    .into_iter()
                    .map(|item| items::event_from_item(item).map(|(_, bytes, _)| bytes))
                    .collect::<Result<_, _>>()?
            }
        };
        rows.iter()
            .map(|b| {
                AuditEvent::from_canonical(b)
                    .map_err(|e| StoreError::Backend(format!("corrupt audit event: {e}")))
            })
            .collect()
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.get_item(&keys::latest_checkpoint_key())
            .await?
            .map(from_item)
            .transpose()
    }

    async fn inclusion_proof(
        &self,
        seq: u64,
        size: u64,
    ) -> Result<(AuditEvent, Vec<Hash>), StoreError> {
        if seq == 0 {
            return Err(StoreError::Backend(
                "audit events are numbered from 1; there is no event 0".into(),
            ));
        }
        let plan = merkle::inclusion_plan(seq - 1, size)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let event_key = keys::event_key(seq);
        let (hashes, mut rest) = self
            .proof_items(&plan, size, Some(event_key.clone()))
            .await?;
        let proof = Self::assemble(&plan, &hashes)?;
        let item = rest
            .remove(&event_key)
            .ok_or_else(|| StoreError::Backend(format!("audit event {seq} is missing")))?;
        let (_, bytes, _) = items::event_from_item(item)?;
        let event = AuditEvent::from_canonical(&bytes)
            .map_err(|e| StoreError::Backend(format!("corrupt audit event {seq}: {e}")))?;
        Ok((event, proof))
    }

    async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        let plan = merkle::consistency_plan(old_size, new_size)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let (hashes, _) = self.proof_items(&plan, new_size, None).await?;
        Self::assemble(&plan, &hashes)
    }

    fn public_key(&self) -> (String, Vec<u8>) {
        self.signer_public.clone()
    }
}
