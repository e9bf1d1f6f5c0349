//! Jira Cloud, both directions, against a fake Jira site on 127.0.0.1 (`jira/fake.rs`) and
//! the in-memory governance harness: events are delivered by the real `Deliverer`, webhooks
//! arrive over HTTP at the real inbound router.

#[path = "jira/fake.rs"]
mod fake;
#[path = "jira/world.rs"]
mod world;

use std::time::Duration;

use fake::Fault;
use serde_json::{json, Value};
use steward_core::records::{Promotion, PromotionStatus};
use steward_core::webhooks::DeliveryStatus;
use steward_integrations::IntegrationsConfig;
use world::{World, CONSOLE, SECRET};

// ------------------------------------------------------------------------------ outbound

#[tokio::test]
async fn a_review_request_opens_one_issue_with_the_summary_evidence_and_the_console_link() {
    let w = World::new().await;
    let p = w.in_review().await;
    let review = &p.reviews[0];
    w.pump().await;

    let reqs = w.jira.requests();
    let calls = w.jira.calls();
    assert_eq!(
        calls,
        ["POST /rest/api/3/search/jql", "POST /rest/api/3/issue"],
        "search first, then create"
    );
    let basic = base64_basic();
    assert!(reqs
        .iter()
        .all(|r| r.authorization.as_deref() == Some(basic.as_str())));
    assert_eq!(
        reqs[0].body["jql"],
        format!(
            "project = \"GOV\" AND labels = \"steward-review-{}\" ORDER BY created ASC",
            review.id
        )
    );
    let issue = &w.jira.issues()[0];
    assert_eq!(
        issue.labels(),
        [
            "steward".to_owned(),
            format!("steward-review-{}", review.id),
            format!("steward-promotion-{}", p.id),
        ]
    );
    assert_eq!(
        issue.fields["summary"],
        "Steward review: credit-risk v1 to staging (technical review)"
    );
    let description = &issue.fields["description"];
    let text = fake::text_of(description);
    let version =
        w.h.gov
            .version_detail("credit-risk", p.version)
            .await
            .unwrap()
            .version;
    for needle in [
        version.artifact.sha256.to_hex(),
        version.evaluations[0].result.name.clone(),
        version.evaluations[0].result.dataset.sha256.to_hex(),
        review
            .deadline
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "Stage: technical".into(),
    ] {
        assert!(text.contains(&needle), "{needle} not in {text}");
    }
    let links = fake::links_of(description);
    assert!(
        links.contains(&format!("{CONSOLE}/console/reviews/{}", review.id)),
        "{links:?}"
    );
    assert!(links.contains(&format!("{CONSOLE}/console/models/credit-risk/versions/1")));
    assert_eq!(
        w.delivery("ReviewRequested").await.status,
        DeliveryStatus::Delivered
    );

    // A repeated attempt (a crash before the attempt was saved) finds the issue: no second one.
    let target = w.integrations.named("gov").unwrap();
    let outcome = target.deliver(&w.delivery("ReviewRequested").await).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(w.jira.issues().len(), 1);
    assert!(w.jira.violations().is_empty(), "{:?}", w.jira.violations());
}

#[tokio::test]
async fn a_decision_comments_and_transitions_the_issue_and_the_outcome_resolves_it_once() {
    let w = World::new().await;
    let (p, key) = w.with_issue().await;
    w.h.approve(&w.h.cast.tech, &p.reviews[0].id).await.unwrap();
    w.pump().await;

    let issue = w.jira.issue(&key);
    assert_eq!(issue.status, "Done", "{:?}", w.jira.calls());
    let texts = issue.comment_texts();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts[0].contains("technical review was approved by tom"),
        "{texts:?}"
    );
    assert!(
        texts[1].contains("promotion of credit-risk v1 to staging is approved"),
        "{texts:?}"
    );
    let posted: Vec<_> = w
        .jira
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/transitions"))
        .map(|r| r.body)
        .collect();
    assert_eq!(
        posted,
        [
            json!({"transition": {"id": "21"}}),
            json!({"transition": {"id": "41"}})
        ],
        "Approve, then Done"
    );
    let comment = &issue.comments[0];
    let decided = w.delivery("ReviewDecided").await;
    assert_eq!(
        comment["properties"][0],
        json!({"key": "steward", "value": {"delivery": decided.id}})
    );

    // Both deliveries again: nothing new is posted.
    let before = w.jira.requests().len();
    let target = w.integrations.named("gov").unwrap();
    for t in ["ReviewDecided", "PromotionApproved"] {
        let o = target.deliver(&w.delivery(t).await).await;
        assert!(o.succeeded(), "{o:?}");
    }
    let again: Vec<_> = w.jira.requests()[before..]
        .iter()
        .filter(|r| r.method == "POST" && !r.path.ends_with("/search/jql"))
        .map(|r| r.path.clone())
        .collect();
    assert!(again.is_empty(), "a repeat posted {again:?}");
    assert_eq!(w.jira.issue(&key).comments.len(), 2);
    assert!(w.jira.violations().is_empty(), "{:?}", w.jira.violations());
}

