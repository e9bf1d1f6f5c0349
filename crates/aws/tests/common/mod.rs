//! The emulator harness shared by the tests that run Steward's handlers and workflows on
//! DynamoDB Local and moto (`handlers.rs`, the workflow tests, ...): one deployment's worth of
//! resources ([`Stack`]), queues fed by rules, the approval workflow as deployed, and queue
//! pumps standing in for the event source mappings. The endpoints, people, fixtures and SQS
//! events come from `steward-testkit` (re-exported here); without the emulators every test here
//! fails, saying how to start them.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{json, Value};

use steward_aws::dynamo::create_table;
use steward_aws::env::AwsEnv;
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::checkpoint::Checkpointer;
use steward_aws::s3::create_audit_bucket;
use steward_core::audit::Ed25519Signer;
pub use steward_testkit::*;

mod retirement;
mod stream;
#[allow(unused_imports)] // only the retirement tests use it
pub use retirement::*;
#[allow(unused_imports)] // not every test binary builds stream records
pub use stream::{batch, sequence_number, stream_record};

pub const SEED: [u8; 32] = [42; 32];

/// One deployment's worth of resources on the emulators, and the backend over them.
pub struct Stack {
    pub env: AwsEnv,
    pub backend: AwsBackend,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub bus: String,
    /// Receives every `steward.governance` event on the bus.
    pub governance_queue: String,
    /// The settings the backend was built from.
    pub vars: HashMap<String, String>,
}

impl Stack {
    /// A table, an Object Lock bucket, a bus with a rule to a queue; `extra` adds settings.
    pub async fn new(extra: &[(&str, String)]) -> Result<Stack> {
        let Emulators { dynamodb, aws, .. } = steward_testkit::emulators!();
        let mut vars: HashMap<String, String> = HashMap::from([
            ("STEWARD_TABLE".into(), unique("steward")),
            ("STEWARD_AUDIT_BUCKET".into(), unique("audit")),
            ("STEWARD_AUDIT_RETENTION_DAYS".into(), "1".into()),
            ("STEWARD_EVENT_BUS".into(), unique("bus")),
            ("STEWARD_ENDPOINT_URL".into(), aws),
            ("STEWARD_DYNAMODB_ENDPOINT_URL".into(), dynamodb),
        ]);
        for (k, v) in extra {
            vars.insert((*k).into(), v.clone());
        }
        let env = AwsEnv::from_lookup(|k| vars.get(k).cloned())?;
        let (table, bucket, bus) = (
            env.table.clone().unwrap_or_default(),
            env.audit_bucket.clone().unwrap_or_default(),
            env.event_bus.clone().unwrap_or_default(),
        );
        let backend = AwsBackend::connect_with(&env, Some(Ed25519Signer::from_seed(&SEED)))
            .await
            .map_err(|f| anyhow::anyhow!("{f}"))?;
        create_table(backend.store.client(), &table).await?;
        let s3 = backend.s3();
        create_audit_bucket(&s3, &bucket, 1).await?;
        let sqs = aws_sdk_sqs::Client::new(&backend.sdk);
        let events = aws_sdk_eventbridge::Client::new(&backend.sdk);
        events.create_event_bus().name(&bus).send().await?;
        let mut stack = Stack {
            env,
            backend,
            s3,
            sqs,
            events,
            bus,
            governance_queue: String::new(),
            vars,
        };
        stack.governance_queue = stack
            .queue_for(json!({"source": ["steward.governance"]}))
            .await?;
        Ok(stack)
    }

    /// Another backend over the same table, bus and state machine, built as a function would
    /// build it with `extra` settings on top (e.g. another `STEWARD_POLICY`).
    pub async fn sibling(&self, extra: &[(&str, String)]) -> Result<AwsBackend> {
        let mut vars = self.vars.clone();
        for (k, v) in extra {
            vars.insert((*k).into(), v.clone());
        }
        let env = AwsEnv::from_lookup(|k| vars.get(k).cloned())?;
        AwsBackend::connect_with(&env, Some(Ed25519Signer::from_seed(&SEED)))
            .await
            .map_err(|f| anyhow::anyhow!("{f}"))
    }

    /// A queue fed by a rule on the bus with `pattern`; returns the queue URL.
    pub async fn queue_for(&self, pattern: Value) -> Result<String> {
        let url = self
            .sqs
            .create_queue()
            .queue_name(unique("q"))
            .send()
            .await?
            .queue_url()
            .context("queue url")?
            .to_owned();
        let arn = self.queue_arn(&url).await?;
        let rule = unique("rule");
        self.events
            .put_rule()
            .name(&rule)
            .event_bus_name(&self.bus)
            .event_pattern(pattern.to_string())
            .send()
            .await?;
        self.events
            .put_targets()
            .rule(&rule)
            .event_bus_name(&self.bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()?,
            )
            .send()
            .await?;
        Ok(url)
    }

    pub async fn queue_arn(&self, url: &str) -> Result<String> {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await?;
        Ok(attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .context("queue arn")?
            .clone())
    }

