//! The documents tests send: the example manifest, staging evaluations, review decisions, and
//! the default policy with shorter durations.

use std::fmt;

use serde_json::{json, Value};
use steward_core::service::DecisionInput;
use steward_core::types::{Decision, RiskTier};

/// The example registration (`examples/credit-risk-v1.json`): a high-tier model.
pub const MANIFEST: &str = include_str!("../../../examples/credit-risk-v1.json");

/// The example manifest, parsed.
pub fn manifest() -> Value {
    serde_json::from_str(MANIFEST).expect("examples/credit-risk-v1.json is JSON")
}

/// The example manifest at another risk tier.
pub fn manifest_at(tier: RiskTier) -> Value {
    let mut m = manifest();
    m["risk_tier"] = json!(tier.as_str());
    m
}

/// The example manifest owned by `team`, at `tier`.
pub fn manifest_for(team: &str, tier: RiskTier) -> Value {
    let mut m = manifest_at(tier);
    m["owner"]["team"] = json!(team);
    m
}

/// A staging evaluation report for version `v` (`staging-shadow-v{v}`), as a production
/// promotion's gate wants one.
pub fn staging_evaluation(v: u32) -> Value {
    staging_evaluation_named(&format!("staging-shadow-v{v}"))
}

/// A staging evaluation report called `name`, its dataset `s3://acme-data/credit/{name}.parquet`.
pub fn staging_evaluation_named(name: &str) -> Value {
    json!({
        "name": name,
        "dataset": {
            "uri": format!("s3://acme-data/credit/{name}.parquet"),
            "sha256": "2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b"
        },
        "metrics": {"auc": 0.905, "accuracy": 0.869},
        "environment": "staging"
    })
}

/// An approval with no comment and no conditions.
pub fn approve() -> DecisionInput {
    decision(Decision::Approve)
}

/// A decision with no conditions; a rejection says why ("not ready").
pub fn decision(decision: Decision) -> DecisionInput {
    DecisionInput {
        decision,
        comment: (decision == Decision::Reject).then(|| "not ready".to_owned()),
        conditions: vec![],
    }
}

/// The default policy's tiers (their reviews, timeouts and periodic reviews) as a policy
/// file, with the durations a test shortens; `to_string()` gives the TOML
/// (`STEWARD_POLICY`, `Policy::from_toml`).
#[derive(Debug, Clone)]
pub struct TestPolicy {
    /// `(review_timeout, periodic_review)` of the low, medium and high tiers.
    tiers: [(String, String); 3],
}

impl Default for TestPolicy {
    fn default() -> Self {
        let tier = |periodic: &str| ("3days".to_owned(), periodic.to_owned());
        TestPolicy {
            tiers: [tier("365days"), tier("180days"), tier("90days")],
        }
    }
}

impl TestPolicy {
    /// Every tier's reviews time out after `duration` (e.g. `"4s"`).
    pub fn review_timeouts(duration: &str) -> Self {
        let mut p = Self::default();
        for t in &mut p.tiers {
            t.0 = duration.to_owned();
        }
        p
    }

    /// `tier`'s reviews time out after `duration`.
    pub fn review_timeout(mut self, tier: RiskTier, duration: &str) -> Self {
        self.tiers[index(tier)].0 = duration.to_owned();
        self
    }

    /// `tier`'s production versions are due a periodic review every `duration`.
    pub fn periodic_review(mut self, tier: RiskTier, duration: &str) -> Self {
        self.tiers[index(tier)].1 = duration.to_owned();
        self
    }
}

fn index(tier: RiskTier) -> usize {
    match tier {
        RiskTier::Low => 0,
        RiskTier::Medium => 1,
        RiskTier::High => 2,
    }
}

impl fmt::Display for TestPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reviews = [
            r#"["technical"]"#,
            r#"["technical", "business"]"#,
            r#"["technical", "business", "compliance", "deployment"]"#,
        ];
        for (i, tier) in RiskTier::ALL.iter().enumerate() {
            let (timeout, periodic) = &self.tiers[i];
            writeln!(f, "[tiers.{}]", tier.as_str())?;
            writeln!(f, "reviews = {}", reviews[i])?;
            writeln!(f, "review_timeout = \"{timeout}\"")?;
            writeln!(f, "periodic_review = \"{periodic}\"")?;
            writeln!(f, "auto_rollback = true")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_test_policy_is_the_default_policy() {
        let parsed = steward_core::Policy::from_toml(&TestPolicy::default().to_string()).unwrap();
        assert_eq!(parsed, steward_core::Policy::default());
    }

    #[test]
    fn the_example_manifest_is_high_tier() {
        assert_eq!(manifest()["risk_tier"], "high");
        assert_eq!(manifest_at(RiskTier::Low)["risk_tier"], "low");
    }
}
