//! The `Workflows` port on Step Functions, against moto on loopback with real state-machine
//! execution (`STEWARD_TEST_AWS_ENDPOINT`; `scripts/emulators start` switches
//! `execute_state_machine` on).
//!
//! Moto facts relied on (probed in `scripts/emulator-probes/stepfunctions.py` and by hand):
//! `StartExecution` with the name and input of a running execution returns that execution (as
//! AWS does), with the name of a stopped one `ExecutionAlreadyExists`; `StopExecution` aborts an
//! execution in a `Wait` state (moto leaves one waiting on a task token RUNNING, so stop is
//! tested on a `Wait`); `sqs:sendMessage.waitForTaskToken` inside a `Map` hands out tokens that
//! `SendTaskSuccess`/`SendTaskFailure` answer; a used token is `InvalidToken`.
//! The real approval state machine comes with a later issue; these machines are stand-ins.

use std::sync::Arc;
use std::time::Duration;
use steward_testkit::{unique, vn};

use anyhow::Result;
use chrono::Utc;
use serde_json::{json, Value};
use steward_aws::workflows::{
    approval_input, execution_name, MemoryTaskTokens, StartOutcome, StepFunctionsWorkflows,
    StopOutcome, TaskAnswer, REVIEW_REJECTED,
};
use steward_core::ports::Workflows;
use steward_core::records::{Promotion, PromotionStatus, Review, ReviewStatus};
use steward_core::types::{Decision, Environment, ModelName, PrincipalId, ReviewStage, RiskTier};

const ROLE: &str = "arn:aws:iam::123456789012:role/steward-sfn";

fn promotion(stages: &[ReviewStage]) -> Promotion {
    let name = ModelName::parse("credit-risk").unwrap();
    let id = format!("credit-risk.3.{}", unique("pr"));
    let now = Utc::now();
    let reviews = stages
        .iter()
        .map(|&stage| Review {
            id: format!("{id}-{stage}"),
            promotion_id: id.clone(),
            name: name.clone(),
            version: vn(3),
            target: Environment::Production,
            stage,
            status: ReviewStatus::Pending,
            deadline: now + chrono::Duration::hours(2),
            decided_by: None,
            decided_at: None,
            decision: None,
            comment: None,
            conditions: vec![],
        })
        .collect();
    Promotion {
        id,
        name,
        version: vn(3),
        target: Environment::Production,
        status: PromotionStatus::InReview,
        reviews,
        requested_by: PrincipalId::parse("arn:aws:iam::123456789012:user/dev").unwrap(),
        requested_at: now,
        registered_by: PrincipalId::parse("arn:aws:iam::123456789012:user/dev").unwrap(),
        risk_tier: RiskTier::Medium,
        closed_at: None,
        revision: 1,
    }
}

fn decided(review: &Review, decision: Decision) -> Review {
    Review {
        status: if decision == Decision::Approve {
            ReviewStatus::Approved
        } else {
            ReviewStatus::Rejected
        },
        decision: Some(decision),
        decided_by: Some(PrincipalId::parse("arn:aws:iam::123456789012:user/reviewer").unwrap()),
        decided_at: Some(Utc::now()),
        comment: Some("looks fine".into()),
        ..review.clone()
    }
}

async fn state_machine(sfn: &aws_sdk_sfn::Client, definition: Value) -> Result<String> {
    let out = sfn
        .create_state_machine()
        .name(unique("approval"))
        .role_arn(ROLE)
        .definition(definition.to_string())
        .send()
        .await?;
    Ok(out.state_machine_arn().to_owned())
}

