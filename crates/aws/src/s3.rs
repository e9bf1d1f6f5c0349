//! S3: the evidence store (model card revisions, evaluation reports, manifests, addressed by
//! their SHA-256), artifact hash checks, and the audit log's objects in the Object Lock bucket.
//!
//! Invariants:
//! - Nothing here ever overwrites an object: every write is `PutObject` with
//!   `If-None-Match: *`. When the key is taken, the stored SHA-256 is compared with the
//!   offered one: the same content is success (redelivery is harmless), different content is a
//!   typed error ([`AuditObjectError::AuditConflict`], [`EvidenceError::Corrupt`]).
//! - Every write carries `x-amz-checksum-sha256` (S3 checks the bytes it received; Object Lock
//!   puts require a checksum) and the hex SHA-256 as `x-amz-meta-sha256`.
//! - Audit objects are one per event, `{prefix}events/{seq:020}.json`, holding the event's
//!   canonical bytes, and one per signed checkpoint, `{prefix}checkpoints/{size:020}.json`, each
//!   written with Object Lock `COMPLIANCE` retention until now + the configured retention.
//! - Offline verification ([`verify_s3`]) trusts nothing but the objects and the public key:
//!   it reads the current version of every object and hands them to core's verifier, which
//!   rejects a missing, altered or reordered event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, ChecksumAlgorithm, ChecksumMode,
    CreateBucketConfiguration, DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockMode, ObjectLockRetentionMode, ObjectLockRule, VersioningConfiguration,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, TimeZone, Utc};
use sha2::Digest;
use steward_core::audit::verify::{verify_log_with, StoredEvent, VerifyError, VerifyReport};
use steward_core::audit::{AuditEvent, Checkpoint, PublicKey};
use steward_core::error::StoreError;
use steward_core::types::Sha256;
use thiserror::Error;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// User metadata key holding the object's hex SHA-256 (`x-amz-meta-sha256`).
const SHA256_META: &str = "sha256";
/// Objects fetched at once by [`AuditObjects::read_all`].
const READ_CONCURRENCY: usize = 16;

/// `""` stays empty; anything else gets exactly one trailing `/` and no leading one.
fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

/// Splits `bucket/prefix` (or `s3://bucket/prefix`), as given to `steward audit verify --s3`,
/// into a bucket and a normalised prefix (`""` or ending in `/`).
pub fn parse_s3_location(location: &str) -> Result<(String, String), String> {
    let rest = location.strip_prefix("s3://").unwrap_or(location);
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!(
            "{location:?} names no bucket: expected bucket/prefix"
        ));
    }
    Ok((bucket.to_owned(), normalize_prefix(prefix)))
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// A new object (version) was written.
    Written {
        key: String,
        version_id: Option<String>,
        /// The Object Lock retain-until date sent with it (audit objects only).
        retain_until: Option<DateTime<Utc>>,
    },
    /// The key already held the same bytes (same SHA-256): nothing was written.
    AlreadyPresent { key: String },
}

impl PutOutcome {
    pub fn key(&self) -> &str {
        match self {
            PutOutcome::Written { key, .. } | PutOutcome::AlreadyPresent { key } => key,
        }
    }
}

/// A failed S3 request, with the cause chain as text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("S3 {op} of {key} failed: {message}")]
pub struct S3RequestError {
    pub op: &'static str,
    pub key: String,
    pub message: String,
}

impl S3RequestError {
    fn new<E, R>(op: &'static str, key: &str, err: &SdkError<E, R>) -> Self
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Self {
            op,
            key: key.to_owned(),
            message: DisplayErrorContext(err).to_string(),
        }
    }
}

/// Why a content-addressed write did not complete.
#[derive(Debug)]
enum WriteError {
    /// The key holds other bytes.
    Taken {
        stored: Sha256,
    },
    Request(S3RequestError),
}

