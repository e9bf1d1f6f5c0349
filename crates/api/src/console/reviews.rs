//! The approval inbox and the review page: everything a reviewer needs to decide without
//! leaving it, and the decision form (`decision`, `comment`, `conditions`).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use steward_core::ids::ReviewId;
use steward_core::policy::{Policy, Threshold};
use steward_core::records::{IncidentStatus, ModelVersion, Promotion, ReviewStatus};
use steward_core::service::DecisionInput;
use steward_core::types::Decision;

use super::{check_post, failure, page, ConsoleState, Signed};
use crate::ApiError;

#[derive(Deserialize)]
pub struct InboxQuery {
    cursor: Option<String>,
}

/// `GET /console/reviews`: the pending reviews the signed-in principal may decide.
pub async fn inbox(
    State(s): State<ConsoleState>,
    signed: Signed,
    Query(q): Query<InboxQuery>,
) -> Response {
    let listed = s
        .app
        .gov
        .list_reviews(
            &signed.caller,
            ReviewStatus::Pending,
            q.cursor.as_deref(),
            50,
        )
        .await;
    let reviews = match listed {
        Ok(p) => p,
        Err(e) => return failure(Some(&signed), e.into()),
    };
    let body = html! {
        h1 { "Reviews waiting for you" }
        @if reviews.items.is_empty() {
            p.empty { "Nothing to decide." }
        } @else {
            table.reviews {
                thead { tr { th { "Model" } th { "Version" } th { "Target" } th { "Stage" } th { "Deadline" } } }
                tbody {
                    @for r in &reviews.items {
                        tr {
                            td { a href=(format!("/console/reviews/{}", r.id)) { (r.name.as_ref()) } }
                            td { (r.version.to_string()) }
                            td { (r.target.as_str()) }
                            td { (r.stage.as_str()) }
                            td { time datetime=(r.deadline.to_rfc3339()) { (r.deadline.format("%Y-%m-%d %H:%M UTC")) } }
                        }
                    }
                }
            }
            @if let Some(c) = &reviews.next_cursor {
                p { a href=(format!("/console/reviews?cursor={c}")) { "More" } }
            }
        }
    };
    page(Some(&signed), "Reviews", body).into_response()
}

/// A JSON value as nested lists: every field of a model card, whatever its shape.
pub(super) fn value(v: &Value) -> Markup {
    html! {
        @match v {
            Value::Object(m) => dl {
                @for (k, v) in m { dt { (k) } dd { (value(v)) } }
            },
            Value::Array(items) => ul { @for i in items { li { (value(i)) } } },
            Value::String(s) => (s),
            Value::Null => span.none { "—" },
            other => (other.to_string()),
        }
    }
}

