//! The list of pending retirement requests: what confirmers (compliance reviewers and release
//! managers) work through, as reviewers work through `GET /v1/reviews`.
//!
//! Invariants: every authenticated caller may read the list (a retirement request is no
//! secret, and the people waiting on it need to see it); `may_decide` says whether *this*
//! caller may confirm or refuse an item, by the same rules `decide_retirement` enforces (a
//! confirmer role, never the requester, only while awaiting confirmation). The cursor is
//! checked before anything else, the same for everyone.

use super::*;

/// A pending retirement request as the list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetirementRequest {
    pub retirement_id: String,
    pub name: ModelName,
    pub version: VersionNumber,
    pub status: RetirementStatus,
    pub reason: String,
    pub replacement: Option<VersionNumber>,
    pub requested_by: PrincipalId,
    pub requested_at: DateTime<Utc>,
    pub confirmed_by: Option<PrincipalId>,
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Whether the caller may confirm or refuse it now.
    pub may_decide: bool,
}

/// The roles that confirm or refuse retirements.
pub(super) const CONFIRMER_ROLES: &[Role] = &[Role::ComplianceReviewer, Role::ReleaseManager];

impl Governance {
    /// Pending retirement requests in `status`, oldest request first.
    pub async fn list_retirements(
        &self,
        caller: &Caller,
        status: RetirementStatus,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<RetirementRequest>, GovError> {
        decode_cursor(cursor)?;
        let page = self
            .registry
            .retirements(status, cursor, limit.clamp(1, 500))
            .await?;
        let confirmer = CONFIRMER_ROLES.iter().any(|r| caller.has(*r));
        let items = page
            .items
            .into_iter()
            .filter_map(|v| {
                let p = v.pending_retirement?;
                let may_decide = confirmer
                    && p.status() == RetirementStatus::AwaitingConfirmation
                    && p.requested_by != caller.id;
                Some(RetirementRequest {
                    retirement_id: p.id.clone(),
                    name: v.name,
                    version: v.version,
                    status: p.status(),
                    reason: p.reason,
                    replacement: p.replacement,
                    requested_by: p.requested_by,
                    requested_at: p.requested_at,
                    confirmed_by: p.confirmed_by,
                    confirmed_at: p.confirmed_at,
                    may_decide,
                })
            })
            .collect();
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }
}
