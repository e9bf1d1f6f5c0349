//! The MLflow Model Registry's model-version operations.
//!
//! Invariants:
//! - `model-versions/create` is a Steward registration: the manifest comes from
//!   `steward.json` beside the model (read through the evidence store) or from the
//!   `steward.manifest` tag, MLflow's `source`, `run_id` and git tags fill only what the
//!   manifest leaves out, and every rule of [`Governance::register`] applies. The MLflow
//!   metadata is committed with the version, never after it.
//! - A stage transition to Staging or Production is a deployment, to Archived a retirement;
//!   nothing moves a version back. Deleting a version retires it, and is refused while it
//!   serves production.
//! - Lineage tags are fixed at registration.

use serde_json::Map;

use super::mlflow_models::{parse_tags, MlflowModel, MlflowStage};
use super::*;
use crate::mlflow::{
    check_text, is_lineage_tag, TagKey, VersionMeta, MANIFEST_TAG, MAX_DESCRIPTION,
};
use crate::ports::SmallFile;

/// The largest `steward.json` Steward reads (a manifest is a few KiB).
const MAX_MANIFEST_FILE: usize = 1 << 20;

/// The manifest fields a registration needs, for naming every missing one at once.
const REQUIRED: &[&str] = &[
    "owner",
    "risk_tier",
    "description",
    "artifact",
    "lineage",
    "evaluations",
    "card",
];

/// A `model-versions/create` request as the MLflow client sends it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MlflowVersionInput {
    pub source: String,
    pub run_id: String,
    pub run_link: String,
    pub description: String,
    pub tags: Vec<(String, String)>,
}

impl Governance {
    /// `model-versions/create`: registers a Steward version from the manifest beside the
    /// model or in its tags; 404 for a model MLflow deleted that has no Steward versions.
    /// Answers with the new version and its model without the model's versions: a version
    /// just registered is in development, so no stage or alias of it depends on the others.
    pub async fn mlflow_create_version(
        &self,
        caller: &Caller,
        name: &str,
        input: MlflowVersionInput,
    ) -> Result<(MlflowModel, ModelVersion), GovError> {
        require_role(caller, &[Role::Developer], "registering a model version")?;
        let model_name = ModelName::parse(name)?;
        check_text("description", &input.description, MAX_DESCRIPTION)?;
        let tags = parse_tags("tags", &input.tags)?;
        if input.source.is_empty() {
            return Err(GovError::field(
                "source",
                "is required: the model's artifact URI",
            ));
        }
        let manifest = self.mlflow_manifest(&input, &tags).await?;
        let body = fill_manifest(manifest, &input, &tags)?;
        let meta = VersionMeta {
            description: input.description.clone(),
            tags: tags.into_iter().collect(),
            source: input.source.clone(),
            run_id: input.run_id.clone(),
            run_link: input.run_link.clone(),
            updated_at: None,
        };
        // One batch (the model, its MLflow record) and one commit, as any registration: the
        // answer is what they read and wrote, not a second read.
        let r = self
            .register_with(caller, name, body, None, Some(meta))
            .await?;
        let m = MlflowModel {
            name: model_name,
            model: r.model,
            registered: r.mlflow_record,
            versions: vec![],
        };
        Ok((m, r.version))
    }

    /// The manifest: the `steward.manifest` tag when there is one, else `steward.json` in
    /// the model's directory; a clear refusal naming both places otherwise.
    async fn mlflow_manifest(
        &self,
        input: &MlflowVersionInput,
        tags: &[(TagKey, String)],
    ) -> Result<Map<String, Value>, GovError> {
        let from_tag = tags.iter().find(|(k, _)| k.as_str() == MANIFEST_TAG);
        let (text, field) = if let Some((_, v)) = from_tag {
            (v.clone().into_bytes(), format!("tags.{MANIFEST_TAG}"))
        } else {
            let uri = format!("{}/steward.json", input.source.trim_end_matches('/'));
            let why = match &self.evidence {
                None => "this deployment reads no artifacts".to_owned(),
                Some(e) => match e.read_file(&uri, MAX_MANIFEST_FILE).await? {
                    SmallFile::Found(bytes) => return parse_object(&bytes, "steward.json"),
                    SmallFile::Absent => format!("{uri} does not exist"),
                    SmallFile::Unreadable(reason) => format!("{uri} cannot be read: {reason}"),
                },
            };
            return Err(GovError::Validation(vec![FieldError::new(
                "steward.json",
                format!(
                    "no Steward manifest for this version ({why}): put steward.json (a \
                     registration manifest) in the model's artifact directory, or its JSON in \
                     the version tag {MANIFEST_TAG}; missing fields: {}",
                    REQUIRED.join(", ")
                ),
            )]));
        };
        parse_object(&text, &field)
    }

