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

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use r2d2_sqlite::rusqlite::{self, params, OptionalExtension, TransactionBehavior};
use r2d2_sqlite::SqliteConnectionManager;
use serde::de::DeserializeOwned;
use serde::Serialize;

use steward_core::audit::checkpoint::sign_checkpoint;
use steward_core::audit::verify::StoredEvent;
use steward_core::audit::{
    format_time, AuditEvent, Checkpoint, CheckpointSigner, Ed25519Signer, Hash, MerkleTree,
};
use steward_core::ports::{
    AuditLog, Commit, Expect, ModelFilter, Page, Put, Receipt, Registry, ReviewFilter, ReviewItem,
};
use steward_core::records::*;
use steward_core::types::{ModelName, PrincipalId};
use steward_core::StoreError;

/// Checkpoints kept as history besides the latest one: one every this many events.
const CHECKPOINT_HISTORY_EVERY: u64 = 1024;

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

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(backend)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Backend(format!("corrupt record: {e}")))
}

fn ts(t: DateTime<Utc>) -> String {
    format_time(t)
}

/// Cursors are opaque to callers: the hex of the last key returned.
fn encode_cursor(key: &str) -> String {
    hex::encode(key)
}

fn decode_cursor(cursor: Option<&str>) -> Result<String, StoreError> {
    match cursor {
        None => Ok(String::new()),
        Some(c) => hex::decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(StoreError::InvalidCursor),
    }
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

fn configure(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn check_expect(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    key: &[&dyn rusqlite::ToSql],
    expect: Expect,
    what: &str,
) -> Result<(), StoreError> {
    let current: Option<i64> = tx
        .query_row(sql, key, |r| r.get(0))
        .optional()
        .map_err(backend)?;
    match (expect, current) {
        (Expect::Absent, None) => Ok(()),
        (Expect::Absent, Some(_)) => Err(StoreError::Conflict(format!("{what} already exists"))),
        (Expect::Revision(r), Some(c)) if c as u64 == r => Ok(()),
        (Expect::Revision(r), Some(c)) => Err(StoreError::Conflict(format!(
            "{what} is at revision {c}, expected {r}"
        ))),
        (Expect::Revision(_), None) => Err(StoreError::Conflict(format!("{what} does not exist"))),
    }
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

    fn load_tree(conn: &rusqlite::Connection) -> Result<MerkleTree, StoreError> {
        let mut stmt = conn
            .prepare("SELECT leaf_hash FROM audit_events ORDER BY seq")
            .map_err(backend)?;
        let leaves = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(backend)?
            .map(|b| {
                let b = b.map_err(backend)?;
                <Hash>::try_from(b.as_slice())
                    .map_err(|_| StoreError::Backend("corrupt leaf hash".into()))
            })
            .collect::<Result<Vec<Hash>, StoreError>>()?;
        Ok(MerkleTree::from_leaves(leaves))
    }

    fn read(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, StoreError> {
        self.readers.get().map_err(backend)
    }

    fn query_docs<T: DeserializeOwned>(
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

    fn query_keyed<T: DeserializeOwned>(
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

    fn query_doc<T: DeserializeOwned>(
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
        let conn = self.writer.lock().map_err(backend)?;
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
            [key, value],
        )
        .map_err(backend)?;
        Ok(())
    }

    /// Outbox rows (detail-type, detail), oldest first: the governance events committed so far.
    pub fn outbox(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, DomainEvent)>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, detail_type, detail FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![after_id, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(backend)?;
        rows.map(|row| {
            let (id, detail_type, detail) = row.map_err(backend)?;
            Ok((
                id,
                DomainEvent {
                    detail_type,
                    detail: from_json(&detail)?,
                },
            ))
        })
        .collect()
    }

    fn apply_put(tx: &rusqlite::Transaction<'_>, put: &Put) -> Result<(), StoreError> {
        match put {
            Put::Model(m, expect) => {
                check_expect(
                    tx,
                    "SELECT revision FROM models WHERE name = ?1",
                    &[&m.name.as_ref()],
                    *expect,
                    &format!("model {}", m.name),
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO models(name, owner_team, risk_tier, production_version, revision, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![m.name.as_ref(), m.owner.team, m.risk_tier.as_str(), m.production_version, m.revision as i64, to_json(m)?],
                )
                .map_err(backend)?;
            }
            Put::Version(v, expect) => {
                check_expect(
                    tx,
                    "SELECT revision FROM versions WHERE name = ?1 AND version = ?2",
                    &[&v.name.as_ref(), &v.version],
                    *expect,
                    &format!("{} version {}", v.name, v.version),
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO versions(name, version, stage, revision, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![v.name.as_ref(), v.version, v.stage.as_str(), v.revision as i64, to_json(v)?],
                )
                .map_err(backend)?;
            }
            Put::Promotion(p, expect) => {
                check_expect(
                    tx,
                    "SELECT revision FROM promotions WHERE id = ?1",
                    &[&p.id],
                    *expect,
                    &format!("promotion {}", p.id),
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO promotions(id, name, version, status, requested_at, revision, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![p.id, p.name.as_ref(), p.version, to_json(&p.status)?, ts(p.requested_at), p.revision as i64, to_json(p)?],
                )
                .map_err(backend)?;
                for r in &p.reviews {
                    let status = serde_json::to_value(r.status).map_err(backend)?;
                    tx.execute(
                        "INSERT OR REPLACE INTO reviews(id, promotion_id, stage, status, deadline, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![r.id, r.promotion_id, r.stage.as_str(), status.as_str().unwrap_or_default(), ts(r.deadline), to_json(r)?],
                    )
                    .map_err(backend)?;
                }
            }
            Put::Principal(p, expect) => {
                check_expect(
                    tx,
                    "SELECT revision FROM principals WHERE id = ?1",
                    &[&p.id.as_ref()],
                    *expect,
                    &format!("principal {}", p.id),
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO principals(id, revision, body) VALUES (?1, ?2, ?3)",
                    params![p.id.as_ref(), p.revision as i64, to_json(p)?],
                )
                .map_err(backend)?;
            }
            Put::CardRevision(c) => {
                let n = tx
                    .execute(
                        "INSERT OR IGNORE INTO card_revisions(name, version, card_revision, body) VALUES (?1, ?2, ?3, ?4)",
                        params![c.name.as_ref(), c.version, c.card_revision, to_json(c)?],
                    )
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::Conflict(format!(
                        "card revision {} already exists",
                        c.card_revision
                    )));
                }
            }
            Put::ProductionChange(c) => {
                tx.execute(
                    "INSERT INTO production_changes(name, at, body) VALUES (?1, ?2, ?3)",
                    params![c.name.as_ref(), ts(c.at), to_json(c)?],
                )
                .map_err(backend)?;
            }
            Put::Incident(i) => {
                let n = tx
                    .execute(
                        "INSERT OR IGNORE INTO incidents(id, name, opened_at, body) VALUES (?1, ?2, ?3, ?4)",
                        params![i.id, i.name.as_ref(), ts(i.opened_at), to_json(i)?],
                    )
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::Conflict(format!(
                        "incident {} already exists",
                        i.id
                    )));
                }
            }
        }
        Ok(())
    }

    /// Runs the SQL part of a commit and appends its audit events to `tree`. The caller rolls
    /// the tree back if this (or the transaction's commit) fails.
    fn write(
        &self,
        conn: &mut rusqlite::Connection,
        tree: &mut MerkleTree,
        commit: &Commit,
    ) -> Result<Receipt, StoreError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        if let Some(rec) = &commit.idempotency {
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO idempotency(key, body) VALUES (?1, ?2)",
                    params![rec.key, to_json(rec)?],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::IdempotencyKeyTaken);
            }
        }
        for put in &commit.puts {
            Self::apply_put(&tx, put)?;
        }
        let mut seqs = Vec::with_capacity(commit.audit.len());
        let mut last_time = None;
        for draft in &commit.audit {
            let seq = tree.len() + 1;
            let event = draft.clone().at(seq);
            let bytes = event.canonical_bytes();
            let leaf = event.leaf_hash();
            tx.execute(
                "INSERT INTO audit_events(seq, name, bytes, leaf_hash) VALUES (?1, ?2, ?3, ?4)",
                params![seq as i64, event.name, bytes, leaf.as_slice()],
            )
            .map_err(backend)?;
            tree.push(leaf);
            seqs.push(seq);
            last_time = Some(event.time);
        }
        if let Some(time) = last_time {
            let size = tree.len();
            let checkpoint = sign_checkpoint(&self.signer, size, tree.root(), time);
            // The previous checkpoint is superseded unless it is one of the history points.
            tx.execute(
                "DELETE FROM checkpoints WHERE size = (SELECT MAX(size) FROM checkpoints) AND size % ?1 != 0",
                [CHECKPOINT_HISTORY_EVERY as i64],
            )
            .map_err(backend)?;
            tx.execute(
                "INSERT INTO checkpoints(size, body) VALUES (?1, ?2)",
                params![size as i64, to_json(&checkpoint)?],
            )
            .map_err(backend)?;
        }
        let now = ts(Utc::now());
        for e in &commit.events {
            tx.execute(
                "INSERT INTO outbox(detail_type, detail, created_at) VALUES (?1, ?2, ?3)",
                params![e.detail_type, to_json(&e.detail)?, now],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(Receipt { audit_seqs: seqs })
    }

    fn commit_sync(&self, commit: Commit) -> Result<Receipt, StoreError> {
        let mut conn = self.writer.lock().map_err(backend)?;
        let mut audit = self.audit.lock().map_err(backend)?;
        let before = audit.tree.len();
        let result = self.write(&mut conn, &mut audit.tree, &commit);
        if result.is_err() && audit.tree.len() != before {
            // The transaction rolled back: make the tree match the table again.
            audit.tree = Self::load_tree(&conn)?;
        }
        result
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
                    .map_err(|e| StoreError::Backend(format!("corrupt audit event {seq}: {e}")))
            })
            .transpose()
    }
}

