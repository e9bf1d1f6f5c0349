//! The fixed error vocabulary of Steward's Lambdas, so Step Functions `Retry`/`Catch` and
//! alarms can match on `error_type`.
//!
//! Invariant: every failure a function reports has one of [`ERROR_TYPES`] as its type; only
//! `Steward.Transient` (a backend failed) and `Steward.Contended` (a lost race) are worth
//! retrying. `Steward.Conflict` is a state no retry changes, so it is never redelivered. [`Failure`] carries a type and a message from the
//! handlers to the Lambda mains, which hand both to the runtime as its `Diagnostic`.

use steward_core::error::chain;
use steward_core::{GovError, StoreError};

use crate::env::ConfigError;
use crate::events::{PublishError, PERMANENT_CODES};
use crate::kms::SignError;
use crate::s3::AuditObjectError;
use crate::ssm::SecretError;
use crate::workflows::{WorkflowError, REVIEW_REJECTED, STOPPED};

pub const VALIDATION: &str = "Steward.Validation";
pub const POLICY: &str = "Steward.Policy";
pub const FORBIDDEN: &str = "Steward.Forbidden";
pub const NOT_FOUND: &str = "Steward.NotFound";
pub const CONFLICT: &str = "Steward.Conflict";
/// A commit lost a race with another writer; nothing was written and a retry may succeed.
pub const CONTENDED: &str = "Steward.Contended";
pub const TRANSIENT: &str = "Steward.Transient";
pub const CONFIG: &str = "Steward.Config";
/// The error a rejected review's workflow task fails with (the approval state machine's
/// `Catch` matches it); see [`crate::workflows::REVIEW_REJECTED`].
pub const REVIEW_REJECTED_ERROR: &str = REVIEW_REJECTED;
/// The error an approval execution Steward stopped ends with.
pub const STOPPED_ERROR: &str = STOPPED;
/// Inside an approval run: a review's task timed out (`statemachines/approval.asl.json` turns
/// `States.Timeout` into it, since `States.*` errors do not leave a Map iteration intact).
pub const REVIEW_TIMED_OUT_ERROR: &str = "Steward.ReviewTimedOut";
/// What a confirmer sends (`SendTaskFailure`) to refuse a retirement.
pub const RETIREMENT_REFUSED_ERROR: &str = crate::workflows::RETIREMENT_REFUSED;
/// A workflow run's terminal failure (a step that could not be done or an outcome that could
/// not be published).
pub const WORKFLOW_FAILED_ERROR: &str = "Steward.WorkflowFailed";

/// Every error type a Steward function or workflow reports.
pub const ERROR_TYPES: &[&str] = &[
    VALIDATION,
    POLICY,
    FORBIDDEN,
    NOT_FOUND,
    CONFLICT,
    CONTENDED,
    TRANSIENT,
    CONFIG,
    REVIEW_REJECTED_ERROR,
    STOPPED_ERROR,
    REVIEW_TIMED_OUT_ERROR,
    RETIREMENT_REFUSED_ERROR,
    WORKFLOW_FAILED_ERROR,
];

/// The error type of a governance failure.
pub fn error_type(e: &GovError) -> &'static str {
    match e {
        GovError::Validation(_) | GovError::Store(StoreError::InvalidCursor) => VALIDATION,
        GovError::Policy(_) => POLICY,
        GovError::Forbidden(_) | GovError::SeparationOfDuties(_) => FORBIDDEN,
        GovError::NotFound(_) => NOT_FOUND,
        GovError::Conflict(_) => CONFLICT,
        GovError::Contended(_)
        | GovError::Store(StoreError::Conflict(_))
        | GovError::Store(StoreError::IdempotencyKeyTaken) => CONTENDED,
        GovError::Store(StoreError::Backend(_)) => TRANSIENT,
        // A record that cannot be serialised is a bug: retrying cannot help.
        GovError::Serialization { .. } => WORKFLOW_FAILED_ERROR,
    }
}

/// The error type of a storage failure.
pub fn store_error_type(e: &StoreError) -> &'static str {
    match e {
        StoreError::Conflict(_) | StoreError::IdempotencyKeyTaken => CONTENDED,
        StoreError::InvalidCursor => VALIDATION,
        StoreError::Backend(_) => TRANSIENT,
    }
}

/// A failure as a function reports it: one of [`ERROR_TYPES`] and a message for people.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct Failure {
    pub error_type: &'static str,
    pub message: String,
}

