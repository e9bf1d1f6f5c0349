//! The audit log's Merkle tree as DynamoDB holds it, as pure functions (no I/O).
//!
//! DynamoDB cannot keep `steward_core::audit::MerkleTree` in memory across Lambdas, so the
//! tree lives in the table:
//! - the head holds `size` and the *frontier*: the roots of the perfect subtrees that the
//!   binary decomposition of `size` splits the leaves into, left (largest) to right. Appending
//!   a leaf needs only the frontier ([`append`]), and so does the root ([`frontier_root`]);
//! - every complete perfect subtree is stored once, when the append that completes it commits:
//!   level 0 is the leaf hash on the event item, level ≥ 1 a node item.
//!
//! Every range that RFC 6962's `MTH`, `PATH` and `SUBPROOF` recursions visit starts at a
//! multiple of a power of two at least as large as itself, so it is a fold of at most
//! `log2 n` stored perfect subtrees ([`decompose`]). A proof is therefore planned as a list
//! of ranges ([`inclusion_plan`], [`consistency_plan`]), the perfect subtrees they need are
//! fetched in one batch ([`needed`]), and the proof is folded from them ([`assemble`]). The
//! result equals `MerkleTree::inclusion_proof` / `consistency_proof` hash for hash.

use std::collections::{BTreeSet, HashMap};

use steward_core::audit::merkle::{empty_root, node_hash, ProofError};
use steward_core::audit::Hash;

/// A complete perfect subtree: leaves `[index << level, (index + 1) << level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subtree {
    pub level: u32,
    pub index: u64,
}

/// A range of leaves `[start, start + len)` whose `MTH` a proof carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub len: u64,
}

/// Why a frontier cannot be extended: it does not match the size it claims to describe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "audit head is corrupt: a log of {size} events needs {expected} frontier hashes, found {found}"
)]
pub struct CorruptFrontier {
    pub size: u64,
    pub expected: u32,
    pub found: usize,
}

/// Checks that `frontier` has one hash per set bit of `size`.
pub fn check_frontier(size: u64, frontier: &[Hash]) -> Result<(), CorruptFrontier> {
    if frontier.len() == size.count_ones() as usize {
        Ok(())
    } else {
        Err(CorruptFrontier {
            size,
            expected: size.count_ones(),
            found: frontier.len(),
        })
    }
}

/// Appends `leaf` (leaf index `size`) to the tree whose frontier is `frontier`, updating the
/// frontier in place. Returns the perfect subtrees of level ≥ 1 the append completes, lowest
/// first, with their hashes: exactly the node items the commit must write.
pub fn append(
    size: u64,
    frontier: &mut Vec<Hash>,
    leaf: Hash,
) -> Result<Vec<(Subtree, Hash)>, CorruptFrontier> {
    check_frontier(size, frontier)?;
    let mut completed = Vec::new();
    let mut node = leaf;
    let mut level = 0u32;
    let mut bits = size;
    // Like a binary counter: each trailing 1 of `size` is a left sibling waiting for this one.
    while bits & 1 == 1 {
        let left = frontier
            .pop()
            .expect("check_frontier guarantees one hash per set bit");
        node = node_hash(&left, &node);
        level += 1;
        bits >>= 1;
        completed.push((
            Subtree {
                level,
                index: ((size + 1) >> level) - 1,
            },
            node,
        ));
    }
    frontier.push(node);
    Ok(completed)
}

/// The RFC 6962 root of the tree whose frontier is `frontier`.
pub fn frontier_root(frontier: &[Hash]) -> Hash {
    let mut it = frontier.iter().rev();
    let Some(last) = it.next() else {
        return empty_root();
    };
    it.fold(*last, |right, left| node_hash(left, &right))
}

/// The perfect subtrees whose fold is `MTH` of `range`, left (largest) to right. Requires the
/// alignment every `MTH` recursion has: `start` is a multiple of a power of two `>= len`.
pub fn decompose(range: Range) -> Vec<Subtree> {
    let mut out = Vec::with_capacity(range.len.count_ones() as usize);
    let mut at = range.start;
    for level in (0..64u32).rev() {
        if range.len >> level & 1 == 1 {
            out.push(Subtree {
                level,
                index: at >> level,
            });
            at += 1 << level;
        }
    }
    out
}

/// The largest power of two strictly smaller than `n`; requires `n >= 2`.
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The ranges of `PATH(index, D[0:size])`, in proof order (from the leaf upwards).
pub fn inclusion_plan(index: u64, size: u64) -> Result<Vec<Range>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::with_capacity(64);
    path(0, size, index, &mut out);
    Ok(out)
}

fn path(start: u64, n: u64, m: u64, out: &mut Vec<Range>) {
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < k {
        path(start, k, m, out);
        out.push(Range {
            start: start + k,
            len: n - k,
        });
    } else {
        path(start + k, n - k, m - k, out);
        out.push(Range { start, len: k });
    }
}

/// The ranges of `PROOF(old_size, D[0:new_size])`; empty when `old_size` is 0 or equals
/// `new_size`.
pub fn consistency_plan(old_size: u64, new_size: u64) -> Result<Vec<Range>, ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldSizeExceedsNew { old_size, new_size });
    }
    let mut out = Vec::with_capacity(64);
    if old_size > 0 && old_size < new_size {
        subproof(0, new_size, old_size, true, &mut out);
    }
    Ok(out)
}

