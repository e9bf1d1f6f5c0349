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
pub(crate) mod tests {
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

    /// A P-256 signer that signs like a KMS `ECC_NIST_P256` key with `ECDSA_SHA_256`:
    /// SHA-256 of the message, DER signature, key id over the DER SPKI.
    pub(crate) struct P256Signer(pub(crate) p256::ecdsa::SigningKey);

    impl CheckpointSigner for P256Signer {
        fn key_id(&self) -> String {
            key_id_for(&self.public_key())
        }
        fn public_key(&self) -> Vec<u8> {
            PublicKey::from(*self.0.verifying_key()).to_bytes()
        }
        fn sign(&self, message: &[u8]) -> Vec<u8> {
            use p256::ecdsa::signature::Signer as _;
            let sig: p256::ecdsa::Signature = self.0.sign(message);
            sig.to_der().as_bytes().to_vec()
        }
    }

    pub(crate) fn p256_signer(byte: u8) -> P256Signer {
        P256Signer(p256::ecdsa::SigningKey::from_bytes(&[byte; 32].into()).unwrap())
    }

    fn p256_key(s: &P256Signer) -> PublicKey {
        PublicKey::EcdsaP256(*s.0.verifying_key())
    }

    fn p256_checkpoint() -> (P256Signer, Checkpoint) {
        let s = p256_signer(3);
        let cp = sign_checkpoint(&s, 42, leaf_hash(b"root"), TIME.to_string());
        (s, cp)
    }

    #[test]
    fn a_p256_checkpoint_verifies_with_its_der_spki_or_sec1_public_key() {
        let (s, cp) = p256_checkpoint();
        let spki = s.public_key();
        assert_eq!(spki.len(), 91, "DER SPKI of an uncompressed P-256 point");
        let point = s.0.verifying_key();
        for encoding in [
            spki.clone(),
            point.to_encoded_point(false).as_bytes().to_vec(),
            point.to_encoded_point(true).as_bytes().to_vec(),
        ] {
            let key = PublicKey::from_bytes(&encoding).unwrap();
            assert_eq!(key, p256_key(&s));
            assert_eq!(key.algorithm(), "ecdsa-p256-sha256");
            assert_eq!(verify_checkpoint_with(&cp, &key), Ok(()));
        }
    }

    #[test]
    fn ed25519_checkpoints_verify_through_the_key_generic_entry_point_too() {
        let (s, cp) = checkpoint();
        let key = PublicKey::from_bytes(&s.public_key()).unwrap();
        assert_eq!(key, PublicKey::Ed25519(s.verifying_key()));
        assert_eq!(key.algorithm(), "ed25519");
        assert_eq!(verify_checkpoint_with(&cp, &key), Ok(()));
    }

    #[test]
    fn an_ed25519_key_never_verifies_a_p256_checkpoint_and_vice_versa() {
        let (ed, ed_cp) = checkpoint();
        let (p, p_cp) = p256_checkpoint();
        let (ed_key, p_key) = (PublicKey::Ed25519(ed.verifying_key()), p256_key(&p));

        // Each names its own key, so the other key refuses it by id...
        assert!(matches!(
            verify_checkpoint_with(&p_cp, &ed_key),
            Err(CheckpointError::KeyIdMismatch { .. })
        ));
        assert!(matches!(
            verify_checkpoint_with(&ed_cp, &p_key),
            Err(CheckpointError::KeyIdMismatch { .. })
        ));
        assert!(verify_checkpoint(&p_cp, &ed.verifying_key()).is_err());

        // ...and relabelled with the other key's id, the signature is checked with the trusted
        // key's algorithm, never the one the signature looks like.
        let mut relabelled = p_cp.clone();
        relabelled.key_id = ed_key.key_id();
        assert!(matches!(
            verify_checkpoint_with(&relabelled, &ed_key),
            Err(CheckpointError::MalformedSignature { .. } | CheckpointError::BadSignature)
        ));
        let mut relabelled = ed_cp.clone();
        relabelled.key_id = p_key.key_id();
        assert_eq!(
            verify_checkpoint_with(&relabelled, &p_key),
            Err(CheckpointError::MalformedSignature { len: 64 })
        );
    }

