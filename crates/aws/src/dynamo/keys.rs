//! The key layout of the single table (see `ACCESS_PATTERNS.md`) and the opaque cursors.
//!
//! Invariants: numbers in sort keys are zero-padded so that string order is numeric order;
//! times are the audit log's fixed-width RFC 3339 format, so string order is time order; every
//! key is derived from a record's own fields or ids, never looked up. Version numbers are
//! padded as integers (`version.get()`), so a key never depends on how a type prints itself.

use chrono::{DateTime, Utc};
use steward_core::audit::format_time;
use steward_core::ids::{PromotionId, VersionNumber};
use steward_core::ports::Key;
use steward_core::types::ModelName;
use steward_core::webhooks::WebhookId;
use steward_core::StoreError;

/// Audit events and Merkle nodes are spread over partitions of this many items each, so no
/// partition grows without bound and a page of events is one query (two at a boundary).
pub const BUCKET: u64 = 4096;

pub const MODEL_SK: &str = "MODEL";
pub const PRINCIPALS_PK: &str = "PRINCIPALS";
pub const IDEM_SK: &str = "IDEM";
pub const AUDIT_PK: &str = "AUDIT";
pub const HEAD_SK: &str = "HEAD";
pub const LATEST_CHECKPOINT_SK: &str = "CHECKPOINT#LATEST";
pub const OUTBOX_SK: &str = "PUBLISHED";
pub const SESSION_SK: &str = "SESSION";
/// The partition of every webhook subscription (a deployment has a handful).
pub const WEBHOOKS_PK: &str = "WEBHOOKS";
pub const DELIVERY_SK: &str = "DELIVERY";
/// The partition of every MLflow registered model's metadata, by model name.
pub const MLFLOW_MODELS_PK: &str = "MLFLOW_MODELS";

/// GSI partitions.
pub const MODELS_GSI_PK: &str = "MODELS";
pub const SERVING_GSI_PK: &str = "SERVING";
pub const INCIDENTS_GSI_PK: &str = "INCIDENTS";
/// The gsi3 partition of serious incidents awaiting their report reminder, by `report_due`
/// (sparse: an incident leaves it once reported, reminded or closed).
pub const SERIOUS_DUE_GSI_PK: &str = "SERIOUS#due";
/// The gsi3 partition of pending webhook deliveries, by `next_attempt_at` (sparse).
pub const DELIVERIES_DUE_GSI_PK: &str = "DELIVERIES#due";

/// A table key: `(pk, sk)`.
pub type ItemKey = (String, String);

pub fn model_pk(name: &ModelName) -> String {
    format!("MODEL#{name}")
}

pub fn model_key(name: &ModelName) -> ItemKey {
    (model_pk(name), MODEL_SK.to_owned())
}

pub fn version_key(name: &ModelName, version: VersionNumber) -> ItemKey {
    (model_pk(name), format!("V#{:010}", version.get()))
}

/// A promotion's key derives from its id (`{name}.{version}.{unique}`); `None` for an id this
/// registry never issued.
pub fn promotion_key(id: &str) -> Option<ItemKey> {
    let id = PromotionId::parse(id).ok()?;
    Some((
        model_pk(id.name()),
        format!("{}{id}", promotions_prefix(id.version())),
    ))
}

pub fn promotions_prefix(version: VersionNumber) -> String {
    format!("P#{:010}#", version.get())
}

pub fn review_key(name: &ModelName, review_id: &str) -> ItemKey {
    (model_pk(name), format!("R#{review_id}"))
}

/// The task token of a review's waiting workflow task: beside the review, never in it (the
/// review item is rewritten with its promotion on every commit, and API reads never touch it).
pub fn task_token_key(name: &ModelName, review_id: &str) -> ItemKey {
    (model_pk(name), format!("T#{review_id}"))
}

/// The stream publisher's marker that the governance events carried by audit event `seq`
/// were published.
pub fn outbox_marker_key(seq: u64) -> ItemKey {
    (format!("OUTBOX#{seq}"), OUTBOX_SK.to_owned())
}

/// The gsi3 partition of versions whose retirement request is in `status`.
pub fn retirements_gsi_pk(status: &str) -> String {
    format!("RETIREMENTS#{status}")
}

/// The marker of the policy change last recorded in the audit log (see
/// `AwsBackend::record_policy`).
pub fn policy_marker_key() -> ItemKey {
    ("CONFIG".to_owned(), "POLICY".to_owned())
}

pub fn card_key(name: &ModelName, version: VersionNumber, card_revision: u32) -> ItemKey {
    (card_pk(name, version), format!("{card_revision:010}"))
}

pub fn card_pk(name: &ModelName, version: VersionNumber) -> String {
    format!("CARD#{name}#{:010}", version.get())
}

