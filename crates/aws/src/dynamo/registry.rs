//! The [`Registry`] port on the table: point reads batched with the audit head, lists as
//! one `Query` (two for a stage filter), and commits through [`DynamoStore::try_commit`].
//!
//! Invariant: reads that decide anything are strongly consistent; GSI lists are eventually
//! consistent, as DynamoDB offers them.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use steward_core::ids::VersionNumber;
use steward_core::mlflow::RegisteredModel;
use steward_core::ports::{
    Commit, Fetched, Key, ModelFilter, Page, Receipt, Registry, ReviewFilter, ReviewItem,
};
use steward_core::records::{
    CardRevision, IdempotencyRecord, Incident, Model, ModelVersion, PrincipalRecord,
    ProductionChange, Promotion, RetirementStatus, Review, ReviewStatus,
};
use steward_core::types::{ModelName, PrincipalId, ReviewStage};
use steward_core::webhooks::{Webhook, WebhookId};
use steward_core::StoreError;

use super::items::{self, from_item, str_attr};
use super::keys::{self, decode_cursor, ItemKey};
use super::requests::{decode_all, decode_rows, page_of, Query};
use super::DynamoStore;

#[async_trait]
impl Registry for DynamoStore {
    async fn get_many(&self, wanted: &[Key]) -> Result<Fetched, StoreError> {
        let mut by_key: HashMap<ItemKey, &Key> = HashMap::new();
        for k in wanted {
            if let Some(ik) = keys::key_of(k) {
                by_key.insert(ik, k);
            }
        }
        let item_keys: Vec<ItemKey> = by_key.keys().cloned().collect();
        let found = self.read_with_head(&item_keys).await?;
        let now = Utc::now();
        let mut out = Fetched::default();
        for (ik, item) in found {
            let Some(key) = by_key.get(&ik) else { continue };
            match key {
                Key::Model(n) => {
                    out.models.insert(n.clone(), from_item(item)?);
                }
                Key::Version(n, v) => {
                    out.versions.insert((n.clone(), *v), from_item(item)?);
                }
                Key::Promotion(id) => {
                    out.promotions.insert(id.clone(), from_item(item)?);
                }
                Key::Principal(id) => {
                    out.principals.insert(id.clone(), from_item(item)?);
                }
                Key::Idempotency(k) => {
                    if !items::expired(&item, now) {
                        out.idempotency.insert(k.clone(), from_item(item)?);
                    }
                }
                Key::RegisteredModel(n) => {
                    out.registered_models.insert(n.clone(), from_item(item)?);
                }
            }
        }
        Ok(out)
    }

    async fn model(&self, name: &ModelName) -> Result<Option<Model>, StoreError> {
        self.point_read(keys::model_key(name)).await
    }

