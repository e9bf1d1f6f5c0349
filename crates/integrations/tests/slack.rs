//! Slack over a real HTTP receiver on 127.0.0.1 that plays an incoming webhook: it records
//! every request and answers as Slack documents (`200 ok`; `429` with `Retry-After` when rate
//! limited). Governance runs in memory (`steward_core::testing::Harness`); the deliverer is the
//! real one, over real HTTP.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use steward_core::testing::Harness;
use steward_core::types::{Environment, RiskTier};
use steward_core::webhooks::{DeliveryStatus, RetrySchedule};
use steward_integrations::{Deliverer, Integrations, IntegrationsConfig};

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    /// Answers 429 with Retry-After to this many requests first.
    limited: Arc<Mutex<u32>>,
}

async fn incoming(State(r): State<Receiver>, headers: HeaderMap, body: String) -> Response {
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    r.got.lock().unwrap().push((headers, json));
    let mut limited = r.limited.lock().unwrap();
    if *limited > 0 {
        *limited -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "30")],
            "rate_limited",
        )
            .into_response();
    }
    (StatusCode::OK, "ok").into_response()
}

async fn start(receiver: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/services/T000/B000/XXXX", post(incoming))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/services/T000/B000/XXXX")
}

#[tokio::test]
async fn a_review_request_posts_one_slack_message_with_its_console_link_after_a_rate_limit() {
    let receiver = Receiver::default();
    *receiver.limited.lock().unwrap() = 1;
    let url = start(receiver.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("slack-url");
    std::fs::write(&secret, format!("{url}\n")).unwrap();
    let config = IntegrationsConfig::from_toml(&format!(
        "console_url = \"https://steward.example.com\"\n[slack.governance]\nurl = {{ file = \"{}\" }}\n",
        secret.display()
    ))
    .unwrap();
    let h = Harness::new();
    let deliverer = Deliverer::new(
        h.gov.clone(),
        RetrySchedule::default(),
        Integrations::build(&config).unwrap(),
    )
    .unwrap();

    let v = h.register("credit-risk", RiskTier::Low).await;
    h.promote("credit-risk", v, Environment::Staging).await;
    let events: Vec<_> = h
        .store
        .outbox()
        .into_iter()
        .enumerate()
        .map(|(i, e)| (format!("evt_{i}"), h.now(), e))
        .collect();
    // Only the review request is one of the events Slack is told about by default.
    assert_eq!(deliverer.fan_out(&events).await.unwrap(), 1);
    assert_eq!(
        deliverer.fan_out(&events).await.unwrap(),
        1,
        "fanning out again queues nothing new"
    );
    assert_eq!(deliverer.deliver_due(10).await.unwrap(), 1);
    // Rate limited: the next attempt waits for Retry-After, not the shorter back-off.
    assert_eq!(deliverer.deliver_due(10).await.unwrap(), 0);
    h.clock.advance(std::time::Duration::from_secs(30));
    assert_eq!(deliverer.deliver_due(10).await.unwrap(), 1);

    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one retry after the 429");
    assert_eq!(got[0].1, got[1].1, "the retry sends the same message");
    let (headers, message) = &got[1];
    assert_eq!(headers["content-type"], "application/json");
    let text = message["text"].as_str().unwrap();
    assert!(
        text.contains("*credit-risk* v1") && text.contains("staging"),
        "{text}"
    );
    assert!(
        text.contains("<https://steward.example.com/console/reviews/credit-risk.1."),
        "{text}"
    );
    assert_eq!(message["blocks"][0]["type"], "section");
    assert_eq!(message["blocks"][0]["text"]["type"], "mrkdwn");
    let id = steward_core::webhooks::WebhookId::integration(
        steward_core::webhooks::IntegrationKind::Slack,
        "governance",
    )
    .unwrap();
    let ports = h.gov.webhook_store().unwrap();
    let d = ports.deliveries.recent(&id, 10).await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].status, d[0].attempts, d[0].last_response_code),
        (DeliveryStatus::Delivered, 2, Some(200))
    );
}
