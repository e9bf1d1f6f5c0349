//! The AI inventory (EU AI Act, ISO/IEC 42001, NIST AI RMF GOVERN 1.6): one entry per model
//! with its owner, tier, stage, what serves production, its last and next review, its open
//! incidents and how complete its latest card is.
//!
//! Invariants:
//! - A read: it changes nothing and needs authentication with at least one role.
//! - No scan and no per-version query. Requests on DynamoDB, for `M` models with `V` versions
//!   in all, `A` promotions their approvals and open promotions name, `R` rejected reviews,
//!   `I` incidents and `P` models serving production: `⌈M/500⌉` `Query` pages of models, `⌈V/100⌉`
//!   `BatchGetItem`s of every version, `⌈A/100⌉` `BatchGetItem`s of the promotions they name
//!   (none when `A = 0`), `⌈R/500⌉` `Query` pages of rejected reviews, `⌈I/500⌉` `Query` pages
//!   of incidents and `P` `Query`s of when production last changed (`production_at`): for a
//!   handful of models, 4 when nothing was approved yet (measured,
//!   `crates/aws/tests/inventory_requests.rs`), 5 once something was, plus one per model
//!   serving production.
//! - The last review is the latest decided (approved or rejected) review of any version: the
//!   approved ones are on the promotions the versions' approvals and open promotions name,
//!   and a rejected promotion's latest decision is its rejection, listed by status; so every
//!   decided review that can be the latest is read without listing every approved review.

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::manifest::Owner;
use crate::records::{IncidentStatus, ReviewStatus};

/// Models (and rejected reviews, incidents) read per page.
const PAGE: usize = 500;

/// One model in the inventory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InventoryEntry {
    pub name: ModelName,
    pub owner: Owner,
    pub risk_tier: RiskTier,
    /// The stage of its most advanced live version; `retired` when every version is.
    pub stage: Stage,
    pub production_version: Option<ProductionServing>,
    pub latest_version: VersionNumber,
    pub last_review: Option<LastReview>,
    /// When the production version's periodic review falls due.
    pub next_periodic_review: Option<DateTime<Utc>>,
    pub open_incidents: OpenIncidents,
    pub card_completeness: CardCompleteness,
}

/// The version serving production and since when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductionServing {
    pub version: VersionNumber,
    pub since: Option<DateTime<Utc>>,
}

/// The latest decided review of any version of a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastReview {
    pub at: DateTime<Utc>,
    pub stage: ReviewStage,
    pub decided_by: PrincipalId,
    pub version: VersionNumber,
    pub decision: ReviewStatus,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct OpenIncidents {
    pub count: usize,
    pub ids: Vec<String>,
}

/// How complete the latest version's card is: the share of [`CARD_PARTS`] present, and the
/// missing ones by name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CardCompleteness {
    pub score: f64,
    pub missing: Vec<&'static str>,
}

/// The card parts the inventory checks, by the name it reports a missing one with.
pub const CARD_PARTS: &[&str] = &[
    "limitations",
    "fairness_groups",
    "monitoring_quality_thresholds",
    "monitoring_drift_thresholds",
    "rollback_procedure",
    "rollback_tested",
    "intended_use_out_of_scope",
];

impl CardCompleteness {
    pub fn of(card: &ModelCard) -> Self {
        let present = |part: &str| match part {
            "limitations" => card.limitations.iter().any(|l| !l.trim().is_empty()),
            "fairness_groups" => !card.fairness.groups.is_empty(),
            "monitoring_quality_thresholds" => !card.operational.monitoring.quality.is_empty(),
            "monitoring_drift_thresholds" => !card.operational.monitoring.drift.is_empty(),
            "rollback_procedure" => !card.rollback.procedure.trim().is_empty(),
            "rollback_tested" => card.rollback.last_tested.is_some(),
            "intended_use_out_of_scope" => card
                .intended_use
                .out_of_scope
                .iter()
                .any(|u| !u.trim().is_empty()),
            _ => false,
        };
        let missing: Vec<&'static str> =
            CARD_PARTS.iter().copied().filter(|p| !present(p)).collect();
        let score = (CARD_PARTS.len() - missing.len()) as f64 / CARD_PARTS.len() as f64;
        // Two decimals: a score is read by people and compared in spreadsheets.
        let score = (score * 100.0).round() / 100.0;
        Self { score, missing }
    }
}

