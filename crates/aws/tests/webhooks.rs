//! Webhooks on the AWS backend against the emulators: subscriptions as registry records of
//! `DynamoStore` (committed with their audit events, conditioned like every record), their
//! signing secrets in SSM (moto) through `Governance`, and `DynamoDeliveries` (the
//! `Deliveries` port) on DynamoDB Local.
//!
//! Needs the emulators (`bash scripts/emulators run -- cargo test -p steward-aws --test
//! webhooks`). Each test creates its own table and secret prefix.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::json;

use steward_aws::dynamo::{create_table, DynamoDeliveries, DynamoStore};
use steward_aws::ssm::SsmSecrets;
use steward_aws::RequestCounter;
use steward_core::audit::AuditDraft;
use steward_core::ports::{
    AuditLog, Commit, Deliveries, Expect, InProcessWorkflows, Put, Registry, Secrets, SystemClock,
};
use steward_core::records::DomainEvent;
use steward_core::service::{WebhookInput, WebhookPorts};
use steward_core::types::PrincipalId;
use steward_core::webhooks::{
    Delivery, DeliveryStatus, RetrySchedule, Webhook, WebhookId, WebhookStatus, WebhookUrl,
};
use steward_core::{GovError, Governance, Policy, StoreError};
use steward_testkit::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_c2Vjb25kLXNlY3JldC1vZi10d2VudHktZm91cg==";

struct Env {
    client: Client,
    counter: RequestCounter,
    table: String,
    store: Arc<DynamoStore>,
    secrets: Arc<SsmSecrets>,
    deliveries: Arc<DynamoDeliveries>,
    gov: Governance,
}

