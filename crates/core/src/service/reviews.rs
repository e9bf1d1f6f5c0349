//! Reviews: the inbox of reviews a caller may decide, and decisions.
//!
//! Invariants: the inbox and a decision apply the same rules (`separation.rs`), so a caller
//! never sees a pending review it may not decide; a rejection says why; the last approval
//! approves the promotion and a rejection cancels the reviews still pending, all in the
//! decision's one commit.

use super::separation::{administered_during, separation_of_duties};
use super::*;

/// A decision about to be recorded: checked, with the evidence policy relied on when policy
/// made it.
pub(super) struct Decided {
    pub decision: Decision,
    pub comment: Option<String>,
    pub conditions: Vec<String>,
    pub policy: Option<Value>,
}

/// A review decision as posted.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    pub decision: Decision,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub conditions: Vec<String>,
}

impl Governance {
    /// Reviews with `status` that the caller's roles allow it to decide.
    pub async fn list_reviews(
        &self,
        caller: &Caller,
        status: ReviewStatus,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Review>, GovError> {
        // Input first, the same for everyone: a caller who may see nothing still learns that
        // its cursor is not one this list returned.
        decode_cursor(cursor)?;
        let stages: Vec<ReviewStage> = if caller.has(Role::Admin) {
            vec![]
        } else {
            ReviewStage::ALL
                .iter()
                .copied()
                .filter(|s| caller.has(s.reviewer_role()))
                .collect()
        };
        if stages.is_empty() {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            });
        }
        let page = self
            .registry
            .list_reviews(
                &ReviewFilter { status, stages },
                cursor,
                limit.clamp(1, 500),
            )
            .await?;
        // Hide pending reviews that separation of duties would refuse this caller.
        let administered_at = match status {
            ReviewStatus::Pending => self.administered_at(caller).await?,
            _ => None,
        };
        let items = page
            .items
            .into_iter()
            .filter(|i| {
                status != ReviewStatus::Pending
                    || (separation_of_duties(
                        caller,
                        &i.promotion,
                        i.review.stage,
                        Decision::Approve,
                    )
                    .is_ok()
                        && administered_during(caller, &i.promotion, administered_at).is_ok())
            })
            .map(|i| i.review)
            .collect();
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    /// When `caller` last administered principals, if it ever did.
    async fn administered_at(&self, caller: &Caller) -> Result<Option<DateTime<Utc>>, GovError> {
        Ok(self
            .registry
            .principal(&caller.id)
            .await?
            .and_then(|p| p.last_administered_at))
    }

    /// [`Self::load_review`] plus when `caller` last administered principals, in the same
    /// batch.
    async fn load_review_for(
        &self,
        review_id: &str,
        caller: &Caller,
    ) -> Result<(Promotion, usize, ModelVersion, Option<DateTime<Utc>>), GovError> {
        let (p, idx, v, mut f) = self.load_review_with(review_id, Some(&caller.id)).await?;
        let administered = f
            .principals
            .remove(&caller.id)
            .and_then(|p| p.last_administered_at);
        Ok((p, idx, v, administered))
    }

    /// A review's promotion, the review's index in it and the promotion's version, read in one
    /// batch: the review id names the promotion, and the promotion id names the version.
    pub(super) async fn load_review(
        &self,
        review_id: &str,
    ) -> Result<(Promotion, usize, ModelVersion), GovError> {
        let (p, idx, v, _) = self.load_review_with(review_id, None).await?;
        Ok((p, idx, v))
    }

