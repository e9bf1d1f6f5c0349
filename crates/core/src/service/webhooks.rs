//! Webhook subscriptions (admin-managed) and their deliveries.
//!
//! Invariants:
//! - Only admins put and delete subscriptions; admins and auditors read them and their
//!   deliveries. Every change is audited (`webhook.put`, `webhook.deleted`, `webhook.failed`)
//!   in the commit that makes it; the secret never appears in a record, an answer or the log.
//! - A new secret is written to the [`Secrets`] store under a name never used before
//!   (`webhooks/<id>/<revision>-<unique>`) *before* the commit that points the subscription at it: a
//!   failed commit leaves an unreferenced secret, never a record with a secret that changed
//!   under it. The previous secret is deleted after the commit, best effort.
//! - Deleting keeps a tombstone (`status: deleted`), so the revision goes on and a later put
//!   of the same id is conditional on it like any update.

use super::*;
use crate::ports::{Deliveries, Secrets};
use crate::webhooks::{
    parse_event_types, Delivery, Webhook, WebhookId, WebhookSecret, WebhookStatus, WebhookUrl,
};
use serde::Deserialize;

/// A `PUT /v1/webhooks/{id}` body: the secret may be left out of an update (it is kept).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub url: Option<String>,
    #[serde(default)]
    pub events: Vec<String>,
    pub secret: Option<String>,
}

/// Where a deployment keeps webhook secrets and deliveries; absent, webhooks are refused.
#[derive(Clone)]
pub struct WebhookPorts {
    pub secrets: Arc<dyn Secrets>,
    pub deliveries: Arc<dyn Deliveries>,
}

/// Admins and auditors may read subscriptions; only admins change them.
const READERS: &[Role] = &[Role::Admin, Role::Auditor];

impl Governance {
    /// Keeps webhook secrets in `secrets` and deliveries in `deliveries`.
    pub fn with_webhooks(mut self, ports: WebhookPorts) -> Self {
        self.webhooks = Some(ports);
        self
    }

    fn webhook_ports(&self) -> Result<&WebhookPorts, GovError> {
        // A deployment wires the ports when it is built; without them this is a bug of the
        // wiring, not of the request.
        self.webhooks.as_ref().ok_or_else(|| {
            GovError::Store(StoreError::backend_msg(
                "this deployment has no webhook store configured",
            ))
        })
    }

    /// Creates or updates subscription `id` (admin only). Returns the record and whether it
    /// was created. A create needs `url` and `secret`; an update keeps what it leaves out.
    pub async fn put_webhook(
        &self,
        caller: &Caller,
        id: &str,
        input: WebhookInput,
    ) -> Result<(Webhook, bool), GovError> {
        require_role(caller, &[Role::Admin], "managing webhooks")?;
        let id = WebhookId::parse(id)?;
        let ports = self.webhook_ports()?;
        let existing = self.registry.webhook(&id).await?;
        let live = existing
            .as_ref()
            .filter(|w| w.status != WebhookStatus::Deleted);
        let mut errors = Vec::new();
        let url = match (&input.url, live) {
            (Some(u), _) => WebhookUrl::parse(u).map_err(|e| errors.push(e)).ok(),
            (None, Some(w)) => Some(w.url.clone()),
            (None, None) => {
                errors.push(FieldError::new("url", "required when creating a webhook"));
                None
            }
        };
        let events = parse_event_types(&input.events)
            .map_err(|e| errors.push(e))
            .ok();
        let secret = match &input.secret {
            Some(s) => WebhookSecret::parse(s).map_err(|e| errors.push(e)).ok(),
            None if live.is_none() => {
                errors.push(FieldError::new(
                    "secret",
                    "required when creating a webhook: whsec_<base64 of 24-64 random bytes>",
                ));
                None
            }
            None => None,
        };
        if !errors.is_empty() {
            return Err(GovError::Validation(errors));
        }
        let (url, events) = (url.expect("checked"), events.expect("checked"));
        let now = self.now();
        let revision = existing.as_ref().map_or(1, |w| w.revision + 1);
        let secret_ref = match (&secret, live) {
            (Some(s), _) => {
                // Unique per put, not per revision: a put that loses its commit (or a retry of
                // it) must never write under a name a committed record points at.
                let name = format!("webhooks/{id}/{revision}-{}", self.ids.id("s"));
                ports.secrets.put(&name, s).await?;
                name
            }
            (None, Some(w)) => w.secret_ref.clone(),
            (None, None) => unreachable!("a create without a secret was refused above"),
        };
        let record = Webhook {
            id: id.clone(),
            url,
            events,
            secret_ref,
            status: WebhookStatus::Active,
            created_at: live.map_or(now, |w| w.created_at),
            updated_at: now,
            updated_by: caller.id.clone(),
            revision,
        };
        let expect = existing
            .as_ref()
            .map_or(Expect::Absent, |w| Expect::Revision(w.revision));
        let created = live.is_none();
        let details = json!({
            "webhook": id, "url": record.url, "events": record.events, "created": created,
            "secret_changed": secret.is_some(),
        });
        let commit = Commit {
            puts: vec![Put::Webhook(record.clone(), expect)],
            audit: vec![self.draft(caller, "webhook.put", None, None, details)],
            ..Commit::default()
        };
        self.registry.commit(commit).await.map_err(lost_race)?;
        if let Some(old) = existing.filter(|w| w.secret_ref != record.secret_ref) {
            // Nothing points at the old secret any more: removing it is best effort.
            let _ = ports.secrets.delete(&old.secret_ref).await;
        }
        Ok((record, created))
    }

