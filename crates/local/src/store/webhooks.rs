//! The [`Secrets`] and [`Deliveries`] ports on the same SQLite database.
//!
//! Invariants: secrets are rows of `webhook_secrets`, written once per name (`INSERT OR
//! IGNORE` keeps the first value: names are never reused for another secret); deliveries are
//! rows of `webhook_deliveries`, created once by id (`INSERT OR IGNORE`, so fanning an event
//! out again after a crash queues nothing twice) and replaced by `save`. Writes go through the
//! writer connection (a short statement each, between commits), reads through the pool.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use r2d2_sqlite::rusqlite::{params, OptionalExtension};

use steward_core::ports::{Deliveries, Secrets};
use steward_core::webhooks::{Delivery, WebhookId, WebhookSecret};
use steward_core::StoreError;

use super::{backend, poisoned, to_json, ts, SqliteStore};

#[async_trait]
impl Secrets for SqliteStore {
    async fn put(&self, name: &str, secret: &WebhookSecret) -> Result<(), StoreError> {
        let conn = self.writer.lock().map_err(poisoned)?;
        conn.execute(
            "INSERT OR IGNORE INTO webhook_secrets(name, value) VALUES (?1, ?2)",
            params![name, secret.expose()],
        )
        .map_err(backend)?;
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<WebhookSecret>, StoreError> {
        let conn = self.read()?;
        let value: Option<String> = conn
            .query_row(
                "SELECT value FROM webhook_secrets WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        value
            .map(|v| {
                WebhookSecret::parse(&v).map_err(|_| {
                    StoreError::backend_msg(format!(
                        "the stored secret {name} is not a whsec_ secret"
                    ))
                })
            })
            .transpose()
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let conn = self.writer.lock().map_err(poisoned)?;
        conn.execute("DELETE FROM webhook_secrets WHERE name = ?1", [name])
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl Deliveries for SqliteStore {
    async fn enqueue(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let mut conn = self.writer.lock().map_err(poisoned)?;
        let tx = conn.transaction().map_err(backend)?;
        for d in deliveries {
            tx.execute(
                "INSERT OR IGNORE INTO webhook_deliveries(id, webhook, status, created_at, next_attempt_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![d.id, d.webhook.as_str(), d.status.as_str(), ts(d.created_at), ts(d.next_attempt_at), to_json(d)?],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.query_docs(
            "SELECT body FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
            &[&ts(now), &(limit as i64)],
        )
    }

    async fn save(&self, d: &Delivery) -> Result<(), StoreError> {
        let conn = self.writer.lock().map_err(poisoned)?;
        conn.execute(
            "INSERT OR REPLACE INTO webhook_deliveries(id, webhook, status, created_at, next_attempt_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![d.id, d.webhook.as_str(), d.status.as_str(), ts(d.created_at), ts(d.next_attempt_at), to_json(d)?],
        )
        .map_err(backend)?;
        Ok(())
    }

    async fn recent(&self, webhook: &WebhookId, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.query_docs(
            "SELECT body FROM webhook_deliveries WHERE webhook = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2",
            &[&webhook.as_str(), &(limit as i64)],
        )
    }
}
