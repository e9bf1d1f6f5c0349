//! `steward audit verify --s3`: an AWS deployment's audit log verified by the real binary from
//! its S3 audit objects alone, against moto on loopback (`STEWARD_TEST_AWS_ENDPOINT`, see
//! `scripts/emulators`). The objects are written with `steward_aws::s3::AuditObjects` into an
//! Object Lock bucket, as the AWS backend writes them.
//!
//! Built with `--features aws` (`cargo test -p steward --features aws --test audit_verify_s3`);
//! without it, only the refusal of `--s3` is tested.

mod common;

use common::steward;
use predicates::str::contains;

#[cfg(not(feature = "aws"))]
#[test]
fn without_aws_support_s3_verification_is_a_usage_error_that_names_the_feature() {
    steward()
        .args(["audit", "verify", "--s3", "bucket/prefix", "--public-key"])
        .arg("00".repeat(32))
        .assert()
        .code(2)
        .stderr(contains(
            "this steward was built without AWS support: cargo build -p steward --features aws",
        ));
}

#[cfg(feature = "aws")]
mod aws {
    use std::time::Duration;

    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::ChecksumAlgorithm;
    use chrono::Utc;
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    use predicates::prelude::*;
    use serde_json::json;
    use steward_aws::s3::{create_audit_bucket, AuditObjects};
    use steward_core::audit::checkpoint::sign_checkpoint;
    use steward_core::audit::{
        format_time, AuditDraft, AuditEvent, CheckpointSigner, Ed25519Signer, MerkleTree, PublicKey,
    };
    use steward_core::ids::VersionNumber;

    use super::*;

    const PREFIX: &str = "prod/audit";

    /// One moto-backed Object Lock bucket and the client that wrote to it.
    struct Bucket {
        endpoint: String,
        region: String,
        client: aws_sdk_s3::Client,
        name: String,
        runtime: tokio::runtime::Runtime,
    }

    impl Bucket {
        /// Fails the test when the emulators are not configured.
        fn new() -> Self {
            let emulators = steward_testkit::emulators!("--features aws");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let name = format!("steward-cli-{:016x}", rand::random::<u64>());
            let client = runtime.block_on(async {
                let client = emulators.s3().await;
                create_audit_bucket(&client, &name, 1).await.unwrap();
                client
            });
            Self {
                endpoint: emulators.aws,
                region: steward_testkit::emulators::region(),
                client,
                name,
                runtime,
            }
        }

        fn objects(&self) -> AuditObjects {
            AuditObjects::new(
                self.client.clone(),
                &self.name,
                PREFIX,
                Duration::from_secs(86_400),
            )
        }

        /// `n` events with a checkpoint signed by `signer` after each, written as the AWS
        /// backend writes them.
        fn write_log(&self, n: u64, signer: &dyn CheckpointSigner) -> Vec<AuditEvent> {
            let objects = self.objects();
            let mut tree = MerkleTree::new();
            let mut events = Vec::new();
            self.runtime.block_on(async {
                for seq in 1..=n {
                    let e = event(seq, "arn:aws:iam::123456789012:user/alice");
                    tree.push(e.leaf_hash());
                    let cp = sign_checkpoint(signer, seq, tree.root(), format_time(Utc::now()));
                    objects.put_event(&e).await.unwrap();
                    objects.put_checkpoint(&cp).await.unwrap();
                    events.push(e);
                }
            });
            events
        }

        /// A new current version of `key` holding `body`, written around Steward (what an
        /// attacker with `PutObject` can do; the locked original version stays).
        fn put_raw(&self, key: &str, body: Vec<u8>) {
            self.runtime
                .block_on(
                    self.client
                        .put_object()
                        .bucket(&self.name)
                        .key(key)
                        .body(ByteStream::from(body))
                        // The bucket's default retention makes S3 demand a checksum.
                        .checksum_algorithm(ChecksumAlgorithm::Sha256)
                        .send(),
                )
                .unwrap();
        }

        /// Hides the current version of `key` behind a delete marker (the locked version
        /// itself cannot be deleted).
        fn delete(&self, key: &str) {
            self.runtime
                .block_on(
                    self.client
                        .delete_object()
                        .bucket(&self.name)
                        .key(key)
                        .send(),
                )
                .unwrap();
        }

        /// `steward audit verify --s3 BUCKET/prod/audit --endpoint-url ...`, with the
        /// emulator's credentials from the environment, as an operator would run it.
        fn verify(&self) -> assert_cmd::Command {
            let mut c = steward();
            c.args(["audit", "verify", "--s3"])
                .arg(format!("{}/{PREFIX}", self.name))
                .args(["--endpoint-url", &self.endpoint])
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_REGION", &self.region)
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env_remove("AWS_PROFILE")
                .env_remove("AWS_SESSION_TOKEN");
            c
        }
    }

    fn event(seq: u64, actor: &str) -> AuditEvent {
        AuditDraft {
            time: Utc::now(),
            actor: actor.into(),
            action: "model.registered".into(),
            name: Some("credit-risk".into()),
            version: Some(VersionNumber::new(seq as u32).expect("seq starts at 1")),
            details: json!({"manifest_sha256": "ab".repeat(32), "n": seq}),
        }
        .at(seq)
    }

