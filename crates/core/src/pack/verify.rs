//! Offline verification of an evidence pack with a trusted public key.
//!
//! Invariants: nothing in the pack is trusted before the manifest signature verifies with the
//! key the caller pins; after that, every file must be exactly the manifest's, every event
//! canonical and proven against the pack's checkpoint (itself signed by the same key), and
//! every fact of the document must say what the event it cites says. The first failure is the
//! answer, with the file or fact it concerns.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::document::{Citation, Document, Signed, DOCUMENT_FORMAT};
use super::*;
use crate::audit::checkpoint::verify_checkpoint_with;
use crate::audit::merkle::verify_inclusion;
use crate::audit::PublicKey;

/// Why a pack does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PackError {
    #[error("the pack has no {0}")]
    Missing(String),
    #[error("{file} is not readable: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("the manifest was signed by key {found}, not by the key given ({expected})")]
    WrongKey { expected: String, found: String },
    #[error("manifest.sig does not verify with the key given: {0}")]
    Signature(String),
    #[error("{0} is in the pack but not in the signed manifest")]
    Unlisted(String),
    #[error("{0} is in the signed manifest but missing from the pack")]
    Removed(String),
    #[error(
        "{file} has been altered: its SHA-256 is {actual}, the signed manifest says {expected}"
    )]
    Altered {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("checkpoint.json does not verify: {0}")]
    Checkpoint(String),
    #[error("audit event {seq}: {reason}")]
    Event { seq: u64, reason: String },
    #[error(
        "the inclusion proof of audit event {seq} does not lead to the checkpoint's root: {reason}"
    )]
    Proof { seq: u64, reason: String },
    #[error("{fact} in the document does not match audit event {seq}: {reason}")]
    Fact {
        fact: String,
        seq: u64,
        reason: String,
    },
    #[error("the document does not match its events: {0}")]
    Document(String),
    #[error("document.html is not the rendering of document.json")]
    Html,
}

/// What a verified pack holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPack {
    pub model: String,
    pub version: u32,
    pub files: usize,
    pub events: usize,
    pub facts: usize,
    pub checkpoint_size: u64,
    pub key_id: String,
    /// Whether `document.html` was rendered again and compared (its renderer is known here).
    pub html_compared: bool,
}

fn get<'p>(pack: &'p Pack, file: &str) -> Result<&'p [u8], PackError> {
    pack.files
        .get(file)
        .map(Vec::as_slice)
        .ok_or_else(|| PackError::Missing(file.to_owned()))
}

fn parse<T: serde::de::DeserializeOwned>(file: &str, bytes: &[u8]) -> Result<T, PackError> {
    serde_json::from_slice(bytes).map_err(|e| PackError::Unreadable {
        file: file.to_owned(),
        reason: e.to_string(),
    })
}

