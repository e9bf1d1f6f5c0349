//! Builds a version's [`Document`] from what the registry holds and the version's audit events.
//!
//! Invariants: pure (no I/O); every [`Signed`] fact cites the one audit event that recorded it,
//! found by what the event says (its action and the ids in its details), never by position; a
//! fact whose event the log does not hold is left uncited rather than pointed elsewhere.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::document::*;
use crate::audit::{format_time, AuditEvent, Checkpoint};
use crate::ids::VersionNumber;
use crate::policy::CheckRequirement;
use crate::policy::Policy;
use crate::records::{CardRevision, Incident, IncidentSeverity, Model, ModelVersion, Promotion};
use crate::types::PrincipalId;

/// What a pack's document is made of.
pub struct PackInputs<'a> {
    pub model: &'a Model,
    pub version: &'a ModelVersion,
    /// Every version of the model (the document lists the earlier ones).
    pub versions: &'a [ModelVersion],
    pub card_revisions: &'a [CardRevision],
    pub promotions: &'a [Promotion],
    /// The incidents naming this version.
    pub incidents: &'a [Incident],
    /// Every audit event of this version, ascending.
    pub events: &'a [AuditEvent],
    pub policy: &'a Policy,
    pub policy_digest: String,
    pub next_periodic_review: Option<DateTime<Utc>>,
    pub checkpoint: &'a Checkpoint,
    pub generated_at: DateTime<Utc>,
    pub generated_by: &'a PrincipalId,
    pub retain_until: DateTime<Utc>,
}

fn detail<'e>(e: &'e AuditEvent, key: &str) -> Option<&'e Value> {
    e.details.get(key)
}

fn detail_str<'e>(e: &'e AuditEvent, key: &str) -> Option<&'e str> {
    detail(e, key).and_then(Value::as_str)
}

/// Who did it and the audit event that recorded it. The time is the event's when there is
/// one (the log's time is the signed one; the registry's own timestamp of the same change
/// may be taken a moment apart), the registry's otherwise.
fn signed(by: &PrincipalId, at: DateTime<Utc>, event: Option<&AuditEvent>) -> Signed {
    Signed {
        by: by.to_string(),
        at: event.map_or_else(|| format_time(at), |e| e.time.clone()),
        event: event.map(|e| e.seq),
    }
}

