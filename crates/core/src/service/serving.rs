//! The serving inventory: platforms report what each endpoint serves; Steward matches it to
//! the registry and opens one `shadow_model` incident per endpoint and finding.
//!
//! Invariants:
//! - Reports come from operators (and admins); the reporter is the caller, never the body.
//! - Idempotent: a report no newer than the endpoint's record, saying the same, writes
//!   nothing; a newer one saying the same moves `observed_at` only (no audit event). Only a
//!   change (a new endpoint, another artifact, another outcome, stopping) is audited
//!   (`serving.reported`).
//! - Anything but `governed` is a finding: it opens a `shadow_model` incident and emits
//!   `ShadowModelDetected` once, when it first appears for the endpoint; a finding closes (its
//!   incident resolved) when the endpoint stops serving the artifact, serves another, or it
//!   becomes governed.
//! - Requests per report: the record, the versions with the artifact's hash or URI (an index,
//!   never a scan), one batch read of them and their models, the open incident when one
//!   closes, and one commit.

use super::*;
use crate::serving::{classify, Outcome, ServingRecord, ServingReport};

impl Governance {
    /// Records one serving report (see the module's invariants).
    pub async fn report_serving(
        &self,
        caller: &Caller,
        body: Value,
    ) -> Result<ServingRecord, GovError> {
        require_role(
            caller,
            &[Role::Operator, Role::Admin],
            "reporting what serves",
        )?;
        let report = ServingReport::parse(body, self.now())?;
        let mut attempt = 0;
        loop {
            match self.try_report_serving(caller, &report).await {
                Err(GovError::Store(StoreError::Conflict(_))) if attempt < 4 => {
                    attempt += 1;
                    self.back_off(attempt).await;
                }
                other => return other,
            }
        }
    }

