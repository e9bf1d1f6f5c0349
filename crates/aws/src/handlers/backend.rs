//! The AWS backend as the Lambdas build it once at cold start: SDK clients from the typed
//! configuration, the DynamoDB store, the governance service over it, the workflows port and
//! the checkpoint signer.
//!
//! Invariants:
//! - Clients are built from one [`sdk_config`]; with `STEWARD_ENDPOINT_URL` (emulators) every
//!   client talks to it, DynamoDB to `STEWARD_DYNAMODB_ENDPOINT_URL` when set, S3 with
//!   path-style addressing, and static test credentials are used: no credential chain is
//!   consulted against an emulator.
//! - The workflows port is Step Functions exactly when `STEWARD_APPROVAL_STATE_MACHINE_ARN` is
//!   set; its task tokens are the store's `T#` items. Retirements go through the retirement
//!   workflow exactly when `STEWARD_RETIREMENT_STATE_MACHINE_ARN` is set as well.
//! - Webhooks: signing secrets are SSM `SecureString`s under `STEWARD_WEBHOOK_SECRETS_PREFIX`
//!   ([`SsmSecrets`]), deliveries items of the registry table ([`DynamoDeliveries`]); both
//!   are wired into every function's `Governance`, and building them makes no request.
//! - Integrations: with `STEWARD_INTEGRATIONS_PARAMETER` set, the file and its secrets are
//!   read from SSM here (`crate::integrations`), and a ServiceNow integration becomes the
//!   governance service's change control, so the gate and deployments wait on its changes.
//! - Checkpoints and evidence pack manifests are signed by the KMS key `STEWARD_SIGNING_KEY_ID` (its public key fetched
//!   once here); [`TEST_SIGNING_SEED`] (an Ed25519 seed) exists for emulators only, which
//!   cannot host the real key everywhere. Without either there is no signer, and the functions
//!   that need one refuse to start.

use std::sync::Arc;

use aws_config::SdkConfig;
use steward_core::audit::Ed25519Signer;
use steward_core::ports::{IdGen, InProcessWorkflows, SystemClock, Workflows};
use steward_core::service::{PolicyRecord, WebhookPorts};
use steward_core::types::{PrincipalId, Role};
use steward_core::{GovError, Governance};

use crate::config::sdk_config;
use crate::diagnostic::Failure;
use crate::dynamo::{DynamoDeliveries, DynamoSessions, DynamoStore};
use crate::env::AwsEnv;
use crate::events::EventBridgePublisher;
use crate::kms::{AsyncCheckpointSigner, KmsSigner, LocalSigner};
use crate::s3::AuditObjects;
use crate::ssm::SsmSecrets;
use crate::workflows::{StepFunctionsWorkflows, TaskTokens};
use steward_integrations::Integrations;

/// Emulators and tests only: a 64-hex-digit Ed25519 seed that signs checkpoints when no KMS
/// key (`STEWARD_SIGNING_KEY_ID`) is configured. Never set it in a deployment.
pub const TEST_SIGNING_SEED: &str = "STEWARD_TEST_SIGNING_SEED";

/// Promotion and incident ids: the prefix and 16 hex digits (64 random bits) of a v4 UUID,
/// the scheme of the embedded backend. Unique within one version's promotions or one model's
/// incidents; a clash would fail the commit's create-only condition, never overwrite.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidIds;

impl IdGen for UuidIds {
    fn id(&self, prefix: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("{prefix}-{}", &id[..16])
    }
}

