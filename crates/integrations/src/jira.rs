//! Jira Cloud (REST v3), both directions. Outbound, a review request opens an issue in the
//! configured project (summary, evidence, console links, labels `steward`,
//! `steward-review-<id>`, `steward-promotion-<id>`); a decision comments on it and runs the
//! configured approve or reject transition; the promotion's outcome comments on its issues and
//! runs the done transition. Inbound ([`inbound`]), a signed Jira webhook for an approve or
//! reject transition records the decision as the Steward principal mapped to the Jira account.
//!
//! ```toml
//! [jira.gov]
//! base_url = "https://acme.atlassian.net"
//! email = "steward-bot@acme.com"                  # the account the API token belongs to
//! api_token = { env = "JIRA_API_TOKEN" }          # Basic auth email:token
//! project = "GOV"
//! issue_type = "Task"                             # default
//! webhook_secret = { env = "JIRA_WEBHOOK_SECRET" } # without it, inbound is off (404)
//! transitions = { approve = "Approve", reject = "Reject", done = "Done" }  # the defaults
//! statuses = { approved = "Approved", rejected = "Rejected" }            # the defaults
//! [jira.gov.accounts]
//! "5b10ac8d82e05b22cc7d4ef5" = "tom"              # Jira accountId = Steward principal id
//! ```
//!
//! Invariants:
//! - Every delivery is safe to repeat: an issue is found by its review label before one is
//!   created (`POST /rest/api/3/search/jql`); a comment carries the delivery id as the comment
//!   property `steward` and is not posted again when a comment with it exists; a transition
//!   that the issue no longer offers (it already ran) is skipped.
//! - 429 (with `Retry-After`), 5xx, timeouts and refused connections are failed attempts the
//!   deliverer retries; so is any other 4xx, within the 24 h window, with Jira's own error
//!   messages and what to mend in the error. The API token is never logged or put in an error.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use steward_core::ids::VersionNumber;
use steward_core::records::{DomainEvent, Promotion, PromotionStatus, Review};
use steward_core::types::PrincipalId;
use steward_core::webhooks::{Delivery, IntegrationKind, WebhookId};
use steward_core::Governance;

use crate::config::{ConfigError, Secret, SecretRef};
use crate::{Outcome, Target, ATTEMPT_TIMEOUT};

pub mod adf;
pub mod inbound;

/// `[jira.NAME]` in the integrations file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    /// The site, `https://SITE.atlassian.net` (plain `http://` only to 127.0.0.1, for tests).
    pub base_url: String,
    /// The Atlassian account the API token belongs to (Steward's bot user).
    pub email: String,
    /// Its API token (id.atlassian.com → Security → API tokens).
    pub api_token: SecretRef,
    /// The project key issues are opened in.
    pub project: String,
    /// The issue type of those issues; default `Task`.
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// The secret the Jira webhook signs with; without it the inbound endpoint answers 404.
    pub webhook_secret: Option<SecretRef>,
    #[serde(default)]
    pub transitions: JiraTransitions,
    #[serde(default)]
    pub statuses: JiraStatuses,
    /// Jira `accountId` → Steward principal id: who a Jira decision is recorded as.
    #[serde(default)]
    pub accounts: BTreeMap<String, String>,
    /// Seconds one request to Jira may take; default (and at most) 10.
    pub timeout_seconds: Option<u64>,
}

fn default_issue_type() -> String {
    "Task".into()
}

/// The workflow transitions Steward runs (by name, as the issue's transitions list them), and
/// the ones whose webhook records a decision.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JiraTransitions {
    pub approve: String,
    pub reject: String,
    pub done: String,
}

impl Default for JiraTransitions {
    fn default() -> Self {
        Self {
            approve: "Approve".into(),
            reject: "Reject".into(),
            done: "Done".into(),
        }
    }
}

/// The statuses the approve and reject transitions lead to: an `issue_updated` webhook's
/// changelog names the status reached, not the transition taken.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JiraStatuses {
    pub approved: String,
    pub rejected: String,
}

impl Default for JiraStatuses {
    fn default() -> Self {
        Self {
            approved: "Approved".into(),
            rejected: "Rejected".into(),
        }
    }
}

