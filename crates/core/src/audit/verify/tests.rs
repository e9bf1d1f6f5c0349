//! Verification against tampering: every change, deletion, reordering and truncation of the stored log, and forged checkpoints, are rejected.

use super::super::checkpoint::{sign_checkpoint, CheckpointSigner, Ed25519Signer};
use super::super::event::{format_time, AuditDraft};
use super::*;
use crate::ids::VersionNumber;
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::json;
use std::sync::OnceLock;

mod p256;

const N: usize = 100;

struct Log {
    signer: Ed25519Signer,
    events: Vec<StoredEvent>,
    checkpoints: Vec<Checkpoint>,
    parsed: Vec<AuditEvent>,
    tree: MerkleTree,
}

fn draft(i: u64) -> AuditDraft {
    AuditDraft {
        time: Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap()
            + Duration::microseconds(i as i64 * 1_001),
        actor: match i % 3 {
            0 => "alice",
            _ => "bob",
        }
        .into(),
        action: "model.card.revised".into(),
        name: Some(format!("model-{}", i % 7)),
        version: match i % 5 {
            0 => None,
            r => Some(VersionNumber::new(r as u32).unwrap()),
        },
        details: json!({"revision": i, "sha256": hex::encode(leaf_hash(&i.to_be_bytes()))}),
    }
}

fn stored(event: &AuditEvent) -> StoredEvent {
    let bytes = event.canonical_bytes();
    StoredEvent {
        seq: event.seq,
        leaf_hash: Some(leaf_hash(&bytes)),
        bytes,
    }
}

/// Appends events like the store does: assign seq, push the leaf, sign a checkpoint.
fn build_log(n: usize, signer: Ed25519Signer) -> Log {
    let mut tree = MerkleTree::new();
    let (mut events, mut checkpoints, mut parsed) = (vec![], vec![], vec![]);
    for i in 1..=n as u64 {
        let event = draft(i).at(i);
        let row = stored(&event);
        tree.push(leaf_hash(&row.bytes));
        checkpoints.push(sign_checkpoint(
            &signer,
            tree.len(),
            tree.root(),
            event.time.clone(),
        ));
        events.push(row);
        parsed.push(event);
    }
    Log {
        signer,
        events,
        checkpoints,
        parsed,
        tree,
    }
}

fn log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| build_log(N, Ed25519Signer::from_seed(&[42; 32])))
}

fn verify(events: &[StoredEvent], checkpoints: &[Checkpoint]) -> Result<VerifyReport, VerifyError> {
    verify_log(events, checkpoints, &log().signer.verifying_key())
}

fn without_claims(events: &[StoredEvent]) -> Vec<StoredEvent> {
    events
        .iter()
        .map(|e| StoredEvent {
            leaf_hash: None,
            ..e.clone()
        })
        .collect()
}

/// The event seq an error blames, if it blames a single event.
fn blamed_seq(err: &VerifyError) -> Option<u64> {
    match err {
        VerifyError::Unparseable { seq }
        | VerifyError::Misplaced { seq, .. }
        | VerifyError::NotCanonical { seq }
        | VerifyError::LeafHashMismatch { seq }
        | VerifyError::EventAltered { seq } => Some(*seq),
        _ => None,
    }
}

#[test]
fn an_untouched_log_verifies() {
    let log = log();
    let report = verify(&log.events, &log.checkpoints).unwrap();
    assert_eq!(
        report,
        VerifyReport {
            events: N as u64,
            checkpoints: N as u64,
            size: N as u64,
            root: log.tree.root(),
        }
    );
    // Rows without claimed leaf hashes (e.g. straight from the table) verify too.
    verify(&without_claims(&log.events), &log.checkpoints).unwrap();
}

#[test]
fn a_log_with_only_its_latest_checkpoint_verifies() {
    let log = log();
    let report = verify(&log.events, &log.checkpoints[N - 1..]).unwrap();
    assert_eq!(report.checkpoints, 1);
}

#[test]
fn an_empty_log_verifies_with_or_without_an_empty_checkpoint() {
    let report = verify(&[], &[]).unwrap();
    assert_eq!((report.size, report.root), (0, empty_root()));
    let empty = sign_checkpoint(&log().signer, 0, empty_root(), format_time(Utc::now()));
    assert_eq!(verify(&[], &[empty]).unwrap().size, 0);
}

#[test]
fn events_without_any_checkpoint_are_rejected() {
    let log = log();
    assert_eq!(
        verify(&log.events, &[]),
        Err(VerifyError::NoCheckpoint { events: N as u64 })
    );
}