/// `X#{at}#{seq}`: `seq` (the commit's first audit sequence number) orders two changes of the
/// same microsecond by commit order.
pub fn production_change_key(name: &ModelName, at: DateTime<Utc>, seq: u64) -> ItemKey {
    (model_pk(name), format!("X#{}#{seq:020}", format_time(at)))
}

/// The highest possible production-change sort key at `at`.
pub fn production_change_upper(at: DateTime<Utc>) -> String {
    format!("X#{}$", format_time(at))
}

pub fn incident_key(name: &ModelName, id: &str) -> ItemKey {
    (model_pk(name), format!("I#{id}"))
}

/// The gsi2 partition that finds an incident by id alone (the item lives in its model's
/// partition). Incidents written before this existed are found only once changed.
pub fn incident_gsi_pk(id: &str) -> String {
    format!("INCIDENT#{id}")
}

pub fn principal_key(id: &str) -> ItemKey {
    (PRINCIPALS_PK.to_owned(), id.to_owned())
}

pub fn idempotency_key(key: &str) -> ItemKey {
    (format!("IDEM#{key}"), IDEM_SK.to_owned())
}

/// A sign-in state or console session; `key` is already a digest of its secret (the
/// `SessionStore` port's contract), so the key is no usable session id.
pub fn session_key(key: &str) -> ItemKey {
    (format!("SESSION#{key}"), SESSION_SK.to_owned())
}

/// A webhook subscription (its tombstone too) by id.
pub fn webhook_key(id: &WebhookId) -> ItemKey {
    (WEBHOOKS_PK.to_owned(), id.as_str().to_owned())
}

/// The partition of the serving inventory's records, by `{platform}/{environment}/{endpoint}`.
pub const SERVING_RECORDS_PK: &str = "SERVING#ENDPOINTS";

/// One endpoint's serving record.
pub fn serving_key(key: &str) -> ItemKey {
    (SERVING_RECORDS_PK.to_owned(), key.to_owned())
}

/// The gsi2 partition of the versions whose artifact has this SHA-256.
pub fn artifact_sha_gsi_pk(sha: &steward_core::types::Sha256) -> String {
    format!("ARTIFACT#{sha}")
}

/// The gsi4 partition of the versions whose artifact has this URI (by the URI's SHA-256: a
/// URI may be longer than a key may be).
pub fn artifact_uri_gsi_pk(uri: &str) -> String {
    format!(
        "URI#{}",
        steward_core::types::Sha256::digest(uri.as_bytes()).to_hex()
    )
}

/// An MLflow registered model's metadata (its tombstone too) by model name.
pub fn registered_model_key(name: &ModelName) -> ItemKey {
    (MLFLOW_MODELS_PK.to_owned(), name.as_ref().to_owned())
}

/// A webhook delivery, keyed by its id alone: the id is fixed when the delivery is created
/// (`msg_<event id>_<subscription>`), so fanning an event out again finds the same item.
pub fn delivery_key(id: &str) -> ItemKey {
    (format!("DELIVERY#{id}"), DELIVERY_SK.to_owned())
}

/// The gsi2 partition of one subscription's deliveries, by `{created_at}#{id}`.
pub fn deliveries_gsi_pk(webhook: &WebhookId) -> String {
    format!("DELIVERIES#{webhook}")
}

pub fn head_key() -> ItemKey {
    (AUDIT_PK.to_owned(), HEAD_SK.to_owned())
}

pub fn event_bucket_pk(bucket: u64) -> String {
    format!("AUDIT#{bucket}")
}

/// Event `seq` (from 1) lives in bucket `(seq - 1) / BUCKET`.
pub fn event_key(seq: u64) -> ItemKey {
    (event_bucket_pk((seq - 1) / BUCKET), seq_sk(seq))
}

pub fn seq_sk(seq: u64) -> String {
    format!("{seq:020}")
}

/// A complete perfect subtree of level ≥ 1.
pub fn node_key(level: u32, index: u64) -> ItemKey {
    (
        format!("NODE#{level}#{}", index / BUCKET),
        format!("{index:020}"),
    )
}

pub fn checkpoint_key(size: u64) -> ItemKey {
    (AUDIT_PK.to_owned(), format!("CHECKPOINT#{size:020}"))
}

pub fn latest_checkpoint_key() -> ItemKey {
    (AUDIT_PK.to_owned(), LATEST_CHECKPOINT_SK.to_owned())
}

/// GSI values.
pub fn stage_gsi_pk(stage: &str) -> String {
    format!("STAGE#{stage}")
}

pub fn version_gsi_sk(name: &ModelName, version: VersionNumber) -> String {
    format!("{name}#{:010}", version.get())
}

pub fn owner_gsi_pk(team: &str) -> String {
    format!("OWNER#{team}")
}

pub fn reviews_gsi_pk(status: &str) -> String {
    format!("REVIEWS#{status}")
}