impl Governance {
    /// Every model in the inventory, by name.
    pub async fn inventory(&self, caller: &Caller) -> Result<Vec<InventoryEntry>, GovError> {
        require_some_role(caller, "the inventory")?;
        let all = &ModelFilter::default();
        let models =
            every_page(|c| async move { self.registry.list_models(all, c.as_deref(), PAGE).await })
                .await?;
        if models.is_empty() {
            return Ok(vec![]);
        }

        let version_keys: Vec<Key> = models
            .iter()
            .flat_map(|m| {
                (1..=m.latest_version.get())
                    .filter_map(|n| VersionNumber::new(n).ok())
                    .map(|n| Key::Version(m.name.clone(), n))
            })
            .collect();
        let versions = self.registry.get_many(&version_keys).await?.versions;

        let mut promotion_ids: Vec<String> = versions
            .values()
            .flat_map(|v| {
                v.approvals
                    .iter()
                    .map(|a| a.promotion_id.clone())
                    .chain(v.open_promotion.clone())
            })
            .collect();
        promotion_ids.sort();
        promotion_ids.dedup();
        let promotion_keys: Vec<Key> = promotion_ids.into_iter().map(Key::Promotion).collect();
        let promotions = if promotion_keys.is_empty() {
            HashMap::new()
        } else {
            self.registry.get_many(&promotion_keys).await?.promotions
        };

        let mut last: HashMap<ModelName, LastReview> = HashMap::new();
        let mut consider = |r: &Review| {
            let (Some(at), Some(by)) = (r.decided_at, r.decided_by.clone()) else {
                return;
            };
            if !matches!(r.status, ReviewStatus::Approved | ReviewStatus::Rejected) {
                return;
            }
            let newer = last.get(&r.name).is_none_or(|l| at > l.at);
            if newer {
                last.insert(
                    r.name.clone(),
                    LastReview {
                        at,
                        stage: r.stage,
                        decided_by: by,
                        version: r.version,
                        decision: r.status,
                    },
                );
            }
        };
        for p in promotions.values() {
            p.reviews.iter().for_each(&mut consider);
        }
        let rejected = ReviewFilter {
            status: ReviewStatus::Rejected,
            stages: ReviewStage::ALL.to_vec(),
        };
        let rejected = every_page(|c| {
            let rejected = &rejected;
            async move {
                self.registry
                    .list_reviews(rejected, c.as_deref(), PAGE)
                    .await
            }
        })
        .await?;
        rejected.iter().for_each(|i| consider(&i.review));

        let mut incidents: HashMap<ModelName, OpenIncidents> = HashMap::new();
        let all_incidents =
            every_page(|c| async move { self.registry.incidents(None, c.as_deref(), PAGE).await })
                .await?;
        for i in all_incidents {
            if i.status == IncidentStatus::Open {
                let e = incidents.entry(i.name.clone()).or_default();
                e.count += 1;
                e.ids.push(i.id);
            }
        }

        let now = self.now();
        let mut by_name: BTreeMap<ModelName, InventoryEntry> = BTreeMap::new();
        for m in models {
            let of_model: Vec<&ModelVersion> = (1..=m.latest_version.get())
                .filter_map(|n| VersionNumber::new(n).ok())
                .filter_map(|n| versions.get(&(m.name.clone(), n)))
                .collect();
            let stage = of_model
                .iter()
                .map(|v| v.stage)
                .filter(|s| *s != Stage::Retired)
                .max()
                .unwrap_or(Stage::Retired);
            let serving = m
                .production_version
                .and_then(|pv| versions.get(&(m.name.clone(), pv)));
            let production_version = match m.production_version {
                Some(pv) => Some(ProductionServing {
                    version: pv,
                    since: self
                        .registry
                        .production_at(&m.name, now)
                        .await?
                        .filter(|c| c.version == Some(pv))
                        .map(|c| c.at),
                }),
                None => None,
            };
            let latest = versions.get(&(m.name.clone(), m.latest_version));
            let card_completeness = latest.map_or_else(
                || CardCompleteness {
                    score: 0.0,
                    missing: CARD_PARTS.to_vec(),
                },
                |v| CardCompleteness::of(&v.card),
            );
            let mut open_incidents = incidents.remove(&m.name).unwrap_or_default();
            open_incidents.ids.sort();
            by_name.insert(
                m.name.clone(),
                InventoryEntry {
                    next_periodic_review: serving.and_then(|v| self.periodic_due(v)),
                    last_review: last.remove(&m.name),
                    name: m.name,
                    owner: m.owner,
                    risk_tier: m.risk_tier,
                    stage,
                    production_version,
                    latest_version: m.latest_version,
                    open_incidents,
                    card_completeness,
                },
            );
        }
        Ok(by_name.into_values().collect())
    }
}
