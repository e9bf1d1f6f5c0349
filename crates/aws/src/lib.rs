//! Steward's AWS backend: the core ports on DynamoDB (registry and audit log, one table, see
//! `ACCESS_PATTERNS.md`), S3 (evidence, Object Lock audit objects), KMS (checkpoint signing),
//! EventBridge (governance events) and Step Functions (review workflows).
//!
//! Invariant: nothing here decides policy; every rule is in `steward-core`. These types only
//! store, publish and sign what core hands them, and report failures as typed errors.

pub mod config;
pub mod diagnostic;
pub mod dynamo;
pub mod env;
pub mod events;
pub mod handlers;
pub mod integrations;
pub mod kms;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod s3;
pub mod ssm;
pub mod workflows;

pub use config::{sdk_config, Endpoints, RequestCounter};
