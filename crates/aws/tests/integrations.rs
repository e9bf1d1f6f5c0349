//! The integrations file on AWS, against the emulators: the file is an SSM parameter on moto
//! and its secrets SecureStrings under its path, read at cold start as the `api` and
//! `webhooks` functions read them (`AwsBackend::connect` with
//! `STEWARD_INTEGRATIONS_PARAMETER`); Slack hears a review request through the `webhooks`
//! handler on the deployed path (DynamoDB Local → stream publisher → EventBridge → the
//! deployed rule → SQS → handler); ServiceNow gates production on the AWS backend.
//!
//! The receivers on 127.0.0.1 play Slack (an incoming webhook: `200 ok`) and ServiceNow (the
//! Table API's `change_request` lookup); the full vendor checks of each request are in
//! `crates/integrations/tests/`, which the same code serves.
//!
//! Needs the emulators (`bash scripts/emulators run -- cargo test -p steward-aws --test
//! integrations`). Each test builds its own table, bus, queue and parameter path.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use steward_aws::handlers::webhooks::{deliverer, webhooks};
use steward_core::types::Environment;
use steward_testkit::emulators::put_ssm_parameter;

mod common;
use common::*;

const WEBHOOK_RULE: &str = include_str!("../../../events/rules/webhook-deliveries.json");
const SLACK_PATH: &str = "/services/T000/B000/XXXXSECRET";
const SN_TOKEN: &str = "servicenow-oauth-token-from-ssm";

/// What a receiver saw: (path and query, authorization header, body).
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// One receiver playing Slack (`POST` an incoming webhook) and ServiceNow (`GET` the change
/// request lookup, answering `changes` as the Table API's `result`).
struct Vendors {
    url: String,
    seen: Seen,
    changes: Arc<Mutex<Vec<Value>>>,
}

#[derive(Clone)]
struct VendorState {
    seen: Seen,
    changes: Arc<Mutex<Vec<Value>>>,
}

impl Vendors {
    async fn start() -> Result<Vendors> {
        let state = VendorState {
            seen: Arc::default(),
            changes: Arc::default(),
        };
        let slack = |State(s): State<VendorState>, body: Json<Value>| async move {
            s.seen
                .lock()
                .unwrap()
                .push((SLACK_PATH.into(), String::new(), body.0));
            "ok"
        };
        let changes = |State(s): State<VendorState>,
                       headers: HeaderMap,
                       Query(q): Query<Vec<(String, String)>>| async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            s.seen
                .lock()
                .unwrap()
                .push(("change_request".into(), auth, json!(q)));
            Json(json!({"result": s.changes.lock().unwrap().clone()}))
        };
        let app = Router::new()
            .route(SLACK_PATH, post(slack))
            .route("/api/now/table/change_request", get(changes))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Vendors {
            url,
            seen: state.seen,
            changes: state.changes,
        })
    }

    fn seen(&self, what: &str) -> Vec<(String, String, Value)> {
        let all = self.seen.lock().unwrap().clone();
        all.into_iter().filter(|(p, _, _)| p == what).collect()
    }
}

/// A fresh parameter path for one test's integrations file.
fn parameter() -> String {
    format!("/steward/{}/integrations", unique("int"))
}

/// Puts `toml` as the integrations file at `parameter`, and `secrets` as SecureStrings.
async fn put_file(parameter: &str, toml: &str, secrets: &[(&str, &str)]) {
    let aws = steward_testkit::emulators!().aws;
    for (name, value) in secrets {
        put_ssm_parameter(&aws, name, "SecureString", value).await;
    }
    put_ssm_parameter(&aws, parameter, "String", toml).await;
}

/// The file naming Slack and ServiceNow at `vendors`, secrets under `parameter`.
fn file(parameter: &str, vendors: &Vendors) -> String {
    format!(
        r#"
console_url = "https://steward.example.com"

[slack.governance]
url = {{ ssm = "{parameter}/slack-url" }}
events = ["ReviewRequested"]

[servicenow.itsm]
instance_url = "{url}"
token = {{ ssm = "{parameter}/servicenow-token" }}
"#,
        url = vendors.url
    )
}

/// The vendors, and a stack whose integrations file names Slack and ServiceNow at them.
async fn slack_and_servicenow() -> Result<(Vendors, Stack)> {
    let vendors = Vendors::start().await?;
    let p = parameter();
    let slack_url = format!("{}{SLACK_PATH}", vendors.url);
    put_file(
        &p,
        &file(&p, &vendors),
        &[
            (&format!("{p}/slack-url"), &slack_url),
            (&format!("{p}/servicenow-token"), SN_TOKEN),
        ],
    )
    .await;
    let stack = stack_with(&p).await?;
    Ok((vendors, stack))
}

