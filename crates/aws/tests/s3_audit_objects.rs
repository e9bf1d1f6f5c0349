//! The audit log's objects in an S3 Object Lock bucket, against moto on loopback
//! (`STEWARD_TEST_AWS_ENDPOINT`, see `scripts/emulators`).
//!
//! Moto facts these tests rely on (probed in `scripts/emulator-probes/s3_object_lock.py`):
//! refused version deletes (`AccessDenied`), `If-None-Match: *` (412), retention via
//! `HeadObject` with a version id. Moto gaps: `GetObjectRetention` answers with the object's
//! bytes (so retention is read with `HeadObject`, which works on AWS and moto alike), and
//! COMPLIANCE retention can be shortened (so retention values are asserted, never relied on).

use std::time::Duration;
use steward_testkit::unique;

use anyhow::Result;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode};
use chrono::Utc;
use serde_json::json;
use steward_aws::s3::{
    create_audit_bucket, parse_s3_location, verify_s3, AuditObjectError, AuditObjects, PutOutcome,
    S3VerifyError,
};
use steward_core::audit::checkpoint::sign_checkpoint;
use steward_core::audit::verify::{verify_log_with, VerifyError};
use steward_core::audit::{
    AuditDraft, AuditEvent, Checkpoint, Ed25519Signer, MerkleTree, PublicKey,
};
use steward_core::ids::VersionNumber;

const RETENTION: Duration = Duration::from_secs(3 * 24 * 3600);

async fn audit_bucket(client: &aws_sdk_s3::Client) -> Result<String> {
    let bucket = unique("steward-audit");
    create_audit_bucket(client, &bucket, 1).await?;
    Ok(bucket)
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

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(&[42; 32])
}

fn trusted_key() -> PublicKey {
    PublicKey::Ed25519(signer().verifying_key())
}

/// `n` events with a signed checkpoint after each, as the outbox and the checkpoint
/// function would write them.
fn log(n: u64) -> (Vec<AuditEvent>, Vec<Checkpoint>) {
    let signer = signer();
    let mut tree = MerkleTree::new();
    let (mut events, mut checkpoints) = (Vec::new(), Vec::new());
    for seq in 1..=n {
        let e = event(seq, "arn:aws:iam::123456789012:user/alice");
        tree.push(e.leaf_hash());
        checkpoints.push(sign_checkpoint(
            &signer,
            seq,
            tree.root(),
            steward_core::audit::format_time(Utc::now()),
        ));
        events.push(e);
    }
    (events, checkpoints)
}

async fn write_log(objects: &AuditObjects, n: u64) -> Result<(Vec<AuditEvent>, Vec<Checkpoint>)> {
    let (events, checkpoints) = log(n);
    for (e, cp) in events.iter().zip(&checkpoints) {
        objects.put_event(e).await?;
        objects.put_checkpoint(cp).await?;
    }
    Ok((events, checkpoints))
}

