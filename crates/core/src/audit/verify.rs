//! The audit-log verifier behind `steward audit verify`.
//!
//! Invariants the verifier enforces, trusting nothing but the public key it is given:
//! - every checkpoint is signed by that key, with that key's algorithm (Ed25519 or ECDSA
//!   P-256, see [`PublicKey`]), and checkpoint sizes and times never decrease;
//! - the stored rows are events `1..=n` in order, with no gap, duplicate or reordering;
//! - the latest checkpoint covers exactly the `n` stored events (fewer means truncation or
//!   deletion, more means events nobody signed);
//! - every leaf is recomputed from the stored bytes, every claimed leaf hash equals it, and
//!   every checkpoint's root equals the root of the tree of its first `size` leaves.
//!
//! Together these reject any change, deletion, reordering or truncation of signed events.
//! What a verifier holding only the log cannot detect is the log *and* its checkpoints being
//! cut back together to an earlier signed state; callers that remember a checkpoint (from a
//! previous run, a witness, or the Object Lock bucket) should also check the new latest
//! checkpoint is consistent with it ([`super::merkle::verify_consistency`]).
//!
//! Speed: the fast path only hashes bytes, compares integers and builds the cached tree
//! (`O(n)` hashes plus `O(log n)` per checkpoint root) and verifies one signature per
//! checkpoint. Event JSON is parsed only after something failed, to name the first bad event.

use chrono::DateTime;
use ed25519_dalek::VerifyingKey;
use thiserror::Error;

use super::checkpoint::{verify_checkpoint_as, Checkpoint, CheckpointError, PublicKey};
use super::event::AuditEvent;
use super::merkle::{empty_root, leaf_hash, verify_inclusion, Hash, MerkleTree, ProofError};

/// One stored audit row as a verifier receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The row's sequence number (its position in the store).
    pub seq: u64,
    /// The event's canonical encoding exactly as stored.
    pub bytes: Vec<u8>,
    /// The leaf hash the store or API claims for the row, if it sent one.
    pub leaf_hash: Option<Hash>,
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of events verified.
    pub events: u64,
    /// Number of checkpoints verified.
    pub checkpoints: u64,
    /// Tree size of the latest checkpoint (equals `events`).
    pub size: u64,
    /// Root of the whole log, as signed by the latest checkpoint.
    pub root: Hash,
}

/// Why a log does not verify; each variant names the event seq or checkpoint size at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// There are events but no checkpoint signs any of them.
    #[error("the log has {events} events but no checkpoint")]
    NoCheckpoint { events: u64 },
    /// A checkpoint names a key other than the trusted one.
    #[error("checkpoint of size {size} names key {key_id}, not the trusted key")]
    WrongKey { size: u64, key_id: String },
    /// A checkpoint's signature does not verify with the trusted key.
    #[error("checkpoint of size {size} has an invalid signature")]
    BadSignature { size: u64 },
    /// A checkpoint is smaller than the one before it.
    #[error("checkpoint of size {size} follows a checkpoint of size {previous}")]
    CheckpointSizeDecreased { size: u64, previous: u64 },
    /// A checkpoint's time is not an RFC 3339 time.
    #[error("checkpoint of size {size} has an invalid time {time:?}")]
    InvalidCheckpointTime { size: u64, time: String },
    /// A checkpoint is dated before the one before it.
    #[error("checkpoint of size {size} is dated before the checkpoint preceding it")]
    CheckpointTimeDecreased { size: u64 },
    /// Rows are not numbered `1..=n` in order: an event was deleted, duplicated or moved.
    #[error(
        "expected event {expected}, found event {found}: an event was deleted, duplicated or moved"
    )]
    SequenceGap { expected: u64, found: u64 },
    /// The latest checkpoint signs more events than are stored.
    #[error("the latest checkpoint signs {checkpoint_size} events but only {events} are stored: the log was truncated")]
    Truncated { checkpoint_size: u64, events: u64 },
    /// More events are stored than the latest checkpoint signs.
    #[error("only {signed} of {events} events are signed by a checkpoint")]
    UnsignedEvents { signed: u64, events: u64 },
    /// The stored bytes of an event are not JSON of an audit event.
    #[error("event {seq} cannot be parsed")]
    Unparseable { seq: u64 },
    /// The event stored at `seq` says it is event `claimed`.
    #[error("the event stored at seq {seq} says it is event {claimed}")]
    Misplaced { seq: u64, claimed: u64 },
    /// The stored bytes are not the canonical encoding of the event they contain.
    #[error("event {seq} is not stored in its canonical encoding")]
    NotCanonical { seq: u64 },
    /// The leaf hash stored or sent for an event does not match its bytes.
    #[error("the leaf hash recorded for event {seq} does not match its bytes")]
    LeafHashMismatch { seq: u64 },
    /// Event `seq` differs from the event the checkpoints signed.
    #[error("event {seq} was altered after it was signed")]
    EventAltered { seq: u64 },
    /// A checkpoint's root disagrees with the stored events; some event in
    /// `altered_after + 1 ..= size` was altered (no checkpoint narrows it further).
    #[error("checkpoint of size {size} does not match the stored events: an event after seq {altered_after} was altered")]
    RootMismatch { size: u64, altered_after: u64 },
    /// An inclusion proof was asked for an event the checkpoint does not cover.
    #[error("event {seq} is not covered by the checkpoint of size {size}")]
    NotCovered { seq: u64, size: u64 },
    /// An inclusion proof for an event does not verify against the checkpoint.
    #[error("the inclusion proof of event {seq} does not verify: {source}")]
    InclusionFailed {
        seq: u64,
        #[source]
        source: ProofError,
    },
}

