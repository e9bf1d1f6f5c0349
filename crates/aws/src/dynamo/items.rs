//! Records ⇄ DynamoDB items. Records go through `serde_dynamo` (structured attributes, so the
//! stream consumer and filter expressions see real fields); the store only adds the key and
//! index attributes of `ACCESS_PATTERNS.md` and `entity` (the item type).
//!
//! Invariants: no record field is named like a key or index attribute (`pk`, `sk`, `gsi*`,
//! `entity`, `expires_at`; a review's copy of its promotion is `promotion`), so adding them
//! never overwrites data and reading ignores them. Audit bytes are stored as binary, exactly
//! as hashed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1 as sd;

use steward_core::audit::Hash;
use steward_core::mlflow::RegisteredModel;
use steward_core::ports::ReviewItem;
use steward_core::records::{
    CardRevision, DomainEvent, IdempotencyRecord, Incident, Model, ModelVersion, PrincipalRecord,
    ProductionChange, Promotion, Review, ReviewStatus,
};
use steward_core::webhooks::{Delivery, DeliveryStatus, Webhook};
use steward_core::StoreError;

use super::keys::{self, ItemKey};
use steward_core::audit::merkle::{check_frontier, Subtree};

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const ENTITY: &str = "entity";
pub const EXPIRES_AT: &str = "expires_at";

/// How long an idempotency record is kept (DynamoDB TTL deletes it some time after).
pub const IDEMPOTENCY_TTL_SECS: i64 = 7 * 24 * 3600;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn key_item(key: &ItemKey) -> Item {
    HashMap::from([(PK.to_owned(), s(&key.0)), (SK.to_owned(), s(&key.1))])
}

/// The `(pk, sk)` of an item, if it has string keys.
pub fn item_key(item: &Item) -> Option<ItemKey> {
    Some((
        str_attr(item, PK)?.to_owned(),
        str_attr(item, SK)?.to_owned(),
    ))
}

pub fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn corrupt(item: &Item, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    let at = item_key(item)
        .map(|(pk, sk)| format!("{pk} / {sk}"))
        .unwrap_or_else(|| "an item without keys".to_owned());
    StoreError::backend(format!("corrupt item {at}"), e)
}

pub fn to_attr<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    sd::to_attribute_value(value)
        .map_err(|e| StoreError::backend("cannot encode a record for DynamoDB", e))
}

fn record<T: Serialize>(value: &T, key: ItemKey, entity: &str) -> Result<Item, StoreError> {
    let mut item: Item = sd::to_item(value)
        .map_err(|e| StoreError::backend(format!("cannot encode a {entity} for DynamoDB"), e))?;
    item.insert(PK.to_owned(), s(key.0));
    item.insert(SK.to_owned(), s(key.1));
    item.insert(ENTITY.to_owned(), s(entity));
    Ok(item)
}

/// Decodes a record, ignoring the key and index attributes.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let at = item_key(&item);
    sd::from_item(item).map_err(|e| {
        let at = at
            .map(|(pk, sk)| format!("{pk} / {sk}"))
            .unwrap_or_default();
        StoreError::backend(format!("corrupt item {at}"), e)
    })
}

fn gsi(item: &mut Item, n: u8, pk: String, sk: String) {
    item.insert(format!("gsi{n}pk"), s(pk));
    item.insert(format!("gsi{n}sk"), s(sk));
}

pub fn model_item(m: &Model) -> Result<Item, StoreError> {
    let mut item = record(m, keys::model_key(&m.name), "model")?;
    gsi(&mut item, 1, keys::MODELS_GSI_PK.into(), m.name.to_string());
    gsi(
        &mut item,
        2,
        keys::owner_gsi_pk(&m.owner.team),
        m.name.to_string(),
    );
    if m.production_version.is_some() {
        gsi(
            &mut item,
            3,
            keys::SERVING_GSI_PK.into(),
            m.name.to_string(),
        );
    }
    Ok(item)
}