/// Writes a new version of `key` with `body` (what an attacker with PutObject can do).
async fn put_raw(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<String> {
    let out = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        // The bucket's default retention makes S3 demand a checksum on every put.
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await?;
    Ok(out.version_id().unwrap_or_default().to_owned())
}

async fn get_bytes(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<Vec<u8>> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await?;
    Ok(out.body.collect().await?.into_bytes().to_vec())
}

fn written(outcome: &PutOutcome) -> (String, chrono::DateTime<Utc>) {
    match outcome {
        PutOutcome::Written {
            version_id: Some(v),
            retain_until: Some(until),
            ..
        } => (v.clone(), *until),
        other => panic!("expected a new locked version, got {other:?}"),
    }
}

#[tokio::test]
async fn each_audit_object_carries_compliance_retention_until_now_plus_the_configured_retention(
) -> Result<()> {
    let client = steward_testkit::emulators!().s3().await;
    let bucket = audit_bucket(&client).await?;
    let objects = AuditObjects::new(client.clone(), &bucket, "prod/audit", RETENTION);
    let (events, checkpoints) = log(1);

    let before = Utc::now();
    let event_put = objects.put_event(&events[0]).await?;
    let checkpoint_put = objects.put_checkpoint(&checkpoints[0]).await?;
    assert_eq!(
        event_put.key(),
        "prod/audit/events/00000000000000000001.json"
    );
    assert_eq!(
        checkpoint_put.key(),
        "prod/audit/checkpoints/00000000000000000001.json"
    );

    for outcome in [&event_put, &checkpoint_put] {
        let (version, until) = written(outcome);
        let expected = before + chrono::Duration::from_std(RETENTION)?;
        assert!(
            (until - expected).num_seconds().abs() <= 5,
            "retain-until {until} is not now + 3 days ({expected})"
        );
        let head = client
            .head_object()
            .bucket(&bucket)
            .key(outcome.key())
            .version_id(&version)
            .send()
            .await?;
        assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
        assert_eq!(
            head.object_lock_retain_until_date().map(|d| d.secs()),
            Some(until.timestamp()),
            "{}",
            outcome.key()
        );
    }
    // GetObjectRetention is the API made for this; moto 5.x serves it as GetObject (the
    // object's bytes), so it is asserted where the answer carries a retention at all.
    let (version, until) = written(&event_put);
    let retention = client
        .get_object_retention()
        .bucket(&bucket)
        .key(event_put.key())
        .version_id(&version)
        .send()
        .await;
    match retention {
        Ok(out) => {
            let r = out
                .retention()
                .expect("GetObjectRetention answered no retention");
            assert_eq!(
                r.mode(),
                Some(&aws_sdk_s3::types::ObjectLockRetentionMode::Compliance)
            );
            assert_eq!(
                r.retain_until_date().map(|d| d.secs()),
                Some(until.timestamp())
            );
        }
        // moto: HTTP 200 with the object's bytes, which is no retention document.
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => {}
        Err(e) => panic!("GetObjectRetention failed: {e:?}"),
    }
    // The event object holds exactly the canonical bytes, with its SHA-256 as checksum.
    assert_eq!(
        get_bytes(&client, &bucket, event_put.key(), None).await?,
        events[0].canonical_bytes()
    );
    let head = client
        .head_object()
        .bucket(&bucket)
        .key(event_put.key())
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await?;
    assert_eq!(
        head.checksum_sha256(),
        Some(
            aws_smithy_types::base64::encode(
                steward_core::types::Sha256::digest(&events[0].canonical_bytes()).bytes()
            )
            .as_str()
        )
    );
    Ok(())
}

#[tokio::test]
async fn a_locked_audit_object_version_cannot_be_deleted() -> Result<()> {
    let client = steward_testkit::emulators!().s3().await;
    let bucket = audit_bucket(&client).await?;
    let objects = AuditObjects::new(client.clone(), &bucket, "", RETENTION);
    let e = event(1, "alice");
    let (version, _) = written(&objects.put_event(&e).await?);

    let refused = client
        .delete_object()
        .bucket(&bucket)
        .key(objects.event_key(1))
        .version_id(&version)
        .send()
        .await;
    let err = refused.expect_err("deleting a COMPLIANCE-locked version must be refused");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&err.into_service_error()),
        Some("AccessDenied")
    );
    let bypass = client
        .delete_object()
        .bucket(&bucket)
        .key(objects.event_key(1))
        .version_id(&version)
        .bypass_governance_retention(true)
        .send()
        .await;
    assert!(bypass.is_err(), "COMPLIANCE mode has no bypass");
    assert_eq!(
        get_bytes(&client, &bucket, &objects.event_key(1), Some(&version)).await?,
        e.canonical_bytes()
    );
    Ok(())
}