    async fn version(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Option<ModelVersion>, StoreError> {
        self.point_read(keys::version_key(name, version)).await
    }

    async fn versions(&self, name: &ModelName) -> Result<Vec<ModelVersion>, StoreError> {
        let q = Query::table(keys::model_pk(name)).sort(
            "sk",
            "begins_with(#sk, :prefix)",
            &[(":prefix", "V#".into())],
        );
        decode_all(self.query_all(q).await?)
    }

    async fn list_models(
        &self,
        filter: &ModelFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        let after = decode_cursor(cursor)?;
        if let Some(stage) = filter.stage {
            return self
                .models_in_stage(filter, stage.as_str(), after, limit)
                .await;
        }
        let (mut q, sk) = match &filter.owner {
            Some(team) => (Query::index("gsi2", keys::owner_gsi_pk(team)), "gsi2sk"),
            None => (Query::index("gsi1", keys::MODELS_GSI_PK.into()), "gsi1sk"),
        };
        if let Some(tier) = filter.tier {
            q = q.filter(
                "#tier = :tier".into(),
                &[("#tier", "risk_tier")],
                vec![(":tier".into(), items::to_attr(&tier)?)],
            );
        }
        let (rows, evaluated) = self.index_page(q, sk, after, limit).await?;
        Ok(page_of(decode_rows(rows)?, limit, evaluated))
    }

    async fn card_revisions(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Vec<CardRevision>, StoreError> {
        decode_all(
            self.query_all(Query::table(keys::card_pk(name, version)))
                .await?,
        )
    }

    async fn promotion(&self, id: &str) -> Result<Option<Promotion>, StoreError> {
        match keys::promotion_key(id) {
            Some(key) => self.point_read(key).await,
            None => Ok(None),
        }
    }

    async fn promotions_of(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Vec<Promotion>, StoreError> {
        let q = Query::table(keys::model_pk(name)).sort(
            "sk",
            "begins_with(#sk, :prefix)",
            &[(":prefix", keys::promotions_prefix(version))],
        );
        let mut all: Vec<Promotion> = decode_all(self.query_all(q).await?)?;
        all.sort_by_key(|p| std::cmp::Reverse(p.requested_at));
        Ok(all)
    }

    async fn list_reviews(
        &self,
        filter: &ReviewFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ReviewItem>, StoreError> {
        let after = decode_cursor(cursor)?;
        if filter.stages.is_empty() {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            });
        }
        let mut q = Query::index(
            "gsi1",
            keys::reviews_gsi_pk(&items::review_status_str(filter.status)),
        );
        let all_stages = ReviewStage::ALL.iter().all(|s| filter.stages.contains(s));
        if !all_stages {
            let mut placeholders = Vec::new();
            let mut values = Vec::new();
            for (i, stage) in filter.stages.iter().enumerate() {
                placeholders.push(format!(":st{i}"));
                values.push((format!(":st{i}"), items::to_attr(stage)?));
            }
            q = q.filter(
                format!("#stage IN ({})", placeholders.join(", ")),
                &[("#stage", "stage")],
                values,
            );
        }
        let (rows, evaluated) = self.index_page(q, "gsi1sk", after, limit).await?;
        let rows = rows
            .into_iter()
            .map(|(k, item)| Ok((k, items::review_from_item(item)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page_of(rows, limit, evaluated))
    }

    async fn reviews_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Review>, StoreError> {
        if limit == 0 {
            return Ok(vec![]);
        }
        let pending = items::review_status_str(ReviewStatus::Pending);
        let q = Query::index("gsi1", keys::reviews_gsi_pk(&pending))
            .sort(
                "gsi1sk",
                "#sk <= :upper",
                &[(":upper", keys::deadline_upper(now))],
            )
            .limit(limit);
        let (found, _) = self.query(q).await?;
        found
            .into_iter()
            .map(|item| items::review_from_item(item).map(|r| r.review))
            .collect()
    }

    async fn production_at(
        &self,
        name: &ModelName,
        at: DateTime<Utc>,
    ) -> Result<Option<ProductionChange>, StoreError> {
        let mut q = Query::table(keys::model_pk(name))
            .sort(
                "sk",
                "#sk BETWEEN :lo AND :hi",
                &[
                    (":lo", "X#".into()),
                    (":hi", keys::production_change_upper(at)),
                ],
            )
            .limit(1);
        q.descending = true;
        let (found, _) = self.query(q).await?;
        found.into_iter().next().map(from_item).transpose()
    }

    async fn production_models(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        let after = decode_cursor(cursor)?;
        let q = Query::index("gsi3", keys::SERVING_GSI_PK.into());
        let (rows, evaluated) = self.index_page(q, "gsi3sk", after, limit).await?;
        Ok(page_of(decode_rows(rows)?, limit, evaluated))
    }

    async fn retirements(
        &self,
        status: RetirementStatus,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ModelVersion>, StoreError> {
        let after = decode_cursor(cursor)?;
        let q = Query::index("gsi3", keys::retirements_gsi_pk(status.as_str()));
        let (rows, evaluated) = self.index_page(q, "gsi3sk", after, limit).await?;
        Ok(page_of(decode_rows(rows)?, limit, evaluated))
    }

    async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let q = Query::index("gsi2", keys::incident_gsi_pk(id)).limit(1);
        let (found, _) = self.query(q).await?;
        found.into_iter().next().map(from_item).transpose()
    }

    async fn serious_reports_due(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        if limit == 0 {
            return Ok(vec![]);
        }
        let q = Query::index("gsi3", keys::SERIOUS_DUE_GSI_PK.into())
            .sort(
                "gsi3sk",
                "#sk <= :upper",
                &[(":upper", keys::deadline_upper(before))],
            )
            .limit(limit);
        let (found, _) = self.query(q).await?;
        found.into_iter().map(from_item).collect()
    }

    async fn incidents(
        &self,
        name: Option<&ModelName>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Incident>, StoreError> {
        let after = decode_cursor(cursor)?;
        let Some(name) = name else {
            let q = Query::index("gsi1", keys::INCIDENTS_GSI_PK.into());
            let (rows, evaluated) = self.index_page(q, "gsi1sk", after, limit).await?;
            return Ok(page_of(decode_rows(rows)?, limit, evaluated));
        };
        // The model's partition, from just after the cursor's incident.
        let lo = match after {
            Some(a) if a.starts_with("I#") => a,
            Some(_) => return Err(StoreError::InvalidCursor),
            None => "I#".to_owned(),
        };
        let q = Query::table(keys::model_pk(name))
            .sort(
                "sk",
                "#sk BETWEEN :lo AND :hi",
                &[(":lo", lo.clone()), (":hi", keys::prefix_upper("I#"))],
            )
            .limit(limit.saturating_add(2));
        let (found, next) = self.query(q).await?;
        let rows = found
            .into_iter()
            .filter_map(|item| {
                let sk = str_attr(&item, "sk")?.to_owned();
                (sk != lo).then_some((sk, item))
            })
            .collect();
        let evaluated = next.and_then(|k| str_attr(&k, "sk").map(str::to_owned));
        Ok(page_of(decode_rows(rows)?, limit, evaluated))
    }

    async fn principal(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, StoreError> {
        self.cached_principal(id).await
    }

    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        self.all_principals().await
    }

    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        match self.get_item(&keys::idempotency_key(key)).await? {
            Some(item) if !items::expired(&item, Utc::now()) => from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    async fn webhook(&self, id: &WebhookId) -> Result<Option<Webhook>, StoreError> {
        // With the head, like every point read: `put_webhook` commits right after it.
        self.point_read(keys::webhook_key(id)).await
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        decode_all(
            self.query_all(Query::table(keys::WEBHOOKS_PK.into()))
                .await?,
        )
    }

    async fn registered_model(
        &self,
        name: &ModelName,
    ) -> Result<Option<RegisteredModel>, StoreError> {
        // With the head, like every point read: the MLflow API commits right after it.
        self.point_read(keys::registered_model_key(name)).await
    }

    async fn registered_models(&self) -> Result<Vec<RegisteredModel>, StoreError> {
        // The partition sorts by name (the sort key), so the query is already in name order.
        decode_all(
            self.query_all(Query::table(keys::MLFLOW_MODELS_PK.into()))
                .await?,
        )
    }

    async fn serving(
        &self,
        key: &str,
    ) -> Result<Option<steward_core::serving::ServingRecord>, StoreError> {
        self.serving_record(key).await
    }

    async fn serving_records(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<steward_core::serving::ServingRecord>, StoreError> {
        self.serving_page(cursor, limit).await
    }

    async fn versions_with_artifact(
        &self,
        sha256: Option<&steward_core::types::Sha256>,
        uri: &str,
    ) -> Result<Vec<steward_core::records::VersionRef>, StoreError> {
        self.artifact_versions(sha256, uri).await
    }

    async fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
        let receipt = self.try_commit(&commit).await?;
        self.remember_principals(&commit);
        Ok(receipt)
    }
}
