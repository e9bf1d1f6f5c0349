//! Check reports from CI/CD and platform jobs, and what they change.
//!
//! Invariants:
//! - Only `ci` and `developer` principals report; the reporter is the caller, never the body.
//! - A report replaces the version's previous report of the same check and environment, in
//!   one commit with its audit event (`check.reported`) and `CheckReported`; with an
//!   `Idempotency-Key` a retry with the same body replays the first answer and writes nothing.
//! - Gates read the latest reports, so a failing re-report of a required check closes the gate
//!   at once; an approval policy gave (`Approval::automatic`) and not yet deployed is withdrawn
//!   in the same commit (`approval.withdrawn`, `ApprovalWithdrawn`).
//! - A passing report may complete the evidence an open promotion's automatic review waits
//!   for: policy then decides it (`automatic.rs`), after the report's commit.

use super::*;
use crate::checks::{CheckReport, CheckResult, CheckStatus};

const REPORT_ATTEMPTS: usize = 5;

impl Governance {
    /// Records a check report for a version; returns the stored result and whether it was a
    /// replay of an earlier request with the same idempotency key.
    pub async fn report_check(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> Result<(CheckResult, bool), GovError> {
        require_role(caller, &[Role::Ci, Role::Developer], "reporting a check")?;
        let name = ModelName::parse(name)?;
        let report = CheckReport::parse(&body)?;
        let request_sha256 = Sha256::digest(&canonical_json(&body));
        let scoped = idempotency_key
            .map(IdempotencyKey::parse)
            .transpose()?
            .map(|k| format!("{}/check/{name}/{version}/{k}", caller.id));
        for attempt in 0..REPORT_ATTEMPTS {
            let mut keys = vec![Key::Version(name.clone(), version)];
            keys.extend(scoped.iter().map(|k| Key::Idempotency(k.clone())));
            let mut f = self.registry.get_many(&keys).await?;
            if let Some(rec) = scoped.as_deref().and_then(|k| f.idempotency(k)) {
                if rec.request_sha256 != request_sha256 {
                    return Err(GovError::Conflict(
                        "this Idempotency-Key was used with a different request body".into(),
                    ));
                }
                let stored = serde_json::from_value(rec.response.clone()).map_err(|e| {
                    GovError::Store(StoreError::backend("corrupt idempotency record", e))
                })?;
                return Ok((stored, true));
            }
            let v = f
                .versions
                .remove(&(name.clone(), version))
                .ok_or_else(|| not_found_version(&name, version))?;
            if v.stage == Stage::Retired {
                return Err(GovError::Conflict(format!(
                    "version {version} is retired; it takes no more check reports"
                )));
            }
            let (result, commit) =
                self.check_commit(caller, v, &report, scoped.as_deref(), request_sha256)?;
            match self.registry.commit(commit).await {
                Ok(_) => {
                    if result.status == CheckStatus::Passed {
                        // The report stands whether or not policy can decide now; a decision
                        // that loses a race is taken again on the next evidence or request.
                        let _ = self.decide_automatic_reviews(&name, version).await;
                    }
                    return Ok((result, false));
                }
                Err(StoreError::Conflict(_)) => self.back_off(attempt).await,
                Err(StoreError::IdempotencyKeyTaken) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GovError::Contended(format!(
            "too many concurrent changes of {name} version {version}; retry"
        )))
    }

    /// The version with the report in place (and automatic approvals it breaks withdrawn),
    /// as one commit.
    fn check_commit(
        &self,
        caller: &Caller,
        mut v: ModelVersion,
        report: &CheckReport,
        scoped: Option<&str>,
        request_sha256: Sha256,
    ) -> Result<(CheckResult, Commit), GovError> {
        let now = self.now();
        let same = |c: &CheckResult| c.name == report.name && c.environment == report.environment;
        let reports = v.checks.iter().find(|c| same(c)).map_or(0, |c| c.reports) + 1;
        let result = CheckResult {
            name: report.name.clone(),
            status: report.status,
            environment: report.environment,
            metrics: report.metrics.clone(),
            evidence: report.evidence.clone(),
            details_url: report.details_url.clone(),
            reported_by: caller.id.clone(),
            reported_at: now,
            reports,
        };
        v.checks.retain(|c| !same(c));
        v.checks.push(result.clone());
        v.checks
            .sort_by(|a, b| (&a.name, a.environment).cmp(&(&b.name, b.environment)));
        let name = v.name.clone();
        let version = v.version;
        let mut audit = vec![self.draft(
            caller,
            "check.reported",
            Some(&name),
            Some(version),
            json!({
                "check": result.name, "status": result.status, "environment": result.environment,
                "metrics": result.metrics, "evidence": result.evidence,
                "details_url": result.details_url, "reports": reports,
            }),
        )];
        let mut events = vec![Self::event(CheckReported {
            name: name.clone(),
            version,
            check: result.name.clone(),
            status: result.status,
            environment: result.environment,
            reported_by: caller.id.clone(),
        })?];
        if result.status == CheckStatus::Failed {
            for a in self.withdraw_automatic_approvals(&mut v, &result) {
                audit.push(self.draft(
                    caller,
                    "approval.withdrawn",
                    Some(&name),
                    Some(version),
                    json!({
                        "environment": a.environment, "promotion_id": a.promotion_id,
                        "check": result.name, "reason": format!(
                            "required check {:?} failed after policy approved the promotion",
                            result.name.as_str()
                        ),
                    }),
                ));
                events.push(Self::event(ApprovalWithdrawn {
                    name: name.clone(),
                    version,
                    environment: a.environment,
                    promotion_id: a.promotion_id,
                    check: result.name.clone(),
                })?);
            }
        }
        let idempotency = match scoped {
            Some(key) => Some(IdempotencyRecord {
                key: key.to_owned(),
                request_sha256,
                status: 201,
                response: GovError::to_json("a check result", &result)?,
                at: now,
            }),
            None => None,
        };
        let prev = v.revision;
        v.revision += 1;
        Ok((
            result,
            Commit {
                puts: vec![Put::Version(v, Expect::Revision(prev))],
                audit,
                events,
                idempotency,
            },
        ))
    }

    /// Removes, and returns, the approvals policy gave whose target requires the failed check
    /// and which the version has not been deployed on since.
    fn withdraw_automatic_approvals(
        &self,
        v: &mut ModelVersion,
        failed: &CheckResult,
    ) -> Vec<Approval> {
        let required = |env: Environment| {
            self.policy
                .required_checks(v.risk_tier, env)
                .iter()
                .any(|r| r.latest(std::slice::from_ref(failed)).is_some())
        };
        let deployed_since = |a: &Approval| {
            v.deployments
                .iter()
                .any(|d| d.environment == a.environment && d.deployed_at >= a.approved_at)
        };
        let (withdrawn, kept): (Vec<Approval>, Vec<Approval>) = v
            .approvals
            .clone()
            .into_iter()
            .partition(|a| a.automatic && required(a.environment) && !deployed_since(a));
        v.approvals = kept;
        withdrawn
    }

    /// The version's latest check reports, by name and environment.
    pub async fn checks(
        &self,
        name: &str,
        version: VersionNumber,
    ) -> Result<Vec<CheckResult>, GovError> {
        let name = ModelName::parse(name)?;
        Ok(self.load_version(&name, version).await?.checks)
    }

    /// Why the version's checks do not meet what policy requires for `target` (empty: they do).
    pub(super) fn check_reasons(&self, v: &ModelVersion, target: Environment) -> Vec<String> {
        crate::policy::automation::check_reasons(
            self.policy.required_checks(v.risk_tier, target),
            &v.checks,
            &v.card,
        )
    }

    /// The reasons of [`Self::check_reasons`] that are checks not reported yet (rather than
    /// failed or out of bounds).
    pub(super) fn missing_check_reasons(
        &self,
        v: &ModelVersion,
        target: Environment,
    ) -> Vec<String> {
        let missing: Vec<_> = self
            .policy
            .required_checks(v.risk_tier, target)
            .iter()
            .filter(|r| r.latest(&v.checks).is_none())
            .cloned()
            .collect();
        crate::policy::automation::check_reasons(&missing, &v.checks, &v.card)
    }

    /// Why the card's per-group metrics break the tier's fairness limits (empty: they don't).
    pub(super) fn fairness_reasons(&self, tier: RiskTier, card: &ModelCard) -> Vec<String> {
        crate::policy::automation::fairness_violations(
            self.policy.fairness_for(tier),
            &card.fairness,
        )
    }
}
