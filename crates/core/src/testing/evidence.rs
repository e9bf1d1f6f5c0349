//! Evidence in memory: content-addressed bytes and artifacts a test declares readable.
//!
//! Invariants: `put` keeps bytes under their SHA-256 (the same bytes twice are one entry, as
//! in the file and S3 stores); `check_artifact` reads only artifacts a test added with
//! [`MemoryEvidence::add_artifact`] and reports every other URI as not checked, as a backend
//! does for a scheme it cannot read.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ports::{ArtifactCheck, Evidence, EvidenceKind};
use crate::types::Sha256;

/// The [`Evidence`] port in memory.
#[derive(Debug, Default)]
pub struct MemoryEvidence {
    stored: Mutex<HashMap<Sha256, (EvidenceKind, Vec<u8>)>>,
    artifacts: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryEvidence {
    /// Makes the artifact at `uri` readable with these bytes.
    pub fn add_artifact(&self, uri: &str, bytes: &[u8]) {
        lock(&self.artifacts).insert(uri.to_owned(), bytes.to_vec());
    }

    /// The bytes stored under `sha256`, if any.
    pub fn get(&self, sha256: &Sha256) -> Option<(EvidenceKind, Vec<u8>)> {
        lock(&self.stored).get(sha256).cloned()
    }

    /// How many distinct pieces of evidence of `kind` are stored.
    pub fn count(&self, kind: EvidenceKind) -> usize {
        lock(&self.stored)
            .values()
            .filter(|(k, _)| *k == kind)
            .count()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl Evidence for MemoryEvidence {
    async fn put(&self, kind: EvidenceKind, bytes: &[u8]) -> Result<Sha256, StoreError> {
        let sha = Sha256::digest(bytes);
        lock(&self.stored)
            .entry(sha)
            .or_insert_with(|| (kind, bytes.to_vec()));
        Ok(sha)
    }

    async fn check_artifact(
        &self,
        uri: &str,
        expected: &Sha256,
    ) -> Result<ArtifactCheck, StoreError> {
        let Some(bytes) = lock(&self.artifacts).get(uri).cloned() else {
            return Ok(ArtifactCheck::NotChecked {
                reason: format!("{uri} is not an artifact this test made readable"),
            });
        };
        let actual = Sha256::digest(&bytes);
        Ok(if actual == *expected {
            ArtifactCheck::Verified {
                size: bytes.len() as u64,
            }
        } else {
            ArtifactCheck::Mismatch { actual }
        })
    }
}
