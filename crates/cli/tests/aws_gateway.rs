//! The real `steward` binary against the API as it runs on AWS, with API Gateway played on
//! 127.0.0.1 by this test: it checks each request's SigV4 signature itself (recomputed with
//! `aws-sigv4` from the secret of the access key, compared in constant time; a missing or bad
//! signature is a 403 as API Gateway answers), turns the request into an HTTP API (v2) event
//! whose `requestContext.authorizer.iam.userArn` is the ARN behind that key, and runs it through
//! the API Lambda's own adapter (`steward_fn_api::with_caller_arn`) and the shared router with
//! the `IamCallerArn` authenticator over an embedded backend.
//!
//! The CLI finds its credentials through the standard AWS chain: a profile in a temporary
//! `HOME` (`~/.aws/credentials` and `~/.aws/config`, `AWS_PROFILE=steward-test`), each
//! invocation a subprocess with a clean environment, so nothing leaks between tests.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use steward_api::{router, AppState, IamCallerArn};
use steward_core::types::{PrincipalId, Role};
use steward_core::Policy;
use steward_local::Embedded;
use subtle::ConstantTimeEq;
use tower::ServiceExt;

const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";
/// A temporary key of an assumed-role session, as `aws sts assume-role` hands out.
const SESSION_KEY: &str = "ASIASTEWARDTEST00001";
const SESSION_SECRET: &str = "c2Vzc2lvbi1zZWNyZXQtb2YtYWxpY2UtaW4tbWwtcmVsZWFzZQ";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEPT//////////wEaCWV1LXdlc3QtMSJHMEUCIQDsteward";
const SESSION_ARN: &str = "arn:aws:sts::123456789012:assumed-role/ml-release/alice";
/// The role whose sessions those are: roles granted to it apply to every session.
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/ml-release";
/// A long-term key of an IAM user.
const USER_KEY: &str = "AKIASTEWARDTEST00002";
const USER_SECRET: &str = "dXNlci1zZWNyZXQtb2YtY2ktYm90LWZvci1zdGV3YXJkLXRlc3Q";
const USER_ARN: &str = "arn:aws:iam::123456789012:user/ci-bot";

/// What API Gateway knows about each access key: its secret, session token and caller.
struct Key {
    secret: &'static str,
    token: Option<&'static str>,
    arn: &'static str,
}

fn keys() -> HashMap<&'static str, Key> {
    HashMap::from([
        (
            SESSION_KEY,
            Key {
                secret: SESSION_SECRET,
                token: Some(SESSION_TOKEN),
                arn: SESSION_ARN,
            },
        ),
        (
            USER_KEY,
            Key {
                secret: USER_SECRET,
                token: None,
                arn: USER_ARN,
            },
        ),
    ])
}

struct Gateway {
    app: axum::Router,
    keys: HashMap<&'static str, Key>,
}

fn forbidden(message: &str) -> Response {
    // API Gateway's own answer: not the Steward error shape, since the API never saw it.
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({"message": message})),
    )
        .into_response()
}

/// The `Credential=` scope, signed headers and signature of an `Authorization` header.
fn authorization_parts(value: &str) -> Option<(Vec<&str>, &str, &str)> {
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
    Some((credential?, signed?, signature?))
}

/// Checks the request's signature as API Gateway does: the caller's ARN when it holds, else
/// the message of the 403.
fn verify(
    gw: &Gateway,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<&'static str, &'static str> {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let Some(auth) = header("authorization") else {
        return Err("Forbidden");
    };
    let (scope, signed, _) = authorization_parts(auth).ok_or("Forbidden")?;
    let [access_key, _date, region, service, "aws4_request"] = scope[..] else {
        return Err("Forbidden");
    };
    if region != REGION || service != "execute-api" {
        return Err("Credential should be scoped to a valid region or service");
    }
    let key = gw
        .keys
        .get(access_key)
        .ok_or("The security token included in the request is invalid.")?;
    if header("x-amz-security-token") != key.token {
        return Err("The security token included in the request is invalid.");
    }
    let date = header("x-amz-date").ok_or("Forbidden")?;
    let time = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| "Forbidden")?
        .and_utc();
    if (chrono::Utc::now() - time).num_seconds().abs() > 300 {
        return Err("Signature expired");
    }
    // Recompute over exactly the headers the client says it signed.
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
        key.secret,
        key.token.map(str::to_owned),
        None,
        "gw",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::from(time))
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let request = SignableRequest::new(
        parts.method.as_str(),
        url,
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| "Forbidden")?;
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let expected = instructions
        .headers()
        .find(|(n, _)| *n == "authorization")
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    if bool::from(expected.as_bytes().ct_eq(auth.as_bytes())) {
        Ok(key.arn)
    } else {
        Err("The request signature we calculated does not match the signature you provided.")
    }
}

