//! Retirement: requests, confirmation (where the workflows port confirms retirements) and the
//! retirement itself.
//!
//! Invariants: a retirement records the reason and the replacement; it is refused while the
//! version serves production without an approved replacement, while active versions depend on
//! it, or while a promotion of it is in review. The requester never confirms its own request.
//! What may have changed between request and archive is checked again at archive time.

use super::*;

/// What a retirement request did.
#[derive(Debug, Clone, PartialEq)]
pub enum RetireOutcome {
    /// The version is retired.
    Retired(ModelVersion),
    /// The request is recorded (`pending_retirement`) and its workflow started.
    Pending(ModelVersion),
}

impl RetireOutcome {
    /// The version, retired or with its pending retirement.
    pub fn into_version(self) -> ModelVersion {
        match self {
            RetireOutcome::Retired(v) | RetireOutcome::Pending(v) => v,
        }
    }
}

/// What retiring a version involves, read in one batch.
struct RetirementPlan {
    version: ModelVersion,
    model: Model,
    replacement: Option<ModelVersion>,
    serving: bool,
    /// Why it may not be retired now; empty when it may.
    reasons: Vec<String>,
}

impl Governance {
    /// Retires a version, recording why and what replaces it. Where the workflows port
    /// confirms retirements (AWS), this only records the request and starts the retirement
    /// workflow; the version is retired when a confirmer approves and the workflow archives it.
    pub async fn retire(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        reason: &str,
        replacement: Option<VersionNumber>,
    ) -> Result<RetireOutcome, GovError> {
        require_role(
            caller,
            &[Role::Developer, Role::ReleaseManager],
            "retiring a version",
        )?;
        let name = ModelName::parse(name)?;
        let reason = non_empty("reason", reason)?;
        if replacement == Some(version) {
            return Err(GovError::field(
                "replacement",
                "a version cannot replace itself",
            ));
        }
        let plan = self.plan_retirement(&name, version, replacement).await?;
        if !plan.reasons.is_empty() {
            return Err(GovError::Policy(plan.reasons));
        }
        if self.workflows.confirms_retirements() {
            return self
                .request_retirement(caller, plan, reason, replacement)
                .await
                .map(RetireOutcome::Pending);
        }
        self.commit_retirement(plan, &reason, replacement, caller, None)
            .await
            .map(RetireOutcome::Retired)
    }

    /// Why `version` may not be retired now (empty: it may): what the retirement workflow's
    /// dependents check asks, when the confirmation may come days after the request.
    pub async fn retirement_check(
        &self,
        name: &str,
        version: VersionNumber,
        replacement: Option<VersionNumber>,
    ) -> Result<Vec<String>, GovError> {
        let name = ModelName::parse(name)?;
        Ok(self
            .plan_retirement(&name, version, replacement)
            .await?
            .reasons)
    }

