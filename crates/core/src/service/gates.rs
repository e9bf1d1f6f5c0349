//! Gates: whether a version may be deployed to an environment, with every reason it may not:
//! approval, evaluation thresholds, the checks policy requires (their latest reports, so a
//! failing re-report closes the gate), fairness limits and, for production, readiness.
//!
//! The same rules decide promotions (`promotions.rs`), deployments (`deployment.rs`) and
//! replacements at retirement (`retirement.rs`), so a gate that says "allowed" never
//! disagrees with the action it gates. For production, change control (`changes.rs`) is asked
//! too, when a deployment attaches it.

use super::*;

/// The answer of a deployment gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    pub allowed: bool,
    pub reasons: Vec<String>,
}

impl Governance {
    /// Whether the evaluations meet the thresholds; returns the reasons they do not.
    pub(super) fn threshold_reasons(&self, v: &ModelVersion, staging_only: bool) -> Vec<String> {
        let thresholds = self.policy.thresholds_for(v.risk_tier, &v.card);
        let candidates: Vec<&Evaluation> = v
            .evaluations
            .iter()
            .filter(|e| !staging_only || e.result.environment == Some(Environment::Staging))
            .collect();
        if candidates.is_empty() {
            return vec![if staging_only {
                "no evaluation recorded on staging test data (POST an evaluation with \"environment\": \"staging\")".to_owned()
            } else {
                "no evaluation results recorded".to_owned()
            }];
        }
        // The version passes if one evaluation meets every threshold; otherwise report the
        // closest one's shortfalls.
        let best = candidates
            .iter()
            .map(|e| {
                (
                    e.result.name.as_str(),
                    unmet_thresholds(&e.result.metrics, &thresholds),
                )
            })
            .min_by_key(|(_, unmet)| unmet.len());
        match best {
            Some((_, unmet)) if unmet.is_empty() => vec![],
            Some((name, unmet)) => unmet
                .into_iter()
                .map(|u| format!("evaluation {name:?}: {u}"))
                .collect(),
            None => vec![],
        }
    }

    /// The production readiness rules every production promotion and deployment must meet.
    pub(super) fn production_readiness(&self, v: &ModelVersion) -> Vec<String> {
        let mut reasons = self.threshold_reasons(v, true);
        reasons.extend(self.check_reasons(v, Environment::Production));
        reasons.extend(self.fairness_reasons(v.risk_tier, &v.card));
        let mon = &v.card.operational.monitoring;
        if mon.quality.is_empty() {
            reasons.push(
                "the model card has no quality thresholds (card.operational.monitoring.quality)"
                    .into(),
            );
        }
        if mon.drift.is_empty() {
            reasons.push(
                "the model card has no drift thresholds (card.operational.monitoring.drift)".into(),
            );
        }
        if v.card.rollback.procedure.trim().is_empty() {
            reasons.push(
                "the model card documents no rollback procedure (card.rollback.procedure)".into(),
            );
        }
        if let Some(within) = self.policy.tier(v.risk_tier).rollback_tested_within {
            let limit = self.now().date_naive() - ChronoDuration::seconds(within.as_secs() as i64);
            match v.card.rollback.last_tested {
                Some(d) if d >= limit => {}
                Some(d) => reasons.push(format!("the rollback procedure was last tested on {d}; policy requires a test since {limit}")),
                None => reasons.push("policy requires a tested rollback procedure (card.rollback.last_tested)".into()),
            }
        }
        reasons
    }

    pub(super) fn gate_reasons(&self, v: &ModelVersion, env: Environment) -> Vec<String> {
        let mut reasons = Vec::new();
        if v.stage == Stage::Retired {
            reasons.push(format!("version {} is retired", v.version));
            return reasons;
        }
        reasons.extend(pending_retirement_reason(v));
        if !v.approved_for(env) {
            reasons.push(format!("version {} is not approved for {env}", v.version));
        }
        match env {
            Environment::Staging => {
                reasons.extend(self.threshold_reasons(v, false));
                reasons.extend(self.check_reasons(v, Environment::Staging));
                reasons.extend(self.fairness_reasons(v.risk_tier, &v.card));
            }
            Environment::Production => reasons.extend(self.production_readiness(v)),
        }
        reasons
    }

    /// For CI/CD pipelines: may this version be deployed to `env` now?
    pub async fn gate(
        &self,
        name: &str,
        version: VersionNumber,
        env: Environment,
    ) -> Result<GateResult, GovError> {
        let name = ModelName::parse(name)?;
        let v = self.load_version(&name, version).await?;
        let mut reasons = self.gate_reasons(&v, env);
        if env == Environment::Production && v.stage != Stage::Retired {
            let change = self.change_check(&name, version).await;
            reasons.extend(change.reason().map(str::to_owned));
        }
        Ok(GateResult {
            allowed: reasons.is_empty(),
            reasons,
        })
    }
}

/// Why a version with a pending retirement request goes nowhere new: the request was made to
/// take it out of service, so neither a promotion nor a deployment may race its confirmation.
/// The version moves again once the request ends (refused, timed out or withdrawn).
pub(super) fn pending_retirement_reason(v: &ModelVersion) -> Option<String> {
    v.pending_retirement.as_ref().map(|p| {
        format!(
            "version {} has a pending retirement request ({}); it may be promoted or deployed once the request ends",
            v.version, p.id
        )
    })
}