/// One request through "API Gateway" and the API Lambda.
async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap();
    let arn = match verify(&gw, &parts, &body) {
        Ok(arn) => arn,
        Err(message) => return forbidden(message),
    };
    let mut headers = serde_json::Map::new();
    for (n, v) in &parts.headers {
        headers.insert(n.as_str().to_owned(), json!(v.to_str().unwrap_or("")));
    }
    let event = json!({
        "version": "2.0", "routeKey": "$default",
        "rawPath": parts.uri.path(), "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": "steward", "domainName": "steward.execute-api.eu-west-1.amazonaws.com",
            "http": {"method": parts.method.as_str(), "path": parts.uri.path(), "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "steward-cli"},
            "requestId": "req", "routeKey": "$default", "stage": "$default",
            "time": "27/Nov/2026:10:00:00 +0000", "timeEpoch": 0,
            "authorizer": {"iam": {"accessKey": "", "accountId": ACCOUNT, "userArn": arn,
                                    "callerId": "AROAEXAMPLE:alice", "userId": "AROAEXAMPLE:alice"}},
        },
        "body": String::from_utf8_lossy(&body), "isBase64Encoded": false,
    });
    let lambda_req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let lambda_req = steward_fn_api::with_caller_arn(lambda_req);
    gw.app
        .clone()
        .oneshot(lambda_req)
        .await
        .unwrap()
        .into_response()
}

