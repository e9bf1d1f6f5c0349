//! Governance policy as data: which reviews each tier needs, evaluation thresholds, review
//! timeouts, periodic review intervals and automatic rollback; and what is automated
//! (`automation.rs`): required checks, fairness limits, reviews policy decides itself.
//!
//! Invariants: a `Policy` has an entry for every tier; every tier's review list is non-empty,
//! has no duplicates and starts with `technical` (staging promotions need exactly that review);
//! timeouts are positive; an automatic review is one of its tier's reviews and never a
//! human-only stage. The state machines and stores never decide any of this: they carry out
//! the review list that [`Policy::reviews_for`] computes.
//! Keys added after the first release are left out of the serialised policy while unset, so
//! the digest of a policy that does not use them is what it always was.

pub mod automation;
mod retention;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use automation::{CheckRequirement, FairnessLimit, MetricRule, RequiredChecks};
pub use retention::EvidenceRetention;

use crate::error::{FieldError, GovError};
use crate::manifest::ModelCard;
use crate::types::{Environment, ReviewStage, RiskTier};

/// How a metric is compared with a threshold value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = ">")]
    Above,
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = "<")]
    Below,
}

impl Comparison {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::AtLeast => value >= threshold,
            Comparison::Above => value > threshold,
            Comparison::AtMost => value <= threshold,
            Comparison::Below => value < threshold,
        }
    }
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::AtLeast => ">=",
            Comparison::Above => ">",
            Comparison::AtMost => "<=",
            Comparison::Below => "<",
        }
    }
}

/// An evaluation threshold: `metric comparison value`, for some tiers or all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub metric: String,
    pub comparison: Comparison,
    pub value: f64,
    /// Tiers the threshold applies to; empty means every tier.
    #[serde(default)]
    pub tiers: Vec<RiskTier>,
}

/// What one tier requires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPolicy {
    /// Reviews a production promotion needs, in order.
    pub reviews: Vec<ReviewStage>,
    /// How long a review may stay pending before it expires and ends its promotion.
    #[serde(with = "humantime_serde")]
    pub review_timeout: Duration,
    /// How often a production version must be reviewed again.
    #[serde(with = "humantime_serde")]
    pub periodic_review: Duration,
    /// Whether a quality signal under threshold rolls production back by itself.
    pub auto_rollback: bool,
    /// If set, production needs a rollback procedure tested within this long.
    #[serde(default, with = "humantime_serde")]
    pub rollback_tested_within: Option<Duration>,
    /// Review stages policy decides itself when every rule of the target holds (thresholds,
    /// required checks, fairness, production readiness). Never a human-only stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub automatic_reviews: Vec<ReviewStage>,
    /// The checks that must have passed before a promotion to (and deployment on) a target.
    #[serde(default, skip_serializing_if = "RequiredChecks::is_empty")]
    pub required_checks: RequiredChecks,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub tiers: BTreeMap<RiskTier, TierPolicy>,
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
    /// The MLflow aliases reserved for deployments (`[mlflow]`). Left out of the serialised
    /// policy when it is the default, so a policy's digest does not change with this field.
    #[serde(
        default,
        skip_serializing_if = "crate::mlflow::MlflowAliases::is_default"
    )]
    pub mlflow: crate::mlflow::MlflowAliases,
    /// Largest disparities allowed between the card's groups (`[[fairness]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fairness: Vec<FairnessLimit>,
    /// How long after classification a serious incident must be reported (EU AI Act Art. 73,
    /// `[serious_incidents]`). Left out of the serialised policy when it is the default.
    #[serde(default, skip_serializing_if = "SeriousIncidentPeriods::is_default")]
    pub serious_incidents: SeriousIncidentPeriods,
    /// How long evidence packs are retained (`[evidence]`). Left out of the serialised policy
    /// when it is the default.
    #[serde(default, skip_serializing_if = "EvidenceRetention::is_default")]
    pub evidence: EvidenceRetention,
}

/// Reporting periods of serious incidents per category (Art. 73: 15 days; 10 for a death; 2
/// for a widespread infringement or a serious disruption of critical infrastructure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeriousIncidentPeriods {
    #[serde(with = "humantime_serde")]
    pub death: Duration,
    #[serde(with = "humantime_serde")]
    pub infringement: Duration,
    #[serde(with = "humantime_serde")]
    pub critical_infrastructure: Duration,
    #[serde(with = "humantime_serde")]
    pub other: Duration,
}