pub fn version_item(v: &ModelVersion) -> Result<Item, StoreError> {
    let mut item = record(v, keys::version_key(&v.name, v.version), "version")?;
    gsi(
        &mut item,
        1,
        keys::stage_gsi_pk(v.stage.as_str()),
        keys::version_gsi_sk(&v.name, v.version),
    );
    // Versions by artifact, for matching what serving platforms report.
    gsi(
        &mut item,
        2,
        keys::artifact_sha_gsi_pk(&v.artifact.sha256),
        keys::version_gsi_sk(&v.name, v.version),
    );
    gsi(
        &mut item,
        4,
        keys::artifact_uri_gsi_pk(&v.artifact.uri),
        keys::version_gsi_sk(&v.name, v.version),
    );
    // Sparse: only while a retirement request is pending (`GET /v1/retirements`).
    if let Some(p) = &v.pending_retirement {
        gsi(
            &mut item,
            3,
            keys::retirements_gsi_pk(p.status().as_str()),
            p.sort_key(),
        );
    }
    Ok(item)
}

/// The promotion's own item; `None` when its id does not name its version (never issued here).
pub fn promotion_item(p: &Promotion) -> Result<Item, StoreError> {
    let key = keys::promotion_key(&p.id).ok_or_else(|| {
        StoreError::backend_msg(format!(
            "promotion id {:?} does not name its model and version",
            p.id
        ))
    })?;
    record(p, key, "promotion")
}

