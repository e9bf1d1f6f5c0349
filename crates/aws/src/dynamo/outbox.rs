//! The table's side items for the Lambdas, and audit event items as DynamoDB Streams delivers
//! them (see `ACCESS_PATTERNS.md`, "The outbox").
//!
//! Invariants:
//! - A task token lives in its own item (`MODEL#{name}` / `T#{review id}`), never in the
//!   review item (rewritten with its promotion on every commit) and never in anything an API
//!   read returns. The latest token a workflow handed out for a review wins.
//! - An outbox marker (`OUTBOX#{seq}` / `PUBLISHED`) is written only after the governance
//!   events carried by audit event `seq` were accepted by EventBridge; the stream publisher
//!   skips events whose marker exists, so a redelivered record publishes nothing twice.
//! - The policy marker (`CONFIG` / `POLICY`: `change`, `policy_sha256`) names the policy change
//!   last recorded in the audit log; it only moves forward, one change at a time, and never
//!   expires. It is a shortcut, not the record: the audit log's `policy.loaded` events are.
//! - Tokens and outbox markers expire by TTL (`expires_at`): a token outlives any execution (Step Functions runs
//!   at most a year), a marker any redelivery (streams keep records for 24 hours).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use serde::Deserialize;
use steward_core::audit::Hash;
use steward_core::ids::{RetirementId, ReviewId};
use steward_core::records::DomainEvent;
use steward_core::StoreError;

use super::items::{self, from_item, n, s, Item, EXPIRES_AT};
use super::keys::{self, ItemKey};
use super::{sdk_error, DynamoStore};
use crate::workflows::TaskTokens;

/// How long a stored task token is kept.
pub const TASK_TOKEN_TTL: Duration = Duration::from_secs(366 * 24 * 3600);
/// How long an outbox marker is kept.
pub const OUTBOX_MARKER_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// An audit event item, decoded from a stream record's `NewImage`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedAuditEvent {
    pub seq: u64,
    /// The canonical bytes, exactly as hashed.
    pub bytes: Vec<u8>,
    pub leaf_hash: Hash,
    /// The commit's governance events (carried by its first audit event only).
    pub events: Vec<DomainEvent>,
}

#[derive(Deserialize)]
struct Entity {
    entity: Option<String>,
}

/// Decodes a stream `NewImage`; `None` when the item is not an audit event (every other
/// entity of the table streams too). A malformed audit event item is an error.
pub fn audit_event_from_image(
    image: HashMap<String, AttributeValue>,
) -> Result<Option<StreamedAuditEvent>, StoreError> {
    let entity: Entity = from_item(image.clone())?;
    if entity.entity.as_deref() != Some("audit_event") {
        return Ok(None);
    }
    let at = items::item_key(&image);
    let row: items::EventRow = from_item(image)?;
    let leaf_hash = Hash::try_from(row.leaf_hash.0.as_slice()).map_err(|_| {
        StoreError::backend_msg(format!(
            "corrupt audit event item {at:?}: leaf_hash has {} bytes, not 32",
            row.leaf_hash.0.len()
        ))
    })?;
    Ok(Some(StreamedAuditEvent {
        seq: row.seq,
        bytes: row.bytes.0,
        leaf_hash,
        events: row.events.unwrap_or_default(),
    }))
}

fn expires_at(ttl: Duration) -> AttributeValue {
    n(Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2))
}

/// The key of a review's task token; `None` for an id this registry never issued.
/// The item of the task token waiting on a review or on a retirement request's confirmation,
/// in the model's partition.
fn token_key(id: &str) -> Option<ItemKey> {
    if let Ok(retirement) = RetirementId::parse(id) {
        return Some(keys::task_token_key(retirement.name(), id));
    }
    let review = ReviewId::parse(id).ok()?;
    Some(keys::task_token_key(review.promotion().name(), id))
}

impl DynamoStore {
    /// Stores the task token of the workflow task waiting on `review_id` (one `PutItem`,
    /// replacing an older token of the same review).
    pub async fn put_task_token(&self, review_id: &str, token: &str) -> Result<(), StoreError> {
        let key = token_key(review_id).ok_or_else(|| {
            StoreError::backend_msg(format!(
                "{review_id:?} is not a review or retirement id this registry issued"
            ))
        })?;
        let mut item: Item = items::key_item(&key);
        item.insert(items::ENTITY.to_owned(), s("task_token"));
        item.insert("review_id".to_owned(), s(review_id));
        item.insert("task_token".to_owned(), s(token));
        item.insert("stored_at".to_owned(), s(Utc::now().to_rfc3339()));
        item.insert(EXPIRES_AT.to_owned(), expires_at(TASK_TOKEN_TTL));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        Ok(())
    }

