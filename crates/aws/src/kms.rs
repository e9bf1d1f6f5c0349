//! Checkpoint signing behind an async port: a KMS asymmetric key (`ECC_NIST_P256`,
//! `ECDSA_SHA_256`) on AWS, any core [`CheckpointSigner`] (Ed25519) elsewhere.
//!
//! Verification is core's: [`PublicKey`] (re-exported here) with
//! `steward_core::audit::checkpoint::verify_checkpoint_with` and
//! `steward_core::audit::verify::verify_log_with` check checkpoints signed by either kind of key,
//! with the algorithm of the key the caller trusts.
//!
//! Invariants:
//! - What is signed is exactly core's [`checkpoint_message`]; KMS signs it with
//!   `MessageType=RAW`, so KMS hashes it (SHA-256) and no caller ever hands KMS a digest.
//! - A checkpoint's `key_id` is core's [`PublicKey::key_id`]: the id of the DER
//!   `SubjectPublicKeyInfo` of the P-256 key, exactly what KMS `GetPublicKey` returns.
//! - P-256 signatures are DER `ECDSA-Sig-Value`s, as KMS returns them; nothing else verifies.
//! - [`KmsSigner`] verifies every signature KMS returns with the public key it fetched once,
//!   so a checkpoint it hands out always verifies with the key operators pin.

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use aws_smithy_types::error::display::DisplayErrorContext;
use steward_core::audit::checkpoint::{
    checkpoint_message, verify_checkpoint_with, CheckpointError,
};
use steward_core::audit::{Checkpoint, CheckpointSigner, Hash};
use thiserror::Error;

pub use steward_core::audit::checkpoint::{PublicKey, PublicKeyError};

/// Former name of core's [`PublicKey`], kept for code written against it.
pub type CheckpointKey = PublicKey;
/// Former name of core's [`PublicKeyError`], kept for code written against it.
pub type KeyError = PublicKeyError;

