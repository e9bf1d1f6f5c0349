//! Serious incidents (EU AI Act Art. 73): classification, the reporting clock, the report and
//! its reminder.
//!
//! Invariants:
//! - Only compliance reviewers classify an incident or record its report. An incident is
//!   classified once, and never once it is closed (both 409).
//! - The report is due the category's period (policy `[serious_incidents]`: 10 days for a
//!   death, 2 for a widespread infringement or critical infrastructure, 15 otherwise) after the
//!   classification. The incident carries `report_due` and `classification`.
//! - The classification commit also lists the incident on its version
//!   (`ModelVersion::serious_incidents`): while it is listed, the version may not be retired,
//!   rolled back from, re-promoted or have its card revised ([`refuse_under_investigation`]),
//!   checked from the version record the action reads anyway.
//! - An incident closes (`resolved`, with its resolution) by an operator or a compliance
//!   reviewer; a serious one only by a compliance reviewer and only once its report is
//!   recorded. Closing takes it off its version in the same commit, which unfreezes it.
//! - `SeriousIncidentReportDue` is emitted once per incident, when its report is due within
//!   two days (or overdue) and none is recorded; the incident records that it was sent.

use serde::Deserialize;

use super::*;

/// How long before `report_due` the reminder goes out.
const REMINDER_LEAD_DAYS: i64 = 2;
/// How many reminders one tick sends at most (the rest on the next tick).
const REMINDERS_PER_TICK: usize = 100;
/// The system principal that sends reminders (`system:serious-incidents`).
pub const SERIOUS_INCIDENTS_ACTOR: &str = "serious-incidents";

/// A classification as posted: `{"severity": "serious", "category": ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationInput {
    pub severity: IncidentSeverity,
    pub category: SeriousIncidentCategory,
}

impl ClassificationInput {
    /// Parses a body, naming every bad field (unknown fields included).
    pub fn parse(body: Value) -> Result<Self, GovError> {
        let Value::Object(map) = body else {
            return Err(GovError::field("", "must be a JSON object"));
        };
        let mut errors = Vec::new();
        for key in map.keys() {
            if key != "severity" && key != "category" {
                errors.push(FieldError::new(key.clone(), "unknown field"));
            }
        }
        let severity = match map.get("severity") {
            None => {
                errors.push(FieldError::new("severity", "is required"));
                None
            }
            Some(v) => IncidentSeverity::deserialize(v).ok().or_else(|| {
                errors.push(FieldError::new("severity", "must be \"serious\""));
                None
            }),
        };
        let category = match map.get("category") {
            None => {
                errors.push(FieldError::new("category", "is required"));
                None
            }
            Some(v) => SeriousIncidentCategory::deserialize(v).ok().or_else(|| {
                errors.push(FieldError::new(
                    "category",
                    "must be one of: death, infringement, critical_infrastructure, other",
                ));
                None
            }),
        };
        match (severity, category) {
            (Some(severity), Some(category)) if errors.is_empty() => {
                Ok(Self { severity, category })
            }
            _ => Err(GovError::Validation(errors)),
        }
    }
}

/// A report submission as posted: `{"reference", "submitted_at"?}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportInput {
    reference: String,
    #[serde(default)]
    submitted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseInput {
    resolution: String,
}

/// The refusal of an action that alters a version while a serious incident on it is open.
pub(crate) fn refuse_under_investigation(v: &ModelVersion) -> Result<(), GovError> {
    match v.serious_incidents.first() {
        Some(id) => Err(GovError::Conflict(format!(
            "Art. 73: the version involved may not be altered while serious incident {id} is under investigation"
        ))),
        None => Ok(()),
    }
}

impl Governance {
    /// The reporting period of a category under the policy.
    fn report_period(&self, category: SeriousIncidentCategory) -> ChronoDuration {
        let p = &self.policy.serious_incidents;
        let d = match category {
            SeriousIncidentCategory::Death => p.death,
            SeriousIncidentCategory::Infringement => p.infringement,
            SeriousIncidentCategory::CriticalInfrastructure => p.critical_infrastructure,
            SeriousIncidentCategory::Other => p.other,
        };
        ChronoDuration::from_std(d).unwrap_or(ChronoDuration::days(15))
    }

