//! The people of the tests: one distinct IAM user per role (separation of duties compares
//! principals), as the AWS backend sees callers.

use steward_core::ports::Caller;
use steward_core::types::{PrincipalId, ReviewStage, Role};

/// The account of every test principal.
pub const ACCOUNT: &str = "123456789012";

/// The ARN of the test IAM user `who`.
pub fn user_arn(who: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{who}")
}

/// A caller with exactly this principal id and these roles.
pub fn caller(id: &str, roles: &[Role]) -> Caller {
    Caller {
        id: PrincipalId::parse(id).unwrap_or_else(|e| panic!("principal {id:?}: {e:?}")),
        roles: roles.to_vec(),
        auth: steward_core::types::AuthMethod::Token,
    }
}

/// The IAM user `who` of the test account with these roles.
pub fn user(who: &str, roles: &[Role]) -> Caller {
    caller(&user_arn(who), roles)
}

/// A developer: registers, requests promotions, deploys to staging.
pub fn dev() -> Caller {
    user("dev", &[Role::Developer])
}

/// A second developer, distinct from [`dev`].
pub fn dev2() -> Caller {
    user("dev2", &[Role::Developer])
}

/// The release manager: deploys to production, decides deployment reviews.
pub fn rel() -> Caller {
    user("rel", &[Role::ReleaseManager])
}

/// An operator.
pub fn ops() -> Caller {
    user("ops", &[Role::Operator])
}

/// The technical reviewer (the reviewer of [`ReviewStage::Technical`]).
pub fn tech() -> Caller {
    reviewer(ReviewStage::Technical)
}

/// The compliance reviewer (the reviewer of [`ReviewStage::Compliance`]).
pub fn compliance() -> Caller {
    reviewer(ReviewStage::Compliance)
}

/// An auditor: reads the audit log.
pub fn auditor() -> Caller {
    user("auditor", &[Role::Auditor])
}

/// An admin: grants roles.
pub fn admin() -> Caller {
    user("admin", &[Role::Admin])
}

/// A distinct reviewer per stage, holding that stage's reviewer role only; the deployment
/// reviewer is the release manager, [`rel`].
pub fn reviewer(stage: ReviewStage) -> Caller {
    match stage {
        ReviewStage::Technical => user("tech", &[Role::TechnicalReviewer]),
        ReviewStage::Business => user("biz", &[Role::BusinessReviewer]),
        ReviewStage::Compliance => user("comp", &[Role::ComplianceReviewer]),
        ReviewStage::Deployment => rel(),
    }
}

/// Everyone above, each once: both developers, the operator, the auditor, the admin and one
/// reviewer per stage.
pub fn everyone() -> Vec<Caller> {
    let mut all = vec![dev(), dev2(), ops(), auditor(), admin()];
    all.extend(ReviewStage::ALL.iter().map(|s| reviewer(*s)));
    all
}
