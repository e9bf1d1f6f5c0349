//! Steward's records in MLflow's JSON (model_registry.proto): versions as strings,
//! timestamps in milliseconds, `tags` as `[{key, value}]`, every version `READY`.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use steward_core::records::ModelVersion;
use steward_core::service::{MlflowModel, MlflowStage};
use steward_core::Policy;

pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn tags<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Array(pairs.map(|(k, v)| json!({"key": k, "value": v})).collect())
}

/// A registered model; `latest_versions` (the newest version in each stage) when its
/// versions were read.
pub fn model(m: &MlflowModel, policy: &Policy) -> Value {
    let mut latest: Vec<&ModelVersion> = Vec::new();
    for stage in [
        MlflowStage::None,
        MlflowStage::Staging,
        MlflowStage::Production,
        MlflowStage::Archived,
    ] {
        if let Some(v) = m
            .versions
            .iter()
            .filter(|v| m.stage_of(v) == stage)
            .max_by_key(|v| v.version)
        {
            latest.push(v);
        }
    }
    latest.sort_by_key(|v| v.version);
    let mut out = json!({
        "name": m.name.to_string(),
        "creation_timestamp": ms(m.created_at()),
        "last_updated_timestamp": ms(m.updated_at()),
        "description": m.description(),
        "tags": tags(m.tags().into_iter()),
        "aliases": m.aliases(policy).into_iter()
            .map(|(a, v)| json!({"alias": a, "version": v.to_string()}))
            .collect::<Vec<_>>(),
        "latest_versions": latest.into_iter().map(|v| version(m, v, policy)).collect::<Vec<_>>(),
    });
    if let Some(who) = m.created_by() {
        out["user_id"] = json!(who.to_string());
    }
    out
}

/// A model version.
pub fn version(m: &MlflowModel, v: &ModelVersion, policy: &Policy) -> Value {
    let meta = v.mlflow.as_ref();
    let updated = meta
        .and_then(|x| x.updated_at)
        .into_iter()
        .chain(v.deployments.iter().map(|d| d.deployed_at))
        .chain(v.retirement.iter().map(|r| r.retired_at))
        .max()
        .unwrap_or(v.registered_at)
        .max(v.registered_at);
    let source = meta
        .map(|x| x.source.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(&v.artifact.uri);
    json!({
        "name": v.name.to_string(),
        "version": v.version.to_string(),
        "creation_timestamp": ms(v.registered_at),
        "last_updated_timestamp": ms(updated),
        "user_id": v.registered_by.to_string(),
        "current_stage": m.stage_of(v).as_str(),
        "description": meta.map(|x| x.description.as_str()).unwrap_or_default(),
        "source": source,
        "run_id": meta.map(|x| x.run_id.as_str()).unwrap_or_default(),
        "run_link": meta.map(|x| x.run_link.as_str()).unwrap_or_default(),
        "status": "READY",
        "status_message": "",
        "tags": tags(meta.into_iter().flat_map(|x| x.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))),
        "aliases": m.aliases_of(policy, v.version),
    })
}

/// Where the registered model's files are: MLflow's `source` for a version created through
/// MLflow (the model directory), else the registered artifact's URI.
pub fn download_uri(v: &ModelVersion) -> String {
    v.mlflow
        .as_ref()
        .map(|x| x.source.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| v.artifact.uri.clone())
}
