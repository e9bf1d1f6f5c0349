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

#[test]
fn a_webhook_put_is_keyed_under_webhooks_and_conditioned_on_its_revision() {
    let now = Utc::now();
    let hook = steward_core::webhooks::Webhook {
        id: steward_core::webhooks::WebhookId::parse("jira").unwrap(),
        url: steward_core::webhooks::WebhookUrl::parse("https://hooks.example.com/").unwrap(),
        events: vec![],
        secret_ref: "webhooks/jira/4".into(),
        status: steward_core::webhooks::WebhookStatus::Active,
        created_at: now,
        updated_at: now,
        updated_by: steward_core::types::PrincipalId::parse("admin").unwrap(),
        revision: 4,
    };
    let commit = Commit {
        puts: vec![Put::Webhook(hook, Expect::Revision(3))],
        ..Commit::default()
    };
    let plan = plan("t", &commit, None, now).unwrap();
    assert_eq!(
        plan.slots,
        [Slot::Record {
            what: "webhook jira".into(),
            expect: Some(Expect::Revision(3)),
        }]
    );
    let put = plan.items[0].put().unwrap();
    assert_eq!(put.condition_expression(), Some("#rev = :rev"));
    assert_eq!(put.expression_attribute_values().unwrap()[":rev"], n(3));
    let item = put.item();
    assert_eq!(item["pk"], items::s("WEBHOOKS"));
    assert_eq!(item["sk"], items::s("jira"));
    assert_eq!(item["entity"], items::s("webhook"));
}
