//! Concurrent requests: idempotent retries create one version; racing promotions,
//! deployments and rollbacks succeed exactly once.

use std::sync::Arc;

use anyhow::Result;
use serde_json::json;
use steward_core::types::RiskTier;

use crate::common::*;

async fn register_with_key(
    app: &App,
    name: &str,
    key: &str,
    body: &serde_json::Value,
) -> Result<Resp> {
    let r = app
        .client
        .post(app.url(&format!("/v1/models/{name}/versions")))
        .bearer_auth(token("dev"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_retries_with_one_idempotency_key_create_one_version() -> Result<()> {
    let app = Arc::new(spawn_app().await?);
    let body = manifest(RiskTier::High);
    let results =
        in_parallel(&app, 50, |app| {
            let body = body.clone();
            async move {
                register_with_key(&app, "credit-risk", "pipeline-run-4k2j9x0qz1ab", &body).await
            }
        })
        .await?;
    let mut replayed = 0;
    for r in results {
        let r = r.expect(201)?;
        assert_eq!(r.body["version"], 1);
        assert_eq!(
            r.header("location"),
            Some("/v1/models/credit-risk/versions/1")
        );
        if r.header("idempotent-replayed") == Some("true") {
            replayed += 1;
        }
    }
    assert_eq!(replayed, 49);
    let m = app
        .get("dev", "/v1/models/credit-risk")
        .await?
        .expect(200)?;
    assert_eq!(m.body["versions"].as_array().unwrap().len(), 1);
    let registered = app
        .audit_events(Some("credit-risk"))
        .await?
        .into_iter()
        .filter(|e| e["action"] == "version.registered")
        .count();
    assert_eq!(registered, 1);

    // A later retry still replays; a new key registers a new version.
    let again = register_with_key(&app, "credit-risk", "pipeline-run-4k2j9x0qz1ab", &body)
        .await?
        .expect(201)?;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let next = register_with_key(&app, "credit-risk", "pipeline-run-2", &body)
        .await?
        .expect(201)?;
    assert_eq!(next.body["version"], 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_reused_with_another_body_is_a_conflict() -> Result<()> {
    let app = spawn_app().await?;
    let body = manifest(RiskTier::Medium);
    register_with_key(&app, "fraud", "k1", &body)
        .await?
        .expect(201)?;
    let before = app.snapshot().await?;
    let mut other = body.clone();
    other["description"] = json!("Something else entirely.");
    let r = register_with_key(&app, "fraud", "k1", &other)
        .await?
        .expect(409)?;
    assert_eq!(r.code(), "conflict");
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_without_a_key_get_distinct_versions() -> Result<()> {
    let app = Arc::new(spawn_app().await?);
    let body = manifest(RiskTier::Low);
    let results = in_parallel(&app, 5, |app| {
        let body = body.clone();
        async move { app.post("dev", "/v1/models/busy/versions", &body).await }
    })
    .await?;
    let mut versions: Vec<u64> = Vec::new();
    for r in results {
        versions.push(r.expect(201)?.body["version"].as_u64().unwrap());
    }
    versions.sort();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_promotion_requests_start_exactly_one_promotion() -> Result<()> {
    let app = spawn_app().await?;
    app.register("racy", RiskTier::Low).await?;
    let path = "/v1/models/racy/versions/1/promotions";
    let body = json!({"target": "staging"});
    let (a, b) = tokio::join!(app.post("dev", path, &body), app.post("dev2", path, &body));
    let mut statuses = vec![a?.status, b?.status];
    statuses.sort();
    assert_eq!(statuses, [202, 409]);
    let requested = app
        .audit_events(Some("racy"))
        .await?
        .into_iter()
        .filter(|e| e["action"] == "promotion.requested")
        .count();
    assert_eq!(requested, 1);
    let v = app
        .get("dev", "/v1/models/racy/versions/1")
        .await?
        .expect(200)?;
    assert_eq!(v.body["promotions"].as_array().unwrap().len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_approvals_of_one_review_make_exactly_one_decision() -> Result<()> {
    let app = Arc::new(spawn_app().await?);
    app.register("decided", RiskTier::Low).await?;
    let p = app.promote_as("dev", "decided", 1, "staging").await?;
    let review = review_id(&p, "technical")?.to_owned();
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (app, review) = (app.clone(), review.clone());
        tasks.push(tokio::spawn(async move {
            app.decide("tech", &review, "approve").await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await??;
        // A loser sees the review decided (conflict) or lost the race for it (contended).
        assert!(
            r.status == 200 || (r.status == 409 && ["conflict", "contended"].contains(&r.code())),
            "{} {}",
            r.status,
            r.body
        );
        statuses.push(r.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    let decided = app
        .audit_events(Some("decided"))
        .await?
        .into_iter()
        .filter(|e| e["action"] == "review.decided")
        .count();
    assert_eq!(decided, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_production_deployments_deploy_once() -> Result<()> {
    let app = spawn_app().await?;
    app.register("twice", RiskTier::Low).await?;
    app.to_staging("twice", 1).await?;
    let p = app.promote_as("dev", "twice", 1, "production").await?;
    app.approve_all(&p).await?;
    let (a, b) = tokio::join!(
        app.deploy_as("rel", "twice", 1, "production"),
        app.deploy_as("rel2", "twice", 1, "production")
    );
    let mut statuses = vec![a?.status, b?.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
    let deployed = app
        .audit_events(Some("twice"))
        .await?
        .into_iter()
        .filter(|e| {
            e["action"] == "version.deployed" && e["details"]["environment"] == "production"
        })
        .count();
    assert_eq!(deployed, 1);
    let v = app
        .get("dev", "/v1/models/twice/versions/1")
        .await?
        .expect(200)?;
    let prod_deploys = v.body["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["environment"] == "production")
        .count();
    assert_eq!(prod_deploys, 1);
    Ok(())
}

/// Twenty concurrent rollbacks of v1 → v2 → v3 with `body`; returns how many answered 200,
/// how many of those were replays, and the production version after them.
async fn twenty_rollbacks(
    body: serde_json::Value,
    key: Option<&'static str>,
) -> Result<(usize, usize, serde_json::Value)> {
    let app = Arc::new(spawn_app().await?);
    for v in 1..=3 {
        app.register("pricing", RiskTier::Low).await?;
        app.to_production("pricing", v).await?;
    }
    let results = in_parallel(&app, 20, |app| {
        let body = body.clone();
        async move {
            let mut req = app
                .client
                .post(app.url("/v1/models/pricing/rollback"))
                .bearer_auth(token("ops"))
                .json(&body);
            if let Some(k) = key {
                req = req.header("Idempotency-Key", k);
            }
            let r = req.send().await?;
            let replayed = r.headers().get("idempotent-replayed").is_some();
            let retry_after = r.headers().get("retry-after").is_some();
            Ok((
                r.status().as_u16(),
                (replayed, retry_after),
                r.json::<serde_json::Value>().await?,
            ))
        }
    })
    .await?;
    let (mut ok, mut replays) = (0, 0);
    for (status, (replayed, retry_after), body) in results {
        if status == 200 {
            ok += 1;
            replays += usize::from(replayed);
            assert_eq!(body["production_version"], 2, "{body}");
        } else {
            // Either the rollback read production after the winner moved it (a state conflict:
            // no retry helps) or it read before and lost the commit (a race: retry may help).
            let code = body["error"]["code"].as_str();
            assert_eq!(status, 409, "{body}");
            assert!(
                matches!(
                    (code, retry_after),
                    (Some("conflict"), false) | (Some("contended"), true)
                ),
                "{code:?}, Retry-After {retry_after}: {body}"
            );
        }
    }
    let rollbacks = app
        .audit_events(Some("pricing"))
        .await?
        .into_iter()
        .filter(|e| e["action"] == "model.rolled_back")
        .count();
    assert_eq!(rollbacks, 1, "exactly one rollback is recorded");
    Ok((ok, replays, app.production_version("pricing", None).await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_rollbacks_from_one_production_version_change_it_once() -> Result<()> {
    // Before the fix 16-20 of them succeeded and production flip-flopped between 2 and 3.
    let (ok, _, production) = twenty_rollbacks(
        json!({"reason": "latency regression", "from_version": 3}),
        None,
    )
    .await?;
    assert_eq!((ok, production), (1, json!(2)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_rollbacks_with_one_idempotency_key_change_production_once_and_all_answer_it(
) -> Result<()> {
    let (ok, replays, production) = twenty_rollbacks(
        json!({"reason": "latency regression"}),
        Some("incident-7f3a"),
    )
    .await?;
    assert_eq!((ok, replays, production), (20, 19, json!(2)));
    Ok(())
}

#[tokio::test]
async fn a_rollback_idempotency_key_reused_with_another_reason_is_a_conflict() -> Result<()> {
    let app = spawn_app().await?;
    for v in 1..=2 {
        app.register("pricing", RiskTier::Low).await?;
        app.to_production("pricing", v).await?;
    }
    let send = |reason: &'static str| {
        let app = &app;
        async move {
            let r = app
                .client
                .post(app.url("/v1/models/pricing/rollback"))
                .bearer_auth(token("ops"))
                .header("Idempotency-Key", "k-1")
                .json(&json!({"reason": reason}))
                .send()
                .await?;
            anyhow::Ok(r.status().as_u16())
        }
    };
    assert_eq!(send("regression").await?, 200);
    let before = app.snapshot().await?;
    assert_eq!(send("another reason").await?, 409);
    assert_eq!(app.snapshot().await?, before);
    Ok(())
}

#[tokio::test]
async fn a_rollback_naming_the_version_it_rolls_back_from_acts_only_while_that_version_serves(
) -> Result<()> {
    let app = spawn_app().await?;
    for v in 1..=3 {
        app.register("pricing", RiskTier::Low).await?;
        app.to_production("pricing", v).await?;
    }
    let rollback = |from: serde_json::Value| {
        let app = &app;
        async move {
            app.post(
                "ops",
                "/v1/models/pricing/rollback",
                &json!({"reason": "regression", "from_version": from}),
            )
            .await
        }
    };
    let r = rollback(json!(3)).await?.expect(200)?;
    assert_eq!(r.body["production_version"], 2);
    assert_eq!(r.body["rolled_back_from"], json!([3]));
    // A retry of the same intent finds production moved on and changes nothing.
    let before = app.snapshot().await?;
    let r = rollback(json!(3)).await?.expect(409)?;
    assert_eq!(r.code(), "conflict");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not 3"));
    assert_eq!(
        rollback(json!(0)).await?.expect(422)?.fields(),
        ["from_version"]
    );
    assert_eq!(rollback(json!("3")).await?.status / 100, 4);
    assert_eq!(app.snapshot().await?, before);
    assert_eq!(app.production_version("pricing", None).await?, json!(2));
    Ok(())
}

/// Runs `n` copies of `f` as separate tasks and collects their results.
async fn in_parallel<F, Fut, T>(app: &Arc<App>, n: usize, f: F) -> Result<Vec<T>>
where
    F: Fn(Arc<App>) -> Fut,
    Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        set.spawn(f(app.clone()));
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        out.push(r??);
    }
    Ok(out)
}
