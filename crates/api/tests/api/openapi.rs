//! The OpenAPI document: served without credentials and describing exactly the router's routes.

use std::collections::BTreeSet;

use anyhow::{Context, Result};

use crate::common::*;

/// Every route the router serves.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/models"),
    ("get", "/v1/models/{name}"),
    ("post", "/v1/models/{name}/versions"),
    ("get", "/v1/models/{name}/versions/{version}"),
    ("get", "/v1/models/{name}/versions/{version}/card"),
    ("put", "/v1/models/{name}/versions/{version}/card"),
    ("get", "/v1/models/{name}/versions/{version}/card/revisions"),
    ("post", "/v1/models/{name}/versions/{version}/evaluations"),
    ("post", "/v1/models/{name}/versions/{version}/checks"),
    ("get", "/v1/models/{name}/versions/{version}/checks"),
    ("get", "/v1/models/{name}/versions/{version}/gate"),
    ("get", "/v1/models/{name}/versions/{version}/evidence-pack"),
    ("post", "/v1/models/{name}/versions/{version}/promotions"),
    ("post", "/v1/models/{name}/versions/{version}/deployments"),
    ("post", "/v1/models/{name}/versions/{version}/retirement"),
    (
        "post",
        "/v1/models/{name}/versions/{version}/retirement/confirmation",
    ),
    ("post", "/v1/models/{name}/rollback"),
    ("get", "/v1/models/{name}/production"),
    ("get", "/v1/promotions/{id}"),
    ("get", "/v1/reviews"),
    ("get", "/v1/retirements"),
    ("post", "/v1/reviews/{id}/decision"),
    ("post", "/v1/signals"),
    ("get", "/v1/incidents"),
    ("post", "/v1/incidents/{id}/classification"),
    ("post", "/v1/incidents/{id}/report"),
    ("post", "/v1/incidents/{id}/close"),
    ("get", "/v1/periodic-reviews"),
    ("get", "/v1/inventory"),
    ("post", "/v1/serving"),
    ("get", "/v1/serving"),
    ("get", "/v1/audit"),
    ("get", "/v1/audit/checkpoint"),
    ("get", "/v1/audit/key"),
    ("get", "/v1/audit/proof/{seq}"),
    ("get", "/v1/audit/consistency"),
    ("get", "/v1/principals"),
    ("put", "/v1/principals/{id}"),
    ("get", "/v1/whoami"),
    ("get", "/v1/auth/oidc"),
    ("get", "/v1/webhooks"),
    ("put", "/v1/webhooks/{id}"),
    ("get", "/v1/webhooks/{id}"),
    ("delete", "/v1/webhooks/{id}"),
    ("get", "/v1/webhooks/{id}/deliveries"),
];

#[tokio::test]
async fn the_openapi_document_is_served_and_lists_every_route() -> Result<()> {
    let app = spawn_app().await?;
    let r = app.get("", "/v1/openapi.json").await?.expect(200)?;
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let doc = r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().context("paths")? {
        for method in item.as_object().context("path item")?.keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, routed);

    // Every documented operation reaches a handler: without credentials it is 401 (or 200 for
    // the open ones), never the router's 404 or 405.
    for (method, path) in &documented {
        let concrete = path
            .replace("{name}", "credit-risk")
            .replace("{version}", "1")
            .replace("{id}", "x")
            .replace("{seq}", "1");
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes())?;
        let r = app.send("", m, &concrete, None).await?;
        let open = ["/healthz", "/v1/openapi.json"].contains(&path.as_str());
        // Public too; without an OIDC provider configured its own handler answers 404.
        let public_oidc = path == "/v1/auth/oidc";
        assert_eq!(
            r.status,
            if open {
                200
            } else if public_oidc {
                404
            } else {
                401
            },
            "{method} {path}: {}",
            r.body
        );
        if public_oidc {
            assert_eq!(r.body["error"]["code"], "not_found");
            continue;
        }
        let responses = &doc["paths"][path][method]["responses"];
        if !open {
            assert!(
                !responses["401"].is_null(),
                "{method} {path} documents no 401"
            );
        }
    }
    Ok(())
}