impl Default for SeriousIncidentPeriods {
    fn default() -> Self {
        Self {
            death: Duration::from_secs(10 * DAY),
            infringement: Duration::from_secs(2 * DAY),
            critical_infrastructure: Duration::from_secs(2 * DAY),
            other: Duration::from_secs(15 * DAY),
        }
    }
}

impl SeriousIncidentPeriods {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    fn check(&self, errors: &mut Vec<FieldError>) {
        for (key, d) in [
            ("death", self.death),
            ("infringement", self.infringement),
            ("critical_infrastructure", self.critical_infrastructure),
            ("other", self.other),
        ] {
            if d.is_zero() {
                errors.push(FieldError::new(
                    format!("serious_incidents.{key}"),
                    "must be positive",
                ));
            }
        }
    }
}

const DAY: u64 = 24 * 3600;

impl Default for Policy {
    /// DESIGN.md's default: low — technical; medium — technical + business; high — all four.
    fn default() -> Self {
        use ReviewStage::*;
        let tier =
            |reviews: Vec<ReviewStage>, periodic_days: u64, auto_rollback: bool| TierPolicy {
                reviews,
                review_timeout: Duration::from_secs(3 * DAY),
                periodic_review: Duration::from_secs(periodic_days * DAY),
                auto_rollback,
                rollback_tested_within: None,
                automatic_reviews: Vec::new(),
                required_checks: RequiredChecks::default(),
            };
        Policy {
            tiers: BTreeMap::from([
                (RiskTier::Low, tier(vec![Technical], 365, true)),
                (RiskTier::Medium, tier(vec![Technical, Business], 180, true)),
                (
                    RiskTier::High,
                    tier(vec![Technical, Business, Compliance, Deployment], 90, true),
                ),
            ]),
            thresholds: Vec::new(),
            mlflow: Default::default(),
            fairness: Vec::new(),
            serious_incidents: Default::default(),
            evidence: Default::default(),
        }
    }
}

impl Policy {
    /// Parses and checks a policy file (TOML).
    pub fn from_toml(text: &str) -> Result<Self, GovError> {
        let policy: Policy =
            toml::from_str(text).map_err(|e| GovError::field("policy", e.message().to_owned()))?;
        policy.check()?;
        Ok(policy)
    }

