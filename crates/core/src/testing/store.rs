//! The registry and audit log in memory, with the SQLite store's semantics
//! (`crates/local/src/store/`, the reference).
//!
//! Invariants:
//! - A commit is all or nothing: the idempotency key is claimed first (taken:
//!   `IdempotencyKeyTaken`), then every put is applied in order to a copy of the records,
//!   each checking its condition against the records as the commit has changed them so far
//!   (failed: `Conflict`, worded as the SQLite store words it). Only when every put held are
//!   the records replaced, the audit events numbered and appended to the Merkle tree, a
//!   checkpoint signed over the new head and the outbox events queued. A refused commit
//!   leaves no trace.
//! - Audit events are numbered from 1 without gaps; the leaf of event `seq` is at index
//!   `seq - 1`; the latest checkpoint covers every event, and one checkpoint every 1024
//!   events is kept as history, as in SQLite.
//! - Listings come in key order (byte order of the key, as SQLite compares text) and resume
//!   after an opaque cursor: the hex of the last key returned.
//!
//! Layout: this file holds the state and the commit; `store/registry.rs` the read side of the
//! [`Registry`](crate::ports::Registry) port and `store/audit.rs` the
//! [`AuditLog`](crate::ports::AuditLog) port.

mod audit;
mod registry;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::audit::checkpoint::sign_checkpoint;
use crate::audit::verify::StoredEvent;
use crate::audit::{format_time, AuditEvent, Checkpoint, Ed25519Signer, MerkleTree};
use crate::error::StoreError;
use crate::ids::VersionNumber;
use crate::ports::{decode_cursor, encode_cursor, Commit, Expect, Page, Put, Receipt};
use crate::records::{
    CardRevision, DomainEvent, IdempotencyRecord, Incident, Model, ModelVersion, PrincipalRecord,
    ProductionChange, Promotion, Review,
};

/// Checkpoints kept as history besides the latest one: one every this many events.
const CHECKPOINT_HISTORY_EVERY: u64 = 1024;

/// The mutable records, keyed as the SQLite tables are.
#[derive(Debug, Clone, Default)]
struct Records {
    models: BTreeMap<String, Model>,
    versions: BTreeMap<(String, VersionNumber), ModelVersion>,
    cards: BTreeMap<(String, VersionNumber, u32), CardRevision>,
    promotions: BTreeMap<String, Promotion>,
    /// Rows of the reviews "table": each promotion write replaces its reviews' rows.
    reviews: BTreeMap<String, Review>,
    /// In insertion order (SQLite's autoincrement id).
    production_changes: Vec<ProductionChange>,
    incidents: BTreeMap<String, Incident>,
    principals: BTreeMap<String, PrincipalRecord>,
    idempotency: BTreeMap<String, IdempotencyRecord>,
    webhooks: BTreeMap<String, crate::webhooks::Webhook>,
    registered_models: BTreeMap<String, crate::mlflow::RegisteredModel>,
    serving: BTreeMap<String, crate::serving::ServingRecord>,
}

/// The append-only side: audit events, their tree, checkpoints and the outbox.
#[derive(Debug, Default)]
struct Log {
    events: Vec<AuditEvent>,
    tree: MerkleTree,
    checkpoints: BTreeMap<u64, Checkpoint>,
    outbox: Vec<DomainEvent>,
}

#[derive(Debug, Default)]
struct State {
    records: Records,
    log: Log,
}

/// The [`Registry`](crate::ports::Registry) and [`AuditLog`](crate::ports::AuditLog) ports in
/// memory, behind one mutex (one writer at a time, as SQLite's `IMMEDIATE` transactions).
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    signer: Ed25519Signer,
    /// Commits still to lose, see [`MemoryStore::lose_next_races`].
    races_to_lose: AtomicUsize,
}

impl Default for MemoryStore {
    /// A store signing checkpoints with a fixed test key (seed of 32 × `0x07`).
    fn default() -> Self {
        Self::new(Ed25519Signer::from_seed(&[7; 32]))
    }
}

