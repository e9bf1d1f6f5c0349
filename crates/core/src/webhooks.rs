//! Outbound webhooks: subscriptions, their deliveries, the retry schedule and the Standard
//! Webhooks signature (<https://www.standardwebhooks.com/>).
//!
//! Invariants:
//! - A [`WebhookSecret`] holds 24 to 64 random bytes; it prints as `whsec_…` only through
//!   [`WebhookSecret::expose`] (its `Debug` is redacted) and is never serialised with a
//!   subscription: records keep a `secret_ref` naming where the backend's secret store keeps it.
//! - A delivery's id (`webhook-id`) and body are fixed when the delivery is created, so every
//!   attempt sends the same bytes under the same id and a receiver can deduplicate; the
//!   timestamp and signature are per attempt.
//! - A delivery is retried with capped, jittered exponential back-off until it succeeds (2xx)
//!   or [`RetrySchedule::give_up_after`] (24 h) has passed since it was created; then it is
//!   `failed`, and so is its subscription until an admin puts it again.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::events::GovernanceEvent;
use crate::records::DomainEvent;
use crate::types::PrincipalId;

/// A subscription's id, chosen by the admin: `[a-z0-9][a-z0-9_-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookId(String);

impl WebhookId {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(FieldError::new(
                "id",
                "a webhook id is 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id under which integration `name` of `kind` (`slack`, `jira`, `servicenow`) queues
    /// its deliveries: `<kind>:<name>`. No admin-made id has a `:`, so the two never collide.
    pub fn integration(kind: IntegrationKind, name: &str) -> Result<Self, FieldError> {
        let name = Self::parse(name).map_err(|e| FieldError::new("name", e.message))?;
        Ok(Self(format!("{}:{}", kind.as_str(), name.0)))
    }

    /// The kind and name of an integration's id; `None` for a subscription's.
    pub fn integration_parts(&self) -> Option<(IntegrationKind, &str)> {
        let (kind, name) = self.0.split_once(':')?;
        Some((IntegrationKind::parse(kind)?, name))
    }
}

/// The integrations that receive governance events through deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntegrationKind {
    Slack,
    Jira,
    ServiceNow,
    /// GitHub's deployment reviews (queued by the protection rule endpoint, not fanned out).
    Github,
}

impl IntegrationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Jira => "jira",
            Self::ServiceNow => "servicenow",
            Self::Github => "github",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "slack" => Some(Self::Slack),
            "jira" => Some(Self::Jira),
            "servicenow" => Some(Self::ServiceNow),
            "github" => Some(Self::Github),
            _ => None,
        }
    }
}

impl TryFrom<String> for WebhookId {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        // Stored ids are either a subscription's or an integration's (`kind:name`).
        match s.split_once(':') {
            Some((kind, name)) => {
                let kind = IntegrationKind::parse(kind).ok_or_else(|| {
                    FieldError::new("id", format!("unknown integration kind in {s:?}"))
                })?;
                Self::integration(kind, name)
            }
            None => Self::parse(&s),
        }
    }
}
impl From<WebhookId> for String {
    fn from(w: WebhookId) -> String {
        w.0
    }
}
impl std::fmt::Display for WebhookId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where deliveries go: an absolute `https://` URL, or `http://` to a loopback host (a receiver
/// on the same machine); no credentials in the URL (they would be logged and returned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let bad = |m: &str| Err(FieldError::new("url", m.to_owned()));
        let (scheme, rest) = match s.split_once("://") {
            Some(p) => p,
            None => return bad("an absolute URL: https://host/path"),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return bad("credentials do not belong in the URL; sign with the secret instead");
        }
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        if host.is_empty() || s.len() > 2048 || s.chars().any(|c| c.is_whitespace()) {
            return bad("an absolute URL with a host, at most 2048 characters, no spaces");
        }
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "::1");
        match scheme {
            "https" => Ok(Self(s.to_owned())),
            "http" if loopback => Ok(Self(s.to_owned())),
            "http" => bad("deliveries go over https (plain http only to localhost)"),
            _ => bad("the scheme is https"),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WebhookUrl {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}
impl From<WebhookUrl> for String {
    fn from(w: WebhookUrl) -> String {
        w.0
    }
}

/// A signing secret, `whsec_<base64 of 24-64 bytes>` as Standard Webhooks writes it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let err = || {
            FieldError::new(
                "secret",
                "whsec_ followed by the base64 of 24 to 64 random bytes",
            )
        };
        let b64 = s.strip_prefix("whsec_").ok_or_else(err)?;
        let bytes = B64.decode(b64).map_err(|_| err())?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(err());
        }
        Ok(Self(bytes))
    }
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes.to_vec())
    }
    /// The secret as `whsec_…`, for the secret store only.
    pub fn expose(&self) -> String {
        format!("whsec_{}", B64.encode(&self.0))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, the `webhook-signature` value.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Active,
    /// A delivery gave up after the retry window; new events are still queued for it, and an
    /// admin's `PUT` makes it active again.
    Failed,
    /// Deleted by an admin: kept as a tombstone (its revision goes on), never delivered to.
    Deleted,
}

