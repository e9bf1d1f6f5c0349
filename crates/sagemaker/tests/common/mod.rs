//! The emulator harness of the SageMaker tests (after `crates/aws/tests/common/mod.rs`): a
//! registry table on DynamoDB Local, buckets, queues and SageMaker model packages on moto,
//! and SQS events as a Lambda event source mapping hands them to a function. The endpoints,
//! people and fixtures come from `steward-testkit`; without the emulators the tests fail,
//! saying how to start them. Only the SageMaker-specific setup lives here.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::Value;

use aws_sdk_sagemaker::operation::send_pipeline_execution_step_failure::SendPipelineExecutionStepFailureOutput;
use aws_sdk_sagemaker::operation::send_pipeline_execution_step_success::SendPipelineExecutionStepSuccessOutput;
use aws_smithy_mocks::{mock, MockResponse, MockResponseInterceptor, Rule, RuleMode};
use steward_aws::dynamo::audit_event_from_image;
use steward_aws::dynamo::create_table;
use steward_aws::env::AwsEnv;
use steward_aws::handlers::backend::AwsBackend;
use steward_core::audit::AuditEvent;
use steward_core::ports::AuditLog;
use steward_core::records::DomainEvent;
use steward_core::types::{PrincipalId, Role};
pub use steward_testkit::*;

pub const CALLBACK_MESSAGE: &str =
    include_str!("../../../../events/samples/messages/SageMakerCallbackStep.sqs-body.json");
pub const LAMBDA_STEP_PAYLOAD: &str =
    include_str!("../../../../events/samples/messages/SageMakerLambdaStep.payload.json");
pub const PACKAGE_EVENT: &str =
    include_str!("../../../../events/samples/SageMakerModelPackageStateChange.aws-docs.json");
pub const PACKAGE_RULE: &str =
    include_str!("../../../../events/rules/sagemaker-model-package-state-change.json");

/// The principal pipelines register as in these tests (`STEWARD_SAGEMAKER_PRINCIPAL`).
pub const PIPELINE_PRINCIPAL: &str = "arn:aws:iam::123456789012:role/sagemaker-pipeline-exec";

/// A registry table and a manifest bucket on the emulators, and the backend over them.
pub struct Stack {
    pub backend: AwsBackend,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    /// SageMaker on moto (model packages; not the callback answers, which moto lacks).
    pub sagemaker: aws_sdk_sagemaker::Client,
    pub manifest_bucket: String,
}

impl Stack {
    /// Fails the test when the emulators are not configured.
    pub async fn new() -> Result<Stack> {
        let Emulators { dynamodb, aws, .. } = steward_testkit::emulators!();
        let vars: HashMap<String, String> = HashMap::from([
            ("STEWARD_TABLE".into(), unique("steward")),
            ("STEWARD_ENDPOINT_URL".into(), aws),
            ("STEWARD_DYNAMODB_ENDPOINT_URL".into(), dynamodb),
        ]);
        let env = AwsEnv::from_lookup(|k| vars.get(k).cloned())?;
        let backend = AwsBackend::connect_with(&env, None)
            .await
            .map_err(|f| anyhow::anyhow!("{f}"))?;
        create_table(
            backend.store.client(),
            env.table.as_deref().unwrap_or_default(),
        )
        .await?;
        let s3 = backend.s3();
        let manifest_bucket = unique("manifests");
        s3.create_bucket().bucket(&manifest_bucket).send().await?;
        let sqs = aws_sdk_sqs::Client::new(&backend.sdk);
        let sagemaker = aws_sdk_sagemaker::Client::new(&backend.sdk);
        Ok(Stack {
            backend,
            sqs,
            s3,
            sagemaker,
            manifest_bucket,
        })
    }

    /// Grants the pipeline principal `roles`, as an admin would through `/v1/principals`.
    pub async fn grant_pipeline(&self, roles: Vec<Role>) -> Result<()> {
        let id = PrincipalId::parse(PIPELINE_PRINCIPAL)?;
        self.backend
            .gov
            .seed_principal(&id, roles, "bootstrap")
            .await?;
        Ok(())
    }

    pub async fn put_manifest(&self, key: &str, manifest: &Value) -> Result<String> {
        self.s3
            .put_object()
            .bucket(&self.manifest_bucket)
            .key(key)
            .body(serde_json::to_vec(manifest)?.into())
            .send()
            .await?;
        Ok(format!("s3://{}/{key}", self.manifest_bucket))
    }

    pub async fn queue(&self) -> Result<(String, String)> {
        let url = self
            .sqs
            .create_queue()
            .queue_name(unique("q"))
            .send()
            .await?
            .queue_url()
            .context("queue url")?
            .to_owned();
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await?;
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .context("queue arn")?
            .clone();
        Ok((url, arn))
    }

