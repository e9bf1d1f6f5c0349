//! `steward demo`: the whole governed life of a high-risk model, acted out by eight people
//! against a real server on 127.0.0.1, through the same HTTP client as the subcommands.
//!
//! Invariants: the demo starts from an empty data directory; every step states what it expects
//! (a success, or a refusal with a given status and code) and the demo stops with an error at
//! the first step that behaves otherwise; tokens stay in memory (and in the data directory's
//! private `tokens.txt`), never on screen.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use steward_core::types::{Decision, Environment, Role, Sha256, SignalKind};
use steward_core::Policy;
use steward_local::Embedded;

use crate::cli::DemoArgs;
use crate::client::{items, ApiError, Client, ClientError};
use crate::principals_file::{self, Credential};
use crate::render::short;
use crate::{server, verify};

/// The registration manifest of version 1 (DESIGN.md's example), compiled in.
const MANIFEST_V1: &str = include_str!("credit-risk-v1.json");
const MODEL: &str = "credit-risk";

/// Who is who in the demo, and why they hold their roles.
const CAST: &[(&str, &[Role], &str)] = &[
    (
        "ada",
        &[Role::Admin],
        "manages principals and policy; decides no reviews",
    ),
    (
        "dana",
        &[Role::Developer, Role::TechnicalReviewer],
        "data scientist; also reviews other teams' models",
    ),
    (
        "tom",
        &[Role::TechnicalReviewer, Role::BusinessReviewer],
        "ML lead",
    ),
    ("bea", &[Role::BusinessReviewer], "head of underwriting"),
    (
        "carl",
        &[Role::ComplianceReviewer],
        "model risk and compliance",
    ),
    ("rita", &[Role::ReleaseManager], "release manager"),
    (
        "otto",
        &[Role::Operator],
        "on-call operator; monitoring signals",
    ),
    ("audrey", &[Role::Auditor], "internal audit"),
];

/// Prints the numbered steps.
struct Script {
    n: usize,
}

impl Script {
    fn step(&mut self, text: impl Display) {
        self.n += 1;
        println!("\n{:>2}. {text}", self.n);
    }
    fn ok(&self, text: impl Display) {
        println!("    ✓ {text}");
    }
    fn refused(&self, e: &ApiError) {
        println!("    ✗ refused, as it must be: {} {}", e.status, e.code);
        // The details are what the message summarises; show them instead when there are any.
        if e.details.is_empty() {
            println!("      {}", e.message);
        }
        for d in &e.details {
            println!("      {d}");
        }
    }
    fn info(&self, text: impl Display) {
        println!("      {text}");
    }
}

fn describe(e: &ClientError) -> String {
    let mut s = e.to_string();
    if let Some(api) = e.api() {
        for d in &api.details {
            s.push_str(&format!("; {d}"));
        }
    }
    s
}

/// Expects a success.
fn ok(r: Result<Value, ClientError>, what: &str) -> anyhow::Result<Value> {
    r.map_err(|e| anyhow!("{what}: expected success, got {}", describe(&e)))
}

/// Expects a refusal with exactly this status and code.
fn refused(
    r: Result<Value, ClientError>,
    status: u16,
    code: &str,
    what: &str,
) -> anyhow::Result<ApiError> {
    match r {
        Ok(_) => bail!("{what}: expected {status} {code}, but the API accepted it"),
        Err(ClientError::Api(e)) if e.status == status && e.code == code => Ok(e),
        Err(e) => bail!("{what}: expected {status} {code}, got {}", describe(&e)),
    }
}

fn check(cond: bool, what: impl Display) -> anyhow::Result<()> {
    if cond {
        Ok(())
    } else {
        bail!("unexpected: {what}")
    }
}

/// Shortens the long hex run in an id: `pr-3f9a1c2e…-technical`.
fn short_id(id: &str) -> String {
    let b = id.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_hexdigit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            if i - start >= 16 {
                return format!("{}{}…{}", &id[..start], &id[start..start + 8], &id[i..]);
            }
        } else {
            i += 1;
        }
    }
    id.to_owned()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("-")
}

