//! Proof verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2): recomputes a root from a
//! proof and trusts no length, size or index it was not given separately. A proof of the
//! wrong length is rejected before any hashing.

use super::plan::{consistency_plan, inclusion_plan};
use super::{empty_root, node_hash, Hash, ProofError};

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with root `root`
/// (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // The length follows from the same recursion that builds the proof.
    let expected = inclusion_plan(index, size)?.len();
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            // Unreachable after the length check; kept so the loop is the RFC algorithm verbatim.
            return Err(ProofError::WrongProofLength {
                expected,
                actual: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                // fn is the last node of its level: skip the levels where it has no sibling.
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 || r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `old_size` leaves with `old_root` is a prefix of the tree of
/// `new_size` leaves with `new_root` (RFC 9162 section 2.1.4.2).
///
/// Edge cases: equal sizes need an empty proof and equal roots; `old_size == 0` needs an empty
/// proof and `old_root` equal to [`empty_root`] (the empty tree is a prefix of every tree).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldSizeExceedsNew { old_size, new_size });
    }
    let expected = if old_size == 0 || old_size == new_size {
        0
    } else {
        consistency_plan(old_size, new_size)?.len()
    };
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if old_size == 0 {
        return if *old_root == empty_root() {
            Ok(())
        } else {
            Err(ProofError::OldRootMismatch)
        };
    }
    if old_size == new_size {
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }

    // When the old tree is a perfect left subtree, its root is the proof's implicit first
    // element rather than a transmitted one.
    let seeded;
    let path: &[Hash] = if old_size.is_power_of_two() {
        seeded = std::iter::once(*old_root)
            .chain(proof.iter().copied())
            .collect::<Vec<_>>();
        &seeded
    } else {
        proof
    };

    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if sn == 0 {
            // Unreachable after the length check; kept so the loop is the RFC algorithm verbatim.
            return Err(ProofError::WrongProofLength {
                expected,
                actual: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root || sn != 0 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}