impl Env {
    async fn new() -> Env {
        let emulators = steward_testkit::emulators!();
        let counter = RequestCounter::default();
        let client = Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&emulators.dynamodb_sdk().await)
                .interceptor(counter.clone())
                .build(),
        );
        let table = unique("steward-webhooks");
        create_table(&client, &table).await.unwrap();
        let store = Arc::new(DynamoStore::new(
            client.clone(),
            table.clone(),
            (String::new(), Vec::new()),
        ));
        let secrets = Arc::new(
            SsmSecrets::new(&emulators.sdk().await, &format!("/steward/{table}")).unwrap(),
        );
        let deliveries = Arc::new(DynamoDeliveries::on(&store));
        let gov = Governance::new(
            store.clone(),
            store.clone(),
            Arc::new(InProcessWorkflows),
            Arc::new(SystemClock),
            Arc::new(steward_aws::handlers::backend::UuidIds),
            Policy::default(),
        )
        .with_webhooks(WebhookPorts {
            secrets: secrets.clone(),
            deliveries: deliveries.clone(),
        });
        counter.take();
        Env {
            client,
            counter,
            table,
            store,
            secrets,
            deliveries,
            gov,
        }
    }

    /// The raw item under `(pk, sk)`.
    async fn item(
        &self,
        pk: &str,
        sk: &str,
    ) -> Option<std::collections::HashMap<String, AttributeValue>> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    async fn actions(&self) -> Vec<String> {
        self.store
            .events(None, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

fn hook(id: &str) -> WebhookId {
    WebhookId::parse(id).unwrap()
}

fn input(url: Option<&str>, events: &[&str], secret: Option<&str>) -> WebhookInput {
    WebhookInput {
        url: url.map(str::to_owned),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        secret: secret.map(str::to_owned),
    }
}

fn record(id: &str, revision: u64) -> Webhook {
    let now = Utc::now();
    Webhook {
        id: hook(id),
        url: WebhookUrl::parse("https://hooks.example.com/steward").unwrap(),
        events: vec!["ReviewRequested".into()],
        secret_ref: format!("webhooks/{id}/{revision}"),
        status: WebhookStatus::Active,
        created_at: now,
        updated_at: now,
        updated_by: PrincipalId::parse(&user_arn("admin")).unwrap(),
        revision,
    }
}

fn draft(action: &str) -> AuditDraft {
    AuditDraft {
        time: Utc::now(),
        actor: "system:test".into(),
        action: action.into(),
        name: None,
        version: None,
        details: json!({}),
    }
}

/// Whole milliseconds, as a test sets times it compares after a round trip.
fn t(offset_secs: i64) -> DateTime<Utc> {
    let base = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    (base + Duration::seconds(offset_secs))
        .duration_trunc(Duration::milliseconds(1))
        .unwrap()
}

fn delivery(webhook: &str, event_id: &str, created_at: DateTime<Utc>) -> Delivery {
    let event = DomainEvent {
        detail_type: "ReviewRequested".into(),
        detail: json!({"review_id": format!("r-{event_id}")}),
    };
    Delivery::new(&hook(webhook), event_id, created_at, &event, created_at)
}

// ------------------------------------------------------------------------ subscriptions

#[tokio::test]
async fn a_webhook_is_created_updated_and_deleted_through_governance_with_its_audit_events() {
    let env = Env::new().await;
    let (created, was_new) = env
        .gov
        .put_webhook(
            &admin(),
            "jira",
            input(
                Some("https://hooks.example.com/jira"),
                &["ReviewRequested"],
                Some(SECRET),
            ),
        )
        .await
        .unwrap();
    assert!(was_new);
    // Secret names are unique per put: webhooks/ID/REVISION-UNIQUE.
    assert_eq!(created.revision, 1);
    assert!(
        created.secret_ref.starts_with("webhooks/jira/1-s-"),
        "{}",
        created.secret_ref
    );
    assert_eq!(env.gov.webhook(&auditor(), "jira").await.unwrap(), created);
    assert_eq!(
        env.secrets
            .get(&created.secret_ref)
            .await
            .unwrap()
            .map(|s| s.expose()),
        Some(SECRET.to_owned())
    );

    // An update without a secret keeps it; one with a secret writes a new name and
    // removes the old one after the commit.
    let (updated, was_new) = env
        .gov
        .put_webhook(
            &admin(),
            "jira",
            input(Some("https://hooks.example.com/jira/v2"), &[], None),
        )
        .await
        .unwrap();
    assert!(!was_new);
    assert_eq!(
        (updated.revision, updated.secret_ref.as_str()),
        (2, created.secret_ref.as_str())
    );
    let (rotated, _) = env
        .gov
        .put_webhook(&admin(), "jira", input(None, &[], Some(OTHER_SECRET)))
        .await
        .unwrap();
    assert_eq!(rotated.revision, 3);
    assert!(
        rotated.secret_ref.starts_with("webhooks/jira/3-s-"),
        "{}",
        rotated.secret_ref
    );
    assert_eq!(
        rotated.url.as_str(),
        "https://hooks.example.com/jira/v2",
        "kept"
    );
    assert!(env
        .secrets
        .get(&created.secret_ref)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        env.secrets
            .get(&rotated.secret_ref)
            .await
            .unwrap()
            .map(|s| s.expose()),
        Some(OTHER_SECRET.to_owned())
    );

    env.gov.delete_webhook(&admin(), "jira").await.unwrap();
    assert!(matches!(
        env.gov.webhook(&admin(), "jira").await,
        Err(GovError::NotFound(_))
    ));
    assert!(env.gov.list_webhooks(&admin()).await.unwrap().is_empty());
    let tomb = env.store.webhook(&hook("jira")).await.unwrap().unwrap();
    assert_eq!((tomb.status, tomb.revision), (WebhookStatus::Deleted, 4));
    assert!(env
        .secrets
        .get(&rotated.secret_ref)
        .await
        .unwrap()
        .is_none());

    // Every change committed with its audit event, in order.
    assert_eq!(
        env.actions().await,
        [
            "webhook.put",
            "webhook.put",
            "webhook.put",
            "webhook.deleted"
        ]
    );

    // The tombstone's revision goes on: a new put of the id is conditional on it.
    let (again, was_new) = env
        .gov
        .put_webhook(
            &admin(),
            "jira",
            input(Some("https://hooks.example.com/jira"), &[], Some(SECRET)),
        )
        .await
        .unwrap();
    assert!(was_new);
    assert_eq!(again.revision, 5);
    assert!(
        again.secret_ref.starts_with("webhooks/jira/5-s-"),
        "{}",
        again.secret_ref
    );
}

#[tokio::test]
async fn a_stale_revision_is_a_conflict_and_writes_nothing() {
    let env = Env::new().await;
    let first = record("jira", 1);
    env.store
        .commit(Commit {
            puts: vec![Put::Webhook(first.clone(), Expect::Absent)],
            audit: vec![draft("webhook.put")],
            ..Commit::default()
        })
        .await
        .unwrap();
    let head = env.store.head().await.unwrap();
    assert_eq!(head.size, 1, "the audit event committed with the record");

    let mut stale = first.clone();
    stale.url = WebhookUrl::parse("https://attacker.example.com/").unwrap();
    stale.revision = 7;
    let err = env
        .store
        .commit(Commit {
            puts: vec![Put::Webhook(stale.clone(), Expect::Revision(6))],
            audit: vec![draft("test.should_not_land")],
            ..Commit::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m == "webhook jira is at revision 1, expected 6"),
        "{err}"
    );
    let err = env
        .store
        .commit(Commit {
            puts: vec![Put::Webhook(stale, Expect::Absent)],
            audit: vec![draft("test.should_not_land")],
            ..Commit::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m == "webhook jira already exists"),
        "{err}"
    );
    assert_eq!(
        env.store.head().await.unwrap(),
        head,
        "no audit event landed"
    );
    assert_eq!(
        env.store.webhook(&hook("jira")).await.unwrap(),
        Some(first.clone())
    );

    // The current revision is accepted.
    let mut next = first.clone();
    next.events = vec![];
    next.revision = 2;
    env.store
        .commit(Commit {
            puts: vec![Put::Webhook(next.clone(), Expect::Revision(1))],
            audit: vec![draft("webhook.put")],
            ..Commit::default()
        })
        .await
        .unwrap();
    assert_eq!(env.store.webhook(&hook("jira")).await.unwrap(), Some(next));
    assert_eq!(env.actions().await, ["webhook.put", "webhook.put"]);
}

#[tokio::test]
async fn webhooks_are_listed_by_id_with_one_query_and_the_item_holds_no_secret() {
    let env = Env::new().await;
    for id in ["zulip", "jira", "pagerduty"] {
        env.gov
            .put_webhook(
                &admin(),
                id,
                input(Some("https://hooks.example.com/x"), &[], Some(SECRET)),
            )
            .await
            .unwrap();
    }
    env.counter.take();
    let all = env.store.webhooks().await.unwrap();
    assert_eq!(
        env.counter.take().into_iter().collect::<Vec<_>>(),
        [("DynamoDB.Query".to_owned(), 1)]
    );
    let ids: Vec<&str> = all.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["jira", "pagerduty", "zulip"]);
    assert!(env.store.webhook(&hook("absent")).await.unwrap().is_none());

    let item = env.item("WEBHOOKS", "jira").await.unwrap();
    assert_eq!(item["entity"].as_s().unwrap(), "webhook");
    assert!(item["secret_ref"]
        .as_s()
        .unwrap()
        .starts_with("webhooks/jira/1-s-"));
    let text = format!("{item:?}");
    assert!(
        !text.contains("whsec_") && !text.contains(&SECRET[6..]),
        "{text}"
    );
}

// ------------------------------------------------------------------------------ deliveries

#[tokio::test]
async fn enqueuing_the_same_delivery_twice_queues_it_once() {
    let env = Env::new().await;
    let first = delivery("jira", "41", t(0));
    let other = delivery("jira", "42", t(1));
    env.deliveries
        .enqueue(&[first.clone(), other.clone()])
        .await
        .unwrap();
    // The same event fanned out again after a crash: same id, a later creation time.
    let mut again = delivery("jira", "41", t(30));
    again.body = "{\"changed\":true}".into();
    env.deliveries
        .enqueue(&[again, delivery("jira", "43", t(2))])
        .await
        .unwrap();

    let recent = env.deliveries.recent(&hook("jira"), 10).await.unwrap();
    let ids: Vec<&str> = recent.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["msg_43_jira", "msg_42_jira", "msg_41_jira"]);
    assert_eq!(
        recent[2], first,
        "the first enqueue's body and times were kept"
    );
}