fn time_of(v: &Value) -> anyhow::Result<DateTime<Utc>> {
    let t = v
        .as_str()
        .ok_or_else(|| anyhow!("expected a time, got {v}"))?;
    Ok(DateTime::parse_from_rfc3339(t)
        .with_context(|| format!("{t} is not RFC 3339"))?
        .with_timezone(&Utc))
}

/// When a version was last deployed to production, from its deployment records.
fn production_deployed_at(version: &Value) -> anyhow::Result<DateTime<Utc>> {
    let d = version["deployments"]
        .as_array()
        .and_then(|ds| ds.iter().rev().find(|d| d["environment"] == "production"))
        .ok_or_else(|| anyhow!("the version has no production deployment"))?;
    time_of(&d["deployed_at"])
}

fn fake_sha(label: &str) -> String {
    Sha256::digest(label.as_bytes()).to_hex()
}

/// Version 2: retrained on newer data, with version 1 as its parent.
fn manifest_v2(v1: &Value) -> Value {
    let mut m = v1.clone();
    m["artifact"] = json!({
        "uri": "s3://acme-models/credit-risk/2/model.tar.gz",
        "sha256": fake_sha("credit-risk v2 model.tar.gz"),
        "size_bytes": 49_003_118,
    });
    m["lineage"]["code"]["commit"] = json!("8c2e91d04b7a5f3362e1d0c9b8a7f6e5d4c3b2a1");
    m["lineage"]["training_data"] = json!([{
        "uri": "s3://acme-data/credit/applications-2025h2-2026h1.parquet",
        "sha256": fake_sha("applications-2025h2-2026h1.parquet"),
        "period": {"from": "2025-07-01", "to": "2026-06-30"},
    }]);
    m["lineage"]["training_job"] = json!(
        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/credit-risk/execution/7p3m2q8rz4cd"
    );
    m["lineage"]["parent_version"] = json!(1);
    m["evaluations"] = json!([{
        "name": "holdout-2026q3",
        "dataset": {"uri": "s3://acme-data/credit/holdout-2026q3.parquet", "sha256": fake_sha("holdout-2026q3.parquet")},
        "metrics": {"auc": 0.921, "accuracy": 0.881, "ks": 0.63},
        "slices": [
            {"group": "age:18-29", "metrics": {"auc": 0.909}},
            {"group": "age:30-59", "metrics": {"auc": 0.924}},
            {"group": "age:60+", "metrics": {"auc": 0.915}},
        ],
    }]);
    m["card"]["training_data"]["period"] = json!({"from": "2025-07-01", "to": "2026-06-30"});
    m["card"]["evaluation"] = json!({
        "summary": "AUC 0.921 on the 2026 Q3 out-of-time holdout; retrained after PSI drift on live traffic.",
        "evaluations": ["holdout-2026q3"],
    });
    m
}

