//! Change control: production deployments that wait on an approved change request in the
//! organisation's change-management system (ServiceNow), when one is attached.
//!
//! Invariants:
//! - Without a [`ChangeControl`] nothing changes: the gate is the policy's alone.
//! - With one, the production gate, a production deployment and a replacement taking over
//!   production are refused until the change request of that version is approved; the reason
//!   names the change (or says there is none). Staging is never asked about.
//! - Fail closed: a change system that cannot be asked is a refusal with a reason saying so,
//!   never an allowance and never an error that a caller could mistake for a pass.
//! - The approved change's number is recorded in the deployment's audit event (`change`).

use super::*;
use crate::ports::ChangeControl;

/// What change control says about taking a version to production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ChangeCheck {
    /// No change control is attached.
    NotRequired,
    /// The change with this number is approved.
    Approved(String),
    /// Why production must wait.
    Refused(String),
}

impl ChangeCheck {
    /// The refusal, as a gate reason.
    pub(super) fn reason(&self) -> Option<&str> {
        match self {
            ChangeCheck::Refused(why) => Some(why),
            _ => None,
        }
    }

    /// The approved change's number.
    pub(super) fn number(&self) -> Option<&str> {
        match self {
            ChangeCheck::Approved(n) => Some(n),
            _ => None,
        }
    }
}

impl Governance {
    /// Requires an approved change request in `changes` before any version reaches production.
    pub fn with_change_control(mut self, changes: Arc<dyn ChangeControl>) -> Self {
        self.change_control = Some(changes);
        self
    }

    /// Asks change control (when attached) whether `name` `version` may go to production now.
    pub(super) async fn change_check(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> ChangeCheck {
        let Some(cc) = &self.change_control else {
            return ChangeCheck::NotRequired;
        };
        let system = cc.system();
        match cc.change_for(name, version).await {
            Ok(Some(c)) if c.approved => ChangeCheck::Approved(c.number),
            Ok(Some(c)) => ChangeCheck::Refused(format!(
                "{system} change {} is not approved (state: {})",
                c.number, c.state
            )),
            Ok(None) => ChangeCheck::Refused(format!(
                "no {system} change request for {name} v{version} (one is opened when its production promotion is approved)"
            )),
            // Fail closed: the implementation logs the cause; the reason says what to wait for.
            Err(e) => {
                let why = match &e {
                    StoreError::Backend(b) => b.context().to_owned(),
                    other => other.to_string(),
                };
                ChangeCheck::Refused(format!(
                    "cannot check the {system} change request for {name} v{version}: {why}; production waits until {system} answers"
                ))
            }
        }
    }
}
