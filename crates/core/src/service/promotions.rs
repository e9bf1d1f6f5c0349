//! Promotions: requesting one (which opens the reviews the tier's policy requires) and ending
//! one whose review passed its deadline.
//!
//! Invariants: a version has at most one open promotion; a promotion is refused unless the
//! rules of its target are met now, except that a required check not reported yet waits when
//! policy decides every review of the target (`automatic.rs` approves once it passes); an
//! expired review ends its whole promotion (the others are cancelled), once, however many
//! ticks or workflow reports see it.

use super::*;

/// What opening `p` emits: `PromotionRequested`, then one `ReviewRequested` per review.
pub(super) fn requested_events(p: &Promotion) -> Result<Vec<DomainEvent>, GovError> {
    let mut events = vec![Governance::event(PromotionRequested {
        name: p.name.clone(),
        version: p.version,
        target: p.target,
        promotion_id: p.id.clone(),
        reviews: p.reviews.iter().map(|r| r.stage).collect(),
    })?];
    for r in &p.reviews {
        events.push(Governance::event(review_requested(r))?);
    }
    Ok(events)
}

/// The `ReviewRequested` event of a review just opened.
pub(super) fn review_requested(r: &Review) -> ReviewRequested {
    ReviewRequested {
        review_id: r.id.clone(),
        promotion_id: r.promotion_id.clone(),
        name: r.name.clone(),
        version: r.version,
        target: r.target,
        stage: r.stage,
        deadline: r.deadline,
    }
}

