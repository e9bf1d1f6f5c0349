//! The reads: `GetItem`, consistent `BatchGetItem` in chunks of 100 with unprocessed keys
//! asked for again, and `Query` with its parameters ([`Query`]), pages and cursors.
//!
//! Invariant: every read is a fixed small number of requests and none is a `Scan`; a list
//! evaluates at most a bounded budget of items per page ([`budget`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use steward_core::ports::{ModelFilter, Page};
use steward_core::records::Model;
use steward_core::types::ModelName;
use steward_core::StoreError;

use super::items::{self, from_item, key_item, str_attr, Head, Item};
use super::keys::{self, encode_cursor, ItemKey};
use super::DynamoStore;

/// How many times unprocessed keys of a `BatchGetItem` are asked for again.
const BATCH_ATTEMPTS: u32 = 8;
/// Keys per `BatchGetItem` (DynamoDB's limit).
const BATCH_KEYS: usize = 100;

/// A failed SDK call as a `StoreError::Backend`: the operation as context, the SDK error (the
/// service's code and message, or the transport failure and its causes) as the source.
/// Never includes credentials.
pub(crate) fn sdk_error<E, R>(op: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::backend(format!("DynamoDB {op} failed"), e)
}

/// A small pseudo-random delay for retries, so racing writers spread out.
pub(super) fn jitter(attempt: u32) -> Duration {
    let cap = 5u64 << attempt.min(5); // 5 ms .. 160 ms
    let r = (uuid::Uuid::new_v4().as_u128() % u128::from(cap)) as u64;
    Duration::from_millis(r + 1)
}

/// One `Query`'s parameters.
#[derive(Default, Clone)]
pub(super) struct Query {
    pub(super) index: Option<&'static str>,
    pub(super) key_condition: String,
    pub(super) names: HashMap<String, String>,
    pub(super) values: HashMap<String, AttributeValue>,
    pub(super) filter: Option<String>,
    pub(super) projection: Option<String>,
    pub(super) limit: Option<i32>,
    pub(super) descending: bool,
    pub(super) consistent: bool,
    pub(super) start: Option<Item>,
}

impl Query {
    pub(super) fn table(pk: String) -> Self {
        Self::on(None, "pk", pk).consistent()
    }

    pub(super) fn index(index: &'static str, pk: String) -> Self {
        Self::on(Some(index), &format!("{index}pk"), pk)
    }

    pub(super) fn on(index: Option<&'static str>, pk_attr: &str, pk: String) -> Self {
        let mut q = Query {
            index,
            key_condition: "#pk = :pk".into(),
            ..Query::default()
        };
        q.names.insert("#pk".into(), pk_attr.into());
        q.values.insert(":pk".into(), AttributeValue::S(pk));
        q
    }

    pub(super) fn consistent(mut self) -> Self {
        self.consistent = true;
        self
    }

    /// Adds a sort-key condition; `cond` uses `#sk` and the given values.
    pub(super) fn sort(mut self, sk_attr: &str, cond: &str, values: &[(&str, String)]) -> Self {
        self.key_condition = format!("#pk = :pk AND {cond}");
        self.names.insert("#sk".into(), sk_attr.into());
        for (k, v) in values {
            self.values
                .insert((*k).into(), AttributeValue::S(v.clone()));
        }
        self
    }

    pub(super) fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        self
    }

    pub(super) fn filter(
        mut self,
        expr: String,
        names: &[(&str, &str)],
        values: Vec<(String, AttributeValue)>,
    ) -> Self {
        self.filter = Some(expr);
        for (k, v) in names {
            self.names.insert((*k).into(), (*v).into());
        }
        self.values.extend(values);
        self
    }
}

/// How many items a filtered query evaluates for a page of `limit` (a filter drops some).
pub(super) fn budget(limit: usize, filtered: bool) -> usize {
    let page = limit.saturating_add(1);
    if filtered {
        page.saturating_mul(4).min(1000).max(page)
    } else {
        page
    }
}

/// A page from rows keyed by the sort key they resume after; `evaluated` is the sort key of
/// the query's `LastEvaluatedKey`, if it stopped early.
pub(super) fn page_of<T>(
    mut rows: Vec<(String, T)>,
    limit: usize,
    evaluated: Option<String>,
) -> Page<T> {
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(k, _)| encode_cursor(k))
    } else {
        evaluated.map(|k| encode_cursor(&k))
    };
    Page {
        items: rows.into_iter().map(|(_, v)| v).collect(),
        next_cursor: next,
    }
}

pub(super) fn decode_all<T: serde::de::DeserializeOwned>(
    items: Vec<Item>,
) -> Result<Vec<T>, StoreError> {
    items.into_iter().map(from_item).collect()
}

pub(super) fn decode_rows<T: serde::de::DeserializeOwned>(
    rows: Vec<(String, Item)>,
) -> Result<Vec<(String, T)>, StoreError> {
    rows.into_iter()
        .map(|(k, item)| Ok((k, from_item(item)?)))
        .collect()
}

impl DynamoStore {
    pub(super) async fn get_item(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
    }

