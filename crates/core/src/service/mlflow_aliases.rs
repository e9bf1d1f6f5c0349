//! MLflow aliases on registered models: reserved ones are deployments, free ones a record.
//!
//! Invariants: setting a reserved alias (the policy's production and staging aliases) is
//! [`Governance::deploy`] with every rule of a deployment (already there is a no-op); it is
//! never stored and never deleted. A free alias names an existing version of the model and is
//! kept on its [`RegisteredModel`](crate::mlflow::RegisteredModel) record, each change audited.

use super::mlflow_models::developer;
use super::*;
use crate::mlflow::AliasName;

impl Governance {
    /// `registered-models/alias` (POST): a reserved alias deploys the version to its
    /// environment (every rule of a deployment applies; already there is a no-op); a free
    /// alias names any version of the model.
    pub async fn mlflow_set_alias(
        &self,
        caller: &Caller,
        name: &str,
        alias: &str,
        version: VersionNumber,
    ) -> Result<(), GovError> {
        let name = ModelName::parse(name)?;
        let alias = AliasName::parse("alias", alias)?;
        if let Some(env) = self.policy.mlflow.environment(alias.as_str()) {
            let m = self.mlflow_model(name.as_ref()).await?;
            let v = m.version(version)?;
            let there = match env {
                Environment::Production => m.stage_of(v) == MlflowStage::Production,
                Environment::Staging => m.stage_of(v) == MlflowStage::Staging,
            };
            if !there {
                self.deploy(caller, name.as_ref(), version, env, None)
                    .await?;
            }
            return Ok(());
        }
        developer(caller, "setting an alias")?;
        let details = json!({"alias": alias, "version": version});
        self.mlflow_change(caller, &name, "mlflow.alias.set", details, |m, r| {
            m.has_version(version)?;
            r.aliases.insert(alias.clone(), version);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// `registered-models/alias` (DELETE): a free alias is removed; a reserved one is
    /// Steward's deployment record and cannot be.
    pub async fn mlflow_delete_alias(
        &self,
        caller: &Caller,
        name: &str,
        alias: &str,
    ) -> Result<(), GovError> {
        let name = ModelName::parse(name)?;
        let alias = AliasName::parse("alias", alias)?;
        if let Some(env) = self.policy.mlflow.environment(alias.as_str()) {
            return Err(GovError::Policy(vec![format!(
                "alias {alias} is Steward's record of what serves {env}: roll back or deploy \
                 another version instead of deleting it"
            )]));
        }
        developer(caller, "deleting an alias")?;
        let details = json!({"alias": alias});
        self.mlflow_change(caller, &name, "mlflow.alias.deleted", details, |_, r| {
            r.aliases.remove(&alias);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// The version an alias names (reserved or free): 404 when it names none.
    pub async fn mlflow_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<(MlflowModel, VersionNumber), GovError> {
        let m = self.mlflow_model(name).await?;
        let alias = AliasName::parse("alias", alias)?;
        let found = m
            .aliases(&self.policy)
            .into_iter()
            .find(|(a, _)| a == alias.as_str())
            .map(|(_, v)| v)
            .ok_or_else(|| {
                GovError::NotFound(format!("registered model {} has no alias {alias}", m.name))
            })?;
        Ok((m, found))
    }
}
