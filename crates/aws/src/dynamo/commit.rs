//! The commit: one `TransactWriteItems` per governance action, and what its cancellation means.
//!
//! Invariants:
//! - Every record write carries its expectation as a condition (`attribute_not_exists(pk)` or
//!   `revision = :r`); append-only records and audit items are create-only.
//! - Audit events take `head.size + 1 ..`; the Merkle node items their appends complete and
//!   the new head (conditioned on the old size) ride in the same transaction, so two commits
//!   can never take the same position: the log cannot fork.
//! - A cancellation is read item by item ([`classify`]): the idempotency item first, then
//!   records, then the head. Only a lost race for the head (or a transient transaction
//!   conflict) is retried, and every retry re-plans from the current head.

use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put as PutAction, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use chrono::{DateTime, Utc};
use steward_core::audit::{leaf_hash, merkle};
use steward_core::ports::{Commit, Expect, Put, Receipt};
use steward_core::StoreError;

use super::items::{self, n, Head, Item};
use super::requests::{jitter, sdk_error};
use super::DynamoStore;

/// DynamoDB's limit on the actions of one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// What one action of the transaction writes; indexes match the transaction's items.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// A record with an expectation (`None`: an append-only record, create-only).
    Record {
        what: String,
        expect: Option<Expect>,
    },
    /// A review item rewritten with its promotion (the promotion carries the condition).
    Review,
    Idempotency,
    Event(u64),
    Node,
    Head,
}

/// A commit planned against one head.
#[derive(Debug)]
pub struct Plan {
    pub items: Vec<TransactWriteItem>,
    pub slots: Vec<Slot>,
    pub seqs: Vec<u64>,
    /// The head after this commit; `None` when it appends no audit event.
    pub new_head: Option<Head>,
    pub old_size: u64,
}

struct Condition {
    expression: &'static str,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, AttributeValue)>,
}

const ABSENT: &str = "attribute_not_exists(pk)";

fn absent() -> Condition {
    Condition {
        expression: ABSENT,
        names: vec![],
        values: vec![],
    }
}

fn expectation(expect: Expect) -> Condition {
    match expect {
        Expect::Absent => absent(),
        Expect::Revision(r) => Condition {
            expression: "#rev = :rev",
            names: vec![("#rev", "revision")],
            values: vec![(":rev", n(r))],
        },
    }
}

/// An incident never changed has no `revision` attribute (it is left out at 0).
fn incident_expectation(expect: Expect) -> Condition {
    match expect {
        Expect::Revision(0) => Condition {
            expression: "attribute_exists(pk) AND attribute_not_exists(#rev)",
            names: vec![("#rev", "revision")],
            values: vec![],
        },
        other => expectation(other),
    }
}

