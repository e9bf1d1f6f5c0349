//! The MLflow Model Registry's registered-model operations, as views of Steward's lifecycle.
//!
//! Invariants:
//! - Governance state is never written here or in `mlflow_aliases.rs`: a reserved alias (the
//!   policy's production and staging aliases) is set only by deploying through
//!   [`Governance::deploy`], which applies
//!   every rule of a deployment; it is read from the model's production version or the
//!   version in staging, never stored. Deleting one is refused.
//! - Free aliases, tags and descriptions live on the [`RegisteredModel`] record, each change
//!   committed under the record's revision with an `mlflow.*` audit event naming the caller.
//! - A model with versions keeps its name (the audit log names it) and is not deleted while
//!   any version is unretired; a model that serves production is never deleted.
//! - Every read answers from at most two store requests: the model and its MLflow record in
//!   one batch, then the model's versions. A change of the MLflow record is that batch and
//!   one commit: what it checks of the versions (that one exists, that all are retired) the
//!   model record says, as Steward numbers versions from 1 and never deletes one.

use std::collections::BTreeMap;

use super::*;
use crate::mlflow::{check_tag_value, check_text, RegisteredModel, TagKey, MAX_DESCRIPTION};

/// How many times an MLflow metadata change retries a lost race before answering 409.
const ATTEMPTS: usize = 4;

/// A registered model as the MLflow API shows it: Steward's model (once it has a version),
/// its MLflow record (once the MLflow API touched it) and, where read, its versions.
#[derive(Debug, Clone, PartialEq)]
pub struct MlflowModel {
    pub name: ModelName,
    pub model: Option<Model>,
    pub registered: Option<RegisteredModel>,
    pub versions: Vec<ModelVersion>,
}

/// A version's MLflow stage, derived from Steward's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlflowStage {
    None,
    Staging,
    Production,
    Archived,
}

impl MlflowStage {
    pub fn as_str(self) -> &'static str {
        match self {
            MlflowStage::None => "None",
            MlflowStage::Staging => "Staging",
            MlflowStage::Production => "Production",
            MlflowStage::Archived => "Archived",
        }
    }

    /// MLflow's stage names, case-insensitively as its server reads them.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::None, Self::Staging, Self::Production, Self::Archived]
            .into_iter()
            .find(|x| x.as_str().eq_ignore_ascii_case(s))
    }
}

impl MlflowModel {
    pub fn description(&self) -> &str {
        match (&self.registered, &self.model) {
            (Some(r), _) if !r.description.is_empty() => &r.description,
            (_, Some(m)) => &m.description,
            _ => "",
        }
    }

