//! Signed checkpoints: a signer's statement "the log had `size` events with Merkle root `root`
//! at `time`".
//!
//! Invariants:
//! - What is signed is exactly [`checkpoint_message`]: a versioned, newline-terminated text
//!   of size, lowercase hex root and time. Binding the domain string `steward-audit-checkpoint/v1`
//!   keeps a checkpoint signature from being replayed as any other kind of signed message.
//! - The wire format is exactly `{"size","root","time","key_id","signature"}`, with `root` and
//!   `signature` as lowercase hex (upper case is accepted on input; the bytes are what count).
//! - `key_id` is the first 8 bytes of `SHA-256(public key)` in lowercase hex, over the key's
//!   canonical encoding ([`PublicKey::to_bytes`]); verification checks it against the key it is
//!   given, so a checkpoint names the key it expects.
//! - The signature algorithm is the trusted key's ([`PublicKey`]), never something the
//!   checkpoint says: a checkpoint carries no algorithm field, so it cannot talk a verifier into
//!   checking its signature some other way (algorithm confusion).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
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
    /// The signature is not an encoding the trusted key's algorithm accepts: 64 bytes for
    /// Ed25519, a DER `ECDSA-Sig-Value` for ECDSA P-256.
    #[error(
        "checkpoint signature ({len} bytes) is malformed for the trusted key's algorithm \
         (Ed25519: 64 bytes; ECDSA P-256: DER)"
    )]
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
    /// The public key's canonical encoding ([`PublicKey::to_bytes`]): the raw 32 bytes for
    /// Ed25519, the DER `SubjectPublicKeyInfo` for P-256.
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

/// Verifies that `cp` names `public_key` and carries its valid Ed25519 signature.
///
/// [`verify_checkpoint_with`] for an Ed25519 key; see [`PublicKey::verify`] for how strict it is.
pub fn verify_checkpoint(
    cp: &Checkpoint,
    public_key: &VerifyingKey,
) -> Result<(), CheckpointError> {
    verify_checkpoint_with(cp, &PublicKey::Ed25519(*public_key))
}

/// Verifies that `cp` names `public_key` (its [`PublicKey::key_id`]) and carries a valid
/// signature by it over [`checkpoint_message`], with the key's own algorithm.
pub fn verify_checkpoint_with(
    cp: &Checkpoint,
    public_key: &PublicKey,
) -> Result<(), CheckpointError> {
    verify_checkpoint_as(cp, public_key, &public_key.key_id())
}

/// [`verify_checkpoint_with`] with the key's id computed once by the caller.
pub(crate) fn verify_checkpoint_as(
    cp: &Checkpoint,
    public_key: &PublicKey,
    key_id: &str,
) -> Result<(), CheckpointError> {
    if cp.key_id != key_id {
        return Err(CheckpointError::KeyIdMismatch {
            expected: key_id.to_owned(),
            found: cp.key_id.clone(),
        });
    }
    public_key.verify(
        &checkpoint_message(cp.size, &cp.root, &cp.time),
        &cp.signature,
    )
}

/// DER `SubjectPublicKeyInfo` of an Ed25519 key without its 32 key bytes: SEQUENCE {
/// SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) } (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A trusted checkpoint key. The variant fixes the signature algorithm, so what verifies a
/// checkpoint is decided by the key an operator pins, never by the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519 (the embedded backend's key), verified strictly.
    Ed25519(VerifyingKey),
    /// ECDSA over NIST P-256 with SHA-256 (a KMS `ECC_NIST_P256` key signing with
    /// `ECDSA_SHA_256`); signatures are DER `ECDSA-Sig-Value`s, as KMS returns them.
    EcdsaP256(p256::ecdsa::VerifyingKey),
}

/// Why bytes are not a checkpoint public key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PublicKeyError {
    /// 32 bytes (or an Ed25519 `SubjectPublicKeyInfo`) that are not an Ed25519 point.
    #[error("not an Ed25519 public key: {0}")]
    Ed25519(String),
    /// Neither encoding of either kind of key.
    #[error(
        "{len} bytes are neither a raw Ed25519 key (32 bytes), an Ed25519 or P-256 \
         SubjectPublicKeyInfo (DER) nor a P-256 SEC1 point"
    )]
    Unrecognised { len: usize },
    /// PEM text that is not one `PUBLIC KEY` block.
    #[error("not a PEM public key: {0}")]
    Pem(String),
}