/// The document of `inputs.version`.
pub fn build_document(i: &PackInputs<'_>) -> Document {
    let v = i.version;
    let card = &v.card;
    let find = |action: &str, pred: &dyn Fn(&AuditEvent) -> bool| {
        i.events.iter().find(|e| e.action == action && pred(e))
    };
    let registration_event = find("version.registered", &|_| true);
    let tier = i.policy.tier(v.risk_tier);

    let card_revisions = i
        .card_revisions
        .iter()
        .map(|c| {
            let event = if c.card_revision == 1 {
                registration_event
            } else {
                find("card.revised", &|e| {
                    detail(e, "card_revision").and_then(Value::as_u64)
                        == Some(u64::from(c.card_revision))
                })
            };
            CardRevisionFact {
                revision: c.card_revision,
                card_sha256: c.card_sha256.to_hex(),
                author: signed(&c.author, c.at, event),
            }
        })
        .collect::<Vec<_>>();
    let card_sha256 = card_revisions
        .iter()
        .find(|c| c.revision == v.card_revision)
        .map(|c| c.card_sha256.clone())
        .unwrap_or_default();

    let evaluations = v
        .evaluations
        .iter()
        .map(|ev| {
            let name = ev.result.name.as_str();
            let event = find("evaluation.recorded", &|e| {
                detail_str(e, "evaluation") == Some(name)
            })
            .or_else(|| {
                // Evaluations in the registration manifest are recorded by its event.
                registration_event.filter(|e| {
                    detail(e, "evaluations")
                        .and_then(Value::as_array)
                        .is_some_and(|a| {
                            a.iter()
                                .any(|x| x.get("name").and_then(Value::as_str) == Some(name))
                        })
                })
            });
            EvaluationFact {
                name: name.to_owned(),
                dataset: ev.result.dataset.clone(),
                environment: ev.result.environment,
                metrics: ev.result.metrics.clone(),
                slices: ev.result.slices.clone(),
                recorded: signed(&ev.recorded_by, ev.recorded_at, event),
            }
        })
        .collect::<Vec<_>>();

    let latest_result = |metric: &str| {
        evaluations
            .iter()
            .rev()
            .find_map(|e| e.metrics.get(metric).map(|m| (*m, e.name.clone())))
    };
    let monitoring = &card.operational.monitoring;
    let mut thresholds = Vec::new();
    for q in &monitoring.quality {
        let found = latest_result(&q.metric);
        thresholds.push(ThresholdFact {
            metric: q.metric.clone(),
            bound: "min".into(),
            limit: q.min,
            met: found.as_ref().map(|(r, _)| *r >= q.min),
            result: found.as_ref().map(|(r, _)| *r),
            evaluation: found.map(|(_, n)| n),
        });
    }
    for d in &monitoring.drift {
        thresholds.push(ThresholdFact {
            metric: d.metric.clone(),
            bound: "max".into(),
            limit: d.max,
            result: None,
            evaluation: None,
            met: None,
        });
    }

    // In the order they were requested.
    let mut ordered: Vec<&Promotion> = i.promotions.iter().collect();
    ordered.sort_by_key(|p| p.requested_at);
    let promotions = ordered
        .into_iter()
        .map(|p| PromotionFact {
            id: p.id.clone(),
            target: p.target,
            status: p.status.as_str().to_owned(),
            requested: signed(
                &p.requested_by,
                p.requested_at,
                find("promotion.requested", &|e| {
                    detail_str(e, "promotion_id") == Some(p.id.as_str())
                }),
            ),
            reviews: p
                .reviews
                .iter()
                .map(|r| {
                    let event = find("review.decided", &|e| {
                        detail_str(e, "review_id") == Some(r.id.as_str())
                    });
                    let decided = match (&r.decided_by, r.decided_at) {
                        (Some(by), Some(at)) => Some(signed(by, at, event)),
                        _ => None,
                    };
                    ReviewFact {
                        id: r.id.clone(),
                        stage: r.stage,
                        status: r.status.as_str().to_owned(),
                        deadline: format_time(r.deadline),
                        decision: r.decision.map(|d| d.as_str().to_owned()),
                        comment: r.comment.clone(),
                        conditions: r.conditions.clone(),
                        automatic: r.decided_by.as_ref().is_some_and(PrincipalId::is_policy),
                        decided,
                    }
                })
                .collect(),
        })
        .collect::<Vec<_>>();

    let deployments = v
        .deployments
        .iter()
        .map(|d| {
            // The event of this deployment: the one to its environment closest in time.
            let event = i
                .events
                .iter()
                .filter(|e| {
                    e.action == "version.deployed"
                        && detail_str(e, "environment") == Some(d.environment.as_str())
                })
                .min_by_key(|e| {
                    chrono::DateTime::parse_from_rfc3339(&e.time)
                        .map(|t| {
                            (t.with_timezone(&Utc) - d.deployed_at)
                                .num_microseconds()
                                .unwrap_or(i64::MAX)
                                .unsigned_abs()
                        })
                        .unwrap_or(u64::MAX)
                });
            DeploymentFact {
                environment: d.environment,
                deployed: signed(&d.deployed_by, d.deployed_at, event),
            }
        })
        .collect();

    Document {
        format: DOCUMENT_FORMAT.into(),
        renderer: super::html::RENDERER.into(),
        generated_at: format_time(i.generated_at),
        generated_by: i.generated_by.to_string(),
        model: v.name.clone(),
        version: v.version,
        general: General {
            description: i.model.description.clone(),
            overview: card.overview.clone(),
            purpose: card.intended_use.purpose.clone(),
            intended_users: card.intended_use.users.clone(),
            out_of_scope: card.intended_use.out_of_scope.clone(),
            owner: i.model.owner.clone(),
            risk_tier: v.risk_tier,
            stage: v.stage,
            serving_production: i.model.production_version == Some(v.version),
            registration: signed(&v.registered_by, v.registered_at, registration_event),
            artifact: v.artifact.clone(),
            predecessors: predecessors(i.versions, v.version),
            dependencies: v.dependencies.clone(),
            dependents: v.dependents.clone(),
            interfaces: Interfaces {
                compute: card.operational.compute.clone(),
                latency_ms_p99: card.operational.latency_ms_p99,
                mlflow_source: v
                    .mlflow
                    .as_ref()
                    .map(|m| m.source.clone())
                    .filter(|s| !s.is_empty()),
            },
        },
        development: Development {
            code: v.lineage.code.clone(),
            training_data: v.lineage.training_data.clone(),
            hyperparameters: v.lineage.hyperparameters.clone(),
            training_job: v.lineage.training_job.clone(),
            parent_version: v.lineage.parent_version,
            limitations: card.limitations.clone(),
            card_revision: v.card_revision,
            card_sha256,
            card_revisions,
        },
        data: DataSection {
            sources: card.training_data.sources.clone(),
            period: card.training_data.period.clone(),
            datasets: v.lineage.training_data.clone(),
        },
        evaluation: EvaluationSection {
            summary: card.evaluation.summary.clone(),
            evaluations,
            thresholds,
            fairness: card.fairness.clone(),
            checks: v.checks.clone(),
        },
        oversight: Oversight {
            separation_of_duties: separation_facts(v, &promotions),
            promotions,
        },
        risk: RiskSection {
            tier: v.risk_tier,
            policy_digest: i.policy_digest.clone(),
            production_reviews: tier.reviews.clone(),
            automatic_reviews: tier.automatic_reviews.clone(),
            required_checks_staging: tier
                .required_checks
                .staging
                .iter()
                .map(requirement)
                .collect(),
            required_checks_production: tier
                .required_checks
                .production
                .iter()
                .map(requirement)
                .collect(),
            periodic_review_days: tier.periodic_review.as_secs() / 86_400,
            auto_rollback: tier.auto_rollback,
        },
        monitoring: MonitoringSection {
            quality: monitoring.quality.clone(),
            drift: monitoring.drift.clone(),
            retraining_pipeline: monitoring.retraining_pipeline.clone(),
            rollback_procedure: card.rollback.procedure.clone(),
            rollback_last_tested: card.rollback.last_tested.map(|d| d.to_string()),
            next_periodic_review: i.next_periodic_review.map(format_time),
            deployments,
            incidents: i.incidents.iter().map(incident_fact).collect(),
        },
        lifecycle: i
            .events
            .iter()
            .map(|e| LifecycleEntry {
                seq: e.seq,
                time: e.time.clone(),
                actor: e.actor.clone(),
                action: e.action.clone(),
            })
            .collect(),
        retention: Retention {
            years: i.policy.evidence.retention_years,
            retain_until: format_time(i.retain_until),
        },
        checkpoint: CheckpointRef {
            size: i.checkpoint.size,
            root: hex::encode(i.checkpoint.root),
        },
    }
}