fn conflict_for(expect: Expect, current: Option<u64>, what: &str) -> Result<(), StoreError> {
    match (expect, current) {
        (Expect::Absent, None) => Ok(()),
        (Expect::Absent, Some(_)) => Err(StoreError::Conflict(format!("{what} already exists"))),
        (Expect::Revision(r), Some(c)) if c == r => Ok(()),
        (Expect::Revision(r), Some(c)) => Err(StoreError::Conflict(format!(
            "{what} is at revision {c}, expected {r}"
        ))),
        (Expect::Revision(_), None) => Err(StoreError::Conflict(format!("{what} does not exist"))),
    }
}

impl Records {
    fn apply(&mut self, put: Put) -> Result<(), StoreError> {
        match put {
            Put::Model(m, expect) => {
                let key = m.name.to_string();
                let current = self.models.get(&key).map(|x| x.revision);
                conflict_for(expect, current, &format!("model {}", m.name))?;
                self.models.insert(key, m);
            }
            Put::Version(v, expect) => {
                let key = (v.name.to_string(), v.version);
                let current = self.versions.get(&key).map(|x| x.revision);
                conflict_for(
                    expect,
                    current,
                    &format!("{} version {}", v.name, v.version),
                )?;
                self.versions.insert(key, v);
            }
            Put::Promotion(p, expect) => {
                let current = self.promotions.get(&p.id).map(|x| x.revision);
                conflict_for(expect, current, &format!("promotion {}", p.id))?;
                for r in &p.reviews {
                    self.reviews.insert(r.id.clone(), r.clone());
                }
                self.promotions.insert(p.id.clone(), p);
            }
            Put::Principal(p, expect) => {
                let key = p.id.to_string();
                let current = self.principals.get(&key).map(|x| x.revision);
                conflict_for(expect, current, &format!("principal {}", p.id))?;
                self.principals.insert(key, p);
            }
            Put::CardRevision(c) => {
                let key = (c.name.to_string(), c.version, c.card_revision);
                if self.cards.contains_key(&key) {
                    return Err(StoreError::Conflict(format!(
                        "card revision {} already exists",
                        c.card_revision
                    )));
                }
                self.cards.insert(key, c);
            }
            Put::ProductionChange(c) => self.production_changes.push(c),
            Put::Incident(i) => {
                if self.incidents.contains_key(&i.id) {
                    return Err(StoreError::Conflict(format!(
                        "incident {} already exists",
                        i.id
                    )));
                }
                self.incidents.insert(i.id.clone(), i);
            }
            Put::IncidentChange(i, expect) => {
                let current = self.incidents.get(&i.id).map(|x| x.revision);
                conflict_for(expect, current, &format!("incident {}", i.id))?;
                self.incidents.insert(i.id.clone(), i);
            }
            Put::Webhook(w, expect) => {
                let key = w.id.to_string();
                let current = self.webhooks.get(&key).map(|x| x.revision);
                conflict_for(expect, current, &format!("webhook {}", w.id))?;
                self.webhooks.insert(key, w);
            }
            Put::RegisteredModel(m, expect) => {
                let key = m.name.to_string();
                let current = self.registered_models.get(&key).map(|x| x.revision);
                conflict_for(expect, current, &format!("registered model {}", m.name))?;
                self.registered_models.insert(key, m);
            }
            Put::Serving(r, expect) => {
                let key = r.key();
                let current = self.serving.get(&key).map(|x| x.revision);
                conflict_for(expect, current, &format!("serving record {key}"))?;
                self.serving.insert(key, r);
            }
        }
        Ok(())
    }
}

impl MemoryStore {
    /// An empty store signing checkpoints with `signer`.
    pub fn new(signer: Ed25519Signer) -> Self {
        Self {
            state: Mutex::default(),
            signer,
            races_to_lose: AtomicUsize::new(0),
        }
    }

