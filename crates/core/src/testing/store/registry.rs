//! The [`Registry`] port over the in-memory records: each read answers exactly what the
//! SQLite store's query answers, in the same order.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{decode_cursor, page, ts, MemoryStore};
use crate::error::StoreError;
use crate::ids::VersionNumber;
use crate::ports::{Commit, ModelFilter, Page, Receipt, Registry, ReviewFilter, ReviewItem};
use crate::records::*;
use crate::types::{ModelName, PrincipalId};

#[async_trait]
impl Registry for MemoryStore {
    async fn model(&self, name: &ModelName) -> Result<Option<Model>, StoreError> {
        Ok(self.lock()?.records.models.get(name.as_ref()).cloned())
    }

    async fn version(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Option<ModelVersion>, StoreError> {
        let key = (name.to_string(), version);
        Ok(self.lock()?.records.versions.get(&key).cloned())
    }

    async fn versions(&self, name: &ModelName) -> Result<Vec<ModelVersion>, StoreError> {
        let state = self.lock()?;
        let from = (name.to_string(), VersionNumber::FIRST);
        Ok(state
            .records
            .versions
            .range(from..)
            .take_while(|((n, _), _)| n == name.as_ref())
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn list_models(
        &self,
        filter: &ModelFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        let after = decode_cursor(cursor)?;
        let state = self.lock()?;
        let r = &state.records;
        let matches = |m: &Model| {
            filter.owner.as_ref().is_none_or(|o| &m.owner.team == o)
                && filter.tier.is_none_or(|t| m.risk_tier == t)
                && filter.stage.is_none_or(|s| {
                    r.versions
                        .iter()
                        .any(|((n, _), v)| n == m.name.as_ref() && v.stage == s)
                })
        };
        Ok(page(
            r.models
                .iter()
                .filter(|(k, m)| **k > after && matches(m))
                .map(|(k, m)| (k.clone(), m.clone())),
            limit,
        ))
    }

    async fn card_revisions(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Vec<CardRevision>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .records
            .cards
            .iter()
            .filter(|((n, v, _), _)| n == name.as_ref() && *v == version)
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn promotion(&self, id: &str) -> Result<Option<Promotion>, StoreError> {
        Ok(self.lock()?.records.promotions.get(id).cloned())
    }

    async fn promotions_of(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Vec<Promotion>, StoreError> {
        let state = self.lock()?;
        let mut out: Vec<Promotion> = state
            .records
            .promotions
            .values()
            .filter(|p| p.name == *name && p.version == version)
            .cloned()
            .collect();
        // Newest first; equal times in descending id order, as SQLite walks its index back.
        out.sort_by(|a, b| (ts(b.requested_at), &b.id).cmp(&(ts(a.requested_at), &a.id)));
        Ok(out)
    }

    async fn list_reviews(
        &self,
        filter: &ReviewFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ReviewItem>, StoreError> {
        let after = decode_cursor(cursor)?;
        let state = self.lock()?;
        let r = &state.records;
        Ok(page(
            r.reviews
                .iter()
                .filter(|(id, review)| {
                    **id > after
                        && review.status == filter.status
                        && filter.stages.contains(&review.stage)
                })
                .filter_map(|(id, review)| {
                    let promotion = r.promotions.get(&review.promotion_id)?;
                    Some((
                        id.clone(),
                        ReviewItem {
                            review: review.clone(),
                            promotion: promotion.clone(),
                        },
                    ))
                }),
            limit,
        ))
    }

    async fn reviews_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Review>, StoreError> {
        let now = ts(now);
        let state = self.lock()?;
        let mut due: Vec<&Review> = state
            .records
            .reviews
            .values()
            .filter(|r| r.status == ReviewStatus::Pending && ts(r.deadline) <= now)
            .collect();
        due.sort_by_key(|r| (ts(r.deadline), r.id.clone()));
        Ok(due.into_iter().take(limit).cloned().collect())
    }

    async fn production_at(
        &self,
        name: &ModelName,
        at: DateTime<Utc>,
    ) -> Result<Option<ProductionChange>, StoreError> {
        let at = ts(at);
        let state = self.lock()?;
        // The latest at or before `at`; of changes at one instant, the last inserted.
        Ok(state
            .records
            .production_changes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name == *name && ts(c.at) <= at)
            .max_by_key(|(i, c)| (ts(c.at), *i))
            .map(|(_, c)| c.clone()))
    }

    async fn production_models(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        let after = decode_cursor(cursor)?;
        let state = self.lock()?;
        Ok(page(
            state
                .records
                .models
                .iter()
                .filter(|(k, m)| **k > after && m.production_version.is_some())
                .map(|(k, m)| (k.clone(), m.clone())),
            limit,
        ))
    }

    async fn retirements(
        &self,
        status: RetirementStatus,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ModelVersion>, StoreError> {
        let after = decode_cursor(cursor)?;
        let state = self.lock()?;
        let versions = state.records.versions.values().cloned();
        let found = crate::ports::pending_retirements_after(versions, status, &after, limit);
        Ok(page(found.into_iter(), limit))
    }

    async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        Ok(self.lock()?.records.incidents.get(id).cloned())
    }

    async fn serious_reports_due(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        let state = self.lock()?;
        let mut due: Vec<Incident> = state
            .records
            .incidents
            .values()
            .filter(|i| {
                i.status == crate::records::IncidentStatus::Open
                    && i.serious.awaiting_reminder()
                    && i.serious.report_due.is_some_and(|d| d <= before)
            })
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.serious.report_due, &a.id).cmp(&(b.serious.report_due, &b.id)));
        due.truncate(limit);
        Ok(due)
    }

    async fn incidents(
        &self,
        name: Option<&ModelName>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Incident>, StoreError> {
        let after = decode_cursor(cursor)?;
        let state = self.lock()?;
        Ok(page(
            state
                .records
                .incidents
                .iter()
                .filter(|(id, i)| **id > after && name.is_none_or(|n| i.name == *n))
                .map(|(id, i)| (id.clone(), i.clone())),
            limit,
        ))
    }

    async fn principal(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, StoreError> {
        Ok(self.lock()?.records.principals.get(id.as_ref()).cloned())
    }

    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        Ok(self.lock()?.records.principals.values().cloned().collect())
    }

    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.lock()?.records.idempotency.get(key).cloned())
    }

    async fn webhook(
        &self,
        id: &crate::webhooks::WebhookId,
    ) -> Result<Option<crate::webhooks::Webhook>, StoreError> {
        Ok(self.lock()?.records.webhooks.get(id.as_str()).cloned())
    }

    async fn webhooks(&self) -> Result<Vec<crate::webhooks::Webhook>, StoreError> {
        Ok(self.lock()?.records.webhooks.values().cloned().collect())
    }

    async fn registered_model(
        &self,
        name: &ModelName,
    ) -> Result<Option<crate::mlflow::RegisteredModel>, StoreError> {
        Ok(self
            .lock()?
            .records
            .registered_models
            .get(name.as_ref())
            .cloned())
    }

    async fn registered_models(&self) -> Result<Vec<crate::mlflow::RegisteredModel>, StoreError> {
        Ok(self
            .lock()?
            .records
            .registered_models
            .values()
            .cloned()
            .collect())
    }

    async fn serving(
        &self,
        key: &str,
    ) -> Result<Option<crate::serving::ServingRecord>, StoreError> {
        Ok(self.lock()?.records.serving.get(key).cloned())
    }

    async fn serving_records(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<crate::serving::ServingRecord>, StoreError> {
        let after = decode_cursor(cursor)?;
        let state = self.lock()?;
        Ok(page(
            state
                .records
                .serving
                .iter()
                .filter(|(k, _)| **k > after)
                .map(|(k, r)| (k.clone(), r.clone())),
            limit,
        ))
    }

    async fn versions_with_artifact(
        &self,
        sha256: Option<&crate::types::Sha256>,
        uri: &str,
    ) -> Result<Vec<VersionRef>, StoreError> {
        Ok(self
            .lock()?
            .records
            .versions
            .values()
            .filter(|v| Some(&v.artifact.sha256) == sha256 || v.artifact.uri == uri)
            .map(|v| VersionRef {
                name: v.name.clone(),
                version: v.version,
            })
            .collect())
    }

    async fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
        self.commit_sync(commit)
    }
}
