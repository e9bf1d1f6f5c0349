//! `review-inbox`: SQS (fed by the `ReviewRequested`, `RetirementConfirmationRequested` and
//! decisions rules) → the task token stored beside its review or retirement request; a
//! request decided before its token arrived is answered at once, and a committed decision
//! whose answer failed is answered again from the outbox.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use steward_aws::handlers::inbox::{review_inbox, ReviewInbox};
use steward_aws::lambda;

const REQUIRED: &[&str] = &["STEWARD_TABLE", "STEWARD_APPROVAL_STATE_MACHINE_ARN"];

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (_, backend) = lambda::init(REQUIRED).await?;
    let inbox = &ReviewInbox {
        gov: backend.gov.clone(),
        store: backend.store.clone(),
        workflows: backend.require_step_functions()?,
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(review_inbox(&event.payload, inbox).await)
    }))
    .await
}
