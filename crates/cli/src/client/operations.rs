//! One method per API operation: the path, query and body of each, nothing else. Requests
//! go through the parent module's `send`, so every answer is decoded and every refusal typed
//! the same way.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use steward_core::types::{Decision, Environment, Role, SignalKind};

use super::{path_segment, Client, ModelQuery, Result};

impl Client {
    /// `GET /healthz`
    pub async fn health(&self) -> Result<Value> {
        self.get("/healthz").await
    }

    /// `GET /v1/whoami`: the caller's principal, roles, authentication method and grants.
    pub async fn whoami(&self) -> Result<Value> {
        self.get("/v1/whoami").await
    }

    /// `GET /v1/auth/oidc` (unauthenticated): the server's OpenID Connect provider
    /// (`issuer`, `client_id`, `scopes`); 404 when it has none.
    pub async fn oidc_config(&self) -> Result<Value> {
        self.get("/v1/auth/oidc").await
    }

    /// `POST /v1/models/{name}/versions`: registers a version from a manifest (201).
    pub async fn register(
        &self,
        name: &str,
        manifest: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        let mut req = self
            .request(
                Method::POST,
                &format!("/v1/models/{}/versions", path_segment(name)),
            )
            .json(manifest);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        self.send(req).await
    }

    /// `GET /v1/models`
    pub async fn models(&self, query: &ModelQuery) -> Result<Value> {
        self.get_query("/v1/models", query).await
    }

    /// `GET /v1/models/{name}`
    pub async fn model(&self, name: &str) -> Result<Value> {
        self.get(&format!("/v1/models/{}", path_segment(name)))
            .await
    }

    /// `GET /v1/models/{name}/versions/{version}`
    pub async fn version(&self, name: &str, version: u32) -> Result<Value> {
        self.get(&Self::version_path(name, version)).await
    }

    /// `GET /v1/models/{name}/versions/{version}/card`
    pub async fn card(&self, name: &str, version: u32) -> Result<Value> {
        self.get(&format!("{}/card", Self::version_path(name, version)))
            .await
    }

    /// `PUT /v1/models/{name}/versions/{version}/card`: a new card revision.
    pub async fn put_card(
        &self,
        name: &str,
        version: u32,
        card: &Value,
        if_match: Option<u64>,
    ) -> Result<Value> {
        let mut req = self
            .request(
                Method::PUT,
                &format!("{}/card", Self::version_path(name, version)),
            )
            .json(card);
        if let Some(revision) = if_match {
            req = req.header("If-Match", revision.to_string());
        }
        self.send(req).await
    }

    /// `GET /v1/models/{name}/versions/{version}/card/revisions`
    pub async fn card_revisions(&self, name: &str, version: u32) -> Result<Value> {
        self.get(&format!(
            "{}/card/revisions",
            Self::version_path(name, version)
        ))
        .await
    }

    /// `POST /v1/models/{name}/versions/{version}/evaluations`
    pub async fn add_evaluation(
        &self,
        name: &str,
        version: u32,
        evaluation: &Value,
    ) -> Result<Value> {
        self.post(
            &format!("{}/evaluations", Self::version_path(name, version)),
            evaluation,
        )
        .await
    }

    /// `POST /v1/models/{name}/versions/{version}/checks`: reports a check result (201), with an
    /// optional `Idempotency-Key`.
    pub async fn report_check(
        &self,
        name: &str,
        version: u32,
        report: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        let mut req = self
            .request(
                Method::POST,
                &format!("{}/checks", Self::version_path(name, version)),
            )
            .json(report);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        self.send(req).await
    }

    /// `GET /v1/models/{name}/versions/{version}/checks`
    pub async fn checks(&self, name: &str, version: u32) -> Result<Value> {
        self.get(&format!("{}/checks", Self::version_path(name, version)))
            .await
    }

    /// `GET /v1/models/{name}/versions/{version}/gate?environment=`
    pub async fn gate(&self, name: &str, version: u32, env: Environment) -> Result<Value> {
        self.get_query(
            &format!("{}/gate", Self::version_path(name, version)),
            &[("environment", env.as_str())],
        )
        .await
    }

    /// `POST /v1/models/{name}/versions/{version}/promotions` (202 with the required reviews)
    pub async fn promote(&self, name: &str, version: u32, target: Environment) -> Result<Value> {
        self.post(
            &format!("{}/promotions", Self::version_path(name, version)),
            &json!({"target": target}),
        )
        .await
    }