fn staging_evaluation(version: u32, auc: f64) -> Value {
    json!({
        "name": format!("staging-shadow-v{version}"),
        "dataset": {
            "uri": format!("s3://acme-data/credit/staging-shadow-v{version}.parquet"),
            "sha256": fake_sha(&format!("staging-shadow-v{version}.parquet")),
        },
        "metrics": {"auc": auc, "accuracy": 0.87},
        "environment": "staging",
    })
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The data directory: `--keep DIR` (empty or new) or a temporary directory.
fn data_dir(keep: Option<&Path>) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match keep {
        Some(dir) => {
            if dir.exists()
                && std::fs::read_dir(dir)
                    .with_context(|| format!("reading {}", dir.display()))?
                    .next()
                    .is_some()
            {
                bail!(
                    "--keep {}: the directory is not empty; the demo needs a fresh one",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            Ok((dir.to_owned(), None))
        }
        None => {
            let tmp = tempfile::Builder::new().prefix("steward-demo-").tempdir()?;
            Ok((tmp.path().to_owned(), Some(tmp)))
        }
    }
}

/// The actors' clients, by name.
struct Cast {
    clients: BTreeMap<&'static str, Client>,
}

impl Cast {
    fn as_(&self, name: &str) -> &Client {
        &self.clients[name]
    }
}

/// Approves one review as `who`, expecting success; returns the promotion.
async fn approve(
    cast: &Cast,
    who: &str,
    review_id: &str,
    comment: &str,
    conditions: &[String],
) -> anyhow::Result<Value> {
    ok(
        cast.as_(who)
            .decide(review_id, Decision::Approve, Some(comment), conditions)
            .await,
        &format!("{who} approving {review_id}"),
    )
}

fn review_id(promotion: &Value, stage: &str) -> anyhow::Result<String> {
    promotion["reviews"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["stage"] == stage))
        .and_then(|r| r["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the promotion has no {stage} review"))
}

/// `steward demo`
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (dir, tmp) = data_dir(args.keep.as_deref())?;

    // The cast: a principals file and private tokens file, exactly as `steward serve` reads them.
    let creds: Vec<Credential> = CAST
        .iter()
        .map(|(name, roles, _)| Credential::new(name, roles))
        .collect::<anyhow::Result<_>>()?;
    let principals_path = dir.join(principals_file::PRINCIPALS_FILE);
    principals_file::write_with_tokens(
        &principals_path,
        &dir.join(principals_file::TOKENS_FILE),
        &creds,
    )?;
    let entries = steward_local::load_principals(&principals_path)?;

    let embedded = Embedded::open(&dir, Policy::default()).await?;
    embedded.seed_principals(&entries).await?;
    let running =
        server::start(&embedded, server::tokens(&entries), "127.0.0.1:0".parse()?).await?;
    let url = running.url();
    let clients = creds
        .iter()
        .map(|c| {
            let name = CAST
                .iter()
                .find(|(n, ..)| *n == c.name.as_ref())
                .map(|(n, ..)| *n);
            Ok((
                name.expect("every credential is in the cast"),
                Client::new(&url, Some(&c.token))?,
            ))
        })
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    let cast = Cast { clients };

    println!("Steward demo: the governed life of a high-risk credit model, through the HTTP API");
    println!(
        "server {url}, data in {}{}",
        dir.display(),
        if tmp.is_some() { " (temporary)" } else { "" }
    );
    println!("\nWho is who (each holds a bearer token; tokens are never shown):");
    let width = CAST.iter().map(|(n, ..)| n.len()).max().unwrap_or(0);
    let rwidth = CAST
        .iter()
        .map(|(_, r, _)| roles_text(r).len())
        .max()
        .unwrap_or(0);
    for (name, roles, about) in CAST {
        println!("  {name:<width$}  {:<rwidth$}  {about}", roles_text(roles));
    }

    let mut script = Script { n: 0 };
    let outcome = act(&cast, &mut script).await;
    let stopped = running.stop().await;
    drop(embedded);
    let online = outcome?;
    stopped?;

    // Offline: straight from the SQLite store, with the server gone.
    script.step("the server stops; audrey verifies the data directory offline, straight from the SQLite store");
    let offline = verify::offline(&dir, None)?;
    check(
        offline.root == online.root && offline.size == online.size,
        "the offline root differs from the one the API proved",
    )?;
    let checkpoints = offline.checkpoints.unwrap_or(0);
    script.ok(format!(
        "verified: {} events, {checkpoints} signed checkpoint{}, root {} — the same root the API proved",
        offline.events,
        if checkpoints == 1 { "" } else { "s" },
        short(&hex::encode(offline.root))
    ));

    println!(
        "\nDemo complete in {:.1}s: every step behaved as the governance rules require.",
        started.elapsed().as_secs_f64()
    );
    match tmp {
        Some(tmp) => drop(tmp),
        None => {
            println!("The data directory is kept in {}:", dir.display());
            println!(
                "  steward serve --data {}        (tokens in tokens.txt there)",
                dir.display()
            );
            println!("  steward audit verify --data {}", dir.display());
        }
    }
    Ok(())
}

