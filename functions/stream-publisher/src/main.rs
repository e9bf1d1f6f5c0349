//! `stream-publisher`: DynamoDB Streams (the registry table's outbox) → audit objects in the
//! Object Lock bucket and governance events on EventBridge; reports the first failed record.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use steward_aws::handlers::stream::{publish_stream, StreamPublisher};
use steward_aws::lambda;

const REQUIRED: &[&str] = &["STEWARD_TABLE", "STEWARD_AUDIT_BUCKET", "STEWARD_EVENT_BUS"];

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (env, backend) = lambda::init(REQUIRED).await?;
    let publisher = &StreamPublisher {
        store: backend.store.clone(),
        objects: backend.audit_objects(&env)?,
        events: backend.publisher(&env)?,
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(publish_stream(&event.payload, publisher).await.response())
    }))
    .await
}
