//! `document.html`: the pack's document for people, rendered from [`Document`] alone.
//!
//! Invariants: self-contained (inline style, no script, no external resource, and a CSP that
//! allows nothing else) and printable;
//! every value is escaped (maud); the output depends on the document only, so a verifier that
//! knows [`RENDERER`] renders `document.json` again and must get `document.html` byte for byte.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::document::*;

/// The template's name and revision, recorded in the document it renders.
pub const RENDERER: &str = "steward-evidence-html/1";

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;\
max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24;line-height:1.45}\
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:2px solid #d0d7de;\
padding-bottom:.2rem;margin-top:2rem}h3{font-size:1rem;margin-bottom:.3rem}\
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9rem}\
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}code{font-size:.85em;word-break:break-all}\
.meta{color:#57606a;font-size:.9rem}.signed{color:#57606a;font-size:.85rem}\
.missing{color:#cf222e}.ok{color:#1a7f37}.fail{color:#cf222e}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}table{break-inside:avoid}}";

/// `default-src 'none'` with the inline style allowed by its SHA-256 only.
fn csp() -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE));
    format!("default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'")
}

fn signed(s: &Signed) -> Markup {
    html! {
        span.signed {
            "by " strong { (s.by) } " at " (s.at) " — "
            @match s.event {
                Some(seq) => { "audit event #" (seq) }
                None => { span.missing { "no audit event recorded" } }
            }
        }
    }
}

fn list(items: &[String]) -> Markup {
    html! {
        @if items.is_empty() { p.meta { "None stated." } }
        @else { ul { @for i in items { li { (i) } } } }
    }
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn metrics(m: &std::collections::BTreeMap<String, f64>) -> Markup {
    html! {
        @for (k, v) in m { code { (k) "=" (v) } " " }
    }
}

/// The document as a printable HTML page.
pub fn render_html(d: &Document) -> String {
    let title = format!(
        "{} version {} — technical documentation",
        d.model, d.version
    );
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                // Nothing runs and nothing loads: the one inline style is allowed by its hash.
                meta http-equiv="Content-Security-Policy" content=(csp());
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (title) }
                p.meta {
                    "EU AI Act Annex IV technical documentation, produced by Steward at "
                    (d.generated_at) " for " (d.generated_by) ". Kept " (d.retention.years)
                    " years, until " (d.retention.retain_until) ". Every fact marked with an audit "
                    "event is proven by the pack's inclusion proofs against the signed checkpoint of "
                    (d.checkpoint.size) " events (root " code { (d.checkpoint.root) } ")."
                }
                (general(d))
                (development(d))
                (data(d))
                (evaluation(d))
                (oversight(d))
                (risk(d))
                (monitoring(d))
                (lifecycle(d))
            }
        }
    };
    page.into_string()
}

fn general(d: &Document) -> Markup {
    let g = &d.general;
    html! {
        section id="general" {
            h2 { "1. General description" }
            p { (g.description) }
            p { (g.overview) }
            table {
                tr { th { "Intended purpose" } td { (g.purpose) } }
                tr { th { "Intended users" } td { (g.intended_users.join(", ")) } }
                tr { th { "Out of scope" } td { (g.out_of_scope.join("; ")) } }
                tr { th { "Owner" } td { (g.owner.team) " (" (g.owner.contact) ")" } }
                tr { th { "Risk tier" } td { (g.risk_tier) } }
                tr { th { "Stage" } td { (g.stage) @if g.serving_production { " — serving production" } } }
                tr { th { "Registered" } td { (signed(&g.registration)) } }
                tr { th { "Artifact" } td { code { (g.artifact.uri) } br; "SHA-256 " code { (g.artifact.sha256) } ", " (g.artifact.size_bytes) " bytes" } }
                tr { th { "Interfaces" } td {
                    "Compute: " (g.interfaces.compute) "; p99 latency " (g.interfaces.latency_ms_p99) " ms"
                    @if let Some(src) = &g.interfaces.mlflow_source { "; MLflow source " code { (src) } }
                } }
                tr { th { "Depends on" } td {
                    @if g.dependencies.is_empty() { "nothing" }
                    @for r in &g.dependencies { (r.name) " v" (r.version) " " }
                } }
                tr { th { "Depended on by" } td {
                    @if g.dependents.is_empty() { "nothing" }
                    @for r in &g.dependents { (r.name) " v" (r.version) " " }
                } }
            }
            h3 { "Earlier versions" }
            @if g.predecessors.is_empty() { p.meta { "This is the model's first version." } }
            @else {
                table {
                    tr { th { "Version" } th { "Stage" } th { "Registered" } }
                    @for p in &g.predecessors {
                        tr { td { (p.version) } td { (p.stage) } td { (p.registered_at) " by " (p.registered_by) } }
                    }
                }
            }
        }
    }
}