    /// Subscription `id` (admins and auditors); a deleted one is not found.
    pub async fn webhook(&self, caller: &Caller, id: &str) -> Result<Webhook, GovError> {
        require_role(caller, READERS, "reading webhooks")?;
        let id = WebhookId::parse(id)?;
        match self.registry.webhook(&id).await? {
            Some(w) if w.status != WebhookStatus::Deleted => Ok(w),
            _ => Err(GovError::NotFound(format!("no webhook {id}"))),
        }
    }

    /// Every live subscription, by id.
    pub async fn list_webhooks(&self, caller: &Caller) -> Result<Vec<Webhook>, GovError> {
        require_role(caller, READERS, "reading webhooks")?;
        let mut all = self.registry.webhooks().await?;
        all.retain(|w| w.status != WebhookStatus::Deleted);
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    /// Deletes subscription `id` (admin only): nothing more is delivered to it.
    pub async fn delete_webhook(&self, caller: &Caller, id: &str) -> Result<(), GovError> {
        require_role(caller, &[Role::Admin], "managing webhooks")?;
        let current = self.webhook(caller, id).await?;
        let ports = self.webhook_ports()?;
        let mut tomb = current.clone();
        tomb.status = WebhookStatus::Deleted;
        tomb.updated_at = self.now();
        tomb.updated_by = caller.id.clone();
        tomb.revision += 1;
        let commit = Commit {
            puts: vec![Put::Webhook(tomb, Expect::Revision(current.revision))],
            audit: vec![self.draft(
                caller,
                "webhook.deleted",
                None,
                None,
                json!({"webhook": current.id, "url": current.url}),
            )],
            ..Commit::default()
        };
        self.registry.commit(commit).await.map_err(lost_race)?;
        // The tombstone points at nothing: removing the secret is best effort.
        let _ = ports.secrets.delete(&current.secret_ref).await;
        Ok(())
    }

    /// Subscription `id`'s most recent deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        caller: &Caller,
        id: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, GovError> {
        let hook = self.webhook(caller, id).await?;
        let limit = limit.clamp(1, 100);
        Ok(self
            .webhook_ports()?
            .deliveries
            .recent(&hook.id, limit)
            .await?)
    }

    /// Marks subscription `id` failed after `delivery` gave up (the deliverer's call, audited
    /// as `webhook.failed` by `system:webhooks`). Already failed or gone: nothing to do.
    pub async fn webhook_failed(
        &self,
        id: &WebhookId,
        delivery: &Delivery,
    ) -> Result<(), GovError> {
        for attempt in 0..5 {
            let Some(current) = self.registry.webhook(id).await? else {
                return Ok(());
            };
            if current.status != WebhookStatus::Active {
                return Ok(());
            }
            let mut failed = current.clone();
            let system = Caller::system("webhooks");
            failed.status = WebhookStatus::Failed;
            failed.updated_at = self.now();
            failed.updated_by = system.id.clone();
            failed.revision += 1;
            let details = json!({
                "webhook": id, "delivery": delivery.id, "event_type": delivery.event_type,
                "attempts": delivery.attempts, "last_response_code": delivery.last_response_code,
                "last_error": delivery.last_error,
            });
            let commit = Commit {
                puts: vec![Put::Webhook(failed, Expect::Revision(current.revision))],
                audit: vec![self.draft(&system, "webhook.failed", None, None, details)],
                ..Commit::default()
            };
            match self.registry.commit(commit).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => self.back_off(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GovError::Contended(format!(
            "webhook {id} kept changing while it was being marked failed"
        )))
    }

    /// The webhook ports, for the deliverer.
    pub fn webhook_store(&self) -> Option<&WebhookPorts> {
        self.webhooks.as_ref()
    }
}