/// One conditional write: `PutObject` with `If-None-Match: *`, the SHA-256 checksum and
/// metadata, and optional COMPLIANCE retention. An existing object with the same SHA-256 is
/// success; with another, [`WriteError::Taken`].
async fn put_new(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    bytes: &[u8],
    retain_until: Option<DateTime<Utc>>,
) -> Result<PutOutcome, WriteError> {
    let sha = Sha256::digest(bytes);
    // A key that disappears between the refused put and the read (a delete marker added in
    // between) is written again; twice is enough for any honest race.
    for _ in 0..3 {
        let mut put = client
            .put_object()
            .bucket(bucket)
            .key(key)
            .if_none_match("*")
            .body(ByteStream::from(bytes.to_vec()))
            .content_type("application/json")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(aws_smithy_types::base64::encode(sha.bytes()))
            .metadata(SHA256_META, sha.to_hex());
        if let Some(until) = retain_until {
            put = put
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(aws_smithy_types::DateTime::from_secs(
                    until.timestamp(),
                ));
        }
        match put.send().await {
            Ok(out) => {
                return Ok(PutOutcome::Written {
                    key: key.to_owned(),
                    version_id: out.version_id().map(str::to_owned),
                    retain_until,
                })
            }
            Err(e) if precondition_failed(&e) => {}
            Err(e) => {
                return Err(WriteError::Request(S3RequestError::new(
                    "PutObject",
                    key,
                    &e,
                )))
            }
        }
        match stored_sha256(client, bucket, key)
            .await
            .map_err(WriteError::Request)?
        {
            Some(stored) if stored == sha => {
                return Ok(PutOutcome::AlreadyPresent {
                    key: key.to_owned(),
                })
            }
            Some(stored) => return Err(WriteError::Taken { stored }),
            None => continue,
        }
    }
    Err(WriteError::Request(S3RequestError {
        op: "PutObject",
        key: key.to_owned(),
        message: "the key kept flipping between taken and absent".into(),
    }))
}

/// `If-None-Match` refused the write: the key is taken (412), or a concurrent conditional
/// write to it is in flight (409 `ConditionalRequestConflict`); either way, read what is there.
fn precondition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(
        err.as_service_error().and_then(|e| e.code()),
        Some("PreconditionFailed" | "ConditionalRequestConflict")
    )
}

/// The SHA-256 of the current version of `key`, or `None` when there is none: from our
/// metadata, else from S3's full-object SHA-256 checksum, else by reading the bytes.
async fn stored_sha256(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Sha256>, S3RequestError> {
    let head = match client
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
    {
        Ok(h) => h,
        Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => {
            return Ok(None)
        }
        Err(e) => return Err(S3RequestError::new("HeadObject", key, &e)),
    };
    let from_meta = head
        .metadata()
        .and_then(|m| m.get(SHA256_META))
        .and_then(|hex| Sha256::parse(hex).ok());
    // A multipart object's checksum is a checksum of part checksums (`...-N`): not usable.
    let from_checksum = head
        .checksum_sha256()
        .and_then(|b64| aws_smithy_types::base64::decode(b64).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(Sha256::from_bytes);
    if let Some(sha) = from_meta.or(from_checksum) {
        return Ok(Some(sha));
    }
    match read_object(client, bucket, key).await? {
        Some(bytes) => Ok(Some(Sha256::digest(&bytes))),
        None => Ok(None),
    }
}

/// The current version's bytes, or `None` if the key has no current version.
async fn read_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, S3RequestError> {
    let out = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => o,
        Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
            return Ok(None)
        }
        Err(e) => return Err(S3RequestError::new("GetObject", key, &e)),
    };
    let bytes = out.body.collect().await.map_err(|e| S3RequestError {
        op: "GetObject",
        key: key.to_owned(),
        message: format!("reading the body: {}", DisplayErrorContext(&e)),
    })?;
    Ok(Some(bytes.into_bytes().to_vec()))
}

// ------------------------------------------------------------------------------------------
// Evidence

/// The kinds of evidence Steward keeps, each under its own key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceKind {
    /// A model card revision (its canonical JSON).
    ModelCard,
    /// An evaluation report.
    EvaluationReport,
    /// A registration manifest (its canonical JSON).
    Manifest,
}

impl EvidenceKind {
    /// The key segment: `model-card`, `evaluation-report`, `manifest`.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::ModelCard => "model-card",
            EvidenceKind::EvaluationReport => "evaluation-report",
            EvidenceKind::Manifest => "manifest",
        }
    }
}