    async fn load_review_with(
        &self,
        review_id: &str,
        principal: Option<&PrincipalId>,
    ) -> Result<(Promotion, usize, ModelVersion, Fetched), GovError> {
        let unknown = || GovError::NotFound(format!("no review {review_id}"));
        let id = ReviewId::parse(review_id).map_err(|_| unknown())?;
        let (name, version, stage) = (
            id.promotion().name().clone(),
            id.promotion().version(),
            id.stage(),
        );
        let promotion_id = id.promotion().to_string();
        let mut f = self
            .registry
            .get_many(
                &[
                    Key::Promotion(promotion_id.clone()),
                    Key::Version(name.clone(), version),
                ]
                .into_iter()
                .chain(principal.map(|id| Key::Principal(id.clone())))
                .collect::<Vec<_>>(),
            )
            .await?;
        let p = f.promotions.remove(&promotion_id).ok_or_else(unknown)?;
        let v = f
            .versions
            .remove(&(name, version))
            .ok_or_else(|| not_found_version(&p.name, p.version))?;
        let idx = p
            .reviews
            .iter()
            .position(|r| r.stage == stage && r.id == review_id)
            .ok_or_else(unknown)?;
        Ok((p, idx, v, f))
    }

    /// Why `caller` may not decide review `review_id` now, by the checks [`Self::decide`]
    /// makes before it writes (roles, separation of duties, a review still pending); `None`
    /// when it may. For pages that say why before anyone clicks: `decide` still checks.
    pub async fn why_not_decide(
        &self,
        caller: &Caller,
        review_id: &str,
    ) -> Result<Option<String>, GovError> {
        let (p, idx, _, administered_at) = self.load_review_for(review_id, caller).await?;
        let stage = p.reviews[idx].stage;
        let refusal = separation_of_duties(caller, &p, stage, Decision::Approve)
            .and_then(|()| administered_during(caller, &p, administered_at));
        if let Err(e) = refusal {
            return Ok(Some(e.to_string()));
        }
        if p.status != PromotionStatus::InReview || p.reviews[idx].status != ReviewStatus::Pending {
            return Ok(Some(format!(
                "this review is {} and its promotion {}: nothing is left to decide",
                p.reviews[idx].status.as_str(),
                p.status.as_str()
            )));
        }
        Ok(None)
    }

    /// Records a reviewer's decision and advances the promotion.
    pub async fn decide(
        &self,
        caller: &Caller,
        review_id: &str,
        input: DecisionInput,
    ) -> Result<Promotion, GovError> {
        let (p, idx, v, administered_at) = self.load_review_for(review_id, caller).await?;
        let stage = p.reviews[idx].stage;
        separation_of_duties(caller, &p, stage, input.decision)?;
        administered_during(caller, &p, administered_at)?;
        let comment = match input.comment.as_deref() {
            Some(c) if !c.trim().is_empty() => Some(non_empty("comment", c)?),
            _ if input.decision == Decision::Reject => {
                return Err(GovError::field("comment", "a rejection must say why"))
            }
            _ => None,
        };
        let mut conditions = Vec::new();
        for (i, c) in input.conditions.iter().enumerate() {
            conditions.push(non_empty(&format!("conditions[{i}]"), c)?);
        }
        if p.status != PromotionStatus::InReview || p.reviews[idx].status != ReviewStatus::Pending {
            return Err(GovError::Conflict(format!(
                "review {review_id} is {:?} and promotion {} is {:?}; nothing to decide",
                p.reviews[idx].status, p.id, p.status
            )));
        }
        if p.reviews[idx].deadline <= self.now() {
            self.expire_promotion(p, idx, v).await?;
            return Err(GovError::Conflict(format!(
                "review {review_id} expired before the decision"
            )));
        }
        let decision = Decided {
            decision: input.decision,
            comment,
            conditions,
            policy: None,
        };
        self.commit_decision(caller, p, idx, v, decision).await
    }

