//! The [`AuditLog`] port on the table: event pages from the event partitions, and inclusion
//! and consistency proofs folded from the stored Merkle subtrees that one batch read fetches
//! (the plans are core's, `steward_core::audit::merkle::plan`).
//!
//! Invariant: a proof equals the in-memory tree's hash for hash, or the call fails naming
//! the missing item; a proof is never made up from a partial read.

use std::collections::HashMap;

use async_trait::async_trait;

use steward_core::audit::merkle::{self, ProofError};
use steward_core::audit::verify::StoredEvent;
use steward_core::audit::{AuditEvent, Checkpoint, Hash};
use steward_core::ports::AuditLog;
use steward_core::types::ModelName;
use steward_core::StoreError;

use super::items::{self, from_item, Item};
use super::keys::{self, ItemKey, BUCKET};
use super::requests::Query;
use super::DynamoStore;

impl DynamoStore {
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
    pub(super) async fn event_rows(
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
    pub(super) async fn proof_items(
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
            return Err(StoreError::backend(
                "cannot prove against the audit log",
                ProofError::SizeBeyondTree { size, len },
            ));
        }
        let mut hashes = HashMap::with_capacity(needed.len());
        for s in needed {
            let key = items::subtree_key(s);
            let item = found.remove(&key).ok_or_else(|| {
                StoreError::backend_msg(format!(
                    "the audit log has no Merkle item {} / {} (level {}, index {})",
                    key.0, key.1, s.level, s.index
                ))
            })?;
            hashes.insert(s, items::subtree_hash(s, item)?);
        }
        Ok((hashes, found))
    }

    pub(super) fn assemble(
        ranges: &[merkle::Range],
        hashes: &HashMap<merkle::Subtree, Hash>,
    ) -> Result<Vec<Hash>, StoreError> {
        merkle::assemble(ranges, hashes).map_err(|s| {
            StoreError::backend_msg(format!(
                "the audit log has no Merkle item for level {}, index {}",
                s.level, s.index
            ))
        })
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
                    .map_err(|e| StoreError::backend("corrupt audit event", e))
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
            return Err(StoreError::backend_msg(
                "audit events are numbered from 1; there is no event 0",
            ));
        }
        let plan = merkle::inclusion_plan(seq - 1, size)
            .map_err(|e| StoreError::backend("cannot plan an inclusion proof", e))?;
        let event_key = keys::event_key(seq);
        let (hashes, mut rest) = self
            .proof_items(&plan, size, Some(event_key.clone()))
            .await?;
        let proof = Self::assemble(&plan, &hashes)?;
        let item = rest
            .remove(&event_key)
            .ok_or_else(|| StoreError::backend_msg(format!("audit event {seq} is missing")))?;
        let (_, bytes, _) = items::event_from_item(item)?;
        let event = AuditEvent::from_canonical(&bytes)
            .map_err(|e| StoreError::backend(format!("corrupt audit event {seq}"), e))?;
        Ok((event, proof))
    }

    async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        let plan = merkle::consistency_plan(old_size, new_size)
            .map_err(|e| StoreError::backend("cannot plan a consistency proof", e))?;
        let (hashes, _) = self.proof_items(&plan, new_size, None).await?;
        Self::assemble(&plan, &hashes)
    }

    fn public_key(&self) -> (String, Vec<u8>) {
        self.signer_public.clone()
    }
}