    #[test]
    fn a_tampered_p256_checkpoint_is_rejected() {
        let (s, cp) = p256_checkpoint();
        let key = p256_key(&s);

        let mut bad = cp.clone();
        bad.size += 1;
        assert_eq!(
            verify_checkpoint_with(&bad, &key),
            Err(CheckpointError::BadSignature)
        );
        let mut bad = cp.clone();
        bad.root[31] ^= 1;
        assert_eq!(
            verify_checkpoint_with(&bad, &key),
            Err(CheckpointError::BadSignature)
        );
        let mut bad = cp.clone();
        bad.time = "2026-11-27T10:00:00.000002Z".into();
        assert_eq!(
            verify_checkpoint_with(&bad, &key),
            Err(CheckpointError::BadSignature)
        );
        for i in 0..cp.signature.len() {
            let mut bad = cp.clone();
            bad.signature[i] ^= 0x10;
            assert!(verify_checkpoint_with(&bad, &key).is_err(), "byte {i}");
        }
        let mut bad = cp.clone();
        bad.signature.pop();
        assert!(matches!(
            verify_checkpoint_with(&bad, &key),
            Err(CheckpointError::MalformedSignature { .. })
        ));
        // The fixed-size r||s form is not what KMS returns: refused as malformed.
        let mut bad = cp.clone();
        bad.signature = p256::ecdsa::Signature::from_der(&cp.signature)
            .unwrap()
            .to_bytes()
            .to_vec();
        assert_eq!(
            verify_checkpoint_with(&bad, &key),
            Err(CheckpointError::MalformedSignature { len: 64 })
        );
        // Another P-256 key's signature under the trusted key's id does not help a forger.
        let mut forged = sign_checkpoint(&p256_signer(4), cp.size, cp.root, cp.time.clone());
        forged.key_id = cp.key_id.clone();
        assert_eq!(
            verify_checkpoint_with(&forged, &key),
            Err(CheckpointError::BadSignature)
        );
    }

    #[test]
    fn a_p256_signature_with_the_high_s_that_kms_may_return_verifies() {
        let (s, cp) = p256_checkpoint();
        let sig = p256::ecdsa::Signature::from_der(&cp.signature).unwrap();
        let flipped = p256::ecdsa::Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
        let mut other = cp.clone();
        other.signature = flipped.to_der().as_bytes().to_vec();
        assert_ne!(other.signature, cp.signature);
        assert_eq!(verify_checkpoint_with(&other, &p256_key(&s)), Ok(()));
    }

    #[test]
    fn key_ids_are_stable_and_over_the_canonical_encoding() {
        // Pinned values: a change here changes every key id operators have written down.
        let ed = PublicKey::Ed25519(signer(7).verifying_key());
        assert_eq!(ed.key_id(), ED25519_KEY_ID_7);
        assert_eq!(ed.key_id(), signer(7).key_id());
        let p = p256_key(&p256_signer(3));
        assert_eq!(p.key_id(), P256_KEY_ID_3);
        // What a KMS key's checkpoints name: key_id_for over the DER SPKI from GetPublicKey.
        let spki = p256_signer(3).public_key();
        assert_eq!(p.key_id(), key_id_for(&spki));
        assert_eq!(p.to_bytes(), spki);
        // Whatever encoding a key arrives in, it is the same key with the same id.
        let sec1 = p256_signer(3).0.verifying_key().to_encoded_point(true);
        assert_eq!(
            PublicKey::from_bytes(sec1.as_bytes()).unwrap().key_id(),
            P256_KEY_ID_3
        );
        let ed_spki = [&ED25519_SPKI_PREFIX[..], &ed.to_bytes()].concat();
        assert_eq!(PublicKey::from_bytes(&ed_spki).unwrap(), ed);
        for key in [&ed, &p] {
            assert_eq!(&PublicKey::from_bytes(&key.to_bytes()).unwrap(), key);
        }
    }

    // Computed independently (Python `cryptography`): SHA-256 of the raw Ed25519 key of seed
    // `[7; 32]`, and of the DER SPKI of the P-256 key with scalar `0x0303..03`.
    const ED25519_KEY_ID_7: &str = "fe812c12f3ab4ce6";
    const P256_KEY_ID_3: &str = "df82ce6080b0efd0";

    #[test]
    fn pem_public_keys_of_either_kind_parse() {
        use p256::pkcs8::der::pem::{encode_string, LineEnding};
        let p = p256_key(&p256_signer(3));
        let pem = encode_string("PUBLIC KEY", LineEnding::LF, &p.to_bytes()).unwrap();
        assert_eq!(PublicKey::from_pem(&pem).unwrap(), p);
        let ed = PublicKey::Ed25519(signer(7).verifying_key());
        let spki = [&ED25519_SPKI_PREFIX[..], &ed.to_bytes()].concat();
        let pem = encode_string("PUBLIC KEY", LineEnding::CRLF, &spki).unwrap();
        assert_eq!(PublicKey::from_pem(&format!("\n{pem}\n")).unwrap(), ed);
        let private = encode_string("PRIVATE KEY", LineEnding::LF, &spki).unwrap();
        assert!(matches!(
            PublicKey::from_pem(&private),
            Err(PublicKeyError::Pem(_))
        ));
        assert!(PublicKey::from_pem("not pem").is_err());
    }

    #[test]
    fn bytes_that_are_no_key_are_refused_with_their_length() {
        assert_eq!(
            PublicKey::from_bytes(&[1, 2, 3]),
            Err(PublicKeyError::Unrecognised { len: 3 })
        );
        assert_eq!(
            PublicKey::from_bytes(&[0x04; 65]),
            Err(PublicKeyError::Unrecognised { len: 65 })
        );
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
