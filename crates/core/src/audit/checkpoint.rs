//! Signed checkpoints: a signer's statement "the log had `size` events with Merkle root `root`
//! at `time`".
//!
//! Invariants:
//! - What is signed is exactly [`checkpoint_message`]: a versioned, newline-terminated text
//!   of size, lowercase hex root and time. Binding the domain string `steward-audit-checkpoint/v1`
//!   keeps a checkpoint signature from being replayed as any other kind of signed message.
//! - The wire format is exactly `{"size","root","time","key_id","signature"}`, with `root` and
//!   `signature` as lowercase hex (upper case is accepted on input; the bytes are what count).
//! - `key_id` is the first 8 bytes of `SHA-256(public key)` in lowercase hex; verification
//!   checks it against the key it is given, so a checkpoint names the key it expects.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::merkle::Hash;

/// A signed statement of the log's size and root at a point in time.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Number of events covered: events `1..=size`.
    pub size: u64,
    /// RFC 6962 root of the first `size` leaves.
    #[serde(with = "hex_hash")]
    pub root: Hash,
    /// RFC 3339 time the checkpoint was signed (the log's time format).
    pub time: String,
    /// [`key_id_for`] of the signing key.
    pub key_id: String,
    /// Signature over [`checkpoint_message`]`(size, root, time)`.
    #[serde(with = "hex_bytes")]
    pub signature: Vec<u8>,
}

/// Why a checkpoint does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckpointError {
    /// The checkpoint names a different key than the one it is verified with.
    #[error("checkpoint was signed by key {found}, expected key {expected}")]
    KeyIdMismatch { expected: String, found: String },
    /// The signature is not 64 bytes long.
    #[error("checkpoint signature is {len} bytes long, expected 64")]
    MalformedSignature { len: usize },
    /// The signature does not verify over the checkpoint's size, root and time.
    #[error("checkpoint signature does not verify")]
    BadSignature,
}

/// The exact bytes a checkpoint signature covers.
pub fn checkpoint_message(size: u64, root: &Hash, time: &str) -> Vec<u8> {
    format!(
        "steward-audit-checkpoint/v1\n{size}\n{}\n{time}\n",
        hex::encode(root)
    )
    .into_bytes()
}

/// The 16-hex-digit id of a public key: the first 8 bytes of `SHA-256(public_key)`.
pub fn key_id_for(public_key: &[u8]) -> String {
    hex::encode(&Sha256::digest(public_key)[..8])
}

/// Something that signs checkpoints: an Ed25519 key locally, a KMS key on AWS.
pub trait CheckpointSigner: Send + Sync {
    /// [`key_id_for`] of [`CheckpointSigner::public_key`].
    fn key_id(&self) -> String;
    /// The raw public key bytes (32 bytes for Ed25519).
    fn public_key(&self) -> Vec<u8>;
    /// Signs `message` (a [`checkpoint_message`]).
    fn sign(&self, message: &[u8]) -> Vec<u8>;
}

/// Signs the checkpoint `(size, root, time)` with `signer`.
pub fn sign_checkpoint(
    signer: &dyn CheckpointSigner,
    size: u64,
    root: Hash,
    time: String,
) -> Checkpoint {
    let signature = signer.sign(&checkpoint_message(size, &root, &time));
    Checkpoint {
        size,
        root,
        time,
        key_id: signer.key_id(),
        signature,
    }
}

/// Verifies that `cp` names `public_key` and carries its valid signature.
///
/// Uses strict Ed25519 verification, which also rejects small-order keys and non-canonical
/// signatures, so one checkpoint has exactly one valid signature encoding.
pub fn verify_checkpoint(
    cp: &Checkpoint,
    public_key: &VerifyingKey,
) -> Result<(), CheckpointError> {
    let expected = key_id_for(public_key.as_bytes());
    if cp.key_id != expected {
        return Err(CheckpointError::KeyIdMismatch {
            expected,
            found: cp.key_id.clone(),
        });
    }
    let signature =
        Signature::from_slice(&cp.signature).map_err(|_| CheckpointError::MalformedSignature {
            len: cp.signature.len(),
        })?;
    public_key
        .verify_strict(&checkpoint_message(cp.size, &cp.root, &cp.time), &signature)
        .map_err(|_| CheckpointError::BadSignature)
}

/// An Ed25519 checkpoint signer (the embedded backend's key).
#[derive(Clone)]
pub struct Ed25519Signer {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for Ed25519Signer {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Ed25519Signer {
    /// The signer for a 32-byte Ed25519 secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id_for(key.verifying_key().as_bytes());
        Self { key, key_id }
    }

    /// The secret seed, for persisting the key.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public key checkpoints verify against.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }
}

impl CheckpointSigner for Ed25519Signer {
    fn key_id(&self) -> String {
        self.key_id.clone()
    }

    fn public_key(&self) -> Vec<u8> {
        self.key.verifying_key().as_bytes().to_vec()
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).to_bytes().to_vec()
    }
}

