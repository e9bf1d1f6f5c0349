//! `POST /v1/integrations/jira/{name}`: Jira's `jira:issue_updated` webhook, signed with the
//! configured secret, for an issue that carries a Steward review label. When the issue moved
//! to the approved or rejected status (or, from a workflow post-function webhook, ran the
//! approve or reject transition), the decision is recorded through `Governance::decide` as the
//! Steward principal mapped to the webhook's `user.accountId`, with that principal's registry
//! roles and authentication `integration`: roles and separation of duties apply as on the API.
//!
//! Invariants:
//! - The signature is checked first, in constant time (`X-Hub-Signature: sha256=<hex
//!   HMAC-SHA256 of the raw body>`); a bad one is answered 401 and logged, not audited (the
//!   sender is unknown: forgeries must not fill the audit log), and nothing is sent to Jira.
//! - A refusal (a replay, a stale payload, an unmapped or unentitled account, a review that is
//!   no longer pending) records nothing but one `integration.refused` audit event, comments
//!   the reason on the issue, and is answered 200: Jira must not retry it.
//! - Replays: each handled `X-Atlassian-Webhook-Identifier` is remembered durably (an
//!   idempotency record, see `core/src/service/callbacks.rs`) and refused when seen again; a
//!   payload `timestamp` more than [`MAX_AGE_SECONDS`] away from Steward's clock is refused too,
//!   so a captured request cannot be replayed after its memory would matter.
//! - Steward's own transitions come back as webhooks from its bot account: when the review
//!   already carries the decision the webhook reports, it is acknowledged and nothing recorded.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use steward_core::ports::Caller;
use steward_core::records::{Review, ReviewStatus};
use steward_core::service::{DecisionInput, IntegrationRefusal};
use steward_core::types::{AuthMethod, Decision, ModelName, Sha256};
use steward_core::GovError;

use super::{adf, version_of, Jira};
use crate::inbound::Inbound;

/// How far a payload's `timestamp` may be from Steward's clock.
pub const MAX_AGE_SECONDS: i64 = 300;

/// What a decision-bearing webhook says.
struct Transition {
    issue: String,
    review_label: String,
    decision: Decision,
    account: Option<String>,
    display_name: String,
    comment: Option<String>,
    sent_at_ms: Option<i64>,
}

fn answer(code: StatusCode, body: Value) -> Response {
    (code, Json(body)).into_response()
}

/// The handler.
pub async fn receive(
    State(state): State<Inbound>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(jira) = state.integrations.jira(&name) else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "not_found", "message": format!("no Jira integration {name}")}}),
        );
    };
    let Some(secret) = jira.webhook_secret.as_ref() else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "not_found",
                "message": format!("the Jira integration {name} has no webhook_secret: inbound is off")}}),
        );
    };
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let callback_id = header("x-atlassian-webhook-identifier").filter(|s| !s.is_empty());
    let ctx = Ctx {
        state: &state,
        jira,
        callback_id: callback_id.clone(),
        body_sha256: Sha256::digest(&body),
    };
    if !signed(secret.expose(), header("x-hub-signature").as_deref(), &body) {
        // Not audited: the sender is unknown, and anyone on the network could otherwise fill
        // the audit log with forgeries. Logged, answered 401, nothing sent to Jira.
        tracing::warn!(integration = %jira.id, "a Jira webhook with a bad or missing signature was refused");
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"code": "unauthenticated", "message": "bad or missing X-Hub-Signature"}}),
        );
    }
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": "malformed", "message": "the body is not JSON"}}),
            )
        }
    };
    let t = match interpret(jira, &payload) {
        Ok(t) => t,
        Err(why) => return answer(StatusCode::OK, json!({"ignored": why})),
    };
    ctx.handle(t).await
}

struct Ctx<'a> {
    state: &'a Inbound,
    jira: &'a Jira,
    callback_id: Option<String>,
    body_sha256: Sha256,
}

