//! A governance service over the in-memory ports, the usual cast of callers, and the lifecycle
//! steps most rule tests start from.
//!
//! Invariants: a harness owns its ports (nothing is shared between harnesses); the cast's
//! people each hold one role and are all distinct, so no separation-of-duties rule fires
//! unless a test asks for it; the lifecycle steps take a version only through the public
//! operations, as the API would, and panic (failing the test) when a step is refused.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{
    block_on, ManualClock, MemoryEvidence, MemoryStore, RecordingWorkflows, SequentialIds,
};
use crate::error::GovError;
use crate::ids::VersionNumber;
use crate::ports::Caller;
use crate::records::{Promotion, PromotionStatus};
use crate::service::DecisionInput;
use crate::types::{Decision, Environment, PrincipalId, ReviewStage, RiskTier, Role};
use crate::{Governance, Policy};

/// Version `n` (at least 1), for tests that name versions by number.
pub fn vn(n: u32) -> VersionNumber {
    VersionNumber::new(n).expect("a version number is at least 1")
}

/// A caller with `roles`, authenticated as `id`.
pub fn caller(id: &str, roles: &[Role]) -> Caller {
    Caller {
        id: PrincipalId::parse(id).expect("a valid principal id"),
        roles: roles.to_vec(),
        auth: crate::types::AuthMethod::Token,
    }
}

/// The example manifest (`examples/credit-risk-v1.json`) with risk tier `tier`.
pub fn manifest(tier: RiskTier) -> Value {
    let mut m: Value =
        serde_json::from_str(include_str!("../../../../examples/credit-risk-v1.json"))
            .expect("the example manifest is JSON");
    m["risk_tier"] = json!(tier.as_str());
    m
}

/// An evaluation on staging test data that meets the example card's thresholds.
pub fn staging_evaluation() -> Value {
    json!({
        "name": "staging-shadow-2026q2",
        "dataset": {
            "uri": "s3://acme-data/credit/staging-shadow-2026q2.parquet",
            "sha256": "2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b"
        },
        "metrics": {"auc": 0.905, "accuracy": 0.869},
        "environment": "staging"
    })
}

/// The usual people, one role each, all distinct.
#[derive(Debug, Clone)]
pub struct Cast {
    /// Registers versions and requests promotions (developer).
    pub dev: Caller,
    pub dev2: Caller,
    pub tech: Caller,
    pub tech2: Caller,
    pub biz: Caller,
    pub comp: Caller,
    /// Deploys to production and decides deployment reviews (release manager).
    pub rel: Caller,
    pub rel2: Caller,
    pub ops: Caller,
    pub aud: Caller,
    pub admin: Caller,
}

impl Default for Cast {
    fn default() -> Self {
        use Role::*;
        Self {
            dev: caller("dana", &[Developer]),
            dev2: caller("dev2", &[Developer]),
            tech: caller("tom", &[TechnicalReviewer]),
            tech2: caller("tess", &[TechnicalReviewer]),
            biz: caller("bea", &[BusinessReviewer]),
            comp: caller("cleo", &[ComplianceReviewer]),
            rel: caller("rita", &[ReleaseManager]),
            rel2: caller("rob", &[ReleaseManager]),
            ops: caller("otto", &[Operator]),
            aud: caller("ada", &[Auditor]),
            admin: caller("root", &[Admin]),
        }
    }
}

impl Cast {
    /// The usual reviewer of `stage` (the deployment review: `rel2`, so that `rel` may deploy).
    pub fn reviewer_for(&self, stage: ReviewStage) -> &Caller {
        match stage {
            ReviewStage::Technical => &self.tech,
            ReviewStage::Business => &self.biz,
            ReviewStage::Compliance => &self.comp,
            ReviewStage::Deployment => &self.rel2,
        }
    }
}

/// A [`Governance`] over [`MemoryStore`], [`MemoryEvidence`], [`ManualClock`],
/// [`SequentialIds`] and [`RecordingWorkflows`], with handles on each.
pub struct Harness {
    pub gov: Arc<Governance>,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub ids: Arc<SequentialIds>,
    pub evidence: Arc<MemoryEvidence>,
    pub workflows: Arc<RecordingWorkflows>,
    pub secrets: Arc<crate::testing::MemorySecrets>,
    pub deliveries: Arc<crate::testing::MemoryDeliveries>,
    pub cast: Cast,
}

impl Default for Harness {
    fn default() -> Self {
        Self::with_policy(Policy::default())
    }
}

impl Harness {
    /// The default policy (DESIGN.md), embedded-mode workflows.
    pub fn new() -> Self {
        Self::default()
    }

    /// A harness under the policy file `toml`.
    pub fn from_policy_toml(toml: &str) -> Result<Self, GovError> {
        Ok(Self::with_policy(Policy::from_toml(toml)?))
    }

    pub fn with_policy(policy: Policy) -> Self {
        Self::build(policy, RecordingWorkflows::default())
    }

