//! Separation of duties: who may decide which review of a promotion.
//!
//! One pure function of the caller and the promotion (its registrant, requester, tier and the
//! decisions already taken on its other reviews): no store, no clock, so every rule is tested
//! here alone. The inbox (`GET /v1/reviews`) hides what it refuses; a decision is refused
//! with its error.
//!
//! The rules, checked in this order (the first that fails is the answer):
//! 1. the caller's roles allow the review's stage (`Forbidden`);
//! 2. an admin manages principals and policy and decides no reviews;
//! 3. the registrant of the version never decides a review of its promotion;
//! 4. the requester of the promotion never decides a review of it;
//! 5. in the high tier nobody approves two stages of one promotion (rejecting is allowed);
//! 6. ([`administered_during`]) a principal who administered principals after the promotion
//!    was requested decides none of its reviews, even once it is no admin any more: whoever
//!    could shape who reviews a promotion does not review it. (Nobody changes their own
//!    roles, so no principal grants itself the role it decides with; the policy is
//!    configuration, recorded at start, that no principal changes through Steward.)

use chrono::{DateTime, Utc};

use crate::error::GovError;
use crate::ports::Caller;
use crate::records::{Promotion, ReviewStatus};
use crate::types::{Decision, ReviewStage, RiskTier, Role};

/// Whether `caller` may take `decision` on the `stage` review of promotion `p`: `Ok`, or
/// `Forbidden` (roles) / `SeparationOfDuties` (the duty being separated), saying why.
pub(crate) fn separation_of_duties(
    caller: &Caller,
    p: &Promotion,
    stage: ReviewStage,
    decision: Decision,
) -> Result<(), GovError> {
    let role = stage.reviewer_role();
    if !caller.has(role) {
        return Err(GovError::Forbidden(format!(
            "deciding a {stage} review requires the role {role}"
        )));
    }
    if caller.has(Role::Admin) {
        return Err(GovError::SeparationOfDuties(
            "an admin manages principals and policy and may not decide reviews".into(),
        ));
    }
    if caller.id == p.registered_by {
        return Err(GovError::SeparationOfDuties(format!(
            "{} registered {} version {} and may not review its promotion",
            caller.id, p.name, p.version
        )));
    }
    if caller.id == p.requested_by {
        return Err(GovError::SeparationOfDuties(format!(
            "{} requested this promotion and may not review it",
            caller.id
        )));
    }
    if p.risk_tier == RiskTier::High && decision == Decision::Approve {
        if let Some(other) = p.reviews.iter().find(|r| {
            r.stage != stage
                && r.status == ReviewStatus::Approved
                && r.decided_by.as_ref() == Some(&caller.id)
        }) {
            return Err(GovError::SeparationOfDuties(format!(
                "{} already approved the {} review of this high-risk promotion; another person must approve {stage}",
                caller.id, other.stage
            )));
        }
    }
    Ok(())
}

