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
//!
//! Layout: this file holds the conditional write and the reads both stores share;
//! [`evidence`] the content-addressed evidence store and core's evidence port;
//! [`audit_objects`] the audit log's objects, offline verification and the bucket's creation.

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

mod audit_objects;
mod evidence;

pub use audit_objects::*;
pub use evidence::*;

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
