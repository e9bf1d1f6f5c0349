//! `sagemaker-discovery`: on a schedule and on CloudTrail's endpoint changes, every SageMaker
//! endpoint's models are reported to the serving inventory (what is not governed becomes a
//! `shadow_model` incident, once), and endpoints that are gone close their findings.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use steward_aws::handlers::backend::AwsBackend;
use steward_aws::lambda;
use steward_sagemaker::discovery::{self, discover};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = lambda::config(&["STEWARD_TABLE"])?;
    let tag_in = std::env::var(discovery::TAG_FINDINGS_VAR).ok();
    let tag_in = &discovery::tag_findings(tag_in.as_deref())?;
    let backend = AwsBackend::connect(&env).await?;
    lambda::record_policy(&backend).await?;
    let (gov, sagemaker) = (&backend.gov, &steward_sagemaker::client(&backend));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Whatever triggered it (the schedule, a CreateEndpoint call), the whole account is
        // discovered again: reports are idempotent, so a burst of triggers changes nothing more.
        let trigger = event.payload["detail"]["eventName"]
            .as_str()
            .unwrap_or("schedule");
        let found = discover(gov, sagemaker, tag_in).await?;
        tracing::info!(
            trigger,
            reported = found.reported.len(),
            stopped = found.stopped,
            "discovered"
        );
        Ok::<_, Error>(json!({"reported": found.reported.len(), "stopped": found.stopped}))
    }))
    .await
}
