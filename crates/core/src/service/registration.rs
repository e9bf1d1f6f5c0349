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
use crate::ports::Fetched;

/// How many times registration retries a lost race for the next version number.
const REGISTER_ATTEMPTS: usize = 8;

/// What a registration answers.
pub(crate) struct Registered {
    pub version: ModelVersion,
    /// An idempotent replay: nothing was committed.
    pub replayed: bool,
    /// The model as the commit left it (`None` for a replay).
    pub model: Option<Model>,
    /// Through the MLflow API: the model's MLflow record, read in the registration's batch.
    pub mlflow_record: Option<crate::mlflow::RegisteredModel>,
}

/// A registration request as parsed once, before anything is read or written.
struct Request {
    name: ModelName,
    reg: Registration,
    /// The canonical manifest: what is kept as evidence and hashed.
    manifest_bytes: Vec<u8>,
    manifest_sha256: Sha256,
    /// The idempotency key scoped to the caller, the operation and the model.
    scoped_key: Option<String>,
    /// What the MLflow API said of the version, when it came through it.
    mlflow: Option<crate::mlflow::VersionMeta>,
}

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
        self.register_with(caller, name, body, idempotency_key, None)
            .await
            .map(|r| (r.version, r.replayed))
    }

    /// [`Self::register`] with the MLflow metadata of a version created through the MLflow
    /// API, committed with the version itself; the model's MLflow record is read in the same
    /// batch as the model (a model MLflow deleted, with no Steward versions, is not found).
    pub(crate) async fn register_with(
        &self,
        caller: &Caller,
        name: &str,
        body: Value,
        idempotency_key: Option<&str>,
        mlflow: Option<crate::mlflow::VersionMeta>,
    ) -> Result<Registered, GovError> {
        require_role(caller, &[Role::Developer], "registering a model version")?;
        let mut request = Request::parse(caller, name, body, idempotency_key)?;
        request.mlflow = mlflow;
        // Fairness limits are the tier's: a card whose groups break one is refused here,
        // naming the metric, the groups and their values.
        let unfair = self.fairness_reasons(request.reg.risk_tier, &request.reg.card);
        if !unfair.is_empty() {
            return Err(GovError::Validation(
                unfair
                    .into_iter()
                    .map(|r| FieldError::new("card.fairness.groups", r))
                    .collect(),
            ));
        }
        let artifact_check = self.check_artifact(&request.reg).await?;
        self.keep_registration_evidence(&request).await?;
        self.commit_new_version(caller, &request, &artifact_check)
            .await
    }

    /// Step 1: where the artifact can be read, its bytes must match the declared SHA-256 and
    /// size. Returns what the audit event records about the check.
    async fn check_artifact(&self, reg: &Registration) -> Result<Value, GovError> {
        let Some(evidence) = &self.evidence else {
            return Ok(Value::Null);
        };
        let uri = &reg.artifact.uri;
        match evidence.check_artifact(uri, &reg.artifact.sha256).await? {
            ArtifactCheck::Mismatch { actual } => Err(GovError::field(
                "artifact.sha256",
                format!("the artifact at {uri} has SHA-256 {actual}, not the declared one"),
            )),
            ArtifactCheck::Verified { size } if size != reg.artifact.size_bytes => {
                Err(GovError::field(
                    "artifact.size_bytes",
                    format!("the artifact at {uri} has {size} bytes"),
                ))
            }
            ArtifactCheck::Verified { .. } => Ok(json!("verified")),
            ArtifactCheck::NotChecked { reason } => Ok(json!(format!("not checked: {reason}"))),
        }
    }

    /// Step 2: the manifest and the card are kept as evidence before the version exists, so
    /// a committed version never lacks them (a failed commit leaves only content-addressed
    /// blobs, which a retry writes again).
    async fn keep_registration_evidence(&self, request: &Request) -> Result<(), GovError> {
        if let Some(e) = &self.evidence {
            e.put(EvidenceKind::Manifest, &request.manifest_bytes)
                .await?;
        }
        let card = GovError::to_json("a model card", &request.reg.card)?;
        self.keep(EvidenceKind::ModelCard, &card).await
    }

    /// Step 3, the commit loop: read the model, the idempotency record and the dependencies
    /// in one batch, validate the manifest against them, and commit the next version under
    /// the model's revision; a lost race re-reads and takes the next number.
    async fn commit_new_version(
        &self,
        caller: &Caller,
        request: &Request,
        artifact_check: &Value,
    ) -> Result<Registered, GovError> {
        let Request { name, reg, .. } = request;
        for attempt in 0..REGISTER_ATTEMPTS {
            let mut keys = vec![Key::Model(name.clone())];
            keys.extend(
                request
                    .scoped_key
                    .iter()
                    .map(|k| Key::Idempotency(k.clone())),
            );
            if request.mlflow.is_some() {
                keys.push(Key::RegisteredModel(name.clone()));
            }
            keys.extend(
                // A dependency on version 0 reads nothing: it is reported as missing.
                reg.dependencies.iter().filter_map(|d| {
                    let n = VersionNumber::new(d.version).ok()?;
                    Some(Key::Version(d.name.clone(), n))
                }),
            );
            let fetched = self.registry.get_many(&keys).await?;
            if let Some(rec) = request
                .scoped_key
                .as_deref()
                .and_then(|k| fetched.idempotency(k))
            {
                return Ok(Registered {
                    version: replay(rec, &request.manifest_sha256)?,
                    replayed: true,
                    model: None,
                    mlflow_record: None,
                });
            }
            let existing = fetched.model(name).cloned();
            let mlflow_record = fetched.registered_model(name).cloned();
            if existing.is_none() && mlflow_record.as_ref().is_some_and(|r| r.deleted) {
                return Err(GovError::NotFound(format!(
                    "registered model {name} does not exist"
                )));
            }
            let dependencies = validate_against_registry(name, reg, existing.as_ref(), &fetched)?;
            let (version, model, commit) =
                self.new_version(caller, request, existing, dependencies, artifact_check)?;
            match self.registry.commit(commit).await {
                Ok(_) => {
                    return Ok(Registered {
                        version,
                        replayed: false,
                        model: Some(model),
                        mlflow_record,
                    })
                }
                // Another registration took the next number: number again on a fresh read.
                Err(StoreError::Conflict(_)) => self.back_off(attempt).await,
                // Another request with this key committed first: the next pass replays it.
                Err(StoreError::IdempotencyKeyTaken) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        // A lost race, not a state the caller must change: callers that retry races (the
        // pipeline callback, the functions) retry it.
        Err(GovError::Contended(format!(
            "too many concurrent registrations of {name}; retry"
        )))
    }

    /// Step 4: the new version (numbered after the model's latest), the model moved on, the
    /// dependencies told of their new dependent, the audit event, the outbox event and the
    /// idempotency record, as one commit; with the model as the commit leaves it.
    fn new_version(
        &self,
        caller: &Caller,
        request: &Request,
        existing: Option<Model>,
        dependencies: Vec<ModelVersion>,
        artifact_check: &Value,
    ) -> Result<(ModelVersion, Model, Commit), GovError> {
        let Request {
            name,
            reg,
            manifest_sha256,
            ..
        } = request;
        let manifest_sha256 = *manifest_sha256;
        let now = self.now();
        let (model, expect) = match existing {
            Some(mut m) => {
                let expect = Expect::Revision(m.revision);
                m.latest_version = m.latest_version.next().ok_or_else(|| {
                    GovError::Conflict(format!("model {name} has used every version number"))
                })?;
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
                    latest_version: VersionNumber::FIRST,
                    production_version: None,
                    production_history: vec![],
                    retired_versions: vec![],
                    rolled_back_from: vec![],
                    revision: 1,
                },
                Expect::Absent,
            ),
        };
        let number = model.latest_version;
        let card_sha256 = Sha256::digest(&canonical_json(&GovError::to_json(
            "a model card",
            &reg.card,
        )?));
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
            dependencies: dependencies
                .iter()
                .map(|d| VersionRef {
                    name: d.name.clone(),
                    version: d.version,
                })
                .collect(),
            dependents: vec![],
            registered_by: caller.id.clone(),
            registered_at: now,
            manifest_sha256,
            approvals: vec![],
            deployments: vec![],
            open_promotion: None,
            retirement: None,
            pending_retirement: None,
            mlflow: request.mlflow.clone(),
            checks: vec![],
            serious_incidents: vec![],
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
        let mut details = details;
        if let Some(meta) = &request.mlflow {
            // Registered through the MLflow API: what the client named as source and run.
            details["mlflow"] = json!({"source": meta.source, "run_id": meta.run_id});
        }
        let mut puts = Vec::new();
        for mut dep in dependencies {
            // The dependency learns its dependent, so retiring it needs no query.
            let prev = dep.revision;
            dep.dependents.push(VersionRef {
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
        let idempotency = match &request.scoped_key {
            Some(key) => Some(IdempotencyRecord {
                key: key.clone(),
                request_sha256: manifest_sha256,
                status: 201,
                response: GovError::to_json("a model version", &version)?,
                at: now,
            }),
            None => None,
        };
        let commit = Commit {
            puts,
            audit: vec![self.draft(
                caller,
                "version.registered",
                Some(name),
                Some(number),
                details,
            )],
            events: vec![Self::event(ModelVersionRegistered {
                name: name.clone(),
                version: number,
                risk_tier: model.risk_tier,
                registered_by: caller.id.clone(),
                artifact_sha256: reg.artifact.sha256,
                manifest_sha256,
            })?],
            idempotency,
        };
        Ok((version, model, commit))
    }
}

impl Request {
    fn parse(
        caller: &Caller,
        name: &str,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Self, GovError> {
        let name = ModelName::parse(name)?;
        let manifest_bytes = canonical_json(&body);
        let manifest_sha256 = Sha256::digest(&manifest_bytes);
        let scoped_key = idempotency_key
            .map(IdempotencyKey::parse)
            .transpose()?
            .map(|k| format!("{}/register/{name}/{k}", caller.id));
        let reg = Registration::parse(body)?;
        Ok(Self {
            name,
            reg,
            manifest_bytes,
            manifest_sha256,
            scoped_key,
            mlflow: None,
        })
    }
}

/// The manifest checked against what the registry holds: the model keeps its tier, the
/// parent version exists, every dependency exists and is not retired. Returns the
/// dependencies (to be told of their new dependent); every problem at once otherwise.
fn validate_against_registry(
    name: &ModelName,
    reg: &Registration,
    existing: Option<&Model>,
    fetched: &Fetched,
) -> Result<Vec<ModelVersion>, GovError> {
    let mut problems = Vec::new();
    if let Some(m) = existing {
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
            if p == 0 || p > m.latest_version.get() {
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
    let mut dependencies = Vec::new();
    for (i, d) in reg.dependencies.iter().enumerate() {
        let found = VersionNumber::new(d.version)
            .ok()
            .and_then(|n| fetched.version(&d.name, n));
        match found {
            Some(v) if v.stage != Stage::Retired => dependencies.push(v.clone()),
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
    if problems.is_empty() {
        Ok(dependencies)
    } else {
        Err(GovError::Validation(problems))
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