// What `main` prints when init fails: the type and the message, not a struct dump.
impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl Failure {
    pub fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(ERROR_TYPES.contains(&error_type), "{error_type}");
        Self {
            error_type,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(VALIDATION, message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(CONFIG, message)
    }

    /// Whether trying again may succeed (a batch item failure rather than a dropped message).
    pub fn is_transient(&self) -> bool {
        self.error_type == TRANSIENT || self.error_type == CONTENDED
    }
}

impl From<GovError> for Failure {
    fn from(e: GovError) -> Self {
        // The whole chain: a backend failure's cause (the SDK error) is its source.
        Self::new(error_type(&e), chain(&e).to_string())
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::new(store_error_type(&e), chain(&e).to_string())
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::new(CONFIG, e.to_string())
    }
}

impl From<AuditObjectError> for Failure {
    fn from(e: AuditObjectError) -> Self {
        let t = match &e {
            AuditObjectError::AuditConflict { .. } => CONFLICT,
            AuditObjectError::S3(_) => TRANSIENT,
            AuditObjectError::Malformed { .. } => VALIDATION,
        };
        Self::new(t, e.to_string())
    }
}

impl From<SecretError> for Failure {
    fn from(e: SecretError) -> Self {
        // A missing parameter or a refused read is the deployment's to fix; SSM being
        // throttled or unreachable passes (Lambda runs the init again).
        let t = if e.is_transient() { TRANSIENT } else { CONFIG };
        Self::new(t, chain(&e).to_string())
    }
}

impl From<PublishError> for Failure {
    fn from(e: PublishError) -> Self {
        // Entries EventBridge refused for good (malformed, too large, not authorised) fail
        // again on every retry; everything else may pass later.
        let permanent = matches!(&e, PublishError::EntriesFailed { failed, .. }
            if failed.iter().all(|f| PERMANENT_CODES.contains(&f.code.as_str())));
        Self::new(
            if permanent { VALIDATION } else { TRANSIENT },
            e.to_string(),
        )
    }
}

impl From<WorkflowError> for Failure {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::InvalidStateMachineArn(_) => Self::new(CONFIG, e.to_string()),
            WorkflowError::Tokens(inner) => inner.into(),
            WorkflowError::Request { .. } => Self::new(TRANSIENT, e.to_string()),
        }
    }
}

impl From<SignError> for Failure {
    fn from(e: SignError) -> Self {
        let t = match &e {
            SignError::UnsupportedKey { .. } => CONFIG,
            SignError::Kms { .. } | SignError::SignatureDoesNotVerify { .. } => TRANSIENT,
        };
        Self::new(t, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_backend_failures_and_lost_races_are_transient() {
        assert_eq!(
            error_type(&GovError::Store(StoreError::Backend("x".into()))),
            TRANSIENT
        );
        assert_eq!(error_type(&GovError::Conflict("x".into())), CONFLICT);
        assert_eq!(error_type(&GovError::Contended("x".into())), CONTENDED);
        assert!(!Failure::from(GovError::Conflict("x".into())).is_transient());
        assert!(Failure::from(GovError::Contended("x".into())).is_transient());
        assert!(Failure::from(GovError::Store(StoreError::Conflict("x".into()))).is_transient());
        assert_eq!(
            error_type(&GovError::SeparationOfDuties("x".into())),
            FORBIDDEN
        );
        assert_eq!(error_type(&GovError::field("a", "b")), VALIDATION);
        assert!(ERROR_TYPES.iter().all(|t| t.starts_with("Steward.")));
    }

    #[test]
    fn every_failure_names_a_type_of_the_vocabulary() {
        let failures: Vec<Failure> = vec![
            GovError::NotFound("x".into()).into(),
            StoreError::Backend("x".into()).into(),
            ConfigError(vec!["STEWARD_TABLE is not set".into()]).into(),
            WorkflowError::InvalidStateMachineArn("x".into()).into(),
            WorkflowError::Tokens(StoreError::Backend("x".into())).into(),
            SignError::Kms {
                op: "Sign",
                message: "x".into(),
            }
            .into(),
            PublishError::Request {
                message: "x".into(),
                published: 0,
                total: 1,
            }
            .into(),
        ];
        for f in &failures {
            assert!(ERROR_TYPES.contains(&f.error_type), "{f}");
        }
        assert_eq!(failures[2].error_type, CONFIG);
        assert_eq!(format!("{:?}", failures[2]), format!("{}", failures[2]));
        assert!(failures[2].message.contains("STEWARD_TABLE"));
        assert!(failures[1].is_transient() && !failures[0].is_transient());
        assert!(ERROR_TYPES.contains(&"Steward.ReviewRejected"));
    }

    #[test]
    fn every_steward_error_a_state_machine_names_is_in_the_vocabulary() {
        for asl in [
            include_str!("../../../statemachines/approval.asl.json"),
            include_str!("../../../statemachines/retirement.asl.json"),
        ] {
            for (i, _) in asl.match_indices("\"Steward.") {
                let name: String = asl[i + 1..].chars().take_while(|c| *c != '"').collect();
                assert!(
                    ERROR_TYPES.contains(&name.as_str()),
                    "{name} is not in ERROR_TYPES"
                );
            }
        }
    }
}