/// "API Gateway" over a fresh embedded backend where the `ml-release` role and the CI user are
/// developers; keep the backend for as long as the URL is used.
async fn gateway(data: &Path) -> (String, Embedded) {
    let embedded = Embedded::open(data, Policy::default()).await.unwrap();
    for arn in [ROLE_ARN, USER_ARN] {
        let id = PrincipalId::parse(arn).unwrap();
        embedded
            .gov
            .seed_principal(&id, vec![Role::Developer], "test")
            .await
            .unwrap();
    }
    let app = router(AppState {
        gov: embedded.gov.clone(),
        auth: Arc::new(IamCallerArn),
    });
    let gw = Arc::new(Gateway { app, keys: keys() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = axum::Router::new().fallback(handle).with_state(gw);
    tokio::spawn(async move { axum::serve(listener, service).await });
    (url, embedded)
}

/// A temporary `HOME` whose AWS profile `steward-test` holds `key` (and `secret`, `token`).
fn home_with_profile(
    key: &str,
    secret: &str,
    token: Option<&str>,
    region: Option<&str>,
) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    let mut credentials =
        format!("[steward-test]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n");
    if let Some(t) = token {
        credentials.push_str(&format!("aws_session_token = {t}\n"));
    }
    std::fs::write(aws.join("credentials"), credentials).unwrap();
    let config = match region {
        Some(r) => format!("[profile steward-test]\nregion = {r}\n"),
        None => "[profile steward-test]\n".to_owned(),
    };
    std::fs::write(aws.join("config"), config).unwrap();
    home
}

/// The `steward` binary with only the environment a user with that `HOME` would have.
fn steward(home: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_steward"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_PROFILE", "steward-test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("STEWARD_CONFIG_DIR", home.join("steward-config"));
    c
}

/// Runs a prepared invocation off the test's runtime (the gateway serves on it meanwhile).
async fn run(mut cmd: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn manifest_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("manifest.json");
    std::fs::write(&path, include_str!("../src/demo/credit-risk-v1.json")).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_signs_with_its_profile_and_the_api_knows_the_assumed_role_session_by_its_arn() {
    let data = tempfile::tempdir().unwrap();
    let (url, _backend) = gateway(data.path()).await;
    let home = home_with_profile(SESSION_KEY, SESSION_SECRET, Some(SESSION_TOKEN), None);

    let mut list = steward(home.path());
    list.args([
        "--aws", "--region", REGION, "--server", &url, "models", "list", "-o", "json",
    ]);
    let out = run(list).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"], json!([]));

    // A write: the registrant is the session's ARN, from the request context alone.
    let mut register = steward(home.path());
    register
        .args(["register", "credit-risk", "--manifest"])
        .arg(manifest_file(home.path()))
        .args(["--server", &url, "--aws", "--region", REGION, "-o", "json"]);
    let out = run(register).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["registered_by"], SESSION_ARN);

    // whoami: the session, authenticated by IAM, with the role's grant.
    let mut whoami = steward(home.path());
    whoami.args([
        "--aws", "--region", REGION, "--server", &url, "whoami", "-o", "json",
    ]);
    let out = run(whoami).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let me: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(me["principal"], SESSION_ARN);
    assert_eq!(me["authentication"], "iam");
    assert_eq!(me["roles"], json!(["developer"]));
    assert_eq!(me["grants"], json!([ROLE_ARN]));
    let mut whoami = steward(home.path());
    whoami.args(["whoami", "--aws", "--region", REGION, "--server", &url]);
    let out = run(whoami).await;
    assert_eq!(
        text(&out.stdout),
        format!(
            "principal:      {SESSION_ARN}\nroles:          developer\nauthentication: iam\ngrants:         {ROLE_ARN}\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_region_comes_from_the_profile_and_env_credentials_come_before_the_profile() {
    let data = tempfile::tempdir().unwrap();
    let (url, _backend) = gateway(data.path()).await;
    // The profile's key is unknown to the gateway; the environment's is the CI user's.
    let home = home_with_profile("AKIAUNKNOWN000000000", "nope", None, Some(REGION));
    let mut list = steward(home.path());
    list.args(["models", "list", "--aws", "--server", &url])
        .env("STEWARD_AWS", "true")
        .env("AWS_ACCESS_KEY_ID", USER_KEY)
        .env("AWS_SECRET_ACCESS_KEY", USER_SECRET);
    let out = run(list).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("no models"),
        "{}",
        text(&out.stdout)
    );

    // With the profile's unknown key the gateway refuses, and the CLI says so.
    let mut list = steward(home.path());
    list.args(["models", "list", "--server", &url])
        .env("STEWARD_AWS", "true");
    let out = run(list).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("403"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_wrongly_signed_and_tampered_requests_are_refused_with_403() {
    let data = tempfile::tempdir().unwrap();
    let (url, _backend) = gateway(data.path()).await;

    // Unsigned: no --aws, no token.
    let home = home_with_profile(
        SESSION_KEY,
        SESSION_SECRET,
        Some(SESSION_TOKEN),
        Some(REGION),
    );
    let mut list = steward(home.path());
    list.args(["models", "list", "--server", &url]);
    let out = run(list).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Forbidden (403"),
        "{}",
        text(&out.stderr)
    );

    // Signed with the right key id but the wrong secret.
    let wrong = home_with_profile(USER_KEY, "not-the-secret", None, Some(REGION));
    let mut list = steward(wrong.path());
    list.args(["--aws", "models", "list", "--server", &url]);
    let out = run(list).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("signature we calculated does not match"),
        "{}",
        text(&out.stderr)
    );

    // Signed correctly by the client's own signer, then the body is changed in transit.
    let http = reqwest::Client::new();
    let target = format!("{url}/v1/models/credit-risk/rollback");
    let signed_body = br#"{"reason":"drift"}"#;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    let creds = Credentials::new(USER_KEY, USER_SECRET, None, None, "test");
    let added = steward::client::sigv4::sign_headers(
        "POST",
        &target,
        &headers,
        signed_body,
        &creds,
        REGION,
        "execute-api",
        SystemTime::now(),
    )
    .unwrap();
    let send = |body: &'static [u8]| {
        let mut req = http.post(&target).headers(headers.clone()).body(body);
        for (n, v) in &added {
            req = req.header(n, v);
        }
        req.timeout(Duration::from_secs(10)).send()
    };
    let tampered = send(br#"{"reason":"anything else"}"#).await.unwrap();
    assert_eq!(tampered.status(), 403);
    let refusal: Value = tampered.json().await.unwrap();
    assert!(refusal["message"]
        .as_str()
        .unwrap()
        .contains("does not match"));
    // The untouched request passes the gateway and reaches the API, which answers in its own
    // words (a developer may not roll back).
    let intact = send(signed_body).await.unwrap();
    let answer: Value = intact.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
}
