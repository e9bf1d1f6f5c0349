//! SageMaker Pipelines registrations through `sagemaker-callback`, on the emulators: the
//! registry on DynamoDB Local, manifests and queues on moto. Messages are the documented
//! CallbackStep shape (`events/samples/messages/`), delivered through a real SQS queue.
//!
//! moto does not implement `SendPipelineExecutionStepSuccess` / `...Failure`
//! (docs/emulators.md), so exactly those two calls go to an SDK client mocked with
//! aws-smithy-mocks; the tests assert the exact request the SDK sent (callback token,
//! `ClientRequestToken`, `OutputParameters` or `FailureReason`).

mod common;

use std::sync::Arc;

use serde_json::{json, Value};

use common::*;
use steward_core::types::{PrincipalId, Role};
use steward_sagemaker::callback::{
    invoke, token_key, PipelineRegistrar, SageMakerAnswers, MAX_FAILURE_REASON,
};
use steward_testkit::vn;

fn registrar(stack: &Stack, sagemaker: aws_sdk_sagemaker::Client) -> PipelineRegistrar {
    PipelineRegistrar {
        gov: stack.backend.gov.clone(),
        s3: stack.s3.clone(),
        answers: Arc::new(SageMakerAnswers(sagemaker)),
        principal: PrincipalId::parse(PIPELINE_PRINCIPAL).unwrap(),
        manifest_bucket: Some(stack.manifest_bucket.clone()),
    }
}

/// The documented CallbackStep message with this test's token, model and manifest argument.
fn callback_message(token: &str, model: &str, manifest: Value) -> (String, String) {
    let mut msg: Value = serde_json::from_str(CALLBACK_MESSAGE).unwrap();
    msg["token"] = json!(token);
    msg["arguments"]["model_name"] = json!(model);
    msg["arguments"]["manifest"] = manifest;
    let arn = msg["pipelineExecutionArn"].as_str().unwrap().to_owned();
    (msg.to_string(), arn)
}

/// The example manifest as a pipeline writes it: no training job (Steward records the
/// pipeline execution ARN there).
fn pipeline_manifest() -> Value {
    let mut m = manifest();
    m["lineage"].as_object_mut().unwrap().remove("training_job");
    m
}

fn token() -> String {
    // Callback tokens are 10 alphanumerics.
    let u = unique("t").replace('-', "");
    u[u.len() - 10..].to_owned()
}

#[tokio::test]
async fn a_callback_step_message_registers_the_manifest_from_s3_and_answers_success_with_name_version_and_stage(
) -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    stack.grant_pipeline(vec![Role::Developer]).await?;
    let model = unique("pipe");
    let uri = stack
        .put_manifest("run-1/manifest.json", &pipeline_manifest())
        .await?;
    let tok = token();
    let (body, execution) = callback_message(&tok, &model, json!(uri));
    let (client, sent) = mocked_sagemaker(false);
    let reg = registrar(&stack, client);

    let event = stack.deliver(&[body]).await?;
    let response = steward_sagemaker::callback::sagemaker_callback(&event, &reg).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let detail = stack.backend.gov.version_detail(&model, vn(1)).await?;
    assert_eq!(detail.version.registered_by.to_string(), PIPELINE_PRINCIPAL);
    assert_eq!(
        detail.version.lineage.training_job.as_deref(),
        Some(execution.as_str())
    );
    assert_eq!(detail.version.stage.to_string(), "development");

    let sent = sent.lock().unwrap().clone();
    assert_eq!(
        sent,
        vec![Sent::Success {
            callback_token: tok.clone(),
            client_request_token: token_key(&tok),
            output_parameters: vec![
                ("model_name".into(), model.clone()),
                ("version".into(), "1".into()),
                ("stage".into(), "development".into()),
            ],
        }]
    );
    let answered: Vec<_> = stack
        .audit()
        .await?
        .into_iter()
        .filter(|e| e.action == "pipeline.step_answered")
        .collect();
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].actor, PIPELINE_PRINCIPAL);
    assert_eq!(answered[0].details["outcome"], "success");
    assert_eq!(
        answered[0].details["pipeline_execution_arn"],
        execution.as_str()
    );
    Ok(())
}

#[tokio::test]
async fn a_callback_with_an_invalid_manifest_is_answered_with_a_failure_naming_the_fields_and_registers_nothing(
) -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    stack.grant_pipeline(vec![Role::Developer]).await?;
    let model = unique("pipe");
    let mut bad = pipeline_manifest();
    bad["description"] = json!("");
    bad["lineage"]["code"]["commit"] = json!("");
    let tok = token();
    // Inline, as a JSON string (pipeline arguments are strings).
    let (body, _) = callback_message(&tok, &model, json!(bad.to_string()));
    let (client, sent) = mocked_sagemaker(false);
    let reg = registrar(&stack, client);

    let event = stack.deliver(&[body]).await?;
    let response = steward_sagemaker::callback::sagemaker_callback(&event, &reg).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let Sent::Failure {
        callback_token,
        client_request_token,
        failure_reason,
    } = &sent[0]
    else {
        panic!("expected a step failure, got {sent:?}");
    };
    assert_eq!(callback_token, &tok);
    assert_eq!(client_request_token, &token_key(&tok));
    assert!(
        failure_reason.len() <= MAX_FAILURE_REASON,
        "{failure_reason}"
    );
    assert!(
        failure_reason.starts_with("invalid fields: "),
        "{failure_reason}"
    );
    assert!(failure_reason.contains("description"), "{failure_reason}");
    assert!(
        failure_reason.contains("lineage.code.commit"),
        "{failure_reason}"
    );

    let err = stack.backend.gov.model_detail(&model).await.unwrap_err();
    assert_eq!(err.code(), "not_found", "nothing may be registered: {err}");
    assert!(!stack
        .audit()
        .await?
        .iter()
        .any(|e| e.action == "version.registered"));
    Ok(())
}