    /// Records a confirmer's decision on a version's pending retirement and tells the
    /// workflow. Only a compliance reviewer or a release manager may decide, never the
    /// requester; a refusal needs a comment and ends the request.
    pub async fn decide_retirement(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        decision: Decision,
        comment: Option<&str>,
    ) -> Result<ModelVersion, GovError> {
        require_role(
            caller,
            retirements::CONFIRMER_ROLES,
            "confirming a retirement",
        )?;
        let name = ModelName::parse(name)?;
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        if decision == Decision::Reject && comment.is_none() {
            return Err(GovError::field("comment", "a refusal must say why"));
        }
        let mut v = self.load_version(&name, version).await?;
        let Some(mut pending) = v.pending_retirement.clone() else {
            return Err(GovError::Conflict(format!(
                "no retirement of {name} version {version} is waiting for confirmation"
            )));
        };
        if pending.confirmed_by.is_some() {
            return Err(GovError::Conflict(format!(
                "retirement {} is already confirmed",
                pending.id
            )));
        }
        if pending.requested_by == caller.id {
            return Err(GovError::SeparationOfDuties(
                "the requester of a retirement cannot confirm or refuse it".into(),
            ));
        }
        let prev = v.revision;
        let now = self.now();
        let action = match decision {
            Decision::Approve => {
                pending.confirmed_by = Some(caller.id.clone());
                pending.confirmed_at = Some(now);
                v.pending_retirement = Some(pending.clone());
                "retirement.confirmed"
            }
            Decision::Reject => {
                v.pending_retirement = None;
                "retirement.refused"
            }
        };
        v.revision += 1;
        let commit = Commit {
            puts: vec![Put::Version(v.clone(), Expect::Revision(prev))],
            audit: vec![self.draft(
                caller,
                action,
                Some(&name),
                Some(version),
                json!({"retirement_id": pending.id, "comment": comment}),
            )],
            // The outbox's copy of the decision: the review inbox answers the retirement
            // workflow from it, so a failed answer below is sent again (see the AWS port).
            events: vec![Self::event(RetirementDecided {
                retirement_id: pending.id.clone(),
                name: name.clone(),
                version,
                decision,
                decided_by: caller.id.clone(),
                comment: comment.map(str::to_owned),
            })?],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(lost_race)?;
        self.workflows
            .retirement_decided(&pending, comment.filter(|_| decision == Decision::Reject))
            .await?;
        Ok(v)
    }

    /// The retirement workflow's archive step: retires the version of a confirmed request,
    /// checking again what may have changed since it was requested. Idempotent: archiving an
    /// archived request returns the retired version. When the version may no longer be
    /// retired, the request ends (audited) and the reasons are the error.
    pub async fn archive_retirement(&self, retirement_id: &str) -> Result<ModelVersion, GovError> {
        let (name, version) = parse_retirement(retirement_id)?;
        let v = self.load_version(&name, version).await?;
        if v.retirement
            .as_ref()
            .is_some_and(|r| r.request_id.as_deref() == Some(retirement_id))
        {
            return Ok(v);
        }
        let pending = match &v.pending_retirement {
            Some(p) if p.id == retirement_id && p.confirmed_by.is_some() => p.clone(),
            _ => {
                return Err(GovError::Conflict(format!(
                    "retirement {retirement_id} is not waiting to be archived"
                )))
            }
        };
        let plan = self
            .plan_retirement(&name, version, pending.replacement)
            .await?;
        if !plan.reasons.is_empty() {
            self.close_retirement(
                retirement_id,
                "refused",
                json!({"step": "Archive", "reasons": plan.reasons}),
            )
            .await?;
            return Err(GovError::Policy(plan.reasons));
        }
        // The workflow archives on the requester's behalf; how the requester authenticated is
        // in their own `retirement.requested` event.
        let on_behalf = Caller::new(pending.requested_by.clone(), Vec::new(), AuthMethod::System);
        self.commit_retirement(
            plan,
            &pending.reason,
            pending.replacement,
            &on_behalf,
            Some(&pending),
        )
        .await
    }

    /// Ends a pending retirement that its workflow ended without archiving (`outcome`:
    /// `refused`, `timed_out` or `failed`), audited as `retirement.<outcome>` by the workflow.
    /// Returns whether it was still pending (false for a repeated or late report).
    pub async fn close_retirement(
        &self,
        retirement_id: &str,
        outcome: &str,
        details: Value,
    ) -> Result<bool, GovError> {
        let (name, version) = parse_retirement(retirement_id)?;
        let mut v = self.load_version(&name, version).await?;
        if v.pending_retirement.as_ref().map(|p| p.id.as_str()) != Some(retirement_id) {
            return Ok(false);
        }
        let prev = v.revision;
        v.pending_retirement = None;
        v.revision += 1;
        let mut details = details;
        if let Value::Object(m) = &mut details {
            m.insert("retirement_id".into(), json!(retirement_id));
        }
        let commit = Commit {
            puts: vec![Put::Version(v, Expect::Revision(prev))],
            audit: vec![self.draft(
                &Caller::system("workflow"),
                &format!("retirement.{outcome}"),
                Some(&name),
                Some(version),
                details,
            )],
            events: vec![],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(lost_race)?;
        Ok(true)
    }

    /// Records a retirement request (pending until confirmed) and starts its workflow. A
    /// client repeating the pending request gets it back and the workflow start is repeated
    /// (idempotent); any other request while one is pending is a conflict.
    async fn request_retirement(
        &self,
        caller: &Caller,
        plan: RetirementPlan,
        reason: String,
        replacement: Option<VersionNumber>,
    ) -> Result<ModelVersion, GovError> {
        let mut v = plan.version;
        if let Some(p) = &v.pending_retirement {
            if p.reason == reason
                && p.replacement == replacement
                && p.requested_by == caller.id
                && p.confirmed_by.is_none()
            {
                self.workflows.retirement_requested(&v, p).await?;
                return Ok(v);
            }
            return Err(GovError::Conflict(format!(
                "retirement {} of this version is pending; it must end first",
                p.id
            )));
        }
        let name = v.name.clone();
        let pending = PendingRetirement {
            id: RetirementId::new(&name, v.version, &self.ids.id("rt"))?.to_string(),
            reason: reason.clone(),
            replacement,
            requested_by: caller.id.clone(),
            requested_at: self.now(),
            confirmed_by: None,
            confirmed_at: None,
        };
        let prev = v.revision;
        v.pending_retirement = Some(pending.clone());
        v.revision += 1;
        let commit = Commit {
            puts: vec![Put::Version(v.clone(), Expect::Revision(prev))],
            audit: vec![self.draft(
                caller,
                "retirement.requested",
                Some(&name),
                Some(v.version),
                json!({"retirement_id": pending.id, "reason": reason, "replacement": replacement}),
            )],
            events: vec![Self::event(RetirementRequested {
                retirement_id: pending.id.clone(),
                name: name.clone(),
                version: v.version,
                reason: reason.clone(),
                replacement,
                requested_by: caller.id.clone(),
            })?],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(lost_race)?;
        self.workflows.retirement_requested(&v, &pending).await?;
        Ok(v)
    }

    /// Reads what retiring `version` involves and why it may not be retired now. Errors are
    /// what no later attempt can change: unknown version, already retired, a promotion in
    /// review, an unknown or retired replacement.
    async fn plan_retirement(
        &self,
        name: &ModelName,
        version: VersionNumber,
        replacement: Option<VersionNumber>,
    ) -> Result<RetirementPlan, GovError> {
        let mut keys = vec![
            Key::Version(name.clone(), version),
            Key::Model(name.clone()),
        ];
        keys.extend(replacement.map(|r| Key::Version(name.clone(), r)));
        let mut f = self.registry.get_many(&keys).await?;
        let v = f
            .versions
            .remove(&(name.clone(), version))
            .ok_or_else(|| not_found_version(name, version))?;
        let model = f.models.remove(name).ok_or_else(|| not_found_model(name))?;
        if v.stage == Stage::Retired {
            return Err(GovError::Conflict(format!(
                "version {version} is already retired"
            )));
        }
        if let Some(open) = &v.open_promotion {
            return Err(GovError::Conflict(format!(
                "promotion {open} of this version is in review; it must end first"
            )));
        }
        super::serious::refuse_under_investigation(&v)?;
        let serving = model.production_version == Some(version);
        let mut reasons = Vec::new();
        if !v.dependents.is_empty() {
            // Only versions that declared this one read their stage: most have none.
            let keys: Vec<Key> = v
                .dependents
                .iter()
                .map(|d| Key::Version(d.name.clone(), d.version))
                .collect();
            let found = self.registry.get_many(&keys).await?;
            let active: Vec<String> = v
                .dependents
                .iter()
                .filter(|d| {
                    found
                        .version(&d.name, d.version)
                        .is_some_and(|dv| dv.stage != Stage::Retired)
                })
                .map(|d| format!("{} version {}", d.name, d.version))
                .collect();
            if !active.is_empty() {
                reasons.push(format!("active models depend on it: {}", active.join(", ")));
            }
        }
        let mut replacement_record = None;
        if let Some(r) = replacement {
            let rv = f
                .versions
                .remove(&(name.clone(), r))
                .ok_or_else(|| no_replacement(name, r))?;
            if rv.stage == Stage::Retired {
                return Err(GovError::field(
                    "replacement",
                    format!("version {r} is retired"),
                ));
            }
            if serving {
                let mut gate = self.gate_reasons(&rv, Environment::Production);
                let change = self.change_check(name, r).await;
                gate.extend(change.reason().map(str::to_owned));
                reasons.extend(
                    gate.into_iter()
                        .map(|g| format!("replacement cannot take over production: {g}")),
                );
            }
            replacement_record = Some(rv);
        } else if serving {
            reasons.push(format!(
                "version {version} serves production; name an approved replacement"
            ));
        }
        Ok(RetirementPlan {
            version: v,
            model,
            replacement: replacement_record,
            serving,
            reasons,
        })
    }

    /// Retires the planned version (and hands production to the replacement when it was
    /// serving), audited as done by `actor`; `request` is the confirmed request it completes.
    async fn commit_retirement(
        &self,
        plan: RetirementPlan,
        reason: &str,
        replacement: Option<VersionNumber>,
        actor: &Caller,
        request: Option<&PendingRetirement>,
    ) -> Result<ModelVersion, GovError> {
        let RetirementPlan {
            version: mut v,
            model,
            replacement: replacement_record,
            serving,
            ..
        } = plan;
        let name = v.name.clone();
        let version = v.version;
        let now = self.now();
        let prev = v.revision;
        v.stage = Stage::Retired;
        v.retirement = Some(Retirement {
            reason: reason.to_owned(),
            replacement,
            retired_by: actor.id.clone(),
            retired_at: now,
            request_id: request.map(|r| r.id.clone()),
            confirmed_by: request.and_then(|r| r.confirmed_by.clone()),
        });
        v.pending_retirement = None;
        v.revision += 1;
        let mut puts = vec![Put::Version(v.clone(), Expect::Revision(prev))];
        let mut m = model.clone();
        m.retired_versions.push(version);
        m.revision += 1;
        if let (true, Some(mut rv)) = (serving, replacement_record) {
            let rprev = rv.revision;
            rv.stage = Stage::Production;
            rv.deployments.push(DeploymentRecord {
                environment: Environment::Production,
                deployed_by: actor.id.clone(),
                deployed_at: now,
            });
            rv.revision += 1;
            m.production_version = Some(rv.version);
            m.production_history.push(rv.version);
            m.rolled_back_from.retain(|v| *v != rv.version);
            puts.push(Put::Version(rv.clone(), Expect::Revision(rprev)));
            puts.push(Put::ProductionChange(ProductionChange {
                name: name.clone(),
                at: now,
                version: Some(rv.version),
                cause: format!("retirement of version {version}"),
            }));
        }
        puts.push(Put::Model(m, Expect::Revision(model.revision)));
        let mut details =
            json!({"reason": reason, "replacement": replacement, "was_serving": serving});
        if let Some(r) = request {
            details["retirement_id"] = json!(r.id);
            details["confirmed_by"] = json!(r.confirmed_by);
        }
        let commit = Commit {
            puts,
            audit: vec![self.draft(
                actor,
                "version.retired",
                Some(&name),
                Some(version),
                details,
            )],
            events: vec![Self::event(ModelRetired {
                name: name.clone(),
                version,
                reason: reason.to_owned(),
                replacement,
            })?],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(lost_race)?;
        Ok(v)
    }
}

/// The model and version a retirement id names; a validation error for an id Steward did not
/// issue.
fn parse_retirement(retirement_id: &str) -> Result<(ModelName, VersionNumber), GovError> {
    let id = RetirementId::parse(retirement_id)
        .map_err(|_| GovError::field("retirement_id", "not a retirement id Steward issued"))?;
    Ok((id.name().clone(), id.version()))
}
