//! The commit: one `IMMEDIATE` transaction for the records and their conditions, the
//! idempotency record, the audit events, the new checkpoint and the outbox rows.
//!
//! Invariant: the in-memory tree only keeps leaves whose rows committed; when the
//! transaction fails it is rebuilt from the table before the writer lock is released.

use chrono::Utc;
use r2d2_sqlite::rusqlite::{self, params, OptionalExtension, TransactionBehavior};

use steward_core::audit::checkpoint::sign_checkpoint;
use steward_core::audit::MerkleTree;
use steward_core::ids::VersionNumber;
use steward_core::ports::{Commit, Expect, Put, Receipt};
use steward_core::StoreError;

use super::{backend, poisoned, to_json, ts, SqliteStore};

/// Checkpoints kept as history besides the latest one: one every this many events.
const CHECKPOINT_HISTORY_EVERY: u64 = 1024;

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
                    params![m.name.as_ref(), m.owner.team, m.risk_tier.as_str(), m.production_version.map(VersionNumber::get), m.revision as i64, to_json(m)?],
                )
                .map_err(backend)?;
            }
            Put::Version(v, expect) => {
                check_expect(
                    tx,
                    "SELECT revision FROM versions WHERE name = ?1 AND version = ?2",
                    &[&v.name.as_ref(), &v.version.get()],
                    *expect,
                    &format!("{} version {}", v.name, v.version),
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO versions(name, version, stage, revision, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![v.name.as_ref(), v.version.get(), v.stage.as_str(), v.revision as i64, to_json(v)?],
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
                    params![p.id, p.name.as_ref(), p.version.get(), to_json(&p.status)?, ts(p.requested_at), p.revision as i64, to_json(p)?],
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
                        params![c.name.as_ref(), c.version.get(), c.card_revision, to_json(c)?],
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
            Put::IncidentChange(i, expect) => {
                check_expect(
                    tx,
                    "SELECT COALESCE(json_extract(body, '$.revision'), 0) FROM incidents WHERE id = ?1",
                    &[&i.id],
                    *expect,
                    &format!("incident {}", i.id),
                )?;
                tx.execute(
                    "UPDATE incidents SET body = ?2 WHERE id = ?1",
                    params![i.id, to_json(i)?],
                )
                .map_err(backend)?;
            }
            Put::Webhook(w, expect) => {
                check_expect(
                    tx,
                    "SELECT revision FROM webhooks WHERE id = ?1",
                    &[&w.id.as_str()],
                    *expect,
                    &format!("webhook {}", w.id),
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO webhooks(id, revision, body) VALUES (?1, ?2, ?3)",
                    params![w.id.as_str(), w.revision as i64, to_json(w)?],
                )
                .map_err(backend)?;
            }
            Put::RegisteredModel(m, expect) => {
                check_expect(
                    tx,
                    "SELECT revision FROM registered_models WHERE name = ?1",
                    &[&m.name.as_ref()],
                    *expect,
                    &format!("registered model {}", m.name),
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO registered_models(name, revision, body) VALUES (?1, ?2, ?3)",
                    params![m.name.as_ref(), m.revision as i64, to_json(m)?],
                )
                .map_err(backend)?;
            }
            Put::Serving(r, expect) => {
                let key = r.key();
                check_expect(
                    tx,
                    "SELECT revision FROM serving WHERE key = ?1",
                    &[&key],
                    *expect,
                    &format!("serving record {key}"),
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO serving(key, revision, body) VALUES (?1, ?2, ?3)",
                    params![key, r.revision as i64, to_json(r)?],
                )
                .map_err(backend)?;
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

    pub(super) fn commit_sync(&self, commit: Commit) -> Result<Receipt, StoreError> {
        let mut conn = self.writer.lock().map_err(poisoned)?;
        let mut audit = self.audit.lock().map_err(poisoned)?;
        let before = audit.tree.len();
        let result = self.write(&mut conn, &mut audit.tree, &commit);
        if result.is_err() && audit.tree.len() != before {
            // The transaction rolled back: make the tree match the table again.
            audit.tree = Self::load_tree(&conn)?;
        }
        result
    }
}