/// Everything a Steward function needs, built once per cold start.
#[derive(Clone)]
pub struct AwsBackend {
    pub sdk: SdkConfig,
    pub store: Arc<DynamoStore>,
    pub gov: Arc<Governance>,
    /// Set when `STEWARD_APPROVAL_STATE_MACHINE_ARN` is.
    pub step_functions: Option<Arc<StepFunctionsWorkflows>>,
    /// Set when `STEWARD_SIGNING_KEY_ID` (or, in tests, [`TEST_SIGNING_SEED`]) is.
    pub signer: Option<Arc<dyn AsyncCheckpointSigner>>,
    /// The integrations of `STEWARD_INTEGRATIONS_PARAMETER` (none when unset); a ServiceNow
    /// one is `gov`'s change control.
    pub integrations: Arc<Integrations>,
    /// Whether clients talk to an emulator (S3 path-style addressing).
    emulated: bool,
}

impl std::fmt::Debug for AwsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsBackend")
            .field("store", &self.store)
            .field("step_functions", &self.step_functions)
            .field("signer", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

/// The Ed25519 test signer of [`TEST_SIGNING_SEED`], if set; a malformed seed is a
/// configuration error.
pub fn test_signer(get: impl Fn(&str) -> Option<String>) -> Result<Option<Ed25519Signer>, Failure> {
    let Some(hex_seed) = get(TEST_SIGNING_SEED) else {
        return Ok(None);
    };
    let mut seed = [0u8; 32];
    hex::decode_to_slice(hex_seed.trim(), &mut seed).map_err(|_| {
        Failure::config(format!(
            "{TEST_SIGNING_SEED} is not 64 hex digits (an Ed25519 seed)"
        ))
    })?;
    Ok(Some(Ed25519Signer::from_seed(&seed)))
}

impl AwsBackend {
    /// Connects with the process environment's settings (`STEWARD_TABLE` is required).
    /// Requests: one KMS `GetPublicKey` when a KMS key is configured, and the SSM
    /// `GetParameter`s of the integrations file when one is; nothing else.
    pub async fn connect(env: &AwsEnv) -> Result<Self, Failure> {
        let seed = test_signer(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))?;
        Self::connect_with(env, seed).await
    }

    /// Records the policy in force in the audit log (`policy.loaded`, `PolicyChanged`) when it
    /// differs from the last one recorded: what every function does at cold start, after its
    /// configuration checks and before its first invocation (`lambda::init`, or
    /// `lambda::record_policy` in a main that connects itself). Requests:
    /// one `GetItem` when the policy is unchanged; otherwise the commit and a `PutItem`.
    ///
    /// Changes are numbered; change `n` is recorded once however many functions start at
    /// once (its idempotency key, see `Governance::record_policy_change`), and the marker
    /// moves to `n` after it. A start that finds `n` already taken moves the marker along for
    /// the process that crashed before it could, and looks again.
    pub async fn record_policy(&self) -> Result<bool, GovError> {
        let digest = self.gov.policy().digest()?;
        for _ in 0..8 {
            let last = self.store.policy_marker().await?;
            if last.as_ref().is_some_and(|(_, d)| *d == digest) {
                return Ok(false);
            }
            let from = last.map(|(c, _)| c);
            let change = from.map_or(1, |c| c + 1);
            match self.gov.record_policy_change(change).await? {
                PolicyRecord::Recorded { digest } => {
                    self.store
                        .advance_policy_marker(from, change, &digest)
                        .await?;
                    return Ok(true);
                }
                PolicyRecord::AlreadyRecorded { digest } => {
                    self.store
                        .advance_policy_marker(from, change, digest.as_deref().unwrap_or(""))
                        .await?;
                }
            }
        }
        Err(GovError::Contended(
            "the policy history moved 8 times while this function started".into(),
        ))
    }

    /// [`AwsBackend::connect`] with the test signer given rather than read from the
    /// environment.
    pub async fn connect_with(
        env: &AwsEnv,
        test_signer: Option<Ed25519Signer>,
    ) -> Result<Self, Failure> {
        // Checked before any SDK configuration is loaded, as `connect_over` checks it again.
        env.require(&["STEWARD_TABLE"])?;
        let sdk = sdk_config(None, env.endpoint.as_deref(), env.emulated()).await;
        Self::connect_over(env, test_signer, sdk).await
    }

    /// [`AwsBackend::connect_with`] over a given SDK configuration rather than
    /// [`sdk_config`]'s. Functions never call it; the fault tests hand in `sdk_config`'s
    /// configuration with its HTTP client wrapped in a fault injector, so every client the
    /// backend builds (and [`AwsBackend::s3`], [`AwsBackend::publisher`] later) goes through it.
    pub async fn connect_over(
        env: &AwsEnv,
        test_signer: Option<Ed25519Signer>,
        sdk: SdkConfig,
    ) -> Result<Self, Failure> {
        env.require(&["STEWARD_TABLE"])?;
        let table = env.table.clone().unwrap_or_default();
        let emulated = env.emulated();

        let mut dynamo = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(e) = env.dynamodb_endpoint.as_deref() {
            dynamo = dynamo.endpoint_url(e);
        }
        let dynamo = aws_sdk_dynamodb::Client::from_conf(dynamo.build());

        let signer: Option<Arc<dyn AsyncCheckpointSigner>> =
            match (&env.signing_key_id, test_signer) {
                (Some(key), _) => {
                    let kms = aws_sdk_kms::Client::new(&sdk);
                    Some(Arc::new(KmsSigner::connect(kms, key.clone()).await?))
                }
                (None, Some(s)) => Some(Arc::new(LocalSigner(s))),
                (None, None) => None,
            };
        let public = match &signer {
            Some(s) => (s.key_id().await, s.public_key().await),
            None => (String::new(), Vec::new()),
        };
        let store =
            Arc::new(DynamoStore::new(dynamo, table, public).with_principal_ttl(env.role_cache));

        let step_functions = match &env.approval_state_machine {
            Some(arn) => {
                let tokens: Arc<dyn TaskTokens> = store.clone();
                let sfn = aws_sdk_sfn::Client::new(&sdk);
                let mut w = StepFunctionsWorkflows::new(sfn, arn.clone(), tokens)?;
                if let Some(retirement) = &env.retirement_state_machine {
                    w = w.with_retirement(retirement.clone())?;
                }
                Some(Arc::new(w))
            }
            None => None,
        };
        let workflows: Arc<dyn Workflows> = match &step_functions {
            Some(w) => w.clone(),
            None => Arc::new(InProcessWorkflows),
        };
        let mut gov = Governance::new(
            store.clone(),
            store.clone(),
            workflows,
            Arc::new(SystemClock),
            Arc::new(UuidIds),
            env.policy.clone(),
        )
        .with_pause(Arc::new(TokioPause))
        .with_webhooks(WebhookPorts {
            // Built without a request; only the api function's role may use them.
            secrets: Arc::new(SsmSecrets::new(&sdk, &env.webhook_secrets_prefix)?),
            deliveries: Arc::new(DynamoDeliveries::on(&store)),
        });
        if let Some(signer) = &signer {
            // Evidence pack manifests are signed with the audit key (KMS on AWS).
            gov = gov.with_manifest_signer(Arc::new(crate::kms::ManifestSigning(signer.clone())));
        }
        if let Some(bucket) = &env.evidence_bucket {
            // Manifests, cards and evaluation reports by content hash; s3:// artifacts checked.
            let s3 = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(emulated)
                    .build(),
            );
            gov = gov.with_evidence(Arc::new(crate::s3::EvidenceStore::new(
                s3,
                bucket.clone(),
                "",
            )));
        }
        let integrations = match &env.integrations_parameter {
            Some(p) => crate::integrations::load(&sdk, p).await?,
            None => Integrations::none(),
        };
        if let Some(cc) = integrations.change_control() {
            // ServiceNow gates production: attached before the first request is served.
            gov = gov.with_change_control(cc);
        }
        let gov = Arc::new(gov);
        integrations.bind(&gov);
        Ok(Self {
            sdk,
            store,
            gov,
            step_functions,
            signer,
            integrations,
            emulated,
        })
    }

    /// The console's sign-in state (the `SessionStore` port) on the same table and client.
    pub fn sessions(&self) -> DynamoSessions {
        DynamoSessions::on(&self.store)
    }

    /// The checkpoint signer, or a configuration failure naming what to set.
    pub fn require_signer(&self) -> Result<Arc<dyn AsyncCheckpointSigner>, Failure> {
        self.signer
            .clone()
            .ok_or_else(|| Failure::config("STEWARD_SIGNING_KEY_ID is not set"))
    }

    /// The Step Functions workflows, or a configuration failure naming what to set.
    pub fn require_step_functions(&self) -> Result<Arc<StepFunctionsWorkflows>, Failure> {
        self.step_functions
            .clone()
            .ok_or_else(|| Failure::config("STEWARD_APPROVAL_STATE_MACHINE_ARN is not set"))
    }

    /// An S3 client (path-style against an emulator).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.emulated)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// The audit log's objects in `STEWARD_AUDIT_BUCKET`.
    pub fn audit_objects(&self, env: &AwsEnv) -> Result<AuditObjects, Failure> {
        env.require(&["STEWARD_AUDIT_BUCKET"])?;
        let bucket = env.audit_bucket.clone().unwrap_or_default();
        Ok(AuditObjects::new(
            self.s3(),
            bucket,
            &env.audit_prefix,
            env.audit_retention,
        ))
    }

    /// The governance event publisher to `STEWARD_EVENT_BUS`.
    pub fn publisher(&self, env: &AwsEnv) -> Result<EventBridgePublisher, Failure> {
        env.require(&["STEWARD_EVENT_BUS"])?;
        let bus = env.event_bus.clone().unwrap_or_default();
        Ok(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&self.sdk),
            bus,
        ))
    }

    /// Seeds each of `admins` with the admin role (source `bootstrap`), unless an admin
    /// already manages its roles through the API. Returns how many records changed; each
    /// change is audited. Requests when nothing changes: one `GetItem` per admin.
    pub async fn seed_bootstrap_admins(&self, admins: &[PrincipalId]) -> Result<usize, GovError> {
        let mut changed = 0;
        for id in admins {
            if self
                .gov
                .seed_principal(id, vec![Role::Admin], "bootstrap")
                .await?
                .is_some()
            {
                changed += 1;
            }
        }
        Ok(changed)
    }
}