#[test]
fn events_after_the_latest_checkpoint_are_rejected_as_unsigned() {
    let log = log();
    assert_eq!(
        verify(&log.events, &log.checkpoints[..N - 3]),
        Err(VerifyError::UnsignedEvents {
            signed: N as u64 - 3,
            events: N as u64
        })
    );
}

#[test]
fn a_wrong_claimed_leaf_hash_is_rejected() {
    let log = log();
    let mut events = log.events.clone();
    events[40].leaf_hash = Some([0; 32]);
    assert_eq!(
        verify(&events, &log.checkpoints),
        Err(VerifyError::LeafHashMismatch { seq: 41 })
    );
}

#[test]
fn a_non_canonical_encoding_is_rejected() {
    let log = log();
    let mut events = log.events.clone();
    let value: serde_json::Value = serde_json::from_slice(&events[9].bytes).unwrap();
    events[9].bytes = serde_json::to_vec_pretty(&value).unwrap();
    assert_eq!(
        verify(&without_claims(&events), &log.checkpoints),
        Err(VerifyError::NotCanonical { seq: 10 })
    );
}

#[test]
fn a_validly_reencoded_change_is_blamed_on_the_altered_event() {
    let log = log();
    let mut events = log.events.clone();
    let mut event = log.parsed[59].clone();
    event.actor = "mallory".into();
    events[59] = stored(&event); // the attacker also fixes the claimed leaf hash
    assert_eq!(
        verify(&events, &log.checkpoints),
        Err(VerifyError::EventAltered { seq: 60 })
    );
}

#[test]
fn with_sparse_checkpoints_an_alteration_is_bounded_by_the_checkpoints_around_it() {
    let log = log();
    let sparse: Vec<Checkpoint> = log
        .checkpoints
        .iter()
        .skip(9)
        .step_by(10)
        .cloned()
        .collect();
    let mut events = log.events.clone();
    let mut event = log.parsed[14].clone();
    event.details = json!({"revision": 0});
    events[14] = stored(&event);
    assert_eq!(
        verify(&events, &sparse),
        Err(VerifyError::RootMismatch {
            size: 20,
            altered_after: 10
        })
    );
}

#[test]
fn deleting_an_event_and_renumbering_the_rest_is_rejected() {
    let log = log();
    let mut parsed = log.parsed.clone();
    parsed.remove(30);
    let events: Vec<StoredEvent> = parsed
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.seq = i as u64 + 1;
            stored(&e)
        })
        .collect();
    // Without the last checkpoint (it would report truncation first).
    assert_eq!(
        verify(&events, &log.checkpoints[..N - 1]),
        Err(VerifyError::EventAltered { seq: 31 })
    );
}

#[test]
fn a_forged_checkpoint_signed_with_another_key_is_rejected() {
    let log = log();
    let mallory = Ed25519Signer::from_seed(&[66; 32]);
    let mut events = log.events.clone();
    let extra = draft(N as u64 + 1).at(N as u64 + 1);
    events.push(stored(&extra));
    let mut tree = log.tree.clone();
    tree.push(leaf_hash(&extra.canonical_bytes()));
    let forged = sign_checkpoint(&mallory, tree.len(), tree.root(), extra.time.clone());

    let mut checkpoints = log.checkpoints.clone();
    checkpoints.push(forged.clone());
    assert_eq!(
        verify(&events, &checkpoints),
        Err(VerifyError::WrongKey {
            size: N as u64 + 1,
            key_id: mallory.key_id()
        })
    );

    // Claiming the trusted key's id does not help.
    checkpoints.last_mut().unwrap().key_id = log.checkpoints[0].key_id.clone();
    assert_eq!(
        verify(&events, &checkpoints),
        Err(VerifyError::BadSignature { size: N as u64 + 1 })
    );

    // Nor does replacing a genuine checkpoint in the middle.
    let mut checkpoints = log.checkpoints.clone();
    checkpoints[50] = sign_checkpoint(
        &mallory,
        51,
        log.tree.root_at(51).unwrap(),
        log.checkpoints[50].time.clone(),
    );
    assert!(matches!(
        verify(&log.events, &checkpoints),
        Err(VerifyError::WrongKey { size: 51, .. })
    ));
}

#[test]
fn a_tampered_checkpoint_is_rejected() {
    let log = log();
    let mut checkpoints = log.checkpoints.clone();
    checkpoints[20].root[3] ^= 4;
    assert_eq!(
        verify(&log.events, &checkpoints),
        Err(VerifyError::BadSignature { size: 21 })
    );
}

