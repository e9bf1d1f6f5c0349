//! The real `steward` binary against the API as it runs on AWS, with API Gateway played on
//! 127.0.0.1 by `steward_testkit::gateway` (SigV4 checked with `aws-sigv4` from the secret of
//! the access key; a missing or bad signature is a 403 as API Gateway answers), each request
//! run through the API Lambda's own adapter (`steward_fn_api::with_caller_arn`) and the shared
//! router with the `IamCallerArn` authenticator over an embedded backend.
//!
//! The CLI finds its credentials through the standard AWS chain: a profile in a temporary
//! `HOME` (`~/.aws/credentials` and `~/.aws/config`, `AWS_PROFILE=steward-test`), each
//! invocation a subprocess with a clean environment, so nothing leaks between tests.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use serde_json::{json, Value};
use steward_api::{router, AppState, IamCallerArn};
use steward_core::types::{PrincipalId, Role};
use steward_core::Policy;
use steward_local::Embedded;
use steward_testkit::gateway::{self, AccessKey};

const REGION: &str = "eu-west-1";
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
fn keys() -> Vec<AccessKey> {
    let key = |id: &str, secret: &str, token: Option<&str>, arn: &str| AccessKey {
        id: id.to_owned(),
        secret: secret.to_owned(),
        token: token.map(str::to_owned),
        arn: arn.to_owned(),
    };
    vec![
        key(
            SESSION_KEY,
            SESSION_SECRET,
            Some(SESSION_TOKEN),
            SESSION_ARN,
        ),
        key(USER_KEY, USER_SECRET, None, USER_ARN),
    ]
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
    let url = gateway::start(REGION, keys(), app, steward_fn_api::with_caller_arn).await;
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
