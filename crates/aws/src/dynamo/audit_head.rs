//! The audit head (size, Merkle frontier, time of the last event) as this instance caches
//! it, and the checkpoints signed from it.
//!
//! Invariants: the cached head only grows (a stale one costs a commit a retry, never a
//! fork); the latest checkpoint never moves backwards.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

use steward_core::audit::merkle;
use steward_core::audit::{Checkpoint, Hash};
use steward_core::StoreError;

use super::items::{self, from_item, Head};
use super::keys;
use super::requests::{sdk_error, Query};
use super::DynamoStore;

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

impl DynamoStore {
    pub(super) fn cached_head(&self) -> Option<Head> {
        self.head.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Remembers a head read or written; a smaller one never replaces a larger one, since the
    /// log only grows (a stale cache only costs a retry).
    pub(super) fn observe_head(&self, head: Head) {
        let mut cached = self.head.lock().unwrap_or_else(|e| e.into_inner());
        if cached.as_ref().is_none_or(|c| head.size >= c.size) {
            *cached = Some(head);
        }
    }

    pub(super) fn forget_head(&self) {
        *self.head.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub(super) async fn read_head(&self) -> Result<Head, StoreError> {
        let head = match self.get_item(&keys::head_key()).await? {
            Some(item) => items::head_from_item(item)?,
            None => Head::empty(),
        };
        self.observe_head(head.clone());
        Ok(head)
    }

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
                .map_err(|e| StoreError::backend("cannot build a DynamoDB put", e))
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
}
