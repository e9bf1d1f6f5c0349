//! Retraining executions started for a drift incident, recorded in the audit log.
//!
//! Invariants:
//! - At most one record per incident: the record carries the idempotency key
//!   `system:retraining/retraining/<incident id>`, so a second record for the same incident
//!   (a redelivered `RetrainingRequested`) is refused by the store and reported as `false`.
//! - Recording changes no model or version: a retrained version still comes back through
//!   registration and every review of its tier.

use super::*;

const ACTOR: &str = "retraining";

fn retraining_key(incident_id: &str) -> String {
    format!("{}/retraining/{incident_id}", PrincipalId::system(ACTOR))
}

impl Governance {
    /// The execution recorded for `incident_id`, if one was: `{pipeline, execution_arn}`.
    pub async fn retraining_started(&self, incident_id: &str) -> Result<Option<Value>, GovError> {
        self.recorded(&retraining_key(incident_id)).await
    }

    /// Records (audited as `retraining.started` by `system:retraining`) that `pipeline`
    /// started `execution_arn` for the drift incident `incident_id` of `name` `version`.
    /// Returns `false` when the incident already has a record.
    pub async fn record_retraining_started(
        &self,
        name: &str,
        version: VersionNumber,
        incident_id: &str,
        pipeline: &str,
        execution_arn: &str,
    ) -> Result<bool, GovError> {
        let name = ModelName::parse(name)?;
        let incident_id = non_empty("incident_id", incident_id)?;
        let incident_id = IncidentId::parse(&incident_id)
            .map_err(|e| GovError::field("incident_id", e.message))?
            .to_string();
        let audit = self.draft(
            &Caller::system(ACTOR),
            "retraining.started",
            Some(&name),
            Some(version),
            json!({"incident_id": incident_id, "pipeline": pipeline, "execution_arn": execution_arn}),
        );
        self.record_once(
            audit,
            retraining_key(&incident_id),
            Sha256::digest(incident_id.as_bytes()),
            json!({"pipeline": pipeline, "execution_arn": execution_arn}),
        )
        .await
    }
}
