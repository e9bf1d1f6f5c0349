//! The test world: a governance harness, the fake Jira, the integrations built from a real
//! integrations file, the deliverer, and the inbound router served on 127.0.0.1.

use std::sync::Arc;

use super::fake::{self, FakeJira};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use steward_core::ports::Deliveries;
use steward_core::records::Promotion;
use steward_core::testing::Harness;
use steward_core::types::{Environment, PrincipalId, RiskTier, Role};
use steward_core::webhooks::{Delivery, RetrySchedule, WebhookId};
use steward_integrations::{Deliverer, Integrations, IntegrationsConfig};

pub const SECRET: &str = "jira-webhook-secret-0123456789";
pub const CONSOLE: &str = "https://steward.example.com";

pub struct World {
    pub h: Harness,
    pub jira: FakeJira,
    pub integrations: Arc<Integrations>,
    pub deliverer: Deliverer,
    pub inbound: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl World {
    pub async fn new() -> Self {
        let h = Harness::new();
        let jira = FakeJira::start().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), format!("{}\n", fake::TOKEN)).unwrap();
        std::fs::write(dir.path().join("secret"), SECRET).unwrap();
        let toml = format!(
            r#"
console_url = "{CONSOLE}"
[jira.gov]
base_url = "{url}"
email = "{email}"
api_token = {{ file = "{d}/token" }}
project = "GOV"
webhook_secret = {{ file = "{d}/secret" }}
timeout_seconds = 1
[jira.gov.accounts]
"acc-tom" = "tom"
"acc-dana" = "dana"
"#,
            url = jira.url,
            email = fake::EMAIL,
            d = dir.path().display()
        );
        let config = IntegrationsConfig::from_toml(&toml).unwrap();
        let integrations = Integrations::build(&config).unwrap();
        let deliverer = Deliverer::new(
            h.gov.clone(),
            RetrySchedule::default(),
            integrations.clone(),
        )
        .unwrap();
        let app = steward_integrations::inbound::router(deliverer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let inbound = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        for (id, roles) in [
            ("tom", vec![Role::TechnicalReviewer]),
            // The registrant, who also holds the reviewer role: separation of duties refuses.
            ("dana", vec![Role::Developer, Role::TechnicalReviewer]),
        ] {
            h.gov
                .seed_principal(&PrincipalId::parse(id).unwrap(), roles, "test")
                .await
                .unwrap();
        }
        Self {
            h,
            jira,
            integrations,
            deliverer,
            inbound,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// Fans the outbox out and attempts what is due, as `steward serve`'s deliverer does.
    pub async fn pump(&self) {
        let at = self.h.now();
        let events: Vec<_> = self
            .h
            .store
            .outbox()
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("evt_{i}"), at, e))
            .collect();
        self.deliverer.fan_out(&events).await.unwrap();
        self.deliverer.deliver_due(100).await.unwrap();
    }

    pub async fn deliveries(&self) -> Vec<Delivery> {
        let id = WebhookId::try_from("jira:gov".to_owned()).unwrap();
        self.h.deliveries.recent(&id, 100).await.unwrap()
    }

    pub async fn delivery(&self, event_type: &str) -> Delivery {
        self.deliveries()
            .await
            .into_iter()
            .find(|d| d.event_type == event_type)
            .unwrap_or_else(|| panic!("no {event_type} delivery"))
    }

    /// A version of credit-risk (low tier: one technical review) in review for staging.
    pub async fn in_review(&self) -> Promotion {
        let v = self.h.register("credit-risk", RiskTier::Low).await;
        self.h.promote("credit-risk", v, Environment::Staging).await
    }

    /// A Jira `issue_updated` webhook: `account` moved `key` to `status`.
    pub fn webhook(&self, key: &str, review_id: &str, account: &str, status: &str) -> Value {
        json!({
            "timestamp": self.h.now().timestamp_millis(),
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "user": {"accountId": account, "displayName": format!("User {account}")},
            "issue": {"id": "10001", "key": key, "fields": {
                "labels": ["steward", format!("steward-review-{review_id}")],
                "status": {"name": status}}},
            "changelog": {"id": "10100", "items": [{"field": "status", "fieldtype": "jira",
                "fieldId": "status", "from": "10000", "fromString": "To Do",
                "to": "10001", "toString": status}]},
        })
    }

    pub async fn send(&self, body: &Value, identifier: &str, secret: &str) -> (u16, Value) {
        let raw = serde_json::to_vec(body).unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&raw);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let r = self
            .http
            .post(format!("{}/v1/integrations/jira/gov", self.inbound))
            .header("content-type", "application/json")
            .header("x-hub-signature", sig)
            .header("x-atlassian-webhook-identifier", identifier)
            .body(raw)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    pub fn actions(&self) -> Vec<String> {
        self.h.store.audit_actions()
    }

    pub async fn promotion(&self, p: &Promotion) -> Promotion {
        let d = self
            .h
            .gov
            .version_detail("credit-risk", p.version)
            .await
            .unwrap();
        d.promotions.into_iter().find(|x| x.id == p.id).unwrap()
    }

    /// The one issue Steward opened, with the review's promotion in review.
    pub async fn with_issue(&self) -> (Promotion, String) {
        let p = self.in_review().await;
        self.pump().await;
        let issues = self.jira.issues();
        assert_eq!(issues.len(), 1, "{:?}", self.jira.calls());
        (p, issues[0].key.clone())
    }
}
