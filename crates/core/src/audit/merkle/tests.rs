//! RFC 6962 vectors and properties of the in-memory tree and the verifiers.

use super::*;
use proptest::prelude::*;

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// The classic RFC 6962 test tree used by google/certificate-transparency and
/// transparency-dev/merkle (`proof/verify_test.go`).
fn reference_leaves() -> Vec<Hash> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|d| leaf_hash(&hex::decode(d).unwrap()))
    .collect()
}

/// Roots of the reference tree at sizes 1..=8.
const REFERENCE_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (zero-based leaf index, tree size, proof) from the reference vectors.
fn reference_inclusion_proofs() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (0, 1, vec![]),
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            3,
            vec![h(
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            )],
        ),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
    ]
}

/// (old size, new size, proof) from the reference vectors.
fn reference_consistency_proofs() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

fn reference_root(size: u64) -> Hash {
    h(REFERENCE_ROOTS[size as usize - 1])
}

fn synthetic_leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

fn flip(hash: &Hash, byte: usize, bit: u8) -> Hash {
    let mut out = *hash;
    out[byte] ^= 1 << bit;
    out
}

/// Every way of damaging a valid inclusion proof that a verifier must notice.
fn corrupted_inclusion_proofs(proof: &[Hash]) -> Vec<Vec<Hash>> {
    let mut out = Vec::new();
    for i in 0..proof.len() {
        for (byte, bit) in [(0, 0), (0, 7), (17, 3), (31, 7)] {
            let mut p = proof.to_vec();
            p[i] = flip(&p[i], byte, bit);
            out.push(p);
        }
        let mut removed = proof.to_vec();
        removed.remove(i);
        out.push(removed);
    }
    let mut extended = proof.to_vec();
    extended.push([0u8; 32]);
    out.push(extended);
    let mut prepended = vec![[0u8; 32]];
    prepended.extend_from_slice(proof);
    out.push(prepended);
    if proof.len() >= 2 {
        let mut swapped = proof.to_vec();
        swapped.swap(0, 1);
        if swapped != proof {
            out.push(swapped);
        }
    }
    out
}

#[test]
fn the_hash_primitives_match_rfc_6962() {
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex::encode(leaf_hash(b"")),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    assert_eq!(
        hex::encode(leaf_hash(b"L123456")),
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    );
    let (a, b) = (leaf_hash(b"Hello"), leaf_hash(b"World"));
    assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
    let mut concatenated = a.to_vec();
    concatenated.extend_from_slice(&b);
    assert_ne!(node_hash(&a, &b), leaf_hash(&concatenated));
}

#[test]
fn the_reference_tree_has_the_reference_roots_at_every_size() {
    let leaves = reference_leaves();
    let tree = MerkleTree::from_leaves(leaves.clone());
    for size in 1..=8u64 {
        assert_eq!(
            root_from_leaves(&leaves[..size as usize]),
            reference_root(size)
        );
        assert_eq!(tree.root_at(size).unwrap(), reference_root(size));
    }
    assert_eq!(tree.root(), reference_root(8));
    assert_eq!(tree.root_at(0).unwrap(), empty_root());
    assert_eq!(MerkleTree::new().root(), empty_root());
}

#[test]
fn the_reference_inclusion_proofs_are_generated_and_verify() {
    let leaves = reference_leaves();
    let tree = MerkleTree::from_leaves(leaves.clone());
    for (index, size, proof) in reference_inclusion_proofs() {
        assert_eq!(tree.inclusion_proof(index, size).unwrap(), proof);
        verify_inclusion(
            &leaves[index as usize],
            index,
            size,
            &proof,
            &reference_root(size),
        )
        .unwrap();
    }
}

#[test]
fn the_reference_consistency_proofs_are_generated_and_verify() {
    let tree = MerkleTree::from_leaves(reference_leaves());
    for (old, new, proof) in reference_consistency_proofs() {
        assert_eq!(tree.consistency_proof(old, new).unwrap(), proof);
        verify_consistency(old, new, &reference_root(old), &reference_root(new), &proof).unwrap();
    }
}

#[test]
fn an_inclusion_proof_with_a_flipped_bit_is_rejected() {
    let leaves = reference_leaves();
    for (index, size, proof) in reference_inclusion_proofs() {
        let leaf = leaves[index as usize];
        let root = reference_root(size);
        for i in 0..proof.len() {
            for bit in 0..8 {
                let mut bad = proof.clone();
                bad[i] = flip(&bad[i], 0, bit);
                assert_eq!(
                    verify_inclusion(&leaf, index, size, &bad, &root),
                    Err(ProofError::RootMismatch)
                );
            }
        }
        // A flipped leaf or root fails just the same.
        assert!(verify_inclusion(&flip(&leaf, 5, 1), index, size, &proof, &root).is_err());
        assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&root, 31, 0)).is_err());
    }
}

