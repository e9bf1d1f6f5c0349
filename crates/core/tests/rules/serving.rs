//! Serving reports measured against the registry: stale when the version served was retired,
//! rolled back from or superseded; governed in staging once deployed there; an artifact
//! registered twice is governed when either version is; a discovery sweep closes the findings
//! of endpoints it no longer sees.

use serde_json::{json, Value};
use steward_core::serving::Outcome;
use steward_core::testing::{block_on, manifest, vn, Harness};
use steward_core::types::RiskTier;

/// Registers a `credit-risk` version whose artifact is its own (`n` makes it unique).
fn register(h: &Harness, n: u32) -> (String, String) {
    let mut m = manifest(RiskTier::Low);
    let uri = format!("s3://models/credit-risk/{n}/model.tar.gz");
    let sha = format!("{n:02x}").repeat(32);
    m["artifact"]["uri"] = json!(uri);
    m["artifact"]["sha256"] = json!(sha);
    block_on(h.gov.register(&h.cast.dev, "credit-risk", m, None)).unwrap();
    (uri, sha)
}

fn report(h: &Harness, endpoint: &str, env: &str, uri: &str, minute: i64) -> Value {
    json!({"platform": "seldon", "environment": env, "endpoint": endpoint,
           "artifact": {"uri": uri},
           "observed_at": h.now() + chrono::Duration::minutes(minute) - chrono::Duration::hours(1)})
}

fn outcome(h: &Harness, body: Value) -> (Outcome, String) {
    let r = block_on(h.gov.report_serving(&h.cast.ops, body)).unwrap();
    (r.outcome, r.reason)
}

#[test]
fn a_rolled_back_or_retired_version_still_served_is_stale() {
    let h = Harness::new();
    let (uri1, _) = register(&h, 1);
    block_on(h.to_production("credit-risk", vn(1)));
    let (uri2, _) = register(&h, 2);
    block_on(h.to_production("credit-risk", vn(2)));
    block_on(
        h.gov
            .rollback(&h.cast.ops, "credit-risk", "quality dropped", None),
    )
    .unwrap();

    let (o, why) = outcome(&h, report(&h, "e2", "production", &uri2, 0));
    assert_eq!(o, Outcome::Stale, "{why}");
    assert!(
        why.contains("rolled back from credit-risk version 2"),
        "{why}"
    );
    let (o, _) = outcome(&h, report(&h, "e1", "production", &uri1, 0));
    assert_eq!(o, Outcome::Governed);

    let (uri3, _) = register(&h, 3);
    block_on(
        h.gov
            .retire(&h.cast.dev, "credit-risk", vn(3), "never used", None),
    )
    .unwrap();
    let (o, why) = outcome(&h, report(&h, "e3", "staging", &uri3, 0));
    assert_eq!(o, Outcome::Stale);
    assert!(why.contains("is retired"), "{why}");
}

#[test]
fn staging_is_governed_once_the_version_is_deployed_there_and_unapproved_before() {
    let h = Harness::new();
    let (uri, _) = register(&h, 1);
    let (o, why) = outcome(&h, report(&h, "s", "staging", &uri, 0));
    assert_eq!(o, Outcome::Unapproved);
    assert!(why.contains("not approved for staging"), "{why}");
    block_on(h.to_staging("credit-risk", vn(1)));
    let r = block_on(
        h.gov
            .report_serving(&h.cast.ops, report(&h, "s", "staging", &uri, 1)),
    )
    .unwrap();
    assert_eq!(r.outcome, Outcome::Governed);
    assert_eq!(r.incident, None, "the finding closed");
    // Production still is not: approved for staging only.
    let (o, _) = outcome(&h, report(&h, "p", "production", &uri, 0));
    assert_eq!(o, Outcome::Unapproved);
}

#[test]
fn an_artifact_registered_twice_is_governed_when_either_version_is() {
    let h = Harness::new();
    let (uri, sha) = register(&h, 1);
    block_on(h.to_production("credit-risk", vn(1)));
    // The same artifact again, as version 2 (never approved).
    let mut m = manifest(RiskTier::Low);
    m["artifact"]["uri"] = json!(uri);
    m["artifact"]["sha256"] = json!(sha);
    block_on(h.gov.register(&h.cast.dev, "credit-risk", m, None)).unwrap();
    let mut body = report(&h, "p", "production", &uri, 0);
    body["artifact"]["sha256"] = json!(sha);
    let r = block_on(h.gov.report_serving(&h.cast.ops, body)).unwrap();
    assert_eq!((r.outcome, r.version), (Outcome::Governed, Some(vn(1))));
}

#[test]
fn a_sweep_closes_the_findings_of_endpoints_a_discovery_no_longer_sees() {
    let h = Harness::new();
    for e in ["x", "y"] {
        block_on(
            h.gov
                .report_serving(&h.cast.ops, report(&h, e, "production", "s3://unknown", 0)),
        )
        .unwrap();
    }
    let seen = vec!["seldon/production/x".to_owned()];
    let at = h.now();
    let closed = block_on(h.gov.serving_swept(&h.cast.ops, "seldon", &seen, at)).unwrap();
    assert_eq!(closed, 1);
    let y = block_on(h.gov.serving_records(&h.cast.ops, None, 10))
        .unwrap()
        .items
        .into_iter()
        .find(|r| r.endpoint == "y")
        .unwrap();
    assert!(y.stopped_at.is_some() && y.incident.is_none());
    // Sweeping again finds nothing more to close.
    assert_eq!(
        block_on(h.gov.serving_swept(&h.cast.ops, "seldon", &seen, at)).unwrap(),
        0
    );
}

#[test]
fn what_the_platform_says_it_serves_is_checked_against_the_artifact_not_trusted() {
    let h = Harness::new();
    let (uri1, _) = register(&h, 1);
    block_on(h.to_production("credit-risk", vn(1)));
    register(&h, 2);
    // The platform claims version 2, but serves version 1's artifact: governed as v1, and said.
    let mut body = report(&h, "p", "production", &uri1, 0);
    body["model"] = json!("credit-risk");
    body["version"] = json!(2);
    let r = block_on(h.gov.report_serving(&h.cast.ops, body)).unwrap();
    assert_eq!((r.outcome, r.version), (Outcome::Governed, Some(vn(1))));
    assert!(
        r.reason
            .contains("the platform says it serves credit-risk version 2"),
        "{}",
        r.reason
    );
    assert_eq!(r.claimed_version, Some(vn(2)));
}
