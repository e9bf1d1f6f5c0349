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
        Ok(self
            .registry
            .idempotency(&retraining_key(incident_id))
            .await?
            .map(|r| r.response))
    }

    /// Records (audited as `retraining.started` by `system:retraining`) that `pipeline`
    /// started `execution_arn` for the drift incident `incident_id` of `name` `version`.
    /// Returns `false` when the incident already has a record.
    pub async fn record_retraining_started(
        &self,
        name: &str,
        version: u32,
        incident_id: &str,
        pipeline: &str,
        execution_arn: &str,
    ) -> Result<bool, GovError> {
        let name = ModelName::parse(name)?;
        let incident_id = non_empty("incident_id", incident_id)?;
        let response = json!({"pipeline": pipeline, "execution_arn": execution_arn});
        let key = retraining_key(&incident_id);
        let commit = Commit {
            audit: vec![self.draft(
                &PrincipalId::system(ACTOR),
                "retraining.started",
                Some(&name),
                Some(version),
                json!({"incident_id": incident_id, "pipeline": pipeline, "execution_arn": execution_arn}),
            )],
            idempotency: Some(IdempotencyRecord {
                key,
                request_sha256: Sha256::digest(incident_id.as_bytes()),
                status: 200,
                response,
                at: self.now(),
            }),
            ..Commit::default()
        };
        match self.registry.commit(commit).await {
            Ok(_) => Ok(true),
            Err(StoreError::IdempotencyKeyTaken) => Ok(false),
            Err(e) => Err(conflict(e)),
        }
    }
}
