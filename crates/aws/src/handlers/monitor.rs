//! Monitoring signals from EventBridge: CloudWatch alarms of model versions entering `ALARM`
//! (default bus, rule `events/rules/model-alarm-state-change.json`) and `ModelMetricsReported`
//! events of monitoring jobs (Steward bus, `events/rules/model-metrics-reported.json`), both
//! delivered to the monitor queue. Each becomes a core signal
//! ([`steward_core::Governance::signal_once`]), which applies the model card's thresholds: drift
//! over the maximum opens an incident and emits `RetrainingRequested`; quality under the
//! minimum opens an incident, alerts and rolls production back where policy allows.
//!
//! Which version an alarm is about (`events/samples/CloudWatchAlarmStateChange.steward-model.json`):
//! - the dimensions `Model` and `Version` of a metric in the alarm's `configuration.metrics`
//!   (`metricStat.metric.dimensions`), that metric's `name` being the card metric; else
//! - the alarm's name, `steward-model-<model>-<version>-<metric>`: the version is the last
//!   all-digit segment with a metric after it (a metric whose name has an all-digit segment
//!   needs the dimensions).
//!
//! The value: the alarm's new state carries the datapoints it evaluated
//! (`state.reasonData`, a JSON string, `recentDatapoints`). All of them are reported; core takes
//! the worst for the card's threshold (largest for drift, smallest for quality), so the value
//! does not depend on the order CloudWatch lists them in. The kind is the kind of the card
//! threshold on that metric. An alarm carries no datapoints when it did not evaluate a metric
//! (e.g. missing data treated as breaching): then there is nothing to hold against the card,
//! and the event is logged and ignored — the alarm's own actions still notify people.
//!
//! Invariants:
//! - Only a transition INTO `ALARM` is a signal (`state.value` `ALARM`, `previousState.value`
//!   not `ALARM`); other state changes are acknowledged and ignored.
//! - The caller is the system principal `system:monitor` with the operator role, never
//!   anything from the event body.
//! - At least once in, exactly once applied: the EventBridge event id is the signal's
//!   idempotency key, so a redelivered event (an EventBridge retry, an SQS redelivery) replays
//!   the first outcome and opens no second incident.
//! - An event that can never apply (an alarm naming no model version, an unknown model or
//!   version, a metric the card sets no threshold for, a malformed body) is logged and
//!   acknowledged: no crash, no redelivery loop. Only failures that a retry may fix (a lost
//!   race, the store unavailable) are reported as batch item failures.
//! - Starting a retraining pipeline is not this function's job: consumers of
//!   `RetrainingRequested` do it.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::Value;
use steward_core::ids::VersionNumber;
use steward_core::ports::Caller;
use steward_core::service::{MonitoringSignal, SignalOutcome};
use steward_core::types::{ModelName, PrincipalId, Role, SignalKind};
use steward_core::{GovError, Governance};

use super::{eventbridge_envelope, for_each_message, Failure};

/// The detail-type of CloudWatch alarm state changes.
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
/// The detail-type monitoring jobs report metrics with.
pub const METRICS_REPORTED: &str = "ModelMetricsReported";
/// The prefix of the names of Steward's model alarms (the rule matches on it).
pub const ALARM_PREFIX: &str = "steward-model-";

/// The principal signals from EventBridge are recorded under: `system:monitor`, an operator.
pub fn monitor_caller() -> Caller {
    Caller {
        id: PrincipalId::system("monitor"),
        roles: vec![Role::Operator],
        auth: steward_core::types::AuthMethod::System,
    }
}

/// What one monitoring event did.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorOutcome {
    /// The signal was applied now (`replayed: false`) or by an earlier delivery of the same
    /// event (`replayed: true`, nothing written).
    Applied {
        outcome: Box<SignalOutcome>,
        replayed: bool,
    },
    /// Acknowledged without a signal, and why.
    Ignored(String),
}

/// A signal read from an event, before core applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSignal {
    pub signal: MonitoringSignal,
    /// The idempotency key: the EventBridge event id.
    pub key: String,
}

/// Reads the signal an event carries, or why it carries none.
pub fn read_signal(event: &EventBridgeEvent<Value>) -> Result<EventSignal, String> {
    let key = event
        .id
        .clone()
        .filter(|id| !id.is_empty() && id.len() <= 200)
        .ok_or("the event has no usable id")?;
    let signal = match (event.source.as_str(), event.detail_type.as_str()) {
        ("aws.cloudwatch", ALARM_STATE_CHANGE) => alarm_signal(&event.detail)?,
        ("steward.monitoring", METRICS_REPORTED) => reported_signal(&event.detail)?,
        (source, dt) => return Err(format!("not a monitoring event: {dt} from {source}")),
    };
    Ok(EventSignal { signal, key })
}

/// The signal of a CloudWatch alarm entering `ALARM` (see the module docs).
pub fn alarm_signal(detail: &Value) -> Result<MonitoringSignal, String> {
    let alarm = detail["alarmName"].as_str().unwrap_or_default();
    let state = detail["state"]["value"].as_str().unwrap_or_default();
    let previous = detail["previousState"]["value"]
        .as_str()
        .unwrap_or_default();
    if state != "ALARM" {
        return Err(format!("alarm {alarm:?} changed to {state:?}, not ALARM"));
    }
    if previous == "ALARM" {
        return Err(format!(
            "alarm {alarm:?} was in ALARM already (not a transition into ALARM)"
        ));
    }
    let (model, version, metric) = alarm_target(detail)
        .ok_or_else(|| format!("alarm {alarm:?} names no model version (no Model/Version dimensions, not named {ALARM_PREFIX}<model>-<version>-<metric>)"))?;
    let values = alarm_datapoints(detail);
    if values.is_empty() {
        return Err(format!(
            "alarm {alarm:?} for {model} version {version} carries no datapoints (state.reasonData.recentDatapoints)"
        ));
    }
    Ok(MonitoringSignal {
        model,
        version,
        kind: None,
        metric,
        values,
    })
}

