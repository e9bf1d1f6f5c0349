//! The [`AuditLog`] port on SQLite: events as stored bytes, proofs from the in-memory tree,
//! and the read-only access `steward audit verify` uses.

use std::path::Path;

use async_trait::async_trait;
use r2d2_sqlite::rusqlite::{self, params, OptionalExtension};

use steward_core::audit::verify::StoredEvent;
use steward_core::audit::{AuditEvent, Checkpoint, CheckpointSigner, Hash, MerkleTree};
use steward_core::ports::AuditLog;
use steward_core::types::ModelName;
use steward_core::StoreError;

use super::{backend, from_json, poisoned, SqliteStore};

/// Every stored audit row and checkpoint, read through a read-only connection so that
/// verifying a data directory can never change it.
pub fn read_audit_rows(path: &Path) -> Result<(Vec<StoredEvent>, Vec<Checkpoint>), StoreError> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(backend)?;
    let mut stmt = conn
        .prepare("SELECT seq, bytes, leaf_hash FROM audit_events ORDER BY seq")
        .map_err(backend)?;
    let events = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(backend)?
        .map(|row| {
            let (seq, bytes, leaf) = row.map_err(backend)?;
            Ok(StoredEvent {
                seq: seq as u64,
                bytes,
                leaf_hash: <Hash>::try_from(leaf.as_slice()).ok(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let mut stmt = conn
        .prepare("SELECT body FROM checkpoints ORDER BY size")
        .map_err(backend)?;
    let checkpoints = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(backend)?
        .map(|b| from_json(&b.map_err(backend)?))
        .collect::<Result<Vec<Checkpoint>, StoreError>>()?;
    Ok((events, checkpoints))
}

impl SqliteStore {
    pub(super) fn load_tree(conn: &rusqlite::Connection) -> Result<MerkleTree, StoreError> {
        let mut stmt = conn
            .prepare("SELECT leaf_hash FROM audit_events ORDER BY seq")
            .map_err(backend)?;
        let leaves = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(backend)?
            .map(|b| {
                let b = b.map_err(backend)?;
                <Hash>::try_from(b.as_slice())
                    .map_err(|e| StoreError::backend("corrupt leaf hash", e))
            })
            .collect::<Result<Vec<Hash>, StoreError>>()?;
        Ok(MerkleTree::from_leaves(leaves))
    }

    fn event_row(&self, seq: u64) -> Result<Option<AuditEvent>, StoreError> {
        let conn = self.read()?;
        let bytes: Option<Vec<u8>> = conn
            .query_row(
                "SELECT bytes FROM audit_events WHERE seq = ?1",
                [seq as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        bytes
            .map(|b| {
                AuditEvent::from_canonical(&b)
                    .map_err(|e| StoreError::backend(format!("corrupt audit event {seq}"), e))
            })
            .transpose()
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn events(
        &self,
        model: Option<&ModelName>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let conn = self.read()?;
        let name = model.map(|n| n.as_ref().to_owned());
        let sql = if name.is_some() {
            "SELECT bytes FROM audit_events WHERE name = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        } else {
            "SELECT bytes FROM audit_events WHERE ?1 IS NULL AND seq > ?2 ORDER BY seq LIMIT ?3"
        };
        let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
        let rows = stmt
            .query_map(params![name, after as i64, limit as i64], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .map_err(backend)?;
        rows.map(|b| {
            let b = b.map_err(backend)?;
            AuditEvent::from_canonical(&b)
                .map_err(|e| StoreError::backend("corrupt audit event", e))
        })
        .collect()
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.query_doc(
            "SELECT body FROM checkpoints ORDER BY size DESC LIMIT 1",
            &[],
        )
    }

    async fn inclusion_proof(
        &self,
        seq: u64,
        size: u64,
    ) -> Result<(AuditEvent, Vec<Hash>), StoreError> {
        let proof = {
            let audit = self.audit.lock().map_err(poisoned)?;
            audit.tree.inclusion_proof(seq - 1, size).map_err(backend)?
        };
        let event = self
            .event_row(seq)?
            .ok_or_else(|| StoreError::backend_msg(format!("audit event {seq} is missing")))?;
        Ok((event, proof))
    }

    async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        let audit = self.audit.lock().map_err(poisoned)?;
        audit
            .tree
            .consistency_proof(old_size, new_size)
            .map_err(backend)
    }

    fn public_key(&self) -> (String, Vec<u8>) {
        (self.signer.key_id(), self.signer.public_key())
    }
}
