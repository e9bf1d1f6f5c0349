//! Audit log reads: events, checkpoints and proofs, for auditors and admins only.

use super::*;

impl Governance {
    fn require_auditor(caller: &Caller) -> Result<(), GovError> {
        require_role(
            caller,
            &[Role::Auditor, Role::Admin],
            "reading the audit log",
        )
    }

    pub async fn audit_events(
        &self,
        caller: &Caller,
        model: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, GovError> {
        Self::require_auditor(caller)?;
        let model = model.map(ModelName::parse).transpose()?;
        Ok(self
            .audit
            .events(model.as_ref(), after, limit.clamp(1, 1000))
            .await?)
    }

    pub async fn audit_checkpoint(&self, caller: &Caller) -> Result<Checkpoint, GovError> {
        Self::require_auditor(caller)?;
        self.audit
            .latest_checkpoint()
            .await?
            .ok_or_else(|| GovError::NotFound("the audit log is empty".into()))
    }

    /// Inclusion proof of `seq` against the latest checkpoint.
    pub async fn audit_proof(
        &self,
        caller: &Caller,
        seq: u64,
    ) -> Result<(AuditEvent, Vec<Hash>, Checkpoint), GovError> {
        let cp = self.audit_checkpoint(caller).await?;
        if seq == 0 || seq > cp.size {
            return Err(GovError::NotFound(format!(
                "no audit event {seq} in the checkpointed log of {} events",
                cp.size
            )));
        }
        let (event, proof) = self.audit.inclusion_proof(seq, cp.size).await?;
        Ok((event, proof, cp))
    }

    pub async fn audit_consistency(
        &self,
        caller: &Caller,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, GovError> {
        let size = self.audit_checkpoint(caller).await?.size;
        if new_size > size {
            return Err(GovError::field(
                "second",
                format!("the checkpointed log has {size} events"),
            ));
        }
        if old_size == 0 || old_size > new_size {
            return Err(GovError::field(
                "first",
                "must be between 1 and the second size",
            ));
        }
        Ok(self.audit.consistency_proof(old_size, new_size).await?)
    }

    pub fn audit_public_key(&self) -> (String, Vec<u8>) {
        self.audit.public_key()
    }
}
