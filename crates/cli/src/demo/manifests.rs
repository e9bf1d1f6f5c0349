//! What the demo registers: version 1 is DESIGN.md's example manifest, compiled in; version 2
//! is the same model retrained on newer data; `support-triage` is another team's low-risk
//! model, with the same card shape; staging evaluations are made up per version.
//!
//! Invariant: every hash here is a real SHA-256 (of a label), so the server checks them as it
//! would any other.

use serde_json::{json, Value};
use steward_core::types::Sha256;

/// The registration manifest of version 1 (DESIGN.md's example), compiled in.
const MANIFEST_V1: &str = include_str!("credit-risk-v1.json");

/// Version 1's manifest.
pub(super) fn manifest_v1() -> anyhow::Result<Value> {
    use anyhow::Context;
    serde_json::from_str(MANIFEST_V1).context("the built-in manifest")
}

fn fake_sha(label: &str) -> String {
    Sha256::digest(label.as_bytes()).to_hex()
}

/// Version 2: retrained on newer data, with version 1 as its parent.
pub(super) fn manifest_v2(v1: &Value) -> Value {
    let mut m = v1.clone();
    m["artifact"] = json!({
        "uri": "s3://acme-models/credit-risk/2/model.tar.gz",
        "sha256": fake_sha("credit-risk v2 model.tar.gz"),
        "size_bytes": 49_003_118,
    });
    m["lineage"]["code"]["commit"] = json!("8c2e91d04b7a5f3362e1d0c9b8a7f6e5d4c3b2a1");
    m["lineage"]["training_data"] = json!([{
        "uri": "s3://acme-data/credit/applications-2025h2-2026h1.parquet",
        "sha256": fake_sha("applications-2025h2-2026h1.parquet"),
        "period": {"from": "2025-07-01", "to": "2026-06-30"},
    }]);
    m["lineage"]["training_job"] = json!(
        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/credit-risk/execution/7p3m2q8rz4cd"
    );
    m["lineage"]["parent_version"] = json!(1);
    m["evaluations"] = json!([{
        "name": "holdout-2026q3",
        "dataset": {"uri": "s3://acme-data/credit/holdout-2026q3.parquet", "sha256": fake_sha("holdout-2026q3.parquet")},
        "metrics": {"auc": 0.921, "accuracy": 0.881, "ks": 0.63},
        "slices": [
            {"group": "age:18-29", "metrics": {"auc": 0.909}},
            {"group": "age:30-59", "metrics": {"auc": 0.924}},
            {"group": "age:60+", "metrics": {"auc": 0.915}},
        ],
    }]);
    m["card"]["training_data"]["period"] = json!({"from": "2025-07-01", "to": "2026-06-30"});
    m["card"]["evaluation"] = json!({
        "summary": "AUC 0.921 on the 2026 Q3 out-of-time holdout; retrained after PSI drift on live traffic.",
        "evaluations": ["holdout-2026q3"],
    });
    m
}

/// A low-risk model of another team: it routes support e-mails to queues, and a person reads
/// every one, so a wrong score costs a transfer between queues. Same card shape as version 1.
pub(super) fn manifest_low_risk(v1: &Value) -> Value {
    let mut m = v1.clone();
    m["risk_tier"] = json!("low");
    m["owner"] = json!({"team": "support-tools", "contact": "support-tools@example.com"});
    m["description"] = json!("Routes incoming support e-mails to the right queue.");
    m["artifact"] = json!({
        "uri": "s3://acme-models/support-triage/1/model.tar.gz",
        "sha256": fake_sha("support-triage v1 model.tar.gz"),
        "size_bytes": 7_340_032,
    });
    m["lineage"]["code"] = json!({
        "repository": "https://git.example.com/ml/support-triage",
        "commit": "5b7e0c2d9a1f4e3b8c6d7a0f1e2d3c4b5a697887",
    });
    m["lineage"]["training_job"] = json!(
        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/support-triage/execution/9q1w2e3r4t5y"
    );
    m["card"]["overview"] =
        json!("Gradient-boosted trees ranking the support queues for an incoming e-mail.");
    m["card"]["intended_use"] = json!({
        "purpose": "Suggest a queue for each support e-mail; an agent reads every e-mail.",
        "users": ["support agents"],
        "out_of_scope": ["replying to customers", "closing tickets"],
    });
    m
}

pub(super) fn staging_evaluation(version: u32, auc: f64) -> Value {
    json!({
        "name": format!("staging-shadow-v{version}"),
        "dataset": {
            "uri": format!("s3://acme-data/credit/staging-shadow-v{version}.parquet"),
            "sha256": fake_sha(&format!("staging-shadow-v{version}.parquet")),
        },
        "metrics": {"auc": auc, "accuracy": 0.87},
        "environment": "staging",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_manifests_parse_as_registrations() {
        let v1: Value = serde_json::from_str(MANIFEST_V1).unwrap();
        steward_core::manifest::Registration::parse(v1.clone()).unwrap();
        let v2 = steward_core::manifest::Registration::parse(manifest_v2(&v1)).unwrap();
        assert_eq!(v2.lineage.parent_version, Some(1));
        let low = steward_core::manifest::Registration::parse(manifest_low_risk(&v1)).unwrap();
        assert_eq!(low.risk_tier, steward_core::types::RiskTier::Low);
    }
}