    fn ed25519() -> Ed25519Signer {
        Ed25519Signer::from_seed(&[42; 32])
    }

    /// The public key as `--public-key` takes it.
    fn hex_key(signer: &dyn CheckpointSigner) -> String {
        hex::encode(signer.public_key())
    }

    /// A P-256 key signing like a KMS `ECC_NIST_P256` key with `ECDSA_SHA_256`: DER
    /// signatures, key id over the DER SubjectPublicKeyInfo.
    struct KmsLike(p256::ecdsa::SigningKey);

    impl CheckpointSigner for KmsLike {
        fn key_id(&self) -> String {
            PublicKey::from(*self.0.verifying_key()).key_id()
        }
        fn public_key(&self) -> Vec<u8> {
            PublicKey::from(*self.0.verifying_key()).to_bytes()
        }
        fn sign(&self, message: &[u8]) -> Vec<u8> {
            use p256::ecdsa::signature::Signer;
            let sig: p256::ecdsa::Signature = self.0.sign(message);
            sig.to_der().as_bytes().to_vec()
        }
    }

    fn kms_like() -> KmsLike {
        KmsLike(p256::ecdsa::SigningKey::from_bytes(&[3; 32].into()).unwrap())
    }

    #[test]
    fn an_untouched_log_verifies_from_the_s3_objects_alone() {
        let bucket = Bucket::new();
        let signer = ed25519();
        bucket.write_log(5, &signer);

        bucket
            .verify()
            .args(["--public-key", &hex_key(&signer)])
            .assert()
            .success()
            .stdout(
                contains("audit log verified offline, from s3://")
                    .and(contains(format!("{}/{PREFIX}/", bucket.name)))
                    .and(contains(signer.key_id()))
                    .and(contains("ed25519")),
            );

        // The s3:// form, and JSON for scripts.
        let out = steward()
            .args(["audit", "verify", "-o", "json", "--s3"])
            .arg(format!("s3://{}/{PREFIX}/", bucket.name))
            .args(["--endpoint-url", &bucket.endpoint])
            .args(["--region", &bucket.region])
            .args(["--public-key", &hex_key(&signer)])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["verified"], true);
        assert_eq!(report["events"], 5);
        assert_eq!(report["checkpoints"], 5);
        assert_eq!(report["key_id"], signer.key_id());
        assert_eq!(report["key_algorithm"], "ed25519");
    }

    #[test]
    fn a_log_signed_by_a_kms_p256_key_verifies_with_its_public_key_in_hex_or_pem() {
        let bucket = Bucket::new();
        let signer = kms_like();
        bucket.write_log(4, &signer);

        // Hex of the DER SubjectPublicKeyInfo, as KMS GetPublicKey returns it.
        bucket
            .verify()
            .args(["--public-key", &hex_key(&signer)])
            .assert()
            .success()
            .stdout(contains("ecdsa-p256-sha256").and(contains(signer.key_id())));

        // The same key as a PEM file (`aws kms get-public-key` + `openssl pkey -pubin`).
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("audit-key.pem");
        let text = signer
            .0
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        std::fs::write(&pem, text).unwrap();
        bucket
            .verify()
            .arg("--public-key-file")
            .arg(&pem)
            .assert()
            .success();

        // An Ed25519 key is not the key these checkpoints name.
        bucket
            .verify()
            .args(["--public-key", &hex_key(&ed25519())])
            .assert()
            .code(1)
            .stderr(contains("FAILED").and(contains("not the trusted key")));
    }

    #[test]
    fn an_altered_event_object_version_fails_verification_naming_the_event() {
        let bucket = Bucket::new();
        let signer = ed25519();
        bucket.write_log(5, &signer);

        // A validly encoded event 3 with another actor, as a new current version.
        let forged = event(3, "arn:aws:iam::123456789012:user/mallory");
        bucket.put_raw(&bucket.objects().event_key(3), forged.canonical_bytes());
        bucket
            .verify()
            .args(["--public-key", &hex_key(&signer)])
            .assert()
            .code(1)
            .stderr(
                contains("audit verification FAILED")
                    .and(contains("event 3 was altered after it was signed")),
            );
    }

    #[test]
    fn a_missing_event_object_fails_verification() {
        let bucket = Bucket::new();
        let signer = ed25519();
        bucket.write_log(5, &signer);

        bucket.delete(&bucket.objects().event_key(3));
        bucket
            .verify()
            .args(["--public-key", &hex_key(&signer)])
            .assert()
            .code(1)
            .stderr(
                contains("audit verification FAILED")
                    .and(contains("expected event 3, found event 4")),
            );
    }

    #[test]
    fn a_key_file_that_holds_no_key_is_refused_before_anything_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit-key.pem");
        std::fs::write(
            &file,
            "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        steward()
            .args(["audit", "verify", "--s3", "no-such-bucket/audit"])
            .args(["--endpoint-url", "http://127.0.0.1:9"])
            .arg("--public-key-file")
            .arg(&file)
            .assert()
            .code(1)
            .stderr(contains("audit-key.pem holds no usable public key"));
    }
}
