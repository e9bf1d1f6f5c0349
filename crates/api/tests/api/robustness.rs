//! Hostile and broken requests: each is refused with the JSON error shape, nothing is written
//! and the service stays healthy.

use anyhow::Result;
use serde_json::json;
use steward_core::types::RiskTier;

use crate::common::*;

async fn still_healthy_and_unchanged(app: &App, before: &(u64, Vec<String>)) -> Result<()> {
    let h = app.get("", "/healthz").await?.expect(200)?;
    assert_eq!(h.body, json!({"status": "ok"}));
    assert_eq!(&app.snapshot().await?, before, "a refused request wrote");
    Ok(())
}

async fn raw(app: &App, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Result<Resp> {
    let mut req = app
        .client
        .post(app.url(path))
        .bearer_auth(token("dev"))
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = serde_json::from_slice(&r.bytes().await?)?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

#[tokio::test]
async fn malformed_json_is_a_bad_request() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    let path = "/v1/models/credit-risk/versions";
    let r = raw(
        &app,
        path,
        Some("application/json"),
        br#"{"owner": {"team": "#.to_vec(),
    )
    .await?
    .expect(400)?;
    assert_eq!(r.code(), "malformed_json");
    let r = raw(&app, path, Some("application/json"), Vec::new())
        .await?
        .expect(400)?;
    assert_eq!(r.code(), "malformed_json");
    let r = raw(&app, path, Some("application/json"), b"[1, 2,]".to_vec())
        .await?
        .expect(400)?;
    assert_eq!(r.code(), "malformed_json");
    still_healthy_and_unchanged(&app, &before).await
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_by_media_type() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    let body = serde_json::to_vec(&manifest(RiskTier::Low))?;
    let path = "/v1/models/credit-risk/versions";
    let r = raw(&app, path, Some("text/plain"), body.clone())
        .await?
        .expect(415)?;
    assert_eq!(r.code(), "unsupported_media_type");
    raw(&app, path, None, body).await?.expect(415)?;
    still_healthy_and_unchanged(&app, &before).await
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    let mut m = manifest(RiskTier::Low);
    m["description"] = json!("x".repeat(2 * 1024 * 1024));
    let r = raw(
        &app,
        "/v1/models/credit-risk/versions",
        Some("application/json"),
        serde_json::to_vec(&m)?,
    )
    .await?
    .expect(413)?;
    assert_eq!(r.code(), "payload_too_large");
    still_healthy_and_unchanged(&app, &before).await
}

#[tokio::test]
async fn an_oversized_chunked_body_is_cut_off_with_413() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST /v1/models/credit-risk/versions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        token("dev")
    );
    stream.write_all(head.as_bytes()).await?;
    let chunk = vec![b' '; 64 * 1024];
    // 2 MiB without a declared length: the limit can only be enforced while reading. The
    // server may answer and close before everything is sent.
    for _ in 0..32 {
        let frame = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.clone(),
            b"\r\n".to_vec(),
        ]
        .concat();
        if stream.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{text}"
    );
    assert!(text.contains("payload_too_large"), "{text}");
    still_healthy_and_unchanged(&app, &before).await
}

#[tokio::test]
async fn an_unknown_field_is_refused() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    let mut m = manifest(RiskTier::Low);
    m["approved_by"] = json!("dev");
    let r = app
        .post("dev", "/v1/models/credit-risk/versions", &m)
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["approved_by"]);
    let mut m = manifest(RiskTier::Low);
    m["card"]["rollback"]["tested"] = json!(true);
    let r = app
        .post("dev", "/v1/models/credit-risk/versions", &m)
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["card.rollback.tested"]);
    still_healthy_and_unchanged(&app, &before).await
}

#[tokio::test]
async fn a_request_without_a_token_is_unauthenticated() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    let r = app
        .post(
            "",
            "/v1/models/credit-risk/versions",
            &manifest(RiskTier::Low),
        )
        .await?
        .expect(401)?;
    assert_eq!(r.code(), "unauthenticated");
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    app.get("", "/v1/models").await?.expect(401)?;
    app.get(
        "",
        "/v1/models/credit-risk/versions/1/gate?environment=production",
    )
    .await?
    .expect(401)?;
    still_healthy_and_unchanged(&app, &before).await
}

#[tokio::test]
async fn a_request_with_an_invalid_token_is_unauthenticated() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    for auth in [
        "Bearer stolen-token",
        "Basic ZGV2OmRldi10b2tlbg==",
        "dev-token",
        "Bearer ",
    ] {
        let r = app
            .client
            .post(app.url("/v1/models/credit-risk/versions"))
            .header("authorization", auth)
            .json(&manifest(RiskTier::Low))
            .send()
            .await?;
        assert_eq!(r.status(), 401, "{auth}");
        assert!(r.headers().get("www-authenticate").is_some());
        let body: serde_json::Value = r.json().await?;
        assert_eq!(body["error"]["code"], "unauthenticated");
    }
    still_healthy_and_unchanged(&app, &before).await
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    let r = app.get("dev", "/v1/nothing-here").await?.expect(404)?;
    assert_eq!(r.code(), "not_found");
    app.get("", "/v2/models").await?.expect(404)?;
    let r = app
        .send(
            "dev",
            reqwest::Method::DELETE,
            "/v1/models/credit-risk",
            None,
        )
        .await?
        .expect(405)?;
    assert_eq!(r.code(), "method_not_allowed");
    assert!(r.header("allow").unwrap().contains("GET"));
    let r = app
        .get("dev", "/v1/models/credit-risk/versions")
        .await?
        .expect(405)?;
    assert!(r.header("allow").unwrap().contains("POST"));
    still_healthy_and_unchanged(&app, &before).await
}

#[tokio::test]
async fn health_needs_no_credentials() -> Result<()> {
    let app = spawn_app().await?;
    let r = app.get("", "/healthz").await?.expect(200)?;
    assert_eq!(r.body, json!({"status": "ok"}));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    Ok(())
}

#[tokio::test]
async fn a_body_with_its_fields_given_as_a_positional_array_is_refused() -> Result<()> {
    let app = spawn_app().await?;
    let before = app.snapshot().await?;
    // Serde would read `[["developer"]]` as `{"roles": ["developer"]}`: the contract's bodies
    // are objects with named fields, at every depth.
    let r = app
        .send(
            "admin",
            reqwest::Method::PUT,
            "/v1/principals/dev2",
            Some(&json!([[]])),
        )
        .await?
        .expect(422)?;
    assert_eq!(r.code(), "validation_failed");
    let mut m = manifest(RiskTier::Low);
    m["owner"] = json!(["credit-ml", "credit-ml@example.com"]);
    let r = app
        .post("dev", "/v1/models/credit-risk/versions", &m)
        .await?
        .expect(422)?;
    assert_eq!(r.fields(), ["owner"]);
    still_healthy_and_unchanged(&app, &before).await?;
    let dev2 = app.get("admin", "/v1/principals").await?.expect(200)?;
    let roles = dev2.body["items"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["id"] == "dev2"))
        .map(|p| p["roles"].clone());
    assert_eq!(roles, Some(json!(["developer"])));
    Ok(())
}