/// Verifies a whole stored log against its checkpoints and the trusted Ed25519 public key:
/// [`verify_log_with`] for an Ed25519 key.
pub fn verify_log(
    events: &[StoredEvent],
    checkpoints: &[Checkpoint],
    public_key: &VerifyingKey,
) -> Result<VerifyReport, VerifyError> {
    verify_log_with(events, checkpoints, &PublicKey::Ed25519(*public_key))
}

/// Verifies a whole stored log against its checkpoints and the trusted public key, whose
/// algorithm alone decides how checkpoint signatures are checked.
///
/// `events` must be the rows in the order the store returns them (by seq); `checkpoints` in
/// the order they were written. An empty log with no checkpoints verifies (size 0).
pub fn verify_log_with(
    events: &[StoredEvent],
    checkpoints: &[Checkpoint],
    public_key: &PublicKey,
) -> Result<VerifyReport, VerifyError> {
    let n = events.len() as u64;
    let Some(latest) = checkpoints.last() else {
        if n == 0 {
            return Ok(VerifyReport {
                events: 0,
                checkpoints: 0,
                size: 0,
                root: empty_root(),
            });
        }
        return Err(VerifyError::NoCheckpoint { events: n });
    };

    // Signatures first: until we know which checkpoints are authentic, a size or root
    // disagreement could be a forged checkpoint rather than a damaged log.
    verify_checkpoints(checkpoints, public_key)?;

    for (i, event) in events.iter().enumerate() {
        let expected = i as u64 + 1;
        if event.seq != expected {
            return Err(VerifyError::SequenceGap {
                expected,
                found: event.seq,
            });
        }
    }
    if latest.size > n {
        return Err(VerifyError::Truncated {
            checkpoint_size: latest.size,
            events: n,
        });
    }
    if latest.size < n {
        return Err(VerifyError::UnsignedEvents {
            signed: latest.size,
            events: n,
        });
    }

    let (leaves, claims_hold) = leaves_of(events);
    let tree = MerkleTree::from_leaves(leaves);
    let roots_hold = checkpoints
        .iter()
        .all(|cp| tree.root_at(cp.size).is_ok_and(|root| root == cp.root));
    if !(claims_hold && roots_hold) {
        return Err(diagnose(events, checkpoints, &tree));
    }

    Ok(VerifyReport {
        events: n,
        checkpoints: checkpoints.len() as u64,
        size: latest.size,
        root: latest.root,
    })
}

/// Below this many events the leaves are hashed on the calling thread: spawning costs more.
const PARALLEL_FROM: usize = 16_384;

/// Every event's leaf hash, recomputed from its bytes, and whether every stored claim of a leaf
/// hash matches. Hashing is the whole cost of verification, so it is spread over the machine's
/// cores (scoped threads, one contiguous chunk each, results in order); the result does not
/// depend on how many there are.
fn leaves_of(events: &[StoredEvent]) -> (Vec<Hash>, bool) {
    fn chunk(events: &[StoredEvent]) -> (Vec<Hash>, bool) {
        let mut holds = true;
        let leaves = events
            .iter()
            .map(|event| {
                let leaf = leaf_hash(&event.bytes);
                if let Some(claimed) = event.leaf_hash {
                    holds &= claimed == leaf;
                }
                leaf
            })
            .collect();
        (leaves, holds)
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || events.len() < PARALLEL_FROM {
        return chunk(events);
    }
    let size = events.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = events
            .chunks(size)
            .map(|part| scope.spawn(move || chunk(part)))
            .collect();
        let mut leaves = Vec::with_capacity(events.len());
        let mut holds = true;
        for part in parts {
            let (l, h) = part
                .join()
                .expect("hashing a chunk of leaves does not panic");
            leaves.extend(l);
            holds &= h;
        }
        (leaves, holds)
    })
}