impl Governance {
    /// Starts the review workflow that promotion to `target` needs.
    pub async fn request_promotion(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        target: Environment,
        expected: Option<u64>,
    ) -> Result<Promotion, GovError> {
        require_role(
            caller,
            &[Role::Developer, Role::ReleaseManager],
            "requesting a promotion",
        )?;
        let name = ModelName::parse(name)?;
        let mut v = self.load_version(&name, version).await?;
        expect_revision(v.revision, expected, "the version")?;
        super::serious::refuse_under_investigation(&v)?;
        if let Some(open) = &v.open_promotion {
            return Err(GovError::Conflict(format!(
                "promotion {open} of this version is still in review"
            )));
        }
        // A version in production may be re-certified (a periodic review opened by hand).
        let recertification = target == Environment::Production && v.stage == Stage::Production;
        if v.approved_for(target) && !recertification {
            return Err(GovError::Conflict(format!(
                "version {version} is already approved for {target}"
            )));
        }
        let mut reasons: Vec<String> = gates::pending_retirement_reason(&v).into_iter().collect();
        match (target, v.stage) {
            (_, Stage::Retired) => reasons.push(format!("version {version} is retired")),
            (Environment::Staging, Stage::Development) => {
                reasons.extend(self.threshold_reasons(&v, false));
                reasons.extend(self.check_reasons(&v, Environment::Staging));
                reasons.extend(self.fairness_reasons(v.risk_tier, &v.card));
            }
            (Environment::Staging, s) => reasons.push(format!("version {version} is already in {s}")),
            (Environment::Production, Stage::Staging | Stage::Production) => reasons.extend(self.production_readiness(&v)),
            (Environment::Production, s) => reasons.push(format!(
                "version {version} is in {s}: production promotion needs the version deployed to staging first"
            )),
        }
        // When policy decides every review of the target, a check not reported yet does not
        // refuse the request: the reviews open and policy approves them once the last report
        // passes (a failed check still refuses, and the gate always needs every check).
        let stages = self.policy.reviews_for(v.risk_tier, target);
        if !stages.is_empty()
            && stages
                .iter()
                .all(|s| self.policy.is_automatic(v.risk_tier, *s))
        {
            let missing = self.missing_check_reasons(&v, target);
            reasons.retain(|r| !missing.contains(r));
        }
        if !reasons.is_empty() {
            return Err(GovError::Policy(reasons));
        }
        let now = self.now();
        let id = PromotionId::new(&name, version, &self.ids.id("pr"))?.to_string();
        let reviews = self.pending_reviews(&v, &id, target, now);
        let deadline = self.review_deadline(v.risk_tier, now);
        let promotion = Promotion {
            id: id.clone(),
            name: name.clone(),
            version,
            target,
            status: PromotionStatus::InReview,
            reviews,
            requested_by: caller.id.clone(),
            requested_at: now,
            registered_by: v.registered_by.clone(),
            risk_tier: v.risk_tier,
            closed_at: None,
            revision: 1,
        };
        let prev = v.revision;
        v.open_promotion = Some(id.clone());
        v.revision += 1;
        let stages: Vec<_> = promotion.reviews.iter().map(|r| r.stage).collect();
        let events = requested_events(&promotion)?;
        let committed = v.clone();
        let commit = Commit {
            puts: vec![
                Put::Version(v, Expect::Revision(prev)),
                Put::Promotion(promotion.clone(), Expect::Absent),
            ],
            audit: vec![self.draft(
                caller,
                "promotion.requested",
                Some(&name),
                Some(version),
                json!({
                    "promotion_id": id, "target": target, "reviews": stages, "deadline": deadline,
                }),
            )],
            events,
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(lost_race)?;
        self.workflows.promotion_started(&promotion).await?;
        // Reviews policy decides itself are decided now, when their rules already hold.
        if promotion
            .reviews
            .iter()
            .any(|r| self.policy.is_automatic(promotion.risk_tier, r.stage))
        {
            return self.decide_automatic(promotion, committed).await;
        }
        Ok(promotion)
    }

    /// Ends a promotion because review `idx` passed its deadline.
    pub(super) async fn expire_promotion(
        &self,
        mut p: Promotion,
        idx: usize,
        mut v: ModelVersion,
    ) -> Result<(), GovError> {
        let now = self.now();
        let system = Caller::system("workflow");
        let prev = p.revision;
        let expired_stage = p.reviews[idx].stage;
        p.reviews[idx].status = ReviewStatus::Expired;
        for r in p
            .reviews
            .iter_mut()
            .filter(|r| r.status == ReviewStatus::Pending)
        {
            r.status = ReviewStatus::Cancelled;
        }
        p.status = PromotionStatus::Expired;
        p.closed_at = Some(now);
        p.revision += 1;
        let vprev = v.revision;
        v.open_promotion = None;
        v.revision += 1;
        let review_id = p.reviews[idx].id.clone();
        // An expired re-certification of the production version opens an incident (periodic.rs).
        let recertification = self.recertification_expired(&p, &v, expired_stage, &system);
        let mut commit = Commit {
            audit: vec![
                self.draft(&system, "review.expired", Some(&p.name), Some(p.version), json!({"review_id": review_id, "promotion_id": p.id, "stage": expired_stage, "deadline": p.reviews[idx].deadline})),
                self.draft(&system, "promotion.expired", Some(&p.name), Some(p.version), json!({"promotion_id": p.id, "target": p.target, "expired_stage": expired_stage})),
            ],
            events: vec![
                Self::event(ReviewTimedOut {
                    review_id,
                    promotion_id: p.id.clone(),
                    name: p.name.clone(),
                    version: p.version,
                    stage: expired_stage,
                })?,
                Self::event(PromotionExpired {
                    promotion_id: p.id.clone(),
                    name: p.name.clone(),
                    version: p.version,
                    target: p.target,
                })?,
            ],
            puts: vec![Put::Version(v, Expect::Revision(vprev)), Put::Promotion(p, Expect::Revision(prev))],
            idempotency: None,
        };
        if let Some((audit, event, incident)) = recertification {
            commit.audit.push(audit);
            commit.events.push(Self::event(event)?);
            commit.puts.push(Put::Incident(incident));
        }
        self.registry.commit(commit).await.map_err(lost_race)?;
        Ok(())
    }

    /// Expires every pending review past its deadline (the workflow runner's tick). Returns how
    /// many promotions it ended; a promotion another writer changed meanwhile is left for the
    /// next tick.
    pub async fn expire_due_reviews(&self) -> Result<usize, GovError> {
        let now = self.now();
        let mut ended = 0;
        for r in self.registry.reviews_due(now, 100).await? {
            let mut f = self
                .registry
                .get_many(&[
                    Key::Promotion(r.promotion_id.clone()),
                    Key::Version(r.name.clone(), r.version),
                ])
                .await?;
            let (Some(p), Some(v)) = (
                f.promotions.remove(&r.promotion_id),
                f.versions.remove(&(r.name.clone(), r.version)),
            ) else {
                continue;
            };
            let Some(idx) = p.reviews.iter().position(|x| x.id == r.id) else {
                continue;
            };
            if p.status != PromotionStatus::InReview
                || p.reviews[idx].status != ReviewStatus::Pending
                || p.reviews[idx].deadline > now
            {
                continue;
            }
            match self.expire_promotion(p, idx, v).await {
                Ok(()) => ended += 1,
                // Ended or opened by someone else meanwhile: nothing left to do here.
                Err(GovError::Conflict(_) | GovError::Contended(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ended)
    }

    /// Expires the promotion of review `review_id` because its workflow timed the review out
    /// (the approval state machine's `ReviewTimedOut`). The workflow no longer waits for this
    /// review, so a pending review ends now even if its deadline is a moment away (clocks
    /// differ). Idempotent: `Ok(false)` when the review is no longer pending or its promotion
    /// is closed; `NotFound` for an id this registry never issued; a concurrent change is a
    /// `Conflict` (retry re-reads and usually finds nothing left to do).
    pub async fn expire_review(&self, review_id: &str) -> Result<bool, GovError> {
        let (p, idx, v) = self.load_review(review_id).await?;
        if p.status != PromotionStatus::InReview || p.reviews[idx].status != ReviewStatus::Pending {
            return Ok(false);
        }
        self.expire_promotion(p, idx, v).await?;
        Ok(true)
    }

    pub async fn promotion(&self, id: &str) -> Result<Promotion, GovError> {
        let not_found = || GovError::NotFound(format!("no promotion {id}"));
        // Only a well-formed id reaches the store (whose keys derive from its parts).
        PromotionId::parse(id).map_err(|_| not_found())?;
        self.registry.promotion(id).await?.ok_or_else(not_found)
    }
}
