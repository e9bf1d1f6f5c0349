//! [`StepFunctionsWorkflows`]: starting, answering and stopping executions with the SDK.

use super::*;

/// Review workflows on Step Functions.
#[derive(Clone)]
pub struct StepFunctionsWorkflows {
    client: aws_sdk_sfn::Client,
    approval_state_machine_arn: String,
    /// With it, retirements are requested, confirmed and archived by the retirement
    /// workflow; without it, they take effect when requested.
    retirement_state_machine_arn: Option<String>,
    tokens: Arc<dyn TaskTokens>,
}

impl std::fmt::Debug for StepFunctionsWorkflows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepFunctionsWorkflows")
            .field(
                "approval_state_machine_arn",
                &self.approval_state_machine_arn,
            )
            .field(
                "retirement_state_machine_arn",
                &self.retirement_state_machine_arn,
            )
            .finish_non_exhaustive()
    }
}

impl StepFunctionsWorkflows {
    pub fn new(
        client: aws_sdk_sfn::Client,
        approval_state_machine_arn: impl Into<String>,
        tokens: Arc<dyn TaskTokens>,
    ) -> Result<Self, WorkflowError> {
        let arn = state_machine_arn(approval_state_machine_arn.into())?;
        Ok(Self {
            client,
            approval_state_machine_arn: arn,
            retirement_state_machine_arn: None,
            tokens,
        })
    }

    /// Routes retirements through the retirement state machine at `arn`.
    pub fn with_retirement(mut self, arn: impl Into<String>) -> Result<Self, WorkflowError> {
        self.retirement_state_machine_arn = Some(state_machine_arn(arn.into())?);
        Ok(self)
    }

    /// Starts the retirement execution of `request`, named after its id (idempotent like
    /// [`Self::start`]).
    pub async fn start_retirement(
        &self,
        version: &ModelVersion,
        request: &PendingRetirement,
    ) -> Result<StartOutcome, WorkflowError> {
        let Some(machine) = &self.retirement_state_machine_arn else {
            return Err(WorkflowError::Request {
                op: "StartExecution",
                subject: request.id.clone(),
                message: "no retirement state machine is configured".into(),
            });
        };
        self.start_named(machine, &request.id, retirement_input(version, request))
            .await
    }