async fn wait_until_done(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let d = sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await?;
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running
            || std::time::Instant::now() > deadline
        {
            return Ok(d);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn starting_a_promotion_twice_starts_one_execution_with_the_review_list_as_input(
) -> Result<()> {
    let sdk = steward_testkit::emulators!().sdk().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let machine = state_machine(
        &sfn,
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 300, "End": true}}}),
    )
    .await?;
    let workflows =
        StepFunctionsWorkflows::new(sfn.clone(), &machine, Arc::new(MemoryTaskTokens::default()))?;
    let p = promotion(&[ReviewStage::Technical, ReviewStage::Business]);

    workflows.promotion_started(&p).await?;
    // A redelivered start: Step Functions answers with the running execution.
    let again = workflows.start(&p).await?;
    let arn = workflows.execution_arn(&p.id);
    assert!(
        matches!(&again, StartOutcome::Started { execution_arn } | StartOutcome::AlreadyStarted { execution_arn } if *execution_arn == arn),
        "{again:?} vs {arn}"
    );
    let executions = sfn
        .list_executions()
        .state_machine_arn(&machine)
        .send()
        .await?;
    assert_eq!(executions.executions().len(), 1);
    assert_eq!(executions.executions()[0].name(), execution_name(&p.id));
    assert_eq!(executions.executions()[0].execution_arn(), arn);

    let described = sfn.describe_execution().execution_arn(&arn).send().await?;
    let input: Value = serde_json::from_str(described.input().unwrap_or("null"))?;
    assert_eq!(input, approval_input(&p));
    assert_eq!(
        input,
        json!({
            "promotion_id": p.id, "name": "credit-risk", "version": 3, "target": "production",
            "reviews": [
                {"review_id": p.reviews[0].id, "stage": "technical", "timeout_seconds": 7200},
                {"review_id": p.reviews[1].id, "stage": "business", "timeout_seconds": 7200},
            ],
        })
    );
    Ok(())
}

#[tokio::test]
async fn stopping_a_promotion_aborts_its_execution_and_a_later_start_starts_nothing() -> Result<()>
{
    let sdk = steward_testkit::emulators!().sdk().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let machine = state_machine(
        &sfn,
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 300, "End": true}}}),
    )
    .await?;
    let workflows =
        StepFunctionsWorkflows::new(sfn.clone(), &machine, Arc::new(MemoryTaskTokens::default()))?;
    let p = promotion(&[ReviewStage::Technical]);
    workflows.start(&p).await?;

    assert_eq!(
        workflows.stop(&p.id, "version retired").await?,
        StopOutcome::Stopped
    );
    let done = wait_until_done(&sfn, &workflows.execution_arn(&p.id)).await?;
    assert_eq!(done.status(), &aws_sdk_sfn::types::ExecutionStatus::Aborted);

    // The name is taken for good: a retried start of the same promotion starts nothing.
    assert_eq!(
        workflows.start(&p).await?,
        StartOutcome::AlreadyStarted {
            execution_arn: workflows.execution_arn(&p.id)
        }
    );
    assert_eq!(
        sfn.list_executions()
            .state_machine_arn(&machine)
            .send()
            .await?
            .executions()
            .len(),
        1
    );
    assert_eq!(
        workflows.stop(&promotion(&[]).id, "never started").await?,
        StopOutcome::NoExecution
    );
    Ok(())
}

/// A stand-in approval machine: one task per review, each waiting on a token it sends to an
/// SQS queue (the real one sends `ReviewRequested` through EventBridge to the inbox queue).
async fn token_machine(
    sdk: &aws_config::SdkConfig,
) -> Result<(aws_sdk_sfn::Client, aws_sdk_sqs::Client, String, String)> {
    let sfn = aws_sdk_sfn::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue = sqs
        .create_queue()
        .queue_name(unique("review-inbox"))
        .send()
        .await?
        .queue_url()
        .unwrap()
        .to_owned();
    let machine = state_machine(
        &sfn,
        json!({
            "StartAt": "Reviews",
            "States": {"Reviews": {
                "Type": "Map", "ItemsPath": "$.reviews",
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "RequestReview", "States": {
                    "RequestReview": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                        "Parameters": {"QueueUrl": queue, "MessageBody": {"review_id.$": "$.review_id", "token.$": "$$.Task.Token"}},
                        "TimeoutSeconds": 60,
                        "End": true,
                    }}},
                "End": true,
            }},
        }),
    )
    .await?;
    Ok((sfn, sqs, queue, machine))
}

/// What the review inbox does: store each review's token as it arrives.
async fn receive_tokens(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    tokens: &MemoryTaskTokens,
    n: usize,
) -> Result<()> {
    let (mut got, deadline) = (0, std::time::Instant::now() + Duration::from_secs(10));
    while got < n && std::time::Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await?;
        for m in out.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap_or_default())?;
            tokens.insert(
                body["review_id"].as_str().unwrap(),
                body["token"].as_str().unwrap(),
            );
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await?;
            got += 1;
        }
    }
    assert_eq!(got, n, "every review's task token arrived");
    Ok(())
}