fn put(
    table: &str,
    item: Item,
    condition: Option<Condition>,
    old_on_failure: bool,
) -> Result<TransactWriteItem, StoreError> {
    let mut b = PutAction::builder().table_name(table).set_item(Some(item));
    if let Some(c) = condition {
        b = b.condition_expression(c.expression);
        for (k, v) in c.names {
            b = b.expression_attribute_names(k, v);
        }
        for (k, v) in c.values {
            b = b.expression_attribute_values(k, v);
        }
        if old_on_failure {
            b = b.return_values_on_condition_check_failure(
                ReturnValuesOnConditionCheckFailure::AllOld,
            );
        }
    }
    let put = b
        .build()
        .map_err(|e| StoreError::backend("cannot build a DynamoDB put", e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Plans `commit` on top of `head` (`None` only when the commit appends no audit event).
pub fn plan(
    table: &str,
    commit: &Commit,
    head: Option<&Head>,
    now: DateTime<Utc>,
) -> Result<Plan, StoreError> {
    if commit.audit.is_empty() && !commit.events.is_empty() {
        // The outbox rides on the first audit event item; without one the events would be lost.
        return Err(StoreError::backend_msg(
            "a commit with governance events must append an audit event to carry them",
        ));
    }
    let old = match (commit.audit.is_empty(), head) {
        (true, _) => None,
        (false, Some(h)) => Some(h),
        (false, None) => {
            return Err(StoreError::backend_msg(
                "planning an audit append needs the audit head",
            ))
        }
    };
    let old_size = old.map_or(0, |h| h.size);
    let first_seq = old_size + 1;
    let mut items = Vec::new();
    let mut slots = Vec::new();
    let mut push = |item: TransactWriteItem, slot: Slot| {
        items.push(item);
        slots.push(slot);
    };

    if let Some(rec) = &commit.idempotency {
        // An expired record (past its TTL, not yet deleted by DynamoDB) counts as absent.
        let c = Condition {
            expression: "attribute_not_exists(pk) OR #exp < :now",
            names: vec![("#exp", items::EXPIRES_AT)],
            values: vec![(":now", n(now.timestamp()))],
        };
        push(
            put(table, items::idempotency_item(rec)?, Some(c), false)?,
            Slot::Idempotency,
        );
    }
    for p in &commit.puts {
        match p {
            Put::Model(m, e) => push(
                put(table, items::model_item(m)?, Some(expectation(*e)), true)?,
                Slot::Record {
                    what: format!("model {}", m.name),
                    expect: Some(*e),
                },
            ),
            Put::Version(v, e) => push(
                put(table, items::version_item(v)?, Some(expectation(*e)), true)?,
                Slot::Record {
                    what: format!("{} version {}", v.name, v.version),
                    expect: Some(*e),
                },
            ),
            Put::Promotion(pr, e) => {
                push(
                    put(
                        table,
                        items::promotion_item(pr)?,
                        Some(expectation(*e)),
                        true,
                    )?,
                    Slot::Record {
                        what: format!("promotion {}", pr.id),
                        expect: Some(*e),
                    },
                );
                for r in &pr.reviews {
                    push(
                        put(table, items::review_item(r, pr)?, None, false)?,
                        Slot::Review,
                    );
                }
            }
            Put::Principal(pr, e) => push(
                put(
                    table,
                    items::principal_item(pr)?,
                    Some(expectation(*e)),
                    true,
                )?,
                Slot::Record {
                    what: format!("principal {}", pr.id),
                    expect: Some(*e),
                },
            ),
            Put::CardRevision(c) => push(
                put(table, items::card_item(c)?, Some(absent()), false)?,
                Slot::Record {
                    what: format!("card revision {}", c.card_revision),
                    expect: None,
                },
            ),
            Put::ProductionChange(c) => push(
                put(
                    table,
                    items::production_change_item(c, first_seq)?,
                    Some(absent()),
                    false,
                )?,
                Slot::Record {
                    what: format!(
                        "production change of {} at {}",
                        c.name,
                        steward_core::audit::format_time(c.at)
                    ),
                    expect: None,
                },
            ),
            Put::Webhook(w, e) => push(
                put(table, items::webhook_item(w)?, Some(expectation(*e)), true)?,
                Slot::Record {
                    what: format!("webhook {}", w.id),
                    expect: Some(*e),
                },
            ),
            Put::Serving(r, e) => push(
                put(table, items::serving_item(r)?, Some(expectation(*e)), true)?,
                Slot::Record {
                    what: format!("serving record {}", r.key()),
                    expect: Some(*e),
                },
            ),
            Put::RegisteredModel(m, e) => push(
                put(
                    table,
                    items::registered_model_item(m)?,
                    Some(expectation(*e)),
                    true,
                )?,
                Slot::Record {
                    what: format!("registered model {}", m.name),
                    expect: Some(*e),
                },
            ),
            Put::Incident(i) => push(
                put(table, items::incident_item(i)?, Some(absent()), false)?,
                Slot::Record {
                    what: format!("incident {}", i.id),
                    expect: None,
                },
            ),
            Put::IncidentChange(i, e) => push(
                put(
                    table,
                    items::incident_item(i)?,
                    Some(incident_expectation(*e)),
                    true,
                )?,
                Slot::Record {
                    what: format!("incident {}", i.id),
                    expect: Some(*e),
                },
            ),
        }
    }

    let mut seqs = Vec::with_capacity(commit.audit.len());
    let mut new_head = None;
    if let Some(old) = old {
        let mut head = old.clone();
        for (i, draft) in commit.audit.iter().enumerate() {
            let seq = first_seq + i as u64;
            let event = draft.clone().at(seq);
            let bytes = event.canonical_bytes();
            let leaf = leaf_hash(&bytes);
            let completed = merkle::append(head.size, &mut head.frontier, leaf)
                .map_err(|e| StoreError::backend("cannot append to the audit head", e))?;
            let outbox = (i == 0).then_some(commit.events.as_slice());
            push(
                put(
                    table,
                    items::event_item(seq, bytes, leaf, event.name.as_deref(), outbox)?,
                    Some(absent()),
                    false,
                )?,
                Slot::Event(seq),
            );
            for (subtree, hash) in completed {
                push(
                    put(
                        table,
                        items::node_item(subtree, hash)?,
                        Some(absent()),
                        false,
                    )?,
                    Slot::Node,
                );
            }
            head.size = seq;
            head.time = Some(event.time);
            seqs.push(seq);
        }
        let c = if old.size == 0 {
            absent()
        } else {
            Condition {
                expression: "#size = :size",
                names: vec![("#size", "size")],
                values: vec![(":size", n(old.size))],
            }
        };
        push(
            put(table, items::head_item(&head)?, Some(c), true)?,
            Slot::Head,
        );
        new_head = Some(head);
    }

    if items.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::backend_msg(format!(
            "this commit needs {} DynamoDB items (records, reviews, audit events, Merkle nodes, \
             head), but one transaction holds at most {MAX_TRANSACTION_ITEMS}",
            items.len()
        )));
    }
    Ok(Plan {
        items,
        slots,
        seqs,
        new_head,
        old_size,
    })
}

/// What a cancelled transaction means for the commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The idempotency key was committed by another request: nothing was written.
    IdempotencyKeyTaken,
    /// A record's expectation failed: nothing was written.
    Conflict(String),
    /// Only the audit head moved (another commit appended first): re-plan on this head
    /// (`None`: re-read it).
    HeadMoved(Option<Head>),
    /// A transient cancellation (a concurrent transaction on the same item, throttling):
    /// re-read the head and resubmit.
    Retry(String),
    /// An audit item exists beyond the head this commit was planned on.
    AuditItemExists(u64),
    /// Anything else (a validation error, an item too large): not retryable.
    Failed(String),
}

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
const TRANSIENT: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

