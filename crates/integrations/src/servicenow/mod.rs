//! ServiceNow change requests for production: Steward opens a normal change (Table API,
//! `change_request`) when a production promotion is approved, and the production gate asks
//! ServiceNow whether that change is approved ([`ChangeControl`]).
//!
//! ```toml
//! [servicenow.itsm]
//! instance_url = "https://acme.service-now.com"
//! user = "steward.integration"                    # Basic auth ...
//! password = { env = "SERVICENOW_PASSWORD" }
//! # token = { env = "SERVICENOW_TOKEN" }          # ... or an OAuth access token (Bearer)
//! assignment_group = "ML Platform CAB"            # optional: sys_id or name of the group
//! category = "Software"                           # optional
//! approved_states = [-2, -1]                      # default: Scheduled, Implement
//! ```
//!
//! Invariants:
//! - One change per version: its `correlation_id` is `steward:<name>:<version>` (and
//!   `correlation_display` is `Steward`); a delivery first looks it up
//!   (`GET /api/now/table/change_request?sysparm_query=correlation_id=...&sysparm_limit=1`)
//!   and opens one (`POST /api/now/table/change_request`) only when there is none, so a
//!   repeated attempt (a lost answer, a crash, a retry after 429/5xx) never opens a second.
//! - Approved means ServiceNow's `approval` field is `approved` and its `state` is one of
//!   `approved_states` (default Scheduled (-2) and Implement (-1)): the CAB approved it and the
//!   change has not been closed, cancelled or sent back to review.
//! - The gate asks ServiceNow on every call; when ServiceNow cannot be asked (down, 401, 429,
//!   an answer that is not a Table API result) the answer is an error, which the gate turns
//!   into a refusal. Credentials are never logged or put in an error; the instance URL is.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use steward_core::ids::VersionNumber;
use steward_core::ports::{ChangeControl, ChangeRecord, Key};
use steward_core::records::{DomainEvent, Promotion};
use steward_core::types::ModelName;
use steward_core::webhooks::{Delivery, IntegrationKind, WebhookId};
use steward_core::{Governance, StoreError};

mod config;

pub use config::ServiceNowConfig;

use crate::config::{ConfigError, Secret};
use crate::{transport_error, Outcome, Target};

/// The change states that count as approved when `approved_states` is left out: Scheduled and
/// Implement (ServiceNow's default change model).
pub const DEFAULT_APPROVED_STATES: &[i64] = &[-2, -1];

/// The Table API path of change requests.
pub const CHANGE_REQUEST_PATH: &str = "/api/now/table/change_request";

/// ServiceNow caps `description` at 4000 characters by default.
const MAX_DESCRIPTION: usize = 4000;

/// How Steward signs in to the instance.
enum Auth {
    Basic { user: String, password: Secret },
    Bearer(Secret),
}

/// A configured ServiceNow instance: the target that opens changes and the change control
/// the production gate asks.
pub struct ServiceNow {
    id: WebhookId,
    base: String,
    auth: Auth,
    assignment_group: Option<String>,
    category: Option<String>,
    approved_states: Vec<i64>,
    console: Option<String>,
    http: reqwest::Client,
    /// The service whose records describe a change (reviews, owner); weak, since the service
    /// holds this as its change control.
    gov: OnceLock<Weak<Governance>>,
}

/// A change request as the Table API returns it (values are strings unless
/// `sysparm_display_value` asks otherwise; numbers are tolerated).
#[derive(Debug, Clone, Deserialize)]
struct Row {
    #[serde(default)]
    sys_id: String,
    number: String,
    #[serde(default)]
    state: Value,
    #[serde(default)]
    approval: String,
}

/// Why a Table API call got no usable answer: the outcome for the deliverer, the message for
/// the gate.
struct Failed {
    outcome: Outcome,
    message: String,
}