    fn check(&self) -> Result<(), GovError> {
        let mut errors = self.mlflow.check();
        self.serious_incidents.check(&mut errors);
        self.evidence.check(&mut errors);
        for tier in RiskTier::ALL {
            let Some(t) = self.tiers.get(tier) else {
                errors.push(FieldError::new(
                    format!("tiers.{tier}"),
                    "every tier needs an entry",
                ));
                continue;
            };
            let field = |f: &str| format!("tiers.{tier}.{f}");
            if t.reviews.first() != Some(&ReviewStage::Technical) {
                errors.push(FieldError::new(
                    field("reviews"),
                    "must start with \"technical\"",
                ));
            }
            let mut seen = t.reviews.clone();
            seen.sort();
            seen.dedup();
            if seen.len() != t.reviews.len() {
                errors.push(FieldError::new(field("reviews"), "lists a review twice"));
            }
            if t.review_timeout.is_zero() {
                errors.push(FieldError::new(field("review_timeout"), "must be positive"));
            }
            // Step Functions waits at most a year; keep every wait well inside it.
            if t.review_timeout > Duration::from_secs(300 * DAY) {
                errors.push(FieldError::new(
                    field("review_timeout"),
                    "must be at most 300 days",
                ));
            }
            if t.periodic_review.is_zero() {
                errors.push(FieldError::new(
                    field("periodic_review"),
                    "must be positive",
                ));
            }
            for stage in &t.automatic_reviews {
                let why = if *tier == RiskTier::High {
                    Some(
                        "the high tier's reviews are human-only: policy may not decide them"
                            .to_owned(),
                    )
                } else if automation::human_only(*tier, *stage) {
                    Some(format!(
                        "the {stage} review is human-only: policy may not decide it"
                    ))
                } else if !t.reviews.contains(stage) {
                    Some(format!("{stage} is not one of this tier's reviews"))
                } else {
                    None
                };
                errors.extend(why.map(|w| FieldError::new(field("automatic_reviews"), w)));
            }
        }
        for (i, f) in self.fairness.iter().enumerate() {
            for (key, why) in f.problems() {
                errors.push(FieldError::new(format!("fairness[{i}].{key}"), why));
            }
        }
        for (i, th) in self.thresholds.iter().enumerate() {
            if th.metric.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("thresholds[{i}].metric"),
                    "must not be empty",
                ));
            }
            if !th.value.is_finite() {
                errors.push(FieldError::new(
                    format!("thresholds[{i}].value"),
                    "must be finite",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(GovError::Validation(errors))
        }
    }

    pub fn tier(&self, tier: RiskTier) -> &TierPolicy {
        // `check` guarantees every tier is present; the default covers hand-built policies.
        self.tiers.get(&tier).unwrap_or(&DEFAULT_TIER)
    }

    /// The reviews a promotion to `target` needs: staging needs the technical review; production
    /// needs every review of the tier.
    pub fn reviews_for(&self, tier: RiskTier, target: Environment) -> Vec<ReviewStage> {
        match target {
            Environment::Staging => vec![ReviewStage::Technical],
            Environment::Production => self.tier(tier).reviews.clone(),
        }
    }

    /// The thresholds an evaluation must meet for `tier`: the policy's own, then the card's
    /// quality minimums (a model must at least meet what its own card promises).
    pub fn thresholds_for(&self, tier: RiskTier, card: &ModelCard) -> Vec<Threshold> {
        let mut out: Vec<Threshold> = self
            .thresholds
            .iter()
            .filter(|t| t.tiers.is_empty() || t.tiers.contains(&tier))
            .cloned()
            .collect();
        out.extend(
            card.operational
                .monitoring
                .quality
                .iter()
                .map(|q| Threshold {
                    metric: q.metric.clone(),
                    comparison: Comparison::AtLeast,
                    value: q.min,
                    tiers: vec![],
                }),
        );
        out
    }

    /// The checks a promotion of a `tier` version to `target` needs.
    pub fn required_checks(&self, tier: RiskTier, target: Environment) -> &[CheckRequirement] {
        self.tier(tier).required_checks.for_target(target)
    }

    /// Whether policy decides `stage` of a `tier` promotion itself (never a human-only one,
    /// even in a hand-built policy that skipped the loader).
    pub fn is_automatic(&self, tier: RiskTier, stage: ReviewStage) -> bool {
        !automation::human_only(tier, stage) && self.tier(tier).automatic_reviews.contains(&stage)
    }

    /// The fairness limits of `tier`.
    pub fn fairness_for(&self, tier: RiskTier) -> impl Iterator<Item = &FairnessLimit> {
        self.fairness.iter().filter(move |f| f.applies_to(tier))
    }

    /// A stable digest of the policy, recorded in the audit log when it changes. An error
    /// (never the digest of `null`) if the policy cannot be serialised.
    pub fn digest(&self) -> Result<String, crate::GovError> {
        let value = crate::GovError::to_json("the policy", self)?;
        Ok(crate::types::Sha256::digest(&crate::audit::canonical_json(&value)).to_hex())
    }
}

static DEFAULT_TIER: TierPolicy = TierPolicy {
    reviews: Vec::new(),
    review_timeout: Duration::from_secs(3 * DAY),
    periodic_review: Duration::from_secs(90 * DAY),
    auto_rollback: false,
    rollback_tested_within: None,
    automatic_reviews: Vec::new(),
    required_checks: RequiredChecks {
        staging: Vec::new(),
        production: Vec::new(),
    },
};