    async fn load_incident(&self, id: &str) -> Result<Incident, GovError> {
        let id = IncidentId::parse(id)?;
        self.registry
            .incident(id.as_ref())
            .await?
            .ok_or_else(|| GovError::NotFound(format!("no incident {id}")))
    }

    /// The write that lists `incident` on its version (`listed`) or takes it off, when that
    /// changes anything; a version that no longer exists has nothing to freeze or free.
    async fn list_on_version(
        &self,
        incident: &Incident,
        listed: bool,
    ) -> Result<Option<Put>, GovError> {
        let Some(n) = incident.version else {
            return Ok(None);
        };
        let Some(mut v) = self.registry.version(&incident.name, n).await? else {
            return Ok(None);
        };
        if v.serious_incidents.contains(&incident.id) == listed {
            return Ok(None);
        }
        if listed {
            v.serious_incidents.push(incident.id.clone());
        } else {
            v.serious_incidents.retain(|i| i != &incident.id);
        }
        let expected = v.revision;
        v.revision += 1;
        Ok(Some(Put::Version(v, Expect::Revision(expected))))
    }

    /// Classifies an incident as serious (compliance reviewers only): starts the reporting
    /// clock and freezes the version involved until the incident closes.
    pub async fn classify_incident(
        &self,
        caller: &Caller,
        incident_id: &str,
        body: Value,
    ) -> Result<Incident, GovError> {
        require_role(caller, &[Role::ComplianceReviewer], "classifying incidents")?;
        let input = ClassificationInput::parse(body)?;
        let incident = self.load_incident(incident_id).await?;
        if incident.status != IncidentStatus::Open {
            return Err(GovError::Conflict(format!(
                "incident {} is closed: it can no longer be classified",
                incident.id
            )));
        }
        if let Some(c) = &incident.serious.classification {
            return Err(GovError::Conflict(format!(
                "incident {} was already classified by {} at {}",
                incident.id,
                c.classified_by,
                c.classified_at.to_rfc3339()
            )));
        }
        let now = self.now();
        let report_due = now + self.report_period(input.category);
        let mut changed = incident.clone();
        changed.serious.classification = Some(Classification {
            severity: input.severity,
            category: input.category,
            classified_by: caller.id.clone(),
            classified_at: now,
            report_due,
        });
        changed.serious.report_due = Some(report_due);
        changed.revision = incident.revision + 1;
        let mut commit = Commit {
            puts: vec![Put::IncidentChange(
                changed.clone(),
                Expect::Revision(incident.revision),
            )],
            ..Commit::default()
        };
        commit
            .puts
            .extend(self.list_on_version(&incident, true).await?);
        commit.audit.push(self.draft(
            caller,
            "incident.classified",
            Some(&incident.name),
            incident.version,
            json!({
                "incident_id": incident.id, "severity": input.severity,
                "category": input.category, "report_due": report_due,
            }),
        ));
        commit.events.push(Self::event(SeriousIncidentClassified {
            incident_id: incident.id.clone(),
            name: incident.name.clone(),
            version: incident.version,
            category: input.category,
            classified_by: caller.id.clone(),
            classified_at: now,
            report_due,
        })?);
        self.registry.commit(commit).await.map_err(lost_race)?;
        Ok(changed)
    }

    /// Records that a serious incident's report was submitted (compliance reviewers only):
    /// no reminder is sent after it.
    pub async fn record_incident_report(
        &self,
        caller: &Caller,
        incident_id: &str,
        body: Value,
    ) -> Result<Incident, GovError> {
        require_role(
            caller,
            &[Role::ComplianceReviewer],
            "recording incident reports",
        )?;
        let input: ReportInput = from_value(body)?;
        let reference = non_empty("reference", &input.reference)?;
        let now = self.now();
        let submitted_at = input.submitted_at.unwrap_or(now);
        if submitted_at > now {
            return Err(GovError::field("submitted_at", "must not be in the future"));
        }
        let incident = self.load_incident(incident_id).await?;
        if incident.serious.classification.is_none() {
            return Err(GovError::Conflict(format!(
                "incident {} is not classified as serious: it has no report to record",
                incident.id
            )));
        }
        if let Some(r) = &incident.serious.report {
            return Err(GovError::Conflict(format!(
                "the report of incident {} was already recorded (reference {})",
                incident.id, r.reference
            )));
        }
        let mut changed = incident.clone();
        changed.serious.report = Some(IncidentReport {
            reference: reference.clone(),
            submitted_at,
            recorded_by: caller.id.clone(),
            recorded_at: now,
        });
        changed.revision = incident.revision + 1;
        let audit = self.draft(
            caller,
            "incident.report_submitted",
            Some(&incident.name),
            incident.version,
            json!({
                "incident_id": incident.id, "reference": reference,
                "submitted_at": submitted_at, "report_due": incident.serious.report_due,
            }),
        );
        self.registry
            .commit(Commit {
                puts: vec![Put::IncidentChange(
                    changed.clone(),
                    Expect::Revision(incident.revision),
                )],
                audit: vec![audit],
                ..Commit::default()
            })
            .await
            .map_err(lost_race)?;
        Ok(changed)
    }

