//! Serious incidents (EU AI Act Art. 73): classification starts the reporting clock, freezes
//! the version involved, and a reminder goes out once when the report falls due.

use chrono::Duration;
use serde_json::json;
use steward_core::records::{Incident, SeriousIncidentCategory};
use steward_core::service::SignalInput;
use steward_core::testing::{block_on, vn, Harness};
use steward_core::types::{Environment, ModelName, RiskTier, SignalKind};
use steward_core::GovError;

use crate::{fields, is_conflict};

/// `credit-risk` v1 and v2 in production (v2 serving), and a drift incident on v2.
fn incident_on_production(h: &Harness) -> Incident {
    block_on(async {
        h.new_production_version("credit-risk", RiskTier::Medium)
            .await;
        h.new_production_version("credit-risk", RiskTier::Medium)
            .await;
    });
    block_on(h.gov.signal(
        &h.cast.ops,
        SignalInput {
            model: ModelName::parse("credit-risk").unwrap(),
            version: 2,
            kind: SignalKind::Drift,
            metric: "psi".into(),
            value: 0.31,
        },
    ))
    .unwrap()
    .incident
    .expect("an incident")
}

fn classify(h: &Harness, id: &str, category: &str) -> Result<Incident, GovError> {
    block_on(h.gov.classify_incident(
        &h.cast.comp,
        id,
        json!({"severity": "serious", "category": category}),
    ))
}

