//! Integration callbacks: vendors' signed requests (a Jira transition, say) that Steward
//! refused, and which callbacks were already handled, so that a replay is recognised.
//!
//! Invariants:
//! - A refusal writes one audit event, `integration.refused`, and nothing else (no record, no
//!   outbox event). Its actor is the integration (`system:<kind>:<name>`, authentication
//!   `integration`), never a name taken from the vendor's body; the account and the principal
//!   it maps to are details.
//! - A handled callback is remembered by an idempotency record
//!   (`integration/<kind>:<name>/<callback id>`), the stores' create-only write, so the memory
//!   survives restarts on both backends and two concurrent deliveries of one callback are
//!   remembered once: the second finds the key taken.

use super::*;

/// A vendor's callback that Steward refused, as audited.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationRefusal {
    /// The integration, `<kind>:<name>` (e.g. `jira:gov`).
    pub integration: String,
    /// The vendor's id of the callback (Jira's `X-Atlassian-Webhook-Identifier`); when set and
    /// `remember` is true the refusal also remembers it, in the same commit.
    pub callback_id: Option<String>,
    pub remember: bool,
    /// SHA-256 of the callback's body, the evidence of what was refused.
    pub body_sha256: Sha256,
    /// Why, in words a person reads (it also goes into the vendor's ticket).
    pub reason: String,
    /// The model version concerned, when the callback named one.
    pub name: Option<ModelName>,
    pub version: Option<VersionNumber>,
    /// More to record (the vendor's account, the ticket, the review id).
    pub details: Value,
}

fn callback_key(integration: &str, callback_id: &str) -> String {
    format!("integration/{integration}/{callback_id}")
}

fn integration_caller(integration: &str) -> Caller {
    Caller::new(
        PrincipalId::system(integration),
        Vec::new(),
        AuthMethod::Integration,
    )
}

impl Governance {
    /// Whether callback `callback_id` of `integration` was already handled.
    pub async fn integration_callback_seen(
        &self,
        integration: &str,
        callback_id: &str,
    ) -> Result<bool, GovError> {
        Ok(self
            .registry
            .idempotency(&callback_key(integration, callback_id))
            .await?
            .is_some())
    }

    /// Remembers that callback `callback_id` of `integration` was handled, with `outcome`;
    /// `false` when it already was (by a concurrent delivery of the same callback).
    pub async fn remember_integration_callback(
        &self,
        integration: &str,
        callback_id: &str,
        body_sha256: &Sha256,
        outcome: Value,
    ) -> Result<bool, GovError> {
        let commit = Commit {
            puts: vec![],
            audit: vec![],
            events: vec![],
            idempotency: Some(self.callback_record(integration, callback_id, body_sha256, outcome)),
        };
        match self.registry.commit(commit).await {
            Ok(_) => Ok(true),
            Err(StoreError::IdempotencyKeyTaken) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Audits `refusal` as `integration.refused` (and remembers its callback when asked);
    /// `false`, with nothing written, when the callback was remembered meanwhile.
    pub async fn record_integration_refusal(
        &self,
        refusal: IntegrationRefusal,
    ) -> Result<bool, GovError> {
        let caller = integration_caller(&refusal.integration);
        let mut details = json!({
            "integration": refusal.integration,
            "callback_id": refusal.callback_id,
            "body_sha256": refusal.body_sha256,
            "reason": refusal.reason,
        });
        if let (Value::Object(d), Value::Object(more)) = (&mut details, &refusal.details) {
            for (k, v) in more {
                d.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let audit = self.draft(
            &caller,
            "integration.refused",
            refusal.name.as_ref(),
            refusal.version,
            details,
        );
        let idempotency = match (&refusal.callback_id, refusal.remember) {
            (Some(id), true) => Some(self.callback_record(
                &refusal.integration,
                id,
                &refusal.body_sha256,
                json!({"refused": refusal.reason}),
            )),
            _ => None,
        };
        let commit = Commit {
            puts: vec![],
            audit: vec![audit],
            events: vec![],
            idempotency,
        };
        match self.registry.commit(commit).await {
            Ok(_) => Ok(true),
            Err(StoreError::IdempotencyKeyTaken) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn callback_record(
        &self,
        integration: &str,
        callback_id: &str,
        body_sha256: &Sha256,
        outcome: Value,
    ) -> IdempotencyRecord {
        IdempotencyRecord {
            key: callback_key(integration, callback_id),
            request_sha256: *body_sha256,
            status: 200,
            response: outcome,
            at: self.now(),
        }
    }
}