fn predecessors(versions: &[ModelVersion], this: VersionNumber) -> Vec<Predecessor> {
    let mut out: Vec<Predecessor> = versions
        .iter()
        .filter(|o| o.version < this)
        .map(|o| Predecessor {
            version: o.version,
            stage: o.stage,
            registered_at: format_time(o.registered_at),
            registered_by: o.registered_by.to_string(),
        })
        .collect();
    out.sort_by_key(|p| p.version);
    out
}

/// Separation of duties as it was applied, in sentences a reader checks against the facts.
fn separation_facts(v: &ModelVersion, promotions: &[PromotionFact]) -> Vec<String> {
    let registrant = v.registered_by.to_string();
    let mut out = vec![format!("Registered by {registrant}.")];
    for p in promotions {
        let deciders: Vec<&str> = p
            .reviews
            .iter()
            .filter_map(|r| r.decided.as_ref().map(|d| d.by.as_str()))
            .collect();
        if deciders.is_empty() {
            continue;
        }
        let mut distinct = deciders.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let by_registrant = deciders.contains(&registrant.as_str());
        out.push(format!(
            "Promotion {} to {}: {} review(s) decided by {} distinct principal(s){}; requested by {}.",
            p.id,
            p.target,
            deciders.len(),
            distinct.len(),
            if by_registrant {
                ", one of them the registrant"
            } else {
                ", none of them the registrant"
            },
            p.requested.by,
        ));
    }
    out
}

fn incident_fact(x: &Incident) -> IncidentFact {
    let class = x.serious.classification.as_ref();
    IncidentFact {
        id: x.id.clone(),
        kind: serde_json::to_value(x.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        status: match x.status {
            crate::records::IncidentStatus::Open => "open".into(),
            crate::records::IncidentStatus::Resolved => "resolved".into(),
        },
        summary: x.summary.clone(),
        opened_at: format_time(x.opened_at),
        serious_category: class
            .filter(|c| c.severity == IncidentSeverity::Serious)
            .map(|c| {
                serde_json::to_value(c.category)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            }),
        report_due: x.serious.report_due.map(format_time),
        report_reference: x.serious.report.as_ref().map(|r| r.reference.clone()),
    }
}

/// A required check as policy states it: `name`, `name on staging`, `name (auc >= 0.8)`.
fn requirement(r: &CheckRequirement) -> String {
    match r {
        CheckRequirement::Name(n) => n.as_str().to_owned(),
        CheckRequirement::Detailed { name, on, require } => {
            let mut s = name.as_str().to_owned();
            if let Some(env) = on {
                s.push_str(&format!(" on {env}"));
            }
            if !require.is_empty() {
                let rules: Vec<String> = require.iter().map(|m| m.to_string()).collect();
                s.push_str(&format!(" ({})", rules.join(", ")));
            }
            s
        }
    }
}