pub fn review_status_str(status: ReviewStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A review item carries a copy of its promotion, so listing reviews needs no second read.
pub fn review_item(r: &Review, p: &Promotion) -> Result<Item, StoreError> {
    let mut item = record(r, keys::review_key(&r.name, &r.id), "review")?;
    item.insert("promotion".to_owned(), to_attr(p)?);
    gsi(
        &mut item,
        1,
        keys::reviews_gsi_pk(&review_status_str(r.status)),
        keys::deadline_gsi_sk(r.deadline, &r.id),
    );
    Ok(item)
}

pub fn review_from_item(mut item: Item) -> Result<ReviewItem, StoreError> {
    let promotion = item
        .remove("promotion")
        .ok_or_else(|| corrupt(&item, "the review has no promotion copy"))?;
    let promotion = sd::from_attribute_value(promotion).map_err(|e| corrupt(&item, e))?;
    Ok(ReviewItem {
        review: from_item(item)?,
        promotion,
    })
}

pub fn card_item(c: &CardRevision) -> Result<Item, StoreError> {
    record(
        c,
        keys::card_key(&c.name, c.version, c.card_revision),
        "card_revision",
    )
}

pub fn production_change_item(c: &ProductionChange, seq: u64) -> Result<Item, StoreError> {
    record(
        c,
        keys::production_change_key(&c.name, c.at, seq),
        "production_change",
    )
}

pub fn incident_item(i: &Incident) -> Result<Item, StoreError> {
    let mut item = record(i, keys::incident_key(&i.name, &i.id), "incident")?;
    gsi(
        &mut item,
        1,
        keys::INCIDENTS_GSI_PK.into(),
        keys::deadline_gsi_sk(i.opened_at, &i.id),
    );
    gsi(&mut item, 2, keys::incident_gsi_pk(&i.id), i.id.clone());
    if let (steward_core::records::IncidentStatus::Open, true, Some(due)) = (
        i.status,
        i.serious.awaiting_reminder(),
        i.serious.report_due,
    ) {
        gsi(
            &mut item,
            3,
            keys::SERIOUS_DUE_GSI_PK.into(),
            keys::deadline_gsi_sk(due, &i.id),
        );
    }
    Ok(item)
}

pub fn principal_item(p: &PrincipalRecord) -> Result<Item, StoreError> {
    record(p, keys::principal_key(p.id.as_ref()), "principal")
}

pub fn idempotency_item(r: &IdempotencyRecord) -> Result<Item, StoreError> {
    let mut item = record(r, keys::idempotency_key(&r.key), "idempotency")?;
    item.insert(
        EXPIRES_AT.to_owned(),
        n(r.at.timestamp() + IDEMPOTENCY_TTL_SECS),
    );
    Ok(item)
}

pub fn webhook_item(w: &Webhook) -> Result<Item, StoreError> {
    record(w, keys::webhook_key(&w.id), "webhook")
}

pub fn serving_item(r: &steward_core::serving::ServingRecord) -> Result<Item, StoreError> {
    record(r, keys::serving_key(&r.key()), "serving")
}

pub fn registered_model_item(m: &RegisteredModel) -> Result<Item, StoreError> {
    record(m, keys::registered_model_key(&m.name), "registered_model")
}

/// How long a delivered or failed webhook delivery is kept for `GET .../deliveries`, and a
/// pending one from its creation (its retry window is a day, so only an orphan reaches it).
pub const DELIVERY_TTL_SECS: i64 = 30 * 24 * 3600;

/// A delivery: gsi2 lists a subscription's deliveries (`DELIVERIES#{webhook}` /
/// `{created_at}#{id}`); gsi3 holds it in `DELIVERIES#due` / `{next_attempt_at}#{id}` only
/// while it is pending (sparse), so a delivered or failed one drops out of `due`.
pub fn delivery_item(d: &Delivery) -> Result<Item, StoreError> {
    let mut item = record(d, keys::delivery_key(&d.id), "webhook_delivery")?;
    gsi(
        &mut item,
        2,
        keys::deliveries_gsi_pk(&d.webhook),
        keys::deadline_gsi_sk(d.created_at, &d.id),
    );
    let kept_from = match d.status {
        DeliveryStatus::Pending => {
            gsi(
                &mut item,
                3,
                keys::DELIVERIES_DUE_GSI_PK.into(),
                keys::deadline_gsi_sk(d.next_attempt_at, &d.id),
            );
            d.created_at
        }
        DeliveryStatus::Delivered | DeliveryStatus::Failed => {
            d.last_attempt_at.unwrap_or(d.created_at)
        }
    };
    item.insert(
        EXPIRES_AT.to_owned(),
        n(kept_from.timestamp() + DELIVERY_TTL_SECS),
    );
    Ok(item)
}

/// Whether an idempotency item is past its TTL (DynamoDB deletes expired items lazily).
pub fn expired(item: &Item, now: DateTime<Utc>) -> bool {
    item.get(EXPIRES_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|t| t < now.timestamp())
}

/// Bytes that serde_dynamo stores as a binary attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a binary attribute")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

impl Bytes {
    fn hash(&self) -> Result<Hash, String> {
        <Hash>::try_from(self.0.as_slice())
            .map_err(|_| format!("expected a 32-byte hash, found {} bytes", self.0.len()))
    }
}

/// The audit head: the log's size, the frontier of its Merkle tree and the last event's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub frontier: Vec<Hash>,
    pub time: Option<String>,
}