    /// A version as the MLflow API shows it, with its model (for aliases and stage).
    pub async fn mlflow_version(
        &self,
        name: &str,
        version: VersionNumber,
    ) -> Result<(MlflowModel, ModelVersion), GovError> {
        let m = self.mlflow_model(name).await?;
        let v = m.version(version)?.clone();
        Ok((m, v))
    }

    /// Changes a version's MLflow metadata with `change`, under the version's revision: one
    /// batched read (the version, its model and the model's MLflow record: a version of a
    /// model MLflow deleted is not found) and one commit. Answers with the version as
    /// committed and its model, without the model's versions.
    async fn mlflow_change_version(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        action: &str,
        details: Value,
        change: impl Fn(&mut VersionMeta) -> Result<(), GovError>,
    ) -> Result<(MlflowModel, ModelVersion), GovError> {
        require_role(
            caller,
            &[Role::Developer, Role::ReleaseManager],
            "changing a model version's MLflow metadata",
        )?;
        let name = ModelName::parse(name)?;
        for attempt in 0..4 {
            let mut f = self
                .registry
                .get_many(&[
                    Key::Version(name.clone(), version),
                    Key::Model(name.clone()),
                    Key::RegisteredModel(name.clone()),
                ])
                .await?;
            let m = MlflowModel::take(&mut f, &name).shown()?;
            let mut v = f
                .versions
                .remove(&(name.clone(), version))
                .ok_or_else(|| not_found_version(&name, version))?;
            let prev = v.revision;
            let mut meta = v.mlflow.clone().unwrap_or_else(|| VersionMeta {
                source: v.artifact.uri.clone(),
                ..VersionMeta::default()
            });
            change(&mut meta)?;
            meta.updated_at = Some(self.now());
            v.mlflow = Some(meta);
            v.revision += 1;
            let commit = Commit {
                puts: vec![Put::Version(v.clone(), Expect::Revision(prev))],
                audit: vec![self.draft(
                    caller,
                    action,
                    Some(&name),
                    Some(version),
                    details.clone(),
                )],
                ..Commit::default()
            };
            match self.registry.commit(commit).await {
                Ok(_) => return Ok((m, v)),
                Err(StoreError::Conflict(_)) => self.back_off(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GovError::Contended(format!(
            "version {version} of {name} is being changed concurrently; retry"
        )))
    }

    pub async fn mlflow_update_version(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        description: &str,
    ) -> Result<(MlflowModel, ModelVersion), GovError> {
        check_text("description", description, MAX_DESCRIPTION)?;
        let details = json!({"description": description});
        let (mut m, v) = self
            .mlflow_change_version(
                caller,
                name,
                version,
                "mlflow.version.updated",
                details,
                |m| {
                    m.description = description.to_owned();
                    Ok(())
                },
            )
            .await?;
        // The answer is the version as `model-versions/get` shows it: its staging aliases
        // need every version of the model (one query, after the commit).
        m.versions = self.registry.versions(&m.name).await?;
        Ok((m, v))
    }

    /// Sets a version tag; a lineage tag may only be set to the value it already has.
    /// Answers with the version as committed (`model-versions/set-tag` answers nothing else).
    pub async fn mlflow_set_version_tag(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        key: &str,
        value: &str,
    ) -> Result<ModelVersion, GovError> {
        let key = TagKey::parse("key", key)?;
        crate::mlflow::check_tag_value("value", value)?;
        let details = json!({"key": key, "value": value});
        self.mlflow_change_version(
            caller,
            name,
            version,
            "mlflow.version.tag_set",
            details,
            |m| {
                if is_lineage_tag(key.as_str())
                    && m.tags.get(&key).map(String::as_str) != Some(value)
                {
                    return Err(lineage_refusal(&key));
                }
                m.tags.insert(key.clone(), value.to_owned());
                Ok(())
            },
        )
        .await
        .map(|(_, v)| v)
    }

    /// Removes a version tag (never a lineage one); answers with the version as committed.
    pub async fn mlflow_delete_version_tag(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        key: &str,
    ) -> Result<ModelVersion, GovError> {
        let key = TagKey::parse("key", key)?;
        if is_lineage_tag(key.as_str()) {
            return Err(lineage_refusal(&key));
        }
        let details = json!({"key": key});
        self.mlflow_change_version(
            caller,
            name,
            version,
            "mlflow.version.tag_deleted",
            details,
            |m| {
                m.tags.remove(&key).map(|_| ()).ok_or_else(|| {
                    GovError::NotFound(format!("version {version} has no tag {}", key.as_str()))
                })
            },
        )
        .await
        .map(|(_, v)| v)
    }

    /// `model-versions/delete`: retires the version (Steward keeps every version it
    /// registered); refused while it serves production. Already retired is a no-op.
    pub async fn mlflow_delete_version(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
    ) -> Result<(), GovError> {
        let (m, v) = self.mlflow_version(name, version).await?;
        if m.stage_of(&v) == MlflowStage::Production {
            return Err(GovError::Policy(vec![format!(
                "version {version} of {name} serves production: roll back or deploy another \
                 version before deleting it"
            )]));
        }
        if v.retirement.is_some() {
            return Ok(());
        }
        self.retire(
            caller,
            name,
            version,
            "deleted through the MLflow API",
            None,
        )
        .await
        .map(|_| ())
    }

    /// `model-versions/transition-stage`: Staging and Production deploy (every rule of a
    /// deployment applies; already there is a no-op), Archived retires, None is refused.
    pub async fn mlflow_transition_stage(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        stage: &str,
    ) -> Result<(MlflowModel, ModelVersion), GovError> {
        let target = MlflowStage::parse(stage).ok_or_else(|| {
            GovError::field(
                "stage",
                format!("{stage:?} is not a stage: use None, Staging, Production or Archived"),
            )
        })?;
        let (m, v) = self.mlflow_version(name, version).await?;
        let current = m.stage_of(&v);
        if current != target {
            match target {
                MlflowStage::Staging => {
                    self.deploy(caller, name, version, Environment::Staging, None)
                        .await?;
                }
                MlflowStage::Production => {
                    self.deploy(caller, name, version, Environment::Production, None)
                        .await?;
                }
                MlflowStage::Archived => self.mlflow_delete_version(caller, name, version).await?,
                MlflowStage::None => {
                    return Err(GovError::Policy(vec![format!(
                        "version {version} is in {}; Steward's lifecycle does not move a \
                         version back to None",
                        current.as_str()
                    )]))
                }
            }
        }
        self.mlflow_version(name, version).await
    }
}

fn lineage_refusal(key: &TagKey) -> GovError {
    GovError::Policy(vec![format!(
        "tag {} is lineage, fixed when the version was registered",
        key.as_str()
    )])
}

fn parse_object(bytes: &[u8], field: &str) -> Result<Map<String, Value>, GovError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(GovError::field(
            field,
            "must be a JSON object (a registration manifest)",
        )),
        Err(e) => Err(GovError::field(field, format!("is not valid JSON: {e}"))),
    }
}