#[tokio::test]
async fn a_rejection_in_steward_runs_the_reject_transition_then_done() {
    let w = World::new().await;
    let (p, key) = w.with_issue().await;
    w.h.reject(&w.h.cast.tech, &p.reviews[0].id, "AUC below the bar")
        .await
        .unwrap();
    w.pump().await;
    let issue = w.jira.issue(&key);
    assert_eq!(issue.status, "Done");
    let texts = issue.comment_texts();
    assert!(
        texts[0].contains("rejected by tom") && texts[0].contains("AUC below the bar"),
        "{texts:?}"
    );
    assert!(texts[1].contains("is rejected"), "{texts:?}");
    let transitions: Vec<_> = w
        .jira
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/transitions"))
        .map(|r| r.body["transition"]["id"].clone())
        .collect();
    assert_eq!(transitions, [json!("31"), json!("41")]);
}

#[tokio::test]
async fn jira_errors_are_failed_attempts_retried_honouring_retry_after_and_saying_why() {
    let w = World::new().await;
    w.in_review().await;
    let now = w.h.now();

    w.jira.fail_next(Fault::Status {
        method: "POST",
        path_contains: "/rest/api/3/issue",
        code: 429,
        retry_after: Some(120),
        body: json!({"errorMessages": ["Rate limit exceeded."]}),
    });
    w.pump().await;
    let d = w.delivery("ReviewRequested").await;
    assert_eq!(
        (d.status, d.last_response_code),
        (DeliveryStatus::Pending, Some(429))
    );
    assert!(
        d.next_attempt_at >= now + chrono::Duration::seconds(120),
        "{d:?}"
    );
    assert!(
        d.last_error.as_deref().unwrap().contains("Retry-After"),
        "{d:?}"
    );
    assert!(w.jira.issues().is_empty());

    let again = |f: Fault| {
        w.jira.fail_next(f);
        w.h.clock.advance(Duration::from_secs(3600));
    };
    again(Fault::Status {
        method: "POST",
        path_contains: "/search/jql",
        code: 503,
        retry_after: None,
        body: json!({}),
    });
    w.pump().await;
    let d = w.delivery("ReviewRequested").await;
    assert_eq!(
        (d.status, d.last_response_code),
        (DeliveryStatus::Pending, Some(503))
    );

    again(Fault::Slow {
        method: "POST",
        path_contains: "/search/jql",
        delay: Duration::from_millis(2500),
    });
    w.pump().await;
    let d = w.delivery("ReviewRequested").await;
    assert_eq!(
        (d.status, d.last_response_code),
        (DeliveryStatus::Pending, None)
    );
    assert!(
        d.last_error
            .as_deref()
            .unwrap()
            .contains("did not answer within 1s"),
        "{d:?}"
    );

    again(Fault::Status {
        method: "POST",
        path_contains: "/rest/api/3/issue",
        code: 400,
        retry_after: None,
        body: json!({"errorMessages": [], "errors": {"issuetype": "Specify a valid issue type"}}),
    });
    w.pump().await;
    let d = w.delivery("ReviewRequested").await;
    let e = d.last_error.clone().unwrap();
    assert_eq!(
        (d.status, d.last_response_code),
        (DeliveryStatus::Pending, Some(400))
    );
    assert!(
        e.contains("issue type") && e.contains("Specify a valid issue type"),
        "{e}"
    );
    assert!(!e.contains(fake::TOKEN));

    w.h.clock.advance(Duration::from_secs(3600));
    w.pump().await;
    let d = w.delivery("ReviewRequested").await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 5));
    assert_eq!(w.jira.issues().len(), 1, "one issue after all the retries");
}

