//! Deployment.
//!
//! Invariants: only a version approved for an environment (and, for production, meeting the
//! production rules now and, when change control is attached, with its change request
//! approved) is deployed there; the approved change's number is in the audit event's details
//! (`change`); every production change is recorded in the model's production history (which
//! `rollback.rs` walks back through), and deploying a version again through its own
//! promotion makes it a rollback target once more.

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
        let mut reasons = self.gate_reasons(&v, env);
        let change = match env {
            Environment::Production => self.change_check(&name, version).await,
            Environment::Staging => changes::ChangeCheck::NotRequired,
        };
        reasons.extend(change.reason().map(str::to_owned));
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
            // Deployed again through its own promotion: a rollback target once more.
            model.rolled_back_from.retain(|v| *v != version);
            model.revision += 1;
            puts.push(Put::Model(model, Expect::Revision(mprev)));
            puts.push(Put::ProductionChange(ProductionChange {
                name: name.clone(),
                at: now,
                version: Some(version),
                cause: "deployment".into(),
            }));
        }
        let mut details = json!({"environment": env, "previous_production_version": previous});
        if let Some(number) = change.number() {
            details["change"] = json!(number);
        }
        let commit = Commit {
            puts,
            audit: vec![self.draft(
                caller,
                "version.deployed",
                Some(&name),
                Some(version),
                details,
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
        self.registry.commit(commit).await.map_err(lost_race)?;
        Ok(v)
    }
}
