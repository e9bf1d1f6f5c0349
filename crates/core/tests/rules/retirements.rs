//! The list of pending retirement requests: oldest first, by status, paged, and saying who
//! may decide each.

use std::time::Duration;

use steward_core::records::RetirementStatus;
use steward_core::service::RetirementRequest;
use steward_core::testing::{block_on, vn, Harness};
use steward_core::types::{Decision, RiskTier};
use steward_core::Policy;

fn listed(items: &[RetirementRequest]) -> Vec<&str> {
    items.iter().map(|r| r.retirement_id.as_str()).collect()
}

/// Three models, each with version 1's retirement requested a minute apart by the release
/// manager, in the order `names`.
async fn requested(h: &Harness, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for name in names {
        h.register(name, RiskTier::Low).await;
        let v = h
            .gov
            .retire(&h.cast.rel, name, vn(1), "end of life", None)
            .await
            .unwrap()
            .into_version();
        ids.push(v.pending_retirement.unwrap().id);
        h.clock.advance(Duration::from_secs(60));
    }
    ids
}

#[test]
fn pending_retirements_are_listed_oldest_first_with_who_may_decide_them() {
    let h = Harness::confirming_retirements(Policy::default());
    block_on(async {
        let ids = requested(&h, &["zeta", "alpha", "mid"]).await;
        let awaiting = RetirementStatus::AwaitingConfirmation;
        let page = h
            .gov
            .list_retirements(&h.cast.comp, awaiting, None, 50)
            .await
            .unwrap();
        // Oldest request first, not by name.
        assert_eq!(
            listed(&page.items),
            ids.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert!(page.next_cursor.is_none());
        let first = &page.items[0];
        assert_eq!((first.name.as_ref(), first.version), ("zeta", vn(1)));
        assert_eq!(first.reason, "end of life");
        assert_eq!(first.requested_by, h.cast.rel.id);
        assert_eq!(first.status, awaiting);
        assert!(
            page.items.iter().all(|r| r.may_decide),
            "a compliance reviewer decides"
        );
        // The requester sees them but may not decide its own; a developer may decide none.
        for who in [&h.cast.rel, &h.cast.dev] {
            let page = h
                .gov
                .list_retirements(who, awaiting, None, 50)
                .await
                .unwrap();
            assert_eq!(page.items.len(), 3);
            assert!(page.items.iter().all(|r| !r.may_decide), "{}", who.id);
        }
        let rel2 = h
            .gov
            .list_retirements(&h.cast.rel2, awaiting, None, 50)
            .await
            .unwrap();
        assert!(
            rel2.items.iter().all(|r| r.may_decide),
            "another release manager may"
        );
    });
}

#[test]
fn a_confirmed_request_moves_to_the_confirmed_list_and_a_refused_one_leaves_both() {
    let h = Harness::confirming_retirements(Policy::default());
    block_on(async {
        let ids = requested(&h, &["a", "b", "c"]).await;
        h.gov
            .decide_retirement(&h.cast.comp, "a", vn(1), Decision::Approve, None)
            .await
            .unwrap();
        h.gov
            .decide_retirement(
                &h.cast.comp,
                "b",
                vn(1),
                Decision::Reject,
                Some("still used"),
            )
            .await
            .unwrap();
        let list = |status| h.gov.list_retirements(&h.cast.comp, status, None, 50);
        let awaiting = list(RetirementStatus::AwaitingConfirmation).await.unwrap();
        assert_eq!(listed(&awaiting.items), [ids[2].as_str()]);
        let confirmed = list(RetirementStatus::Confirmed).await.unwrap();
        assert_eq!(listed(&confirmed.items), [ids[0].as_str()]);
        let c = &confirmed.items[0];
        assert_eq!(c.confirmed_by.as_ref(), Some(&h.cast.comp.id));
        assert!(
            !c.may_decide,
            "a confirmed request has nothing left to decide"
        );
        // Archived, it leaves the list.
        h.gov.archive_retirement(&ids[0]).await.unwrap();
        let confirmed = list(RetirementStatus::Confirmed).await.unwrap();
        assert!(confirmed.items.is_empty(), "{:?}", confirmed.items);
    });
}

#[test]
fn the_list_pages_with_a_cursor_and_refuses_one_it_did_not_hand_out() {
    let h = Harness::confirming_retirements(Policy::default());
    block_on(async {
        let ids = requested(&h, &["p", "q", "r"]).await;
        let awaiting = RetirementStatus::AwaitingConfirmation;
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = h
                .gov
                .list_retirements(&h.cast.dev, awaiting, cursor.as_deref(), 1)
                .await
                .unwrap();
            assert!(page.items.len() <= 1);
            seen.extend(page.items.iter().map(|r| r.retirement_id.clone()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ids);
        let bad = h
            .gov
            .list_retirements(&h.cast.dev, awaiting, Some("zz"), 10)
            .await;
        assert_eq!(crate::fields(bad), ["cursor"]);
    });
}