    /// `StartExecution` of `machine` named after `id` (see [`execution_name`]): an execution
    /// that already exists under that name is [`StartOutcome::AlreadyStarted`].
    async fn start_named(
        &self,
        machine: &str,
        id: &str,
        input: Value,
    ) -> Result<StartOutcome, WorkflowError> {
        let name = execution_name(id);
        let result = self
            .client
            .start_execution()
            .state_machine_arn(machine)
            .name(&name)
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(out) => Ok(StartOutcome::Started {
                execution_arn: out.execution_arn().to_owned(),
            }),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(StartExecutionError::ExecutionAlreadyExists(_))
                ) =>
            {
                Ok(StartOutcome::AlreadyStarted {
                    execution_arn: execution_arn_of(machine, id),
                })
            }
            Err(e) => Err(WorkflowError::request("StartExecution", id, &e)),
        }
    }

    /// The ARN of a retirement request's execution, when retirements run as workflows.
    pub fn retirement_execution_arn(&self, retirement_id: &str) -> Option<String> {
        self.retirement_state_machine_arn
            .as_ref()
            .map(|m| execution_arn_of(m, retirement_id))
    }

    /// Answers a retirement's confirmation task: `SendTaskSuccess` with who confirmed, or
    /// `SendTaskFailure` [`RETIREMENT_REFUSED`] with the refusal. Also what the review-inbox
    /// function calls when the token arrives after the decision.
    pub async fn answer_retirement(
        &self,
        request: &PendingRetirement,
        refusal: Option<&str>,
        token: &str,
    ) -> Result<TaskAnswer, WorkflowError> {
        match refusal {
            None => {
                let output = json!({
                    "retirement_id": request.id,
                    "confirmed_by": request.confirmed_by,
                    "confirmed_at": request.confirmed_at,
                });
                self.succeed(token, &output, &request.id).await
            }
            Some(comment) => {
                self.fail(token, RETIREMENT_REFUSED, comment, &request.id)
                    .await
            }
        }
    }

    /// `SendTaskSuccess` with `output`; a token Step Functions no longer accepts is reported.
    pub async fn succeed(
        &self,
        token: &str,
        output: &Value,
        subject: &str,
    ) -> Result<TaskAnswer, WorkflowError> {
        match self
            .client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
        {
            Ok(_) => Ok(TaskAnswer::Sent),
            Err(e) => match e.as_service_error() {
                Some(
                    se @ (SendTaskSuccessError::InvalidToken(_)
                    | SendTaskSuccessError::TaskDoesNotExist(_)
                    | SendTaskSuccessError::TaskTimedOut(_)),
                ) => Ok(TaskAnswer::AlreadyClosed {
                    code: se.code().unwrap_or("Unknown").to_owned(),
                }),
                _ => Err(WorkflowError::request("SendTaskSuccess", subject, &e)),
            },
        }
    }

    /// `SendTaskFailure` with `error` and `cause`; a token no longer accepted is reported.
    pub async fn fail(
        &self,
        token: &str,
        error: &str,
        cause: &str,
        subject: &str,
    ) -> Result<TaskAnswer, WorkflowError> {
        match self
            .client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(truncate(cause.to_owned(), MAX_CAUSE))
            .send()
            .await
        {
            Ok(_) => Ok(TaskAnswer::Sent),
            Err(e) => match e.as_service_error() {
                Some(
                    se @ (SendTaskFailureError::InvalidToken(_)
                    | SendTaskFailureError::TaskDoesNotExist(_)
                    | SendTaskFailureError::TaskTimedOut(_)),
                ) => Ok(TaskAnswer::AlreadyClosed {
                    code: se.code().unwrap_or("Unknown").to_owned(),
                }),
                _ => Err(WorkflowError::request("SendTaskFailure", subject, &e)),
            },
        }
    }

    /// The stored token of the task waiting on `id` (a review or a retirement request).
    pub async fn token(&self, id: &str) -> Result<Option<String>, WorkflowError> {
        self.tokens
            .task_token(id)
            .await
            .map_err(WorkflowError::Tokens)
    }

    /// Answers the confirmation task of `request` with its decision (`refusal` given for a
    /// refusal), if its token has arrived.
    pub async fn decide_retirement(
        &self,
        request: &PendingRetirement,
        refusal: Option<&str>,
    ) -> Result<TaskAnswer, WorkflowError> {
        match self.token(&request.id).await? {
            Some(token) => self.answer_retirement(request, refusal, &token).await,
            None => Ok(TaskAnswer::AwaitingToken),
        }
    }

    /// The ARN of a promotion's execution, derived without a request:
    /// `arn:...:states:REGION:ACCOUNT:execution:MACHINE:NAME`.
    pub fn execution_arn(&self, promotion_id: &str) -> String {
        execution_arn_of(&self.approval_state_machine_arn, promotion_id)
    }

    /// Starts the promotion's approval execution (`StartExecution`, once per promotion).
    pub async fn start(&self, promotion: &Promotion) -> Result<StartOutcome, WorkflowError> {
        self.start_named(
            &self.approval_state_machine_arn,
            &promotion.id,
            approval_input(promotion),
        )
        .await
    }

    /// Answers the task waiting on `review` with its decision, if its token has arrived.
    pub async fn decide(&self, review: &Review) -> Result<TaskAnswer, WorkflowError> {
        if review.decision.is_none() {
            return Ok(TaskAnswer::NotDecided);
        }
        match self.token(&review.id).await? {
            Some(token) => self.answer(review, &token).await,
            None => Ok(TaskAnswer::AwaitingToken),
        }
    }

    /// Sends a decided review's decision with `token`: `SendTaskSuccess` with the decision as
    /// output when approved, `SendTaskFailure` with [`REVIEW_REJECTED`] when rejected. Also
    /// what the review-inbox function calls when a token arrives for a decided review.
    pub async fn answer(&self, review: &Review, token: &str) -> Result<TaskAnswer, WorkflowError> {
        let Some(decision) = review.decision else {
            return Ok(TaskAnswer::NotDecided);
        };
        let outcome = json!({
            "review_id": review.id,
            "stage": review.stage,
            "decision": decision,
            "decided_by": review.decided_by,
            "decided_at": review.decided_at,
            "conditions": review.conditions,
        });
        match decision {
            Decision::Approve => self.succeed(token, &outcome, &review.id).await,
            Decision::Reject => {
                self.fail(token, REVIEW_REJECTED, &outcome.to_string(), &review.id)
                    .await
            }
        }
    }

    /// Stops the promotion's execution (`StopExecution`, error [`STOPPED`]), e.g. when its
    /// version is retired mid-review. Stopping a finished execution changes nothing.
    pub async fn stop(
        &self,
        promotion_id: &str,
        cause: &str,
    ) -> Result<StopOutcome, WorkflowError> {
        let result = self
            .client
            .stop_execution()
            .execution_arn(self.execution_arn(promotion_id))
            .error(STOPPED)
            .cause(truncate(cause.to_owned(), MAX_CAUSE))
            .send()
            .await;
        match result {
            Ok(_) => Ok(StopOutcome::Stopped),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(StopExecutionError::ExecutionDoesNotExist(_))
                ) =>
            {
                Ok(StopOutcome::NoExecution)
            }
            Err(e) => Err(WorkflowError::request("StopExecution", promotion_id, &e)),
        }
    }
}