    /// A harness whose workflows confirm retirements (request, confirm, archive: as on AWS).
    pub fn confirming_retirements(policy: Policy) -> Self {
        Self::build(policy, RecordingWorkflows::confirming_retirements())
    }

    fn build(policy: Policy, workflows: RecordingWorkflows) -> Self {
        let store = Arc::new(MemoryStore::default());
        let clock = Arc::new(ManualClock::default());
        let ids = Arc::new(SequentialIds::default());
        let evidence = Arc::new(MemoryEvidence::default());
        let workflows = Arc::new(workflows);
        let secrets = Arc::new(crate::testing::MemorySecrets::default());
        let deliveries = Arc::new(crate::testing::MemoryDeliveries::default());
        let gov = Governance::new(
            store.clone(),
            store.clone(),
            workflows.clone(),
            clock.clone(),
            ids.clone(),
            policy,
        )
        .with_evidence(evidence.clone())
        .with_manifest_signer(Arc::new(store.signer().clone()))
        .with_webhooks(crate::service::WebhookPorts {
            secrets: secrets.clone(),
            deliveries: deliveries.clone(),
        });
        Self {
            gov: Arc::new(gov),
            store,
            clock,
            ids,
            evidence,
            workflows,
            secrets,
            deliveries,
            cast: Cast::default(),
        }
    }

    /// The harness clock's time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        crate::ports::Clock::now(self.clock.as_ref())
    }

    /// Runs a governance call over this harness's ports to completion (see [`block_on`]).
    pub fn run<F: std::future::Future>(&self, future: F) -> F::Output {
        block_on(future)
    }

    // ------------------------------------------------------------------ lifecycle steps

    /// Registers a version of `name` in `tier` as `dev`; returns its number.
    pub async fn register(&self, name: &str, tier: RiskTier) -> VersionNumber {
        let (v, _) = self
            .gov
            .register(&self.cast.dev, name, manifest(tier), None)
            .await
            .unwrap_or_else(|e| panic!("registering {name}: {e:?}"));
        v.version
    }

    /// Requests a promotion of `name` `version` to `target` as `dev`.
    pub async fn promote(
        &self,
        name: &str,
        version: VersionNumber,
        target: Environment,
    ) -> Promotion {
        self.gov
            .request_promotion(&self.cast.dev, name, version, target, None)
            .await
            .unwrap_or_else(|e| panic!("promoting {name} v{version} to {target}: {e:?}"))
    }

    /// `who` approves review `review_id`.
    pub async fn approve(&self, who: &Caller, review_id: &str) -> Result<Promotion, GovError> {
        let input = DecisionInput {
            decision: Decision::Approve,
            comment: None,
            conditions: vec![],
        };
        self.gov.decide(who, review_id, input).await
    }

    /// `who` rejects review `review_id`, saying `why`.
    pub async fn reject(
        &self,
        who: &Caller,
        review_id: &str,
        why: &str,
    ) -> Result<Promotion, GovError> {
        let input = DecisionInput {
            decision: Decision::Reject,
            comment: Some(why.to_owned()),
            conditions: vec![],
        };
        self.gov.decide(who, review_id, input).await
    }

    /// Every review of `p` approved by its usual reviewer, in order; returns the promotion.
    pub async fn approve_all(&self, p: &Promotion) -> Promotion {
        let mut last = p.clone();
        for r in &p.reviews {
            last = self
                .approve(self.cast.reviewer_for(r.stage), &r.id)
                .await
                .unwrap_or_else(|e| panic!("approving {}: {e:?}", r.id));
        }
        assert_eq!(last.status, PromotionStatus::Approved, "{last:?}");
        last
    }

    /// Staging promotion approved, staging deployment, and an evaluation on staging test data.
    pub async fn to_staging(&self, name: &str, version: VersionNumber) {
        let p = self.promote(name, version, Environment::Staging).await;
        self.approve_all(&p).await;
        self.gov
            .deploy(&self.cast.dev, name, version, Environment::Staging, None)
            .await
            .unwrap_or_else(|e| panic!("deploying {name} v{version} to staging: {e:?}"));
        self.gov
            .add_evaluation(&self.cast.dev, name, version, staging_evaluation())
            .await
            .unwrap_or_else(|e| panic!("recording the staging evaluation: {e:?}"));
    }

    /// Registered version → staging → production, every review approved, deployed by `rel`.
    pub async fn to_production(&self, name: &str, version: VersionNumber) {
        self.to_staging(name, version).await;
        let p = self.promote(name, version, Environment::Production).await;
        self.approve_all(&p).await;
        self.gov
            .deploy(&self.cast.rel, name, version, Environment::Production, None)
            .await
            .unwrap_or_else(|e| panic!("deploying {name} v{version} to production: {e:?}"));
    }

    /// A new version of `name` in `tier`, all the way to production; returns its number.
    pub async fn new_production_version(&self, name: &str, tier: RiskTier) -> VersionNumber {
        let v = self.register(name, tier).await;
        self.to_production(name, v).await;
        v
    }
}
