//! What policy automates: the checks a promotion needs (`[tiers.<tier>.required_checks]`),
//! fairness limits on the card's per-group metrics (`[[fairness]]`) and the reviews policy
//! may decide itself (`automatic_reviews`).
//!
//! Invariants: a metric rule is `metric OP bound` with a finite number or a numeric card field
//! (`card.operational.latency_ms_p99`) as the bound; a requirement reads the latest report of
//! its check (on its environment, when it names one); human-only stages (every stage of the
//! high tier, compliance anywhere) are never automatic, which [`super::Policy::from_toml`]
//! enforces. Every function here is pure: the same version and policy give the same reasons.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Comparison;
use crate::checks::{CheckName, CheckResult, CheckStatus};
use crate::manifest::{Fairness, ModelCard};
use crate::types::{Environment, ReviewStage, RiskTier};

/// What a metric of a check must meet: `coverage >= 0.8`,
/// `latency_ms_p99 <= card.operational.latency_ms_p99`. Written as that string in TOML.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRule {
    pub metric: String,
    pub comparison: Comparison,
    pub bound: Bound,
}

/// The right-hand side of a [`MetricRule`].
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Number(f64),
    /// A dotted path into the model card, `card.` included; must name a number.
    Card(String),
}

impl MetricRule {
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [metric, op, bound] = parts[..] else {
            return Err(format!(
                "{s:?} is not `metric OP value` (OP one of >=, >, <=, <)"
            ));
        };
        let comparison = match op {
            ">=" => Comparison::AtLeast,
            ">" => Comparison::Above,
            "<=" => Comparison::AtMost,
            "<" => Comparison::Below,
            _ => return Err(format!("{op:?} in {s:?} is not one of >=, >, <=, <")),
        };
        let bound = if let Some(path) = bound.strip_prefix("card.") {
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(format!("{bound:?} is not a card field path"));
            }
            Bound::Card(bound.to_owned())
        } else {
            match bound.parse::<f64>() {
                Ok(x) if x.is_finite() => Bound::Number(x),
                _ => {
                    return Err(format!(
                        "{bound:?} is neither a finite number nor a card field (card.…)"
                    ))
                }
            }
        };
        Ok(MetricRule {
            metric: metric.to_owned(),
            comparison,
            bound,
        })
    }

    /// The bound's value for a version with `card`, or why there is none.
    fn bound_value(&self, card: &Value) -> Result<f64, String> {
        match &self.bound {
            Bound::Number(x) => Ok(*x),
            Bound::Card(path) => path
                .split('.')
                .skip(1)
                .try_fold(card, |v, k| v.get(k))
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("the card has no number at {path}")),
        }
    }
}

impl fmt::Display for MetricRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = match &self.bound {
            Bound::Number(x) => x.to_string(),
            Bound::Card(p) => p.clone(),
        };
        write!(f, "{} {} {bound}", self.metric, self.comparison.symbol())
    }
}

impl Serialize for MetricRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for MetricRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MetricRule::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One check a promotion needs: its name alone, or with the environment it must have run on
/// and rules for its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CheckRequirement {
    Name(CheckName),
    Detailed {
        name: CheckName,
        /// The environment the report must come from (`on = "staging"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on: Option<Environment>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        require: Vec<MetricRule>,
    },
}

impl CheckRequirement {
    pub fn name(&self) -> &CheckName {
        match self {
            CheckRequirement::Name(n) | CheckRequirement::Detailed { name: n, .. } => n,
        }
    }
    fn on(&self) -> Option<Environment> {
        match self {
            CheckRequirement::Name(_) => None,
            CheckRequirement::Detailed { on, .. } => *on,
        }
    }
    fn rules(&self) -> &[MetricRule] {
        match self {
            CheckRequirement::Name(_) => &[],
            CheckRequirement::Detailed { require, .. } => require,
        }
    }

    /// The report this requirement reads: the latest of its check, on its environment when it
    /// names one.
    pub fn latest<'c>(&self, checks: &'c [CheckResult]) -> Option<&'c CheckResult> {
        checks
            .iter()
            .filter(|c| &c.name == self.name())
            .filter(|c| self.on().is_none() || c.environment == self.on())
            .max_by_key(|c| c.reported_at)
    }
}

/// `[tiers.<tier>.required_checks]`: the checks that must have passed before a promotion to
/// each target (and a deployment to it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredChecks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub staging: Vec<CheckRequirement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub production: Vec<CheckRequirement>,
}

impl RequiredChecks {
    pub fn is_empty(&self) -> bool {
        self.staging.is_empty() && self.production.is_empty()
    }
    pub fn for_target(&self, target: Environment) -> &[CheckRequirement] {
        match target {
            Environment::Staging => &self.staging,
            Environment::Production => &self.production,
        }
    }
}

/// Every reason the version's checks do not meet `required` (missing, failed, a metric out of
/// bounds), each naming the check.
pub fn check_reasons(
    required: &[CheckRequirement],
    checks: &[CheckResult],
    card: &ModelCard,
) -> Vec<String> {
    let card = serde_json::to_value(card).unwrap_or(Value::Null);
    let mut reasons = Vec::new();
    for req in required {
        let on = req.on().map(|e| format!(" on {e}")).unwrap_or_default();
        let Some(c) = req.latest(checks) else {
            reasons.push(format!(
                "required check {:?} has not been reported{on}",
                req.name().as_str()
            ));
            continue;
        };
        if c.status == CheckStatus::Failed {
            reasons.push(format!(
                "required check {:?} failed{on} (reported by {} at {})",
                req.name().as_str(),
                c.reported_by,
                c.reported_at.to_rfc3339()
            ));
            continue;
        }
        for rule in req.rules() {
            let bound = match rule.bound_value(&card) {
                Ok(b) => b,
                Err(why) => {
                    reasons.push(format!("check {:?}: {rule}: {why}", req.name().as_str()));
                    continue;
                }
            };
            match c.metrics.get(&rule.metric) {
                None => reasons.push(format!(
                    "check {:?} reported no metric {:?} (needs {rule})",
                    req.name().as_str(),
                    rule.metric
                )),
                Some(v) if !rule.comparison.holds(*v, bound) => reasons.push(format!(
                    "check {:?}: {} = {v} does not meet {rule} (= {bound})",
                    req.name().as_str(),
                    rule.metric
                )),
                Some(_) => {}
            }
        }
    }
    reasons
}

