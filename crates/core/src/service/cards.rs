//! Evidence: model card revisions and evaluation results.
//!
//! Invariants: every card edit is a new revision (the old ones stay readable) whose card must
//! reference recorded evaluations; an evaluation name is recorded once per version; nothing
//! is added to a retired version. The card and the evaluation report are kept as evidence
//! and their hashes audited.

use super::*;

impl Governance {
    /// Records a new revision of a version's model card.
    pub async fn revise_card(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        body: Value,
        expected: Option<u64>,
    ) -> Result<ModelVersion, GovError> {
        require_role(caller, &[Role::Developer], "revising a model card")?;
        let name = ModelName::parse(name)?;
        let card: ModelCard = from_value(body).map_err(|e| prefix(e, "card"))?;
        let mut v = self.load_version(&name, version).await?;
        super::serious::refuse_under_investigation(&v)?;
        let mut errors = Vec::new();
        card.check(&v.evaluation_names(), &mut errors);
        if !errors.is_empty() {
            return Err(GovError::Validation(errors));
        }
        if v.stage == Stage::Retired {
            return Err(GovError::Conflict(format!(
                "{name} version {version} is retired"
            )));
        }
        expect_revision(v.revision, expected, "the version")?;
        let now = self.now();
        let card_value = GovError::to_json("a model card", &card)?;
        self.keep(EvidenceKind::ModelCard, &card_value).await?;
        let card_sha256 = Sha256::digest(&canonical_json(&card_value));
        let prev = v.revision;
        v.card = card.clone();
        v.card_revision += 1;
        v.revision += 1;
        let commit = Commit {
            puts: vec![
                Put::CardRevision(CardRevision {
                    name: name.clone(),
                    version,
                    card_revision: v.card_revision,
                    card,
                    card_sha256,
                    author: caller.id.clone(),
                    at: now,
                }),
                Put::Version(v.clone(), Expect::Revision(prev)),
            ],
            audit: vec![self.draft(
                caller,
                "card.revised",
                Some(&name),
                Some(version),
                json!({"card_revision": v.card_revision, "card_sha256": card_sha256}),
            )],
            events: vec![Self::event(ModelCardRevised {
                name: name.clone(),
                version,
                card_revision: v.card_revision,
                card_sha256,
            })?],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(lost_race)?;
        Ok(v)
    }

    /// Adds an evaluation result to a version.
    pub async fn add_evaluation(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
        body: Value,
    ) -> Result<ModelVersion, GovError> {
        require_role(caller, &[Role::Developer], "recording an evaluation")?;
        let name = ModelName::parse(name)?;
        let input: EvaluationInput = from_value(body)?;
        let mut errors = Vec::new();
        input.check("", &mut errors);
        for e in &mut errors {
            e.field = e.field.trim_start_matches('.').to_owned();
        }
        if !errors.is_empty() {
            return Err(GovError::Validation(errors));
        }
        let mut v = self.load_version(&name, version).await?;
        if v.stage == Stage::Retired {
            return Err(GovError::Conflict(format!(
                "{name} version {version} is retired"
            )));
        }
        if v.evaluation_names().contains(&input.name.as_str()) {
            return Err(GovError::Conflict(format!(
                "evaluation {:?} is already recorded for this version",
                input.name
            )));
        }
        let now = self.now();
        let prev = v.revision;
        let report = GovError::to_json("an evaluation report", &input)?;
        self.keep(EvidenceKind::EvaluationReport, &report).await?;
        let details = EvaluationDetails {
            evaluation: input.name.clone(),
            dataset_sha256: input.dataset.sha256,
            environment: input.environment,
            metrics: input.metrics.clone(),
            report_sha256: Sha256::digest(&canonical_json(&report)),
        };
        v.evaluations.push(Evaluation {
            result: input,
            recorded_by: caller.id.clone(),
            recorded_at: now,
        });
        v.revision += 1;
        let commit = Commit {
            puts: vec![Put::Version(v.clone(), Expect::Revision(prev))],
            audit: vec![self.draft(
                caller,
                "evaluation.recorded",
                Some(&name),
                Some(version),
                GovError::to_json("evaluation details", &details)?,
            )],
            events: vec![Self::event(EvaluationRecorded {
                name: name.clone(),
                version,
                details,
            })?],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(lost_race)?;
        if v.open_promotion.is_some() {
            // The evaluation may be the last evidence an automatic review waits for; the
            // evaluation stands either way, and a lost race is decided on the next evidence.
            let _ = self.decide_automatic_reviews(&name, version).await;
        }
        Ok(v)
    }
}

/// Re-roots validation errors of a nested body under `parent`.
fn prefix(e: GovError, parent: &str) -> GovError {
    match e {
        GovError::Validation(errors) => {
            GovError::Validation(errors.into_iter().map(|f| f.at(parent)).collect())
        }
        other => other,
    }
}
