//! Webhook secrets and deliveries in memory, with the semantics of the SQLite tables:
//! `enqueue` is create-only by id, `due` is oldest `next_attempt_at` first, `recent` newest
//! `created_at` first (ties by id, descending).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::ports::{Deliveries, Secrets};
use crate::webhooks::{Delivery, DeliveryStatus, WebhookId, WebhookSecret};

/// The [`Secrets`] port in memory.
#[derive(Debug, Default)]
pub struct MemorySecrets {
    stored: Mutex<BTreeMap<String, WebhookSecret>>,
}

impl MemorySecrets {
    /// The names of the secrets held, in order.
    pub fn names(&self) -> Vec<String> {
        lock(&self.stored).keys().cloned().collect()
    }
}

#[async_trait]
impl Secrets for MemorySecrets {
    async fn put(&self, name: &str, secret: &WebhookSecret) -> Result<(), StoreError> {
        lock(&self.stored).insert(name.to_owned(), secret.clone());
        Ok(())
    }
    async fn get(&self, name: &str) -> Result<Option<WebhookSecret>, StoreError> {
        Ok(lock(&self.stored).get(name).cloned())
    }
    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        lock(&self.stored).remove(name);
        Ok(())
    }
}

/// The [`Deliveries`] port in memory.
#[derive(Debug, Default)]
pub struct MemoryDeliveries {
    stored: Mutex<BTreeMap<String, Delivery>>,
}

#[async_trait]
impl Deliveries for MemoryDeliveries {
    async fn enqueue(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let mut stored = lock(&self.stored);
        for d in deliveries {
            stored.entry(d.id.clone()).or_insert_with(|| d.clone());
        }
        Ok(())
    }
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut due: Vec<Delivery> = lock(&self.stored)
            .values()
            .filter(|d| d.status == DeliveryStatus::Pending && d.next_attempt_at <= now)
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        due.truncate(limit);
        Ok(due)
    }
    async fn save(&self, delivery: &Delivery) -> Result<(), StoreError> {
        lock(&self.stored).insert(delivery.id.clone(), delivery.clone());
        Ok(())
    }
    async fn recent(&self, webhook: &WebhookId, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut mine: Vec<Delivery> = lock(&self.stored)
            .values()
            .filter(|d| &d.webhook == webhook)
            .cloned()
            .collect();
        mine.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        mine.truncate(limit);
        Ok(mine)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock already failed; keep the data readable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
