//! How long evidence packs are kept (`[evidence]`): EU AI Act Art. 18 keeps the technical
//! documentation for ten years after the system is placed on the market, so ten years is the
//! default. On AWS every pack is written under S3 Object Lock COMPLIANCE until then.
//!
//! Invariant: the period is a whole number of years between 1 and 100.

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceRetention {
    /// Years a pack is retained from the day it was produced.
    pub retention_years: u32,
}

impl Default for EvidenceRetention {
    fn default() -> Self {
        Self {
            retention_years: 10,
        }
    }
}

impl EvidenceRetention {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub(super) fn check(&self, errors: &mut Vec<FieldError>) {
        if !(1..=100).contains(&self.retention_years) {
            errors.push(FieldError::new(
                "evidence.retention_years",
                "must be a whole number of years between 1 and 100",
            ));
        }
    }
}
