//! Scheduled periodic reviews: a production version whose review interval (the tier's
//! `periodic_review` in policy, counted from its latest production approval) has passed is
//! re-certified through the same review path as a production promotion.
//!
//! Design: when a version serving production falls due, [`Governance::open_due_periodic_reviews`]
//! (the embedded runner's tick; on AWS the checkpoint function's schedule) opens a
//! *re-certification promotion* of that version to production with its tier's reviews, and
//! emits `PeriodicReviewDue`. So the existing review inbox (`GET /v1/reviews`), decisions,
//! separation of duties (the registrant never reviews; high tier: one stage per person), review
//! deadlines and, on AWS, the approval workflow apply unchanged. When every review approves,
//! the version gets a new production approval, which starts the next review interval; it keeps
//! serving throughout. A rejection closes the promotion as for any promotion
//! (`PromotionRejected`) and opens an incident of kind `periodic_review_rejected` (listed by
//! `GET /v1/incidents`), audited as `periodic_review.rejected` with its incident id and
//! emitted as `PeriodicReviewRejected` (`IncidentOpened` stays the monitoring signals'). The
//! version keeps serving until someone acts (rollback, retirement, a retrained version). An
//! expiry closes the promotion (`PromotionExpired`) and opens an incident too, of kind
//! `periodic_review_expired` (audited as `periodic_review.expired`, emitted as
//! `PeriodicReviewExpired`): a production version nobody re-certified in time is as much a
//! finding as one that failed, and a platform team wants it on the same list. After either, the
//! version stays overdue in `GET /v1/periodic-reviews` and is not reopened for the same due
//! period; a release manager or developer can open a re-certification by hand
//! (`POST .../promotions {"target": "production"}` is accepted for a version in production;
//! its rejection opens an incident too).
//!
//! Invariants:
//! - Once per due period: the promotion's id is derived from the version and its due instant
//!   ([`periodic_promotion_id`]) and is created with a create-only condition, so however often
//!   the tick runs (every 5 minutes on AWS, every runner interval locally), and even when two
//!   ticks race, one due period opens at most one review and emits one `PeriodicReviewDue`.
//!   A tick finding that promotion already there (open, approved, rejected or expired) does
//!   nothing for the version.
//! - The actor is `system:periodic-review`; it is the promotion's requester, so no person is
//!   excluded from reviewing by having "requested" it.
//! - No new records or access patterns: models serving production (one query per page), their
//!   versions and the derived promotions by key (one batched read each per page), one commit
//!   per opened review. Versions with an open promotion or a pending retirement are skipped.

use super::*;

/// The principal that opens periodic reviews.
pub const PERIODIC_REVIEW_ACTOR: &str = "periodic-review";

/// The id of the re-certification promotion of `version` for the due period ending at `due_at`.
pub fn periodic_promotion_id(
    name: &ModelName,
    version: VersionNumber,
    due_at: DateTime<Utc>,
) -> String {
    // A `PromotionId` by construction (the test below parses one back): the unique part is a
    // fixed pattern of visible ASCII.
    format!(
        "{name}.{version}.pr-periodic-{}",
        due_at.format("%Y%m%dT%H%M%SZ")
    )
}

/// Models read per page of the production listing.
const PAGE: usize = 50;

