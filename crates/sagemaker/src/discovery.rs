//! SageMaker endpoint discovery: what every endpoint serves, reported to the serving
//! inventory like any other platform (`platform = "sagemaker"`), then a sweep that closes the
//! findings of endpoints that are gone.
//!
//! Invariants:
//! - One report per endpoint variant (`endpoint = "{endpoint}/{variant}"`): ListEndpoints →
//!   DescribeEndpoint → DescribeEndpointConfig → DescribeModel, plus ListTags for the
//!   environment (tag `steward:environment` = `staging` | `production`; production when
//!   absent). The artifact is the model's `ModelDataUrl` (or its S3 model data source), else
//!   its container image.
//! - Endpoints that are not serving (`Creating`, `Deleting`, `Failed`, `OutOfService`) are
//!   not reported, so the sweep closes what they served.
//! - Reports are recorded as `system:sagemaker-discovery` with the operator role; the
//!   registry decides every outcome (`Governance::report_serving`). Running it again changes
//!   nothing that did not change in SageMaker.
//! - Discovery never stops or deletes anything. Enforcement is off by default: with
//!   [`TAG_FINDINGS_VAR`] naming environments, an endpoint there that is not governed is tagged
//!   `steward:finding` = its outcome and `steward:incident` = the incident, and the tags are
//!   removed once it is governed; the tags change only when the finding does.

use aws_sdk_sagemaker::types::{ContainerDefinition, EndpointStatus};
use serde_json::json;
use steward_aws::handlers::Failure;
use steward_core::ports::Caller;
use steward_core::serving::{serving_key, Outcome, ServingRecord};
use steward_core::types::{AuthMethod, Environment, PrincipalId, Role};
use steward_core::Governance;

/// The platform name of SageMaker's reports.
pub const PLATFORM: &str = "sagemaker";
/// The endpoint tag naming the environment an endpoint serves.
pub const ENVIRONMENT_TAG: &str = "steward:environment";

/// `STEWARD_SAGEMAKER_TAG_FINDINGS`: the environments (comma-separated) whose endpoints are
/// tagged with their findings; empty or unset, none.
pub const TAG_FINDINGS_VAR: &str = "STEWARD_SAGEMAKER_TAG_FINDINGS";
/// The tags enforcement sets on an endpoint that is not governed.
pub const FINDING_TAG: &str = "steward:finding";
pub const INCIDENT_TAG: &str = "steward:incident";

/// The environments of [`TAG_FINDINGS_VAR`]; a name that is not one is a configuration
/// failure naming it.
pub fn tag_findings(value: Option<&str>) -> Result<Vec<Environment>, Failure> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Environment::parse(s).map_err(|_| {
                Failure::config(format!(
                    "{TAG_FINDINGS_VAR}: {s:?} is not an environment (staging, production)"
                ))
            })
        })
        .collect()
}

/// What one discovery found.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Every variant reported, with the registry's outcome.
    pub reported: Vec<ServingRecord>,
    /// Endpoints (variants) Steward knew as serving that are gone.
    pub stopped: usize,
}

impl Discovery {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.reported
            .iter()
            .filter(|r| r.outcome == outcome)
            .count()
    }
}

/// The identity discovery reports as.
pub fn discovery_caller() -> Caller {
    Caller::new(
        PrincipalId::system("sagemaker-discovery"),
        vec![Role::Operator],
        AuthMethod::System,
    )
}

/// The artifact a container serves: its model data, else its image.
fn artifact_of(c: &ContainerDefinition) -> Option<String> {
    c.model_data_url()
        .map(str::to_owned)
        .or_else(|| {
            c.model_data_source()
                .and_then(|s| s.s3_data_source())
                .and_then(|s| s.s3_uri())
                .map(str::to_owned)
        })
        .or_else(|| c.image().map(str::to_owned))
        .filter(|s| !s.is_empty())
}

