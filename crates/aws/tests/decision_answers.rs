//! A decision whose Step Functions answer failed is answered again from the outbox.
//!
//! The API function records a decision, then answers the workflow's task. Here that answer
//! fails: the deciding backend's Step Functions endpoint is a closed port on 127.0.0.1 (a
//! real connection refusal, nothing mocked), its DynamoDB the real table. The decision still
//! commits and the call succeeds, and the workflow keeps waiting. Then the commit's audit
//! event goes through the real stream publisher (stream records built from the table, see
//! `common/stream.rs`), its `ReviewDecided` / `RetirementDecided` reaches a queue through
//! the deployed rule (`events/rules/decisions.json`), and the review inbox answers the task:
//! with Step Functions still unreachable that is a batch item failure (SQS redelivers), once
//! reachable the workflow completes, and a further redelivery changes nothing.
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` and `STEWARD_TEST_AWS_ENDPOINT`, and fails without
//! them: `bash scripts/emulators run -- cargo test -p steward-aws --test decision_answers`.

mod common;

use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sfn::types::ExecutionStatus;

use common::*;
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::handlers::inbox::{review_inbox, ReviewInbox};
use steward_aws::handlers::stream::publish_stream;
use steward_aws::handlers::workflow_events::workflow_events;
use steward_core::records::{PromotionStatus, ReviewStatus};
use steward_core::service::RetireOutcome;
use steward_core::types::{Decision, Environment, ModelName, Stage};
use steward_testkit::vn;

const PATIENCE: Duration = Duration::from_secs(30);

/// An endpoint on 127.0.0.1 nothing listens on: a port the OS just handed out, closed again.
fn closed_endpoint() -> Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    Ok(format!("http://127.0.0.1:{port}"))
}

/// A backend over the same table whose AWS services other than DynamoDB (Step Functions
/// among them) are unreachable; `extra` as for [`Stack::sibling`].
async fn unreachable_workflows(stack: &Stack, extra: &[(&str, String)]) -> Result<AwsBackend> {
    let mut vars = extra.to_vec();
    vars.push(("STEWARD_ENDPOINT_URL", closed_endpoint()?));
    stack.sibling(&vars).await
}

fn inbox_of(backend: &AwsBackend) -> Result<ReviewInbox> {
    Ok(ReviewInbox {
        gov: backend.gov.clone(),
        store: backend.store.clone(),
        workflows: backend
            .require_step_functions()
            .map_err(|f| anyhow!("{f}"))?,
    })
}

async fn messages(stack: &Stack, queue: &str, n: usize) -> Result<SqsEvent> {
    let got = stack.drain(queue, n, PATIENCE).await?;
    ensure!(got.len() >= n, "{} of {n} messages on {queue}", got.len());
    stack.sqs_event(queue, &got).await
}

async fn status(sfn: &aws_sdk_sfn::Client, arn: &str) -> Result<ExecutionStatus> {
    Ok(sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await?
        .status()
        .clone())
}

/// Publishes the whole audit log as the stream would deliver it; fails on a failed record.
async fn publish_outbox(stack: &Stack) -> Result<()> {
    let report = publish_stream(&stack.audit_stream().await?, &stack.publisher()).await;
    ensure!(
        report.failed.is_none(),
        "stream publisher: {:?}",
        report.failed
    );
    Ok(())
}

/// The detail-types of the events in an SQS batch fed by a rule.
fn detail_types(event: &SqsEvent) -> Vec<String> {
    event
        .records
        .iter()
        .filter_map(|r| steward_aws::handlers::eventbridge_envelope(r).ok())
        .map(|e| e.detail_type)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_decision_whose_answer_failed_is_sent_again_from_the_outbox_until_the_workflow_has_it(
) -> Result<()> {
    let (stack, inbox_queue, outcomes_queue) = workflow_stack(None).await?;
    let decisions_queue = stack
        .queue_for(serde_json::from_str(DECISIONS_RULE)?)
        .await?;
    let sfn = aws_sdk_sfn::Client::new(&stack.backend.sdk);
    let inbox = inbox_of(&stack.backend)?;
    let gov = &stack.backend.gov;
    gov.register(&dev(), "fraud", manifest(), None).await?;
    let p = gov
        .request_promotion(&dev(), "fraud", vn(1), Environment::Staging, None)
        .await?;
    let arn = inbox.workflows.execution_arn(&p.id);
    // The workflow asks for the review; the inbox stores its token.
    let asked = messages(&stack, &inbox_queue, 1).await?;
    ensure!(review_inbox(&asked, &inbox)
        .await
        .batch_item_failures
        .is_empty());

    // The decision commits through a backend that cannot reach Step Functions: the call
    // succeeds (the registry holds the decision), the workflow has not heard.
    let cut_off = unreachable_workflows(&stack, &[]).await?;
    let decided = cut_off
        .gov
        .decide(&tech(), &p.reviews[0].id, approve())
        .await
        .context("a committed decision whose answer failed is not the caller's error")?;
    assert_eq!(decided.status, PromotionStatus::Approved);
    assert_eq!(decided.reviews[0].status, ReviewStatus::Approved);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status(&sfn, &arn).await?, ExecutionStatus::Running);

    // The outbox carries the decision to the inbox.
    publish_outbox(&stack).await?;
    let decision = messages(&stack, &decisions_queue, 1).await?;
    assert_eq!(detail_types(&decision), ["ReviewDecided"]);
    // Step Functions still unreachable: a batch item failure, so SQS delivers it again.
    let failed = review_inbox(&decision, &inbox_of(&cut_off)?).await;
    assert_eq!(failed.batch_item_failures.len(), 1, "{failed:?}");
    assert_eq!(status(&sfn, &arn).await?, ExecutionStatus::Running);
    // Redelivered to an inbox that reaches it: the task is answered, the workflow approves.
    let answered = review_inbox(&decision, &inbox).await;
    assert!(answered.batch_item_failures.is_empty(), "{answered:?}");
    let (end, _) = execution_finished(&sfn, &arn, PATIENCE).await?;
    assert_eq!(end, ExecutionStatus::Succeeded);
    let outcome = messages(&stack, &outcomes_queue, 1).await?;
    assert_eq!(detail_types(&outcome), ["PromotionApproved"]);
    // Once more (at-least-once delivery): the closed task is reported, not retried.
    let again = review_inbox(&decision, &inbox).await;
    assert!(again.batch_item_failures.is_empty(), "{again:?}");
    let p = gov.promotion(&p.id).await?;
    assert_eq!(p.status, PromotionStatus::Approved);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retirement_confirmation_whose_answer_failed_is_sent_again_from_the_outbox_and_the_version_is_retired(
) -> Result<()> {
    let rs = retirement_stack(&["60"]).await?;
    let (stack, backend) = (&rs.stack, &rs.backends[0]);
    let decisions_queue = stack
        .queue_for(serde_json::from_str(DECISIONS_RULE)?)
        .await?;
    let inbox = inbox_of(backend)?;
    let gov = &backend.gov;
    gov.register(&dev(), "churn", manifest(), None).await?;
    let RetireOutcome::Pending(v) = gov
        .retire(&rel(), "churn", vn(1), "superseded", None)
        .await?
    else {
        anyhow::bail!("expected a pending retirement");
    };
    let id = v.pending_retirement.context("pending")?.id;
    let arn = inbox
        .workflows
        .retirement_execution_arn(&id)
        .context("retirement machine")?;
    // The dependents check passes; the confirmation's token is stored.
    let check = messages(stack, &rs.wf_queue, 1).await?;
    ensure!(workflow_events(&check, gov, Some(&inbox.workflows))
        .await
        .batch_item_failures
        .is_empty());
    let asked = messages(stack, &rs.inbox_queue, 1).await?;
    ensure!(review_inbox(&asked, &inbox)
        .await
        .batch_item_failures
        .is_empty());

    // Confirmed through a backend that cannot reach Step Functions.
    let cut_off = unreachable_workflows(
        stack,
        &[(
            "STEWARD_RETIREMENT_STATE_MACHINE_ARN",
            rs.machines[0].clone(),
        )],
    )
    .await?;
    cut_off
        .gov
        .decide_retirement(&compliance(), "churn", vn(1), Decision::Approve, None)
        .await
        .context("a committed confirmation whose answer failed is not the caller's error")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status(&rs.sfn, &arn).await?, ExecutionStatus::Running);

    publish_outbox(stack).await?;
    let decision = messages(stack, &decisions_queue, 1).await?;
    assert_eq!(detail_types(&decision), ["RetirementDecided"]);
    let failed = review_inbox(&decision, &inbox_of(&cut_off)?).await;
    assert_eq!(failed.batch_item_failures.len(), 1, "{failed:?}");
    let answered = review_inbox(&decision, &inbox).await;
    assert!(answered.batch_item_failures.is_empty(), "{answered:?}");
    // The workflow moves on to its archive step, which retires the version.
    let archive = messages(stack, &rs.wf_queue, 1).await?;
    ensure!(workflow_events(&archive, gov, Some(&inbox.workflows))
        .await
        .batch_item_failures
        .is_empty());
    let (end, output) = execution_finished(&rs.sfn, &arn, PATIENCE).await?;
    assert_eq!(end, ExecutionStatus::Succeeded, "{output}");
    assert_eq!(output["status"], "retired", "{output}");
    let name = ModelName::parse("churn").map_err(|e| anyhow!("{e:?}"))?;
    let v = gov.registry().version(&name, vn(1)).await?.context("v1")?;
    assert_eq!(v.stage, Stage::Retired);
    assert_eq!(
        v.retirement.and_then(|r| r.request_id).as_deref(),
        Some(id.as_str())
    );
    let again = review_inbox(&decision, &inbox).await;
    assert!(again.batch_item_failures.is_empty(), "{again:?}");
    Ok(())
}
