//! The pending-retirements list, the same scenario on every real store (SQLite, DynamoDB
//! Local): the rules tests check it on the in-memory store; these prove each store's query
//! answers the same, in the same order, page by page.

use steward_core::ports::Workflows;
use steward_core::records::RetirementStatus;
use steward_core::types::{Decision, RiskTier};
use steward_core::Governance;

use crate::{compliance, dev, manifest_at, rel, unique, vn};

/// A workflows port whose retirements wait for a workflow (as Step Functions' does), so a
/// retirement request stays pending until it is confirmed and archived.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConfirmingWorkflows;
impl Workflows for ConfirmingWorkflows {
    fn confirms_retirements(&self) -> bool {
        true
    }
}

fn listed(
    page: &steward_core::ports::Page<steward_core::service::RetirementRequest>,
) -> Vec<String> {
    page.items.iter().map(|r| r.retirement_id.clone()).collect()
}

/// Four requests on fresh models (requested in order, by the release manager); one confirmed,
/// one refused, one confirmed and archived. Checks the awaiting and confirmed lists, their
/// order, `may_decide`, and paging one item at a time. `gov` must confirm retirements.
pub async fn pending_retirements_list_the_same_on(gov: &Governance) {
    let mut ids = Vec::new();
    let names: Vec<String> = (0..4).map(|_| unique("ret")).collect();
    for name in &names {
        gov.register(&dev(), name, manifest_at(RiskTier::Low), None)
            .await
            .unwrap();
        let v = gov
            .retire(&rel(), name, vn(1), "end of life", None)
            .await
            .unwrap()
            .into_version();
        ids.push(v.pending_retirement.expect("pending").id);
    }
    let awaiting = RetirementStatus::AwaitingConfirmation;
    let mine = |page: Vec<String>| -> Vec<String> {
        page.into_iter().filter(|id| ids.contains(id)).collect()
    };
    let all = gov
        .list_retirements(&compliance(), awaiting, None, 500)
        .await
        .unwrap();
    assert_eq!(mine(listed(&all)), ids, "oldest request first");
    assert!(all
        .items
        .iter()
        .filter(|r| ids.contains(&r.retirement_id))
        .all(|r| r.may_decide));
    let by_requester = gov
        .list_retirements(&rel(), awaiting, None, 500)
        .await
        .unwrap();
    assert!(
        by_requester.items.iter().all(|r| !r.may_decide),
        "never the requester"
    );

    // One page at a time.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = gov
            .list_retirements(&dev(), awaiting, cursor.as_deref(), 1)
            .await
            .unwrap();
        assert!(page.items.len() <= 1, "{:?}", page.items);
        paged.extend(listed(&page));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(mine(paged), ids, "pages in the same order");

    // Confirm the first and third, refuse the second, archive the third.
    for (i, decision) in [
        (0, Decision::Approve),
        (1, Decision::Reject),
        (2, Decision::Approve),
    ] {
        gov.decide_retirement(&compliance(), &names[i], vn(1), decision, Some("decided"))
            .await
            .unwrap();
    }
    gov.archive_retirement(&ids[2]).await.unwrap();
    let awaiting_now = gov
        .list_retirements(&compliance(), awaiting, None, 500)
        .await
        .unwrap();
    assert_eq!(mine(listed(&awaiting_now)), [ids[3].clone()]);
    let confirmed = gov
        .list_retirements(&compliance(), RetirementStatus::Confirmed, None, 500)
        .await
        .unwrap();
    assert_eq!(mine(listed(&confirmed)), [ids[0].clone()]);
    let c = confirmed
        .items
        .iter()
        .find(|r| r.retirement_id == ids[0])
        .unwrap();
    assert_eq!(c.confirmed_by.as_ref(), Some(&compliance().id));
    assert!(!c.may_decide);
}