/// Verifies `pack` with `key` (see the module's invariants).
pub fn verify_pack(pack: &Pack, key: &PublicKey) -> Result<VerifiedPack, PackError> {
    let manifest_bytes = get(pack, MANIFEST)?;
    let manifest: Manifest = parse(MANIFEST, manifest_bytes)?;
    let key_id = key.key_id();
    if manifest.key_id != key_id {
        return Err(PackError::WrongKey {
            expected: key_id,
            found: manifest.key_id,
        });
    }
    let sig_text = std::str::from_utf8(get(pack, SIGNATURE)?).unwrap_or_default();
    let signature = hex::decode(sig_text.trim())
        .map_err(|_| PackError::Signature("manifest.sig is not hex".into()))?;
    key.verify(&signing_message(manifest_bytes), &signature)
        .map_err(|e| PackError::Signature(e.to_string()))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(PackError::Unreadable {
            file: MANIFEST.into(),
            reason: format!("unknown format {:?}", manifest.format),
        });
    }

    // Exactly the signed files, each with its signed hash.
    for path in pack.files.keys() {
        if path != MANIFEST && path != SIGNATURE && !manifest.files.contains_key(path) {
            return Err(PackError::Unlisted(path.clone()));
        }
    }
    for (path, expected) in &manifest.files {
        let bytes = pack
            .files
            .get(path)
            .ok_or_else(|| PackError::Removed(path.clone()))?;
        let actual = hex::encode(Sha256::digest(bytes));
        if &actual != expected {
            return Err(PackError::Altered {
                file: path.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }

    let checkpoint: Checkpoint = parse(CHECKPOINT, get(pack, CHECKPOINT)?)?;
    verify_checkpoint_with(&checkpoint, key).map_err(|e| PackError::Checkpoint(e.to_string()))?;

    // Every event canonical, named as its file, and proven against the checkpoint.
    let mut events = BTreeMap::new();
    for path in manifest.files.keys().filter(|p| p.starts_with("events/")) {
        let bytes = get(pack, path)?;
        let event = AuditEvent::from_canonical(bytes).map_err(|e| PackError::Unreadable {
            file: path.clone(),
            reason: e.to_string(),
        })?;
        let seq = event.seq;
        if *path != event_path(seq) {
            return Err(PackError::Event {
                seq,
                reason: format!("it is stored as {path}, not {}", event_path(seq)),
            });
        }
        if event.canonical_bytes() != bytes {
            return Err(PackError::Event {
                seq,
                reason: "its bytes are not its canonical encoding".into(),
            });
        }
        prove(pack, &event, &checkpoint)?;
        events.insert(seq, event);
    }
    for path in manifest.files.keys().filter(|p| p.starts_with("proofs/")) {
        let seq = path
            .trim_start_matches("proofs/")
            .trim_end_matches(".json")
            .parse::<u64>()
            .unwrap_or(0);
        if !events.contains_key(&seq) {
            return Err(PackError::Document(format!(
                "{path} proves an event the pack does not hold"
            )));
        }
    }

    let document: Document = parse(DOCUMENT_JSON, get(pack, DOCUMENT_JSON)?)?;
    let facts = check_document(&document, &manifest, &checkpoint, &events)?;

    let html_compared = document.renderer == RENDERER;
    if html_compared && render_html(&document).as_bytes() != get(pack, DOCUMENT_HTML)? {
        return Err(PackError::Html);
    }
    Ok(VerifiedPack {
        model: manifest.model.to_string(),
        version: manifest.version.get(),
        files: manifest.files.len() + 2,
        events: events.len(),
        facts,
        checkpoint_size: checkpoint.size,
        key_id,
        html_compared,
    })
}

fn prove(pack: &Pack, event: &AuditEvent, checkpoint: &Checkpoint) -> Result<(), PackError> {
    let seq = event.seq;
    let path = proof_path(seq);
    let proof: ProofFile = parse(&path, get(pack, &path)?)?;
    let fail = |reason: String| PackError::Proof { seq, reason };
    if proof.seq != seq {
        return Err(fail(format!("{path} is the proof of event {}", proof.seq)));
    }
    if proof.size != checkpoint.size {
        return Err(fail(format!(
            "it is against a tree of {} events, the checkpoint covers {}",
            proof.size, checkpoint.size
        )));
    }
    if seq == 0 || seq > checkpoint.size {
        return Err(fail(format!(
            "the checkpoint covers events 1 to {} only",
            checkpoint.size
        )));
    }
    let leaf = event.leaf_hash();
    if proof.leaf_hash != hex::encode(leaf) {
        return Err(fail("its leaf hash is not the event's".into()));
    }
    let hashes = proof
        .hashes
        .iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).map(|_| out)
        })
        .collect::<Result<Vec<Hash>, _>>()
        .map_err(|_| fail("a hash is not 64 hex digits".into()))?;
    verify_inclusion(&leaf, seq - 1, checkpoint.size, &hashes, &checkpoint.root)
        .map_err(|e| fail(e.to_string()))
}

/// Checks the document against the manifest, the checkpoint and the events; returns how many
/// facts cite an event.
fn check_document(
    d: &Document,
    manifest: &Manifest,
    checkpoint: &Checkpoint,
    events: &BTreeMap<u64, AuditEvent>,
) -> Result<usize, PackError> {
    let doc = |reason: String| Err(PackError::Document(reason));
    if d.format != DOCUMENT_FORMAT {
        return doc(format!("unknown document format {:?}", d.format));
    }
    if d.model != manifest.model || d.version != manifest.version {
        return doc("it documents another version than the manifest names".into());
    }
    if d.checkpoint.size != checkpoint.size || d.checkpoint.root != hex::encode(checkpoint.root) {
        return doc("it names another checkpoint than checkpoint.json".into());
    }
    // The lifecycle is exactly the pack's events, in order, as they say.
    let listed: BTreeSet<u64> = d.lifecycle.iter().map(|e| e.seq).collect();
    let held: BTreeSet<u64> = events.keys().copied().collect();
    if let Some(seq) = listed.difference(&held).next() {
        return doc(format!(
            "it lists audit event {seq}, which the pack does not hold"
        ));
    }
    if let Some(seq) = held.difference(&listed).next() {
        return doc(format!(
            "the pack holds audit event {seq}, which the document's lifecycle leaves out"
        ));
    }
    if listed.len() != d.lifecycle.len() {
        return doc("its lifecycle lists an event twice".into());
    }
    for entry in &d.lifecycle {
        let e = &events[&entry.seq];
        let fail = |reason: String| PackError::Fact {
            fact: "lifecycle".into(),
            seq: e.seq,
            reason,
        };
        if e.name.as_deref() != Some(d.model.as_ref()) || e.version != Some(d.version) {
            return Err(fail(format!(
                "the event is about {} version {}",
                e.name.as_deref().unwrap_or("no model"),
                e.version.map_or("none".into(), |v| v.to_string())
            )));
        }
        if (
            entry.time.as_str(),
            entry.actor.as_str(),
            entry.action.as_str(),
        ) != (e.time.as_str(), e.actor.as_str(), e.action.as_str())
        {
            return Err(fail(format!(
                "the lifecycle says {} by {} at {}, the event {} by {} at {}",
                entry.action, entry.actor, entry.time, e.action, e.actor, e.time
            )));
        }
    }
    let mut facts = 0;
    for (citation, signed) in d.citations() {
        let Some(seq) = signed.event else { continue };
        let Some(event) = events.get(&seq) else {
            return doc(format!(
                "{} cites audit event {seq}, which the pack does not hold",
                citation.describe()
            ));
        };
        check_fact(d, citation, signed, event).map_err(|reason| PackError::Fact {
            fact: citation.describe(),
            seq,
            reason,
        })?;
        facts += 1;
    }
    Ok(facts)
}

