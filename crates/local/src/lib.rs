//! Steward's embedded backend: the registry and audit log on SQLite under one data directory,
//! the checkpoint signing key beside them, and an in-process workflow runner.
//!
//! Invariants: everything Steward knows lives under the data directory (`steward.db` and the
//! `audit-signing.key` created on first start, readable by its owner only); a second start
//! reuses both; the policy in force is recorded in the audit log whenever it changes.

mod evidence;
mod principals;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use steward_core::audit::verify::{verify_log, VerifyReport};
use steward_core::audit::Ed25519Signer;
use steward_core::ports::{Clock, IdGen, InProcessWorkflows, SystemClock};
use steward_core::service::WebhookPorts;
use steward_core::{Governance, Policy};

pub use evidence::FileEvidence;
pub use principals::{load_principals, PrincipalEntry};
pub use store::SqliteStore;

/// Errors opening or verifying an embedded data directory.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] steward_core::StoreError),
    #[error(transparent)]
    Governance(#[from] steward_core::GovError),
    #[error("audit verification failed: {0}")]
    Verify(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LocalError + '_ {
    move |source| LocalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Random ids (`pr-<uuid>`, `inc-<uuid>`).
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidIds;

impl IdGen for UuidIds {
    fn id(&self, prefix: &str) -> String {
        // 64 random bits: unique within one version's promotions or one model's incidents
        // (and a clash would fail the commit's create-only condition, not overwrite).
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("{prefix}-{}", &id[..16])
    }
}

pub const DB_FILE: &str = "steward.db";
pub const KEY_FILE: &str = "audit-signing.key";

/// Loads the checkpoint signing key from `dir`, creating it on first start.
pub fn signing_key(dir: &Path) -> Result<Ed25519Signer, LocalError> {
    let path = dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| LocalError::Invalid {
                path: path.clone(),
                message: "expected 64 hex digits (an Ed25519 seed)".into(),
            })?;
            Ok(Ed25519Signer::from_seed(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
            write_private(&path, &hex::encode(seed))?;
            Ok(Ed25519Signer::from_seed(&seed))
        }
        Err(e) => Err(io(&path)(e)),
    }
}

/// Writes a file only its owner can read (created exclusively: an existing key is never replaced).
pub fn write_private(path: &Path, contents: &str) -> Result<(), LocalError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(contents.as_bytes()).map_err(io(path))?;
    Ok(())
}

/// The embedded Steward: governance service over SQLite in one data directory.
pub struct Embedded {
    pub gov: Arc<Governance>,
    pub store: Arc<SqliteStore>,
    pub data_dir: PathBuf,
}

impl Embedded {
    /// Opens (creating if needed) the data directory and records the policy if it changed.
    pub async fn open(data_dir: &Path, policy: Policy) -> Result<Self, LocalError> {
        Self::open_with_clock(data_dir, policy, Arc::new(SystemClock)).await
    }

    /// [`Embedded::open`] with the service reading time from `clock` (tests move a manual
    /// clock instead of sleeping; `steward serve` uses the wall clock).
    pub async fn open_with_clock(
        data_dir: &Path,
        policy: Policy,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LocalError> {
        Self::open_configured(data_dir, policy, clock, |gov| gov).await
    }

    /// [`Embedded::open_with_clock`] with `configure` attaching the ports a deployment adds
    /// to the service (e.g. `Governance::with_change_control` for ServiceNow).
    pub async fn open_configured(
        data_dir: &Path,
        policy: Policy,
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(Governance) -> Governance,
    ) -> Result<Self, LocalError> {
        std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
        let signer = signing_key(data_dir)?;
        // The audit key signs evidence pack manifests as well as checkpoints.
        let manifest_signer = Arc::new(signer.clone());
        let store = Arc::new(SqliteStore::open(&data_dir.join(DB_FILE), signer)?);
        let gov = Arc::new(configure(
            Governance::new(
                store.clone(),
                store.clone(),
                Arc::new(InProcessWorkflows),
                clock,
                Arc::new(UuidIds),
                policy,
            )
            .with_evidence(Arc::new(FileEvidence::new(data_dir)))
            .with_manifest_signer(manifest_signer)
            .with_pause(Arc::new(TokioPause))
            .with_webhooks(WebhookPorts {
                secrets: store.clone(),
                deliveries: store.clone(),
            }),
        ));
        let last = store.meta("policy_sha256")?;
        if gov.record_policy(last.as_deref()).await? {
            store.set_meta("policy_sha256", &gov.policy().digest()?)?;
        }
        Ok(Self {
            gov,
            store,
            data_dir: data_dir.to_owned(),
        })
    }

    /// Seeds the principals of a principals file; returns how many changed.
    pub async fn seed_principals(&self, entries: &[PrincipalEntry]) -> Result<usize, LocalError> {
        let mut changed = 0;
        for e in entries {
            if self
                .gov
                .seed_principal(&e.id, e.roles.clone(), "file")
                .await?
                .is_some()
            {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Starts the workflow runner: every `every`, expire reviews past their deadline, open
    /// the periodic reviews of production versions that fell due and remind of serious
    /// incident reports falling due.
    pub fn spawn_runner(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let gov = self.gov.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match gov.expire_due_reviews().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        promotions = n,
                        "expired promotions past their review deadline"
                    ),
                    Err(e) => tracing::warn!(error = %e, "workflow runner tick failed"),
                }
                // Once per due period: a version already opened for review is not reopened.
                match gov.open_due_periodic_reviews().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(reviews = n, "opened periodic reviews that fell due"),
                    Err(e) => tracing::warn!(error = %e, "periodic review tick failed"),
                }
                // Once per incident: the incident records that its reminder was sent.
                match gov.serious_incident_reminders(gov.now()).await {
                    Ok(sent) if sent.is_empty() => {}
                    Ok(sent) => tracing::info!(
                        incidents = sent.len(),
                        "sent serious incident report reminders"
                    ),
                    Err(e) => tracing::warn!(error = %e, "serious incident reminder tick failed"),
                }
            }
        })
    }
}

/// Verifies the audit log of a data directory offline, straight from the stored rows, against
/// `public_key` (defaults to the directory's own signing key). Opens nothing for writing and
/// creates nothing: a missing database or key is an error, not a fresh start.
pub fn verify_data_dir(
    data_dir: &Path,
    public_key: Option<ed25519_dalek::VerifyingKey>,
) -> Result<VerifyReport, LocalError> {
    let db = data_dir.join(DB_FILE);
    if !db.exists() {
        return Err(LocalError::Invalid {
            path: db,
            message: "no Steward database here".into(),
        });
    }
    let key = match public_key {
        Some(k) => k,
        None => {
            let path = data_dir.join(KEY_FILE);
            if !path.exists() {
                return Err(LocalError::Invalid {
                    path,
                    message: "no signing key here; pass the log's public key to verify against"
                        .into(),
                });
            }
            signing_key(data_dir)?.verifying_key()
        }
    };
    let (events, checkpoints) = store::read_audit_rows(&db)?;
    verify_log(&events, &checkpoints, &key).map_err(|e| LocalError::Verify(e.to_string()))
}

/// The runtime's timer, for the core's backoff between attempts that lost a race.
struct TokioPause;

#[async_trait::async_trait]
impl steward_core::ports::Pause for TokioPause {
    async fn pause(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}