fn revision_of(item: Option<&Item>) -> Option<u64> {
    item?.get("revision")?.as_n().ok()?.parse().ok()
}

fn record_message(what: &str, expect: Option<Expect>, old: Option<&Item>) -> String {
    match (expect, old) {
        (None, _) | (Some(Expect::Absent), _) => format!("{what} already exists"),
        (Some(Expect::Revision(r)), Some(_)) => match revision_of(old) {
            Some(c) => format!("{what} is at revision {c}, expected {r}"),
            None => format!("{what} is not at revision {r}"),
        },
        (Some(Expect::Revision(_)), None) => format!("{what} does not exist"),
    }
}

/// Reads the cancellation reasons of a transaction planned as `slots`.
pub fn classify(slots: &[Slot], reasons: &[CancellationReason]) -> Outcome {
    let failed = |i: usize| reasons.get(i).and_then(|r| r.code()) == Some(CONDITION_FAILED);
    if slots
        .iter()
        .enumerate()
        .any(|(i, s)| *s == Slot::Idempotency && failed(i))
    {
        return Outcome::IdempotencyKeyTaken;
    }
    for (i, slot) in slots.iter().enumerate() {
        if let Slot::Record { what, expect } = slot {
            if failed(i) {
                return Outcome::Conflict(record_message(what, *expect, reasons[i].item()));
            }
        }
    }
    if let Some(i) = slots.iter().position(|s| *s == Slot::Head) {
        if failed(i) {
            let head = reasons[i]
                .item()
                .and_then(|item| items::head_from_item(item.clone()).ok());
            return Outcome::HeadMoved(head);
        }
    }
    let codes: Vec<&str> = reasons
        .iter()
        .filter_map(|r| r.code())
        .filter(|c| *c != "None")
        .collect();
    if let Some(c) = codes.iter().find(|c| TRANSIENT.contains(c)) {
        return Outcome::Retry((*c).to_owned());
    }
    for (i, slot) in slots.iter().enumerate() {
        match slot {
            Slot::Event(seq) if failed(i) => return Outcome::AuditItemExists(*seq),
            Slot::Node if failed(i) => {
                let seq = slots[..i]
                    .iter()
                    .rev()
                    .find_map(|s| match s {
                        Slot::Event(seq) => Some(*seq),
                        _ => None,
                    })
                    .unwrap_or_default();
                return Outcome::AuditItemExists(seq);
            }
            _ => {}
        }
    }
    let detail: Vec<String> = reasons
        .iter()
        .enumerate()
        .filter(|(_, r)| r.code().is_some_and(|c| c != "None"))
        .map(|(i, r)| {
            format!(
                "item {i} ({:?}): {} {}",
                slots.get(i),
                r.code().unwrap_or_default(),
                r.message().unwrap_or_default()
            )
        })
        .collect();
    Outcome::Failed(format!("transaction cancelled: {}", detail.join("; ")))
}