impl ServiceNow {
    pub fn new(
        name: &str,
        c: &ServiceNowConfig,
        console_url: Option<&str>,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        c.check(name)?;
        let id = WebhookId::integration(IntegrationKind::ServiceNow, name)
            .map_err(|e| ConfigError::invalid(format!("servicenow.{name}"), e.message))?;
        let auth = match (&c.user, &c.password, &c.token) {
            (Some(user), Some(p), None) => Auth::Basic {
                user: user.trim().to_owned(),
                password: p.resolve(&format!("servicenow.{name}.password"))?,
            },
            (_, _, Some(t)) => Auth::Bearer(t.resolve(&format!("servicenow.{name}.token"))?),
            _ => unreachable!("checked above"),
        };
        Ok(Self {
            id,
            base: c.instance_url.trim_end_matches('/').to_owned(),
            auth,
            assignment_group: c.assignment_group.clone(),
            category: c.category.clone(),
            approved_states: c
                .approved_states
                .clone()
                .unwrap_or_else(|| DEFAULT_APPROVED_STATES.to_vec()),
            console: console_url.map(|u| u.trim_end_matches('/').to_owned()),
            http,
            gov: OnceLock::new(),
        })
    }

    fn authorized(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::Basic { user, password } => r.basic_auth(user, Some(password.expose())),
            Auth::Bearer(t) => r.bearer_auth(t.expose()),
        }
        .header("accept", "application/json")
    }

    /// The change opened for `name` `version`, if any.
    async fn find(&self, name: &str, version: &str) -> Result<Option<Row>, Failed> {
        let query = format!("correlation_id={}", correlation_id(name, version));
        let sent = self
            .authorized(self.http.get(format!("{}{CHANGE_REQUEST_PATH}", self.base)))
            .query(&[
                ("sysparm_query", query.as_str()),
                ("sysparm_limit", "1"),
                ("sysparm_fields", "sys_id,number,state,approval"),
            ])
            .send()
            .await;
        let body = self.answer(sent, "looking up the change request").await?;
        #[derive(Deserialize)]
        struct List {
            result: Vec<Row>,
        }
        let list: List = serde_json::from_value(body).map_err(|_| {
            failed(format!(
                "{}: the answer to the change request lookup is not a Table API result list",
                self.base
            ))
        })?;
        Ok(list.result.into_iter().next())
    }

    /// The JSON body of a 2xx answer, or why there is none.
    async fn answer(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
        doing: &str,
    ) -> Result<Value, Failed> {
        let r = match sent {
            Ok(r) => r,
            Err(e) => {
                let why = transport_error(&e);
                return Err(Failed {
                    outcome: Outcome::failed(why.clone()),
                    message: format!("{doing} at {}: {why}", self.base),
                });
            }
        };
        let code = r.status().as_u16();
        let outcome = Outcome::of_status(code, r.headers());
        if !outcome.succeeded() {
            let hint = match code {
                401 | 403 => " (check the integration user's credentials and roles)",
                429 => " (rate limited)",
                _ => "",
            };
            return Err(Failed {
                outcome,
                message: format!("{doing} at {}: ServiceNow answered {code}{hint}", self.base),
            });
        }
        r.json::<Value>().await.map_err(|_| Failed {
            outcome: Outcome {
                error: Some("the answer is not JSON".into()),
                ..Outcome::ok(code)
            },
            message: format!("{doing} at {}: the answer is not JSON", self.base),
        })
    }

    /// The state as people read it: the default model's label, or the configured code.
    fn record(&self, row: &Row) -> ChangeRecord {
        let code = match &row.state {
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        let label = match code {
            Some(c) => state_label(c).map_or_else(|| c.to_string(), str::to_owned),
            None => "unknown".into(),
        };
        let state_ok = code.is_some_and(|c| self.approved_states.contains(&c));
        let approval_ok = row.approval == "approved";
        let state = if state_ok && !approval_ok {
            let approval = if row.approval.is_empty() {
                "none"
            } else {
                row.approval.as_str()
            };
            format!("{label}, approval: {approval}")
        } else {
            label
        };
        ChangeRecord {
            number: row.number.clone(),
            state,
            approved: state_ok && approval_ok,
        }
    }

    /// The promotion and its model, for the description, when the service is attached.
    async fn context(&self, promotion_id: &str, name: &str) -> Option<(Promotion, Value)> {
        let gov = self.gov.get()?.upgrade()?;
        let name = ModelName::parse(name).ok()?;
        let keys = [
            Key::Promotion(promotion_id.to_owned()),
            Key::Model(name.clone()),
        ];
        let mut f = gov.registry().get_many(&keys).await.ok()?;
        let p = f.promotions.remove(promotion_id)?;
        let owner = f
            .models
            .remove(&name)
            .map(|m| json!({"team": m.owner.team, "contact": m.owner.contact}))
            .unwrap_or(Value::Null);
        Some((p, owner))
    }

    /// The Table API body of the change for an approved production promotion.
    fn change_body(&self, name: &str, version: &str, description: String) -> Value {
        let mut body = json!({
            "short_description": format!("Deploy model {name} v{version} to production (Steward)"),
            "description": description,
            "type": "normal",
            "correlation_id": correlation_id(name, version),
            "correlation_display": "Steward",
        });
        if let Some(g) = &self.assignment_group {
            body["assignment_group"] = json!(g);
        }
        if let Some(c) = &self.category {
            body["category"] = json!(c);
        }
        body
    }

    fn approved_rule(&self) -> String {
        let states: Vec<String> = self
            .approved_states
            .iter()
            .map(|c| state_label(*c).map_or_else(|| c.to_string(), str::to_owned))
            .collect();
        format!("approval \"approved\" and state {}", states.join(" or "))
    }
}