fn subproof(start: u64, n: u64, m: u64, complete: bool, out: &mut Vec<Range>) {
    if m == n {
        if !complete {
            out.push(Range { start, len: n });
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        subproof(start, k, m, complete, out);
        out.push(Range {
            start: start + k,
            len: n - k,
        });
    } else {
        subproof(start + k, n - k, m - k, false, out);
        out.push(Range { start, len: k });
    }
}

/// Every stored perfect subtree the ranges need, without duplicates.
pub fn needed(ranges: &[Range]) -> BTreeSet<Subtree> {
    ranges.iter().flat_map(|r| decompose(*r)).collect()
}

/// Folds each range from the stored subtrees in `hashes`. On failure, names a subtree that
/// was needed but not found.
pub fn assemble(ranges: &[Range], hashes: &HashMap<Subtree, Hash>) -> Result<Vec<Hash>, Subtree> {
    ranges
        .iter()
        .map(|r| {
            let parts = decompose(*r);
            let mut acc: Option<Hash> = None;
            for s in parts.iter().rev() {
                let h = hashes.get(s).ok_or(*s)?;
                acc = Some(match acc {
                    None => *h,
                    Some(right) => node_hash(h, &right),
                });
            }
            Ok(acc.unwrap_or_else(empty_root))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use steward_core::audit::merkle::{leaf_hash, root_from_leaves};
    use steward_core::audit::MerkleTree;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// Every complete perfect subtree of `leaves`, as the table would hold them.
    fn stored(leaves: &[Hash]) -> HashMap<Subtree, Hash> {
        let mut out = HashMap::new();
        let n = leaves.len() as u64;
        for level in 0..64u32 {
            let width = 1u64 << level;
            if width > n {
                break;
            }
            for index in 0..n / width {
                let s = (index * width) as usize;
                out.insert(
                    Subtree { level, index },
                    root_from_leaves(&leaves[s..s + width as usize]),
                );
            }
        }
        out
    }

    #[test]
    fn appending_leaves_writes_each_perfect_subtree_once_and_keeps_the_root() {
        let all = leaves(37);
        let mut frontier = Vec::new();
        let mut written = HashMap::new();
        for (i, leaf) in all.iter().enumerate() {
            for (s, h) in append(i as u64, &mut frontier, *leaf).unwrap() {
                assert!(written.insert(s, h).is_none(), "{s:?} written twice");
            }
            let size = i + 1;
            assert_eq!(frontier.len(), (size as u64).count_ones() as usize);
            assert_eq!(frontier_root(&frontier), root_from_leaves(&all[..size]));
        }
        let mut expected = stored(&all);
        expected.retain(|s, _| s.level >= 1);
        assert_eq!(written, expected);
    }

    #[test]
    fn the_empty_frontier_has_the_empty_root() {
        assert_eq!(frontier_root(&[]), empty_root());
    }

    #[test]
    fn a_frontier_that_does_not_match_its_size_is_refused() {
        let mut frontier = vec![[0u8; 32]];
        let err = append(3, &mut frontier, [1; 32]).unwrap_err();
        assert_eq!(
            err,
            CorruptFrontier {
                size: 3,
                expected: 2,
                found: 1
            }
        );
        assert_eq!(
            err.to_string(),
            "audit head is corrupt: a log of 3 events needs 2 frontier hashes, found 1"
        );
        assert_eq!(frontier.len(), 1, "a refused append changes nothing");
        assert!(append(2, &mut vec![[0u8; 32]; 2], [1; 32]).is_err());
    }

    #[test]
    fn a_range_decomposes_into_its_set_bits_largest_first() {
        assert_eq!(
            decompose(Range { start: 8, len: 7 }),
            vec![
                Subtree { level: 2, index: 2 },
                Subtree { level: 1, index: 6 },
                Subtree {
                    level: 0,
                    index: 14
                },
            ]
        );
        assert!(decompose(Range { start: 0, len: 0 }).is_empty());
    }

    #[test]
    fn a_missing_subtree_is_named() {
        let ranges = inclusion_plan(0, 4).unwrap();
        let mut hashes = stored(&leaves(4));
        hashes.remove(&Subtree { level: 1, index: 1 });
        assert_eq!(
            assemble(&ranges, &hashes),
            Err(Subtree { level: 1, index: 1 })
        );
    }

    #[test]
    fn out_of_range_proofs_are_refused_like_the_in_memory_tree() {
        assert_eq!(
            inclusion_plan(5, 5),
            Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            consistency_plan(6, 5),
            Err(ProofError::OldSizeExceedsNew {
                old_size: 6,
                new_size: 5
            })
        );
        assert!(consistency_plan(0, 5).unwrap().is_empty());
        assert!(consistency_plan(5, 5).unwrap().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn proofs_from_stored_subtrees_equal_the_in_memory_trees(n in 1u64..600, a in any::<u64>(), b in any::<u64>()) {
            let all = leaves(n);
            let tree = MerkleTree::from_leaves(all.clone());
            let hashes = stored(&all);
            let size = 1 + b % n;
            let index = a % size;
            let plan = inclusion_plan(index, size).unwrap();
            prop_assert!(needed(&plan).len() <= 2 * 64);
            prop_assert_eq!(assemble(&plan, &hashes).unwrap(), tree.inclusion_proof(index, size).unwrap());
            let old = a % (size + 1);
            let plan = consistency_plan(old, size).unwrap();
            prop_assert_eq!(assemble(&plan, &hashes).unwrap(), tree.consistency_proof(old, size).unwrap());
        }

        #[test]
        fn a_proof_needs_few_subtrees(size in 1u64..u64::MAX / 2, a in any::<u64>()) {
            // At most two per level: a log under 2^48 events proves with one BatchGetItem
            // (100 keys: the subtrees, the event itself and the head).
            let index = a % size;
            let old = a % size + 1;
            let bits = 64 - size.leading_zeros() as usize;
            prop_assert!(needed(&inclusion_plan(index, size).unwrap()).len() <= 2 * bits);
            prop_assert!(needed(&consistency_plan(old, size).unwrap()).len() <= 2 * bits);
        }
    }
}
