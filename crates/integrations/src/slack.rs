//! Slack (and anything that takes an incoming-webhook JSON message): one message per event,
//! `{"text": ..., "blocks": [{"type": "section", "text": {"type": "mrkdwn", ...}}]}`, with a
//! link to the console page of what it is about.
//!
//! Invariants: text taken from events is escaped as Slack's mrkdwn requires (`&`, `<`, `>`),
//! so a model description cannot forge a link or a mention; the webhook URL (which embeds the
//! token) is never logged or put in an error. Slack answers 200 `ok`; 429 carries
//! `Retry-After`, which the deliverer honours; 4xx other than 429 are retried too, since a
//! misconfigured channel is mended by an operator within the window, not by dropping events.

use async_trait::async_trait;
use serde_json::{json, Value};
use steward_core::records::DomainEvent;
use steward_core::webhooks::{Delivery, IntegrationKind, WebhookId};

use crate::config::{ConfigError, Secret, SlackConfig, SLACK_DEFAULT_EVENTS};
use crate::{Outcome, Target};

/// A configured incoming webhook.
pub struct Slack {
    id: WebhookId,
    url: Secret,
    events: Vec<String>,
    console: Option<String>,
    http: reqwest::Client,
}

impl Slack {
    pub fn new(
        name: &str,
        c: &SlackConfig,
        console_url: Option<&str>,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        let id = WebhookId::integration(IntegrationKind::Slack, name)
            .map_err(|e| ConfigError::invalid(format!("slack.{name}"), e.message))?;
        let url = c.url.resolve(&format!("slack.{name}.url"))?;
        if !url.expose().starts_with("https://") && !url.expose().starts_with("http://127.0.0.1") {
            return Err(ConfigError::invalid(
                format!("slack.{name}.url"),
                "an https:// incoming-webhook URL",
            ));
        }
        Ok(Self {
            id,
            url,
            events: c
                .events
                .clone()
                .unwrap_or_else(|| SLACK_DEFAULT_EVENTS.iter().map(|s| s.to_string()).collect()),
            console: console_url.map(|u| u.trim_end_matches('/').to_owned()),
            http,
        })
    }
}

#[async_trait]
impl Target for Slack {
    fn id(&self) -> &WebhookId {
        &self.id
    }

    fn wants(&self, event: &DomainEvent) -> bool {
        self.events.iter().any(|e| e == &event.detail_type)
    }

    async fn deliver(&self, delivery: &Delivery) -> Outcome {
        let event: Value = match serde_json::from_str(&delivery.body) {
            Ok(v) => v,
            Err(_) => return Outcome::failed("the delivery's body is not JSON"),
        };
        let message = message(&event, self.console.as_deref());
        let sent = self
            .http
            .post(self.url.expose())
            .json(&message)
            .send()
            .await
            // Without the URL: it holds the token.
            .map_err(|e| e.without_url());
        Outcome::of(sent)
    }
}

/// Escapes text for Slack's mrkdwn.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The message for a governance event as delivered (`{"detail-type", "detail", ...}`).
pub fn message(event: &Value, console: Option<&str>) -> Value {
    let console = console.map(|c| c.trim_end_matches('/'));
    let kind = event["detail-type"].as_str().unwrap_or("event");
    let d = &event["detail"];
    let s = |k: &str| {
        escape(
            &d[k]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| d[k].to_string()),
        )
    };
    let model = format!("*{}* v{}", s("name"), s("version"));
    let link = |path: String, label: &str| match console {
        Some(base) => format!(" <{base}{path}|{label}>"),
        None => String::new(),
    };
    let version_page = link(
        format!("/console/models/{}/versions/{}", s("name"), s("version")),
        "Open in Steward",
    );
    let text = match kind {
        "ReviewRequested" => format!(
            ":mag: Review requested: {model} for {}, {} stage, due {}.{}",
            s("target"),
            s("stage"),
            s("deadline"),
            link(
                format!("/console/reviews/{}", s("review_id")),
                "Open the review"
            )
        ),
        "ReviewDecided" => format!(
            ":ballot_box_with_check: {model}: the {} review was decided *{}* by {}.{version_page}",
            s("stage"),
            s("decision"),
            s("decided_by")
        ),
        "PromotionApproved" => format!(
            ":white_check_mark: {model} is approved for {}.{version_page}",
            s("target")
        ),
        "PromotionRejected" => format!(
            ":no_entry: The promotion of {model} to {} was rejected at the {} stage.{version_page}",
            s("target"),
            s("stage")
        ),
        "IncidentOpened" => format!(
            ":rotating_light: Incident {} on {model}: {} {} = {} (threshold {}).{}",
            s("incident_id"),
            s("kind"),
            s("metric"),
            s("value"),
            s("threshold"),
            link("/console/incidents".into(), "Incidents")
        ),
        "ModelRolledBack" => format!(
            ":rewind: *{}* rolled back from v{} to v{}: {}.{}",
            s("name"),
            s("from_version"),
            s("to_version"),
            s("reason"),
            link(format!("/console/models/{}", s("name")), "Open in Steward")
        ),
        other => format!("{} for {model}.{version_page}", escape(other)),
    };
    json!({
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_request_links_to_its_console_page_and_escapes_what_it_quotes() {
        let event = json!({"detail-type": "ReviewRequested", "detail": {
            "review_id": "m.1.pr-x-technical", "promotion_id": "m.1.pr-x", "name": "m", "version": 1,
            "target": "production", "stage": "technical", "deadline": "2026-12-10T00:00:00Z"}});
        let m = message(&event, Some("https://steward.example.com/"));
        let text = m["text"].as_str().unwrap();
        assert!(
            text.contains(
                "<https://steward.example.com/console/reviews/m.1.pr-x-technical|Open the review>"
            ),
            "{text}"
        );
        assert_eq!(m["blocks"][0]["text"]["text"], m["text"]);
        let evil = json!({"detail-type": "ModelRolledBack", "detail": {
            "name": "m", "from_version": 2, "to_version": 1, "reason": "<!channel> & <https://x|y>"}});
        let text = message(&evil, None)["text"].as_str().unwrap().to_owned();
        assert!(
            text.contains("&lt;!channel&gt; &amp; &lt;https://x|y&gt;"),
            "{text}"
        );
    }
}