fn conflict_message<T: std::fmt::Debug>(r: Result<T, GovError>) -> String {
    match r {
        Err(GovError::Conflict(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn classification_sets_the_report_due_by_category() {
    for (category, days) in [("death", 10), ("infringement", 2), ("other", 15)] {
        let h = Harness::new();
        let incident = incident_on_production(&h);
        let now = h.now();
        let classified = classify(&h, &incident.id, category).unwrap();
        assert_eq!(
            classified.serious.report_due,
            Some(now + Duration::days(days)),
            "{category}"
        );
        let c = classified
            .serious
            .classification
            .clone()
            .expect("a classification");
        assert_eq!(c.classified_by, h.cast.comp.id);
        assert_eq!(c.report_due, now + Duration::days(days));
        assert_eq!(
            h.store.audit_actions().last().unwrap(),
            "incident.classified"
        );
        assert_eq!(
            h.store.outbox_types().last().unwrap(),
            "SeriousIncidentClassified"
        );
        // Stored as returned, with report_due at the top level of its JSON.
        let stored = block_on(h.gov.incidents(None, None, 50)).unwrap().items;
        let stored = stored.iter().find(|i| i.id == incident.id).unwrap();
        assert_eq!(*stored, classified);
        assert!(serde_json::to_value(stored).unwrap()["report_due"].is_string());
    }
}

#[test]
fn critical_infrastructure_is_due_in_two_days_and_policy_may_change_the_periods() {
    let h = Harness::new();
    let incident = incident_on_production(&h);
    let c = classify(&h, &incident.id, "critical_infrastructure").unwrap();
    assert_eq!(c.serious.report_due, Some(h.now() + Duration::days(2)));

    let mut policy = steward_core::Policy::default();
    policy.serious_incidents.other = std::time::Duration::from_secs(7 * 24 * 3600);
    let h = Harness::with_policy(policy);
    let incident = incident_on_production(&h);
    let c = classify(&h, &incident.id, "other").unwrap();
    assert_eq!(c.serious.report_due, Some(h.now() + Duration::days(7)));
    assert_eq!(
        c.serious.classification.unwrap().category,
        SeriousIncidentCategory::Other
    );
}

#[test]
fn only_a_compliance_reviewer_may_classify_an_incident() {
    let h = Harness::new();
    let incident = incident_on_production(&h);
    for who in [&h.cast.ops, &h.cast.dev, &h.cast.tech, &h.cast.admin] {
        let r = block_on(h.gov.classify_incident(
            who,
            &incident.id,
            json!({"severity": "serious", "category": "death"}),
        ));
        assert!(
            matches!(r, Err(GovError::Forbidden(_))),
            "{}: {r:?}",
            who.id
        );
    }
    let r = block_on(h.gov.record_incident_report(
        &h.cast.ops,
        &incident.id,
        json!({"reference": "MSA-1"}),
    ));
    assert!(matches!(r, Err(GovError::Forbidden(_))), "{r:?}");
}

#[test]
fn a_bad_classification_body_names_every_bad_field() {
    let h = Harness::new();
    let incident = incident_on_production(&h);
    let r = block_on(h.gov.classify_incident(
        &h.cast.comp,
        &incident.id,
        json!({"severity": "minor", "category": "fire", "note": "x"}),
    ));
    let mut named = fields(r);
    named.sort();
    assert_eq!(named, ["category", "note", "severity"]);
    let r = block_on(
        h.gov
            .classify_incident(&h.cast.comp, &incident.id, json!({})),
    );
    let mut named = fields(r);
    named.sort();
    assert_eq!(named, ["category", "severity"]);
    // Nothing was recorded.
    assert!(!h
        .store
        .audit_actions()
        .contains(&"incident.classified".to_owned()));
}

#[test]
fn an_incident_is_classified_once_and_an_unknown_one_is_not_found() {
    let h = Harness::new();
    let incident = incident_on_production(&h);
    classify(&h, &incident.id, "other").unwrap();
    let again = classify(&h, &incident.id, "death");
    assert!(is_conflict(&again), "{again:?}");
    let missing = classify(&h, "inc-unknown", "death");
    assert!(matches!(missing, Err(GovError::NotFound(_))), "{missing:?}");
}

#[test]
fn the_version_cannot_be_retired_revised_promoted_or_rolled_back_from_while_the_incident_is_open() {
    let h = Harness::new();
    let incident = incident_on_production(&h);
    classify(&h, &incident.id, "death").unwrap();
    let expected = format!(
        "Art. 73: the version involved may not be altered while serious incident {} is under investigation",
        incident.id
    );

    let retire = block_on(
        h.gov
            .retire(&h.cast.dev, "credit-risk", vn(2), "replaced", Some(vn(1))),
    );
    assert_eq!(conflict_message(retire), expected);

    let v = block_on(
        h.gov
            .registry()
            .version(&ModelName::parse("credit-risk").unwrap(), vn(2)),
    )
    .unwrap()
    .unwrap();
    assert_eq!(v.serious_incidents, std::slice::from_ref(&incident.id));
    let card = serde_json::to_value(&v.card).unwrap();
    let revise = block_on(
        h.gov
            .revise_card(&h.cast.dev, "credit-risk", vn(2), card, None),
    );
    assert_eq!(conflict_message(revise), expected);

    let rollback = block_on(h.gov.rollback(&h.cast.ops, "credit-risk", "bad", None));
    assert_eq!(conflict_message(rollback), expected);

    let promote = block_on(h.gov.request_promotion(
        &h.cast.dev,
        "credit-risk",
        vn(2),
        Environment::Production,
        None,
    ));
    assert_eq!(conflict_message(promote), expected);

    // The other version is not involved: it may still be altered.
    let retired = block_on(h.gov.retire(&h.cast.dev, "credit-risk", vn(1), "old", None));
    assert!(retired.is_ok(), "{retired:?}");
}

#[test]
fn a_serious_incident_closes_only_after_its_report_by_compliance_and_then_the_version_is_free() {
    let h = Harness::new();
    let incident = incident_on_production(&h);
    classify(&h, &incident.id, "other").unwrap();
    let close = |who: &steward_core::ports::Caller| {
        block_on(h.gov.close_incident(
            who,
            &incident.id,
            json!({"resolution": "drift traced to a feed outage; fixed upstream"}),
        ))
    };
    // Not before its report; never by an operator; never without a resolution.
    assert!(conflict_message(close(&h.cast.comp)).contains("no report recorded"));
    block_on(h.gov.record_incident_report(
        &h.cast.comp,
        &incident.id,
        json!({"reference": "MSA-2026-0142"}),
    ))
    .unwrap();
    assert!(matches!(close(&h.cast.ops), Err(GovError::Forbidden(_))));
    let empty = block_on(h.gov.close_incident(
        &h.cast.comp,
        &incident.id,
        json!({"resolution": " "}),
    ));
    assert_eq!(fields(empty), ["resolution"]);

    let closed = close(&h.cast.comp).unwrap();
    assert_eq!(
        closed.status,
        steward_core::records::IncidentStatus::Resolved
    );
    assert_eq!(
        closed.resolution.as_ref().unwrap().closed_by,
        h.cast.comp.id
    );
    // The version is free again, and a closed incident is neither closed nor classified again.
    let v = block_on(
        h.gov
            .registry()
            .version(&ModelName::parse("credit-risk").unwrap(), vn(2)),
    )
    .unwrap()
    .unwrap();
    assert!(v.serious_incidents.is_empty());
    let card = serde_json::to_value(&v.card).unwrap();
    block_on(
        h.gov
            .revise_card(&h.cast.dev, "credit-risk", vn(2), card, None),
    )
    .unwrap();
    assert!(is_conflict(&close(&h.cast.comp)));
    assert!(is_conflict(&classify(&h, &incident.id, "death")));
}

#[test]
fn an_operator_closes_an_ordinary_incident() {
    let h = Harness::new();
    let incident = incident_on_production(&h);
    let closed = block_on(h.gov.close_incident(
        &h.cast.ops,
        &incident.id,
        json!({"resolution": "retrained; drift back under threshold"}),
    ))
    .unwrap();
    assert_eq!(
        closed.status,
        steward_core::records::IncidentStatus::Resolved
    );
    let r = block_on(
        h.gov
            .close_incident(&h.cast.aud, &incident.id, json!({"resolution": "x"})),
    );
    assert!(matches!(r, Err(GovError::Forbidden(_))), "{r:?}");
}

#[test]
fn the_reminder_is_emitted_once_when_the_report_falls_due() {
    let h = Harness::new();
    let incident = incident_on_production(&h);
    classify(&h, &incident.id, "other").unwrap(); // due in 15 days
    let reminders = |h: &Harness| {
        h.store
            .outbox_types()
            .iter()
            .filter(|t| *t == "SeriousIncidentReportDue")
            .count()
    };
    h.clock
        .advance(std::time::Duration::from_secs(12 * 24 * 3600));
    assert!(block_on(h.gov.serious_incident_reminders(h.now()))
        .unwrap()
        .is_empty());
    assert_eq!(reminders(&h), 0, "three days left: not yet");

    h.clock.advance(std::time::Duration::from_secs(24 * 3600));
    let sent = block_on(h.gov.serious_incident_reminders(h.now())).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].serious.reminder_sent_at, Some(h.now()));
    assert_eq!(reminders(&h), 1);

    h.clock
        .advance(std::time::Duration::from_secs(5 * 24 * 3600)); // overdue now
    assert!(block_on(h.gov.serious_incident_reminders(h.now()))
        .unwrap()
        .is_empty());
    assert_eq!(reminders(&h), 1, "sent once");
}

#[test]
fn a_recorded_report_stops_the_reminder() {
    let h = Harness::new();
    let incident = incident_on_production(&h);
    classify(&h, &incident.id, "infringement").unwrap(); // due in 2 days: reminder due now
    let reported = block_on(h.gov.record_incident_report(
        &h.cast.comp,
        &incident.id,
        json!({"reference": "MSA-2026-0042"}),
    ))
    .unwrap();
    let report = reported.serious.report.expect("a report");
    assert_eq!(
        (report.reference.as_str(), report.submitted_at),
        ("MSA-2026-0042", h.now())
    );
    assert_eq!(
        h.store.audit_actions().last().unwrap(),
        "incident.report_submitted"
    );
    h.clock
        .advance(std::time::Duration::from_secs(3 * 24 * 3600));
    assert!(block_on(h.gov.serious_incident_reminders(h.now()))
        .unwrap()
        .is_empty());
    assert!(!h
        .store
        .outbox_types()
        .contains(&"SeriousIncidentReportDue".to_owned()));
    // A second report is a conflict; a report body is checked field by field.
    let again = block_on(h.gov.record_incident_report(
        &h.cast.comp,
        &incident.id,
        json!({"reference": "MSA-2"}),
    ));
    assert!(is_conflict(&again), "{again:?}");
    let bad = block_on(h.gov.record_incident_report(
        &h.cast.comp,
        &incident.id,
        json!({"ref": "x"}),
    ));
    assert!(matches!(bad, Err(GovError::Validation(_))), "{bad:?}");
}