impl PublicKey {
    /// Parses a public key: a raw Ed25519 key (32 bytes) or its DER `SubjectPublicKeyInfo`;
    /// a P-256 DER `SubjectPublicKeyInfo` (what KMS `GetPublicKey` returns) or SEC1 point
    /// (33 or 65 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PublicKeyError> {
        let raw_ed25519 = match bytes.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            Some(raw) if raw.len() == 32 => Some(raw),
            _ if bytes.len() == 32 => Some(bytes),
            _ => None,
        };
        if let Some(raw) = raw_ed25519 {
            let raw: [u8; 32] = raw.try_into().expect("32 bytes by the match above");
            return VerifyingKey::from_bytes(&raw)
                .map(Self::Ed25519)
                .map_err(|e| PublicKeyError::Ed25519(e.to_string()));
        }
        p256::ecdsa::VerifyingKey::from_public_key_der(bytes)
            .or_else(|_| p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes))
            .map(Self::EcdsaP256)
            .map_err(|_| PublicKeyError::Unrecognised { len: bytes.len() })
    }

    /// Parses a PEM `PUBLIC KEY` block (a `SubjectPublicKeyInfo`, as `openssl pkey -pubout`
    /// writes it) of either kind of key.
    pub fn from_pem(pem: &str) -> Result<Self, PublicKeyError> {
        let (label, der) = p256::pkcs8::der::pem::decode_vec(pem.trim().as_bytes())
            .map_err(|e| PublicKeyError::Pem(e.to_string()))?;
        if label != "PUBLIC KEY" {
            return Err(PublicKeyError::Pem(format!(
                "expected a PUBLIC KEY block, found {label}"
            )));
        }
        Self::from_bytes(&der)
    }

    /// The canonical encoding, which [`PublicKey::key_id`] hashes: the raw 32 bytes of an
    /// Ed25519 key, the DER `SubjectPublicKeyInfo` of a P-256 key (91 bytes, uncompressed
    /// point). [`PublicKey::from_bytes`] reads it back.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Ed25519(k) => k.as_bytes().to_vec(),
            Self::EcdsaP256(k) => k
                .to_public_key_der()
                .expect("a valid P-256 point always encodes as a SubjectPublicKeyInfo")
                .into_vec(),
        }
    }

    /// [`key_id_for`] of [`PublicKey::to_bytes`]: what a checkpoint signed by this key names.
    pub fn key_id(&self) -> String {
        key_id_for(&self.to_bytes())
    }

    /// The signature algorithm: `ed25519` or `ecdsa-p256-sha256`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "ed25519",
            Self::EcdsaP256(_) => "ecdsa-p256-sha256",
        }
    }

    /// Verifies `signature` over `message` with this key's algorithm. Errors are
    /// [`CheckpointError::MalformedSignature`] and [`CheckpointError::BadSignature`].
    ///
    /// Ed25519 uses strict verification, which also rejects small-order keys and non-canonical
    /// signatures, so a message has exactly one valid signature encoding. ECDSA P-256 hashes the
    /// message with SHA-256 and accepts only strict DER; it accepts both `s` and `n - s`
    /// (KMS does not normalise `s`), so a signature is not a unique id of what it signs.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CheckpointError> {
        let malformed = || CheckpointError::MalformedSignature {
            len: signature.len(),
        };
        match self {
            Self::Ed25519(k) => {
                let signature = Signature::from_slice(signature).map_err(|_| malformed())?;
                k.verify_strict(message, &signature)
                    .map_err(|_| CheckpointError::BadSignature)
            }
            Self::EcdsaP256(k) => {
                let signature =
                    p256::ecdsa::Signature::from_der(signature).map_err(|_| malformed())?;
                k.verify(message, &signature)
                    .map_err(|_| CheckpointError::BadSignature)
            }
        }
    }
}

impl From<VerifyingKey> for PublicKey {
    fn from(key: VerifyingKey) -> Self {
        Self::Ed25519(key)
    }
}

impl From<p256::ecdsa::VerifyingKey> for PublicKey {
    fn from(key: p256::ecdsa::VerifyingKey) -> Self {
        Self::EcdsaP256(key)
    }
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
pub(crate) mod tests;