/// The manifest with what MLflow knows filled in where the manifest is silent: the artifact
/// URI (the source), the description, the training job (the run), the code (git tags). Every
/// field still missing is named at once.
fn fill_manifest(
    mut m: Map<String, Value>,
    input: &MlflowVersionInput,
    tags: &[(TagKey, String)],
) -> Result<Value, GovError> {
    let tag = |k: &str| {
        tags.iter()
            .find(|(t, _)| t.as_str() == k)
            .map(|(_, v)| v.clone())
    };
    if !m.contains_key("description") && !input.description.is_empty() {
        m.insert("description".into(), json!(input.description));
    }
    if let Some(Value::Object(a)) = m.get_mut("artifact") {
        a.entry("uri").or_insert_with(|| json!(input.source));
    }
    if let Some(Value::Object(l)) = m.get_mut("lineage") {
        if !input.run_id.is_empty() {
            l.entry("training_job")
                .or_insert_with(|| json!(input.run_id));
        }
        if let (Some(commit), Some(repo)) = (
            tag("mlflow.source.git.commit"),
            tag("mlflow.source.git.repoURL"),
        ) {
            l.entry("code")
                .or_insert_with(|| json!({"repository": repo, "commit": commit}));
        }
    }
    let missing: Vec<FieldError> = REQUIRED
        .iter()
        .filter(|f| !m.contains_key(**f))
        .map(|f| {
            FieldError::new(
                *f,
                "is required (in steward.json or the steward.manifest tag)",
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(GovError::Validation(missing));
    }
    Ok(Value::Object(m))
}
