//! Monitoring signals: the card's thresholds applied to a reported metric value.
//!
//! Where signals come from: `POST /v1/signals` (an operator), and on AWS the `monitor`
//! function (CloudWatch alarms entering `ALARM`, `ModelMetricsReported` events), which calls
//! [`Governance::signal_once`] as the system principal `system:monitor` with the operator role
//! and the EventBridge event id as the idempotency key.
//!
//! Invariants:
//! - A drift value over the card's drift maximum opens an incident and emits
//!   `RetrainingRequested` (name, version, incident id, metric, value, threshold and the
//!   version's lineage training job: what a retraining consumer needs to start its pipeline).
//!   A quality value under the card's quality minimum opens an incident, alerts and, when the
//!   version serves production and the tier's policy has `auto_rollback`, rolls production
//!   back to the previous production version — all in one commit with their audit events.
//! - With an idempotency key, a delivery of the same signal again (EventBridge and SQS deliver
//!   at least once) returns the first outcome and writes nothing: one incident per event. The
//!   key is scoped to the caller (`<principal>/signal/<key>`); the same key with another
//!   signal is a conflict. The key, the version and its model are read in one batch.
//! - A signal without a kind (an alarm names only its metric) takes the kind of the card
//!   threshold on that metric: drift if the card has a drift maximum for it, else quality if
//!   it has a quality minimum; a metric the card sets no threshold for is a validation error
//!   (nothing is recorded).

use serde::Deserialize;

use super::*;

/// A monitoring signal as posted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalInput {
    pub model: ModelName,
    /// As posted: a 0 is answered like any version the model does not have (404), not refused
    /// as a malformed body, so it is made a [`VersionNumber`] only when the signal is applied.
    pub version: u32,
    pub kind: SignalKind,
    pub metric: String,
    pub value: f64,
}

/// What happened to a monitoring signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalOutcome {
    pub name: ModelName,
    pub version: VersionNumber,
    pub kind: SignalKind,
    pub metric: String,
    pub value: f64,
    pub threshold: Option<f64>,
    pub breached: bool,
    pub incident: Option<Incident>,
    pub actions: Vec<String>,
}

/// A monitoring signal as the AWS `monitor` function (or any internal caller) reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitoringSignal {
    pub model: ModelName,
    pub version: VersionNumber,
    /// `None`: the card decides (see the module docs).
    pub kind: Option<SignalKind>,
    pub metric: String,
    /// The observed values (at least one): an alarm reports every datapoint it evaluated.
    /// The signal's value is the worst of them for the card's threshold: the largest for
    /// drift, the smallest for quality.
    pub values: Vec<f64>,
}

impl TryFrom<SignalInput> for MonitoringSignal {
    type Error = GovError;

    /// A signal for version 0 is a 404, as for any version the model does not have.
    fn try_from(s: SignalInput) -> Result<Self, GovError> {
        Ok(Self {
            version: existing_version(s.model.as_ref(), s.version)?,
            model: s.model,
            kind: Some(s.kind),
            metric: s.metric,
            values: vec![s.value],
        })
    }
}

/// How many times a signal re-reads after a concurrent commit took its idempotency key.
const SIGNAL_ATTEMPTS: usize = 2;

impl Governance {
    /// Applies the card's thresholds to a monitoring signal.
    pub async fn signal(
        &self,
        caller: &Caller,
        input: SignalInput,
    ) -> Result<SignalOutcome, GovError> {
        // The role is checked before the version, as `signal_once` checks it.
        require_role(caller, &[Role::Operator], "reporting monitoring signals")?;
        Ok(self.signal_once(caller, input.try_into()?, None).await?.0)
    }

