//! The tamper-evident audit log: RFC 6962 Merkle tree over canonical event encodings, signed
//! checkpoints, inclusion and consistency proofs, and a verifier.
//!
//! Invariants: events are numbered from 1 without gaps; the leaf of event `seq` is at index
//! `seq - 1`; a checkpoint signs `(size, root, time)` and is only valid for the tree of the
//! first `size` events; verification recomputes every hash from the stored bytes and trusts
//! nothing else the store says.

pub mod checkpoint;
pub mod event;
pub mod merkle;
pub mod verify;

pub use checkpoint::{Checkpoint, CheckpointSigner, Ed25519Signer, PublicKey};
pub use event::{canonical_json, format_time, AuditDraft, AuditEvent};
pub use merkle::{leaf_hash, node_hash, Hash, MerkleTree};
