//! Monitoring in the console: incidents (open and resolved, what opened them and what Steward
//! did, and the reporting deadline of each serious one, earliest first), what serves on every
//! platform that reports (`governed` or not, and why), periodic reviews by due date, and the pending retirement requests.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use steward_core::records::{IncidentStatus, RetirementStatus};
use steward_core::serving::Outcome;

use super::{failure, page, ConsoleState, Signed};
use crate::ApiError;

#[derive(Deserialize)]
pub struct IncidentsQuery {
    status: Option<String>,
    cursor: Option<String>,
}

fn kind(k: &impl serde::Serialize) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// "3 days 4 hours", "5 hours", "12 minutes": how long until a deadline.
fn remaining(d: chrono::Duration) -> String {
    let (days, hours, minutes) = (d.num_days(), d.num_hours() % 24, d.num_minutes() % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} minutes"),
        (0, h) => format!("{h} hours"),
        (d, 0) => format!("{d} days"),
        (d, h) => format!("{d} days {h} hours"),
    }
}

/// `GET /console/incidents?status=open|resolved`
pub async fn incidents(
    State(s): State<ConsoleState>,
    signed: Signed,
    Query(q): Query<IncidentsQuery>,
) -> Response {
    let body = async {
        let gov = &s.app.gov;
        let wanted = match q.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some("open") => Some(IncidentStatus::Open),
            Some("resolved") => Some(IncidentStatus::Resolved),
            Some(other) => {
                return Err(ApiError::invalid(
                    "status",
                    format!("{other:?} is not one of: open, resolved"),
                ))
            }
        };
        let page = gov.incidents(None, q.cursor.as_deref(), 100).await?;
        let now = gov.now();
        // Serious incidents still owing their report (Art. 73), earliest deadline first.
        let mut owing: Vec<_> = page
            .items
            .iter()
            .filter(|i| i.under_investigation() && i.serious.report.is_none())
            .filter_map(|i| i.serious.report_due.map(|due| (due, i)))
            .collect();
        owing.sort_by_key(|(due, _)| *due);
        let periodic = gov.periodic_reviews().await?;
        let serving = gov.serving_records(&signed.caller, None, 500).await?;
        let retirements = gov
            .list_retirements(&signed.caller, RetirementStatus::AwaitingConfirmation, None, 100)
            .await?;
        Ok(html! {
            h1 { "Monitoring" }
            section #incidents {
                h2 { "Incidents" }
                p { a href="/console/incidents?status=open" { "open" } " · " a href="/console/incidents?status=resolved" { "resolved" } " · " a href="/console/incidents" { "all" } }
                @if !owing.is_empty() {
                    div #serious-deadlines {
                        h3 { "Serious incidents awaiting their report (EU AI Act Art. 73)" }
                        ul { @for (due, i) in &owing { li {
                            strong { (i.id) } " on " (i.name.as_ref()) @if let Some(v) = i.version { " v" (v.to_string()) } ": report due "
                            span.deadline data-due=(steward_core::audit::format_time(*due)) { (due.format("%Y-%m-%d %H:%M UTC")) }
                            @if *due <= now { " " span.fail { "overdue" } }
                            @else { " (in " (remaining(*due - now)) ")" }
                        } } }
                    }
                }
                table { thead { tr { th { "Incident" } th { "Model" } th { "Kind" } th { "Signal" } th { "Threshold" } th { "Status" } th { "Serious (Art. 73)" } th { "Opened" } th { "What happened" } } }
                    tbody { @for i in page.items.iter().filter(|i| wanted.is_none_or(|w| i.status == w)) { tr {
                        td { (i.id) }
                        td { a href=(format!("/console/models/{}", i.name.as_ref())) { (i.name.as_ref()) } @if let Some(v) = i.version { " v" (v.to_string()) } }
                        td { (kind(&i.kind)) }
                        td { @if !i.metric.is_empty() { (i.metric) " = " (i.value.map(|v| v.to_string()).unwrap_or_default()) } @else { (i.summary) } }
                        td { (i.threshold.map(|t| t.to_string()).unwrap_or_else(|| "—".into())) }
                        td { (kind(&i.status)) }
                        td {
                            @if let Some(c) = &i.serious.classification { (kind(&c.category)) }
                            @else { "—" }
                            @if let Some(r) = &i.serious.report { br; "reported: " (r.reference) }
                            @else if let Some(due) = i.serious.report_due { br; "report due " (due.format("%Y-%m-%d %H:%M UTC")) }
                        }
                        td { (i.opened_at.format("%Y-%m-%d %H:%M UTC")) }
                        td { (i.actions.join(", ")) }
                    } } }
                }
                @if let Some(c) = &page.next_cursor { p { a href=(format!("/console/incidents?cursor={c}")) { "More" } } }
            }
            section #serving {
                h2 { "What serves" }
                @let live: Vec<_> = serving.items.iter().filter(|r| r.stopped_at.is_none()).collect();
                @let findings = live.iter().filter(|r| r.outcome != Outcome::Governed).count();
                @if live.is_empty() { p.empty { "No serving platform has reported an endpoint yet (POST /v1/serving)." } }
                @else {
                    p { (live.len()) " endpoints reported; " strong { (findings) " not governed" } "." }
                    table { thead { tr { th { "Platform" } th { "Environment" } th { "Endpoint" } th { "Outcome" } th { "Serves" } th { "Why" } th { "Incident" } th { "Last seen" } } }
                        tbody { @for r in &live { tr {
                            td { (r.platform) } td { (r.environment.as_str()) } td { (r.endpoint) }
                            td { @if r.outcome == Outcome::Governed { (r.outcome.as_str()) } @else { span.fail { (r.outcome.as_str()) } } }
                            td { @match (&r.model, r.version) { (Some(m), Some(v)) => { a href=(format!("/console/models/{}/versions/{v}", m.as_ref())) { (m.as_ref()) " v" (v.to_string()) } } _ => { code { (r.artifact.uri) } } } }
                            td { (r.reason) }
                            td { (r.incident.as_deref().unwrap_or("—")) }
                            td { (r.observed_at.format("%Y-%m-%d %H:%M UTC")) }
                        } } }
                    }
                }
            }
            section #periodic-reviews {
                h2 { "Periodic reviews, by due date" }
                table { thead { tr { th { "Model" } th { "Version" } th { "Tier" } th { "Last reviewed" } th { "Due" } } }
                    tbody { @for p in &periodic { tr {
                        td { (p.name.as_ref()) } td { (p.version.to_string()) } td { (p.risk_tier.as_str()) }
                        td { (p.last_reviewed_at.format("%Y-%m-%d")) }
                        td { (p.due_at.format("%Y-%m-%d")) @if p.overdue { " " span.fail { "overdue" } } }
                    } } }
                }
            }
            section #retirements {
                h2 { "Pending retirements" }
                @if retirements.items.is_empty() { p.empty { "None waiting for confirmation." } }
                ul { @for r in &retirements.items { li {
                    (r.name.as_ref()) " v" (r.version.to_string()) ": " (r.reason) " (requested by " (r.requested_by.to_string()) ")"
                    @if r.may_decide { " — " strong { "you may confirm or refuse it" } }
                } } }
            }
        })
    }
    .await;
    match body {
        Ok(b) => page(Some(&signed), "Monitoring", b).into_response(),
        Err(e) => failure(Some(&signed), e),
    }
}
