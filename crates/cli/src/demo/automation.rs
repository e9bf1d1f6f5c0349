//! Automation: a low-risk model reaches staging on policy alone. The demo's policy
//! (`policy.toml`) lets policy decide the low tier's technical review once CI has reported
//! `unit-tests` passed with enough coverage; dana's promotion request opens and waits, ci-bot
//! reports, and policy approves the promotion on that report, and the audit log shows the decision with the evidence it relied
//! on. The high-risk model's reviews stay with people, and no policy can change that.
//!
//! Invariant: the medium and high tiers of the demo's policy are exactly the default policy's,
//! so every other chapter behaves as it would without automation.

use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use steward_core::types::Environment;
use steward_core::{GovError, Policy};

use super::manifests::manifest_low_risk;
use super::script::{check, ok, s, short_id, Cast, Script};
use super::{CI, MODEL};
use crate::client::{items, next_cursor};
use crate::render::short;

/// The low-risk model this chapter promotes.
pub(super) const LOW_MODEL: &str = "support-triage";

/// The demo's policy file, compiled in.
const POLICY: &str = include_str!("policy.toml");

/// The demo's policy: the default, with the low tier's technical review automated.
pub(super) fn policy() -> anyhow::Result<Policy> {
    Policy::from_toml(POLICY).map_err(|e| anyhow!("the demo's policy.toml: {e}"))
}

/// Every audit event of `model`, oldest first, through the API as `who`.
async fn audit_of(cast: &Cast, who: &str, model: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = ok(
            cast.as_(who)
                .audit_events(Some(model), after, Some(100))
                .await,
            &format!("the audit log of {model}"),
        )?;
        out.extend(items(&page).iter().cloned());
        match next_cursor(&page) {
            Some(c) => after = c.parse().context("the audit cursor")?,
            None => return Ok(out),
        }
    }
}

