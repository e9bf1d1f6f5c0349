//! Inbound integration endpoints under `/v1/integrations/...`: vendors' signed callbacks.
//! They authenticate by each vendor's signature, not by Steward credentials, and act through
//! the same `Governance` calls as the API.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use axum::Router;
use steward_core::Governance;

use crate::{Deliverer, Integrations};

/// The largest body an inbound endpoint reads (vendors' webhooks are far smaller).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What the inbound handlers share.
#[derive(Clone)]
pub struct Inbound {
    pub gov: Arc<Governance>,
    pub integrations: Arc<Integrations>,
    /// Queues what an endpoint sends back later (GitHub's deployment reviews).
    pub deliverer: Deliverer,
}

/// The routes of every inbound integration `deliverer` has (none configured: each route
/// answers 404); they act through its governance service.
pub fn router(deliverer: Deliverer) -> Router {
    let state = Inbound {
        gov: deliverer.gov().clone(),
        integrations: deliverer.integrations().clone(),
        deliverer,
    };
    Router::new()
        .route(
            "/v1/integrations/jira/{name}",
            post(crate::jira::inbound::receive).layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .route(
            "/v1/integrations/github/{name}",
            post(crate::github::webhook).layer(DefaultBodyLimit::max(crate::github::BODY_LIMIT)),
        )
        .with_state(state)
}