#[test]
fn checkpoints_going_back_in_size_or_time_are_rejected() {
    let log = log();
    let s = &log.signer;
    let mut checkpoints = log.checkpoints.clone();
    checkpoints.swap(10, 11);
    assert_eq!(
        verify(&log.events, &checkpoints),
        Err(VerifyError::CheckpointSizeDecreased {
            size: 11,
            previous: 12
        })
    );

    let mut checkpoints = log.checkpoints.clone();
    let cp = &checkpoints[10];
    checkpoints[10] = sign_checkpoint(s, cp.size, cp.root, "2020-01-01T00:00:00.000000Z".into());
    assert_eq!(
        verify(&log.events, &checkpoints),
        Err(VerifyError::CheckpointTimeDecreased { size: 11 })
    );

    let mut checkpoints = log.checkpoints.clone();
    let cp = &checkpoints[10];
    checkpoints[10] = sign_checkpoint(s, cp.size, cp.root, "yesterday".into());
    assert!(matches!(
        verify(&log.events, &checkpoints),
        Err(VerifyError::InvalidCheckpointTime { size: 11, .. })
    ));
}

#[test]
fn a_signed_checkpoint_of_a_different_history_is_rejected() {
    let log = log();
    let mut checkpoints = log.checkpoints.clone();
    let cp = &checkpoints[N - 1];
    checkpoints[N - 1] = sign_checkpoint(&log.signer, cp.size, [9; 32], cp.time.clone());
    assert_eq!(
        verify(&log.events, &checkpoints),
        Err(VerifyError::EventAltered { seq: N as u64 })
    );
}

#[test]
fn every_event_has_a_verifying_inclusion_proof() {
    let log = log();
    let latest = log.checkpoints.last().unwrap();
    for event in &log.parsed {
        let proof = log
            .tree
            .inclusion_proof(event.seq - 1, latest.size)
            .unwrap();
        verify_inclusion_of(event, &proof, latest).unwrap();
        // Also against the checkpoint signed right after the event.
        let own = &log.checkpoints[event.seq as usize - 1];
        let proof = log.tree.inclusion_proof(event.seq - 1, own.size).unwrap();
        verify_inclusion_of(event, &proof, own).unwrap();
    }
}

#[test]
fn an_inclusion_proof_of_an_altered_or_uncovered_event_is_rejected() {
    let log = log();
    let cp = &log.checkpoints[49];
    let mut event = log.parsed[9].clone();
    let proof = log.tree.inclusion_proof(9, 50).unwrap();
    event.actor = "mallory".into();
    assert_eq!(
        verify_inclusion_of(&event, &proof, cp),
        Err(VerifyError::InclusionFailed {
            seq: 10,
            source: ProofError::RootMismatch
        })
    );
    assert_eq!(
        verify_inclusion_of(&log.parsed[50], &proof, cp),
        Err(VerifyError::NotCovered { seq: 51, size: 50 })
    );
    let mut zero = log.parsed[0].clone();
    zero.seq = 0;
    assert_eq!(
        verify_inclusion_of(&zero, &[], cp),
        Err(VerifyError::NotCovered { seq: 0, size: 50 })
    );
    // A proof for one event does not prove another.
    assert!(verify_inclusion_of(&log.parsed[10], &proof, cp).is_err());
}

/// The genuine checkpoints of sizes `seq - 1`, `seq` and `N`: enough to bound an event at
/// `seq` from both sides and to cover the whole log.
///
/// Why not all 100: Ed25519 verification costs milliseconds in unoptimised test builds, so
/// the property tests below hand `verify_log` this subset (a legitimate input: any ordered
/// set of checkpoints whose latest covers the log) and the full list is exercised by
/// `every_kind_of_tampering_is_caught_with_a_checkpoint_after_every_event`.
fn checkpoints_around(seq: u64) -> Vec<Checkpoint> {
    let mut sizes = vec![seq.saturating_sub(1), seq, N as u64];
    sizes.retain(|&s| s >= 1);
    sizes.dedup();
    sizes
        .into_iter()
        .map(|s| log().checkpoints[s as usize - 1].clone())
        .collect()
}

