//! Steward's domain: model versions, evidence, policy, promotions and reviews, deployments,
//! monitoring, retirement, separation of duties and the tamper-evident audit log.
//!
//! Invariants: this crate does no I/O and depends on no AWS, HTTP or database crate. Storage,
//! time, ids and workflows reach it through the traits in [`ports`]; every business rule lives
//! here, so the embedded and AWS backends cannot disagree about one.

pub mod audit;
pub mod checks;
pub mod error;
pub mod events;
pub mod ids;
pub mod manifest;
pub mod mlflow;
pub mod pack;
pub mod policy;
pub mod ports;
pub mod records;
pub mod service;
pub mod serving;
#[cfg(feature = "testing")]
pub mod testing;
pub mod types;
pub mod webhooks;

pub use service::integrations;

pub use error::{FieldError, GovError, StoreError};
pub use policy::Policy;
pub use service::Governance;
