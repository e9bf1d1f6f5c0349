//! Content-addressed evidence, `{prefix}evidence/{kind}/{sha256}`: model card revisions,
//! evaluation reports and manifests, never overwritten, artifact hash checks and small-file
//! reads (the `steward.json` beside an MLflow model); and core's
//! [`Evidence`](steward_core::ports::Evidence) port over them.
//!
//! Invariant: a small-file read never holds more than its `max_bytes` (a larger object is
//! [`SmallFile::Unreadable`], never truncated); what S3 answers about the object (no such key,
//! access denied) is an answer, and only a request S3 could not serve is an error.

use super::*;

use steward_core::ports::SmallFile;

/// The kinds of evidence Steward keeps, each under its own key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceKind {
    /// A model card revision (its canonical JSON).
    ModelCard,
    /// An evaluation report.
    EvaluationReport,
    /// A registration manifest (its canonical JSON).
    Manifest,
    /// A signed documentation pack (zip), locked for its own retention period.
    EvidencePack,
}

impl EvidenceKind {
    /// The key segment: `model-card`, `evaluation-report`, `manifest`.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::ModelCard => "model-card",
            EvidenceKind::EvaluationReport => "evaluation-report",
            EvidenceKind::Manifest => "manifest",
            EvidenceKind::EvidencePack => "evidence-pack",
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
        self.put_locked(kind, bytes, None).await
    }

    /// [`EvidenceStore::put`] with the object's own Object Lock COMPLIANCE retention until
    /// `retain_until` (when given), beside the bucket's default retention: S3 lets nobody
    /// shorten or remove it. Requests as for `put`.
    pub async fn put_locked(
        &self,
        kind: EvidenceKind,
        bytes: &[u8],
        retain_until: Option<DateTime<Utc>>,
    ) -> Result<Sha256, EvidenceError> {
        let sha = Sha256::digest(bytes);
        let key = self.key(kind, &sha);
        match put_new(&self.client, &self.bucket, &key, bytes, retain_until).await {
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

impl EvidenceStore {
    /// Reads the small object at `s3://bucket/key` (any bucket the role may read, like
    /// [`EvidenceStore::verify_artifact`]): one `GetObject`. No such key is
    /// [`SmallFile::Absent`]; another scheme, a refusal (such as `AccessDenied`) or more than
    /// `max_bytes` is [`SmallFile::Unreadable`]; a request that failed in transport, or that
    /// S3 failed to serve (5xx), is an error.
    pub async fn read_small_file(
        &self,
        uri: &str,
        max_bytes: usize,
    ) -> Result<SmallFile, S3RequestError> {
        let Some(rest) = uri.strip_prefix("s3://") else {
            let scheme = uri.split_once("://").map_or("(none)", |(s, _)| s);
            return Ok(SmallFile::Unreadable(format!(
                "Steward reads s3:// files only; this URI's scheme is {scheme}"
            )));
        };
        let Some((bucket, key)) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        else {
            return Ok(SmallFile::Unreadable("expected s3://bucket/key".into()));
        };
        let too_large = || SmallFile::Unreadable(format!("larger than {max_bytes} bytes"));
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(SdkError::ServiceError(e)) if !e.raw().status().is_server_error() => {
                return Ok(match e.err() {
                    GetObjectError::NoSuchKey(_) => SmallFile::Absent,
                    other => SmallFile::Unreadable(format!(
                        "S3 refused to read it: {}: {}",
                        other.code().unwrap_or("an error without a code"),
                        other.message().unwrap_or("no message"),
                    )),
                });
            }
            Err(e) => return Err(S3RequestError::new("GetObject", uri, &e)),
        };
        if out
            .content_length()
            .is_some_and(|n| u64::try_from(n).unwrap_or(0) > max_bytes as u64)
        {
            return Ok(too_large());
        }
        // The length may be missing (or wrong): stop one chunk past the limit anyway.
        let mut body = out.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(|e| S3RequestError {
            op: "GetObject",
            key: uri.to_owned(),
            message: format!("reading the body: {}", DisplayErrorContext(&e)),
        })? {
            if bytes.len() + chunk.len() > max_bytes {
                return Ok(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(SmallFile::Found(bytes))
    }
}

// ------------------------------------------------------------------------------------------
// The core evidence port

fn kind_of(kind: steward_core::ports::EvidenceKind) -> EvidenceKind {
    match kind {
        steward_core::ports::EvidenceKind::Manifest => EvidenceKind::Manifest,
        steward_core::ports::EvidenceKind::ModelCard => EvidenceKind::ModelCard,
        steward_core::ports::EvidenceKind::EvaluationReport => EvidenceKind::EvaluationReport,
        steward_core::ports::EvidenceKind::EvidencePack => EvidenceKind::EvidencePack,
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

    async fn keep_pack(
        &self,
        zip: &[u8],
        retain_until: DateTime<Utc>,
    ) -> Result<String, steward_core::StoreError> {
        let sha = self
            .put_locked(EvidenceKind::EvidencePack, zip, Some(retain_until))
            .await?;
        Ok(format!(
            "s3://{}/{}",
            self.bucket,
            self.key(EvidenceKind::EvidencePack, &sha)
        ))
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

    async fn read_file(
        &self,
        uri: &str,
        max_bytes: usize,
    ) -> Result<SmallFile, steward_core::StoreError> {
        self.read_small_file(uri, max_bytes)
            .await
            .map_err(|e| EvidenceError::from(e).into())
    }
}