impl WebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Failed => "failed",
            Self::Deleted => "deleted",
        }
    }
}

/// A subscription as stored: no secret, only where the secret store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: WebhookUrl,
    /// Detail-types delivered; empty means every event.
    pub events: Vec<String>,
    /// The secret store's name for the current secret (a new name per secret put).
    pub secret_ref: String,
    pub status: WebhookStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: PrincipalId,
    pub revision: u64,
}

impl Webhook {
    /// Whether an event of `detail_type` goes to this subscription.
    pub fn wants(&self, detail_type: &str) -> bool {
        self.status != WebhookStatus::Deleted
            && (self.events.is_empty() || self.events.iter().any(|e| e == detail_type))
    }
}

/// The event types a subscription names: each a governance event's detail-type.
pub fn parse_event_types(events: &[String]) -> Result<Vec<String>, FieldError> {
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        if !GovernanceEvent::DETAIL_TYPES.contains(&e.as_str()) {
            return Err(FieldError::new(
                format!("events[{i}]"),
                format!(
                    "unknown event type {e:?}; one of: {}",
                    GovernanceEvent::DETAIL_TYPES.join(", ")
                ),
            ));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// One event on its way to one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The `webhook-id`: `msg_<event id>_<subscription>`, the same on every attempt.
    pub id: String,
    pub webhook: WebhookId,
    pub event_id: String,
    pub event_type: String,
    /// The exact JSON sent on every attempt.
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_response_code: Option<u16>,
    /// Why the last attempt failed, when it did (no response, a status, a timeout).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
}

impl Delivery {
    /// A new pending delivery of `event` (committed as event `event_id` at `time`) to `webhook`,
    /// its body the governance event as on EventBridge: `{"id", "detail-type", "time", "detail"}`.
    pub fn new(
        webhook: &WebhookId,
        event_id: &str,
        time: DateTime<Utc>,
        event: &DomainEvent,
        now: DateTime<Utc>,
    ) -> Self {
        let body = serde_json::json!({
            "id": event_id,
            "detail-type": event.detail_type,
            "source": crate::events::SOURCE,
            "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "detail": event.detail,
        });
        Self {
            id: format!("msg_{event_id}_{webhook}"),
            webhook: webhook.clone(),
            event_id: event_id.to_owned(),
            event_type: event.detail_type.clone(),
            body: body.to_string(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_response_code: None,
            last_error: None,
            created_at: now,
            last_attempt_at: None,
            next_attempt_at: now,
        }
    }

    /// Records an attempt at `now` that got `code` (or none) and failed with `error` unless it
    /// was a 2xx; schedules the next one with `schedule` (honouring a receiver's `retry_after`
    /// when longer), or gives up when the window is over. `jitter` is uniform in [0, 1).
    pub fn record_attempt(
        &mut self,
        now: DateTime<Utc>,
        code: Option<u16>,
        error: Option<String>,
        retry_after: Option<Duration>,
        schedule: &RetrySchedule,
        jitter: f64,
    ) {
        self.attempts += 1;
        self.last_attempt_at = Some(now);
        self.last_response_code = code;
        if code.is_some_and(|c| (200..300).contains(&c)) {
            self.status = DeliveryStatus::Delivered;
            self.last_error = None;
            return;
        }
        self.last_error = Some(error.unwrap_or_else(|| match code {
            Some(c) => format!("the receiver answered {c}"),
            None => "no response".into(),
        }));
        if now - self.created_at >= schedule.give_up_after {
            self.status = DeliveryStatus::Failed;
            return;
        }
        let mut delay = schedule.delay(self.attempts, jitter);
        if let Some(r) = retry_after {
            delay = delay.max(r.min(schedule.cap));
        }
        // The last attempt falls at the end of the window, not after it.
        let last = self.created_at + schedule.give_up_after;
        self.next_attempt_at = (now + delay).min(last);
    }
}

/// Capped exponential back-off with jitter: attempt n (1-based) waits `first * 2^(n-1)`, at
/// most `cap`, scaled by a factor in [0.5, 1.0) ("equal jitter"), so a herd of deliveries that
/// failed together spreads out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySchedule {
    pub first: Duration,
    pub cap: Duration,
    pub give_up_after: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            first: Duration::seconds(5),
            cap: Duration::hours(1),
            give_up_after: Duration::hours(24),
        }
    }
}

