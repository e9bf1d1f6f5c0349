//! Logs signed with an ECDSA P-256 key (a KMS key): they verify with that key only, and every
//! check of the Ed25519 log applies to them too.

use super::*;

/// `n` events with a checkpoint after each, signed by a P-256 key the way KMS signs.
fn p256_log(n: u64) -> (PublicKey, Vec<StoredEvent>, Vec<Checkpoint>) {
    use crate::audit::checkpoint::tests::p256_signer;
    let signer = p256_signer(3);
    let key = PublicKey::from(*signer.0.verifying_key());
    let mut tree = MerkleTree::new();
    let (mut events, mut checkpoints) = (vec![], vec![]);
    for seq in 1..=n {
        let event = draft(seq).at(seq);
        let row = stored(&event);
        tree.push(leaf_hash(&row.bytes));
        checkpoints.push(sign_checkpoint(&signer, seq, tree.root(), event.time));
        events.push(row);
    }
    (key, events, checkpoints)
}

#[test]
fn a_p256_signed_log_verifies_and_every_check_still_applies() {
    let (key, events, checkpoints) = p256_log(6);
    let report = verify_log_with(&events, &checkpoints, &key).unwrap();
    assert_eq!((report.events, report.checkpoints, report.size), (6, 6, 6));

    let mut altered = without_claims(&events);
    altered[2].bytes[10] ^= 1;
    assert_eq!(
        blamed_seq(&verify_log_with(&altered, &checkpoints, &key).unwrap_err()),
        Some(3)
    );
    assert_eq!(
        verify_log_with(&events[..5], &checkpoints, &key),
        Err(VerifyError::Truncated {
            checkpoint_size: 6,
            events: 5
        })
    );
    let mut tampered = checkpoints.clone();
    tampered[3].root[0] ^= 1;
    assert_eq!(
        verify_log_with(&events, &tampered, &key),
        Err(VerifyError::BadSignature { size: 4 })
    );
    let mut swapped = checkpoints.clone();
    swapped.swap(1, 2);
    assert_eq!(
        verify_log_with(&events, &swapped, &key),
        Err(VerifyError::CheckpointSizeDecreased {
            size: 2,
            previous: 3
        })
    );
}

#[test]
fn a_p256_signed_log_does_not_verify_with_an_ed25519_key_or_the_other_way_round() {
    let (p256_key, events, checkpoints) = p256_log(3);
    let ed_key = log().signer.verifying_key();
    assert!(matches!(
        verify_log(&events, &checkpoints, &ed_key),
        Err(VerifyError::WrongKey { size: 1, .. })
    ));
    // Relabelled with the Ed25519 key's id, the P-256 signatures are still not Ed25519 ones.
    let relabelled: Vec<Checkpoint> = checkpoints
        .iter()
        .map(|cp| Checkpoint {
            key_id: log().signer.key_id(),
            ..cp.clone()
        })
        .collect();
    assert_eq!(
        verify_log(&events, &relabelled, &ed_key),
        Err(VerifyError::BadSignature { size: 1 })
    );
    let log = log();
    assert!(matches!(
        verify_log_with(&log.events, &log.checkpoints, &p256_key),
        Err(VerifyError::WrongKey { size: 1, .. })
    ));
    // The Ed25519 entry point is the key-generic one with an Ed25519 key.
    assert_eq!(
        verify_log(&log.events, &log.checkpoints, &ed_key),
        verify_log_with(&log.events, &log.checkpoints, &PublicKey::Ed25519(ed_key))
    );
}
