//! Test harness: every test gets its own store and the real router served over HTTP on
//! 127.0.0.1, and talks to it with reqwest.
//!
//! This is also the conformance suite: with `STEWARD_TEST_BACKEND=aws` every test runs on the
//! AWS backend instead — a fresh DynamoDB table on DynamoDB Local
//! (`STEWARD_TEST_DYNAMODB_ENDPOINT`), checkpoints signed by a KMS P-256 key and evidence in S3
//! on moto (`STEWARD_TEST_AWS_ENDPOINT`) — with the same assertions. The default is the
//! embedded backend (a temporary data directory with SQLite).

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use steward_api::{router, AppState, Authenticators, BearerTokens, OidcVerifier};
use steward_core::ports::{Clock, SystemClock};
use steward_core::types::{PrincipalId, RiskTier, Role, Sha256};
use steward_core::{Governance, Policy};
use steward_local::Embedded;

use Role::*;

/// The principals every test app knows, with their roles. Each one's token is `<name>-token`.
pub const PRINCIPALS: &[(&str, &[Role])] = &[
    ("dev", &[Developer]),
    ("dev2", &[Developer]),
    ("tech", &[TechnicalReviewer]),
    ("tech2", &[TechnicalReviewer]),
    ("biz", &[BusinessReviewer]),
    ("comp", &[ComplianceReviewer]),
    ("rel", &[ReleaseManager]),
    ("rel2", &[ReleaseManager]),
    ("ops", &[Operator]),
    ("aud", &[Auditor]),
    ("admin", &[Admin]),
    // CI/CD: reports checks.
    ("ci", &[Ci]),
    // Holders of several roles, for separation of duties.
    ("devtech", &[Developer, TechnicalReviewer]),
    ("bizcomp", &[BusinessReviewer, ComplianceReviewer]),
    ("adminrev", &[Admin, TechnicalReviewer, BusinessReviewer]),
];

/// Holds a token but has no principal record: authenticated, no roles.
pub const NEWCOMER: &str = "newcomer";

pub fn token(who: &str) -> String {
    format!("{who}-token")
}