/// Whether `metrics` meet every threshold; returns the reasons they do not.
pub fn unmet_thresholds(metrics: &BTreeMap<String, f64>, thresholds: &[Threshold]) -> Vec<String> {
    thresholds
        .iter()
        .filter_map(|t| match metrics.get(&t.metric) {
            None => Some(format!(
                "metric {:?} is not recorded (needs {} {})",
                t.metric,
                t.comparison.symbol(),
                t.value
            )),
            Some(v) if !t.comparison.holds(*v, t.value) => Some(format!(
                "{} = {} does not meet {} {}",
                t.metric,
                v,
                t.comparison.symbol(),
                t.value
            )),
            Some(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_needs_one_two_and_four_reviews_by_tier() {
        let p = Policy::default();
        assert_eq!(
            p.reviews_for(RiskTier::Low, Environment::Production),
            vec![ReviewStage::Technical]
        );
        assert_eq!(
            p.reviews_for(RiskTier::Medium, Environment::Production)
                .len(),
            2
        );
        assert_eq!(
            p.reviews_for(RiskTier::High, Environment::Production).len(),
            4
        );
        for tier in RiskTier::ALL {
            assert_eq!(
                p.reviews_for(*tier, Environment::Staging),
                vec![ReviewStage::Technical]
            );
        }
        p.check().unwrap();
    }

    #[test]
    fn a_policy_file_can_change_reviews_thresholds_timeouts_and_rollback() {
        let p = Policy::from_toml(
            r#"
            [tiers.low]
            reviews = ["technical", "deployment"]
            review_timeout = "10m"
            periodic_review = "30days"
            auto_rollback = false
            [tiers.medium]
            reviews = ["technical", "business"]
            review_timeout = "2h"
            periodic_review = "90days"
            auto_rollback = true
            [tiers.high]
            reviews = ["technical", "business", "compliance", "deployment"]
            review_timeout = "1day"
            periodic_review = "30days"
            auto_rollback = true
            rollback_tested_within = "180days"
            [[thresholds]]
            metric = "auc"
            comparison = ">="
            value = 0.8
            tiers = ["high"]
            "#,
        )
        .unwrap();
        assert_eq!(
            p.reviews_for(RiskTier::Low, Environment::Production),
            vec![ReviewStage::Technical, ReviewStage::Deployment]
        );
        assert_eq!(
            p.tier(RiskTier::Low).review_timeout,
            Duration::from_secs(600)
        );
        assert!(!p.tier(RiskTier::Low).auto_rollback);
        assert_eq!(p.thresholds[0].comparison, Comparison::AtLeast);
        let m = BTreeMap::from([("auc".to_string(), 0.79)]);
        assert_eq!(unmet_thresholds(&m, &p.thresholds).len(), 1);
        let m = BTreeMap::from([("auc".to_string(), 0.8)]);
        assert!(unmet_thresholds(&m, &p.thresholds).is_empty());
    }

    #[test]
    fn a_policy_missing_a_tier_or_with_bad_reviews_is_refused_with_the_field() {
        let err = Policy::from_toml(
            r#"
            [tiers.low]
            reviews = ["business"]
            review_timeout = "1h"
            periodic_review = "1day"
            auto_rollback = true
            "#,
        )
        .unwrap_err();
        let GovError::Validation(errors) = err else {
            panic!("{err}")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"tiers.low.reviews"), "{fields:?}");
        assert!(fields.contains(&"tiers.medium"), "{fields:?}");
        assert!(fields.contains(&"tiers.high"), "{fields:?}");
    }

    #[test]
    fn an_unknown_policy_key_is_refused() {
        let err = Policy::from_toml("[tiers.low]\nreviewz = []\n").unwrap_err();
        assert!(matches!(err, GovError::Validation(_)));
    }

    #[test]
    fn serious_incident_periods_default_to_art_73_and_stay_out_of_the_digest() {
        let p = Policy::default();
        assert_eq!(p.serious_incidents.death, Duration::from_secs(10 * DAY));
        assert_eq!(
            p.serious_incidents.infringement,
            Duration::from_secs(2 * DAY)
        );
        assert_eq!(p.serious_incidents.other, Duration::from_secs(15 * DAY));
        let json = serde_json::to_value(&p).unwrap();
        assert!(json.get("serious_incidents").is_none());
        let mut text = toml::to_string(&p).unwrap();
        text.push_str("\n[serious_incidents]\nother = \"7days\"\n");
        let changed = Policy::from_toml(&text).unwrap();
        assert_eq!(
            changed.serious_incidents.other,
            Duration::from_secs(7 * DAY)
        );
        assert_eq!(
            changed.serious_incidents.death,
            Duration::from_secs(10 * DAY)
        );
        assert!(serde_json::to_value(&changed).unwrap()["serious_incidents"].is_object());
        text.push_str("bogus = \"1day\"\n");
        assert!(Policy::from_toml(&text).is_err());
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn the_documented_example_policy_parses() {
        super::Policy::from_toml(include_str!("../../../../docs/policy.example.toml")).unwrap();
    }
}
