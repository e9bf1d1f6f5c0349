//! Steward's outbound and inbound integrations: Standard Webhooks deliveries of governance
//! events to admin-managed subscriptions, and the integrations a deployment configures in one
//! TOML file (Slack, Jira, ServiceNow, GitHub deployment protection rules).
//!
//! Invariants:
//! - Everything outbound travels as a [`Delivery`] from the outbox: created once per event and
//!   target, attempted until a 2xx or the 24 h window ends, each attempt saved. A webhook
//!   subscription's target is its id; an integration's is `<kind>:<name>`
//!   ([`WebhookId::integration`]).
//! - Integrations act on Steward only through the same `Governance` calls as the API, as the
//!   Steward principal mapped to the vendor's account, so roles and separation of duties apply.
//! - Secrets (API tokens, signing secrets, private keys) are resolved from their references at
//!   load ([`config::Secret`]) and never logged, printed or put into an error.

pub mod config;
mod deliver;
pub mod github;
pub mod inbound;
pub mod jira;
pub mod servicenow;
pub mod slack;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use steward_core::ports::ChangeControl;
use steward_core::records::DomainEvent;
use steward_core::webhooks::{Delivery, WebhookId};
use steward_core::Governance;

pub use config::IntegrationsConfig;
pub use deliver::{DeliverError, Deliverer};

/// How long one outbound attempt may take, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client every outbound call uses: bounded timeouts, no redirects (a redirect is a
/// failed attempt: credentials and signatures are for the configured URL), rustls.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Steward/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// What one outbound attempt got.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The receiver's status code, if it answered.
    pub code: Option<u16>,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    /// The receiver's `Retry-After`, when it sent one.
    pub retry_after: Option<chrono::Duration>,
    /// The failure is final: repeating the request cannot change the answer (the delivery
    /// fails now rather than retrying for the whole window).
    pub give_up: bool,
}

impl Outcome {
    /// A success with `code`.
    pub fn ok(code: u16) -> Self {
        Self {
            code: Some(code),
            error: None,
            retry_after: None,
            give_up: false,
        }
    }

    /// A failure before any answer.
    pub fn failed(why: impl Into<String>) -> Self {
        Self {
            code: None,
            error: Some(why.into()),
            retry_after: None,
            give_up: false,
        }
    }

    /// What a sent request got: its status (2xx succeeds), `Retry-After` in seconds, or why
    /// there was no answer (never the URL, which may hold a token, as Slack's do).
    pub fn of(sent: Result<reqwest::Response, reqwest::Error>) -> Self {
        match sent {
            Ok(r) => Self::of_status(r.status().as_u16(), r.headers()),
            Err(e) => Self::failed(transport_error(&e)),
        }
    }

    /// An answer's status and headers as an outcome.
    pub fn of_status(code: u16, headers: &reqwest::header::HeaderMap) -> Self {
        let retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|s| *s >= 0)
            .map(chrono::Duration::seconds);
        Self {
            code: Some(code),
            error: (!(200..300).contains(&code)).then(|| format!("the receiver answered {code}")),
            retry_after,
            give_up: false,
        }
    }

    pub fn succeeded(&self) -> bool {
        self.code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// Why a request got no answer, without the URL.
pub fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect to the receiver".into()
    } else {
        "the request failed before an answer".into()
    }
}

