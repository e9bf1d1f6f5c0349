//! Proofs as plans over perfect subtrees, shared by every way a tree is stored.
//!
//! Every range that RFC 6962's `MTH`, `PATH` and `SUBPROOF` recursions visit starts at a
//! multiple of a power of two at least as large as itself, so its `MTH` is a right-to-left
//! fold of at most `log2 n` complete perfect subtrees ([`decompose`], [`fold`]). A proof is
//! therefore a list of ranges ([`inclusion_plan`], [`consistency_plan`]) that any store of
//! perfect subtrees can answer: [`super::MerkleTree`] from its in-memory levels, the DynamoDB
//! store from the node items one batch read fetches ([`needed`], [`assemble`]). One recursion
//! serves both, so they agree hash for hash by construction.

use std::collections::{BTreeSet, HashMap};

use super::{empty_root, node_hash, split_point, Hash, ProofError};

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

/// `MTH` of `range`, joining the hashes `subtree` gives for its decomposition right to left;
/// the first subtree `subtree` cannot give is the error. The empty range has the empty root.
pub fn fold<F>(range: Range, mut subtree: F) -> Result<Hash, Subtree>
where
    F: FnMut(Subtree) -> Option<Hash>,
{
    let mut acc: Option<Hash> = None;
    for s in decompose(range).into_iter().rev() {
        let h = subtree(s).ok_or(s)?;
        acc = Some(match acc {
            None => h,
            Some(right) => node_hash(&h, &right),
        });
    }
    Ok(acc.unwrap_or_else(empty_root))
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

/// Appends the ranges of `PATH(m, D[start:start+n])` to `out`.
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

/// The ranges of `PROOF(old_size, D[0:new_size])` (RFC 6962 section 2.1.2 `SUBPROOF`); empty
/// when `old_size` is 0 or equals `new_size`.
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

/// Appends the ranges of `SUBPROOF(m, D[start:start+n], complete)` to `out`; requires
/// `0 < m <= n`.
fn subproof(start: u64, n: u64, m: u64, complete: bool, out: &mut Vec<Range>) {
    if m == n {
        // The old tree's root is a node of the new tree: the verifier already knows it when
        // the old tree is this very subtree (`complete`), otherwise it must be sent.
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
        .map(|r| fold(*r, |s| hashes.get(&s).copied()))
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::{leaf_hash, root_from_leaves, MerkleTree};
    use super::*;
    use proptest::prelude::*;

    pub(in crate::audit::merkle) fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// Every complete perfect subtree of `leaves`, as a table of node items would hold them.
    pub(in crate::audit::merkle) fn stored(leaves: &[Hash]) -> HashMap<Subtree, Hash> {
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