/// A running API over a fresh store of the backend under test.
pub struct App {
    pub base: String,
    pub client: reqwest::Client,
    pub gov: Arc<Governance>,
    pub backend: &'static str,
    _guard: Box<dyn std::any::Any + Send + Sync>,
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
    /// The fields named by an error body's details.
    pub fn fields(&self) -> Vec<String> {
        self.body["error"]["details"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|x| x["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Asserts the status and that the body has the JSON error shape when it is an error.
    pub fn expect(self, status: u16) -> Result<Self> {
        ensure!(
            self.status == status,
            "expected {status}, got {}: {}",
            self.status,
            self.body
        );
        if status >= 400 {
            assert_error_shape(&self)?;
        }
        Ok(self)
    }
}

/// `{"error": {"code": "...", "message": "...", "details": [...]}}` with a JSON content type.
pub fn assert_error_shape(r: &Resp) -> Result<()> {
    ensure!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "error response is not JSON: {:?}",
        r.header("content-type")
    );
    let e = &r.body["error"];
    ensure!(
        e["code"].as_str().is_some_and(|c| !c.is_empty()),
        "no error code: {}",
        r.body
    );
    ensure!(e["message"].is_string(), "no error message: {}", r.body);
    ensure!(e["details"].is_array(), "no error details: {}", r.body);
    Ok(())
}

pub async fn spawn_app() -> Result<App> {
    spawn_app_with(Policy::default()).await
}

/// A policy whose reviews expire after one second.
pub fn quick_expiry_policy() -> Policy {
    let mut policy = Policy::default();
    for tier in policy.tiers.values_mut() {
        tier.review_timeout = Duration::from_secs(1);
    }
    policy
}

/// A clock that moves only when a test moves it (for `spawn_app_with_clock`). It starts an
/// hour behind the wall clock, so everything it stamps lies in the wall clock's past: a route
/// that defaults to "now" (`GET .../production` without `at`) reads the wall clock.
pub fn manual_clock() -> Arc<steward_core::testing::ManualClock> {
    Arc::new(steward_core::testing::ManualClock::new(
        chrono::Utc::now() - chrono::Duration::hours(1),
    ))
}

/// The backend the suite runs on: `embedded` (default) or `aws`.
pub fn backend() -> &'static str {
    match std::env::var("STEWARD_TEST_BACKEND").as_deref() {
        Ok("aws") => "aws",
        Ok("embedded") | Err(_) => "embedded",
        Ok(other) => panic!("STEWARD_TEST_BACKEND={other:?}: use embedded or aws"),
    }
}

async fn open_backend(
    policy: Policy,
    clock: Arc<dyn Clock>,
) -> Result<(Arc<Governance>, Box<dyn std::any::Any + Send + Sync>)> {
    match backend() {
        "aws" => aws_backend::open(policy, clock).await,
        _ => {
            let dir = tempfile::tempdir()?;
            let emb = Embedded::open_with_clock(dir.path(), policy, clock).await?;
            Ok((emb.gov.clone(), Box::new((emb, dir))))
        }
    }
}

pub async fn spawn_app_with(policy: Policy) -> Result<App> {
    spawn_app_with_clock(policy, Arc::new(SystemClock)).await
}

/// A running API whose governance service reads time from `clock`: tests move a manual
/// clock (see [`manual_clock`]) where they would otherwise sleep.
pub async fn spawn_app_with_clock(policy: Policy, clock: Arc<dyn Clock>) -> Result<App> {
    spawn(policy, clock, None).await
}

/// A running API that also accepts the OpenID Connect provider `oidc` verifies.
pub async fn spawn_app_with_oidc(oidc: OidcVerifier) -> Result<App> {
    spawn(Policy::default(), Arc::new(SystemClock), Some(oidc)).await
}

async fn spawn(policy: Policy, clock: Arc<dyn Clock>, oidc: Option<OidcVerifier>) -> Result<App> {
    let (gov, guard) = open_backend(policy, clock).await?;
    let mut tokens = Vec::new();
    for (name, roles) in PRINCIPALS {
        let id = PrincipalId::parse(name)?;
        gov.seed_principal(&id, roles.to_vec(), "file").await?;
        tokens.push((id, Sha256::digest(token(name).as_bytes())));
    }
    tokens.push((
        PrincipalId::parse(NEWCOMER)?,
        Sha256::digest(token(NEWCOMER).as_bytes()),
    ));
    let state = AppState {
        gov: gov.clone(),
        auth: Arc::new(Authenticators {
            tokens: Some(BearerTokens::new(tokens)),
            oidc,
            iam: false,
        }),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        axum::serve(listener, router(state)).await.ok();
    });
    Ok(App {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?,
        gov,
        backend: backend(),
        _guard: guard,
    })
}