    /// Sends each body to a fresh queue and returns the SQS event a Lambda event source mapping
    /// would hand the function for them (one batch).
    pub async fn deliver(&self, bodies: &[String]) -> Result<SqsEvent> {
        let (url, arn) = self.queue().await?;
        for b in bodies {
            self.sqs
                .send_message()
                .queue_url(&url)
                .message_body(b)
                .send()
                .await?;
        }
        let mut got = Vec::new();
        for _ in 0..20 {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .send()
                .await?;
            got.extend(out.messages().to_vec());
            if got.len() >= bodies.len() {
                break;
            }
        }
        anyhow::ensure!(
            got.len() == bodies.len(),
            "received {} of {}",
            got.len(),
            bodies.len()
        );
        Ok(sqs_event_for(&arn, &got)?)
    }

    /// Every audit event of the registry, oldest first.
    pub async fn audit(&self) -> Result<Vec<AuditEvent>> {
        Ok(self.backend.store.events(None, 0, 1000).await?)
    }

    /// Every governance event committed to the outbox (carried by audit event items), oldest
    /// first. A Scan is fine in a test; the product never scans.
    pub async fn outbox(&self) -> Result<Vec<DomainEvent>> {
        let client = self.backend.store.client();
        let table = self.backend.store.table().to_owned();
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(&table)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items() {
                if let Some(e) = audit_event_from_image(item.clone())? {
                    out.push((e.seq, e.events));
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out.into_iter().flat_map(|(_, e)| e).collect())
    }
}

/// A request SageMaker received (through aws-smithy-mocks): the exact fields Steward sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    Success {
        callback_token: String,
        client_request_token: String,
        output_parameters: Vec<(String, String)>,
    },
    Failure {
        callback_token: String,
        client_request_token: String,
        failure_reason: String,
    },
}

/// A SageMaker client whose `SendPipelineExecutionStepSuccess` / `...Failure` are answered by
/// aws-smithy-mocks (moto does not implement them: docs/emulators.md) and recorded exactly as
/// the SDK serialised them from Steward's request. `fail_first` makes the first success call
/// fail with a server error.
pub fn mocked_sagemaker(fail_first: bool) -> (aws_sdk_sagemaker::Client, Arc<Mutex<Vec<Sent>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let l = log.clone();
    let success: Rule = mock!(aws_sdk_sagemaker::Client::send_pipeline_execution_step_success)
        .then_compute_response(move |req| {
            if fail_first && calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                return MockResponse::Http(aws_smithy_runtime_api::http::Response::new(
                    aws_smithy_runtime_api::http::StatusCode::try_from(503).unwrap(),
                    aws_smithy_types::body::SdkBody::from("{\"__type\":\"ServiceUnavailable\"}"),
                ));
            }
            l.lock().unwrap().push(Sent::Success {
                callback_token: req.callback_token().unwrap_or_default().to_owned(),
                client_request_token: req.client_request_token().unwrap_or_default().to_owned(),
                output_parameters: req
                    .output_parameters()
                    .iter()
                    .map(|p| {
                        (
                            p.name().unwrap_or_default().to_owned(),
                            p.value().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
            });
            MockResponse::Output(
                SendPipelineExecutionStepSuccessOutput::builder()
                    .pipeline_execution_arn(
                        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/e",
                    )
                    .build(),
            )
        });
    let l = log.clone();
    let failure: Rule = mock!(aws_sdk_sagemaker::Client::send_pipeline_execution_step_failure)
        .then_compute_output(move |req| {
            l.lock().unwrap().push(Sent::Failure {
                callback_token: req.callback_token().unwrap_or_default().to_owned(),
                client_request_token: req.client_request_token().unwrap_or_default().to_owned(),
                failure_reason: req.failure_reason().unwrap_or_default().to_owned(),
            });
            SendPipelineExecutionStepFailureOutput::builder().build()
        });
    let conf = aws_sdk_sagemaker::Config::builder()
        .behavior_version(aws_sdk_sagemaker::config::BehaviorVersion::latest())
        .region(aws_sdk_sagemaker::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sagemaker::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .retry_config(aws_sdk_sagemaker::config::retry::RetryConfig::disabled())
        .http_client(aws_smithy_mocks::create_mock_http_client())
        .interceptor(
            MockResponseInterceptor::new()
                .rule_mode(RuleMode::MatchAny)
                .with_rule(&success)
                .with_rule(&failure),
        )
        .build();
    (aws_sdk_sagemaker::Client::from_conf(conf), log)
}