#[tokio::test]
async fn approving_every_review_answers_each_task_and_completes_the_execution() -> Result<()> {
    let sdk = steward_testkit::emulators!().sdk().await;
    let (sfn, sqs, queue, machine) = token_machine(&sdk).await?;
    let tokens = Arc::new(MemoryTaskTokens::default());
    let workflows = StepFunctionsWorkflows::new(sfn.clone(), &machine, tokens.clone())?;
    let p = promotion(&[ReviewStage::Technical, ReviewStage::Business]);
    workflows.promotion_started(&p).await?;
    receive_tokens(&sqs, &queue, &tokens, 2).await?;

    for review in &p.reviews {
        workflows
            .review_decided(&p, &decided(review, Decision::Approve))
            .await?;
    }
    let done = wait_until_done(&sfn, &workflows.execution_arn(&p.id)).await?;
    assert_eq!(
        done.status(),
        &aws_sdk_sfn::types::ExecutionStatus::Succeeded,
        "{done:?}"
    );
    let output: Value = serde_json::from_str(done.output().unwrap_or("null"))?;
    assert_eq!(output[0]["review_id"], p.reviews[0].id.as_str());
    assert_eq!(output[0]["decision"], "approve");
    assert_eq!(output[1]["stage"], "business");

    // Answering again (a retried API call) is reported, not an error.
    assert!(matches!(
        workflows
            .decide(&decided(&p.reviews[0], Decision::Approve))
            .await?,
        TaskAnswer::AlreadyClosed { .. }
    ));
    workflows
        .review_decided(&p, &decided(&p.reviews[0], Decision::Approve))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_rejection_fails_the_task_with_the_rejection_error() -> Result<()> {
    let sdk = steward_testkit::emulators!().sdk().await;
    let (sfn, sqs, queue, machine) = token_machine(&sdk).await?;
    let tokens = Arc::new(MemoryTaskTokens::default());
    let workflows = StepFunctionsWorkflows::new(sfn.clone(), &machine, tokens.clone())?;
    let p = promotion(&[ReviewStage::Technical, ReviewStage::Business]);
    workflows.start(&p).await?;
    receive_tokens(&sqs, &queue, &tokens, 2).await?;

    assert_eq!(
        workflows
            .decide(&decided(&p.reviews[1], Decision::Reject))
            .await?,
        TaskAnswer::Sent
    );
    let done = wait_until_done(&sfn, &workflows.execution_arn(&p.id)).await?;
    assert_eq!(
        done.status(),
        &aws_sdk_sfn::types::ExecutionStatus::Failed,
        "{done:?}"
    );
    assert_eq!(done.error(), Some(REVIEW_REJECTED));
    Ok(())
}

#[tokio::test]
async fn a_decision_before_its_token_arrived_or_without_a_decision_sends_nothing() -> Result<()> {
    let sdk = steward_testkit::emulators!().sdk().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let workflows = StepFunctionsWorkflows::new(
        sfn,
        "arn:aws:states:us-east-1:123456789012:stateMachine:unused",
        Arc::new(MemoryTaskTokens::default()),
    )?;
    let p = promotion(&[ReviewStage::Technical]);
    assert_eq!(
        workflows
            .decide(&decided(&p.reviews[0], Decision::Approve))
            .await?,
        TaskAnswer::AwaitingToken
    );
    assert_eq!(
        workflows.decide(&p.reviews[0]).await?,
        TaskAnswer::NotDecided
    );
    workflows
        .review_decided(&p, &decided(&p.reviews[0], Decision::Approve))
        .await?;
    Ok(())
}

#[test]
fn only_state_machine_arns_are_accepted() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sdk = rt.block_on(steward_aws::sdk_config(
        Some("us-east-1"),
        Some("http://127.0.0.1:9"),
        true,
    ));
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let tokens = Arc::new(MemoryTaskTokens::default());
    assert!(StepFunctionsWorkflows::new(sfn.clone(), "approval", tokens.clone()).is_err());
    assert!(StepFunctionsWorkflows::new(
        sfn.clone(),
        "arn:aws:states:us-east-1:1:execution:m:x",
        tokens.clone()
    )
    .is_err());
    let w = StepFunctionsWorkflows::new(
        sfn,
        "arn:aws:states:us-east-1:123456789012:stateMachine:approval",
        tokens,
    )
    .unwrap();
    assert_eq!(
        w.execution_arn("credit-risk.3.pr-1"),
        "arn:aws:states:us-east-1:123456789012:execution:approval:credit-risk.3.pr-1"
    );
}
