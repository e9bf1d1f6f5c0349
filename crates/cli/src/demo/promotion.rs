//! Promotion, version 1 through its reviews: staging needs the technical review
//! (the CI gate says no until then); production needs all four of the high tier, by four
//! different people, and refuses self-approval and one person approving two stages.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use steward_core::types::{Decision, Environment};

use super::manifests::staging_evaluation;
use super::script::{
    approve, check, ok, production_deployed_at, refused, review_id, s, short_id, Cast, Script,
};
use super::MODEL;
use crate::client::items;
use crate::render::short;

/// The gate is closed; dana requests staging, tom approves, dana deploys and evaluates.
pub(super) async fn staging(cast: &Cast, sc: &mut Script) -> anyhow::Result<()> {
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

    Ok(())
}

/// dana requests production: four reviews; self-approval and a second stage by one person
/// are refused; bea, carl (with a condition) and rita approve.
pub(super) async fn production_reviews(cast: &Cast, sc: &mut Script) -> anyhow::Result<()> {
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

    Ok(())
}

/// The gate opens and rita deploys version 1; returns when it went live.
pub(super) async fn production_deployment(
    cast: &Cast,
    sc: &mut Script,
) -> anyhow::Result<DateTime<Utc>> {
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

    Ok(v1_live)
}
