//! A [`Workflows`] port that records what the service told it.
//!
//! Invariants: every call is recorded in order, with the ids it named; nothing else happens.
//! Whether retirements need confirmation is chosen at construction (embedded: no; AWS: yes).

use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ports::Workflows;
use crate::records::{ModelVersion, PendingRetirement, Promotion, Review};

/// One call the service made to the workflows port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowCall {
    PromotionStarted {
        promotion: String,
    },
    ReviewDecided {
        promotion: String,
        review: String,
    },
    RetirementRequested {
        retirement: String,
    },
    RetirementDecided {
        retirement: String,
        refusal: Option<String>,
    },
}

/// Records every workflow call; confirms retirements if built with
/// [`RecordingWorkflows::confirming_retirements`].
#[derive(Debug, Default)]
pub struct RecordingWorkflows {
    confirms: bool,
    calls: Mutex<Vec<WorkflowCall>>,
}

impl RecordingWorkflows {
    /// Workflows that take retirements through request, confirmation and archive (as on AWS).
    pub fn confirming_retirements() -> Self {
        Self {
            confirms: true,
            calls: Mutex::default(),
        }
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<WorkflowCall> {
        self.lock().clone()
    }

    fn record(&self, call: WorkflowCall) {
        self.lock().push(call);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WorkflowCall>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Workflows for RecordingWorkflows {
    async fn promotion_started(&self, p: &Promotion) -> Result<(), StoreError> {
        self.record(WorkflowCall::PromotionStarted {
            promotion: p.id.clone(),
        });
        Ok(())
    }

    async fn review_decided(&self, p: &Promotion, r: &Review) -> Result<(), StoreError> {
        self.record(WorkflowCall::ReviewDecided {
            promotion: p.id.clone(),
            review: r.id.clone(),
        });
        Ok(())
    }

    fn confirms_retirements(&self) -> bool {
        self.confirms
    }

    async fn retirement_requested(
        &self,
        _version: &ModelVersion,
        request: &PendingRetirement,
    ) -> Result<(), StoreError> {
        self.record(WorkflowCall::RetirementRequested {
            retirement: request.id.clone(),
        });
        Ok(())
    }

    async fn retirement_decided(
        &self,
        request: &PendingRetirement,
        refusal: Option<&str>,
    ) -> Result<(), StoreError> {
        self.record(WorkflowCall::RetirementDecided {
            retirement: request.id.clone(),
            refusal: refusal.map(str::to_owned),
        });
        Ok(())
    }
}