/// Verifies, for server mode, that `event` is included in the log signed by `checkpoint`,
/// using an inclusion proof (leaf index `seq - 1`).
///
/// This checks the proof only: verify `checkpoint` itself with
/// [`super::checkpoint::verify_checkpoint_with`] before trusting its root.
pub fn verify_inclusion_of(
    event: &AuditEvent,
    proof: &[Hash],
    checkpoint: &Checkpoint,
) -> Result<(), VerifyError> {
    let (seq, size) = (event.seq, checkpoint.size);
    if seq == 0 || seq > size {
        return Err(VerifyError::NotCovered { seq, size });
    }
    verify_inclusion(&event.leaf_hash(), seq - 1, size, proof, &checkpoint.root)
        .map_err(|source| VerifyError::InclusionFailed { seq, source })
}

/// Signature, key, size order and time order of every checkpoint.
fn verify_checkpoints(checkpoints: &[Checkpoint], key: &PublicKey) -> Result<(), VerifyError> {
    let key_id = key.key_id();
    let mut previous: Option<(u64, DateTime<chrono::FixedOffset>)> = None;
    for cp in checkpoints {
        verify_checkpoint_as(cp, key, &key_id).map_err(|e| match e {
            CheckpointError::KeyIdMismatch { found, .. } => VerifyError::WrongKey {
                size: cp.size,
                key_id: found,
            },
            CheckpointError::MalformedSignature { .. } | CheckpointError::BadSignature => {
                VerifyError::BadSignature { size: cp.size }
            }
        })?;
        let time = DateTime::parse_from_rfc3339(&cp.time).map_err(|_| {
            VerifyError::InvalidCheckpointTime {
                size: cp.size,
                time: cp.time.clone(),
            }
        })?;
        if let Some((prev_size, prev_time)) = previous {
            if cp.size < prev_size {
                return Err(VerifyError::CheckpointSizeDecreased {
                    size: cp.size,
                    previous: prev_size,
                });
            }
            if time < prev_time {
                return Err(VerifyError::CheckpointTimeDecreased { size: cp.size });
            }
        }
        previous = Some((cp.size, time));
    }
    Ok(())
}

/// Slow path, run only after the fast path failed: names the first bad event.
///
/// Preconditions (established by the fast path): checkpoints are authentic and ordered, rows
/// are numbered `1..=n`, and the latest checkpoint has size `n`.
fn diagnose(events: &[StoredEvent], checkpoints: &[Checkpoint], tree: &MerkleTree) -> VerifyError {
    // An authentic checkpoint that agrees with the tree vouches for every event up to its
    // size, so the first disagreeing one bounds the first altered event from above and the
    // last agreeing one before it bounds it from below.
    let mut altered_after = 0;
    let mut first_bad = None;
    for cp in checkpoints {
        if tree.root_at(cp.size).is_ok_and(|root| root == cp.root) {
            altered_after = altered_after.max(cp.size);
        } else {
            first_bad = Some(cp.size);
            break;
        }
    }

    // A defect inside an event is a more precise finding than a root mismatch, as long as it
    // is not past the first disagreeing checkpoint.
    let limit = first_bad.unwrap_or(u64::MAX);
    for (i, stored) in events.iter().enumerate() {
        if stored.seq > limit {
            break;
        }
        let leaf = tree
            .leaf(i as u64)
            .unwrap_or_else(|| leaf_hash(&stored.bytes));
        if let Some(fault) = event_fault(stored, &leaf) {
            return fault;
        }
    }

    match first_bad {
        Some(size) if size == altered_after + 1 => VerifyError::EventAltered { seq: size },
        Some(size) => VerifyError::RootMismatch {
            size,
            altered_after,
        },
        // Unreachable: the fast path failed, so a root or a claimed leaf hash disagreed, and a
        // claimed hash mismatch is an event fault. Still report something true.
        None => VerifyError::RootMismatch {
            size: checkpoints.last().map_or(0, |cp| cp.size),
            altered_after,
        },
    }
}

/// What is wrong with one stored event on its own, if anything.
fn event_fault(stored: &StoredEvent, leaf: &Hash) -> Option<VerifyError> {
    let seq = stored.seq;
    let Ok(event) = AuditEvent::from_canonical(&stored.bytes) else {
        return Some(VerifyError::Unparseable { seq });
    };
    if event.seq != seq {
        return Some(VerifyError::Misplaced {
            seq,
            claimed: event.seq,
        });
    }
    if event.canonical_bytes() != stored.bytes {
        return Some(VerifyError::NotCanonical { seq });
    }
    if stored.leaf_hash.is_some_and(|claimed| claimed != *leaf) {
        return Some(VerifyError::LeafHashMismatch { seq });
    }
    None
}

#[cfg(test)]
mod tests;