// ------------------------------------------------------------------------------- inbound

#[tokio::test]
async fn a_jira_approval_by_a_mapped_reviewer_advances_the_promotion() {
    let w = World::new().await;
    let (p, key) = w.with_issue().await;
    let review = p.reviews[0].id.clone();
    w.jira.set_status(&key, "Approved");
    let (code, body) = w
        .send(
            &w.webhook(&key, &review, "acc-tom", "Approved"),
            "wh-1",
            SECRET,
        )
        .await;
    assert_eq!((code, &body["recorded"]), (200, &json!(review)), "{body}");
    assert_eq!(w.promotion(&p).await.status, PromotionStatus::Approved);
    let decided =
        w.h.store
            .audit_events()
            .into_iter()
            .find(|e| e.action == "review.decided")
            .unwrap();
    assert_eq!(decided.actor, "tom");
    assert_eq!(decided.details["authentication"], "integration");
    assert!(decided.details["comment"].as_str().unwrap().contains(&key));

    // Steward comments the decision; the Approve transition already ran, so it is skipped,
    // and the outcome resolves the issue.
    w.pump().await;
    assert_eq!(w.jira.issue(&key).status, "Done");
    // Jira reports Steward's own change back (from its bot account): acknowledged, not refused.
    let before = w.actions();
    let (code, body) = w
        .send(
            &w.webhook(&key, &review, "acc-bot", "Approved"),
            "wh-2",
            SECRET,
        )
        .await;
    assert_eq!(
        (code, &body["already"]),
        (200, &json!("approved")),
        "{body}"
    );
    assert_eq!(w.actions(), before);
}

/// Sends `webhook`, then checks the refusal: 200, one `integration.refused` audit event with
/// `reason` and nothing else, the review still pending, and the ticket commented.
async fn assert_refused(
    w: &World,
    p: &Promotion,
    key: &str,
    webhook: Value,
    id: &str,
    reason: &str,
) {
    let before = w.actions();
    let comments = w.jira.issue(key).comments.len();
    let (code, body) = w.send(&webhook, id, SECRET).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body["refused"]
            .as_str()
            .unwrap_or_default()
            .contains(reason),
        "{body}"
    );
    let after = w.actions();
    assert_eq!(after[before.len()..], ["integration.refused".to_owned()]);
    let event = w.h.store.audit_events().pop().unwrap();
    assert_eq!(event.actor, "system:jira:gov");
    assert_eq!(event.details["authentication"], "integration");
    assert!(event.details["reason"].as_str().unwrap().contains(reason));
    let promotion = w.promotion(p).await;
    assert_eq!(promotion.status, PromotionStatus::InReview);
    assert!(promotion.reviews[0].decided_by.is_none());
    let texts = w.jira.issue(key).comment_texts();
    assert_eq!(texts.len(), comments + 1, "{texts:?}");
    assert!(texts
        .last()
        .unwrap()
        .starts_with("Steward did not record this decision"));
    assert!(texts.last().unwrap().contains(reason), "{texts:?}");
}

#[tokio::test]
async fn a_jira_approval_by_the_registrant_is_refused_audited_and_commented() {
    let w = World::new().await;
    let (p, key) = w.with_issue().await;
    let hook = w.webhook(&key, &p.reviews[0].id, "acc-dana", "Approved");
    assert_refused(&w, &p, &key, hook, "wh-1", "separation of duties").await;
    let event = w.h.store.audit_events().pop().unwrap();
    assert_eq!(
        (&event.details["principal"], &event.details["jira_account"]),
        (&json!("dana"), &json!("acc-dana"))
    );
    assert_eq!(event.name.as_deref(), Some("credit-risk"));
}

#[tokio::test]
async fn a_jira_approval_by_an_unmapped_account_is_refused_audited_and_commented() {
    let w = World::new().await;
    let (p, key) = w.with_issue().await;
    let hook = w.webhook(&key, &p.reviews[0].id, "acc-stranger", "Approved");
    assert_refused(&w, &p, &key, hook, "wh-1", "acc-stranger is not mapped").await;
}