impl Governance {
    /// Opens a re-certification review for every production version whose periodic review is
    /// due and not yet opened for this due period. Returns how many it opened. A version that
    /// another writer changed meanwhile is left for the next tick.
    pub async fn open_due_periodic_reviews(&self) -> Result<usize, GovError> {
        let now = self.now();
        let mut opened = 0;
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .registry
                .production_models(cursor.as_deref(), PAGE)
                .await?;
            let keys: Vec<Key> = page
                .items
                .iter()
                .filter_map(|m| {
                    m.production_version
                        .map(|v| Key::Version(m.name.clone(), v))
                })
                .collect();
            let mut due = Vec::new();
            if !keys.is_empty() {
                let f = self.registry.get_many(&keys).await?;
                for m in &page.items {
                    let Some(v) = m.production_version.and_then(|pv| f.version(&m.name, pv)) else {
                        continue;
                    };
                    if v.stage != Stage::Production
                        || v.open_promotion.is_some()
                        || v.pending_retirement.is_some()
                    {
                        continue;
                    }
                    match self.periodic_due(v) {
                        Some(due_at) if due_at <= now => due.push((v.clone(), due_at)),
                        _ => {}
                    }
                }
            }
            if !due.is_empty() {
                let ids: Vec<Key> = due
                    .iter()
                    .map(|(v, d)| Key::Promotion(periodic_promotion_id(&v.name, v.version, *d)))
                    .collect();
                let known = self.registry.get_many(&ids).await?;
                for (v, due_at) in due {
                    let id = periodic_promotion_id(&v.name, v.version, due_at);
                    if known.promotion(&id).is_some() {
                        continue;
                    }
                    match self.open_periodic_review(v, due_at, id).await {
                        Ok(()) => opened += 1,
                        // Ended or opened by someone else meanwhile: nothing left to do here.
                        Err(GovError::Conflict(_) | GovError::Contended(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(opened)
    }

    /// Opens the re-certification promotion `id` of `v`, due since `due_at`.
    async fn open_periodic_review(
        &self,
        mut v: ModelVersion,
        due_at: DateTime<Utc>,
        id: String,
    ) -> Result<(), GovError> {
        let actor = Caller::system(PERIODIC_REVIEW_ACTOR);
        let now = self.now();
        let name = v.name.clone();
        let version = v.version;
        let target = Environment::Production;
        let tier = self.policy.tier(v.risk_tier);
        let last_approved_at =
            due_at - ChronoDuration::from_std(tier.periodic_review).unwrap_or_default();
        let reviews = self.pending_reviews(&v, &id, target, now);
        let deadline = self.review_deadline(v.risk_tier, now);
        let stages: Vec<_> = reviews.iter().map(|r| r.stage).collect();
        let promotion = Promotion {
            id: id.clone(),
            name: name.clone(),
            version,
            target,
            status: PromotionStatus::InReview,
            reviews,
            requested_by: actor.id.clone(),
            requested_at: now,
            registered_by: v.registered_by.clone(),
            risk_tier: v.risk_tier,
            closed_at: None,
            revision: 1,
        };
        let prev = v.revision;
        v.open_promotion = Some(id.clone());
        v.revision += 1;
        let mut events = vec![Self::event(PeriodicReviewDue {
            name: name.clone(),
            version,
            risk_tier: v.risk_tier,
            promotion_id: id.clone(),
            due_at,
            last_approved_at,
            reviews: stages.clone(),
            deadline,
        })?];
        events.extend(super::promotions::requested_events(&promotion)?);
        let commit = Commit {
            puts: vec![
                Put::Version(v, Expect::Revision(prev)),
                Put::Promotion(promotion.clone(), Expect::Absent),
            ],
            audit: vec![
                self.draft(
                    &actor,
                    "periodic_review.due",
                    Some(&name),
                    Some(version),
                    json!({"promotion_id": id, "due_at": due_at, "last_approved_at": last_approved_at}),
                ),
                self.draft(
                    &actor,
                    "promotion.requested",
                    Some(&name),
                    Some(version),
                    json!({"promotion_id": id, "target": target, "reviews": stages, "deadline": deadline, "periodic_review": true}),
                ),
            ],
            events,
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(lost_race)?;
        self.workflows.promotion_started(&promotion).await?;
        Ok(())
    }
}

impl Governance {
    /// What a rejected re-certification adds to the decision's commit: a version serving in
    /// production failed its periodic review (or a re-certification requested by hand), which
    /// opens an incident (kind `periodic_review_rejected`) — audited as
    /// `periodic_review.rejected` with its incident id and emitted as `PeriodicReviewRejected`.
    /// `None` for any other promotion.
    pub(super) fn recertification_rejected(
        &self,
        p: &Promotion,
        v: &ModelVersion,
        stage: ReviewStage,
        by: &Caller,
        comment: Option<&str>,
    ) -> Option<(AuditDraft, PeriodicReviewRejected, Incident)> {
        let (incident_id, periodic) = self.recertification(p, v)?;
        let audit = self.draft(
            by,
            "periodic_review.rejected",
            Some(&p.name),
            Some(p.version),
            json!({"incident_id": incident_id, "promotion_id": p.id, "rejected_stage": stage,
                   "reason": comment, "periodic": periodic}),
        );
        let event = PeriodicReviewRejected {
            incident_id: incident_id.clone(),
            name: p.name.clone(),
            version: p.version,
            promotion_id: p.id.clone(),
            stage,
            rejected_by: by.id.clone(),
            reason: comment.map(str::to_owned),
            periodic,
        };
        let incident = self.recertification_incident(
            incident_id,
            p,
            IncidentKind::PeriodicReviewRejected,
            format!(
                "the {stage} review rejected the re-certification of the version serving production{}",
                comment.map(|c| format!(": {c}")).unwrap_or_default()
            ),
            &by.id,
        );
        Some((audit, event, incident))
    }
}

impl Governance {
    /// What an expired re-certification adds to the expiry's commit: an incident (kind
    /// `periodic_review_expired`) opened by `system:workflow`, audited as
    /// `periodic_review.expired` and emitted as `PeriodicReviewExpired`. `None` for any other
    /// promotion.
    pub(super) fn recertification_expired(
        &self,
        p: &Promotion,
        v: &ModelVersion,
        stage: ReviewStage,
        by: &Caller,
    ) -> Option<(AuditDraft, PeriodicReviewExpired, Incident)> {
        let (incident_id, periodic) = self.recertification(p, v)?;
        let audit = self.draft(
            by,
            "periodic_review.expired",
            Some(&p.name),
            Some(p.version),
            json!({"incident_id": incident_id, "promotion_id": p.id, "expired_stage": stage,
                   "periodic": periodic}),
        );
        let event = PeriodicReviewExpired {
            incident_id: incident_id.clone(),
            name: p.name.clone(),
            version: p.version,
            promotion_id: p.id.clone(),
            stage,
            periodic,
        };
        let incident = self.recertification_incident(
            incident_id,
            p,
            IncidentKind::PeriodicReviewExpired,
            format!(
                "the {stage} review of the re-certification of the version serving production expired undecided"
            ),
            &by.id,
        );
        Some((audit, event, incident))
    }

    /// Whether promotion `p` of `v` is a re-certification (to production, of the version in
    /// production): then the id of the incident its failure opens, and whether the schedule
    /// (rather than a person) requested it.
    fn recertification(&self, p: &Promotion, v: &ModelVersion) -> Option<(String, bool)> {
        if p.target != Environment::Production || v.stage != Stage::Production {
            return None;
        }
        let periodic = p.requested_by == PrincipalId::system(PERIODIC_REVIEW_ACTOR);
        Some((self.ids.id("inc"), periodic))
    }

    /// The open incident a failed re-certification of promotion `p` records (its subject).
    fn recertification_incident(
        &self,
        id: String,
        p: &Promotion,
        kind: IncidentKind,
        summary: String,
        by: &PrincipalId,
    ) -> Incident {
        Incident {
            id,
            name: p.name.clone(),
            version: Some(p.version),
            kind,
            metric: String::new(),
            value: None,
            threshold: None,
            subject: Some(p.id.clone()),
            summary,
            status: IncidentStatus::Open,
            opened_at: self.now(),
            opened_by: by.clone(),
            actions: vec!["alerted".to_owned()],
            serious: Default::default(),
            resolution: None,
            revision: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodicReview {
    pub name: ModelName,
    pub version: VersionNumber,
    pub risk_tier: RiskTier,
    pub last_reviewed_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub overdue: bool,
}

impl Governance {
    pub(super) fn periodic_due(&self, v: &ModelVersion) -> Option<DateTime<Utc>> {
        let last = v
            .approvals
            .iter()
            .filter(|a| a.environment == Environment::Production)
            .map(|a| a.approved_at)
            .max()?;
        let every = ChronoDuration::from_std(self.policy.tier(v.risk_tier).periodic_review).ok()?;
        Some(last + every)
    }

    /// Production versions with the date their periodic review falls due, soonest first.
    pub async fn periodic_reviews(&self) -> Result<Vec<PeriodicReview>, GovError> {
        let now = self.now();
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .registry
                .production_models(cursor.as_deref(), 200)
                .await?;
            for m in &page.items {
                let Some(pv) = m.production_version else {
                    continue;
                };
                let Some(v) = self.registry.version(&m.name, pv).await? else {
                    continue;
                };
                let Some(due_at) = self.periodic_due(&v) else {
                    continue;
                };
                let last_reviewed_at = due_at
                    - ChronoDuration::from_std(self.policy.tier(v.risk_tier).periodic_review)
                        .unwrap_or_default();
                out.push(PeriodicReview {
                    name: m.name.clone(),
                    version: pv,
                    risk_tier: v.risk_tier,
                    last_reviewed_at,
                    due_at,
                    overdue: due_at <= now,
                });
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        out.sort_by_key(|p| p.due_at);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::vn;
    use chrono::TimeZone;

    #[test]
    fn a_periodic_promotion_id_is_a_promotion_id_naming_its_version() {
        let name = ModelName::parse("credit-risk").unwrap();
        let due = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let id = periodic_promotion_id(&name, vn(7), due);
        assert_eq!(id, "credit-risk.7.pr-periodic-20260301T120000Z");
        let parsed = PromotionId::parse(&id).unwrap();
        assert_eq!((parsed.name(), parsed.version().get()), (&name, 7));
        assert_eq!(parsed.to_string(), id);
    }
}
