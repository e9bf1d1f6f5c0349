//! The [`AuditLog`] port over the in-memory log: events as committed, proofs from the tree.

use async_trait::async_trait;

use super::MemoryStore;
use crate::audit::{AuditEvent, Checkpoint, CheckpointSigner, Hash};
use crate::error::StoreError;
use crate::ports::AuditLog;
use crate::types::ModelName;

fn proof_error(e: crate::audit::merkle::ProofError) -> StoreError {
    StoreError::backend("cannot build the proof", e)
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn events(
        &self,
        model: Option<&ModelName>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .log
            .events
            .iter()
            .filter(|e| e.seq > after)
            .filter(|e| model.is_none_or(|m| e.name.as_deref() == Some(m.as_ref())))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .log
            .checkpoints
            .last_key_value()
            .map(|(_, c)| c.clone()))
    }

    async fn inclusion_proof(
        &self,
        seq: u64,
        size: u64,
    ) -> Result<(AuditEvent, Vec<Hash>), StoreError> {
        let state = self.lock()?;
        let index = seq
            .checked_sub(1)
            .ok_or_else(|| StoreError::backend_msg("audit events are numbered from 1"))?;
        let proof = state
            .log
            .tree
            .inclusion_proof(index, size)
            .map_err(proof_error)?;
        let event = state
            .log
            .events
            .get(index as usize)
            .cloned()
            .ok_or_else(|| StoreError::backend_msg(format!("audit event {seq} is missing")))?;
        Ok((event, proof))
    }

    async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        let state = self.lock()?;
        state
            .log
            .tree
            .consistency_proof(old_size, new_size)
            .map_err(proof_error)
    }

    fn public_key(&self) -> (String, Vec<u8>) {
        (self.signer.key_id(), self.signer.public_key())
    }
}