#[test]
fn a_truncated_or_extended_inclusion_proof_is_rejected() {
    let leaves = reference_leaves();
    for (index, size, proof) in reference_inclusion_proofs() {
        let leaf = leaves[index as usize];
        let root = reference_root(size);
        let mut longer = proof.clone();
        longer.push(root);
        assert!(matches!(
            verify_inclusion(&leaf, index, size, &longer, &root),
            Err(ProofError::WrongProofLength { .. })
        ));
        let mut prefixed = vec![[0u8; 32]];
        prefixed.extend_from_slice(&proof);
        assert!(verify_inclusion(&leaf, index, size, &prefixed, &root).is_err());
        if !proof.is_empty() {
            assert!(matches!(
                verify_inclusion(&leaf, index, size, &proof[..proof.len() - 1], &root),
                Err(ProofError::WrongProofLength { .. })
            ));
        }
    }
}

#[test]
fn an_inclusion_proof_for_the_wrong_index_or_size_is_rejected() {
    let leaves = reference_leaves();
    for (index, size, proof) in reference_inclusion_proofs() {
        let leaf = leaves[index as usize];
        let root = reference_root(size);
        for (i, s) in [
            (index.wrapping_sub(1), size),
            (index + 1, size),
            (index ^ 2, size),
            (index, size * 2),
            (index, size / 2),
        ] {
            if (i, s) != (index, size) {
                assert!(
                    verify_inclusion(&leaf, i, s, &proof, &root).is_err(),
                    "index {i} size {s}"
                );
            }
        }
    }
}

#[test]
fn an_index_outside_the_tree_is_rejected() {
    let leaf = leaf_hash(b"x");
    for (index, size) in [(0, 0), (1, 0), (1, 1), (2, 1), (8, 8), (u64::MAX, 3)] {
        assert_eq!(
            verify_inclusion(&leaf, index, size, &[], &leaf),
            Err(ProofError::IndexOutOfRange { index, size })
        );
    }
    let tree = MerkleTree::from_leaves(synthetic_leaves(5));
    assert_eq!(
        tree.inclusion_proof(5, 5),
        Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
    );
    assert_eq!(
        tree.inclusion_proof(0, 6),
        Err(ProofError::SizeBeyondTree { size: 6, len: 5 })
    );
    assert_eq!(
        tree.root_at(6),
        Err(ProofError::SizeBeyondTree { size: 6, len: 5 })
    );
    assert_eq!(
        tree.consistency_proof(3, 2),
        Err(ProofError::OldSizeExceedsNew {
            old_size: 3,
            new_size: 2
        })
    );
}

#[test]
fn a_damaged_consistency_proof_is_rejected() {
    for (old, new, proof) in reference_consistency_proofs() {
        if proof.is_empty() {
            continue;
        }
        let (r1, r2) = (reference_root(old), reference_root(new));
        for bad in corrupted_inclusion_proofs(&proof) {
            assert!(verify_consistency(old, new, &r1, &r2, &bad).is_err());
        }
        assert!(verify_consistency(old, new, &r1, &r2, &[]).is_err());
        assert!(verify_consistency(old, new, &r2, &r1, &proof).is_err());
        assert!(verify_consistency(old, new, &flip(&r1, 0, 0), &r2, &proof).is_err());
        assert!(verify_consistency(old, new, &r1, &flip(&r2, 0, 0), &proof).is_err());
        for (o, n) in [
            (old - 1, new),
            (old + 1, new),
            (old ^ 2, new),
            (old, new * 2),
            (old, new / 2),
        ] {
            if (o, n) != (old, new) {
                assert!(
                    verify_consistency(o, n, &r1, &r2, &proof).is_err(),
                    "old {o} new {n}"
                );
            }
        }
    }
}

#[test]
fn trivial_consistency_needs_an_empty_proof_and_matching_roots() {
    let r = reference_root(3);
    let other = reference_root(4);
    verify_consistency(3, 3, &r, &r, &[]).unwrap();
    assert_eq!(
        verify_consistency(3, 3, &r, &other, &[]),
        Err(ProofError::RootMismatch)
    );
    assert!(verify_consistency(3, 3, &r, &r, &[r]).is_err());
    verify_consistency(0, 4, &empty_root(), &other, &[]).unwrap();
    verify_consistency(0, 0, &empty_root(), &empty_root(), &[]).unwrap();
    assert_eq!(
        verify_consistency(0, 4, &r, &other, &[]),
        Err(ProofError::OldRootMismatch)
    );
    assert!(verify_consistency(0, 4, &empty_root(), &other, &[empty_root()]).is_err());
    assert_eq!(
        verify_consistency(4, 3, &other, &r, &[]),
        Err(ProofError::OldSizeExceedsNew {
            old_size: 4,
            new_size: 3
        })
    );
}

