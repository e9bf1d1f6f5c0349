//! Webhook subscriptions: who may manage them, what a put validates, that secrets stay out of
//! records and the log, tombstones, and the deliverer's `webhook_failed`.

use steward_core::ports::{Deliveries, Registry, Secrets};
use steward_core::service::WebhookInput;
use steward_core::testing::{block_on, Harness};
use steward_core::webhooks::{Delivery, WebhookId, WebhookStatus};
use steward_core::GovError;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET2: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn input(url: &str, events: &[&str], secret: Option<&str>) -> WebhookInput {
    WebhookInput {
        url: Some(url.into()),
        events: events.iter().map(|e| e.to_string()).collect(),
        secret: secret.map(Into::into),
    }
}

#[test]
fn only_admins_manage_webhooks_and_auditors_may_read_them() {
    let h = Harness::new();
    block_on(async {
        let put = input("https://hooks.example.com/a", &[], Some(SECRET));
        let err = h
            .gov
            .put_webhook(&h.cast.dev, "a", put.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, GovError::Forbidden(_)), "{err:?}");
        let (w, created) = h.gov.put_webhook(&h.cast.admin, "a", put).await.unwrap();
        assert!(created);
        assert_eq!((w.revision, w.status), (1, WebhookStatus::Active));
        assert_eq!(h.gov.webhook(&h.cast.aud, "a").await.unwrap(), w);
        assert!(matches!(
            h.gov.webhook(&h.cast.dev, "a").await.unwrap_err(),
            GovError::Forbidden(_)
        ));
        assert!(matches!(
            h.gov.delete_webhook(&h.cast.aud, "a").await.unwrap_err(),
            GovError::Forbidden(_)
        ));
    });
}

#[test]
fn a_bad_put_names_every_field_at_fault_and_writes_nothing() {
    let h = Harness::new();
    block_on(async {
        let before = h.store.audit_events().len();
        let bad = input("http://hooks.example.com/a", &["Nope"], Some("secret"));
        let GovError::Validation(errors) = h
            .gov
            .put_webhook(&h.cast.admin, "a", bad)
            .await
            .unwrap_err()
        else {
            panic!("not a validation error");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["url", "events[0]", "secret"]);
        let missing = WebhookInput::default();
        let GovError::Validation(errors) = h
            .gov
            .put_webhook(&h.cast.admin, "a", missing)
            .await
            .unwrap_err()
        else {
            panic!("not a validation error");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["url", "secret"]);
        assert!(matches!(
            h.gov
                .put_webhook(
                    &h.cast.admin,
                    "Bad/Id",
                    input("https://x.example/", &[], Some(SECRET))
                )
                .await
                .unwrap_err(),
            GovError::Validation(_)
        ));
        assert_eq!(h.store.audit_events().len(), before);
        assert!(h.secrets.names().is_empty());
        assert!(h.store.webhooks().await.unwrap().is_empty());
    });
}

#[test]
fn the_secret_lives_only_in_the_secret_store_and_a_new_one_gets_a_new_name() {
    let h = Harness::new();
    block_on(async {
        let (w1, _) = h
            .gov
            .put_webhook(
                &h.cast.admin,
                "jira",
                input(
                    "https://hooks.example.com/j",
                    &["ReviewRequested"],
                    Some(SECRET),
                ),
            )
            .await
            .unwrap();
        assert_eq!(w1.secret_ref, "webhooks/jira/1-s-1");
        assert_eq!(
            h.secrets
                .get(&w1.secret_ref)
                .await
                .unwrap()
                .unwrap()
                .expose(),
            SECRET
        );
        // An update without a secret keeps it; the URL changes.
        let (w2, created) = h
            .gov
            .put_webhook(
                &h.cast.admin,
                "jira",
                WebhookInput {
                    url: Some("https://hooks.example.com/k".into()),
                    events: vec![],
                    secret: None,
                },
            )
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(
            (w2.revision, w2.secret_ref.as_str()),
            (2, "webhooks/jira/1-s-1")
        );
        assert!(w2.events.is_empty(), "an update states the events it wants");
        // A new secret: a new name, and the old one is removed.
        let (w3, _) = h
            .gov
            .put_webhook(
                &h.cast.admin,
                "jira",
                input("https://hooks.example.com/k", &[], Some(SECRET2)),
            )
            .await
            .unwrap();
        assert_eq!(w3.secret_ref, "webhooks/jira/3-s-2");
        assert_eq!(h.secrets.names(), ["webhooks/jira/3-s-2"]);
        let log = serde_json::to_string(&h.store.audit_events()).unwrap();
        let record = serde_json::to_string(&w3).unwrap();
        for secret_b64 in [&SECRET[6..], &SECRET2[6..]] {
            assert!(!log.contains(secret_b64) && !record.contains(secret_b64));
        }
        let actions = h.store.audit_actions();
        assert_eq!(
            actions[actions.len() - 3..],
            ["webhook.put", "webhook.put", "webhook.put"]
        );
        let last = h.store.audit_events().pop().unwrap();
        assert_eq!(last.details["secret_changed"], true);
        assert_eq!(last.details["authentication"], "token");
    });
}

