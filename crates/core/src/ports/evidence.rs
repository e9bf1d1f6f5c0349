//! The evidence port: content-addressed evidence (manifests, card revisions, evaluation
//! reports), artifact checks and small-file reads, on the local disk or S3.
//!
//! Invariants an implementation must keep: a put is idempotent (the same bytes land on the same
//! key); an artifact check reads every byte before it says `Verified` or `Mismatch`; a read
//! never holds more than its `max_bytes` of a file (a larger one is `Unreadable`).

use async_trait::async_trait;

use crate::error::StoreError;

/// Kinds of evidence kept by content hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceKind {
    Manifest,
    ModelCard,
    EvaluationReport,
    /// A signed documentation pack (zip), kept for its retention period.
    EvidencePack,
}

impl EvidenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Manifest => "manifest",
            EvidenceKind::ModelCard => "model-card",
            EvidenceKind::EvaluationReport => "evaluation-report",
            EvidenceKind::EvidencePack => "evidence-pack",
        }
    }
}

/// What an evidence store found when it tried to read an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactCheck {
    /// Every byte was read and the SHA-256 matched.
    Verified { size: u64 },
    /// Every byte was read and the SHA-256 did not match.
    Mismatch { actual: crate::types::Sha256 },
    /// This backend cannot read artifacts at that URI; the declared hash stands.
    NotChecked { reason: String },
}

/// Content-addressed evidence (manifests, card revisions, evaluation reports) and artifact
/// checks: files locally, S3 on AWS. Writes are idempotent — the same bytes land on the same
/// key — so evidence stored for a commit that then fails is harmless.
#[async_trait]
pub trait Evidence: Send + Sync {
    /// Stores `bytes` under their SHA-256 and returns it.
    async fn put(
        &self,
        kind: EvidenceKind,
        bytes: &[u8],
    ) -> Result<crate::types::Sha256, StoreError>;
    /// Keeps a signed evidence pack (zip) under its SHA-256 until at least `retain_until`:
    /// on AWS under S3 Object Lock COMPLIANCE, which nobody can shorten or lift. Returns
    /// where it is kept. Idempotent like [`Evidence::put`].
    async fn keep_pack(
        &self,
        zip: &[u8],
        retain_until: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, StoreError> {
        let _ = retain_until;
        let sha = self.put(EvidenceKind::EvidencePack, zip).await?;
        Ok(format!(
            "{}/{}",
            EvidenceKind::EvidencePack.as_str(),
            sha.to_hex()
        ))
    }
    /// Reads the artifact at `uri` where this backend can, and compares its SHA-256.
    async fn check_artifact(
        &self,
        uri: &str,
        expected: &crate::types::Sha256,
    ) -> Result<ArtifactCheck, StoreError>;
    /// Reads a small file (at most `max_bytes`) at `uri` where this backend can: the
    /// `steward.json` manifest beside an MLflow model. Backend failures are errors; a file
    /// that is not there, or not readable from here, is an answer.
    async fn read_file(&self, uri: &str, max_bytes: usize) -> Result<SmallFile, StoreError> {
        let _ = (uri, max_bytes);
        Ok(SmallFile::Unreadable(
            "this evidence store reads no files".into(),
        ))
    }
}

/// What [`Evidence::read_file`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmallFile {
    Found(Vec<u8>),
    /// Nothing at that URI.
    Absent,
    /// Not readable from this backend (another scheme, no permission, larger than allowed).
    Unreadable(String),
}

/// Signs evidence pack manifests with the audit key: the key that signs checkpoints (Ed25519
/// locally, the KMS key on AWS). The message is always an evidence pack's
/// [`signing_message`](crate::pack::signing_message), which no checkpoint message can equal.
#[async_trait]
pub trait ManifestSigner: Send + Sync {
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, StoreError>;
}

#[async_trait]
impl ManifestSigner for crate::audit::Ed25519Signer {
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(crate::audit::CheckpointSigner::sign(self, message))
    }
}