    pub fn tags(&self) -> Vec<(&str, &str)> {
        self.registered
            .iter()
            .flat_map(|r| r.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect()
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        match (&self.model, &self.registered) {
            (_, Some(r)) => r.created_at,
            (Some(m), None) => m.created_at,
            (None, None) => DateTime::<Utc>::MIN_UTC,
        }
    }

    /// The latest change Steward knows of: the MLflow record's, or the newest version's.
    pub fn updated_at(&self) -> DateTime<Utc> {
        let versions = self.versions.iter().map(|v| v.registered_at);
        let record = self.registered.iter().map(|r| r.updated_at);
        versions
            .chain(record)
            .max()
            .unwrap_or_else(|| self.created_at())
    }

    pub fn created_by(&self) -> Option<&PrincipalId> {
        match (&self.registered, &self.model) {
            (Some(r), _) => Some(&r.created_by),
            (None, Some(m)) => Some(&m.created_by),
            _ => None,
        }
    }

    /// Where version `v` stands in MLflow's terms: serving production, in staging, archived
    /// (retired, or replaced in production) or none of them.
    pub fn stage_of(&self, v: &ModelVersion) -> MlflowStage {
        let serving = self
            .model
            .as_ref()
            .is_some_and(|m| m.production_version == Some(v.version));
        match v.stage {
            _ if serving => MlflowStage::Production,
            Stage::Retired | Stage::Production => MlflowStage::Archived,
            Stage::Staging => MlflowStage::Staging,
            Stage::Development => MlflowStage::None,
        }
    }

    /// Every alias with the version it names: the reserved ones (from the lifecycle) first,
    /// then the free ones. The staging aliases need the versions read.
    pub fn aliases(&self, policy: &Policy) -> Vec<(String, VersionNumber)> {
        let mut out = Vec::new();
        if let Some(p) = self.model.as_ref().and_then(|m| m.production_version) {
            out.extend(
                policy
                    .mlflow
                    .production_aliases
                    .iter()
                    .map(|a| (a.clone(), p)),
            );
        }
        let staged = self
            .versions
            .iter()
            .filter(|v| self.stage_of(v) == MlflowStage::Staging)
            .map(|v| v.version)
            .max();
        if let Some(s) = staged {
            out.extend(policy.mlflow.staging_aliases.iter().map(|a| (a.clone(), s)));
        }
        if let Some(r) = &self.registered {
            out.extend(r.aliases.iter().map(|(a, v)| (a.as_str().to_owned(), *v)));
        }
        out
    }

    /// The aliases that name version `v`.
    pub fn aliases_of(&self, policy: &Policy, v: VersionNumber) -> Vec<String> {
        self.aliases(policy)
            .into_iter()
            .filter(|(_, n)| *n == v)
            .map(|(a, _)| a)
            .collect()
    }

    pub fn version(&self, v: VersionNumber) -> Result<&ModelVersion, GovError> {
        self.versions
            .iter()
            .find(|x| x.version == v)
            .ok_or_else(|| not_found_version(&self.name, v))
    }

    /// 404 unless Steward has version `v`, read from the model record alone: versions are
    /// numbered from 1 and never deleted, so the latest number names every one.
    pub(super) fn has_version(&self, v: VersionNumber) -> Result<(), GovError> {
        match &self.model {
            Some(m) if v <= m.latest_version => Ok(()),
            _ => Err(not_found_version(&self.name, v)),
        }
    }

    /// The versions not retired, from the model record alone (a retirement records the
    /// version in `retired_versions` in the commit that retires it).
    fn unretired_versions(&self) -> Vec<VersionNumber> {
        let Some(m) = &self.model else {
            return vec![];
        };
        (1..=m.latest_version.get())
            .filter_map(|n| VersionNumber::new(n).ok())
            .filter(|v| !m.retired_versions.contains(v))
            .collect()
    }

    /// `name`'s model and MLflow record out of a batch that read both, without versions.
    pub(crate) fn take(f: &mut Fetched, name: &ModelName) -> Self {
        MlflowModel {
            name: name.clone(),
            model: f.models.remove(name),
            registered: f.registered_models.remove(name),
            versions: vec![],
        }
    }

    /// `self` if the MLflow API can show it; 404 when neither Steward nor MLflow knows it, or
    /// MLflow deleted it (its record is a tombstone).
    pub(crate) fn shown(self) -> Result<Self, GovError> {
        let deleted = self.registered.as_ref().is_some_and(|r| r.deleted);
        if deleted || (self.model.is_none() && self.registered.is_none()) {
            return Err(GovError::NotFound(format!(
                "registered model {} does not exist",
                self.name
            )));
        }
        Ok(self)
    }

    /// The record a metadata change starts from: the stored one, or a fresh one for a model
    /// the MLflow API has not touched yet.
    fn record_or_new(&self, caller: &Caller, now: DateTime<Utc>) -> (RegisteredModel, Expect) {
        match &self.registered {
            Some(r) => (r.clone(), Expect::Revision(r.revision)),
            None => (
                RegisteredModel {
                    name: self.name.clone(),
                    description: String::new(),
                    tags: BTreeMap::new(),
                    aliases: BTreeMap::new(),
                    created_by: self
                        .model
                        .as_ref()
                        .map_or_else(|| caller.id.clone(), |m| m.created_by.clone()),
                    created_at: self.model.as_ref().map_or(now, |m| m.created_at),
                    updated_at: now,
                    deleted: false,
                    revision: 0,
                },
                Expect::Absent,
            ),
        }
    }
}

/// Parses `(key, value)` tags as the MLflow API sends them, naming the one at fault.
pub fn parse_tags(
    field: &str,
    tags: &[(String, String)],
) -> Result<Vec<(TagKey, String)>, GovError> {
    let mut out = Vec::with_capacity(tags.len());
    for (i, (k, v)) in tags.iter().enumerate() {
        let key = TagKey::parse(&format!("{field}[{i}].key"), k)?;
        check_tag_value(&format!("{field}[{i}].value"), v)?;
        out.push((key, v.clone()));
    }
    Ok(out)
}

fn parse_description(d: &str) -> Result<String, GovError> {
    check_text("description", d, MAX_DESCRIPTION)?;
    Ok(d.to_owned())
}

pub(super) fn developer(caller: &Caller, action: &str) -> Result<(), GovError> {
    require_role(caller, &[Role::Developer, Role::ReleaseManager], action)
}

impl Governance {
    /// The model `name` as the MLflow API shows it, with its versions: 404 when neither
    /// Steward nor MLflow knows it, or MLflow deleted it.
    pub async fn mlflow_model(&self, name: &str) -> Result<MlflowModel, GovError> {
        let name = ModelName::parse(name)?;
        let mut m = self.mlflow_record(&name).await?;
        if m.model.is_some() {
            m.versions = self.registry.versions(&name).await?;
        }
        Ok(m)
    }