fn same(what: &str, document: &Value, event: Option<&Value>) -> Result<(), String> {
    let event = event.cloned().unwrap_or(Value::Null);
    if *document == event {
        Ok(())
    } else {
        Err(format!(
            "{what}: the document says {document}, the event {event}"
        ))
    }
}

/// Whether one fact says what its event says: who, when, which action, and the values the
/// event records.
fn check_fact(
    d: &Document,
    citation: Citation<'_>,
    signed: &Signed,
    e: &AuditEvent,
) -> Result<(), String> {
    if signed.by != e.actor {
        return Err(format!(
            "the document names {}, the event {}",
            signed.by, e.actor
        ));
    }
    if signed.at != e.time {
        return Err(format!(
            "the document dates it {}, the event {}",
            signed.at, e.time
        ));
    }
    let action = |expected: &[&str]| {
        if expected.contains(&e.action.as_str()) {
            Ok(())
        } else {
            Err(format!(
                "the event is {}, not {}",
                e.action,
                expected.join(" or ")
            ))
        }
    };
    let x = |key: &str| e.details.get(key);
    match citation {
        Citation::Registration => {
            action(&["version.registered"])?;
            let g = &d.general;
            same(
                "the artifact's SHA-256",
                &json!(g.artifact.sha256),
                x("artifact").and_then(|a| a.get("sha256")),
            )?;
            same(
                "the artifact's URI",
                &json!(g.artifact.uri),
                x("artifact").and_then(|a| a.get("uri")),
            )?;
            same("the code", &json!(d.development.code), x("code"))?;
            let shas: Vec<_> = d
                .development
                .training_data
                .iter()
                .map(|t| t.sha256)
                .collect();
            same(
                "the training data's SHA-256s",
                &json!(shas),
                x("training_data_sha256"),
            )?;
            same(
                "the training job",
                &json!(d.development.training_job),
                x("training_job"),
            )?;
            same("the risk tier", &json!(g.risk_tier), x("risk_tier"))?;
        }
        Citation::CardRevision(c) => {
            if c.revision == 1 {
                action(&["version.registered"])?;
            } else {
                action(&["card.revised"])?;
                same("the revision", &json!(c.revision), x("card_revision"))?;
            }
            same(
                "the card's SHA-256",
                &json!(c.card_sha256),
                x("card_sha256"),
            )?;
        }
        Citation::Evaluation(ev) => {
            action(&["evaluation.recorded", "version.registered"])?;
            if e.action == "evaluation.recorded" {
                same("the evaluation", &json!(ev.name), x("evaluation"))?;
                same(
                    "the test data's SHA-256",
                    &json!(ev.dataset.sha256),
                    x("dataset_sha256"),
                )?;
                same("the metrics", &json!(ev.metrics), x("metrics"))?;
            } else {
                let listed = x("evaluations")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|i| i.get("name") == Some(&json!(ev.name))));
                same(
                    "the test data's SHA-256",
                    &json!(ev.dataset.sha256),
                    listed.and_then(|i| i.get("dataset_sha256")),
                )?;
            }
        }
        Citation::PromotionRequested(p) => {
            action(&["promotion.requested"])?;
            same("the promotion", &json!(p.id), x("promotion_id"))?;
            same("the target", &json!(p.target), x("target"))?;
        }
        Citation::ReviewDecided(r) => {
            action(&["review.decided"])?;
            same("the review", &json!(r.id), x("review_id"))?;
            same("the stage", &json!(r.stage), x("stage"))?;
            same("the decision", &json!(r.decision), x("decision"))?;
            same("the comment", &json!(r.comment), x("comment"))?;
            same("the conditions", &json!(r.conditions), x("conditions"))?;
            let automatic = x("automatic").and_then(Value::as_bool).unwrap_or(false);
            same(
                "whether policy decided it",
                &json!(r.automatic),
                Some(&json!(automatic)),
            )?;
        }
        Citation::Deployment(dep) => {
            action(&["version.deployed"])?;
            same("the environment", &json!(dep.environment), x("environment"))?;
        }
    }
    Ok(())
}