#[test]
fn a_deleted_webhook_is_gone_but_its_id_can_be_put_again() {
    let h = Harness::new();
    block_on(async {
        let put = input("https://hooks.example.com/a", &[], Some(SECRET));
        h.gov
            .put_webhook(&h.cast.admin, "a", put.clone())
            .await
            .unwrap();
        h.gov.delete_webhook(&h.cast.admin, "a").await.unwrap();
        assert!(matches!(
            h.gov.webhook(&h.cast.admin, "a").await.unwrap_err(),
            GovError::NotFound(_)
        ));
        assert!(h.gov.list_webhooks(&h.cast.admin).await.unwrap().is_empty());
        assert!(h.secrets.names().is_empty());
        assert!(matches!(
            h.gov.delete_webhook(&h.cast.admin, "a").await.unwrap_err(),
            GovError::NotFound(_)
        ));
        // Put again: a create (it needs its secret again), revision 3.
        let err = h
            .gov
            .put_webhook(
                &h.cast.admin,
                "a",
                input("https://hooks.example.com/a", &[], None),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, GovError::Validation(_)));
        let (w, created) = h.gov.put_webhook(&h.cast.admin, "a", put).await.unwrap();
        assert!(created);
        assert_eq!(w.revision, 3);
        assert_eq!(h.store.audit_actions().last().unwrap(), "webhook.put");
    });
}

#[test]
fn a_delivery_that_gave_up_marks_its_webhook_failed_once_and_audits_it() {
    let h = Harness::new();
    block_on(async {
        let put = input("https://hooks.example.com/a", &[], Some(SECRET));
        h.gov
            .put_webhook(&h.cast.admin, "a", put.clone())
            .await
            .unwrap();
        let id = WebhookId::parse("a").unwrap();
        let event = h.store.outbox().last().cloned().unwrap_or_else(|| {
            steward_core::records::DomainEvent {
                detail_type: "ReviewRequested".into(),
                detail: serde_json::json!({}),
            }
        });
        let d = Delivery::new(&id, "1", h.now(), &event, h.now());
        h.deliveries
            .enqueue(std::slice::from_ref(&d))
            .await
            .unwrap();
        h.gov.webhook_failed(&id, &d).await.unwrap();
        h.gov.webhook_failed(&id, &d).await.unwrap();
        let w = h.gov.webhook(&h.cast.admin, "a").await.unwrap();
        assert_eq!(w.status, WebhookStatus::Failed);
        let failed: Vec<_> = h
            .store
            .audit_events()
            .into_iter()
            .filter(|e| e.action == "webhook.failed")
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].actor, "system:webhooks");
        // An admin's put makes it active again.
        let (w, _) = h.gov.put_webhook(&h.cast.admin, "a", put).await.unwrap();
        assert_eq!(w.status, WebhookStatus::Active);
        assert_eq!(
            h.gov
                .webhook_deliveries(&h.cast.aud, "a", 10)
                .await
                .unwrap(),
            vec![d]
        );
    });
}