#[tokio::test]
async fn a_second_write_never_replaces_the_locked_version_in_place() -> Result<()> {
    let client = steward_testkit::emulators!().s3().await;
    let bucket = audit_bucket(&client).await?;
    let objects = AuditObjects::new(client.clone(), &bucket, "", RETENTION);
    let original = event(1, "alice");
    let key = objects.event_key(1);
    let (version, _) = written(&objects.put_event(&original).await?);

    // Redelivery of the same event writes nothing.
    assert_eq!(
        objects.put_event(&original).await?,
        PutOutcome::AlreadyPresent { key: key.clone() }
    );
    // A different event claiming the same seq is refused, naming both hashes.
    let impostor = event(1, "mallory");
    match objects.put_event(&impostor).await {
        Err(AuditObjectError::AuditConflict {
            key: k,
            stored,
            offered,
        }) => {
            assert_eq!(k, key);
            assert_eq!(
                stored,
                steward_core::types::Sha256::digest(&original.canonical_bytes())
            );
            assert_eq!(
                offered,
                steward_core::types::Sha256::digest(&impostor.canonical_bytes())
            );
        }
        other => panic!("expected AuditConflict, got {other:?}"),
    }
    let versions = client
        .list_object_versions()
        .bucket(&bucket)
        .prefix(&key)
        .send()
        .await?;
    assert_eq!(versions.versions().len(), 1, "neither call wrote a version");

    // A raw PutObject to the key (not through Steward) adds a version; the locked original
    // stays retrievable, unchanged and locked.
    let newer = put_raw(&client, &bucket, &key, impostor.canonical_bytes()).await?;
    assert_ne!(newer, version);
    assert_eq!(
        get_bytes(&client, &bucket, &key, Some(&version)).await?,
        original.canonical_bytes()
    );
    let head = client
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .version_id(&version)
        .send()
        .await?;
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    assert_eq!(
        client
            .list_object_versions()
            .bucket(&bucket)
            .prefix(&key)
            .send()
            .await?
            .versions()
            .len(),
        2
    );
    Ok(())
}

