//! How a cancelled transaction is read: which item failed, and whether a retry can help.

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
    assert!(matches!(classify(&slots(), &r), Outcome::Failed(m) if m.contains("ValidationError")));
}
