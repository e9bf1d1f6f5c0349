//! The retirement state machine EXECUTING on moto (Step Functions with `execute_state_machine`),
//! as deployed (`statemachines/retirement.asl.json` with the template's substitutions), wired
//! to the deployed rules (`events/rules/retirement-confirmation-requested.json` → the review
//! inbox queue, `retirement-outcomes.json` → the workflow-events queue) on moto EventBridge →
//! SQS. Its dependents check and archive step are task-token messages to the workflow-events
//! queue. The review-inbox and workflow-events handlers are driven in-process from the two
//! queues (a pump standing in for the event source mappings); the registry is on DynamoDB
//! Local. A retirement requested through core starts the execution (the API's 202 path).
//!
//! Four paths, each asserting the execution's status and output, the registry and the
//! version's audit events:
//! - confirm: a compliance reviewer confirms (the requester may not), the workflow archives,
//!   the version is retired with the request and the confirmer recorded;
//! - refuse with dependents: a model declares the version as a dependency after the request,
//!   so the workflow's own check refuses, and the request ends;
//! - refused by the confirmer: the refusal ends the request at once, the workflow reports it;
//! - timeout: nobody confirms within the (3 s) confirmation timeout; the request ends.
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` and `STEWARD_TEST_AWS_ENDPOINT`, and fails without
//! them: `bash scripts/emulators run -- cargo test -p steward-aws --test retirement_workflow`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::{json, Value};

use common::*;
use steward_aws::dynamo::DynamoStore;
use steward_aws::handlers::inbox::{review_inbox, ReviewInbox};
use steward_aws::workflows::{StepFunctionsWorkflows, TaskTokens};
use steward_core::ports::{AuditLog, Caller};
use steward_core::records::ModelVersion;
use steward_core::service::RetireOutcome;
use steward_core::types::{Decision, ModelName, Stage};
use steward_core::{GovError, Governance};
use steward_testkit::vn;

const PATIENCE: Duration = Duration::from_secs(30);

struct Ctx {
    /// Retirements through the machine with a 60 s confirmation timeout.
    gov: Arc<Governance>,
    /// The same table, through the machine with a 3 s confirmation timeout.
    short: Arc<Governance>,
    store: Arc<DynamoStore>,
    workflows: Arc<StepFunctionsWorkflows>,
    short_workflows: Arc<StepFunctionsWorkflows>,
    sfn: aws_sdk_sfn::Client,
}

impl Ctx {
    async fn history(&self, arn: &str) -> String {
        execution_history(&self.sfn, arn).await
    }

    async fn wait_token(&self, id: &str, arn: &str) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while self.store.task_token(id).await?.is_none() {
            if Instant::now() > deadline {
                bail!(
                    "no confirmation token for {id}; history:\n{}",
                    self.history(arn).await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    async fn finished(&self, arn: &str) -> Result<(aws_sdk_sfn::types::ExecutionStatus, Value)> {
        execution_finished(&self.sfn, arn, PATIENCE).await
    }

    /// The version once its pending retirement has ended (retired, refused or closed).
    async fn settled(&self, model: &str) -> Result<ModelVersion> {
        let name = ModelName::parse(model).map_err(|e| anyhow!("{e:?}"))?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            let v = self
                .gov
                .registry()
                .version(&name, vn(1))
                .await?
                .context("v1")?;
            if v.pending_retirement.is_none() {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("retirement still pending: {:?}", v.pending_retirement);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `(action, actor)` of the version's audit events after its registration.
    async fn audit(&self, model: &str) -> Result<Vec<(String, String)>> {
        let name = ModelName::parse(model).map_err(|e| anyhow!("{e:?}"))?;
        Ok(self
            .store
            .events(Some(&name), 0, 1000)
            .await?
            .into_iter()
            .filter(|e| e.action != "version.registered")
            .map(|e| (e.action, e.actor))
            .collect())
    }
}

/// Registers version 1 of `model` and requests its retirement through `gov`; returns the
/// pending request's id and its execution ARN.
async fn request(
    ctx: &Ctx,
    gov: &Governance,
    workflows: &StepFunctionsWorkflows,
    model: &str,
    requester: &Caller,
) -> Result<(String, String)> {
    ctx.gov.register(&dev(), model, manifest(), None).await?;
    let outcome = gov
        .retire(
            requester,
            model,
            vn(1),
            "superseded by a vendor model",
            None,
        )
        .await?;
    let RetireOutcome::Pending(v) = outcome else {
        bail!("expected a pending retirement, got {outcome:?}");
    };
    let pending = v.pending_retirement.context("pending_retirement")?;
    ensure!(
        pending.requested_by == requester.id && pending.confirmed_by.is_none(),
        "{pending:?}"
    );
    ensure!(
        v.stage == Stage::Development,
        "not retired yet: {:?}",
        v.stage
    );
    let arn = workflows
        .retirement_execution_arn(&pending.id)
        .context("retirement machine")?;
    Ok((pending.id, arn))
}

async fn expect_status(ctx: &Ctx, arn: &str, status: &str) -> Result<()> {
    let (s, output) = ctx.finished(arn).await?;
    ensure!(
        s == aws_sdk_sfn::types::ExecutionStatus::Succeeded && output["status"] == status,
        "execution {s:?} {output}; history:\n{}",
        ctx.history(arn).await
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retirement_workflow_confirms_refuses_with_dependents_and_times_out() -> Result<()> {
    let RetirementStack {
        stack,
        sfn,
        inbox_queue,
        wf_queue,
        backends,
        ..
    } = retirement_stack(&["60", "3"]).await?;
    let (long, short) = (&backends[0], &backends[1]);
    let ctx = Arc::new(Ctx {
        gov: long.gov.clone(),
        short: short.gov.clone(),
        store: long.store.clone(),
        workflows: long.require_step_functions().map_err(|f| anyhow!("{f}"))?,
        short_workflows: short.require_step_functions().map_err(|f| anyhow!("{f}"))?,
        sfn,
    });

    // Refuse with dependents: requested while nothing depends on the version; before the
    // workflow's check runs (the pump is not started yet), a model declares it as a
    // dependency.
    let (dep_id, dep_arn) = request(&ctx, &ctx.gov, &ctx.workflows, "features", &dev()).await?;
    let mut dependent = manifest();
    dependent["dependencies"] = json!([{"name": "features", "version": 1}]);
    ctx.gov.register(&dev(), "scorer", dependent, None).await?;

    let inbox_arn = stack.queue_arn(&inbox_queue).await?;
    let wf_arn = stack.queue_arn(&wf_queue).await?;
    let inbox = ReviewInbox {
        gov: ctx.gov.clone(),
        store: ctx.store.clone(),
        workflows: ctx.workflows.clone(),
    };
    let pump = tokio::spawn(pump_workflow_queues(
        inbox,
        stack.sqs.clone(),
        WorkflowQueues {
            inbox: (inbox_queue, inbox_arn),
            workflow_events: (wf_queue, wf_arn),
        },
        None,
    ));

    // Confirm: the requester (a release manager) may not confirm; a compliance reviewer does.
    let (confirm_id, confirm_arn) =
        request(&ctx, &ctx.gov, &ctx.workflows, "churn", &rel()).await?;
    ctx.wait_token(&confirm_id, &confirm_arn).await?;
    let own = ctx
        .gov
        .decide_retirement(&rel(), "churn", vn(1), Decision::Approve, None)
        .await;
    ensure!(
        matches!(own, Err(GovError::SeparationOfDuties(_))),
        "the requester confirmed: {own:?}"
    );
    ctx.gov
        .decide_retirement(&compliance(), "churn", vn(1), Decision::Approve, None)
        .await?;

    // Refused by the confirmer, before or after the token arrived.
    let (refuse_id, refuse_arn) = request(&ctx, &ctx.gov, &ctx.workflows, "fraud", &dev()).await?;
    let no_reason = ctx
        .gov
        .decide_retirement(&compliance(), "fraud", vn(1), Decision::Reject, None)
        .await;
    ensure!(
        matches!(&no_reason, Err(GovError::Validation(f)) if f[0].field == "comment"),
        "{no_reason:?}"
    );
    ctx.gov
        .decide_retirement(
            &compliance(),
            "fraud",
            vn(1),
            Decision::Reject,
            Some("still used by the quarterly report"),
        )
        .await?;

    // Timeout: nobody confirms within 3 s.
    let (timeout_id, timeout_arn) =
        request(&ctx, &ctx.short, &ctx.short_workflows, "pricing", &dev()).await?;

    // Confirm: archived by the workflow.
    expect_status(&ctx, &confirm_arn, "retired").await?;
    let v = ctx.settled("churn").await?;
    let r = v.retirement.clone().context("retirement")?;
    ensure!(
        v.stage == Stage::Retired
            && r.request_id.as_deref() == Some(confirm_id.as_str())
            && r.confirmed_by.as_ref() == Some(&compliance().id)
            && r.retired_by == rel().id,
        "{v:?}"
    );
    let rel = rel().id.to_string();
    let comp = compliance().id.to_string();
    ensure!(
        ctx.audit("churn").await?
            == [
                ("retirement.requested".to_owned(), rel.clone()),
                ("retirement.confirmed".to_owned(), comp.clone()),
                ("version.retired".to_owned(), rel.clone()),
            ],
        "churn audit {:?}",
        ctx.audit("churn").await?
    );

    // Refuse with dependents: the check refused it; the request ended.
    expect_status(&ctx, &dep_arn, "refused").await?;
    let v = ctx.settled("features").await?;
    ensure!(
        v.stage == Stage::Development && v.retirement.is_none(),
        "{v:?}"
    );
    let audit = ctx.audit("features").await?;
    ensure!(
        audit
            == [
                ("retirement.requested".to_owned(), dev().id.to_string()),
                (
                    "retirement.refused".to_owned(),
                    "system:workflow".to_owned()
                ),
            ],
        "features audit {audit:?}"
    );
    let refused = ctx
        .store
        .events(Some(&ModelName::parse("features").unwrap()), 0, 1000)
        .await?
        .into_iter()
        .find(|e| e.action == "retirement.refused")
        .context("refusal")?;
    ensure!(
        refused.details["retirement_id"] == dep_id.as_str()
            && refused.details["step"] == "CheckDependents"
            && refused.details["reasons"][0]
                .as_str()
                .is_some_and(|r| r.contains("scorer version 1")),
        "{}",
        refused.details
    );

    // Refused by the confirmer.
    expect_status(&ctx, &refuse_arn, "refused").await?;
    let v = ctx.settled("fraud").await?;
    ensure!(
        v.stage == Stage::Development && v.retirement.is_none(),
        "{v:?}"
    );
    let audit = ctx.audit("fraud").await?;
    ensure!(
        audit
            == [
                ("retirement.requested".to_owned(), dev().id.to_string()),
                ("retirement.refused".to_owned(), comp.clone()),
            ],
        "fraud audit {audit:?} ({refuse_id})"
    );

    // Timeout.
    expect_status(&ctx, &timeout_arn, "timed_out").await?;
    let v = ctx.settled("pricing").await?;
    ensure!(
        v.stage == Stage::Development && v.retirement.is_none(),
        "{v:?}"
    );
    let audit = ctx.audit("pricing").await?;
    ensure!(
        audit
            == [
                ("retirement.requested".to_owned(), dev().id.to_string()),
                (
                    "retirement.timed_out".to_owned(),
                    "system:workflow".to_owned()
                ),
            ],
        "pricing audit {audit:?} ({timeout_id})"
    );

    // A new request is possible once one has ended; a second while one is pending is not,
    // and repeating the pending request returns it (idempotent start).
    let again = ctx
        .gov
        .retire(
            &dev(),
            "pricing",
            vn(1),
            "superseded by a vendor model",
            None,
        )
        .await?
        .into_version();
    let again_id = again.pending_retirement.clone().context("pending")?.id;
    ensure!(again_id != timeout_id, "a new request gets a new id");
    let repeated = ctx
        .gov
        .retire(
            &dev(),
            "pricing",
            vn(1),
            "superseded by a vendor model",
            None,
        )
        .await?
        .into_version();
    ensure!(
        repeated.pending_retirement.map(|p| p.id) == Some(again_id),
        "repeating the pending request returns it"
    );
    let other = ctx
        .gov
        .retire(&dev(), "pricing", vn(1), "another reason", None)
        .await;
    ensure!(matches!(other, Err(GovError::Conflict(_))), "{other:?}");

    pump.abort();
    Ok(())
}

/// The messages on `queue` (at least `n`), as the SQS event the workflow-events function gets.
async fn next_messages(
    stack: &Stack,
    queue: &str,
    n: usize,
) -> Result<aws_lambda_events::event::sqs::SqsEvent> {
    let messages = stack.drain(queue, n, PATIENCE).await?;
    ensure!(messages.len() >= n, "{} of {n} messages", messages.len());
    stack.sqs_event(queue, &messages).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_for_a_request_no_longer_pending_ends_the_run_refused_and_is_not_redelivered(
) -> Result<()> {
    use steward_aws::handlers::workflow_events::workflow_events;
    let rs = retirement_stack(&["60"]).await?;
    let backend = &rs.backends[0];
    let (gov, store) = (backend.gov.clone(), backend.store.clone());
    let workflows = backend
        .require_step_functions()
        .map_err(|f| anyhow!("{f}"))?;
    let ctx = Ctx {
        gov: gov.clone(),
        short: gov.clone(),
        store: store.clone(),
        workflows: workflows.clone(),
        short_workflows: workflows.clone(),
        sfn: rs.sfn.clone(),
    };
    let (id, arn) = request(&ctx, &gov, &workflows, "churn", &rel()).await?;
    let inbox = ReviewInbox {
        gov: gov.clone(),
        store: store.clone(),
        workflows: workflows.clone(),
    };
    // Step by step, as the event source mappings would: the dependents check...
    let check = next_messages(&rs.stack, &rs.wf_queue, 1).await?;
    ensure!(workflow_events(&check, &gov, Some(&workflows))
        .await
        .batch_item_failures
        .is_empty());
    // ... the confirmation's token, the confirmation...
    let asked = next_messages(&rs.stack, &rs.inbox_queue, 1).await?;
    ensure!(review_inbox(&asked, &inbox)
        .await
        .batch_item_failures
        .is_empty());
    gov.decide_retirement(&compliance(), "churn", vn(1), Decision::Approve, None)
        .await?;
    // ... and the archive message, which finds the request ended meanwhile (as when the
    // workflow's report of an earlier failure landed first).
    let archive = next_messages(&rs.stack, &rs.wf_queue, 1).await?;
    ensure!(
        gov.close_retirement(&id, "failed", json!({"step": "test"}))
            .await?,
        "the request was pending"
    );
    let response = workflow_events(&archive, &gov, Some(&workflows)).await;
    // Before lost races and state conflicts were told apart, this was a batch item failure:
    // redelivered until the DLQ, and the run ended failed when its task timed out.
    ensure!(
        response.batch_item_failures.is_empty(),
        "a state conflict was sent back for redelivery: {response:?}"
    );
    expect_status(&ctx, &arn, "refused").await?;
    let v = ctx.settled("churn").await?;
    ensure!(
        v.stage == Stage::Development && v.retirement.is_none(),
        "{v:?}"
    );
    Ok(())
}