#[async_trait]
impl Registry for SqliteStore {
    async fn model(&self, name: &ModelName) -> Result<Option<Model>, StoreError> {
        self.query_doc("SELECT body FROM models WHERE name = ?1", &[&name.as_ref()])
    }

    async fn version(
        &self,
        name: &ModelName,
        version: u32,
    ) -> Result<Option<ModelVersion>, StoreError> {
        self.query_doc(
            "SELECT body FROM versions WHERE name = ?1 AND version = ?2",
            &[&name.as_ref(), &version],
        )
    }

    async fn versions(&self, name: &ModelName) -> Result<Vec<ModelVersion>, StoreError> {
        self.query_docs(
            "SELECT body FROM versions WHERE name = ?1 ORDER BY version",
            &[&name.as_ref()],
        )
    }

    async fn list_models(
        &self,
        filter: &ModelFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        // Built per filter combination so SQLite walks `models` in name order (through the
        // owner or tier index when one is given) and stops after one page.
        let after = decode_cursor(cursor)?;
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(after)];
        let mut sql = "SELECT m.name, m.body FROM models m WHERE m.name > ?1".to_owned();
        if let Some(stage) = filter.stage {
            args.push(Box::new(stage.as_str()));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM versions v WHERE v.name = m.name AND v.stage = ?{})",
                args.len()
            ));
        }
        if let Some(owner) = &filter.owner {
            args.push(Box::new(owner.clone()));
            sql.push_str(&format!(" AND m.owner_team = ?{}", args.len()));
        }
        if let Some(tier) = filter.tier {
            args.push(Box::new(tier.as_str()));
            sql.push_str(&format!(" AND m.risk_tier = ?{}", args.len()));
        }
        args.push(Box::new((limit + 1) as i64));
        sql.push_str(&format!(" ORDER BY m.name LIMIT ?{}", args.len()));
        let params: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
        let rows = self.query_keyed(&sql, &params)?;
        Ok(page(rows, limit))
    }

    async fn card_revisions(
        &self,
        name: &ModelName,
        version: u32,
    ) -> Result<Vec<CardRevision>, StoreError> {
        self.query_docs(
            "SELECT body FROM card_revisions WHERE name = ?1 AND version = ?2 ORDER BY card_revision",
            &[&name.as_ref(), &version],
        )
    }

    async fn promotion(&self, id: &str) -> Result<Option<Promotion>, StoreError> {
        self.query_doc("SELECT body FROM promotions WHERE id = ?1", &[&id])
    }

    async fn promotions_of(
        &self,
        name: &ModelName,
        version: u32,
    ) -> Result<Vec<Promotion>, StoreError> {
        self.query_docs(
            "SELECT body FROM promotions WHERE name = ?1 AND version = ?2 ORDER BY requested_at DESC",
            &[&name.as_ref(), &version],
        )
    }

    async fn list_reviews(
        &self,
        filter: &ReviewFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ReviewItem>, StoreError> {
        let after = decode_cursor(cursor)?;
        let status = serde_json::to_value(filter.status).map_err(backend)?;
        let stages = serde_json::to_string(&filter.stages).map_err(backend)?;
        let conn = self.read()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT r.id, r.body, p.body FROM reviews r JOIN promotions p ON p.id = r.promotion_id
                 WHERE r.status = ?1 AND r.id > ?2 AND r.stage IN (SELECT value FROM json_each(?3))
                 ORDER BY r.id LIMIT ?4",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    status.as_str().unwrap_or_default(),
                    after,
                    stages,
                    (limit + 1) as i64
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .map_err(backend)?
            .map(|row| {
                let (id, review, promotion) = row.map_err(backend)?;
                Ok((
                    id,
                    ReviewItem {
                        review: from_json(&review)?,
                        promotion: from_json(&promotion)?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page(rows, limit))
    }

    async fn reviews_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Review>, StoreError> {
        self.query_docs(
            "SELECT body FROM reviews WHERE status = 'pending' AND deadline <= ?1 ORDER BY deadline LIMIT ?2",
            &[&ts(now), &(limit as i64)],
        )
    }

    async fn production_at(
        &self,
        name: &ModelName,
        at: DateTime<Utc>,
    ) -> Result<Option<ProductionChange>, StoreError> {
        self.query_doc(
            "SELECT body FROM production_changes WHERE name = ?1 AND at <= ?2 ORDER BY at DESC, id DESC LIMIT 1",
            &[&name.as_ref(), &ts(at)],
        )
    }

    async fn production_models(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        let after = decode_cursor(cursor)?;
        let rows = self.query_keyed(
            "SELECT name, body FROM models WHERE production_version IS NOT NULL AND name > ?1 ORDER BY name LIMIT ?2",
            &[&after, &((limit + 1) as i64)],
        )?;
        Ok(page(rows, limit))
    }

    async fn incidents(
        &self,
        name: Option<&ModelName>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Incident>, StoreError> {
        let after = decode_cursor(cursor)?;
        let name = name.map(|n| n.as_ref().to_owned());
        let rows = self.query_keyed(
            "SELECT id, body FROM incidents WHERE (?1 IS NULL OR name = ?1) AND id > ?2 ORDER BY id LIMIT ?3",
            &[&name, &after, &((limit + 1) as i64)],
        )?;
        Ok(page(rows, limit))
    }

    async fn principal(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, StoreError> {
        self.query_doc("SELECT body FROM principals WHERE id = ?1", &[&id.as_ref()])
    }

    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        self.query_docs("SELECT body FROM principals ORDER BY id", &[])
    }

    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.query_doc("SELECT body FROM idempotency WHERE key = ?1", &[&key])
    }

    async fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
        self.commit_sync(commit)
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
                .map_err(|e| StoreError::Backend(format!("corrupt audit event: {e}")))
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
            let audit = self.audit.lock().map_err(backend)?;
            audit.tree.inclusion_proof(seq - 1, size).map_err(backend)?
        };
        let event = self
            .event_row(seq)?
            .ok_or_else(|| StoreError::Backend(format!("audit event {seq} is missing")))?;
        Ok((event, proof))
    }

    async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        let audit = self.audit.lock().map_err(backend)?;
        audit
            .tree
            .consistency_proof(old_size, new_size)
            .map_err(backend)
    }

    fn public_key(&self) -> (String, Vec<u8>) {
        (self.signer.key_id(), self.signer.public_key())
    }
}