impl App {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request as `who` (no credentials when `who` is empty).
    pub async fn send(
        &self,
        who: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Resp> {
        let mut req = self.client.request(method, self.url(path));
        if !who.is_empty() {
            req = req.bearer_auth(token(who));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        read(req.send().await?).await
    }

    /// Sends a request with `Authorization: Bearer <bearer>` (an OIDC token, say).
    pub async fn send_bearer(
        &self,
        bearer: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Resp> {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(bearer);
        if let Some(b) = body {
            req = req.json(b);
        }
        read(req.send().await?).await
    }

    pub async fn get(&self, who: &str, path: &str) -> Result<Resp> {
        self.send(who, reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, who: &str, path: &str, body: &Value) -> Result<Resp> {
        self.send(who, reqwest::Method::POST, path, Some(body))
            .await
    }

    pub async fn put(&self, who: &str, path: &str, body: &Value) -> Result<Resp> {
        self.send(who, reqwest::Method::PUT, path, Some(body)).await
    }

    // ------------------------------------------------------------------ lifecycle steps

    /// Registers a version of `name` as `who`; returns its number.
    pub async fn register_as(&self, who: &str, name: &str, tier: RiskTier) -> Result<u32> {
        let r = self
            .post(who, &format!("/v1/models/{name}/versions"), &manifest(tier))
            .await?
            .expect(201)?;
        Ok(r.body["version"].as_u64().context("version number")? as u32)
    }

    pub async fn register(&self, name: &str, tier: RiskTier) -> Result<u32> {
        self.register_as("dev", name, tier).await
    }

    /// Requests a promotion as `who`; returns the promotion.
    pub async fn promote_as(&self, who: &str, name: &str, v: u32, target: &str) -> Result<Value> {
        Ok(self
            .post(
                who,
                &format!("/v1/models/{name}/versions/{v}/promotions"),
                &json!({"target": target}),
            )
            .await?
            .expect(202)?
            .body)
    }

    pub async fn decide(&self, who: &str, review_id: &str, decision: &str) -> Result<Resp> {
        self.post(
            who,
            &format!("/v1/reviews/{review_id}/decision"),
            &json!({"decision": decision, "comment": format!("{decision} by {who}"), "conditions": []}),
        )
        .await
    }

    pub async fn deploy_as(&self, who: &str, name: &str, v: u32, env: &str) -> Result<Resp> {
        self.post(
            who,
            &format!("/v1/models/{name}/versions/{v}/deployments"),
            &json!({"environment": env}),
        )
        .await
    }

    /// Staging promotion (technical review by `tech`), staging deployment and an evaluation
    /// on staging test data.
    pub async fn to_staging(&self, name: &str, v: u32) -> Result<()> {
        let p = self.promote_as("dev", name, v, "staging").await?;
        ensure!(stages(&p) == ["technical"], "staging reviews: {p}");
        let p = self
            .decide("tech", review_id(&p, "technical")?, "approve")
            .await?
            .expect(200)?
            .body;
        ensure!(p["status"] == "approved", "staging promotion: {p}");
        self.deploy_as("dev", name, v, "staging")
            .await?
            .expect(201)?;
        self.post(
            "dev",
            &format!("/v1/models/{name}/versions/{v}/evaluations"),
            &staging_evaluation(),
        )
        .await?
        .expect(201)?;
        Ok(())
    }

    /// Every review of a production promotion approved by its usual reviewer.
    pub async fn approve_all(&self, promotion: &Value) -> Result<Value> {
        let mut last = promotion.clone();
        for stage in stages(promotion) {
            let id = review_id(promotion, &stage)?;
            last = self
                .decide(reviewer_for(&stage), id, "approve")
                .await?
                .expect(200)?
                .body;
        }
        Ok(last)
    }

    /// Registered → staging → production, all approvals given; returns the version.
    pub async fn to_production(&self, name: &str, v: u32) -> Result<()> {
        self.to_staging(name, v).await?;
        let p = self.promote_as("dev", name, v, "production").await?;
        let p = self.approve_all(&p).await?;
        ensure!(p["status"] == "approved", "production promotion: {p}");
        self.deploy_as("rel", name, v, "production")
            .await?
            .expect(201)?;
        Ok(())
    }

    // ------------------------------------------------------------------ observations

    /// The number of events in the audit log (latest checkpoint).
    pub async fn audit_size(&self) -> Result<u64> {
        let r = self.get("aud", "/v1/audit/checkpoint").await?.expect(200)?;
        r.body["size"].as_u64().context("checkpoint size")
    }

    /// Every audit event, following `next_cursor`.
    pub async fn audit_events(&self, model: Option<&str>) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut after = 0u64;
        loop {
            let mut path = format!("/v1/audit?after={after}&limit=100");
            if let Some(m) = model {
                path.push_str(&format!("&model={m}"));
            }
            let r = self.get("aud", &path).await?.expect(200)?;
            out.extend(r.body["items"].as_array().cloned().unwrap_or_default());
            match r.body["next_cursor"].as_str() {
                Some(c) => after = c.parse()?,
                None => return Ok(out),
            }
        }
    }

    /// Names of all models, in list order.
    pub async fn model_names(&self) -> Result<Vec<String>> {
        let r = self.get("dev", "/v1/models?limit=500").await?.expect(200)?;
        Ok(r.body["items"]
            .as_array()
            .context("items")?
            .iter()
            .filter_map(|m| m["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// What the registry looks like from outside: audit size and model names. A refused
    /// request must leave it unchanged.
    pub async fn snapshot(&self) -> Result<(u64, Vec<String>)> {
        Ok((self.audit_size().await?, self.model_names().await?))
    }

    pub async fn production_version(&self, name: &str, at: Option<&str>) -> Result<Value> {
        let path = match at {
            Some(t) => format!("/v1/models/{name}/production?at={}", encode(t)),
            None => format!("/v1/models/{name}/production"),
        };
        Ok(self.get("dev", &path).await?.expect(200)?.body["version"].clone())
    }
}

/// Percent-encodes the characters of an RFC 3339 time that a query string mangles.
pub fn encode(t: &str) -> String {
    t.replace('+', "%2B").replace(':', "%3A")
}

async fn read(r: reqwest::Response) -> Result<Resp> {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{status} body is not JSON: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        })?
    };
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// The example manifest (`examples/credit-risk-v1.json`) with the given risk tier.
pub fn manifest(tier: RiskTier) -> Value {
    steward_testkit::manifest_at(tier)
}

/// The staging evaluation a production promotion's gate wants.
pub fn staging_evaluation() -> Value {
    steward_testkit::staging_evaluation_named("staging-shadow-2026q2")
}

/// The review stages of a promotion, in order.
pub fn stages(p: &Value) -> Vec<String> {
    p["reviews"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["stage"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn review_id<'a>(p: &'a Value, stage: &str) -> Result<&'a str> {
    p["reviews"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["stage"] == stage))
        .and_then(|r| r["id"].as_str())
        .with_context(|| format!("no {stage} review in {p}"))
}

pub fn review_status<'a>(p: &'a Value, stage: &str) -> &'a str {
    p["reviews"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["stage"] == stage))
        .and_then(|r| r["status"].as_str())
        .unwrap_or_default()
}

/// The usual reviewer of each stage (all distinct people).
pub fn reviewer_for(stage: &str) -> &'static str {
    match stage {
        "technical" => "tech",
        "business" => "biz",
        "compliance" => "comp",
        "deployment" => "rel2",
        other => panic!("unknown stage {other}"),
    }
}

/// The AWS backend of the conformance run: one fresh DynamoDB table per test on DynamoDB Local,
/// checkpoints signed by a KMS P-256 key and evidence kept in S3, both on moto.
mod aws_backend {
    use std::sync::Arc;