#[tokio::test]
async fn a_checkpoint_redelivered_is_harmless_and_a_different_one_conflicts() -> Result<()> {
    let client = steward_testkit::emulators!().s3().await;
    let bucket = audit_bucket(&client).await?;
    let objects = AuditObjects::new(client.clone(), &bucket, "a", RETENTION);
    let (_, checkpoints) = log(2);
    objects.put_checkpoint(&checkpoints[1]).await?;
    assert!(matches!(
        objects.put_checkpoint(&checkpoints[1]).await?,
        PutOutcome::AlreadyPresent { .. }
    ));
    let mut other = checkpoints[1].clone();
    other.time = steward_core::audit::format_time(Utc::now() + chrono::Duration::seconds(1));
    assert!(matches!(
        objects.put_checkpoint(&other).await,
        Err(AuditObjectError::AuditConflict { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn the_log_verifies_from_the_s3_objects_alone() -> Result<()> {
    let client = steward_testkit::emulators!().s3().await;
    let bucket = audit_bucket(&client).await?;
    let objects = AuditObjects::new(client.clone(), &bucket, "prod/audit/", RETENTION);
    let (events, checkpoints) = write_log(&objects, 5).await?;

    // What `steward audit verify --s3 bucket/prod/audit` runs.
    let (b, prefix) =
        parse_s3_location(&format!("{bucket}/prod/audit")).map_err(anyhow::Error::msg)?;
    let report = verify_s3(&client, &b, &prefix, &trusted_key()).await?;
    assert_eq!((report.events, report.checkpoints, report.size), (5, 5, 5));
    assert_eq!(report.root, checkpoints[4].root);

    // The objects read back are the events and checkpoints written, in order.
    let (stored, read_checkpoints) = objects.read_all().await?;
    assert_eq!(
        stored.iter().map(|s| s.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(stored[2].bytes, events[2].canonical_bytes());
    assert_eq!(read_checkpoints, checkpoints);

    // Another key refuses the log.
    let other = PublicKey::Ed25519(Ed25519Signer::from_seed(&[7; 32]).verifying_key());
    assert!(matches!(
        verify_s3(&client, &b, &prefix, &other).await,
        Err(S3VerifyError::Verify(VerifyError::WrongKey { size: 1, .. }))
    ));
    Ok(())
}

#[tokio::test]
async fn reading_the_objects_follows_every_list_page() -> Result<()> {
    let client = steward_testkit::emulators!().s3().await;
    let bucket = audit_bucket(&client).await?;
    let objects = AuditObjects::new(client.clone(), &bucket, "", RETENTION).with_list_page_size(3);
    write_log(&objects, 8).await?;
    let (events, checkpoints) = objects.read_all().await?;
    assert_eq!(events.len(), 8);
    assert_eq!(checkpoints.len(), 8);
    let report = verify_log_with(&events, &checkpoints, &trusted_key())?;
    assert_eq!(report.size, 8);
    Ok(())
}

#[tokio::test]
async fn a_missing_event_object_fails_verification() -> Result<()> {
    let client = steward_testkit::emulators!().s3().await;
    let bucket = audit_bucket(&client).await?;
    let objects = AuditObjects::new(client.clone(), &bucket, "", RETENTION);
    write_log(&objects, 5).await?;

    // The locked version cannot be deleted, but a delete marker hides it from readers.
    client
        .delete_object()
        .bucket(&bucket)
        .key(objects.event_key(3))
        .send()
        .await?;
    assert_eq!(
        verify_s3(&client, &bucket, "", &trusted_key()).await,
        Err(S3VerifyError::Verify(VerifyError::SequenceGap {
            expected: 3,
            found: 4
        }))
    );
    Ok(())
}

#[tokio::test]
async fn a_truncated_log_fails_verification() -> Result<()> {
    let client = steward_testkit::emulators!().s3().await;
    let bucket = audit_bucket(&client).await?;
    let objects = AuditObjects::new(client.clone(), &bucket, "", RETENTION);
    write_log(&objects, 5).await?;
    client
        .delete_object()
        .bucket(&bucket)
        .key(objects.event_key(5))
        .send()
        .await?;
    assert_eq!(
        verify_s3(&client, &bucket, "", &trusted_key()).await,
        Err(S3VerifyError::Verify(VerifyError::Truncated {
            checkpoint_size: 5,
            events: 4
        }))
    );
    Ok(())
}

#[tokio::test]
async fn an_altered_event_object_fails_verification() -> Result<()> {
    let client = steward_testkit::emulators!().s3().await;
    let bucket = audit_bucket(&client).await?;
    let objects = AuditObjects::new(client.clone(), &bucket, "", RETENTION);
    let (events, _) = write_log(&objects, 5).await?;

    // A new version with a validly re-encoded, altered event: the latest version is what a
    // reader sees.
    let mut altered = events[1].clone();
    altered.actor = "mallory".into();
    put_raw(
        &client,
        &bucket,
        &objects.event_key(2),
        altered.canonical_bytes(),
    )
    .await?;
    assert_eq!(
        verify_s3(&client, &bucket, "", &trusted_key()).await,
        Err(S3VerifyError::Verify(VerifyError::EventAltered { seq: 2 }))
    );
    Ok(())
}

#[tokio::test]
async fn reordered_event_objects_fail_verification() -> Result<()> {
    let client = steward_testkit::emulators!().s3().await;
    let bucket = audit_bucket(&client).await?;
    let objects = AuditObjects::new(client.clone(), &bucket, "", RETENTION);
    let (events, _) = write_log(&objects, 5).await?;

    // Swap the contents of two keys: each object's content now names another seq than its key.
    put_raw(
        &client,
        &bucket,
        &objects.event_key(2),
        events[3].canonical_bytes(),
    )
    .await?;
    put_raw(
        &client,
        &bucket,
        &objects.event_key(4),
        events[1].canonical_bytes(),
    )
    .await?;
    assert_eq!(
        verify_s3(&client, &bucket, "", &trusted_key()).await,
        Err(S3VerifyError::Verify(VerifyError::Misplaced {
            seq: 2,
            claimed: 4
        }))
    );
    Ok(())
}

#[tokio::test]
async fn a_checkpoint_object_under_another_size_is_refused() -> Result<()> {
    let client = steward_testkit::emulators!().s3().await;
    let bucket = audit_bucket(&client).await?;
    let objects = AuditObjects::new(client.clone(), &bucket, "", RETENTION);
    let (_, checkpoints) = write_log(&objects, 3).await?;
    put_raw(
        &client,
        &bucket,
        &objects.checkpoint_key(2),
        serde_json::to_vec(&checkpoints[2])?,
    )
    .await?;
    assert!(matches!(
        verify_s3(&client, &bucket, "", &trusted_key()).await,
        Err(S3VerifyError::Read(AuditObjectError::Malformed { .. }))
    ));
    Ok(())
}