/// A sample delivery for `steward integrations test`: a `ReviewRequested` of model
/// `steward-test` version 1 (an id no real event has: `evt_test_<unix seconds>`).
pub fn test_delivery(target: &WebhookId, now: chrono::DateTime<chrono::Utc>) -> Delivery {
    let event = DomainEvent {
        detail_type: "ReviewRequested".into(),
        detail: serde_json::json!({
            "schema_version": steward_core::events::SCHEMA_VERSION,
            "review_id": "steward-test.1.pr-test-technical",
            "promotion_id": "steward-test.1.pr-test",
            "name": "steward-test",
            "version": 1,
            "target": "staging",
            "stage": "technical",
            "deadline": (now + chrono::Duration::days(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "test": true,
        }),
    };
    Delivery::new(
        target,
        &format!("evt_test_{}", now.timestamp()),
        now,
        &event,
        now,
    )
}

/// A configured integration that receives governance events as deliveries.
#[async_trait]
pub trait Target: Send + Sync {
    /// Its deliveries' target id, `<kind>:<name>`.
    fn id(&self) -> &WebhookId;
    /// Whether `event` is delivered to it.
    fn wants(&self, event: &DomainEvent) -> bool;
    /// One attempt of `delivery` (its body is the event as on EventBridge). Must be safe to
    /// repeat: a crash between an attempt and saving it repeats it.
    async fn deliver(&self, delivery: &Delivery) -> Outcome;
    /// Gives the target the governance service it reads from (Jira reads a version's evidence);
    /// called by the deliverer and the inbound router. Default: nothing to bind.
    fn bind(&self, _gov: &Arc<Governance>) {}
}

/// The integrations of one deployment, built from its [`IntegrationsConfig`].
#[derive(Default, Clone)]
pub struct Integrations {
    targets: Vec<Arc<dyn Target>>,
    jira: BTreeMap<String, Arc<jira::Jira>>,
    github: github::Apps,
    change_control: Option<Arc<dyn ChangeControl>>,
}

impl Integrations {
    /// None configured.
    pub fn none() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The integrations `config` describes, with secrets already resolved.
    pub fn build(config: &IntegrationsConfig) -> Result<Arc<Self>, config::ConfigError> {
        let http = http_client().map_err(config::ConfigError::Client)?;
        let mut targets: Vec<Arc<dyn Target>> = Vec::new();
        for (name, c) in &config.slack {
            targets.push(Arc::new(slack::Slack::new(
                name,
                c,
                config.console_url.as_deref(),
                http.clone(),
            )?));
        }
        let mut jira = BTreeMap::new();
        for (name, c) in &config.jira {
            let j = Arc::new(jira::Jira::new(
                name,
                c,
                config.console_url.as_deref(),
                http.clone(),
            )?);
            targets.push(j.clone());
            jira.insert(name.clone(), j);
        }
        let mut change_control: Option<Arc<dyn ChangeControl>> = None;
        for (name, c) in &config.servicenow {
            let sn = Arc::new(servicenow::ServiceNow::new(
                name,
                c,
                config.console_url.as_deref(),
                http.clone(),
            )?);
            targets.push(sn.clone());
            change_control = Some(sn);
        }
        let mut github = github::Apps::new();
        for (name, c) in &config.github {
            let app = github::GithubApp::new(name, c, config.console_url.as_deref(), http.clone())?;
            let app = Arc::new(app);
            targets.push(app.clone());
            github.insert(name.clone(), app);
        }
        Ok(Arc::new(Self {
            targets,
            jira,
            github,
            change_control,
        }))
    }

    /// Binds every target to `gov` (see [`Target::bind`]).
    pub fn bind(&self, gov: &Arc<Governance>) {
        for t in &self.targets {
            t.bind(gov);
        }
    }

    /// The Jira integration named `name`, for its inbound endpoint.
    pub fn jira(&self, name: &str) -> Option<&Arc<jira::Jira>> {
        self.jira.get(name)
    }

    /// The GitHub App named `name` (its deployment protection rule endpoint).
    pub fn github(&self, name: &str) -> Option<&Arc<github::GithubApp>> {
        self.github.get(name)
    }

    /// The change control production deployments wait on (ServiceNow), when configured: attach
    /// it with `Governance::with_change_control`.
    pub fn change_control(&self) -> Option<Arc<dyn ChangeControl>> {
        self.change_control.clone()
    }

    /// Every integration that receives events.
    pub fn targets(&self) -> &[Arc<dyn Target>] {
        &self.targets
    }

    /// The integration whose deliveries have target `id`.
    pub fn target(&self, id: &WebhookId) -> Option<&Arc<dyn Target>> {
        self.targets.iter().find(|t| t.id() == id)
    }

    /// The integration named `name` (any kind), for `steward integrations test NAME`.
    pub fn named(&self, name: &str) -> Option<&Arc<dyn Target>> {
        self.targets
            .iter()
            .find(|t| t.id().integration_parts().is_some_and(|(_, n)| n == name))
    }
}