fn failed(message: String) -> Failed {
    Failed {
        outcome: Outcome::failed(message.clone()),
        message,
    }
}

/// The change's correlation id: `steward:<name>:<version>`.
pub fn correlation_id(name: &str, version: &str) -> String {
    format!("steward:{name}:{version}")
}

/// The labels of ServiceNow's default change states.
pub fn state_label(code: i64) -> Option<&'static str> {
    Some(match code {
        -5 => "New",
        -4 => "Assess",
        -3 => "Authorize",
        -2 => "Scheduled",
        -1 => "Implement",
        0 => "Review",
        3 => "Closed",
        4 => "Canceled",
        _ => return None,
    })
}

/// The change's description: the model, the version, the reviews and where to see them.
fn description(
    name: &str,
    version: &str,
    promotion_id: &str,
    context: Option<&(Promotion, Value)>,
    console: Option<&str>,
    rule: &str,
) -> String {
    let mut d = format!(
        "Steward approved model {name} version {version} for production (promotion {promotion_id}).\n"
    );
    if let Some((p, owner)) = context {
        d.push_str(&format!("Risk tier: {}.", p.risk_tier));
        if let (Some(team), Some(contact)) = (owner["team"].as_str(), owner["contact"].as_str()) {
            d.push_str(&format!(" Owner: {team} ({contact})."));
        }
        d.push_str(&format!(
            " Registered by {}; promotion requested by {} at {}.\n\nReviews:\n",
            p.registered_by,
            p.requested_by,
            p.requested_at.to_rfc3339()
        ));
        for r in &p.reviews {
            d.push_str(&format!("- {}: {}", r.stage, r.status.as_str()));
            if let Some(by) = &r.decided_by {
                d.push_str(&format!(" by {by}"));
            }
            if let Some(at) = r.decided_at {
                d.push_str(&format!(" at {}", at.to_rfc3339()));
            }
            if let Some(c) = r.comment.as_deref().filter(|c| !c.is_empty()) {
                d.push_str(&format!(": {c}"));
            }
            if !r.conditions.is_empty() {
                d.push_str(&format!(" (conditions: {})", r.conditions.join("; ")));
            }
            d.push('\n');
        }
    }
    if let Some(base) = console {
        d.push_str(&format!(
            "\nIn Steward: {base}/console/models/{name}/versions/{version}\n"
        ));
    }
    d.push_str(&format!(
        "\nSteward refuses the production deployment of this version until this change is approved ({rule})."
    ));
    if d.chars().count() > MAX_DESCRIPTION {
        d = d.chars().take(MAX_DESCRIPTION - 1).collect::<String>() + "…";
    }
    d
}

#[async_trait]
impl Target for ServiceNow {
    fn id(&self) -> &WebhookId {
        &self.id
    }