/// Lists every endpoint, reports what each serving variant serves, and sweeps the rest;
/// endpoints in `tag_in` get their findings as tags.
pub async fn discover(
    gov: &Governance,
    sagemaker: &aws_sdk_sagemaker::Client,
    tag_in: &[Environment],
) -> Result<Discovery, Failure> {
    let caller = discovery_caller();
    let now = gov.now();
    let mut out = Discovery::default();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = sagemaker
            .list_endpoints()
            .set_next_token(token.clone())
            .max_results(100)
            .send()
            .await
            .map_err(|e| crate::sdk_failure("ListEndpoints", e))?;
        for summary in page.endpoints() {
            let serving = matches!(
                summary.endpoint_status(),
                Some(
                    EndpointStatus::InService
                        | EndpointStatus::Updating
                        | EndpointStatus::SystemUpdating
                        | EndpointStatus::RollingBack
                        | EndpointStatus::UpdateRollbackFailed
                )
            );
            if !serving {
                continue;
            }
            let Some(name) = summary.endpoint_name() else {
                continue;
            };
            let endpoint = sagemaker
                .describe_endpoint()
                .endpoint_name(name)
                .send()
                .await
                .map_err(|e| crate::sdk_failure("DescribeEndpoint", e))?;
            let tags = sagemaker
                .list_tags()
                .set_resource_arn(summary.endpoint_arn().map(str::to_owned))
                .send()
                .await
                .map_err(|e| crate::sdk_failure("ListTags", e))?;
            let environment = tags
                .tags()
                .iter()
                .find(|t| t.key() == Some(ENVIRONMENT_TAG))
                .and_then(|t| t.value())
                .and_then(|v| Environment::parse(v).ok())
                .unwrap_or(Environment::Production);
            let config = sagemaker
                .describe_endpoint_config()
                .endpoint_config_name(endpoint.endpoint_config_name().unwrap_or_default())
                .send()
                .await
                .map_err(|e| crate::sdk_failure("DescribeEndpointConfig", e))?;
            let mut findings: Vec<(Outcome, Option<String>)> = Vec::new();
            for variant in config.production_variants() {
                let Some(model_name) = variant.model_name() else {
                    continue;
                };
                let model = sagemaker
                    .describe_model()
                    .model_name(model_name)
                    .send()
                    .await
                    .map_err(|e| crate::sdk_failure("DescribeModel", e))?;
                let artifact = model
                    .primary_container()
                    .into_iter()
                    .chain(model.containers())
                    .find_map(artifact_of);
                let Some(uri) = artifact else { continue };
                let endpoint_id =
                    format!("{name}/{}", variant.variant_name().unwrap_or("AllTraffic"));
                seen.push(serving_key(PLATFORM, environment, &endpoint_id));
                let record = gov
                    .report_serving(
                        &caller,
                        json!({
                            "platform": PLATFORM, "environment": environment,
                            "endpoint": endpoint_id, "artifact": {"uri": uri},
                            "observed_at": now,
                        }),
                    )
                    .await
                    .map_err(Failure::from)?;
                findings.push((record.outcome, record.incident.clone()));
                out.reported.push(record);
            }
            if tag_in.contains(&environment) {
                let arn = summary.endpoint_arn().unwrap_or_default();
                let current = |key: &str| {
                    tags.tags()
                        .iter()
                        .find(|t| t.key() == Some(key))
                        .and_then(|t| t.value())
                        .map(str::to_owned)
                };
                // The endpoint's worst finding (any variant not governed).
                let worst = findings.into_iter().find(|(o, _)| *o != Outcome::Governed);
                tag_finding(
                    sagemaker,
                    arn,
                    worst,
                    current(FINDING_TAG),
                    current(INCIDENT_TAG),
                )
                .await?;
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    out.stopped = gov
        .serving_swept(&caller, PLATFORM, &seen, now)
        .await
        .map_err(Failure::from)?;
    Ok(out)
}

/// Sets or clears the finding tags of endpoint `arn` when they differ from what it carries.
async fn tag_finding(
    sagemaker: &aws_sdk_sagemaker::Client,
    arn: &str,
    finding: Option<(Outcome, Option<String>)>,
    tagged_finding: Option<String>,
    tagged_incident: Option<String>,
) -> Result<(), Failure> {
    match finding {
        Some((outcome, incident)) => {
            let incident = incident.unwrap_or_default();
            if tagged_finding.as_deref() == Some(outcome.as_str())
                && tagged_incident.as_deref() == Some(incident.as_str())
            {
                return Ok(());
            }
            let tag = |k: &str, v: &str| {
                aws_sdk_sagemaker::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
            };
            sagemaker
                .add_tags()
                .resource_arn(arn)
                .tags(tag(FINDING_TAG, outcome.as_str()))
                .tags(tag(INCIDENT_TAG, &incident))
                .send()
                .await
                .map_err(|e| crate::sdk_failure("AddTags", e))?;
        }
        None if tagged_finding.is_some() || tagged_incident.is_some() => {
            sagemaker
                .delete_tags()
                .resource_arn(arn)
                .tag_keys(FINDING_TAG)
                .tag_keys(INCIDENT_TAG)
                .send()
                .await
                .map_err(|e| crate::sdk_failure("DeleteTags", e))?;
        }
        None => {}
    }
    Ok(())
}
