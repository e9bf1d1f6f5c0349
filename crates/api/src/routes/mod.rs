//! Route handlers: each parses its input, calls `Governance` once and maps the result.

pub mod audit;
pub mod checks;
pub mod evidence;
pub mod identity;
pub mod inventory;
pub mod models;
pub mod monitoring;
pub mod principals;
pub mod reviews;
pub mod serving;
pub mod webhooks;
