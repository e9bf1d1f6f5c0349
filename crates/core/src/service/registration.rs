//! Registration: a manifest becomes a new version of a model (the model created on first use).
//!
//! Invariants:
//! - A version number is assigned by the commit that creates it: the model's
//!   `latest_version` moves under its expected revision, so two concurrent registrations
//!   cannot both take one number; the loser re-reads and tries the next (a bounded number of
//!   times, then the store's conflict).
//! - Nothing is stored in the registry unless every check passed: the artifact's declared
//!   SHA-256 and size (where the evidence store can read it), the model's tier, the parent
//!   version and every declared dependency.
//! - With an idempotency key, a retry with the same body replays the first answer; the same
//!   key with another body is a conflict.

use super::*;

/// How many times registration retries a lost race for the next version number.
const REGISTER_ATTEMPTS: usize = 8;

impl Governance {
    /// Registers a new version of `name` (creating the model on first use).
    ///
    /// With an idempotency key, a retry with the same body returns the version the first call
    /// created (and `true`); the same key with another body is a conflict.
    pub async fn register(
        &self,
        caller: &Caller,
        name: &str,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> Result<(ModelVersion, bool), GovError> {
        require_role(caller, &[Role::Developer], "registering a model version")?;
        let name = ModelName::parse(name)?;
        let manifest_bytes = canonical_json(&body);
        let manifest_sha256 = Sha256::digest(&manifest_bytes);
        let scoped_key = match idempotency_key {
            Some(k) if k.is_empty() || k.len() > 255 => {
                return Err(GovError::field(
                    "Idempotency-Key",
                    "must be 1-255 characters",
                ))
            }
            Some(k) => Some(format!("{}/register/{name}/{k}", caller.id)),
            None => None,
        };
        let reg = Registration::parse(body)?;
        // Where the artifact can be read, its bytes must match the declared SHA-256.
        let artifact_check = match &self.evidence {
            None => Value::Null,
            Some(e) => {
                let check = e
                    .check_artifact(&reg.artifact.uri, &reg.artifact.sha256)
                    .await?;
                match check {
                    ArtifactCheck::Mismatch { actual } => {
                        return Err(GovError::field(
                            "artifact.sha256",
                            format!(
                                "the artifact at {} has SHA-256 {actual}, not the declared one",
                                reg.artifact.uri
                            ),
                        ))
                    }
                    ArtifactCheck::Verified { size } if size != reg.artifact.size_bytes => {
                        return Err(GovError::field(
                            "artifact.size_bytes",
                            format!("the artifact at {} has {size} bytes", reg.artifact.uri),
                        ))
                    }
                    ArtifactCheck::Verified { .. } => json!("verified"),
                    ArtifactCheck::NotChecked { reason } => json!(format!("not checked: {reason}")),
                }
            }
        };
        if let Some(e) = &self.evidence {
            e.put(EvidenceKind::Manifest, &manifest_bytes).await?;
        }
        self.keep(
            EvidenceKind::ModelCard,
            &serde_json::to_value(&reg.card).unwrap_or_default(),
        )
        .await?;

        for _ in 0..REGISTER_ATTEMPTS {
            // One batched read: the model, the idempotency record and every dependency.
            let mut keys = vec![Key::Model(name.clone())];
            keys.extend(scoped_key.iter().map(|k| Key::Idempotency(k.clone())));
            keys.extend(
                reg.dependencies
                    .iter()
                    .map(|d| Key::Version(d.name.clone(), d.version)),
            );
            let fetched = self.registry.get_many(&keys).await?;
            if let Some(rec) = scoped_key.as_deref().and_then(|k| fetched.idempotency(k)) {
                return Ok((replay(rec, &manifest_sha256)?, true));
            }
            let existing = fetched.model(&name).cloned();
            let mut problems = Vec::new();
            if let Some(m) = &existing {
                if m.risk_tier != reg.risk_tier {
                    problems.push(FieldError::new(
                        "risk_tier",
                        format!(
                            "model {name} is {} risk; a version cannot change the model's tier",
                            m.risk_tier
                        ),
                    ));
                }
                if let Some(p) = reg.lineage.parent_version {
                    if p == 0 || p > m.latest_version {
                        problems.push(FieldError::new(
                            "lineage.parent_version",
                            format!("model {name} has no version {p}"),
                        ));
                    }
                }
            } else if reg.lineage.parent_version.is_some() {
                problems.push(FieldError::new(
                    "lineage.parent_version",
                    format!("model {name} has no versions yet"),
                ));
            }
            let mut dependency_puts = Vec::new();
            for (i, d) in reg.dependencies.iter().enumerate() {
                match fetched.version(&d.name, d.version) {
                    Some(v) if v.stage != Stage::Retired => dependency_puts.push(v.clone()),
                    Some(_) => problems.push(FieldError::new(
                        format!("dependencies[{i}]"),
                        format!("{} version {} is retired", d.name, d.version),
                    )),
                    None => problems.push(FieldError::new(
                        format!("dependencies[{i}]"),
                        format!("{} has no version {}", d.name, d.version),
                    )),
                }
            }
            if !problems.is_empty() {
                return Err(GovError::Validation(problems));
            }

            let now = self.now();
            let (model, expect) = match existing {
                Some(mut m) => {
                    let expect = Expect::Revision(m.revision);
                    m.latest_version += 1;
                    m.owner = reg.owner.clone();
                    m.description = reg.description.clone();
                    m.revision += 1;
                    (m, expect)
                }
                None => (
                    Model {
                        name: name.clone(),
                        owner: reg.owner.clone(),
                        risk_tier: reg.risk_tier,
                        description: reg.description.clone(),
                        created_by: caller.id.clone(),
                        created_at: now,
                        latest_version: 1,
                        production_version: None,
                        production_history: vec![],
                        retired_versions: vec![],
                        revision: 1,
                    },
                    Expect::Absent,
                ),
            };
            let number = model.latest_version;
            let card_sha256 = Sha256::digest(&canonical_json(
                &serde_json::to_value(&reg.card).unwrap_or_default(),
            ));
            let version = ModelVersion {
                name: name.clone(),
                version: number,
                risk_tier: model.risk_tier,
                stage: Stage::Development,
                artifact: reg.artifact.clone(),
                lineage: reg.lineage.clone(),
                evaluations: reg
                    .evaluations
                    .iter()
                    .map(|e| Evaluation {
                        result: e.clone(),
                        recorded_by: caller.id.clone(),
                        recorded_at: now,
                    })
                    .collect(),
                card: reg.card.clone(),
                card_revision: 1,
                dependencies: reg.dependencies.clone(),
                dependents: vec![],
                registered_by: caller.id.clone(),
                registered_at: now,
                manifest_sha256,
                approvals: vec![],
                deployments: vec![],
                open_promotion: None,
                retirement: None,
                pending_retirement: None,
                revision: 1,
            };
            let details = json!({
                "created_model": expect == Expect::Absent,
                "risk_tier": model.risk_tier,
                "owner": model.owner,
                "manifest_sha256": manifest_sha256,
                "artifact": {"uri": reg.artifact.uri, "sha256": reg.artifact.sha256},
                "code": reg.lineage.code,
                "training_data_sha256": reg.lineage.training_data.iter().map(|t| t.sha256).collect::<Vec<_>>(),
                "evaluations": reg.evaluations.iter().map(|e| json!({"name": e.name, "dataset_sha256": e.dataset.sha256})).collect::<Vec<_>>(),
                "card_sha256": card_sha256,
                "training_job": reg.lineage.training_job,
                "artifact_check": artifact_check,
            });
            let mut puts = Vec::new();
            for mut dep in dependency_puts {
                // The dependency learns its dependent, so retiring it needs no query.
                let prev = dep.revision;
                dep.dependents.push(Dependency {
                    name: name.clone(),
                    version: number,
                });
                dep.revision += 1;
                puts.push(Put::Version(dep, Expect::Revision(prev)));
            }
            puts.extend([
                Put::Model(model.clone(), expect),
                Put::CardRevision(CardRevision {
                    name: name.clone(),
                    version: number,
                    card_revision: 1,
                    card: reg.card.clone(),
                    card_sha256,
                    author: caller.id.clone(),
                    at: now,
                }),
                Put::Version(version.clone(), Expect::Absent),
            ]);
            let commit = Commit {
                puts,
                audit: vec![self.draft(
                    &caller.id,
                    "version.registered",
                    Some(&name),
                    Some(number),
                    details.clone(),
                )],
                events: vec![Self::event(
                    "ModelVersionRegistered",
                    json!({"name": name, "version": number, "risk_tier": model.risk_tier, "registered_by": caller.id,
                           "artifact_sha256": reg.artifact.sha256, "manifest_sha256": manifest_sha256}),
                )],
                idempotency: scoped_key.as_ref().map(|key| IdempotencyRecord {
                    key: key.clone(),
                    request_sha256: manifest_sha256,
                    status: 201,
                    response: serde_json::to_value(&version).unwrap_or_default(),
                    at: now,
                }),
            };
            match self.registry.commit(commit).await {
                Ok(_) => return Ok((version, false)),
                Err(StoreError::Conflict(_)) => continue,
                // Another request with this key committed first: the next pass replays it.
                Err(StoreError::IdempotencyKeyTaken) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        // A lost race, not a state the caller must change: the store's conflict, so that
        // callers that retry races (the pipeline callback) retry it. Same 409 and message.
        Err(GovError::Store(StoreError::Conflict(format!(
            "too many concurrent registrations of {name}; retry"
        ))))
    }
}

fn replay(rec: &IdempotencyRecord, request: &Sha256) -> Result<ModelVersion, GovError> {
    if rec.request_sha256 != *request {
        return Err(GovError::Conflict(
            "this Idempotency-Key was used with a different request body".into(),
        ));
    }
    serde_json::from_value(rec.response.clone())
        .map_err(|e| GovError::Store(StoreError::backend("corrupt idempotency record", e)))
}
