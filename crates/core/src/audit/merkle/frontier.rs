//! The tree as a store that cannot hold it in memory keeps it: a size, a frontier, and every
//! complete perfect subtree written once.
//!
//! A DynamoDB table cannot keep a [`super::MerkleTree`] in memory across Lambdas, so:
//! - the head holds `size` and the *frontier*: the roots of the perfect subtrees that the
//!   binary decomposition of `size` splits the leaves into, left (largest) to right. Appending
//!   a leaf needs only the frontier ([`append`]), and so does the root ([`frontier_root`]);
//! - every complete perfect subtree is stored once, when the append that completes it
//!   commits (level 0 is the leaf hash itself), so proofs are folded from stored subtrees
//!   (see [`super::plan`]).
//!
//! Invariant: a frontier has exactly one hash per set bit of its size ([`check_frontier`]);
//! an append refused for a corrupt frontier changes nothing.

use super::{empty_root, node_hash, Hash, Subtree};

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
/// first, with their hashes: exactly the node items a store must write with the leaf.
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

#[cfg(test)]
mod tests {
    use super::super::plan::tests::{leaves, stored};
    use super::super::root_from_leaves;
    use super::*;
    use std::collections::HashMap;

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
}