#[tokio::test]
async fn a_replayed_or_stale_jira_webhook_is_refused_audited_and_commented() {
    let w = World::new().await;
    let (p, key) = w.with_issue().await;
    let review = p.reviews[0].id.clone();
    // A rejection by the registrant is refused and remembered; the same webhook again is a replay.
    let hook = w.webhook(&key, &review, "acc-dana", "Rejected");
    assert_refused(&w, &p, &key, hook.clone(), "wh-1", "separation of duties").await;
    assert_refused(&w, &p, &key, hook, "wh-1", "replayed").await;
    let mut old = w.webhook(&key, &review, "acc-tom", "Approved");
    old["timestamp"] = json!(w.h.now().timestamp_millis() - 6 * 60 * 1000);
    assert_refused(&w, &p, &key, old, "wh-2", "stale").await;
}

#[tokio::test]
async fn a_jira_webhook_with_a_bad_signature_is_401_records_nothing_and_is_not_commented() {
    let w = World::new().await;
    let (p, key) = w.with_issue().await;
    let before = w.actions();
    let hook = w.webhook(&key, &p.reviews[0].id, "acc-tom", "Approved");
    let (code, _) = w.send(&hook, "wh-1", "not-the-secret").await;
    assert_eq!(code, 401);
    assert_eq!(
        w.actions(),
        before,
        "a forgery writes nothing, not even a refusal"
    );
    assert!(w.jira.issue(&key).comments.is_empty());
    assert_eq!(w.promotion(&p).await.status, PromotionStatus::InReview);
    // A well-signed delivery with the same identifier still counts: the forgery was not remembered.
    let (code, body) = w.send(&hook, "wh-1", SECRET).await;
    assert_eq!(
        (code, &body["recorded"]),
        (200, &json!(p.reviews[0].id)),
        "{body}"
    );
}

#[tokio::test]
async fn other_jira_updates_are_acknowledged_and_an_unknown_integration_is_404() {
    let w = World::new().await;
    let (p, key) = w.with_issue().await;
    let before = w.actions();
    let moved = w.webhook(&key, &p.reviews[0].id, "acc-tom", "In Progress");
    let (code, body) = w.send(&moved, "wh-1", SECRET).await;
    assert_eq!((code, body["ignored"].is_string()), (200, true), "{body}");
    assert_eq!(w.actions(), before);
    let r = w
        .http
        .post(format!("{}/v1/integrations/jira/nope", w.inbound))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let big = vec![b' '; 2 * 1024 * 1024];
    let r = w
        .http
        .post(format!("{}/v1/integrations/jira/gov", w.inbound))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413, "bodies over 1 MiB are not read");
}

#[test]
fn the_jira_configuration_is_checked_naming_the_key_at_fault() {
    let base = "[jira.gov]\nemail = \"a@b.c\"\napi_token = { env = \"X\" }\nproject = \"GOV\"\n";
    for (extra, key) in [
        (
            "base_url = \"http://acme.atlassian.net\"\n",
            "jira.gov.base_url",
        ),
        (
            "base_url = \"https://acme.atlassian.net\"\n[jira.gov.accounts]\n\"a\" = \"\"\n",
            "jira.gov.accounts.a",
        ),
        (
            "base_url = \"https://acme.atlassian.net\"\ntransitions = { approve = \" \" }\n",
            "jira.gov.transitions.approve",
        ),
        (
            "base_url = \"https://acme.atlassian.net\"\nsecret = \"x\"\n",
            "jira.gov",
        ),
    ] {
        let err = IntegrationsConfig::from_toml(&format!("{base}{extra}")).unwrap_err();
        assert!(err.to_string().contains(key), "{key}: {err}");
    }
    let err = IntegrationsConfig::from_toml(
        "[jira.gov]\nbase_url = \"https://acme.atlassian.net\"\nemail = \"a@b.c\"\napi_token = \"plain\"\nproject = \"GOV\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("jira.gov.api_token"), "{err}");
    let ok = IntegrationsConfig::from_toml(&format!(
        "{base}base_url = \"https://acme.atlassian.net\"\n"
    ))
    .unwrap();
    assert_eq!(ok.names(), [("jira", "gov")]);
    assert_eq!(ok.jira["gov"].issue_type, "Task");
    assert_eq!(ok.jira["gov"].transitions.done, "Done");
}

fn base64_basic() -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        fake::EMAIL,
        fake::TOKEN
    ));
    format!("Basic {b}")
}