    /// `GET /v1/promotions/{id}`
    pub async fn promotion(&self, id: &str) -> Result<Value> {
        self.get(&format!("/v1/promotions/{}", path_segment(id)))
            .await
    }

    /// `GET /v1/reviews?status=` (the server's default is `pending`)
    pub async fn reviews(
        &self,
        status: Option<&str>,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Value> {
        self.get_query("/v1/reviews", &status_page(status, cursor, limit))
            .await
    }

    /// `GET /v1/retirements?status=` (the server's default is `awaiting_confirmation`)
    pub async fn retirements(
        &self,
        status: Option<&str>,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Value> {
        self.get_query("/v1/retirements", &status_page(status, cursor, limit))
            .await
    }

    /// `POST /v1/reviews/{id}/decision`
    pub async fn decide(
        &self,
        review_id: &str,
        decision: Decision,
        comment: Option<&str>,
        conditions: &[String],
    ) -> Result<Value> {
        let mut body = json!({"decision": decision, "conditions": conditions});
        if let Some(c) = comment {
            body["comment"] = json!(c);
        }
        self.post(
            &format!("/v1/reviews/{}/decision", path_segment(review_id)),
            &body,
        )
        .await
    }

    /// `POST /v1/models/{name}/versions/{version}/deployments`
    pub async fn deploy(&self, name: &str, version: u32, env: Environment) -> Result<Value> {
        self.post(
            &format!("{}/deployments", Self::version_path(name, version)),
            &json!({"environment": env}),
        )
        .await
    }

    /// `POST /v1/models/{name}/rollback`
    pub async fn rollback(
        &self,
        name: &str,
        reason: &str,
        from_version: Option<u32>,
    ) -> Result<Value> {
        let mut body = json!({"reason": reason});
        if let Some(v) = from_version {
            body["from_version"] = json!(v);
        }
        self.post(
            &format!("/v1/models/{}/rollback", path_segment(name)),
            &body,
        )
        .await
    }

    /// `POST /v1/signals`
    pub async fn signal(
        &self,
        model: &str,
        version: u32,
        kind: SignalKind,
        metric: &str,
        value: f64,
    ) -> Result<Value> {
        self.signal_with_key(model, version, kind, metric, value, None)
            .await
    }

    /// `POST /v1/signals` with an optional `Idempotency-Key`.
    pub async fn signal_with_key(
        &self,
        model: &str,
        version: u32,
        kind: SignalKind,
        metric: &str,
        value: f64,
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        let mut req = self.request(Method::POST, "/v1/signals").json(
            &json!({"model": model, "version": version, "kind": kind, "metric": metric, "value": value}),
        );
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        self.send(req).await
    }

    /// `GET /v1/incidents?model=`
    pub async fn incidents(
        &self,
        model: Option<&str>,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Value> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if let Some(m) = model {
            q.push(("model", m.to_owned()));
        }
        if let Some(c) = cursor {
            q.push(("cursor", c.to_owned()));
        }
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        self.get_query("/v1/incidents", &q).await
    }

    /// `GET /v1/periodic-reviews`
    pub async fn periodic_reviews(&self) -> Result<Value> {
        self.get("/v1/periodic-reviews").await
    }

    /// `GET /v1/models/{name}/versions/{version}/evidence-pack`: the signed pack (zip bytes).
    pub async fn evidence_pack(&self, name: &str, version: u32) -> Result<Vec<u8>> {
        let path = format!("{}/evidence-pack", Self::version_path(name, version));
        self.send_raw(self.request(Method::GET, &path)).await
    }

    /// `POST /v1/serving`
    pub async fn report_serving(&self, body: &Value) -> Result<Value> {
        self.post("/v1/serving", body).await
    }

    /// `GET /v1/serving?outcome=&cursor=&limit=`
    pub async fn serving(
        &self,
        outcome: Option<&str>,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Value> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if let Some(o) = outcome {
            q.push(("outcome", o.to_owned()));
        }
        if let Some(c) = cursor {
            q.push(("cursor", c.to_owned()));
        }
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        self.get_query("/v1/serving", &q).await
    }

    /// `GET /v1/audit/key`
    pub async fn audit_key(&self) -> Result<Value> {
        self.get("/v1/audit/key").await
    }

    /// `GET /v1/inventory`
    pub async fn inventory(&self) -> Result<Value> {
        self.get("/v1/inventory").await
    }

    /// `POST /v1/models/{name}/versions/{version}/retirement`
    pub async fn retire(
        &self,
        name: &str,
        version: u32,
        reason: &str,
        replacement: Option<u32>,
    ) -> Result<Value> {
        let mut body = json!({"reason": reason});
        if let Some(r) = replacement {
            body["replacement"] = json!(r);
        }
        self.post(
            &format!("{}/retirement", Self::version_path(name, version)),
            &body,
        )
        .await
    }

    /// `POST /v1/models/{name}/versions/{version}/retirement/confirmation`
    pub async fn confirm_retirement(
        &self,
        name: &str,
        version: u32,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<Value> {
        let mut body = json!({"decision": if approve { "approve" } else { "reject" }});
        if let Some(c) = comment {
            body["comment"] = json!(c);
        }
        self.post(
            &format!(
                "{}/retirement/confirmation",
                Self::version_path(name, version)
            ),
            &body,
        )
        .await
    }

    /// `GET /v1/models/{name}/production?at=`
    pub async fn production(&self, name: &str, at: Option<DateTime<Utc>>) -> Result<Value> {
        let path = format!("/v1/models/{}/production", path_segment(name));
        match at {
            Some(t) => {
                let at = t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                self.get_query(&path, &[("at", at)]).await
            }
            None => self.get(&path).await,
        }
    }

    /// `GET /v1/audit?model=&after=&limit=`
    pub async fn audit_events(
        &self,
        model: Option<&str>,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Value> {
        let mut q: Vec<(&str, String)> = vec![("after", after.to_string())];
        if let Some(m) = model {
            q.push(("model", m.to_owned()));
        }
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        self.get_query("/v1/audit", &q).await
    }

    /// `GET /v1/audit/checkpoint`
    pub async fn audit_checkpoint(&self) -> Result<Value> {
        self.get("/v1/audit/checkpoint").await
    }

    /// `GET /v1/audit/proof/{seq}`
    pub async fn audit_proof(&self, seq: u64) -> Result<Value> {
        self.get(&format!("/v1/audit/proof/{seq}")).await
    }

    /// `GET /v1/audit/consistency?first=&second=`
    pub async fn audit_consistency(&self, first: u64, second: Option<u64>) -> Result<Value> {
        let mut q = vec![("first", first)];
        if let Some(s) = second {
            q.push(("second", s));
        }
        self.get_query("/v1/audit/consistency", &q).await
    }

    /// `GET /v1/principals`
    pub async fn principals(&self) -> Result<Value> {
        self.get("/v1/principals").await
    }

    /// `PUT /v1/principals/{id}`
    pub async fn set_roles(&self, id: &str, roles: &[Role]) -> Result<Value> {
        self.send(
            self.request(Method::PUT, &format!("/v1/principals/{}", path_segment(id)))
                .json(&json!({"roles": roles})),
        )
        .await
    }
}

impl Client {
    /// `GET /v1/webhooks`
    pub async fn webhooks(&self) -> Result<Value> {
        self.get("/v1/webhooks").await
    }

    /// `GET /v1/webhooks/{id}`
    pub async fn webhook(&self, id: &str) -> Result<Value> {
        self.get(&format!("/v1/webhooks/{}", path_segment(id)))
            .await
    }

    /// `PUT /v1/webhooks/{id}`
    pub async fn put_webhook(&self, id: &str, body: &Value) -> Result<Value> {
        self.send(
            self.request(Method::PUT, &format!("/v1/webhooks/{}", path_segment(id)))
                .json(body),
        )
        .await
    }

    /// `DELETE /v1/webhooks/{id}`
    pub async fn delete_webhook(&self, id: &str) -> Result<Value> {
        self.send(self.request(
            Method::DELETE,
            &format!("/v1/webhooks/{}", path_segment(id)),
        ))
        .await
    }

    /// `GET /v1/webhooks/{id}/deliveries`
    pub async fn webhook_deliveries(&self, id: &str, limit: usize) -> Result<Value> {
        self.get_query(
            &format!("/v1/webhooks/{}/deliveries", path_segment(id)),
            &[("limit", limit)],
        )
        .await
    }
}

/// The query of a list filtered by status and paged: only the parameters given.
fn status_page(
    status: Option<&str>,
    cursor: Option<&str>,
    limit: Option<usize>,
) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(s) = status {
        q.push(("status", s.to_owned()));
    }
    if let Some(c) = cursor {
        q.push(("cursor", c.to_owned()));
    }
    if let Some(l) = limit {
        q.push(("limit", l.to_string()));
    }
    q
}