    /// Makes the next `n` commits fail their conditions, writing nothing, as when another
    /// writer committed first between the caller's read and its commit. A fault injected for
    /// tests: in memory there is no second writer to race with, so this stands in for one.
    pub fn lose_next_races(&self, n: usize) {
        self.races_to_lose.store(n, Ordering::SeqCst);
    }

    /// The key checkpoints are signed with.
    pub fn signer(&self) -> &Ed25519Signer {
        &self.signer
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state.lock().map_err(|_| {
            StoreError::backend_msg("a commit panicked while holding the store's lock")
        })
    }

    fn commit_sync(&self, commit: Commit) -> Result<Receipt, StoreError> {
        let mut state = self.lock()?;
        let lose = |n: usize| n.checked_sub(1);
        if self
            .races_to_lose
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, lose)
            .is_ok()
        {
            return Err(StoreError::Conflict(
                "a record changed since it was read (injected)".into(),
            ));
        }
        let mut records = state.records.clone();
        if let Some(rec) = commit.idempotency {
            if records.idempotency.contains_key(&rec.key) {
                return Err(StoreError::IdempotencyKeyTaken);
            }
            records.idempotency.insert(rec.key.clone(), rec);
        }
        for put in commit.puts {
            records.apply(put)?;
        }
        // Every condition held: from here on nothing can fail.
        state.records = records;
        let log = &mut state.log;
        let mut seqs = Vec::with_capacity(commit.audit.len());
        for draft in commit.audit {
            let seq = log.tree.len() + 1;
            let event = draft.at(seq);
            log.tree.push(event.leaf_hash());
            log.events.push(event);
            seqs.push(seq);
        }
        if let Some(last) = log.events.last().filter(|_| !seqs.is_empty()) {
            let size = log.tree.len();
            let checkpoint =
                sign_checkpoint(&self.signer, size, log.tree.root(), last.time.clone());
            // The previous checkpoint is superseded unless it is one of the history points.
            if let Some((&latest, _)) = log.checkpoints.last_key_value() {
                if latest % CHECKPOINT_HISTORY_EVERY != 0 {
                    log.checkpoints.remove(&latest);
                }
            }
            log.checkpoints.insert(size, checkpoint);
        }
        log.outbox.extend(commit.events);
        Ok(Receipt { audit_seqs: seqs })
    }

    /// The governance events committed so far (the outbox), oldest first.
    pub fn outbox(&self) -> Vec<DomainEvent> {
        self.lock()
            .map(|s| s.log.outbox.clone())
            .unwrap_or_default()
    }

    /// The detail-types of the outbox, oldest first.
    pub fn outbox_types(&self) -> Vec<String> {
        self.outbox().into_iter().map(|e| e.detail_type).collect()
    }

    /// Every audit event, ascending.
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        self.lock()
            .map(|s| s.log.events.clone())
            .unwrap_or_default()
    }

    /// The audit actions, in log order.
    pub fn audit_actions(&self) -> Vec<String> {
        self.audit_events().into_iter().map(|e| e.action).collect()
    }

    /// The stored audit rows and checkpoints, as `steward audit verify` reads them.
    pub fn audit_rows(&self) -> (Vec<StoredEvent>, Vec<Checkpoint>) {
        let Ok(state) = self.lock() else {
            return (vec![], vec![]);
        };
        let events = state
            .log
            .events
            .iter()
            .map(|e| StoredEvent {
                seq: e.seq,
                bytes: e.canonical_bytes(),
                leaf_hash: Some(e.leaf_hash()),
            })
            .collect();
        (events, state.log.checkpoints.values().cloned().collect())
    }
}

/// One page of `items` (already in key order, after the cursor): at most `limit`, with a
/// cursor when more follow.
fn page<T>(items: impl Iterator<Item = (String, T)>, limit: usize) -> Page<T> {
    let mut items: Vec<(String, T)> = items.take(limit + 1).collect();
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

/// Times compare as the SQLite store stores them: RFC 3339 text at microsecond precision.
fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    format_time(t)
}