    fn wants(&self, event: &DomainEvent) -> bool {
        event.detail_type == "PromotionApproved" && event.detail["target"] == "production"
    }

    fn bind(&self, gov: &Arc<Governance>) {
        let _ = self.gov.set(Arc::downgrade(gov));
    }

    async fn deliver(&self, delivery: &Delivery) -> Outcome {
        let event: Value = match serde_json::from_str(&delivery.body) {
            Ok(v) => v,
            Err(_) => return Outcome::failed("the delivery's body is not JSON"),
        };
        let d = &event["detail"];
        let (Some(name), Some(version)) = (d["name"].as_str(), d["version"].as_u64()) else {
            return Outcome::failed("the event names no model version");
        };
        let version = version.to_string();
        match self.find(name, &version).await {
            Ok(Some(row)) => {
                tracing::info!(integration = %self.id, change = %row.number, sys_id = %row.sys_id,
                    "the ServiceNow change request is already open; not opening another");
                return Outcome::ok(200);
            }
            Ok(None) => {}
            Err(f) => return f.outcome,
        }
        let promotion_id = d["promotion_id"].as_str().unwrap_or("");
        let context = self.context(promotion_id, name).await;
        let text = description(
            name,
            &version,
            promotion_id,
            context.as_ref(),
            self.console.as_deref(),
            &self.approved_rule(),
        );
        let body = self.change_body(name, &version, text);
        let sent = self
            .authorized(
                self.http
                    .post(format!("{}{CHANGE_REQUEST_PATH}", self.base)),
            )
            .json(&body)
            .send()
            .await;
        match self.answer(sent, "opening the change request").await {
            Ok(answer) => {
                let number = answer["result"]["number"].as_str().unwrap_or("?");
                tracing::info!(integration = %self.id, change = number, model = name, version = %version,
                    "opened a ServiceNow change request for the production promotion");
                Outcome::ok(201)
            }
            Err(f) => f.outcome,
        }
    }
}

#[async_trait]
impl ChangeControl for ServiceNow {
    fn system(&self) -> &str {
        "ServiceNow"
    }

    async fn change_for(
        &self,
        name: &ModelName,
        version: VersionNumber,
    ) -> Result<Option<ChangeRecord>, StoreError> {
        match self.find(name.as_ref(), &version.to_string()).await {
            Ok(row) => Ok(row.map(|r| self.record(&r))),
            Err(f) => {
                tracing::warn!(integration = %self.id, error = %f.message,
                    "cannot ask ServiceNow about a change request; the production gate stays closed");
                Err(StoreError::backend_msg(f.message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretRef;

    #[test]
    fn approved_means_approval_approved_in_an_approved_state() {
        let c = ServiceNowConfig {
            instance_url: "https://acme.service-now.com".into(),
            user: None,
            password: None,
            token: Some(SecretRef::Env("PATH".into())),
            assignment_group: None,
            category: None,
            approved_states: None,
        };
        let sn = ServiceNow::new("itsm", &c, None, reqwest::Client::new()).unwrap();
        let row = |state: Value, approval: &str| Row {
            sys_id: "x".into(),
            number: "CHG0030001".into(),
            state,
            approval: approval.into(),
        };
        let r = sn.record(&row(json!("-4"), "requested"));
        assert_eq!((r.state.as_str(), r.approved), ("Assess", false));
        let r = sn.record(&row(json!("-2"), "approved"));
        assert_eq!((r.state.as_str(), r.approved), ("Scheduled", true));
        let r = sn.record(&row(json!(-1), "approved"));
        assert_eq!((r.state.as_str(), r.approved), ("Implement", true));
        let r = sn.record(&row(json!("-2"), "requested"));
        assert_eq!(
            (r.state.as_str(), r.approved),
            ("Scheduled, approval: requested", false)
        );
        let r = sn.record(&row(json!("4"), "approved"));
        assert_eq!((r.state.as_str(), r.approved), ("Canceled", false));
        let r = sn.record(&row(json!("7"), "approved"));
        assert_eq!((r.state.as_str(), r.approved), ("7", false));
    }
}
