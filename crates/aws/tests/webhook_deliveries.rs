//! The `webhooks` function's handler against the emulators, on the path it runs in a
//! deployment: a governance commit (DynamoDB Local) → the stream publisher → EventBridge
//! (moto) → the deployed rule (`events/rules/webhook-deliveries.json`) → an SQS queue →
//! `handlers::webhooks::webhooks`, given the SQS event as the Lambda runtime hands it over
//! (JSON) → a real HTTP receiver on 127.0.0.1. Scheduled runs are given an EventBridge
//! Scheduled Event.
//!
//! The receiver here checks the signature with `steward_core::webhooks::WebhookSecret::sign`,
//! as a receiver would; the independent check (the `standardwebhooks` package's verifier) is
//! in `crates/cli/tests/webhooks.rs`.
//!
//! Needs the emulators (`bash scripts/emulators run -- cargo test -p steward-aws --test
//! webhook_deliveries`). Each test builds its own table, bus, queue and secret prefix.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use steward_aws::handlers::webhooks::{deliverer, webhooks};
use steward_core::service::WebhookInput;
use steward_core::webhooks::{
    Delivery, DeliveryStatus, RetrySchedule, WebhookId, WebhookSecret, WebhookStatus,
};
use steward_integrations::{Deliverer, Integrations};

mod common;
use common::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WEBHOOK_RULE: &str = include_str!("../../../events/rules/webhook-deliveries.json");
const HOOK: &str = "receiver";

/// A Standard Webhooks receiver on 127.0.0.1 that answers `status` and keeps every request.
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