impl Head {
    pub fn empty() -> Self {
        Self {
            size: 0,
            frontier: Vec::new(),
            time: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct HeadRow {
    size: u64,
    frontier: Vec<Bytes>,
    time: Option<String>,
}

pub fn head_item(h: &Head) -> Result<Item, StoreError> {
    let row = HeadRow {
        size: h.size,
        frontier: h.frontier.iter().map(|f| Bytes(f.to_vec())).collect(),
        time: h.time.clone(),
    };
    record(&row, keys::head_key(), "audit_head")
}

pub fn head_from_item(item: Item) -> Result<Head, StoreError> {
    let at = item.clone();
    let row: HeadRow = from_item(item)?;
    let frontier = row
        .frontier
        .iter()
        .map(Bytes::hash)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt(&at, e))?;
    check_frontier(row.size, &frontier).map_err(|e| corrupt(&at, e))?;
    Ok(Head {
        size: row.size,
        frontier,
        time: row.time,
    })
}

/// One audit event as stored: its canonical bytes, its leaf hash and, on the first event of a
/// commit, the commit's governance events for the stream publisher.
#[derive(Serialize, Deserialize)]
pub struct EventRow {
    pub seq: u64,
    pub bytes: Bytes,
    pub leaf_hash: Bytes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<DomainEvent>>,
}

pub fn event_item(
    seq: u64,
    bytes: Vec<u8>,
    leaf: Hash,
    name: Option<&str>,
    events: Option<&[DomainEvent]>,
) -> Result<Item, StoreError> {
    let row = EventRow {
        seq,
        bytes: Bytes(bytes),
        leaf_hash: Bytes(leaf.to_vec()),
        events: events.map(<[DomainEvent]>::to_vec),
    };
    let mut item = record(&row, keys::event_key(seq), "audit_event")?;
    if let Some(name) = name {
        gsi(&mut item, 1, keys::audit_gsi_pk(name), keys::seq_sk(seq));
    }
    Ok(item)
}

/// `(seq, canonical bytes, leaf hash)` of an event item.
pub fn event_from_item(item: Item) -> Result<(u64, Vec<u8>, Hash), StoreError> {
    let at = item.clone();
    let row: EventRow = from_item(item)?;
    let leaf = row.leaf_hash.hash().map_err(|e| corrupt(&at, e))?;
    Ok((row.seq, row.bytes.0, leaf))
}

#[derive(Serialize, Deserialize)]
struct NodeRow {
    level: u32,
    index: u64,
    hash: Bytes,
}

pub fn node_item(s: Subtree, hash: Hash) -> Result<Item, StoreError> {
    let row = NodeRow {
        level: s.level,
        index: s.index,
        hash: Bytes(hash.to_vec()),
    };
    record(&row, keys::node_key(s.level, s.index), "merkle_node")
}

/// The key of the item that stores a perfect subtree: the event item at level 0.
pub fn subtree_key(s: Subtree) -> ItemKey {
    if s.level == 0 {
        keys::event_key(s.index + 1)
    } else {
        keys::node_key(s.level, s.index)
    }
}

/// The hash a subtree item stores.
pub fn subtree_hash(s: Subtree, item: Item) -> Result<Hash, StoreError> {
    if s.level == 0 {
        return event_from_item(item).map(|(_, _, leaf)| leaf);
    }
    let at = item.clone();
    let row: NodeRow = from_item(item)?;
    row.hash.hash().map_err(|e| corrupt(&at, e))
}

pub fn checkpoint_item(
    cp: &steward_core::audit::Checkpoint,
    key: ItemKey,
) -> Result<Item, StoreError> {
    record(cp, key, "checkpoint")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_head_round_trips_and_a_corrupt_frontier_is_refused() {
        let h = Head {
            size: 5,
            frontier: vec![[1; 32], [2; 32]],
            time: Some("2026-11-27T10:00:00.000000Z".into()),
        };
        let item = head_item(&h).unwrap();
        assert!(
            matches!(item["frontier"], AttributeValue::L(ref l) if matches!(l[0], AttributeValue::B(_)))
        );
        assert_eq!(head_from_item(item.clone()).unwrap(), h);
        let mut bad = item;
        bad.insert("size".into(), n(7)); // three set bits need three frontier hashes
        assert!(head_from_item(bad).is_err());
    }

    #[test]
    fn an_event_item_stores_bytes_as_binary_and_carries_the_outbox_once() {
        let events = [DomainEvent {
            detail_type: "ModelVersionRegistered".into(),
            detail: json!({"name": "m", "version": 1}),
        }];
        let item = event_item(7, b"{}".to_vec(), [9; 32], Some("m"), Some(&events)).unwrap();
        assert_eq!(item["bytes"], AttributeValue::B(b"{}".to_vec().into()));
        assert_eq!(str_attr(&item, "gsi1pk"), Some("AUDIT#m"));
        assert!(matches!(item["events"], AttributeValue::L(_)));
        assert_eq!(event_from_item(item).unwrap(), (7, b"{}".to_vec(), [9; 32]));
        let plain = event_item(8, b"{}".to_vec(), [9; 32], None, None).unwrap();
        assert!(!plain.contains_key("events") && !plain.contains_key("gsi1pk"));
    }
}