    async fn try_report_serving(
        &self,
        caller: &Caller,
        r: &ServingReport,
    ) -> Result<ServingRecord, GovError> {
        let key = r.key();
        let existing = self.registry.serving(&key).await?;
        if let Some(e) = &existing {
            let same = e.artifact == r.artifact && e.stopped_at.is_some() == r.stopped;
            if r.observed_at < e.observed_at || (same && r.observed_at == e.observed_at) {
                return Ok(e.clone());
            }
        }
        if r.stopped && existing.is_none() {
            return Err(GovError::NotFound(format!(
                "no endpoint {} has been reported, so none stopped",
                r.key()
            )));
        }
        let now = self.now();
        let (outcome, matched, reason) = if r.stopped {
            match &existing {
                Some(e) => (e.outcome, e.model.clone().zip(e.version), e.reason.clone()),
                None => (Outcome::Unregistered, None, "reported stopped".to_owned()),
            }
        } else {
            let refs = self
                .registry
                .versions_with_artifact(r.artifact.sha256.as_ref(), &r.artifact.uri)
                .await?;
            let mut keys: Vec<Key> = refs
                .iter()
                .map(|v| Key::Version(v.name.clone(), v.version))
                .collect();
            let mut names: Vec<ModelName> = refs.iter().map(|v| v.name.clone()).collect();
            names.sort();
            names.dedup();
            keys.extend(names.into_iter().map(Key::Model));
            let fetched = if keys.is_empty() {
                Fetched::default()
            } else {
                self.registry.get_many(&keys).await?
            };
            let mut candidates = Vec::new();
            for v in &refs {
                if let (Some(m), Some(ver)) = (
                    fetched.models.get(&v.name),
                    fetched.versions.get(&(v.name.clone(), v.version)),
                ) {
                    candidates.push((m.clone(), ver.clone()));
                }
            }
            candidates.sort_by(|a, b| (&a.1.name, a.1.version).cmp(&(&b.1.name, b.1.version)));
            let (o, m, mut why) = classify(&r.artifact, r.environment, &candidates);
            // Record against reality: what the platform says it serves is checked, not used.
            if let Some(claimed) = &r.model {
                let same = m.as_ref().is_some_and(|v| {
                    v.name == *claimed && r.version.is_none_or(|n| n == v.version)
                });
                if !same {
                    let named = match r.version {
                        Some(n) => format!("{claimed} version {n}"),
                        None => claimed.to_string(),
                    };
                    why.push_str(&format!("; the platform says it serves {named}"));
                }
            }
            (o, m.map(|v| (v.name, v.version)), why)
        };

        let was_serving = existing.as_ref().filter(|e| e.stopped_at.is_none());
        let same_finding = was_serving.is_some_and(|e| {
            e.artifact == r.artifact && e.outcome == outcome && e.incident.is_some()
        });
        let mut puts = Vec::new();
        let mut events = Vec::new();
        let mut incident = was_serving.and_then(|e| e.incident.clone());
        let finding = !r.stopped && outcome != Outcome::Governed;
        // The open finding closes unless this report continues it.
        if let Some(open) = incident.clone().filter(|_| !(finding && same_finding)) {
            let why = if r.stopped {
                "the endpoint stopped serving it"
            } else if outcome == Outcome::Governed {
                "it became governed"
            } else {
                "the endpoint serves something else now"
            };
            if let Some(x) = self.registry.incident(&open).await? {
                if x.status == IncidentStatus::Open {
                    let mut changed = x.closed(why.to_owned(), caller.id.clone(), now);
                    changed.actions.push(format!("closed: {why}"));
                    puts.push(Put::IncidentChange(changed, Expect::Revision(x.revision)));
                }
            }
            incident = None;
        }
        if finding && !same_finding {
            let id = self.ids.id("inc");
            let (name, version) = match &matched {
                Some((n, v)) => (n.clone(), Some(*v)),
                None => (incident_model_name(&r.endpoint), None),
            };
            let summary = format!(
                "{} endpoint {} ({}) serves {}: {} — {reason}",
                r.platform,
                r.endpoint,
                r.environment,
                r.artifact.uri,
                outcome.as_str()
            );
            puts.push(Put::Incident(Incident {
                id: id.clone(),
                name: name.clone(),
                version,
                kind: IncidentKind::ShadowModel,
                metric: String::new(),
                value: None,
                threshold: None,
                subject: Some(r.key()),
                summary,
                status: IncidentStatus::Open,
                opened_at: now,
                opened_by: caller.id.clone(),
                actions: vec!["alerted".to_owned()],
                serious: Default::default(),
                resolution: None,
                revision: 0,
            }));
            events.push(Self::event(crate::events::ShadowModelDetected {
                package: None,
                serving: Some(crate::events::ServingFinding {
                    platform: r.platform.clone(),
                    environment: r.environment,
                    endpoint: r.endpoint.clone(),
                    artifact_uri: r.artifact.uri.clone(),
                    artifact_sha256: r.artifact.sha256,
                    outcome: outcome.as_str().to_owned(),
                    reason: reason.clone(),
                    version,
                }),
                incident_id: id.clone(),
                registered_model: matched.is_some(),
                name: Some(name),
            })?);
            incident = Some(id);
        }

        let (model, version) = match &matched {
            Some((n, v)) => (Some(n.clone()), Some(*v)),
            None => (None, None),
        };
        let changed = match &existing {
            None => true,
            Some(e) => {
                e.artifact != r.artifact
                    || e.outcome != outcome
                    || e.stopped_at.is_some() != r.stopped
                    || e.incident != incident
            }
        };
        let record = ServingRecord {
            platform: r.platform.clone(),
            environment: r.environment,
            endpoint: r.endpoint.clone(),
            artifact: r.artifact.clone(),
            claimed_model: r.model.clone(),
            claimed_version: r.version,
            outcome,
            reason: reason.clone(),
            model: model.clone(),
            version,
            incident: incident.clone(),
            first_seen_at: existing
                .as_ref()
                .filter(|e| e.artifact == r.artifact)
                .map_or(r.observed_at, |e| e.first_seen_at),
            observed_at: r.observed_at,
            reported_by: caller.id.clone(),
            stopped_at: r.stopped.then_some(r.observed_at),
            revision: existing.as_ref().map_or(1, |e| e.revision + 1),
        };
        let expect = match &existing {
            Some(e) => Expect::Revision(e.revision),
            None => Expect::Absent,
        };
        puts.push(Put::Serving(record.clone(), expect));
        let audit = if changed {
            vec![self.draft(
                caller,
                "serving.reported",
                model.as_ref(),
                version,
                json!({
                    "platform": r.platform, "environment": r.environment, "endpoint": r.endpoint,
                    "artifact": r.artifact, "outcome": outcome, "reason": reason,
                    "incident": incident, "stopped": r.stopped, "observed_at": r.observed_at,
                }),
            )]
        } else {
            vec![]
        };
        self.registry
            .commit(Commit {
                puts,
                audit,
                events,
                idempotency: None,
            })
            .await?;
        Ok(record)
    }

    /// Serving records by key (any authenticated caller with a role).
    pub async fn serving_records(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ServingRecord>, GovError> {
        require_some_role(caller, "reading the serving inventory")?;
        Ok(self
            .registry
            .serving_records(cursor, limit.clamp(1, 500))
            .await?)
    }

    /// After a full discovery of `platform`: every endpoint of it Steward knows as serving
    /// that `seen` does not list stopped serving (its finding closes). Returns how many.
    pub async fn serving_swept(
        &self,
        caller: &Caller,
        platform: &str,
        seen: &[String],
        at: DateTime<Utc>,
    ) -> Result<usize, GovError> {
        let records =
            every_page(|c| async move { self.registry.serving_records(c.as_deref(), 500).await })
                .await?;
        let gone: Vec<ServingRecord> = records
            .into_iter()
            .filter(|r| {
                r.platform == platform && r.stopped_at.is_none() && !seen.contains(&r.key())
            })
            .collect();
        for r in &gone {
            self.report_serving(
                caller,
                json!({
                    "platform": r.platform, "environment": r.environment, "endpoint": r.endpoint,
                    "artifact": r.artifact, "observed_at": at, "stopped": true,
                }),
            )
            .await?;
        }
        Ok(gone.len())
    }
}