/// Checks that `arn` names a Step Functions state machine.
fn state_machine_arn(arn: String) -> Result<String, WorkflowError> {
    if !arn.starts_with("arn:") || !arn.contains(":states:") || !arn.contains(":stateMachine:") {
        return Err(WorkflowError::InvalidStateMachineArn(arn));
    }
    Ok(arn)
}

#[async_trait]
impl Workflows for StepFunctionsWorkflows {
    fn confirms_retirements(&self) -> bool {
        self.retirement_state_machine_arn.is_some()
    }

    async fn retirement_requested(
        &self,
        version: &ModelVersion,
        request: &PendingRetirement,
    ) -> Result<(), StoreError> {
        self.start_retirement(version, request).await?;
        Ok(())
    }

    // The decision has committed; its answer is best effort here. A failure is not the
    // caller's error (the registry holds the decision): the commit's `RetirementDecided`
    // reaches the review inbox through the outbox, which answers again until Step Functions
    // has the answer or the token is gone.
    async fn retirement_decided(
        &self,
        request: &PendingRetirement,
        refusal: Option<&str>,
    ) -> Result<(), StoreError> {
        match self.decide_retirement(request, refusal).await {
            Ok(TaskAnswer::AwaitingToken) => tracing::info!(
                retirement = %request.id,
                "decision recorded before the confirmation token arrived; the review inbox will answer"
            ),
            Ok(TaskAnswer::AlreadyClosed { code }) => tracing::warn!(
                retirement = %request.id,
                %code,
                "Step Functions no longer accepts this retirement's confirmation token"
            ),
            Ok(TaskAnswer::Sent | TaskAnswer::NotDecided) => {}
            Err(e) => tracing::warn!(
                retirement = %request.id,
                error = %e,
                "answering the retirement workflow failed; the review inbox sends it again from the outbox"
            ),
        }
        Ok(())
    }

    async fn promotion_started(&self, promotion: &Promotion) -> Result<(), StoreError> {
        self.start(promotion).await?;
        Ok(())
    }

    // Best effort, like `retirement_decided`: the commit's `ReviewDecided` drives the answer
    // again from the outbox when this one fails.
    async fn review_decided(
        &self,
        _promotion: &Promotion,
        review: &Review,
    ) -> Result<(), StoreError> {
        match self.decide(review).await {
            Ok(TaskAnswer::Sent | TaskAnswer::NotDecided) => {}
            Ok(TaskAnswer::AwaitingToken) => tracing::info!(
                review = %review.id,
                "decision recorded before its task token arrived; the review inbox will answer"
            ),
            Ok(TaskAnswer::AlreadyClosed { code }) => tracing::warn!(
                review = %review.id,
                %code,
                "Step Functions no longer accepts this review's task token; decision kept in the registry"
            ),
            Err(e) => tracing::warn!(
                review = %review.id,
                error = %e,
                "answering the approval workflow failed; the review inbox sends it again from the outbox"
            ),
        }
        Ok(())
    }
}