/// The runtime's timer, for the core's backoff between attempts that lost a race.
struct TokioPause;

#[async_trait::async_trait]
impl steward_core::ports::Pause for TokioPause {
    async fn pause(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_core::audit::CheckpointSigner;

    #[test]
    fn ids_carry_their_prefix_and_sixteen_hex_digits() {
        let id = UuidIds.id("pr");
        assert!(id.starts_with("pr-") && id.len() == 19, "{id}");
        assert!(id[3..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(UuidIds.id("pr"), id);
    }

    #[test]
    fn the_test_seed_must_be_64_hex_digits() {
        assert!(test_signer(|_| None).unwrap().is_none());
        let ok = test_signer(|_| Some("2a".repeat(32))).unwrap().unwrap();
        assert_eq!(ok.key_id(), Ed25519Signer::from_seed(&[42; 32]).key_id());
        let err = test_signer(|_| Some("xyz".into())).unwrap_err();
        assert_eq!(err.error_type, crate::diagnostic::CONFIG);
        assert!(err.message.contains(TEST_SIGNING_SEED));
    }

    #[tokio::test]
    async fn connecting_without_a_table_names_it() {
        let env = AwsEnv::from_lookup(|_| None).unwrap();
        let err = AwsBackend::connect_with(&env, None).await.unwrap_err();
        assert_eq!(err.error_type, crate::diagnostic::CONFIG);
        assert!(err.message.contains("STEWARD_TABLE"), "{err}");
    }
}