/// The evaluations, each metric marked against the thresholds that apply to it: the policy's
/// for the version's tier and the card's own quality minimums (`Policy::thresholds_for`).
pub(super) fn evaluations(v: &ModelVersion, policy: &Policy) -> Markup {
    let thresholds = policy.thresholds_for(v.risk_tier, &v.card);
    let symbol = |c: &Threshold| {
        serde_json::to_value(c.comparison)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    html! {
        table.evaluations {
            thead { tr { th { "Evaluation" } th { "Dataset" } th { "Metric" } th { "Value" } th { "Threshold" } th { "Result" } } }
            tbody {
                @for e in &v.evaluations {
                    @for (metric, x) in &e.result.metrics {
                        @let applying: Vec<&Threshold> = thresholds.iter().filter(|t| &t.metric == metric).collect();
                        tr {
                            td { (e.result.name) }
                            td { code { (e.result.dataset.sha256.to_string()) } }
                            td { (metric) }
                            td { (x) }
                            td { @if applying.is_empty() { "—" } @for t in &applying { (symbol(t)) " " (t.value) " " } }
                            td {
                                @if applying.is_empty() { "—" }
                                @else if applying.iter().all(|t| t.comparison.holds(*x, t.value)) { span.pass { "pass" } }
                                @else { span.fail { "fail" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Each evaluation's slices: a metric per group, and the disparity (largest minus smallest).
fn slices(v: &ModelVersion) -> Markup {
    html! {
        @for e in v.evaluations.iter().filter(|e| !e.result.slices.is_empty()) {
            @let metrics: std::collections::BTreeSet<&String> = e.result.slices.iter().flat_map(|s| s.metrics.keys()).collect();
            h3 { (e.result.name) }
            table.slices {
                thead { tr { th { "Group" } @for m in &metrics { th { (m) } } } }
                tbody {
                    @for sl in &e.result.slices {
                        tr { td { (sl.group) } @for m in &metrics { td { (sl.metrics.get(*m).map(|x| x.to_string()).unwrap_or_else(|| "—".into())) } } }
                    }
                    tr.disparity {
                        td { strong { "disparity" } }
                        @for m in &metrics {
                            @let xs: Vec<f64> = e.result.slices.iter().filter_map(|s| s.metrics.get(*m).copied()).collect();
                            @let spread = xs.iter().cloned().fold(f64::MIN, f64::max) - xs.iter().cloned().fold(f64::MAX, f64::min);
                            td { strong { @if xs.len() > 1 { (format!("{spread:.4}")) } @else { "—" } } }
                        }
                    }
                }
            }
        }
    }
}

/// The metrics of the serving version and of this one, side by side.
fn metrics_side_by_side(old: &ModelVersion, new: &ModelVersion) -> Markup {
    let mut rows: std::collections::BTreeMap<(String, String), (Option<f64>, Option<f64>)> =
        std::collections::BTreeMap::new();
    for e in &old.evaluations {
        for (m, x) in &e.result.metrics {
            rows.entry((e.result.name.clone(), m.clone()))
                .or_default()
                .0 = Some(*x);
        }
    }
    for e in &new.evaluations {
        for (m, x) in &e.result.metrics {
            rows.entry((e.result.name.clone(), m.clone()))
                .or_default()
                .1 = Some(*x);
        }
    }
    let cell = |x: &Option<f64>| x.map(|x| x.to_string()).unwrap_or_else(|| "—".into());
    html! {
        table.side-by-side {
            thead { tr { th { "Evaluation" } th { "Metric" } th { "Version " (old.version.to_string()) } th { "This version" } } }
            tbody { @for ((e, m), (a, b)) in &rows { tr { td { (e) } td { (m) } td { (cell(a)) } td { (cell(b)) } } } }
        }
    }
}

fn other_reviews(p: &Promotion) -> Markup {
    html! {
        table.promotion-reviews {
            thead { tr { th { "Stage" } th { "Status" } th { "Decided by" } th { "Comment" } th { "Deadline" } } }
            tbody {
                @for r in &p.reviews {
                    tr {
                        td { (r.stage.as_str()) }
                        td { (r.status.as_str()) }
                        td { @if let Some(by) = &r.decided_by { (by.to_string()) } @else { "—" } }
                        td { @if let Some(c) = &r.comment { (c) } }
                        td { (r.deadline.format("%Y-%m-%d %H:%M UTC")) }
                    }
                }
            }
        }
    }
}

/// The review page's content.
async fn page_of(s: &ConsoleState, signed: &Signed, id: &str) -> Result<Markup, ApiError> {
    let gov = &s.app.gov;
    let review_id = ReviewId::parse(id)
        .map_err(|_| ApiError::from(steward_core::GovError::NotFound(format!("no review {id}"))))?;
    let p = gov.promotion(&review_id.promotion().to_string()).await?;
    let r = p
        .reviews
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| steward_core::GovError::NotFound(format!("no review {id}")))?;
    let detail = gov.version_detail(p.name.as_ref(), p.version).await?;
    let v = &detail.version;
    let model = gov.model_detail(p.name.as_ref()).await?;
    let serving = model
        .model
        .production_version
        .filter(|pv| *pv != p.version)
        .and_then(|pv| model.versions.iter().find(|x| x.version == pv));
    let incidents = gov.incidents(Some(p.name.as_ref()), None, 50).await?;
    let why_not = gov.why_not_decide(&signed.caller, id).await?;
    let card = serde_json::to_value(&v.card).unwrap_or(Value::Null);
    let lineage = serde_json::to_value(&v.lineage).unwrap_or(Value::Null);
    Ok(html! {
        h1 { "Review: " (p.name.as_ref()) " version " (p.version.to_string()) " to " (p.target.as_str()) }
        p.summary {
            "Stage " strong { (r.stage.as_str()) } ", " (r.status.as_str())
            ", deadline " time datetime=(r.deadline.to_rfc3339()) { (r.deadline.format("%Y-%m-%d %H:%M UTC")) }
            ". Risk tier " (v.risk_tier.as_str()) ", registered by " (v.registered_by.to_string()) "."
        }
        section #decision {
            h2 { "Your decision" }
            @if let Some(why) = &why_not {
                p.refusal role="note" { "You may not decide this review: " (why) }
            } @else {
                form method="post" action=(format!("/console/reviews/{id}/decision")) {
                    input type="hidden" name="csrf" value=(signed.session.csrf);
                    fieldset {
                        legend { "Decision" }
                        label { input type="radio" name="decision" value="approve" required; " Approve" }
                        label { input type="radio" name="decision" value="reject"; " Reject" }
                    }
                    label for="comment" { "Comment (required to reject)" }
                    textarea #comment name="comment" rows="3" {}
                    label for="conditions" { "Conditions, one per line" }
                    textarea #conditions name="conditions" rows="3" {}
                    button type="submit" { "Record decision" }
                }
            }
        }
        section #reviews { h2 { "Reviews of this promotion" } (other_reviews(&p)) }
        section #evaluations { h2 { "Evaluations" } (evaluations(v, s.app.gov.policy())) }
        section #fairness { h2 { "Fairness slices" } (slices(v)) }
        @if let Some(old) = serving {
            section #replaces {
                h2 { "Replaces version " (old.version.to_string()) " in production" }
                h3 { "Metrics, side by side" }
                (metrics_side_by_side(old, v))
                h3 { "Card fields that changed" }
                @let before = serde_json::to_value(&old.card).unwrap_or(Value::Null);
                @let changes = super::registry::card_diff(&before, &card);
                @if changes.is_empty() { p { "None." } } @else {
                    table.diff { thead { tr { th { "Field" } th { "Version " (old.version.to_string()) } th { "This version" } } }
                        tbody { @for (f, a, b) in &changes { tr { td { code { (f) } } td.before { (a) } td.after { (b) } } } } }
                }
            }
        }
        section #incidents {
            h2 { "Open incidents of " (p.name.as_ref()) }
            @let open: Vec<_> = incidents.items.iter().filter(|i| i.status == IncidentStatus::Open).collect();
            @if open.is_empty() { p { "None." } } @else {
                ul { @for i in open { li { (i.id) ": " (i.summary) } } }
            }
        }
        section #card { h2 { "Model card" } (value(&card)) }
        section #lineage { h2 { "Lineage" } (value(&lineage)) }
    })
}

/// `GET /console/reviews/{id}`
pub async fn show(
    State(s): State<ConsoleState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Response {
    match page_of(&s, &signed, &id).await {
        Ok(body) => page(Some(&signed), "Review", body).into_response(),
        Err(e) => failure(Some(&signed), e),
    }
}

/// The decision form's fields, read as pairs: `conditions` may come once (the form's textarea,
/// one condition per line) or repeated (one field per condition), as any client sends it.
struct DecisionForm {
    csrf: Option<String>,
    decision: Option<String>,
    comment: String,
    conditions: Vec<String>,
}

impl DecisionForm {
    fn read(fields: Vec<(String, String)>) -> Self {
        let mut f = DecisionForm {
            csrf: None,
            decision: None,
            comment: String::new(),
            conditions: Vec::new(),
        };
        for (k, v) in fields {
            match k.as_str() {
                "csrf" => f.csrf = Some(v),
                "decision" => f.decision = Some(v),
                "comment" => f.comment = v,
                "conditions" => f.conditions.extend(
                    v.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                ),
                _ => {}
            }
        }
        f
    }
}

/// `POST /console/reviews/{id}/decision`: the decision, through core as the signed-in
/// principal; back to the review page.
pub async fn decide(
    State(s): State<ConsoleState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let f = DecisionForm::read(fields);
    if let Some(refusal) = check_post(&headers, &signed.session, f.csrf.as_deref()) {
        return refusal;
    }
    let decision = match f.decision.as_deref() {
        Some("approve") => Decision::Approve,
        Some("reject") => Decision::Reject,
        _ => {
            let e = steward_core::GovError::field("decision", "choose approve or reject");
            return failure(Some(&signed), e.into());
        }
    };
    let input = DecisionInput {
        decision,
        comment: Some(f.comment).filter(|c| !c.trim().is_empty()),
        conditions: f.conditions,
    };
    match s.app.gov.decide(&signed.caller, &id, input).await {
        Ok(_) => Redirect::to(&format!("/console/reviews/{id}")).into_response(),
        Err(e) => failure(Some(&signed), e.into()),
    }
}