async fn stack_with(parameter: &str) -> Result<Stack> {
    Stack::new(&[("STEWARD_INTEGRATIONS_PARAMETER", parameter.to_owned())]).await
}

#[tokio::test]
async fn the_functions_read_the_integrations_file_and_its_secrets_from_ssm() -> Result<()> {
    let (_vendors, stack) = slack_and_servicenow().await?;
    let ids: Vec<String> = stack
        .backend
        .integrations
        .targets()
        .iter()
        .map(|t| t.id().to_string())
        .collect();
    assert_eq!(ids, vec!["slack:governance", "servicenow:itsm"]);
    assert!(stack.backend.integrations.change_control().is_some());
    Ok(())
}

#[tokio::test]
async fn a_secret_outside_the_files_path_in_the_environment_or_missing_fails_the_cold_start_naming_its_key(
) -> Result<()> {
    let vendors = Vendors::start().await?;
    let stack = Stack::new(&[]).await?;
    let cold_start = |p: String| {
        let stack = &stack;
        async move {
            stack
                .sibling(&[("STEWARD_INTEGRATIONS_PARAMETER", p)])
                .await
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        }
    };
    let secret_value = "https://hooks.slack.com/services/T/B/do-not-print-me";

    // A reference outside the file's path: IAM would refuse it anyway; say so first.
    let p = parameter();
    let elsewhere = format!("/steward/{}/elsewhere", unique("int"));
    put_file(
        &p,
        &format!("[slack.governance]\nurl = {{ ssm = \"{elsewhere}\" }}\n"),
        &[(&elsewhere, secret_value)],
    )
    .await;
    let err = cold_start(p.clone()).await;
    assert!(
        err.contains("Steward.Config")
            && err.contains("slack.governance.url")
            && err.contains("not under"),
        "{err}"
    );

    // An environment variable is not a secret store on Lambda.
    put_file(
        &p,
        "[slack.governance]\nurl = { env = \"SLACK_URL\" }\n",
        &[],
    )
    .await;
    let err = cold_start(p.clone()).await;
    assert!(
        err.contains("slack.governance.url") && err.contains("SecureString"),
        "{err}"
    );

    // A secret that is not there, or is a plain String: named, its value never printed.
    let missing = format!("{p}/missing");
    put_file(
        &p,
        &format!("[slack.governance]\nurl = {{ ssm = \"{missing}\" }}\n"),
        &[],
    )
    .await;
    let err = cold_start(p.clone()).await;
    assert!(
        err.contains("slack.governance.url") && err.contains("ParameterNotFound"),
        "{err}"
    );
    let plain = format!("{p}/plain");
    put_ssm_parameter(
        &steward_testkit::emulators!().aws,
        &plain,
        "String",
        secret_value,
    )
    .await;
    put_file(
        &p,
        &format!("[slack.governance]\nurl = {{ ssm = \"{plain}\" }}\n"),
        &[],
    )
    .await;
    let err = cold_start(p.clone()).await;
    assert!(
        err.contains("slack.governance.url") && err.contains("String"),
        "{err}"
    );
    assert!(!err.contains("do-not-print-me"), "{err}");

    // A file that does not parse names the key; no file at all names the parameter.
    put_file(&p, "[slack.governance]\nchannel = \"#ml\"\n", &[]).await;
    let err = cold_start(p.clone()).await;
    assert!(
        err.contains(&p) && err.contains("slack.governance"),
        "{err}"
    );
    let nothing = parameter();
    let err = cold_start(nothing.clone()).await;
    assert!(
        err.contains(&nothing) && err.contains("ParameterNotFound"),
        "{err}"
    );
    drop(vendors);
    Ok(())
}