impl RetrySchedule {
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let full = self
            .first
            .checked_mul(1i32 << exp.min(20))
            .unwrap_or(self.cap)
            .min(self.cap);
        let ms = full.num_milliseconds() as f64 * (0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        Duration::milliseconds(ms as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        // The example secret of the Standard Webhooks specification's test vectors.
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    #[test]
    fn the_signature_matches_the_standard_webhooks_test_vector() {
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret().sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_urls_and_ids_refuse_what_they_cannot_hold() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert_eq!(format!("{:?}", secret()), "WebhookSecret(redacted)");
        assert!(WebhookUrl::parse("https://hooks.example.com/steward").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/x").is_ok());
        assert!(WebhookUrl::parse("http://[::1]:9000/x").is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "ftp://x/y",
            "hooks.example.com",
            "https://user:pw@hooks.example.com/",
            "https:///path",
        ] {
            assert_eq!(WebhookUrl::parse(bad).unwrap_err().field, "url", "{bad}");
        }
        assert!(WebhookId::parse("jira-1").is_ok());
        assert!(
            WebhookId::parse("jira:x").is_err(),
            "only integrations have a ':'"
        );
        let int = WebhookId::integration(IntegrationKind::Jira, "gov").unwrap();
        assert_eq!(int.as_str(), "jira:gov");
        assert_eq!(
            int.integration_parts(),
            Some((IntegrationKind::Jira, "gov"))
        );
        let back: WebhookId = serde_json::from_value(serde_json::json!("jira:gov")).unwrap();
        assert_eq!(back, int);
        assert!(serde_json::from_value::<WebhookId>(serde_json::json!("ftp:gov")).is_err());
        for bad in ["", "-x", "Jira", "a/b", &"a".repeat(64)] {
            assert!(WebhookId::parse(bad).is_err(), "{bad}");
        }
        let err = parse_event_types(&["ReviewRequested".into(), "Nope".into()]).unwrap_err();
        assert_eq!(err.field, "events[1]");
    }

    #[test]
    fn back_off_doubles_with_jitter_up_to_the_cap_and_gives_up_after_a_day() {
        let s = RetrySchedule::default();
        assert_eq!(s.delay(1, 0.0), Duration::milliseconds(2500));
        assert_eq!(s.delay(1, 0.999_999), Duration::milliseconds(4999));
        assert_eq!(s.delay(3, 0.0), Duration::seconds(10));
        assert_eq!(s.delay(40, 0.0), Duration::minutes(30));
        let t0 = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = DomainEvent {
            detail_type: "ReviewRequested".into(),
            detail: serde_json::json!({"x": 1}),
        };
        let hook = WebhookId::parse("h").unwrap();
        let mut d = Delivery::new(&hook, "7", t0, &event, t0);
        assert_eq!(d.id, "msg_7_h");
        let mut now = t0;
        let mut attempts = 0;
        while d.status == DeliveryStatus::Pending {
            assert!(d.next_attempt_at >= now);
            now = d.next_attempt_at;
            d.record_attempt(now, Some(503), None, None, &s, 0.5);
            attempts += 1;
            assert!(attempts < 100);
        }
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(
            now - t0,
            Duration::hours(24),
            "the last try is at the end of the window"
        );
        assert_eq!(d.last_error.as_deref(), Some("the receiver answered 503"));
        // A Retry-After longer than the back-off is honoured.
        let mut d = Delivery::new(&hook, "8", t0, &event, t0);
        d.record_attempt(t0, Some(429), None, Some(Duration::seconds(120)), &s, 0.0);
        assert_eq!(d.next_attempt_at, t0 + Duration::seconds(120));
        d.record_attempt(t0, Some(204), None, None, &s, 0.0);
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 2));
    }
}