#[test]
fn every_kind_of_tampering_is_caught_with_a_checkpoint_after_every_event() {
    let log = log();
    let all = &log.checkpoints;

    let mut flipped = without_claims(&log.events);
    let byte = flipped[70].bytes.len() / 2;
    flipped[70].bytes[byte] ^= 0x01;
    assert_eq!(blamed_seq(&verify(&flipped, all).unwrap_err()), Some(71));

    let mut deleted = log.events.clone();
    deleted.remove(3);
    assert_eq!(
        verify(&deleted, all),
        Err(VerifyError::SequenceGap {
            expected: 4,
            found: 5
        })
    );

    let mut swapped = log.events.clone();
    swapped.swap(5, 80);
    assert_eq!(
        verify(&swapped, all),
        Err(VerifyError::SequenceGap {
            expected: 6,
            found: 81
        })
    );

    assert_eq!(
        verify(&log.events[..N - 1], all),
        Err(VerifyError::Truncated {
            checkpoint_size: N as u64,
            events: N as u64 - 1
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn flipping_any_byte_of_any_event_is_rejected_and_blamed_on_that_event(
        index in 0..N,
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        keep_claims in any::<bool>(),
    ) {
        let log = log();
        let mut events = if keep_claims { log.events.clone() } else { without_claims(&log.events) };
        let at = position.index(events[index].bytes.len());
        events[index].bytes[at] ^= mask;
        let seq = index as u64 + 1;
        let err = verify(&events, &checkpoints_around(seq)).unwrap_err();
        prop_assert_eq!(blamed_seq(&err), Some(seq), "{}", err);
    }

    #[test]
    fn deleting_any_event_is_rejected(index in 0..N) {
        let log = log();
        let mut events = log.events.clone();
        events.remove(index);
        let err = verify(&events, &checkpoints_around(index as u64 + 1)).unwrap_err();
        let expected = if index == N - 1 {
            VerifyError::Truncated { checkpoint_size: N as u64, events: N as u64 - 1 }
        } else {
            VerifyError::SequenceGap { expected: index as u64 + 1, found: index as u64 + 2 }
        };
        prop_assert_eq!(err, expected);
    }

    #[test]
    fn swapping_any_two_events_is_rejected(a in 0..N, b in 0..N) {
        prop_assume!(a != b);
        let log = log();
        let (first, second) = (a.min(b), a.max(b));
        let checkpoints = checkpoints_around(first as u64 + 1);
        // Whole rows moved: the row numbers are out of order.
        let mut events = log.events.clone();
        events.swap(a, b);
        prop_assert_eq!(
            verify(&events, &checkpoints),
            Err(VerifyError::SequenceGap { expected: first as u64 + 1, found: second as u64 + 1 })
        );
        // Contents swapped under fixed row numbers: the events say where they belong.
        let mut events = log.events.clone();
        let moved = events[second].clone();
        events[second].bytes = events[first].bytes.clone();
        events[second].leaf_hash = events[first].leaf_hash;
        events[first].bytes = moved.bytes;
        events[first].leaf_hash = moved.leaf_hash;
        prop_assert_eq!(
            verify(&events, &checkpoints),
            Err(VerifyError::Misplaced { seq: first as u64 + 1, claimed: second as u64 + 1 })
        );
    }

    #[test]
    fn truncating_at_any_point_is_rejected(keep in 0..N) {
        let log = log();
        prop_assert_eq!(
            verify(&log.events[..keep], &checkpoints_around(keep as u64 + 1)),
            Err(VerifyError::Truncated { checkpoint_size: N as u64, events: keep as u64 })
        );
    }
}

/// Above `PARALLEL_FROM` the leaves are hashed on several threads: a log that large verifies,
/// and one altered event or one false leaf claim anywhere in it is still found.
#[test]
fn a_log_large_enough_to_hash_in_parallel_verifies_and_one_change_in_it_is_found() {
    let n = super::PARALLEL_FROM * 2 + 7;
    let signer = Ed25519Signer::from_seed(&[3; 32]);
    let mut tree = MerkleTree::new();
    let mut events = Vec::with_capacity(n);
    for i in 1..=n as u64 {
        let row = stored(&draft(i).at(i));
        tree.push(leaf_hash(&row.bytes));
        events.push(row);
    }
    let cp = sign_checkpoint(&signer, tree.len(), tree.root(), format_time(Utc::now()));
    let key = PublicKey::Ed25519(signer.verifying_key());
    let report = verify_log_with(&events, std::slice::from_ref(&cp), &key).unwrap();
    assert_eq!(report.events, n as u64);

    for at in [0, n / 2, n - 1] {
        let mut bad = events.clone();
        let last = bad[at].bytes.len() - 2;
        bad[at].bytes[last] ^= 1;
        bad[at].leaf_hash = None;
        assert!(
            verify_log_with(&bad, std::slice::from_ref(&cp), &key).is_err(),
            "{at}"
        );
        let mut lie = events.clone();
        lie[at].leaf_hash = Some([0; 32]);
        assert!(
            verify_log_with(&lie, std::slice::from_ref(&cp), &key).is_err(),
            "{at}"
        );
    }
}
