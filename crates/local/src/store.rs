//! The SQLite registry and audit log.
//!
//! Invariants:
//! - One writer connection, behind a mutex, runs every commit as one `IMMEDIATE` transaction:
//!   the records, their revision conditions, the audit events (numbered from the in-memory
//!   Merkle tree, which mirrors `audit_events` exactly), a freshly signed checkpoint and the
//!   outbox rows. If anything fails, the transaction rolls back and the tree is rebuilt from
//!   the table, so memory never runs ahead of disk.
//! - Readers use a pool of WAL connections and never block the writer.
//! - Every read is one indexed query; nothing scans a table to answer an API call.
//!
//! Layout: this file opens the store and holds the read helpers; `write.rs` is the commit
//! transaction, `registry.rs` the [`Registry`] port and `audit.rs` the [`AuditLog`] port.

mod audit;
mod registry;
mod webhooks;
mod write;

pub use audit::read_audit_rows;

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use r2d2_sqlite::rusqlite::{self, params, OptionalExtension};
use r2d2_sqlite::SqliteConnectionManager;
use serde::de::DeserializeOwned;
use serde::Serialize;

use steward_core::audit::{format_time, Ed25519Signer, MerkleTree};
use steward_core::ports::{decode_cursor, encode_cursor, Page};
#[cfg(doc)]
use steward_core::ports::{AuditLog, Registry};
use steward_core::records::DomainEvent;
use steward_core::StoreError;

type Pool = r2d2::Pool<SqliteConnectionManager>;

struct AuditState {
    tree: MerkleTree,
}

/// The embedded registry: SQLite in WAL mode plus the in-memory Merkle tree of the audit log.
pub struct SqliteStore {
    writer: Mutex<rusqlite::Connection>,
    readers: Pool,
    audit: Mutex<AuditState>,
    signer: Ed25519Signer,
}

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::backend("SQLite failed", e)
}

/// A mutex poisoned by a commit that panicked while holding it.
fn poisoned<T>(_: std::sync::PoisonError<T>) -> StoreError {
    StoreError::backend_msg("a commit panicked while holding the store's lock")
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::backend("cannot encode a record", e))
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::backend("corrupt record", e))
}

fn ts(t: DateTime<Utc>) -> String {
    format_time(t)
}

fn page<T>(mut items: Vec<(String, T)>, limit: usize) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more {
        items.last().map(|(k, _)| encode_cursor(k))
    } else {
        None
    };
    Page {
        items: items.into_iter().map(|(_, v)| v).collect(),
        next_cursor,
    }
}

fn configure(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, signing checkpoints with `signer`.
    pub fn open(path: &Path, signer: Ed25519Signer) -> Result<Self, StoreError> {
        let writer = rusqlite::Connection::open(path).map_err(backend)?;
        configure(&writer).map_err(backend)?;
        writer
            .execute_batch(include_str!("schema.sql"))
            .map_err(backend)?;
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            c.pragma_update(None, "query_only", "ON")
        });
        let readers = r2d2::Pool::builder()
            .max_size(8)
            .build(manager)
            .map_err(backend)?;
        let tree = Self::load_tree(&writer)?;
        Ok(Self {
            writer: Mutex::new(writer),
            readers,
            audit: Mutex::new(AuditState { tree }),
            signer,
        })
    }

    pub(super) fn read(
        &self,
    ) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, StoreError> {
        self.readers.get().map_err(backend)
    }

    pub(super) fn query_docs<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
        let rows = stmt
            .query_map(params, |r| r.get::<_, String>(0))
            .map_err(backend)?;
        rows.map(|b| from_json(&b.map_err(backend)?)).collect()
    }

    pub(super) fn query_keyed<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<(String, T)>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(backend)?;
        rows.map(|row| {
            let (k, b) = row.map_err(backend)?;
            Ok((k, from_json(&b)?))
        })
        .collect()
    }

    pub(super) fn query_doc<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Option<T>, StoreError> {
        Ok(self.query_docs(sql, params)?.into_iter().next())
    }

    /// A value from the `meta` table (e.g. the digest of the policy last recorded).
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.read()?;
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(backend)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let conn = self.writer.lock().map_err(poisoned)?;
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
            [key, value],
        )
        .map_err(backend)?;
        Ok(())
    }

    /// The id of the newest outbox row (0 when there is none).
    pub fn outbox_head(&self) -> Result<i64, StoreError> {
        let conn = self.read()?;
        conn.query_row("SELECT COALESCE(MAX(id), 0) FROM outbox", [], |r| r.get(0))
            .map_err(backend)
    }

    /// This data directory's own id (created on first use), so event ids made from outbox
    /// row numbers differ between data directories.
    pub fn instance_id(&self) -> Result<String, StoreError> {
        if let Some(id) = self.meta("instance_id")? {
            return Ok(id);
        }
        let fresh = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let conn = self.writer.lock().map_err(poisoned)?;
        // Two first uses at once keep whichever wrote first.
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('instance_id', ?1)",
            [&fresh],
        )
        .map_err(backend)?;
        drop(conn);
        Ok(self.meta("instance_id")?.unwrap_or(fresh))
    }

    /// Outbox rows after `after_id` with the time each committed, oldest first (the webhook
    /// deliverer's feed).
    pub fn outbox_entries(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, DateTime<Utc>, DomainEvent)>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, created_at, detail_type, detail FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![after_id, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(backend)?;
        rows.map(|row| {
            let (id, at, detail_type, detail) = row.map_err(backend)?;
            let at = DateTime::parse_from_rfc3339(&at)
                .map_err(|e| StoreError::backend("corrupt outbox time", e))?
                .with_timezone(&Utc);
            Ok((
                id,
                at,
                DomainEvent {
                    detail_type,
                    detail: from_json(&detail)?,
                },
            ))
        })
        .collect()
    }

    /// Outbox rows (detail-type, detail), oldest first: the governance events committed so far.
    pub fn outbox(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, DomainEvent)>, StoreError> {
        Ok(self
            .outbox_entries(after_id, limit)?
            .into_iter()
            .map(|(id, _, event)| (id, event))
            .collect())
    }
}