impl Receiver {
    async fn start() -> Result<Receiver> {
        let status = Arc::new(AtomicU16::new(200));
        let seen: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
        let (s, k) = (status.clone(), seen.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| async move {
                k.lock().unwrap().push((headers, body));
                StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Receiver { url, status, seen })
    }

    fn answer(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    fn requests(&self) -> Vec<(HeaderMap, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// A stack with the deployed rule feeding the webhooks queue, and one subscription to
/// `ModelVersionRegistered` at the receiver (its secret in SSM on moto).
struct Setup {
    stack: Stack,
    queue: String,
    receiver: Receiver,
}

async fn setup() -> Result<Setup> {
    let prefix = format!("/steward/{}", unique("wh"));
    let stack = Stack::new(&[("STEWARD_WEBHOOK_SECRETS_PREFIX", prefix)]).await?;
    let queue = stack.queue_for(serde_json::from_str(WEBHOOK_RULE)?).await?;
    let receiver = Receiver::start().await?;
    stack
        .backend
        .gov
        .put_webhook(
            &admin(),
            HOOK,
            WebhookInput {
                url: Some(receiver.url.clone()),
                events: vec!["ModelVersionRegistered".into()],
                secret: Some(SECRET.into()),
            },
        )
        .await?;
    Ok(Setup {
        stack,
        queue,
        receiver,
    })
}

impl Setup {
    /// Registers `model` and publishes the audit log through the stream publisher; returns
    /// the governance events the rule brought to the queue (received and deleted).
    async fn register_and_publish(&self, model: &str) -> Result<Vec<aws_sdk_sqs::types::Message>> {
        self.stack
            .backend
            .gov
            .register(&dev(), model, manifest(), None)
            .await?;
        let report = steward_aws::handlers::stream::publish_stream(
            &self.stack.audit_stream().await?,
            &self.stack.publisher(),
        )
        .await;
        anyhow::ensure!(report.failed.is_none(), "{:?}", report.failed);
        let messages = self.registered(self.drain(1).await?);
        anyhow::ensure!(messages.len() == 1, "{} registrations", messages.len());
        Ok(messages)
    }

    async fn drain(&self, at_least: usize) -> Result<Vec<aws_sdk_sqs::types::Message>> {
        self.stack
            .drain(&self.queue, at_least, Duration::from_secs(15))
            .await
    }

    /// The `ModelVersionRegistered` messages among `messages`.
    fn registered(
        &self,
        messages: Vec<aws_sdk_sqs::types::Message>,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        messages
            .into_iter()
            .filter(|m| {
                m.body()
                    .unwrap_or_default()
                    .contains("ModelVersionRegistered")
            })
            .collect()
    }

    /// The SQS event for `messages`, as JSON: what the function's runtime hands it.
    async fn sqs_payload(&self, messages: &[aws_sdk_sqs::types::Message]) -> Result<Value> {
        Ok(serde_json::to_value(
            self.stack.sqs_event(&self.queue, messages).await?,
        )?)
    }

    async fn deliveries(&self) -> Result<Vec<Delivery>> {
        let ports = self.stack.backend.gov.webhook_store().context("ports")?;
        Ok(ports
            .deliveries
            .recent(&WebhookId::parse(HOOK)?, 100)
            .await?)
    }

    /// A deliverer over the stack's governance with a fast retry schedule.
    fn fast_deliverer(&self, give_up_after: chrono::Duration) -> Result<Deliverer> {
        Ok(Deliverer::new(
            self.stack.backend.gov.clone(),
            RetrySchedule {
                first: chrono::Duration::milliseconds(300),
                cap: chrono::Duration::seconds(1),
                give_up_after,
            },
            Integrations::none(),
        )?)
    }
}

/// An EventBridge Scheduled Event, as the `rate(1 minute)` rule invokes the function.
fn scheduled_event() -> Value {
    json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-12-01T10:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/steward-webhooks-EveryMinute"],
        "detail": {}
    })
}

fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks a request's Standard Webhooks headers against its body, as a receiver does.
fn verify(headers: &HeaderMap, body: &str) -> Result<String> {
    let header = |n: &str| -> Result<String> {
        Ok(headers
            .get(n)
            .with_context(|| format!("no {n} header"))?
            .to_str()?
            .to_owned())
    };
    let (id, ts, sig) = (
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
    );
    let ts: i64 = ts.parse()?;
    anyhow::ensure!(
        (chrono::Utc::now().timestamp() - ts).abs() < 300,
        "stale timestamp {ts}"
    );
    let expected = WebhookSecret::parse(SECRET)?.sign(&id, ts, body.as_bytes());
    anyhow::ensure!(sig == expected, "signature {sig} != {expected}");
    anyhow::ensure!(header("content-type")? == "application/json");
    Ok(id)
}

// -------------------------------------------------------------------------------- tests

#[tokio::test]
async fn a_governance_event_from_the_queue_is_delivered_with_a_valid_standard_webhooks_signature(
) -> Result<()> {
    let s = setup().await?;
    let messages = s.register_and_publish("credit-risk").await?;
    let deliverer = deliverer(&s.stack.backend).map_err(|f| anyhow::anyhow!("{f}"))?;

    let response = webhooks(s.sqs_payload(&messages).await?, &deliverer)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(failures(&response), Vec::<String>::new(), "{response}");

    let requests = s.receiver.requests();
    assert_eq!(
        requests.len(),
        1,
        "one delivery, attempted in the same invocation"
    );
    let (headers, body) = &requests[0];
    let id = verify(headers, body)?;
    let body: Value = serde_json::from_str(body)?;
    assert_eq!(body["detail-type"], "ModelVersionRegistered");
    assert_eq!(body["source"], "steward.governance");
    assert_eq!(body["detail"]["name"], "credit-risk");
    let event_id = body["id"].as_str().context("id")?;
    assert!(event_id.starts_with("evt_"), "{event_id}");
    assert_eq!(id, format!("msg_{event_id}_{HOOK}"));

    let deliveries = s.deliveries().await?;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, DeliveryStatus::Delivered);
    assert_eq!(deliveries[0].last_response_code, Some(200));
    Ok(())
}

#[tokio::test]
async fn the_same_record_redelivered_by_sqs_queues_nothing_twice() -> Result<()> {
    let s = setup().await?;
    let messages = s.register_and_publish("credit-risk").await?;
    let deliverer = deliverer(&s.stack.backend).map_err(|f| anyhow::anyhow!("{f}"))?;
    let payload = s.sqs_payload(&messages).await?;
    for _ in 0..3 {
        let response = webhooks(payload.clone(), &deliverer)
            .await
            .map_err(|f| anyhow::anyhow!("{f}"))?;
        assert_eq!(failures(&response), Vec::<String>::new());
    }
    assert_eq!(s.deliveries().await?.len(), 1);
    assert_eq!(s.receiver.requests().len(), 1, "delivered once, not again");
    Ok(())
}

#[tokio::test]
async fn an_event_the_outbox_publishes_again_under_a_new_eventbridge_id_queues_nothing_twice(
) -> Result<()> {
    let s = setup().await?;
    let first = s.register_and_publish("credit-risk").await?;
    // What the stream publisher does when it crashes between PutEvents and its outbox
    // marker: the same event (same detail, same audit_seq) published again.
    let envelope: Value = serde_json::from_str(first[0].body().unwrap_or_default())?;
    let event = steward_core::records::DomainEvent {
        detail_type: envelope["detail-type"].as_str().unwrap_or_default().into(),
        detail: envelope["detail"].clone(),
    };
    s.stack
        .backend
        .publisher(&s.stack.env)
        .map_err(|f| anyhow::anyhow!("{f}"))?
        .publish(&[event])
        .await?;
    let again = s.registered(s.drain(1).await?);
    assert_eq!(again.len(), 1);
    let republished: Value = serde_json::from_str(again[0].body().unwrap_or_default())?;
    assert_ne!(
        republished["id"], envelope["id"],
        "EventBridge gave it a new id"
    );

    let deliverer = deliverer(&s.stack.backend).map_err(|f| anyhow::anyhow!("{f}"))?;
    for messages in [&first, &again] {
        webhooks(s.sqs_payload(messages).await?, &deliverer)
            .await
            .map_err(|f| anyhow::anyhow!("{f}"))?;
    }
    assert_eq!(s.deliveries().await?.len(), 1);
    let ids: Vec<String> = s
        .receiver
        .requests()
        .iter()
        .map(|(h, b)| verify(h, b))
        .collect::<Result<_>>()?;
    assert_eq!(ids.len(), 1, "{ids:?}");
    Ok(())
}

#[tokio::test]
async fn a_receiver_answering_500_leaves_the_delivery_pending_and_a_scheduled_run_delivers_it_after_it_recovers(
) -> Result<()> {
    let s = setup().await?;
    let messages = s.register_and_publish("credit-risk").await?;
    let deliverer = s.fast_deliverer(chrono::Duration::hours(24))?;
    s.receiver.answer(500);

    webhooks(s.sqs_payload(&messages).await?, &deliverer)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    let d = &s.deliveries().await?[0];
    assert_eq!(
        (d.status, d.attempts, d.last_response_code),
        (DeliveryStatus::Pending, 1, Some(500))
    );
    assert_eq!(
        s.stack.backend.gov.webhook(&admin(), HOOK).await?.status,
        WebhookStatus::Active
    );

    s.receiver.answer(200);
    tokio::time::sleep(Duration::from_millis(400)).await; // past the first retry's 150-300 ms
    let run = webhooks(scheduled_event(), &deliverer)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(run, json!({"attempted": 1}));

    let d = &s.deliveries().await?[0];
    assert_eq!(
        (d.status, d.attempts, d.last_response_code),
        (DeliveryStatus::Delivered, 2, Some(200))
    );
    let requests = s.receiver.requests();
    let ids: Vec<String> = requests
        .iter()
        .map(|(h, b)| verify(h, b))
        .collect::<Result<_>>()?;
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "a retry keeps its webhook-id");
    assert_eq!(requests[0].1, requests[1].1, "and its body");