/// Why a checkpoint does not verify with a key given as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyAnyError {
    #[error(transparent)]
    Key(#[from] PublicKeyError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Verifies a checkpoint against a public key given as bytes (anything
/// [`PublicKey::from_bytes`] reads: a raw Ed25519 key, or a P-256 DER `SubjectPublicKeyInfo`
/// as KMS returns it, or a SEC1 point).
pub fn verify_checkpoint_any(cp: &Checkpoint, public_key: &[u8]) -> Result<(), VerifyAnyError> {
    Ok(verify_checkpoint_with(
        cp,
        &PublicKey::from_bytes(public_key)?,
    )?)
}

/// Why a checkpoint could not be signed.
#[derive(Debug, Error)]
pub enum SignError {
    /// A KMS request failed (after the SDK's own retries).
    #[error("KMS {op} failed: {message}")]
    Kms { op: &'static str, message: String },
    /// The KMS key cannot sign checkpoints the way Steward verifies them.
    #[error("KMS key {key_id} is not usable for checkpoints: {reason}")]
    UnsupportedKey { key_id: String, reason: String },
    /// KMS returned a signature that does not verify with the key's public key.
    #[error("KMS key {key_id} returned a signature that does not verify with its public key")]
    SignatureDoesNotVerify { key_id: String },
}

impl SignError {
    fn kms<E, R>(op: &'static str, err: aws_sdk_kms::error::SdkError<E, R>) -> Self
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        SignError::Kms {
            op,
            message: DisplayErrorContext(err).to_string(),
        }
    }
}

/// Signs checkpoints; the async counterpart of core's [`CheckpointSigner`], for keys that live
/// behind a network call.
#[async_trait]
pub trait AsyncCheckpointSigner: Send + Sync {
    /// Core's `key_id_for` of [`AsyncCheckpointSigner::public_key`] ([`PublicKey::key_id`]).
    async fn key_id(&self) -> String;
    /// The public key's canonical encoding (see [`PublicKey::to_bytes`]).
    async fn public_key(&self) -> Vec<u8>;
    /// Signs `message` (a [`checkpoint_message`]).
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// Signs the checkpoint `(size, root, time)` with `signer` (core's `sign_checkpoint`, async).
pub async fn sign_checkpoint(
    signer: &dyn AsyncCheckpointSigner,
    size: u64,
    root: Hash,
    time: String,
) -> Result<Checkpoint, SignError> {
    let signature = signer.sign(&checkpoint_message(size, &root, &time)).await?;
    Ok(Checkpoint {
        size,
        root,
        time,
        key_id: signer.key_id().await,
        signature,
    })
}

/// Any core signer (such as `steward_core::audit::Ed25519Signer`) as an
/// [`AsyncCheckpointSigner`].
#[derive(Debug, Clone)]
pub struct LocalSigner<S>(pub S);

#[async_trait]
impl<S: CheckpointSigner> AsyncCheckpointSigner for LocalSigner<S> {
    async fn key_id(&self) -> String {
        self.0.key_id()
    }
    async fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self.0.sign(message))
    }
}

/// The audit key as core's evidence pack signer: any [`AsyncCheckpointSigner`] (the KMS key on
/// AWS) signs manifests' [`signing_message`](steward_core::pack::signing_message)s, which can
/// never equal a checkpoint message.
#[derive(Clone)]
pub struct ManifestSigning(pub std::sync::Arc<dyn AsyncCheckpointSigner>);

#[async_trait]
impl steward_core::ports::ManifestSigner for ManifestSigning {
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, steward_core::StoreError> {
        self.0
            .sign(message)
            .await
            .map_err(|e| steward_core::StoreError::backend("signing an evidence pack manifest", e))
    }
}

/// A KMS `ECC_NIST_P256` / `SIGN_VERIFY` key signing checkpoints with `ECDSA_SHA_256`.
///
/// Requests: one `GetPublicKey` in [`KmsSigner::connect`], one `Sign` per checkpoint.
#[derive(Debug, Clone)]
pub struct KmsSigner {
    client: aws_sdk_kms::Client,
    /// The KMS key id, ARN or alias the signer was connected with.
    kms_key: String,
    key: PublicKey,
    key_id: String,
}

impl KmsSigner {
    /// Fetches the key's public key once and checks that it is a P-256 signing key that
    /// offers `ECDSA_SHA_256`.
    pub async fn connect(
        client: aws_sdk_kms::Client,
        kms_key: impl Into<String>,
    ) -> Result<Self, SignError> {
        let kms_key = kms_key.into();
        let out = client
            .get_public_key()
            .key_id(&kms_key)
            .send()
            .await
            .map_err(|e| SignError::kms("GetPublicKey", e))?;
        let unsupported = |reason: String| SignError::UnsupportedKey {
            key_id: kms_key.clone(),
            reason,
        };
        // `KeySpec` replaced `CustomerMasterKeySpec`; AWS sends both, moto 5.x only the latter.
        let spec = out.key_spec().map(KeySpec::as_str).or_else(|| {
            #[allow(deprecated)]
            out.customer_master_key_spec().map(|s| s.as_str())
        });
        if spec != Some(KeySpec::EccNistP256.as_str()) {
            return Err(unsupported(format!(
                "key spec is {}, expected ECC_NIST_P256",
                spec.unwrap_or("not given")
            )));
        }
        if out.key_usage() != Some(&KeyUsageType::SignVerify) {
            return Err(unsupported(format!(
                "key usage is {:?}, expected SIGN_VERIFY",
                out.key_usage()
            )));
        }
        if !out
            .signing_algorithms()
            .contains(&SigningAlgorithmSpec::EcdsaSha256)
        {
            return Err(unsupported("ECDSA_SHA_256 is not offered".into()));
        }
        let der = out
            .public_key()
            .ok_or_else(|| unsupported("GetPublicKey returned no public key".into()))?;
        let key = match PublicKey::from_bytes(der.as_ref()) {
            Ok(k @ PublicKey::EcdsaP256(_)) => k,
            _ => {
                return Err(unsupported(
                    "the public key is not a P-256 SubjectPublicKeyInfo".into(),
                ))
            }
        };
        let key_id = key.key_id();
        Ok(Self {
            client,
            kms_key,
            key,
            key_id,
        })
    }

    /// The KMS key id, ARN or alias this signer uses.
    pub fn kms_key(&self) -> &str {
        &self.kms_key
    }

    /// The key checkpoints it signs verify with.
    pub fn verifying_key(&self) -> &PublicKey {
        &self.key
    }
}

#[async_trait]
impl AsyncCheckpointSigner for KmsSigner {
    async fn key_id(&self) -> String {
        self.key_id.clone()
    }

    async fn public_key(&self) -> Vec<u8> {
        self.key.to_bytes()
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let out = self
            .client
            .sign()
            .key_id(&self.kms_key)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| SignError::kms("Sign", e))?;
        let signature = out
            .signature()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default();
        // A signature that does not verify here would make every later verification fail;
        // refuse it now, while the caller can still retry.
        if self.key.verify(message, &signature).is_err() {
            return Err(SignError::SignatureDoesNotVerify {
                key_id: self.kms_key.clone(),
            });
        }
        Ok(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;
    use steward_core::audit::checkpoint::key_id_for;
    use steward_core::audit::checkpoint::sign_checkpoint as sign_sync;
    use steward_core::audit::{leaf_hash, Ed25519Signer};

    const TIME: &str = "2026-11-27T10:00:00.000001Z";

    fn p256_key(byte: u8) -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_bytes(&[byte; 32].into()).unwrap()
    }

    fn spki(key: &p256::ecdsa::SigningKey) -> Vec<u8> {
        key.verifying_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    /// A checkpoint signed like KMS signs: DER signature, key id over the SPKI.
    fn p256_checkpoint(key: &p256::ecdsa::SigningKey, size: u64) -> Checkpoint {
        let root = leaf_hash(b"root");
        let sig: p256::ecdsa::Signature = key.sign(&checkpoint_message(size, &root, TIME));
        Checkpoint {
            size,
            root,
            time: TIME.into(),
            key_id: key_id_for(&spki(key)),
            signature: sig.to_der().as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_p256_checkpoint_verifies_with_its_der_or_sec1_public_key_bytes() {
        let key = p256_key(3);
        let cp = p256_checkpoint(&key, 7);
        verify_checkpoint_any(&cp, &spki(&key)).unwrap();
        let sec1 = key.verifying_key().to_encoded_point(false);
        verify_checkpoint_any(&cp, sec1.as_bytes()).unwrap();
        let mut tampered = cp.clone();
        tampered.size += 1;
        assert_eq!(
            verify_checkpoint_any(&tampered, &spki(&key)),
            Err(VerifyAnyError::Checkpoint(CheckpointError::BadSignature))
        );
    }

    #[test]
    fn ed25519_checkpoints_verify_through_the_same_entry_point() {
        let s = Ed25519Signer::from_seed(&[5; 32]);
        let cp = sign_sync(&s, 3, leaf_hash(b"r"), TIME.into());
        verify_checkpoint_any(&cp, &s.public_key()).unwrap();
        // An Ed25519 checkpoint never verifies against a P-256 key and vice versa.
        assert!(verify_checkpoint_any(&cp, &spki(&p256_key(3))).is_err());
        let p = p256_checkpoint(&p256_key(3), 3);
        assert!(verify_checkpoint_any(&p, &s.public_key()).is_err());
    }

    #[test]
    fn garbage_keys_are_refused_with_their_length() {
        assert_eq!(
            verify_checkpoint_any(&p256_checkpoint(&p256_key(3), 1), &[1, 2, 3]),
            Err(VerifyAnyError::Key(PublicKeyError::Unrecognised { len: 3 }))
        );
    }

    #[tokio::test]
    async fn the_local_adapter_signs_like_the_core_signer() {
        let s = Ed25519Signer::from_seed(&[5; 32]);
        let local = LocalSigner(s.clone());
        let cp = sign_checkpoint(&local, 3, leaf_hash(b"r"), TIME.into())
            .await
            .unwrap();
        assert_eq!(cp, sign_sync(&s, 3, leaf_hash(b"r"), TIME.into()));
        assert_eq!(local.key_id().await, s.key_id());
        assert_eq!(local.public_key().await, s.public_key());
    }
}
