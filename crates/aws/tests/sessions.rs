//! `DynamoSessions` (the `SessionStore` port: console sessions, pending OpenID Connect
//! sign-ins) against DynamoDB Local: what the port promises, and what the items look like.
//!
//! Needs the emulators (`bash scripts/emulators run -- cargo test -p steward-aws --test
//! sessions`). Each test creates its own table.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{Duration, Utc};

use steward_aws::dynamo::{create_table, DynamoSessions};
use steward_core::ports::SessionStore;

/// A digest-like key, as the console hands them over (it hashes the secret first).
fn hashed(n: u8) -> String {
    format!("{:064x}", u128::from(n) * 0x9e37_79b9_7f4a_7c15)
}

async fn table() -> (Client, String, DynamoSessions) {
    let emulators = steward_testkit::emulators!();
    let client = Client::new(&emulators.dynamodb_sdk().await);
    let table = format!(
        "steward-sessions-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    create_table(&client, &table).await.unwrap();
    let sessions = DynamoSessions::new(client.clone(), table.clone());
    (client, table, sessions)
}

#[tokio::test]
async fn a_stored_session_is_read_back_until_it_expires() {
    let (_, _, sessions) = table().await;
    let now = Utc::now();
    let key = hashed(1);
    sessions
        .put(
            &key,
            r#"{"principal":"oidc:https://idp#alice"}"#,
            now + Duration::minutes(30),
        )
        .await
        .unwrap();
    assert_eq!(
        sessions.get(&key, now).await.unwrap().as_deref(),
        Some(r#"{"principal":"oidc:https://idp#alice"}"#)
    );
    assert_eq!(sessions.get(&hashed(2), now).await.unwrap(), None);
}

#[tokio::test]
async fn a_put_replaces_the_value_and_the_expiry() {
    let (_, _, sessions) = table().await;
    let now = Utc::now();
    let key = hashed(3);
    sessions
        .put(&key, "first", now + Duration::minutes(5))
        .await
        .unwrap();
    sessions
        .put(&key, "second", now + Duration::hours(8))
        .await
        .unwrap();
    let later = now + Duration::minutes(10);
    assert_eq!(
        sessions.get(&key, later).await.unwrap().as_deref(),
        Some("second")
    );
}

#[tokio::test]
async fn an_expired_entry_is_never_returned_though_the_ttl_has_not_deleted_it() {
    let (client, table, sessions) = table().await;
    let now = Utc::now();
    let key = hashed(4);
    let expires = now + Duration::seconds(60);
    sessions.put(&key, "state", expires).await.unwrap();

    // DynamoDB deletes by TTL lazily (DynamoDB Local never does): the item is still there.
    let at_expiry = expires;
    assert_eq!(sessions.get(&key, at_expiry).await.unwrap(), None);
    assert_eq!(
        sessions
            .get(&key, expires - Duration::milliseconds(1))
            .await
            .unwrap()
            .as_deref(),
        Some("state")
    );
    assert!(stored(&client, &table, &key).await.is_some());
    assert_eq!(sessions.take(&key, at_expiry).await.unwrap(), None);
    // The expired item went with the take: nothing is left for a later caller either.
    assert_eq!(sessions.get(&key, now).await.unwrap(), None);
}

#[tokio::test]
async fn take_hands_the_value_to_exactly_one_of_eight_concurrent_takers() {
    let (_, _, sessions) = table().await;
    let sessions = Arc::new(sessions);
    let now = Utc::now();
    for round in 0..5u8 {
        let key = hashed(10 + round);
        sessions
            .put(&key, "pkce-verifier", now + Duration::minutes(10))
            .await
            .unwrap();
        let takers: Vec<_> = (0..8)
            .map(|_| {
                let sessions = sessions.clone();
                let key = key.clone();
                tokio::spawn(async move { sessions.take(&key, now).await })
            })
            .collect();
        let mut got = Vec::new();
        for t in takers {
            if let Some(v) = t.await.unwrap().unwrap() {
                got.push(v);
            }
        }
        assert_eq!(got, vec!["pkce-verifier".to_owned()], "round {round}");
        assert_eq!(sessions.get(&key, now).await.unwrap(), None);
    }
}

#[tokio::test]
async fn delete_removes_the_entry_and_deleting_nothing_is_fine() {
    let (client, table, sessions) = table().await;
    let now = Utc::now();
    let key = hashed(20);
    sessions
        .put(&key, "session", now + Duration::hours(1))
        .await
        .unwrap();
    sessions.delete(&key).await.unwrap();
    assert_eq!(sessions.get(&key, now).await.unwrap(), None);
    assert!(stored(&client, &table, &key).await.is_none());
    sessions.delete(&hashed(21)).await.unwrap();
    assert_eq!(sessions.take(&hashed(21), now).await.unwrap(), None);
}

#[tokio::test]
async fn the_item_is_keyed_by_the_given_digest_and_expires_by_the_tables_ttl() {
    let (client, table, sessions) = table().await;
    let key = hashed(30);
    let expires = Utc::now() + Duration::minutes(15) + Duration::milliseconds(250);
    sessions.put(&key, "value", expires).await.unwrap();

    let items = client
        .scan() // a test looking at every item of its own table, not a code path
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .map(|v| v.parse::<i64>().unwrap())
    };
    assert_eq!(text("pk"), Some(format!("SESSION#{key}")));
    assert_eq!(text("sk").as_deref(), Some("SESSION"));
    assert_eq!(text("entity").as_deref(), Some("session"));
    // The TTL attribute is whole seconds, never before the expiry.
    assert_eq!(number("expires_at"), Some(expires.timestamp() + 1));
    assert_eq!(number("expires_at_ms"), Some(expires.timestamp_millis()));
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some("expires_at")
    );
}

/// The raw item under `key`, if any.
async fn stored(
    client: &Client,
    table: &str,
    key: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("SESSION#{key}")))
        .key("sk", AttributeValue::S("SESSION".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}
