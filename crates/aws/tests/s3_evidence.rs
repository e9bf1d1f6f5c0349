//! The content-addressed evidence store and artifact hash checks, against moto on loopback
//! (`STEWARD_TEST_AWS_ENDPOINT`, see `scripts/emulators`).

use anyhow::Result;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumMode;
use steward_aws::s3::{ArtifactCheck, EvidenceError, EvidenceKind, EvidenceStore};
use steward_aws::RequestCounter;
use steward_core::types::Sha256;

/// An S3 client on the emulator, with a request counter. Fails without the emulators.
async fn s3() -> (aws_sdk_s3::Client, RequestCounter) {
    let counter = RequestCounter::default();
    let config = steward_testkit::emulators!()
        .s3_config()
        .await
        .interceptor(counter.clone())
        .build();
    (aws_sdk_s3::Client::from_conf(config), counter)
}

async fn bucket(client: &aws_sdk_s3::Client) -> Result<String> {
    let name = steward_testkit::unique("steward-evidence");
    client.create_bucket().bucket(&name).send().await?;
    Ok(name)
}

const CARD: &[u8] = br#"{"overview":"credit risk scoring","limitations":["thin files"]}"#;

#[tokio::test]
async fn evidence_is_stored_under_its_sha256_with_the_checksum_s3_verified() -> Result<()> {
    let (client, _) = s3().await;
    let bucket = bucket(&client).await?;
    let store = EvidenceStore::new(client.clone(), &bucket, "steward");

    let sha = store.put(EvidenceKind::ModelCard, CARD).await?;
    assert_eq!(sha, Sha256::digest(CARD));
    let key = format!("steward/evidence/model-card/{sha}");
    assert_eq!(store.key(EvidenceKind::ModelCard, &sha), key);

    let head = client
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await?;
    assert_eq!(
        head.checksum_sha256(),
        Some(aws_smithy_types::base64::encode(sha.bytes()).as_str())
    );
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("sha256"))
            .map(String::as_str),
        Some(sha.to_hex().as_str())
    );
    assert_eq!(
        store.get(EvidenceKind::ModelCard, &sha).await?.as_deref(),
        Some(CARD)
    );
    // Same bytes, other kind: another address.
    assert_eq!(store.get(EvidenceKind::Manifest, &sha).await?, None);
    Ok(())
}

#[tokio::test]
async fn storing_the_same_evidence_again_writes_nothing() -> Result<()> {
    let (client, counter) = s3().await;
    let bucket = bucket(&client).await?;
    let store = EvidenceStore::new(client.clone(), &bucket, "");
    let sha = store
        .put(EvidenceKind::EvaluationReport, b"auc=0.91")
        .await?;
    let key = store.key(EvidenceKind::EvaluationReport, &sha);
    let first = client
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await?;

    counter.take();
    assert_eq!(
        store
            .put(EvidenceKind::EvaluationReport, b"auc=0.91")
            .await?,
        sha
    );
    // The conditional put is refused (If-None-Match), the stored hash read and found equal.
    let requests = counter.take();
    assert_eq!(requests.get("S3.PutObject"), Some(&1), "{requests:?}");
    assert_eq!(requests.get("S3.HeadObject"), Some(&1), "{requests:?}");
    let again = client
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await?;
    assert_eq!(again.e_tag(), first.e_tag());
    assert_eq!(again.last_modified(), first.last_modified());
    Ok(())
}