    /// Applies the card's thresholds to a monitoring signal, once per idempotency key. Returns
    /// the outcome and whether it is the replay of an earlier delivery (nothing written).
    pub async fn signal_once(
        &self,
        caller: &Caller,
        input: MonitoringSignal,
        idempotency_key: Option<&str>,
    ) -> Result<(SignalOutcome, bool), GovError> {
        require_role(caller, &[Role::Operator], "reporting monitoring signals")?;
        if input.values.is_empty() || input.values.iter().any(|v| !v.is_finite()) {
            return Err(GovError::field("value", "must be a finite number"));
        }
        let metric = non_empty("metric", &input.metric)?;
        let name = input.model.clone();
        let scoped_key = idempotency_key
            .map(IdempotencyKey::parse)
            .transpose()?
            .map(|k| format!("{}/signal/{k}", caller.id));
        let request = Sha256::digest(&canonical_json(&json!({
            "model": name, "version": input.version, "kind": input.kind, "metric": metric, "values": input.values,
        })));
        for attempt in 1..=SIGNAL_ATTEMPTS {
            let mut keys = vec![
                Key::Version(name.clone(), input.version),
                Key::Model(name.clone()),
            ];
            keys.extend(scoped_key.iter().map(|k| Key::Idempotency(k.clone())));
            let mut f = self.registry.get_many(&keys).await?;
            if let Some(rec) = scoped_key.as_deref().and_then(|k| f.idempotency(k)) {
                return Ok((replay_signal(rec, &request)?, true));
            }
            let v = f
                .versions
                .remove(&(name.clone(), input.version))
                .ok_or_else(|| not_found_version(&name, input.version))?;
            let model = f
                .models
                .remove(&name)
                .ok_or_else(|| not_found_model(&name))?;
            let kind = match input.kind {
                Some(k) => k,
                None => card_kind(&v.card, &metric).ok_or_else(|| {
                    GovError::field(
                        "metric",
                        format!(
                            "the model card of {name} version {} sets no drift or quality threshold for {metric}",
                            v.version
                        ),
                    )
                })?,
            };
            let worst = match kind {
                SignalKind::Drift => input.values.iter().copied().fold(f64::MIN, f64::max),
                SignalKind::Quality => input.values.iter().copied().fold(f64::MAX, f64::min),
            };
            let (mut commit, outcome) =
                self.signal_commit(caller, &v, &model, kind, &metric, worst)?;
            let response = GovError::to_json("a signal outcome", &outcome)?;
            commit.idempotency = scoped_key.as_ref().map(|key| IdempotencyRecord {
                key: key.clone(),
                request_sha256: request,
                status: 200,
                response,
                at: self.now(),
            });
            match self.registry.commit(commit).await {
                Ok(_) => return Ok((outcome, false)),
                // A concurrent delivery of the same signal committed first: replay it.
                Err(StoreError::IdempotencyKeyTaken) if attempt < SIGNAL_ATTEMPTS => continue,
                Err(e) => return Err(lost_race(e)),
            }
        }
        Err(GovError::Conflict(
            "a concurrent delivery of this signal is being recorded; retry".into(),
        ))
    }