/// dana registers a low-risk model and asks for staging before CI has reported; the review
/// waits for policy, which approves it the moment ci-bot's passing unit-tests report arrives;
/// dana deploys it.
pub(super) async fn policy_decides(
    cast: &Cast,
    sc: &mut Script,
    v1_manifest: &Value,
) -> anyhow::Result<()> {
    sc.step(format!(
        "dana registers {LOW_MODEL}, a low-risk model of another team"
    ));
    let v = ok(
        cast.as_("dana")
            .register(LOW_MODEL, &manifest_low_risk(v1_manifest), None)
            .await,
        "registering the low-risk model",
    )?;
    check(
        v["risk_tier"] == "low" && v["version"] == 1,
        "the low-risk model's version 1",
    )?;
    sc.ok(format!(
        "201 Created: {LOW_MODEL} version 1, {} risk, stage {}",
        s(&v, "risk_tier"),
        s(&v, "stage")
    ));
    sc.info("the demo's policy: low-tier staging requires unit-tests with coverage >= 0.8,");
    sc.info(
        "and policy decides the low tier's technical review (automatic_reviews = [\"technical\"])",
    );

    sc.step(format!(
        "dana requests promotion of {LOW_MODEL} version 1 to staging before CI has reported"
    ));
    let opened = ok(
        cast.as_("dana")
            .promote(LOW_MODEL, 1, Environment::Staging)
            .await,
        "the staging promotion before CI",
    )?;
    check(
        opened["status"] == "in_review" && opened["reviews"][0]["status"] == "pending",
        format!("the promotion opens and its review waits: {opened}"),
    )?;
    let gate = ok(
        cast.as_("dana")
            .gate(LOW_MODEL, 1, Environment::Staging)
            .await,
        "gate",
    )?;
    let waiting = gate["reasons"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r.to_string().contains("unit-tests")))
        .cloned()
        .ok_or_else(|| anyhow!("the gate names the unit-tests check: {gate}"))?;
    sc.ok(format!(
        "promotion {} opened; its technical review is policy's, and policy waits for CI",
        short_id(s(&opened, "id"))
    ));
    sc.info(format!(
        "the gate says: {}",
        waiting.as_str().unwrap_or_default()
    ));

    sc.step(format!(
        "{CI} (role ci) reports unit-tests passed for {LOW_MODEL} version 1, coverage 0.87 \
         (what `steward check` sends)"
    ));
    let body = json!({
        "name": "unit-tests",
        "status": "passed",
        "metrics": {"coverage": 0.87, "tests": 412},
        "details_url": "https://ci.example.com/support-triage/runs/1207",
    });
    let result = ok(
        cast.as_(CI)
            .report_check(
                LOW_MODEL,
                1,
                &body,
                Some("support-triage-1-unit-tests-1207"),
            )
            .await,
        "ci-bot reporting unit-tests",
    )?;
    check(
        result["status"] == "passed" && result["reported_by"] == CI,
        format!("the check is recorded as passed by {CI}: {result}"),
    )?;
    sc.ok(format!(
        "201 Created: check {} passed, report {} by {}, coverage {}",
        s(&result, "name"),
        result["reports"],
        s(&result, "reported_by"),
        result["metrics"]["coverage"]
    ));

    let p = ok(
        cast.as_("dana").promotion(s(&opened, "id")).await,
        "the promotion after the report",
    )?;
    let review = p["reviews"]
        .as_array()
        .and_then(|rs| rs.first())
        .ok_or_else(|| anyhow!("the promotion has no review"))?;
    check(
        p["status"] == "approved"
            && review["stage"] == "technical"
            && review["decided_by"] == "policy",
        format!("policy approves the low-risk staging promotion on the report: {p}"),
    )?;
    sc.ok(format!(
        "the report was the last evidence: promotion {} approved, the technical review decided by policy, no person asked",
        short_id(s(&p, "id"))
    ));
    sc.info(format!("comment: {}", s(review, "comment")));

    sc.step(format!(
        "the gate allows staging; dana deploys {LOW_MODEL} version 1"
    ));
    let gate = ok(
        cast.as_("dana")
            .gate(LOW_MODEL, 1, Environment::Staging)
            .await,
        "gate",
    )?;
    check(gate["allowed"] == true, "the staging gate is open")?;
    let v = ok(
        cast.as_("dana")
            .deploy(LOW_MODEL, 1, Environment::Staging)
            .await,
        "deploying the low-risk model",
    )?;
    check(v["stage"] == "staging", "the low-risk model is in staging")?;
    sc.ok(format!("gate open; {LOW_MODEL} version 1 is in staging"));

    sc.step(format!(
        "audrey reads {LOW_MODEL}'s audit log: the decision, who made it and what it relied on"
    ));
    let events = audit_of(cast, "audrey", LOW_MODEL).await?;
    let reported = events
        .iter()
        .find(|e| e["action"] == "check.reported")
        .ok_or_else(|| anyhow!("no check.reported event"))?;
    check(reported["actor"] == CI, "ci-bot reported the check")?;
    let decided = events
        .iter()
        .find(|e| e["action"] == "review.decided")
        .ok_or_else(|| anyhow!("no review.decided event"))?;
    let evidence = &decided["details"]["policy"];
    let relied = evidence["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "unit-tests"))
        .ok_or_else(|| anyhow!("the decision names no unit-tests report: {decided}"))?;
    check(
        decided["actor"] == "policy" && decided["details"]["automatic"] == true,
        format!("review.decided by policy, automatic: {decided}"),
    )?;
    sc.ok(format!(
        "#{} check.reported by {}: unit-tests {}",
        reported["seq"],
        s(reported, "actor"),
        s(&reported["details"], "status")
    ));
    sc.ok(format!(
        "#{} review.decided by {} (automatic): {} approved under policy sha256 {}",
        decided["seq"],
        s(decided, "actor"),
        s(&decided["details"], "stage"),
        short(s(evidence, "digest"))
    ));
    let required: Vec<String> = evidence["required_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| match r.as_str() {
            Some(name) => name.to_owned(),
            None => {
                let rules: Vec<&str> = r["require"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                format!("{} with {}", s(r, "name"), rules.join(", "))
            }
        })
        .collect();
    sc.info(format!(
        "relied on: unit-tests {} by {} with coverage {} (required: {}), {} evaluation(s)",
        s(relied, "status"),
        s(relied, "reported_by"),
        relied["metrics"]["coverage"],
        required.join(", "),
        evidence["evaluations"].as_array().map_or(0, Vec::len)
    ));

    Ok(())
}

