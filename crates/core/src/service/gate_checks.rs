//! Gate answers given to CI/CD systems on Steward's behalf (a GitHub deployment protection
//! rule, say): the integration evaluates [`Governance::gate`] and records what it answered.
//!
//! Invariant: every answer an integration sends is audited before it is sent, as one
//! `gate.checked` event naming the source, the environment, the outcome and its reasons; a
//! request that named no model or version is audited too (without `name`/`version`).

use super::*;

/// One gate answer an integration gives a CI/CD system.
#[derive(Debug, Clone, PartialEq)]
pub struct GateCheck {
    /// The integration kind that asked, e.g. `github` (`details.source`).
    pub source: String,
    /// The model and version the request named, when it named valid ones.
    pub name: Option<ModelName>,
    pub version: Option<VersionNumber>,
    /// The Steward environment gated, when the request's environment maps to one.
    pub environment: Option<Environment>,
    pub allowed: bool,
    pub reasons: Vec<String>,
    /// What the vendor's request identified (repository, run, its own environment name,
    /// delivery id), kept as `details.context`.
    pub context: Value,
}

impl Governance {
    /// Audits `check` as `gate.checked`, acting as `caller` (the integration's identity).
    pub async fn record_gate_check(
        &self,
        caller: &Caller,
        check: &GateCheck,
    ) -> Result<(), GovError> {
        let details = json!({
            "source": check.source,
            "environment": check.environment,
            "allowed": check.allowed,
            "reasons": check.reasons,
            "context": check.context,
        });
        let commit = Commit {
            audit: vec![self.draft(
                caller,
                "gate.checked",
                check.name.as_ref(),
                check.version,
                details,
            )],
            ..Commit::default()
        };
        self.registry.commit(commit).await?;
        Ok(())
    }
}
