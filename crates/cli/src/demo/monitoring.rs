//! Monitoring, the life in production: drift opens an incident and requests retraining;
//! version 2, retrained, passes the same reviews and replaces version 1; a quality breach
//! rolls production back to version 1 automatically; `production?at` answers which version
//! served when; the incidents are listed.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use steward_core::types::{Environment, SignalKind};

use super::manifests::{manifest_v2, staging_evaluation};
use super::script::{
    approve, check, ok, production_deployed_at, review_id, s, short_id, time_of, Cast, Script,
};
use super::MODEL;
use crate::client::items;
use crate::render::short;

/// When production changed hands, for the point-in-time questions.
pub(super) struct Timeline {
    /// Version 1 went live.
    pub(super) v1_live: DateTime<Utc>,
    /// Version 2 replaced it.
    pub(super) v2_live: DateTime<Utc>,
    /// The quality incident that rolled version 2 back opened.
    pub(super) rolled_back: DateTime<Utc>,
}

/// otto reports drift over the card's threshold: an incident, and retraining requested.
pub(super) async fn drift(cast: &Cast, sc: &mut Script) -> anyhow::Result<()> {
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

    Ok(())
}

/// dana registers version 2 (parent: version 1); it goes through staging and the four
/// production reviews, and rita deploys it. Returns when it went live.
pub(super) async fn version_two(
    cast: &Cast,
    sc: &mut Script,
    v1_manifest: &Value,
) -> anyhow::Result<DateTime<Utc>> {
    sc.step("dana registers version 2, retrained on newer data, with version 1 as its parent");
    let v2_manifest = manifest_v2(v1_manifest);
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

    Ok(v2_live)
}

/// otto reports quality under the card's minimum: production rolls back to version 1 by
/// itself. Returns when the incident opened.
pub(super) async fn automatic_rollback(
    cast: &Cast,
    sc: &mut Script,
) -> anyhow::Result<DateTime<Utc>> {
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

    Ok(incident_at)
}

/// audrey asks which version served production before, during and after each change.
pub(super) async fn production_history(
    cast: &Cast,
    sc: &mut Script,
    timeline: &Timeline,
) -> anyhow::Result<()> {
    let Timeline {
        v1_live,
        v2_live,
        rolled_back: incident_at,
    } = *timeline;
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

    Ok(())
}

/// otto lists the model's incidents: the drift and the quality breach.
pub(super) async fn incidents(cast: &Cast, sc: &mut Script) -> anyhow::Result<()> {
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

    Ok(())
}