#[tokio::test]
async fn a_duplicate_delivery_registers_once_and_answers_once() -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    stack.grant_pipeline(vec![Role::Developer]).await?;
    let model = unique("pipe");
    let uri = stack
        .put_manifest("run-2/manifest.json", &pipeline_manifest())
        .await?;
    let tok = token();
    let (body, _) = callback_message(&tok, &model, json!(uri));
    let (client, sent) = mocked_sagemaker(false);
    let reg = registrar(&stack, client);

    // SQS delivers at least once: the same message twice in one batch, then once more later.
    let event = stack.deliver(&[body.clone(), body.clone()]).await?;
    let first = steward_sagemaker::callback::sagemaker_callback(&event, &reg).await;
    let event = stack.deliver(&[body]).await?;
    let second = steward_sagemaker::callback::sagemaker_callback(&event, &reg).await;
    assert!(first.batch_item_failures.is_empty() && second.batch_item_failures.is_empty());

    let detail = stack.backend.gov.model_detail(&model).await?;
    assert_eq!(detail.versions.len(), 1, "one registration");
    assert_eq!(
        sent.lock().unwrap().len(),
        1,
        "one answer: {:?}",
        sent.lock().unwrap()
    );
    let audit = stack.audit().await?;
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "version.registered")
            .count(),
        1
    );
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "pipeline.step_answered")
            .count(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn an_answer_sagemaker_did_not_take_is_a_batch_item_failure_and_the_redelivery_answers_without_registering_again(
) -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    stack.grant_pipeline(vec![Role::Developer]).await?;
    let model = unique("pipe");
    let tok = token();
    let (body, _) = callback_message(&tok, &model, pipeline_manifest());
    let (client, sent) = mocked_sagemaker(true);
    let reg = registrar(&stack, client);

    let event = stack.deliver(std::slice::from_ref(&body)).await?;
    let first = steward_sagemaker::callback::sagemaker_callback(&event, &reg).await;
    assert_eq!(
        first.batch_item_failures.len(),
        1,
        "the message must come back"
    );
    assert!(sent.lock().unwrap().is_empty());

    let event = stack.deliver(&[body]).await?;
    let second = steward_sagemaker::callback::sagemaker_callback(&event, &reg).await;
    assert!(second.batch_item_failures.is_empty(), "{second:?}");
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(
        matches!(&sent[0], Sent::Success { client_request_token, .. } if *client_request_token == token_key(&tok))
    );
    assert_eq!(
        stack.backend.gov.model_detail(&model).await?.versions.len(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_pipeline_principal_without_the_developer_role_is_answered_with_a_failure_and_registers_nothing(
) -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    stack.grant_pipeline(vec![Role::Operator]).await?;
    let model = unique("pipe");
    let tok = token();
    let (body, _) = callback_message(&tok, &model, pipeline_manifest());
    let (client, sent) = mocked_sagemaker(false);
    let reg = registrar(&stack, client);

    let event = stack.deliver(&[body]).await?;
    let response = steward_sagemaker::callback::sagemaker_callback(&event, &reg).await;
    assert!(response.batch_item_failures.is_empty());
    let sent = sent.lock().unwrap().clone();
    assert!(
        matches!(&sent[..], [Sent::Failure { failure_reason, .. }] if failure_reason.contains("developer")),
        "{sent:?}"
    );
    assert!(stack.backend.gov.model_detail(&model).await.is_err());
    Ok(())
}

#[tokio::test]
async fn a_lambda_step_payload_registers_once_and_returns_name_version_and_stage(
) -> anyhow::Result<()> {
    let stack = Stack::new().await?;
    stack.grant_pipeline(vec![Role::Developer]).await?;
    let model = unique("pipe");
    let uri = stack
        .put_manifest("run-3/manifest.json", &pipeline_manifest())
        .await?;
    let mut payload: Value = serde_json::from_str(LAMBDA_STEP_PAYLOAD)?;
    payload["model_name"] = json!(model);
    payload["manifest"] = json!(uri);
    let (client, sent) = mocked_sagemaker(false);
    let reg = registrar(&stack, client);

    let out = invoke(payload.clone(), &reg)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(
        out,
        json!({"model_name": model, "version": 1, "stage": "development"})
    );
    // A LambdaStep retried by SageMaker gets the same answer, not a second version.
    let again = invoke(payload, &reg)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(again, out);
    assert_eq!(
        stack.backend.gov.model_detail(&model).await?.versions.len(),
        1
    );
    assert!(
        sent.lock().unwrap().is_empty(),
        "a LambdaStep is answered by the return value"
    );

    let mut bad: Value = serde_json::from_str(LAMBDA_STEP_PAYLOAD)?;
    bad["model_name"] = json!(unique("pipe"));
    bad["manifest"] = json!({"owner": {"team": "x"}});
    let err = invoke(bad, &reg).await.unwrap_err();
    assert_eq!(err.error_type, "Steward.Validation");
    assert!(err.message.starts_with("invalid fields: "), "{err}");
    Ok(())
}