    /// Consistent reads of many items: one `BatchGetItem` per 100 distinct keys, asking again
    /// for unprocessed keys.
    pub(super) async fn batch_get(
        &self,
        keys: &[ItemKey],
    ) -> Result<HashMap<ItemKey, Item>, StoreError> {
        let mut seen = HashSet::new();
        let distinct: Vec<&ItemKey> = keys.iter().filter(|k| seen.insert(*k)).collect();
        let mut found = HashMap::with_capacity(distinct.len());
        for chunk in distinct.chunks(BATCH_KEYS) {
            let mut pending: Vec<Item> = chunk.iter().map(|k| key_item(k)).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == BATCH_ATTEMPTS {
                    return Err(StoreError::backend_msg(format!(
                        "DynamoDB BatchGetItem left {} keys unprocessed after {attempt} attempts",
                        pending.len()
                    )));
                }
                if attempt > 0 {
                    tokio::time::sleep(jitter(attempt)).await;
                }
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::backend("cannot build a batch read", e))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| sdk_error("BatchGetItem", e))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let Some(k) = items::item_key(&item) {
                        found.insert(k, item);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|ka| ka.keys)
                    .unwrap_or_default();
            }
        }
        Ok(found)
    }

    /// One `Query` request: the items and the `LastEvaluatedKey`.
    pub(super) async fn query(&self, q: Query) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(q.index.map(str::to_owned))
            .key_condition_expression(q.key_condition)
            .set_expression_attribute_names(Some(q.names))
            .set_expression_attribute_values(Some(q.values))
            .set_filter_expression(q.filter)
            .set_projection_expression(q.projection)
            .set_limit(q.limit)
            .scan_index_forward(!q.descending)
            .set_consistent_read(q.consistent.then_some(true))
            .set_exclusive_start_key(q.start)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// Every item of a query, following `LastEvaluatedKey` (one request unless the results
    /// pass 1 MB).
    pub(super) async fn query_all(&self, q: Query) -> Result<Vec<Item>, StoreError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let mut page_query = q.clone();
            page_query.start = start;
            let (mut page, next) = self.query(page_query).await?;
            all.append(&mut page);
            match next {
                Some(k) => start = Some(k),
                None => return Ok(all),
            }
        }
    }

    /// Items by key, with the audit head fetched in the same batch and cached.
    pub(super) async fn read_with_head(
        &self,
        keys: &[ItemKey],
    ) -> Result<HashMap<ItemKey, Item>, StoreError> {
        let head_key = keys::head_key();
        let mut all = keys.to_vec();
        all.push(head_key.clone());
        let mut found = self.batch_get(&all).await?;
        let head = match found.remove(&head_key) {
            Some(item) => items::head_from_item(item)?,
            None => Head::empty(),
        };
        self.observe_head(head);
        Ok(found)
    }

    pub(super) async fn point_read<T: serde::de::DeserializeOwned>(
        &self,
        key: ItemKey,
    ) -> Result<Option<T>, StoreError> {
        self.read_with_head(std::slice::from_ref(&key))
            .await?
            .remove(&key)
            .map(from_item)
            .transpose()
    }

    /// One page of a GSI partition in sort-key order, resuming after `after`.
    pub(super) async fn index_page(
        &self,
        mut q: Query,
        sk_attr: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<(String, Item)>, Option<String>), StoreError> {
        if let Some(a) = after {
            q = q.sort(sk_attr, "#sk > :after", &[(":after", a)]);
        }
        let filtered = q.filter.is_some();
        let (found, next) = self.query(q.limit(budget(limit, filtered))).await?;
        let rows = found
            .into_iter()
            .map(|item| {
                let k = str_attr(&item, sk_attr).unwrap_or_default().to_owned();
                (k, item)
            })
            .collect();
        let evaluated = next.and_then(|k| str_attr(&k, sk_attr).map(str::to_owned));
        Ok((rows, evaluated))
    }

    /// Models listed through the stage index: a query for the versions in the stage, then
    /// one batch read of their distinct models.
    pub(super) async fn models_in_stage(
        &self,
        filter: &ModelFilter,
        stage: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        let mut q = Query::index("gsi1", keys::stage_gsi_pk(stage));
        if let Some(name) = &after {
            // Past every version of the last model listed.
            q = q.sort("gsi1sk", "#sk > :after", &[(":after", format!("{name}$"))]);
        }
        q.projection = Some("gsi1sk".into());
        let (found, next) = self.query(q.limit(budget(limit, true))).await?;
        let mut names: Vec<String> = Vec::new();
        for item in &found {
            let Some((name, _)) = str_attr(item, "gsi1sk").and_then(|k| k.rsplit_once('#')) else {
                continue;
            };
            if names.last().map(String::as_str) != Some(name) {
                names.push(name.to_owned());
            }
        }
        let next_cursor = if names.len() > limit {
            names.truncate(limit);
            names.last().map(|n| encode_cursor(n))
        } else if next.is_some() {
            names.last().map(|n| encode_cursor(n))
        } else {
            None
        };
        let model_keys: Vec<ItemKey> = names
            .iter()
            .filter_map(|n| ModelName::parse(n).ok())
            .map(|n| keys::model_key(&n))
            .collect();
        let mut found = self.batch_get(&model_keys).await?;
        let mut items = Vec::with_capacity(model_keys.len());
        for k in &model_keys {
            if let Some(item) = found.remove(k) {
                let m: Model = from_item(item)?;
                let owner_ok = filter.owner.as_ref().is_none_or(|o| *o == m.owner.team);
                let tier_ok = filter.tier.is_none_or(|t| t == m.risk_tier);
                if owner_ok && tier_ok {
                    items.push(m);
                }
            }
        }
        Ok(Page { items, next_cursor })
    }
}