#[tokio::test]
async fn evidence_that_no_longer_matches_its_address_is_reported_corrupt() -> Result<()> {
    let (client, _) = s3().await;
    let bucket = bucket(&client).await?;
    let store = EvidenceStore::new(client.clone(), &bucket, "");
    let sha = Sha256::digest(b"the real manifest");
    let key = store.key(EvidenceKind::Manifest, &sha);
    client
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(ByteStream::from_static(b"something else"))
        .send()
        .await?;
    match store.get(EvidenceKind::Manifest, &sha).await {
        Err(EvidenceError::Corrupt {
            key: k,
            expected,
            actual,
        }) => {
            assert_eq!((k, expected), (key.clone(), sha));
            assert_eq!(actual, Sha256::digest(b"something else"));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // And storing the real bytes does not paper over it.
    assert!(matches!(
        store
            .put(EvidenceKind::Manifest, b"the real manifest")
            .await,
        Err(EvidenceError::Corrupt { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn an_s3_artifact_is_streamed_and_its_sha256_checked() -> Result<()> {
    let (client, _) = s3().await;
    let bucket = bucket(&client).await?;
    let store = EvidenceStore::new(client.clone(), &bucket, "");
    // Large enough to arrive in many chunks.
    let artifact: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sha = Sha256::digest(&artifact);
    client
        .put_object()
        .bucket(&bucket)
        .key("models/credit-risk/1/model.tar.gz")
        .body(ByteStream::from(artifact.clone()))
        .send()
        .await?;
    let uri = format!("s3://{bucket}/models/credit-risk/1/model.tar.gz");

    assert_eq!(
        store.verify_artifact(&uri, &sha).await?,
        ArtifactCheck::Verified {
            size: artifact.len() as u64
        }
    );

    let wrong = Sha256::digest(b"not it");
    match store.verify_artifact(&uri, &wrong).await {
        Err(EvidenceError::ArtifactMismatch {
            uri: u,
            expected,
            actual,
            size,
        }) => {
            assert_eq!(
                (u, expected, actual, size),
                (uri.clone(), wrong, sha, artifact.len() as u64)
            );
        }
        other => panic!("expected ArtifactMismatch, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn an_unreadable_s3_artifact_is_an_error_and_other_schemes_are_not_checked() -> Result<()> {
    let (client, _) = s3().await;
    let bucket = bucket(&client).await?;
    let store = EvidenceStore::new(client.clone(), &bucket, "");
    let sha = Sha256::digest(b"x");

    for uri in [
        format!("s3://{bucket}/no/such/key"),
        "s3://no-such-bucket-steward-test/k".to_owned(),
        format!("s3://{bucket}"),
        "s3:///key".to_owned(),
    ] {
        assert!(
            matches!(
                store.verify_artifact(&uri, &sha).await,
                Err(EvidenceError::ArtifactUnreadable { .. })
            ),
            "{uri}"
        );
    }
    for uri in [
        "https://models.example.com/m.bin",
        "gs://bucket/m.bin",
        "/local/path",
    ] {
        assert!(
            matches!(
                store.verify_artifact(uri, &sha).await?,
                ArtifactCheck::NotChecked { .. }
            ),
            "{uri}"
        );
    }
    Ok(())
}

/// Registration on the AWS backend keeps its evidence in S3 and checks an `s3://` artifact:
/// governance over DynamoDB Local with the S3 evidence store on moto.
#[tokio::test]
async fn registration_on_aws_checks_an_s3_artifact_and_keeps_manifest_and_card_in_s3() -> Result<()>
{
    use std::sync::Arc;
    use steward_core::ports::{Caller, InProcessWorkflows, SystemClock};
    use steward_core::types::{PrincipalId, Role};
    use steward_core::{GovError, Governance, Policy};

    let (client, _) = s3().await;
    let bucket = bucket(&client).await?;
    client
        .put_object()
        .bucket(&bucket)
        .key("models/m.tar.gz")
        .body(ByteStream::from_static(b"model weights"))
        .send()
        .await?;
    let sdk = steward_testkit::emulators!().dynamodb_sdk().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = steward_testkit::unique("evidence");
    steward_aws::dynamo::create_table(&ddb, &table).await?;
    let store = Arc::new(steward_aws::dynamo::DynamoStore::new(
        ddb,
        table,
        ("k".into(), vec![0; 32]),
    ));
    let evidence = EvidenceStore::new(client.clone(), bucket.clone(), "");
    let gov = Governance::new(
        store.clone(),
        store.clone(),
        Arc::new(InProcessWorkflows),
        Arc::new(SystemClock),
        Arc::new(steward_local::UuidIds),
        Policy::default(),
    )
    .with_evidence(Arc::new(evidence.clone()));
    let dev = Caller {
        id: PrincipalId::parse("dev")?,
        roles: vec![Role::Developer],
        auth: steward_core::types::AuthMethod::Token,
    };

    let mut manifest: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/credit-risk-v1.json"))?;
    let real = Sha256::digest(b"model weights");
    manifest["artifact"] = serde_json::json!({
        "uri": format!("s3://{bucket}/models/m.tar.gz"), "sha256": "ab".repeat(32), "size_bytes": 13
    });
    let err = gov
        .register(&dev, "on-aws", manifest.clone(), None)
        .await
        .unwrap_err();
    let GovError::Validation(fields) = err else {
        panic!("{err}")
    };
    assert_eq!(fields[0].field, "artifact.sha256");
    assert!(fields[0].message.contains(&real.to_hex()));

    manifest["artifact"]["sha256"] = serde_json::json!(real.to_hex());
    let (v, _) = gov.register(&dev, "on-aws", manifest, None).await?;
    let kept = evidence
        .get(EvidenceKind::Manifest, &v.manifest_sha256)
        .await?;
    assert_eq!(kept.map(|b| Sha256::digest(&b)), Some(v.manifest_sha256));
    let card = steward_core::audit::canonical_json(&serde_json::to_value(&v.card)?);
    assert!(evidence
        .get(EvidenceKind::ModelCard, &Sha256::digest(&card))
        .await?
        .is_some());
    Ok(())
}
