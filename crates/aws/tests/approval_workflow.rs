//! The approval state machine EXECUTING on moto (Step Functions with `execute_state_machine`),
//! as deployed (`statemachines/approval.asl.json`), wired to the deployed rules
//! (`events/rules/review-requested.json`, `approval-outcomes.json`) on moto EventBridge → SQS,
//! with the review-inbox and workflow-events handlers driven in-process from those queues (a
//! pump standing in for the Lambda event source mappings) and the registry on DynamoDB Local.
//!
//! A table-driven matrix, for each risk tier's production reviews under the default policy
//! (low: technical; medium: technical, business; high: all four), after a staging promotion:
//! - approve-all: each review decided through `Governance::decide` by a distinct reviewer once
//!   its task token is stored, so the Step Functions port answers the task;
//! - a rejection at each stage, after approvals of the stages before it;
//! - a timeout at each stage (a policy with an 8 s review timeout): the approvals before it are
//!   decided at once, before their tokens arrive, so the inbox answers them; nobody decides the
//!   stage, its task times out, and the workflow's `ReviewTimedOut` expires the promotion.
//!
//! Each case asserts the execution's final status and output, the outcome event on the
//! workflow-events queue, the registry's promotion and reviews, and the promotion's audit
//! events. The cases share one table, bus, state machine and pair of queues, and run
//! concurrently (separate models). Every wait is bounded; a case that waits too long fails
//! with its execution's history.
//!
//! Needs `STEWARD_TEST_DYNAMODB_ENDPOINT` and `STEWARD_TEST_AWS_ENDPOINT`, and fails without
//! them: `bash scripts/emulators run -- cargo test -p steward-aws --test approval_workflow`.

mod common;

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::Value;

use common::*;
use steward_aws::dynamo::DynamoStore;
use steward_aws::handlers::inbox::ReviewInbox;
use steward_aws::workflows::{StepFunctionsWorkflows, TaskTokens};
use steward_core::ports::AuditLog;
use steward_core::records::{PromotionStatus, ReviewStatus};
use steward_core::types::{Decision, Environment, ModelName, ReviewStage, RiskTier};
use steward_core::{GovError, Governance};
use steward_testkit::vn;

/// How long any one wait may take before the case fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// The default policy's reviews with a short review timeout in every tier. A review's timeout
/// runs from the promotion request, for every stage alike, so the approvals before the stage
/// that times out must all land within it; 8 s leaves room for the cases contending for the
/// audit log on 2 cores (at 2 s, the approvals of 2–3 stages sometimes missed it; at 4 s, once
/// in a loaded run, the third approval of a high-risk case). Each stage's task in the workflow
/// times out this long after it starts.
fn short_reviews() -> String {
    TestPolicy::review_timeouts("8s").to_string()
}

#[derive(Debug, Clone, Copy)]
enum End {
    ApproveAll,
    RejectAt(usize),
    TimeoutAt(usize),
}

#[derive(Debug, Clone, Copy)]
struct Case {
    tier: RiskTier,
    end: End,
}

impl Case {
    fn model(&self) -> String {
        match self.end {
            End::ApproveAll => format!("{}-approve", self.tier.as_str()),
            End::RejectAt(i) => format!("{}-reject-{i}", self.tier.as_str()),
            End::TimeoutAt(i) => format!("{}-timeout-{i}", self.tier.as_str()),
        }
    }
}

fn stages(tier: RiskTier) -> Vec<ReviewStage> {
    use ReviewStage::*;
    match tier {
        RiskTier::Low => vec![Technical],
        RiskTier::Medium => vec![Technical, Business],
        RiskTier::High => vec![Technical, Business, Compliance, Deployment],
    }
}

fn matrix() -> Vec<Case> {
    let mut cases = Vec::new();
    for &tier in RiskTier::ALL {
        cases.push(Case {
            tier,
            end: End::ApproveAll,
        });
        for i in 0..stages(tier).len() {
            cases.push(Case {
                tier,
                end: End::RejectAt(i),
            });
            cases.push(Case {
                tier,
                end: End::TimeoutAt(i),
            });
        }
    }
    cases
}

/// Runs `f` again while it loses a race on the shared audit log (`Contended`), as an API
/// client retries a 409 `contended`; anything else (including a conflict with the current
/// state, such as a review that is no longer pending) is returned at once.
async fn retry<T, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, GovError>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(GovError::Contended(m)) if Instant::now() < deadline => {
                tracing::debug!("{what}: {m}; retrying");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(anyhow!("{what}: {e}")),
        }
    }
}

