//! API Gateway (an HTTP API with IAM authorisation) played on 127.0.0.1, in front of the API
//! Lambda's router, for tests of clients that sign with SigV4 (the `steward` CLI, the MLflow
//! client with `MLFLOW_TRACKING_AWS_SIGV4=true`).
//!
//! Invariants, as API Gateway keeps them:
//! - a request reaches the API only when its SigV4 signature verifies: recomputed with
//!   `aws-sigv4` (AWS's own signer, so the canonical request is the spec's: query names and
//!   values decoded, then percent-encoded with `%20` for a space) from the secret of the access
//!   key it names, over exactly the headers it says it signed, compared in constant time;
//!   otherwise a 403 `{"message"}` in API Gateway's words, which the API never sees;
//! - a session key needs its session token, and a signature older than five minutes expired;
//! - what the API gets is an HTTP API (v2) event whose
//!   `requestContext.authorizer.iam.userArn` is the ARN behind the key, turned into a request
//!   by `lambda_http` as the Lambda runtime does.
//!
//! Nothing real plays API Gateway locally (moto does not run API Gateway's SigV4 check), so
//! this is the one stand-in; its signature check is AWS's own code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;
use tower::ServiceExt;

/// The account of every ARN the gateway hands on.
pub const ACCOUNT: &str = "123456789012";

/// What the gateway knows of one access key: its secret, session token and caller ARN.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
    pub arn: String,
}

/// Turns the Lambda request the gateway built into the one the API's router takes (the API
/// function's caller-ARN step, `steward_fn_api::with_caller_arn`).
pub type Adapter = fn(lambda_http::Request) -> lambda_http::Request;

struct Gateway {
    region: String,
    keys: HashMap<String, AccessKey>,
    app: axum::Router,
    adapt: Adapter,
}

/// Serves "API Gateway" in `region` for `keys` in front of `app` on a free 127.0.0.1 port,
/// on the current runtime; returns its base URL.
pub async fn start(
    region: &str,
    keys: Vec<AccessKey>,
    app: axum::Router,
    adapt: Adapter,
) -> String {
    let gw = Arc::new(Gateway {
        region: region.to_owned(),
        keys: keys.into_iter().map(|k| (k.id.clone(), k)).collect(),
        app,
        adapt,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on 127.0.0.1");
    let url = format!("http://{}", listener.local_addr().expect("a bound address"));
    let service = axum::Router::new().fallback(handle).with_state(gw);
    tokio::spawn(async move { axum::serve(listener, service).await });
    url
}

fn forbidden(message: &str) -> Response {
    // API Gateway's own answer: not the Steward error shape, since the API never saw it.
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({"message": message})),
    )
        .into_response()
}

/// The `Credential=` scope and signed headers of an `Authorization` header.
fn authorization_parts(value: &str) -> Option<(Vec<&str>, &str)> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim) {
        match part.split_once('=')? {
            ("Credential", v) => credential = Some(v.split('/').collect::<Vec<_>>()),
            ("SignedHeaders", v) => signed = Some(v),
            ("Signature", v) => signature = Some(v),
            _ => return None,
        }
    }
    signature?;
    Some((credential?, signed?))
}

/// Checks the request's signature as API Gateway does: the key when it holds, else the
/// message of the 403.
fn verify<'g>(
    gw: &'g Gateway,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<&'g AccessKey, &'static str> {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let Some(auth) = header("authorization") else {
        return Err("Forbidden");
    };
    let (scope, signed) = authorization_parts(auth).ok_or("Forbidden")?;
    let [access_key, _date, region, service, "aws4_request"] = scope[..] else {
        return Err("Forbidden");
    };
    if region != gw.region || service != "execute-api" {
        return Err("Credential should be scoped to a valid region or service");
    }
    let key = gw
        .keys
        .get(access_key)
        .ok_or("The security token included in the request is invalid.")?;
    if header("x-amz-security-token") != key.token.as_deref() {
        return Err("The security token included in the request is invalid.");
    }
    let date = header("x-amz-date").ok_or("Forbidden")?;
    let time = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| "Forbidden")?
        .and_utc();
    if (chrono::Utc::now() - time).num_seconds().abs() > 300 {
        return Err("Signature expired");
    }
    // Recompute over exactly the headers the client says it signed (the signer adds the date
    // and session token itself).
    let names: Vec<&str> = signed.split(';').collect();
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter(|(n, _)| names.contains(&n.as_str()))
        .filter(|(n, _)| !matches!(n.as_str(), "x-amz-date" | "x-amz-security-token"))
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("")))
        .collect();
    let url = format!("http://{}{}", header("host").unwrap_or(""), parts.uri);
    let identity = Credentials::new(
        access_key,
        key.secret.clone(),
        key.token.clone(),
        None,
        "gateway",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::from(time))
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| "Forbidden")?
        .into();
    let request = SignableRequest::new(
        parts.method.as_str(),
        url,
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| "Forbidden")?;
    let (instructions, _) = sign(request, &params)
        .map_err(|_| "Forbidden")?
        .into_parts();
    let expected = instructions
        .headers()
        .find(|(n, _)| *n == "authorization")
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    if bool::from(expected.as_bytes().ct_eq(auth.as_bytes())) {
        Ok(key)
    } else {
        Err("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
    }
}

/// One request through "API Gateway" and the API Lambda.
async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, 10 << 20).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large").into_response();
    };
    let key = match verify(&gw, &parts, &body) {
        Ok(key) => key,
        Err(message) => return forbidden(message),
    };
    let mut headers = serde_json::Map::new();
    for (n, v) in &parts.headers {
        headers.insert(n.as_str().to_owned(), json!(v.to_str().unwrap_or("")));
    }
    let session = key.arn.rsplit('/').next().unwrap_or_default();
    let event = json!({
        "version": "2.0", "routeKey": "$default",
        "rawPath": parts.uri.path(), "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": "steward",
            "domainName": format!("steward.execute-api.{}.amazonaws.com", gw.region),
            "http": {"method": parts.method.as_str(), "path": parts.uri.path(), "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1",
                     "userAgent": headers.get("user-agent").cloned().unwrap_or(json!(""))},
            "requestId": uuid::Uuid::new_v4().to_string(), "routeKey": "$default", "stage": "$default",
            "time": "27/Nov/2026:10:00:00 +0000", "timeEpoch": 0,
            "authorizer": {"iam": {"accessKey": key.id, "accountId": ACCOUNT, "userArn": key.arn,
                                    "callerId": format!("AROAEXAMPLE:{session}"),
                                    "userId": format!("AROAEXAMPLE:{session}")}},
        },
        "body": String::from_utf8_lossy(&body), "isBase64Encoded": false,
    });
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => (gw.adapt)(r),
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    match gw.app.clone().oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}