/// Every step but the last, through the API; returns the online verification report.
async fn act(cast: &Cast, sc: &mut Script) -> anyhow::Result<verify::Report> {
    let v1_manifest: Value = serde_json::from_str(MANIFEST_V1).context("the built-in manifest")?;

    // 1. A card with a missing section is refused.
    sc.step(format!(
        "dana registers {MODEL}, but its model card has no rollback section"
    ));
    let mut incomplete = v1_manifest.clone();
    incomplete["card"]
        .as_object_mut()
        .ok_or_else(|| anyhow!("the manifest has no card"))?
        .remove("rollback");
    let e = refused(
        cast.as_("dana").register(MODEL, &incomplete, None).await,
        422,
        "validation_failed",
        "registering without card.rollback",
    )?;
    check(
        e.details
            .iter()
            .any(|d| d.field.as_deref() == Some("card.rollback")),
        "the refusal names card.rollback",
    )?;
    sc.refused(&e);

    // 2. The complete manifest registers version 1.
    sc.step(format!(
        "dana registers {MODEL} with a complete card, lineage and evaluation"
    ));
    let v1 = ok(
        cast.as_("dana")
            .register(MODEL, &v1_manifest, Some("credit-risk-v1"))
            .await,
        "registering version 1",
    )?;
    check(
        v1["version"] == 1 && v1["stage"] == "development",
        "version 1 in development",
    )?;
    sc.ok(format!(
        "201 Created: {MODEL} version 1, {} risk, stage {}",
        s(&v1, "risk_tier"),
        s(&v1, "stage")
    ));
    sc.info(format!(
        "manifest sha256 {}  artifact sha256 {}  training data sha256 {}",
        short(s(&v1, "manifest_sha256")),
        short(v1["artifact"]["sha256"].as_str().unwrap_or("-")),
        short(
            v1["lineage"]["training_data"][0]["sha256"]
                .as_str()
                .unwrap_or("-")
        ),
    ));

    // 3. The CI gate says no before any approval.
    sc.step("the CI pipeline asks the gate whether version 1 may deploy to staging");
    let gate = ok(
        cast.as_("dana").gate(MODEL, 1, Environment::Staging).await,
        "gate",
    )?;
    check(
        gate["allowed"] == false,
        "the staging gate is closed before approval",
    )?;
    sc.ok("gate closed (`steward gate` exits 1), because:");
    for r in gate["reasons"].as_array().into_iter().flatten() {
        sc.info(format!("- {}", r.as_str().unwrap_or("-")));
    }

    // 4-6. Staging: technical review, deployment.
    sc.step("dana requests promotion of version 1 to staging");
    let p = ok(
        cast.as_("dana")
            .promote(MODEL, 1, Environment::Staging)
            .await,
        "staging promotion",
    )?;
    check(p["status"] == "in_review", "the promotion is in review")?;
    let stages: Vec<&str> = p["reviews"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| s(r, "stage"))
        .collect();
    check(
        stages == ["technical"],
        "staging needs the technical review only",
    )?;
    sc.ok(format!(
        "202 Accepted: promotion {} needs the {} review",
        short_id(s(&p, "id")),
        stages.join(", ")
    ));

    sc.step("tom finds the review in his queue and approves it");
    let queue = ok(
        cast.as_("tom").reviews(None, None, None).await,
        "tom's review queue",
    )?;
    let rid = items(&queue)
        .iter()
        .find(|r| r["promotion_id"] == p["id"] && r["stage"] == "technical")
        .and_then(|r| r["id"].as_str())
        .ok_or_else(|| anyhow!("tom's queue lacks the technical review"))?
        .to_owned();
    let p = approve(
        cast,
        "tom",
        &rid,
        "Code, lineage and the holdout evaluation check out.",
        &[],
    )
    .await?;
    check(
        p["status"] == "approved",
        "the staging promotion is approved",
    )?;
    sc.ok(format!(
        "review {} approved; promotion approved for staging",
        short_id(&rid)
    ));

    sc.step("dana deploys version 1 to staging");
    let v = ok(
        cast.as_("dana")
            .deploy(MODEL, 1, Environment::Staging)
            .await,
        "staging deployment",
    )?;
    check(v["stage"] == "staging", "version 1 is in staging")?;
    sc.ok("deployed; version 1 is in staging");

    // 7. Evaluation on staging test data.
    sc.step("dana records an evaluation of version 1 on staging test data");
    let eval = staging_evaluation(1, 0.905);
    let v = ok(
        cast.as_("dana").add_evaluation(MODEL, 1, &eval).await,
        "staging evaluation",
    )?;
    check(
        v["evaluations"].as_array().is_some_and(|e| e.len() == 2),
        "two evaluations recorded",
    )?;
    sc.ok(format!(
        "recorded {}: auc 0.905 (the card promises at least 0.85), dataset sha256 {}",
        s(&eval, "name"),
        short(eval["dataset"]["sha256"].as_str().unwrap_or("-"))
    ));

    // 8-12. Production promotion: four reviews by four people.
    sc.step("dana requests promotion of version 1 to production");
    let p = ok(
        cast.as_("dana")
            .promote(MODEL, 1, Environment::Production)
            .await,
        "production promotion",
    )?;
    let stages: Vec<&str> = p["reviews"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| s(r, "stage"))
        .collect();
    check(
        stages == ["technical", "business", "compliance", "deployment"],
        "a high-risk production promotion needs all four reviews",
    )?;
    sc.ok(format!(
        "202 Accepted: promotion {} needs {} reviews: {}",
        short_id(s(&p, "id")),
        stages.len(),
        stages.join(", ")
    ));

    sc.step("dana, who holds the technical-reviewer role, tries to approve her own model (self-approval)");
    let tech = review_id(&p, "technical")?;
    let e = refused(
        cast.as_("dana")
            .decide(&tech, Decision::Approve, Some("Looks good to me."), &[])
            .await,
        403,
        "separation_of_duties",
        "self-approval",
    )?;
    sc.refused(&e);

    sc.step("tom approves the technical review, then tries to approve the business review as well");
    approve(
        cast,
        "tom",
        &tech,
        "Reproduced the holdout AUC from the recorded lineage.",
        &[],
    )
    .await?;
    sc.ok("technical review approved by tom");
    let business = review_id(&p, "business")?;
    let e = refused(
        cast.as_("tom")
            .decide(
                &business,
                Decision::Approve,
                Some("Business case is fine."),
                &[],
            )
            .await,
        403,
        "separation_of_duties",
        "one person approving two stages",
    )?;
    sc.refused(&e);

    sc.step("bea (business), carl (compliance, with a condition) and rita (deployment) approve");
    approve(
        cast,
        "bea",
        &business,
        "Fits the underwriting process; humans keep the final say.",
        &[],
    )
    .await?;
    sc.ok("business review approved by bea");
    let condition = "re-run the fairness analysis every quarter".to_owned();
    approve(
        cast,
        "carl",
        &review_id(&p, "compliance")?,
        "Disparities are documented and within tolerance.",
        std::slice::from_ref(&condition),
    )
    .await?;
    sc.ok(format!(
        "compliance review approved by carl, on condition: {condition}"
    ));
    let p = approve(
        cast,
        "rita",
        &review_id(&p, "deployment")?,
        "Rollback procedure and monitoring thresholds are in place.",
        &[],
    )
    .await?;
    check(
        p["status"] == "approved",
        "the production promotion is approved",
    )?;
    sc.ok("deployment review approved by rita; promotion approved for production by 4 distinct people");

    // 13. Production deployment.
    sc.step("the gate now allows production; rita deploys version 1 to production");
    let gate = ok(
        cast.as_("rita")
            .gate(MODEL, 1, Environment::Production)
            .await,
        "gate",
    )?;
    check(gate["allowed"] == true, "the production gate is open")?;
    let v = ok(
        cast.as_("rita")
            .deploy(MODEL, 1, Environment::Production)
            .await,
        "production deployment",
    )?;
    check(v["stage"] == "production", "version 1 is in production")?;
    let v1_live = production_deployed_at(&v)?;
    sc.ok(format!(
        "gate open; version 1 serves production since {}",
        v1_live.format("%H:%M:%S%.3f")
    ));

    // 14. Drift requests retraining.
    sc.step("otto reports input drift on version 1: psi = 0.27 (the card allows at most 0.2)");
    let out = ok(
        cast.as_("otto")
            .signal(MODEL, 1, SignalKind::Drift, "psi", 0.27)
            .await,
        "drift signal",
    )?;
    check(out["breached"] == true, "the drift threshold is breached")?;
    check(
        out["actions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "retraining_requested")),
        "retraining is requested",
    )?;
    sc.ok(format!(
        "incident {} opened; RetrainingRequested emitted for the training pipeline",
        short_id(out["incident"]["id"].as_str().unwrap_or("-"))
    ));

    // 15-17. Version 2: retrained, through the same reviews.
    sc.step("dana registers version 2, retrained on newer data, with version 1 as its parent");
    let v2_manifest = manifest_v2(&v1_manifest);
    let v2 = ok(
        cast.as_("dana").register(MODEL, &v2_manifest, None).await,
        "registering version 2",
    )?;
    check(
        v2["version"] == 2 && v2["lineage"]["parent_version"] == 1,
        "version 2 descends from version 1",
    )?;
    sc.ok(format!(
        "201 Created: version 2 (lineage.parent_version = 1), artifact sha256 {}",
        short(v2["artifact"]["sha256"].as_str().unwrap_or("-"))
    ));

    sc.step("version 2 goes to staging: dana requests, tom approves, dana deploys and evaluates");
    let p = ok(
        cast.as_("dana")
            .promote(MODEL, 2, Environment::Staging)
            .await,
        "v2 staging promotion",
    )?;
    approve(
        cast,
        "tom",
        &review_id(&p, "technical")?,
        "Retraining diff reviewed.",
        &[],
    )
    .await?;
    ok(
        cast.as_("dana")
            .deploy(MODEL, 2, Environment::Staging)
            .await,
        "v2 staging deployment",
    )?;
    ok(
        cast.as_("dana")
            .add_evaluation(MODEL, 2, &staging_evaluation(2, 0.917))
            .await,
        "v2 staging evaluation",
    )?;
    sc.ok("technical review approved by tom; deployed to staging; staging auc 0.917 recorded");

    sc.step(
        "version 2 goes to production: the same four reviews by four people, then rita deploys",
    );
    let p = ok(
        cast.as_("dana")
            .promote(MODEL, 2, Environment::Production)
            .await,
        "v2 production promotion",
    )?;
    for (who, stage) in [
        ("tom", "technical"),
        ("bea", "business"),
        ("carl", "compliance"),
        ("rita", "deployment"),
    ] {
        approve(cast, who, &review_id(&p, stage)?, "Reviewed.", &[]).await?;
    }
    let p = ok(
        cast.as_("dana").promotion(s(&p, "id")).await,
        "reading the promotion",
    )?;
    check(
        p["status"] == "approved",
        "the v2 production promotion is approved",
    )?;
    let approvers: Vec<String> = p["reviews"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("{} by {}", s(r, "stage"), s(r, "decided_by")))
        .collect();
    sc.ok(format!("approved: {}", approvers.join(", ")));
    let v = ok(
        cast.as_("rita")
            .deploy(MODEL, 2, Environment::Production)
            .await,
        "v2 production deployment",
    )?;
    let v2_live = production_deployed_at(&v)?;
    let m = ok(cast.as_("rita").model(MODEL).await, "reading the model")?;
    check(m["production_version"] == 2, "version 2 serves production")?;
    sc.ok(format!(
        "version 2 serves production since {}; version 1 stays approved as the rollback target",
        v2_live.format("%H:%M:%S%.3f")
    ));

    // 18. Quality under threshold: automatic rollback.
    sc.step("otto reports live quality on version 2: auc = 0.79 (the card requires at least 0.85)");
    let out = ok(
        cast.as_("otto")
            .signal(MODEL, 2, SignalKind::Quality, "auc", 0.79)
            .await,
        "quality signal",
    )?;
    let actions: Vec<&str> = out["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    check(
        actions.contains(&"rolled_back_to:1"),
        "production is rolled back to version 1",
    )?;
    let incident_at = time_of(&out["incident"]["opened_at"])?;
    sc.ok(format!(
        "incident {} opened, owners alerted, production automatically rolled back to version 1",
        short_id(out["incident"]["id"].as_str().unwrap_or("-"))
    ));

    // 19. Point-in-time production answers.
    sc.step("which version served production when? (GET /v1/models/credit-risk/production?at=...)");
    let asks = [
        (
            "before the first deployment",
            v1_live - Duration::seconds(1),
            None::<u64>,
        ),
        (
            "while version 1 served",
            v1_live + (v2_live - v1_live) / 2,
            Some(1),
        ),
        (
            "while version 2 served",
            v2_live + (incident_at - v2_live) / 2,
            Some(2),
        ),
        (
            "now, after the rollback",
            Utc::now() + Duration::milliseconds(1),
            Some(1),
        ),
    ];
    for (label, at, expected) in asks {
        let ans = ok(
            cast.as_("audrey").production(MODEL, Some(at)).await,
            "production?at",
        )?;
        let got = ans["version"].as_u64();
        check(
            got == expected,
            format!("production at {at} should be {expected:?}, got {got:?}"),
        )?;
        sc.ok(format!(
            "at={}  -> {}  ({label})",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            got.map_or("no version".to_owned(), |v| format!("version {v}"))
        ));
    }

    // 20-21. Retirement.
    sc.step(
        "dana tries to retire version 1, which serves production, without naming a replacement",
    );
    let e = refused(
        cast.as_("dana")
            .retire(MODEL, 1, "superseded by version 2", None)
            .await,
        422,
        "policy_violation",
        "retiring the serving version without replacement",
    )?;
    sc.refused(&e);

    sc.step("dana retires version 2, which no longer serves, naming version 1 as its replacement");
    let v = ok(
        cast.as_("dana")
            .retire(
                MODEL,
                2,
                "auc fell to 0.79 on live traffic; version 1 restored",
                Some(1),
            )
            .await,
        "retiring version 2",
    )?;
    check(v["stage"] == "retired", "version 2 is retired")?;
    sc.ok(format!(
        "version 2 retired (replacement: version {}); version 1 serves production",
        v["retirement"]["replacement"]
    ));

    // 22. Incidents.
    sc.step("otto lists the incidents of credit-risk");
    let incs = ok(
        cast.as_("otto").incidents(Some(MODEL), None, None).await,
        "incidents",
    )?;
    check(items(&incs).len() == 2, "two incidents are open")?;
    for i in items(&incs) {
        sc.ok(format!(
            "{}  version {}  {} {} = {} (threshold {})  {}",
            short_id(s(i, "id")),
            i["version"],
            s(i, "kind"),
            s(i, "metric"),
            i["value"],
            i["threshold"],
            i["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    // 23. ada manages principals but cannot approve.
    sc.step("ada (admin) lists the principals and their roles");
    let ps = ok(cast.as_("ada").principals().await, "principals")?;
    check(
        items(&ps).len() == CAST.len(),
        "every cast member is a principal",
    )?;
    sc.ok(format!(
        "{} principals, seeded from principals.toml",
        items(&ps).len()
    ));

    // 24. Online audit verification.
    sc.step("audrey verifies the audit log through the API: every leaf, the signed root, every inclusion proof");
    let report = verify::online(cast.as_("audrey"), None, 8).await?;
    check(
        report
            .proofs
            .is_some_and(|(ok, total)| ok == total && total == report.events),
        "an inclusion proof verified for every event",
    )?;
    sc.ok(format!(
        "verified: {} events, {} inclusion proofs, signed root {} (key {})",
        report.events,
        report.proofs.map_or(0, |(ok, _)| ok),
        short(&hex::encode(report.root)),
        report.key_id
    ));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_shortened_around_their_hex_run() {
        assert_eq!(
            short_id("pr-0123456789abcdef0123456789abcdef-technical"),
            "pr-01234567…-technical"
        );
        assert_eq!(
            short_id("inc-0123456789abcdef0123456789abcdef"),
            "inc-01234567…"
        );
        assert_eq!(short_id("short"), "short");
    }

    #[test]
    fn the_built_in_manifests_parse_as_registrations() {
        let v1: Value = serde_json::from_str(MANIFEST_V1).unwrap();
        steward_core::manifest::Registration::parse(v1.clone()).unwrap();
        let v2 = steward_core::manifest::Registration::parse(manifest_v2(&v1)).unwrap();
        assert_eq!(v2.lineage.parent_version, Some(1));
    }
}