#[tokio::test]
async fn due_returns_pending_deliveries_oldest_first_up_to_the_limit() {
    let env = Env::new().await;
    let mut later = delivery("a", "1", t(0));
    later.next_attempt_at = t(-10);
    let soonest = delivery("b", "2", t(-30));
    let mut future = delivery("a", "3", t(0));
    future.next_attempt_at = t(60);
    let middle = delivery("a", "4", t(-20));
    let mut done = delivery("a", "5", t(-40));
    done.record_attempt(
        t(-40),
        Some(200),
        None,
        None,
        &RetrySchedule::default(),
        0.0,
    );
    env.deliveries
        .enqueue(&[
            later.clone(),
            soonest.clone(),
            future.clone(),
            middle.clone(),
            done,
        ])
        .await
        .unwrap();

    let due = env.deliveries.due(t(0), 10).await.unwrap();
    assert_eq!(due, [soonest.clone(), middle.clone(), later.clone()]);
    let due = env.deliveries.due(t(0), 2).await.unwrap();
    assert_eq!(due, [soonest.clone(), middle.clone()]);
    assert!(env.deliveries.due(t(-31), 10).await.unwrap().is_empty());
    assert!(env.deliveries.due(t(0), 0).await.unwrap().is_empty());
    // At its exact time a delivery is due.
    let at_its_time = env.deliveries.due(t(-30), 10).await.unwrap();
    assert_eq!(at_its_time, std::slice::from_ref(&soonest));

    // A failed attempt moves it back; a success takes it out of the queue for good.
    let mut retried = soonest.clone();
    retried.record_attempt(t(0), Some(503), None, None, &RetrySchedule::default(), 0.0);
    env.deliveries.save(&retried).await.unwrap();
    let mut delivered = middle.clone();
    delivered.record_attempt(t(0), Some(204), None, None, &RetrySchedule::default(), 0.0);
    env.deliveries.save(&delivered).await.unwrap();
    assert_eq!(env.deliveries.due(t(0), 10).await.unwrap(), [later.clone()]);
    let due = env.deliveries.due(t(3600), 10).await.unwrap();
    assert_eq!(due, [later, retried, future]);
    assert_eq!(env.counter.take().get("DynamoDB.Scan"), None, "no Scan");
}