    /// Records a decision already checked (roles, separation of duties, a pending review in
    /// an open promotion): the review, and when it was the last approval or a rejection, the
    /// promotion and the version, in one commit; then tells the workflow.
    pub(super) async fn commit_decision(
        &self,
        caller: &Caller,
        mut p: Promotion,
        idx: usize,
        v: ModelVersion,
        d: Decided,
    ) -> Result<Promotion, GovError> {
        let Decided {
            decision,
            comment,
            conditions,
            policy,
        } = d;
        let input = DecisionInput {
            decision,
            comment: comment.clone(),
            conditions: conditions.clone(),
        };
        let review_id = p.reviews[idx].id.clone();
        let review_id = review_id.as_str();
        let stage = p.reviews[idx].stage;
        let now = self.now();
        let prev = p.revision;
        {
            let r = &mut p.reviews[idx];
            r.status = if input.decision == Decision::Approve {
                ReviewStatus::Approved
            } else {
                ReviewStatus::Rejected
            };
            r.decision = Some(input.decision);
            r.decided_by = Some(caller.id.clone());
            r.decided_at = Some(now);
            r.comment = comment.clone();
            r.conditions = conditions.clone();
        }
        p.revision += 1;
        let name = p.name.clone();
        let version = p.version;
        let mut details = json!({
            "review_id": review_id, "promotion_id": p.id, "stage": stage, "target": p.target,
            "decision": input.decision, "comment": comment, "conditions": conditions,
        });
        if let Some(evidence) = policy {
            // An automatic decision: the policy it applied and what it relied on.
            details["automatic"] = json!(true);
            details["policy"] = evidence;
        }
        let mut audit = vec![self.draft(
            caller,
            "review.decided",
            Some(&name),
            Some(version),
            details,
        )];
        let mut events = vec![Self::event(ReviewDecided {
            review_id: review_id.to_owned(),
            promotion_id: p.id.clone(),
            name: name.clone(),
            version,
            stage,
            decision: input.decision,
            decided_by: caller.id.clone(),
        })?];
        let mut puts = Vec::new();
        let all_approved = p.reviews.iter().all(|r| r.status == ReviewStatus::Approved);
        if input.decision == Decision::Reject || all_approved {
            let mut v = v;
            let vprev = v.revision;
            v.open_promotion = None;
            v.revision += 1;
            p.closed_at = Some(now);
            if input.decision == Decision::Reject {
                p.status = PromotionStatus::Rejected;
                for r in p
                    .reviews
                    .iter_mut()
                    .filter(|r| r.status == ReviewStatus::Pending)
                {
                    r.status = ReviewStatus::Cancelled;
                }
                audit.push(self.draft(
                    caller,
                    "promotion.rejected",
                    Some(&name),
                    Some(version),
                    json!({"promotion_id": p.id, "target": p.target, "rejected_stage": stage}),
                ));
                events.push(Self::event(PromotionRejected {
                    promotion_id: p.id.clone(),
                    name: name.clone(),
                    version,
                    target: p.target,
                    stage,
                })?);
                // A failed re-certification of a production version opens an incident (periodic.rs).
                if let Some((a, e, incident)) =
                    self.recertification_rejected(&p, &v, stage, caller, comment.as_deref())
                {
                    audit.push(a);
                    events.push(Self::event(e)?);
                    puts.push(Put::Incident(incident));
                }
            } else {
                p.status = PromotionStatus::Approved;
                v.approvals.push(Approval {
                    environment: p.target,
                    promotion_id: p.id.clone(),
                    approved_at: now,
                    automatic: p
                        .reviews
                        .iter()
                        .any(|r| r.decided_by.as_ref().is_some_and(PrincipalId::is_policy)),
                });
                let approvers: Vec<_> = p
                    .reviews
                    .iter()
                    .map(|r| json!({"stage": r.stage, "by": r.decided_by}))
                    .collect();
                audit.push(self.draft(
                    caller,
                    "promotion.approved",
                    Some(&name),
                    Some(version),
                    json!({"promotion_id": p.id, "target": p.target, "approvals": approvers}),
                ));
                events.push(Self::event(PromotionApproved {
                    promotion_id: p.id.clone(),
                    name: name.clone(),
                    version,
                    target: p.target,
                })?);
            }
            puts.push(Put::Version(v, Expect::Revision(vprev)));
        }
        puts.push(Put::Promotion(p.clone(), Expect::Revision(prev)));
        self.registry
            .commit(Commit {
                puts,
                audit,
                events,
                idempotency: None,
            })
            .await
            .map_err(lost_race)?;
        self.workflows.review_decided(&p, &p.reviews[idx]).await?;
        Ok(p)
    }
}
