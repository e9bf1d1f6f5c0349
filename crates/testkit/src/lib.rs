//! Steward's shared test setup, for the test suites of the other crates only (a dev-dependency,
//! never published): what many test files used to copy.
//!
//! - [`people`]: callers with the roles the rules care about, one distinct principal each;
//! - [`fixtures`]: the example manifest (`examples/credit-risk-v1.json`), staging evaluations,
//!   review decisions and the short test policies;
//! - [`retirements`], [`registered_models`]: store-independent scenarios every real store runs
//!   (the pending-retirements list; MLflow registered models' records);
//! - with the `aws` feature, [`emulators`]: the DynamoDB Local and moto endpoints
//!   (`STEWARD_TEST_DYNAMODB_ENDPOINT`, `STEWARD_TEST_AWS_ENDPOINT`) and SDK configuration for
//!   them, and [`sqs`]: the SQS events a Lambda event source mapping hands a function;
//! - with the `gateway` feature, [`gateway`]: API Gateway with IAM authorisation on 127.0.0.1,
//!   checking SigV4 with AWS's signer, in front of the API Lambda's router;
//! - with the `oidc` feature, [`oidc`]: a real OpenID Connect provider on 127.0.0.1
//!   (`scripts/oidc-provider`) and a browserless login against it.
//!
//! A test that needs the emulators gets them from [`emulators!`] or fails, with the command
//! that starts them: no test passes by doing nothing.

pub mod fixtures;
pub mod people;
pub mod registered_models;
pub mod retirements;

#[cfg(feature = "aws")]
pub mod emulators;
#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "oidc")]
pub mod oidc;
#[cfg(feature = "aws")]
pub mod sqs;

pub use fixtures::*;
pub use people::*;
pub use registered_models::registered_models_are_kept_the_same_on;
pub use retirements::{pending_retirements_list_the_same_on, ConfirmingWorkflows};

#[cfg(feature = "aws")]
pub use emulators::Emulators;
#[cfg(feature = "oidc")]
pub use oidc::OidcProvider;
#[cfg(feature = "aws")]
pub use sqs::*;

/// Version `n` (at least 1), for tests that name versions by number.
pub fn vn(n: u32) -> steward_core::ids::VersionNumber {
    steward_core::ids::VersionNumber::new(n).expect("a version number is at least 1")
}

/// A name no other test (or earlier run against the same emulators) uses: `prefix-` and 12
/// hex digits of a fresh UUID.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}
