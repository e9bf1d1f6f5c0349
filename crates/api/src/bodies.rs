//! The small request bodies, shared with clients (the CLI serializes the same types).
//!
//! Invariants: every body refuses unknown fields, so a misspelt field is a 422 naming it rather
//! than a silently ignored option. Bodies carry no identity: the actor is always the
//! authenticated caller. Review decisions and monitoring signals use the core's own input
//! types (`DecisionInput`, `SignalInput`).

use serde::{Deserialize, Serialize};
use steward_core::types::{Environment, Role};

pub use steward_core::service::{DecisionInput, SignalInput};

/// `POST /v1/models/{name}/versions/{version}/promotions`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionRequest {
    pub target: Environment,
    /// The version revision the caller last read; a later change makes the request a 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

/// `POST /v1/models/{name}/versions/{version}/deployments`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRequest {
    pub environment: Environment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

/// `POST /v1/models/{name}/rollback`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub reason: String,
    /// Roll back only while this version serves production (409 otherwise): a client that
    /// read production first cannot roll back a state it never saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<u32>,
}

/// `POST /v1/models/{name}/versions/{version}/retirement`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetirementRequest {
    pub reason: String,
    /// As sent: a 0 is answered like any version the model does not have (a `replacement`
    /// validation error from the handler), not as a malformed body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<u32>,
}

/// `POST /v1/models/{name}/versions/{version}/retirement/confirmation`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetirementConfirmation {
    pub decision: steward_core::types::Decision,
    /// Required to refuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `PUT /v1/principals/{id}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    pub roles: Vec<Role>,
}