fn development(d: &Document) -> Markup {
    let dev = &d.development;
    html! {
        section id="development" {
            h2 { "2. Development" }
            table {
                tr { th { "Code" } td { code { (dev.code.repository) } " at commit " code { (dev.code.commit) } } }
                tr { th { "Training job" } td { (dev.training_job.as_deref().unwrap_or("not stated")) } }
                tr { th { "Parent version" } td { @match dev.parent_version { Some(p) => { (p) } None => { "none" } } } }
                tr { th { "Hyperparameters" } td {
                    @for (k, v) in &dev.hyperparameters { code { (k) "=" (v.to_string()) } " " }
                } }
            }
            h3 { "Training data" }
            table {
                tr { th { "Dataset" } th { "SHA-256" } th { "Period" } }
                @for t in &dev.training_data {
                    tr { td { code { (t.uri) } } td { code { (t.sha256) } } td { (t.period.from) " to " (t.period.to) } }
                }
            }
            h3 { "Design choices and limitations" }
            (list(&dev.limitations))
            h3 { "Model card revisions" }
            table {
                tr { th { "Revision" } th { "SHA-256" } th { "Written" } }
                @for c in &dev.card_revisions {
                    tr { td { (c.revision) @if c.revision == dev.card_revision { " (current)" } } td { code { (c.card_sha256) } } td { (signed(&c.author)) } }
                }
            }
        }
    }
}

fn data(d: &Document) -> Markup {
    html! {
        section id="data" {
            h2 { "3. Data" }
            p { "Sources: " (d.data.sources.join(", ")) "; period " (d.data.period.from) " to " (d.data.period.to) "." }
            ul { @for t in &d.data.datasets { li { code { (t.uri) } " — SHA-256 " code { (t.sha256) } } } }
        }
    }
}

fn evaluation(d: &Document) -> Markup {
    let e = &d.evaluation;
    html! {
        section id="evaluation" {
            h2 { "4. Evaluation and testing" }
            p { (e.summary) }
            @for ev in &e.evaluations {
                h3 { (ev.name) @if let Some(env) = ev.environment { " (" (env) ")" } }
                p { "Test data " code { (ev.dataset.uri) } ", SHA-256 " code { (ev.dataset.sha256) } ". Recorded " (signed(&ev.recorded)) "." }
                p { "Metrics: " (metrics(&ev.metrics)) }
                @if !ev.slices.is_empty() {
                    table {
                        tr { th { "Group" } th { "Metrics" } }
                        @for s in &ev.slices { tr { td { (s.group) } td { (metrics(&s.metrics)) } } }
                    }
                }
            }
            h3 { "Thresholds and results" }
            table {
                tr { th { "Metric" } th { "Bound" } th { "Result" } th { "Met" } }
                @for t in &e.thresholds {
                    tr {
                        td { (t.metric) } td { (t.bound) " " (t.limit) }
                        td { @match (t.result, &t.evaluation) { (Some(r), Some(n)) => { (r) " in " (n) } _ => { "monitored in production" } } }
                        td { @match t.met { Some(true) => { span.ok { "yes" } } Some(false) => { span.fail { "no" } } None => { "—" } } }
                    }
                }
            }
            h3 { "Fairness: per-group results and known disparities" }
            table {
                tr { th { "Group" } th { "Metrics" } }
                @for g in &e.fairness.groups { tr { td { (g.group) } td { (metrics(&g.metrics)) } } }
            }
            (list(&e.fairness.known_disparities))
            h3 { "Checks reported by CI/CD" }
            @if e.checks.is_empty() { p.meta { "No checks were reported." } }
            @else {
                table {
                    tr { th { "Check" } th { "Status" } th { "Environment" } th { "Reported" } }
                    @for c in &e.checks {
                        tr {
                            td { (c.name.as_str()) } td { (format!("{:?}", c.status).to_lowercase()) }
                            td { @match c.environment { Some(env) => { (env) } None => { "any" } } }
                            td { (c.reported_by) " at " (crate::audit::format_time(c.reported_at)) }
                        }
                    }
                }
            }
        }
    }
}

