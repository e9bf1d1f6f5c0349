//! Evidence packs: a model version's technical documentation (EU AI Act Annex IV) as auditors
//! take it away, signed and verifiable offline.
//!
//! A pack is a set of files (a zip, or a directory once unpacked):
//! `document.html` (printable), `document.json` (the same content, [`Document`]),
//! `events/<seq>.json` (every audit event the document cites, canonical bytes),
//! `proofs/<seq>.json` (each event's inclusion proof against the checkpoint),
//! `checkpoint.json` (the signed checkpoint), `manifest.json` (the SHA-256 of every other
//! file) and `manifest.sig` (hex signature by the audit key over [`signing_message`]).
//!
//! Invariants:
//! - The manifest lists every file but itself and its signature, and nothing else.
//! - What is signed is `steward-evidence-manifest/v1\n` followed by the manifest's exact bytes,
//!   so a manifest signature can never pass for a checkpoint signature (whose message starts
//!   `steward-audit-checkpoint/v1\n`), though both are made with the same key.
//! - Every proof is against the pack's one checkpoint, which covers every cited event.

mod archive;
mod build;
pub mod document;
mod html;
mod verify;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use archive::{from_zip, to_zip, valid_path, ArchiveError, MAX_BYTES, MAX_FILES};
pub use build::{build_document, PackInputs};
pub use document::Document;
pub use html::{render_html, RENDERER};
pub use verify::{verify_pack, PackError, VerifiedPack};

use crate::audit::{AuditEvent, Checkpoint, Hash};
use crate::ids::VersionNumber;
use crate::types::ModelName;

pub const DOCUMENT_HTML: &str = "document.html";
pub const DOCUMENT_JSON: &str = "document.json";
pub const CHECKPOINT: &str = "checkpoint.json";
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
/// `manifest.json`'s `format`.
pub const MANIFEST_FORMAT: &str = "steward-evidence-manifest/v1";

/// Where event `seq` is in a pack.
pub fn event_path(seq: u64) -> String {
    format!("events/{seq:012}.json")
}

/// Where the inclusion proof of event `seq` is in a pack.
pub fn proof_path(seq: u64) -> String {
    format!("proofs/{seq:012}.json")
}

/// The bytes the manifest signature covers.
pub fn signing_message(manifest: &[u8]) -> Vec<u8> {
    let mut m = format!("{MANIFEST_FORMAT}\n").into_bytes();
    m.extend_from_slice(manifest);
    m
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub model: ModelName,
    pub version: VersionNumber,
    pub generated_at: String,
    /// The id and algorithm of the key that signed `manifest.sig` (and the checkpoint).
    pub key_id: String,
    pub algorithm: String,
    /// Path → lowercase hex SHA-256 of the file's bytes.
    pub files: BTreeMap<String, String>,
}

/// An inclusion proof as a pack (and `GET /v1/audit/proof/{seq}`) carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofFile {
    pub seq: u64,
    pub size: u64,
    pub leaf_hash: String,
    pub hashes: Vec<String>,
}

/// A pack's files by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pack {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// A pack with its manifest written and not yet signed.
#[derive(Debug, Clone)]
pub struct UnsignedPack {
    files: BTreeMap<String, Vec<u8>>,
    manifest: Vec<u8>,
}

impl UnsignedPack {
    /// The exact bytes to sign ([`signing_message`] of the manifest).
    pub fn message(&self) -> Vec<u8> {
        signing_message(&self.manifest)
    }

    /// The pack with `signature` over [`UnsignedPack::message`].
    pub fn sign(mut self, signature: &[u8]) -> Pack {
        self.files.insert(MANIFEST.into(), self.manifest);
        self.files
            .insert(SIGNATURE.into(), hex::encode(signature).into_bytes());
        Pack { files: self.files }
    }
}

/// Pretty JSON (what a reader opens), ending in a newline.
fn pretty<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).expect("pack records serialise");
    out.push(b'\n');
    out
}

/// Lays out a pack: the document (JSON and HTML), the cited events with their proofs, the
/// checkpoint, and the manifest over all of them. `proofs` pairs each event with its
/// inclusion proof against `checkpoint`.
pub fn assemble(
    document: &Document,
    proofs: &[(AuditEvent, Vec<Hash>)],
    checkpoint: &Checkpoint,
    algorithm: &str,
) -> UnsignedPack {
    let mut files = BTreeMap::new();
    files.insert(DOCUMENT_JSON.to_owned(), pretty(document));
    files.insert(DOCUMENT_HTML.to_owned(), render_html(document).into_bytes());
    files.insert(CHECKPOINT.to_owned(), pretty(checkpoint));
    for (event, hashes) in proofs {
        files.insert(event_path(event.seq), event.canonical_bytes());
        let proof = ProofFile {
            seq: event.seq,
            size: checkpoint.size,
            leaf_hash: hex::encode(event.leaf_hash()),
            hashes: hashes.iter().map(hex::encode).collect(),
        };
        files.insert(proof_path(event.seq), pretty(&proof));
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        model: document.model.clone(),
        version: document.version,
        generated_at: document.generated_at.clone(),
        key_id: checkpoint.key_id.clone(),
        algorithm: algorithm.to_owned(),
        files: files
            .iter()
            .map(|(path, bytes)| (path.clone(), hex::encode(Sha256::digest(bytes))))
            .collect(),
    };
    UnsignedPack {
        manifest: pretty(&manifest),
        files,
    }
}
