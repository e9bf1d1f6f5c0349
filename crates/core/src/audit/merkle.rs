//! RFC 6962 Merkle tree hashing, proofs and proof verification, shared by both backends:
//! the in-memory [`MerkleTree`] (the embedded store, verifiers) and the frontier and stored
//! subtrees a DynamoDB table keeps ([`frontier`], [`plan`]). Proof plans ([`plan`]) are the
//! one recursion over `PATH` and `SUBPROOF` that every way of storing the tree folds, and the
//! verifiers take their expected proof lengths from the same plans.
//!
//! Invariants:
//! - A leaf hash is `SHA-256(0x00 || data)` and an interior node is `SHA-256(0x01 || l || r)`;
//!   the distinct prefixes keep a leaf from ever being mistaken for a node (second-preimage
//!   resistance). The empty tree's root is `SHA-256("")`.
//! - The root of `n` leaves is RFC 6962's `MTH`: split at the largest power of two `k < n`,
//!   hash the left `k` leaves and the right `n - k` leaves recursively, and join them.
//! - [`MerkleTree`] caches every *complete perfect* subtree: `levels[k][i]` is the hash of
//!   leaves `[i * 2^k, (i + 1) * 2^k)`, and `levels[k].len() == levels[0].len() >> k`. Every
//!   subtree that `MTH` visits starts at a multiple of a power of two at least as large as the
//!   subtree, so it is a right-to-left fold of at most `log2 n` cached perfect subtrees. That
//!   is what makes roots and proofs at any past size cost `O(log n)` hashes.
//! - Verifiers recompute everything from the proof and trust no length, size or index they
//!   were not given separately: a proof of the wrong length, with extra or missing hashes, or
//!   for an index outside the tree is rejected before any hashing.

use sha2::{Digest, Sha256};
use thiserror::Error;

pub mod frontier;
pub mod plan;
mod proof;

pub use frontier::{append, check_frontier, frontier_root, CorruptFrontier};
pub use plan::{assemble, consistency_plan, decompose, inclusion_plan, needed, Range, Subtree};
pub use proof::{verify_consistency, verify_inclusion};

/// A SHA-256 digest: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// Why a proof could not be produced or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    /// A leaf index at or beyond the tree size it is proven against.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A tree size larger than the number of leaves the tree holds.
    #[error("tree size {size} exceeds the {len} leaves the tree holds")]
    SizeBeyondTree { size: u64, len: u64 },
    /// A consistency proof asked to go backwards.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    OldSizeExceedsNew { old_size: u64, new_size: u64 },
    /// The proof has more or fewer hashes than a proof for these sizes/index must have.
    #[error("proof has {actual} hashes, but a valid proof here has exactly {expected}")]
    WrongProofLength { expected: usize, actual: usize },
    /// The proof does not lead to the root it is checked against.
    #[error("the proof does not reproduce the expected root")]
    RootMismatch,
    /// A consistency proof does not reproduce the old tree's root, so the old tree is not a
    /// prefix of the new one (or the proof is wrong).
    #[error("the consistency proof does not reproduce the old root")]
    OldRootMismatch,
}

/// `SHA-256(0x00 || data)`: the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// `SHA-256("")`: the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n`; requires `n >= 2`.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// RFC 6962 `MTH` over leaf hashes, computed directly (no cache). `O(n)` hashes.
pub fn root_from_leaves(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(
                &root_from_leaves(&leaves[..k]),
                &root_from_leaves(&leaves[k..]),
            )
        }
    }
}

/// An append-only Merkle tree over leaf hashes that caches all complete perfect subtrees.
///
/// `push` is amortised `O(1)` hashes; `root`, `root_at`, `inclusion_proof` and
/// `consistency_proof` cost `O(log n)` hashes. Memory is about `2n` hashes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[k][i]` = hash of leaves `[i * 2^k, (i + 1) * 2^k)`; `levels[0]` are the leaves.
    levels: Vec<Vec<Hash>>,
}

impl std::fmt::Debug for MerkleTree {
    // A derived Debug would print every cached hash (millions for a real log).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleTree")
            .field("len", &self.len())
            .field("root", &hex::encode(self.root()))
            .finish()
    }
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the tree over `leaves` (leaf hashes, not data), level by level.
    pub fn from_leaves(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let base: Vec<Hash> = leaves.into_iter().collect();
        if base.is_empty() {
            return Self::new();
        }
        let mut levels = vec![base];
        while let Some(below) = levels.last().filter(|l| l.len() >= 2) {
            let above: Vec<Hash> = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(above);
        }
        Self { levels }
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// True when the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hash at `index`, if present.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        let index = usize::try_from(index).ok()?;
        self.levels.first()?.get(index).copied()
    }

    /// Appends a leaf hash; amortised `O(1)` hashes.
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        // Each time a level gets an even length its last two entries just became a complete
        // pair, so their parent is complete too; carry upwards like a binary counter.
        let mut k = 0;
        while self.levels[k].len() & 1 == 0 {
            let level = &self.levels[k];
            let parent = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            if self.levels.len() == k + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[k + 1].push(parent);
            k += 1;
        }
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.range_hash(0, self.len())
    }

    /// The root the tree had when it held its first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        Ok(self.range_hash(0, size))
    }

    /// RFC 6962 `PATH(index, D[0:size])`: the audit path of leaf `index` in the tree of the
    /// first `size` leaves, ordered from the leaf upwards.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        Ok(self.hashes(&inclusion_plan(index, size)?))
    }

    /// RFC 6962 `PROOF(old_size, D[0:new_size])` (section 2.1.2 `SUBPROOF`): the hashes that
    /// prove the tree of the first `old_size` leaves is a prefix of the tree of `new_size`.
    /// Empty when `old_size` is 0 or equals `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(new_size)?;
        Ok(self.hashes(&consistency_plan(old_size, new_size)?))
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.len() {
            return Err(ProofError::SizeBeyondTree {
                size,
                len: self.len(),
            });
        }
        Ok(())
    }

    /// `MTH` of leaves `[start, start + n)`, where `start` is a multiple of a power of two
    /// `>= n` (true of every subtree `MTH` recursion visits) and `start + n <= len`: a fold
    /// of at most `log2 n` cached perfect subtrees.
    fn range_hash(&self, start: u64, n: u64) -> Hash {
        plan::fold(Range { start, len: n }, |s| {
            let level = self.levels.get(s.level as usize)?;
            level.get(usize::try_from(s.index).ok()?).copied()
        })
        .expect("a range within the tree decomposes into cached perfect subtrees")
    }

    /// The hash of each range of a proof plan, in order.
    fn hashes(&self, ranges: &[Range]) -> Vec<Hash> {
        ranges
            .iter()
            .map(|r| self.range_hash(r.start, r.len))
            .collect()
    }
}

#[cfg(test)]
mod tests;