fn oversight(d: &Document) -> Markup {
    html! {
        section id="oversight" {
            h2 { "5. Human oversight" }
            (list(&d.oversight.separation_of_duties))
            @if d.oversight.promotions.is_empty() { p.meta { "No promotion was requested." } }
            @for p in &d.oversight.promotions {
                h3 { "Promotion " (p.id) " to " (p.target) " — " (p.status) }
                p { "Requested " (signed(&p.requested)) "." }
                table {
                    tr { th { "Stage" } th { "Status" } th { "Decision" } th { "Conditions" } }
                    @for r in &p.reviews {
                        tr {
                            td { (r.stage) @if r.automatic { " (decided by policy)" } }
                            td { (r.status) @if r.decided.is_none() { br; span.meta { "deadline " (r.deadline) } } }
                            td {
                                @if let Some(dec) = &r.decision { strong { (dec) } " " }
                                @if let Some(s) = &r.decided { (signed(s)) }
                                @if let Some(c) = &r.comment { br; "“" (c) "”" }
                            }
                            td { (r.conditions.join("; ")) }
                        }
                    }
                }
            }
        }
    }
}

fn risk(d: &Document) -> Markup {
    let r = &d.risk;
    let stages = |s: &[crate::types::ReviewStage]| {
        s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
    };
    html! {
        section id="risk" {
            h2 { "6. Risk management and the policy in force" }
            table {
                tr { th { "Risk tier" } td { (r.tier) } }
                tr { th { "Policy digest" } td { code { (r.policy_digest) } } }
                tr { th { "Reviews for production" } td { (stages(&r.production_reviews)) } }
                tr { th { "Reviews policy may decide" } td { @if r.automatic_reviews.is_empty() { "none" } @else { (stages(&r.automatic_reviews)) } } }
                tr { th { "Checks required for staging" } td { (or_none(&r.required_checks_staging)) } }
                tr { th { "Checks required for production" } td { (or_none(&r.required_checks_production)) } }
                tr { th { "Periodic review" } td { "every " (r.periodic_review_days) " days" } }
                tr { th { "Automatic rollback" } td { @if r.auto_rollback { "on" } @else { "off" } } }
            }
        }
    }
}

fn monitoring(d: &Document) -> Markup {
    let m = &d.monitoring;
    html! {
        section id="monitoring" {
            h2 { "7. Post-market monitoring" }
            table {
                tr { th { "Quality floors" } td { @for q in &m.quality { code { (q.metric) " ≥ " (q.min) } " " } } }
                tr { th { "Drift ceilings" } td { @for q in &m.drift { code { (q.metric) " ≤ " (q.max) } " " } } }
                tr { th { "Retraining" } td { (m.retraining_pipeline.as_deref().unwrap_or("not configured")) } }
                tr { th { "Rollback procedure" } td { (m.rollback_procedure) @if let Some(t) = &m.rollback_last_tested { " (last tested " (t) ")" } } }
                tr { th { "Next periodic review" } td { (m.next_periodic_review.as_deref().unwrap_or("not scheduled (not serving production)")) } }
            }
            h3 { "Deployments" }
            @if m.deployments.is_empty() { p.meta { "Never deployed." } }
            ul { @for dep in &m.deployments { li { (dep.environment) " " (signed(&dep.deployed)) } } }
            h3 { "Incidents" }
            @if m.incidents.is_empty() { p.meta { "No incident names this version." } }
            @else {
                table {
                    tr { th { "Incident" } th { "Kind" } th { "Status" } th { "Opened" } th { "Serious (Art. 73)" } }
                    @for x in &m.incidents {
                        tr {
                            td { code { (x.id) } br; (x.summary) } td { (x.kind) } td { (x.status) } td { (x.opened_at) }
                            td {
                                @if let Some(c) = &x.serious_category { (c) }
                                @if let Some(due) = &x.report_due { br; "report due " (due) }
                                @if let Some(r) = &x.report_reference { br; "reported: " (r) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn lifecycle(d: &Document) -> Markup {
    html! {
        section id="lifecycle" {
            h2 { "8. Lifecycle changes" }
            table {
                tr { th { "Event" } th { "Time" } th { "Actor" } th { "Action" } }
                @for e in &d.lifecycle {
                    tr { td { "#" (e.seq) } td { (e.time) } td { (e.actor) } td { code { (e.action) } } }
                }
            }
        }
    }
}
