//! Deployment and rollback.
//!
//! Invariants: only a version approved for an environment (and, for production, meeting the
//! production rules now) is deployed there; production changes are recorded in the model's
//! production history, and a rollback walks back through it to the latest version that is
//! neither current nor retired. Concurrent rollbacks of one production state change it once
//! (the model's expected revision).

use super::*;

impl Governance {
    /// Deploys an approved version to `env`.
    pub async fn deploy(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        env: Environment,
        expected: Option<u64>,
    ) -> Result<ModelVersion, GovError> {
        let roles: &[Role] = match env {
            Environment::Staging => &[Role::Developer, Role::ReleaseManager],
            Environment::Production => &[Role::ReleaseManager],
        };
        require_role(caller, roles, &format!("deploying to {env}"))?;
        let name = ModelName::parse(name)?;
        let (mut v, mut model) = self.load_version_and_model(&name, version).await?;
        expect_revision(v.revision, expected, "the version")?;
        match env {
            Environment::Production if model.production_version == Some(version) => {
                return Err(GovError::Conflict(format!(
                    "version {version} already serves production"
                )))
            }
            Environment::Staging if v.stage != Stage::Development => {
                return Err(GovError::Conflict(format!(
                    "version {version} is in {}; it cannot go back to staging",
                    v.stage
                )))
            }
            _ => {}
        }
        let reasons = self.gate_reasons(&v, env);
        if !reasons.is_empty() {
            return Err(GovError::Policy(reasons));
        }
        let now = self.now();
        let prev = v.revision;
        v.stage = env.stage();
        v.deployments.push(DeploymentRecord {
            environment: env,
            deployed_by: caller.id.clone(),
            deployed_at: now,
        });
        v.revision += 1;
        let mut puts = vec![Put::Version(v.clone(), Expect::Revision(prev))];
        let mut previous = None;
        if env == Environment::Production {
            let mprev = model.revision;
            previous = model.production_version;
            model.production_version = Some(version);
            model.production_history.push(version);
            model.revision += 1;
            puts.push(Put::Model(model, Expect::Revision(mprev)));
            puts.push(Put::ProductionChange(ProductionChange {
                name: name.clone(),
                at: now,
                version: Some(version),
                cause: "deployment".into(),
            }));
        }
        let commit = Commit {
            puts,
            audit: vec![self.draft(
                &caller.id,
                "version.deployed",
                Some(&name),
                Some(version),
                json!({"environment": env, "previous_production_version": previous}),
            )],
            events: vec![Self::event(ModelDeployed {
                name: name.clone(),
                version,
                environment: env,
                previous_version: previous,
                deployed_by: caller.id.clone(),
            })?],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        Ok(v)
    }

    /// The version that served production before the current one, if it can serve again:
    /// the latest entry of the model's production history that is neither the current version
    /// nor retired.
    pub(super) fn rollback_target(model: &Model) -> Option<VersionNumber> {
        let current = model.production_version?;
        model
            .production_history
            .iter()
            .rev()
            .copied()
            .find(|v| *v != current && !model.retired_versions.contains(v))
    }

    pub(super) fn rollback_puts(
        &self,
        model: &Model,
        to: VersionNumber,
        cause: &str,
    ) -> (Vec<Put>, Option<VersionNumber>) {
        let mut m = model.clone();
        let from = m.production_version;
        m.production_version = Some(to);
        m.production_history.push(to);
        m.revision += 1;
        (
            vec![
                Put::Model(m, Expect::Revision(model.revision)),
                Put::ProductionChange(ProductionChange {
                    name: model.name.clone(),
                    at: self.now(),
                    version: Some(to),
                    cause: cause.into(),
                }),
            ],
            from,
        )
    }

    /// Puts the previous production version back into production.
    pub async fn rollback(
        &self,
        caller: &Caller,
        name: &str,
        reason: &str,
    ) -> Result<Model, GovError> {
        require_role(
            caller,
            &[Role::Operator, Role::ReleaseManager],
            "rolling back",
        )?;
        let name = ModelName::parse(name)?;
        let reason = non_empty("reason", reason)?;
        let model = self.load_model(&name).await?;
        let Some(current) = model.production_version else {
            return Err(GovError::Conflict(format!(
                "{name} has no version in production"
            )));
        };
        let Some(to) = Self::rollback_target(&model) else {
            return Err(GovError::Conflict(format!(
                "{name} has no earlier production version to roll back to"
            )));
        };
        let (puts, _) = self.rollback_puts(&model, to, "rollback");
        // The model as committed: answering with it costs no second read.
        let committed = puts.iter().find_map(|p| match p {
            Put::Model(m, _) => Some(m.clone()),
            _ => None,
        });
        let commit = Commit {
            puts,
            audit: vec![self.draft(
                &caller.id,
                "model.rolled_back",
                Some(&name),
                Some(to),
                json!({"from": current, "to": to, "reason": reason, "automatic": false}),
            )],
            events: vec![Self::event(ModelRolledBack {
                name: name.clone(),
                from_version: current,
                to_version: to,
                reason: reason.clone(),
                automatic: false,
                incident_id: None,
            })?],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(conflict)?;
        committed.ok_or_else(|| GovError::Store(StoreError::backend_msg("rollback built no model")))
    }
}