/// The model version and card metric an alarm is about: its metric's `Model`/`Version`
/// dimensions, else its name.
pub fn alarm_target(detail: &Value) -> Option<(ModelName, VersionNumber, String)> {
    let by_dimensions = detail["configuration"]["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|m| {
            let metric = &m["metricStat"]["metric"];
            let dims = &metric["dimensions"];
            let model = ModelName::parse(dims["Model"].as_str()?).ok()?;
            let version = parse_version(dims["Version"].as_str()?)?;
            let name = metric["name"].as_str().filter(|n| !n.is_empty())?;
            Some((model, version, name.to_owned()))
        });
    by_dimensions.or_else(|| alarm_name_target(detail["alarmName"].as_str()?))
}

/// `steward-model-<model>-<version>-<metric>`: the last all-digit segment followed by a metric.
pub fn alarm_name_target(alarm: &str) -> Option<(ModelName, VersionNumber, String)> {
    let rest = alarm.strip_prefix(ALARM_PREFIX)?;
    let parts: Vec<&str> = rest.split('-').collect();
    (1..parts.len().saturating_sub(1)).rev().find_map(|i| {
        let version = parse_version(parts[i])?;
        let model = ModelName::parse(&parts[..i].join("-")).ok()?;
        let metric = parts[i + 1..].join("-");
        (!metric.is_empty()).then_some((model, version, metric))
    })
}

fn parse_version(s: &str) -> Option<VersionNumber> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    VersionNumber::parse(s).ok()
}

/// The finite datapoints of the alarm's new state (`state.reasonData.recentDatapoints`).
pub fn alarm_datapoints(detail: &Value) -> Vec<f64> {
    let Some(text) = detail["state"]["reasonData"].as_str() else {
        return vec![];
    };
    let Ok(data) = serde_json::from_str::<Value>(text) else {
        return vec![];
    };
    data["recentDatapoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .filter(|v| v.is_finite())
        .collect()
}

/// The signal of a `ModelMetricsReported` event (schema version 1).
pub fn reported_signal(detail: &Value) -> Result<MonitoringSignal, String> {
    if detail["schema_version"] != "1" {
        return Err(format!(
            "ModelMetricsReported with schema_version {} (this consumer reads \"1\")",
            detail["schema_version"]
        ));
    }
    let model = detail["model"]
        .as_str()
        .and_then(|m| ModelName::parse(m).ok())
        .ok_or("ModelMetricsReported without a valid model name")?;
    let version = detail["version"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .and_then(|v| VersionNumber::new(v).ok())
        .ok_or("ModelMetricsReported without a valid version")?;
    let kind = match detail["kind"].as_str() {
        Some("drift") => SignalKind::Drift,
        Some("quality") => SignalKind::Quality,
        _ => return Err("ModelMetricsReported without kind drift or quality".into()),
    };
    let metric = detail["metric"]
        .as_str()
        .filter(|m| !m.trim().is_empty())
        .ok_or("ModelMetricsReported without a metric")?;
    let value = detail["value"]
        .as_f64()
        .filter(|v| v.is_finite())
        .ok_or("ModelMetricsReported without a numeric value")?;
    Ok(MonitoringSignal {
        model,
        version,
        kind: Some(kind),
        metric: metric.to_owned(),
        values: vec![value],
    })
}

/// Applies one monitoring event.
pub async fn apply_monitoring_event(
    gov: &Governance,
    event: &EventBridgeEvent<Value>,
) -> Result<MonitorOutcome, Failure> {
    let read = match read_signal(event) {
        Ok(s) => s,
        Err(why) => {
            tracing::warn!(event_id = ?event.id, detail_type = %event.detail_type, reason = %why, "monitoring event ignored");
            return Ok(MonitorOutcome::Ignored(why));
        }
    };
    let name = read.signal.model.clone();
    let version = read.signal.version.get();
    match gov
        .signal_once(&monitor_caller(), read.signal, Some(&read.key))
        .await
    {
        Ok((outcome, replayed)) => {
            tracing::info!(
                event_id = %read.key, model = %name, version, replayed,
                breached = outcome.breached,
                incident = ?outcome.incident.as_ref().map(|i| &i.id),
                actions = ?outcome.actions,
                "monitoring signal applied"
            );
            Ok(MonitorOutcome::Applied {
                outcome: Box::new(outcome),
                replayed,
            })
        }
        // Never applicable, whatever the retries: an unknown model or version, or a metric
        // the card sets no threshold for.
        Err(e @ (GovError::NotFound(_) | GovError::Validation(_) | GovError::Policy(_))) => {
            let why = e.to_string();
            tracing::warn!(event_id = %read.key, model = %name, version, reason = %why, "monitoring event ignored");
            Ok(MonitorOutcome::Ignored(why))
        }
        Err(e) => Err(e.into()),
    }
}

/// Handles a batch of monitoring events from SQS (see [`super::for_each_message`]).
pub async fn monitor(event: &SqsEvent, gov: &Governance) -> SqsBatchResponse {
    for_each_message(&event.records, |message| async move {
        let envelope = eventbridge_envelope(message)?;
        let outcome = apply_monitoring_event(gov, &envelope).await?;
        Ok(format!("{}: {outcome:?}", envelope.detail_type))
    })
    .await
}