/// What the cases share.
struct Ctx {
    gov: Arc<Governance>,
    /// The same table and state machine, with [`short_reviews`].
    short: Arc<Governance>,
    store: Arc<DynamoStore>,
    workflows: Arc<StepFunctionsWorkflows>,
    sfn: aws_sdk_sfn::Client,
    /// `(detail-type, detail)` of every workflow event the workflow-events handler received.
    outcomes: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Ctx {
    async fn history(&self, arn: &str) -> String {
        execution_history(&self.sfn, arn).await
    }

    async fn wait_token(&self, review_id: &str, arn: &str) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while self.store.task_token(review_id).await?.is_none() {
            if Instant::now() > deadline {
                bail!(
                    "no task token for {review_id} within {PATIENCE:?}; history:\n{}",
                    self.history(arn).await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The execution once it has ended: `(status, output)`.
    async fn finished(&self, arn: &str) -> Result<(aws_sdk_sfn::types::ExecutionStatus, Value)> {
        execution_finished(&self.sfn, arn, PATIENCE).await
    }

    /// The outcome event whose detail has `key` = `value`, once the handler has received it.
    async fn outcome(&self, key: &str, value: &str, arn: &str) -> Result<(String, Value)> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self
                .outcomes
                .lock()
                .unwrap()
                .iter()
                .find(|(_, d)| d[key] == value)
                .cloned();
            if let Some(f) = found {
                return Ok(f);
            }
            if Instant::now() > deadline {
                bail!(
                    "no outcome event with {key} {value} on the workflow-events queue; history:\n{}",
                    self.history(arn).await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Registers version 1 of `model`, promotes it to staging (through its own execution),
/// deploys it there and records a staging evaluation: ready for a production promotion.
async fn to_staging(ctx: &Ctx, model: &str, tier: RiskTier) -> Result<()> {
    let gov = &ctx.gov;
    let dev = dev();
    retry("register", || {
        gov.register(&dev, model, manifest_at(tier), None)
    })
    .await?;
    let p = retry("request staging", || {
        gov.request_promotion(&dev, model, vn(1), Environment::Staging, None)
    })
    .await?;
    let technical = reviewer(ReviewStage::Technical);
    retry("decide staging", || {
        gov.decide(&technical, &p.reviews[0].id, decision(Decision::Approve))
    })
    .await?;
    retry("deploy staging", || {
        gov.deploy(&dev, model, vn(1), Environment::Staging, None)
    })
    .await?;
    retry("staging evaluation", || {
        gov.add_evaluation(
            &dev,
            model,
            vn(1),
            staging_evaluation_named("staging-shadow-2026q2"),
        )
    })
    .await?;
    Ok(())
}

/// Runs one case; returns a note for the report.
async fn run_case(ctx: Arc<Ctx>, case: Case) -> Result<String> {
    let model = case.model();
    let expected_stages = stages(case.tier);
    let n = expected_stages.len();

    let gov = match case.end {
        End::TimeoutAt(_) => ctx.short.clone(),
        _ => ctx.gov.clone(),
    };
    let requester = dev();
    let p = retry("request production", || {
        gov.request_promotion(&requester, &model, vn(1), Environment::Production, None)
    })
    .await?;
    let arn = ctx.workflows.execution_arn(&p.id);
    ensure!(
        p.reviews.iter().map(|r| r.stage).collect::<Vec<_>>() == expected_stages,
        "reviews {:?}",
        p.reviews
    );

    let requested = Instant::now();
    let approvals = match case.end {
        End::ApproveAll => n,
        End::RejectAt(i) | End::TimeoutAt(i) => i,
    };
    for r in &p.reviews[..approvals] {
        if !matches!(case.end, End::TimeoutAt(_)) {
            // The workflow has asked for this review: the port answers with the stored token.
            ctx.wait_token(&r.id, &arn).await?;
        }
        let who = reviewer(r.stage);
        retry("approve", || {
            gov.decide(&who, &r.id, decision(Decision::Approve))
        })
        .await?;
    }
    let decided_after = requested.elapsed();
    if let End::RejectAt(i) = case.end {
        let r = &p.reviews[i];
        ctx.wait_token(&r.id, &arn).await?;
        let who = reviewer(r.stage);
        retry("reject", || {
            gov.decide(&who, &r.id, decision(Decision::Reject))
        })
        .await?;
    }

    // The execution ends SUCCEEDED with the outcome as its status.
    let (status, output) = ctx.finished(&arn).await?;
    let history = || async { ctx.history(&arn).await };
    if status != aws_sdk_sfn::types::ExecutionStatus::Succeeded {
        bail!("execution {status:?}: {output}\n{}", history().await);
    }
    let expected_status = match case.end {
        End::ApproveAll => "approved",
        End::RejectAt(_) => "rejected",
        End::TimeoutAt(_) => "expired",
    };
    ensure!(
        output["status"] == expected_status && output["promotion_id"] == p.id.as_str(),
        "output {output}"
    );
    if let End::ApproveAll = case.end {
        let decided: Vec<(String, String)> = output["reviews"]
            .as_array()
            .context("reviews in the output")?
            .iter()
            .map(|r| {
                (
                    r["stage"].as_str().unwrap_or_default().to_owned(),
                    r["decision"]["decided_by"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = expected_stages
            .iter()
            .map(|s| (s.as_str().to_owned(), reviewer(*s).id.to_string()))
            .collect();
        ensure!(decided == expected, "decisions in the output: {decided:?}");
    }

    // The outcome event reached the workflow-events handler.
    let (detail_type, detail) = match case.end {
        End::TimeoutAt(i) => ctx.outcome("review_id", &p.reviews[i].id, &arn).await?,
        _ => ctx.outcome("promotion_id", &p.id, &arn).await?,
    };
    match case.end {
        End::ApproveAll => ensure!(detail_type == "PromotionApproved", "{detail_type}"),
        End::RejectAt(i) => ensure!(
            detail_type == "PromotionRejected"
                && detail["review_id"] == p.reviews[i].id.as_str()
                && detail["stage"] == expected_stages[i].as_str(),
            "{detail_type} {detail}"
        ),
        End::TimeoutAt(i) => ensure!(
            detail_type == "ReviewTimedOut" && detail["stage"] == expected_stages[i].as_str(),
            "{detail_type} {detail}"
        ),
    }

    // The registry.
    let after = ctx.gov.promotion(&p.id).await?;
    let review_statuses: Vec<ReviewStatus> = after.reviews.iter().map(|r| r.status).collect();
    let (want_promotion, want_reviews): (PromotionStatus, Vec<ReviewStatus>) = {
        let at = |i: usize, s: ReviewStatus| {
            (0..n)
                .map(|k| match k.cmp(&i) {
                    std::cmp::Ordering::Less => ReviewStatus::Approved,
                    std::cmp::Ordering::Equal => s,
                    std::cmp::Ordering::Greater => ReviewStatus::Cancelled,
                })
                .collect()
        };
        match case.end {
            End::ApproveAll => (PromotionStatus::Approved, vec![ReviewStatus::Approved; n]),
            End::RejectAt(i) => (PromotionStatus::Rejected, at(i, ReviewStatus::Rejected)),
            End::TimeoutAt(i) => (PromotionStatus::Expired, at(i, ReviewStatus::Expired)),
        }
    };
    ensure!(
        after.status == want_promotion && review_statuses == want_reviews,
        "registry: {:?} {review_statuses:?}",
        after.status
    );
    let name = ModelName::parse(&model).map_err(|e| anyhow!("{e:?}"))?;
    let v = ctx
        .gov
        .registry()
        .version(&name, vn(1))
        .await?
        .context("v1")?;
    ensure!(
        v.open_promotion.is_none(),
        "still open: {:?}",
        v.open_promotion
    );
    ensure!(
        v.approved_for(Environment::Production) == matches!(case.end, End::ApproveAll),
        "approved for production: {}",
        v.approved_for(Environment::Production)
    );

    // The promotion's audit events.
    let audit: Vec<(String, String)> = ctx
        .store
        .events(Some(&name), 0, 1000)
        .await?
        .into_iter()
        .filter(|e| e.details["promotion_id"] == p.id.as_str())
        .map(|e| (e.action, e.actor))
        .collect();
    let dev_id = dev().id.to_string();
    let mut want = vec![("promotion.requested".to_owned(), dev_id)];
    want.extend(p.reviews[..approvals].iter().map(|r| {
        (
            "review.decided".to_owned(),
            reviewer(r.stage).id.to_string(),
        )
    }));
    match case.end {
        End::ApproveAll => want.push((
            "promotion.approved".into(),
            reviewer(expected_stages[n - 1]).id.to_string(),
        )),
        End::RejectAt(i) => {
            let who = reviewer(expected_stages[i]).id.to_string();
            want.push(("review.decided".into(), who.clone()));
            want.push(("promotion.rejected".into(), who));
        }
        End::TimeoutAt(_) => {
            want.push(("review.expired".into(), "system:workflow".into()));
            want.push(("promotion.expired".into(), "system:workflow".into()));
        }
    }
    ensure!(audit == want, "audit events {audit:?}");
    Ok(match case.end {
        End::TimeoutAt(i) if i > 0 => format!("{i} approvals within {decided_after:.1?}"),
        _ => String::new(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tier_approves_rejects_and_times_out_through_the_executing_workflow() -> Result<()> {
    let (stack, inbox_queue, outcomes_queue) = workflow_stack(None).await?;
    let started = Instant::now();
    let workflows = stack
        .backend
        .require_step_functions()
        .map_err(|f| anyhow!("{f}"))?;
    let short = stack
        .sibling(&[("STEWARD_POLICY", short_reviews())])
        .await?;
    let ctx = Arc::new(Ctx {
        gov: stack.backend.gov.clone(),
        short: short.gov.clone(),
        store: stack.backend.store.clone(),
        workflows,
        sfn: aws_sdk_sfn::Client::new(&stack.backend.sdk),
        outcomes: Arc::new(Mutex::new(Vec::new())),
    });
    let inbox_arn = stack.queue_arn(&inbox_queue).await?;
    let outcomes_arn = stack.queue_arn(&outcomes_queue).await?;
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
            workflow_events: (outcomes_queue, outcomes_arn),
        },
        Some(ctx.outcomes.clone()),
    ));

    // Wave 1: every version to staging; the approve and reject cases run to the end. Wave 2:
    // the timeout cases' production promotions, with less contention for the audit log while
    // their approvals race the short review timeout.
    let mut results = Vec::new();
    let mut prepared = Vec::new();
    for wave in 1..=2 {
        let mut cases = tokio::task::JoinSet::new();
        let cases_of_wave: Vec<(Case, Duration)> = if wave == 1 {
            matrix().into_iter().map(|c| (c, Duration::ZERO)).collect()
        } else {
            std::mem::take(&mut prepared)
        };
        // At most this many cases write at once: 17 writers on one audit head under DynamoDB
        // Local on 2 cores lose the race for the next position 16 times in a row when the
        // machine is loaded; the workflow, not the head's contention, is what is tested here
        // (tests/dynamo.rs covers concurrent commits).
        let running = Arc::new(tokio::sync::Semaphore::new(8));
        for (case, before) in cases_of_wave {
            let ctx = ctx.clone();
            let running = running.clone();
            cases.spawn(async move {
                let _slot = running
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let t = Instant::now();
                let result = match (wave, case.end) {
                    (1, End::TimeoutAt(_)) => to_staging(&ctx, &case.model(), case.tier)
                        .await
                        .map(|()| None),
                    (1, _) => {
                        async {
                            to_staging(&ctx, &case.model(), case.tier).await?;
                            run_case(ctx.clone(), case).await.map(Some)
                        }
                        .await
                    }
                    _ => run_case(ctx.clone(), case).await.map(Some),
                };
                (case, before + t.elapsed(), result)
            });
        }
        while let Some(joined) = cases.join_next().await {
            match joined? {
                (case, took, Ok(None)) => prepared.push((case, took)),
                (case, took, Ok(Some(note))) => results.push((case, took, Ok(note))),
                (case, took, Err(e)) => results.push((case, took, Err(e))),
            }
        }
    }
    pump.abort();
    results.sort_by_key(|(c, _, _)| c.model());

    let mut report = format!(
        "approval matrix on moto, {:.1?} in all:\n",
        started.elapsed()
    );
    let mut failures = Vec::new();
    for (case, took, result) in &results {
        let verdict = match result {
            Ok(note) => format!("ok {note}"),
            Err(e) => {
                failures.push(format!("{}: {e:#}", case.model()));
                "FAILED".to_owned()
            }
        };
        report.push_str(&format!("  {:<16} {took:>8.1?}  {verdict}\n", case.model()));
    }
    // Straight to stderr: libtest captures `eprintln!`.
    let _ = writeln!(std::io::stderr(), "{report}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(results.len(), 17);
    Ok(())
}