#[tokio::test]
async fn recent_lists_a_subscriptions_deliveries_newest_first() {
    let env = Env::new().await;
    let mut batch = Vec::new();
    for (i, at) in [t(0), t(20), t(10), t(20)].into_iter().enumerate() {
        batch.push(delivery("a", &format!("{i}"), at));
    }
    batch.push(delivery("b", "9", t(30)));
    env.deliveries.enqueue(&batch).await.unwrap();

    let recent = env.deliveries.recent(&hook("a"), 10).await.unwrap();
    let ids: Vec<&str> = recent.iter().map(|d| d.id.as_str()).collect();
    // Newest first; a tie in creation time by id, descending.
    assert_eq!(ids, ["msg_3_a", "msg_1_a", "msg_2_a", "msg_0_a"]);
    let two = env.deliveries.recent(&hook("a"), 2).await.unwrap();
    assert_eq!(two, recent[..2]);
    let b = env.deliveries.recent(&hook("b"), 10).await.unwrap();
    assert_eq!(b.len(), 1);
    assert!(env
        .deliveries
        .recent(&hook("c"), 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn finished_deliveries_expire_after_30_days_and_leave_the_due_index() {
    let env = Env::new().await;
    let pending = delivery("a", "1", t(0));
    env.deliveries
        .enqueue(std::slice::from_ref(&pending))
        .await
        .unwrap();
    let item = env.item("DELIVERY#msg_1_a", "DELIVERY").await.unwrap();
    assert_eq!(item["entity"].as_s().unwrap(), "webhook_delivery");
    assert_eq!(item["gsi3pk"].as_s().unwrap(), "DELIVERIES#due");
    assert_eq!(item["gsi2pk"].as_s().unwrap(), "DELIVERIES#a");
    let thirty_days = 30 * 24 * 3600;
    assert_eq!(
        item["expires_at"].as_n().unwrap(),
        &(t(0).timestamp() + thirty_days).to_string()
    );

    let mut failed = pending.clone();
    failed.created_at = t(-86_400);
    failed.record_attempt(
        t(5),
        None,
        Some("connection refused".into()),
        None,
        &RetrySchedule::default(),
        0.0,
    );
    assert_eq!(failed.status, DeliveryStatus::Failed);
    env.deliveries.save(&failed).await.unwrap();
    let item = env.item("DELIVERY#msg_1_a", "DELIVERY").await.unwrap();
    assert!(!item.contains_key("gsi3pk") && !item.contains_key("gsi3sk"));
    assert_eq!(
        item["expires_at"].as_n().unwrap(),
        &(t(5).timestamp() + thirty_days).to_string()
    );
    assert_eq!(
        env.deliveries.recent(&hook("a"), 1).await.unwrap(),
        [failed]
    );
    assert!(env
        .deliveries
        .due(t(86_400 * 2), 10)
        .await
        .unwrap()
        .is_empty());
}
