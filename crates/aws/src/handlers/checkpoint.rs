//! The scheduled checkpoint: signs the audit log's current head and stores the checkpoint in
//! the table and in the Object Lock bucket; then, as a safety net for workflows that never
//! reported a timeout, expires the reviews past their deadline; last, opens the periodic
//! reviews that fell due (`Governance::open_due_periodic_reviews`: once per due period, so
//! running every 5 minutes emits one `PeriodicReviewDue` per version and period).
//!
//! Invariants:
//! - The table arbitrates: `DynamoStore::put_checkpoint` stores a checkpoint only if it
//!   advances the latest one. What goes to S3 is always the checkpoint the table holds for
//!   that size, so two concurrent runs (KMS ECDSA signatures differ every time) never offer
//!   the bucket two different objects for one key.
//! - An idle log is not signed again; its latest checkpoint is written to S3 again (a no-op
//!   when present), which repairs a run that stored the checkpoint but failed before S3.
//! - Checkpoints sign `(size, root, time of the last event)` exactly as
//!   `DynamoStore::head` reports them.

use std::sync::Arc;

use serde::Serialize;
use steward_core::ports::AuditLog;
use steward_core::Governance;

use super::Failure;
use crate::dynamo::DynamoStore;
use crate::kms::{sign_checkpoint, AsyncCheckpointSigner};
use crate::s3::{AuditObjects, PutOutcome};

/// What the checkpoint function uses.
#[derive(Clone)]
pub struct Checkpointer {
    pub gov: Arc<Governance>,
    pub store: Arc<DynamoStore>,
    pub objects: AuditObjects,
    pub signer: Arc<dyn AsyncCheckpointSigner>,
}

/// What one run did (the function's result, so a schedule's history shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointReport {
    /// The size of the latest checkpoint after the run (0: the log is empty).
    pub size: u64,
    /// Whether this run signed and stored a new checkpoint.
    pub signed: bool,
    /// Whether this run wrote the checkpoint's S3 object (false: it was there already).
    pub object_written: bool,
    /// Promotions ended because a review passed its deadline.
    pub expired_promotions: usize,
    /// Periodic re-certification reviews opened because a production version fell due.
    pub periodic_reviews_opened: usize,
    /// Serious incidents reminded that their report falls due (once per incident).
    pub serious_incident_reminders: usize,
}

/// One scheduled run. Requests: `GetItem` of the head and of the latest checkpoint; when the
/// log grew, one KMS `Sign` and one `TransactWriteItems`; one `PutObject` (plus `HeadObject`
/// when present); then the expiry query; then the production models (one query per 50
/// models), their versions (one batched read per page) and, for versions due, one batched
/// read and one commit per review opened.
pub async fn checkpoint(deps: &Checkpointer) -> Result<CheckpointReport, Failure> {
    let head = deps.store.head().await?;
    let latest = deps.store.latest_checkpoint().await?;
    let mut report = CheckpointReport {
        size: latest.as_ref().map_or(0, |c| c.size),
        signed: false,
        object_written: false,
        expired_promotions: 0,
        periodic_reviews_opened: 0,
        serious_incident_reminders: 0,
    };
    let stored = match (head.time, &latest) {
        (None, _) => None,
        (Some(_), Some(cp)) if cp.size >= head.size => latest.clone(),
        (Some(time), _) => {
            let cp = sign_checkpoint(deps.signer.as_ref(), head.size, head.root, time).await?;
            if deps.store.put_checkpoint(&cp).await? {
                report.signed = true;
                Some(cp)
            } else {
                // Another run stored this size (or a later one) first: write what it stored.
                deps.store.latest_checkpoint().await?
            }
        }
    };
    if let Some(cp) = stored {
        report.size = cp.size;
        let outcome = deps.objects.put_checkpoint(&cp).await?;
        report.object_written = matches!(outcome, PutOutcome::Written { .. });
    }
    report.expired_promotions = deps.gov.expire_due_reviews().await?;
    report.periodic_reviews_opened = deps.gov.open_due_periodic_reviews().await?;
    report.serious_incident_reminders = deps
        .gov
        .serious_incident_reminders(deps.gov.now())
        .await?
        .len();
    tracing::info!(?report, "checkpoint run");
    Ok(report)
}