/// Why evidence could not be stored, read or checked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvidenceError {
    #[error(transparent)]
    S3(#[from] S3RequestError),
    /// The object stored under a content address does not hash to that address.
    #[error("evidence at {key} is corrupt: its SHA-256 is {actual}, its address says {expected}")]
    Corrupt {
        key: String,
        expected: Sha256,
        actual: Sha256,
    },
    /// The artifact's bytes do not hash to the SHA-256 it was registered with.
    #[error("artifact {uri} has SHA-256 {actual} ({size} bytes), expected {expected}")]
    ArtifactMismatch {
        uri: String,
        expected: Sha256,
        actual: Sha256,
        size: u64,
    },
    /// An `s3://` artifact Steward should be able to read but cannot.
    #[error("artifact {uri} cannot be read: {reason}")]
    ArtifactUnreadable { uri: String, reason: String },
}

impl From<EvidenceError> for StoreError {
    fn from(e: EvidenceError) -> Self {
        StoreError::backend("the evidence bucket failed", e)
    }
}

/// The result of checking an artifact's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactCheck {
    /// Steward read every byte and the SHA-256 matched.
    Verified { size: u64 },
    /// Steward cannot read artifacts at this kind of URI; the hash was not checked (and the
    /// registration's SHA-256 stands as declared).
    NotChecked { reason: String },
}

/// Content-addressed evidence: `{prefix}evidence/{kind}/{sha256}`.
#[derive(Debug, Clone)]
pub struct EvidenceStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl EvidenceStore {
    /// `prefix` is normalised to `""` or `something/`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: normalize_prefix(prefix),
        }
    }

    /// The key of a piece of evidence.
    pub fn key(&self, kind: EvidenceKind, sha: &Sha256) -> String {
        format!("{}evidence/{}/{sha}", self.prefix, kind.as_str())
    }

    /// Stores `bytes` under their SHA-256 and returns it. Idempotent: when the key already
    /// holds the same bytes nothing is written. Requests: one `PutObject`; when the key is
    /// taken, one `HeadObject` more.
    pub async fn put(&self, kind: EvidenceKind, bytes: &[u8]) -> Result<Sha256, EvidenceError> {
        let sha = Sha256::digest(bytes);
        let key = self.key(kind, &sha);
        match put_new(&self.client, &self.bucket, &key, bytes, None).await {
            Ok(_) => Ok(sha),
            Err(WriteError::Taken { stored }) => Err(EvidenceError::Corrupt {
                key,
                expected: sha,
                actual: stored,
            }),
            Err(WriteError::Request(e)) => Err(e.into()),
        }
    }

    /// The evidence with this SHA-256, checked against it; `None` if there is none.
    pub async fn get(
        &self,
        kind: EvidenceKind,
        sha: &Sha256,
    ) -> Result<Option<Vec<u8>>, EvidenceError> {
        let key = self.key(kind, sha);
        let Some(bytes) = read_object(&self.client, &self.bucket, &key).await? else {
            return Ok(None);
        };
        let actual = Sha256::digest(&bytes);
        if actual != *sha {
            return Err(EvidenceError::Corrupt {
                key,
                expected: *sha,
                actual,
            });
        }
        Ok(Some(bytes))
    }

    /// Checks the SHA-256 of the artifact at `uri` where Steward can read it: an
    /// `s3://bucket/key` object is streamed (never held in memory whole) and hashed. Any
    /// other URI is [`ArtifactCheck::NotChecked`], not an error.
    pub async fn verify_artifact(
        &self,
        uri: &str,
        expected: &Sha256,
    ) -> Result<ArtifactCheck, EvidenceError> {
        let Some(rest) = uri.strip_prefix("s3://") else {
            let scheme = uri.split_once("://").map_or("(none)", |(s, _)| s);
            return Ok(ArtifactCheck::NotChecked {
                reason: format!(
                    "Steward reads s3:// artifacts only; this URI's scheme is {scheme}"
                ),
            });
        };
        let unreadable = |reason: String| EvidenceError::ArtifactUnreadable {
            uri: uri.to_owned(),
            reason,
        };
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| unreadable("expected s3://bucket/key".into()))?;
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| unreadable(DisplayErrorContext(&e).to_string()))?;
        let mut body = out.body;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| unreadable(format!("reading the body: {}", DisplayErrorContext(&e))))?
        {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        let actual = Sha256::from_bytes(hasher.finalize().into());
        if actual != *expected {
            return Err(EvidenceError::ArtifactMismatch {
                uri: uri.to_owned(),
                expected: *expected,
                actual,
                size,
            });
        }
        Ok(ArtifactCheck::Verified { size })
    }
}

