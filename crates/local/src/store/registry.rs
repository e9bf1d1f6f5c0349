//! The [`Registry`] port on SQLite: every read one indexed query, every list a page in key
//! order resumed after its cursor.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use steward_core::ids::VersionNumber;
use steward_core::mlflow::RegisteredModel;
use steward_core::ports::{Commit, ModelFilter, Page, Receipt, Registry, ReviewFilter, ReviewItem};
use steward_core::records::*;
use steward_core::serving::ServingRecord;
use steward_core::types::{ModelName, PrincipalId, Sha256};
use steward_core::webhooks::{Webhook, WebhookId};
use steward_core::StoreError;

use r2d2_sqlite::rusqlite::{self, params};

use super::{backend, decode_cursor, from_json, page, ts, SqliteStore};

#[async_trait]
impl Registry for SqliteStore {
    async fn model(&self, name: &ModelName) -> Result<Option<Model>, StoreError> {
        self.query_doc("SELECT body FROM models WHERE name = ?1", &[&name.as_ref()])
    }

    async fn version(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Option<ModelVersion>, StoreError> {
        self.query_doc(
            "SELECT body FROM versions WHERE name = ?1 AND version = ?2",
            &[&name.as_ref(), &version.get()],
        )
    }

    async fn versions(&self, name: &ModelName) -> Result<Vec<ModelVersion>, StoreError> {
        self.query_docs(
            "SELECT body FROM versions WHERE name = ?1 ORDER BY version",
            &[&name.as_ref()],
        )
    }

    async fn list_models(
        &self,
        filter: &ModelFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        // Built per filter combination so SQLite walks `models` in name order (through the
        // owner or tier index when one is given) and stops after one page.
        let after = decode_cursor(cursor)?;
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(after)];
        let mut sql = "SELECT m.name, m.body FROM models m WHERE m.name > ?1".to_owned();
        if let Some(stage) = filter.stage {
            args.push(Box::new(stage.as_str()));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM versions v WHERE v.name = m.name AND v.stage = ?{})",
                args.len()
            ));
        }
        if let Some(owner) = &filter.owner {
            args.push(Box::new(owner.clone()));
            sql.push_str(&format!(" AND m.owner_team = ?{}", args.len()));
        }
        if let Some(tier) = filter.tier {
            args.push(Box::new(tier.as_str()));
            sql.push_str(&format!(" AND m.risk_tier = ?{}", args.len()));
        }
        args.push(Box::new((limit + 1) as i64));
        sql.push_str(&format!(" ORDER BY m.name LIMIT ?{}", args.len()));
        let params: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
        let rows = self.query_keyed(&sql, &params)?;
        Ok(page(rows, limit))
    }

    async fn card_revisions(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Vec<CardRevision>, StoreError> {
        self.query_docs(
            "SELECT body FROM card_revisions WHERE name = ?1 AND version = ?2 ORDER BY card_revision",
            &[&name.as_ref(), &version.get()],
        )
    }

    async fn promotion(&self, id: &str) -> Result<Option<Promotion>, StoreError> {
        self.query_doc("SELECT body FROM promotions WHERE id = ?1", &[&id])
    }

    async fn promotions_of(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Vec<Promotion>, StoreError> {
        self.query_docs(
            "SELECT body FROM promotions WHERE name = ?1 AND version = ?2 ORDER BY requested_at DESC",
            &[&name.as_ref(), &version.get()],
        )
    }

    async fn list_reviews(
        &self,
        filter: &ReviewFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ReviewItem>, StoreError> {
        let after = decode_cursor(cursor)?;
        let status = serde_json::to_value(filter.status).map_err(backend)?;
        let stages = serde_json::to_string(&filter.stages).map_err(backend)?;
        let conn = self.read()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT r.id, r.body, p.body FROM reviews r JOIN promotions p ON p.id = r.promotion_id
                 WHERE r.status = ?1 AND r.id > ?2 AND r.stage IN (SELECT value FROM json_each(?3))
                 ORDER BY r.id LIMIT ?4",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    status.as_str().unwrap_or_default(),
                    after,
                    stages,
                    (limit + 1) as i64
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .map_err(backend)?
            .map(|row| {
                let (id, review, promotion) = row.map_err(backend)?;
                Ok((
                    id,
                    ReviewItem {
                        review: from_json(&review)?,
                        promotion: from_json(&promotion)?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page(rows, limit))
    }

    async fn reviews_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Review>, StoreError> {
        self.query_docs(
            "SELECT body FROM reviews WHERE status = 'pending' AND deadline <= ?1 ORDER BY deadline LIMIT ?2",
            &[&ts(now), &(limit as i64)],
        )
    }

    async fn production_at(
        &self,
        name: &ModelName,
        at: DateTime<Utc>,
    ) -> Result<Option<ProductionChange>, StoreError> {
        self.query_doc(
            "SELECT body FROM production_changes WHERE name = ?1 AND at <= ?2 ORDER BY at DESC, id DESC LIMIT 1",
            &[&name.as_ref(), &ts(at)],
        )
    }

    async fn production_models(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Model>, StoreError> {
        let after = decode_cursor(cursor)?;
        let rows = self.query_keyed(
            "SELECT name, body FROM models WHERE production_version IS NOT NULL AND name > ?1 ORDER BY name LIMIT ?2",
            &[&after, &((limit + 1) as i64)],
        )?;
        Ok(page(rows, limit))
    }

    async fn retirements(
        &self,
        status: RetirementStatus,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ModelVersion>, StoreError> {
        let after = decode_cursor(cursor)?;
        // Few rows (the partial index holds only versions with a request): ordered here, by
        // the same key as every store.
        let versions: Vec<ModelVersion> = self.query_docs(
            "SELECT body FROM versions WHERE json_extract(body, '$.pending_retirement') IS NOT NULL",
            &[],
        )?;
        let found = steward_core::ports::pending_retirements_after(versions, status, &after, limit);
        Ok(page(found, limit))
    }

    async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        self.query_doc("SELECT body FROM incidents WHERE id = ?1", &[&id])
    }

    async fn serious_reports_due(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        // Few incidents are ever classified serious; the times are compared parsed.
        let mut due: Vec<Incident> = self
            .query_docs(
                "SELECT body FROM incidents WHERE json_extract(body, '$.status') = 'open' \
                 AND json_extract(body, '$.classification') IS NOT NULL \
                 AND json_extract(body, '$.report') IS NULL \
                 AND json_extract(body, '$.reminder_sent_at') IS NULL",
                &[],
            )?
            .into_iter()
            .filter(|i: &Incident| i.serious.report_due.is_some_and(|d| d <= before))
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
        let name = name.map(|n| n.as_ref().to_owned());
        let rows = self.query_keyed(
            "SELECT id, body FROM incidents WHERE (?1 IS NULL OR name = ?1) AND id > ?2 ORDER BY id LIMIT ?3",
            &[&name, &after, &((limit + 1) as i64)],
        )?;
        Ok(page(rows, limit))
    }

    async fn principal(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, StoreError> {
        self.query_doc("SELECT body FROM principals WHERE id = ?1", &[&id.as_ref()])
    }

    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        self.query_docs("SELECT body FROM principals ORDER BY id", &[])
    }

    async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.query_doc("SELECT body FROM idempotency WHERE key = ?1", &[&key])
    }

    async fn webhook(&self, id: &WebhookId) -> Result<Option<Webhook>, StoreError> {
        self.query_doc("SELECT body FROM webhooks WHERE id = ?1", &[&id.as_str()])
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.query_docs("SELECT body FROM webhooks ORDER BY id", &[])
    }

    async fn registered_model(
        &self,
        name: &ModelName,
    ) -> Result<Option<RegisteredModel>, StoreError> {
        self.query_doc(
            "SELECT body FROM registered_models WHERE name = ?1",
            &[&name.as_ref()],
        )
    }

    async fn registered_models(&self) -> Result<Vec<RegisteredModel>, StoreError> {
        self.query_docs("SELECT body FROM registered_models ORDER BY name", &[])
    }

    async fn serving(&self, key: &str) -> Result<Option<ServingRecord>, StoreError> {
        self.query_doc("SELECT body FROM serving WHERE key = ?1", &[&key])
    }

    async fn serving_records(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ServingRecord>, StoreError> {
        let after = decode_cursor(cursor)?;
        let rows = self.query_keyed(
            "SELECT key, body FROM serving WHERE key > ?1 ORDER BY key LIMIT ?2",
            &[&after, &((limit + 1) as i64)],
        )?;
        Ok(page(rows, limit))
    }

    async fn versions_with_artifact(
        &self,
        sha256: Option<&Sha256>,
        uri: &str,
    ) -> Result<Vec<VersionRef>, StoreError> {
        let sha = sha256.map(|s| s.to_hex());
        let conn = self.read()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, version FROM versions \
                 WHERE json_extract(body, '$.artifact.sha256') = ?1 \
                    OR json_extract(body, '$.artifact.uri') = ?2 \
                 ORDER BY name, version",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![sha, uri], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (name, version) = row.map_err(backend)?;
            out.push(VersionRef {
                name: ModelName::parse(&name)
                    .map_err(|e| StoreError::backend_msg(format!("stored model name: {e:?}")))?,
                version: VersionNumber::new(version)
                    .map_err(|_| StoreError::backend_msg("stored version 0"))?,
            });
        }
        Ok(out)
    }

    async fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
        self.commit_sync(commit)
    }
}
