//! The deliverer: fans governance events out to the webhook subscriptions and integrations
//! that want them, and delivers each (a Standard Webhooks request, or the integration's own
//! calls), with retries.
//!
//! Invariants:
//! - At least once: a delivery is created (create-only, by id) before it is attempted and
//!   saved after every attempt, so a crash between the two repeats an attempt, never skips
//!   one. The `webhook-id` and body are the delivery's own, fixed at creation, so a repeat is
//!   recognisable by the receiver.
//! - Each attempt is one POST with `content-type: application/json`, `webhook-id`,
//!   `webhook-timestamp` (the attempt's Unix seconds) and `webhook-signature` (`v1,<base64>`
//!   over `id.timestamp.body`), a bounded timeout and no redirects (a redirect is a failed
//!   attempt: the signature is for the configured URL). 2xx is delivered; anything else is
//!   retried on the [`RetrySchedule`], a `Retry-After` of a 429 or 503 honoured, until the
//!   window ends; then the delivery is failed and its subscription marked failed (audited).
//! - Secrets are read from the [`Secrets`](steward_core::ports::Secrets) port per batch and
//!   never logged; errors name the subscription and the URL, not the secret.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::Rng;
use steward_core::records::DomainEvent;
use steward_core::webhooks::{Delivery, RetrySchedule, Webhook, WebhookId, WebhookStatus};
use steward_core::{GovError, Governance};

use crate::{http_client, Integrations, Outcome};

/// At most this many attempts run at once, so one slow receiver does not hold up the others.
const CONCURRENCY: usize = 8;

