//! Evidence on the local disk: manifests, card revisions and evaluation reports under
//! `DIR/evidence/<kind>/<sha256>`, and artifact checks and small-file reads for `file://` URIs.
//!
//! Invariants:
//! - A file's name is the SHA-256 of its contents; it is written once (to a temporary name,
//!   then renamed) and never rewritten, so a reader sees all of it or nothing.
//! - Only `file://` URIs are read; [`Evidence::read_file`] never holds more than its
//!   `max_bytes` of a file (a larger one is [`SmallFile::Unreadable`], not truncated).

use std::io::Read;
use std::path::PathBuf;

use async_trait::async_trait;
use sha2::Digest;
use steward_core::ports::{ArtifactCheck, Evidence, EvidenceKind, SmallFile};
use steward_core::types::Sha256;
use steward_core::StoreError;

/// Content-addressed evidence files in a data directory.
#[derive(Debug, Clone)]
pub struct FileEvidence {
    root: PathBuf,
}

impl FileEvidence {
    pub fn new(data_dir: &std::path::Path) -> Self {
        Self {
            root: data_dir.join("evidence"),
        }
    }

    /// Where evidence of `kind` with digest `sha` lives.
    pub fn path(&self, kind: EvidenceKind, sha: &Sha256) -> PathBuf {
        self.root.join(kind.as_str()).join(sha.to_hex())
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::backend("evidence", e)
}

/// The scheme of a URI that is not `file://`, for the reason it is not read.
fn scheme_of(uri: &str) -> &str {
    uri.split_once("://")
        .map(|(s, _)| s)
        .unwrap_or("a URI without scheme")
}

/// At most `max_bytes` of the file at `path`: more is [`SmallFile::Unreadable`].
fn read_small(path: &str, max_bytes: usize) -> SmallFile {
    let too_large = || SmallFile::Unreadable(format!("larger than {max_bytes} bytes"));
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return SmallFile::Absent,
        Err(e) => return SmallFile::Unreadable(format!("cannot read {path}: {e}")),
    };
    match file.metadata() {
        Ok(m) if m.is_dir() => return SmallFile::Unreadable(format!("{path} is a directory")),
        Ok(m) if m.len() > max_bytes as u64 => return too_large(),
        _ => {}
    }
    // The length may change under us: read one byte past the limit to notice.
    let mut bytes = Vec::new();
    let limit = (max_bytes as u64).saturating_add(1);
    if let Err(e) = file.take(limit).read_to_end(&mut bytes) {
        return SmallFile::Unreadable(format!("cannot read {path}: {e}"));
    }
    if bytes.len() > max_bytes {
        return too_large();
    }
    SmallFile::Found(bytes)
}

#[async_trait]
impl Evidence for FileEvidence {
    async fn put(&self, kind: EvidenceKind, bytes: &[u8]) -> Result<Sha256, StoreError> {
        let sha = Sha256::digest(bytes);
        let path = self.path(kind, &sha);
        if path.exists() {
            return Ok(sha);
        }
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!(
            ".{}.{}",
            sha.to_hex(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(sha)
    }

    async fn check_artifact(
        &self,
        uri: &str,
        expected: &Sha256,
    ) -> Result<ArtifactCheck, StoreError> {
        let Some(path) = uri.strip_prefix("file://") else {
            let scheme = scheme_of(uri);
            return Ok(ArtifactCheck::NotChecked {
                reason: format!("the embedded backend reads file:// artifacts, not {scheme}"),
            });
        };
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                return Ok(ArtifactCheck::NotChecked {
                    reason: format!("cannot read {path}: {e}"),
                })
            }
        };
        // An MLflow model is often a directory (the registered source itself): it has no one
        // digest to compare, so it is recorded as not checked rather than failing the read.
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Ok(ArtifactCheck::NotChecked {
                reason: format!("{path} is a directory: only a file's digest is checked"),
            });
        }
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            hasher.update(&buf[..n]);
        }
        let actual = Sha256::from_bytes(hasher.finalize().into());
        Ok(if actual == *expected {
            ArtifactCheck::Verified { size }
        } else {
            ArtifactCheck::Mismatch { actual }
        })
    }

    /// A `file://` file of at most `max_bytes`. Not there: [`SmallFile::Absent`]; another
    /// scheme, a directory, no permission or too large: [`SmallFile::Unreadable`].
    async fn read_file(&self, uri: &str, max_bytes: usize) -> Result<SmallFile, StoreError> {
        let Some(path) = uri.strip_prefix("file://") else {
            return Ok(SmallFile::Unreadable(format!(
                "the embedded backend reads file:// files, not {}",
                scheme_of(uri)
            )));
        };
        Ok(read_small(path, max_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(bytes: &[u8]) -> Sha256 {
        Sha256::from_bytes(sha2::Sha256::digest(bytes).into())
    }

    #[tokio::test]
    async fn a_file_artifact_is_verified_or_mismatched_and_a_directory_is_not_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ev = FileEvidence::new(dir.path());
        let model = dir.path().join("model");
        std::fs::create_dir(&model).unwrap();
        std::fs::write(model.join("model.pkl"), b"weights").unwrap();
        let file = format!("file://{}", model.join("model.pkl").display());

        let got = ev.check_artifact(&file, &digest(b"weights")).await.unwrap();
        assert_eq!(got, ArtifactCheck::Verified { size: 7 });
        let got = ev.check_artifact(&file, &digest(b"other")).await.unwrap();
        assert_eq!(
            got,
            ArtifactCheck::Mismatch {
                actual: digest(b"weights")
            }
        );
        let got = ev
            .check_artifact(&format!("file://{}", model.display()), &digest(b"weights"))
            .await
            .unwrap();
        assert!(
            matches!(&got, ArtifactCheck::NotChecked { reason } if reason.contains("is a directory")),
            "{got:?}"
        );
    }
}