    let idle = webhooks(scheduled_event(), &deliverer)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(idle, json!({"attempted": 0}), "nothing is due any more");
    Ok(())
}

#[tokio::test]
async fn a_delivery_that_gives_up_marks_its_subscription_failed_with_an_audit_event() -> Result<()>
{
    let s = setup().await?;
    let messages = s.register_and_publish("credit-risk").await?;
    // A window that is over at the first failure.
    let deliverer = s.fast_deliverer(chrono::Duration::zero())?;
    s.receiver.answer(503);

    let (logs, guard) = CapturedLogs::start();
    webhooks(s.sqs_payload(&messages).await?, &deliverer)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    drop(guard);
    assert_eq!(s.deliveries().await?[0].status, DeliveryStatus::Failed);
    // The alarm's metric filter counts exactly the line this logged.
    let counted = logs.counted_by("WebhookGaveUpMetricFilter");
    assert_eq!(counted.len(), 1, "{:?}", logs.lines());
    assert_eq!(counted[0]["fields"]["webhook"], HOOK);
    let hook = s.stack.backend.gov.webhook(&admin(), HOOK).await?;
    assert_eq!(hook.status, WebhookStatus::Failed);
    let events = s
        .stack
        .backend
        .gov
        .audit_events(&auditor(), None, 0, 100)
        .await?;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.action == "webhook.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0].actor.to_string(), "system:webhooks");
    Ok(())
}

#[tokio::test]
async fn a_bad_record_is_reported_as_a_batch_item_failure_and_the_good_ones_are_not() -> Result<()>
{
    let s = setup().await?;
    let messages = s.register_and_publish("credit-risk").await?;
    let good = messages[0].body().unwrap_or_default().to_owned();
    let mut other_source: Value = serde_json::from_str(&good)?;
    other_source["source"] = json!("steward.workflow");
    let mut no_time: Value = serde_json::from_str(&good)?;
    no_time.as_object_mut().context("object")?.remove("time");
    let event = sqs_event_of(&[
        "not json".into(),
        good,
        other_source.to_string(),
        no_time.to_string(),
    ])?;
    let deliverer = deliverer(&s.stack.backend).map_err(|f| anyhow::anyhow!("{f}"))?;

    let response = webhooks(serde_json::to_value(&event)?, &deliverer)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(failures(&response), ["m-0", "m-2", "m-3"], "{response}");
    assert_eq!(s.deliveries().await?.len(), 1, "the good record was queued");
    assert_eq!(s.receiver.requests().len(), 1, "and delivered");
    Ok(())
}