impl JiraConfig {
    /// The checks `IntegrationsConfig::check` makes for `[jira.NAME]`.
    pub fn check(&self, name: &str) -> Result<(), ConfigError> {
        let field = |k: &str| format!("jira.{name}.{k}");
        let u = self.base_url.trim_end_matches('/');
        let local = u.starts_with("http://127.0.0.1") || u.starts_with("http://localhost");
        let site = u
            .strip_prefix("https://")
            .filter(|h| !h.is_empty() && !h.contains('/'));
        if site.is_none() && !local {
            return Err(ConfigError::invalid(
                field("base_url"),
                "the site's https:// URL, e.g. https://acme.atlassian.net",
            ));
        }
        if !self.email.contains('@') {
            return Err(ConfigError::invalid(field("email"), "an email address"));
        }
        let key_ok = !self.project.is_empty()
            && self
                .project
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            return Err(ConfigError::invalid(
                field("project"),
                "a project key (A-Z, 0-9, _), e.g. GOV",
            ));
        }
        for (k, v) in [
            ("issue_type", &self.issue_type),
            ("transitions.approve", &self.transitions.approve),
            ("transitions.reject", &self.transitions.reject),
            ("transitions.done", &self.transitions.done),
            ("statuses.approved", &self.statuses.approved),
            ("statuses.rejected", &self.statuses.rejected),
        ] {
            if v.trim().is_empty() {
                return Err(ConfigError::invalid(field(k), "must not be empty"));
            }
        }
        for (account, principal) in &self.accounts {
            PrincipalId::parse(principal).map_err(|e| {
                ConfigError::invalid(field(&format!("accounts.{account}")), e.to_string())
            })?;
        }
        if self.timeout_seconds.is_some_and(|t| t == 0 || t > 10) {
            return Err(ConfigError::invalid(field("timeout_seconds"), "1 to 10"));
        }
        Ok(())
    }
}

/// A configured Jira site and project.
pub struct Jira {
    id: WebhookId,
    name: String,
    base: String,
    /// `Basic base64(email:token)`.
    authorization: Secret,
    project: String,
    issue_type: String,
    transitions: JiraTransitions,
    statuses: JiraStatuses,
    webhook_secret: Option<Secret>,
    accounts: BTreeMap<String, PrincipalId>,
    console: Option<String>,
    timeout: Duration,
    http: reqwest::Client,
    gov: OnceLock<Arc<Governance>>,
}

/// What a failed step of a delivery becomes: the attempt's outcome.
type Step<T> = Result<T, Outcome>;