    /// Which of `seqs` carry an outbox marker (one consistent `BatchGetItem` per 100).
    pub async fn published(&self, seqs: &[u64]) -> Result<HashSet<u64>, StoreError> {
        if seqs.is_empty() {
            return Ok(HashSet::new());
        }
        let wanted: Vec<ItemKey> = seqs.iter().map(|s| keys::outbox_marker_key(*s)).collect();
        let found = self.batch_get(&wanted).await?;
        Ok(seqs
            .iter()
            .copied()
            .filter(|s| found.contains_key(&keys::outbox_marker_key(*s)))
            .collect())
    }

    /// Records that the events carried by audit event `seq` were published (one conditional
    /// `PutItem`; a marker already there is success).
    pub async fn mark_published(&self, seq: u64, event_ids: &[String]) -> Result<(), StoreError> {
        let mut item: Item = items::key_item(&keys::outbox_marker_key(seq));
        item.insert(items::ENTITY.to_owned(), s("outbox_marker"));
        item.insert("seq".to_owned(), n(seq));
        item.insert(
            "event_ids".to_owned(),
            AttributeValue::L(event_ids.iter().map(|id| s(id.as_str())).collect()),
        );
        item.insert("published_at".to_owned(), s(Utc::now().to_rfc3339()));
        item.insert(EXPIRES_AT.to_owned(), expires_at(OUTBOX_MARKER_TTL));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }
}

impl DynamoStore {
    /// The policy change last recorded: `(change, policy_sha256)` (one consistent `GetItem`).
    pub async fn policy_marker(&self) -> Result<Option<(u64, String)>, StoreError> {
        let Some(item) = self.get_item(&keys::policy_marker_key()).await? else {
            return Ok(None);
        };
        let change = item
            .get("change")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::backend_msg("the policy marker has no change number"))?;
        let digest = items::str_attr(&item, "policy_sha256").unwrap_or_default();
        Ok(Some((change, digest.to_owned())))
    }

    /// Moves the policy marker from change `from` (`None`: no marker yet) to `change`, naming
    /// `digest` (empty when unknown). One conditional `PutItem`; a marker that moved meanwhile
    /// is left as it is (`false`).
    pub async fn advance_policy_marker(
        &self,
        from: Option<u64>,
        change: u64,
        digest: &str,
    ) -> Result<bool, StoreError> {
        let mut item: Item = items::key_item(&keys::policy_marker_key());
        item.insert(items::ENTITY.to_owned(), s("policy_marker"));
        item.insert("change".to_owned(), n(change));
        item.insert("policy_sha256".to_owned(), s(digest));
        item.insert("recorded_at".to_owned(), s(Utc::now().to_rfc3339()));
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match from {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(c) => request
                .condition_expression("#c = :from")
                .expression_attribute_names("#c", "change")
                .expression_attribute_values(":from", n(c)),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }
}

#[async_trait]
impl TaskTokens for DynamoStore {
    /// One consistent `GetItem`; `None` for an unknown review id or a token not yet stored.
    async fn task_token(&self, review_id: &str) -> Result<Option<String>, StoreError> {
        let Some(key) = token_key(review_id) else {
            return Ok(None);
        };
        Ok(self
            .get_item(&key)
            .await?
            .and_then(|item| items::str_attr(&item, "task_token").map(str::to_owned)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_audit_event_image_decodes_and_other_entities_are_skipped() {
        let events = [DomainEvent {
            detail_type: "ModelVersionRegistered".into(),
            detail: json!({"name": "m", "version": 1}),
        }];
        let item = items::event_item(3, b"{}".to_vec(), [7; 32], Some("m"), Some(&events)).unwrap();
        let got = audit_event_from_image(item).unwrap().unwrap();
        assert_eq!(
            (got.seq, got.bytes.as_slice(), got.leaf_hash),
            (3, &b"{}"[..], [7; 32])
        );
        assert_eq!(got.events, events);

        let plain = items::event_item(4, b"{}".to_vec(), [7; 32], None, None).unwrap();
        assert!(audit_event_from_image(plain)
            .unwrap()
            .unwrap()
            .events
            .is_empty());

        let mut other = items::key_item(&("MODEL#m".into(), "MODEL".into()));
        other.insert("entity".into(), s("model"));
        assert_eq!(audit_event_from_image(other).unwrap(), None);

        let mut bad = items::event_item(5, b"{}".to_vec(), [7; 32], None, None).unwrap();
        bad.insert("leaf_hash".into(), AttributeValue::B(vec![1, 2].into()));
        assert!(audit_event_from_image(bad).is_err());
    }

    #[test]
    fn a_task_token_lives_beside_its_review_and_unknown_ids_have_no_key() {
        assert_eq!(
            token_key("credit-risk.3.pr-1a2b-technical"),
            Some((
                "MODEL#credit-risk".into(),
                "T#credit-risk.3.pr-1a2b-technical".into()
            ))
        );
        assert_eq!(token_key("nonsense"), None);
        assert_eq!(token_key("credit-risk.3.pr-1a2b-nostage"), None);
    }
}
