//! Reviews policy decides itself (`automatic_reviews`).
//!
//! Invariants:
//! - Policy approves a review only of a stage its tier marks automatic, never a human-only
//!   one (every stage of the high tier, compliance anywhere: `Policy::is_automatic`), and only
//!   when every rule of the promotion's target holds for the version now: the evaluation
//!   thresholds, the required checks and the fairness limits (for production, all of
//!   production readiness). Policy never rejects: a rule that does not hold leaves the review
//!   to wait for evidence or a human.
//! - It decides as the principal `policy` through the same commit as a human decision
//!   (`reviews.rs`), with the policy's digest and the evidence it relied on in the audit event
//!   (`details.automatic`, `details.policy`); the approval it completes is marked automatic,
//!   so a later failing required check withdraws it (`checks.rs`).
//! - It decides when the promotion is requested and when new evidence arrives (a check, an
//!   evaluation); a decision that loses a race is simply taken again next time.

use super::reviews::Decided;
use super::*;

impl Governance {
    /// Why policy may not decide `v`'s reviews for `target` now (empty: it may).
    pub(super) fn automation_blockers(&self, v: &ModelVersion, target: Environment) -> Vec<String> {
        let mut reasons: Vec<String> = gates::pending_retirement_reason(v).into_iter().collect();
        match target {
            Environment::Staging => {
                reasons.extend(self.threshold_reasons(v, false));
                reasons.extend(self.check_reasons(v, Environment::Staging));
                reasons.extend(self.fairness_reasons(v.risk_tier, &v.card));
            }
            Environment::Production => reasons.extend(self.production_readiness(v)),
        }
        reasons
    }

    /// What an automatic decision relied on, for its audit event: the policy's digest, the
    /// evaluations, the required checks' reports and the fairness limits it applied.
    fn automation_evidence(
        &self,
        v: &ModelVersion,
        target: Environment,
    ) -> Result<Value, GovError> {
        let required = self.policy.required_checks(v.risk_tier, target);
        let checks: Vec<&crate::checks::CheckResult> = required
            .iter()
            .filter_map(|r| r.latest(&v.checks))
            .collect();
        let evaluations: Vec<Value> = v
            .evaluations
            .iter()
            .map(|e| {
                json!({
                    "name": e.result.name, "environment": e.result.environment,
                    "metrics": e.result.metrics, "dataset_sha256": e.result.dataset.sha256,
                })
            })
            .collect();
        Ok(json!({
            "digest": self.policy.digest()?,
            "rules": "evaluation thresholds, required checks and fairness limits of the target all hold",
            "thresholds": self.policy.thresholds_for(v.risk_tier, &v.card),
            "required_checks": required,
            "checks": checks,
            "evaluations": evaluations,
            "fairness": self.policy.fairness_for(v.risk_tier).collect::<Vec<_>>(),
        }))
    }

    /// Decides, as `policy`, every pending review of `p` that policy may decide now; returns
    /// the promotion as it stands after.
    pub(super) async fn decide_automatic(
        &self,
        mut p: Promotion,
        mut v: ModelVersion,
    ) -> Result<Promotion, GovError> {
        let policy = Caller::new(PrincipalId::policy(), Vec::new(), AuthMethod::System);
        loop {
            if p.status != PromotionStatus::InReview {
                return Ok(p);
            }
            let Some(idx) = p.reviews.iter().position(|r| {
                r.status == ReviewStatus::Pending && self.policy.is_automatic(p.risk_tier, r.stage)
            }) else {
                return Ok(p);
            };
            if !self.automation_blockers(&v, p.target).is_empty() {
                return Ok(p);
            }
            let evidence = self.automation_evidence(&v, p.target)?;
            let decided = Decided {
                decision: Decision::Approve,
                comment: Some(format!(
                    "approved by policy: every rule of {} holds",
                    p.target
                )),
                conditions: vec![],
                policy: Some(evidence),
            };
            let (name, version) = (p.name.clone(), p.version);
            p = self.commit_decision(&policy, p, idx, v, decided).await?;
            v = self.load_version(&name, version).await?;
        }
    }

    /// After new evidence for a version: decides its open promotion's automatic reviews whose
    /// rules now hold. Nothing open, nothing automatic, rules unmet: nothing happens.
    pub(super) async fn decide_automatic_reviews(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<(), GovError> {
        let v = self.load_version(name, version).await?;
        let Some(open) = v.open_promotion.clone() else {
            return Ok(());
        };
        let Some(p) = self.registry.promotion(&open).await? else {
            return Ok(());
        };
        let automatic = p.reviews.iter().any(|r| {
            r.status == ReviewStatus::Pending && self.policy.is_automatic(p.risk_tier, r.stage)
        });
        if automatic {
            self.decide_automatic(p, v).await?;
        }
        Ok(())
    }
}
