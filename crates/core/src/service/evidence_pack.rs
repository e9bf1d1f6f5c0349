//! Evidence packs: a version's signed technical documentation (see [`crate::pack`]).
//!
//! Invariants:
//! - Only auditors, compliance reviewers and admins take packs (they hold audit events).
//! - A pack cites every audit event of the version and proves each against one signed
//!   checkpoint; while some event is newer than the latest checkpoint (on AWS checkpoints are
//!   signed every few minutes) the request is refused with 409, never answered with a pack
//!   that leaves the event out.
//! - The manifest signature is checked with the audit log's public key before the pack is
//!   handed out, so a misconfigured signer cannot produce a pack that fails verification.
//! - A read of the registry: the only thing written is the pack itself, kept by its SHA-256
//!   in the evidence store for the policy's retention period (Object Lock on AWS).
//!
//! Requests, for a version with `E` audit events and a model with `I` incidents: the version,
//! model, versions, card revisions and promotions (as `GET .../versions/{v}` reads them), one
//! page of incidents per 500, one page of the model's audit events per 1000, the checkpoint,
//! `E` inclusion proofs, one signature and one evidence write.

use chrono::Months;

use super::*;
use crate::audit::PublicKey;
use crate::pack::{assemble, build_document, to_zip, PackInputs};
use crate::ports::ManifestSigner;

/// A signed pack, zipped, and where it is kept.
#[derive(Debug, Clone)]
pub struct EvidencePack {
    pub zip: Vec<u8>,
    /// `{name}-v{version}-evidence.zip`.
    pub file_name: String,
    pub sha256: crate::types::Sha256,
    /// Where the evidence store keeps it (`None` without one).
    pub stored_at: Option<String>,
    pub retain_until: DateTime<Utc>,
}

impl Governance {
    /// Signs evidence pack manifests with `signer`, the key that signs the audit log's
    /// checkpoints (its public key is the audit log's).
    pub fn with_manifest_signer(mut self, signer: Arc<dyn ManifestSigner>) -> Self {
        self.manifest_signer = Some(signer);
        self
    }

    /// The evidence pack of `name` version `version` (see the module's invariants).
    pub async fn evidence_pack(
        &self,
        caller: &Caller,
        name: &str,
        version: VersionNumber,
    ) -> Result<EvidencePack, GovError> {
        require_role(
            caller,
            &[Role::Auditor, Role::ComplianceReviewer, Role::Admin],
            "taking an evidence pack",
        )?;
        let name = ModelName::parse(name)?;
        let signer = self.manifest_signer.clone().ok_or_else(|| {
            GovError::Conflict("this deployment has no audit signing key for evidence packs".into())
        })?;
        let (v, model) = self.load_version_and_model(&name, version).await?;
        let versions = self.registry.versions(&name).await?;
        let card_revisions = self.registry.card_revisions(&name, version).await?;
        let promotions = self.registry.promotions_of(&name, version).await?;
        let incidents = self.incidents_of_version(&name, version).await?;
        let events = self.version_events(&name, version).await?;
        let checkpoint = self
            .audit
            .latest_checkpoint()
            .await?
            .ok_or_else(|| GovError::Conflict("the audit log has no checkpoint yet".into()))?;
        if let Some(late) = events.iter().find(|e| e.seq > checkpoint.size) {
            return Err(GovError::Conflict(format!(
                "audit event {} of this version is newer than the latest signed checkpoint \
                 ({} events); ask again once the next checkpoint is signed",
                late.seq, checkpoint.size
            )));
        }
        let mut proofs = Vec::with_capacity(events.len());
        for e in &events {
            let (event, hashes) = self.audit.inclusion_proof(e.seq, checkpoint.size).await?;
            proofs.push((event, hashes));
        }

        let now = self.now();
        let years = self.policy.evidence.retention_years;
        let retain_until = now
            .checked_add_months(Months::new(12 * years))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let serving = model.production_version == Some(version);
        let document = build_document(&PackInputs {
            model: &model,
            version: &v,
            versions: &versions,
            card_revisions: &card_revisions,
            promotions: &promotions,
            incidents: &incidents,
            events: &events,
            policy: &self.policy,
            policy_digest: self.policy.digest()?,
            next_periodic_review: if serving { self.periodic_due(&v) } else { None },
            checkpoint: &checkpoint,
            generated_at: now,
            generated_by: &caller.id,
            retain_until,
        });

        let (_, public) = self.audit.public_key();
        let key = PublicKey::from_bytes(&public)
            .map_err(|e| StoreError::backend("the audit log's public key is unusable", e))?;
        let unsigned = assemble(&document, &proofs, &checkpoint, key.algorithm());
        let message = unsigned.message();
        let signature = signer.sign(&message).await?;
        key.verify(&message, &signature).map_err(|e| {
            StoreError::backend(
                "the manifest signature does not verify with the audit log's public key",
                e,
            )
        })?;
        let pack = unsigned.sign(&signature);
        let zip = to_zip(&pack)
            .map_err(|e| StoreError::backend("the evidence pack could not be zipped", e))?;
        let stored_at = match &self.evidence {
            Some(store) => Some(store.keep_pack(&zip, retain_until).await?),
            None => None,
        };
        Ok(EvidencePack {
            file_name: format!("{name}-v{version}-evidence.zip"),
            sha256: crate::types::Sha256::digest(&zip),
            zip,
            stored_at,
            retain_until,
        })
    }

    /// Every audit event naming this version, ascending.
    async fn version_events(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Vec<AuditEvent>, GovError> {
        const PAGE: usize = 1000;
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.audit.events(Some(name), after, PAGE).await?;
            let full = page.len() == PAGE;
            if let Some(last) = page.last() {
                after = last.seq;
            }
            out.extend(page.into_iter().filter(|e| e.version == Some(version)));
            if !full {
                return Ok(out);
            }
        }
    }

    /// The incidents naming this version.
    async fn incidents_of_version(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Vec<Incident>, GovError> {
        let all =
            every_page(
                |c| async move { self.registry.incidents(Some(name), c.as_deref(), 500).await },
            )
            .await?;
        Ok(all
            .into_iter()
            .filter(|i| i.version == Some(version))
            .collect())
    }
}
