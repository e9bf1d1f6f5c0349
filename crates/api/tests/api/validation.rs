//! Input validation: refusals name the field at fault and write nothing.

use anyhow::Result;
use serde_json::{json, Value};
use steward_core::types::RiskTier;

use crate::common::*;

/// Registers `body` as `name`, expects a 422 naming `field`, and checks nothing was written.
async fn registration_is_refused_naming(name: &str, body: Value, field: &str) -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    let r = app
        .post("dev", &format!("/v1/models/{name}/versions"), &body)
        .await?
        .expect(422)?;
    assert_eq!(r.code(), "validation_failed");
    assert!(
        r.fields().iter().any(|f| f == field),
        "expected a detail naming {field}: {}",
        r.body
    );
    assert_eq!(
        app.snapshot().await?,
        before,
        "a refused registration wrote"
    );
    if name == name.to_lowercase() {
        app.get("dev", &format!("/v1/models/{name}"))
            .await?
            .expect(404)?;
    }
    Ok(())
}

fn without(mut body: Value, path: &[&str]) -> Value {
    let (last, parents) = path.split_last().unwrap();
    let mut cur = &mut body;
    for p in parents {
        cur = &mut cur[*p];
    }
    cur.as_object_mut().unwrap().remove(*last);
    body
}

#[tokio::test]
async fn a_registration_without_a_card_is_refused_naming_the_card() -> Result<()> {
    registration_is_refused_naming(
        "credit-risk",
        without(manifest(RiskTier::High), &["card"]),
        "card",
    )
    .await
}

#[tokio::test]
async fn a_card_without_a_rollback_section_is_refused_naming_it() -> Result<()> {
    registration_is_refused_naming(
        "credit-risk",
        without(manifest(RiskTier::High), &["card", "rollback"]),
        "card.rollback",
    )
    .await
}

#[tokio::test]
async fn a_registration_without_evaluations_is_refused_naming_them() -> Result<()> {
    let mut empty = manifest(RiskTier::High);
    empty["evaluations"] = json!([]);
    registration_is_refused_naming("credit-risk", empty, "evaluations").await?;
    registration_is_refused_naming(
        "credit-risk",
        without(manifest(RiskTier::High), &["evaluations"]),
        "evaluations",
    )
    .await
}

#[tokio::test]
async fn an_artifact_without_a_sha256_digest_is_refused() -> Result<()> {
    let mut bad = manifest(RiskTier::High);
    bad["artifact"]["sha256"] = json!("not-a-digest");
    registration_is_refused_naming("credit-risk", bad, "artifact.sha256").await?;
    registration_is_refused_naming(
        "credit-risk",
        without(manifest(RiskTier::High), &["artifact", "sha256"]),
        "artifact.sha256",
    )
    .await
}

#[tokio::test]
async fn an_evaluation_dataset_without_a_hash_is_refused() -> Result<()> {
    let mut bad = manifest(RiskTier::High);
    bad["evaluations"][0]["dataset"]
        .as_object_mut()
        .unwrap()
        .remove("sha256");
    registration_is_refused_naming("credit-risk", bad, "evaluations[0].dataset.sha256").await
}

#[tokio::test]
async fn a_card_citing_an_unrecorded_evaluation_is_refused() -> Result<()> {
    let mut bad = manifest(RiskTier::High);
    bad["card"]["evaluation"]["evaluations"] = json!(["holdout-2026q1", "imaginary"]);
    registration_is_refused_naming("credit-risk", bad, "card.evaluation.evaluations[1]").await
}

#[tokio::test]
async fn an_invalid_model_name_is_refused() -> Result<()> {
    registration_is_refused_naming("Credit_Risk", manifest(RiskTier::High), "name").await
}