    use anyhow::{Context, Result};
    use async_trait::async_trait;
    use steward_aws::dynamo::{create_table, DynamoStore};
    use steward_aws::kms::{sign_checkpoint, AsyncCheckpointSigner, KmsSigner};
    use steward_aws::s3::EvidenceStore;
    use steward_core::ids::VersionNumber;
    use steward_core::ports::*;
    use steward_core::records::*;
    use steward_core::types::{ModelName, PrincipalId};
    use steward_core::{Governance, Policy, StoreError};

    pub async fn open(
        policy: Policy,
        clock: Arc<dyn Clock>,
    ) -> Result<(Arc<Governance>, Box<dyn std::any::Any + Send + Sync>)> {
        // DynamoDB Local for the table; moto for S3 evidence and KMS signing.
        let emulators = steward_testkit::Emulators::required(
            "env STEWARD_TEST_BACKEND=aws cargo test -p steward-api --test api",
        );
        let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let conf = emulators.dynamodb_sdk().await;
        let client = aws_sdk_dynamodb::Client::new(&conf);
        let table = format!("conformance-{unique}");
        create_table(&client, &table).await?;

        // Checkpoints are signed by a KMS ECC_NIST_P256 key, as in a deployment (on moto).
        let kms = aws_sdk_kms::Client::new(&emulators.sdk().await);
        let key = kms
            .create_key()
            .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
            .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
            .send()
            .await?;
        let key_id = key
            .key_metadata()
            .map(|m| m.key_id().to_owned())
            .context("no key id")?;
        let signer: Arc<dyn AsyncCheckpointSigner> =
            Arc::new(KmsSigner::connect(kms, key_id).await?);

        // Evidence (manifests, cards, evaluation reports) in an S3 bucket on moto.
        let s3 = emulators.s3().await;
        let bucket = format!("conformance-{unique}");
        // Object Lock on, as the template's artifact bucket: evidence packs are locked in it.
        s3.create_bucket()
            .bucket(&bucket)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await?;
        let evidence = Arc::new(EvidenceStore::new(s3, bucket, ""));

        // Roles take effect on the next request, as in the embedded backend.
        let store = Arc::new(
            DynamoStore::new(
                client,
                table,
                (signer.key_id().await, signer.public_key().await),
            )
            .with_principal_ttl(std::time::Duration::ZERO),
        );
        // Evidence pack manifests are signed with the same KMS key, as the functions do.
        let manifest_signer = Arc::new(steward_aws::kms::ManifestSigning(signer.clone()));
        let registry = Arc::new(CheckpointEveryCommit {
            store: store.clone(),
            signer,
        });
        let gov = Arc::new(
            Governance::new(
                registry,
                store.clone(),
                Arc::new(InProcessWorkflows),
                clock,
                Arc::new(steward_local::UuidIds),
                policy,
            )
            .with_evidence(evidence)
            .with_manifest_signer(manifest_signer)
            // Webhook secrets as SSM SecureStrings on moto, deliveries on the table.
            .with_webhooks(steward_core::service::WebhookPorts {
                secrets: Arc::new(steward_aws::ssm::SsmSecrets::new(
                    &emulators.sdk().await,
                    &format!("/steward/conformance-{unique}"),
                )?),
                deliveries: Arc::new(steward_aws::dynamo::DynamoDeliveries::on(&store)),
            }),
        );
        Ok((gov, Box::new(store)))
    }