/// How long a delivery [`Deliverer::send_now`] attempts is not due for anyone else: longer
/// than one attempt can take ([`crate::ATTEMPT_TIMEOUT`] per request, two requests).
pub const SEND_NOW_LEASE: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("this deployment has no webhook store")]
    NoStore,
    #[error(transparent)]
    Gov(#[from] GovError),
    #[error(transparent)]
    Store(#[from] steward_core::StoreError),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Fans events out and delivers them over HTTP.
#[derive(Clone)]
pub struct Deliverer {
    gov: Arc<Governance>,
    http: reqwest::Client,
    schedule: RetrySchedule,
    integrations: Arc<Integrations>,
}

impl Deliverer {
    /// A deliverer for the webhook subscriptions and the configured `integrations`.
    pub fn new(
        gov: Arc<Governance>,
        schedule: RetrySchedule,
        integrations: Arc<Integrations>,
    ) -> Result<Self, DeliverError> {
        integrations.bind(&gov);
        Ok(Self {
            gov,
            http: http_client().map_err(DeliverError::Client)?,
            schedule,
            integrations,
        })
    }

    /// The governance service it acts through.
    pub fn gov(&self) -> &Arc<Governance> {
        &self.gov
    }

    /// The configured integrations it delivers to.
    pub fn integrations(&self) -> &Arc<Integrations> {
        &self.integrations
    }

    /// Queues an integration's own delivery (one no event fans out, e.g. GitHub's deployment
    /// review) and attempts it at once; when that attempt fails, the queue retries it like
    /// any other. Returns the delivery as saved after the attempt.
    ///
    /// It is queued before the attempt (so a crash during it loses nothing) and not due for
    /// [`SEND_NOW_LEASE`], so a deliverer running beside this call does not attempt it too.
    pub async fn send_now(&self, mut d: Delivery) -> Result<Delivery, DeliverError> {
        let ports = self.gov.webhook_store().ok_or(DeliverError::NoStore)?;
        d.next_attempt_at = self.gov.now() + SEND_NOW_LEASE;
        ports.deliveries.enqueue(std::slice::from_ref(&d)).await?;
        self.attempt_integration(d).await
    }

    /// Queues each `(event id, committed at, event)` for every live subscription that wants
    /// it; returns how many deliveries that made (queued before or not: enqueue is idempotent).
    pub async fn fan_out(
        &self,
        events: &[(String, DateTime<Utc>, DomainEvent)],
    ) -> Result<usize, DeliverError> {
        if events.is_empty() {
            return Ok(0);
        }
        let ports = self.gov.webhook_store().ok_or(DeliverError::NoStore)?;
        let hooks = self.gov.registry().webhooks().await?;
        let now = self.gov.now();
        let targets = self.integrations.targets();
        let deliveries: Vec<Delivery> = events
            .iter()
            .flat_map(|(id, at, event)| {
                let hooks = hooks
                    .iter()
                    .filter(|h| h.wants(&event.detail_type))
                    .map(|h| h.id.clone());
                let integrations = targets
                    .iter()
                    .filter(|t| t.wants(event))
                    .map(|t| t.id().clone());
                hooks
                    .chain(integrations)
                    .map(move |target| Delivery::new(&target, id, *at, event, now))
                    .collect::<Vec<_>>()
            })
            .collect();
        if !deliveries.is_empty() {
            ports.deliveries.enqueue(&deliveries).await?;
        }
        Ok(deliveries.len())
    }

    /// Attempts up to `limit` due deliveries once each; returns how many were attempted.
    pub async fn deliver_due(&self, limit: usize) -> Result<usize, DeliverError> {
        let ports = self.gov.webhook_store().ok_or(DeliverError::NoStore)?;
        let due = ports.deliveries.due(self.gov.now(), limit).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let hooks: HashMap<WebhookId, Webhook> = self
            .gov
            .registry()
            .webhooks()
            .await?
            .into_iter()
            .map(|h| (h.id.clone(), h))
            .collect();
        let n = due.len();
        let mut tasks = tokio::task::JoinSet::new();
        let mut queue = due.into_iter();
        loop {
            while tasks.len() < CONCURRENCY {
                let Some(d) = queue.next() else { break };
                let this = self.clone();
                let hook = hooks.get(&d.webhook).cloned();
                tasks.spawn(async move { this.attempt(d, hook).await });
            }
            match tasks.join_next().await {
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    tracing::warn!(error = %e, "a webhook delivery could not be saved")
                }
                Some(Err(e)) => tracing::error!(error = %e, "a webhook delivery task panicked"),
                None => break,
            }
        }
        Ok(n)
    }

    /// One attempt of `d` to `hook`, saved; a delivery that gave up marks its subscription.
    async fn attempt(&self, mut d: Delivery, hook: Option<Webhook>) -> Result<(), DeliverError> {
        let ports = self.gov.webhook_store().ok_or(DeliverError::NoStore)?;
        let now = self.gov.now();
        if d.webhook.integration_parts().is_some() {
            return self.attempt_integration(d).await.map(|_| ());
        }
        let hook = match hook {
            Some(h) if h.status != WebhookStatus::Deleted => h,
            _ => {
                // The subscription is gone: nothing will ever be delivered for it.
                d.status = steward_core::webhooks::DeliveryStatus::Failed;
                d.last_error = Some("the webhook was deleted".into());
                ports.deliveries.save(&d).await?;
                return Ok(());
            }
        };
        let outcome = match ports.secrets.get(&hook.secret_ref).await? {
            Some(secret) => {
                let ts = now.timestamp();
                let signature = secret.sign(&d.id, ts, d.body.as_bytes());
                self.post(&hook, &d, ts, &signature).await
            }
            None => Outcome::failed("the webhook's secret is missing from the secret store"),
        };
        self.record(&mut d, now, outcome).await?;
        match d.status {
            steward_core::webhooks::DeliveryStatus::Delivered => {
                tracing::info!(webhook = %hook.id, delivery = %d.id, attempts = d.attempts, "webhook delivered");
            }
            steward_core::webhooks::DeliveryStatus::Pending => {
                tracing::warn!(webhook = %hook.id, url = hook.url.as_str(), delivery = %d.id, attempts = d.attempts,
                    code = ?d.last_response_code, error = d.last_error.as_deref().unwrap_or(""),
                    next_attempt_at = %d.next_attempt_at, "webhook delivery failed; will retry");
            }
            steward_core::webhooks::DeliveryStatus::Failed => {
                tracing::error!(webhook = %hook.id, url = hook.url.as_str(), delivery = %d.id, attempts = d.attempts,
                    "webhook delivery gave up after the retry window; marking the webhook failed");
                self.gov.webhook_failed(&hook.id, &d).await?;
            }
        }
        Ok(())
    }

    /// One attempt of an integration's delivery; one that gave up is logged (an integration
    /// is configuration, not a subscription to mark failed).
    async fn attempt_integration(&self, mut d: Delivery) -> Result<Delivery, DeliverError> {
        let now = self.gov.now();
        let outcome = match self.integrations.target(&d.webhook) {
            Some(t) => t.deliver(&d).await,
            None => Outcome::failed("the integration is no longer configured"),
        };
        self.record(&mut d, now, outcome).await?;
        match d.status {
            steward_core::webhooks::DeliveryStatus::Delivered => {
                tracing::info!(integration = %d.webhook, delivery = %d.id, attempts = d.attempts, "integration delivered");
            }
            steward_core::webhooks::DeliveryStatus::Pending => {
                tracing::warn!(integration = %d.webhook, delivery = %d.id, attempts = d.attempts,
                    code = ?d.last_response_code, error = d.last_error.as_deref().unwrap_or(""),
                    next_attempt_at = %d.next_attempt_at, "integration delivery failed; will retry");
            }
            steward_core::webhooks::DeliveryStatus::Failed => {
                // The template's metric filters count this message (WebhookDeliveriesFailed).
                tracing::error!(integration = %d.webhook, delivery = %d.id, attempts = d.attempts,
                    error = d.last_error.as_deref().unwrap_or(""),
                    "integration delivery gave up (after the retry window, or on an answer that repeating cannot change)");
            }
        }
        Ok(d)
    }

    /// Records an attempt's `outcome` on `d` (scheduling the next, with jitter) and saves it:
    /// the same for subscriptions and integrations.
    async fn record(
        &self,
        d: &mut Delivery,
        now: DateTime<Utc>,
        outcome: Outcome,
    ) -> Result<(), DeliverError> {
        let ports = self.gov.webhook_store().ok_or(DeliverError::NoStore)?;
        let jitter: f64 = rand::thread_rng().gen();
        let give_up = outcome.give_up && !outcome.succeeded();
        d.record_attempt(
            now,
            outcome.code,
            outcome.error,
            outcome.retry_after,
            &self.schedule,
            jitter,
        );
        if give_up {
            d.status = steward_core::webhooks::DeliveryStatus::Failed;
        }
        ports.deliveries.save(d).await?;
        Ok(())
    }

    async fn post(&self, hook: &Webhook, d: &Delivery, ts: i64, signature: &str) -> Outcome {
        let sent = self
            .http
            .post(hook.url.as_str())
            .header("content-type", "application/json")
            .header("webhook-id", &d.id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(d.body.clone())
            .send()
            .await;
        Outcome::of(sent)
    }
}
