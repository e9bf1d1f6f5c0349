//! Model package sync: "SageMaker Model Package State Change" events (delivered by the
//! `SageMakerModelPackageRule` to the sync queue) checked against the registry.
//!
//! - A package with no Steward registration is a shadow model; a package `Approved` in
//!   SageMaker without a Steward production approval is an approval violation. Core decides
//!   and records both (`Governance::model_package_changed`; the mapping from package to version
//!   is documented in `steward_core::integrations`).
//! - With `STEWARD_SAGEMAKER_REVERT_APPROVALS=true`, a violating package still `Approved` is set
//!   back to `PendingManualApproval` (`DescribeModelPackage`, then `UpdateModelPackage` with the
//!   status, an `ApprovalDescription` naming the violation, and the package's own
//!   `CustomerMetadataProperties`, since an update without them clears them on some
//!   implementations). The revert runs for duplicates too, so a revert that failed is retried
//!   by the redelivery of the same event, and reverting an already reverted package is a no-op.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::Value;

use steward_aws::handlers::{eventbridge_envelope, for_each_message, Failure};
use steward_core::integrations::{Finding, ModelPackageState, PackageOutcome};
use steward_core::Governance;

use crate::sdk_failure;

/// The detail-type SageMaker sends.
pub const DETAIL_TYPE: &str = "SageMaker Model Package State Change";
/// The customer metadata property naming the Steward version of a package.
pub const VERSION_PROPERTY: &str = "steward:version";

/// What the sync handler needs, built once per cold start.
#[derive(Clone)]
pub struct PackageSync<'a> {
    pub gov: &'a Governance,
    pub sagemaker: aws_sdk_sagemaker::Client,
    /// `STEWARD_SAGEMAKER_REVERT_APPROVALS`.
    pub revert: bool,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// The package an event's `detail` describes (DescribeModelPackage's shape).
pub fn package_state(detail: &Value, resources: &[String]) -> Result<ModelPackageState, Failure> {
    let arn = str_at(detail, &["ModelPackageArn"])
        .or(resources.first().map(String::as_str))
        .ok_or_else(|| Failure::validation("the model package event names no ModelPackageArn"))?
        .to_owned();
    let group = str_at(detail, &["ModelPackageGroupName"])
        .or(str_at(detail, &["ModelPackageName"]))
        .unwrap_or_default()
        .to_owned();
    let model_data_urls = detail
        .pointer("/InferenceSpecification/Containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| str_at(c, &["ModelDataUrl"]).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let last_modified = match detail.get("LastModifiedTime") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Ok(ModelPackageState {
        arn,
        group,
        package_version: detail
            .get("ModelPackageVersion")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok()),
        approval_status: str_at(detail, &["ModelApprovalStatus"])
            .unwrap_or_default()
            .to_owned(),
        model_data_urls,
        generated_by: str_at(detail, &["MetadataProperties", "GeneratedBy"]).map(str::to_owned),
        steward_version: str_at(detail, &["CustomerMetadataProperties", VERSION_PROPERTY])
            .map(str::to_owned),
        last_modified,
    })
}

impl PackageSync<'_> {
    /// Handles one SQS message carrying a model package state change.
    pub async fn handle(&self, message: &SqsMessage) -> Result<String, Failure> {
        let event = eventbridge_envelope(message)?;
        if event.detail_type == crate::retraining::RETRAINING_REQUESTED {
            let outcome =
                crate::retraining::start_retraining(self.gov, &self.sagemaker, &event.detail)
                    .await?;
            return Ok(format!("retraining: {outcome:?}"));
        }
        if event.detail_type != DETAIL_TYPE {
            return Err(Failure::validation(format!(
                "expected a {DETAIL_TYPE:?} or {:?} event, got {:?}",
                crate::retraining::RETRAINING_REQUESTED,
                event.detail_type
            )));
        }
        let pkg = package_state(
            &event.detail,
            event.resources.as_deref().unwrap_or_default(),
        )?;
        let outcome = self
            .gov
            .model_package_changed(&pkg, self.revert)
            .await
            .map_err(Failure::from)?;
        let reverted = if self.revert && outcome.approval_violation.found() {
            self.revert_approval(&pkg, &outcome).await?
        } else {
            false
        };
        Ok(summary(&pkg, &outcome, reverted))
    }

    /// Sets a package still `Approved` back to `PendingManualApproval`; `false` when it no
    /// longer is approved.
    async fn revert_approval(
        &self,
        pkg: &ModelPackageState,
        outcome: &PackageOutcome,
    ) -> Result<bool, Failure> {
        use aws_sdk_sagemaker::types::ModelApprovalStatus;
        let current = self
            .sagemaker
            .describe_model_package()
            .model_package_name(&pkg.arn)
            .send()
            .await
            .map_err(|e| sdk_failure("DescribeModelPackage", e))?;
        if current.model_approval_status() != Some(&ModelApprovalStatus::Approved) {
            return Ok(false);
        }
        let incident = match &outcome.approval_violation {
            Finding::Recorded { incident_id } | Finding::Duplicate { incident_id } => {
                incident_id.as_str()
            }
            Finding::None => "",
        };
        let description = match (&outcome.name, outcome.version) {
            (Some(n), Some(v)) => format!(
                "Reverted by Steward (incident {incident}): {n} version {v} is not approved for production in Steward"
            ),
            _ => format!(
                "Reverted by Steward (incident {incident}): no Steward registration is approved for production"
            ),
        };
        self.sagemaker
            .update_model_package()
            .model_package_arn(&pkg.arn)
            .model_approval_status(ModelApprovalStatus::PendingManualApproval)
            .approval_description(description)
            .set_customer_metadata_properties(Some(
                current
                    .customer_metadata_properties()
                    .cloned()
                    .unwrap_or_default(),
            ))
            .send()
            .await
            .map_err(|e| sdk_failure("UpdateModelPackage", e))?;
        Ok(true)
    }
}

fn summary(pkg: &ModelPackageState, outcome: &PackageOutcome, reverted: bool) -> String {
    let what = |f: &Finding| match f {
        Finding::None => "no",
        Finding::Recorded { .. } => "recorded",
        Finding::Duplicate { .. } => "duplicate",
    };
    format!(
        "model package {} ({}): shadow model {}, approval violation {}{}",
        pkg.arn,
        pkg.approval_status,
        what(&outcome.shadow_model),
        what(&outcome.approval_violation),
        if reverted {
            ", reverted to PendingManualApproval"
        } else {
            ""
        }
    )
}

/// The `sagemaker-sync` function on an SQS batch.
pub async fn sagemaker_sync(event: &SqsEvent, sync: &PackageSync<'_>) -> SqsBatchResponse {
    for_each_message(&event.records, |m: &SqsMessage| sync.handle(m)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        include_str!("../../../events/samples/SageMakerModelPackageStateChange.aws-docs.json");

    #[test]
    fn the_documented_event_yields_the_package_fields_steward_relies_on() {
        let event: Value = serde_json::from_str(SAMPLE).unwrap();
        let pkg = package_state(&event["detail"], &[]).unwrap();
        assert_eq!(pkg.group, "versionedmp-p-idy6c3e1fiqj");
        assert_eq!(pkg.package_version, Some(2));
        assert_eq!(pkg.approval_status, "Rejected");
        assert_eq!(pkg.model_data_urls.len(), 1);
        assert!(pkg.generated_by.as_deref().unwrap().contains(":pipeline/"));
        assert_eq!(pkg.last_modified, "2021-02-24T17:00:14Z");
        assert_eq!(pkg.steward_version, None);
    }
}