    /// On AWS the scheduled checkpoint function signs the log; this suite signs after every
    /// commit instead (as the embedded store does), so audit assertions read the same on both
    /// backends. Everything else passes straight through to the DynamoDB store.
    struct CheckpointEveryCommit {
        store: Arc<DynamoStore>,
        signer: Arc<dyn AsyncCheckpointSigner>,
    }

    #[async_trait]
    impl Registry for CheckpointEveryCommit {
        async fn get_many(&self, keys: &[Key]) -> Result<Fetched, StoreError> {
            self.store.get_many(keys).await
        }
        async fn model(&self, n: &ModelName) -> Result<Option<Model>, StoreError> {
            self.store.model(n).await
        }
        async fn version(
            &self,
            n: &ModelName,
            v: VersionNumber,
        ) -> Result<Option<ModelVersion>, StoreError> {
            self.store.version(n, v).await
        }
        async fn versions(&self, n: &ModelName) -> Result<Vec<ModelVersion>, StoreError> {
            self.store.versions(n).await
        }
        async fn list_models(
            &self,
            f: &ModelFilter,
            c: Option<&str>,
            l: usize,
        ) -> Result<Page<Model>, StoreError> {
            self.store.list_models(f, c, l).await
        }
        async fn card_revisions(
            &self,
            n: &ModelName,
            v: VersionNumber,
        ) -> Result<Vec<CardRevision>, StoreError> {
            self.store.card_revisions(n, v).await
        }
        async fn promotion(&self, id: &str) -> Result<Option<Promotion>, StoreError> {
            self.store.promotion(id).await
        }
        async fn promotions_of(
            &self,
            n: &ModelName,
            v: VersionNumber,
        ) -> Result<Vec<Promotion>, StoreError> {
            self.store.promotions_of(n, v).await
        }
        async fn list_reviews(
            &self,
            f: &ReviewFilter,
            c: Option<&str>,
            l: usize,
        ) -> Result<Page<ReviewItem>, StoreError> {
            self.store.list_reviews(f, c, l).await
        }
        async fn retirements(
            &self,
            s: steward_core::records::RetirementStatus,
            c: Option<&str>,
            l: usize,
        ) -> Result<Page<ModelVersion>, StoreError> {
            self.store.retirements(s, c, l).await
        }
        async fn reviews_due(
            &self,
            now: chrono::DateTime<chrono::Utc>,
            l: usize,
        ) -> Result<Vec<Review>, StoreError> {
            self.store.reviews_due(now, l).await
        }
        async fn production_at(
            &self,
            n: &ModelName,
            at: chrono::DateTime<chrono::Utc>,
        ) -> Result<Option<ProductionChange>, StoreError> {
            self.store.production_at(n, at).await
        }
        async fn production_models(
            &self,
            c: Option<&str>,
            l: usize,
        ) -> Result<Page<Model>, StoreError> {
            self.store.production_models(c, l).await
        }
        async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
            self.store.incident(id).await
        }
        async fn serious_reports_due(
            &self,
            before: chrono::DateTime<chrono::Utc>,
            l: usize,
        ) -> Result<Vec<Incident>, StoreError> {
            self.store.serious_reports_due(before, l).await
        }
        async fn incidents(
            &self,
            n: Option<&ModelName>,
            c: Option<&str>,
            l: usize,
        ) -> Result<Page<Incident>, StoreError> {
            self.store.incidents(n, c, l).await
        }
        async fn principal(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, StoreError> {
            self.store.principal(id).await
        }
        async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
            self.store.principals().await
        }
        async fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
            self.store.idempotency(key).await
        }
        async fn webhook(
            &self,
            id: &steward_core::webhooks::WebhookId,
        ) -> Result<Option<steward_core::webhooks::Webhook>, StoreError> {
            self.store.webhook(id).await
        }
        async fn webhooks(&self) -> Result<Vec<steward_core::webhooks::Webhook>, StoreError> {
            self.store.webhooks().await
        }
        async fn registered_model(
            &self,
            n: &ModelName,
        ) -> Result<Option<steward_core::mlflow::RegisteredModel>, StoreError> {
            self.store.registered_model(n).await
        }
        async fn registered_models(
            &self,
        ) -> Result<Vec<steward_core::mlflow::RegisteredModel>, StoreError> {
            self.store.registered_models().await
        }
        async fn serving(
            &self,
            key: &str,
        ) -> Result<Option<steward_core::serving::ServingRecord>, StoreError> {
            self.store.serving(key).await
        }
        async fn serving_records(
            &self,
            cursor: Option<&str>,
            limit: usize,
        ) -> Result<Page<steward_core::serving::ServingRecord>, StoreError> {
            self.store.serving_records(cursor, limit).await
        }
        async fn versions_with_artifact(
            &self,
            sha256: Option<&steward_core::types::Sha256>,
            uri: &str,
        ) -> Result<Vec<VersionRef>, StoreError> {
            self.store.versions_with_artifact(sha256, uri).await
        }
        async fn commit(&self, commit: Commit) -> Result<Receipt, StoreError> {
            let signs = !commit.audit.is_empty();
            let receipt = self.store.commit(commit).await?;
            if signs {
                // Concurrent commits may sign out of order; put_checkpoint keeps the latest.
                let head = self.store.head().await?;
                if let Some(time) = head.time {
                    let cp = sign_checkpoint(self.signer.as_ref(), head.size, head.root, time)
                        .await
                        .map_err(|e| StoreError::backend("cannot sign a checkpoint", e))?;
                    self.store.put_checkpoint(&cp).await?;
                }
            }
            Ok(receipt)
        }
    }
}