// ------------------------------------------------------------------------------------------
// Audit objects

/// Why audit objects could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuditObjectError {
    /// The key already holds different bytes. Audit objects are never overwritten; this means
    /// two different events claimed one sequence number, or the object was tampered with.
    #[error(
        "audit object {key} already holds different content (stored SHA-256 {stored}, \
         offered {offered}); it is never overwritten"
    )]
    AuditConflict {
        key: String,
        stored: Sha256,
        offered: Sha256,
    },
    #[error(transparent)]
    S3(#[from] S3RequestError),
    /// An object under the audit prefix that is not an audit object Steward wrote.
    #[error("{key} is not a valid audit object: {reason}")]
    Malformed { key: String, reason: String },
}

impl From<AuditObjectError> for StoreError {
    fn from(e: AuditObjectError) -> Self {
        match e {
            AuditObjectError::AuditConflict { .. } => StoreError::Conflict(e.to_string()),
            _ => StoreError::backend("the audit bucket failed", e),
        }
    }
}

/// The audit log's objects in an Object Lock bucket.
#[derive(Debug, Clone)]
pub struct AuditObjects {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    retention: Duration,
    page_size: Option<i32>,
}

impl AuditObjects {
    /// `prefix` is normalised to `""` or `something/`; every object written is retained in
    /// COMPLIANCE mode for `retention` from the time of the write.
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        prefix: &str,
        retention: Duration,
    ) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: normalize_prefix(prefix),
            retention,
            page_size: None,
        }
    }

    /// Lists `page_size` keys per `ListObjectsV2` page (S3's default is 1000); small pages
    /// let tests exercise pagination.
    pub fn with_list_page_size(mut self, page_size: i32) -> Self {
        self.page_size = Some(page_size);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}events/{seq:020}.json`
    pub fn event_key(&self, seq: u64) -> String {
        format!("{}events/{seq:020}.json", self.prefix)
    }

    /// `{prefix}checkpoints/{size:020}.json`
    pub fn checkpoint_key(&self, size: u64) -> String {
        format!("{}checkpoints/{size:020}.json", self.prefix)
    }

    /// Retain-until for a write now: now + retention, rounded up to the second (S3 keeps
    /// whole seconds; rounding up never shortens the retention asked for).
    fn retain_until(&self) -> DateTime<Utc> {
        let until = Utc::now()
            + chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
        let secs = until.timestamp() + i64::from(until.timestamp_subsec_nanos() > 0);
        Utc.timestamp_opt(secs, 0).single().unwrap_or(until)
    }

    async fn put(&self, key: String, bytes: &[u8]) -> Result<PutOutcome, AuditObjectError> {
        let offered = Sha256::digest(bytes);
        let until = self.retain_until();
        match put_new(&self.client, &self.bucket, &key, bytes, Some(until)).await {
            Ok(outcome) => Ok(outcome),
            Err(WriteError::Taken { stored }) => Err(AuditObjectError::AuditConflict {
                key,
                stored,
                offered,
            }),
            Err(WriteError::Request(e)) => Err(e.into()),
        }
    }

    /// Writes the event's canonical bytes to its own object under COMPLIANCE retention.
    /// Redelivery of the same event writes nothing; a different event at the same `seq` is
    /// [`AuditObjectError::AuditConflict`]. Requests: one `PutObject` (plus one `HeadObject`
    /// when the key is taken).
    pub async fn put_event(&self, event: &AuditEvent) -> Result<PutOutcome, AuditObjectError> {
        self.put(self.event_key(event.seq), &event.canonical_bytes())
            .await
    }

    /// Writes a signed checkpoint (its JSON wire format) under COMPLIANCE retention, with the
    /// same idempotency rules as [`AuditObjects::put_event`].
    pub async fn put_checkpoint(&self, cp: &Checkpoint) -> Result<PutOutcome, AuditObjectError> {
        let bytes = serde_json::to_vec(cp).map_err(|e| AuditObjectError::Malformed {
            key: self.checkpoint_key(cp.size),
            reason: e.to_string(),
        })?;
        self.put(self.checkpoint_key(cp.size), &bytes).await
    }

    /// Lists the keys under `{prefix}{dir}/` with their numbers, in order (`ListObjectsV2`,
    /// every page).
    async fn list(&self, dir: &str) -> Result<Vec<(u64, String)>, AuditObjectError> {
        let list_prefix = format!("{}{dir}/", self.prefix);
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&list_prefix)
                .set_max_keys(self.page_size)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| S3RequestError::new("ListObjectsV2", &list_prefix, &e))?;
            for object in page.contents() {
                let key = object.key().unwrap_or_default();
                let number = key
                    .strip_prefix(&list_prefix)
                    .and_then(|name| name.strip_suffix(".json"))
                    .filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| AuditObjectError::Malformed {
                        key: key.to_owned(),
                        reason: format!("expected {list_prefix}<20 digits>.json"),
                    })?;
                out.push((number, key.to_owned()));
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Reads the current version of many objects, a bounded number at a time.
    async fn read_many(&self, keys: &[(u64, String)]) -> Result<Vec<Vec<u8>>, AuditObjectError> {
        let permits = Arc::new(Semaphore::new(READ_CONCURRENCY));
        let mut tasks = JoinSet::new();
        for (i, (_, key)) in keys.iter().enumerate() {
            let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), key.clone());
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let bytes =
                    read_object(&client, &bucket, &key)
                        .await?
                        .ok_or_else(|| S3RequestError {
                            op: "GetObject",
                            key: key.clone(),
                            message: "listed, then gone".into(),
                        })?;
                Ok::<_, S3RequestError>((i, bytes))
            });
        }
        let mut found = HashMap::with_capacity(keys.len());
        while let Some(joined) = tasks.join_next().await {
            let (i, bytes) = joined.map_err(|e| S3RequestError {
                op: "GetObject",
                key: self.prefix.clone(),
                message: format!("reader task failed: {e}"),
            })??;
            found.insert(i, bytes);
        }
        Ok((0..keys.len())
            .map(|i| found.remove(&i).unwrap_or_default())
            .collect())
    }

    /// Everything a verifier needs, from the objects alone: the events (numbered by their
    /// keys, bytes as stored, no claimed leaf hashes) and the checkpoints, both in key order.
    ///
    /// An event whose content names another `seq` than its key is returned as it is: core's
    /// verifier rejects it (`Misplaced`). A checkpoint whose content names another size than
    /// its key is refused here as [`AuditObjectError::Malformed`].
    pub async fn read_all(&self) -> Result<(Vec<StoredEvent>, Vec<Checkpoint>), AuditObjectError> {
        let event_keys = self.list("events").await?;
        let checkpoint_keys = self.list("checkpoints").await?;
        let event_bytes = self.read_many(&event_keys).await?;
        let checkpoint_bytes = self.read_many(&checkpoint_keys).await?;

        let events = event_keys
            .into_iter()
            .zip(event_bytes)
            .map(|((seq, _), bytes)| StoredEvent {
                seq,
                bytes,
                leaf_hash: None,
            })
            .collect();
        let checkpoints = checkpoint_keys
            .into_iter()
            .zip(checkpoint_bytes)
            .map(|((size, key), bytes)| {
                let cp: Checkpoint =
                    serde_json::from_slice(&bytes).map_err(|e| AuditObjectError::Malformed {
                        key: key.clone(),
                        reason: format!("not a checkpoint: {e}"),
                    })?;
                if cp.size != size {
                    return Err(AuditObjectError::Malformed {
                        key,
                        reason: format!("holds the checkpoint of size {}", cp.size),
                    });
                }
                Ok(cp)
            })
            .collect::<Result<_, _>>()?;
        Ok((events, checkpoints))
    }
}

/// Why an S3 audit log does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum S3VerifyError {
    #[error(transparent)]
    Read(#[from] AuditObjectError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// Verifies the audit log of a deployment from its S3 audit objects alone (what
/// `steward audit verify --s3 bucket/prefix` runs): lists and reads every event and checkpoint
/// object under `prefix`, then runs core's verifier against `key` (Ed25519 or the KMS P-256
/// key). A missing, altered or reordered event object fails.
///
/// Requests: `ListObjectsV2` pages plus one `GetObject` per object.
pub async fn verify_s3(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    key: &PublicKey,
) -> Result<VerifyReport, S3VerifyError> {
    // Retention does not matter for reading.
    let objects = AuditObjects::new(client.clone(), bucket, prefix, Duration::ZERO);
    let (events, checkpoints) = objects.read_all().await?;
    Ok(verify_log_with(&events, &checkpoints, key)?)
}

/// Creates an Object Lock bucket for audit objects (tests and bootstrap; production buckets
/// come from the template): Object Lock enabled at creation, versioning on, default retention
/// COMPLIANCE for `default_retention_days`.
pub async fn create_audit_bucket(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    default_retention_days: i32,
) -> Result<(), S3RequestError> {
    let mut create = client
        .create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true);
    // us-east-1 is the one region that must not be named as a location constraint.
    if let Some(region) = client.config().region().map(|r| r.as_ref().to_owned()) {
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
    }
    create
        .send()
        .await
        .map_err(|e| S3RequestError::new("CreateBucket", bucket, &e))?;
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|e| S3RequestError::new("PutBucketVersioning", bucket, &e))?;
    client
        .put_object_lock_configuration()
        .bucket(bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Compliance)
                                .days(default_retention_days)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(|e| S3RequestError::new("PutObjectLockConfiguration", bucket, &e))?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// The core evidence port

fn kind_of(kind: steward_core::ports::EvidenceKind) -> EvidenceKind {
    match kind {
        steward_core::ports::EvidenceKind::Manifest => EvidenceKind::Manifest,
        steward_core::ports::EvidenceKind::ModelCard => EvidenceKind::ModelCard,
        steward_core::ports::EvidenceKind::EvaluationReport => EvidenceKind::EvaluationReport,
    }
}

#[async_trait::async_trait]
impl steward_core::ports::Evidence for EvidenceStore {
    async fn put(
        &self,
        kind: steward_core::ports::EvidenceKind,
        bytes: &[u8],
    ) -> Result<Sha256, steward_core::StoreError> {
        EvidenceStore::put(self, kind_of(kind), bytes)
            .await
            .map_err(steward_core::StoreError::from)
    }

    async fn check_artifact(
        &self,
        uri: &str,
        expected: &Sha256,
    ) -> Result<steward_core::ports::ArtifactCheck, steward_core::StoreError> {
        use steward_core::ports::ArtifactCheck as Core;
        match self.verify_artifact(uri, expected).await {
            Ok(ArtifactCheck::Verified { size }) => Ok(Core::Verified { size }),
            Ok(ArtifactCheck::NotChecked { reason }) => Ok(Core::NotChecked { reason }),
            Err(EvidenceError::ArtifactMismatch { actual, .. }) => Ok(Core::Mismatch { actual }),
            // Unreadable here (no such key, no permission): recorded as not checked.
            Err(EvidenceError::ArtifactUnreadable { reason, .. }) => Ok(Core::NotChecked {
                reason: format!("cannot read it: {reason}"),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised_to_empty_or_one_trailing_slash() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("audit"), "audit/");
        assert_eq!(normalize_prefix("/prod/audit/"), "prod/audit/");
    }

    #[test]
    fn an_s3_location_is_a_bucket_and_an_optional_prefix() {
        assert_eq!(parse_s3_location("b/p/q"), Ok(("b".into(), "p/q/".into())));
        assert_eq!(parse_s3_location("s3://b"), Ok(("b".into(), "".into())));
        assert_eq!(parse_s3_location("b/"), Ok(("b".into(), "".into())));
        assert!(parse_s3_location("/p").is_err());
        assert!(parse_s3_location("").is_err());
    }
}