#[test]
fn every_damaged_proof_in_small_trees_is_rejected() {
    let leaves = synthetic_leaves(20);
    let tree = MerkleTree::from_leaves(leaves.clone());
    for size in 1..=20u64 {
        let root = tree.root_at(size).unwrap();
        for index in 0..size {
            let proof = tree.inclusion_proof(index, size).unwrap();
            for bad in corrupted_inclusion_proofs(&proof) {
                assert!(
                    verify_inclusion(&leaves[index as usize], index, size, &bad, &root).is_err()
                );
            }
        }
        for old in 1..size {
            let old_root = tree.root_at(old).unwrap();
            let proof = tree.consistency_proof(old, size).unwrap();
            for bad in corrupted_inclusion_proofs(&proof) {
                assert!(verify_consistency(old, size, &old_root, &root, &bad).is_err());
            }
        }
    }
}

#[test]
fn all_proofs_between_all_sizes_up_to_64_verify() {
    let leaves = synthetic_leaves(64);
    let tree = MerkleTree::from_leaves(leaves.clone());
    for new in 0..=64u64 {
        let new_root = tree.root_at(new).unwrap();
        assert_eq!(new_root, root_from_leaves(&leaves[..new as usize]));
        for old in 0..=new {
            let proof = tree.consistency_proof(old, new).unwrap();
            verify_consistency(old, new, &tree.root_at(old).unwrap(), &new_root, &proof).unwrap();
        }
    }
}

#[test]
fn leaves_are_readable_by_index() {
    let leaves = synthetic_leaves(3);
    let tree = MerkleTree::from_leaves(leaves.clone());
    assert_eq!(tree.len(), 3);
    assert!(!tree.is_empty());
    assert!(MerkleTree::new().is_empty());
    assert_eq!(tree.leaf(2), Some(leaves[2]));
    assert_eq!(tree.leaf(3), None);
    assert_eq!(tree.leaf(u64::MAX), None);
    assert!(format!("{tree:?}").contains("len: 3"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_inclusion_proof_verifies_and_is_at_most_log2_n_long(n in 1u64..300) {
        let leaves = synthetic_leaves(n);
        let tree = MerkleTree::from_leaves(leaves.clone());
        let root = tree.root();
        let max_len = 64 - (n - 1).leading_zeros() as usize; // ceil(log2 n)
        for index in 0..n {
            let proof = tree.inclusion_proof(index, n).unwrap();
            prop_assert!(proof.len() <= max_len);
            prop_assert_eq!(
                verify_inclusion(&leaves[index as usize], index, n, &proof, &root),
                Ok(())
            );
        }
    }

    #[test]
    fn every_consistency_proof_into_a_tree_verifies(n in 0u64..300, extra in 0u64..40) {
        let leaves = synthetic_leaves(n + extra);
        let tree = MerkleTree::from_leaves(leaves);
        for new in [n, n + extra] {
            let new_root = tree.root_at(new).unwrap();
            for old in 0..=new.min(n) {
                let proof = tree.consistency_proof(old, new).unwrap();
                let old_root = tree.root_at(old).unwrap();
                prop_assert_eq!(
                    verify_consistency(old, new, &old_root, &new_root, &proof),
                    Ok(())
                );
            }
        }
    }

    #[test]
    fn root_at_any_size_is_the_root_of_that_prefix(n in 0u64..300, m in 0u64..300) {
        let m = m.min(n);
        let leaves = synthetic_leaves(n);
        let tree = MerkleTree::from_leaves(leaves.clone());
        prop_assert_eq!(tree.root_at(m).unwrap(), root_from_leaves(&leaves[..m as usize]));
        prop_assert_eq!(tree.root(), root_from_leaves(&leaves));
    }

    #[test]
    fn a_tree_built_by_push_equals_one_built_from_leaves(n in 0u64..300) {
        let leaves = synthetic_leaves(n);
        let mut pushed = MerkleTree::new();
        for (i, leaf) in leaves.iter().enumerate() {
            pushed.push(*leaf);
            prop_assert_eq!(pushed.len(), i as u64 + 1);
        }
        let built = MerkleTree::from_leaves(leaves.clone());
        prop_assert_eq!(pushed.root(), built.root());
        prop_assert_eq!(&pushed, &built);
    }
}
