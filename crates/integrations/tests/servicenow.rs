//! ServiceNow end to end: a real HTTP receiver on 127.0.0.1 plays the Table API
//! (`/api/now/table/change_request`: 201 `{"result": {...}}` on create, 200 `{"result": [...]}`
//! on a query; 429 with Retry-After, 500 and 401 when told to), the real embedded backend
//! (SQLite in a temp dir) runs governance with the ServiceNow change control attached, and the
//! deliverer opens the change from the outbox. Time is a manual clock: retries are due when
//! the test moves it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use steward_core::ports::{AuditLog, Deliveries};
use steward_core::testing::{manifest, staging_evaluation, Cast, ManualClock};
use steward_core::types::{Decision, Environment, ModelName, RiskTier};
use steward_core::webhooks::{DeliveryStatus, IntegrationKind, RetrySchedule, WebhookId};
use steward_core::{GovError, Governance, Policy};
use steward_integrations::{Deliverer, Integrations, IntegrationsConfig};
use steward_local::Embedded;

/// `Basic base64("steward.integration:s3cr3t-pw")`, computed independently of reqwest.
const BASIC: &str = "Basic c3Rld2FyZC5pbnRlZ3JhdGlvbjpzM2NyM3QtcHc=";

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: &'static str,
    query: HashMap<String, String>,
    authorization: Option<String>,
    body: Option<Value>,
}

/// The fake instance: its change requests, what it was sent, and failures to answer next.
#[derive(Default)]
struct Instance {
    changes: Mutex<Vec<Value>>,
    seen: Mutex<Vec<Seen>>,
    /// Answered, in order, before any normal answer: `(status, Retry-After)`.
    failures: Mutex<VecDeque<(u16, Option<u64>)>>,
}

impl Instance {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn posts(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "POST")
            .collect()
    }
    fn fail_next(&self, status: u16, retry_after: Option<u64>) {
        self.failures
            .lock()
            .unwrap()
            .push_back((status, retry_after));
    }
    /// What the change advisory board does in ServiceNow.
    fn set(&self, number: &str, state: &str, approval: &str) {
        let mut changes = self.changes.lock().unwrap();
        let c = changes.iter_mut().find(|c| c["number"] == number).unwrap();
        c["state"] = json!(state);
        c["approval"] = json!(approval);
    }

    /// A scripted failure or a wrong Authorization header, answered as ServiceNow does.
    fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        if let Some((status, retry_after)) = self.failures.lock().unwrap().pop_front() {
            let mut r = (
                StatusCode::from_u16(status).unwrap(),
                Json(json!({"error": {"message": "scripted failure", "detail": null}, "status": "failure"})),
            )
                .into_response();
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert("retry-after", s.to_string().parse().unwrap());
            }
            return Some(r);
        }
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        (auth != Some(BASIC)).then(|| {
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"})),
            )
                .into_response()
        })
    }
}

fn record(
    i: &Instance,
    method: &'static str,
    q: &HashMap<String, String>,
    h: &HeaderMap,
    body: Option<Value>,
) {
    i.seen.lock().unwrap().push(Seen {
        method,
        query: q.clone(),
        authorization: h
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    });
}

async fn query(
    State(i): State<Arc<Instance>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    record(&i, "GET", &q, &headers, None);
    if let Some(r) = i.refusal(&headers) {
        return r;
    }
    // Only the query Steward sends is understood: `correlation_id=<id>`.
    let wanted = q["sysparm_query"]
        .strip_prefix("correlation_id=")
        .unwrap()
        .to_owned();
    let limit: usize = q["sysparm_limit"].parse().unwrap();
    let fields: Vec<&str> = q["sysparm_fields"].split(',').collect();
    let result: Vec<Value> = i
        .changes
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c["correlation_id"] == wanted.as_str())
        .take(limit)
        .map(|c| {
            json!(fields
                .iter()
                .map(|f| (f.to_string(), c[*f].clone()))
                .collect::<serde_json::Map<_, _>>())
        })
        .collect();
    (StatusCode::OK, Json(json!({ "result": result }))).into_response()
}