#[tokio::test]
async fn slack_hears_a_review_request_through_the_webhooks_function() -> Result<()> {
    let (vendors, stack) = slack_and_servicenow().await?;
    let queue = stack.queue_for(serde_json::from_str(WEBHOOK_RULE)?).await?;
    let gov = &stack.backend.gov;
    gov.register(&dev(), "credit-risk", manifest(), None)
        .await?;
    gov.request_promotion(&dev(), "credit-risk", vn(1), Environment::Staging, None)
        .await?;
    let report = steward_aws::handlers::stream::publish_stream(
        &stack.audit_stream().await?,
        &stack.publisher(),
    )
    .await;
    assert!(report.failed.is_none(), "{:?}", report.failed);
    let messages = stack.drain(&queue, 2, Duration::from_secs(15)).await?;
    let payload = serde_json::to_value(stack.sqs_event(&queue, &messages).await?)?;

    let response = webhooks(payload, &deliverer(&stack.backend).unwrap())
        .await
        .map_err(|f| anyhow::anyhow!("{f:?}"))?;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let posted = vendors.seen(SLACK_PATH);
    assert_eq!(
        posted.len(),
        1,
        "one message, for ReviewRequested: {posted:?}"
    );
    let text = posted[0].2["text"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("Review requested")
            && text.contains("*credit-risk* v1")
            && text.contains("https://steward.example.com/console/"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn servicenow_gates_production_on_aws_until_the_change_request_is_approved() -> Result<()> {
    let (vendors, stack) = slack_and_servicenow().await?;
    let gov = &stack.backend.gov;
    gov.register(&dev(), "credit-risk", manifest(), None)
        .await?;

    let gate = gov
        .gate("credit-risk", vn(1), Environment::Production)
        .await?;
    assert!(!gate.allowed);
    assert!(
        gate.reasons
            .iter()
            .any(|r| r == "no ServiceNow change request for credit-risk v1 (one is opened when its production promotion is approved)"),
        "{:?}",
        gate.reasons
    );
    // Asked with the token read from SSM, for this version's change.
    let asked = vendors.seen("change_request");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].1, format!("Bearer {SN_TOKEN}"));
    assert!(
        asked[0].2.to_string().contains("correlation_id="),
        "{:?}",
        asked[0].2
    );

    *vendors.changes.lock().unwrap() = vec![json!({
        "sys_id": "c0ffee", "number": "CHG0030001", "state": "-2", "approval": "requested",
    })];
    let gate = gov
        .gate("credit-risk", vn(1), Environment::Production)
        .await?;
    assert!(
        gate.reasons
            .iter()
            .any(|r| r.contains("ServiceNow change CHG0030001 is not approved")),
        "{:?}",
        gate.reasons
    );

    *vendors.changes.lock().unwrap() = vec![json!({
        "sys_id": "c0ffee", "number": "CHG0030001", "state": "-2", "approval": "approved",
    })];
    let gate = gov
        .gate("credit-risk", vn(1), Environment::Production)
        .await?;
    // Still not approved by Steward's own reviews, but no longer waiting on the change.
    assert!(!gate.allowed);
    assert!(
        gate.reasons.iter().all(|r| !r.contains("ServiceNow")),
        "{:?}",
        gate.reasons
    );
    Ok(())
}

#[tokio::test]
async fn an_integration_delivery_that_gives_up_logs_the_line_the_alarm_counts() -> Result<()> {
    // Slack at a port nothing listens on: every attempt fails to connect.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let p = parameter();
    put_file(
        &p,
        &format!("[slack.governance]\nurl = {{ ssm = \"{p}/slack-url\" }}\n"),
        &[(
            &format!("{p}/slack-url"),
            &format!("http://{closed}{SLACK_PATH}"),
        )],
    )
    .await;
    let stack = stack_with(&p).await?;
    let gov = &stack.backend.gov;
    // A window that is over at the first failure.
    let deliverer = steward_integrations::Deliverer::new(
        gov.clone(),
        steward_core::webhooks::RetrySchedule {
            give_up_after: chrono::Duration::zero(),
            ..Default::default()
        },
        stack.backend.integrations.clone(),
    )?;
    let event = steward_core::records::DomainEvent {
        detail_type: "ReviewRequested".into(),
        detail: json!({"name": "credit-risk", "version": 1, "review_id": "r1", "audit_seq": 3}),
    };
    assert_eq!(
        deliverer
            .fan_out(&[("evt_3_test".into(), gov.now(), event)])
            .await?,
        1
    );

    let (logs, guard) = CapturedLogs::start();
    assert_eq!(deliverer.deliver_due(10).await?, 1);
    drop(guard);
    let counted = logs.counted_by("WebhookGaveUpMetricFilter");
    assert_eq!(counted.len(), 1, "{:?}", logs.lines());
    assert_eq!(counted[0]["fields"]["integration"], "slack:governance");
    // The token in the URL is not in the log.
    assert!(
        !logs
            .lines()
            .iter()
            .any(|l| l.to_string().contains("XXXXSECRET")),
        "{:?}",
        logs.lines()
    );
    Ok(())
}