impl Jira {
    pub fn new(
        name: &str,
        c: &JiraConfig,
        console_url: Option<&str>,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        c.check(name)?;
        let id = WebhookId::integration(IntegrationKind::Jira, name)
            .map_err(|e| ConfigError::invalid(format!("jira.{name}"), e.message))?;
        let token = c.api_token.resolve(&format!("jira.{name}.api_token"))?;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            c.email,
            token.expose()
        ));
        let webhook_secret = match &c.webhook_secret {
            Some(r) => Some(r.resolve(&format!("jira.{name}.webhook_secret"))?),
            None => None,
        };
        let accounts = c
            .accounts
            .iter()
            .map(|(a, p)| Ok((a.clone(), PrincipalId::parse(p)?)))
            .collect::<Result<_, steward_core::FieldError>>()
            .map_err(|e| ConfigError::invalid(format!("jira.{name}.accounts"), e.to_string()))?;
        Ok(Self {
            id,
            name: name.to_owned(),
            base: c.base_url.trim_end_matches('/').to_owned(),
            authorization: Secret::literal(&format!("Basic {basic}")),
            project: c.project.clone(),
            issue_type: c.issue_type.clone(),
            transitions: c.transitions.clone(),
            statuses: c.statuses.clone(),
            webhook_secret,
            accounts,
            console: console_url.map(|u| u.trim_end_matches('/').to_owned()),
            timeout: c
                .timeout_seconds
                .map_or(ATTEMPT_TIMEOUT, Duration::from_secs),
            http,
            gov: OnceLock::new(),
        })
    }

    /// Its name in the integrations file.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn gov(&self) -> Step<&Arc<Governance>> {
        self.gov
            .get()
            .ok_or_else(|| Outcome::failed("the Jira integration is not bound to Steward yet"))
    }

    /// One request to Jira; its JSON answer (`Null` for an empty one), or the failed attempt.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Step<(u16, Value)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .timeout(self.timeout)
            .header("authorization", self.authorization.expose())
            .header("accept", "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Err(Outcome::failed(format!(
                    "{what}: Jira did not answer within {}s",
                    self.timeout.as_secs()
                )))
            }
            Err(e) => {
                return Err(Outcome::failed(format!(
                    "{what}: {}",
                    crate::transport_error(&e)
                )))
            }
        };
        let code = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        if (200..300).contains(&code) {
            let v = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Ok((code, v));
        }
        let mut outcome = Outcome::of_status(code, &headers);
        outcome.error = Some(format!("{what}: {}", explain(code, &text)));
        Err(outcome)
    }

    /// The issues (keys) carrying `label` in the project.
    async fn find(&self, label: &str) -> Step<Vec<String>> {
        let jql = format!(
            "project = \"{}\" AND labels = \"{label}\" ORDER BY created ASC",
            self.project
        );
        let body = json!({"jql": jql, "fields": ["status", "labels"], "maxResults": 50});
        let (_, v) = self
            .call(Method::POST, "/rest/api/3/search/jql", Some(&body))
            .await?;
        Ok(v["issues"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["key"].as_str().map(str::to_owned))
            .collect())
    }

    /// The review `review_id`, its promotion and the version's detail, from Steward.
    async fn review(
        &self,
        review_id: &str,
    ) -> Step<(Review, Promotion, steward_core::service::VersionDetail)> {
        let gov = self.gov()?;
        let parsed = steward_core::ids::ReviewId::parse(review_id)
            .map_err(|_| Outcome::failed(format!("{review_id} is not a review id")))?;
        let p = parsed.promotion();
        let detail = gov
            .version_detail(p.name().as_ref(), p.version())
            .await
            .map_err(|e| Outcome::failed(format!("reading {review_id} from Steward: {e}")))?;
        let promotion = detail
            .promotions
            .iter()
            .find(|x| x.reviews.iter().any(|r| r.id == review_id))
            .cloned()
            .ok_or_else(|| Outcome::failed(format!("Steward has no review {review_id}")))?;
        let review = promotion
            .reviews
            .iter()
            .find(|r| r.id == review_id)
            .cloned()
            .ok_or_else(|| Outcome::failed(format!("Steward has no review {review_id}")))?;
        Ok((review, promotion, detail))
    }

    /// The issue of review `review_id`, opened when there is none yet; and whether it was.
    async fn ensure_issue(&self, review_id: &str) -> Step<(String, bool)> {
        if let Some(key) = self
            .find(&adf::review_label(review_id))
            .await?
            .into_iter()
            .next()
        {
            return Ok((key, false));
        }
        let (review, promotion, detail) = self.review(review_id).await?;
        let body = json!({"fields": {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": adf::summary(&review),
            "description": adf::description(&review, &promotion, &detail, self.console.as_deref()),
            "labels": [adf::LABEL, adf::review_label(&review.id), adf::promotion_label(&promotion.id)],
        }});
        let (_, v) = self
            .call(Method::POST, "/rest/api/3/issue", Some(&body))
            .await?;
        let key = v["key"]
            .as_str()
            .ok_or_else(|| Outcome::failed("Jira created the issue but sent no key"))?;
        tracing::info!(integration = %self.id, issue = key, review = review_id, "Jira issue opened");
        if promotion.status != PromotionStatus::InReview {
            // The promotion ended before its issue could be opened (Jira was down, say):
            // resolve it now, as the outcome's delivery found nothing to resolve.
            let text = outcome_text(&promotion.status, &promotion);
            self.comment(key, &format!("late-{review_id}"), &text)
                .await?;
            self.transition(key, &self.transitions.done).await?;
        }
        Ok((key.to_owned(), true))
    }

    /// Comments `text` on `key` once per `marker` (the delivery id).
    async fn comment(&self, key: &str, marker: &str, text: &str) -> Step<()> {
        let path = format!("/rest/api/3/issue/{key}/comment");
        let (_, v) = self
            .call(
                Method::GET,
                &format!("{path}?expand=properties&orderBy=-created&maxResults=100"),
                None,
            )
            .await?;
        let done =
            v["comments"].as_array().into_iter().flatten().any(|c| {
                c["properties"].as_array().into_iter().flatten().any(|p| {
                    p["key"] == "steward" && p["value"]["delivery"].as_str() == Some(marker)
                })
            });
        if done {
            return Ok(());
        }
        let body = json!({
            "body": adf::note(text, None),
            "properties": [{"key": "steward", "value": {"delivery": marker}}],
        });
        self.call(Method::POST, &path, Some(&body)).await?;
        Ok(())
    }

    /// Comments on `key` now, once; for the inbound endpoint's refusals (best effort).
    pub(crate) async fn comment_now(
        &self,
        key: &str,
        marker: &str,
        text: &str,
    ) -> Result<(), String> {
        self.comment(key, marker, text)
            .await
            .map_err(|o| o.error.unwrap_or_default())
    }

    /// Runs the transition named `name` on `key`, unless the issue no longer offers it.
    async fn transition(&self, key: &str, name: &str) -> Step<()> {
        let path = format!("/rest/api/3/issue/{key}/transitions");
        let (_, v) = self.call(Method::GET, &path, None).await?;
        let offered: Vec<(&str, &str)> = v["transitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t["id"].as_str()?, t["name"].as_str()?)))
            .collect();
        let Some((id, _)) = offered.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)) else {
            // Already run (a repeated delivery, or a person moved the issue), or the workflow
            // has no such transition from here: nothing a retry would change.
            tracing::warn!(integration = %self.id, issue = key, transition = name,
                offered = ?offered.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
                "the Jira issue does not offer the transition; skipped");
            return Ok(());
        };
        let body = json!({"transition": {"id": id}});
        self.call(Method::POST, &path, Some(&body)).await?;
        Ok(())
    }

    async fn deliver_event(&self, d: &Delivery, event: &Value) -> Step<()> {
        let detail = &event["detail"];
        let s = |k: &str| detail[k].as_str().unwrap_or_default().to_owned();
        match event["detail-type"].as_str().unwrap_or_default() {
            "ReviewRequested" => {
                self.ensure_issue(&s("review_id")).await?;
            }
            "ReviewDecided" => {
                let (key, _) = self.ensure_issue(&s("review_id")).await?;
                let approve = s("decision") == "approve";
                let (review, _, _) = self.review(&s("review_id")).await?;
                let mut text = format!(
                    "Steward: the {} review was {} by {}.",
                    s("stage"),
                    if approve { "approved" } else { "rejected" },
                    s("decided_by")
                );
                if let Some(c) = &review.comment {
                    text.push_str(&format!(" Comment: {c}"));
                }
                if !review.conditions.is_empty() {
                    text.push_str(&format!(" Conditions: {}.", review.conditions.join("; ")));
                }
                self.comment(&key, &d.id, &text).await?;
                let t = if approve {
                    &self.transitions.approve
                } else {
                    &self.transitions.reject
                };
                self.transition(&key, t).await?;
            }
            kind @ ("PromotionApproved" | "PromotionRejected" | "PromotionExpired") => {
                let status = match kind {
                    "PromotionApproved" => PromotionStatus::Approved,
                    "PromotionRejected" => PromotionStatus::Rejected,
                    _ => PromotionStatus::Expired,
                };
                let text = format!(
                    "Steward: the promotion of {} v{} to {} is {}.",
                    s("name"),
                    detail["version"],
                    s("target"),
                    status.as_str()
                );
                for key in self.find(&adf::promotion_label(&s("promotion_id"))).await? {
                    self.comment(&key, &d.id, &text).await?;
                    self.transition(&key, &self.transitions.done).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn outcome_text(status: &PromotionStatus, p: &Promotion) -> String {
    format!(
        "Steward: the promotion of {} v{} to {} is {}.",
        p.name,
        p.version,
        p.target,
        status.as_str()
    )
}

/// Why Jira refused, from its `{"errorMessages": [...], "errors": {...}}`, and what to mend.
fn explain(code: u16, body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut said: Vec<String> = v["errorMessages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect();
    if let Some(errors) = v["errors"].as_object() {
        said.extend(
            errors
                .iter()
                .map(|(k, m)| format!("{k}: {}", m.as_str().unwrap_or(""))),
        );
    }
    let said: String = said.join("; ").chars().take(300).collect();
    let hint = match code {
        400 => "Jira refused the request (check the project key, issue type and required fields); retried until mended",
        401 => "Jira refused the credentials (check email and api_token); retried until mended",
        403 => "the Jira account lacks a permission in the project (browse, create, comment or transition); retried until mended",
        404 => "Jira has no such issue or project, or the account cannot see it; retried until mended",
        429 => "Jira is rate limiting; retried after its Retry-After",
        c if c >= 500 => "Jira failed; retried",
        _ => "Jira refused the request; retried until mended",
    };
    if said.is_empty() {
        format!("Jira answered {code}: {hint}")
    } else {
        format!("Jira answered {code}: {hint}. Jira said: {said}")
    }
}

#[async_trait]
impl Target for Jira {
    fn id(&self) -> &WebhookId {
        &self.id
    }

    fn wants(&self, event: &DomainEvent) -> bool {
        matches!(
            event.detail_type.as_str(),
            "ReviewRequested"
                | "ReviewDecided"
                | "PromotionApproved"
                | "PromotionRejected"
                | "PromotionExpired"
        )
    }

    fn bind(&self, gov: &Arc<Governance>) {
        let _ = self.gov.set(gov.clone());
    }

    async fn deliver(&self, delivery: &Delivery) -> Outcome {
        let event: Value = match serde_json::from_str(&delivery.body) {
            Ok(v) => v,
            Err(_) => return Outcome::failed("the delivery's body is not JSON"),
        };
        match self.deliver_event(delivery, &event).await {
            Ok(()) => Outcome::ok(200),
            Err(o) => o,
        }
    }
}

/// A version number from a label part, for the inbound endpoint.
pub(crate) fn version_of(s: &str) -> Option<VersionNumber> {
    if s.starts_with('0') {
        return None;
    }
    VersionNumber::parse(s).ok()
}
