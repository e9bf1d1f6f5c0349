//! Administration: principals' roles and the policy record.
//!
//! Invariants: only an admin sets roles, through the API, and never its own; the last admin
//! cannot lose the role; roles set through the API win over configuration seeding. Every
//! change is audited and emitted, and the administering principal's record keeps when it
//! last administered (in the same commit) for separation of duties.

use super::*;

impl Governance {
    pub async fn principals(&self, caller: &Caller) -> Result<Vec<PrincipalRecord>, GovError> {
        require_role(caller, &[Role::Admin], "listing principals")?;
        Ok(self.registry.principals().await?)
    }

    /// Sets a principal's roles (admin only, audited). Nobody changes their own roles (an
    /// admin could otherwise make itself an approver); the last admin keeps the admin role.
    pub async fn set_roles(
        &self,
        caller: &Caller,
        id: &str,
        roles: Vec<Role>,
    ) -> Result<PrincipalRecord, GovError> {
        require_role(caller, &[Role::Admin], "managing principals")?;
        let id = PrincipalId::parse(id)?;
        if id.is_reserved() {
            return Err(GovError::field(
                "principal",
                format!("{id} is an identity Steward acts under itself; no principal may hold it"),
            ));
        }
        if id == caller.id {
            return Err(GovError::SeparationOfDuties(
                "nobody changes their own roles; another admin must".into(),
            ));
        }
        let mut roles = roles;
        roles.sort();
        roles.dedup();
        // One read of all principals answers both "who is this" and "is this the last admin".
        let all = self.registry.principals().await?;
        let existing = all.iter().find(|p| p.id == id).cloned();
        let is_admin = existing
            .as_ref()
            .is_some_and(|p| p.roles.contains(&Role::Admin));
        if is_admin && !roles.contains(&Role::Admin) {
            let admins = all
                .iter()
                .filter(|p| p.roles.contains(&Role::Admin))
                .count();
            if admins <= 1 {
                return Err(GovError::Conflict(
                    "this is the last admin; name another admin first".into(),
                ));
            }
        }
        // The admin's own record remembers when it administered (rule 6 of separation of
        // duties), in the same commit as the change it made.
        let administrator = all.iter().find(|p| p.id == caller.id).map(|p| {
            let mut a = p.clone();
            a.last_administered_at = Some(self.now());
            a.revision += 1;
            (a, Expect::Revision(p.revision))
        });
        self.put_principal(caller, id, roles, "api", existing, administrator)
            .await
    }

    /// Seeds a principal from configuration (principals file or bootstrap admins). Writes and
    /// audits only when the stored roles differ; roles an admin set through the API win.
    pub async fn seed_principal(
        &self,
        id: &PrincipalId,
        roles: Vec<Role>,
        source: &str,
    ) -> Result<Option<PrincipalRecord>, GovError> {
        if id.is_reserved() {
            return Err(GovError::field(
                "principal",
                format!("{id} is an identity Steward acts under itself; no principal may hold it"),
            ));
        }
        let existing = self.registry.principal(id).await?;
        match &existing {
            Some(p) if p.managed_by == "api" => return Ok(None),
            Some(p) if p.roles == roles => return Ok(None),
            _ => {}
        }
        let system = Caller::system(source);
        self.put_principal(&system, id.clone(), roles, source, existing, None)
            .await
            .map(Some)
    }

    async fn put_principal(
        &self,
        actor: &Caller,
        id: PrincipalId,
        roles: Vec<Role>,
        source: &str,
        existing: Option<PrincipalRecord>,
        administrator: Option<(PrincipalRecord, Expect)>,
    ) -> Result<PrincipalRecord, GovError> {
        let now = self.now();
        let (expect, revision, before) = match &existing {
            Some(p) => (
                Expect::Revision(p.revision),
                p.revision + 1,
                Some(p.roles.clone()),
            ),
            None => (Expect::Absent, 1, None),
        };
        let record = PrincipalRecord {
            id: id.clone(),
            roles: roles.clone(),
            managed_by: source.to_owned(),
            updated_at: now,
            last_administered_at: existing.as_ref().and_then(|p| p.last_administered_at),
            revision,
        };
        let mut puts = vec![Put::Principal(record.clone(), expect)];
        puts.extend(administrator.map(|(a, e)| Put::Principal(a, e)));
        let commit = Commit {
            puts,
            audit: vec![self.draft(actor, "principal.roles_set", None, None, json!({"principal": id, "roles": roles, "previous_roles": before, "source": source}))],
            events: vec![Self::event(PrincipalRolesChanged {
                principal: id.clone(),
                roles: roles.clone(),
            })?],
            idempotency: None,
        };
        self.registry.commit(commit).await.map_err(lost_race)?;
        Ok(record)
    }

    /// Records the policy in force when it differs from the last one recorded.
    pub async fn record_policy(&self, last_digest: Option<&str>) -> Result<bool, GovError> {
        let digest = self.policy.digest()?;
        if last_digest == Some(digest.as_str()) {
            return Ok(false);
        }
        let commit = self.policy_loaded(&digest, None)?;
        self.registry.commit(commit).await?;
        Ok(true)
    }

    /// The commit that records the policy of `digest` as in force (`policy.loaded`,
    /// `PolicyChanged`), as change number `change` where changes are numbered.
    fn policy_loaded(&self, digest: &str, change: Option<u64>) -> Result<Commit, GovError> {
        let mut details = json!({"policy_sha256": digest, "policy": self.policy});
        if let Some(n) = change {
            details["change"] = json!(n);
        }
        let system = Caller::system("config");
        Ok(Commit {
            audit: vec![self.draft(&system, "policy.loaded", None, None, details)],
            events: vec![Self::event(PolicyChanged {
                policy_sha256: digest.to_owned(),
            })?],
            ..Commit::default()
        })
    }

    /// Records the policy in force as change `change` of the policy history (the first is
    /// 1), once per change number however many processes start at once: the change's
    /// idempotency key is `system:config/policy.loaded/{change}`, so of concurrent cold starts
    /// one commits and the others read what it recorded. For backends that keep the last
    /// change beside the registry (AWS) rather than in a local file.
    pub async fn record_policy_change(&self, change: u64) -> Result<PolicyRecord, GovError> {
        let digest = self.policy.digest()?;
        let key = format!("system:config/policy.loaded/{change}");
        let commit = Commit {
            idempotency: Some(IdempotencyRecord {
                key: key.clone(),
                request_sha256: Sha256::digest(digest.as_bytes()),
                status: 200,
                response: json!({"policy_sha256": digest}),
                at: self.now(),
            }),
            ..self.policy_loaded(&digest, Some(change))?
        };
        if self.commit_once(commit).await? {
            return Ok(PolicyRecord::Recorded { digest });
        }
        // Taken: its record names the policy, unless it expired before it could be read.
        let digest = self
            .recorded(&key)
            .await?
            .and_then(|r| r["policy_sha256"].as_str().map(str::to_owned));
        Ok(PolicyRecord::AlreadyRecorded { digest })
    }
}

/// What [`Governance::record_policy_change`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRecord {
    /// This call recorded the policy (its digest) as the change.
    Recorded { digest: String },
    /// Another process recorded the change first, with the policy of this digest (`None`
    /// when its record has expired).
    AlreadyRecorded { digest: Option<String> },
}
