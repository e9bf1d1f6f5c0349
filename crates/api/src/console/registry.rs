//! The registry in the console: models (filters, search, pages), a model with its versions and
//! production timeline (SVG, from the `production?at` answers), and a version with its card
//! revisions (and what each changed), evaluations, check reports, promotions, deployments and
//! gate answers.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use steward_core::checks::{CheckResult, CheckStatus};
use steward_core::ids::VersionNumber;
use steward_core::ports::ModelFilter;
use steward_core::types::{Environment, RiskTier, Stage};

use super::reviews::{evaluations, value};
use super::{failure, page, ConsoleState, Signed};
use crate::ApiError;

#[derive(Deserialize)]
pub struct ModelsQuery {
    stage: Option<String>,
    tier: Option<String>,
    owner: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

fn some(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `GET /console/models?stage=&tier=&owner=&q=&cursor=`
pub async fn models(
    State(s): State<ConsoleState>,
    signed: Signed,
    Query(q): Query<ModelsQuery>,
) -> Response {
    match models_page(&s, &q).await {
        Ok(body) => page(Some(&signed), "Models", body).into_response(),
        Err(e) => failure(Some(&signed), e),
    }
}

async fn models_page(s: &ConsoleState, q: &ModelsQuery) -> Result<Markup, ApiError> {
    let filter = ModelFilter {
        stage: some(&q.stage).map(Stage::parse).transpose()?,
        tier: some(&q.tier).map(RiskTier::parse).transpose()?,
        owner: some(&q.owner).map(str::to_owned),
    };
    let search = some(&q.q).map(str::to_lowercase);
    // Search reads on through the pages until it has a page of matches (at most 20 reads).
    let mut cursor = q.cursor.clone();
    let mut items = Vec::new();
    for _ in 0..20 {
        let p = s
            .app
            .gov
            .list_models(&filter, cursor.as_deref(), 50)
            .await?;
        cursor = p.next_cursor;
        items.extend(p.items.into_iter().filter(|m| {
            search.as_ref().is_none_or(|t| {
                m.name.as_ref().contains(t.as_str())
                    || m.description.to_lowercase().contains(t.as_str())
            })
        }));
        if search.is_none() || items.len() >= 50 || cursor.is_none() {
            break;
        }
    }
    let more = cursor.map(|c| {
        let mut link = format!("/console/models?cursor={c}");
        for (k, v) in [
            ("stage", &q.stage),
            ("tier", &q.tier),
            ("owner", &q.owner),
            ("q", &q.q),
        ] {
            if let Some(v) = some(v) {
                link.push_str(&format!("&{k}={}", urlencode(v)));
            }
        }
        link
    });
    Ok(html! {
        h1 { "Models" }
        form.filters method="get" action="/console/models" {
            label { "Search " input type="search" name="q" value=(some(&q.q).unwrap_or_default()); }
            label { "Stage " select name="stage" {
                option value="" { "any" }
                @for st in Stage::ALL { option value=(st.as_str()) selected[some(&q.stage) == Some(st.as_str())] { (st.as_str()) } }
            } }
            label { "Tier " select name="tier" {
                option value="" { "any" }
                @for t in RiskTier::ALL { option value=(t.as_str()) selected[some(&q.tier) == Some(t.as_str())] { (t.as_str()) } }
            } }
            label { "Owner team " input type="text" name="owner" value=(some(&q.owner).unwrap_or_default()); }
            button type="submit" { "Filter" }
        }
        @if items.is_empty() { p.empty { "No models match." } } @else {
            table.models {
                thead { tr { th { "Model" } th { "Owner" } th { "Tier" } th { "Latest" } th { "In production" } } }
                tbody { @for m in &items { tr {
                    td { a href=(format!("/console/models/{}", m.name.as_ref())) { (m.name.as_ref()) } }
                    td { (m.owner.team) }
                    td { (m.risk_tier.as_str()) }
                    td { (m.latest_version.to_string()) }
                    td { @if let Some(v) = m.production_version { "version " (v.to_string()) } @else { "—" } }
                } } }
            }
        }
        @if let Some(link) = more { p { a href=(link) { "More" } } }
    })
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Production's history, newest first: `(version, since)` walked back through the
/// `production?at` answers (at most `limit` changes).
async fn timeline(
    s: &ConsoleState,
    name: &str,
    limit: usize,
) -> Result<Vec<(Option<VersionNumber>, DateTime<Utc>)>, ApiError> {
    let mut out = Vec::new();
    let mut at = Utc::now();
    for _ in 0..limit {
        let p = s.app.gov.production_at(name, at).await?;
        let Some(since) = p.since else { break };
        out.push((p.version, since));
        at = since - Duration::microseconds(1);
    }
    Ok(out)
}

/// The timeline as an SVG bar: one segment per version, from when it started serving.
fn timeline_svg(segments: &[(Option<VersionNumber>, DateTime<Utc>)]) -> Markup {
    let now = Utc::now();
    let Some(first) = segments.last().map(|s| s.1) else {
        return html! { p.empty { "Never in production." } };
    };
    let span = (now - first).num_milliseconds().max(1) as f64;
    let x = |t: DateTime<Utc>| 20.0 + 760.0 * ((t - first).num_milliseconds() as f64 / span);
    let palette = [
        "#1f5fbf", "#1e7b34", "#8a4fbf", "#b86e00", "#2a8a8a", "#a4262c",
    ];
    html! {
        svg.timeline role="img" viewBox="0 0 800 70" width="100%" xmlns="http://www.w3.org/2000/svg" {
            title { "Which version served production when" }
            @for (i, (v, since)) in segments.iter().rev().enumerate() {
                @let end = segments.iter().rev().nth(i + 1).map(|s| s.1).unwrap_or(now);
                @let (x0, x1) = (x(*since), x(end).max(x(*since) + 2.0));
                rect x=(format!("{x0:.1}")) y="10" width=(format!("{:.1}", x1 - x0)) height="28"
                    fill=(v.map(|v| palette[(v.get() as usize) % palette.len()]).unwrap_or("#d8dce3")) {
                    title { @if let Some(v) = v { "version " (v.to_string()) } @else { "nothing" } " from " (since.to_rfc3339()) }
                }
                text x=(format!("{:.1}", x0 + 3.0)) y="29" fill="#fff" font-size="12" {
                    @if let Some(v) = v { "v" (v.to_string()) }
                }
                text x=(format!("{x0:.1}")) y="56" fill="#5b6474" font-size="10" { (since.format("%Y-%m-%d %H:%M")) }
            }
        }
    }
}

/// `GET /console/models/{name}`
pub async fn model(
    State(s): State<ConsoleState>,
    signed: Signed,
    Path(name): Path<String>,
) -> Response {
    let body = async {
        let d = s.app.gov.model_detail(&name).await?;
        let segments = timeline(&s, &name, 50).await?;
        Ok::<_, ApiError>(html! {
            h1 { (d.model.name.as_ref()) }
            p.summary { (d.model.description) " — owner " (d.model.owner.team) " (" (d.model.owner.contact) "), risk tier " (d.model.risk_tier.as_str()) "." }
            section #timeline { h2 { "Production timeline" } (timeline_svg(&segments)) }
            section #versions {
                h2 { "Versions" }
                table { thead { tr { th { "Version" } th { "Stage" } th { "Registered" } th { "By" } } }
                    tbody { @for v in d.versions.iter().rev() { tr {
                        td { a href=(format!("/console/models/{}/versions/{}", v.name.as_ref(), v.version)) { (v.version.to_string()) } }
                        td { (v.stage.as_str()) }
                        td { (v.registered_at.format("%Y-%m-%d %H:%M UTC")) }
                        td { (v.registered_by.to_string()) }
                    } } }
                }
            }
        })
    }
    .await;
    match body {
        Ok(b) => page(Some(&signed), &name, b).into_response(),
        Err(e) => failure(Some(&signed), e),
    }
}

/// `(path, value)` of every leaf of a JSON value, for a field-by-field diff.
fn leaves(v: &Value, at: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| leaves(v, format!("{at}.{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| leaves(v, format!("{at}[{i}]"), out)),
        other => out.push((
            at,
            match other {
                Value::String(s) => s.clone(),
                o => o.to_string(),
            },
        )),
    }
}

/// What changed between two cards: `(field, before, after)`.
pub(super) fn card_diff(before: &Value, after: &Value) -> Vec<(String, String, String)> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    leaves(before, "card".into(), &mut a);
    leaves(after, "card".into(), &mut b);
    let a: std::collections::BTreeMap<_, _> = a.into_iter().collect();
    let b: std::collections::BTreeMap<_, _> = b.into_iter().collect();
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            (
                k.clone(),
                a.get(k).cloned().unwrap_or_default(),
                b.get(k).cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// A version's latest check reports. Every value is text (escaped); a details URL becomes a
/// link only when it is http(s), never `javascript:` or the like.
fn checks(results: &[CheckResult]) -> Markup {
    let link = |u: &str| u.starts_with("https://") || u.starts_with("http://");
    html! {
        @if results.is_empty() { p.empty { "None reported." } } @else {
            table.checks {
                thead { tr { th { "Check" } th { "Status" } th { "Environment" } th { "Metrics" } th { "Evidence" } th { "Reported" } th { "Details" } } }
                tbody { @for c in results { tr {
                    td { (c.name.as_str()) }
                    td { @match c.status {
                        CheckStatus::Passed => span.pass { "passed" },
                        CheckStatus::Failed => span.fail { "failed" },
                    } }
                    td { (c.environment.map_or("—", |e| e.as_str())) }
                    td { @if c.metrics.is_empty() { "—" } @for (k, x) in &c.metrics { code { (k) "=" (x) } " " } }
                    td { @if let Some(e) = &c.evidence { (e.uri) " " code { (e.sha256.to_string()) } } @else { "—" } }
                    td { "by " (c.reported_by.to_string()) " at " (c.reported_at.format("%Y-%m-%d %H:%M UTC")) @if c.reports > 1 { " (report " (c.reports) ")" } }
                    td { @match c.details_url.as_deref() {
                        Some(u) if link(u) => a href=(u) rel="noopener noreferrer" { "details" },
                        Some(u) => (u),
                        None => "—",
                    } }
                } } }
            }
        }
    }
}

/// `GET /console/models/{name}/versions/{version}`
pub async fn version(
    State(s): State<ConsoleState>,
    signed: Signed,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    let body = async {
        let number = VersionNumber::parse(&version)?;
        let gov = &s.app.gov;
        let d = gov.version_detail(&name, number).await?;
        let revisions = gov.card_revisions(&name, number).await?;
        let staging = gov.gate(&name, number, Environment::Staging).await?;
        let production = gov.gate(&name, number, Environment::Production).await?;
        let v = &d.version;
        let cards: Vec<Value> = revisions.iter().map(|r| serde_json::to_value(&r.card).unwrap_or(Value::Null)).collect();
        Ok::<_, ApiError>(html! {
            h1 { a href=(format!("/console/models/{}", v.name.as_ref())) { (v.name.as_ref()) } " version " (v.version.to_string()) }
            p.summary { "Stage " strong { (v.stage.as_str()) } @if d.serving { ", serving production" } ". Artifact " code { (v.artifact.uri) } " " code { (v.artifact.sha256.to_string()) } }
            section #gates {
                h2 { "Gates" }
                @for (env, g) in [("staging", &staging), ("production", &production)] {
                    h3 { (env) ": " @if g.allowed { span.pass { "allowed" } } @else { span.fail { "not allowed" } } }
                    @if !g.reasons.is_empty() { ul { @for r in &g.reasons { li { (r) } } } }
                }
            }
            section #evaluations { h2 { "Evaluations" } (evaluations(v, s.app.gov.policy())) }
            section #checks { h2 { "Checks" } (checks(&v.checks)) }
            section #promotions {
                h2 { "Promotions" }
                @if d.promotions.is_empty() { p.empty { "None." } }
                @for p in &d.promotions {
                    h3 { "To " (p.target.as_str()) ": " (p.status.as_str()) }
                    ul { @for r in &p.reviews { li {
                        (r.stage.as_str()) ": " (r.status.as_str())
                        @if let Some(by) = &r.decided_by { " by " (by.to_string()) }
                        @if r.status == steward_core::records::ReviewStatus::Pending { " — " a href=(format!("/console/reviews/{}", r.id)) { "open" } }
                    } } }
                }
            }
            section #deployments {
                h2 { "Deployments" }
                @if v.deployments.is_empty() { p.empty { "None." } }
                ul { @for dep in &v.deployments { li { (dep.environment.as_str()) " by " (dep.deployed_by.to_string()) " at " (dep.deployed_at.format("%Y-%m-%d %H:%M UTC")) } } }
            }
            section #card-revisions {
                h2 { "Card revisions" }
                @for (i, r) in revisions.iter().enumerate() {
                    h3 { "Revision " (r.card_revision) " by " (r.author.to_string()) " at " (r.at.format("%Y-%m-%d %H:%M UTC")) }
                    @if i > 0 {
                        table.diff { thead { tr { th { "Field" } th { "Before" } th { "After" } } }
                            tbody { @for (f, a, b) in card_diff(&cards[i - 1], &cards[i]) { tr { td { code { (f) } } td.before { (a) } td.after { (b) } } } } }
                    }
                }
            }
            section #card { h2 { "Model card" } (value(&serde_json::to_value(&v.card).unwrap_or(Value::Null))) }
        })
    }
    .await;
    match body {
        Ok(b) => page(Some(&signed), &name, b).into_response(),
        Err(e) => failure(Some(&signed), e),
    }
}
