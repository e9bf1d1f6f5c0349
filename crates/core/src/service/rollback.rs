//! Rollback: production goes back to the version that served before the current one.
//!
//! Invariants:
//! - A rollback walks back through the production history (v3 → v2 → v1): its target is the
//!   latest entry that is not the current version, not retired and not a version production
//!   was rolled back from. It never returns to a version rolled back from; only a deployment
//!   through that version's own promotion (or an explicit retirement replacement) makes it a
//!   target again.
//! - One rollback changes one production state once. The model's revision refuses a rollback
//!   that lost the race to another change (409 `contended`, nothing written; it is not retried, because a
//!   retry would roll back a state the caller never saw). With `from_version` it acts only
//!   while that version serves. With an `Idempotency-Key`, a retry or a concurrent duplicate
//!   answers with the first rollback's model instead of rolling back again.

use super::*;

/// How many times a keyed rollback re-reads after a concurrent commit took its key.
const KEYED_ATTEMPTS: usize = 3;

impl Governance {
    /// The version that served production before the current one, if it can serve again.
    pub(super) fn rollback_target(model: &Model) -> Option<VersionNumber> {
        let current = model.production_version?;
        model.production_history.iter().rev().copied().find(|v| {
            *v != current
                && !model.retired_versions.contains(v)
                && !model.rolled_back_from.contains(v)
        })
    }

    /// The model's puts for a rollback to `to` (manual or automatic) and the version rolled
    /// back from.
    pub(super) fn rollback_puts(
        &self,
        model: &Model,
        to: VersionNumber,
        cause: &str,
    ) -> (Vec<Put>, Option<VersionNumber>) {
        let mut m = model.clone();
        let from = m.production_version;
        if let Some(f) = from.filter(|f| !m.rolled_back_from.contains(f)) {
            m.rolled_back_from.push(f);
        }
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

    /// Puts the version that served before the current one back into production; with
    /// `from_version`, only while that version serves.
    pub async fn rollback(
        &self,
        caller: &Caller,
        name: &str,
        reason: &str,
        from_version: Option<u32>,
    ) -> Result<Model, GovError> {
        let (model, _) = self
            .rollback_keyed(caller, name, reason, from_version, None)
            .await?;
        Ok(model)
    }

    /// [`Self::rollback`] with an optional idempotency key: a retry with the same request
    /// returns the model the first one committed (and `true`); the same key with another
    /// request is a conflict.
    pub async fn rollback_keyed(
        &self,
        caller: &Caller,
        name: &str,
        reason: &str,
        from_version: Option<u32>,
        idempotency_key: Option<&str>,
    ) -> Result<(Model, bool), GovError> {
        require_role(
            caller,
            &[Role::Operator, Role::ReleaseManager],
            "rolling back",
        )?;
        let name = ModelName::parse(name)?;
        let reason = non_empty("reason", reason)?;
        if from_version == Some(0) {
            return Err(GovError::field(
                "from_version",
                "a version number is 1 or more",
            ));
        }
        let scoped_key = idempotency_key
            .map(IdempotencyKey::parse)
            .transpose()?
            .map(|k| format!("{}/rollback/{name}/{k}", caller.id));
        let request_sha256 = Sha256::digest(&canonical_json(
            &json!({"reason": reason, "from_version": from_version}),
        ));
        let mut keys = vec![Key::Model(name.clone())];
        keys.extend(scoped_key.iter().map(|k| Key::Idempotency(k.clone())));
        for _ in 0..KEYED_ATTEMPTS {
            let fetched = self.registry.get_many(&keys).await?;
            if let Some(rec) = scoped_key.as_deref().and_then(|k| fetched.idempotency(k)) {
                return Ok((replay_rollback(rec, &request_sha256)?, true));
            }
            let model = fetched
                .model(&name)
                .cloned()
                .ok_or_else(|| GovError::NotFound(format!("no model {name}")))?;
            // The model does not list serious incidents: the serving version does (one more
            // read, only for a manual rollback).
            if let Some(current) = model.production_version {
                if let Some(v) = self.registry.version(&name, current).await? {
                    super::serious::refuse_under_investigation(&v)?;
                }
            }
            let idempotency = scoped_key.as_deref().map(|k| (k, request_sha256));
            let (commit, committed) =
                self.rollback_commit(caller, &model, &reason, from_version, idempotency)?;
            match self.registry.commit(commit).await {
                Ok(_) => return Ok((committed, false)),
                // Another request with this key committed first: the next pass replays it.
                Err(StoreError::IdempotencyKeyTaken) => continue,
                Err(e) => return Err(lost_race(e)),
            }
        }
        Err(GovError::Contended(format!(
            "too many concurrent rollbacks of {name} with one Idempotency-Key; retry"
        )))
    }

    /// The commit of a manual rollback of `model` as read, and the model it commits.
    fn rollback_commit(
        &self,
        caller: &Caller,
        model: &Model,
        reason: &str,
        from_version: Option<u32>,
        idempotency: Option<(&str, Sha256)>,
    ) -> Result<(Commit, Model), GovError> {
        let name = &model.name;
        let Some(current) = model.production_version else {
            return Err(GovError::Conflict(format!(
                "{name} has no version in production"
            )));
        };
        if let Some(from) = from_version.filter(|f| *f != current.get()) {
            return Err(GovError::Conflict(format!(
                "{name} serves version {current} in production, not {from}: nothing rolled back"
            )));
        }
        let Some(to) = Self::rollback_target(model) else {
            return Err(GovError::Conflict(format!(
                "{name} has no earlier production version to roll back to"
            )));
        };
        let (puts, _) = self.rollback_puts(model, to, "rollback");
        // The model as committed: answering with it costs no second read.
        let committed = puts
            .iter()
            .find_map(|p| match p {
                Put::Model(m, _) => Some(m.clone()),
                _ => None,
            })
            .ok_or_else(|| GovError::Store(StoreError::backend_msg("rollback built no model")))?;
        let idempotency = match idempotency {
            Some((key, request_sha256)) => Some(IdempotencyRecord {
                key: key.to_owned(),
                request_sha256,
                status: 200,
                response: GovError::to_json("a model", &committed)?,
                at: self.now(),
            }),
            None => None,
        };
        let commit = Commit {
            puts,
            audit: vec![self.draft(
                caller,
                "model.rolled_back",
                Some(name),
                Some(to),
                json!({"from": current, "to": to, "reason": reason, "automatic": false}),
            )],
            events: vec![Self::event(ModelRolledBack {
                name: name.clone(),
                from_version: current,
                to_version: to,
                reason: reason.to_owned(),
                automatic: false,
                incident_id: None,
            })?],
            idempotency,
        };
        Ok((commit, committed))
    }
}

/// The model an idempotency record stored, if the retry carries the same request.
fn replay_rollback(rec: &IdempotencyRecord, request: &Sha256) -> Result<Model, GovError> {
    if rec.request_sha256 != *request {
        return Err(GovError::Conflict(
            "this Idempotency-Key was used with a different rollback request".into(),
        ));
    }
    serde_json::from_value(rec.response.clone())
        .map_err(|e| GovError::Store(StoreError::backend("corrupt idempotency record", e)))
}
