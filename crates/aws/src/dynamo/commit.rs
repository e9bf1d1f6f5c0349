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
use chrono::{DateTime, Utc};
use steward_core::audit::leaf_hash;
use steward_core::ports::{Commit, Expect, Put};
use steward_core::StoreError;

use super::items::{self, n, Head, Item};
use super::merkle;

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
        .map_err(|e| StoreError::Backend(format!("cannot build a DynamoDB put: {e}")))?;
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
        return Err(StoreError::Backend(
            "a commit with governance events must append an audit event to carry them".into(),
        ));
    }
    let old = match (commit.audit.is_empty(), head) {
        (true, _) => None,
        (false, Some(h)) => Some(h),
        (false, None) => {
            return Err(StoreError::Backend(
                "planning an audit append needs the audit head".into(),
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
            Put::Incident(i) => push(
                put(table, items::incident_item(i)?, Some(absent()), false)?,
                Slot::Record {
                    what: format!("incident {}", i.id),
                    expect: None,
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
                .map_err(|e| StoreError::Backend(e.to_string()))?;
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
        return Err(StoreError::Backend(format!(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str, item: Option<Item>) -> CancellationReason {
        CancellationReason::builder()
            .code(code)
            .set_item(item)
            .build()
    }

    fn none() -> CancellationReason {
        reason("None", None)
    }

    fn slots() -> Vec<Slot> {
        vec![
            Slot::Idempotency,
            Slot::Record {
                what: "credit-risk version 1".into(),
                expect: Some(Expect::Revision(3)),
            },
            Slot::Review,
            Slot::Event(8),
            Slot::Node,
            Slot::Head,
        ]
    }

    fn failed() -> CancellationReason {
        reason(CONDITION_FAILED, None)
    }

    #[test]
    fn a_failed_record_condition_is_a_conflict_naming_the_revision_found() {
        let mut old = Item::new();
        old.insert("revision".into(), n(5));
        let r = vec![
            none(),
            reason(CONDITION_FAILED, Some(old)),
            none(),
            failed(),
            none(),
            failed(),
        ];
        assert_eq!(
            classify(&slots(), &r),
            Outcome::Conflict("credit-risk version 1 is at revision 5, expected 3".into())
        );
        let r = vec![none(), failed(), none(), none(), none(), none()];
        assert_eq!(
            classify(&slots(), &r),
            Outcome::Conflict("credit-risk version 1 does not exist".into())
        );
    }

    #[test]
    fn a_taken_idempotency_key_wins_over_a_record_conflict() {
        let r = vec![failed(), failed(), none(), none(), none(), none()];
        assert_eq!(classify(&slots(), &r), Outcome::IdempotencyKeyTaken);
    }

    #[test]
    fn a_failed_head_alone_is_a_lost_race_for_the_log_position() {
        let head = Head {
            size: 9,
            frontier: vec![[1; 32], [2; 32]],
            time: None,
        };
        let item = items::head_item(&head).unwrap();
        let r = vec![
            none(),
            none(),
            none(),
            failed(),
            none(),
            reason(CONDITION_FAILED, Some(item)),
        ];
        assert_eq!(classify(&slots(), &r), Outcome::HeadMoved(Some(head)));
        let r = vec![none(), none(), none(), none(), none(), failed()];
        assert_eq!(classify(&slots(), &r), Outcome::HeadMoved(None));
    }

    #[test]
    fn a_transaction_conflict_is_retried_and_anything_else_fails() {
        let r = vec![
            none(),
            none(),
            none(),
            none(),
            none(),
            reason("TransactionConflict", None),
        ];
        assert_eq!(
            classify(&slots(), &r),
            Outcome::Retry("TransactionConflict".into())
        );
        let r = vec![none(), none(), none(), failed(), none(), none()];
        assert_eq!(classify(&slots(), &r), Outcome::AuditItemExists(8));
        let r = vec![
            none(),
            none(),
            reason("ValidationError", None),
            none(),
            none(),
            none(),
        ];
        assert!(
            matches!(classify(&slots(), &r), Outcome::Failed(m) if m.contains("ValidationError"))
        );
    }
}