pub fn deadline_gsi_sk(deadline: DateTime<Utc>, id: &str) -> String {
    format!("{}#{id}", format_time(deadline))
}

/// The highest possible review sort key with a deadline at `at`.
pub fn deadline_upper(at: DateTime<Utc>) -> String {
    format!("{}$", format_time(at))
}

pub fn audit_gsi_pk(name: &str) -> String {
    format!("AUDIT#{name}")
}

/// Above every sort key that starts with `prefix`, which ends in `#` (`$` follows `#`).
pub fn prefix_upper(prefix: &str) -> String {
    debug_assert!(prefix.ends_with('#'), "{prefix}");
    format!("{}$", prefix.trim_end_matches('#'))
}

/// The item a port [`Key`] names.
pub fn key_of(key: &Key) -> Option<ItemKey> {
    Some(match key {
        Key::Model(n) => model_key(n),
        Key::Version(n, v) => version_key(n, *v),
        Key::Promotion(id) => promotion_key(id)?,
        Key::Principal(id) => principal_key(id.as_ref()),
        Key::Idempotency(k) => idempotency_key(k),
        Key::RegisteredModel(n) => registered_model_key(n),
    })
}

pub use steward_core::ports::encode_cursor;

/// The sort key a cursor resumes after; `None` without a cursor (core's cursor format).
pub fn decode_cursor(cursor: Option<&str>) -> Result<Option<String>, StoreError> {
    Ok(Some(steward_core::ports::decode_cursor(cursor)?).filter(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_testkit::vn;

    fn name(s: &str) -> ModelName {
        ModelName::parse(s).unwrap()
    }

    #[test]
    fn sort_keys_sort_numerically_and_by_time() {
        assert!(version_key(&name("m"), vn(9)).1 < version_key(&name("m"), vn(10)).1);
        assert!(seq_sk(99) < seq_sk(100));
        let t0 = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1 = "2026-01-01T00:00:00.000001Z".parse().unwrap();
        assert!(
            production_change_key(&name("m"), t0, 5).1 < production_change_key(&name("m"), t1, 1).1
        );
        assert!(production_change_key(&name("m"), t1, 7).1 < production_change_upper(t1));
        assert!(production_change_upper(t0) < production_change_key(&name("m"), t1, 0).1);
    }

    #[test]
    fn version_numbers_in_keys_are_ten_zero_padded_digits() {
        let m = name("m");
        assert_eq!(version_key(&m, vn(3)).1, "V#0000000003");
        assert_eq!(promotions_prefix(vn(12)), "P#0000000012#");
        assert_eq!(card_pk(&m, vn(7)), "CARD#m#0000000007");
        assert_eq!(card_key(&m, vn(7), 2).1, "0000000002");
        assert_eq!(version_gsi_sk(&m, vn(u32::MAX)), "m#4294967295");
        assert_eq!(
            promotion_key("m.3.pr-1").unwrap(),
            ("MODEL#m".to_owned(), "P#0000000003#m.3.pr-1".to_owned())
        );
    }

    #[test]
    fn a_models_versions_sort_before_any_longer_name_in_the_stage_index() {
        let a9 = version_gsi_sk(&name("a"), vn(9_999_999));
        let ab = version_gsi_sk(&name("a-b"), vn(1));
        assert!(a9 < ab);
        assert!(a9 < prefix_upper("a#"));
        assert!(prefix_upper("a#") < ab);
    }

    #[test]
    fn events_and_nodes_fill_buckets_in_order() {
        assert_eq!(event_key(1), ("AUDIT#0".into(), seq_sk(1)));
        assert_eq!(event_key(BUCKET).0, "AUDIT#0");
        assert_eq!(event_key(BUCKET + 1).0, "AUDIT#1");
        assert_eq!(node_key(3, BUCKET - 1).0, "NODE#3#0");
        assert_eq!(node_key(3, BUCKET).0, "NODE#3#1");
    }

    #[test]
    fn a_promotion_key_derives_from_its_id() {
        assert_eq!(
            promotion_key("credit-risk.3.pr-1a2b"),
            Some((
                "MODEL#credit-risk".into(),
                "P#0000000003#credit-risk.3.pr-1a2b".into()
            ))
        );
        assert_eq!(promotion_key("not a promotion"), None);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode_cursor("credit-risk#0000000001");
        assert_eq!(
            decode_cursor(Some(&c)).unwrap().as_deref(),
            Some("credit-risk#0000000001")
        );
        assert_eq!(decode_cursor(None).unwrap(), None);
        for bad in ["", "zz", "abc", "ff", &"00".repeat(2000)] {
            assert!(
                matches!(decode_cursor(Some(bad)), Err(StoreError::InvalidCursor)),
                "{bad}"
            );
        }
    }
}
