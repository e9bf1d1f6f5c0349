//! `workflow-events`: SQS (fed by the workflows' outcome events, and by the retirement
//! workflow's action messages) → core state changes: a review the workflow timed out expires
//! its promotion; approvals and rejections are checked against the registry; a retirement's
//! dependents check and archive are answered; an ended retirement request is closed.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use steward_aws::handlers::workflow_events::workflow_events;
use steward_aws::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (_, backend) = lambda::init(&["STEWARD_TABLE"]).await?;
    let gov = backend.gov.as_ref();
    let workflows = backend.step_functions.as_deref();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(workflow_events(&event.payload, gov, workflows).await)
    }))
    .await
}
