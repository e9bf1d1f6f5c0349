//! [`DynamoDeliveries`]: the core's [`Deliveries`] port (webhook deliveries in flight and
//! recently done) on the registry table.
//!
//! Invariants:
//! - One item per delivery, keyed by its id alone (`DELIVERY#{id}` / `DELIVERY`), so
//!   `enqueue` is create-only by id: a `PutItem` conditioned on `attribute_not_exists(pk)`
//!   per delivery, a failed condition meaning "already queued" (fanning an event out again
//!   after a crash queues it once, with its first body and state).
//! - `due` never scans: pending deliveries, and only they, sit in the sparse gsi3 partition
//!   `DELIVERIES#due` sorted by `{next_attempt_at}#{id}`. The index is eventually consistent,
//!   so the items it names are read again by key (consistent `BatchGetItem`) and only those
//!   still pending and due are returned, in the port's order: a delivery another deliverer
//!   just finished is not handed out again from a stale index entry.
//! - `recent` reads gsi2 `DELIVERIES#{webhook}` by `{created_at}#{id}`, descending: newest
//!   first, ties by id descending (the in-memory port's order). Eventually consistent: it
//!   answers a person looking at a subscription, and decides nothing.
//! - Delivered and failed items expire 30 days after their last attempt, pending ones 30 days
//!   after their creation (an orphan: the retry window is a day), by the table's TTL on
//!   `expires_at`. Deliveries are not governance state: no audit event, no commit.
//! - The items stream like every other, but the stream publisher's filter only receives
//!   inserted audit events, so delivery bodies never reach it.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use steward_core::ports::Deliveries;
use steward_core::webhooks::{Delivery, DeliveryStatus, WebhookId};
use steward_core::StoreError;

use super::items::{self, from_item, item_key};
use super::keys::{self, ItemKey};
use super::requests::Query;
use super::{sdk_error, DynamoStore};

/// Webhook deliveries on the registry table (see the module docs for the items).
#[derive(Debug)]
pub struct DynamoDeliveries {
    /// The table's reads (`Query`, `BatchGetItem`); its audit head and signer are unused.
    store: DynamoStore,
}

impl DynamoDeliveries {
    /// Deliveries on `table` (the registry table: gsi2, gsi3, TTL on `expires_at`).
    pub fn new(client: Client, table: String) -> Self {
        Self {
            store: DynamoStore::new(client, table, (String::new(), Vec::new())),
        }
    }

    /// Deliveries on the same client and table as `store`.
    pub fn on(store: &DynamoStore) -> Self {
        Self::new(store.client().clone(), store.table().to_owned())
    }

    async fn put(&self, delivery: &Delivery, create_only: bool) -> Result<bool, StoreError> {
        let mut put = self
            .store
            .client()
            .put_item()
            .table_name(self.store.table())
            .set_item(Some(items::delivery_item(delivery)?));
        if create_only {
            put = put.condition_expression("attribute_not_exists(pk)");
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if create_only
                    && e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("PutItem (webhook delivery)", e)),
        }
    }
}

#[async_trait]
impl Deliveries for DynamoDeliveries {
    async fn enqueue(&self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        // One event fans out to a handful of subscriptions: one conditional put each.
        // `BatchWriteItem` takes no conditions, and one transaction would fail as a whole
        // on the first delivery already queued.
        for d in deliveries {
            self.put(d, true).await?;
        }
        Ok(())
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        if limit == 0 {
            return Ok(vec![]);
        }
        let mut q = Query::index("gsi3", keys::DELIVERIES_DUE_GSI_PK.into())
            .sort(
                "gsi3sk",
                "#sk <= :upper",
                &[(":upper", keys::deadline_upper(now))],
            )
            .limit(limit);
        q.projection = Some("pk, sk".into());
        let mut wanted: Vec<ItemKey> = Vec::new();
        loop {
            let (found, next) = self.store.query(q.clone()).await?;
            wanted.extend(found.iter().filter_map(item_key));
            match next {
                Some(start) if wanted.len() < limit => q.start = Some(start),
                _ => break,
            }
        }
        wanted.truncate(limit);
        let fresh: HashMap<ItemKey, items::Item> = self.store.batch_get(&wanted).await?;
        let mut due = Vec::with_capacity(fresh.len());
        for item in fresh.into_values() {
            let d: Delivery = from_item(item)?;
            if d.status == DeliveryStatus::Pending && d.next_attempt_at <= now {
                due.push(d);
            }
        }
        due.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(due)
    }

    async fn save(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.put(delivery, false).await.map(|_| ())
    }

    async fn recent(&self, webhook: &WebhookId, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        if limit == 0 {
            return Ok(vec![]);
        }
        let mut q = Query::index("gsi2", keys::deliveries_gsi_pk(webhook)).limit(limit);
        q.descending = true;
        let mut out: Vec<Delivery> = Vec::new();
        loop {
            let (found, next) = self.store.query(q.clone()).await?;
            for item in found {
                out.push(from_item(item)?);
            }
            match next {
                Some(start) if out.len() < limit => q.start = Some(start),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}
