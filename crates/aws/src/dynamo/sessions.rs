//! [`DynamoSessions`]: the core's [`SessionStore`] port (console sessions, pending OpenID
//! Connect sign-ins) on the registry table, shared by every instance of the `api` function.
//!
//! Invariants:
//! - One item per entry: `pk = SESSION#{key}`, `sk = SESSION`, `entity = session`, `value`,
//!   `expires_at_ms` (N, the exact expiry in epoch milliseconds) and `expires_at` (N, epoch
//!   seconds rounded up: the table's TTL attribute, so DynamoDB deletes the item some time
//!   after it expired and never before). `key` is stored as given: the port hands over a
//!   digest of the secret, so the table never holds a usable session id.
//! - An entry is live while `now < expires_at_ms`. TTL deletion is lazy (it can take days), so
//!   `get` and `take` check the expiry themselves and an expired item is never returned.
//! - Every call is one request: `put` one `PutItem` (replacing), `get` one consistent `GetItem`
//!   (a sign-in started on one instance is finished on another), `take` one `DeleteItem`
//!   conditioned on `attribute_exists(pk)` with `ReturnValues=ALL_OLD`, and `delete` one
//!   `DeleteItem`. Only the delete whose condition held gets the old image (the others fail
//!   the condition, which is "nothing there"), so of any number of concurrent `take`s at most
//!   one sees the value: a sign-in state is single-use without a read-then-delete race.
//! - The items stream like every other (the table's stream is the outbox), but the stream
//!   publisher's filter only receives inserted audit events, so session values never reach it.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use steward_core::ports::SessionStore;
use steward_core::StoreError;

use super::items::{self, n, s, Item, ENTITY, EXPIRES_AT};
use super::keys;
use super::{sdk_error, DynamoStore};

/// The exact expiry, epoch milliseconds (`expires_at` is the TTL's whole seconds).
const EXPIRES_AT_MS: &str = "expires_at_ms";
const VALUE: &str = "value";

/// Short-lived sign-in state on the registry table (see the module docs for the item).
#[derive(Debug, Clone)]
pub struct DynamoSessions {
    client: Client,
    table: String,
}

impl DynamoSessions {
    /// Sessions on `table` (the registry table: its TTL is on `expires_at`).
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// Sessions on the same client and table as `store`.
    pub fn on(store: &DynamoStore) -> Self {
        Self::new(store.client().clone(), store.table().to_owned())
    }

    fn key(key: &str) -> Item {
        items::key_item(&keys::session_key(key))
    }
}

/// The TTL: whole seconds, rounded up, so DynamoDB never deletes a live entry.
fn ttl_seconds(expires_at: DateTime<Utc>) -> i64 {
    let secs = expires_at.timestamp();
    if expires_at.timestamp_subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    }
}

/// The item's value if it is still live at `now`; an item without a readable expiry or
/// value is a corrupt item, reported rather than trusted.
fn live_value(mut item: Item, key: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
    let expires = item
        .get(EXPIRES_AT_MS)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| corrupt(key, EXPIRES_AT_MS))?;
    if now.timestamp_millis() >= expires {
        return Ok(None);
    }
    match item.remove(VALUE) {
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        _ => Err(corrupt(key, VALUE)),
    }
}

fn corrupt(key: &str, attribute: &str) -> StoreError {
    // The key is a digest, safe to name; the value is never put in an error.
    StoreError::backend_msg(format!(
        "corrupt session item SESSION#{key}: no readable {attribute}"
    ))
}

#[async_trait]
impl SessionStore for DynamoSessions {
    async fn put(
        &self,
        key: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = Self::key(key);
        item.insert(ENTITY.to_owned(), s("session"));
        item.insert(VALUE.to_owned(), s(value));
        item.insert(EXPIRES_AT_MS.to_owned(), n(expires_at.timestamp_millis()));
        item.insert(EXPIRES_AT.to_owned(), n(ttl_seconds(expires_at)));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem (session)", e))?;
        Ok(())
    }

    async fn get(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem (session)", e))?;
        match out.item {
            Some(item) => live_value(item, key, now),
            None => Ok(None),
        }
    }

    async fn take(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, StoreError> {
        // The condition is what makes this single-use: conditional writes to one item are
        // checked against its latest state one after another, so exactly one delete finds the
        // item. `ALL_OLD` alone is not enough (DynamoDB Local hands the old image to every
        // concurrent delete). An expired item is deleted too: it was dead already.
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => match out.attributes {
                Some(item) if !item.is_empty() => live_value(item, key, now),
                _ => Ok(None),
            },
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error("DeleteItem (session)", e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem (session)", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_ttl_is_never_before_the_expiry() {
        let whole = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        assert_eq!(ttl_seconds(whole), 1_800_000_000);
        let later = Utc.timestamp_millis_opt(1_800_000_000_001).unwrap();
        assert_eq!(ttl_seconds(later), 1_800_000_001);
    }

    #[test]
    fn an_entry_is_dead_from_its_expiry_on_and_a_corrupt_one_is_an_error() {
        let at = Utc.timestamp_millis_opt(1_800_000_000_500).unwrap();
        let item = |exp: &str| {
            Item::from([
                (EXPIRES_AT_MS.to_owned(), n(exp)),
                (VALUE.to_owned(), s("v")),
            ])
        };
        let before = at - chrono::Duration::milliseconds(1);
        assert_eq!(
            live_value(item("1800000000500"), "k", before).unwrap(),
            Some("v".into())
        );
        assert_eq!(live_value(item("1800000000500"), "k", at).unwrap(), None);
        assert!(live_value(item("soon"), "k", before).is_err());
        let err = live_value(Item::new(), "k", before).unwrap_err();
        assert!(err.to_string().contains("storage failure"), "{err}");
    }
}
