//! The retirement workflow as deployed, on moto: the retirement state machine
//! (`statemachines/retirement.asl.json` with the template's substitutions) and the rules that
//! feed the review-inbox and workflow-events queues.

use anyhow::Result;

use super::{approval_machine, unique, Stack};

/// The retirement state machine as deployed (placeholders filled as the template fills them).
pub const RETIREMENT_ASL: &str = include_str!("../../../../statemachines/retirement.asl.json");
/// The rule that brings the confirmation requests (with task tokens) to the review inbox.
pub const CONFIRMATION_RULE: &str =
    include_str!("../../../../events/rules/retirement-confirmation-requested.json");
/// The rule that brings retirement outcomes to the workflow-events function.
pub const OUTCOMES_RULE: &str = include_str!("../../../../events/rules/retirement-outcomes.json");

/// A stack on the emulators, the confirmation and workflow-events queues fed by the deployed
/// rules, and one backend per confirmation timeout (seconds) whose retirements run the
/// deployed retirement machine with that timeout.
pub struct RetirementStack {
    pub stack: Stack,
    pub sfn: aws_sdk_sfn::Client,
    pub inbox_queue: String,
    pub wf_queue: String,
    pub backends: Vec<steward_aws::handlers::backend::AwsBackend>,
    /// The retirement machine of each backend, by position.
    pub machines: Vec<String>,
}

pub async fn retirement_stack(timeouts: &[&str]) -> Result<RetirementStack> {
    let sdk = steward_testkit::emulators!().sdk().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let bus = unique("bus");
    // The approval machine only gives the backends their Step Functions port.
    let approval = approval_machine(&bus).await?;
    let stack = Stack::new(&[
        ("STEWARD_APPROVAL_STATE_MACHINE_ARN", approval),
        ("STEWARD_EVENT_BUS", bus.clone()),
    ])
    .await?;
    let inbox_queue = stack
        .queue_for(serde_json::from_str(CONFIRMATION_RULE)?)
        .await?;
    let wf_queue = stack
        .queue_for(serde_json::from_str(OUTCOMES_RULE)?)
        .await?;
    let machine = |timeout: &str| {
        RETIREMENT_ASL
            .replace("${EventBusName}", &bus)
            .replace("${WorkflowEventsQueueUrl}", &wf_queue)
            .replace("${ConfirmationTimeoutSeconds}", timeout)
    };
    let mut arns = Vec::new();
    for timeout in timeouts {
        arns.push(
            sfn.create_state_machine()
                .name(unique("retirement"))
                .role_arn("arn:aws:iam::123456789012:role/steward-retirement")
                .definition(machine(timeout))
                .send()
                .await?
                .state_machine_arn()
                .to_owned(),
        );
    }
    let mut backends = Vec::new();
    for arn in &arns {
        backends.push(
            stack
                .sibling(&[("STEWARD_RETIREMENT_STATE_MACHINE_ARN", arn.clone())])
                .await?,
        );
    }
    Ok(RetirementStack {
        stack,
        sfn,
        inbox_queue,
        wf_queue,
        backends,
        machines: arns,
    })
}