/// Rule 6: `Ok` unless `caller` last administered principals (`administered_at`) at or after
/// promotion `p` was requested.
pub(crate) fn administered_during(
    caller: &Caller,
    p: &Promotion,
    administered_at: Option<DateTime<Utc>>,
) -> Result<(), GovError> {
    match administered_at {
        Some(t) if t >= p.requested_at => Err(GovError::SeparationOfDuties(format!(
            "{} administered principals at {} while this promotion was open and may not review it",
            caller.id,
            t.to_rfc3339()
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::records::{PromotionStatus, Review};
    use crate::testing::vn;
    use crate::types::{Environment, ModelName, PrincipalId};

    fn caller(id: &str, roles: &[Role]) -> Caller {
        Caller {
            id: PrincipalId::parse(id).unwrap(),
            roles: roles.to_vec(),
            auth: crate::types::AuthMethod::Token,
        }
    }

    /// A promotion of `credit-risk` v2 registered by dana, requested by rita, with one
    /// pending review per stage of `tier`'s production policy.
    fn promotion(tier: RiskTier) -> Promotion {
        let stages: &[ReviewStage] = match tier {
            RiskTier::Low => &[ReviewStage::Technical],
            RiskTier::Medium => &[ReviewStage::Technical, ReviewStage::Business],
            RiskTier::High => ReviewStage::ALL,
        };
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let name = ModelName::parse("credit-risk").unwrap();
        let id = "credit-risk.2.pr-1".to_owned();
        Promotion {
            id: id.clone(),
            name: name.clone(),
            version: vn(2),
            target: Environment::Production,
            status: PromotionStatus::InReview,
            reviews: stages
                .iter()
                .map(|&stage| Review {
                    id: format!("{id}-{stage}"),
                    promotion_id: id.clone(),
                    name: name.clone(),
                    version: vn(2),
                    target: Environment::Production,
                    stage,
                    status: ReviewStatus::Pending,
                    deadline: at + chrono::Duration::days(3),
                    decided_by: None,
                    decided_at: None,
                    decision: None,
                    comment: None,
                    conditions: vec![],
                })
                .collect(),
            requested_by: PrincipalId::parse("rita").unwrap(),
            requested_at: at,
            registered_by: PrincipalId::parse("dana").unwrap(),
            risk_tier: tier,
            closed_at: None,
            revision: 1,
        }
    }

    /// `p` with its `stage` review approved by `by`.
    fn approved(mut p: Promotion, stage: ReviewStage, by: &str) -> Promotion {
        let r = p.reviews.iter_mut().find(|r| r.stage == stage).unwrap();
        r.status = ReviewStatus::Approved;
        r.decision = Some(Decision::Approve);
        r.decided_by = Some(PrincipalId::parse(by).unwrap());
        p
    }

    fn is_separation(r: Result<(), GovError>) -> String {
        match r {
            Err(GovError::SeparationOfDuties(why)) => why,
            other => panic!("expected a separation-of-duties refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_reviewer_with_the_stage_role_may_approve_and_reject() {
        let tom = caller("tom", &[Role::TechnicalReviewer]);
        for tier in RiskTier::ALL {
            let p = promotion(*tier);
            for d in Decision::ALL {
                assert!(separation_of_duties(&tom, &p, ReviewStage::Technical, *d).is_ok());
            }
        }
    }

    #[test]
    fn the_registrant_never_decides_a_review_of_its_own_version() {
        let dana = caller("dana", &[Role::Developer, Role::TechnicalReviewer]);
        let why = is_separation(separation_of_duties(
            &dana,
            &promotion(RiskTier::Low),
            ReviewStage::Technical,
            Decision::Approve,
        ));
        assert_eq!(
            why,
            "dana registered credit-risk version 2 and may not review its promotion"
        );
        let reject = separation_of_duties(
            &dana,
            &promotion(RiskTier::Low),
            ReviewStage::Technical,
            Decision::Reject,
        );
        assert!(matches!(reject, Err(GovError::SeparationOfDuties(_))));
    }

    #[test]
    fn the_promoter_never_decides_a_review_of_its_own_promotion() {
        // rita requested the promotion; as release manager she holds the deployment role.
        let rita = caller("rita", &[Role::ReleaseManager]);
        let why = is_separation(separation_of_duties(
            &rita,
            &promotion(RiskTier::High),
            ReviewStage::Deployment,
            Decision::Approve,
        ));
        assert_eq!(why, "rita requested this promotion and may not review it");
    }

    #[test]
    fn a_reviewer_decides_only_the_stages_its_roles_allow() {
        let bea = caller("bea", &[Role::BusinessReviewer]);
        let p = promotion(RiskTier::High);
        for stage in [
            ReviewStage::Technical,
            ReviewStage::Compliance,
            ReviewStage::Deployment,
        ] {
            match separation_of_duties(&bea, &p, stage, Decision::Approve) {
                Err(GovError::Forbidden(why)) => assert_eq!(
                    why,
                    format!(
                        "deciding a {stage} review requires the role {}",
                        stage.reviewer_role()
                    )
                ),
                other => panic!("{stage}: expected Forbidden, got {other:?}"),
            }
        }
        assert!(separation_of_duties(&bea, &p, ReviewStage::Business, Decision::Approve).is_ok());
    }

    #[test]
    fn the_role_is_checked_before_the_other_rules() {
        // The registrant without the stage's role hears about the role first.
        let dana = caller("dana", &[Role::Developer]);
        let r = separation_of_duties(
            &dana,
            &promotion(RiskTier::Low),
            ReviewStage::Technical,
            Decision::Approve,
        );
        assert!(matches!(r, Err(GovError::Forbidden(_))), "{r:?}");
    }

    #[test]
    fn in_the_high_tier_nobody_approves_two_stages_of_one_promotion() {
        let carl = caller("carl", &[Role::TechnicalReviewer, Role::ComplianceReviewer]);
        let p = approved(promotion(RiskTier::High), ReviewStage::Technical, "carl");
        let why = is_separation(separation_of_duties(
            &carl,
            &p,
            ReviewStage::Compliance,
            Decision::Approve,
        ));
        assert_eq!(
            why,
            "carl already approved the technical review of this high-risk promotion; another person must approve compliance"
        );
        // Rejecting a second stage stays possible: a rejection ends the promotion anyway.
        assert!(separation_of_duties(&carl, &p, ReviewStage::Compliance, Decision::Reject).is_ok());
        // Another person may approve it.
        let cleo = caller("cleo", &[Role::ComplianceReviewer]);
        assert!(
            separation_of_duties(&cleo, &p, ReviewStage::Compliance, Decision::Approve).is_ok()
        );
    }

    #[test]
    fn below_the_high_tier_one_person_may_approve_two_stages() {
        let carl = caller("carl", &[Role::TechnicalReviewer, Role::BusinessReviewer]);
        let p = approved(promotion(RiskTier::Medium), ReviewStage::Technical, "carl");
        assert!(separation_of_duties(&carl, &p, ReviewStage::Business, Decision::Approve).is_ok());
    }

    #[test]
    fn an_admin_decides_no_reviews_even_with_the_reviewer_role() {
        let ada = caller("ada", &[Role::Admin, Role::TechnicalReviewer]);
        let why = is_separation(separation_of_duties(
            &ada,
            &promotion(RiskTier::Low),
            ReviewStage::Technical,
            Decision::Approve,
        ));
        assert_eq!(
            why,
            "an admin manages principals and policy and may not decide reviews"
        );
    }
}