impl Ctx<'_> {
    async fn handle(&self, t: Transition) -> Response {
        let gov = &self.state.gov;
        let base = json!({"issue": t.issue, "jira_account": t.account, "decision": t.decision});
        let Some(id) = self.callback_id.clone() else {
            return self
                .refused(&t, "the webhook has no X-Atlassian-Webhook-Identifier, so a replay could not be told apart", base, false)
                .await;
        };
        match gov
            .integration_callback_seen(&self.jira.id.to_string(), &id)
            .await
        {
            Ok(true) => {
                let why = format!("replayed: webhook {id} was already handled");
                return self.refused(&t, &why, base, false).await;
            }
            Ok(false) => {}
            Err(e) => return unavailable(&e),
        }
        let now_ms = gov.now().timestamp_millis();
        match t.sent_at_ms {
            Some(ms) if (now_ms - ms).abs() <= MAX_AGE_SECONDS * 1000 => {}
            Some(_) => {
                let why = format!("stale: the webhook's timestamp is more than {MAX_AGE_SECONDS} seconds from Steward's clock");
                return self.refused(&t, &why, base, true).await;
            }
            None => {
                return self
                    .refused(&t, "the webhook has no timestamp", base, true)
                    .await
            }
        }
        let review = match self.resolve(&t.review_label).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                let why = format!("no Steward review has the label {}", t.review_label);
                return self.refused(&t, &why, base, true).await;
            }
            Err(e) => return unavailable(&e),
        };
        let mut base = base;
        base["review_id"] = json!(review.id);
        let reported = match t.decision {
            Decision::Approve => ReviewStatus::Approved,
            Decision::Reject => ReviewStatus::Rejected,
        };
        if review.status == reported {
            // Steward's own transition coming back, or the same decision again.
            return self
                .remember(&id, json!({"already": review.status.as_str()}))
                .await;
        }
        let Some(principal) = t.account.as_ref().and_then(|a| self.jira.accounts.get(a)) else {
            let why = format!(
                "the Jira account {} is not mapped to a Steward principal (accounts in the integrations file)",
                t.account.as_deref().unwrap_or("(none)")
            );
            return self.refused_for(&t, &review, &why, base).await;
        };
        base["principal"] = json!(principal);
        let roles = match gov.registry().principal(principal).await {
            Ok(p) => p.map(|p| p.roles).unwrap_or_default(),
            Err(e) => return unavailable(&GovError::Store(e)),
        };
        let caller = Caller::new(principal.clone(), roles, AuthMethod::Integration);
        let verb = match t.decision {
            Decision::Approve => "Approved",
            Decision::Reject => "Rejected",
        };
        let comment = t
            .comment
            .clone()
            .unwrap_or_else(|| format!("{verb} in Jira ({}) by {}", t.issue, t.display_name));
        let input = DecisionInput {
            decision: t.decision,
            comment: Some(comment),
            conditions: vec![],
        };
        match gov.decide(&caller, &review.id, input).await {
            Ok(p) => {
                tracing::info!(integration = %self.jira.id, issue = t.issue, review = review.id,
                    principal = %principal, "a decision from Jira was recorded");
                self.remember(
                    &id,
                    json!({"recorded": review.id, "promotion_status": p.status.as_str()}),
                )
                .await
            }
            Err(e @ (GovError::Contended(_) | GovError::Store(_))) => unavailable(&e),
            Err(e) => {
                let why = format!("{principal} may not decide this review: {e}");
                self.refused_for(&t, &review, &why, base).await
            }
        }
    }

    /// The review whose label is `label` (`steward-review-<label-safe review id>`).
    async fn resolve(&self, label: &str) -> Result<Option<Review>, GovError> {
        let Some(safe) = label.strip_prefix(adf::REVIEW_LABEL) else {
            return Ok(None);
        };
        let mut parts = safe.splitn(3, '.');
        let (Some(name), Some(version)) = (parts.next(), parts.next()) else {
            return Ok(None);
        };
        let (Ok(name), Some(version)) = (ModelName::parse(name), version_of(version)) else {
            return Ok(None);
        };
        let detail = match self.state.gov.version_detail(name.as_ref(), version).await {
            Ok(d) => d,
            Err(GovError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut matching = detail
            .reviews
            .into_iter()
            .filter(|r| adf::review_label(&r.id) == label);
        match (matching.next(), matching.next()) {
            (Some(r), None) => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    async fn remember(&self, id: &str, outcome: Value) -> Response {
        let gov = &self.state.gov;
        match gov
            .remember_integration_callback(
                &self.jira.id.to_string(),
                id,
                &self.body_sha256,
                outcome.clone(),
            )
            .await
        {
            Ok(_) => answer(StatusCode::OK, outcome),
            Err(e) => unavailable(&e),
        }
    }

    async fn refused_for(
        &self,
        t: &Transition,
        review: &Review,
        why: &str,
        details: Value,
    ) -> Response {
        match self.refuse(Some(review), why, details, true).await {
            Ok(true) => self.tell(t, why).await,
            Ok(false) => answer(StatusCode::OK, json!({"replayed": true})),
            Err(resp) => resp,
        }
    }

    async fn refused(&self, t: &Transition, why: &str, details: Value, remember: bool) -> Response {
        match self.refuse(None, why, details, remember).await {
            Ok(true) => self.tell(t, why).await,
            Ok(false) => answer(StatusCode::OK, json!({"replayed": true})),
            Err(resp) => resp,
        }
    }

    /// Audits the refusal; `false` when a concurrent delivery of the same webhook won.
    async fn refuse(
        &self,
        review: Option<&Review>,
        why: &str,
        details: Value,
        remember: bool,
    ) -> Result<bool, Response> {
        let refusal = IntegrationRefusal {
            integration: self.jira.id.to_string(),
            callback_id: self.callback_id.clone(),
            remember,
            body_sha256: self.body_sha256,
            reason: why.to_owned(),
            name: review.map(|r| r.name.clone()),
            version: review.map(|r| r.version),
            details,
        };
        self.state
            .gov
            .record_integration_refusal(refusal)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// Comments the refusal on the issue (best effort: it is audited either way) and answers.
    async fn tell(&self, t: &Transition, why: &str) -> Response {
        // One comment per webhook and reason: a replay of a refused webhook is told again.
        let marker = format!(
            "refusal-{}-{}",
            self.callback_id
                .clone()
                .unwrap_or_else(|| self.body_sha256.to_hex()),
            &Sha256::digest(why.as_bytes()).to_hex()[..12]
        );
        let text = format!("Steward did not record this decision: {why}.");
        if let Err(e) = self.jira.comment_now(&t.issue, &marker, &text).await {
            tracing::warn!(integration = %self.jira.id, issue = t.issue, error = e,
                "could not comment a refusal on the Jira issue");
        }
        tracing::warn!(integration = %self.jira.id, issue = t.issue, reason = why, "a decision from Jira was refused");
        answer(StatusCode::OK, json!({"refused": why}))
    }
}

fn unavailable(e: &GovError) -> Response {
    tracing::warn!(error = %e, "a Jira webhook could not be handled; Jira will retry");
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": {"code": "unavailable", "message": "try again"}}),
    )
}

/// Whether `header` is `sha256=<hex HMAC-SHA256 of body under secret>` (constant time).
pub fn signed(secret: &str, header: Option<&str>, body: &[u8]) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The decision a webhook carries, or why it carries none.
fn interpret(jira: &Jira, p: &Value) -> Result<Transition, String> {
    let event = p["webhookEvent"].as_str().unwrap_or_default();
    if event != "jira:issue_updated" {
        return Err(format!("not an issue update ({event})"));
    }
    let issue = p["issue"]["key"]
        .as_str()
        .ok_or("the webhook names no issue")?
        .to_owned();
    let review_label = p["issue"]["fields"]["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|l| l.starts_with(adf::REVIEW_LABEL))
        .ok_or("the issue has no Steward review label")?
        .to_owned();
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b.trim());
    // A workflow post-function webhook names the transition; an issue_updated one the status.
    let by_transition = p["transition"]["transitionName"].as_str().and_then(|n| {
        if is(n, &jira.transitions.approve) {
            Some(Decision::Approve)
        } else if is(n, &jira.transitions.reject) {
            Some(Decision::Reject)
        } else {
            None
        }
    });
    let by_status = p["changelog"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["field"] == "status" || i["fieldId"] == "status")
        .filter_map(|i| i["toString"].as_str())
        .find_map(|s| {
            if is(s, &jira.statuses.approved) {
                Some(Decision::Approve)
            } else if is(s, &jira.statuses.rejected) {
                Some(Decision::Reject)
            } else {
                None
            }
        });
    let decision = by_transition
        .or(by_status)
        .ok_or("not an approve or reject transition")?;
    Ok(Transition {
        issue,
        review_label,
        decision,
        account: p["user"]["accountId"].as_str().map(str::to_owned),
        display_name: p["user"]["displayName"]
            .as_str()
            .unwrap_or("a Jira user")
            .to_owned(),
        comment: comment_text(&p["comment"]["body"]).filter(|c| !c.trim().is_empty()),
        sent_at_ms: p["timestamp"].as_i64(),
    })
}

/// A comment body as text: a string, or the text nodes of an ADF document.
fn comment_text(body: &Value) -> Option<String> {
    fn walk(v: &Value, out: &mut String) {
        if let Some(t) = v["text"].as_str() {
            out.push_str(t);
        }
        for c in v["content"].as_array().into_iter().flatten() {
            walk(c, out);
        }
    }
    match body {
        Value::String(s) => Some(s.clone()),
        Value::Object(_) => {
            let mut out = String::new();
            walk(body, &mut out);
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_the_hex_hmac_of_the_raw_body_with_its_prefix() {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"It's a Secret to Everybody").unwrap();
        mac.update(b"Hello, World!");
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(signed(
            "It's a Secret to Everybody",
            Some(&good),
            b"Hello, World!"
        ));
        assert!(!signed(
            "It's a Secret to Everybody",
            Some(&good),
            b"Hello, World?"
        ));
        assert!(!signed("other", Some(&good), b"Hello, World!"));
        assert!(!signed(
            "It's a Secret to Everybody",
            Some(&good[7..]),
            b"Hello, World!"
        ));
        assert!(!signed(
            "It's a Secret to Everybody",
            None,
            b"Hello, World!"
        ));
    }
}
