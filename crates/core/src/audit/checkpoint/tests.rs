//! Checkpoint signing and verification: signatures, keys, and the checkpoint wire format.

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
