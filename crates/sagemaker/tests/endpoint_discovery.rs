//! SageMaker endpoint discovery on the emulators: endpoints, endpoint configs and models live
//! on moto's SageMaker, the registry on DynamoDB Local. Each of the four outcomes is found,
//! each finding opens its incident exactly once across repeated discoveries, a deleted
//! endpoint's finding closes, and the CloudTrail `CreateEndpoint` event (the documented
//! sample) matches the rule that triggers a discovery.

mod common;

use anyhow::{Context, Result};
use aws_sdk_sagemaker::types::{ContainerDefinition, ProductionVariant, Tag};
use common::*;
use serde_json::{json, Value};
use steward_core::records::{IncidentKind, IncidentStatus};
use steward_core::serving::Outcome;
use steward_core::types::{Environment, RiskTier};
use steward_sagemaker::discovery::{discover, ENVIRONMENT_TAG};

const ROLE: &str = "arn:aws:iam::123456789012:role/sagemaker-execution";
const CLOUDTRAIL_EVENT: &str =
    include_str!("../../../events/samples/SageMakerEndpointApiCall.create-endpoint.aws-docs.json");
const ENDPOINT_RULE: &str = include_str!("../../../events/rules/sagemaker-endpoint-changes.json");

/// Registers a low-risk version of `name` whose artifact is `uri`; its number.
async fn register(stack: &Stack, name: &str, uri: &str, n: u8) -> Result<u32> {
    let mut m = manifest_at(RiskTier::Low);
    m["artifact"]["uri"] = json!(uri);
    m["artifact"]["sha256"] = json!(format!("{n:02x}").repeat(32));
    let (v, _) = stack.backend.gov.register(&dev(), name, m, None).await?;
    Ok(v.version.get())
}

/// Staging, its evaluation, then production: every review approved, deployed.
async fn to_production(stack: &Stack, name: &str, v: u32) -> Result<()> {
    let gov = &stack.backend.gov;
    let p = gov
        .request_promotion(&dev(), name, vn(v), Environment::Staging, None)
        .await?;
    gov.decide(&tech(), &p.reviews[0].id, approve()).await?;
    gov.deploy(&dev(), name, vn(v), Environment::Staging, None)
        .await?;
    gov.add_evaluation(&dev(), name, vn(v), staging_evaluation(v))
        .await?;
    let p = gov
        .request_promotion(&dev(), name, vn(v), Environment::Production, None)
        .await?;
    for r in &p.reviews {
        gov.decide(&tech(), &r.id, approve()).await?;
    }
    gov.deploy(&rel(), name, vn(v), Environment::Production, None)
        .await?;
    Ok(())
}

/// A SageMaker model serving `uri` behind endpoint `endpoint` (one variant).
async fn endpoint(stack: &Stack, endpoint: &str, uri: &str, env: Option<&str>) -> Result<()> {
    let sm = &stack.sagemaker;
    let model = format!("{endpoint}-model");
    sm.create_model()
        .model_name(&model)
        .execution_role_arn(ROLE)
        .primary_container(
            ContainerDefinition::builder()
                .image("123456789012.dkr.ecr.eu-west-1.amazonaws.com/xgboost:1")
                .model_data_url(uri)
                .build(),
        )
        .send()
        .await?;
    let config = format!("{endpoint}-config");
    sm.create_endpoint_config()
        .endpoint_config_name(&config)
        .production_variants(
            ProductionVariant::builder()
                .variant_name("AllTraffic")
                .model_name(&model)
                .initial_instance_count(1)
                .instance_type(aws_sdk_sagemaker::types::ProductionVariantInstanceType::MlM5Large)
                .build(),
        )
        .send()
        .await?;
    let mut create = sm
        .create_endpoint()
        .endpoint_name(endpoint)
        .endpoint_config_name(&config);
    if let Some(e) = env {
        create = create.tags(Tag::builder().key(ENVIRONMENT_TAG).value(e).build());
    }
    create.send().await?;
    Ok(())
}

fn outcome_of(d: &steward_sagemaker::discovery::Discovery, endpoint: &str) -> Option<Outcome> {
    d.reported
        .iter()
        .find(|r| r.endpoint == format!("{endpoint}/AllTraffic"))
        .map(|r| r.outcome)
}