/// `[[fairness]]`: the largest disparity of a metric between the card's groups, as a
/// difference (`max_difference`) or a ratio of the lowest to the highest (`min_ratio`, 0.8 for
/// the four-fifths rule), for some tiers or all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FairnessLimit {
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_difference: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ratio: Option<f64>,
    #[serde(default)]
    pub tiers: Vec<RiskTier>,
}

impl FairnessLimit {
    pub fn applies_to(&self, tier: RiskTier) -> bool {
        self.tiers.is_empty() || self.tiers.contains(&tier)
    }

    /// Problems with the limit itself, for the policy loader.
    pub(super) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.metric.trim().is_empty() {
            out.push(("metric", "must not be empty".to_owned()));
        }
        match (self.max_difference, self.min_ratio) {
            (None, None) => out.push((
                "max_difference",
                "a fairness limit needs max_difference or min_ratio".to_owned(),
            )),
            (d, r) => {
                if d.is_some_and(|d| !(d.is_finite() && d >= 0.0)) {
                    out.push(("max_difference", "must be a finite number >= 0".to_owned()));
                }
                if r.is_some_and(|r| !(r.is_finite() && r > 0.0 && r <= 1.0)) {
                    out.push(("min_ratio", "must be in (0, 1]".to_owned()));
                }
            }
        }
        out
    }
}

/// Every fairness limit `fairness` violates, naming the metric, the groups and their values.
/// A metric no group reports is not a violation (the card says what it measured); one only a
/// single group reports has no disparity to measure.
pub fn fairness_violations<'a>(
    limits: impl IntoIterator<Item = &'a FairnessLimit>,
    fairness: &Fairness,
) -> Vec<String> {
    let mut out = Vec::new();
    for limit in limits {
        let values: Vec<(&str, f64)> = fairness
            .groups
            .iter()
            .filter_map(|g| g.metrics.get(&limit.metric).map(|v| (g.group.as_str(), *v)))
            .collect();
        let (Some(low), Some(high)) = (
            values.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
            values.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
        ) else {
            continue;
        };
        if values.len() < 2 {
            continue;
        }
        let (lg, lv) = *low;
        let (hg, hv) = *high;
        if let Some(max) = limit.max_difference {
            let diff = hv - lv;
            if diff > max + 1e-12 {
                out.push(format!(
                    "fairness: {} differs by {diff:.4} between group {hg:?} ({hv}) and group {lg:?} ({lv}); policy allows at most {max}",
                    limit.metric
                ));
            }
        }
        if let Some(min) = limit.min_ratio {
            let ratio = if hv > 0.0 { lv / hv } else { 1.0 };
            if ratio + 1e-12 < min {
                out.push(format!(
                    "fairness: {} of group {lg:?} ({lv}) is {ratio:.4} of group {hg:?} ({hv}); policy requires a ratio of at least {min}",
                    limit.metric
                ));
            }
        }
    }
    out
}

/// Whether `stage` may never be decided by policy in `tier`: every stage of the high tier,
/// and the compliance review anywhere.
pub fn human_only(tier: RiskTier, stage: ReviewStage) -> bool {
    tier == RiskTier::High || stage == ReviewStage::Compliance
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Slice;
    use std::collections::BTreeMap;

    #[test]
    fn metric_rules_parse_numbers_and_card_fields_and_refuse_anything_else() {
        let r = MetricRule::parse("coverage >= 0.8").unwrap();
        assert_eq!(r.bound, Bound::Number(0.8));
        let r = MetricRule::parse("latency_ms_p99 <= card.operational.latency_ms_p99").unwrap();
        assert_eq!(
            r.to_string(),
            "latency_ms_p99 <= card.operational.latency_ms_p99"
        );
        for bad in [
            "coverage",
            "coverage => 1",
            "coverage >= high",
            "x <= card.",
            "a >= NaN",
        ] {
            assert!(MetricRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_disparity_names_the_metric_the_groups_and_their_values() {
        let group = |g: &str, v: f64| Slice {
            group: g.into(),
            metrics: BTreeMap::from([("approval_rate".to_owned(), v)]),
        };
        let fairness = Fairness {
            groups: vec![group("age<30", 0.60), group("age>=30", 0.80)],
            known_disparities: vec![],
        };
        let limit = |d: Option<f64>, r: Option<f64>| FairnessLimit {
            metric: "approval_rate".into(),
            max_difference: d,
            min_ratio: r,
            tiers: vec![],
        };
        let v = fairness_violations(&[limit(Some(0.1), Some(0.8))], &fairness);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(
            v[0].contains("\"age>=30\" (0.8)") && v[0].contains("\"age<30\" (0.6)"),
            "{v:?}"
        );
        assert!(v[1].contains("0.7500"), "{v:?}");
        assert!(fairness_violations(&[limit(Some(0.2), Some(0.75))], &fairness).is_empty());
    }
}