/// How many times a commit is re-planned after losing the race for the audit head.
const COMMIT_ATTEMPTS: u32 = 16;

/// Lost races seen by this instance in quick succession, to size the pause before the
/// next one is reported (see [`DynamoStore::lost_race_pause`]).
#[derive(Debug)]
pub(super) struct Contention {
    last: Instant,
    level: u32,
}

impl Contention {
    pub(super) fn new() -> Self {
        Self {
            last: Instant::now(),
            level: 0,
        }
    }
}

impl DynamoStore {
    /// How long to wait before reporting a lost race as `Conflict`: random, within a window
    /// of the transaction's own round trip (at least 5 ms) for an isolated conflict, doubling
    /// up to 32 round trips (at most 1 s) while this instance keeps losing races. The caller re-reads and
    /// retries at once (core's `register` does, a few times); without the pause, writers
    /// that collided once collide again in lockstep and only one of them wins per round.
    pub(super) fn lost_race_pause(&self, round_trip: Duration) -> Duration {
        let level = {
            let mut c = self.contention.lock().unwrap_or_else(|e| e.into_inner());
            if c.last.elapsed() > Duration::from_secs(2) {
                c.level = 0;
            }
            c.level = (c.level + 1).min(5);
            c.last = Instant::now();
            c.level
        };
        let unit = (round_trip.as_millis() as u64).clamp(5, 200);
        let window = (unit << level).min(1000);
        Duration::from_millis(1 + (uuid::Uuid::new_v4().as_u128() % u128::from(window)) as u64)
    }

    pub(super) async fn try_commit(&self, commit: &Commit) -> Result<Receipt, StoreError> {
        let appends = !commit.audit.is_empty();
        let mut last = String::new();
        for attempt in 0..COMMIT_ATTEMPTS {
            let head = match (appends, self.cached_head()) {
                (false, _) => None,
                (true, Some(h)) => Some(h),
                (true, None) => Some(self.read_head().await?),
            };
            let plan = plan(&self.table, commit, head.as_ref(), Utc::now())?;
            let sent = Instant::now();
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(plan.items))
                // Lets the SDK's own retry of a timed-out attempt succeed idempotently
                // instead of failing on conditions its first attempt already satisfied.
                .client_request_token(uuid::Uuid::new_v4().to_string())
                .send()
                .await;
            let err = match result {
                Ok(_) => {
                    if let Some(h) = plan.new_head {
                        self.observe_head(h);
                    }
                    return Ok(Receipt {
                        audit_seqs: plan.seqs,
                    });
                }
                Err(e) => e,
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    c.cancellation_reasons().to_vec()
                }
                _ => return Err(sdk_error("TransactWriteItems", err)),
            };
            match classify(&plan.slots, &reasons) {
                Outcome::IdempotencyKeyTaken => return Err(StoreError::IdempotencyKeyTaken),
                Outcome::Conflict(m) => {
                    tokio::time::sleep(self.lost_race_pause(sent.elapsed())).await;
                    return Err(StoreError::Conflict(m));
                }
                Outcome::HeadMoved(Some(h)) => {
                    last = format!("the audit head moved to {}", h.size);
                    *self.head.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
                    if attempt > 0 {
                        tokio::time::sleep(jitter(attempt)).await;
                    }
                }
                Outcome::HeadMoved(None) => {
                    last = "the audit head moved".into();
                    self.forget_head();
                }
                Outcome::Retry(code) => {
                    last = code;
                    self.forget_head();
                    tokio::time::sleep(jitter(attempt)).await;
                }
                Outcome::AuditItemExists(seq) => {
                    // Either the head moved and DynamoDB reported only the event, or the log
                    // is inconsistent; a fresh head tells which.
                    let fresh = self.read_head().await?;
                    if fresh.size == plan.old_size {
                        return Err(StoreError::backend_msg(format!(
                            "the audit log is inconsistent: an item for event {seq} exists \
                             beyond the head's size {}",
                            fresh.size
                        )));
                    }
                    last = format!("audit event {seq} was taken");
                }
                Outcome::Failed(m) => return Err(StoreError::backend_msg(m)),
            }
        }
        Err(StoreError::Conflict(format!(
            "the audit log is busy: the commit lost the race for the next position \
             {COMMIT_ATTEMPTS} times ({last}); retry"
        )))
    }
}

#[cfg(test)]
mod tests;