#[tokio::test]
async fn a_version_cannot_change_its_models_risk_tier() -> Result<()> {
    let app = spawn_app().await?;
    app.register("tiered", RiskTier::High).await?;
    let before = app.snapshot().await?;
    let r = app
        .post(
            "dev",
            "/v1/models/tiered/versions",
            &manifest(RiskTier::Low),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["risk_tier"]);
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

#[tokio::test]
async fn list_filters_and_query_parameters_are_validated_by_name() -> Result<()> {
    let app = spawn_app().await?;
    app.register("listed", RiskTier::Medium).await?;
    for (query, field) in [
        ("/v1/models?tier=critical", "tier"),
        ("/v1/models?stage=canary", "stage"),
        ("/v1/models?limit=many", "limit"),
        ("/v1/models/listed/versions/1/gate", "environment"),
        (
            "/v1/models/listed/versions/1/gate?environment=qa",
            "environment",
        ),
        ("/v1/models/listed/production?at=yesterday", "at"),
        ("/v1/reviews?status=open", "status"),
        ("/v1/audit?after=-1", "after"),
        ("/v1/models?cursor=not-a-cursor", "cursor"),
        ("/v1/reviews?cursor=zz", "cursor"),
    ] {
        let who = if query.starts_with("/v1/audit") {
            "aud"
        } else if query.starts_with("/v1/reviews") {
            "tech"
        } else {
            "dev"
        };
        let r = app.get(who, query).await?.expect(422)?;
        assert_eq!(r.fields(), [field], "{query}: {}", r.body);
    }
    let r = app
        .get("dev", "/v1/models?tier=medium&stage=development")
        .await?
        .expect(200)?;
    assert_eq!(r.body["items"][0]["name"], "listed");
    let r = app.get("dev", "/v1/models?tier=low").await?.expect(200)?;
    assert_eq!(r.body, json!({"items": [], "next_cursor": null}));
    let r = app
        .get("dev", "/v1/models?owner=credit-ml")
        .await?
        .expect(200)?;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    Ok(())
}

#[tokio::test]
async fn model_listing_pages_with_a_cursor() -> Result<()> {
    let app = spawn_app().await?;
    for name in ["m-a", "m-b", "m-c"] {
        app.register(name, RiskTier::Low).await?;
    }
    let mut seen = Vec::new();
    let mut path = "/v1/models?limit=2".to_owned();
    loop {
        let r = app.get("dev", &path).await?.expect(200)?;
        for m in r.body["items"].as_array().unwrap() {
            seen.push(m["name"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/models?limit=2&cursor={c}"),
            None => break,
        }
        assert!(seen.len() <= 3, "cursor loops: {seen:?}");
    }
    seen.sort();
    assert_eq!(seen, ["m-a", "m-b", "m-c"]);
    Ok(())
}

#[tokio::test]
async fn a_path_parameter_that_is_not_a_number_is_a_bad_request_naming_it() -> Result<()> {
    let app = spawn_app().await?;
    app.register("paths", RiskTier::Low).await?;
    let r = app
        .get("dev", "/v1/models/paths/versions/one")
        .await?
        .expect(400)?;
    assert_eq!(r.fields(), ["version"]);
    let r = app
        .post(
            "dev",
            "/v1/models/paths/versions/-1/promotions",
            &json!({"target": "staging"}),
        )
        .await?
        .expect(400)?;
    assert_eq!(r.fields(), ["version"]);
    let r = app.get("aud", "/v1/audit/proof/first").await?.expect(400)?;
    assert_eq!(r.fields(), ["seq"]);
    app.get("dev", "/v1/models/paths/versions/7")
        .await?
        .expect(404)?;
    app.get("dev", "/v1/models/nope").await?.expect(404)?;
    Ok(())
}

/// Version 0 is no malformed request: it is answered as any version the model does not have,
/// in a path, a signal and a retirement's replacement, exactly as before version numbers were
/// typed.
#[tokio::test]
async fn version_zero_is_a_version_the_model_does_not_have() -> Result<()> {
    let app = spawn_app().await?;
    app.register("zero", RiskTier::Low).await?;
    let before = app.snapshot().await?;
    for path in [
        "/v1/models/zero/versions/0",
        "/v1/models/zero/versions/0/card",
        "/v1/models/zero/versions/0/gate?environment=staging",
    ] {
        let r = app.get("dev", path).await?.expect(404)?;
        assert_eq!(r.code(), "not_found", "{path}");
        assert_eq!(
            r.body["error"]["message"], "not found: model zero has no version 0",
            "{path}"
        );
    }
    let r = app
        .post(
            "dev",
            "/v1/models/zero/versions/0/promotions",
            &json!({"target": "staging"}),
        )
        .await?
        .expect(404)?;
    assert_eq!(
        r.body["error"]["message"],
        "not found: model zero has no version 0"
    );
    let r = app
        .post(
            "ops",
            "/v1/signals",
            &json!({"model": "zero", "version": 0, "kind": "drift", "metric": "psi", "value": 0.5}),
        )
        .await?
        .expect(404)?;
    assert_eq!(
        r.body["error"]["message"],
        "not found: model zero has no version 0"
    );
    let r = app
        .post(
            "dev",
            "/v1/models/zero/versions/1/retirement",
            &json!({"reason": "superseded", "replacement": 0}),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["replacement"]);
    assert_eq!(
        r.body["error"]["details"][0]["message"],
        "model zero has no version 0"
    );
    // A malformed name is still reported before the version.
    app.get("dev", "/v1/models/Zero!/versions/0")
        .await?
        .expect(422)?;
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

#[tokio::test]
async fn small_bodies_refuse_unknown_and_missing_fields() -> Result<()> {
    let app = spawn_app().await?;
    app.register("bodies", RiskTier::Low).await?;
    let before = app.snapshot().await?;
    let promotions = "/v1/models/bodies/versions/1/promotions";
    let r = app.post("dev", promotions, &json!({})).await?.expect(422)?;
    assert_eq!(r.fields(), ["target"]);
    let r = app
        .post("dev", promotions, &json!({"target": "canary"}))
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["target"]);
    let r = app
        .post(
            "dev",
            promotions,
            &json!({"target": "staging", "urgent": true}),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["urgent"]);
    let r = app
        .post(
            "ops",
            "/v1/signals",
            &json!({"model": "bodies", "version": 1, "kind": "drift", "metric": "psi"}),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["value"]);
    let r = app
        .post("ops", "/v1/signals", &json!({"model": "bodies", "version": "one", "kind": "drift", "metric": "psi", "value": 1}))
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["version"]);
    let r = app
        .post(
            "dev",
            "/v1/models/bodies/versions/1/retirement",
            &json!({"reason": "  "}),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["reason"]);
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

#[tokio::test]
async fn a_garbage_review_cursor_is_refused_the_same_way_for_callers_without_a_reviewer_role(
) -> Result<()> {
    let app = spawn_app().await?;
    // Before the fix a caller with no reviewer role got 200 and an empty list.
    for who in ["tech", "dev", "admin", "aud"] {
        for cursor in ["zz", "0", "not-a-cursor", "%FF%FE"] {
            let r = app
                .get(who, &format!("/v1/reviews?cursor={cursor}"))
                .await?
                .expect(422)?;
            assert_eq!(r.fields(), ["cursor"], "{who} {cursor:?}: {}", r.body);
        }
    }
    let r = app.get("dev", "/v1/reviews").await?.expect(200)?;
    assert_eq!(r.body, json!({"items": [], "next_cursor": null}));
    Ok(())
}

#[tokio::test]
async fn a_fairness_group_without_metrics_is_refused_on_registration_and_card_revision(
) -> Result<()> {
    let mut body = manifest(RiskTier::Low);
    body["card"]["fairness"]["groups"][0]["metrics"] = json!({});
    registration_is_refused_naming(
        "credit-risk",
        body.clone(),
        "card.fairness.groups[0].metrics",
    )
    .await?;

    let app = spawn_app().await?;
    app.register("credit-risk", RiskTier::Low).await?;
    let before = app.snapshot().await?;
    let r = app
        .send(
            "dev",
            reqwest::Method::PUT,
            "/v1/models/credit-risk/versions/1/card",
            Some(&body["card"]),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["card.fairness.groups[0].metrics"]);
    assert_eq!(
        app.snapshot().await?,
        before,
        "a refused card revision wrote"
    );
    Ok(())
}

#[tokio::test]
async fn the_pending_retirements_list_validates_its_parameters_for_everyone() -> Result<()> {
    let app = spawn_app().await?;
    for who in ["dev", "tech", "rel", "aud"] {
        let r = app
            .get(who, "/v1/retirements?status=retired")
            .await?
            .expect(422)?;
        assert_eq!(r.fields(), ["status"], "{who}: {}", r.body);
        let r = app
            .get(who, "/v1/retirements?cursor=zz")
            .await?
            .expect(422)?;
        assert_eq!(r.fields(), ["cursor"], "{who}: {}", r.body);
        let r = app
            .get(who, "/v1/retirements?limit=some")
            .await?
            .expect(422)?;
        assert_eq!(r.fields(), ["limit"], "{who}: {}", r.body);
    }
    // The embedded mode retires at once: nothing is ever pending.
    app.register("credit-risk", RiskTier::Low).await?;
    app.post(
        "dev",
        "/v1/models/credit-risk/versions/1/retirement",
        &json!({"reason": "end of life"}),
    )
    .await?
    .expect(200)?;
    for status in ["awaiting_confirmation", "confirmed"] {
        let r = app
            .get("rel", &format!("/v1/retirements?status={status}"))
            .await?
            .expect(200)?;
        assert_eq!(r.body, json!({"items": [], "next_cursor": null}));
    }
    Ok(())
}
