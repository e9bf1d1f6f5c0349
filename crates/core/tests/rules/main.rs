//! Governance rules at core level: the governance service over the in-memory ports of
//! `steward_core::testing`, with time moved by a manual clock. No I/O, no sleeps, no runtime:
//! each test is a plain `#[test]` that runs its scenario with `block_on`.
//!
//! One file per area: review stages per tier, separation of duties, registration, review
//! expiry, periodic reviews, monitoring and rollback, retirement, idempotent retries, change
//! control (production waiting on a change request), and the in-memory store's own semantics
//! (which must match the SQLite store's).

mod automation;
mod change_control;
mod duties;
mod evidence_pack;
mod expiry;
mod idempotency;
mod monitoring;
mod periodic;
mod races;
mod registration;
mod retirement;
mod retirements;
mod serious;
mod serving;
mod store;
mod tiers;
mod webhooks;

use steward_core::records::{Promotion, Review};
use steward_core::types::ReviewStage;
use steward_core::GovError;

/// The stages of a promotion's reviews, in order.
pub fn stages(p: &Promotion) -> Vec<ReviewStage> {
    p.reviews.iter().map(|r| r.stage).collect()
}

/// The `stage` review of `p`.
pub fn review(p: &Promotion, stage: ReviewStage) -> &Review {
    p.reviews
        .iter()
        .find(|r| r.stage == stage)
        .unwrap_or_else(|| panic!("no {stage} review in {p:?}"))
}

/// The reasons of a policy refusal.
pub fn policy_reasons<T: std::fmt::Debug>(r: Result<T, GovError>) -> Vec<String> {
    match r {
        Err(GovError::Policy(reasons)) => reasons,
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

/// The fields named by a validation refusal.
pub fn fields<T: std::fmt::Debug>(r: Result<T, GovError>) -> Vec<String> {
    match r {
        Err(GovError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected a validation refusal, got {other:?}"),
    }
}

/// Why separation of duties refused.
pub fn separation<T: std::fmt::Debug>(r: Result<T, GovError>) -> String {
    match r {
        Err(GovError::SeparationOfDuties(why)) => why,
        other => panic!("expected a separation-of-duties refusal, got {other:?}"),
    }
}

/// Whether `r` is a conflict (409), from the service or from the store.
pub fn is_conflict<T>(r: &Result<T, GovError>) -> bool {
    matches!(r, Err(e) if e.code() == "conflict")
}