    /// Closes an open incident with its resolution (`{"resolution": "..."}`); a serious one
    /// only by a compliance reviewer after its report is recorded, and its version is then
    /// free to change again.
    pub async fn close_incident(
        &self,
        caller: &Caller,
        incident_id: &str,
        body: Value,
    ) -> Result<Incident, GovError> {
        require_role(
            caller,
            &[Role::Operator, Role::ComplianceReviewer],
            "closing incidents",
        )?;
        let input: CloseInput = from_value(body)?;
        let resolution = non_empty("resolution", &input.resolution)?;
        let incident = self.load_incident(incident_id).await?;
        if incident.status != IncidentStatus::Open {
            return Err(GovError::Conflict(format!(
                "incident {} is already closed",
                incident.id
            )));
        }
        if incident.serious.classification.is_some() {
            require_role(
                caller,
                &[Role::ComplianceReviewer],
                "closing a serious incident",
            )?;
            if incident.serious.report.is_none() {
                return Err(GovError::Conflict(format!(
                    "serious incident {} has no report recorded: record the report (POST /v1/incidents/{}/report) before closing it",
                    incident.id, incident.id
                )));
            }
        }
        let changed = incident.closed(resolution.clone(), caller.id.clone(), self.now());
        let mut commit = Commit {
            puts: vec![Put::IncidentChange(
                changed.clone(),
                Expect::Revision(incident.revision),
            )],
            ..Commit::default()
        };
        commit
            .puts
            .extend(self.list_on_version(&incident, false).await?);
        commit.audit.push(self.draft(
            caller,
            "incident.closed",
            Some(&incident.name),
            incident.version,
            json!({
                "incident_id": incident.id, "resolution": resolution,
                "serious": incident.serious.classification.is_some(),
            }),
        ));
        self.registry.commit(commit).await.map_err(lost_race)?;
        Ok(changed)
    }

    /// Emits `SeriousIncidentReportDue` for each serious incident whose report is due within
    /// two days of `now` (or overdue) with none recorded, once per incident. Returns the
    /// incidents reminded. Called by the workflow tick.
    pub async fn serious_incident_reminders(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<Incident>, GovError> {
        let caller = Caller::system(SERIOUS_INCIDENTS_ACTOR);
        let before = now + ChronoDuration::days(REMINDER_LEAD_DAYS);
        let due = self
            .registry
            .serious_reports_due(before, REMINDERS_PER_TICK)
            .await?;
        let mut sent = Vec::new();
        for incident in due {
            let (Some(c), Some(report_due)) = (
                incident.serious.classification.as_ref(),
                incident.serious.report_due,
            ) else {
                continue;
            };
            let mut changed = incident.clone();
            changed.serious.reminder_sent_at = Some(now);
            changed.revision = incident.revision + 1;
            let commit = Commit {
                puts: vec![Put::IncidentChange(
                    changed.clone(),
                    Expect::Revision(incident.revision),
                )],
                audit: vec![self.draft(
                    &caller,
                    "incident.report_reminded",
                    Some(&incident.name),
                    incident.version,
                    json!({"incident_id": incident.id, "report_due": report_due}),
                )],
                events: vec![Self::event(SeriousIncidentReportDue {
                    incident_id: incident.id.clone(),
                    name: incident.name.clone(),
                    version: incident.version,
                    category: c.category,
                    report_due,
                })?],
                ..Commit::default()
            };
            match self.registry.commit(commit).await {
                Ok(_) => sent.push(changed),
                // Someone changed it meanwhile (a report, a concurrent tick): the next tick
                // decides on its fresh state.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(sent)
    }
}