    /// The model and its MLflow record, in one batched read; 404 when there is neither (or
    /// only a tombstone).
    async fn mlflow_record(&self, name: &ModelName) -> Result<MlflowModel, GovError> {
        self.mlflow_record_or_absent(name).await?.shown()
    }

    pub(crate) async fn mlflow_record_or_absent(
        &self,
        name: &ModelName,
    ) -> Result<MlflowModel, GovError> {
        let mut f = self
            .registry
            .get_many(&[Key::Model(name.clone()), Key::RegisteredModel(name.clone())])
            .await?;
        Ok(MlflowModel::take(&mut f, name))
    }

    /// Every model the MLflow API can show (Steward's models and MLflow-only ones), by name,
    /// without their versions; deleted ones left out.
    pub async fn mlflow_models(&self) -> Result<Vec<MlflowModel>, GovError> {
        let mut by_name: BTreeMap<ModelName, MlflowModel> = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .registry
                .list_models(&ModelFilter::default(), cursor.as_deref(), 500)
                .await?;
            for m in page.items {
                by_name.insert(
                    m.name.clone(),
                    MlflowModel {
                        name: m.name.clone(),
                        model: Some(m),
                        registered: None,
                        versions: vec![],
                    },
                );
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        for r in self.registry.registered_models().await? {
            let entry = by_name
                .entry(r.name.clone())
                .or_insert_with(|| MlflowModel {
                    name: r.name.clone(),
                    model: None,
                    registered: None,
                    versions: vec![],
                });
            entry.registered = Some(r);
        }
        Ok(by_name
            .into_values()
            .filter(|m| !m.registered.as_ref().is_some_and(|r| r.deleted))
            .collect())
    }

    /// `registered-models/create`: a model MLflow knows before its first version. Refused as
    /// a conflict when the name is taken (by Steward or MLflow).
    pub async fn mlflow_create_model(
        &self,
        caller: &Caller,
        name: &str,
        description: &str,
        tags: &[(String, String)],
    ) -> Result<MlflowModel, GovError> {
        developer(caller, "creating a registered model")?;
        let name = ModelName::parse(name)?;
        let description = parse_description(description)?;
        let tags = parse_tags("tags", tags)?;
        let current = self.mlflow_record_or_absent(&name).await?;
        let tombstone = current.registered.as_ref().filter(|r| r.deleted);
        if current.model.is_some() || (current.registered.is_some() && tombstone.is_none()) {
            return Err(GovError::Conflict(format!(
                "registered model (name={name}) already exists"
            )));
        }
        let now = self.now();
        let expect = tombstone.map_or(Expect::Absent, |t| Expect::Revision(t.revision));
        let record = RegisteredModel {
            name: name.clone(),
            description,
            tags: tags.into_iter().collect(),
            aliases: BTreeMap::new(),
            created_by: caller.id.clone(),
            created_at: now,
            updated_at: now,
            deleted: false,
            revision: tombstone.map_or(1, |t| t.revision + 1),
        };
        let details = json!({"description": record.description, "tags": record.tags});
        self.registry
            .commit(Commit {
                puts: vec![Put::RegisteredModel(record.clone(), expect)],
                audit: vec![self.draft(caller, "mlflow.model.created", Some(&name), None, details)],
                ..Commit::default()
            })
            .await
            .map_err(|e| match e {
                // A concurrent create took the name first.
                StoreError::Conflict(_) => {
                    GovError::Conflict(format!("registered model (name={name}) already exists"))
                }
                other => other.into(),
            })?;
        Ok(MlflowModel {
            name,
            model: None,
            registered: Some(record),
            versions: vec![],
        })
    }

    /// Changes the MLflow record of `name` with `change`, under its revision (retrying a lost
    /// race), audited as `action` with `details`: one batched read of the model and its
    /// record, one commit. `change` and the answer see the model without its versions.
    pub(crate) async fn mlflow_change(
        &self,
        caller: &Caller,
        name: &ModelName,
        action: &str,
        details: Value,
        change: impl Fn(&MlflowModel, &mut RegisteredModel) -> Result<(), GovError>,
    ) -> Result<MlflowModel, GovError> {
        for attempt in 0..ATTEMPTS {
            let mut m = self.mlflow_record(name).await?;
            let now = self.now();
            let (mut record, expect) = m.record_or_new(caller, now);
            change(&m, &mut record)?;
            record.updated_at = now;
            record.revision += 1;
            let commit = Commit {
                puts: vec![Put::RegisteredModel(record.clone(), expect)],
                audit: vec![self.draft(caller, action, Some(name), None, details.clone())],
                ..Commit::default()
            };
            match self.registry.commit(commit).await {
                Ok(_) => {
                    m.registered = Some(record);
                    return Ok(m);
                }
                Err(StoreError::Conflict(_)) => self.back_off(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(GovError::Contended(format!(
            "registered model {name} is being changed concurrently; retry"
        )))
    }

    pub async fn mlflow_update_model(
        &self,
        caller: &Caller,
        name: &str,
        description: &str,
    ) -> Result<MlflowModel, GovError> {
        developer(caller, "updating a registered model")?;
        let name = ModelName::parse(name)?;
        let description = parse_description(description)?;
        let details = json!({"description": description});
        self.mlflow_change(caller, &name, "mlflow.model.updated", details, |_, r| {
            r.description = description.clone();
            Ok(())
        })
        .await
    }

    pub async fn mlflow_set_model_tag(
        &self,
        caller: &Caller,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<MlflowModel, GovError> {
        developer(caller, "tagging a registered model")?;
        let name = ModelName::parse(name)?;
        let key = TagKey::parse("key", key)?;
        check_tag_value("value", value)?;
        let details = json!({"key": key, "value": value});
        self.mlflow_change(caller, &name, "mlflow.model.tag_set", details, |_, r| {
            r.tags.insert(key.clone(), value.to_owned());
            Ok(())
        })
        .await
    }

    pub async fn mlflow_delete_model_tag(
        &self,
        caller: &Caller,
        name: &str,
        key: &str,
    ) -> Result<MlflowModel, GovError> {
        developer(caller, "removing a registered model's tag")?;
        let name = ModelName::parse(name)?;
        let key = TagKey::parse("key", key)?;
        let details = json!({"key": key});
        self.mlflow_change(
            caller,
            &name,
            "mlflow.model.tag_deleted",
            details,
            |_, r| {
                r.tags.remove(&key).map(|_| ()).ok_or_else(|| {
                    GovError::NotFound(format!(
                        "registered model {} has no tag {}",
                        r.name,
                        key.as_str()
                    ))
                })
            },
        )
        .await
    }

    /// `registered-models/rename`: only a model MLflow alone knows (no version yet) may be
    /// renamed; Steward's audit log names a model with versions for good.
    pub async fn mlflow_rename_model(
        &self,
        caller: &Caller,
        name: &str,
        new_name: &str,
    ) -> Result<MlflowModel, GovError> {
        developer(caller, "renaming a registered model")?;
        let name = ModelName::parse(name)?;
        let new_name = ModelName::parse(new_name).map_err(|e| GovError::from(e.at("new_name")))?;
        // Both names in one batch.
        let mut f = self
            .registry
            .get_many(&[
                Key::Model(name.clone()),
                Key::RegisteredModel(name.clone()),
                Key::Model(new_name.clone()),
                Key::RegisteredModel(new_name.clone()),
            ])
            .await?;
        let old = MlflowModel::take(&mut f, &name).shown()?;
        if old.model.is_some() {
            return Err(GovError::Policy(vec![format!(
                "model {name} has versions in Steward and keeps its name: the audit log names it"
            )]));
        }
        let target = MlflowModel::take(&mut f, &new_name);
        let target_tomb = target.registered.as_ref().filter(|r| r.deleted);
        if target.model.is_some() || (target.registered.is_some() && target_tomb.is_none()) {
            return Err(GovError::Conflict(format!(
                "registered model (name={new_name}) already exists"
            )));
        }
        let now = self.now();
        let mut from = old
            .registered
            .clone()
            .ok_or_else(|| not_found_model(&name))?;
        let mut to = from.clone();
        to.name = new_name.clone();
        to.updated_at = now;
        to.revision = target_tomb.map_or(1, |t| t.revision + 1);
        let to_expect = target_tomb.map_or(Expect::Absent, |t| Expect::Revision(t.revision));
        let from_expect = Expect::Revision(from.revision);
        from.deleted = true;
        from.updated_at = now;
        from.revision += 1;
        let details = json!({"new_name": new_name});
        self.registry
            .commit(Commit {
                puts: vec![
                    Put::RegisteredModel(from, from_expect),
                    Put::RegisteredModel(to.clone(), to_expect),
                ],
                audit: vec![self.draft(caller, "mlflow.model.renamed", Some(&name), None, details)],
                ..Commit::default()
            })
            .await
            .map_err(lost_race)?;
        Ok(MlflowModel {
            name: new_name,
            model: None,
            registered: Some(to),
            versions: vec![],
        })
    }

    /// `registered-models/delete`: refused while the model serves production or has any
    /// version that is not retired (retire them first: Steward never deletes a version).
    pub async fn mlflow_delete_model(&self, caller: &Caller, name: &str) -> Result<(), GovError> {
        developer(caller, "deleting a registered model")?;
        let name = ModelName::parse(name)?;
        let details = json!({});
        self.mlflow_change(caller, &name, "mlflow.model.deleted", details, |m, r| {
            if let Some(p) = m.model.as_ref().and_then(|m| m.production_version) {
                return Err(GovError::Policy(vec![format!(
                    "model {name} serves production (version {p}): it cannot be deleted"
                )]));
            }
            let live: Vec<String> = m
                .unretired_versions()
                .iter()
                .map(ToString::to_string)
                .collect();
            if !live.is_empty() {
                return Err(GovError::Policy(vec![format!(
                    "model {name} has versions that are not retired ({}): delete (retire) them first",
                    live.join(", ")
                )]));
            }
            r.deleted = true;
            Ok(())
        })
        .await
        .map(|_| ())
    }
}
