//! API tests: the real router over HTTP on 127.0.0.1, on a real SQLite store per test.

#[path = "../common/mod.rs"]
mod common;

mod audit;
mod checks;
mod checks_policy;
mod concurrency;
mod console;
mod duties;
mod evidence_pack;
mod fuzz;
mod inventory;
mod lifecycle;
mod mlflow;
mod monitoring;
mod oidc;
mod openapi;
mod periodic;
mod principals;
mod robustness;
mod serious;
mod serving;
mod validation;
mod webhooks;