    /// The commit (audit, incident, events, rollback) and the outcome of one signal.
    fn signal_commit(
        &self,
        caller: &Caller,
        v: &ModelVersion,
        model: &Model,
        kind: SignalKind,
        metric: &str,
        value: f64,
    ) -> Result<(Commit, SignalOutcome), GovError> {
        let name = v.name.clone();
        let mon = &v.card.operational.monitoring;
        let (threshold, breached) = match kind {
            SignalKind::Drift => match mon.drift.iter().find(|d| d.metric == metric) {
                Some(d) => (Some(d.max), value > d.max),
                None => (None, false),
            },
            SignalKind::Quality => match mon.quality.iter().find(|q| q.metric == metric) {
                Some(q) => (Some(q.min), value < q.min),
                None => (None, false),
            },
        };
        let now = self.now();
        let mut outcome = SignalOutcome {
            name: name.clone(),
            version: v.version,
            kind,
            metric: metric.to_owned(),
            value,
            threshold,
            breached,
            incident: None,
            actions: vec![],
        };
        let mut commit = Commit {
            audit: vec![self.draft(caller, "signal.recorded", Some(&name), Some(v.version), json!({
                "kind": kind, "metric": metric, "value": value, "threshold": threshold, "breached": breached,
            }))],
            ..Commit::default()
        };
        if breached {
            let incident_id = self.ids.id("inc");
            let mut actions = Vec::new();
            let threshold = threshold.unwrap_or_default();
            match kind {
                SignalKind::Drift => {
                    actions.push("retraining_requested".to_owned());
                    commit.audit.push(self.draft(caller, "retraining.requested", Some(&name), Some(v.version), json!({"incident_id": incident_id, "metric": metric, "value": value, "max": threshold})));
                    commit.events.push(Self::event(RetrainingRequested {
                        name: name.clone(),
                        version: v.version,
                        incident_id: incident_id.clone(),
                        metric: metric.to_owned(),
                        value,
                        threshold,
                        training_job: v.lineage.training_job.clone(),
                        retraining_pipeline: mon.retraining_pipeline.clone(),
                    })?);
                }
                SignalKind::Quality => {
                    actions.push("alerted".to_owned());
                    let serving = model.production_version == Some(v.version);
                    if serving && self.policy.tier(v.risk_tier).auto_rollback {
                        if let Some(to) = Self::rollback_target(model) {
                            let (puts, from) = self.rollback_puts(model, to, "automatic rollback");
                            commit.puts.extend(puts);
                            actions.push(format!("rolled_back_to:{to}"));
                            let reason =
                                format!("{metric} = {value} under the card's minimum {threshold}");
                            commit.audit.push(self.draft(caller, "model.rolled_back", Some(&name), Some(to), json!({"from": from, "to": to, "reason": reason, "automatic": true, "incident_id": incident_id})));
                            commit.events.push(Self::event(ModelRolledBack {
                                name: name.clone(),
                                // Serving was checked above: production is this version.
                                from_version: from.unwrap_or(v.version),
                                to_version: to,
                                reason,
                                automatic: true,
                                incident_id: Some(incident_id.clone()),
                            })?);
                        } else {
                            actions.push("no_rollback_target".to_owned());
                        }
                    }
                }
            }
            let incident = Incident {
                id: incident_id.clone(),
                name: name.clone(),
                version: Some(v.version),
                kind: kind.into(),
                metric: metric.to_owned(),
                value: Some(value),
                threshold: Some(threshold),
                subject: None,
                summary: String::new(),
                status: IncidentStatus::Open,
                opened_at: now,
                opened_by: caller.id.clone(),
                actions: actions.clone(),
                serious: Default::default(),
                resolution: None,
                revision: 0,
            };
            commit.audit.insert(1, self.draft(caller, "incident.opened", Some(&name), Some(v.version), json!({"incident_id": incident_id, "kind": kind, "metric": metric, "value": value, "threshold": threshold, "actions": actions})));
            commit.events.insert(
                0,
                Self::event(IncidentOpened {
                    incident_id: incident_id.clone(),
                    name: name.clone(),
                    version: v.version,
                    kind,
                    metric: metric.to_owned(),
                    value,
                    threshold,
                    actions: actions.clone(),
                })?,
            );
            commit.puts.push(Put::Incident(incident.clone()));
            outcome.incident = Some(incident);
            outcome.actions = actions;
        }
        Ok((commit, outcome))
    }
}

impl Governance {
    /// Incidents, of one model or all, a page at a time.
    pub async fn incidents(
        &self,
        name: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Incident>, GovError> {
        let name = name.map(ModelName::parse).transpose()?;
        Ok(self
            .registry
            .incidents(name.as_ref(), cursor, limit.clamp(1, 500))
            .await?)
    }
}

/// The kind of the card threshold set on `metric`: drift first, then quality.
pub fn card_kind(card: &ModelCard, metric: &str) -> Option<SignalKind> {
    let mon = &card.operational.monitoring;
    if mon.drift.iter().any(|d| d.metric == metric) {
        Some(SignalKind::Drift)
    } else if mon.quality.iter().any(|q| q.metric == metric) {
        Some(SignalKind::Quality)
    } else {
        None
    }
}

/// The outcome an idempotency record stored, if the delivery carries the same signal.
fn replay_signal(rec: &IdempotencyRecord, request: &Sha256) -> Result<SignalOutcome, GovError> {
    if rec.request_sha256 != *request {
        return Err(GovError::Conflict(
            "this idempotency key was used with a different signal".into(),
        ));
    }
    SignalOutcome::deserialize(&rec.response)
        .map_err(|e| GovError::Store(StoreError::backend("corrupt idempotency record", e)))
}
