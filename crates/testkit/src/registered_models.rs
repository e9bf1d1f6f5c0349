//! MLflow registered models' metadata, the same scenario on every store (in memory, SQLite,
//! DynamoDB Local): a [`RegisteredModel`] is a record like any other, created only where none
//! is (`Expect::Absent`), replaced only at the revision read (`Expect::Revision`), kept as a
//! tombstone when deleted, read by name alone or in a `get_many` batch, and listed in name
//! order (byte order, as SQLite compares text and DynamoDB its sort keys).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use steward_core::audit::AuditDraft;
use steward_core::mlflow::{AliasName, RegisteredModel, TagKey};
use steward_core::ports::{Commit, Expect, Key, Put, Registry};
use steward_core::types::{ModelName, PrincipalId};
use steward_core::StoreError;

use crate::{unique, vn};

fn draft(at: DateTime<Utc>, action: &str) -> AuditDraft {
    AuditDraft {
        time: at,
        actor: "dev".into(),
        action: action.into(),
        name: None,
        version: None,
        details: serde_json::json!({}),
    }
}

/// A registered model named `name` at `revision`, with a tag and a free alias.
pub fn registered_model(name: &str, revision: u64) -> RegisteredModel {
    // Microseconds, as the stores' own timestamps are: every store gives back what it took.
    let at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
    RegisteredModel {
        name: ModelName::parse(name).expect("a model name"),
        description: format!("{name}, through MLflow"),
        tags: BTreeMap::from([(
            TagKey::parse("key", "team").expect("a tag key"),
            "risk".to_owned(),
        )]),
        aliases: BTreeMap::from([(
            AliasName::parse("alias", "challenger").expect("an alias"),
            vn(1),
        )]),
        created_by: PrincipalId::parse("dev").expect("a principal id"),
        created_at: at,
        updated_at: at,
        deleted: false,
        revision,
    }
}

async fn put(store: &dyn Registry, m: &RegisteredModel, expect: Expect) -> Result<(), StoreError> {
    store
        .commit(Commit {
            puts: vec![Put::RegisteredModel(m.clone(), expect)],
            audit: vec![draft(m.updated_at, "mlflow.registered_model.put")],
            ..Commit::default()
        })
        .await
        .map(|_| ())
}

/// Creates, conflicts, replaces, deletes (a tombstone) and lists registered models on
/// `store`, checking each answer. Names are fresh, so `store` may hold other records; the
/// listing is checked on this scenario's names only.
pub async fn registered_models_are_kept_the_same_on(store: &dyn Registry) {
    let prefix = unique("rm");
    let name = |s: &str| format!("{prefix}-{s}");
    let first = registered_model(&name("a"), 1);
    let n = first.name.clone();

    // Created only where none is.
    put(store, &first, Expect::Absent).await.unwrap();
    let err = put(store, &first, Expect::Absent).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if *m == format!("registered model {n} already exists")),
        "{err}"
    );
    let mut stale = first.clone();
    stale.description = "a lost update".into();
    stale.revision = 6;
    let err = put(store, &stale, Expect::Revision(5)).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if *m == format!("registered model {n} is at revision 1, expected 5")),
        "{err}"
    );
    let missing = registered_model(&name("never"), 2);
    let err = put(store, &missing, Expect::Revision(1)).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if *m == format!("registered model {} does not exist", missing.name)),
        "{err}"
    );
    assert_eq!(
        store.registered_model(&n).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.registered_model(&missing.name).await.unwrap(), None);

    // Replaced at the revision read.
    let mut second = first.clone();
    second.description = "edited".into();
    second.tags.clear();
    second.revision = 2;
    put(store, &second, Expect::Revision(1)).await.unwrap();
    assert_eq!(
        store.registered_model(&n).await.unwrap(),
        Some(second.clone())
    );

    // In a get_many batch, beside a Steward model that does not exist.
    let fetched = store
        .get_many(&[Key::Model(n.clone()), Key::RegisteredModel(n.clone())])
        .await
        .unwrap();
    assert_eq!(fetched.registered_model(&n), Some(&second));
    assert!(fetched.models.is_empty(), "{:?}", fetched.models);

    // Deleted: a tombstone, still read and listed, whose revision goes on.
    let mut tombstone = second.clone();
    tombstone.deleted = true;
    tombstone.aliases.clear();
    tombstone.revision = 3;
    put(store, &tombstone, Expect::Revision(2)).await.unwrap();
    assert_eq!(
        store.registered_model(&n).await.unwrap(),
        Some(tombstone.clone())
    );

    // Listed by name, in byte order ('-' sorts before the digits and letters).
    let mut expected = vec![tombstone];
    for s in ["b", "a1", "a-b"] {
        let m = registered_model(&name(s), 1);
        put(store, &m, Expect::Absent).await.unwrap();
        expected.push(m);
    }
    expected.sort_by(|x, y| x.name.as_ref().cmp(y.name.as_ref()));
    let listed: Vec<RegisteredModel> = store
        .registered_models()
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.name.as_ref().starts_with(&prefix))
        .collect();
    let names =
        |ms: &[RegisteredModel]| -> Vec<String> { ms.iter().map(|m| m.name.to_string()).collect() };
    assert_eq!(
        names(&listed),
        [name("a"), name("a-b"), name("a1"), name("b")]
    );
    assert_eq!(listed, expected);
    assert!(listed[0].deleted, "the tombstone is listed");
}
