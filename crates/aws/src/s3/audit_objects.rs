//! The audit log's objects in the Object Lock bucket: one per event and one per signed
//! checkpoint, written once under COMPLIANCE retention; offline verification from them alone;
//! and the creation of such a bucket.

use super::*;

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