#[tokio::test]
async fn discovery_finds_each_outcome_opens_each_incident_once_and_closes_deleted_endpoints(
) -> Result<()> {
    let stack = Stack::new().await?;
    let model = unique("fraud");
    let (u1, u2, u3) = (
        format!("s3://models/{model}/1/model.tar.gz"),
        format!("s3://models/{model}/2/model.tar.gz"),
        format!("s3://models/{model}/3/model.tar.gz"),
    );
    register(&stack, &model, &u1, 1).await?;
    to_production(&stack, &model, 1).await?;
    register(&stack, &model, &u2, 2).await?;
    to_production(&stack, &model, 2).await?;
    register(&stack, &model, &u3, 3).await?;

    let prefix = unique("ep");
    let (gov_ep, stale_ep, unapproved_ep, shadow_ep) = (
        format!("{prefix}-current"),
        format!("{prefix}-old"),
        format!("{prefix}-candidate"),
        format!("{prefix}-mystery"),
    );
    endpoint(&stack, &gov_ep, &u2, Some("production")).await?;
    endpoint(&stack, &stale_ep, &u1, None).await?;
    endpoint(&stack, &unapproved_ep, &u3, Some("production")).await?;
    endpoint(&stack, &shadow_ep, "s3://team-x/model.tar.gz", None).await?;

    let sm = &stack.sagemaker;
    let gov = &stack.backend.gov;
    let first = discover(gov, sm, &[])
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert_eq!(outcome_of(&first, &gov_ep), Some(Outcome::Governed));
    assert_eq!(outcome_of(&first, &stale_ep), Some(Outcome::Stale));
    assert_eq!(
        outcome_of(&first, &unapproved_ep),
        Some(Outcome::Unapproved)
    );
    assert_eq!(outcome_of(&first, &shadow_ep), Some(Outcome::Unregistered));

    let shadow_incidents = || async {
        let page = gov.incidents(None, None, 500).await?;
        anyhow::Ok(
            page.items
                .into_iter()
                .filter(|i| i.kind == IncidentKind::ShadowModel)
                .filter(|i| i.subject.as_deref().is_some_and(|s| s.contains(&prefix)))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(shadow_incidents().await?.len(), 3);

    // Again and again: nothing new.
    for _ in 0..2 {
        let again = discover(gov, sm, &[])
            .await
            .map_err(|f| anyhow::anyhow!("{f}"))?;
        assert_eq!(again.stopped, 0);
        assert_eq!(outcome_of(&again, &stale_ep), Some(Outcome::Stale));
    }
    assert_eq!(
        shadow_incidents().await?.len(),
        3,
        "each incident opened once"
    );

    // The mystery endpoint is deleted: the next discovery closes its finding.
    sm.delete_endpoint()
        .endpoint_name(&shadow_ep)
        .send()
        .await?;
    let after = discover(gov, sm, &[])
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert!(after.stopped >= 1, "{after:?}");
    assert_eq!(outcome_of(&after, &shadow_ep), None);
    let incidents = shadow_incidents().await?;
    let closed = incidents
        .iter()
        .find(|i| {
            i.subject.as_deref() == Some(&format!("sagemaker/production/{shadow_ep}/AllTraffic"))
        })
        .context("the mystery endpoint's incident")?;
    assert_eq!(closed.status, IncidentStatus::Resolved);
    assert_eq!(
        incidents
            .iter()
            .filter(|i| i.status == IncidentStatus::Open)
            .count(),
        2
    );
    Ok(())
}

#[test]
fn the_documented_create_endpoint_event_matches_the_discovery_rule() {
    let event: Value = serde_json::from_str(CLOUDTRAIL_EVENT).unwrap();
    let rule: Value = serde_json::from_str(ENDPOINT_RULE).unwrap();
    let listed = |key: &str, value: &Value| {
        rule.pointer(key)
            .and_then(Value::as_array)
            .is_some_and(|a| a.contains(value))
    };
    assert!(listed("/source", &event["source"]));
    assert!(listed("/detail-type", &event["detail-type"]));
    assert!(listed(
        "/detail/eventSource",
        &event["detail"]["eventSource"]
    ));
    assert!(listed("/detail/eventName", &event["detail"]["eventName"]));
    assert_eq!(event["detail"]["eventName"], "CreateEndpoint");
}

#[tokio::test]
async fn with_enforcement_on_an_endpoint_that_is_not_governed_is_tagged_until_it_is() -> Result<()>
{
    use steward_sagemaker::discovery::{tag_findings, FINDING_TAG, INCIDENT_TAG};
    let stack = Stack::new().await?;
    let model = unique("churn");
    let uri = format!("s3://models/{model}/1/model.tar.gz");
    register(&stack, &model, &uri, 7).await?;
    let ep = unique("ep-churn");
    endpoint(&stack, &ep, &uri, Some("production")).await?;
    let (gov, sm) = (&stack.backend.gov, &stack.sagemaker);
    let arn = sm
        .describe_endpoint()
        .endpoint_name(&ep)
        .send()
        .await?
        .endpoint_arn()
        .unwrap_or_default()
        .to_owned();
    let tags = || async {
        let out = sm.list_tags().resource_arn(&arn).send().await?;
        anyhow::Ok(
            out.tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .filter(|(k, _)| {
                    k.starts_with("steward:finding") || k.starts_with("steward:incident")
                })
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
    };
    assert!(tag_findings(Some("qa")).is_err());
    // Off (staging only): production endpoints are not tagged.
    discover(gov, sm, &tag_findings(Some("staging")).unwrap())
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert!(tags().await?.is_empty());
    // On for production: tagged with the finding and its incident.
    let found = discover(gov, sm, &tag_findings(Some("staging,production")).unwrap())
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    let incident = found
        .reported
        .iter()
        .find(|r| r.endpoint.starts_with(&ep))
        .and_then(|r| r.incident.clone())
        .context("an incident")?;
    let t = tags().await?;
    assert_eq!(t.get(FINDING_TAG).map(String::as_str), Some("unapproved"));
    assert_eq!(t.get(INCIDENT_TAG), Some(&incident));
    // Governed: the tags go.
    to_production(&stack, &model, 1).await?;
    discover(gov, sm, &tag_findings(Some("production")).unwrap())
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    assert!(tags().await?.is_empty(), "{:?}", tags().await?);
    Ok(())
}