    /// Every message waiting on `url` (deleted as received), after waiting up to `patience`
    /// for the first `at_least`.
    pub async fn drain(
        &self,
        url: &str,
        at_least: usize,
        patience: Duration,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>> {
        let deadline = std::time::Instant::now() + patience;
        let mut all = Vec::new();
        let mut empty_rounds = 0;
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .send()
                .await?;
            let got = out.messages().to_vec();
            for m in &got {
                self.sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await?;
            }
            if got.is_empty() {
                empty_rounds += 1;
                if (all.len() >= at_least && empty_rounds >= 2)
                    || std::time::Instant::now() > deadline
                {
                    return Ok(all);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            } else {
                empty_rounds = 0;
                all.extend(got);
            }
        }
    }

    /// The SQS event a Lambda event source mapping would hand the function for `messages`.
    pub async fn sqs_event(
        &self,
        url: &str,
        messages: &[aws_sdk_sqs::types::Message],
    ) -> Result<SqsEvent> {
        let arn = self.queue_arn(url).await?;
        Ok(sqs_event_for(&arn, messages)?)
    }

    /// The checkpoint function's dependencies as its main builds them.
    pub fn checkpointer(&self) -> Checkpointer {
        self.checkpointer_over(&self.backend)
    }

    /// The checkpoint function's dependencies over `backend`'s clients (e.g. one behind a
    /// fault injector), with this stack's bucket.
    pub fn checkpointer_over(&self, backend: &AwsBackend) -> Checkpointer {
        Checkpointer {
            gov: backend.gov.clone(),
            store: backend.store.clone(),
            objects: backend.audit_objects(&self.env).expect("an audit bucket"),
            signer: backend.require_signer().expect("a signer"),
        }
    }
}

/// Registers a version and takes it through a staging review: a handful of commits, most
/// with governance events.
pub async fn some_governance(stack: &Stack, model: &str) -> Result<()> {
    let gov = &stack.backend.gov;
    gov.register(&dev(), model, manifest(), None).await?;
    let p = gov
        .request_promotion(
            &dev(),
            model,
            vn(1),
            steward_core::types::Environment::Staging,
            None,
        )
        .await?;
    gov.decide(&tech(), &p.reviews[0].id, approve()).await?;
    gov.deploy(
        &dev(),
        model,
        vn(1),
        steward_core::types::Environment::Staging,
        None,
    )
    .await?;
    Ok(())
}

/// Creates the approval state machine as deployed, publishing to `bus`; its ARN.
pub async fn approval_machine(bus: &str) -> Result<String> {
    let sdk = steward_testkit::emulators!().sdk().await;
    Ok(aws_sdk_sfn::Client::new(&sdk)
        .create_state_machine()
        .name(unique("approval"))
        .role_arn("arn:aws:iam::123456789012:role/steward-approval")
        .definition(APPROVAL_ASL.replace("${EventBusName}", bus))
        .send()
        .await?
        .state_machine_arn()
        .to_owned())
}

/// The approval state machine as deployed (`statemachines/approval.asl.json`, its one
/// placeholder filled as the template fills it).
pub const APPROVAL_ASL: &str = include_str!("../../../../statemachines/approval.asl.json");
/// The rules that feed the review-inbox and workflow-events queues, as deployed.
pub const REVIEW_REQUESTED_RULE: &str =
    include_str!("../../../../events/rules/review-requested.json");
pub const APPROVAL_OUTCOMES_RULE: &str =
    include_str!("../../../../events/rules/approval-outcomes.json");
/// The rule that brings committed decisions, from the outbox, to the review inbox.
pub const DECISIONS_RULE: &str = include_str!("../../../../events/rules/decisions.json");

/// A stack whose promotions run the real approval workflow on moto, with the inbox and
/// workflow-events queues fed by the real rules. `policy` overrides the default policy.
pub async fn workflow_stack(policy: Option<&str>) -> Result<(Stack, String, String)> {
    // The machine exists before the backend that starts its executions.
    let bus = unique("bus");
    let machine = approval_machine(&bus).await?;
    let mut extra = vec![
        ("STEWARD_APPROVAL_STATE_MACHINE_ARN", machine),
        ("STEWARD_EVENT_BUS", bus),
    ];
    if let Some(p) = policy {
        extra.push(("STEWARD_POLICY", p.to_owned()));
    }
    let stack = Stack::new(&extra).await?;
    let inbox = stack
        .queue_for(serde_json::from_str(REVIEW_REQUESTED_RULE)?)
        .await?;
    let outcomes = stack
        .queue_for(serde_json::from_str(APPROVAL_OUTCOMES_RULE)?)
        .await?;
    Ok((stack, inbox, outcomes))
}

/// An execution's history, one line per event, for failure messages.
pub async fn execution_history(sfn: &aws_sdk_sfn::Client, arn: &str) -> String {
    match sfn
        .get_execution_history()
        .execution_arn(arn)
        .max_results(1000)
        .send()
        .await
    {
        Ok(h) => h
            .events()
            .iter()
            .map(|e| format!("  {} {:?}", e.id(), e.r#type()))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("(no history: {e})"),
    }
}

/// The execution once it has ended, `(status, output)`; fails with its history after
/// `patience`.
pub async fn execution_finished(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    patience: Duration,
) -> Result<(aws_sdk_sfn::types::ExecutionStatus, Value)> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let d = sfn.describe_execution().execution_arn(arn).send().await?;
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running {
            let output = d.output().map(serde_json::from_str).transpose()?;
            return Ok((d.status().clone(), output.unwrap_or(Value::Null)));
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "execution still RUNNING after {patience:?}; history:\n{}",
                execution_history(sfn, arn).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `(detail-type, detail)` of the events a handler was given, shared with a test.
pub type SeenEvents = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;

/// The queues of a deployment's two workflow functions: `(url, arn)` each.
pub struct WorkflowQueues {
    pub inbox: (String, String),
    pub workflow_events: (String, String),
}

/// Drains the review-inbox and workflow-events queues into their handlers for ever, as the
/// event source mappings would: the messages a handler reports as batch item failures become
/// visible again at once, the rest are deleted. `seen` receives `(detail-type, detail)` of
/// every EventBridge event the workflow-events handler was given. Abort the task to stop it.
pub async fn pump_workflow_queues(
    inbox: steward_aws::handlers::inbox::ReviewInbox,
    sqs: aws_sdk_sqs::Client,
    queues: WorkflowQueues,
    seen: Option<SeenEvents>,
) {
    use steward_aws::handlers::workflow_events::workflow_events;
    use steward_aws::handlers::{eventbridge_envelope, inbox::review_inbox};
    loop {
        let mut idle = true;
        for (is_inbox, (url, arn)) in [(true, &queues.inbox), (false, &queues.workflow_events)] {
            // A short visibility timeout: a message whose receive answer or delete the
            // emulator dropped comes back in 5 s, well inside the tests' patience (SQS's
            // default, 30 s, is all of it). Handlers are idempotent, as in production.
            let Ok(out) = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(5)
                .send()
                .await
            else {
                continue;
            };
            let messages = out.messages().to_vec();
            if messages.is_empty() {
                continue;
            }
            idle = false;
            let event = sqs_event_for(arn, &messages).expect("an SQS event");
            let response = if is_inbox {
                review_inbox(&event, &inbox).await
            } else {
                let response = workflow_events(&event, &inbox.gov, Some(&inbox.workflows)).await;
                if let Some(seen) = &seen {
                    for record in &event.records {
                        if let Ok(envelope) = eventbridge_envelope(record) {
                            seen.lock()
                                .unwrap()
                                .push((envelope.detail_type.clone(), envelope.detail.clone()));
                        }
                    }
                }
                response
            };
            let failed: std::collections::HashSet<String> = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect();
            for m in &messages {
                let handle = m.receipt_handle().unwrap_or_default();
                if failed.contains(m.message_id().unwrap_or_default()) {
                    let _ = sqs
                        .change_message_visibility()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .send()
                        .await;
                } else {
                    let _ = sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
        }
        if idle {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Log lines captured in the functions' format (`steward_aws::lambda::json_logs`), for tests
/// that check what an alarm's metric filter matches.
#[cfg(feature = "lambda")]
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(feature = "lambda")]
impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "lambda")]
impl CapturedLogs {
    /// Captures this thread's events (a `#[tokio::test]` runs its tasks on it) until the
    /// guard drops.
    pub fn start() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber =
            steward_aws::lambda::json_logs(tracing_subscriber::EnvFilter::new("info"), move || {
                writer.clone()
            });
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// The captured lines the template's metric filter `logical_id` counts.
    pub fn counted_by(&self, logical_id: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| counted_by(l, logical_id))
            .collect()
    }

    /// Every captured line, parsed.
    pub fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The `$.fields.message` prefixes the template's metric filter `logical_id` matches on
/// `ERROR` lines (its pattern's `"...*"` strings, without the `*`).
pub fn metric_filter_messages(logical_id: &str) -> Vec<String> {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/template.yaml"
    ))
    .unwrap();
    let start = template
        .find(&format!("\n  {logical_id}:\n"))
        .unwrap_or_else(|| panic!("no {logical_id} in the template"));
    let pattern_line = template[start..]
        .lines()
        .find(|l| l.trim_start().starts_with("FilterPattern:"))
        .unwrap();
    assert!(
        pattern_line.contains(r#"$.level = "ERROR""#),
        "{pattern_line}"
    );
    pattern_line
        .split(r#"$.fields.message = ""#)
        .skip(1)
        .map(|rest| {
            let text = &rest[..rest.find('"').unwrap()];
            text.strip_suffix('*').unwrap_or(text).to_owned()
        })
        .collect()
}

/// Whether a captured line is one `metric_filter_messages(logical_id)` counts.
pub fn counted_by(line: &Value, logical_id: &str) -> bool {
    let message = line["fields"]["message"].as_str().unwrap_or_default();
    line["level"] == "ERROR"
        && metric_filter_messages(logical_id)
            .iter()
            .any(|m| message.starts_with(m.as_str()))
}