async fn create(
    State(i): State<Arc<Instance>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    record(&i, "POST", &q, &headers, Some(body.clone()));
    if let Some(r) = i.refusal(&headers) {
        return r;
    }
    let mut changes = i.changes.lock().unwrap();
    let mut c = body;
    let n = changes.len() + 1;
    c["sys_id"] = json!(format!("a9e30c7dc61122760116894de7bcc7b{n}"));
    c["number"] = json!(format!("CHG003000{n}"));
    c["state"] = json!("-5");
    c["approval"] = json!("not requested");
    changes.push(c.clone());
    (StatusCode::CREATED, Json(json!({ "result": c }))).into_response()
}

/// Serves the fake instance on 127.0.0.1; returns its base URL.
async fn serve(instance: Arc<Instance>) -> String {
    let app = Router::new()
        .route("/api/now/table/change_request", get(query).post(create))
        .with_state(instance);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn config(dir: &std::path::Path, instance_url: &str) -> IntegrationsConfig {
    let pw = dir.join("servicenow-password");
    std::fs::write(&pw, "s3cr3t-pw\n").unwrap();
    IntegrationsConfig::from_toml(&format!(
        r#"
console_url = "https://steward.example.com"

[servicenow.itsm]
instance_url = "{instance_url}"
user = "steward.integration"
password = {{ file = "{}" }}
assignment_group = "ML Platform CAB"
category = "Software"
"#,
        pw.display()
    ))
    .unwrap()
}

/// What the steps of the scenario share.
struct World {
    gov: Arc<Governance>,
    embedded: Embedded,
    clock: Arc<ManualClock>,
    deliverer: Deliverer,
    cast: Cast,
    cursor: i64,
}

impl World {
    /// Fans the new outbox events out and attempts what is due; returns how many were attempted.
    async fn deliver(&mut self) -> usize {
        let rows = self
            .embedded
            .store
            .outbox_entries(self.cursor, 500)
            .unwrap();
        if let Some(last) = rows.last() {
            self.cursor = last.0;
        }
        let events: Vec<_> = rows
            .into_iter()
            .map(|(id, at, e)| (format!("evt_test_{id}"), at, e))
            .collect();
        self.deliverer.fan_out(&events).await.unwrap();
        self.deliverer.deliver_due(10).await.unwrap()
    }

    async fn gate(&self) -> (bool, Vec<String>) {
        let g = self
            .gov
            .gate("credit-risk", vn(1), Environment::Production)
            .await
            .unwrap();
        (g.allowed, g.reasons)
    }

    async fn deploy(&self) -> Result<(), GovError> {
        self.gov
            .deploy(
                &self.cast.rel,
                "credit-risk",
                vn(1),
                Environment::Production,
                None,
            )
            .await
            .map(|_| ())
    }

    async fn approve_all(&self, p: &steward_core::records::Promotion) {
        for r in &p.reviews {
            let input = steward_core::service::DecisionInput {
                decision: Decision::Approve,
                comment: Some(format!("{} looks fine", r.stage)),
                conditions: vec![],
            };
            self.gov
                .decide(self.cast.reviewer_for(r.stage), &r.id, input)
                .await
                .unwrap();
        }
    }
}

fn vn(n: u32) -> steward_core::ids::VersionNumber {
    steward_core::ids::VersionNumber::new(n).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_deployment_waits_for_the_servicenow_change_steward_opened_once_and_records_its_number(
) {
    let instance = Arc::new(Instance::default());
    let url = serve(instance.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let integrations = Integrations::build(&config(dir.path(), &url)).unwrap();
    let cc = integrations
        .change_control()
        .expect("ServiceNow is change control");
    let clock = Arc::new(ManualClock::default());
    let embedded = Embedded::open_configured(
        &dir.path().join("data"),
        Policy::default(),
        clock.clone(),
        |g| g.with_change_control(cc),
    )
    .await
    .unwrap();
    let gov = embedded.gov.clone();
    let deliverer =
        Deliverer::new(gov.clone(), RetrySchedule::default(), integrations.clone()).unwrap();
    let cursor = embedded.store.outbox_head().unwrap();
    let mut w = World {
        gov: gov.clone(),
        embedded,
        clock,
        deliverer,
        cast: Cast::default(),
        cursor,
    };
    let cast = w.cast.clone();

    // Registration and staging: ServiceNow is never asked.
    let (v, _) = gov
        .register(&cast.dev, "credit-risk", manifest(RiskTier::Medium), None)
        .await
        .unwrap();
    assert_eq!(v.version, vn(1));
    let p = gov
        .request_promotion(&cast.dev, "credit-risk", vn(1), Environment::Staging, None)
        .await
        .unwrap();
    w.approve_all(&p).await;
    assert!(
        gov.gate("credit-risk", vn(1), Environment::Staging)
            .await
            .unwrap()
            .allowed
    );
    gov.deploy(&cast.dev, "credit-risk", vn(1), Environment::Staging, None)
        .await
        .unwrap();
    gov.add_evaluation(&cast.dev, "credit-risk", vn(1), staging_evaluation())
        .await
        .unwrap();
    assert_eq!(
        w.deliver().await,
        0,
        "nothing is for ServiceNow before a production approval"
    );
    assert!(
        instance.seen().is_empty(),
        "staging never asks ServiceNow: {:?}",
        instance.seen()
    );

    // Production approved in Steward; the change is not open yet.
    let p = gov
        .request_promotion(
            &cast.dev,
            "credit-risk",
            vn(1),
            Environment::Production,
            None,
        )
        .await
        .unwrap();
    w.approve_all(&p).await;
    let no_change = "no ServiceNow change request for credit-risk v1 (one is opened when its production promotion is approved)";
    assert_eq!(w.gate().await, (false, vec![no_change.to_owned()]));
    let lookup = &instance.seen()[0];
    assert_eq!(lookup.method, "GET");
    assert_eq!(lookup.authorization.as_deref(), Some(BASIC));
    assert_eq!(
        lookup.query,
        HashMap::from([
            (
                "sysparm_query".to_owned(),
                "correlation_id=steward:credit-risk:1".to_owned()
            ),
            ("sysparm_limit".to_owned(), "1".to_owned()),
            (
                "sysparm_fields".to_owned(),
                "sys_id,number,state,approval".to_owned()
            ),
        ])
    );

    // The deliverer opens it: through a 429 with Retry-After (honoured) and a 500.
    let before = instance.seen().len();
    instance.fail_next(429, Some(30));
    assert_eq!(w.deliver().await, 1);
    w.clock.advance(Duration::from_secs(29));
    assert_eq!(w.deliver().await, 0, "Retry-After: 30 is honoured");
    w.clock.advance(Duration::from_secs(1));
    instance.fail_next(500, None);
    assert_eq!(w.deliver().await, 1);
    assert!(instance.posts().is_empty(), "a failed lookup opens nothing");
    w.clock.advance(Duration::from_secs(10));
    assert_eq!(w.deliver().await, 1);
    let seen = instance.seen()[before..].to_vec();
    let methods: Vec<&str> = seen.iter().map(|s| s.method).collect();
    assert_eq!(methods, ["GET", "GET", "GET", "POST"]);
    let post = &seen[3];
    assert_eq!(post.authorization.as_deref(), Some(BASIC));
    assert!(post.query.is_empty());
    let body = post.body.clone().unwrap();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "assignment_group",
            "category",
            "correlation_display",
            "correlation_id",
            "description",
            "short_description",
            "type"
        ]
    );
    assert_eq!(
        body["short_description"],
        "Deploy model credit-risk v1 to production (Steward)"
    );
    assert_eq!(body["type"], "normal");
    assert_eq!(body["correlation_id"], "steward:credit-risk:1");
    assert_eq!(body["correlation_display"], "Steward");
    assert_eq!(body["assignment_group"], "ML Platform CAB");
    assert_eq!(body["category"], "Software");
    let description = body["description"].as_str().unwrap();
    for part in [
        "Steward approved model credit-risk version 1 for production (promotion ",
        "Risk tier: medium.",
        "- technical: approved by tom at ",
        ": technical looks fine",
        "- business: approved by bea at ",
        "In Steward: https://steward.example.com/console/models/credit-risk/versions/1",
        "until this change is approved (approval \"approved\" and state Scheduled or Implement)",
    ] {
        assert!(description.contains(part), "{part:?} not in {description}");
    }
    let id = WebhookId::integration(IntegrationKind::ServiceNow, "itsm").unwrap();
    let deliveries = Deliveries::recent(w.embedded.store.as_ref(), &id, 10)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (deliveries[0].status, deliveries[0].attempts),
        (DeliveryStatus::Delivered, 3)
    );

    // Repeating the delivery (a crash before it was saved) finds the change and opens no other.
    let repeat = integrations
        .target(&id)
        .unwrap()
        .deliver(&deliveries[0])
        .await;
    assert!(repeat.succeeded(), "{repeat:?}");
    assert_eq!(instance.posts().len(), 1, "one change per version");

    // Open but not approved: refused, naming the change and its state.
    let not_approved = "ServiceNow change CHG0030001 is not approved (state: New)";
    assert_eq!(w.gate().await, (false, vec![not_approved.to_owned()]));
    match w.deploy().await {
        Err(GovError::Policy(reasons)) => assert_eq!(reasons, [not_approved]),
        other => panic!("expected a policy refusal, got {other:?}"),
    }
    instance.set("CHG0030001", "-4", "requested");
    assert_eq!(
        w.gate().await.1,
        ["ServiceNow change CHG0030001 is not approved (state: Assess)"]
    );
    instance.set("CHG0030001", "-2", "requested");
    assert_eq!(
        w.gate().await.1,
        ["ServiceNow change CHG0030001 is not approved (state: Scheduled, approval: requested)"]
    );

    // ServiceNow refusing Steward (401) or rate limiting it: the gate stays closed, saying why.
    instance.set("CHG0030001", "-2", "approved");
    instance.fail_next(401, None);
    let (allowed, reasons) = w.gate().await;
    assert!(!allowed);
    assert_eq!(reasons.len(), 1);
    assert!(
        reasons[0].starts_with("cannot check the ServiceNow change request for credit-risk v1: looking up the change request at http://127.0.0.1:")
            && reasons[0].contains("ServiceNow answered 401 (check the integration user's credentials and roles)")
            && reasons[0].ends_with("production waits until ServiceNow answers"),
        "{reasons:?}"
    );
    assert!(!reasons[0].contains("s3cr3t"), "no credentials in reasons");
    instance.fail_next(429, Some(5));
    match w.deploy().await {
        Err(GovError::Policy(reasons)) => assert!(
            reasons[0].contains("ServiceNow answered 429"),
            "{reasons:?}"
        ),
        other => panic!("expected a policy refusal, got {other:?}"),
    }

    // Approved by the CAB and scheduled: allowed, and the deployment's audit event names it.
    assert_eq!(w.gate().await, (true, vec![]));
    w.deploy().await.unwrap();
    let events = AuditLog::events(w.embedded.store.as_ref(), None, 0, 1000)
        .await
        .unwrap();
    let deployed = events
        .iter()
        .filter(|e| e.action == "version.deployed")
        .find(|e| e.details["environment"] == "production")
        .expect("a production deployment event");
    assert_eq!(deployed.details["change"], "CHG0030001");
    assert_eq!(instance.posts().len(), 1);
}

#[tokio::test]
async fn servicenow_unreachable_is_an_error_the_gate_refuses_on_never_an_answer() {
    // A port nobody listens on: bound, then closed.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let integrations = Integrations::build(&config(dir.path(), &format!("http://{addr}"))).unwrap();
    let cc = integrations.change_control().unwrap();
    let err = cc
        .change_for(&ModelName::parse("credit-risk").unwrap(), vn(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot connect to the receiver"), "{err}");
    assert!(!err.contains("s3cr3t"), "{err}");
}