/// Serde for a 32-byte hash as a lowercase hex string.
mod hex_hash {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = hex::decode(s.as_ref()).map_err(D::Error::custom)?;
        bytes
            .try_into()
            .map_err(|b: Vec<u8>| D::Error::custom(format!("expected 32 bytes, got {}", b.len())))
    }
}

/// Serde for bytes as a lowercase hex string.
mod hex_bytes {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(s.as_ref()).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::super::merkle::leaf_hash;
    use super::*;

    const TIME: &str = "2026-11-27T10:00:00.000001Z";

    fn signer(byte: u8) -> Ed25519Signer {
        Ed25519Signer::from_seed(&[byte; 32])
    }

    fn checkpoint() -> (Ed25519Signer, Checkpoint) {
        let s = signer(7);
        let cp = sign_checkpoint(&s, 42, leaf_hash(b"root"), TIME.to_string());
        (s, cp)
    }

    #[test]
    fn a_signed_checkpoint_verifies() {
        let (s, cp) = checkpoint();
        assert_eq!(verify_checkpoint(&cp, &s.verifying_key()), Ok(()));
    }

    #[test]
    fn the_signed_message_is_the_documented_text() {
        let root = [0xab; 32];
        assert_eq!(
            String::from_utf8(checkpoint_message(3, &root, TIME)).unwrap(),
            format!(
                "steward-audit-checkpoint/v1\n3\n{}\n{TIME}\n",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn a_tampered_size_root_time_or_signature_is_rejected() {
        let (s, cp) = checkpoint();
        let key = s.verifying_key();

        let mut bad = cp.clone();
        bad.size += 1;
        assert_eq!(
            verify_checkpoint(&bad, &key),
            Err(CheckpointError::BadSignature)
        );

        let mut bad = cp.clone();
        bad.root[0] ^= 1;
        assert_eq!(
            verify_checkpoint(&bad, &key),
            Err(CheckpointError::BadSignature)
        );

        let mut bad = cp.clone();
        bad.time = "2026-11-27T10:00:00.000002Z".into();
        assert_eq!(
            verify_checkpoint(&bad, &key),
            Err(CheckpointError::BadSignature)
        );

        for i in 0..cp.signature.len() {
            let mut bad = cp.clone();
            bad.signature[i] ^= 0x10;
            assert!(verify_checkpoint(&bad, &key).is_err(), "byte {i}");
        }

        let mut bad = cp.clone();
        bad.signature.pop();
        assert_eq!(
            verify_checkpoint(&bad, &key),
            Err(CheckpointError::MalformedSignature { len: 63 })
        );
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_is_rejected() {
        let (s, cp) = checkpoint();
        let other = signer(8);
        assert!(matches!(
            verify_checkpoint(&cp, &other.verifying_key()),
            Err(CheckpointError::KeyIdMismatch { .. })
        ));
        // Even claiming the right key id does not help a forger.
        let mut forged = sign_checkpoint(&other, cp.size, cp.root, cp.time.clone());
        forged.key_id = s.key_id();
        assert_eq!(
            verify_checkpoint(&forged, &s.verifying_key()),
            Err(CheckpointError::BadSignature)
        );
    }

    #[test]
    fn the_key_id_is_16_hex_digits_of_the_public_key_hash() {
        let s = signer(1);
        let id = s.key_id();
        assert_eq!(id.len(), 16);
        assert_eq!(id, key_id_for(&s.public_key()));
        assert_eq!(
            id,
            hex::encode(&Sha256::digest(s.verifying_key().as_bytes())[..8])
        );
        assert_ne!(id, signer(2).key_id());
        assert!(!format!("{s:?}").contains(&hex::encode(s.seed())));
    }

    #[test]
    fn a_signer_round_trips_through_its_seed() {
        let s = signer(9);
        let again = Ed25519Signer::from_seed(&s.seed());
        assert_eq!(again.verifying_key(), s.verifying_key());
        assert_eq!(again.sign(b"m"), s.sign(b"m"));
    }

    #[test]
    fn the_wire_format_is_exactly_the_five_fields_in_lowercase_hex() {
        let (_, cp) = checkpoint();
        let v = serde_json::to_value(&cp).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["key_id", "root", "signature", "size", "time"]);
        assert_eq!(obj["size"], 42);
        assert_eq!(obj["root"], hex::encode(cp.root));
        assert_eq!(obj["signature"], hex::encode(&cp.signature));
        assert_eq!(obj["time"], TIME);
        let root = obj["root"].as_str().unwrap();
        assert_eq!(root, root.to_lowercase());
        let back: Checkpoint = serde_json::from_value(v).unwrap();
        assert_eq!(back, cp);
    }

    #[test]
    fn a_checkpoint_with_a_malformed_root_does_not_parse() {
        let (_, cp) = checkpoint();
        let mut v = serde_json::to_value(&cp).unwrap();
        v["root"] = "abcd".into();
        assert!(serde_json::from_value::<Checkpoint>(v.clone()).is_err());
        v["root"] = "zz".repeat(32).into();
        assert!(serde_json::from_value::<Checkpoint>(v).is_err());
    }
}