/// The high-risk model's reviews were all decided by people, and a policy that would automate
/// any of them is refused by the loader.
pub(super) async fn high_risk_stays_human(cast: &Cast, sc: &mut Script) -> anyhow::Result<()> {
    sc.step(format!(
        "meanwhile {MODEL} (high risk): audrey checks who decided its reviews"
    ));
    let decisions: Vec<Value> = audit_of(cast, "audrey", MODEL)
        .await?
        .into_iter()
        .filter(|e| e["action"] == "review.decided")
        .collect();
    let mut people: Vec<&str> = Vec::new();
    for d in &decisions {
        let who = s(d, "actor");
        check(
            who != "policy" && d["details"]["automatic"].is_null(),
            format!("a high-risk review decided by policy: {d}"),
        )?;
        if !people.contains(&who) {
            people.push(who);
        }
    }
    check(
        !decisions.is_empty(),
        "the high-risk model has review decisions",
    )?;
    sc.ok(format!(
        "{} review decisions, every one by a person: {} — its reviews stay human, its promotions \
         still need people",
        decisions.len(),
        people.join(", ")
    ));

    sc.step(
        "ada tries a policy that would let policy decide the high tier's technical review as well",
    );
    let automated_high = POLICY.replace(
        "[tiers.high]\n",
        "[tiers.high]\nautomatic_reviews = [\"technical\"]\n",
    );
    check(
        automated_high != POLICY,
        "the demo's policy has a high tier",
    )?;
    match Policy::from_toml(&automated_high) {
        Ok(_) => anyhow::bail!("a policy automating a high-tier review was accepted"),
        Err(GovError::Validation(errors)) => {
            check(
                errors
                    .iter()
                    .any(|e| e.field == "tiers.high.automatic_reviews"),
                "the refusal names tiers.high.automatic_reviews",
            )?;
            sc.refused_by("the policy loader");
            for e in &errors {
                sc.info(format!("{}: {}", e.field, e.message));
            }
        }
        Err(e) => anyhow::bail!("expected a validation error, got {e}"),
    }
    sc.info("(compliance is human-only in every tier: automating it is refused the same way)");

    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_core::types::{ReviewStage, RiskTier};

    #[test]
    fn the_demo_policy_automates_only_the_low_tiers_technical_review() {
        let p = policy().unwrap();
        let default = Policy::default();
        for tier in [RiskTier::Medium, RiskTier::High] {
            assert_eq!(p.tier(tier), default.tier(tier), "{tier}");
        }
        assert_eq!(p.thresholds, default.thresholds);
        assert!(p.fairness.is_empty());
        assert!(p.is_automatic(RiskTier::Low, ReviewStage::Technical));
        assert_eq!(
            p.required_checks(RiskTier::Low, Environment::Staging).len(),
            1
        );
        assert!(p
            .required_checks(RiskTier::Low, Environment::Production)
            .is_empty());
        let low = p.tier(RiskTier::Low);
        let dlow = default.tier(RiskTier::Low);
        assert_eq!(
            (
                &low.reviews,
                low.review_timeout,
                low.periodic_review,
                low.auto_rollback
            ),
            (
                &dlow.reviews,
                dlow.review_timeout,
                dlow.periodic_review,
                dlow.auto_rollback
            )
        );
    }
}
